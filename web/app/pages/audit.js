// 审计查询: who read which patient, when (GET /api/v1/audit, decision 0031).
// Auditors and admins; the search reads a bounded number of audit records
// per call and continues from the cursor it returns ("more").
import { useState } from 'preact/hooks';
import { html } from 'htm/preact';
import { t, addMessages, fmtTime } from '../i18n.js';
import { get } from '../api.js';
import { registerPage } from '../router.js';
import { lastDays, downloadCsv } from './office_common.js';

addMessages({
  'zh-CN': {
    'nav.audit': '审计查询',
    'audit.title': '审计查询：谁在何时查看了哪位患者的数据',
    'audit.user': '用户',
    'audit.patient': '患者（签发机构|ID）',
    'audit.study': '检查 UID',
    'audit.action': '操作',
    'audit.from': '开始日期',
    'audit.to': '结束日期',
    'audit.search': '查询',
    'audit.more': '继续查询',
    'audit.csv': '导出 CSV',
    'audit.time': '时间',
    'audit.role': '角色',
    'audit.hospital': '医院',
    'audit.address': '地址',
    'audit.outcome': '结果',
    'audit.detail': '详情',
    'audit.none': '没有匹配的记录',
    'audit.scanned': '已检索 {n} 条记录，找到 {m} 条',
    'audit.partial': '尚未检索完整个时间段，可继续查询。',
    'audit.complete': '已检索完整个时间段。',
  },
  en: {
    'nav.audit': 'Audit',
    'audit.title': 'Audit search: who read which patient, when',
    'audit.user': 'User',
    'audit.patient': 'Patient (issuer|id)',
    'audit.study': 'Study UID',
    'audit.action': 'Action',
    'audit.from': 'From',
    'audit.to': 'To',
    'audit.search': 'Search',
    'audit.more': 'Continue',
    'audit.csv': 'Export CSV',
    'audit.time': 'Time',
    'audit.role': 'Role',
    'audit.hospital': 'Hospital',
    'audit.address': 'Address',
    'audit.outcome': 'Outcome',
    'audit.detail': 'Detail',
    'audit.none': 'No matching record',
    'audit.scanned': '{n} records read, {m} found',
    'audit.partial': 'The period was not read to its end yet: continue.',
    'audit.complete': 'The whole period was read.',
  },
});

const FIELDS = ['user', 'patient', 'study', 'action'];

function Audit() {
  const [form, setForm] = useState({ user: '', patient: '', study: '', action: '', ...lastDays(7) });
  const [res, setRes] = useState(null);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const query = (f, cursor) => {
    const q = new URLSearchParams();
    for (const k of FIELDS) if (f[k].trim()) q.set(k, f[k].trim());
    q.set('from', f.from);
    q.set('to', f.to);
    q.set('limit', '200');
    if (cursor) q.set('cursor', cursor);
    return `/api/v1/audit?${q}`;
  };
  const run = async (cursor) => {
    setBusy(true);
    setError('');
    try {
      const doc = await get(query(form, cursor));
      setRes((prev) => ({
        records: cursor && prev ? prev.records.concat(doc.records) : doc.records,
        scanned: (cursor && prev ? prev.scanned : 0) + doc.scanned,
        next: doc.next,
        complete: doc.complete,
      }));
    } catch (e) {
      setError(e.message);
    } finally {
      setBusy(false);
    }
  };
  const submit = (e) => {
    e.preventDefault();
    run(null);
  };
  const field = (k, type = 'text') => html`<label>${t('audit.' + k)}
    <input type=${type} id=${'audit-' + k} value=${form[k]} onInput=${(e) => setForm({ ...form, [k]: e.target.value })} /></label>`;
  return html`<section id="audit-page">
    <h2>${t('audit.title')}</h2>
    <form class="panel inline-form" id="audit-form" onSubmit=${submit}>
      ${FIELDS.map((k) => field(k))}${field('from', 'date')}${field('to', 'date')}
      <button type="submit" class="primary" id="audit-search" disabled=${busy}>${t('audit.search')}</button>
      <button type="button" id="audit-csv" onClick=${() => downloadCsv(query(form, null), 'huren-audit.csv')}>${t('audit.csv')}</button>
    </form>
    ${error ? html`<p class="error" id="audit-error">${error}</p>` : null}
    ${res ? html`<div class="panel">
      <p class="hint" id="audit-summary" data-count=${res.records.length} data-complete=${String(res.complete)}>
        ${t('audit.scanned', { n: res.scanned, m: res.records.length })} ${res.complete ? t('audit.complete') : t('audit.partial')}
        ${res.next ? html` <button type="button" id="audit-more" disabled=${busy} onClick=${() => run(res.next)}>${t('audit.more')}</button>` : null}</p>
      <div class="table-scroll"><table class="grid" id="audit-table">
        <thead><tr><th>${t('audit.time')}</th><th>${t('audit.user')}</th><th>${t('audit.role')}</th><th>${t('audit.hospital')}</th>
          <th>${t('audit.action')}</th><th>${t('audit.patient')}</th><th>${t('audit.study')}</th><th>${t('audit.outcome')}</th>
          <th>${t('audit.address')}</th><th>${t('audit.detail')}</th></tr></thead>
        <tbody>${res.records.length ? res.records.map((r) => html`<tr data-seq=${r.seq} data-actor=${r.actor || ''} data-action=${r.action || ''}
          class=${r.outcome === 'denied' ? 'flagged' : ''}>
          <td>${fmtTime(Date.parse(r.time))}</td><td>${r.actor}</td><td>${r.role}</td><td>${r.hospital}</td><td>${r.action}</td>
          <td>${r.patient}</td><td class="hint">${r.study}</td><td>${r.outcome}</td><td>${r.address}</td><td class="hint">${r.detail}</td></tr>`)
          : html`<tr><td colspan="10" class="hint">${t('audit.none')}</td></tr>`}</tbody>
      </table></div>
    </div>` : null}
  </section>`;
}

registerPage({ path: '/audit', roles: ['auditor', 'admin'], nav: 'nav.audit', order: 60, component: Audit });
