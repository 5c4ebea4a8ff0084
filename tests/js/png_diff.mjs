// Compares two 8-bit PNG files pixel by pixel (npm pngjs, independent of
// huren's libpng): prints "<width>x<height> <channels> <max diff> <mean diff>
// <distinct values of the first>". Used by tests/integration/test_rendered.sh
// against DCMTK's dcmj2pnm. Usage: node png_diff.mjs A.png B.png
import fs from 'node:fs';
import { PNG } from 'pngjs';

const [a, b] = process.argv.slice(2).map((f) => PNG.sync.read(fs.readFileSync(f)));
if (a.width !== b.width || a.height !== b.height) {
  console.log(`size ${a.width}x${a.height} vs ${b.width}x${b.height}`);
  process.exit(1);
}
// pngjs expands every image to RGBA: grey PNGs have R=G=B
const grey = (p) => {
  for (let i = 0; i < p.data.length; i += 4)
    if (p.data[i] !== p.data[i + 1] || p.data[i] !== p.data[i + 2]) return false;
  return true;
};
const ch = grey(a) && grey(b) ? 1 : 3;
let max = 0, sum = 0, n = 0;
const seen = new Set();
for (let i = 0; i < a.data.length; i += 4) {
  for (let c = 0; c < ch; c++) {
    const d = Math.abs(a.data[i + c] - b.data[i + c]);
    if (d > max) max = d;
    sum += d;
    n++;
    seen.add(a.data[i + c]);
  }
}
console.log(`${a.width}x${a.height} ${ch} ${max} ${(sum / n).toFixed(3)} ${seen.size}`);
