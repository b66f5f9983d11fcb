// Office types beyond docx and xlsx (pages.test.mjs has those): pptx, odt, ods and odp take the same
// LibreOffice path in the renderer (docs/API.md "Pages", docs/SECURITY.md "View-only"). The files are
// built at test time (lib/office.mjs writes the OpenDocument ones; LibreOffice turns the
// presentation into a pptx), each with several pages of its own (three pages, three sheets, four
// slides), and checked through the real server, its renderers and LibreOffice:
// - the pages status is "ready" with the page count LibreOffice itself gives (and the one the file
//   was built with);
// - every page is a valid WebP of the asked width (480, 960, 1600) for a view-only member and a
//   view-only link, has text on it, and differs from the page before it; a page past the last is
//   404;
// - every content path is 403 for them;
// - no response body equals an original or holds a 64-byte run of one.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Server } from './lib/harness.mjs';
import { PageClient } from './lib/pagecheck.mjs';
import { odt, ods, odp, convertAll, pdfPageCount } from './lib/office.mjs';
import { decodeWebp, ink, bbox, maskDiff } from './lib/pixels.mjs';

let server, pc;
const U = {};
const F = {}; // name → {data, pages, node}
const pw = (n) => `${n}-password-1`;

before(async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-office-'));
  const para = (k) => `Paragraph ${k}: the quick brown fox jumps over the lazy dog.`;
  odt(tmp, 'text.odt', [
    ['Office pages test, page one', para(1), para(2)],
    ['Page two of the text document', para(3)],
    ['Page three, the last', para(4), para(5), para(6)],
  ], 18);
  ods(tmp, 'sheets.ods', [
    [['Quarter', 'Revenue'], ['Q1', 1200], ['Q2', 1350]],
    [['Second sheet'], ['alpha', 1], ['beta', 2], ['gamma', 3]],
    [['Third sheet', 'last'], [42, 43]],
  ]);
  odp(tmp, 'slides.odp', [['Slide one: welcome'], ['Slide two: numbers', '1 2 3'], ['Slide three: plans'], ['Slide four: thanks']]);
  // One LibreOffice run for the pptx, one for every PDF (each start costs seconds).
  fs.writeFileSync(path.join(tmp, 'deck.pptx'), convertAll(tmp, ['slides.odp'], 'pptx')['slides.odp']);
  const names = { 'text.odt': 3, 'sheets.ods': 3, 'slides.odp': 4, 'deck.pptx': 4 };
  const pdfs = convertAll(tmp, Object.keys(names), 'pdf');
  for (const [name, pages] of Object.entries(names)) {
    assert.equal(pdfPageCount(pdfs[name]), pages, `${name}: LibreOffice makes ${pages} pages of it`);
    F[name] = { data: fs.readFileSync(path.join(tmp, name)), pages };
  }
  fs.rmSync(tmp, { recursive: true, force: true });

  server = new Server({ config: { render: { enabled: true, pages_per_minute: 1000, max_seconds: 120 }, threads: 4 } });
  await server.start();
  pc = new PageClient(server);
  const al = await server.login();
  U.admin = { token: al.token };
  const r = await pc.req('POST', '/api/v1/admin/users', { token: al.token, body: { username: 'bob', password: pw('bob') } });
  assert.equal(r.status, 201, r.text());
  U.bob = { id: r.json().id, token: (await server.login('bob', pw('bob'))).token };
  const sp = (await pc.req('GET', '/api/v1/spaces', { token: al.token })).json();
  const dir = await pc.req('POST', '/api/v1/folders', { token: al.token, body: { parent: sp.tenant.root, name: 'Office' } });
  assert.equal(dir.status, 201, dir.text());
  F.dir = dir.json();
  const acl = await pc.req('PUT', `/api/v1/nodes/${F.dir.id}/acl`, {
    token: al.token, body: { entries: [{ principal: `user:${U.bob.id}`, level: 'view' }] },
  });
  assert.equal(acl.status, 200, acl.text());
  for (const name of Object.keys(names)) F[name].node = await pc.upload(al.token, F.dir.id, name, F[name].data);
});

after(async () => {
  if (server) {
    await server.stop();
    server.cleanup();
  }
});

/** The text on a page: its ink mask (dark pixels: the watermark is light grey) and bounding box. */
function text(webp, what) {
  const m = ink(decodeWebp(webp), 110);
  const box = bbox(m);
  // A page without text has no dark pixel at all; the shortest page here (three cells) has some
  // hundreds at 480 px.
  assert.ok(box && box.count > m.w / 10, `${what}: the page has text on it (${box ? box.count : 0} dark px)`);
  return { m, box };
}

const NAMES = ['text.odt', 'sheets.ods', 'slides.odp', 'deck.pptx'];

test('a view-only member: content is 403, every page of pptx, odt, ods, odp is served at each width', async () => {
  for (const name of NAMES) {
    const f = F[name];
    const id = f.node.id;
    await pc.contentForbidden(id, U.bob.token, name);
    const s = await pc.summary(`/api/v1/files/${id}/pages`, U.bob.token);
    assert.deepEqual([s.status, s.pages], ['ready', f.pages], `${name}: ${JSON.stringify(s)}`);
    let prev = null;
    for (let n = 1; n <= f.pages; n++) {
      const cur = text(await pc.page(`/api/v1/files/${id}/pages/${n}?w=960`, U.bob.token, 960), `${name} page ${n}`);
      if (prev) {
        const same = prev.m.w === cur.m.w && prev.m.h === cur.m.h;
        const diff = same ? maskDiff(prev.m, cur.m, { x0: 0, y0: 0, x1: cur.m.w, y1: cur.m.h }) : Infinity;
        assert.ok(diff > 100, `${name}: page ${n} differs from page ${n - 1} (${diff} px)`);
      }
      prev = cur;
    }
    for (const w of [480, 1600]) {
      await pc.page(`/api/v1/files/${id}/pages/1?w=${w}`, U.bob.token, w);
      await pc.page(`/api/v1/files/${id}/pages/${f.pages}?w=${w}`, U.bob.token, w);
    }
    const past = await pc.req('GET', `/api/v1/files/${id}/pages/${f.pages + 1}`, { token: U.bob.token });
    assert.equal(past.status, 404, `${name}: the page after the last`);
  }
});

test('a view-only link: content and view are 403, the pages are served', async () => {
  for (const name of NAMES) {
    const f = F[name];
    const r = await pc.req('POST', '/api/v1/shares', { token: U.admin.token, body: { node: f.node.id, permission: 'view' } });
    assert.equal(r.status, 201, r.text());
    const L = r.json();
    const token = L.url.slice(`${server.url}/s/`.length);
    const u = await pc.req('POST', `/s/${token}/unlock`, { body: { code: L.code } });
    assert.equal(u.status, 200, u.text());
    const access = u.json().access_token;
    for (const [p, headers] of [['/content', {}], ['/view', {}], ['/content', { range: 'bytes=0-9' }]]) {
      const c = await pc.req('GET', `/s/${token}${p}`, { token: access, headers });
      assert.equal(c.status, 403, `${name} link ${p}`);
    }
    const s = await pc.summary(`/s/${token}/pages`, access);
    assert.deepEqual([s.status, s.pages], ['ready', f.pages], `${name} through the link`);
    for (let n = 1; n <= f.pages; n++) text(await pc.page(`/s/${token}/pages/${n}?w=480`, access, 480), `${name} link page ${n}`);
  }
});

test('no response body equals an original or holds a 64-byte run of one', () => {
  pc.noOriginal(60);
});
