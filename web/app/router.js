// The page registry and the hash router. A page module calls registerPage()
// once when imported (web/app/pages/index.js imports every page); the shell
// shows a page only to the roles it lists and puts it in the navigation when
// it has a nav label key.

const pages = [];

// Registers a page:
//   path      '/township' or with parameters '/township/:study'
//   roles     roles that may open it (['technician', 'admin']); ignored when public
//   component a Preact component; it receives {me, params, query, path}
//   nav       i18n key of its navigation label, or omitted (not in the menu)
//   order     position in the navigation (smaller first; default 100)
//   public    true: shown without a session (the login page)
//   full      true: the page takes the whole window (no header; the viewer)
export function registerPage(p) {
  if (!p || !p.path || !p.component) throw new Error('registerPage: path and component needed');
  const parts = p.path.split('/').filter(Boolean);
  pages.push({ order: 100, roles: [], ...p, parts });
  pages.sort((a, b) => a.order - b.order);
}

// Every registered page (read-only).
export function allPages() {
  return pages;
}

// Pages of the navigation for a role.
export function navPages(role) {
  return pages.filter((p) => p.nav && !p.public && p.roles.includes(role));
}

// May this role open the page?
export function allowed(page, role) {
  return !!page && (page.public || page.roles.includes(role));
}

// The current location: {path, query (URLSearchParams)} from "#/a/b?x=1".
export function currentRoute() {
  const h = decodeURIComponent(location.hash.replace(/^#/, '')) || '/';
  const i = h.indexOf('?');
  const path = i < 0 ? h : h.slice(0, i);
  const query = new URLSearchParams(i < 0 ? '' : h.slice(i + 1));
  return { path: path.startsWith('/') ? path : '/' + path, query };
}

// The page matching path and its parameters, or null.
export function match(path) {
  const segs = path.split('/').filter(Boolean);
  for (const p of pages) {
    if (p.parts.length !== segs.length) continue;
    const params = {};
    let ok = true;
    for (let i = 0; i < segs.length && ok; i++) {
      if (p.parts[i].startsWith(':')) params[p.parts[i].slice(1)] = segs[i];
      else ok = p.parts[i] === segs[i];
    }
    if (ok) return { page: p, params };
  }
  return null;
}

// Goes to a hash route: navigate('/township/1.2.3') or with a query object.
export function navigate(path, query) {
  const q = query ? new URLSearchParams(query).toString() : '';
  const h = '#' + path + (q ? '?' + q : '');
  if (location.hash === h) window.dispatchEvent(new HashChangeEvent('hashchange'));
  else location.hash = h;
}

// An href for a hash route (for <a href=...>).
export function href(path, query) {
  const q = query ? new URLSearchParams(query).toString() : '';
  return '#' + path + (q ? '?' + q : '');
}

// Where a role starts: its first navigation page, else the account page.
export function homePath(me) {
  const nav = me ? navPages(me.role) : [];
  return nav.length ? nav[0].path : '/account';
}
