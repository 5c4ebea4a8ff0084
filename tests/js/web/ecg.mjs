// The ECG reading view in chromium (run by tests/integration/test_web_ecg.sh,
// which starts huren, stores a generated chest-pain 12-lead ECG from
// township1 and passes):
//   HUREN_URL  the hub
//   WEB_STUDY  the ECG's study UID
//   WEB_NID    the patient's national ID (in the object's Other Patient IDs)
//   WEB_SIGN_CMD a shell command that signs the reader's draft with the
//              recognition item ECG-12 (final)
//   WEB_TMP    a directory for the browser profile
// Users (password = <name>-password-1): recg (reader, county ECG center),
// tech1 (technician, township1), extb (external doctor, township2).
// The trace is checked in the pixels of the canvas (a PNG screenshot
// decoded with pngjs): trace-coloured pixels inside each of the 12 lead
// cells and the rhythm strip, the grid colours dominating the paper, the
// trace's height in the rhythm strip doubling from 10 to 20 mm/mV.
import { start } from './browser.mjs';
import { PNG } from 'pngjs';
import { execSync } from 'node:child_process';

const env = (k) => {
  if (!process.env[k]) throw new Error(`${k} is not set`);
  return process.env[k];
};
const base = env('HUREN_URL');
const study = env('WEB_STUDY');
const pw = (u) => `${u}-password-1`;
const LEADS = ['I', 'II', 'III', 'aVR', 'aVL', 'aVF', 'V1', 'V2', 'V3', 'V4', 'V5', 'V6'];

const t = await start('ecg', { base, tmp: env('WEB_TMP') });

// dark pixels (the trace: #101010) and paper/grid pixels (reddish, light)
const isTrace = (r, g, b) => r < 90 && g < 90 && b < 90;
const isGrid = (r, g, b) => r > 200 && r >= g && r >= b;

// The canvas's bitmap as pixels (toDataURL: the whole drawing, also the
// part scrolled out of view) plus its cells in CSS px (scale: bitmap
// pixels per CSS px).
async function canvasPixels(page) {
  const info = await page.$eval('#ecg-canvas', (c) => ({
    url: c.toDataURL('image/png'), w: c.clientWidth, cells: JSON.parse(c.dataset.cells || '[]'),
  }));
  const png = PNG.sync.read(Buffer.from(info.url.split(',')[1], 'base64'));
  return { png, scale: png.width / info.w, cells: info.cells };
}

function regionStats({ png, scale }, cell, inset = 2) {
  const x0 = Math.round((cell.x + inset) * scale), x1 = Math.round((cell.x + cell.w - inset) * scale);
  const y0 = Math.round((cell.y + inset) * scale), y1 = Math.round((cell.y + cell.h - inset) * scale);
  let trace = 0, grid = 0, n = 0, top = Infinity, bottom = -Infinity;
  for (let y = Math.max(0, y0); y < Math.min(png.height, y1); y++) {
    for (let x = Math.max(0, x0); x < Math.min(png.width, x1); x++) {
      const i = (y * png.width + x) * 4;
      const [r, g, b] = [png.data[i], png.data[i + 1], png.data[i + 2]];
      n++;
      if (isTrace(r, g, b)) {
        trace++;
        // the height of the trace, beyond the lead label (top-left 30 px)
        if (x > x0 + 40 * scale) {
          top = Math.min(top, y);
          bottom = Math.max(bottom, y);
        }
      } else if (isGrid(r, g, b)) grid++;
    }
  }
  return { trace, grid, n, height: bottom >= top ? (bottom - top) / scale : 0 };
}

try {
  // ---- the ECG center's reader claims the chest-pain ECG ----
  const rd = await t.newPage(true);
  let r = await t.login(rd, 'recg', pw('recg'));
  t.check('the ECG reader logs in', r.ok, r.error);
  await t.open(rd, '/reader');
  t.check('the chest-pain ECG is on the worklist, stat',
    await t.waitFor(rd, (s) => { const tr = document.querySelector(`tr[data-study="${s}"]`); return !!tr && !!tr.querySelector('[data-priority="stat"]'); }, study));
  await rd.click(`button[data-claim="${study}"]`);
  t.check('claim opens the reading screen', await t.waitFor(rd, (s) => location.hash === `#/reader/${s}` && !!document.querySelector('#reading-screen'), study));
  t.check('... with the ECG view, not the OHIF frame',
    await t.waitFor(rd, () => !!document.querySelector('#ecg-canvas[data-cells^="["]')) && !(await rd.$('#viewer-frame')));
  t.check('... and the report editor beside it', await t.waitFor(rd, () => !!document.querySelector('#rpt-findings')));
  await new Promise((res) => setTimeout(res, 300));
  await t.shot(rd, 'reading-ecg');
  let px = await canvasPixels(rd);
  t.checkEq('13 cells: the 12 leads of the 3x4 layout and the rhythm strip',
    LEADS.join(' ') + ' | II', px.cells.filter((c) => !c.rhythm).map((c) => c.lead).sort((a, b) => LEADS.indexOf(a) - LEADS.indexOf(b)).join(' ') + ' | ' + px.cells.filter((c) => c.rhythm).map((c) => c.lead).join(''));
  t.checkEq('standard layout: I II III / aVR aVL aVF / V1 V2 V3 / V4 V5 V6 by column',
    'I,II,III|aVR,aVL,aVF|V1,V2,V3|V4,V5,V6',
    [0, 1, 2, 3].map((c) => px.cells.filter((x) => !x.rhythm && x.col === c).sort((a, b) => a.row - b.row).map((x) => x.lead).join(',')).join('|'));
  const w10 = px.cells.find((c) => !c.rhythm && c.col === 0).w;
  t.checkEq('a cell is 2.5 s at 25 mm/s (62.5 mm at 4 px/mm)', 250, w10);
  for (const cell of px.cells) {
    const s = regionStats(px, cell);
    t.check(`trace pixels inside the ${cell.rhythm ? 'rhythm strip (II)' : 'cell of ' + cell.lead}`, s.trace > 150, JSON.stringify(s));
    t.check(`... and the grid dominates the rest of that cell`, s.grid > 0.6 * s.n, JSON.stringify(s));
  }
  const rhythm10 = regionStats(px, px.cells.find((c) => c.rhythm));
  t.check('the trace spans about 1.35 mV in II at 10 mm/mV (54 px + the line)', rhythm10.height > 50 && rhythm10.height < 62, JSON.stringify(rhythm10));
  t.check('the measurements and interpretation are beside it',
    await rd.$eval('#ecg-side', (e) => !!e.querySelector('#ecg-measurements tr[data-name="QTc Interval"]') && e.querySelector('#ecg-interpretation').textContent.includes('窦性心律')));

  // ---- gain 20 mm/mV doubles the trace ----
  await rd.select('#ecg-gain', '20');
  t.check('gain 20: the canvas is redrawn', await t.waitFor(rd, () => document.querySelector('#ecg-canvas').dataset.gain === '20'));
  await new Promise((res) => setTimeout(res, 300));
  px = await canvasPixels(rd);
  const rhythm20 = regionStats(px, px.cells.find((c) => c.rhythm));
  const ratio = rhythm20.height / rhythm10.height;
  t.check(`gain 10 -> 20 mm/mV doubles the trace's height in the rhythm strip (x${ratio.toFixed(2)})`, ratio > 1.8 && ratio < 2.2,
    `${rhythm10.height} -> ${rhythm20.height}`);
  await t.shot(rd, 'gain-20');
  await rd.select('#ecg-gain', '10');
  await rd.select('#ecg-speed', '50');
  t.check('speed 50 mm/s: a cell is twice as wide', await t.waitFor(rd, () => {
    const c = document.querySelector('#ecg-canvas');
    return c.dataset.speed === '50' && JSON.parse(c.dataset.cells)[0].w === 500;
  }));
  await rd.select('#ecg-speed', '25');
  await t.waitFor(rd, () => document.querySelector('#ecg-canvas').dataset.speed === '25');

  // ---- calipers: two clicks 200 px apart at 25 mm/s = 50 mm = 2000 ms ----
  await new Promise((res) => setTimeout(res, 200));
  const box = await (await rd.$('#ecg-overlay')).boundingBox();
  await rd.mouse.click(box.x + 100, box.y + 60);
  t.check('first caliper point', await t.waitFor(rd, () => !!document.querySelector('#ecg-caliper-hint')));
  await rd.mouse.click(box.x + 300, box.y + 20);
  t.check('the calipers show the interval', await t.waitFor(rd, () => !!document.querySelector('#ecg-caliper')));
  const cal = await rd.$eval('#ecg-caliper', (e) => ({ ...e.dataset, text: e.textContent }));
  t.checkEq('interval 200 px = 50 mm = 2000 ms', '2000', cal.ms);
  t.checkEq('rate 30 bpm', '30', cal.bpm);
  t.checkEq('amplitude 40 px = 10 mm = 1 mV at 10 mm/mV', '1', cal.mv);
  t.check('... written out (ms, 次/分, mV)', /2000 ms/.test(cal.text) && /30/.test(cal.text) && /mV/.test(cal.text), cal.text);
  await t.shot(rd, 'calipers');

  // ---- the township technician: the same view read-only, no editor ----
  const te = await t.newPage(true);
  r = await t.login(te, 'tech1', pw('tech1'));
  t.check('the township technician logs in', r.ok, r.error);
  await t.open(te, `/township/${study}`);
  t.check('the exam detail shows the ECG view', await t.waitFor(te, () => !!document.querySelector('#exam-detail #ecg-canvas[data-cells^="["]')));
  t.check('... without a report editor', !(await te.$('#rpt-findings')) && !(await te.$('#sign-btn')));
  await new Promise((res) => setTimeout(res, 300));
  px = await canvasPixels(te);
  const drawn = px.cells.filter((c) => regionStats(px, c).trace > 150).length;
  t.checkEq('... with the 13 cells drawn', 13, drawn);
  await t.shot(te, 'township-ecg');

  // ---- recognition: a doctor of township2 sees the signed ECG read-only ----
  execSync(env('WEB_SIGN_CMD'), { stdio: 'inherit' });
  const ex = await t.newPage(true);
  r = await t.login(ex, 'extb', pw('extb'));
  t.check('the township2 doctor logs in', r.ok, r.error);
  await t.open(ex, '/recognition');
  t.check('the recognition page', await t.waitFor(ex, () => !!document.querySelector('#rec-search-form')));
  await t.fill(ex, '#rec-id', env('WEB_NID'));
  await ex.click('#rec-search');
  t.check('the ECG result is recognizable', await t.waitFor(ex, () => document.querySelectorAll('#rec-results tbody tr').length === 1));
  await ex.click('#rec-results button[data-open="0"]');
  t.check('its detail shows the ECG view', await t.waitFor(ex, () => !!document.querySelector('#rec-detail #ecg-canvas[data-cells^="["]')));
  t.check('... read-only: no report editor', !(await ex.$('#rpt-findings')) && !(await ex.$('#sign-btn')));
  await new Promise((res) => setTimeout(res, 300));
  px = await canvasPixels(ex);
  t.checkEq('... with the 13 cells drawn', 13, px.cells.filter((c) => regionStats(px, c).trace > 150).length);
  await t.shot(ex, 'recognition-ecg');
} catch (e) {
  await t.abort(e);
}
await t.finish();
