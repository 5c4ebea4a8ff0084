// The API client of every page: same-origin fetch with the session cookie,
// the CSRF header on every non-GET call (decision 0017), JSON errors turned
// into ApiError with a translated message, and 401 sending the browser to the
// login page (the session ended or was revoked).
import { t } from './i18n.js';

// An API refusal: status (HTTP), code (the JSON "error" field, e.g.
// "invalid_credentials", "locked", "rate_limited"), detail (the server's
// English text), retryAfter (seconds from Retry-After, or 0), and message:
// what to show the user, in the current language.
export class ApiError extends Error {
  constructor(status, code, detail, retryAfter) {
    super(detail || code || String(status));
    this.status = status;
    this.code = code || '';
    this.detail = detail || '';
    this.retryAfter = retryAfter || 0;
    this.message = errorMessage(this);
  }
}

// The text shown for an error: the catalogue's "error.<code>" when it has
// one (with {seconds} from Retry-After), else the one of the status, else
// the server's detail.
export function errorMessage(e) {
  const params = { seconds: e.retryAfter, detail: e.detail, status: e.status };
  for (const key of [`error.${e.code}`, `error.http${e.status}`]) {
    const s = t(key, params);
    if (s !== key) return s;
  }
  return e.detail ? t('error.other', params) : t('error.network');
}

let onUnauthorized = () => {};
// The shell sets what happens on a 401 (forget the session, show login).
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

async function parseError(res) {
  let code = '', detail = '';
  try {
    const doc = await res.json();
    code = doc.error || '';
    detail = doc.detail || '';
  } catch (_) {
    /* not JSON: keep the status */
  }
  const ra = parseInt(res.headers.get('Retry-After') || '0', 10);
  return new ApiError(res.status, code, detail, Number.isFinite(ra) ? ra : 0);
}

// Calls the API. method: 'GET', 'POST', ...; path: '/api/v1/...'; body: an
// object sent as JSON (or undefined). Options: {raw: true} returns the
// Response itself (for blobs); {accept: 'application/dicom+json'} another
// media type; {noRedirect: true} does not go to the login
// page on 401 (the login form itself). Resolves to the parsed JSON (null for
// 204); rejects with ApiError.
export async function api(method, path, body, opts = {}) {
  const headers = { Accept: opts.accept || 'application/json' };
  if (method !== 'GET' && method !== 'HEAD') headers['X-Requested-With'] = 'huren';
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, 'network', String(e && e.message ? e.message : e), 0);
  }
  if (!res.ok) {
    const err = await parseError(res);
    if (res.status === 401 && !opts.noRedirect) onUnauthorized(err);
    throw err;
  }
  if (opts.raw) return res;
  if (res.status === 204) return null;
  const type = res.headers.get('Content-Type') || '';
  return type.includes('json') ? res.json() : res.text();
}

export const get = (path, opts) => api('GET', path, undefined, opts);
export const post = (path, body, opts) => api('POST', path, body, opts);
export const put = (path, body, opts) => api('PUT', path, body, opts);
export const del = (path, opts) => api('DELETE', path, undefined, opts);

// Fetches a resource and saves it as a file in the browser (PDF, JWS).
export async function download(path, filename) {
  const res = await api('GET', path, undefined, { raw: true });
  const blob = await res.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  return blob;
}

// A URL path segment (study UIDs, report ids) made safe.
export const seg = (s) => encodeURIComponent(String(s));
