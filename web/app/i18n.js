// Translations: zh-CN first (the default), English on request; the choice is
// remembered in localStorage ("huren.lang"). Shell strings live in
// i18n/zh-CN.js and i18n/en.js; a page adds its own with addMessages() from
// its module (so that pages written apart do not edit the same file).
import zh from './i18n/zh-CN.js';
import en from './i18n/en.js';

export const LANGS = ['zh-CN', 'en'];
const catalogues = { 'zh-CN': { ...zh }, en: { ...en } };
const KEY = 'huren.lang';
let lang = 'zh-CN';
try {
  const saved = localStorage.getItem(KEY);
  if (LANGS.includes(saved)) lang = saved;
} catch (_) {
  /* storage off: the default */
}
document.documentElement.lang = lang;
const listeners = new Set();

// Adds a page's messages: addMessages({'zh-CN': {...}, en: {...}}).
// Keys are namespaced by the page ("township.title").
export function addMessages(byLang) {
  for (const l of Object.keys(byLang)) Object.assign((catalogues[l] ||= {}), byLang[l]);
}

export function getLang() {
  return lang;
}

// Switches the language (remembered) and re-renders the listeners.
export function setLang(l) {
  if (!LANGS.includes(l) || l === lang) return;
  lang = l;
  document.documentElement.lang = l;
  try {
    localStorage.setItem(KEY, l);
  } catch (_) {
    /* not remembered */
  }
  for (const fn of listeners) fn(l);
}

// Calls fn(lang) on every switch; returns the unsubscribe function.
export function onLang(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

// The message of key in the current language (zh-CN, then the key itself
// when missing), with {name} placeholders replaced from params.
export function t(key, params) {
  let s = catalogues[lang][key];
  if (s === undefined) s = catalogues['zh-CN'][key];
  if (s === undefined) return key;
  if (params) s = s.replace(/\{(\w+)\}/g, (m, k) => (params[k] !== undefined ? String(params[k]) : m));
  return s;
}

// Dates and durations in the current language.
export function fmtTime(ms) {
  if (!ms) return '';
  const d = new Date(Number(ms));
  return d.toLocaleString(lang, { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' });
}

export function fmtDuration(ms) {
  if (!(ms >= 0)) return '';
  const m = Math.floor(ms / 60000);
  const h = Math.floor(m / 60);
  const d = Math.floor(h / 24);
  if (d > 0) return t('time.dh', { d, h: h % 24 });
  if (h > 0) return t('time.hm', { h, m: m % 60 });
  return t('time.m', { m });
}
