// The township technician's pages in chromium (run by
// tests/integration/test_web_township.sh, which starts huren and passes):
//   HUREN_URL      the hub
//   WEB_FILES      a directory with the 2 DICOM files to upload (one study)
//   WEB_STUDY      that study's UID
//   WEB_BAD        a file that is not DICOM
//   WEB_CONFLICT   an instance of the study with another patient
//   WEB_SIGN_CMD   a shell command that completes, reads and signs the study
//                  through the API (as tests/integration/test_reports.sh)
//   WEB_IMPRESSION the impression the signed report carries
//   WEB_TMP        a directory for the browser profile
// Users (password = <name>-password-1): tech1 (township1), tech2
// (township2), tech3 (township1, changes its password), lock1 (locked out).
import { start, pageFetch } from './browser.mjs';
import { execSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const env = (k) => {
  if (!process.env[k]) throw new Error(`${k} is not set`);
  return process.env[k];
};
const base = env('HUREN_URL');
const study = env('WEB_STUDY');
const files = fs
  .readdirSync(env('WEB_FILES'))
  .filter((f) => f.endsWith('.dcm'))
  .map((f) => path.join(env('WEB_FILES'), f))
  .sort();
const pw = (u) => `${u}-password-1`;

const t = await start('township', { base, tmp: env('WEB_TMP') });
const hash = (page) => page.evaluate(() => location.hash);
const onLogin = (page) => t.waitFor(page, () => location.hash.startsWith('#/login') && !!document.querySelector('#login-form'));

try {
  // ---- no session: every page goes to the login ----
  const anon = await t.newPage(true);
  for (const route of ['/', '/township', `/township/${study}`, '/account', '/reader', '/office', '/recognition', '/nowhere']) {
    await t.open(anon, route);
    t.check(`no session: #${route} shows the login`, await onLogin(anon), await hash(anon));
  }
  await t.shot(anon, 'login');
  t.check('the login page is in Chinese by default', (await anon.$eval('#login-submit', (e) => e.textContent)).includes('登录'));
  const noSession = await pageFetch(anon, '/api/v1/exams');
  t.checkEq('no session: the API answers 401', 401, noSession.status);

  // ---- wrong password, lockout ----
  let r = await t.login(anon, 'tech1', 'not-the-password');
  t.check('a wrong password is refused', !r.ok);
  t.check('... with the message 用户名或密码错误', (r.error || '').includes('用户名或密码错误'), r.error);
  await t.shot(anon, 'wrong-password');
  for (let i = 0; i < 4; i++) r = await t.login(anon, 'lock1', 'wrong-password-' + i);
  t.check('4 wrong passwords: still "wrong password"', (r.error || '').includes('用户名或密码错误'), r.error);
  r = await t.login(anon, 'lock1', 'wrong-password-4');
  t.check('the 5th locks the account: the lockout message', (r.error || '').includes('锁定'), r.error);
  r = await t.login(anon, 'lock1', pw('lock1'));
  t.check('while locked the right password is refused with the lockout message', !r.ok && (r.error || '').includes('锁定'), r.error);
  await t.shot(anon, 'locked-out');

  // ---- tech1 logs in and sees only the township pages ----
  const page = await t.newPage(true);
  await t.open(page, `/township`);
  t.check('opening #/township without a session shows the login', await onLogin(page));
  r = await t.login(page, 'tech1', pw('tech1'));
  t.check('tech1 logs in', r.ok, r.error);
  t.check('... and returns to #/township', await t.waitFor(page, () => location.hash === '#/township' && !!document.querySelector('#township')), await hash(page));
  const nav = await page.$$eval('.mainnav a', (as) => as.map((a) => a.getAttribute('data-nav')));
  t.checkEq("a technician's navigation: 本院检查 and the critical-value register", '/township,/alerts', nav.join(','));
  await t.shot(page, 'township-empty');

  // ---- upload two DICOM files from the browser ----
  const input = await page.$('#upload-files');
  await input.uploadFile(...files);
  const stored = await t.waitFor(
    page,
    (n) => document.querySelectorAll('#uploads tr[data-state="stored"]').length === n,
    files.length,
    30000
  );
  t.check(`the ${files.length} files are stored (per-file state)`, stored,
    await page.$$eval('#uploads tr[data-upload]', (rs) => rs.map((r) => r.dataset.state).join(',')));
  const progress = await page.$$eval('#uploads progress', (ps) => ps.map((p) => p.value >= p.max));
  t.check('... each progress bar full', progress.length === files.length && progress.every(Boolean));
  const arrived = await t.waitFor(page, (s) => !!document.querySelector(`#exams tr[data-study="${s}"]`), study, 20000);
  t.check('the study arrives in the list', arrived);
  const instances = await page.$eval(`#exams tr[data-study="${study}"] td.num`, (td) => td.textContent.trim()).catch(() => '');
  t.checkEq('... with its 2 images', '2', instances);
  const st0 = await page.$eval(`#exams tr[data-study="${study}"]`, (tr) => tr.dataset.status);
  t.checkEq('... received, not reported yet', 'received', st0);
  t.checkEq("... the patient's name as written in Chinese", '李四',
    await page.$eval(`#exams tr[data-study="${study}"] td:nth-child(2) a`, (a) => a.textContent.trim()).catch(() => ''));
  t.check('... a turnaround clock runs while it waits', /\d/.test(await page.$eval(`#exams td[data-clock="${study}"]`, (td) => td.textContent).catch(() => '')));
  // the thumbnail resource comes with the rendered-resources work (wt-render):
  // where the hub serves it, the row's image must be drawn and not blank
  const thumb = await pageFetch(page, `/dicomweb/studies/${study}/thumbnail`);
  if (thumb.status === 200) {
    const drawn = await t.waitFor(page, (s) => {
      const img = document.querySelector(`#exams tr[data-study="${s}"] img.thumb`);
      return img && img.complete && img.naturalWidth > 0;
    }, study);
    t.check('the thumbnail is drawn', drawn);
    // inside the image only (its rounded corners show the row behind)
    const box = await (await page.$(`#exams tr[data-study="${study}"] img.thumb`)).boundingBox();
    const px = await t.notUniform(page, { x: box.x + 6, y: box.y + 6, width: box.width - 12, height: box.height - 12 });
    t.check('... and not uniform', !px.uniform, JSON.stringify(px));
  } else {
    console.log(`# thumbnail resource answers ${thumb.status}: not checked (rendered resources not in this tree)`);
  }
  await t.shot(page, 'uploaded');

  // a file that is not DICOM: its own row with the reason, the others unchanged
  await (await page.$('#upload-files')).uploadFile(env('WEB_BAD'));
  const failed = await t.waitFor(page, () => !!document.querySelector('#uploads tr[data-state="failed"] .upload-reason'), undefined, 20000);
  t.check('a file that is not DICOM fails with a reason on its row', failed);
  const reason = await page.$eval('#uploads tr[data-state="failed"] .upload-reason', (e) => e.textContent).catch(() => '');
  t.check('... the reason is shown in Chinese', /[\u4e00-\u9fff]/.test(reason), reason);
  t.check('... its row is highlighted', await page.$eval('#uploads tr[data-state="failed"]', (tr) => tr.classList.contains('flagged')).catch(() => false));
  await t.shot(page, 'upload-failed-file');

  // an instance of the same study with another patient: stored with a
  // warning on its row, the exam's row highlighted as a patient conflict
  await (await page.$('#upload-files')).uploadFile(env('WEB_CONFLICT'));
  const warned = await t.waitFor(page, () => !!document.querySelector('#uploads tr[data-state="warning"] .upload-reason'), undefined, 20000);
  t.check('a file of another patient for the same study: stored with a warning', warned,
    await page.$$eval('#uploads tr[data-upload]', (rs) => rs.map((r) => r.dataset.state).join(',')));
  t.check('... the warning says the patient differs', (await page.$eval('#uploads tr[data-state="warning"] .upload-reason', (e) => e.textContent).catch(() => '')).includes('患者信息'));
  await page.click('#refresh');
  const flagged = await t.waitFor(page, (s) => {
    const tr = document.querySelector(`#exams tr[data-study="${s}"]`);
    return tr && tr.dataset.flagged === '1' && tr.classList.contains('flagged') && !!tr.querySelector('[data-badge="conflict"]');
  }, study);
  t.check("... the exam's row is highlighted as a patient conflict", flagged);
  await t.shot(page, 'patient-conflict');

  // ---- the report comes back ----
  execSync(env('WEB_SIGN_CMD'), { stdio: 'inherit', shell: '/bin/bash' });
  await page.click('#refresh');
  const reported = await t.waitFor(page, (s) => {
    const tr = document.querySelector(`#exams tr[data-study="${s}"]`);
    return tr && tr.dataset.status === 'reported';
  }, study, 20000);
  t.check('the state changes to reported', reported,
    await page.$eval(`#exams tr[data-study="${study}"]`, (tr) => tr.dataset.status).catch(() => '?'));
  t.check('... shown as 已出报告', (await page.$eval(`#exams tr[data-study="${study}"] [data-badge="status"]`, (e) => e.textContent)).includes('已出报告'));
  await page.click(`#exams tr[data-study="${study}"]`);
  t.check('opening the exam shows its report', await t.waitFor(page, () => !!document.querySelector('#report-impression')));
  const impression = await page.$eval('#report-impression', (e) => e.textContent).catch(() => '');
  t.checkEq('... the signed impression', env('WEB_IMPRESSION'), impression);
  t.check('... the signature verified (badge)', await t.waitFor(page, () => {
    const b = document.querySelector('#verify-badge');
    return b && b.dataset.verify === 'ok';
  }), await page.$eval('#verify-badge', (b) => b.dataset.verify + ' ' + b.title).catch(() => 'no badge'));
  t.check('... the URL names the exam', (await hash(page)) === `#/township/${study}`);
  t.check('... the turnaround (arrival to signature) is shown', /\d/.test(await page.$eval('#exam-turnaround', (e) => e.textContent).catch(() => '')));
  t.check('... no clock on a reported row', (await page.$eval(`#exams td[data-clock="${study}"]`, (td) => td.textContent.trim())) === '');
  await t.shot(page, 'report');
  const shareHref = await page.$eval('#report-share', (a) => a.getAttribute('href')).catch(() => null);
  t.check('a final report offers the patient share page of its exam', shareHref === `#/share/${study}`, String(shareHref));
  const pdfHref = await page.$eval('#report-pdf', (a) => a.getAttribute('href'));
  const pdf = await pageFetch(page, pdfHref);
  t.check('the PDF link downloads a PDF', pdf.status === 200 && pdf.type.startsWith('application/pdf') && pdf.head.startsWith('%PDF-'),
    `${pdf.status} ${pdf.type} ${pdf.head.slice(0, 8)}`);
  const jwsHref = pdfHref.replace(/\/pdf$/, '/jws');
  const jws = await pageFetch(page, jwsHref);
  t.check('the JWS link downloads a compact JWS', jws.status === 200 && jws.type.startsWith('application/jose') && /^eyJ[A-Za-z0-9_.-]+$/.test(jws.head) && jws.size > 200,
    `${jws.status} ${jws.type} ${jws.head.slice(0, 20)}`);
  await page.reload({ waitUntil: 'domcontentloaded' });
  t.check('a reload keeps the session and the exam open', await t.waitFor(page, () => !!document.querySelector('#report-impression')));

  // ---- English switch, remembered ----
  await page.click('#lang-switch');
  t.check('English on request', await t.waitFor(page, () => document.querySelector('.mainnav a').textContent.includes('Our exams')));
  await page.reload({ waitUntil: 'domcontentloaded' });
  t.check('... remembered across a reload', await t.waitFor(page, () => {
    const a = document.querySelector('.mainnav a');
    return a && a.textContent.includes('Our exams');
  }));
  await t.shot(page, 'english');
  await page.click('#lang-switch');
  t.check('... and back to Chinese', await t.waitFor(page, () => document.querySelector('.mainnav a').textContent.includes('本院检查')));

  // ---- what a technician may not open ----
  for (const route of ['/reader', '/auditor', '/office', '/audit', '/users', '/recognition']) {
    await t.open(page, route);
    const shown = await page.evaluate(() => (document.querySelector('#no-access') ? 'no-access' : document.querySelector('#not-found') ? 'not-found' : 'page'));
    // a page that exists says "no access"; one not built in this tree is not found; never the page
    t.check(`a technician opening #${route}: ${shown}`, shown === 'no-access' || shown === 'not-found', shown);
  }
  await t.shot(page, 'no-access');
  const api = async (url) => (await pageFetch(page, url)).status;
  t.check("a technician's session: the center's worklist is refused (403)", (await api('/api/v1/worklists/imaging')) === 403);
  t.check('... the recognition statistics are refused (403/404)', [403, 404].includes(await api('/api/v1/stats/recognition')));
  t.check('... the metrics are refused (403)', (await api('/metrics')) === 403);
  t.check("... another hospital's exams are refused (403)", (await api('/api/v1/exams?hospital=township2')) === 403);

  // ---- another township sees nothing of it ----
  const other = await t.newPage(true);
  await t.open(other, '/login');
  r = await t.login(other, 'tech2', pw('tech2'));
  t.check('tech2 (township2) logs in', r.ok, r.error);
  await t.waitFor(other, () => !!document.querySelector('#exams, #exams-empty'));
  t.check("... tech1's study is not in tech2's list", !(await other.$(`#exams tr[data-study="${study}"]`)));
  await t.open(other, `/township/${study}`);
  t.check('... opening it by address: not found', await t.waitFor(other, () => {
    const d = document.querySelector('#exam-detail .error');
    return d && d.textContent.length > 0;
  }));
  t.checkEq('... the API answers 404', 404, (await pageFetch(other, `/api/v1/exams/${study}`)).status);
  t.checkEq("... and the PDF's URL too", 404, (await pageFetch(other, pdfHref)).status);
  t.checkEq('... and the verification', 404, (await pageFetch(other, pdfHref.replace(/\/pdf$/, '/verify'))).status);
  await t.shot(other, 'other-township');

  // ---- logout; logout everywhere ----
  await page.click('#logout');
  t.check('logout: back to the login', await onLogin(page));
  await t.open(page, '/township');
  t.check('... and #/township needs a login again', await onLogin(page));
  t.checkEq('... the API answers 401', 401, (await pageFetch(page, '/api/v1/exams')).status);

  const a = await t.newPage(true);
  const b = await t.newPage(true);
  await t.open(a, '/login');
  await t.open(b, '/login');
  t.check('tech1 in two browsers', (await t.login(a, 'tech1', pw('tech1'))).ok && (await t.login(b, 'tech1', pw('tech1'))).ok);
  await t.open(a, '/account');
  await a.waitForSelector('#account-logout-all');
  await t.shot(a, 'account');
  await a.click('#account-logout-all');
  t.check('logout everywhere: this browser shows the login', await onLogin(a));
  t.checkEq('... the other browser\'s session is revoked (401)', 401, (await pageFetch(b, '/api/v1/me')).status);
  await b.click('#refresh');
  t.check('... and its page goes to the login', await onLogin(b));

  // ---- password change ----
  const c = await t.newPage(true);
  await t.open(c, '/login');
  t.check('tech3 logs in', (await t.login(c, 'tech3', pw('tech3'))).ok);
  await t.open(c, '/account');
  await c.waitForSelector('#password-form');
  const fill = async (oldPw, newPw, newPw2) => {
    for (const [sel, v] of [['#pw-old', oldPw], ['#pw-new', newPw], ['#pw-new2', newPw2]]) await t.fill(c, sel, v);
    await c.click('#pw-submit');
  };
  await fill('wrong-old-password', 'tech3-new-password-2', 'tech3-new-password-2');
  t.check('a wrong current password: 原密码错误', await t.waitFor(c, () => {
    const e = document.querySelector('#pw-error');
    return e && e.textContent.includes('原密码错误');
  }));
  await fill(pw('tech3'), 'tech3-new-password-2', 'tech3-other-password');
  t.check('two different new passwords: refused in the page', await t.waitFor(c, () => {
    const e = document.querySelector('#pw-error');
    return e && e.textContent.includes('不一致');
  }));
  await t.shot(c, 'password-errors');
  await fill(pw('tech3'), 'tech3-new-password-2', 'tech3-new-password-2');
  t.check('the change sends the user to the login with a notice', await t.waitFor(c, () => !!document.querySelector('#login-info')));
  r = await t.login(c, 'tech3', pw('tech3'));
  t.check('... the old password no longer works', !r.ok);
  r = await t.login(c, 'tech3', 'tech3-new-password-2');
  t.check('... the new one does', r.ok, r.error);
  await t.shot(c, 'after-password-change');
} catch (e) {
  await t.abort(e);
}
await t.finish();
