// Shared by the reader's and the auditor's pages (阅片工作台, 审核): the
// viewer frame with the person's prior exams, the live worklist stream,
// the report text of a version, shortcuts. Not a page itself (decision 0034).
import { useEffect, useRef, useState } from 'preact/hooks';
import { html } from 'htm/preact';
import { t, addMessages, fmtTime } from '../i18n.js';
import { get, seg } from '../api.js';
import { EcgView, isEcgExam } from '../ecg/ecg.js';
import { LabView, isLabExam } from '../lab/lab.js';

// the screens' own styles (beside the shell's style.css)
if (!document.getElementById('workbench-css')) {
  const link = document.createElement('link');
  link.id = 'workbench-css';
  link.rel = 'stylesheet';
  link.href = new URL('./workbench.css', import.meta.url).pathname;
  document.head.appendChild(link);
}

addMessages({
  'zh-CN': {
    'wb.viewer': '影像',
    'wb.priors': '既往检查（同一患者）',
    'wb.noPriors': '无可查看的既往检查',
    'wb.current': '本次检查',
    'wb.open': '打开',
    'wb.showing': '正在显示',
    'wb.priority.stat': '急诊',
    'wb.priority.urgent': '加急',
    'wb.priority.routine': '常规',
    'wb.state.receiving': '接收中',
    'wb.state.ready': '待阅片',
    'wb.state.claimed': '阅片中',
    'wb.state.reported': '待审核',
    'wb.state.final': '已发布',
    'wb.state.amended': '已修订',
    'wb.rstatus.draft': '草稿',
    'wb.rstatus.preliminary': '初步报告（待审核）',
    'wb.rstatus.final': '正式报告',
    'wb.rstatus.amended': '修订报告',
    'wb.rstatus.corrected': '更正报告',
    'wb.rstatus.entered-in-error': '已撤回',
    'wb.findings': '检查所见',
    'wb.impression': '诊断意见',
    'wb.critical': '危急值',
    'wb.returns': '退回修改意见',
    'wb.returnedBy': '{name}，{when}（第 {v} 版）',
    'wb.fn.author': '报告医师',
    'wb.fn.authenticator': '审核医师',
    'wb.live': '实时更新',
    'wb.offline': '实时更新中断，正在重连…',
  },
  en: {
    'wb.viewer': 'Images',
    'wb.priors': 'Prior exams (same person)',
    'wb.noPriors': 'No prior exams you may view',
    'wb.current': 'This exam',
    'wb.open': 'Open',
    'wb.showing': 'Showing',
    'wb.priority.stat': 'STAT',
    'wb.priority.urgent': 'Urgent',
    'wb.priority.routine': 'Routine',
    'wb.state.receiving': 'Receiving',
    'wb.state.ready': 'Waiting',
    'wb.state.claimed': 'Being read',
    'wb.state.reported': 'To co-sign',
    'wb.state.final': 'Final',
    'wb.state.amended': 'Amended',
    'wb.rstatus.draft': 'Draft',
    'wb.rstatus.preliminary': 'Preliminary (to co-sign)',
    'wb.rstatus.final': 'Final',
    'wb.rstatus.amended': 'Amended',
    'wb.rstatus.corrected': 'Corrected',
    'wb.rstatus.entered-in-error': 'Retracted',
    'wb.findings': 'Findings',
    'wb.impression': 'Impression',
    'wb.critical': 'Critical finding',
    'wb.returns': 'Returned for revision',
    'wb.returnedBy': '{name}, {when} (version {v})',
    'wb.fn.author': 'reporting doctor',
    'wb.fn.authenticator': 'auditing doctor',
    'wb.live': 'Live',
    'wb.offline': 'Live updates interrupted, reconnecting…',
  },
});

// The worklist event types (worklist/worklist.h) the pages listen to.
export const EVENT_TYPES = ['received', 'ready', 'claimed', 'released', 'renewed', 'reassigned', 'expired',
  'overdue', 'changed', 'reported', 'final', 'amended', 'reopened', 'returned'];

// Subscribes to the worklist events of center: onEvent(ev) per event of that
// center (ev: {type, study, center, ...}); onState(true|false) when the
// stream opens or fails (EventSource reconnects by itself). Returns close().
export function listenWorklist(center, onEvent, onState) {
  const es = new EventSource('/api/v1/events');
  const handler = (e) => {
    let ev;
    try {
      ev = JSON.parse(e.data);
    } catch (_) {
      return;
    }
    if (!center || ev.center === center) onEvent(ev);
  };
  for (const ty of EVENT_TYPES) es.addEventListener(ty, handler);
  es.onopen = () => onState && onState(true);
  es.onerror = () => onState && onState(false);
  return () => es.close();
}

// A DICOM person name for display: components joined without the carets
// (a space between Latin components, nothing between Chinese ones).
export function fmtName(pn) {
  const parts = String(pn || '').split('=')[0].split('^').filter(Boolean);
  return parts.join(/[\u3400-\u9fff]/.test(parts.join('')) ? '' : ' ');
}

export function viewerUrl(study) {
  return '/viewer/viewer?StudyInstanceUIDs=' + encodeURIComponent(study);
}

export function PriorityBadge({ p }) {
  const cls = p === 'stat' ? 'bad' : p === 'urgent' ? 'warn' : '';
  return html`<span class=${'badge ' + cls} data-priority=${p}>${t('wb.priority.' + p)}</span>`;
}

// The viewer frame (OHIF) and the prior exams of the same person beside it:
// a prior opens in the same frame; "this exam" comes back.
export function ViewerWithPriors({ study }) {
  const [shown, setShown] = useState(study);
  const [priors, setPriors] = useState(null);
  useEffect(() => {
    setShown(study);
    get(`/api/v1/exams/${seg(study)}/priors`).then((d) => setPriors(d.priors || []), () => setPriors([]));
  }, [study]);
  return html`<div class="wb-viewer">
    <iframe id="viewer-frame" title=${t('wb.viewer')} src=${viewerUrl(shown)} data-study=${shown}></iframe>
    <div class="wb-priors" id="priors">
      <h4>${t('wb.priors')}</h4>
      <button type="button" class=${shown === study ? 'primary' : ''} data-open-study=${study}
        onClick=${() => setShown(study)}>${t('wb.current')}</button>
      ${priors === null ? null : priors.length === 0
        ? html`<span class="hint">${t('wb.noPriors')}</span>`
        : priors.map((p) => html`<button type="button" class=${shown === p.study ? 'primary' : ''} data-prior=${p.study}
            onClick=${() => setShown(p.study)} title=${p.description || ''}>
            ${p.study_date || ''} ${p.hospital_name || p.hospital} ${p.modality || ''}
            ${p.report ? html` <span class="badge">${t('wb.rstatus.' + p.report.status)}</span>` : null}
          </button>`)}
    </div>
  </div>`;
}

// What the reading screens show beside the report: the lab result view for
// a lab report (modality LAB, decision 0041), the ECG view for an ECG exam
// (decision 0038), else the viewer frame with the priors; nothing until the
// exam is known (so OHIF is not loaded for a lab report or an ECG).
export function ExamViewer({ study, exam }) {
  if (!exam) return html`<div class="wb-viewer" id="exam-viewer-wait"></div>`;
  if (isLabExam(exam)) return html`<div class="wb-viewer wb-lab"><${LabView} uid=${study} /></div>`;
  if (isEcgExam(exam)) return html`<div class="wb-viewer wb-ecg"><${EcgView} study=${study} /></div>`;
  return html`<${ViewerWithPriors} study=${study} />`;
}

// The content of a signed version (decoded from its compact JWS: the
// signed payload is what counts, decision 0022).
export async function versionContent(reportId, k) {
  const res = await get(`/api/v1/reports/${seg(reportId)}/versions/${k}/jws`, { accept: 'application/jose' });
  const part = String(res).split('.')[1] || '';
  const b64 = part.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((part.length + 3) % 4);
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

// A signed text: findings, impression, critical flag.
export function ReportText({ content, id }) {
  if (!content) return null;
  return html`<div id=${id || null}>
    ${content.critical ? html`<p><span class="badge bad" data-critical="1">${t('wb.critical')}</span></p>` : null}
    <h4>${t('wb.findings')}</h4><pre class="report" data-field="findings">${content.findings}</pre>
    <h4>${t('wb.impression')}</h4><pre class="report" data-field="impression">${content.impression}</pre>
  </div>`;
}

// The auditors' comments of the report's returns for revision.
export function Returns({ returns }) {
  if (!returns || !returns.length) return null;
  return html`<div class="info wb-returns" id="returns">
    <strong>${t('wb.returns')}</strong>
    ${returns.map((r) => html`<p class="return-comment" data-version=${r.version}>
      <span>${r.comment}</span><br /><span class="hint">${t('wb.returnedBy', { name: r.name || r.by, when: fmtTime(r.at_ms), v: r.version })}</span></p>`)}
  </div>`;
}

// Keyboard shortcuts while mounted: keys {'Alt+n': fn, 'Ctrl+Enter': fn}.
export function useShortcuts(keys) {
  const ref = useRef(keys);
  ref.current = keys;
  useEffect(() => {
    const onKey = (e) => {
      const k = e.code && e.code.startsWith('Key') ? e.code.slice(3).toLowerCase()
        : e.key.length === 1 ? e.key.toLowerCase() : e.key;
      const name = (e.ctrlKey || e.metaKey ? 'Ctrl+' : '') + (e.altKey ? 'Alt+' : '') + k;
      const fn = ref.current[name];
      if (fn) {
        e.preventDefault();
        fn();
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);
}
