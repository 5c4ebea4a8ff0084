// 审核: the auditor's co-sign queue (the center's reported exams, live) and
// the review screen: the images beside the preliminary report, co-sign with
// the PIN, return for revision with a comment, amend a final report.
// Decision 0034.
import { useEffect, useRef, useState } from 'preact/hooks';
import { html } from 'htm/preact';
import { t, addMessages, fmtTime } from '../i18n.js';
import { get, post, seg } from '../api.js';
import { registerPage, navigate, href } from '../router.js';
import { listenWorklist, PriorityBadge, ExamViewer, ReportText, Returns, useShortcuts, versionContent, fmtName } from './workbench.js';

addMessages({
  'zh-CN': {
    'nav.auditor': '报告审核',
    'auditor.title': '待审核报告',
    'auditor.final': '已发布报告',
    'auditor.empty': '没有待审核的报告',
    'auditor.patient': '患者',
    'auditor.modality': '类型',
    'auditor.hospital': '医院',
    'auditor.reader': '报告医师',
    'auditor.reportedAt': '提交时间',
    'auditor.review': '审核',
    'auditor.back': '返回列表',
    'auditor.preliminary': '初步报告（第 {v} 版）',
    'auditor.current': '当前报告（第 {v} 版，{status}）',
    'auditor.pendingAmend': '待审核的修订（第 {v} 版）',
    'auditor.signers': '签名：{list}',
    'auditor.pin': '签名 PIN',
    'auditor.cosign': '审核签发 (Ctrl+Enter)',
    'auditor.cosigned': '已签发：第 {v} 版，{status}',
    'auditor.returnTitle': '退回修改',
    'auditor.comment': '修改意见',
    'auditor.return': '退回给报告医师',
    'auditor.returned': '已退回给 {who}',
    'auditor.amendTitle': '修订报告',
    'auditor.kind': '类型',
    'auditor.kind.amendment': '修订',
    'auditor.kind.correction': '更正',
    'auditor.reason': '修订理由',
    'auditor.amend': '签名修订',
    'auditor.amended': '已修订：第 {v} 版',
    'auditor.nothing': '该报告没有待审核的版本',
  },
  en: {
    'nav.auditor': 'Co-sign',
    'auditor.title': 'Reports to co-sign',
    'auditor.final': 'Final reports',
    'auditor.empty': 'No report awaits a co-signature',
    'auditor.patient': 'Patient',
    'auditor.modality': 'Modality',
    'auditor.hospital': 'Hospital',
    'auditor.reader': 'Reader',
    'auditor.reportedAt': 'Reported',
    'auditor.review': 'Review',
    'auditor.back': 'Back to the queue',
    'auditor.preliminary': 'Preliminary report (version {v})',
    'auditor.current': 'Current report (version {v}, {status})',
    'auditor.pendingAmend': 'Amendment to co-sign (version {v})',
    'auditor.signers': 'Signed by {list}',
    'auditor.pin': 'Signing PIN',
    'auditor.cosign': 'Co-sign (Ctrl+Enter)',
    'auditor.cosigned': 'Co-signed: version {v}, {status}',
    'auditor.returnTitle': 'Return for revision',
    'auditor.comment': 'Comment for the reader',
    'auditor.return': 'Return to the reader',
    'auditor.returned': 'Returned to {who}',
    'auditor.amendTitle': 'Amend the report',
    'auditor.kind': 'Kind',
    'auditor.kind.amendment': 'Amendment',
    'auditor.kind.correction': 'Correction',
    'auditor.reason': 'Reason',
    'auditor.amend': 'Sign the amendment',
    'auditor.amended': 'Amended: version {v}',
    'auditor.nothing': 'Nothing of this report awaits a co-signature',
  },
});

function Queue({ me }) {
  const center = me.center;
  const [state, setState] = useState('reported');
  const [data, setData] = useState(null);
  const [error, setError] = useState('');
  const [live, setLive] = useState(false);
  const [tick, setTick] = useState(0);
  const timer = useRef(0);
  useEffect(() => {
    get(`/api/v1/worklists/${seg(center)}?state=${state}&order=arrival`).then(setData, (e) => setError(e.message));
  }, [state, tick]);
  useEffect(() => {
    const close = listenWorklist(center, () => {
      clearTimeout(timer.current);
      timer.current = setTimeout(() => setTick((n) => n + 1), 250);
    }, setLive);
    return () => { close(); clearTimeout(timer.current); };
  }, []);
  const items = data ? data.items : [];
  useShortcuts({ 'Alt+n': () => { if (items.length) navigate('/auditor/' + items[0].study); } });
  return html`<section id="cosign-queue" data-live=${live ? '1' : '0'}>
    <h2>${state === 'reported' ? t('auditor.title') : t('auditor.final')}
      <span class=${'badge ' + (live ? 'ok' : 'warn')}>${live ? t('wb.live') : t('wb.offline')}</span></h2>
    <div class="toolbar">
      <select id="q-state" value=${state} onChange=${(e) => setState(e.target.value)}>
        <option value="reported">${t('auditor.title')}</option>
        <option value="final">${t('wb.state.final')}</option>
        <option value="amended">${t('wb.state.amended')}</option>
      </select>
    </div>
    ${error ? html`<p class="error">${error}</p>` : null}
    <table class="grid" id="queue-table">
      <thead><tr><th></th><th>${t('auditor.patient')}</th><th>${t('auditor.modality')}</th><th>${t('auditor.hospital')}</th>
        <th>${t('auditor.reader')}</th><th>${t('auditor.reportedAt')}</th><th></th></tr></thead>
      <tbody>
        ${data && !items.length ? html`<tr><td colspan="7" class="hint">${t('auditor.empty')}</td></tr>` : null}
        ${items.map((it) => html`<tr data-study=${it.study} data-report=${it.report ? it.report.id : ''} class=${it.overdue ? 'flagged' : ''}>
          <td><${PriorityBadge} p=${it.priority} /></td>
          <td>${fmtName(it.patient_name) || it.patient}</td><td>${it.modality}</td><td>${it.hospital}</td>
          <td>${it.reported_by}</td><td>${fmtTime(it.last_ms)}</td>
          <td><a class="button primary" data-review=${it.study} href=${href('/auditor/' + it.study)}>${t('auditor.review')}</a></td>
        </tr>`)}
      </tbody>
    </table>
  </section>`;
}

function Review({ me, params }) {
  const study = params.study;
  const [exam, setExam] = useState(null);
  const [rep, setRep] = useState(null);
  const [pending, setPending] = useState(null); // the pending version's payload
  const [current, setCurrent] = useState(null); // the current version's payload
  const [pin, setPin] = useState('');
  const [comment, setComment] = useState('');
  const [amend, setAmend] = useState(null);
  const [error, setError] = useState('');
  const [info, setInfo] = useState('');
  const [busy, setBusy] = useState(false);
  const load = async () => {
    const ex = await get(`/api/v1/exams/${seg(study)}`);
    setExam(ex);
    const r = (ex.reports || []).filter((x) => x.status !== 'entered-in-error').pop() || null;
    setRep(r);
    setPending(r && r.pending ? await versionContent(r.id, r.pending) : null);
    setCurrent(r && r.current ? await versionContent(r.id, r.current) : null);
  };
  useEffect(() => {
    load().catch((e) => setError(e.message));
    // live: the reader signs a revision, another auditor co-signs
    const close = listenWorklist(me.center, (ev) => {
      if (ev.study === study) load().catch((e) => setError(e.message));
    });
    return close;
  }, [study]);
  const run = async (fn) => {
    if (busy) return;
    setBusy(true);
    setError('');
    try {
      await fn();
      await load();
    } catch (e) {
      setError(e.message);
    } finally {
      setPin('');
      setBusy(false);
    }
  };
  const cosign = () => run(async () => {
    if (!pin) throw new Error(t('auditor.pin'));
    const res = await post(`/api/v1/reports/${seg(rep.id)}/cosign`, { pin });
    setInfo(t('auditor.cosigned', { v: res.version, status: t('wb.rstatus.' + res.status) }));
  });
  const sendBack = () => run(async () => {
    const res = await post(`/api/v1/reports/${seg(rep.id)}/return`, { comment });
    const last = (res.returns || []).slice(-1)[0];
    setComment('');
    setInfo(t('auditor.returned', { who: last ? last.to : '' }));
  });
  const doAmend = () => run(async () => {
    const body = { pin, kind: amend.kind, findings: amend.findings, impression: amend.impression, critical: amend.critical };
    if (amend.reason) body.reason = amend.reason;
    const res = await post(`/api/v1/reports/${seg(rep.id)}/amend`, body);
    setAmend(null);
    setInfo(t('auditor.amended', { v: res.version }));
  });
  useShortcuts({ 'Ctrl+Enter': () => { if (pending) cosign(); }, 'Alt+r': () => navigate('/auditor') });
  const signers = (p) => (p && p.signers ? p.signers.map((s) => `${s.name || s.user}（${t('wb.fn.' + s.function)}）`).join('，') : '');
  const canAmend = rep && !rep.pending && ['final', 'amended', 'corrected'].includes(rep.status);
  return html`<div class="wb-screen" id="review-screen" data-study=${study}>
    <div class="wb-bar">
      <a href=${href('/auditor')} id="back-link">${t('auditor.back')}</a>
      ${exam ? html`<span><${PriorityBadge} p=${exam.priority} /> <strong>${fmtName(exam.patient_name) || exam.patient}</strong>
        · ${exam.modality} · ${exam.procedure} · ${exam.hospital} · ${exam.study_date}
        · <span class="badge" id="exam-state">${t('wb.state.' + exam.state)}</span></span>` : null}
    </div>
    <div class="wb-main">
      <${ExamViewer} study=${study} exam=${exam} />
      <div class="wb-editor panel">
        ${error ? html`<p class="error" id="auditor-error">${error}</p>` : null}
        ${info ? html`<p class="info" id="auditor-info">${info}</p>` : null}
        ${rep ? html`<p><span class="badge accent" id="report-status">${t('wb.rstatus.' + rep.status)}</span></p>` : null}
        <${Returns} returns=${rep && rep.returns} />
        ${pending ? html`<div id="pending-version" data-version=${rep.pending}>
            <h3>${rep.current ? t('auditor.pendingAmend', { v: rep.pending }) : t('auditor.preliminary', { v: rep.pending })}</h3>
            <p class="hint">${t('auditor.signers', { list: signers(pending) })}</p>
            <${ReportText} content=${pending.content} id="pending-text" />
            <div class="actions">
              <input type="password" id="cosign-pin" autocomplete="off" placeholder=${t('auditor.pin')} value=${pin}
                onInput=${(e) => setPin(e.target.value)} />
              <button type="button" class="primary" id="cosign-btn" disabled=${busy} onClick=${cosign}>${t('auditor.cosign')}</button>
            </div>
            <h4>${t('auditor.returnTitle')}</h4>
            <textarea id="return-comment" rows="3" placeholder=${t('auditor.comment')} value=${comment}
              onInput=${(e) => setComment(e.target.value)}></textarea>
            <div class="actions"><button type="button" class="danger" id="return-btn" disabled=${busy || !comment.trim()}
              onClick=${sendBack}>${t('auditor.return')}</button></div>
          </div>` : rep ? html`<p class="hint" id="nothing-pending">${t('auditor.nothing')}</p>` : null}
        ${current ? html`<div id="current-version">
            <h3>${t('auditor.current', { v: rep.current, status: t('wb.rstatus.' + rep.status) })}</h3>
            <p class="hint">${t('auditor.signers', { list: signers(current) })}</p>
            <${ReportText} content=${current.content} id="current-text" />
          </div>` : null}
        ${canAmend && !amend ? html`<div class="actions"><button type="button" id="amend-open"
            onClick=${() => setAmend({ kind: 'amendment', reason: '', findings: current.content.findings,
              impression: current.content.impression, critical: !!current.content.critical })}>${t('auditor.amendTitle')}</button></div>` : null}
        ${amend ? html`<div id="amend-form">
            <h3>${t('auditor.amendTitle')}</h3>
            <label>${t('auditor.kind')}<select id="amend-kind" value=${amend.kind} onChange=${(e) => setAmend({ ...amend, kind: e.target.value })}>
              <option value="amendment">${t('auditor.kind.amendment')}</option><option value="correction">${t('auditor.kind.correction')}</option></select></label>
            <label>${t('wb.findings')}<textarea id="amend-findings" rows="6" value=${amend.findings}
              onInput=${(e) => setAmend({ ...amend, findings: e.target.value })}></textarea></label>
            <label>${t('wb.impression')}<textarea id="amend-impression" rows="3" value=${amend.impression}
              onInput=${(e) => setAmend({ ...amend, impression: e.target.value })}></textarea></label>
            <label class="inline"><input type="checkbox" checked=${amend.critical} onChange=${(e) => setAmend({ ...amend, critical: e.target.checked })} />
              ${t('wb.critical')}</label>
            <label>${t('auditor.reason')}<input id="amend-reason" value=${amend.reason} onInput=${(e) => setAmend({ ...amend, reason: e.target.value })} /></label>
            <div class="actions">
              <input type="password" id="amend-pin" autocomplete="off" placeholder=${t('auditor.pin')} value=${pin} onInput=${(e) => setPin(e.target.value)} />
              <button type="button" class="primary" id="amend-btn" disabled=${busy} onClick=${doAmend}>${t('auditor.amend')}</button>
              <button type="button" onClick=${() => setAmend(null)}>×</button>
            </div>
          </div>` : null}
      </div>
    </div>
  </div>`;
}

registerPage({ path: '/auditor', roles: ['auditor'], nav: 'nav.auditor', order: 30, component: Queue });
registerPage({ path: '/auditor/:study', roles: ['auditor'], full: true, component: Review });
