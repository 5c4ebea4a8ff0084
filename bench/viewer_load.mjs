// The browser side of bench/viewer: opens OHIF on a study in a fresh
// headless Chromium (cold caches) and reports, in ms from navigation start,
// when the first image was drawn (cornerstone's IMAGE_RENDERED event, seen
// in the capture phase) and when every series thumbnail was shown (one
// loaded <img> per series in the study browser). One JSON line per run.
//
// usage: node viewer_load.mjs URL N_SERIES TIMEOUT_MS [COOKIE_NAME=VALUE] [SCREENSHOT.png] [WARM_URL]
//
// With WARM_URL (another study), that study is opened first in the same
// browser and the measured one after it: OHIF's files are then in the
// browser's cache, as on a reader's PC, and only the study's data is new.
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, '..', 'tests', 'js', 'package.json'));
const puppeteer = require('puppeteer-core');

const [url, nSeriesArg, timeoutArg, cookie, shot, warmUrl] = process.argv.slice(2);
const nSeries = Number(nSeriesArg);
const timeout = Number(timeoutArg);
const profile = mkdtempSync(join(tmpdir(), 'huren-bench-chromium-'));
const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  userDataDir: profile,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--window-size=1600,1000'],
  defaultViewport: { width: 1600, height: 1000 },
});
let page = null;
const consoleErrors = [];
let out = { url, first_image_ms: null, thumbnails_ms: null, requests: 0, bytes: 0 };
try {
  page = await browser.newPage();
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text().slice(0, 200)); });
  page.on('pageerror', (e) => consoleErrors.push(String(e).slice(0, 200)));
  page.on('response', async (r) => {
    out.requests++;
    const len = Number(r.headers()['content-length'] || 0);
    out.bytes += len;
  });
  if (cookie) {
    const [name, ...v] = cookie.split('=');
    await page.setCookie({ name, value: v.join('='), url });
  }
  await page.evaluateOnNewDocument(() => {
    window.__bench = { first: null };
    document.addEventListener('CORNERSTONE_IMAGE_RENDERED', () => {
      if (window.__bench.first === null) window.__bench.first = performance.now();
    }, true);
  });
  if (warmUrl) {
    await page.goto(warmUrl, { waitUntil: 'domcontentloaded', timeout });
    await page.waitForFunction(() => window.__bench.first !== null, { timeout, polling: 50 });
    out.requests = 0;
    out.bytes = 0;
  }
  await page.goto(url, { waitUntil: 'domcontentloaded', timeout });
  const t0 = Date.now();
  await page.waitForFunction(() => window.__bench.first !== null, { timeout, polling: 20 });
  out.first_image_ms = await page.evaluate(() => window.__bench.first);
  const left = Math.max(1000, timeout - (Date.now() - t0));
  await page.waitForFunction((n) => {
    const imgs = [...document.querySelectorAll('[data-cy="study-browser-thumbnail"] img, .thumbnail img, [class*="thumbnail"] img')]
      .filter((i) => i.complete && i.naturalWidth > 0);
    if (imgs.length >= n && window.__bench.thumbs === undefined) window.__bench.thumbs = performance.now();
    return imgs.length >= n;
  }, { timeout: left, polling: 20 }, nSeries);
  out.thumbnails_ms = await page.evaluate(() => window.__bench.thumbs);
  if (shot) await page.screenshot({ path: shot });
} catch (e) {
  out.error = String(e.message || e).split('\n')[0];
  out.console_errors = consoleErrors.slice(0, 5);
  if (shot && page) await page.screenshot({ path: shot }).catch(() => {});
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify(out));
