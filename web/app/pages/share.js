// 云胶片分享: a technician of the exam's hospital or a reader / auditor of its
// center gives the patient a link (decision 0032): #/share/<study> lists the
// study's links (never their tokens), creates one with a chosen life (the
// token, the link and its QR code are shown once), and revokes one at
// once. Other pages link here with href('/share/' + study).
import { useEffect, useState } from 'preact/hooks';
import { html } from 'htm/preact';
import { t, addMessages, fmtTime } from '../i18n.js';
import { get, post, seg } from '../api.js';
import { registerPage } from '../router.js';

const LIVES = [
  ['1d', 86400],
  ['7d', 7 * 86400],
  ['30d', 30 * 86400],
];

addMessages({
  'zh-CN': {
    'share.title': '云胶片分享',
    'share.study': '检查',
    'share.life': '有效期',
    'share.life.1d': '1 天',
    'share.life.7d': '7 天',
    'share.life.30d': '30 天',
    'share.create': '生成分享链接',
    'share.created': '已生成链接：请患者扫描二维码或打开链接。链接只显示这一次。',
    'share.copy': '复制链接',
    'share.copied': '已复制',
    'share.list': '本检查的分享链接',
    'share.none': '暂无分享链接',
    'share.createdBy': '创建人',
    'share.createdAt': '创建时间',
    'share.expires': '有效期至',
    'share.state': '状态',
    'share.state.live': '有效',
    'share.state.revoked': '已撤销',
    'share.state.expired': '已过期',
    'share.revoke': '撤销',
    'share.images': '影像数',
  },
  en: {
    'share.title': 'Share with the patient',
    'share.study': 'Study',
    'share.life': 'Valid for',
    'share.life.1d': '1 day',
    'share.life.7d': '7 days',
    'share.life.30d': '30 days',
    'share.create': 'Create a link',
    'share.created': 'Link created: the patient scans the QR code or opens the link. It is shown only once.',
    'share.copy': 'Copy link',
    'share.copied': 'Copied',
    'share.list': 'Links of this study',
    'share.none': 'No links yet',
    'share.createdBy': 'Created by',
    'share.createdAt': 'Created',
    'share.expires': 'Valid until',
    'share.state': 'State',
    'share.state.live': 'Live',
    'share.state.revoked': 'Revoked',
    'share.state.expired': 'Expired',
    'share.revoke': 'Revoke',
    'share.images': 'Images',
  },
});

function SharePage({ params }) {
  const study = params.study;
  const [life, setLife] = useState(7 * 86400);
  const [list, setList] = useState(null);
  const [made, setMade] = useState(null);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const [copied, setCopied] = useState(false);
  const load = () =>
    get(`/api/v1/shares?study=${seg(study)}`).then((d) => setList(d.shares), (e) => setError(e.message));
  useEffect(() => {
    load();
  }, [study]);
  const create = async () => {
    setError('');
    setBusy(true);
    try {
      setMade(await post('/api/v1/shares', { study, expires_in_s: life }));
      setCopied(false);
      await load();
    } catch (e) {
      setError(e.message);
    } finally {
      setBusy(false);
    }
  };
  const revoke = async (id) => {
    setError('');
    try {
      await post(`/api/v1/shares/${seg(id)}/revoke`);
      if (made && made.id === id) setMade(null);
      await load();
    } catch (e) {
      setError(e.message);
    }
  };
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(made.link);
      setCopied(true);
    } catch (_) {
      setCopied(false);
    }
  };
  return html`<section>
    <h2>${t('share.title')}</h2>
    <div class="panel toolbar">
      <span>${t('share.study')}: <code id="share-study">${study}</code></span>
      <label>${t('share.life')}
        <select id="share-life" value=${life} onChange=${(e) => setLife(Number(e.target.value))}>
          ${LIVES.map(([k, s]) => html`<option value=${s}>${t('share.life.' + k)}</option>`)}
        </select></label>
      <button type="button" class="primary" id="share-create" disabled=${busy} onClick=${create}>${t('share.create')}</button>
    </div>
    ${error ? html`<p class="error" id="share-error" role="alert">${error}</p>` : null}
    ${made
      ? html`<div class="panel" id="share-made" data-share=${made.id}>
          <p class="info">${t('share.created')}</p>
          <img id="share-qr" src=${made.qr} alt="QR" width="200" height="200" />
          <p><a id="share-link" href=${made.url} target="_blank" rel="noopener noreferrer">${made.link}</a>
            <button type="button" id="share-copy" onClick=${copy}>${copied ? t('share.copied') : t('share.copy')}</button></p>
          <p>${t('share.expires')} ${fmtTime(made.expires_ms)}</p>
        </div>`
      : null}
    <div class="panel">
      <h3>${t('share.list')}</h3>
      ${list && !list.length ? html`<p id="share-none">${t('share.none')}</p>` : null}
      ${list && list.length
        ? html`<table class="grid" id="share-list">
            <thead><tr><th>${t('share.createdBy')}</th><th>${t('share.createdAt')}</th><th>${t('share.expires')}</th>
              <th>${t('share.images')}</th><th>${t('share.state')}</th><th></th></tr></thead>
            <tbody>${list.map((s) => html`<tr data-share=${s.id} data-state=${s.state}>
              <td>${s.created_by}</td><td>${fmtTime(s.created_ms)}</td><td>${fmtTime(s.expires_ms)}</td>
              <td class="num">${s.images}</td>
              <td><span class=${'badge ' + (s.state === 'live' ? 'ok' : 'warn')}>${t('share.state.' + s.state)}</span></td>
              <td>${s.state === 'live'
                ? html`<button type="button" data-revoke=${s.id} onClick=${() => revoke(s.id)}>${t('share.revoke')}</button>`
                : null}</td>
            </tr>`)}</tbody>
          </table>`
        : null}
    </div>
  </section>`;
}

registerPage({
  path: '/share/:study',
  roles: ['technician', 'reader', 'auditor', 'admin'],
  order: 90,
  component: SharePage,
});
