// The patient's share page at a phone viewport (decision 0032): opens
// /s/<token> without any session, shows the report (findings, impression,
// status), the key images as thumbnails that are real pictures (not
// uniform), a tap opens one full size; the PDF link answers a PDF; the page
// fits the phone's width; a revoked or unknown token shows the error state;
// no CSP violation or script error on the way.
// Then the technician's side in the application: #/share/<study> creates a
// link (QR code shown, the link opens the patient's page), lists it and
// revokes it.
// usage: node share.mjs BASE_URL TOKEN REVOKED_TOKEN FINDINGS IMPRESSION TMPDIR USER PASSWORD STUDY
import { launch, shooter, checker, imageSpread } from './share_lib.mjs';

const [base, token, revoked, findings, impression, tmp, user, password, study] = process.argv.slice(2);
const { check, done } = checker();
const shot = shooter('share');
const browser = await launch(tmp);
try {
  const page = await browser.newPage();
  await page.emulate({
    viewport: { width: 390, height: 844, deviceScaleFactor: 2, isMobile: true, hasTouch: true },
    userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0',
  });
  const problems = [];
  page.on('pageerror', (e) => problems.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of 404/.test(m.text())) problems.push(m.text());
  });
  const cookiesBefore = await browser.cookies?.() ?? [];
  check('no session cookie in the fresh profile', cookiesBefore.length === 0);

  await page.goto(`${base}/s/${token}`, { waitUntil: 'load' });
  await page.waitForSelector('#findings', { timeout: 15000 });
  check('the findings are shown', (await page.$eval('#findings', (e) => e.textContent)) === findings);
  check('the impression is shown', (await page.$eval('#impression', (e) => e.textContent)) === impression);
  check('the status is 正式报告', (await page.$eval('#status', (e) => e.textContent)) === '正式报告');
  check('the page is in Chinese', (await page.$eval('html', (e) => e.lang)) === 'zh-CN');
  const thumbs = await page.$$('#images img');
  check('the key images are listed (2)', thumbs.length === 2, `${thumbs.length}`);
  await page.waitForFunction(
    () => [...document.querySelectorAll('#images img')].every((i) => i.complete && i.naturalWidth > 0),
    { timeout: 20000 });
  const spread = await imageSpread(page, '#images button:first-child img');
  check('the first thumbnail is a picture (pixels not uniform)', spread > 1, `spread ${spread}`);
  const width = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  check('the page fits the phone (no horizontal scroll)', width[0] <= width[1], `${width}`);
  await shot(page, 'report');
  await page.$eval('#images', (e) => e.scrollIntoView());
  await shot(page, 'images');

  await page.tap('#images button:first-child');
  await page.waitForFunction(() => {
    const v = document.getElementById('viewer');
    const i = document.getElementById('viewer-img');
    return !v.hidden && i.complete && i.naturalWidth > 0;
  }, { timeout: 20000 });
  const full = await page.$eval('#viewer-img', (i) => [i.naturalWidth, i.naturalHeight]);
  const thumb = await page.$eval('#images button:first-child img', (i) => [i.naturalWidth, i.naturalHeight]);
  check('a tap shows the image full size (larger than its thumbnail)', full[0] > thumb[0], `${full} vs ${thumb}`);
  check('... a picture too', (await imageSpread(page, '#viewer-img')) > 1);
  await shot(page, 'image-full');
  await page.tap('#viewer-close');
  check('... closed again', await page.$eval('#viewer', (v) => v.hidden));

  const pdfHref = await page.$eval('#pdf', (a) => a.getAttribute('href'));
  const pdf = await page.evaluate(async (h) => {
    const r = await fetch(h);
    const b = new Uint8Array(await r.arrayBuffer());
    return [r.status, r.headers.get('content-type'), String.fromCharCode(...b.slice(0, 5))];
  }, pdfHref);
  check('the PDF link answers a PDF', pdf[0] === 200 && pdf[1] === 'application/pdf' && pdf[2] === '%PDF-', `${pdf}`);
  const cookies = await page.cookies();
  check('no cookie was needed or set', cookies.length === 0, JSON.stringify(cookies));

  await page.goto(`${base}/s/${revoked}`, { waitUntil: 'load' });
  await page.waitForSelector('#state.error', { timeout: 10000 });
  const msg = await page.$eval('#state', (e) => e.textContent);
  check('a revoked link shows the error state', /无效|过期|撤销/.test(msg), msg);
  check('... and no report', (await page.$('#findings')) === null);
  await shot(page, 'revoked');

  // ---- the technician creates and revokes a link in the application ----
  const ctx = await browser.createBrowserContext();
  const app = await ctx.newPage();
  await app.setViewport({ width: 1280, height: 900 });
  app.on('pageerror', (e) => problems.push(String(e)));
  await app.goto(`${base}/#/share/${study}`, { waitUntil: 'load' });
  await app.waitForSelector('#login-form', { timeout: 15000 });
  check('the share page without a session: the login page', (await app.evaluate(() => location.hash)).startsWith('#/login'));
  await app.type('#login-user', user);
  await app.type('#login-password', password);
  await Promise.all([app.waitForSelector('#share-create', { timeout: 15000 }), app.click('#login-submit')]);
  await app.waitForSelector('#share-list', { timeout: 15000 });
  const before = await app.$$eval('#share-list tbody tr', (rs) => rs.length);
  await app.select('#share-life', String(86400));
  await app.click('#share-create');
  await app.waitForSelector('#share-made #share-qr', { timeout: 15000 });
  await app.waitForFunction(() => document.getElementById('share-qr').naturalWidth > 0, { timeout: 10000 });
  const link = await app.$eval('#share-link', (a) => a.getAttribute('href'));
  check('the technician creates a link: a QR code and /s/<token>', /^\/s\/[A-Za-z0-9_-]{43}\.s\d+-/.test(link), link);
  await app.waitForFunction((n) => document.querySelectorAll('#share-list tbody tr').length === n + 1, { timeout: 10000 }, before);
  check('... listed', true);
  await shot(app, 'technician-created');
  const made = await app.$eval('#share-made', (e) => e.dataset.share);
  const phone = await ctx.newPage();
  await phone.goto(`${base}${link}`, { waitUntil: 'load' });
  await phone.waitForSelector('#findings', { timeout: 15000 });
  check('... the new link opens the report', (await phone.$eval('#findings', (e) => e.textContent)) === findings);
  await phone.close();
  await app.bringToFront();
  await app.click(`button[data-revoke="${made}"]`);
  await app.waitForSelector(`#share-list tr[data-share="${made}"][data-state="revoked"]`, { timeout: 10000 });
  check('... revoked from the page', true);
  await shot(app, 'technician-revoked');
  const after = await ctx.newPage();
  await after.goto(`${base}${link}`, { waitUntil: 'load' });
  await after.waitForSelector('#state.error', { timeout: 10000 });
  check('... and the patient\'s page stops at once', (await after.$('#findings')) === null);
  await ctx.close();
  check('no script error or CSP violation', problems.length === 0, problems.join(' | '));
} finally {
  await browser.close();
}
process.exit(done());
