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
import { AlertBanner } from './pages/alerts.js';

function Header({ me, path }) {
  const nav = navPages(me.role);
  const name = me.display_name || me.user;
  const onLogout = () => {
    navigate('/login', { msg: 'loggedOut' });
    logout(false).catch(() => {});
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

// Where the current location must go, decided when the redirect runs (the
// hash may have changed since the render that scheduled it): without a
// session to the login (remembering the page), with one from the login or
// "/" to the role's first page.
function redirect() {
  const cur = currentRoute();
  const m = match(cur.path);
  const me = getMe();
  if (!me) {
    if (m && m.page.public) return;
    const next = cur.path === '/' ? '' : location.hash.slice(1);
    navigate('/login', next ? { next } : undefined);
  } else if (cur.path === '/' || (m && m.page.public)) {
    navigate(homePath(me));
  }
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
    // every other page needs a session: remember where the user wanted to
    // go (unless the location moved meanwhile, e.g. a logout's own redirect)
    setTimeout(() => redirect(), 0);
    return html`<div class="loading">${t('app.loading')}</div>`;
  }
  if (route.path === '/' || (m && m.page.public)) {
    setTimeout(() => redirect(), 0);
    return html`<div class="loading">${t('app.loading')}</div>`;
  }
  let body;
  if (!m) body = html`<${NotFound} me=${me} />`;
  else if (!allowed(m.page, me.role)) body = html`<${NoAccess} me=${me} />`;
  else body = html`<${m.page.component} me=${me} params=${m.params} query=${query} path=${route.path} key=${m.page.parts[0] || ''} />`;
  if (m && m.page.full && allowed(m.page, me.role)) return body;
  return html`<div class="shell">
    <${Header} me=${me} path=${route.path} />
    <${AlertBanner} me=${me} />
    <main class="content">${body}</main>
  </div>`;
}

const root = document.getElementById('app');
root.textContent = '';
render(html`<${App} />`, root);
