// 阅片工作台: the county reader's worklist (filters, priorities, due times,
// overdue marks, updated live from /api/v1/events) and the reading screen:
// OHIF with the study and the person's priors beside the report editor
// (templates, phrase library, autosave, critical flag, recognition items,
// signing with the PIN, shortcuts). Decision 0034.
import { useEffect, useRef, useState } from 'preact/hooks';
import { html } from 'htm/preact';
import { t, addMessages, fmtTime, fmtDuration } from '../i18n.js';
import { get, post, put, seg } from '../api.js';
import { registerPage, navigate, href } from '../router.js';
import { listenWorklist, PriorityBadge, ExamViewer, Returns, useShortcuts, fmtName } from './workbench.js';

addMessages({
  'zh-CN': {
    'nav.reader': '阅片工作台',
    'reader.title': '阅片工作台',
    'reader.all': '全部',
    'reader.modality': '类型',
    'reader.priority': '优先级',
    'reader.state': '状态',
    'reader.state.work': '待阅与阅片中',
    'reader.hospital': '医院',
    'reader.overdueOnly': '仅超时',
    'reader.mine': '仅我的',
    'reader.patient': '患者',
    'reader.procedure': '检查项目',
    'reader.arrived': '到达',
    'reader.due': '应完成',
    'reader.left': '剩余 {t}',
    'reader.overdue': '已超时',
    'reader.claimedBy': '阅片人',
    'reader.claim': '领取',
    'reader.continue': '继续阅片',
    'reader.release': '释放',
    'reader.empty': '没有符合条件的检查',
    'reader.count': '共 {n} 项',
    'reader.changed': '有新图像',
    'reader.conflict': '患者信息冲突',
    'reader.back': '返回列表',
    'reader.next': '下一例 (Alt+N)',
    'reader.releaseKey': '释放 (Alt+R)',
    'reader.template': '报告模板',
    'reader.chooseTemplate': '选择模板…',
    'reader.applyConfirm': '用模板替换已写的内容？',
    'reader.phrases': '常用短语',
    'reader.phraseHint': '点击插入到光标处',
    'reader.recognition': '互认项目',
    'reader.saved': '已自动保存（第 {rev} 版草稿）',
    'reader.saving': '正在保存…',
    'reader.dirty': '有未保存的修改',
    'reader.stale': '草稿已在别处更新，已载入最新内容',
    'reader.pin': '签名 PIN',
    'reader.sign': '签名提交 (Ctrl+Enter)',
    'reader.signed': '已签名：第 {v} 版，{status}',
    'reader.notMine': '该检查未由您领取，只能查看。',
    'reader.claimFirst': '领取后才能书写报告',
    'reader.noneReady': '没有待阅片的检查',
    'reader.exam': '检查信息',
  },
  en: {
    'nav.reader': 'Reading',
    'reader.title': 'Reading worklist',
    'reader.all': 'All',
    'reader.modality': 'Modality',
    'reader.priority': 'Priority',
    'reader.state': 'State',
    'reader.state.work': 'Waiting and being read',
    'reader.hospital': 'Hospital',
    'reader.overdueOnly': 'Overdue only',
    'reader.mine': 'Mine only',
    'reader.patient': 'Patient',
    'reader.procedure': 'Procedure',
    'reader.arrived': 'Arrived',
    'reader.due': 'Due',
    'reader.left': '{t} left',
    'reader.overdue': 'Overdue',
    'reader.claimedBy': 'Reader',
    'reader.claim': 'Claim',
    'reader.continue': 'Continue',
    'reader.release': 'Release',
    'reader.empty': 'No exams match',
    'reader.count': '{n} items',
    'reader.changed': 'New images',
    'reader.conflict': 'Patient conflict',
    'reader.back': 'Back to the list',
    'reader.next': 'Next (Alt+N)',
    'reader.releaseKey': 'Release (Alt+R)',
    'reader.template': 'Template',
    'reader.chooseTemplate': 'Choose a template…',
    'reader.applyConfirm': 'Replace what is written with the template?',
    'reader.phrases': 'Phrases',
    'reader.phraseHint': 'Click to insert at the cursor',
    'reader.recognition': 'Recognition items',
    'reader.saved': 'Saved automatically (draft revision {rev})',
    'reader.saving': 'Saving…',
    'reader.dirty': 'Unsaved changes',
    'reader.stale': 'The draft was saved elsewhere; the newest text is loaded',
    'reader.pin': 'Signing PIN',
    'reader.sign': 'Sign (Ctrl+Enter)',
    'reader.signed': 'Signed: version {v}, {status}',
    'reader.notMine': 'You have not claimed this exam: read only.',
    'reader.claimFirst': 'Claim the exam to write its report',
    'reader.noneReady': 'No exam waits for reading',
    'reader.exam': 'Exam',
  },
});

const MODALITIES = ['CT', 'MR', 'DX', 'CR', 'US', 'MG', 'XA', 'RF', 'NM', 'PT', 'ECG', 'SM'];
const AUTOSAVE_MS = 1500;

// Claims the first waiting item of the center (priority order) and opens it.
async function claimNext(center, skip) {
  const d = await get(`/api/v1/worklists/${seg(center)}?state=ready&limit=20`);
  for (const it of d.items) {
    if (it.study === skip) continue;
    try {
      await post(`/api/v1/worklists/${seg(center)}/items/${seg(it.study)}/claim`);
      navigate('/reader/' + it.study);
      return true;
    } catch (_) {
      /* taken meanwhile: the next one */
    }
  }
  return false;
}

function DueCell({ it, now }) {
  if (!it.due_ms) return html`<td></td>`;
  const left = it.due_ms - now;
  return html`<td data-due=${it.due_ms}>${fmtTime(it.due_ms)}<br />
    ${it.overdue || left < 0 ? html`<span class="badge bad" data-overdue="1">${t('reader.overdue')}</span>`
      : html`<span class="hint">${t('reader.left', { t: fmtDuration(left) })}</span>`}</td>`;
}

function Worklist({ me, query }) {
  const center = me.center || query.get('center') || '';
  const [f, setF] = useState({ modality: '', priority: '', state: '', hospital: '', overdue: false, mine: false });
  const [data, setData] = useState(null);
  const [error, setError] = useState('');
  const [live, setLive] = useState(false);
  const [now, setNow] = useState(Date.now());
  const [tick, setTick] = useState(0);
  const timer = useRef(0);

  useEffect(() => {
    const q = new URLSearchParams();
    for (const k of ['modality', 'priority', 'state', 'hospital']) if (f[k]) q.set(k, f[k]);
    if (f.overdue) q.set('overdue', 'true');
    if (f.mine) q.set('mine', 'true');
    get(`/api/v1/worklists/${seg(center)}?${q}`).then((d) => { setData(d); setError(''); setNow(Date.now()); },
      (e) => setError(e.message));
  }, [f, tick]);

  useEffect(() => {
    // every event of the center reloads the page of the list (debounced):
    // filters, order, due times stay the server's
    const close = listenWorklist(center, () => {
      clearTimeout(timer.current);
      timer.current = setTimeout(() => setTick((n) => n + 1), 250);
    }, setLive);
    const clock = setInterval(() => setNow(Date.now()), 30000);
    return () => { close(); clearInterval(clock); clearTimeout(timer.current); };
  }, []);

  useShortcuts({
    'Alt+n': () => claimNext(center).then((ok) => ok || setError(t('reader.noneReady')), (e) => setError(e.message)),
  });

  const set = (k) => (e) => setF({ ...f, [k]: e.target.type === 'checkbox' ? e.target.checked : e.target.value });
  const act = async (study, what) => {
    try {
      await post(`/api/v1/worklists/${seg(center)}/items/${seg(study)}/${what}`);
      if (what === 'claim') navigate('/reader/' + study);
      else setTick((n) => n + 1);
    } catch (e) {
      setError(e.message);
      setTick((n) => n + 1);
    }
  };
  const items = data ? data.items : [];
  return html`<section id="reader-worklist" data-live=${live ? '1' : '0'}>
    <h2>${t('reader.title')} <span class=${'badge ' + (live ? 'ok' : 'warn')} id="live-badge">${live ? t('wb.live') : t('wb.offline')}</span></h2>
    <div class="toolbar" id="wl-filters">
      <label>${t('reader.modality')}<select id="f-modality" value=${f.modality} onChange=${set('modality')}>
        <option value="">${t('reader.all')}</option>${MODALITIES.map((m) => html`<option value=${m}>${m}</option>`)}</select></label>
      <label>${t('reader.priority')}<select id="f-priority" value=${f.priority} onChange=${set('priority')}>
        <option value="">${t('reader.all')}</option>${['stat', 'urgent', 'routine'].map((p) => html`<option value=${p}>${t('wb.priority.' + p)}</option>`)}</select></label>
      <label>${t('reader.state')}<select id="f-state" value=${f.state} onChange=${set('state')}>
        <option value="">${t('reader.state.work')}</option>${['ready', 'claimed', 'reported', 'final', 'amended'].map((s) => html`<option value=${s}>${t('wb.state.' + s)}</option>`)}</select></label>
      <label>${t('reader.hospital')}<input id="f-hospital" size="10" value=${f.hospital} onChange=${set('hospital')} /></label>
      <label><input type="checkbox" id="f-overdue" checked=${f.overdue} onChange=${set('overdue')} />${t('reader.overdueOnly')}</label>
      <label><input type="checkbox" id="f-mine" checked=${f.mine} onChange=${set('mine')} />${t('reader.mine')}</label>
      <span class="hint">${data ? t('reader.count', { n: items.length }) : ''}</span>
    </div>
    ${error ? html`<p class="error">${error}</p>` : null}
    <table class="grid" id="wl-table">
      <thead><tr><th>${t('reader.priority')}</th><th>${t('reader.patient')}</th><th>${t('reader.modality')}</th>
        <th>${t('reader.procedure')}</th><th>${t('reader.hospital')}</th><th>${t('reader.arrived')}</th>
        <th>${t('reader.due')}</th><th>${t('reader.state')}</th><th>${t('reader.claimedBy')}</th><th></th></tr></thead>
      <tbody>
        ${data && items.length === 0 ? html`<tr><td colspan="10" class="hint">${t('reader.empty')}</td></tr>` : null}
        ${items.map((it) => {
          const mine = it.state === 'claimed' && it.claimed_by === me.user;
          return html`<tr data-study=${it.study} data-state=${it.state} class=${it.overdue ? 'flagged' : ''}>
            <td><${PriorityBadge} p=${it.priority} /></td>
            <td>${fmtName(it.patient_name) || it.patient}
              ${it.patient_conflict ? html` <span class="badge bad">${t('reader.conflict')}</span>` : null}
              ${it.changed_since_read || it.changed_after_ready ? html` <span class="badge warn">${t('reader.changed')}</span>` : null}</td>
            <td>${it.modality}</td><td>${it.procedure}</td><td>${it.hospital}</td>
            <td>${fmtTime(it.arrived_ms)}</td>
            <${DueCell} it=${it} now=${now} />
            <td><span class="badge">${t('wb.state.' + it.state)}</span></td>
            <td>${it.claimed_by || it.reported_by || ''}</td>
            <td>
              ${it.state === 'ready' ? html`<button type="button" class="primary" data-claim=${it.study} onClick=${() => act(it.study, 'claim')}>${t('reader.claim')}</button>` : null}
              ${mine ? html`<a class="button" data-open=${it.study} href=${href('/reader/' + it.study)}>${t('reader.continue')}</a>
                <button type="button" data-release=${it.study} onClick=${() => act(it.study, 'release')}>${t('reader.release')}</button>` : null}
            </td></tr>`;
        })}
      </tbody>
    </table>
  </section>`;
}

// The editor's state of a draft: {id, rev, findings, impression, critical, recognition}.
function draftOf(rep) {
  const d = rep.draft || {};
  return { id: rep.id, rev: d.rev || 0, findings: d.findings || '', impression: d.impression || '',
    critical: !!d.critical, recognition: d.recognition || [] };
}

function Reading({ me, params }) {
  const study = params.study;
  const center = me.center;
  const [exam, setExam] = useState(null);
  const [draft, setDraft] = useState(null);
  const [returns, setReturns] = useState([]);
  const [status, setStatus] = useState('');
  const [error, setError] = useState('');
  const [info, setInfo] = useState('');
  const [tpl, setTpl] = useState({ templates: [], phrases: [] });
  const [catalogue, setCatalogue] = useState([]);
  const [pin, setPin] = useState('');
  const [signing, setSigning] = useState(false);
  const cur = useRef(null);     // the draft as edited (for the debounced save)
  const dirty = useRef(false);
  const saving = useRef(null);  // the save in flight
  const timer = useRef(0);
  const lastField = useRef('findings');
  const areas = { findings: useRef(null), impression: useRef(null) };
  const pinRef = useRef(null);

  const mine = exam && exam.state === 'claimed' && exam.claimed_by === me.user;
  const load = async () => {
    const ex = await get(`/api/v1/exams/${seg(study)}`);
    setExam(ex);
    let rep = (ex.reports || []).filter((r) => r.status === 'draft').pop();
    if (!rep && ex.state === 'claimed' && ex.claimed_by === me.user) {
      try {
        const c = await post('/api/v1/reports', { study });
        rep = await get(`/api/v1/reports/${seg(c.id)}`);
      } catch (e) {
        if (e.code !== 'not_claim_holder') throw e;
      }
    } else if (rep) {
      rep = await get(`/api/v1/reports/${seg(rep.id)}`);
    }
    if (rep && rep.draft) {
      const d = draftOf(rep);
      cur.current = d;
      setDraft(d);
      setReturns(rep.returns || []);
      setStatus(t('reader.saved', { rev: d.rev }));
    }
    const mod = ex.modality ? `?modality=${seg(ex.modality)}` : '';
    get('/api/v1/report-templates' + mod).then(setTpl, () => {});
    get('/api/v1/recognition/catalogue').then((c) => setCatalogue((c.items || []).filter((i) => {
      const ms = (i.match && i.match.modalities) || [];
      return !ms.length || ms.includes(ex.modality);
    })), () => {});
  };
  useEffect(() => {
    load().catch((e) => setError(e.message));
    // leaving the page: the pending edit goes out with keepalive (it
    // outlives the page); leaving the screen in the app: a normal save
    const unload = () => {
      const d = cur.current;
      if (!dirty.current || !d) return;
      fetch(`/api/v1/reports/${seg(d.id)}`, { method: 'PUT', keepalive: true, credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', 'X-Requested-With': 'huren' },
        body: JSON.stringify({ rev: d.rev, findings: d.findings, impression: d.impression, critical: d.critical, recognition: d.recognition }) });
      dirty.current = false;
    };
    window.addEventListener('beforeunload', unload);
    return () => { window.removeEventListener('beforeunload', unload); clearTimeout(timer.current); if (dirty.current) save(); };
  }, [study]);

  // PUT the draft with the revision it started from; a stale revision
  // reloads the saved text (the server wins: another tab saved meanwhile)
  const save = async () => {
    clearTimeout(timer.current);
    if (saving.current) { await saving.current; }
    const d = cur.current;
    if (!d || !dirty.current) return;
    dirty.current = false;
    setStatus(t('reader.saving'));
    const body = { rev: d.rev, findings: d.findings, impression: d.impression, critical: d.critical, recognition: d.recognition };
    saving.current = put(`/api/v1/reports/${seg(d.id)}`, body).then((res) => {
      cur.current = { ...cur.current, rev: res.rev };
      setDraft((x) => ({ ...x, rev: res.rev }));
      setStatus(dirty.current ? t('reader.dirty') : t('reader.saved', { rev: res.rev }));
      setError('');
    }, async (e) => {
      if (e.code === 'stale_rev') {
        const rep = await get(`/api/v1/reports/${seg(d.id)}`);
        const nd = draftOf(rep);
        cur.current = nd;
        setDraft(nd);
        setInfo(t('reader.stale'));
        setStatus(t('reader.saved', { rev: nd.rev }));
      } else {
        dirty.current = true;
        setError(e.message);
        setStatus(t('reader.dirty'));
      }
    });
    await saving.current;
    saving.current = null;
  };
  const edit = (patch) => {
    const d = { ...cur.current, ...patch };
    cur.current = d;
    setDraft(d);
    dirty.current = true;
    setStatus(t('reader.dirty'));
    clearTimeout(timer.current);
    timer.current = setTimeout(save, AUTOSAVE_MS);
  };
  const applyTemplate = (id) => {
    const tp = tpl.templates.find((x) => x.id === id);
    if (!tp) return;
    if ((draft.findings || draft.impression) && !window.confirm(t('reader.applyConfirm'))) return;
    edit({ findings: tp.findings, impression: tp.impression });
  };
  const insertPhrase = (text) => {
    const field = lastField.current;
    const el = areas[field].current;
    const v = cur.current[field] || '';
    const a = el ? el.selectionStart : v.length, b = el ? el.selectionEnd : v.length;
    edit({ [field]: v.slice(0, a) + text + v.slice(b) });
    if (el) setTimeout(() => { el.focus(); el.selectionStart = el.selectionEnd = a + text.length; }, 0);
  };
  const sign = async () => {
    if (!draft || signing) return;
    if (!pin) { if (pinRef.current) pinRef.current.focus(); return; }
    setSigning(true);
    setError('');
    try {
      dirty.current = true;
      await save();
      const res = await post(`/api/v1/reports/${seg(cur.current.id)}/sign`, { pin, rev: cur.current.rev });
      setPin('');
      setInfo(t('reader.signed', { v: res.version, status: t('wb.rstatus.' + res.status) }));
      setDraft(null);
      cur.current = null;
      const ex = await get(`/api/v1/exams/${seg(study)}`);
      setExam(ex);
    } catch (e) {
      setPin('');
      setError(e.message);
    } finally {
      setSigning(false);
    }
  };
  const release = async () => {
    await save();
    try {
      await post(`/api/v1/worklists/${seg(center)}/items/${seg(study)}/release`);
    } catch (_) { /* already released or signed */ }
    navigate('/reader');
  };
  const next = async () => {
    await save();
    try {
      if (!(await claimNext(center, study))) setInfo(t('reader.noneReady'));
    } catch (e) { setError(e.message); }
  };
  useShortcuts({ 'Ctrl+Enter': sign, 'Alt+r': release, 'Alt+n': next, 'Alt+s': () => { dirty.current = true; save(); } });

  const groups = {};
  for (const p of tpl.phrases) (groups[p.group] ||= []).push(p);
  const toggleItem = (code) => {
    const r = draft.recognition.includes(code) ? draft.recognition.filter((c) => c !== code) : [...draft.recognition, code];
    edit({ recognition: r });
  };
  return html`<div class="wb-screen" id="reading-screen" data-study=${study}>
    <div class="wb-bar">
      <a href=${href('/reader')} id="back-link">${t('reader.back')}</a>
      ${exam ? html`<span><${PriorityBadge} p=${exam.priority} /> <strong>${fmtName(exam.patient_name) || exam.patient}</strong>
        · ${exam.modality} · ${exam.procedure} · ${exam.hospital} · ${exam.study_date}
        · <span class="badge" id="exam-state">${t('wb.state.' + exam.state)}</span></span>` : null}
      <span class="spacer"></span>
      <button type="button" id="next-btn" onClick=${next}>${t('reader.next')}</button>
      ${mine ? html`<button type="button" id="release-btn" onClick=${release}>${t('reader.releaseKey')}</button>` : null}
    </div>
    <div class="wb-main">
      <${ExamViewer} study=${study} exam=${exam} />
      <div class="wb-editor panel">
        ${error ? html`<p class="error" id="reader-error">${error}</p>` : null}
        ${info ? html`<p class="info" id="reader-info">${info}</p>` : null}
        <${Returns} returns=${returns} />
        ${!draft ? html`<p class="hint" id="no-draft">${exam && !mine ? t('reader.notMine') : ''}</p>` : html`
          <div class="toolbar">
            <label>${t('reader.template')}<select id="template-select" onChange=${(e) => { applyTemplate(e.target.value); e.target.value = ''; }}>
              <option value="">${t('reader.chooseTemplate')}</option>
              ${tpl.templates.map((x) => html`<option value=${x.id}>${x.name}</option>`)}</select></label>
            <span class="hint" id="autosave-status">${status}</span>
          </div>
          <label>${t('wb.findings')}<textarea id="rpt-findings" rows="9" ref=${areas.findings} value=${draft.findings}
            onFocus=${() => { lastField.current = 'findings'; }} onInput=${(e) => edit({ findings: e.target.value })}></textarea></label>
          <label>${t('wb.impression')}<textarea id="rpt-impression" rows="4" ref=${areas.impression} value=${draft.impression}
            onFocus=${() => { lastField.current = 'impression'; }} onInput=${(e) => edit({ impression: e.target.value })}></textarea></label>
          <label class="inline"><input type="checkbox" id="rpt-critical" checked=${draft.critical}
            onChange=${(e) => edit({ critical: e.target.checked })} /> <span class="badge bad">${t('wb.critical')}</span></label>
          ${catalogue.length ? html`<div id="recognition-items"><h4>${t('reader.recognition')}</h4>
            ${catalogue.map((i) => html`<label class="inline"><input type="checkbox" data-item=${i.code}
              checked=${draft.recognition.includes(i.code)} onChange=${() => toggleItem(i.code)} /> ${i.name} (${i.hr_mark})</label>`)}</div>` : null}
          <details open class="wb-phrases" id="phrases"><summary>${t('reader.phrases')} <span class="hint">${t('reader.phraseHint')}</span></summary>
            ${Object.keys(groups).map((g) => html`<div><strong>${g}</strong>
              ${groups[g].map((p) => html`<button type="button" class="phrase" data-phrase=${p.text} onMouseDown=${(e) => e.preventDefault()}
                onClick=${() => insertPhrase(p.text)}>${p.text}</button>`)}</div>`)}
          </details>
          <div class="actions wb-sign">
            <input type="password" id="sign-pin" ref=${pinRef} autocomplete="off" placeholder=${t('reader.pin')} value=${pin}
              onInput=${(e) => setPin(e.target.value)} onKeyDown=${(e) => { if (e.key === 'Enter') { e.preventDefault(); sign(); } }} />
            <button type="button" class="primary" id="sign-btn" disabled=${signing} onClick=${sign}>${t('reader.sign')}</button>
          </div>`}
      </div>
    </div>
  </div>`;
}

registerPage({ path: '/reader', roles: ['reader', 'auditor'], nav: 'nav.reader', order: 20, component: Worklist });
registerPage({ path: '/reader/:study', roles: ['reader', 'auditor'], full: true, component: Reading });
