// The Trash view and the Versions dialog (issue 21) in a real browser: playwright-core driving
// Debian's chromium against the real server (TLS, HTTP/2, the strict CSP). A member deletes a file
// in the UI, finds it in the Trash view and restores it; restores a file whose folder is gone into a
// folder picked in the dialog; opens the Versions of a file, downloads an old version and restores
// it; empties the trash. Every outcome is checked through the API (bytes, versions, parents, the
// trash), every page is screenshotted at desktop and phone width into $COFFER_ARTIFACTS/screenshots,
// and any CSP violation or uncaught page error fails the test.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startWithAdmin, sha256, bytes } from './lib/harness.mjs';

const CHROMIUM = process.env.COFFER_CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = process.env.COFFER_ARTIFACTS || path.join(os.tmpdir(), 'coffer-artifacts');
const SHOTS = path.join(ARTIFACTS, 'screenshots');
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 360, height: 740 };

let server, admin, browser, wendy;
const problems = [];

before(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  ({ server, admin } = await startWithAdmin());
  const r = await admin.req('POST', '/api/v1/admin/users', { body: { username: 'wendy', password: 'wendy-password-1', display_name: 'Wendy Darling' } });
  assert.equal(r.status, 201, r.text());
  wendy = server.client((await server.login('wendy', 'wendy-password-1')).token);
  wendy.root = (await wendy.spaces()).private.root;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
  assert.deepEqual(problems, [], 'no CSP violation or page error on any page');
});

async function newPage() {
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, acceptDownloads: true, viewport: DESKTOP });
  ctx.setDefaultTimeout(120000);
  await ctx.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  const page = await ctx.newPage();
  page.on('pageerror', (e) => problems.push(`pageerror ${page.url()}: ${e.message}`));
  page.on('console', (m) => { if (/Content Security Policy|Refused to/i.test(m.text())) problems.push(`console ${page.url()}: ${m.text()}`); });
  return page;
}

async function shoot(page, name) {
  const keep = page.viewportSize();
  for (const [tag, vp] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    await page.setViewportSize(vp);
    await page.waitForTimeout(50);
    await page.screenshot({ path: path.join(SHOTS, `${name}-${tag}.png`), fullPage: true });
  }
  await page.setViewportSize(keep);
}

const row = (page, name) => page.locator(`[data-testid="file-row"][data-name="${name}"]`);
const trashRow = (page, name) => page.locator(`[data-testid="trash-row"][data-name="${name}"]`);

async function put(parent, name, data, extra = '') {
  const r = await wendy.upload(parent, name, data, extra);
  assert.equal(r.status, 201, r.text());
  return r.json();
}

test('delete in the UI, restore from the Trash view (also into a chosen folder), versions: download and restore, empty the trash', async () => {
  const v1 = bytes(5000, 21);
  const v2 = Buffer.from('the second draft of the notes\n');
  const notes = await put(wendy.root, 'notes.txt', v1);
  await put(wendy.root, 'notes.txt', v2, '&on_conflict=replace');
  const old = (await wendy.mkdir(wendy.root, 'Old')).json();
  const keep = (await wendy.mkdir(wendy.root, 'Keep')).json();
  const lost = await put(old.id, 'lost.txt', 'its folder went to the trash');

  const page = await newPage();
  await page.goto(`${server.url}/`);
  await page.getByTestId('login-username').fill('wendy');
  await page.getByTestId('login-password').fill('wendy-password-1');
  await page.getByTestId('login-submit').click();
  await page.locator('#app-view').waitFor();

  // Delete notes.txt with the row's menu.
  await row(page, 'notes.txt').locator('details.menu summary').click();
  await row(page, 'notes.txt').getByTestId('delete-button').click();
  await page.getByTestId('delete-confirm').click();
  await row(page, 'notes.txt').waitFor({ state: 'detached' });
  assert.equal((await wendy.node(notes.id)).status, 404);

  // The Trash view lists it with where it was; Restore puts it back.
  await page.getByTestId('trash-space').click();
  await trashRow(page, 'notes.txt').waitFor();
  assert.equal(await page.locator('#dropzone').isHidden(), true);
  assert.equal(await trashRow(page, 'notes.txt').getByTestId('trash-origin').textContent(), 'from My files');
  await shoot(page, 'trash-view');
  await trashRow(page, 'notes.txt').getByTestId('trash-restore').click();
  await page.locator('#status', { hasText: 'notes.txt restored.' }).waitFor();
  await page.getByTestId('trash-none').waitFor();
  const back = await wendy.node(notes.id);
  assert.equal(back.status, 200);
  assert.equal(back.json().parent, wendy.root);
  assert.equal(sha256((await wendy.download(notes.id)).body), sha256(v2));

  // A file whose folder is in the trash: Restore asks for a folder; pick "Keep".
  assert.equal((await wendy.req('DELETE', `/api/v1/nodes/${lost.id}`)).status, 204);
  assert.equal((await wendy.req('DELETE', `/api/v1/nodes/${old.id}`)).status, 204);
  await page.locator('.spaces button[data-space="private"]').click();
  await row(page, 'Keep').waitFor();
  await page.getByTestId('trash-space').click();
  await trashRow(page, 'lost.txt').waitFor();
  assert.match(await trashRow(page, 'lost.txt').getByTestId('trash-origin').textContent(), /^from My files\/Old \(that folder is gone\)$/);
  await trashRow(page, 'lost.txt').getByTestId('trash-restore').click();
  await page.getByTestId('trash-folders').locator('button[data-name="Keep"]').click();
  await page.getByTestId('trash-destination').filter({ hasText: 'Destination: My files / Keep' }).waitFor();
  await shoot(page, 'trash-restore-to');
  await page.getByTestId('trash-restore-here').click();
  await page.locator('#status', { hasText: 'lost.txt restored to My files / Keep.' }).waitFor();
  const moved = (await wendy.node(lost.id)).json();
  assert.equal(moved.parent, keep.id);
  assert.equal((await wendy.download(lost.id)).text(), 'its folder went to the trash');
  assert.equal(await trashRow(page, 'lost.txt').count(), 0);
  await trashRow(page, 'Old').waitFor();

  // Versions: two, the newest current; download version 1 (exact bytes), restore it.
  await page.locator('.spaces button[data-space="private"]').click();
  await row(page, 'notes.txt').waitFor();
  await row(page, 'notes.txt').locator('details.menu summary').click();
  await row(page, 'notes.txt').getByTestId('versions-button').click();
  await page.locator('[data-testid="version-row"]').nth(1).waitFor();
  assert.deepEqual(await page.getByTestId('version-row').evaluateAll((els) => els.map((e) => [e.dataset.version, e.dataset.current])), [['2', 'true'], ['1', 'false']]);
  assert.equal(await page.locator('[data-testid="version-row"][data-version="2"]').getByTestId('version-restore').count(), 0);
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.locator('[data-testid="version-row"][data-version="1"]').getByTestId('version-download').click(),
  ]);
  assert.equal(sha256(fs.readFileSync(await download.path())), sha256(v1));
  await shoot(page, 'versions');
  await page.locator('[data-testid="version-row"][data-version="1"]').getByTestId('version-restore').click();
  await page.locator('#status', { hasText: 'Version 1 of notes.txt restored as version 3.' }).waitFor();
  await page.locator('[data-testid="version-row"][data-version="3"][data-current="true"]').waitFor();
  assert.equal(await page.getByTestId('version-row').count(), 3);
  await page.keyboard.press('Escape');
  const now = (await wendy.node(notes.id)).json();
  assert.equal(now.version, 3);
  assert.equal(now.sha256, sha256(v1));
  assert.equal(sha256((await wendy.download(notes.id)).body), sha256(v1));
  const vs = (await wendy.req('GET', `/api/v1/files/${notes.id}/versions`)).json().items;
  assert.deepEqual(vs.map((v) => [v.version, v.sha256]), [[3, sha256(v1)], [2, sha256(v2)], [1, sha256(v1)]]);

  // Empty the trash: the folder that is left goes for good.
  await page.getByTestId('trash-space').click();
  await trashRow(page, 'Old').waitFor();
  await page.getByTestId('trash-empty').click();
  await page.getByTestId('trash-empty-confirm').click();
  await page.locator('#status', { hasText: '1 item deleted forever.' }).waitFor();
  await page.getByTestId('trash-none').waitFor();
  assert.deepEqual((await wendy.req('GET', '/api/v1/trash')).json().items, []);
  assert.equal((await wendy.req('DELETE', `/api/v1/nodes/${old.id}?purge=true`)).status, 404);
  await shoot(page, 'trash-empty');
  assert.deepEqual(await page.evaluate(() => window.__csp), []);
  await page.context().close();
});
