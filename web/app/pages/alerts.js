// 危急值 (critical values, decision 0040): the red banner of the app shell
// (live from GET /api/v1/alerts/events, acknowledged through a read-back
// dialog) and the register page 危急值登记 (GET /api/v1/alerts, paged, with
// each alert's step log).
import { useEffect, useState } from 'preact/hooks';
import { html } from 'htm/preact';
import { t, addMessages, fmtTime } from '../i18n.js';
import { get, post, seg } from '../api.js';
import { registerPage } from '../router.js';

addMessages({
  'zh-CN': {
    'nav.alerts': '危急值登记',
    'alerts.banner': '危急值',
    'alerts.ack': '确认',
    'alerts.more': '另有 {n} 条未确认',
    'alerts.dialog': '危急值确认（回读）',
    'alerts.readback': '请复述危急值（数值与单位，或所见）',
    'alerts.readbackHint': '应复述：{value}',
    'alerts.submit': '提交确认',
    'alerts.acked': '已确认',
    'alerts.title': '危急值登记',
    'alerts.state': '状态',
    'alerts.hospital': '医院',
    'alerts.from': '开始日期',
    'alerts.to': '结束日期',
    'alerts.search': '查询',
    'alerts.next': '下一页',
    'alerts.none': '没有危急值',
    'alerts.time': '时间',
    'alerts.patient': '患者',
    'alerts.item': '项目',
    'alerts.value': '结果',
    'alerts.flag': '标志',
    'alerts.kind': '来源',
    'alerts.target': '当前联系人',
    'alerts.ackedBy': '确认人',
    'alerts.ackedAt': '确认时间',
    'alerts.log': '处理记录',
    'alerts.kind.lab': '检验',
    'alerts.kind.report': '报告',
    'alerts.s.': '全部',
    'alerts.s.open': '未确认',
    'alerts.s.raised': '已发出',
    'alerts.s.notified': '已通知',
    'alerts.s.escalated': '已升级',
    'alerts.s.acknowledged': '已确认',
    'alerts.s.overdue_final': '超时未确认',
    'alerts.ev.raised': '发出',
    'alerts.ev.escalated': '升级至',
    'alerts.ev.notify': '通知',
    'alerts.ev.readback_refused': '回读不符，拒绝',
    'alerts.ev.acknowledged': '确认',
    'alerts.ev.overdue_final': '所有步骤超时',
    'alerts.quality': '近 30 天：危急值 {raised} 条，及时确认 {ok} 条，超时确认 {late} 条，全部超时 {od} 条，及时确认率 {rate}',
    'error.readback_mismatch': '回读内容与危急值不符，未确认。请复述数值与单位（或所见）。',
  },
  en: {
    'nav.alerts': 'Critical values',
    'alerts.banner': 'Critical value',
    'alerts.ack': 'Acknowledge',
    'alerts.more': '{n} more not acknowledged',
    'alerts.dialog': 'Acknowledge a critical value (read-back)',
    'alerts.readback': 'Read the critical value back (number and unit, or the finding)',
    'alerts.readbackHint': 'Repeat: {value}',
    'alerts.submit': 'Acknowledge',
    'alerts.acked': 'Acknowledged',
    'alerts.title': 'Critical value register',
    'alerts.state': 'State',
    'alerts.hospital': 'Hospital',
    'alerts.from': 'From',
    'alerts.to': 'To',
    'alerts.search': 'Search',
    'alerts.next': 'Next page',
    'alerts.none': 'No critical values',
    'alerts.time': 'Time',
    'alerts.patient': 'Patient',
    'alerts.item': 'Item',
    'alerts.value': 'Result',
    'alerts.flag': 'Flag',
    'alerts.kind': 'Source',
    'alerts.target': 'Current contact',
    'alerts.ackedBy': 'Acknowledged by',
    'alerts.ackedAt': 'Acknowledged at',
    'alerts.log': 'Steps',
    'alerts.kind.lab': 'Lab',
    'alerts.kind.report': 'Report',
    'alerts.s.': 'All',
    'alerts.s.open': 'Open',
    'alerts.s.raised': 'Raised',
    'alerts.s.notified': 'Notified',
    'alerts.s.escalated': 'Escalated',
    'alerts.s.acknowledged': 'Acknowledged',
    'alerts.s.overdue_final': 'Overdue (all steps)',
    'alerts.ev.raised': 'Raised',
    'alerts.ev.escalated': 'Escalated to',
    'alerts.ev.notify': 'Notified',
    'alerts.ev.readback_refused': 'Read-back refused',
    'alerts.ev.acknowledged': 'Acknowledged',
    'alerts.ev.overdue_final': 'Every step timed out',
    'alerts.quality': 'Last 30 days: {raised} critical values, {ok} acknowledged in time, {late} late, {od} never (all steps timed out); in time {rate}',
    'error.readback_mismatch': 'The read-back does not match the critical value; nothing was acknowledged. Repeat the number and unit (or the finding).',
  },
});

const EVENTS = ['alert.raised', 'alert.escalated', 'alert.acked', 'alert.final'];
const STATES = ['', 'open', 'raised', 'notified', 'escalated', 'acknowledged', 'overdue_final'];

// Open alerts this user is asked to acknowledge: of their hospital, or of
// which they are the current contact.
// A DICOM person name for display: components separated by spaces.
const pn = (s) => (s || '').replace(/\^+/g, ' ').trim();

const mine = (me, a) => a.state !== 'acknowledged' && (a.hospital === me.hospital || a.target === me.user);

function AckDialog({ alert, onClose, onDone }) {
  const [rb, setRb] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      const doc = await post(`/api/v1/alerts/${seg(alert.id)}/ack`, { readback: rb });
      onDone(doc);
    } catch (err) {
      setError(err.message);
    } finally {
      setBusy(false);
    }
  };
  return html`<div class="modal-back" id="alert-dialog" data-alert=${alert.id}>
    <form class="panel modal" onSubmit=${submit}>
      <h3>${t('alerts.dialog')}</h3>
      <p><strong>${alert.item_name || alert.item}</strong> · <span class="alert-value">${alert.value}</span>
        ${alert.patient_name ? html` · ${pn(alert.patient_name)}` : null}</p>
      ${alert.detail ? html`<p class="hint">${alert.detail}</p>` : null}
      <label>${t('alerts.readback')}
        <input id="alert-readback" value=${rb} onInput=${(e) => setRb(e.target.value)} autofocus /></label>
      ${error ? html`<p class="error" id="alert-ack-error">${error}</p>` : null}
      <div class="toolbar">
        <button type="submit" class="primary" id="alert-ack-submit" disabled=${busy || !rb.trim()}>${t('alerts.submit')}</button>
        <button type="button" id="alert-ack-cancel" onClick=${onClose}>${t('common.cancel')}</button>
      </div>
    </form>
  </div>`;
}

// The red banner: every open alert this user must acknowledge, live.
export function AlertBanner({ me }) {
  const [alerts, setAlerts] = useState({});
  const [dialog, setDialog] = useState(null);
  useEffect(() => {
    if (!me || me.role === 'office') return undefined;
    let gone = false;
    const put = (a) => !gone && setAlerts((prev) => {
      const next = { ...prev };
      if (mine(me, a)) next[a.id] = a;
      else delete next[a.id];
      return next;
    });
    // once more a second later if the first read failed (a node that has not
    // seen the alert's commit yet, a network hiccup)
    const load = (id, again = true) =>
      get(`/api/v1/alerts/${seg(id)}`)
        .then(put)
        .catch(() => again && setTimeout(() => !gone && load(id, false), 1000));
    const scope = me.role === 'reader' || me.role === 'auditor' ? '&hospital=me' : '';
    get(`/api/v1/alerts?state=open&limit=50${scope}`)
      .then((doc) => doc.alerts.forEach(put))
      .catch(() => {});
    const es = new EventSource('/api/v1/alerts/events');
    const handler = (e) => {
      try {
        load(JSON.parse(e.data).alert);
      } catch (_) {
        /* not JSON */
      }
    };
    for (const ty of EVENTS) es.addEventListener(ty, handler);
    return () => {
      gone = true;
      es.close();
    };
  }, [me && me.user]);
  const list = Object.values(alerts).sort((a, b) => b.created_ms - a.created_ms);
  if (!list.length) return null;
  const shown = list.slice(0, 3);
  return html`<div class="alert-banner" id="alert-banner" role="alert" data-count=${list.length}>
    ${shown.map((a) => html`<div class="alert-row" data-alert=${a.id}>
      <strong>${t('alerts.banner')}</strong>
      <span>${a.item_name || a.item}: <b class="alert-value">${a.value}</b></span>
      ${a.patient_name ? html`<span>${pn(a.patient_name)}</span>` : null}
      <span class="alert-time">${fmtTime(a.created_ms)} · ${t('alerts.s.' + a.state)}</span>
      <button type="button" class="alert-ack" onClick=${() => setDialog(a)}>${t('alerts.ack')}</button>
    </div>`)}
    ${list.length > 3 ? html`<div class="alert-row">${t('alerts.more', { n: list.length - 3 })}</div>` : null}
    ${dialog ? html`<${AckDialog} alert=${dialog} onClose=${() => setDialog(null)}
      onDone=${(doc) => {
        setDialog(null);
        setAlerts((prev) => {
          const next = { ...prev };
          delete next[doc.id];
          return next;
        });
      }} />` : null}
  </div>`;
}

function LogRow({ e }) {
  const what = t('alerts.ev.' + e.event);
  const extra = e.event === 'notify'
    ? `${e.channel} ${e.ok ? '✓' : '✗'} ${e.detail || ''}`
    : e.event === 'readback_refused' || e.event === 'acknowledged'
      ? `${e.user || ''} «${e.readback || ''}»`
      : `${e.name || e.user || ''}${e.role === 'duty' ? ' (duty)' : ''}`;
  return html`<li data-event=${e.event}>${fmtTime(e.at)} ${what} ${extra}</li>`;
}

function Register({ me }) {
  const today = new Date(Date.now() - new Date().getTimezoneOffset() * 60000).toISOString().slice(0, 10);
  const [form, setForm] = useState({ state: '', hospital: '', from: '', to: '' });
  const [res, setRes] = useState(null);
  const [open, setOpen] = useState(null);
  const [error, setError] = useState('');
  const all = me.role === 'admin' || me.role === 'office';
  const run = async (cursor) => {
    setError('');
    const q = new URLSearchParams();
    if (form.state) q.set('state', form.state);
    if (form.hospital) q.set('hospital', form.hospital);
    if (form.from) q.set('from', String(new Date(form.from + 'T00:00:00').getTime()));
    if (form.to) q.set('to', String(new Date(form.to + 'T23:59:59').getTime()));
    if (cursor) q.set('cursor', cursor);
    try {
      const doc = await get(`/api/v1/alerts?${q}`);
      setRes(doc);
    } catch (e) {
      setError(e.message);
    }
  };
  const show = async (a) => {
    if (open && open.id === a.id) return setOpen(null);
    try {
      setOpen(await get(`/api/v1/alerts/${seg(a.id)}`));
    } catch (e) {
      setError(e.message);
    }
  };
  const [quality, setQuality] = useState(null);
  useEffect(() => {
    run(null);
    // the office's and admins' quality figures (GET /api/v1/stats/alerts)
    if (all) get('/api/v1/stats/alerts').then((d) => setQuality(d.total)).catch(() => {});
  }, []);
  const set = (k) => (e) => setForm({ ...form, [k]: e.target.value });
  return html`<section id="alerts-page">
    <h2>${t('alerts.title')}</h2>
    <form class="panel toolbar" id="alerts-form" onSubmit=${(e) => { e.preventDefault(); run(null); }}>
      <label>${t('alerts.state')} <select id="alerts-state" value=${form.state} onChange=${set('state')}>
        ${STATES.map((s) => html`<option value=${s}>${t('alerts.s.' + s)}</option>`)}</select></label>
      ${all ? html`<label>${t('alerts.hospital')} <input id="alerts-hospital" value=${form.hospital} onInput=${set('hospital')} /></label>` : null}
      <label>${t('alerts.from')} <input type="date" id="alerts-from" max=${today} value=${form.from} onInput=${set('from')} /></label>
      <label>${t('alerts.to')} <input type="date" id="alerts-to" value=${form.to} onInput=${set('to')} /></label>
      <button type="submit" class="primary" id="alerts-search">${t('alerts.search')}</button>
    </form>
    ${error ? html`<p class="error" id="alerts-error">${error}</p>` : null}
    ${quality ? html`<p class="panel info" id="alerts-quality" data-raised=${quality.raised}>${t('alerts.quality', {
      raised: quality.raised, ok: quality.acked_in_time, late: quality.acked_late, od: quality.overdue_final,
      rate: quality.in_time_rate === null ? '—' : `${Math.round(quality.in_time_rate * 100)}%`,
    })}</p>` : null}
    ${res ? html`<div class="panel"><div class="table-scroll"><table class="grid" id="alerts-table">
      <thead><tr><th>${t('alerts.time')}</th><th>${t('alerts.kind')}</th><th>${t('alerts.hospital')}</th><th>${t('alerts.patient')}</th>
        <th>${t('alerts.item')}</th><th>${t('alerts.value')}</th><th>${t('alerts.flag')}</th><th>${t('alerts.state')}</th>
        <th>${t('alerts.target')}</th><th>${t('alerts.ackedBy')}</th><th>${t('alerts.ackedAt')}</th></tr></thead>
      <tbody>${res.alerts.length ? res.alerts.map((a) => html`<tr data-alert=${a.id} data-state=${a.state}
          class=${a.state === 'acknowledged' ? '' : 'flagged'} onClick=${() => show(a)}>
        <td>${fmtTime(a.created_ms)}</td><td>${t('alerts.kind.' + a.kind)}</td><td>${a.hospital}</td><td>${pn(a.patient_name)}</td>
        <td>${a.item_name || a.item}</td><td>${a.value}</td><td>${a.flag}</td><td>${t('alerts.s.' + a.state)}</td>
        <td>${a.target}</td><td>${a.acked_by || ''}</td><td>${a.acked_ms ? fmtTime(a.acked_ms) : ''}</td></tr>`)
        : html`<tr><td colspan="11" class="hint">${t('alerts.none')}</td></tr>`}</tbody>
    </table></div>
    ${res.next_cursor ? html`<button type="button" id="alerts-next" onClick=${() => run(res.next_cursor)}>${t('alerts.next')}</button>` : null}
    </div>` : null}
    ${open ? html`<div class="panel" id="alert-log" data-alert=${open.id}>
      <h3>${t('alerts.log')}: ${open.item_name || open.item} ${open.value}</h3>
      <ol>${(open.log || []).map((e) => html`<${LogRow} e=${e} />`)}</ol>
    </div>` : null}
  </section>`;
}

registerPage({
  path: '/alerts',
  roles: ['technician', 'reader', 'auditor', 'external', 'admin', 'office'],
  nav: 'nav.alerts',
  order: 55,
  component: Register,
});
