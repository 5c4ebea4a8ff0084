// The lab result view (decisions 0035, 0041): one lab report
// (GET /api/v1/lab-reports/{uid}, a FHIR DiagnosticReport with its
// Observations contained) as the order/patient header and a table of the
// observations: test (name, code), value, unit, reference range, the
// abnormal flag (H/HH red, L/LL blue, critical rows shaded), status (a
// corrected value shows the value it replaced on hover and, expanded, as a
// struck-through row), observation time and performing lab. Read-only: the
// review report is written beside it (pages/reader.js).
import { useEffect, useState } from 'preact/hooks';
import { html } from 'htm/preact';
import { t, addMessages } from '../i18n.js';
import { get, seg } from '../api.js';

if (!document.getElementById('lab-css')) {
  const link = document.createElement('link');
  link.id = 'lab-css';
  link.rel = 'stylesheet';
  link.href = new URL('./lab.css', import.meta.url).pathname;
  document.head.appendChild(link);
}

addMessages({
  'zh-CN': {
    'lab.title': '检验报告',
    'lab.loading': '正在载入检验结果…',
    'lab.notFound': '未找到该检验报告',
    'lab.patient': '患者',
    'lab.patientId': '患者号',
    'lab.order': '检验项目',
    'lab.placer': '申请单号',
    'lab.filler': '检验单号',
    'lab.observed': '采样时间',
    'lab.issued': '报告时间',
    'lab.hospital': '送检机构',
    'lab.reportStatus': '报告状态',
    'lab.test': '项目',
    'lab.code': '代码',
    'lab.value': '结果',
    'lab.unit': '单位',
    'lab.range': '参考范围',
    'lab.flag': '提示',
    'lab.status': '状态',
    'lab.time': '检测时间',
    'lab.performer': '检测实验室',
    'lab.none': '无检验项目',
    'lab.was': '更正前：{v}',
    'lab.showHistory': '显示更正前的结果',
    'lab.hideHistory': '隐藏更正前的结果',
    'lab.st.final': '已审核',
    'lab.st.preliminary': '初步',
    'lab.st.corrected': '已更正',
    'lab.st.entered-in-error': '已作废',
    'lab.st.cancelled': '已取消',
    'lab.st.registered': '已登记',
    'lab.st.partial': '部分',
    'lab.st.unknown': '未知',
    'lab.flag.H': '偏高',
    'lab.flag.HH': '危急偏高',
    'lab.flag.L': '偏低',
    'lab.flag.LL': '危急偏低',
    'lab.flag.A': '异常',
    'lab.flag.AA': '危急异常',
  },
  en: {
    'lab.title': 'Lab report',
    'lab.loading': 'Loading the lab results…',
    'lab.notFound': 'No such lab report',
    'lab.patient': 'Patient',
    'lab.patientId': 'Patient ID',
    'lab.order': 'Order',
    'lab.placer': 'Placer order',
    'lab.filler': 'Filler order',
    'lab.observed': 'Collected',
    'lab.issued': 'Reported',
    'lab.hospital': 'Ordering site',
    'lab.reportStatus': 'Report status',
    'lab.test': 'Test',
    'lab.code': 'Code',
    'lab.value': 'Result',
    'lab.unit': 'Unit',
    'lab.range': 'Reference range',
    'lab.flag': 'Flag',
    'lab.status': 'Status',
    'lab.time': 'Observed',
    'lab.performer': 'Performing lab',
    'lab.none': 'No observations',
    'lab.was': 'Before correction: {v}',
    'lab.showHistory': 'Show the values before correction',
    'lab.hideHistory': 'Hide the values before correction',
    'lab.st.final': 'Final',
    'lab.st.preliminary': 'Preliminary',
    'lab.st.corrected': 'Corrected',
    'lab.st.entered-in-error': 'Entered in error',
    'lab.st.cancelled': 'Cancelled',
    'lab.st.registered': 'Registered',
    'lab.st.partial': 'Partial',
    'lab.st.unknown': 'Unknown',
    'lab.flag.H': 'High',
    'lab.flag.HH': 'Critically high',
    'lab.flag.L': 'Low',
    'lab.flag.LL': 'Critically low',
    'lab.flag.A': 'Abnormal',
    'lab.flag.AA': 'Critically abnormal',
  },
});

export const SUPERSEDED_URL = 'urn:huren:fhir:lab-superseded-value';

// Is this exam (a worklist item, GET /api/v1/exams/{uid}, a recognition
// result) a lab report? Modality LAB or kind "lab".
export function isLabExam(ex) {
  if (!ex) return false;
  if (ex.kind === 'lab') return true;
  return String(ex.modality || '').toUpperCase().split(/[\\,\s]+/).includes('LAB');
}

// A FHIR dateTime as shown: "2025-12-01 08:00" (the zone dropped: it is the
// lab's local time).
export function fmtFhirTime(s) {
  if (!s) return '';
  const m = /^(\d{4}-\d{2}-\d{2})(?:T(\d{2}:\d{2})(?::(\d{2}))?)?/.exec(s);
  return m ? m[1] + (m[2] ? ' ' + m[2] : '') : s;
}

function conceptText(c) {
  if (!c) return '';
  const cd = (c.coding || [])[0] || {};
  return c.text || cd.display || cd.code || '';
}

function fmtQty(q) {
  if (!q) return '';
  return (q.comparator || '') + String(q.value);
}

// The displayed value of an Observation.
export function obsValue(o) {
  if (o.valueQuantity) return fmtQty(o.valueQuantity);
  if (o.valueCodeableConcept) return conceptText(o.valueCodeableConcept);
  if (o.valueString !== undefined) return o.valueString;
  return '';
}

export function obsRange(o) {
  const rr = (o.referenceRange || [])[0];
  if (!rr) return '';
  if (rr.text) return rr.text;
  const lo = rr.low ? rr.low.value : '';
  const hi = rr.high ? rr.high.value : '';
  return lo !== '' && hi !== '' ? `${lo}-${hi}` : lo !== '' ? `>=${lo}` : hi !== '' ? `<=${hi}` : '';
}

export function obsFlags(o) {
  const out = [];
  for (const i of o.interpretation || []) for (const c of i.coding || []) if (c.code && c.code !== 'N') out.push(c.code);
  return out;
}

// 'high' | 'low' | 'abnormal' | '' and whether it is a critical flag.
export function flagClass(flags) {
  const f = flags.map((x) => String(x).toUpperCase());
  const crit = f.some((x) => x === 'HH' || x === 'LL' || x === 'AA' || x === '>' || x === '<');
  if (f.some((x) => x === 'H' || x === 'HH' || x === '>')) return { dir: 'high', crit };
  if (f.some((x) => x === 'L' || x === 'LL' || x === '<')) return { dir: 'low', crit };
  if (f.length) return { dir: 'abnormal', crit };
  return { dir: '', crit: false };
}

// The values a correction replaced: [{value, status, time}], oldest first.
export function superseded(o) {
  return (o.extension || [])
    .filter((e) => e.url === SUPERSEDED_URL)
    .map((e) => {
      const part = (k) => (e.extension || []).find((x) => x.url === k) || {};
      return { value: part('value').valueString || '', status: part('status').valueCode || '', time: part('time').valueDateTime || '' };
    });
}

function identifier(dr, code) {
  const id = (dr.identifier || []).find((i) => i.type && (i.type.coding || []).some((c) => c.code === code));
  return id ? id.value : '';
}

function fmtName(pn) {
  const parts = String(pn || '').split('=')[0].split('^').filter(Boolean);
  return parts.join(/[\u3400-\u9fff]/.test(parts.join('')) ? '' : ' ');
}

// The view of a DiagnosticReport already loaded.
export function LabReport({ report }) {
  const [history, setHistory] = useState(false);
  const dr = report;
  const byRef = {};
  for (const c of dr.contained || []) byRef['#' + c.id] = c;
  const obs = (dr.result || []).map((r) => byRef[r.reference]).filter(Boolean);
  const anyHistory = obs.some((o) => superseded(o).length);
  const subject = dr.subject || {};
  const pid = subject.identifier ? subject.identifier.value : '';
  return html`<div class="lab-report" data-lab=${dr.id} data-status=${dr.status}>
    <dl class="lab-head" id="lab-head">
      <dt>${t('lab.patient')}</dt><dd data-field="patient">${fmtName(subject.display) || '—'}</dd>
      <dt>${t('lab.patientId')}</dt><dd data-field="patient-id">${pid}</dd>
      <dt>${t('lab.order')}</dt><dd data-field="order">${conceptText(dr.code)}</dd>
      <dt>${t('lab.reportStatus')}</dt><dd data-field="report-status">${t('lab.st.' + dr.status)}</dd>
      <dt>${t('lab.placer')}</dt><dd data-field="placer">${identifier(dr, 'PLAC')}</dd>
      <dt>${t('lab.filler')}</dt><dd data-field="filler">${identifier(dr, 'FILL')}</dd>
      <dt>${t('lab.observed')}</dt><dd data-field="observed">${fmtFhirTime(dr.effectiveDateTime)}</dd>
      <dt>${t('lab.issued')}</dt><dd data-field="issued">${fmtFhirTime(dr.issued)}</dd>
      <dt>${t('lab.hospital')}</dt><dd data-field="hospital">${((dr.performer || [])[0] || {}).display || ''}</dd>
    </dl>
    ${anyHistory
      ? html`<div class="toolbar"><button type="button" class="link" id="lab-history-toggle" onClick=${() => setHistory(!history)}>
          ${history ? t('lab.hideHistory') : t('lab.showHistory')}</button></div>`
      : null}
    ${!obs.length
      ? html`<p class="hint" id="lab-empty">${t('lab.none')}</p>`
      : html`<table class="grid lab-obs" id="lab-obs">
      <thead><tr><th>${t('lab.test')}</th><th>${t('lab.code')}</th><th class="num">${t('lab.value')}</th><th>${t('lab.unit')}</th>
        <th>${t('lab.range')}</th><th>${t('lab.flag')}</th><th>${t('lab.status')}</th><th>${t('lab.time')}</th><th>${t('lab.performer')}</th></tr></thead>
      <tbody>${obs.map((o) => {
        const flags = obsFlags(o);
        const fc = flagClass(flags);
        const prev = superseded(o);
        const cd = ((o.code || {}).coding || [])[0] || {};
        const unit = o.valueQuantity && o.valueQuantity.unit ? o.valueQuantity.unit : '';
        const cls = [fc.dir ? 'lab-' + fc.dir : '', fc.crit ? 'lab-critical' : ''].join(' ').trim();
        const was = prev.length ? t('lab.was', { v: prev.map((p) => p.value + (p.time ? ` (${fmtFhirTime(p.time)})` : '')).join('; ') }) : '';
        return html`
          <tr class=${cls} data-obs=${o.id} data-code=${cd.code || ''} data-flag=${flags.join(',')}>
            <td>${conceptText(o.code)}</td>
            <td class="hint">${cd.code || ''}</td>
            <td class="num lab-value" data-field="value">${obsValue(o)}</td>
            <td>${unit}</td>
            <td>${obsRange(o)}</td>
            <td class="lab-flag" data-field="flag" title=${flags.map((f) => t('lab.flag.' + f)).join(', ')}>${flags.join(' ')}
              ${fc.dir === 'high' ? ' ↑' : fc.dir === 'low' ? ' ↓' : ''}</td>
            <td>${prev.length
              ? html`<span class="badge warn lab-corrected" data-field="status" title=${was}>${t('lab.st.' + o.status)}</span>`
              : html`<span class="badge" data-field="status">${t('lab.st.' + o.status)}</span>`}</td>
            <td>${fmtFhirTime(o.effectiveDateTime)}</td>
            <td>${((o.performer || [])[0] || {}).display || ''}</td>
          </tr>
          ${history ? prev.map((p) => html`<tr class="lab-superseded" data-superseded=${o.id}>
            <td colspan="2"></td><td class="num">${p.value}</td><td></td><td></td><td></td>
            <td>${t('lab.st.' + (p.status || 'unknown'))}</td><td>${fmtFhirTime(p.time)}</td><td></td></tr>`) : null}`;
      })}</tbody></table>`}
  </div>`;
}

// Loads GET /api/v1/lab-reports/{uid} and shows it; a 404 is "not found"
// (absent or not the user's).
export function LabView({ uid }) {
  const [dr, setDr] = useState(null);
  const [error, setError] = useState('');
  useEffect(() => {
    let live = true;
    setDr(null);
    setError('');
    get(`/api/v1/lab-reports/${seg(uid)}`, { accept: 'application/fhir+json' }).then(
      (d) => live && setDr(d),
      (e) => live && setError(e.status === 404 ? t('lab.notFound') : e.message)
    );
    return () => {
      live = false;
    };
  }, [uid]);
  return html`<div class="lab-view" id="lab-view" data-uid=${uid}>
    <h4 style="margin:4px 0">${t('lab.title')}</h4>
    ${error ? html`<p class="error" id="lab-error">${error}</p>` : null}
    ${!dr && !error ? html`<p class="hint">${t('lab.loading')}</p>` : null}
    ${dr ? html`<${LabReport} report=${dr} />` : null}
  </div>`;
}
