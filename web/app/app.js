// The shell: loads the session, routes "#/..." to the registered pages,
// shows each role only its pages, sends the browser without a session to the
// login page, and draws the header (navigation, user, language, logout).
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { html } from 'htm/preact';
import { t, getLang, setLang, onLang } from './i18n.js';
import { setUnauthorizedHandler } from './api.js';
import { getMe, loadMe, logout, onSession, setMe } from './session.js';
import { allowed, currentRoute, homePath, match, navPages, navigate, href } from './router.js';
import './pages/index.js';

function Header({ me, path }) {
  const nav = navPages(me.role);
  const name = me.display_name || me.user;
  const onLogout = async () => {
    try {
      await logout(false);
    } finally {
      navigate('/login', { msg: 'loggedOut' });
    }
  };
  return html`<header class="topbar">
    <a class="brand" href=${href(homePath(me))}>${t('app.title')}</a>
    <nav class="mainnav">
      ${nav.map(
        (p) => html`<a href=${href(p.path)} class=${path === p.path || path.startsWith(p.path + '/') ? 'active' : ''}
          data-nav=${p.path}>${t(p.nav)}</a>`
      )}
    </nav>
    <div class="userbox">
      <a href=${href('/account')} class="user" data-nav="/account" title=${me.hospital + (me.center ? ' / ' + me.center : '')}>
        ${name} · ${t('role.' + me.role)}</a>
      <button type="button" class="link" id="lang-switch" onClick=${() => setLang(getLang() === 'en' ? 'zh-CN' : 'en')}>
        ${t('app.lang')}</button>
      <button type="button" class="link" id="logout" onClick=${onLogout}>${t('account.logout')}</button>
    </div>
  </header>`;
}

function NoAccess({ me }) {
  return html`<section class="panel center" id="no-access">
    <h2>${t('app.noAccess')}</h2>
    <p>${t('app.noAccessHint', { role: t('role.' + me.role) })}</p>
    <p><a href=${href(homePath(me))}>${t('app.home')}</a></p>
  </section>`;
}

function NotFound({ me }) {
  return html`<section class="panel center" id="not-found">
    <h2>${t('app.notFound')}</h2>
    <p><a href=${href(homePath(me))}>${t('app.home')}</a></p>
  </section>`;
}

function App() {
  const [route, setRoute] = useState(currentRoute());
  const [me, setMeState] = useState(getMe());
  const [ready, setReady] = useState(false);
  const [, setLangTick] = useState(0);

  useEffect(() => {
    const onHash = () => setRoute(currentRoute());
    window.addEventListener('hashchange', onHash);
    const offS = onSession((m) => setMeState(m));
    const offL = onLang(() => setLangTick((n) => n + 1));
    setUnauthorizedHandler(() => {
      if (!getMe()) return;
      setMe(null);
      navigate('/login', { msg: 'expired', next: location.hash.slice(1) });
    });
    loadMe()
      .catch(() => setMe(null))
      .finally(() => setReady(true));
    return () => {
      window.removeEventListener('hashchange', onHash);
      offS();
      offL();
    };
  }, []);

  useEffect(() => {
    document.title = t('app.title');
  });

  if (!ready) return html`<div class="loading">${t('app.loading')}</div>`;

  const m = match(route.path);
  const query = route.query;
  if (!me) {
    if (m && m.page.public) return html`<${m.page.component} me=${null} params=${m.params} query=${query} path=${route.path} />`;
    // every other page needs a session: remember where the user wanted to go
    const next = route.path === '/' || route.path === '/login' ? '' : location.hash.slice(1);
    setTimeout(() => navigate('/login', next ? { next } : undefined), 0);
    return html`<div class="loading">${t('app.loading')}</div>`;
  }
  if (route.path === '/' || (m && m.page.public)) {
    setTimeout(() => navigate(homePath(me)), 0);
    return html`<div class="loading">${t('app.loading')}</div>`;
  }
  let body;
  if (!m) body = html`<${NotFound} me=${me} />`;
  else if (!allowed(m.page, me.role)) body = html`<${NoAccess} me=${me} />`;
  else body = html`<${m.page.component} me=${me} params=${m.params} query=${query} path=${route.path} key=${m.page.parts[0] || ''} />`;
  if (m && m.page.full && allowed(m.page, me.role)) return body;
  return html`<div class="shell">
    <${Header} me=${me} path=${route.path} />
    <main class="content">${body}</main>
  </div>`;
}

const root = document.getElementById('app');
root.textContent = '';
render(html`<${App} />`, root);
