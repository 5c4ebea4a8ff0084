// The county reader's and the auditor's pages in chromium (run by
// tests/integration/test_web_reader.sh, which starts huren and passes):
//   HUREN_URL      the hub
//   WEB_STUDY      the CT the township sends while the reader watches
//   WEB_PRIOR      the person's prior exam from another hospital
//   WEB_PIN        the signing PIN of rd1 and aud1
//   WEB_STORE_CMD  a shell command: storescu of the CT, its completion, the
//                  person links
//   WEB_TMP        a directory for the browser profile
// Users (password = <name>-password-1): rd1 (reader, imaging), aud1
// (auditor, imaging), tech1 (technician, township1).
import { start, pageFetch } from './browser.mjs';
import { execSync } from 'node:child_process';

const env = (k) => {
  if (!process.env[k]) throw new Error(`${k} is not set`);
  return process.env[k];
};
const base = env('HUREN_URL');
const study = env('WEB_STUDY');
const prior = env('WEB_PRIOR');
const pin = env('WEB_PIN');
const pw = (u) => `${u}-password-1`;
const COMMENT = '请补充双侧基底节区的描述，并与外院既往片比较。';
const OHIF_MS = 90000;

const t = await start('reader', { base, tmp: env('WEB_TMP'), width: 1400, height: 900 });
// Goes to a full-window route (no shell header: the harness's open() waits
// for the shell) and waits for its screen.
const openFull = async (page, route, sel) => {
  await page.evaluate((r) => { location.hash = '#' + r; }, route);
  return t.waitFor(page, (s) => !!document.querySelector(s), sel);
};
const report = async (page) => {
  const ex = await page.evaluate(async (s) => (await fetch(`/api/v1/exams/${s}`)).json(), study);
  const r = (ex.reports || []).slice(-1)[0];
  return r ? page.evaluate(async (id) => (await fetch(`/api/v1/reports/${id}`)).json(), r.id) : null;
};

// The OHIF frame has drawn the study: a canvas inside the iframe whose
// pixels (screenshot of the viewport) are not uniform. Polls until OHIF_MS.
async function imageDrawn(page, step) {
  const deadline = Date.now() + OHIF_MS;
  let last = null;
  while (Date.now() < deadline) {
    const frameEl = await page.$('#viewer-frame');
    const frame = frameEl ? await frameEl.contentFrame() : null;
    if (frame) {
      const box = await frame.evaluate(() => {
        const cs = [...document.querySelectorAll('canvas')].filter((c) => c.width > 64 && c.height > 64);
        if (!cs.length) return null;
        const r = cs.sort((a, b) => b.width * b.height - a.width * a.height)[0].getBoundingClientRect();
        return { x: r.x, y: r.y, width: r.width, height: r.height };
      }).catch(() => null);
      if (box && box.width > 32 && box.height > 32) {
        const fr = await frameEl.boundingBox();
        const clip = { x: fr.x + box.x + 4, y: fr.y + box.y + 4, width: Math.min(box.width, fr.width) - 8, height: Math.min(box.height, fr.height) - 8 };
        last = await t.notUniform(page, clip);
        if (!last.uniform) {
          await t.shot(page, step);
          return last;
        }
      }
    }
    await new Promise((r) => setTimeout(r, 1500));
  }
  await t.shot(page, step + '-timeout');
  return last || { uniform: true };
}

try {
  // ---- the reader's worklist, live ----
  const rd = await t.newPage(true);
  let r = await t.login(rd, 'rd1', pw('rd1'));
  t.check('rd1 logs in', r.ok, r.error);
  await t.open(rd, '/reader');
  t.check('the worklist is shown', await t.waitFor(rd, () => !!document.querySelector('#wl-table')));
  t.check('... its event stream is open', await t.waitFor(rd, () => document.querySelector('#reader-worklist').dataset.live === '1'));
  t.check('... in Chinese (阅片工作台)', (await rd.$eval('#reader-worklist h2', (e) => e.textContent)).includes('阅片工作台'));
  t.check('... the prior DX is waiting', await t.waitFor(rd, (s) => !!document.querySelector(`tr[data-study="${s}"]`), prior));
  t.check('... no row of the CT yet', !(await rd.$(`tr[data-study="${study}"]`)));
  await t.shot(rd, 'worklist-before');
  await rd.evaluate(() => { window.__noReload = 1; });
  execSync(env('WEB_STORE_CMD'), { stdio: 'inherit' });
  t.check('the CT appears while the page is open (server-sent events)',
    await t.waitFor(rd, (s) => !!document.querySelector(`tr[data-study="${s}"][data-state="ready"]`), study));
  t.check('... without a reload of the page', await rd.evaluate(() => window.__noReload === 1));
  t.check('... with its priority and due time', await rd.$eval(`tr[data-study="${study}"]`,
    (tr) => !!tr.querySelector('[data-priority]') && !!tr.querySelector('[data-due]')));
  await t.shot(rd, 'worklist-live');
  // filters: modality DX leaves the CT out
  await rd.select('#f-modality', 'DX');
  t.check('filter modality DX: the CT is not listed, the DX is', await t.waitFor(rd, ([s, p]) =>
    !document.querySelector(`tr[data-study="${s}"]`) && !!document.querySelector(`tr[data-study="${p}"]`), [study, prior]));
  await rd.select('#f-modality', '');
  await t.waitFor(rd, (s) => !!document.querySelector(`tr[data-study="${s}"]`), study);

  // ---- claim: the reading screen, OHIF draws ----
  await rd.click(`button[data-claim="${study}"]`);
  t.check('claim opens the reading screen', await t.waitFor(rd, (s) => location.hash === `#/reader/${s}` && !!document.querySelector('#reading-screen'), study));
  t.check('... with an editor on a new draft', await t.waitFor(rd, () => !!document.querySelector('#rpt-findings')));
  t.checkEq('... and OHIF on the study', `/viewer/viewer?StudyInstanceUIDs=${study}`,
    await rd.$eval('#viewer-frame', (f) => new URL(f.src).pathname + decodeURIComponent(new URL(f.src).search)));
  let px = await imageDrawn(rd, 'reading-viewer');
  t.check('OHIF draws the image (canvas pixels not uniform)', !px.uniform, JSON.stringify(px));
  t.check('the prior DX from the county hospital is listed beside it',
    await t.waitFor(rd, (p) => !!document.querySelector(`#priors button[data-prior="${p}"]`), prior));
  await rd.click(`#priors button[data-prior="${prior}"]`);
  t.check('... and opens in the viewer', await t.waitFor(rd, (p) => document.querySelector('#viewer-frame').dataset.study === p, prior));
  px = await imageDrawn(rd, 'prior-in-viewer');
  t.check('... drawn', !px.uniform, JSON.stringify(px));
  await rd.click(`#priors button[data-open-study="${study}"]`);
  await t.waitFor(rd, (s) => document.querySelector('#viewer-frame').dataset.study === s, study);

  // ---- template, phrase, autosave across a reload ----
  await t.waitFor(rd, () => document.querySelectorAll('#template-select option').length > 1);
  const opts = await rd.$$eval('#template-select option', (os) => os.map((o) => [o.value, o.textContent]));
  t.check('the templates for CT are offered (头颅CT平扫), not those of DX', opts.some((o) => o[1] === '头颅CT平扫') && !opts.some((o) => o[1] === '胸部正位片'), JSON.stringify(opts));
  await rd.select('#template-select', 'ct-head');
  t.check('the template fills the findings', await t.waitFor(rd, () => document.querySelector('#rpt-findings').value.startsWith('脑实质密度均匀')));
  await rd.focus('#rpt-impression');
  await rd.$eval('#rpt-impression', (e) => { e.selectionStart = e.selectionEnd = e.value.length; });
  await rd.click('#phrases button.phrase[data-phrase="建议结合临床及其他相关检查。"]');
  t.check('a phrase is inserted at the cursor of the impression',
    await t.waitFor(rd, () => document.querySelector('#rpt-impression').value.endsWith('颅脑CT平扫未见明显异常。建议结合临床及其他相关检查。')));
  const typed = '脑实质密度均匀，灰白质分界清楚。左侧基底节区见小点状低密度影。';
  await t.fill(rd, '#rpt-findings', typed);
  await rd.click('#rpt-critical');
  t.check('the draft autosaves (no button)', await t.waitFor(rd, () => /已自动保存/.test(document.querySelector('#autosave-status').textContent)));
  let rep = await report(rd);
  t.checkEq('... the server has the typed findings', typed, rep && rep.draft && rep.draft.findings);
  t.checkEq('... and the critical flag', true, rep && rep.draft && rep.draft.critical);
  await t.shot(rd, 'draft-saved');
  await rd.reload({ waitUntil: 'domcontentloaded' });
  t.check('after a reload the draft is back', await t.waitFor(rd, (v) => {
    const f = document.querySelector('#rpt-findings');
    return f && f.value === v && document.querySelector('#rpt-critical').checked;
  }, typed));
  await t.shot(rd, 'draft-after-reload');

  // ---- sign with the PIN (Ctrl+Enter) ----
  await t.fill(rd, '#sign-pin', '000000');
  await rd.click('#sign-btn');
  t.check('a wrong PIN signs nothing: the error is shown', await t.waitFor(rd, () => !!document.querySelector('#reader-error')));
  t.checkEq('... the report is still a draft', 'draft', (await report(rd)).status);
  await t.fill(rd, '#sign-pin', pin);
  await rd.focus('#rpt-findings');
  await rd.keyboard.down('Control');
  await rd.keyboard.press('Enter');
  await rd.keyboard.up('Control');
  t.check('Ctrl+Enter signs: the signed message', await t.waitFor(rd, () => /已签名/.test((document.querySelector('#reader-info') || {}).textContent || '')));
  rep = await report(rd);
  t.checkEq('... version 1, preliminary (imaging needs an auditor)', 'preliminary 1', rep && `${rep.status} ${rep.versions.length}`);
  await t.shot(rd, 'signed');

  // ---- the auditor: queue, side by side, return with a comment ----
  const au = await t.newPage(true);
  r = await t.login(au, 'aud1', pw('aud1'));
  t.check('aud1 logs in', r.ok, r.error);
  await t.open(au, '/auditor');
  t.check('the co-sign queue lists the CT', await t.waitFor(au, (s) => !!document.querySelector(`#queue-table tr[data-study="${s}"]`), study));
  await t.shot(au, 'cosign-queue');
  await au.click(`a[data-review="${study}"]`);
  t.check('review: the preliminary text beside the images', await t.waitFor(au, (v) =>
    !!document.querySelector('#pending-text') && document.querySelector('#pending-text [data-field="findings"]').textContent === v, typed));
  t.check('... the critical flag shown', !!(await au.$('#pending-text [data-critical]')));
  px = await imageDrawn(au, 'review-side-by-side');
  t.check('... and the image drawn', !px.uniform, JSON.stringify(px));
  await t.fill(au, '#return-comment', COMMENT);
  await au.click('#return-btn');
  t.check('return for revision: confirmed to the auditor', await t.waitFor(au, () => /已退回/.test((document.querySelector('#auditor-info') || {}).textContent || '')));
  t.checkEq('... the report is a draft again', 'draft', (await report(au)).status);
  await t.shot(au, 'returned');

  // ---- the reader sees the comment, revises, signs again ----
  await t.open(rd, '/reader');
  t.check("the item is rd1's again", await t.waitFor(rd, (s) => !!document.querySelector(`a[data-open="${s}"]`), study));
  await rd.click(`a[data-open="${study}"]`);
  t.check('the auditor\'s comment is shown to the reader', await t.waitFor(rd, (c) =>
    [...document.querySelectorAll('#returns .return-comment')].some((p) => p.textContent.includes(c)), COMMENT));
  t.check('... with the signed text back in the editor', await t.waitFor(rd, (v) => (document.querySelector('#rpt-findings') || {}).value === v, typed));
  await t.shot(rd, 'return-comment');
  const revised = typed + '双侧基底节区未见出血。与外院2025-11-20片比较无明显变化。';
  await t.fill(rd, '#rpt-findings', revised);
  await t.fill(rd, '#sign-pin', pin);
  await rd.click('#sign-btn');
  t.check('the reader signs the revision', await t.waitFor(rd, () => /已签名/.test((document.querySelector('#reader-info') || {}).textContent || '')));
  rep = await report(rd);
  t.checkEq('... version 2, preliminary, with the revised text', `preliminary 2 ${revised}`, rep && `${rep.status} ${rep.versions.length} ${rep.signed.content.findings}`);

  // ---- the auditor co-signs ----
  await openFull(au, '/auditor/' + study, '#review-screen');
  t.check('the auditor sees the revised version', await t.waitFor(au, (v) =>
    !!document.querySelector('#pending-text') && document.querySelector('#pending-text [data-field="findings"]').textContent === v, revised));
  await t.fill(au, '#cosign-pin', pin);
  await au.click('#cosign-btn');
  t.check('co-signed with the PIN', await t.waitFor(au, () => /已签发/.test((document.querySelector('#auditor-info') || {}).textContent || '')));
  rep = await report(au);
  t.checkEq('... the report is final (version 3)', 'final 3', rep && `${rep.status} ${rep.versions.length}`);
  await t.shot(au, 'cosigned');

  // ---- the auditor amends the final report (takes effect at once) ----
  t.check('a final report offers the amendment', await t.waitFor(au, () => !!document.querySelector('#amend-open')));
  await au.click('#amend-open');
  await t.waitFor(au, () => !!document.querySelector('#amend-form'));
  const amended = '颅脑CT平扫未见明显异常，左侧基底节区腔隙灶可能。';
  await t.fill(au, '#amend-impression', amended);
  await t.fill(au, '#amend-reason', '补充诊断意见');
  await t.fill(au, '#amend-pin', pin);
  await au.click('#amend-btn');
  t.check('the amendment is signed', await t.waitFor(au, () => /已修订/.test((document.querySelector('#auditor-info') || {}).textContent || '')));
  rep = await report(au);
  t.checkEq('... the report is amended (version 4) with the new impression', `amended 4 ${amended}`,
    rep && `${rep.status} ${rep.versions.length} ${rep.signed.content.impression}`);
  await t.shot(au, 'amended');

  // ---- shortcuts: Alt+N claims the next waiting exam, Alt+R releases it ----
  await t.open(rd, '/reader');
  await t.waitFor(rd, (p) => !!document.querySelector(`tr[data-study="${p}"][data-state="ready"]`), prior);
  await rd.keyboard.down('Alt');
  await rd.keyboard.press('KeyN');
  await rd.keyboard.up('Alt');
  t.check('Alt+N claims the next waiting exam (the DX) and opens it', await t.waitFor(rd, (p) =>
    location.hash === `#/reader/${p}` && !!document.querySelector('#rpt-findings'), prior));
  await rd.keyboard.down('Alt');
  await rd.keyboard.press('KeyR');
  await rd.keyboard.up('Alt');
  t.check('Alt+R releases it: back on the list, waiting again', await t.waitFor(rd, (p) =>
    location.hash === '#/reader' && !!document.querySelector(`tr[data-study="${p}"][data-state="ready"]`), prior));

  // ---- the English switch; access ----
  await t.open(rd, '/reader');
  await t.waitFor(rd, () => !!document.querySelector('#lang-switch'));
  await rd.click('#lang-switch');
  t.check('English on request', await t.waitFor(rd, () => document.querySelector('#reader-worklist h2').textContent.includes('Reading worklist')));
  await t.shot(rd, 'english');
  await rd.click('#lang-switch');
  await t.open(rd, '/auditor');
  t.check('the reader may not open the co-sign queue', await t.waitFor(rd, () => !!document.querySelector('#no-access')));
  const retByReader = await pageFetch(rd, `/api/v1/reports/${rep.id}/return`, 'POST', { comment: 'x' });
  t.checkEq('... nor return a report through the API (403)', 403, retByReader.status);
  const te = await t.newPage(true);
  r = await t.login(te, 'tech1', pw('tech1'));
  t.check('tech1 logs in', r.ok, r.error);
  await t.open(te, '/reader');
  t.check('a technician may not open the reading worklist', await t.waitFor(te, () => !!document.querySelector('#no-access')));
  await t.open(te, '/reader/' + study);
  t.check('... nor the reading screen', await t.waitFor(te, () => !!document.querySelector('#no-access')));
  const tpl = await pageFetch(te, '/api/v1/report-templates');
  t.checkEq('... nor read the templates (403)', 403, tpl.status);
  const anon = await t.newPage(true);
  await t.open(anon, '/reader/' + study);
  t.check('no session: the reading screen goes to the login', await t.waitFor(anon, () => location.hash.startsWith('#/login')));
  await t.finish();
} catch (e) {
  await t.abort(e);
}
