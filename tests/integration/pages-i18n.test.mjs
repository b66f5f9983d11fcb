// Chinese in rendered pages (issue 21's CJK gap of issue 20's view-only pages; docs/SECURITY.md
// "View-only", README "fonts"): the confined renderers (coffer-render under Landlock and seccomp,
// LibreOffice under its own) find a CJK font through fontconfig, so Chinese is drawn as Chinese and
// not as tofu. Proved on the decoded pixels (dwebp, lib/pixels.mjs) of pages served to a view-only
// member:
// - two UTF-8 text files with different Chinese strings of the same length: their glyphs are ink
//   (not blank), differ from each other, and none is a box (Pango draws a character no font has as
//   a box with its code in hex inside, so two strings of tofu differ too: the box check is what
//   fails without a CJK font);
// - two viewers with Chinese display names of the same length: their watermarks (turned back
//   from 30°) differ, and hold no box;
// - an OpenDocument text with a Chinese heading (LibreOffice's path): ink, and no box (LibreOffice
//   draws a missing character as the fallback font's .notdef box);
// - every content path is 403 for the view-only member, and no response holds a 64-byte run of an
//   original.
// Run with the CJK font hidden from fontconfig (docs/SECURITY.md says how this was checked), the
// box assertions fail for all three.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Server } from './lib/harness.mjs';
import { PageClient } from './lib/pagecheck.mjs';
import { makePng } from './lib/docs.mjs';
import { odt } from './lib/office.mjs';
import { decodeWebp, ink, bbox, glyphs, unrotate, maskDiff, union } from './lib/pixels.mjs';

let server, pc;
const U = {};
const F = {};
const pw = (n) => `${n}-password-1`;

// The strings: same length, no character that is itself a closed rectangle (see lib/pixels.mjs).
const TEXT_A = '中文测试文档';
const TEXT_B = '你好世界再见';
const NAME_A = '张小龙';
const NAME_B = '赵文杰';

/** A white w×h RGB PNG: a page on which the watermark is the only ink. */
const whitePng = (w, h) => makePng(w, h, { fill: 255 });

before(async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-i18n-'));
  // Four lines of one string: more than 64 bytes, so that the no-run check means something.
  const files = {
    'zh-a.txt': Buffer.from(`${TEXT_A}\n`.repeat(4)),
    'zh-b.txt': Buffer.from(`${TEXT_B}\n`.repeat(4)),
    'blank.png': whitePng(400, 300),
    'zh.odt': odt(tmp, 'zh.odt', [[TEXT_A]], 40),
    // Long lines wrap instead of being cut off (93 cells of text per row; a CJK character takes two):
    // 60 lines of 200 ASCII characters are 3 rows each, 180 rows, 3 pages of 60 rows; 40 lines of 60
    // Chinese characters (120 cells) are 2 rows each, 80 rows, 2 pages. Cut off, both were 1 page.
    'long.txt': Buffer.from(Array.from({ length: 60 }, (_, i) => `${String(i).padStart(3, '0')} ${'abcdefghij'.repeat(20)}`.slice(0, 200) + '\n').join('')),
    'long-zh.txt': Buffer.from(`${TEXT_A.repeat(10)}\n`.repeat(40)),
  };
  fs.rmSync(tmp, { recursive: true, force: true });

  server = new Server({ config: { render: { enabled: true, pages_per_minute: 1000, max_seconds: 120 } } });
  await server.start();
  pc = new PageClient(server);
  const al = await server.login();
  U.admin = { token: al.token };
  for (const [n, display] of [['bob', NAME_A], ['carol', NAME_B]]) {
    const r = await pc.req('POST', '/api/v1/admin/users', { token: al.token, body: { username: n, password: pw(n), display_name: display } });
    assert.equal(r.status, 201, r.text());
    U[n] = { id: r.json().id, token: (await server.login(n, pw(n))).token };
  }
  const sp = (await pc.req('GET', '/api/v1/spaces', { token: al.token })).json();
  const dir = await pc.req('POST', '/api/v1/folders', { token: al.token, body: { parent: sp.tenant.root, name: '文档' } });
  assert.equal(dir.status, 201, dir.text());
  F.dir = dir.json();
  const acl = await pc.req('PUT', `/api/v1/nodes/${F.dir.id}/acl`, {
    token: al.token,
    body: { entries: [{ principal: `user:${U.bob.id}`, level: 'view' }, { principal: `user:${U.carol.id}`, level: 'view' }] },
  });
  assert.equal(acl.status, 200, acl.text());
  for (const [name, data] of Object.entries(files)) F[name] = await pc.upload(al.token, F.dir.id, name, data);
});

after(async () => {
  if (server) {
    await server.stop();
    server.cleanup();
  }
});

/** Page 1 of a file for bob (view-only) at width w, after checking its status and count; decoded. */
async function page1(name, w, pages = 1) {
  const id = F[name].id;
  await pc.contentForbidden(id, U.bob.token, name);
  const s = await pc.summary(`/api/v1/files/${id}/pages`, U.bob.token);
  assert.deepEqual([s.status, s.pages], ['ready', pages], `${name}: ${JSON.stringify(s)}`);
  return decodeWebp(await pc.page(`/api/v1/files/${id}/pages/1?w=${w}`, U.bob.token, w));
}

test('Chinese text is drawn in Chinese glyphs: two strings differ, neither is blank or tofu', async () => {
  // Body text is near black (the line numbers are mid grey, the watermark light grey): ink < 100.
  const W = 1600;
  const a = ink(await page1('zh-a.txt', W), 100);
  const b = ink(await page1('zh-b.txt', W), 100);
  const res = [];
  for (const [m, label] of [[a, TEXT_A], [b, TEXT_B]]) {
    const box = bbox(m);
    assert.ok(box, `${label}: the page has text ink`);
    const g = glyphs(m, box, 10);
    assert.deepEqual(g.boxes, [], `${label}: no glyph is a tofu box (${g.boxes.length} of ${g.segs.length} segments are boxes)`);
    assert.equal(g.bands.length, 4, `${label}: four lines of text`);
    const line = g.bands[0];
    const lb = bbox(m, line);
    const h = lb.y1 - lb.y0;
    // Six full-width glyphs side by side: wider than four times a glyph's height, and real ink.
    assert.ok(h >= 12 && lb.x1 - lb.x0 > 4 * h, `${label}: a line of six glyphs (${JSON.stringify(lb)})`);
    assert.ok(lb.count > 6 * h, `${label}: ink in the glyphs (${lb.count} px)`);
    res.push({ line, lb });
  }
  // The two strings sit in the same place; their ink differs substantially.
  const r = union(res[0].lb, res[1].lb);
  const diff = maskDiff(a, b, r);
  assert.ok(diff > 0.3 * Math.min(res[0].lb.count, res[1].lb.count), `the two strings' glyphs differ (${diff} px)`);
});

test('long lines wrap onto more rows (by display cells, CJK two), so no text is cut off', async () => {
  for (const [name, pages] of [['long.txt', 3], ['long-zh.txt', 2]]) {
    for (const w of [480, 1600]) {
      const s = await pc.summary(`/api/v1/files/${F[name].id}/pages`, U.bob.token);
      assert.deepEqual([s.status, s.pages], ['ready', pages], `${name}: ${JSON.stringify(s)}`);
      // The last page has text on it, and the page after it does not exist.
      const m = ink(decodeWebp(await pc.page(`/api/v1/files/${F[name].id}/pages/${pages}?w=${w}`, U.bob.token, w)), 100);
      assert.ok(bbox(m), `${name}: page ${pages} at ${w} px has text`);
      const past = await pc.req('GET', `/api/v1/files/${F[name].id}/pages/${pages + 1}?w=${w}`, { token: U.bob.token });
      assert.equal(past.status, 404, `${name}: no page ${pages + 1}`);
    }
  }
  // Page 1 of long.txt at full width holds 60 rows of body text (ASCII rows, no tofu).
  const m1 = ink(decodeWebp(await pc.page(`/api/v1/files/${F['long.txt'].id}/pages/1?w=1600`, U.bob.token, 1600)), 100);
  const g = glyphs(m1, bbox(m1), 10);
  assert.equal(g.bands.length, 60, `60 rows on page 1 (${g.bands.length})`);
});

test('a Chinese display name is burned into the watermark as Chinese: two names differ, neither is tofu', async () => {
  const id = F['blank.png'].id;
  const s = await pc.summary(`/api/v1/files/${id}/pages`, U.bob.token);
  assert.deepEqual([s.status, s.pages], ['ready', 1]);
  await pc.contentForbidden(id, U.carol.token, 'blank.png');
  // The watermark also holds the time to the minute: bob, carol, bob again; when bob's two pages
  // are the same bytes, all three were made in the same minute and differ only by the name.
  const W = 1600;
  let A, B;
  for (let i = 0; i < 5 && !A; i++) {
    const a1 = await pc.page(`/api/v1/files/${id}/pages/1?w=${W}`, U.bob.token, W);
    const b1 = await pc.page(`/api/v1/files/${id}/pages/1?w=${W}`, U.carol.token, W);
    const a2 = await pc.page(`/api/v1/files/${id}/pages/1?w=${W}`, U.bob.token, W);
    if (a1.equals(a2)) [A, B] = [a1, b1];
  }
  assert.ok(A, 'one viewer\'s page is the same within a minute');
  assert.ok(!A.equals(B), 'two viewers get different bytes');
  // On a white page the watermark is the only ink (light grey); turned back from 30°, its lines
  // are horizontal.
  const ma = ink(unrotate(decodeWebp(A)), 240);
  const mb = ink(unrotate(decodeWebp(B)), 240);
  const boxA = bbox(ma), boxB = bbox(mb);
  assert.ok(boxA && boxB, 'the watermark has ink');
  const ga = glyphs(ma, boxA, 16, 2), gb = glyphs(mb, boxB, 16, 2);
  for (const [g, label] of [[ga, NAME_A], [gb, NAME_B]]) {
    assert.ok(g.bands.length >= 6 && g.segs.length >= 30, `${label}: watermark lines (${g.bands.length} lines, ${g.segs.length} segments)`);
    assert.deepEqual(g.boxes, [], `${label}: no glyph of the watermark is a tofu box (${g.boxes.length} of ${g.segs.length})`);
  }
  const diff = maskDiff(ma, mb, union(boxA, boxB));
  assert.ok(diff > 1000, `the two names' watermarks differ (${diff} px)`);
});

test('Chinese in an OpenDocument text (LibreOffice) is drawn in Chinese glyphs, not boxes', async () => {
  const W = 1600;
  const m = ink(await page1('zh.odt', W), 100);
  const box = bbox(m);
  assert.ok(box, 'the page has text ink');
  const g = glyphs(m, box, 10);
  assert.deepEqual(g.boxes, [], `no glyph is a .notdef box (${g.boxes.length} of ${g.segs.length} segments)`);
  assert.equal(g.bands.length, 1, `one line of text (${JSON.stringify(g.bands)})`);
  const h = box.y1 - box.y0;
  assert.ok(h >= 20 && box.x1 - box.x0 > 4 * h && box.count > 6 * h, `a line of six glyphs (${JSON.stringify(box)})`);
});

test('no response body equals an original or holds a 64-byte run of one', () => {
  pc.noOriginal(30);
});
