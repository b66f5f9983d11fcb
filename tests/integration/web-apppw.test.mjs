// The account page's "App passwords" section (web/account.js, issue 22) in a real browser:
// playwright-core driving Debian's chromium against the real server. A member signs in, creates an
// app password on the page, reads it from the page (shown once, with a copy button that puts it on
// the clipboard), uses it as HTTP Basic on the API, sees its last use listed, and revokes it on the
// page; the API then refuses it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startWithAdmin } from './lib/harness.mjs';

const CHROMIUM = process.env.COFFER_CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = process.env.COFFER_ARTIFACTS || path.join(os.tmpdir(), 'coffer-artifacts');
const SHOTS = path.join(ARTIFACTS, 'screenshots');
const PASSWORD = 'ann-password-1';
const PW = /^[a-hjkmnp-z2-9]{6}(-[a-hjkmnp-z2-9]{6}){3}$/;

let server, admin, browser;
const problems = []; // CSP violations and page errors

before(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  ({ server, admin } = await startWithAdmin());
  const r = await admin.req('POST', '/api/v1/admin/users', { body: { username: 'ann', password: PASSWORD } });
  assert.equal(r.status, 201, r.text());
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
  assert.deepEqual(problems, [], 'no CSP violation or page error');
});

const basic = (user, pw) => ({ authorization: `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}` });

test('create an app password on the account page, use it on the API, revoke it on the page', async () => {
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 } });
  ctx.setDefaultTimeout(120000); // a generous deadline on waits that end on the event
  await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
  await ctx.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  const page = await ctx.newPage();
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (/Content Security Policy|Refused to/i.test(m.text())) problems.push(`console: ${m.text()}`); });
  await page.goto(`${server.url}/`);
  await page.getByTestId('login-username').fill('ann');
  await page.getByTestId('login-password').fill(PASSWORD);
  await page.getByTestId('login-submit').click();
  await page.locator('#app-view').waitFor();
  await page.goto(`${server.url}/account`);
  await page.locator('#acct-apppw').waitFor();
  await page.locator('#apppw-rows', { hasText: 'No app passwords.' }).waitFor();

  // A name makes a password, shown once.
  await page.getByTestId('apppw-name').fill('Finder on my Mac');
  await page.getByTestId('apppw-create').click();
  const secret = (await page.getByTestId('apppw-secret').textContent()).trim();
  assert.match(secret, PW);
  await page.getByTestId('apppw-copy').click();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret);
  const row = page.getByTestId('apppw-row').filter({ hasText: 'Finder on my Mac' });
  await row.waitFor();
  assert.equal((await row.getByTestId('apppw-last-used').textContent()).trim(), 'never');
  await page.screenshot({ path: path.join(SHOTS, 'account-apppw.png'), fullPage: true });

  // It works on the API as HTTP Basic (what a WebDAV client sends).
  const me = await server.request('GET', '/api/v1/me', { headers: basic('ann', secret) });
  assert.equal(me.status, 200, me.text());
  assert.equal(me.json().username, 'ann');
  // Its use shows on the page (recorded off the request path: reload until it does).
  for (const deadline = Date.now() + 120000; ;) {
    await page.reload();
    const t = (await page.getByTestId('apppw-row').filter({ hasText: 'Finder on my Mac' }).getByTestId('apppw-last-used').textContent()).trim();
    if (t !== 'never') { assert.match(t, /127\.0\.0\.1/); break; }
    assert.ok(Date.now() < deadline, 'last use shown');
    await new Promise((r) => setTimeout(r, 100));
  }
  // Reloaded: the secret is gone from the page for good.
  assert.equal(await page.getByTestId('apppw-secret').count(), 0);
  assert.ok(!(await page.content()).includes(secret));

  // Revoked on the page: the API refuses it on the very next request.
  await page.getByTestId('apppw-row').filter({ hasText: 'Finder on my Mac' }).getByTestId('apppw-revoke').click();
  await page.locator('#apppw-rows', { hasText: 'No app passwords.' }).waitFor();
  const after = await server.request('GET', '/api/v1/me', { headers: basic('ann', secret) });
  assert.equal(after.status, 401, after.text());
  assert.deepEqual(await page.evaluate(() => window.__csp), []);
  await ctx.close();
});
