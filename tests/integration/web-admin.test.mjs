// The web UI of issue 21's administration in a real browser (playwright-core driving Debian's
// chromium against the real server): the admin console's Links tab (filter, select, bulk revoke), the
// red banner while uploads are not scanned (a development server without signatures: on the member
// UI and the console; none on a server with signatures), "Team files" for an ordinary member (the
// folders they may see, never the others), and the styled page of a revoked link. Any CSP violation
// or page error fails the test. API behaviour is admin.test.mjs's.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { Server } from './lib/harness.mjs';

const CHROMIUM = process.env.COFFER_CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = process.env.COFFER_ARTIFACTS || path.join(os.tmpdir(), 'coffer-artifacts');
const SHOTS = path.join(ARTIFACTS, 'screenshots');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-web-admin-'));

const main = new Server();
const dev = new Server({ config: { scan: { database_dir: fs.mkdtempSync(path.join(work, 'sigs-')), development: 'true' } } });
let browser, A;
const users = {};
const problems = [];

before(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  await Promise.all([main.start(), dev.start()]);
  A = main.client((await main.login()).token);
  for (const u of ['alice', 'bob']) {
    const r = await A.req('POST', '/api/v1/admin/users', { body: { username: u, password: `${u}-password-1` } });
    assert.equal(r.status, 201, r.text());
    users[u] = { id: r.json().id, c: main.client((await main.login(u, `${u}-password-1`)).token) };
  }
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});

after(async () => {
  if (browser) await browser.close();
  const errors = [];
  for (const s of [main, dev]) {
    try { await s.stop(); } catch (e) { errors.push(e); }
    s.cleanup();
  }
  fs.rmSync(work, { recursive: true, force: true });
  if (errors.length) throw errors[0];
  assert.deepEqual(problems, [], 'no CSP violation or page error on any page');
});

async function newPage() {
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 } });
  ctx.setDefaultTimeout(120000); // waits end on the event; the deadline only names a hang
  await ctx.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  const page = await ctx.newPage();
  page.on('pageerror', (e) => problems.push(`pageerror ${page.url()}: ${e.message}`));
  return { ctx, page };
}

async function cspClean(page) {
  assert.deepEqual(await page.evaluate(() => window.__csp), [], `CSP violations on ${page.url()}`);
}

async function signIn(page, server, username, password) {
  await page.goto(`${server.url}/`);
  await page.getByTestId('login-username').fill(username);
  await page.getByTestId('login-password').fill(password);
  await page.getByTestId('login-submit').click();
  await page.locator('#app-view').waitFor();
}

test('links tab: the admin filters the links and revokes two at once; the recipients find them revoked', async () => {
  const { alice, bob } = users;
  const up = async (c, name) => (await c.upload((await c.spaces()).private.root, name, Buffer.from(`${name}\n`))).json();
  const mk = async (c, node) => (await c.req('POST', '/api/v1/shares', { body: { node, permission: 'download' } })).json();
  const fa = await up(alice.c, 'a.txt');
  const fb = await up(bob.c, 'b.txt');
  const l1 = await mk(alice.c, fa.id);
  const l2 = await mk(alice.c, fa.id);
  const l3 = await mk(bob.c, fb.id);

  const { ctx, page } = await newPage();
  await signIn(page, main, 'admin', 'admin-password-1');
  await page.goto(`${main.url}/admin`);
  await page.getByTestId('tab-links').click();
  for (const l of [l1, l2, l3]) await page.locator(`[data-testid="link-row"][data-id="${l.id}"]`).waitFor();
  assert.equal(await page.locator('[data-testid="scan-banner"]').count(), 0, 'no banner with signatures');

  // Filter by owner: alice's two links only.
  await page.getByTestId('links-owner').selectOption({ label: 'alice' });
  await page.getByTestId('links-search').click();
  await page.locator(`[data-testid="link-row"][data-id="${l3.id}"]`).waitFor({ state: 'detached' });
  assert.equal(await page.getByTestId('link-row').count(), 2);

  await page.getByTestId('links-all').check();
  await page.getByTestId('links-revoke').click();
  await page.locator('#status .note.ok').filter({ hasText: '2 links revoked.' }).waitFor();
  await page.locator(`[data-testid="link-row"][data-id="${l1.id}"][data-state="revoked"]`).waitFor();
  await page.locator(`[data-testid="link-row"][data-id="${l2.id}"][data-state="revoked"]`).waitFor();
  await page.screenshot({ path: path.join(SHOTS, 'admin-links-desktop.png'), fullPage: true });
  const states = (await A.req('GET', '/api/v1/admin/shares')).json().items;
  assert.deepEqual([l1, l2, l3].map((l) => states.find((s) => s.id === l.id).state), ['revoked', 'revoked', 'active']);

  // The recipient page of a revoked link: the same card and style as every page.
  const rp = await ctx.newPage();
  await rp.goto(l1.url);
  await rp.getByTestId('share-error').waitFor();
  await rp.screenshot({ path: path.join(SHOTS, 'share-revoked-desktop.png'), fullPage: true });
  await cspClean(page);
  await cspClean(rp);
  await ctx.close();
});

test('revoked and unknown link pages from the server are styled like the rest (card, brand, error note)', async () => {
  const { ctx, page } = await newPage();
  const r = await page.goto(`${main.url}/s/${'A'.repeat(43)}`);
  assert.ok(r.status() === 404 || r.status() === 200, `status ${r.status()}`);
  await page.getByTestId('share-error').waitFor({ state: 'attached' });
  const styled = await page.evaluate(() => {
    const card = document.querySelector('.card');
    const brand = document.querySelector('h1.brand');
    return { card: !!card, brand: !!brand, bg: card && getComputedStyle(card).borderRadius, recipient: document.body.classList.contains('recipient') };
  });
  assert.deepEqual({ card: styled.card, brand: styled.brand, recipient: styled.recipient }, { card: true, brand: true, recipient: true });
  assert.equal(styled.bg, '12px', 'app.css applies');
  await cspClean(page);
  await ctx.close();
});

test('banner: without signatures every signed-in page shows the red banner (member UI and console)', async () => {
  const { ctx, page } = await newPage();
  await signIn(page, dev, 'admin', 'admin-password-1');
  const banner = page.getByTestId('scan-banner');
  await banner.waitFor();
  assert.equal(await banner.getAttribute('data-scan'), 'disabled');
  assert.match(await banner.textContent(), /NOT being scanned for malware/);
  assert.equal(await banner.getAttribute('role'), 'alert');
  const bg = await banner.evaluate((e) => getComputedStyle(e).backgroundColor);
  assert.equal(bg, 'rgb(179, 38, 30)', 'red');
  await page.screenshot({ path: path.join(SHOTS, 'scan-banner-desktop.png') });
  await page.goto(`${dev.url}/admin`);
  await page.getByTestId('scan-banner').waitFor();
  await cspClean(page);
  await ctx.close();
});

test('team files: an ordinary member sees the team folders they may see, not the others, and no error', async () => {
  const { alice } = users;
  const troot = (await A.spaces()).tenant.root;
  const mk = async (name) => (await A.mkdir(troot, name)).json();
  const open = await mk('Open to Alice');
  await mk('Not for Alice');
  const r = await A.req('PUT', `/api/v1/nodes/${open.id}/acl`, { body: { entries: [{ principal: `user:${alice.id}`, level: 'view' }] } });
  assert.equal(r.status, 200, r.text());
  await A.upload(open.id, 'inside.txt', Buffer.from('inside\n'));

  const { ctx, page } = await newPage();
  await signIn(page, main, 'alice', 'alice-password-1');
  await page.locator('.spaces button[data-space="tenant"]').click();
  const row = (name) => page.locator(`[data-testid="file-row"][data-name="${name}"]`);
  await row('Open to Alice').waitFor();
  assert.equal(await row('Not for Alice').count(), 0, 'an invisible folder is not listed');
  assert.equal(await page.locator('#status .note.error').count(), 0, 'no "not found"');
  await page.screenshot({ path: path.join(SHOTS, 'team-files-member-desktop.png'), fullPage: true });
  // Into the folder: its file.
  await row('Open to Alice').locator('button, a').first().click();
  await row('inside.txt').waitFor();
  await cspClean(page);
  await ctx.close();
});

test('groups and users: the admin renames and deletes a group and deletes an offboarded user from the console', async () => {
  const g = (await A.req('POST', '/api/v1/admin/groups', { body: { name: 'Web group' } })).json();
  const carl = (await A.req('POST', '/api/v1/admin/users', { body: { username: 'carl', password: 'carl-password-1' } })).json();
  assert.equal((await A.req('POST', `/api/v1/admin/users/${carl.id}/offboard`, { body: { transfer_to: users.alice.id } })).status, 200);

  const { ctx, page } = await newPage();
  page.on('dialog', (d) => d.accept()); // the confirmations
  await signIn(page, main, 'admin', 'admin-password-1');
  await page.goto(`${main.url}/admin`);
  await page.locator('#tabs button[data-tab="groups"]').click();
  const card = (name) => page.locator(`[data-testid="group"][data-name="${name}"]`);
  await card('Web group').getByTestId('group-rename').click();
  await page.getByTestId('group-rename-input').fill('Web group 2');
  await page.getByTestId('group-rename-confirm').click();
  await card('Web group 2').waitFor();
  assert.equal(await card('Web group').count(), 0);
  await card('Web group 2').getByTestId('group-delete').click();
  await card('Web group 2').waitFor({ state: 'detached' });
  assert.ok(!(await A.req('GET', '/api/v1/admin/groups')).json().groups.some((x) => x.id === g.id));

  await page.locator('#tabs button[data-tab="users"]').click();
  const row = page.locator('[data-testid="user-row"][data-username="carl"]');
  await row.waitFor();
  assert.equal(await page.locator('[data-testid="user-row"][data-username="alice"] [data-testid="user-delete"]').count(), 0, 'only offboarded users can be deleted');
  await row.getByTestId('user-delete').click();
  await row.waitFor({ state: 'detached' });
  assert.ok(!(await A.req('GET', '/api/v1/admin/users')).json().users.some((u) => u.id === carl.id));
  await cspClean(page);
  await ctx.close();
});

test('reset sign-in: the admin resets a password from the console; the temporary one works once, then must be changed', async () => {
  const dora = (await A.req('POST', '/api/v1/admin/users', { body: { username: 'dora', password: 'dora-password-1' } })).json();
  const before = main.client((await main.login('dora', 'dora-password-1')).token);
  assert.equal((await before.req('GET', '/api/v1/me')).status, 200);

  const { ctx, page } = await newPage();
  await signIn(page, main, 'admin', 'admin-password-1');
  await page.goto(`${main.url}/admin`);
  await page.locator('#tabs button[data-tab="users"]').click();
  const row = page.locator('[data-testid="user-row"][data-username="dora"]');
  await row.getByTestId('user-reset').click();
  assert.equal(await page.getByTestId('reset-password').isChecked(), true);
  assert.equal(await page.getByTestId('reset-mfa').isChecked(), false, 'dora has no TOTP: only the password by default');
  await page.getByTestId('reset-confirm').click();
  const temp = (await page.getByTestId('reset-temporary').textContent()).trim();
  assert.equal(temp.length, 20);
  await page.screenshot({ path: path.join(SHOTS, 'admin-reset.png') });

  // Her old session ended; the old password is gone; the temporary one opens a change-only session.
  assert.equal((await before.req('GET', '/api/v1/me')).status, 401);
  assert.equal((await main.request('POST', '/api/v1/auth/login', { body: { username: 'dora', password: 'dora-password-1' } })).status, 401);
  const t = await main.request('POST', '/api/v1/auth/login', { body: { username: 'dora', password: temp } });
  assert.equal(t.status, 200, t.text());
  assert.equal(t.json().password_change_required, true);
  const tc = main.client(t.json().token);
  assert.equal((await tc.req('GET', '/api/v1/spaces')).json().error, 'password_change_required');
  assert.equal((await tc.req('PUT', '/api/v1/me/password', { body: { current: temp, new: 'dora-password-2' } })).status, 204);
  assert.equal((await main.request('POST', '/api/v1/auth/login', { body: { username: 'dora', password: 'dora-password-2' } })).status, 200);
  // The reset is in provenance, naming dora and the password part (never the password itself).
  const ev = (await A.req('GET', '/api/v1/audit?action=user.reset')).json();
  const mine = ev.events.filter((e) => e.detail && e.detail.user === dora.id);
  assert.equal(mine.length, 1, JSON.stringify(ev));
  assert.ok(!JSON.stringify(mine[0]).includes(temp));
  await cspClean(page);
  await ctx.close();
});
