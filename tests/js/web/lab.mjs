// Lab results in chromium (run by tests/integration/test_web_lab.sh, which
// starts huren, sends the ORU messages over MLLP and passes):
//   HUREN_URL  the hub
//   WEB_UK     township1's reviewed metabolic panel (critical potassium HH)
//   WEB_UG     township1's glucose/sodium report, final at the township,
//              the sodium corrected 150 -> 141
//   WEB_U2     township2's lab report
//   WEB_NID    the patient's national ID (PID-3, type ID)
//   WEB_PIN    the lab reader's signing PIN
//   WEB_TMP    a directory for the browser profile
// Users (password = <name>-password-1): tech1 (technician, township1), tech2
// (technician, township2), labr (reader, county lab center), extb
// (external doctor, township2).
import { start } from './browser.mjs';

const env = (k) => {
  if (!process.env[k]) throw new Error(`${k} is not set`);
  return process.env[k];
};
const base = env('HUREN_URL');
const UK = env('WEB_UK');
const UG = env('WEB_UG');
const U2 = env('WEB_U2');
const pin = env('WEB_PIN');
const pw = (u) => `${u}-password-1`;
const t = await start('lab', { base, tmp: env('WEB_TMP') });

// "rgb(r, g, b)" -> [r, g, b]
const rgb = (s) => (String(s).match(/\d+/g) || []).slice(0, 3).map(Number);
const reddish = (s) => { const [r, g, b] = rgb(s); return r > 150 && g < 90 && b < 90; };
const bluish = (s) => { const [r, g, b] = rgb(s); return b > 150 && r < 90; };

try {
  // ---- township1's technician: the 检验结果 tab ----
  const te = await t.newPage(true);
  let r = await t.login(te, 'tech1', pw('tech1'));
  t.check('tech1 logs in', r.ok, r.error);
  await t.open(te, '/township');
  t.check('the township page has the 检验结果 tab', await t.waitFor(te, () => /检验结果/.test((document.querySelector('#tab-lab') || {}).textContent || '')));
  await te.click('#tab-lab');
  t.check('the tab lists the hospital\'s two lab reports',
    await t.waitFor(te, (a) => a.every((u) => !!document.querySelector(`#lab-reports tr[data-lab="${u}"]`)), [UK, UG]));
  t.check('... not township2\'s', !(await te.$(`#lab-reports tr[data-lab="${U2}"]`)));
  t.checkEq('the potassium report is marked critical', '1',
    await te.$eval(`#lab-reports tr[data-lab="${UK}"] [data-critical]`, (e) => e.dataset.critical));
  await t.shot(te, 'township-lab-list');
  await te.click(`#lab-reports tr[data-lab="${UK}"] a`);
  t.check('opening it shows the lab result table',
    await t.waitFor(te, () => !!document.querySelector('#lab-detail #lab-obs tr[data-code="2823-3"]')));
  const k = await te.$eval('#lab-obs tr[data-code="2823-3"]', (tr) => ({
    cls: tr.className, flag: tr.dataset.flag,
    value: tr.querySelector('[data-field="value"]').textContent.trim(),
    colour: getComputedStyle(tr.querySelector('[data-field="value"]')).color,
    flagColour: getComputedStyle(tr.querySelector('[data-field="flag"]')).color,
    bg: getComputedStyle(tr).backgroundColor,
    text: tr.textContent,
  }));
  t.checkEq('potassium 6.9', '6.9', k.value);
  t.checkEq('... flag HH', 'HH', k.flag);
  t.check('... value and flag in red', reddish(k.colour) && reddish(k.flagColour), `${k.colour} ${k.flagColour}`);
  t.check('... a critical row (shaded)', /lab-critical/.test(k.cls) && rgb(k.bg).length === 3 && k.bg !== 'rgba(0, 0, 0, 0)', `${k.cls} ${k.bg}`);
  t.check('... unit, range, performing lab shown', /mmol\/L/.test(k.text) && /3\.5-5\.3/.test(k.text) && /检验科/.test(k.text), k.text);
  const na = await te.$eval('#lab-obs tr[data-code="2951-2"]', (tr) => ({ flag: tr.dataset.flag, colour: getComputedStyle(tr.querySelector('[data-field="value"]')).color }));
  t.checkEq('sodium 140 has no flag', '', na.flag);
  t.check('... and is not red', !reddish(na.colour), na.colour);
  t.check('the header names the patient and the order',
    await te.$eval('#lab-head', (e) => /王五/.test(e.textContent) && /基础代谢/.test(e.textContent) && /F100/.test(e.textContent)));
  await t.shot(te, 'township-lab-potassium');

  // the glucose/sodium report: low glucose in blue, the corrected sodium
  await te.click(`#lab-reports tr[data-lab="${UG}"] a`);
  t.check('the glucose report opens', await t.waitFor(te, () => !!document.querySelector('#lab-view #lab-obs tr[data-code="2345-7"]')));
  await t.waitFor(te, (u) => document.querySelector('#lab-view').dataset.uid === u, UG);
  const glu = await te.$eval('#lab-obs tr[data-code="2345-7"]', (tr) => ({ flag: tr.dataset.flag, colour: getComputedStyle(tr.querySelector('[data-field="value"]')).color }));
  t.checkEq('glucose flag L', 'L', glu.flag);
  t.check('... in blue', bluish(glu.colour), glu.colour);
  const corr = await te.$eval('#lab-obs tr[data-code="2951-2"]', (tr) => ({
    value: tr.querySelector('[data-field="value"]').textContent.trim(),
    status: tr.querySelector('[data-field="status"]').textContent.trim(),
    title: tr.querySelector('[data-field="status"]').title,
  }));
  t.checkEq('the sodium shows the corrected value', '141', corr.value);
  t.checkEq('... status 已更正', '已更正', corr.status);
  t.check('... the superseded value on hover (title)', /150/.test(corr.title), corr.title);
  await te.click('#lab-history-toggle');
  t.check('expanded: the superseded row with 150 mmol/L',
    await t.waitFor(te, () => { const s = document.querySelector('#lab-obs tr.lab-superseded'); return !!s && /150 mmol\/L/.test(s.textContent); }));
  await t.shot(te, 'township-lab-corrected');

  // the reviewed report is also one of the hospital's exams (a worklist item)
  await t.open(te, '/township');
  t.check('the exams list has the reviewed lab report (LAB)',
    await t.waitFor(te, (u) => { const tr = document.querySelector(`#exams tr[data-study="${u}"]`); return !!tr && /LAB/.test(tr.textContent); }, UK));
  await te.click(`#exams tr[data-study="${UK}"] a`);
  t.check('... its detail shows the lab result table',
    await t.waitFor(te, () => !!document.querySelector('#exam-detail #lab-obs tr[data-code="2823-3"][data-flag="HH"]')));
  await t.shot(te, 'township-exam-lab');

  // ---- hostile: township2's technician sees neither ----
  const t2 = await t.newPage(true);
  r = await t.login(t2, 'tech2', pw('tech2'));
  t.check('tech2 logs in', r.ok, r.error);
  await t.open(t2, '/township/lab');
  t.check('tech2\'s list has township2\'s report', await t.waitFor(t2, (u) => !!document.querySelector(`#lab-reports tr[data-lab="${u}"]`), U2));
  t.check('... not township1\'s', !(await t2.$(`#lab-reports tr[data-lab="${UK}"]`)) && !(await t2.$(`#lab-reports tr[data-lab="${UG}"]`)));
  await t.open(t2, `/township/lab/${UK}`);
  t.check('a direct link to township1\'s report: not found, no values',
    await t.waitFor(t2, () => /未找到/.test((document.querySelector('#lab-error') || {}).textContent || '')) && !(await t2.$('#lab-obs')));
  await t.shot(t2, 'township2-denied');

  // ---- the lab center's reader claims, reviews, signs ----
  const rd = await t.newPage(true);
  r = await t.login(rd, 'labr', pw('labr'));
  t.check('the lab reader logs in', r.ok, r.error);
  await t.open(rd, '/reader');
  t.check('the potassium report is on the lab worklist (LAB)',
    await t.waitFor(rd, (u) => { const tr = document.querySelector(`tr[data-study="${u}"]`); return !!tr && /LAB/.test(tr.textContent); }, UK));
  await rd.click(`button[data-claim="${UK}"]`);
  t.check('claim opens the reading screen', await t.waitFor(rd, (u) => location.hash === `#/reader/${u}` && !!document.querySelector('#reading-screen'), UK));
  t.check('... with the lab view, not the OHIF frame',
    await t.waitFor(rd, () => !!document.querySelector('#lab-obs tr[data-code="2823-3"]')) && !(await rd.$('#viewer-frame')) && !(await rd.$('#ecg-canvas')));
  t.checkEq('... the reader sees the value 6.9 HH', '6.9 HH',
    await rd.$eval('#lab-obs tr[data-code="2823-3"]', (tr) => `${tr.querySelector('[data-field="value"]').textContent.trim()} ${tr.dataset.flag}`));
  t.check('... and the report editor beside it', await t.waitFor(rd, () => !!document.querySelector('#rpt-findings')));
  await t.fill(rd, '#rpt-findings', '血钾 6.9 mmol/L，复核确认。');
  await t.fill(rd, '#rpt-impression', '高钾血症（危急值），已电话通知送检单位。');
  await t.fill(rd, '#sign-pin', pin);
  await t.shot(rd, 'lab-reading');
  await rd.click('#sign-btn');
  t.check('the lab reader signs', await t.waitFor(rd, () => /已签名/.test((document.querySelector('#reader-info') || {}).textContent || '')));
  await t.shot(rd, 'lab-signed');

  // ---- a doctor of township2: recognition of the lab results ----
  const ex = await t.newPage(true);
  r = await t.login(ex, 'extb', pw('extb'));
  t.check('the township2 doctor logs in', r.ok, r.error);
  await t.open(ex, '/recognition');
  t.check('the recognition page', await t.waitFor(ex, () => !!document.querySelector('#rec-search-form')));
  await t.fill(ex, '#rec-id', env('WEB_NID'));
  await ex.click('#rec-search');
  t.check('the lab results are listed',
    await t.waitFor(ex, (u) => !!document.querySelector(`#rec-lab tr[data-result="${u}~LAB-K"]`), UK));
  const kr = await ex.$eval(`#rec-lab tr[data-result="${UK}~LAB-K"]`, (tr) => ({ reason: tr.dataset.reason, text: tr.textContent }));
  t.checkEq('potassium: recognizable', 'recognizable', kr.reason);
  t.check('... with value, unit, range and validity', /6\.9/.test(kr.text) && /mmol\/L/.test(kr.text) && /3\.5-5\.3/.test(kr.text) && /\d{4}-\d{2}-\d{2}/.test(kr.text), kr.text);
  const gr = await ex.$eval(`#rec-lab tr[data-result="${UG}~LAB-GLU"]`, (tr) => ({ reason: tr.dataset.reason, text: tr.textContent })).catch(() => null);
  t.check('the township-final glucose: not recognizable (no reviewing center)', gr && gr.reason === 'qc_lapsed', JSON.stringify(gr));
  await t.shot(ex, 'recognition-lab');
  await ex.click(`#rec-lab tr[data-result="${UK}~LAB-K"] button[data-open-lab]`);
  t.check('the potassium opens in the lab view',
    await t.waitFor(ex, () => !!document.querySelector('#rec-detail[data-kind="lab"] #lab-obs tr[data-code="2823-3"]')));
  await ex.click('#rec-accept');
  await ex.click('#rec-submit');
  t.check('accept is recorded', await t.waitFor(ex, () => !!document.querySelector('#rec-saved') && !!document.querySelector('#rec-history li[data-decision="accept"]')));
  await t.shot(ex, 'recognition-lab-accepted');
  await ex.click(`#rec-lab tr[data-result="${UK}~LAB-NA"] button[data-open-lab]`);
  t.check('the sodium opens', await t.waitFor(ex, (u) => (document.querySelector('#rec-detail') || {}).dataset?.result === `${u}~LAB-NA`, UK));
  await ex.click('#rec-reject');
  await t.waitFor(ex, () => !!document.querySelector('#rec-reason'));
  await ex.select('#rec-reason', 'fast_changing_value');
  await ex.click('#rec-submit');
  t.check('reject with a reason is recorded',
    await t.waitFor(ex, () => !!document.querySelector('#rec-history li[data-decision="reject"][data-reason="fast_changing_value"]')));
  await t.shot(ex, 'recognition-lab-rejected');

  // ---- English switch: the lab view's strings come from the catalogues ----
  const sw = await te.$('#lang-switch');
  if (sw) {
    await sw.click();
    await t.open(te, `/township/lab/${UK}`);
    t.check('English: the lab view speaks English', await t.waitFor(te, () => /Reference range/.test((document.querySelector('#lab-obs') || {}).textContent || '')));
    await t.shot(te, 'township-lab-en');
  }
} catch (e) {
  await t.abort(e);
}
await t.finish();
