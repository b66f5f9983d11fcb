// The web UI in a real browser: playwright-core driving Debian's chromium against the real server
// (TLS, HTTP/2, the strict CSP). Issue 8's journeys:
//  - a member signs in, uploads a 30 MB file through tus (the progress bar moves), shares it with a
//    code; a recipient in a fresh browser context fails the code once, passes it, downloads the exact
//    bytes; the admin finds that download in the provenance search and exports it as CSV;
//  - a view-only recipient on a phone-sized screen has no download control, and the download and
//    view URLs answer 403 (its rendered pages: web-pages.test.mjs);
//  - the sign-in TOTP step, the member's own watermarked preview, rename, folders, permissions, the
//    activity timeline, revoke, and the admin console's users, groups, policy and alerts.
// Every page is screenshotted at desktop and phone width into $COFFER_ARTIFACTS/screenshots, and any
// CSP violation or uncaught page error fails the test.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { chromium } from 'playwright-core';
import { startWithAdmin, ADMIN_PASSWORD, EICAR, sha256, bigBytes } from './lib/harness.mjs';

const CHROMIUM = process.env.COFFER_CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = process.env.COFFER_ARTIFACTS || path.join(os.tmpdir(), 'coffer-artifacts');
const SHOTS = path.join(ARTIFACTS, 'screenshots');
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 360, height: 740 };

let server, admin, browser, tmp;
const problems = []; // CSP violations and page errors, from every page of every context

// A real PNG (w×h, a colour gradient), made here so the test needs no image files.
function png(w, h) {
  const crcTable = Array.from({ length: 256 }, (_, n) => { let c = n; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; return c >>> 0; });
  const crc = (buf) => { let c = 0xffffffff; for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8); return (c ^ 0xffffffff) >>> 0; };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const c = Buffer.alloc(4); c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4); ihdr[8] = 8; ihdr[9] = 2;
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const o = y * (w * 3 + 1) + 1 + x * 3;
    raw[o] = (x * 255) / w; raw[o + 1] = (y * 255) / h; raw[o + 2] = 160;
  }
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

async function newContext(viewport = DESKTOP) {
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, acceptDownloads: true, viewport });
  // Waits for what the page shows get a generous deadline (playwright's default is 30 s): they end
  // on the event; the deadline only names a hang on a busy machine.
  ctx.setDefaultTimeout(120000);
  await ctx.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  ctx.on('page', (p) => watch(p));
  return ctx;
}

function watch(page) {
  page.on('pageerror', (e) => problems.push(`pageerror ${page.url()}: ${e.message}`));
  page.on('console', (m) => { if (/Content Security Policy|Refused to/i.test(m.text())) problems.push(`console ${page.url()}: ${m.text()}`); });
}

async function cspClean(page) {
  const v = await page.evaluate(() => window.__csp);
  assert.deepEqual(v, [], `CSP violations on ${page.url()}`);
}

// Screenshots of the page as it is, at desktop and phone width (the viewport is restored after).
async function shoot(page, name) {
  const keep = page.viewportSize();
  for (const [tag, vp] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    await page.setViewportSize(vp);
    await page.waitForTimeout(50);
    await page.screenshot({ path: path.join(SHOTS, `${name}-${tag}.png`), fullPage: true });
  }
  await page.setViewportSize(keep);
}

async function signIn(page, username, password, totp) {
  await page.goto(`${server.url}/`);
  await page.getByTestId('login-username').fill(username);
  await page.getByTestId('login-password').fill(password);
  await page.getByTestId('login-submit').click();
  if (totp) {
    await page.getByTestId('login-totp').waitFor();
    await page.getByTestId('login-totp').fill(totp());
    await page.getByTestId('login-submit').click();
  }
  await page.locator('#app-view').waitFor();
}

const row = (page, name) => page.locator(`[data-testid="file-row"][data-name="${name}"]`);

before(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-web-'));
  ({ server, admin } = await startWithAdmin({ config: { limits: { max_request_body_bytes: '16MiB' } } }));
  for (const [username, display_name] of [['alice', 'Alice Liddell'], ['bob', 'Bob Builder']]) {
    const r = await admin.req('POST', '/api/v1/admin/users', { body: { username, password: `${username}-password-1`, display_name } });
    assert.equal(r.status, 201, r.text());
  }
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  assert.deepEqual(problems, [], 'no CSP violation or page error on any page');
});

test('every page is served with a strict CSP (no unsafe-inline) and the static files it needs', async () => {
  for (const p of ['/', '/admin', '/static/app.js', '/static/app.css']) {
    const r = await server.request('GET', p);
    assert.equal(r.status, 200, p);
    const csp = r.headers['content-security-policy'];
    assert.ok(csp, `${p} has a CSP`);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, p);
    if (p === '/' || p === '/admin') {
      assert.match(csp, /script-src 'self'/);
      assert.match(csp, /style-src 'self'/);
      assert.match(csp, /frame-ancestors 'none'/);
      assert.match(r.headers['content-type'], /^text\/html/);
      assert.doesNotMatch(r.text(), /<script(?![^>]*\bsrc=)[^>]*>/i, `${p}: no inline script`);
      assert.doesNotMatch(r.text(), /\sstyle=|<style/i, `${p}: no inline style`);
    }
  }
});

test('watermark data: the member endpoint and the recipient info name the viewer, the address and the time', async () => {
  const t0 = Date.now();
  const r = await admin.req('GET', '/api/v1/me/watermark');
  assert.equal(r.status, 200);
  const w = r.json();
  assert.deepEqual(Object.keys(w).sort(), ['at', 'ip', 'name', 'username']);
  assert.equal(w.username, 'admin');
  assert.equal(w.ip, '127.0.0.1');
  assert.ok(Date.parse(w.at) >= t0 - 1000 && Date.parse(w.at) <= Date.now() + 1000, `server time, when asked: ${w.at}`);
  const anon = await server.request('GET', '/api/v1/me/watermark');
  assert.equal(anon.status, 401);
  assert.equal(anon.json().error, 'unauthorized');
});

test('journey: sign in, upload 30 MB with progress, share with a code, recipient unlocks and downloads, admin finds it', async () => {
  const data = bigBytes(30 * 1000 * 1000, 8);
  const file = path.join(tmp, 'quarterly-report.bin');
  fs.writeFileSync(file, data);

  // The member: wrong password first (a clear error), then in.
  const ctx = await newContext();
  const page = await ctx.newPage();
  await page.goto(`${server.url}/`);
  await shoot(page, 'login');
  await page.getByTestId('login-username').fill('alice');
  await page.getByTestId('login-password').fill('not-her-password');
  await page.getByTestId('login-submit').click();
  await assert.doesNotReject(page.getByTestId('login-error').waitFor());
  assert.equal(await page.getByTestId('login-error').textContent(), 'The username or password is not right.');
  await shoot(page, 'login-error');
  await page.getByTestId('login-password').fill('alice-password-1');
  await page.getByTestId('login-submit').click();
  await page.locator('#app-view').waitFor();
  assert.equal(await page.locator('#who').textContent(), 'Alice Liddell');

  // Upload through tus: record every value the progress bar takes.
  await page.evaluate(() => {
    window.__progress = [];
    new MutationObserver((ms) => {
      for (const m of ms) if (m.target.dataset && m.target.dataset.testid === 'upload-progress') window.__progress.push([Number(m.target.getAttribute('value')), Number(m.target.getAttribute('max'))]);
    }).observe(document.getElementById('uploads'), { subtree: true, attributes: true, attributeFilter: ['value'] });
  });
  await page.getByTestId('upload-input').setInputFiles(file);
  await page.locator('[data-testid="upload"][data-state="done"]').waitFor({ timeout: 180000 });
  const progress = await page.evaluate(() => window.__progress);
  const max = data.length;
  assert.ok(progress.every(([, m]) => m === max), 'the bar measures the file');
  assert.ok(progress.some(([v]) => v > 0 && v < max), `the bar showed progress on the way: ${JSON.stringify(progress.slice(0, 8))}`);
  assert.equal(progress.at(-1)[0], max, 'and ends full');
  for (let i = 1; i < progress.length; i++) assert.ok(progress[i][0] >= progress[i - 1][0], 'never goes back');
  await row(page, 'quarterly-report.bin').waitFor();
  const nodeId = await row(page, 'quarterly-report.bin').getAttribute('data-id');
  const alice = server.client((await server.login('alice', 'alice-password-1')).token);
  const node = (await alice.req('GET', `/api/v1/nodes/${nodeId}`)).json();
  assert.equal(node.size, max);
  assert.equal(node.sha256, sha256(data));
  const up = (await admin.req('GET', `/api/v1/audit?node=${nodeId}&action=file.upload`)).json().events;
  assert.equal(up.length, 1);
  assert.equal(up[0].detail.via, 'tus', 'the browser uploaded through tus');
  await shoot(page, 'files');

  // Share with a generated code.
  await row(page, 'quarterly-report.bin').getByTestId('share-button').click();
  await page.getByTestId('share-permission').selectOption('download');
  await page.getByTestId('share-expiry').selectOption(String(3 * 86400));
  await page.getByTestId('share-create').click();
  await page.getByTestId('share-url').waitFor();
  const url = await page.getByTestId('share-url').inputValue();
  const code = (await page.getByTestId('share-code-value').textContent()).trim();
  assert.match(url, new RegExp(`^${server.url}/s/[A-Za-z0-9_-]{43}$`));
  assert.match(code, /^[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{4}$/);
  await page.locator('[data-testid="share-link"][data-state="active"]').waitFor();
  await shoot(page, 'share-dialog');
  await cspClean(page);
  await page.keyboard.press('Escape');

  // The recipient: a fresh browser context (no cookies), wrong code once, then the right one.
  const rctx = await newContext();
  const rp = await rctx.newPage();
  await rp.goto(url);
  await rp.getByTestId('share-code-input').waitFor();
  await shoot(rp, 'recipient-code');
  await rp.getByTestId('share-code-input').fill('WRONG9');
  await rp.getByTestId('share-unlock').click();
  await rp.getByTestId('share-error').waitFor();
  assert.equal(await rp.getByTestId('share-error').textContent(), 'That code is not right. Check it and try again.');
  await shoot(rp, 'recipient-wrong-code');
  await rp.getByTestId('share-code-input').fill(code.toLowerCase());
  await rp.getByTestId('share-unlock').click();
  await rp.getByTestId('share-download').waitFor();
  assert.equal(await rp.locator('#name').textContent(), 'quarterly-report.bin');
  await shoot(rp, 'recipient-file');
  const [download] = await Promise.all([rp.waitForEvent('download'), rp.getByTestId('share-download').click()]);
  assert.equal(download.suggestedFilename(), 'quarterly-report.bin');
  const got = fs.readFileSync(await download.path());
  assert.equal(got.length, data.length);
  assert.equal(sha256(got), sha256(data), 'the recipient got the exact bytes');
  await cspClean(rp);

  // The admin finds that download in the provenance search, and in the CSV export.
  const actx = await newContext();
  const ap = await actx.newPage();
  await signIn(ap, 'admin', ADMIN_PASSWORD);
  await ap.locator('#admin-link').click();
  await ap.getByTestId('user-row').first().waitFor();
  await shoot(ap, 'admin-users');
  await ap.locator('#tabs [data-tab="audit"]').click();
  await ap.getByTestId('audit-node').fill(nodeId);
  await ap.getByTestId('audit-action').selectOption('share.download');
  await ap.getByTestId('audit-search').click();
  const hit = ap.locator('[data-testid="audit-row"][data-action="share.download"]');
  await hit.waitFor();
  assert.equal(await ap.getByTestId('audit-row').count(), 1, 'exactly the one download');
  assert.match(await hit.getAttribute('data-actor'), /^link [0-9a-f]{8}$/);
  assert.match(await hit.textContent(), /127\.0\.0\.1/);
  assert.match(await hit.textContent(), /30 MB ✓/, 'the whole file went out');
  await shoot(ap, 'admin-provenance');
  const [csv] = await Promise.all([ap.waitForEvent('download'), ap.getByTestId('audit-export').click()]);
  const text = fs.readFileSync(await csv.path(), 'utf8');
  const lines = text.trim().split('\r\n');
  assert.match(lines[0], /^seq,at,action,/);
  assert.equal(lines.length, 2, 'header and the one event');
  assert.match(lines[1], /,share\.download,share,/);
  await cspClean(ap);
  await Promise.all([ctx.close(), rctx.close(), actx.close()]);
});

test('journey: a view-only recipient on a phone has no download control and never the original', async () => {
  const alice = server.client((await server.login('alice', 'alice-password-1')).token);
  const root = (await alice.spaces()).private.root;
  const img = png(320, 200);
  const up = await alice.upload(root, 'floor-plan.png', img);
  assert.equal(up.status, 201, up.text());
  const node = up.json();
  assert.equal(node.mime, 'image/png');
  const sh = await alice.req('POST', '/api/v1/shares', { body: { node: node.id, permission: 'view', code: 'PLAN2026' } });
  assert.equal(sh.status, 201, sh.text());
  const { url } = sh.json();
  const token = url.split('/s/')[1];

  const ctx = await newContext(PHONE);
  const page = await ctx.newPage();
  await page.goto(url);
  await page.getByTestId('share-code-input').fill('plan2026');
  await page.getByTestId('share-unlock').click();
  await page.getByTestId('share-view').waitFor();
  assert.equal(await page.getByTestId('share-download').count(), 0, 'no download control at all');
  await page.getByTestId('share-view').click();
  // This server runs without renderers (the harness default): a view-only recipient then gets a
  // clear message and never the original (the rendered pages: web-pages.test.mjs).
  await page.waitForFunction(() => !document.querySelector('[data-testid="share-error"]').hidden);
  assert.equal(await page.getByTestId('share-error').textContent(), 'page rendering is not available right now');
  assert.equal(await page.locator('#preview-area img, #preview-area iframe, #preview-area video').count(), 0, 'no original shown');
  await shoot(page, 'recipient-view-only');
  // The download URL answers 403 for this recipient, with the cookie the page holds.
  const status = await page.evaluate(async (t) => (await fetch(`/s/${t}/content`, { credentials: 'same-origin' })).status, token);
  assert.equal(status, 403);
  const direct = await ctx.request.get(`${server.url}/s/${token}/content`);
  assert.equal(direct.status(), 403);
  assert.equal((await direct.json()).error, 'forbidden');
  // The original's view route is closed to it as well (view-only means pages only).
  assert.equal((await ctx.request.get(`${server.url}/s/${token}/view`)).status(), 403);
  await cspClean(page);
  await ctx.close();
});

test('recipient page: clear errors for unknown, revoked and rate-limited links', async () => {
  const alice = server.client((await server.login('alice', 'alice-password-1')).token);
  const root = (await alice.spaces()).private.root;
  const f = (await alice.upload(root, 'notes.txt', 'hello\n')).json();
  const sh = (await alice.req('POST', '/api/v1/shares', { body: { node: f.id, permission: 'download', code: 'ABCD1234' } })).json();
  const ctx = await newContext(PHONE);
  const page = await ctx.newPage();

  const unknown = await page.goto(`${server.url}/s/${'A'.repeat(43)}`);
  assert.equal(unknown.status(), 404);
  assert.equal(await page.getByTestId('share-error').getAttribute('data-error'), 'not_found');
  await shoot(page, 'recipient-unknown');

  // Too many wrong codes from this address: the wait is shown.
  await page.goto(sh.url);
  let text = '';
  for (let i = 0; i < 6; i++) {
    await page.getByTestId('share-code-input').fill(`BAD${i}X`);
    await Promise.all([page.waitForResponse((r) => r.url().endsWith('/unlock')), page.getByTestId('share-unlock').click()]);
    await page.waitForFunction(() => !document.querySelector('[data-testid="share-error"]').hidden && !document.querySelector('[data-testid="share-unlock"]').disabled);
    text = await page.getByTestId('share-error').textContent();
  }
  assert.match(text, /^Too many wrong codes\. Wait (\d+ (seconds|minutes)|about 2 minutes), then try again\.$/);
  await shoot(page, 'recipient-rate-limited');

  await alice.req('DELETE', `/api/v1/shares/${sh.id}`);
  const gone = await page.goto(sh.url);
  assert.equal(gone.status(), 410);
  assert.equal(await page.getByTestId('share-error').getAttribute('data-error'), 'revoked');
  await shoot(page, 'recipient-revoked');
  await ctx.close();
});

test('member: TOTP sign-in step, folders, rename, own preview with watermark, permissions, activity, revoke', async () => {
  // Turn TOTP on for bob through the API, with a real authenticator (oathtool).
  const bob = server.client((await server.login('bob', 'bob-password-1')).token);
  const en = (await bob.req('POST', '/api/v1/me/totp')).json();
  const otp = (offset = 0) => execFileSync('oathtool', ['--totp', '-b', '-N', `@${Math.floor(Date.now() / 1000) + offset}`, en.secret], { encoding: 'utf8' }).trim();
  assert.equal((await bob.req('POST', '/api/v1/me/totp/confirm', { body: { code: otp() } })).status, 200);

  const ctx = await newContext();
  const page = await ctx.newPage();
  await page.goto(`${server.url}/`);
  await page.getByTestId('login-username').fill('bob');
  await page.getByTestId('login-password').fill('bob-password-1');
  await page.getByTestId('login-submit').click();
  await page.getByTestId('login-totp').waitFor();
  assert.equal(await page.getByTestId('login-error').textContent(), 'Enter the code from your authenticator app.');
  await shoot(page, 'login-totp');
  await page.getByTestId('login-totp').fill(otp(30)); // the next step: the previous one was used at confirmation
  await page.getByTestId('login-submit').click();
  await page.locator('#app-view').waitFor();

  // A folder, then a text file uploaded into it by the picker, then renamed.
  await page.getByTestId('new-folder').click();
  await page.getByTestId('dialog-input').fill('Projects');
  await page.getByTestId('dialog-submit').click();
  await row(page, 'Projects').waitFor();
  await row(page, 'Projects').locator('button.name').click();
  await page.locator('#breadcrumbs [aria-current="page"]', { hasText: 'Projects' }).waitFor();
  const txt = path.join(tmp, 'plan.txt');
  fs.writeFileSync(txt, 'Step 1: trust nobody with plaintext.\n');
  await page.getByTestId('upload-input').setInputFiles(txt);
  await row(page, 'plan.txt').waitFor();
  await row(page, 'plan.txt').locator('details.menu summary').click();
  await row(page, 'plan.txt').getByTestId('rename-button').click();
  await page.getByTestId('dialog-input').fill('plan-v2.txt');
  await page.getByTestId('dialog-submit').click();
  await row(page, 'plan-v2.txt').waitFor();
  assert.equal(await row(page, 'plan.txt').count(), 0);

  // Own preview: the text, under a watermark naming bob and his address.
  await row(page, 'plan-v2.txt').locator('button.name').click();
  await page.getByTestId('preview-text').waitFor();
  assert.equal(await page.getByTestId('preview-text').textContent(), 'Step 1: trust nobody with plaintext.\n');
  assert.match(await page.getByTestId('watermark').getAttribute('data-text'), /^Bob Builder · 127\.0\.0\.1 · \d{4}-\d\d-\d\d \d\d:\d\d UTC$/);
  await shoot(page, 'member-preview');
  await page.keyboard.press('Escape');

  // Permissions: grant alice "download" on the file; the server holds exactly that.
  await row(page, 'plan-v2.txt').locator('details.menu summary').click();
  await row(page, 'plan-v2.txt').getByTestId('access-button').click();
  await page.getByTestId('acl-table').waitFor();
  // The first row names who holds manage by the space: bob, in his private space.
  assert.equal(await page.getByTestId('acl-owner').textContent(), 'bobmanageowner of this space');
  const aliceId = (await admin.req('GET', '/api/v1/admin/users')).json().users.find((u) => u.username === 'alice').id;
  await page.getByTestId('acl-principal').selectOption(`user:${aliceId}`);
  await page.getByTestId('acl-level').selectOption('download');
  await page.getByTestId('acl-add').click();
  await page.getByTestId('acl-save').click();
  // The entry row exists as soon as "Add" is pressed; only the announcement follows the server's answer.
  await page.locator('#status', { hasText: 'Access to plan-v2.txt saved.' }).waitFor();
  await page.locator(`[data-testid="acl-entry"][data-principal="user:${aliceId}"]`).waitFor();
  const fileId = await row(page, 'plan-v2.txt').getAttribute('data-id');
  const acl = (await bob.req('GET', `/api/v1/nodes/${fileId}/acl`)).json();
  assert.deepEqual(acl.entries.map((e) => [e.principal, e.level]), [[`user:${aliceId}`, 'download']]);
  await shoot(page, 'permissions');
  await page.keyboard.press('Escape');

  // A link, then revoke it from the dialog: the server says revoked.
  await row(page, 'plan-v2.txt').getByTestId('share-button').click();
  await page.getByTestId('share-code').fill('Bob12345');
  await page.getByTestId('share-create').click();
  assert.equal((await page.getByTestId('share-code-value').textContent()).trim(), 'Bob12345');
  await page.getByTestId('share-revoke').click();
  await page.locator('[data-testid="share-link"][data-state="revoked"]').waitFor();
  const shares = (await bob.req('GET', `/api/v1/shares?node=${fileId}`)).json().shares;
  assert.deepEqual(shares.map((s) => s.state), ['revoked']);
  await page.keyboard.press('Escape');

  // The activity timeline names what happened, newest first.
  await row(page, 'plan-v2.txt').locator('details.menu summary').click();
  await row(page, 'plan-v2.txt').getByTestId('activity-button').click();
  await page.getByTestId('activity-event').first().waitFor();
  const actions = await page.getByTestId('activity-event').evaluateAll((els) => els.map((e) => e.dataset.action));
  for (const a of ['share.revoke', 'share.create', 'acl.change', 'file.view', 'node.rename', 'file.upload']) assert.ok(actions.includes(a), `${a} in ${actions}`);
  assert.equal(actions[0], 'share.revoke');
  await shoot(page, 'activity');
  await page.keyboard.press('Escape');

  // Keyboard: Tab reaches the upload control's label and the row buttons with a visible focus ring.
  await page.locator('#breadcrumbs button').first().focus();
  await page.keyboard.press('Enter');
  await row(page, 'Projects').waitFor();
  await cspClean(page);
  await ctx.close();
});

test('uploads: drag-and-drop, pause and resume the same upload, automatic retry after a lost connection', async () => {
  const ctx = await newContext();
  const page = await ctx.newPage();
  await signIn(page, 'alice', 'alice-password-1');
  const alice = server.client((await server.login('alice', 'alice-password-1')).token);

  // Drag-and-drop: a drop of a file on the file list uploads it into the open folder.
  await page.evaluate(() => {
    const dt = new DataTransfer();
    dt.items.add(new File(['dropped bytes\n'], 'dropped.txt', { type: 'text/plain' }));
    const zone = document.getElementById('dropzone');
    zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
    zone.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  });
  await row(page, 'dropped.txt').waitFor();
  const dropped = await alice.download(await row(page, 'dropped.txt').getAttribute('data-id'));
  assert.equal(dropped.text(), 'dropped bytes\n');

  // Pause while the second piece is in flight (held by the test), then resume: one upload, exact bytes.
  const data = bigBytes(20 * 1000 * 1000, 11);
  const file = path.join(tmp, 'paused.bin');
  fs.writeFileSync(file, data);
  let patches = 0;
  let held;
  const heldSeen = new Promise((resolve) => { held = resolve; });
  await page.route('**/api/v1/uploads/*', (route) => {
    if (route.request().method() === 'PATCH' && ++patches === 2) { held(); return; } // never answered
    route.continue();
  });
  await page.getByTestId('upload-input').setInputFiles(file);
  await heldSeen;
  const up = page.locator('[data-testid="upload"][data-name="paused.bin"]');
  await up.getByTestId('upload-pause').click();
  await page.locator('[data-testid="upload"][data-name="paused.bin"][data-state="paused"]').waitFor();
  assert.match(await up.textContent(), /Paused at 8\.4 MB/);
  await shoot(page, 'upload-paused');
  await page.unroute('**/api/v1/uploads/*');
  await up.getByTestId('upload-pause').click(); // now labelled Resume
  await page.locator('[data-testid="upload"][data-name="paused.bin"][data-state="done"]').waitFor({ timeout: 120000 });
  const id = await row(page, 'paused.bin').getAttribute('data-id');
  const got = await alice.download(id);
  assert.equal(sha256(got.body), sha256(data), 'resumed upload is byte-identical');
  const starts = (await admin.req('GET', '/api/v1/audit?action=upload.start&limit=1000')).json().events.filter((e) => e.detail.name === 'paused.bin');
  assert.equal(starts.length, 1, 'resume continued the same upload instead of starting over');

  // A lost connection: the first PATCH fails at the network level; the client retries by itself.
  const small = path.join(tmp, 'flaky.txt');
  fs.writeFileSync(small, 'survives a flaky network\n');
  let failed = 0;
  await page.route('**/api/v1/uploads/*', (route) => {
    if (route.request().method() === 'PATCH' && failed === 0) { failed++; return route.abort('connectionreset'); }
    return route.continue();
  });
  await page.getByTestId('upload-input').setInputFiles(small);
  await page.locator('[data-testid="upload"][data-name="flaky.txt"][data-state="retrying"]').waitFor();
  await page.locator('[data-testid="upload"][data-name="flaky.txt"][data-state="done"]').waitFor({ timeout: 120000 });
  assert.equal(failed, 1);
  assert.equal((await alice.download(await row(page, 'flaky.txt').getAttribute('data-id'))).text(), 'survives a flaky network\n');
  await page.unroute('**/api/v1/uploads/*');

  // An infected file is refused with the reason, and nothing is stored.
  const eicar = path.join(tmp, 'invoice.txt');
  fs.writeFileSync(eicar, EICAR);
  await page.getByTestId('upload-input').setInputFiles(eicar);
  const bad = page.locator('[data-testid="upload"][data-name="invoice.txt"][data-state="failed"]');
  await bad.waitFor();
  assert.equal(await bad.getAttribute('data-error'), 'infected');
  assert.match(await bad.textContent(), /Refused: a virus was found/);
  assert.equal(await row(page, 'invoice.txt').count(), 0);
  await shoot(page, 'upload-refused');

  // Keyboard: the sign-in form is reachable with Tab and shows a visible focus ring.
  const kctx = await newContext();
  const kp = await kctx.newPage();
  await kp.goto(`${server.url}/`);
  await kp.getByTestId('login-username').focus();
  await kp.keyboard.press('Tab');
  assert.equal(await kp.evaluate(() => document.activeElement.dataset.testid), 'login-password');
  await kp.keyboard.press('Tab');
  assert.equal(await kp.evaluate(() => document.activeElement.dataset.testid), 'login-submit');
  const outline = await kp.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  assert.notEqual(outline, 'none', 'focus is visible');
  await cspClean(page);
  await Promise.all([ctx.close(), kctx.close()]);
});

test('admin console: create, freeze and list users, groups, policy, alerts; members are kept out', async () => {
  const ctx = await newContext();
  const page = await ctx.newPage();
  await signIn(page, 'admin', ADMIN_PASSWORD);
  await page.goto(`${server.url}/admin`);
  await page.getByTestId('user-username').fill('carol');
  await page.getByTestId('user-display').fill('Carol Danvers');
  await page.getByTestId('user-password').fill('carol-password-1');
  await page.getByTestId('user-create').click();
  const carol = page.locator('[data-testid="user-row"][data-username="carol"]');
  await carol.waitFor();
  await carol.getByTestId('user-freeze').click();
  await page.locator('[data-testid="user-row"][data-username="carol"][data-status="frozen"]').waitFor();
  const users = (await admin.req('GET', '/api/v1/admin/users')).json().users;
  assert.equal(users.find((u) => u.username === 'carol').status, 'frozen');

  await page.locator('#tabs [data-tab="groups"]').click();
  await page.getByTestId('group-name').fill('Finance');
  await page.getByTestId('group-create').click();
  const g = page.locator('[data-testid="group"][data-name="Finance"]');
  await g.waitFor();
  await g.locator('label', { hasText: 'alice' }).locator('input').check();
  await g.getByTestId('group-save').click();
  await page.locator('#status', { hasText: 'Members of Finance saved.' }).waitFor();
  const groups = (await admin.req('GET', '/api/v1/admin/groups')).json().groups;
  assert.equal(groups.find((x) => x.name === 'Finance').members.length, 1);
  await shoot(page, 'admin-groups');

  await page.locator('#tabs [data-tab="policy"]').click();
  await page.getByTestId('policy-expiry').waitFor();
  await page.waitForFunction(() => document.getElementById('p-expiry').value !== '');
  await page.getByTestId('policy-expiry').fill('2');
  await page.getByTestId('policy-blocked').fill('application/x-executable\nvideo/*');
  await page.getByTestId('policy-save').click();
  await page.locator('#status', { hasText: 'Policy saved.' }).waitFor();
  const pol = (await admin.req('GET', '/api/v1/admin/policy')).json();
  assert.equal(pol.share_max_expiry, 2 * 86400);
  assert.deepEqual(pol.blocked_types, ['application/x-executable', 'video/*']);
  await shoot(page, 'admin-policy');

  await page.locator('#tabs [data-tab="alerts"]').click();
  await page.locator('[data-testid="alert-row"][data-action="alert.new_device"]').first().waitFor();
  await shoot(page, 'admin-alerts');
  await cspClean(page);

  // A member who opens /admin sees no console, and the API behind it answers 403.
  const mctx = await newContext();
  const mp = await mctx.newPage();
  await signIn(mp, 'alice', 'alice-password-1');
  assert.equal(await mp.locator('#admin-link').isVisible(), false);
  await mp.goto(`${server.url}/admin`);
  await mp.locator('#status', { hasText: 'The admin console is for administrators and auditors.' }).waitFor();
  const st = await mp.evaluate(async () => (await fetch('/api/v1/admin/users')).status);
  assert.equal(st, 403);
  await Promise.all([ctx.close(), mctx.close()]);
});
