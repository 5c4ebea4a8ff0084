// Browser test of the office and admin pages (issue 10, decision 0031),
// run by tests/integration/test_web_office.sh against a real huren: the
// office logs in and sees the statistics with the right counts, downloads
// the volumes as CSV (UTF-8 with a BOM), switches to English; an auditor
// searches the audit log for a study; an admin adds and disables a user and
// reads the hospitals and centers; a technician can open none of these
// pages, and the APIs refuse it. Screenshots of each step go to SHOTS.
// Environment: URL, SHOTS, DOWNLOADS, PROFILE, EXPECT (JSON: received,
// remote, township1, finalized, overdue_study, ct_study).
import fs from 'node:fs';
import path from 'node:path';
import { start } from './browser.mjs';

const URL = process.env.URL;
const DOWNLOADS = process.env.DOWNLOADS;
const EXPECT = JSON.parse(process.env.EXPECT);
fs.mkdirSync(DOWNLOADS, { recursive: true });

const T = await start('office', { base: URL, tmp: process.env.TMP_DIR, width: 1400, height: 1000 });
const page = await T.newPage();
const ok = (cond, what) => T.check(what, !!cond);
const eq = (want, got, what) => T.checkEq(what, String(want), String(got));
const cdp = await page.createCDPSession();
await cdp.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: DOWNLOADS });

const shot = (name) => T.shot(page, name);
const text = (sel) => page.$eval(sel, (e) => e.textContent.trim());
const attr = (sel, a) => page.$eval(sel, (e, a) => e.getAttribute(a), a);

async function login(user, password) {
  await T.open(page, '/login');
  const r = await T.login(page, user, password);
  if (!r.ok) throw new Error(`login ${user}: ${r.error}`);
}
async function logout() {
  await page.click('#logout');
  await page.waitForSelector('#login-form', { timeout: 10000 });
}
async function go(hash, sel) {
  await T.open(page, hash);
  await page.waitForSelector(sel, { timeout: 15000 });
}
// The status of an API call from the page (with the session cookie).
const apiStatus = (p) => page.evaluate(async (p) => (await fetch(p, { credentials: 'same-origin' })).status, p);

try {
  // ---- the office ----
  await login('off1', 'off1-password-1');
  await page.waitForSelector('#office-volumes-table', { timeout: 20000 });
  eq('#/office', await page.evaluate(() => location.hash), 'the office lands on the statistics page');
  eq(EXPECT.received, await text('#office-volumes-table tr[data-day="total"] [data-received]'), 'volumes: exams received in total');
  eq(EXPECT.township1, await text('#office-volumes-table tr[data-day="total"] [data-hospital="township1"]'), 'volumes: from township1');
  eq(EXPECT.remote, await text('#card-remote .value'), 'remote-diagnosis card');
  eq(EXPECT.received, await text('#card-received .value'), 'received card');
  eq(EXPECT.finalized, await text('#office-remote-table tr[data-center="imaging"] [data-finalized]'), 'reports final on imaging');
  eq(EXPECT.finalized, await text('#office-turnaround-table tr[data-center="imaging"][data-priority="routine"] [data-count]'), 'turnaround: imaging routine count');
  eq('100.0%', await text('#office-turnaround-table tr[data-center="imaging"][data-priority="routine"] [data-share]'), 'turnaround: all within target');
  ok(await page.$(`#office-overdue-table tr[data-study="${EXPECT.overdue_study}"]`), 'the overdue list shows the overdue exam');
  eq('1', await text('#card-overdue .value'), 'overdue card');
  ok(await page.$('#office-recognition-table tr[data-center="total"]'), 'recognition table with its total');
  // the charts drew something (canvas pixels not all the same)
  const drawn = await page.$eval('#chart-volumes canvas', (c) => {
    const g = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 4; i < g.length; i += 4) if (g[i] !== g[0] || g[i + 1] !== g[1] || g[i + 2] !== g[2]) return true;
    return false;
  });
  ok(drawn, 'the volumes chart is drawn');
  await shot('office-statistics-zh');

  // CSV download
  await page.click('#csv-volumes');
  let csvFile = null;
  for (let i = 0; i < 100 && !csvFile; i++) {
    const f = fs.readdirSync(DOWNLOADS).find((n) => n.startsWith('huren-volumes-') && n.endsWith('.csv'));
    if (f) csvFile = path.join(DOWNLOADS, f);
    else await new Promise((r) => setTimeout(r, 100));
  }
  ok(csvFile, 'the volumes CSV is downloaded');
  if (csvFile) {
    const b = fs.readFileSync(csvFile);
    eq('efbbbf', b.subarray(0, 3).toString('hex'), 'the CSV starts with the UTF-8 BOM');
    const lines = b.subarray(3).toString('utf8').trim().split('\r\n');
    eq('day,received,remote_diagnosis', lines[0].split(',').slice(0, 3).join(','), 'the CSV header');
    const total = lines.slice(1).reduce((n, l) => n + Number(l.split(',')[1]), 0);
    eq(EXPECT.received, total, 'the CSV rows add up to the exams received');
    ok(lines[0].includes('医学影像中心'), 'the CSV header keeps the Chinese center name');
  }

  // English
  await page.click('#lang-switch');
  await page.waitForFunction(() => document.documentElement.lang === 'en');
  ok((await text('#office-page h2')) === 'Quality & statistics', 'English switch');
  await shot('office-statistics-en');
  await page.click('#lang-switch');

  // the office cannot open the audit search or the users
  await go('/audit', '#no-access');
  ok(true, 'the office cannot open the audit search');
  await go('/users', '#no-access');
  ok(true, 'the office cannot open the users page');
  await go('/config', '#config-hospitals');
  ok(await page.$('#config-centers tr[data-center="imaging"]'), 'the office reads the hospitals and centers');
  eq(403, await apiStatus('/api/v1/audit'), 'the office is refused the audit API');
  await shot('office-config');
  await logout();

  // ---- the auditor searches the audit log ----
  await login('aud1', 'aud1-password-1');
  await go('/audit', '#audit-form');
  await page.type('#audit-study', EXPECT.ct_study);
  await page.click('#audit-search');
  await page.waitForSelector('#audit-summary', { timeout: 15000 });
  const n = Number(await attr('#audit-summary', 'data-count'));
  ok(n >= 2, `the audit search finds the CT's records (${n})`);
  ok(await page.$('#audit-table tr[data-actor="rd1"][data-action="report-sign"]'), 'rd1 signing the CT is in the audit');
  const others = await page.$$eval('#audit-table tbody tr td:nth-child(7)', (tds) => tds.filter((td) => td.textContent.trim() !== '').map((td) => td.textContent.trim()));
  ok(others.every((s) => s === EXPECT.ct_study), 'every record found is of the CT');
  await shot('auditor-audit-search');
  await go('/office', '#no-access');
  ok(true, 'an auditor cannot open the statistics page');
  await logout();

  // ---- the admin ----
  await login('admin', 'admin-password-1');
  await go('/users', '#users-table');
  await page.type('#add-name', 'off9');
  await page.type('#add-display', '质控办');
  await page.select('#add-role', 'office');
  await page.select('#add-hospital', 'county');
  await page.type('#add-password', 'off9-password-1');
  await page.click('#add-submit');
  await page.waitForSelector('#users-table tr[data-user="off9"]', { timeout: 15000 });
  ok(true, 'the admin adds an office user');
  await page.click('button[data-disable="off9"]');
  await page.waitForSelector('#users-table tr[data-user="off9"][data-disabled="true"]', { timeout: 15000 });
  ok(true, 'the admin disables the user');
  await page.type('#add-name', 'bad');
  await page.select('#add-role', 'reader');
  await page.type('#add-password', 'bad-password-1');
  await page.click('#add-submit');
  await page.waitForSelector('#add-error', { timeout: 15000 });
  ok((await text('#add-error-detail')).startsWith('center'), 'a reader without a center is refused with the reason');
  await shot('admin-users');
  await go('/office', '#office-volumes-table');
  ok(true, 'the admin sees the statistics too');
  await logout();

  // ---- a technician: nothing of this ----
  await login('tech1', 'tech1-password-1');
  for (const p of ['/office', '/audit', '/users', '/config']) {
    await go(p, '#no-access');
    ok(true, `the technician cannot open ${p}`);
  }
  await shot('technician-no-access');
  for (const p of ['/api/v1/stats/volumes', '/api/v1/stats/turnaround', '/api/v1/stats/overdue', '/api/v1/audit', '/api/v1/users', '/api/v1/config/centers']) {
    eq(403, await apiStatus(p), `the technician is refused ${p}`);
  }
  await logout();
  eq(401, await apiStatus('/api/v1/stats/volumes'), 'no session: 401');
} catch (e) {
  T.check(`no exception: ${e && e.stack ? e.stack : e}`, false);
  await T.shot(page, 'failure').catch(() => {});
}
await T.finish();
