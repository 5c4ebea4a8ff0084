// Chromium for the share and recognition browser tests (decision 0032):
// Debian's chromium driven by puppeteer-core, headless, a fresh profile
// under the test's temp dir, screenshots under
// $HUREN_BUILD_DIR/screenshots/<test>/<step>.png, and a pixel check.
import fs from 'node:fs';
import path from 'node:path';
import puppeteer from 'puppeteer-core';

export async function launch(tmpDir) {
  const profile = fs.mkdtempSync(path.join(tmpDir, 'chromium-'));
  return puppeteer.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--use-angle=swiftshader', '--enable-unsafe-swiftshader', `--user-data-dir=${profile}`,
    ],
  });
}

export function shooter(test) {
  const dir = path.join(process.env.HUREN_BUILD_DIR || 'build/debug', 'screenshots', test);
  fs.mkdirSync(dir, { recursive: true });
  let n = 0;
  return async (page, step) => {
    n += 1;
    const file = path.join(dir, `${String(n).padStart(2, '0')}-${step}.png`);
    await page.screenshot({ path: file, fullPage: true });
    return file;
  };
}

// Failures are counted, not thrown, so one run reports them all.
export function checker() {
  let fails = 0, passes = 0;
  const check = (what, ok, detail) => {
    if (ok) {
      passes += 1;
      console.log(`ok   - ${what}`);
    } else {
      fails += 1;
      console.log(`FAIL - ${what}${detail ? `: ${detail}` : ''}`);
    }
  };
  const done = () => {
    console.log(`${passes} passed, ${fails} failed`);
    return fails === 0 ? 0 : 1;
  };
  return { check, done };
}

// Standard deviation of the luminance of a loaded <img> (same origin),
// drawn into a canvas in the page: 0 for a uniform picture.
export async function imageSpread(page, selector) {
  return page.$eval(selector, (img) => {
    if (!img.complete || !img.naturalWidth) return -1;
    const c = document.createElement('canvas');
    c.width = img.naturalWidth;
    c.height = img.naturalHeight;
    const g = c.getContext('2d');
    g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    let s = 0, s2 = 0;
    const n = d.length / 4;
    for (let i = 0; i < d.length; i += 4) {
      const y = 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
      s += y;
      s2 += y * y;
    }
    return Math.sqrt(Math.max(0, s2 / n - (s / n) ** 2));
  });
}
