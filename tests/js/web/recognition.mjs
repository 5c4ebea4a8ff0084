// The receiving doctor's page (结果互认, decision 0027) in Chromium: an
// unauthenticated visit is sent to the login page; the external doctor logs
// in, finds the person by national ID, sees the recognizable result (HR
// mark, scope, validity end, issuing center) and the one not recognizable
// with its reason, opens the result: the report text and a verified
// signature; opens the images in the viewer (OHIF fetches the study through
// the grant and draws it); records a rejection with a reason (and is
// refused "other" without a note).
// usage: node recognition.mjs BASE USER PASSWORD NID RESULT STUDY NOT_RESULT FINDINGS TMPDIR
import { launch, shooter, checker } from './share_lib.mjs';

const [base, user, password, nid, result, study, notResult, findings, tmp] = process.argv.slice(2);
const { check, done } = checker();
const shot = shooter('recognition');
const browser = await launch(tmp);
const problems = [];
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1366, height: 900 });
  page.on('pageerror', (e) => problems.push(String(e)));
  const log = [];
  page.on('console', (m) => log.push(`${m.type()}: ${m.text()}`));
  page.on('requestfailed', (r) => log.push(`failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on('response', (r) => { if (r.status() >= 400) log.push(`${r.status()} ${r.url()}`); });

  // ---- no session: the login page ----
  await page.goto(`${base}/#/recognition`, { waitUntil: 'load' });
  await page.waitForSelector('#login-form', { timeout: 15000 }).catch((e) => {
    console.log(log.concat(problems).join('\n'));
    throw e;
  });
  const hash = await page.evaluate(() => location.hash);
  check('an unauthenticated visit is sent to the login page', hash.startsWith('#/login'), hash);
  check('... and comes back to the page after login', hash.includes('recognition'), hash);
  check('... the search form is not shown', (await page.$('#rec-search-form')) === null);
  await shot(page, 'login');

  await page.type('#login-user', user);
  await page.type('#login-password', password);
  await Promise.all([page.waitForSelector('#rec-search-form', { timeout: 15000 }), page.click('#login-submit')]);
  check('logged in, the recognition page', (await page.evaluate(() => location.hash)).startsWith('#/recognition'));

  // ---- search by national ID ----
  await page.type('#rec-id', nid);
  await page.click('#rec-search');
  await page.waitForSelector('#rec-results tbody tr', { timeout: 15000 });
  const rows = await page.$$eval('#rec-results tbody tr', (trs) => trs.map((r) => [r.dataset.result, r.textContent]));
  check('one recognizable result: the CT', rows.length === 1 && rows[0][0] === result, JSON.stringify(rows));
  check('... with its HR mark, scope and validity end', /鄂HR/.test(rows[0][1]) && /医共体内/.test(rows[0][1]) && /\d{4}-\d{2}-\d{2}/.test(rows[0][1]), rows[0][1]);
  const not = await page.$$eval('#rec-not tbody tr', (trs) => trs.map((r) => [r.dataset.result, r.dataset.reason, r.textContent]));
  check('the result not recognizable is shown apart with its reason', not.length === 1 && not[0][0] === notResult && not[0][1] === 'qc_lapsed' && /质控/.test(not[0][2]), JSON.stringify(not));
  await shot(page, 'results');

  // ---- open it: report, verified signature ----
  await page.click('#rec-results button[data-open="0"]');
  await page.waitForSelector('#rec-findings', { timeout: 15000 });
  check('the report text', (await page.$eval('#rec-findings', (e) => e.textContent)) === findings);
  await page.waitForSelector('#rec-verify:not([data-verify="checking"])', { timeout: 20000 });
  const verify = await page.$eval('#rec-verify', (e) => [e.dataset.verify, e.textContent.trim()]);
  check('the signature is verified', verify[0] === 'ok' && /验证通过/.test(verify[1]), verify.join(' '));
  const viewerHref = await page.$eval('#rec-viewer', (a) => a.getAttribute('href'));
  check('the viewer link opens this study', viewerHref === `/viewer/viewer?StudyInstanceUIDs=${study}`, viewerHref);
  await shot(page, 'report');

  // ---- the images in the viewer (same session cookie, the lookup's grant) ----
  const viewer = await browser.newPage();
  await viewer.setViewport({ width: 1366, height: 900 });
  const dicomweb = [];
  const vlog = [];
  viewer.on('response', (r) => {
    if (r.url().includes(`/dicomweb/studies/${study}`)) dicomweb.push([r.status(), r.url().replace(base, "").slice(0, 160)]);
    if (r.status() >= 400) vlog.push(`${r.status()} ${r.url()}`);
  });
  viewer.on('console', (m) => { if (m.type() === 'error') vlog.push(`console: ${m.text().slice(0, 300)}`); });
  viewer.on('pageerror', (e) => vlog.push(`pageerror: ${String(e).slice(0, 300)}`));
  await viewer.goto(`${base}${viewerHref}`, { waitUntil: 'load', timeout: 60000 });
  let drawn = false;
  try {
    await viewer.waitForFunction(() => {
      for (const c of document.querySelectorAll('canvas')) {
        if (c.width < 64 || c.height < 64) continue;
        const g = document.createElement('canvas');
        g.width = c.width;
        g.height = c.height;
        const x = g.getContext('2d');
        x.drawImage(c, 0, 0);
        const d = x.getImageData(0, 0, g.width, g.height).data;
        let lo = 255, hi = 0;
        for (let i = 0; i < d.length; i += 4 * 7) {
          lo = Math.min(lo, d[i]);
          hi = Math.max(hi, d[i]);
        }
        if (hi - lo > 20) return true;
      }
      return false;
    }, { timeout: 60000, polling: 1000 });
    drawn = true;
  } catch (e) {
    drawn = false;
    console.log(vlog.slice(0, 30).join('\n'));
  }
  const meta = dicomweb.filter(([, u]) => /\/metadata$/.test(u.split('?')[0]));
  check('the viewer read the study\'s metadata through DICOMweb (the grant): 200', meta.length > 0 && meta.every(([s]) => s === 200), JSON.stringify(dicomweb));
  check('... and no request of it was refused (401/403)', dicomweb.every(([s]) => s !== 401 && s !== 403), JSON.stringify(dicomweb));
  check('the viewer drew the image (canvas pixels not uniform)', drawn);
  await shot(viewer, 'viewer');
  await viewer.close();

  // ---- reject: "other" needs a note; then a reason code ----
  await page.bringToFront();
  await page.click('#rec-reject');
  await page.waitForSelector('#rec-reason');
  await page.select('#rec-reason', 'other');
  await page.$eval('#rec-decision', (f) => f.requestSubmit());
  await page.waitForSelector('#rec-decision-error', { timeout: 5000 });
  check('"other" without a note is refused in the page', (await page.$('#rec-saved')) === null);
  await page.select('#rec-reason', 'condition_changed');
  await page.type('#rec-text', '患者近期症状加重');
  await page.click('#rec-submit');
  await page.waitForSelector('#rec-saved', { timeout: 15000 });
  const hist = await page.$$eval('#rec-history li', (ls) => ls.map((l) => [l.dataset.decision, l.dataset.reason]));
  check('the rejection is recorded with its reason', hist.length === 1 && hist[0][0] === 'reject' && hist[0][1] === 'condition_changed', JSON.stringify(hist));
  await shot(page, 'rejected');
  check('no script error', problems.length === 0, problems.join(' | '));
} finally {
  await browser.close();
}
process.exit(done());
