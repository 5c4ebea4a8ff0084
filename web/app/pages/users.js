// 用户管理 (admins): list, add (the rules of `huren user add`), disable,
// enable, reset a password; 医院与诊断中心: the hospitals and centers of the
// configuration, read-only (decision 0031).
import { useEffect, useState } from 'preact/hooks';
import { html } from 'htm/preact';
import { t, addMessages, fmtTime } from '../i18n.js';
import { get, post, seg } from '../api.js';
import { registerPage } from '../router.js';

addMessages({
  'zh-CN': {
    'nav.users': '用户管理',
    'nav.config': '医院与中心',
    'users.title': '用户管理',
    'users.add': '新增用户',
    'users.name': '用户名',
    'users.displayName': '姓名',
    'users.role': '角色',
    'users.hospital': '医院',
    'users.center': '诊断中心',
    'users.noCenter': '（无）',
    'users.password': '初始密码（至少 10 个字符）',
    'users.created': '创建时间',
    'users.status': '状态',
    'users.active': '正常',
    'users.disabled': '已停用',
    'users.disable': '停用',
    'users.enable': '启用',
    'users.reset': '重置密码',
    'users.newPassword': '新密码',
    'users.save': '保存',
    'users.cancel': '取消',
    'users.added': '已新增用户 {name}',
    'users.done': '已完成：{name}',
    'users.filter': '筛选',
    'users.addFailed': '无法新增用户：',
    'config.title': '医院与诊断中心（只读，来自配置文件）',
    'config.hospitals': '医院',
    'config.centers': '诊断中心',
    'config.id': '编号',
    'config.name': '名称',
    'config.level': '级别',
    'config.level.county': '县级',
    'config.level.township': '乡镇',
    'config.aes': 'AE 名称',
    'config.kind': '类型',
    'config.kind.imaging': '医学影像',
    'config.kind.ecg': '心电',
    'config.kind.pathology': '病理',
    'config.kind.lab': '检验',
    'config.hospital': '所属医院',
    'config.signoff': '需审核',
    'config.hours': '开放时间',
    'config.always': '全天',
    'config.targets': '周转目标（急诊 / 加急 / 常规）',
    'config.yes': '是',
    'config.no': '否',
  },
  en: {
    'nav.users': 'Users',
    'nav.config': 'Hospitals & centers',
    'users.title': 'Users',
    'users.add': 'Add a user',
    'users.name': 'User name',
    'users.displayName': 'Display name',
    'users.role': 'Role',
    'users.hospital': 'Hospital',
    'users.center': 'Center',
    'users.noCenter': '(none)',
    'users.password': 'Initial password (10 characters or more)',
    'users.created': 'Created',
    'users.status': 'Status',
    'users.active': 'Active',
    'users.disabled': 'Disabled',
    'users.disable': 'Disable',
    'users.enable': 'Enable',
    'users.reset': 'Reset password',
    'users.newPassword': 'New password',
    'users.save': 'Save',
    'users.cancel': 'Cancel',
    'users.added': 'User {name} added',
    'users.done': 'Done: {name}',
    'users.filter': 'Filter',
    'users.addFailed': 'Cannot add the user: ',
    'config.title': 'Hospitals and centers (read-only, from the configuration file)',
    'config.hospitals': 'Hospitals',
    'config.centers': 'Centers',
    'config.id': 'Id',
    'config.name': 'Name',
    'config.level': 'Level',
    'config.level.county': 'County',
    'config.level.township': 'Township',
    'config.aes': 'AE titles',
    'config.kind': 'Kind',
    'config.kind.imaging': 'Imaging',
    'config.kind.ecg': 'ECG',
    'config.kind.pathology': 'Pathology',
    'config.kind.lab': 'Laboratory',
    'config.hospital': 'Hospital',
    'config.signoff': 'Co-signature',
    'config.hours': 'Hours',
    'config.always': 'Always open',
    'config.targets': 'Turnaround targets (stat / urgent / routine)',
    'config.yes': 'Yes',
    'config.no': 'No',
  },
});

const ROLES = ['technician', 'reader', 'auditor', 'external', 'office', 'admin'];

function AddUser({ hospitals, centers, onDone }) {
  const blank = { name: '', display_name: '', role: 'technician', hospital: hospitals[0] ? hospitals[0].id : '', center: '', password: '' };
  const [f, setF] = useState(blank);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const set = (k) => (e) => setF({ ...f, [k]: e.target.value });
  const own = centers.filter((c) => c.hospital === f.hospital);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    const body = { name: f.name.trim(), role: f.role, hospital: f.hospital, password: f.password };
    if (f.display_name.trim()) body.display_name = f.display_name.trim();
    if (f.center) body.center = f.center;
    try {
      await post('/api/v1/users', body);
      setF(blank);
      onDone(t('users.added', { name: body.name }));
    } catch (err) {
      setError(err.detail || err.message);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="panel inline-form" id="user-add" onSubmit=${submit}>
    <h3 style="width:100%">${t('users.add')}</h3>
    <label>${t('users.name')}<input id="add-name" value=${f.name} onInput=${set('name')} required /></label>
    <label>${t('users.displayName')}<input id="add-display" value=${f.display_name} onInput=${set('display_name')} /></label>
    <label>${t('users.role')}<select id="add-role" value=${f.role} onChange=${set('role')}>
      ${ROLES.map((r) => html`<option value=${r}>${t('role.' + r)}</option>`)}</select></label>
    <label>${t('users.hospital')}<select id="add-hospital" value=${f.hospital} onChange=${(e) => setF({ ...f, hospital: e.target.value, center: '' })}>
      ${hospitals.map((h) => html`<option value=${h.id}>${h.name}</option>`)}</select></label>
    <label>${t('users.center')}<select id="add-center" value=${f.center} onChange=${set('center')}>
      <option value="">${t('users.noCenter')}</option>
      ${own.map((c) => html`<option value=${c.id}>${c.name}</option>`)}</select></label>
    <label>${t('users.password')}<input type="password" id="add-password" autocomplete="new-password" value=${f.password} onInput=${set('password')} required /></label>
    <button type="submit" class="primary" id="add-submit" disabled=${busy}>${t('users.add')}</button>
    ${error ? html`<p class="error" id="add-error" style="width:100%">${t('users.addFailed')}<span id="add-error-detail">${error}</span></p>` : null}
  </form>`;
}

function Users({ me }) {
  const [users, setUsers] = useState(null);
  const [cfg, setCfg] = useState(null);
  const [error, setError] = useState('');
  const [info, setInfo] = useState('');
  const [reset, setReset] = useState(null); // {name, password}
  const [tick, setTick] = useState(0);
  useEffect(() => {
    get('/api/v1/users').then((d) => setUsers(d.users), (e) => setError(e.message));
  }, [tick]);
  useEffect(() => {
    Promise.all([get('/api/v1/config/hospitals'), get('/api/v1/config/centers')])
      .then(([h, c]) => setCfg({ hospitals: h.hospitals, centers: c.centers }), (e) => setError(e.message));
  }, []);
  const act = async (name, what, body) => {
    setError('');
    setInfo('');
    try {
      await post(`/api/v1/users/${seg(name)}/${what}`, body);
      setInfo(t('users.done', { name }));
      setReset(null);
      setTick((n) => n + 1);
    } catch (e) {
      setError(e.detail || e.message);
    }
  };
  return html`<section id="users-page">
    <h2>${t('users.title')}</h2>
    ${error ? html`<p class="error" id="users-error">${error}</p>` : null}
    ${info ? html`<p class="info" id="users-info">${info}</p>` : null}
    ${cfg ? html`<${AddUser} hospitals=${cfg.hospitals} centers=${cfg.centers} onDone=${(m) => { setInfo(m); setTick((n) => n + 1); }} />` : null}
    ${users ? html`<table class="grid" id="users-table">
      <thead><tr><th>${t('users.name')}</th><th>${t('users.displayName')}</th><th>${t('users.role')}</th><th>${t('users.hospital')}</th>
        <th>${t('users.center')}</th><th>${t('users.created')}</th><th>${t('users.status')}</th><th></th></tr></thead>
      <tbody>${users.map((u) => html`<tr data-user=${u.name} data-disabled=${String(u.disabled)} class=${u.disabled ? 'flagged' : ''}>
        <td>${u.name}</td><td>${u.display_name}</td><td>${t('role.' + u.role)}</td><td>${u.hospital}</td><td>${u.center}</td>
        <td>${fmtTime(u.created * 1000)}</td>
        <td><span class=${'badge ' + (u.disabled ? 'bad' : 'ok')}>${u.disabled ? t('users.disabled') : t('users.active')}</span></td>
        <td>${reset && reset.name === u.name ? html`<form class="inline-form" data-reset-form=${u.name} onSubmit=${(e) => { e.preventDefault(); act(u.name, 'password', { password: reset.password }); }}>
            <input type="password" autocomplete="new-password" placeholder=${t('users.newPassword')} data-reset-password=${u.name}
              value=${reset.password} onInput=${(e) => setReset({ name: u.name, password: e.target.value })} />
            <button type="submit" class="primary" data-reset-save=${u.name}>${t('users.save')}</button>
            <button type="button" onClick=${() => setReset(null)}>${t('users.cancel')}</button></form>`
          : html`<div class="actions" style="margin:0">
            ${u.disabled
              ? html`<button type="button" data-enable=${u.name} onClick=${() => act(u.name, 'enable')}>${t('users.enable')}</button>`
              : html`<button type="button" class="danger" data-disable=${u.name} disabled=${u.name === me.user} onClick=${() => act(u.name, 'disable')}>${t('users.disable')}</button>`}
            <button type="button" data-reset=${u.name} onClick=${() => setReset({ name: u.name, password: '' })}>${t('users.reset')}</button></div>`}</td>
      </tr>`)}</tbody></table>` : null}
  </section>`;
}

const fmtHours = (h) => {
  if (!h) return t('config.always');
  const p = (m) => `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
  return `${p(h.open_min)}–${p(h.close_min)}`;
};
const minutes = (ms) => `${Math.round(ms / 60000)}`;

function Config() {
  const [cfg, setCfg] = useState(null);
  const [error, setError] = useState('');
  useEffect(() => {
    Promise.all([get('/api/v1/config/hospitals'), get('/api/v1/config/centers')])
      .then(([h, c]) => setCfg({ hospitals: h.hospitals, centers: c.centers }), (e) => setError(e.message));
  }, []);
  const hname = (id) => ((cfg && cfg.hospitals.find((h) => h.id === id)) || { name: id }).name;
  return html`<section id="config-page">
    <h2>${t('config.title')}</h2>
    ${error ? html`<p class="error">${error}</p>` : null}
    ${cfg ? html`<div class="panel"><h3>${t('config.hospitals')}</h3>
      <table class="grid" id="config-hospitals">
        <thead><tr><th>${t('config.id')}</th><th>${t('config.name')}</th><th>${t('config.level')}</th><th>${t('config.aes')}</th><th>${t('config.centers')}</th></tr></thead>
        <tbody>${cfg.hospitals.map((h) => html`<tr data-hospital=${h.id}><td>${h.id}</td><td>${h.name}</td>
          <td>${t('config.level.' + h.level)}</td><td>${h.ae_titles.join(', ')}</td><td>${h.centers.join(', ')}</td></tr>`)}</tbody>
      </table></div>
      <div class="panel"><h3>${t('config.centers')}</h3>
      <table class="grid" id="config-centers">
        <thead><tr><th>${t('config.id')}</th><th>${t('config.name')}</th><th>${t('config.kind')}</th><th>${t('config.hospital')}</th>
          <th>${t('config.signoff')}</th><th>${t('config.hours')}</th><th>${t('config.targets')}</th></tr></thead>
        <tbody>${cfg.centers.map((c) => html`<tr data-center=${c.id}><td>${c.id}</td><td>${c.name}</td><td>${t('config.kind.' + c.kind)}</td>
          <td>${hname(c.hospital)}</td><td>${c.audit_signoff ? t('config.yes') : t('config.no')}</td><td>${fmtHours(c.hours)}</td>
          <td>${minutes(c.turnaround_ms.stat)} / ${minutes(c.turnaround_ms.urgent)} / ${minutes(c.turnaround_ms.routine)}</td></tr>`)}</tbody>
      </table></div>` : null}
  </section>`;
}

registerPage({ path: '/users', roles: ['admin'], nav: 'nav.users', order: 70, component: Users });
registerPage({ path: '/config', roles: ['office', 'auditor', 'admin'], nav: 'nav.config', order: 75, component: Config });
