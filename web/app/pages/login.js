// The login page (public): user name and password; the API's refusals
// (wrong password, lockout, rate limits) shown as they come.
import { useState } from 'preact/hooks';
import { html } from 'htm/preact';
import { t, getLang, setLang } from '../i18n.js';
import { login } from '../session.js';
import { registerPage, navigate, homePath } from '../router.js';

function Login({ query }) {
  const [user, setUser] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const msg = query.get('msg');

  const submit = async (ev) => {
    ev.preventDefault();
    if (busy) return;
    setBusy(true);
    setError('');
    // the form's own values (a submit may come before the last keystroke's render)
    const f = ev.currentTarget.elements;
    try {
      const me = await login(f.user.value.trim(), f.password.value);
      setPassword('');
      const next = query.get('next');
      navigate(next && next.startsWith('/') && !next.startsWith('/login') ? next : homePath(me));
    } catch (e) {
      setError(e.message);
    } finally {
      setBusy(false);
    }
  };

  return html`<div class="login-wrap">
    <form class="panel login" id="login-form" onSubmit=${submit}>
      <h1>${t('app.title')}</h1>
      <h2>${t('login.title')}</h2>
      ${msg && !error ? html`<p class="info" id="login-info">${t('login.' + msg)}</p>` : null}
      <label>${t('login.user')}
        <input id="login-user" name="user" autocomplete="username" autocapitalize="off" spellcheck=${false} required
          value=${user} onInput=${(e) => setUser(e.target.value)} /></label>
      <label>${t('login.password')}
        <input id="login-password" name="password" type="password" autocomplete="current-password" required
          value=${password} onInput=${(e) => setPassword(e.target.value)} /></label>
      ${error ? html`<p class="error" id="login-error" role="alert">${error}</p>` : null}
      <button type="submit" class="primary" id="login-submit" disabled=${busy}>${busy ? t('login.busy') : t('login.submit')}</button>
      <button type="button" class="link lang" id="lang-switch" onClick=${() => setLang(getLang() === 'en' ? 'zh-CN' : 'en')}>${t('app.lang')}</button>
    </form>
  </div>`;
}

registerPage({ path: '/login', public: true, component: Login });
