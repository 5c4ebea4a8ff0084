// 质控与统计: the 医共体 office's statistics dashboard (decision 0031) —
// exams received per township and center per day, remote diagnosis,
// turnaround against target per center and priority, the overdue list, the
// recognition rate and the cost avoided. Each block has a chart, a table
// beside it and a CSV download (UTF-8 with a BOM, for Excel).
import { useEffect, useMemo, useState } from 'preact/hooks';
import { html } from 'htm/preact';
import { t, addMessages, fmtTime, fmtDuration } from '../i18n.js';
import { get } from '../api.js';
import { registerPage } from '../router.js';
import { Chart, lastDays, downloadCsv, minutes } from './office_common.js';

addMessages({
  'zh-CN': {
    'role.office': '医共体办公室',
    'office.title': '质控与统计',
    'office.from': '开始日期',
    'office.to': '结束日期',
    'office.refresh': '刷新',
    'office.csv': '导出 CSV',
    'office.loading': '正在加载…',
    'office.received': '接收检查',
    'office.finalized': '完成报告',
    'office.remote': '远程诊断',
    'office.overdueNow': '当前超时',
    'office.recognitionRate': '互认率',
    'office.costAvoided': '节省费用（元）',
    'office.volumes': '检查量（按乡镇卫生院 / 诊断中心，每日）',
    'office.byHospital': '按医院',
    'office.byCenter': '按诊断中心',
    'office.day': '日期',
    'office.total': '合计',
    'office.remoteTitle': '远程诊断量（上级中心为其他医院出具的报告）',
    'office.turnaround': '报告周转时间与目标',
    'office.center': '诊断中心',
    'office.priority': '优先级',
    'office.count': '报告数',
    'office.mean': '平均（分钟）',
    'office.median': '中位数（分钟）',
    'office.target': '目标（分钟）',
    'office.withinTarget': '按时完成',
    'office.share': '按时率',
    'office.overdueFlagged': '曾超时',
    'office.overdue': '超时检查',
    'office.noOverdue': '当前没有超时检查',
    'office.study': '检查 UID',
    'office.accession': '检查号',
    'office.hospital': '送检医院',
    'office.modality': '类型',
    'office.state': '状态',
    'office.due': '应完成',
    'office.late': '已超时',
    'office.claimedBy': '阅片医师',
    'office.recognition': '检查检验结果互认',
    'office.lookups': '查询次数',
    'office.accepts': '互认',
    'office.rejections': '不予互认',
    'office.prio.stat': '急诊',
    'office.prio.urgent': '加急',
    'office.prio.routine': '常规',
    'office.none': '无数据',
  },
  en: {
    'role.office': 'Community office',
    'office.title': 'Quality & statistics',
    'office.from': 'From',
    'office.to': 'To',
    'office.refresh': 'Refresh',
    'office.csv': 'Export CSV',
    'office.loading': 'Loading…',
    'office.received': 'Exams received',
    'office.finalized': 'Reports final',
    'office.remote': 'Remote diagnosis',
    'office.overdueNow': 'Overdue now',
    'office.recognitionRate': 'Recognition rate',
    'office.costAvoided': 'Cost avoided (CNY)',
    'office.volumes': 'Exam volumes per township hospital and center, per day',
    'office.byHospital': 'By hospital',
    'office.byCenter': 'By center',
    'office.day': 'Day',
    'office.total': 'Total',
    'office.remoteTitle': 'Remote diagnosis (reports by a center for another hospital)',
    'office.turnaround': 'Turnaround against target',
    'office.center': 'Center',
    'office.priority': 'Priority',
    'office.count': 'Reports',
    'office.mean': 'Mean (min)',
    'office.median': 'Median (min)',
    'office.target': 'Target (min)',
    'office.withinTarget': 'Within target',
    'office.share': 'Share on time',
    'office.overdueFlagged': 'Went overdue',
    'office.overdue': 'Overdue exams',
    'office.noOverdue': 'No exam is overdue',
    'office.study': 'Study UID',
    'office.accession': 'Accession',
    'office.hospital': 'Hospital',
    'office.modality': 'Modality',
    'office.state': 'State',
    'office.due': 'Due',
    'office.late': 'Late by',
    'office.claimedBy': 'Reader',
    'office.recognition': 'Mutual recognition of results',
    'office.lookups': 'Lookups',
    'office.accepts': 'Accepted',
    'office.rejections': 'Rejected',
    'office.prio.stat': 'Stat',
    'office.prio.urgent': 'Urgent',
    'office.prio.routine': 'Routine',
    'office.none': 'No data',
  },
});

const pct = (x) => (x === null || x === undefined ? '' : `${(x * 100).toFixed(1)}%`);

function Card({ id, label, value }) {
  return html`<div class="stat-card" id=${id}><div class="value">${value}</div><div class="label">${label}</div></div>`;
}

function PanelHead({ title, csvId, onCsv }) {
  return html`<div class="panel-head"><h3>${title}</h3>
    ${onCsv ? html`<button type="button" id=${csvId} onClick=${onCsv}>${t('office.csv')}</button>` : null}</div>`;
}

function Volumes({ vol, hospitals, centers, range }) {
  const name = (list, id) => (list.find((x) => x.id === id) || { name: id }).name;
  const hosp = hospitals.map((h) => h.id);
  const option = useMemo(() => {
    const days = vol.days.map((d) => d.day.slice(5));
    return {
      tooltip: { trigger: 'axis' },
      legend: { top: 0 },
      grid: { left: 40, right: 20, top: 40, bottom: 30 },
      xAxis: { type: 'category', data: days },
      yAxis: { type: 'value', minInterval: 1 },
      series: [
        ...hosp.map((h) => ({
          name: name(hospitals, h), type: 'bar', stack: 'received',
          data: vol.days.map((d) => d.received_by_hospital[h] || 0),
        })),
        { name: t('office.remote'), type: 'line', data: vol.days.map((d) => d.remote) },
      ],
    };
  }, [vol, hospitals]);
  const centerOption = useMemo(() => ({
    tooltip: { trigger: 'axis' },
    legend: { top: 0 },
    grid: { left: 40, right: 20, top: 40, bottom: 30 },
    xAxis: { type: 'category', data: vol.days.map((d) => d.day.slice(5)) },
    yAxis: { type: 'value', minInterval: 1 },
    series: centers.flatMap((c) => [
      { name: `${c.name} · ${t('office.received')}`, type: 'bar', data: vol.days.map((d) => d.received_by_center[c.id] || 0) },
      { name: `${c.name} · ${t('office.finalized')}`, type: 'line', data: vol.days.map((d) => d.finalized_by_center[c.id] || 0) },
    ]),
  }), [vol, centers]);
  const rows = vol.days.filter((d) => d.received || d.remote || Object.keys(d.finalized_by_center).length).reverse();
  const csv = () => downloadCsv(`/api/v1/stats/volumes?from=${range.from}&to=${range.to}`, `huren-volumes-${range.from}-${range.to}.csv`);
  return html`<section class="panel" id="office-volumes">
    <${PanelHead} title=${t('office.volumes')} csvId="csv-volumes" onCsv=${csv} />
    <div class="chart-table">
      <div>
        <h4>${t('office.byHospital')}</h4>
        <${Chart} id="chart-volumes" option=${option} />
        <h4>${t('office.byCenter')}</h4>
        <${Chart} id="chart-centers" option=${centerOption} height=${240} />
      </div>
      <div class="table-scroll">
        <table class="grid" id="office-volumes-table">
          <thead><tr><th>${t('office.day')}</th>
            ${hosp.map((h) => html`<th>${name(hospitals, h)}</th>`)}
            <th>${t('office.received')}</th><th>${t('office.remote')}</th></tr></thead>
          <tbody>
            ${rows.map((d) => html`<tr data-day=${d.day}><td>${d.day}</td>
              ${hosp.map((h) => html`<td class="num">${d.received_by_hospital[h] || 0}</td>`)}
              <td class="num" data-received>${d.received}</td><td class="num" data-remote>${d.remote}</td></tr>`)}
            <tr class="total" data-day="total"><th>${t('office.total')}</th>
              ${hosp.map((h) => html`<th class="num" data-hospital=${h}>${vol.total.received_by_hospital[h] || 0}</th>`)}
              <th class="num" data-received>${vol.total.received}</th><th class="num" data-remote>${vol.total.remote}</th></tr>
          </tbody>
        </table>
      </div>
    </div>
  </section>`;
}

function Remote({ vol, centers }) {
  const list = centers.filter((c) => vol.total.finalized_by_center[c.id] || vol.total.remote_by_center[c.id]);
  return html`<section class="panel" id="office-remote">
    <${PanelHead} title=${t('office.remoteTitle')} />
    <table class="grid" id="office-remote-table">
      <thead><tr><th>${t('office.center')}</th><th>${t('office.finalized')}</th><th>${t('office.remote')}</th></tr></thead>
      <tbody>${list.length ? list.map((c) => html`<tr data-center=${c.id}><td>${c.name}</td>
        <td class="num" data-finalized>${vol.total.finalized_by_center[c.id] || 0}</td>
        <td class="num" data-remote>${vol.total.remote_by_center[c.id] || 0}</td></tr>`)
        : html`<tr><td colspan="3" class="hint">${t('office.none')}</td></tr>`}</tbody>
    </table>
  </section>`;
}

function Turnaround({ tat, range }) {
  const rows = tat.rows.filter((r) => r.count || r.overdue_flagged);
  const label = (r) => `${r.center_name} · ${t('office.prio.' + r.priority)}`;
  const option = useMemo(() => ({
    tooltip: { trigger: 'axis' },
    legend: { top: 0 },
    grid: { left: 50, right: 20, top: 40, bottom: 60 },
    xAxis: { type: 'category', data: rows.map(label), axisLabel: { interval: 0, rotate: 20 } },
    yAxis: { type: 'value', name: t('office.mean').replace(/.*（|.*\(|）|\)/g, '') },
    series: [
      { name: t('office.mean'), type: 'bar', data: rows.map((r) => (r.mean_ms === null ? null : +(r.mean_ms / 60000).toFixed(1))) },
      { name: t('office.median'), type: 'bar', data: rows.map((r) => (r.median_ms === null ? null : +(r.median_ms / 60000).toFixed(1))) },
      { name: t('office.target'), type: 'line', symbol: 'diamond', symbolSize: 10, lineStyle: { type: 'dashed' }, data: rows.map((r) => +(r.target_ms / 60000).toFixed(1)) },
    ],
  }), [tat]);
  const csv = () => downloadCsv(`/api/v1/stats/turnaround?from=${range.from}&to=${range.to}`, `huren-turnaround-${range.from}-${range.to}.csv`);
  return html`<section class="panel" id="office-turnaround">
    <${PanelHead} title=${t('office.turnaround')} csvId="csv-turnaround" onCsv=${csv} />
    <div class="chart-table">
      <${Chart} id="chart-turnaround" option=${option} />
      <div class="table-scroll"><table class="grid" id="office-turnaround-table">
        <thead><tr><th>${t('office.center')}</th><th>${t('office.priority')}</th><th>${t('office.count')}</th>
          <th>${t('office.mean')}</th><th>${t('office.median')}</th><th>${t('office.target')}</th>
          <th>${t('office.share')}</th><th>${t('office.overdueFlagged')}</th></tr></thead>
        <tbody>${rows.length ? rows.map((r) => html`<tr data-center=${r.center} data-priority=${r.priority}>
          <td>${r.center_name}</td><td>${t('office.prio.' + r.priority)}</td>
          <td class="num" data-count>${r.count}</td><td class="num">${minutes(r.mean_ms)}</td>
          <td class="num">${minutes(r.median_ms)}</td><td class="num">${minutes(r.target_ms)}</td>
          <td class="num" data-share><span class=${'badge ' + (r.within_target_share === null ? '' : r.within_target_share >= 0.9 ? 'ok' : 'warn')}>${pct(r.within_target_share)}</span></td>
          <td class="num" data-overdue>${r.overdue_flagged}</td></tr>`)
          : html`<tr><td colspan="8" class="hint">${t('office.none')}</td></tr>`}</tbody>
      </table></div>
    </div>
  </section>`;
}

function Overdue({ od }) {
  const now = Date.now();
  const items = od.centers.flatMap((c) => c.items.map((i) => ({ ...i, center_name: c.center_name, center: c.center })));
  const csv = () => downloadCsv('/api/v1/stats/overdue', 'huren-overdue.csv');
  return html`<section class="panel" id="office-overdue">
    <${PanelHead} title=${t('office.overdue')} csvId="csv-overdue" onCsv=${csv} />
    <div class="toolbar">${od.centers.map((c) => html`<span class=${'badge ' + (c.count ? 'bad' : 'ok')} data-center=${c.center} data-count=${c.count}>${c.center_name}: ${c.count}</span>`)}</div>
    <div class="table-scroll"><table class="grid" id="office-overdue-table">
      <thead><tr><th>${t('office.center')}</th><th>${t('office.priority')}</th><th>${t('office.hospital')}</th>
        <th>${t('office.modality')}</th><th>${t('office.accession')}</th><th>${t('office.due')}</th>
        <th>${t('office.late')}</th><th>${t('office.claimedBy')}</th><th>${t('office.study')}</th></tr></thead>
      <tbody>${items.length ? items.map((i) => html`<tr class="flagged" data-study=${i.study}>
        <td>${i.center_name}</td><td>${t('office.prio.' + i.priority)}</td><td>${i.hospital}</td><td>${i.modality}</td>
        <td>${i.accession}</td><td>${fmtTime(i.due_ms)}</td><td>${fmtDuration(now - i.due_ms)}</td>
        <td>${i.claimed_by}</td><td class="hint">${i.study}</td></tr>`)
        : html`<tr><td colspan="9" class="hint">${t('office.noOverdue')}</td></tr>`}</tbody>
    </table></div>
  </section>`;
}

function Recognition({ rec, range }) {
  const groups = rec.groups || [];
  const decided = rec.total.accepts + rec.total.rejections;
  const option = useMemo(() => (!decided ? {
    title: { text: t('office.none'), left: 'center', top: 'middle', textStyle: { color: '#616e7c', fontSize: 14 } },
  } : {
    tooltip: { trigger: 'item' },
    legend: { bottom: 0 },
    series: [{
      type: 'pie', radius: ['40%', '65%'],
      data: [
        { name: t('office.accepts'), value: rec.total.accepts },
        { name: t('office.rejections'), value: rec.total.rejections },
      ],
    }],
  }), [rec]);
  const csv = () => downloadCsv(`/api/v1/stats/recognition?from=${range.from}&to=${range.to}&group=center`, `huren-recognition-${range.from}-${range.to}.csv`);
  return html`<section class="panel" id="office-recognition">
    <${PanelHead} title=${t('office.recognition')} csvId="csv-recognition" onCsv=${csv} />
    <div class="chart-table">
      <${Chart} id="chart-recognition" option=${option} height=${240} />
      <table class="grid" id="office-recognition-table">
        <thead><tr><th>${t('office.center')}</th><th>${t('office.lookups')}</th><th>${t('office.accepts')}</th>
          <th>${t('office.rejections')}</th><th>${t('office.recognitionRate')}</th><th>${t('office.costAvoided')}</th></tr></thead>
        <tbody>
          ${groups.map((g) => html`<tr data-center=${g.key}><td>${g.name || g.key}</td><td class="num">${g.lookups}</td>
            <td class="num">${g.accepts}</td><td class="num">${g.rejections}</td><td class="num">${pct(g.recognition_rate)}</td>
            <td class="num">${g.cost_avoided_yuan}</td></tr>`)}
          <tr data-center="total"><th>${t('office.total')}</th><th class="num">${rec.total.lookups}</th>
            <th class="num">${rec.total.accepts}</th><th class="num">${rec.total.rejections}</th>
            <th class="num">${pct(rec.total.recognition_rate)}</th><th class="num">${rec.total.cost_avoided_yuan}</th></tr>
        </tbody>
      </table>
    </div>
  </section>`;
}

function Office() {
  const [range, setRange] = useState(lastDays(30));
  const [form, setForm] = useState(range);
  const [data, setData] = useState(null);
  const [error, setError] = useState('');
  useEffect(() => {
    let live = true;
    const q = `from=${range.from}&to=${range.to}`;
    setError('');
    Promise.all([
      get(`/api/v1/stats/volumes?${q}`),
      get(`/api/v1/stats/turnaround?${q}`),
      get('/api/v1/stats/overdue'),
      get(`/api/v1/stats/recognition?${q}&group=center`),
      get('/api/v1/config/hospitals'),
      get('/api/v1/config/centers'),
    ]).then(([vol, tat, od, rec, h, c]) => {
      if (live) setData({ vol, tat, od, rec, hospitals: h.hospitals, centers: c.centers });
    }, (e) => live && setError(e.message));
    return () => { live = false; };
  }, [range]);
  const submit = (e) => {
    e.preventDefault();
    setRange({ ...form });
  };
  const overdueNow = data ? data.od.centers.reduce((n, c) => n + c.count, 0) : 0;
  const finalized = data ? Object.values(data.vol.total.finalized_by_center).reduce((a, b) => a + b, 0) : 0;
  return html`<section id="office-page">
    <h2>${t('office.title')}</h2>
    <form class="toolbar" id="office-range" onSubmit=${submit}>
      <label>${t('office.from')} <input type="date" id="office-from" value=${form.from} onInput=${(e) => setForm({ ...form, from: e.target.value })} /></label>
      <label>${t('office.to')} <input type="date" id="office-to" value=${form.to} onInput=${(e) => setForm({ ...form, to: e.target.value })} /></label>
      <button type="submit" class="primary" id="office-refresh">${t('office.refresh')}</button>
    </form>
    ${error ? html`<p class="error" id="office-error">${error}</p>` : null}
    ${!data && !error ? html`<p class="hint">${t('office.loading')}</p>` : null}
    ${data ? html`
      <div class="stat-cards" id="office-cards">
        <${Card} id="card-received" label=${t('office.received')} value=${data.vol.total.received} />
        <${Card} id="card-finalized" label=${t('office.finalized')} value=${finalized} />
        <${Card} id="card-remote" label=${t('office.remote')} value=${data.vol.total.remote} />
        <${Card} id="card-overdue" label=${t('office.overdueNow')} value=${overdueNow} />
        <${Card} id="card-rate" label=${t('office.recognitionRate')} value=${pct(data.rec.total.recognition_rate) || '—'} />
        <${Card} id="card-cost" label=${t('office.costAvoided')} value=${data.rec.total.cost_avoided_yuan} />
      </div>
      <${Volumes} vol=${data.vol} hospitals=${data.hospitals} centers=${data.centers} range=${range} />
      <${Remote} vol=${data.vol} centers=${data.centers} />
      <${Turnaround} tat=${data.tat} range=${range} />
      <${Overdue} od=${data.od} />
      <${Recognition} rec=${data.rec} range=${range} />` : null}
  </section>`;
}

registerPage({ path: '/office', roles: ['office', 'admin'], nav: 'nav.office', order: 50, component: Office });
