// The account page (every role): who is signed in, password change,
// logout and logout everywhere.
import { useState } from 'preact/hooks';
import { html } from 'htm/preact';
import { t, fmtTime } from '../i18n.js';
import { post } from '../api.js';
import { logout, setMe } from '../session.js';
import { registerPage, navigate } from '../router.js';

const ALL_ROLES = ['technician', 'reader', 'auditor', 'external', 'admin'];

function PasswordForm() {
  const [oldPw, setOld] = useState('');
  const [newPw, setNew] = useState('');
  const [newPw2, setNew2] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (ev) => {
    ev.preventDefault();
    setError('');
    // the form's own values (a submit may come before the last keystroke's render)
    const f = ev.currentTarget.elements;
    const oldPw = f.old.value;
    const newPw = f.new.value;
    const newPw2 = f.new2.value;
    if (newPw !== newPw2) {
      setError(t('account.passwordMismatch'));
      return;
    }
    setBusy(true);
    try {
      await post('/api/v1/me/password', { old: oldPw, new: newPw }, { noRedirect: true });
      // the change ended every session, this one too
      navigate('/login', { msg: 'changed' });
      setMe(null);
    } catch (e) {
      setError(e.message);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="panel narrow" id="password-form" onSubmit=${submit}>
    <h3>${t('account.passwordTitle')}</h3>
    <label>${t('account.oldPassword')}<input id="pw-old" name="old" type="password" autocomplete="current-password" required
      value=${oldPw} onInput=${(e) => setOld(e.target.value)} /></label>
    <label>${t('account.newPassword')}<input id="pw-new" name="new" type="password" autocomplete="new-password" required minlength="10"
      value=${newPw} onInput=${(e) => setNew(e.target.value)} /></label>
    <label>${t('account.newPassword2')}<input id="pw-new2" name="new2" type="password" autocomplete="new-password" required minlength="10"
      value=${newPw2} onInput=${(e) => setNew2(e.target.value)} /></label>
    <p class="hint">${t('account.passwordRules')}</p>
    ${error ? html`<p class="error" id="pw-error" role="alert">${error}</p>` : null}
    <button type="submit" class="primary" id="pw-submit" disabled=${busy}>${t('account.passwordSubmit')}</button>
  </form>`;
}

function Account({ me }) {
  const [error, setError] = useState('');
  const out = async (all) => {
    try {
      navigate('/login', { msg: 'loggedOut' });
      await logout(all);
    } catch (e) {
      setError(e.message);
    }
  };
  return html`<section class="account">
    <h2>${t('account.title')}</h2>
    <div class="panel narrow">
      <dl class="kv">
        <dt>${t('account.user')}</dt><dd id="account-user">${me.user}${me.display_name ? ' (' + me.display_name + ')' : ''} · ${t('role.' + me.role)}</dd>
        <dt>${t('account.hospital')}</dt><dd>${me.hospital}</dd>
        ${me.center ? html`<dt>${t('account.center')}</dt><dd>${me.center}</dd>` : null}
        <dt>${t('account.expires')}</dt><dd>${fmtTime(me.expires_at * 1000)}</dd>
      </dl>
      <p class="hint">${t('account.logoutAllHint')}</p>
      ${error ? html`<p class="error" role="alert">${error}</p>` : null}
      <div class="actions">
        <button type="button" id="account-logout" onClick=${() => out(false)}>${t('account.logout')}</button>
        <button type="button" class="danger" id="account-logout-all" onClick=${() => out(true)}>${t('account.logoutAll')}</button>
      </div>
    </div>
    <${PasswordForm} />
  </section>`;
}

registerPage({ path: '/account', roles: ALL_ROLES, component: Account, order: 1000 });
