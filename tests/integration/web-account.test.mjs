// The account page (/account, web/account.js) in a real browser: playwright-core driving Debian's
// chromium against the real server, as in web.test.mjs. A member enrols TOTP from the page: the QR
// code the page shows is photographed (an element screenshot) and decoded by zbarimg, the secret in
// its otpauth URI is given to oathtool (a real authenticator), whose code turns TOTP on; the
// recovery codes are shown once and downloaded as text; then the member signs out and in again with
// an oathtool code, and signs another session out from the page, which the API then refuses.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { chromium } from 'playwright-core';
import { startWithAdmin } from './lib/harness.mjs';

const CHROMIUM = process.env.COFFER_CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = process.env.COFFER_ARTIFACTS || path.join(os.tmpdir(), 'coffer-artifacts');
const SHOTS = path.join(ARTIFACTS, 'screenshots');
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 360, height: 740 };
const PASSWORD = 'ann-password-1';

let server, admin, browser, tmp, annId;
const problems = []; // CSP violations and page errors

async function newContext() {
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, acceptDownloads: true, viewport: DESKTOP });
  ctx.setDefaultTimeout(120000); // a generous deadline on waits that end on the event
  await ctx.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  ctx.on('page', (p) => {
    p.on('pageerror', (e) => problems.push(`pageerror ${p.url()}: ${e.message}`));
    p.on('console', (m) => { if (/Content Security Policy|Refused to/i.test(m.text())) problems.push(`console ${p.url()}: ${m.text()}`); });
  });
  return ctx;
}

async function shoot(page, name) {
  const keep = page.viewportSize();
  for (const [tag, vp] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    await page.setViewportSize(vp);
    await page.screenshot({ path: path.join(SHOTS, `${name}-${tag}.png`), fullPage: true });
  }
  await page.setViewportSize(keep);
}

const totpAt = (secret, unixSeconds) => execFileSync('oathtool', ['--totp', '-b', '-N', `@${unixSeconds}`, secret], { encoding: 'utf8' }).trim();

before(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-web-account-'));
  ({ server, admin } = await startWithAdmin());
  const r = await admin.req('POST', '/api/v1/admin/users', { body: { username: 'ann', password: PASSWORD, display_name: 'Ann Account' } });
  assert.equal(r.status, 201, r.text());
  annId = r.json().id;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  assert.deepEqual(problems, [], 'no CSP violation or page error');
});

test('/account is a page with a strict CSP, and asks a visitor without a session to sign in', async () => {
  const r = await server.request('GET', '/account');
  assert.equal(r.status, 200);
  assert.match(r.headers['content-type'], /^text\/html/);
  assert.doesNotMatch(r.headers['content-security-policy'], /unsafe-inline|unsafe-eval/);
  assert.doesNotMatch(r.text(), /<script(?![^>]*\bsrc=)[^>]*>/i, 'no inline script');
  for (const p of ['/static/account.js', '/static/account.css']) assert.equal((await server.request('GET', p)).status, 200, p);
  const ctx = await newContext();
  const page = await ctx.newPage();
  await page.goto(`${server.url}/account`);
  await page.locator('#acct-signin').waitFor();
  await ctx.close();
});

test('enrol TOTP from the account page with the QR code, sign in again with it, revoke another session', async () => {
  // Another session of ann's (an app elsewhere), opened before TOTP is on.
  const other = await server.login('ann', PASSWORD);
  const otherId = (await server.request('GET', '/api/v1/me/sessions', { token: other.token })).json().sessions.find((s) => s.current).id;

  const ctx = await newContext();
  const page = await ctx.newPage();
  await page.goto(`${server.url}/`);
  await page.getByTestId('login-username').fill('ann');
  await page.getByTestId('login-password').fill(PASSWORD);
  await page.getByTestId('login-submit').click();
  await page.locator('#app-view').waitFor();
  // The device cookie the login set: HttpOnly, Secure, SameSite=Strict, sent only to the login.
  const dc = (await ctx.cookies()).find((c) => c.name === 'coffer_device');
  assert.ok(dc, 'device cookie');
  assert.deepEqual([dc.httpOnly, dc.secure, dc.sameSite, dc.path], [true, true, 'Strict', '/api/v1/auth/login']);

  await page.getByTestId('account-link').click();
  await page.waitForURL(`${server.url}/account`);
  await page.getByTestId('account-profile').waitFor();
  assert.match(await page.getByTestId('account-profile').textContent(), /Ann Account.*ann.*default/s);
  assert.match(await page.getByTestId('totp-state').textContent(), /^Off\./);
  await shoot(page, 'account');

  // Enrol: photograph the QR code and read it as a phone would.
  await page.getByTestId('totp-start').click();
  const qr = page.getByTestId('totp-qr');
  await qr.waitFor();
  await page.waitForFunction(() => { const i = document.querySelector('[data-testid="totp-qr"]'); return i && i.complete && i.naturalWidth > 0; });
  const shot = path.join(tmp, 'qr.png');
  await qr.screenshot({ path: shot });
  fs.copyFileSync(shot, path.join(SHOTS, 'account-totp-qr.png'));
  const uri = execFileSync('zbarimg', ['--raw', '-q', shot], { encoding: 'utf8' }).trim();
  const u = new URL(uri);
  assert.equal(u.protocol, 'otpauth:');
  assert.equal(u.host, 'totp');
  assert.equal(decodeURIComponent(u.pathname), '/Coffer:ann@default');
  const secret = u.searchParams.get('secret');
  assert.match(secret, /^[A-Z2-7]{32}$/);
  assert.equal(await page.getByTestId('totp-secret').textContent(), secret, 'the key shown is the one in the QR code');
  await shoot(page, 'account-enrol');

  const now = () => Math.floor(Date.now() / 1000);
  await page.getByTestId('totp-code').fill(execFileSync('oathtool', ['--totp', '-b', secret], { encoding: 'utf8' }).trim());
  await page.getByTestId('totp-confirm').click();
  const list = page.getByTestId('recovery-codes');
  await list.waitFor();
  const codes = await list.locator('li').allTextContents();
  assert.equal(codes.length, 10);
  for (const c of codes) assert.match(c, /^[a-z2-9]{4}(-[a-z2-9]{4}){3}$/);
  assert.match(await page.getByTestId('totp-state').textContent(), /^On\. 10 recovery codes left\./);
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('recovery-download').click()]);
  assert.equal(download.suggestedFilename(), 'coffer-recovery-codes.txt');
  const saved = path.join(tmp, 'codes.txt');
  await download.saveAs(saved);
  const text = fs.readFileSync(saved, 'utf8');
  for (const c of codes) assert.ok(text.includes(`${c}\n`), c);
  await shoot(page, 'account-recovery-codes');
  const users = (await admin.req('GET', '/api/v1/admin/users')).json().users;
  assert.equal(users.find((x) => x.id === annId).totp_enabled, true);

  // Sign out, then in again with a code from oathtool (the next step: confirming spent this one).
  await page.getByTestId('account-logout').click();
  await page.getByTestId('login-username').waitFor();
  await page.getByTestId('login-username').fill('ann');
  await page.getByTestId('login-password').fill(PASSWORD);
  await page.getByTestId('login-submit').click();
  await page.getByTestId('login-totp').waitFor();
  await page.getByTestId('login-totp').fill(totpAt(secret, now() + 30));
  await page.getByTestId('login-submit').click();
  await page.locator('#app-view').waitFor();

  // The account page lists the other session; signing it out from there ends it.
  await page.goto(`${server.url}/account`);
  const otherRow = page.locator(`[data-testid="session-row"][data-id="${otherId}"]`);
  await otherRow.waitFor();
  assert.equal(await page.locator('[data-testid="session-row"]').count(), 2);
  assert.equal((await server.request('GET', '/api/v1/me', { token: other.token })).status, 200, 'alive before');
  await otherRow.getByTestId('session-revoke').click();
  await otherRow.waitFor({ state: 'detached' });
  assert.equal((await server.request('GET', '/api/v1/me', { token: other.token })).status, 401, 'dead after');
  assert.equal(await page.locator('[data-testid="session-row"]').count(), 1);

  // History and alerts are on the page.
  assert.ok(await page.locator('[data-testid="login-row"]').count() >= 3);
  assert.equal(await page.locator('[data-testid="alert-row"][data-kind="alert.new_device"]').count(), 1, 'the browser after the app');
  assert.doesNotMatch(await page.getByTestId('totp-section').textContent(), /null|undefined/);
  await shoot(page, 'account-full');

  // A recovery code typed in the sign-in form's code field works once; the app says how many are left.
  await page.getByTestId('account-logout').click();
  await page.getByTestId('login-username').waitFor();
  await page.getByTestId('login-username').fill('ann');
  await page.getByTestId('login-password').fill(PASSWORD);
  await page.getByTestId('login-submit').click();
  await page.getByTestId('login-totp').waitFor();
  await page.getByTestId('login-totp').fill(codes[4].toUpperCase());
  await page.getByTestId('login-submit').click();
  await page.locator('#app-view').waitFor();
  await page.locator('#status', { hasText: '9 left' }).waitFor();
  await page.goto(`${server.url}/account`);
  await page.locator('[data-testid="alert-row"][data-kind="alert.recovery_code_used"]').waitFor();
  assert.match(await page.getByTestId('recovery-left').textContent(), /^9 recovery codes left\.$/);
  assert.deepEqual(await page.evaluate(() => window.__csp), []);
  await ctx.close();
});

test('a reset password sends the next sign-in to the account page, which only asks for a new password', async () => {
  const r = await admin.req('POST', `/api/v1/admin/users/${annId}/reset`, { body: { password: true, mfa: true } });
  assert.equal(r.status, 200, r.text());
  const temp = r.json().temporary_password;
  const ctx = await newContext();
  const page = await ctx.newPage();
  await page.goto(`${server.url}/`);
  await page.getByTestId('login-username').fill('ann');
  await page.getByTestId('login-password').fill(temp);
  await page.getByTestId('login-submit').click();
  await page.waitForURL(`${server.url}/account`);
  await page.getByTestId('account-forced').waitFor();
  assert.equal(await page.locator('#acct-sessions').isHidden(), true);
  await shoot(page, 'account-forced-password');
  await page.getByTestId('pw-current').fill(temp);
  await page.getByTestId('pw-new').fill('ann-password-2');
  await page.getByTestId('pw-again').fill('ann-password-2');
  await page.getByTestId('pw-submit').click();
  // Then the re-enrolment the MFA reset asked for, on the same page.
  await page.getByTestId('totp-qr').waitFor();
  assert.match(await page.locator('#forced-title').textContent(), /two-factor/);
  await ctx.close();
});
