// Departments in the web UI (issue 23), in a real browser (playwright-core driving Debian's chromium
// against the real server): the admin console's Departments tab (create, create inside, rename,
// move, delete; a non-empty department refused; a user's primary department), and a member's access
// dialog granting a department with its sub-departments, after which a member of a sub-department
// sees the folder. Any CSP violation or page error fails the test. API behaviour is
// departments.test.mjs's.
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

const server = new Server();
let browser, A;
const users = {};
const problems = [];

before(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  await server.start();
  A = server.client((await server.login()).token);
  for (const u of ['alice', 'bob']) {
    const r = await A.req('POST', '/api/v1/admin/users', { body: { username: u, password: `${u}-password-1` } });
    assert.equal(r.status, 201, r.text());
    users[u] = { id: r.json().id, c: server.client((await server.login(u, `${u}-password-1`)).token) };
  }
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});

after(async () => {
  if (browser) await browser.close();
  try { await server.stop(); } finally { server.cleanup(); }
  assert.deepEqual(problems, [], 'no CSP violation or page error on any page');
});

async function newPage() {
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
  ctx.setDefaultTimeout(120000); // waits end on the event; the deadline only names a hang
  await ctx.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  const page = await ctx.newPage();
  page.on('pageerror', (e) => problems.push(`pageerror ${page.url()}: ${e.message}`));
  page.on('dialog', (d) => d.accept()); // the delete confirmations
  return { ctx, page };
}

async function signIn(page, username, password) {
  await page.goto(`${server.url}/`);
  await page.getByTestId('login-username').fill(username);
  await page.getByTestId('login-password').fill(password);
  await page.getByTestId('login-submit').click();
  await page.locator('#app-view').waitFor();
}

const dept = (page, p) => page.locator(`[data-testid="dept"][data-path="${p}"]`);
// A department's own button (its sub-departments' come after, in a nested list).
const own = (page, p, id) => dept(page, p).getByTestId(id).first();
const listed = async () => (await A.req('GET', '/api/v1/admin/departments')).json().departments;

test('admin console: the department tree and a user\'s primary department; a member grants a department with its sub-departments', async () => {
  const { ctx, page } = await newPage();
  await signIn(page, 'admin', 'admin-password-1');
  await page.goto(`${server.url}/admin`);
  await page.getByTestId('tab-departments').click();

  // Create a top-level department, then one inside it.
  await page.getByTestId('dept-name').fill('Research');
  await page.getByTestId('dept-create').click();
  await dept(page, 'Research').waitFor();
  await page.getByTestId('dept-name').fill('Lab');
  await page.getByTestId('dept-parent').selectOption({ label: 'Research' });
  await page.getByTestId('dept-create').click();
  await dept(page, 'Research/Lab').waitFor();

  // Rename, move to the top and back.
  await own(page, 'Research/Lab', 'dept-rename').click();
  await page.getByTestId('dept-rename-input').fill('Labs');
  await page.getByTestId('dept-rename-confirm').click();
  await dept(page, 'Research/Labs').waitFor();
  await own(page, 'Research/Labs', 'dept-move').click();
  await page.getByTestId('dept-move-parent').selectOption({ label: '(top level)' });
  await page.getByTestId('dept-move-confirm').click();
  await dept(page, 'Labs').waitFor();
  await own(page, 'Labs', 'dept-move').click();
  await page.getByTestId('dept-move-parent').selectOption({ label: 'Research' });
  await page.getByTestId('dept-move-confirm').click();
  await dept(page, 'Research/Labs').waitFor();

  // Delete an empty department; a non-empty one is refused with a clear message.
  await page.getByTestId('dept-name').fill('Temp');
  await page.getByTestId('dept-create').click();
  await dept(page, 'Temp').waitFor();
  await own(page, 'Temp', 'dept-delete').click();
  await dept(page, 'Temp').waitFor({ state: 'detached' });
  await own(page, 'Research', 'dept-delete').click();
  await page.locator('#status', { hasText: 'Move its people and sub-departments out first.' }).waitFor();
  assert.deepEqual((await listed()).map((d) => d.path), ['Research', 'Research/Labs']);

  // bob's primary department: Research/Labs.
  const bobRow = page.locator('[data-testid="dept-user"][data-username="bob"]');
  await bobRow.getByTestId('dept-user-primary').selectOption({ label: 'Research/Labs' });
  await bobRow.getByTestId('dept-user-save').click();
  await page.locator('#status', { hasText: 'Departments of bob saved.' }).waitFor();
  const labs = (await listed()).find((d) => d.path === 'Research/Labs');
  const research = (await listed()).find((d) => d.path === 'Research');
  const bobNow = (await A.req('GET', '/api/v1/admin/users')).json().users.find((u) => u.username === 'bob');
  assert.deepEqual(bobNow.departments, { primary: labs.id, others: [] });
  await dept(page, 'Research/Labs').filter({ hasText: '1 member' }).waitFor();
  await page.screenshot({ path: path.join(SHOTS, 'admin-departments-desktop.png'), fullPage: true });
  assert.deepEqual(await page.evaluate(() => window.__csp), []);
  await ctx.close();

  // alice grants Research "and sub-departments" on a folder of hers; bob (in Labs) sees it.
  const { alice, bob } = users;
  const folder = (await alice.c.mkdir((await alice.c.spaces()).private.root, 'Findings')).json();
  assert.equal((await bob.c.node(folder.id)).status, 404);
  const m = await newPage();
  await signIn(m.page, 'alice', 'alice-password-1');
  const row = m.page.locator('[data-testid="file-row"][data-name="Findings"]');
  await row.locator('details.menu summary').click();
  await row.getByTestId('access-button').click();
  await m.page.getByTestId('acl-table').waitFor();
  await m.page.getByTestId('acl-principal').selectOption({ label: 'Research (and sub-departments)' });
  await m.page.getByTestId('acl-level').selectOption('view');
  await m.page.getByTestId('acl-add').click();
  await m.page.getByTestId('acl-save').click();
  await m.page.locator('#status', { hasText: 'Access to Findings saved.' }).waitFor();
  const acl = (await alice.c.req('GET', `/api/v1/nodes/${folder.id}/acl`)).json();
  assert.deepEqual(acl.entries, [{ principal: `department:${research.id}`, level: 'view', name: 'Research', subdepartments: true }]);
  const seen = await bob.c.node(folder.id);
  assert.equal(seen.status, 200);
  assert.equal(seen.json().my_level, 'view');
  assert.deepEqual(await m.page.evaluate(() => window.__csp), []);
  await m.ctx.close();
});
