// The signed-in user as GET /api/v1/me tells it: {user, display_name, role,
// hospital, center, expires_at, scope}, or null without a session. The
// session itself is the HttpOnly cookie huren_session: JavaScript never sees
// the token.
import { get, post } from './api.js';

let me = null;
const listeners = new Set();

export function getMe() {
  return me;
}

// Replaces the session and tells the listeners (the shell re-renders).
export function setMe(m) {
  me = m;
  for (const fn of listeners) fn(me);
}

export function onSession(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

// Asks the server who we are; null (no error) without a valid session.
export async function loadMe() {
  try {
    setMe(await get('/api/v1/me', { noRedirect: true }));
  } catch (e) {
    if (e.status !== 401) throw e;
    setMe(null);
  }
  return me;
}

// POST /api/v1/login; the server sets the cookie. Rejects with ApiError.
export async function login(user, password) {
  await post('/api/v1/login', { user, password }, { noRedirect: true });
  return loadMe();
}

// Ends this session (all=true: every session of the user, everywhere).
export async function logout(all) {
  try {
    await post(all ? '/api/v1/logout?all=1' : '/api/v1/logout', undefined, { noRedirect: true });
  } finally {
    setMe(null);
  }
}
