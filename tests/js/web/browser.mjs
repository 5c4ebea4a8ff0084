// Shared harness of the browser tests (decision 0033): Debian chromium
// driven by puppeteer-core, a fresh profile per run, a login through the
// page's own form, screenshots of each step under
// $HUREN_BUILD_DIR/screenshots/<test>/<step>.png, a pixel check over an
// element or region, and a TAP-like tally that fails the process.
//
//   import { start } from './browser.mjs';
//   const t = await start('township', { base: 'http://127.0.0.1:8080' });
//   const page = await t.newPage();
//   await t.login(page, 'tech1', 'password');
//   await t.shot(page, 'after-login');
//   t.check('the list is shown', await page.$('#exams') !== null);
//   await t.finish(); // closes chromium, exits 1 when a check failed
import puppeteer from 'puppeteer-core';
import { PNG } from 'pngjs';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const CHROMIUM = process.env.HUREN_CHROMIUM || '/usr/bin/chromium';
export const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-angle=swiftshader',
  '--enable-unsafe-swiftshader',
];
const STEP_MS = Number(process.env.HUREN_WEB_STEP_MS || 15000); // one wait, at most

// Starts chromium for test `name`. opts: base (the hub's URL, required),
// tmp (a directory for the profile; default: a new one under $TMPDIR),
// width/height of the window. Returns the test context (see below).
export async function start(name, opts) {
  const base = opts.base.replace(/\/$/, '');
  const tmp = opts.tmp || fs.mkdtempSync(path.join(process.env.TMPDIR || os.tmpdir(), 'huren-web-'));
  const profile = fs.mkdtempSync(path.join(tmp, 'chromium-profile-'));
  const buildDir = process.env.HUREN_BUILD_DIR || path.resolve('build/debug');
  const shots = path.join(buildDir, 'screenshots', name);
  fs.rmSync(shots, { recursive: true, force: true });
  fs.mkdirSync(shots, { recursive: true });
  const width = opts.width || 1280;
  const height = opts.height || 860;
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [...ARGS, `--user-data-dir=${profile}`, `--window-size=${width},${height}`],
    defaultViewport: { width, height },
    protocolTimeout: 60000,
  });
  const t0 = Date.now();
  const at = () => `[${((Date.now() - t0) / 1000).toFixed(1)}s]`;
  let passes = 0;
  let fails = 0;
  let shotNo = 0;
  const pageErrors = [];

  const ctx = {
    base,
    browser,
    shotsDir: shots,
    pageErrors,

    // A new page (tab) in a fresh incognito-like context when isolated is
    // true (its own cookies: another user), else in the default one.
    // Script errors and CSP refusals are collected in ctx.pageErrors.
    async newPage(isolated) {
      const bctx = isolated ? await browser.createBrowserContext() : browser.defaultBrowserContext();
      const page = await bctx.newPage();
      page.setDefaultTimeout(STEP_MS);
      page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
      page.on('console', (m) => {
        const txt = m.text();
        // a refused resource (404, 401, 403) is logged by chromium as an error:
        // expected in access tests; CSP and script errors are not
        if (m.type() === 'error' && !/Failed to load resource/.test(txt)) pageErrors.push(`console: ${txt}`);
      });
      return page;
    },

    // Opens a hash route of the application ('/township' -> base/#/township)
    // and waits for the shell to have drawn something.
    async open(page, route) {
      await page.goto(`${base}/#${route}`, { waitUntil: 'domcontentloaded' });
      await page.waitForFunction(() => {
        const app = document.getElementById('app');
        return app && app.querySelector('.login-wrap, .shell, #no-access, #not-found');
      });
    },

    // Logs in through the login form. Resolves to {ok: true} once the shell
    // shows, or {ok: false, error: text of #login-error}.
    async login(page, user, password) {
      if (!page.url().startsWith(base)) await ctx.open(page, '/login');
      if (!(await page.$('#login-form'))) await ctx.open(page, '/login');
      await page.waitForSelector('#login-user');
      await ctx.fill(page, '#login-user', user);
      await ctx.fill(page, '#login-password', password);
      await page.click('#login-submit');
      const h = await page.waitForFunction(
        () =>
          document.querySelector('.shell')
            ? 'ok'
            : document.querySelector('#login-error')
              ? 'error:' + document.querySelector('#login-error').textContent
              : null,
        { timeout: STEP_MS }
      );
      const v = await h.jsonValue();
      return v === 'ok' ? { ok: true } : { ok: false, error: v.slice(6) };
    },

    // Sets an input's value as typing would (an input event), replacing
    // what was there.
    async fill(page, selector, value) {
      await page.$eval(
        selector,
        (e, v) => {
          e.focus();
          e.value = v;
          e.dispatchEvent(new Event('input', { bubbles: true }));
        },
        value
      );
    },

    // Screenshot of the page (or of one element: selector) as
    // screenshots/<test>/<NN>-<step>.png; returns the file's path.
    async shot(page, step, selector) {
      shotNo++;
      const file = path.join(shots, `${String(shotNo).padStart(2, '0')}-${step.replace(/[^a-zA-Z0-9_-]/g, '_')}.png`);
      if (selector) {
        const el = await page.$(selector);
        if (el) {
          await el.screenshot({ path: file });
          return file;
        }
      }
      await page.screenshot({ path: file, fullPage: true });
      return file;
    },

    // Are the pixels of an element (selector) or a region ({x, y, width,
    // height} in CSS pixels) not all alike? Takes a PNG screenshot of it,
    // decodes it with pngjs and counts distinct colours and the spread of
    // luminance. {uniform, colours, spread, pixels}: uniform is true when
    // fewer than minColours (default 2) distinct colours or a luminance
    // spread (max - min) under minSpread (default 16) were found.
    async notUniform(page, target, { minColours = 2, minSpread = 16 } = {}) {
      let buf;
      if (typeof target === 'string') {
        const el = await page.$(target);
        if (!el) return { uniform: true, colours: 0, spread: 0, pixels: 0, missing: true };
        buf = await el.screenshot({ type: 'png' });
      } else {
        buf = await page.screenshot({ type: 'png', clip: target });
      }
      return pixelStats(buf, minColours, minSpread);
    },

    check(desc, ok, detail) {
      if (ok) {
        passes++;
        console.log(`ok   - ${desc} ${at()}`);
      } else {
        fails++;
        console.log(`FAIL - ${desc}${detail !== undefined ? ': ' + detail : ''} ${at()}`);
      }
      return !!ok;
    },

    checkEq(desc, expected, actual) {
      return ctx.check(desc, expected === actual, `expected '${expected}', got '${actual}'`);
    },

    // Waits for fn(page) (evaluated in the page) to be truthy; false on timeout.
    async waitFor(page, fn, arg, ms = STEP_MS) {
      try {
        await page.waitForFunction(fn, { timeout: ms, polling: 200 }, arg);
        return true;
      } catch (_) {
        return false;
      }
    },

    // Closes chromium, reports, exits (1 when a check failed).
    async finish() {
      if (pageErrors.length) {
        for (const e of pageErrors) console.log(`# ${e}`);
      }
      ctx.check('no script or CSP errors in the pages', pageErrors.length === 0, pageErrors[0]);
      await browser.close().catch(() => {});
      fs.rmSync(profile, { recursive: true, force: true });
      console.log(`${passes} passed, ${fails} failed (screenshots in ${shots})`);
      process.exit(fails ? 1 : 0);
    },

    // On an unexpected exception: a screenshot of every page, then fail.
    async abort(err) {
      console.log(`FAIL - exception: ${err && err.stack ? err.stack : err}`);
      fails++;
      try {
        for (const p of await browser.pages()) await ctx.shot(p, 'exception');
      } catch (_) {
        /* nothing more to show */
      }
      await ctx.finish();
    },
  };
  return ctx;
}

// Distinct colours and luminance spread of a PNG (a Buffer).
export function pixelStats(buf, minColours = 2, minSpread = 16) {
  const png = PNG.sync.read(buf);
  const seen = new Set();
  let lo = 255;
  let hi = 0;
  const d = png.data;
  for (let i = 0; i < d.length; i += 4) {
    if (seen.size < 4096) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
    const y = (d[i] * 299 + d[i + 1] * 587 + d[i + 2] * 114) / 1000;
    if (y < lo) lo = y;
    if (y > hi) hi = y;
  }
  const spread = Math.round(hi - lo);
  return {
    uniform: seen.size < minColours || spread < minSpread,
    colours: seen.size,
    spread,
    pixels: d.length / 4,
  };
}

// A request from inside the page (its cookie, its origin): {status, type,
// size, head (first bytes as text)}. method 'GET' unless given; body JSON.
export async function pageFetch(page, url, method = 'GET', body) {
  return page.evaluate(
    async (url, method, body) => {
      const init = { method, credentials: 'same-origin', headers: {} };
      if (method !== 'GET') init.headers['X-Requested-With'] = 'huren';
      if (body !== undefined) {
        init.headers['Content-Type'] = 'application/json';
        init.body = JSON.stringify(body);
      }
      const res = await fetch(url, init);
      const buf = new Uint8Array(await res.arrayBuffer());
      let head = '';
      for (let i = 0; i < Math.min(buf.length, 64); i++) head += String.fromCharCode(buf[i]);
      return { status: res.status, type: res.headers.get('Content-Type') || '', size: buf.length, head };
    },
    url,
    method,
    body
  );
}
