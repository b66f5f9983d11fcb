// The page viewer in a real browser (issue 20): playwright-core driving Debian's chromium against the
// real server with its renderers on. The recipient page of a view-only link shows the file as pages
// the server rendered (page count, keyboard, zoom), has no download or print control and no browser
// PDF viewer, and the watermark is burned into the served image: two recipients' pixels differ where
// their watermarks differ. Screenshots (desktop and phone) go to $COFFER_ARTIFACTS/screenshots
// (docs/WEB.md). A view-only member's preview is the same viewer. Any CSP violation or page error
// fails the test.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startWithAdmin } from './lib/harness.mjs';
import { makePdf as docPdf } from './lib/docs.mjs';

const CHROMIUM = process.env.COFFER_CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = process.env.COFFER_ARTIFACTS || path.join(os.tmpdir(), 'coffer-artifacts');
const SHOTS = path.join(ARTIFACTS, 'screenshots');
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 360, height: 740 };

let server, admin, browser;
const problems = [];

/** A PDF of n pages with a line of text on each (hand-written, so the test needs no files). */
function makePdf(n) {
  return docPdf(n, (i) => `BT /F1 30 Tf 72 700 Td (Board minutes, page ${i}) Tj ET\nBT /F1 14 Tf 72 660 Td (Confidential: view only.) Tj ET\n`);
}

async function newContext(viewport = DESKTOP) {
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport });
  ctx.setDefaultTimeout(180000); // a deadline for hangs only: every wait ends on its event
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

/** Opens a link in a fresh context, unlocks it, opens the viewer; returns {ctx, page}. */
async function openViewer(link, viewport) {
  const ctx = await newContext(viewport);
  const page = await ctx.newPage();
  await page.goto(link.url);
  await page.getByTestId('share-code-input').fill(link.code);
  await page.getByTestId('share-unlock').click();
  await page.getByTestId('share-view').waitFor();
  await page.getByTestId('share-view').click();
  await page.getByTestId('page-viewer').waitFor();
  await page.waitForFunction(() => {
    const imgs = [...document.querySelectorAll('[data-testid="page-image"]')];
    return imgs.length > 0 && imgs.slice(0, 2).every((i) => i.complete && i.naturalWidth > 0);
  });
  return { ctx, page };
}

/** The RGBA pixels of page n's image as the browser decoded it. */
async function pixels(page, n) {
  const b64 = await page.evaluate((k) => {
    const img = document.querySelector(`[data-testid="page-image"][data-page="${k}"]`);
    const c = document.createElement('canvas');
    c.width = img.naturalWidth;
    c.height = img.naturalHeight;
    const g = c.getContext('2d');
    g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    let s = '';
    for (let i = 0; i < d.length; i += 0x8000) s += String.fromCharCode.apply(null, d.subarray(i, i + 0x8000));
    return JSON.stringify([c.width, c.height, btoa(s)]);
  }, n);
  const [w, h, data] = JSON.parse(b64);
  return { w, h, data: Buffer.from(data, 'base64') };
}

before(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  ({ server, admin } = await startWithAdmin({ config: { render: { enabled: true } } }));
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});

after(async () => {
  if (browser) await browser.close();
  if (server) {
    await server.stop();
    server.cleanup();
  }
  assert.deepEqual(problems, [], 'no CSP violation or page error on any page');
});

test('a view-only link: the recipient page shows watermarked pages, no download or print, no PDF viewer', async () => {
  const root = (await admin.spaces()).private.root;
  const pdf = makePdf(3);
  const up = await admin.upload(root, 'board-minutes.pdf', pdf);
  assert.equal(up.status, 201, up.text());
  const node = up.json();
  const links = [];
  for (const code of ['VIEWONE1', 'VIEWTWO2']) {
    const r = await admin.req('POST', '/api/v1/shares', { body: { node: node.id, permission: 'view', code } });
    assert.equal(r.status, 201, r.text());
    links.push({ url: r.json().url, code: code.toLowerCase() });
  }

  const a = await openViewer(links[0], DESKTOP);
  const page = a.page;
  assert.equal(await page.getByTestId('share-download').count(), 0, 'no download control');
  assert.equal(await page.locator('iframe, embed, object').count(), 0, 'no browser PDF viewer');
  const controls = await page.locator('button, a').evaluateAll((els) => els.filter((e) => !e.hidden && e.offsetParent !== null)
    .map((e) => `${e.textContent} ${e.getAttribute('aria-label') || ''} ${e.getAttribute('title') || ''}`));
  assert.ok(!controls.some((t) => /download|print|save/i.test(t)), `no download or print control: ${controls}`);
  assert.equal(await page.getByTestId('page-image').count(), 3);
  assert.match(await page.getByTestId('page-count').textContent(), /^Page 1 of 3 · 960 px$/);
  const first = page.locator('[data-testid="page-image"][data-page="1"]');
  assert.equal(await first.evaluate((i) => i.naturalWidth), 960, 'page 1 rendered at 960');
  assert.match(await first.getAttribute('src'), /\/pages\/1\?w=960$/);
  // Keyboard: next page, zoom in.
  await page.getByTestId('pages').focus();
  await page.keyboard.press('ArrowRight');
  await page.waitForFunction(() => /^Page 2 of 3/.test(document.querySelector('[data-testid="page-count"]').textContent));
  await page.keyboard.press('+');
  await page.waitForFunction(() => /1600 px$/.test(document.querySelector('[data-testid="page-count"]').textContent));
  await page.waitForFunction(() => {
    const i = document.querySelector('[data-testid="page-image"][data-page="2"]');
    return i.complete && i.naturalWidth === 1600;
  });
  await page.keyboard.press('-');
  await page.waitForFunction(() => {
    const i = document.querySelector('[data-testid="page-image"][data-page="1"]');
    return /960 px$/.test(document.querySelector('[data-testid="page-count"]').textContent) && i.complete && i.naturalWidth === 960;
  });
  await shoot(page, 'recipient-pages');

  // A second recipient (another link: another label): the same page, other pixels.
  const b = await openViewer(links[1], PHONE);
  await shoot(b.page, 'recipient-pages-second');
  const pa = await pixels(a.page, 1);
  const pb = await pixels(b.page, 1);
  assert.deepEqual([pa.w, pa.h], [pb.w, pb.h], 'the same page at the same width');
  let differ = 0;
  for (let i = 0; i < pa.data.length; i += 4) {
    if (Math.abs(pa.data[i] - pb.data[i]) + Math.abs(pa.data[i + 1] - pb.data[i + 1]) + Math.abs(pa.data[i + 2] - pb.data[i + 2]) > 24) differ++;
  }
  assert.ok(differ > 200, `the watermarks differ in the served pixels (${differ} pixels)`);
  assert.ok(differ < (pa.w * pa.h) / 2, `the page itself is the same (${differ} of ${pa.w * pa.h} pixels differ)`);

  // The page's own fetches of the original are refused.
  const token = links[0].url.split('/s/')[1];
  const st = await page.evaluate(async (t) => Promise.all(['content', 'view'].map(async (p) => (await fetch(`/s/${t}/${p}`, { credentials: 'same-origin' })).status)), token);
  assert.deepEqual(st, [403, 403]);
  for (const p of [a.page, b.page]) assert.deepEqual(await p.evaluate(() => window.__csp), []);
  await a.ctx.close();
  await b.ctx.close();
});

test('a view-only member: the preview is the page viewer, with no download control and no PDF viewer', async () => {
  const r = await admin.req('POST', '/api/v1/admin/users', { body: { username: 'vera', password: 'vera-password-1', display_name: 'Vera Viewer' } });
  assert.equal(r.status, 201, r.text());
  const root = (await admin.spaces()).private.root;
  const up = await admin.upload(root, 'budget-2027.pdf', makePdf(2));
  assert.equal(up.status, 201, up.text());
  const node = up.json();
  const acl = await admin.req('PUT', `/api/v1/nodes/${node.id}/acl`, { body: { entries: [{ principal: `user:${r.json().id}`, level: 'view' }] } });
  assert.equal(acl.status, 200, acl.text());

  const ctx = await newContext(DESKTOP);
  const page = await ctx.newPage();
  await page.goto(`${server.url}/`);
  await page.getByTestId('login-username').fill('vera');
  await page.getByTestId('login-password').fill('vera-password-1');
  await page.getByTestId('login-submit').click();
  await page.locator('#app-view').waitFor();
  await page.locator('.spaces button[data-space="shared"]').click();
  const row = page.locator('[data-testid="file-row"][data-name="budget-2027.pdf"]');
  await row.waitFor();
  assert.equal(await row.getByTestId('download-button').count(), 0, 'no download control in the row');
  await row.locator('button.name').click();
  await page.getByTestId('page-viewer').waitFor();
  await page.waitForFunction(() => {
    const i = document.querySelector('[data-testid="page-image"][data-page="1"]');
    return i && i.complete && i.naturalWidth === 960;
  });
  assert.match(await page.getByTestId('page-count').textContent(), /^Page 1 of 2/);
  assert.equal(await page.locator('iframe, embed, object').count(), 0, 'no browser PDF viewer');
  const dialog = await page.locator('dialog, [role="dialog"]').first().innerText();
  assert.doesNotMatch(dialog, /download|print/i, 'no download or print control in the preview');
  const st = await page.evaluate(async (id) => Promise.all(['content', 'view'].map(async (p) => (await fetch(`/api/v1/files/${id}/${p}`, { credentials: 'same-origin' })).status)), node.id);
  assert.deepEqual(st, [403, 403], 'the original is refused to a view-only member');
  await shoot(page, 'member-pages-view-only');
  assert.deepEqual(await page.evaluate(() => window.__csp), []);
  await ctx.close();
});
