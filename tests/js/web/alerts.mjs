// Critical values in the application (decision 0040), run by
// tests/integration/test_web_alerts.sh:
//   HUREN_URL      the hub
//   WEB_SIGN_CMD   a shell command that signs a CT report of township1 with
//                  critical=true through the API (a reader)
//   WEB_VALUE      the value the alert carries (the impression's first line)
//   WEB_TMP        a directory for the browser profile
// tech1 (township1) has the app open when the report is signed: the red
// banner appears live (SSE), the Ack button opens the read-back dialog, a
// wrong read-back is refused with the message, the right one acknowledges
// and the banner goes; the register (#/alerts) lists the alert
// acknowledged by tech1 with its step log. tech2 (township2) sees no
// banner and an empty register. Screenshots: screenshots/alerts/.
import { start } from './browser.mjs';
import { execSync } from 'node:child_process';

const env = (k) => {
  if (!process.env[k]) throw new Error(`${k} is not set`);
  return process.env[k];
};
const base = env('HUREN_URL');
const value = env('WEB_VALUE');
const t = await start('alerts', { base, tmp: env('WEB_TMP') });

try {
  const page = await t.newPage(true);
  const r = await t.login(page, 'tech1', 'tech1-password-1');
  t.check('tech1 logs in', r.ok, r.error);
  const other = await t.newPage(true);
  const r2 = await t.login(other, 'tech2', 'tech2-password-1');
  t.check('tech2 logs in', r2.ok, r2.error);
  t.check('no banner before any alert', (await page.$('#alert-banner')) === null);
  await t.shot(page, 'before');

  execSync(env('WEB_SIGN_CMD'), { stdio: 'inherit' });
  const live = await t.waitFor(page, () => !!document.querySelector('#alert-banner .alert-row'), undefined, 15000);
  t.check('the red banner appears without a reload', live);
  const text = live ? await page.$eval('#alert-banner', (e) => e.textContent) : '';
  t.check('... with the critical value', text.includes(value), text);
  t.check('... in Chinese (危急值)', text.includes('危急值'), text);
  const colour = live ? await page.$eval('#alert-banner', (e) => getComputedStyle(e).backgroundColor) : '';
  t.checkEq('... red', 'rgb(180, 35, 24)', colour);
  await t.shot(page, 'banner');
  t.check("tech2 (another township) has no banner", (await other.$('#alert-banner')) === null);

  await page.click('#alert-banner button.alert-ack');
  await page.waitForSelector('#alert-dialog #alert-readback');
  await t.shot(page, 'dialog');
  await t.fill(page, '#alert-readback', '收到');
  await page.click('#alert-ack-submit');
  const refused = await t.waitFor(page, () => !!document.querySelector('#alert-ack-error'));
  t.check('a wrong read-back is refused in the dialog', refused);
  const msg = refused ? await page.$eval('#alert-ack-error', (e) => e.textContent) : '';
  t.check('... with the read-back message', msg.includes('回读'), msg);
  await t.shot(page, 'readback-refused');
  await t.fill(page, '#alert-readback', ` ${value} `);
  await page.click('#alert-ack-submit');
  const gone = await t.waitFor(page, () => !document.querySelector('#alert-banner') && !document.querySelector('#alert-dialog'));
  t.check('the right read-back acknowledges: dialog and banner gone', gone);
  await t.shot(page, 'acknowledged');

  await t.open(page, '/alerts');
  const listed = await t.waitFor(page, () => !!document.querySelector('#alerts-table tr[data-alert]'));
  t.check('the register lists the alert', listed);
  const row = listed ? await page.$eval('#alerts-table tr[data-alert]', (e) => [e.dataset.state, e.textContent]) : ['', ''];
  t.checkEq('... acknowledged', 'acknowledged', row[0]);
  t.check('... by tech1, with the value', row[1].includes('tech1') && row[1].includes(value), row[1]);
  await page.click('#alerts-table tr[data-alert]');
  const log = await t.waitFor(page, () => !!document.querySelector('#alert-log li[data-event="acknowledged"]'));
  t.check('the step log shows the refused read-back and the acknowledgement', log &&
    (await page.$('#alert-log li[data-event="readback_refused"]')) !== null);
  await t.shot(page, 'register');

  await page.click('#lang-switch');
  const en = await t.waitFor(page, () => document.querySelector('#alerts-page h2').textContent.includes('Critical value register'));
  t.check('the English switch', en);
  await t.shot(page, 'register-en');

  await t.open(other, '/alerts');
  const empty = await t.waitFor(other, () => !!document.querySelector('#alerts-table') && !document.querySelector('#alerts-table tr[data-alert]'));
  t.check("tech2's register is empty", empty);
  await t.shot(other, 'other-township');

  // the office: the register without patient names, and the quality figures
  const office = await t.newPage(true);
  const r3 = await t.login(office, 'office', 'office-password-1');
  t.check('the office logs in', r3.ok, r3.error);
  await t.open(office, '/alerts');
  const q = await t.waitFor(office, () => !!document.querySelector('#alerts-quality') && !!document.querySelector('#alerts-table tr[data-alert]'));
  t.check('the office sees the quality figures and the register', q);
  const figures = q ? await office.$eval('#alerts-quality', (e) => [e.dataset.raised, e.textContent]) : ['', ''];
  t.checkEq('... 1 critical value raised', '1', figures[0]);
  t.check('... 1 acknowledged, rate shown', /及时确认率 (100|0)%/.test(figures[1]), figures[1]);
  const orow = q ? await office.$eval('#alerts-table tr[data-alert]', (e) => e.textContent) : '';
  t.check('... no patient name in the office register', !orow.includes('孙'), orow);
  t.check('... and no banner for the office', (await office.$('#alert-banner')) === null);
  await t.shot(office, 'office');
} catch (e) {
  await t.abort(e);
}
await t.finish();
