// The search box (issue 21; web/search.js) in a real browser: playwright-core driving Debian's
// chromium against the real server (TLS, HTTP/2, the strict CSP). A member searches by name and by
// path, sees each result's path, opens a folder result (the folder's listing with its breadcrumbs)
// and a file result (its folder and its preview); another member sees only what was granted to him;
// an admin finds a file's events in the provenance search by its name (admin.js's minimal hook).
// Screenshots go to $COFFER_ARTIFACTS/screenshots; any CSP violation or page error fails the test.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startWithAdmin, ADMIN_PASSWORD } from './lib/harness.mjs';

const CHROMIUM = process.env.COFFER_CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = process.env.COFFER_ARTIFACTS || path.join(os.tmpdir(), 'coffer-artifacts');
const SHOTS = path.join(ARTIFACTS, 'screenshots');
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 360, height: 740 };

let server, admin, browser, wendy, peter;
const problems = [];

async function member(name) {
  const r = await admin.req('POST', '/api/v1/admin/users', { body: { username: name, password: `${name}-password-1` } });
  assert.equal(r.status, 201, r.text());
  const c = server.client((await server.login(name, `${name}-password-1`)).token);
  c.id = r.json().id;
  c.root = (await c.spaces()).private.root;
  return c;
}

before(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  ({ server, admin } = await startWithAdmin());
  wendy = await member('wendy');
  peter = await member('peter');
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
  assert.deepEqual(problems, [], 'no CSP violation or page error on any page');
});

async function newPage() {
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: DESKTOP });
  ctx.setDefaultTimeout(120000);
  await ctx.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => { window.__csp = (window.__csp || []).concat(`${e.violatedDirective} ${e.blockedURI}`); });
  });
  const page = await ctx.newPage();
  page.on('pageerror', (e) => problems.push(`pageerror ${page.url()}: ${e.message}`));
  page.on('console', (m) => { if (/Content Security Policy|Refused to/i.test(m.text())) problems.push(`console ${page.url()}: ${m.text()}`); });
  return page;
}

async function shoot(page, name) {
  for (const [tag, vp] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    await page.setViewportSize(vp);
    await page.screenshot({ path: path.join(SHOTS, `${name}-${tag}.png`), fullPage: true });
  }
  await page.setViewportSize(DESKTOP);
}

async function signIn(page, username, password) {
  await page.goto(`${server.url}/`);
  await page.getByTestId('login-username').fill(username);
  await page.getByTestId('login-password').fill(password);
  await page.getByTestId('login-submit').click();
  await page.locator('#app-view').waitFor();
}

async function put(c, parent, name, data = `content of ${name}\n`) {
  const r = await c.upload(parent, name, data);
  assert.equal(r.status, 201, r.text());
  return r.json();
}

async function searchFor(page, q) {
  await page.getByTestId('search-input').fill(q);
  await page.getByTestId('search-input').press('Enter');
  await page.getByTestId('search-results').waitFor();
  // The answer has arrived once either a row or the "nothing" note is there.
  await page.locator('[data-testid="search-row"], [data-testid="search-none"]:visible').first().waitFor();
}

const results = (page) => page.getByTestId('search-row').evaluateAll((rows) => rows.map((r) => r.dataset.path).sort());

test('search by name and path, open a folder and a file; another member sees only his grant', async () => {
  const reports = (await wendy.mkdir(wendy.root, 'Reports')).json();
  const y = (await wendy.mkdir(reports.id, 'Year 2024')).json();
  await put(wendy, y.id, 'summary-q3.txt', 'the third quarter\n');
  await put(wendy, wendy.root, 'summary-draft.txt');

  const page = await newPage();
  await signIn(page, 'wendy', 'wendy-password-1');
  await searchFor(page, 'SUMMARY');
  assert.deepEqual(await results(page), ['/Reports/Year 2024/summary-q3.txt', '/summary-draft.txt']);
  assert.equal(await page.locator('#dropzone').isHidden(), true);
  await shoot(page, 'search-results');

  await searchFor(page, 'reports/q3');
  assert.deepEqual(await results(page), ['/Reports/Year 2024/summary-q3.txt']);
  assert.equal(await page.getByTestId('search-path').first().textContent(), '/Reports/Year 2024');

  // A folder result opens the folder, with its breadcrumbs from "My files".
  await searchFor(page, 'year 20');
  await page.getByTestId('search-open').first().click();
  await page.locator('[data-testid="file-row"][data-name="summary-q3.txt"]').waitFor();
  assert.equal(await page.locator('#search-view').isHidden(), true);
  assert.deepEqual(await page.locator('#breadcrumbs li').allTextContents(), ['My files', 'Reports', 'Year 2024']);

  // A file result opens its folder and its preview.
  await searchFor(page, 'summary-draft');
  await page.getByTestId('search-open').first().click();
  await page.locator('[data-testid="file-row"][data-name="Reports"]').waitFor();
  await page.locator('#dialog[open]').waitFor();
  await page.keyboard.press('Escape');

  // Nothing matches: the note says so.
  await searchFor(page, 'no-such-name-at-all');
  assert.equal(await page.getByTestId('search-none').isVisible(), true);

  // Peter sees nothing of it, then only the folder granted to him (the path starts there).
  const acl = await wendy.req('PUT', `/api/v1/nodes/${y.id}/acl`, { body: { entries: [{ principal: `user:${peter.id}`, level: 'view' }] } });
  assert.equal(acl.status, 200, acl.text());
  const p2 = await newPage();
  await signIn(p2, 'peter', 'peter-password-1');
  await searchFor(p2, 'summary');
  assert.deepEqual(await results(p2), ['…/Year 2024/summary-q3.txt']);
  await p2.getByTestId('search-open').first().click();
  await p2.locator('#dialog[open]').waitFor();
  await p2.keyboard.press('Escape');
  assert.deepEqual(await p2.locator('#breadcrumbs li').allTextContents(), ['Shared with me', 'Year 2024']);
  await shoot(p2, 'search-member');
});

test('admin provenance search by a name instead of an id', async () => {
  const f = await put(wendy, wendy.root, 'kestrel-plan.txt');
  const page = await newPage();
  await signIn(page, 'admin', ADMIN_PASSWORD);
  await page.locator('#admin-link').click();
  await page.getByTestId('user-row').first().waitFor();
  await page.locator('#tabs [data-tab="audit"]').click();
  await page.getByTestId('audit-node').fill('kestrel');
  await page.getByTestId('audit-search').click();
  await page.locator(`[data-testid="audit-row"][data-node="${f.id}"]`).first().waitFor();
  const nodes = await page.getByTestId('audit-row').evaluateAll((rows) => rows.map((r) => r.dataset.node));
  assert.ok(nodes.length > 0 && nodes.every((n) => n === f.id), nodes.join());
});
