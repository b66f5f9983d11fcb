// View-only that means view-only (issue 20, phase 2; docs/API.md "Pages", docs/SECURITY.md
// "View-only"), proved through the real server, its real renderers (coffer-render, LibreOffice) and
// real files built at test time:
// - a multi-page PDF (written here), a PNG (written here), a JPEG, a docx and an xlsx (made by
//   LibreOffice), a UTF-8 text file: /pages answers the right count and every page is a valid WebP of
//   the asked width, for a view-only member and a view-only link;
// - for them every content path answers 403 (content, view, Range, the link's content and view);
// - two viewers get different bytes for the same page (the watermark is burned in per request);
// - no response body the test received equals an original or holds a 64-byte run of one;
// - bad input (n=0, n>pages, w outside the set, non-numeric) answers a clear 4xx;
// - malformed PDFs and a decompression-bomb PNG are "unsupported" with a reason; a renderer killed
//   in the middle of a render fails that render with 503 + Retry-After; the server keeps serving;
// - pages are rate-limited per viewer (429 + Retry-After) and every page view is a file.page_view
//   event (one per viewer, file and page per window).
// - renders never hold a worker: while renderers hang on a page (a fault-injection build's test
//   text), a download, a metadata read, a summary and an upload are answered; past the render queue's
//   bound a page request is 503 render_busy; a client gone while its render waits leaks nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { Server } from './lib/harness.mjs';
import { webpSize, assertPage, rendererPids as serverRenderers } from './lib/pagecheck.mjs';
import { makePdf as docPdf, makePng } from './lib/docs.mjs';

let server;
const U = {};
const F = {};          // name → {node, data, pages}
const bodies = [];     // every response body the test received
const originals = [];  // every original file's bytes
const WIDTHS = [480, 960, 1600];

const pw = (n) => `${n}-password-1`;

async function req(method, p, opts = {}) {
  const r = await server.request(method, p, opts);
  bodies.push(r.body);
  return r;
}

// ---- test files ----------------------------------------------------------------------------------

/** A PDF of n pages written by hand: text on each page; extra (a string) appended to page 1's stream. */
function makePdf(n, extra = '') {
  return docPdf(n, (i) => `BT /F1 28 Tf 72 720 Td (Page ${i} of ${n}: pages test) Tj ET\n` +
    `BT /F1 12 Tf 72 690 Td (The quick brown fox jumps over the lazy dog ${i}.) Tj ET\n` + (i === 1 ? extra : ''));
}

/** LibreOffice: converts src (in dir) to ext; returns the bytes. */
function soffice(dir, src, ext) {
  execFileSync('soffice', ['--headless', '--norestore', `-env:UserInstallation=file://${dir}/profile`, '--convert-to', ext,
    '--outdir', dir, path.join(dir, src)], { stdio: 'ignore', timeout: 180000, env: { ...process.env, HOME: dir } });
  return fs.readFileSync(path.join(dir, src.replace(/\.[^.]+$/, `.${ext}`)));
}

/** Pages in a PDF LibreOffice wrote (its page objects). */
function pdfPageCount(pdf) {
  return (pdf.toString('latin1').match(/\/Type\s*\/Page[^s]/g) || []).length;
}

// ---- helpers -----------------------------------------------------------------------------------------

async function upload(token, parent, name, data) {
  const r = await req('POST', `/api/v1/files?parent=${parent}&name=${encodeURIComponent(name)}`, { token, body: data });
  assert.equal(r.status, 201, `upload ${name}: ${r.status} ${r.text()}`);
  return r.json();
}

/** Polls a pages summary until it is no longer pending (generous deadline: LibreOffice on a busy machine). */
async function summary(p, token, ms = 240000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const r = await req('GET', p, { token });
    assert.equal(r.status, 200, `${p}: ${r.status} ${r.text()}`);
    assert.equal(r.headers['cache-control'], 'no-store');
    const j = r.json();
    assert.deepEqual(j.widths, WIDTHS);
    if (j.status !== 'pending') return j;
    assert.ok(r.headers['retry-after'], 'pending says when to come back');
    if (Date.now() > deadline) throw new Error(`${p} still pending`);
    await sleep(100);
  }
}

/** A page that must be served: checks the headers and the image, returns the bytes. */
async function page(p, token, width, ms = 240000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const r = await req('GET', p, { token });
    if (r.status === 503 && Date.now() < deadline) { // a page of a file still being prepared
      assert.ok(r.headers['retry-after'], `${p}: 503 carries Retry-After`);
      await sleep(100);
      continue;
    }
    assertPage(r, p, width);
    return r.body;
  }
}

/** The renderer processes of server s (its children named coffer-render). */
const rendererPids = (s = server) => serverRenderers(s.proc.pid);

function cpuTicks(pid) {
  try {
    const st = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return -1;
  }
}

// ---- setup -------------------------------------------------------------------------------------------

before(async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-pages-'));
  // The files, built now.
  const text = Array.from({ length: 150 }, (_, i) => `${String(i + 1).padStart(3, '0')} Grüße, 世界 — line ${i + 1} of the UTF-8 text file.\n`).join('');
  fs.writeFileSync(path.join(tmp, 'doc.txt'), `Pages test document\n\f${'A second page paragraph. '.repeat(40)}\n`);
  fs.writeFileSync(path.join(tmp, 'sheet.csv'), Array.from({ length: 30 }, (_, i) => `${i},${i * i},row ${i}`).join('\n'));
  fs.writeFileSync(path.join(tmp, 'photo.png'), makePng(160, 120));
  const docx = soffice(tmp, 'doc.txt', 'docx');
  const xlsx = soffice(tmp, 'sheet.csv', 'xlsx');
  const jpg = soffice(tmp, 'photo.png', 'jpg');
  fs.writeFileSync(path.join(tmp, 'docx.docx'), docx);
  fs.writeFileSync(path.join(tmp, 'xlsx.xlsx'), xlsx);
  const docxPages = pdfPageCount(soffice(tmp, 'docx.docx', 'pdf'));
  const xlsxPages = pdfPageCount(soffice(tmp, 'xlsx.xlsx', 'pdf'));
  assert.ok(docxPages >= 1 && xlsxPages >= 1);
  const files = {
    'report.pdf': { data: makePdf(4), pages: 4 },
    'photo.png': { data: makePng(160, 120), pages: 1 },
    'photo.jpg': { data: jpg, pages: 1 },
    'letter.docx': { data: docx, pages: docxPages },
    'table.xlsx': { data: xlsx, pages: xlsxPages },
    'notes.txt': { data: Buffer.from(text), pages: 3 },
  };
  fs.rmSync(tmp, { recursive: true, force: true });

  server = new Server({ config: { render: { enabled: true, pages_per_minute: 1000, max_seconds: 120 }, threads: 4 } });
  await server.start();
  const al = await server.login();
  U.admin = { id: al.user.id, token: al.token };
  for (const n of ['bob', 'carol', 'dave']) {
    const r = await req('POST', '/api/v1/admin/users', { token: al.token, body: { username: n, password: pw(n), display_name: `${n[0].toUpperCase()}${n.slice(1)} Viewer` } });
    assert.equal(r.status, 201, r.text());
    U[n] = { id: r.json().id, token: (await server.login(n, pw(n))).token };
  }
  const sp = (await req('GET', '/api/v1/spaces', { token: al.token })).json();
  const dir = await req('POST', '/api/v1/folders', { token: al.token, body: { parent: sp.tenant.root, name: 'Board' } });
  assert.equal(dir.status, 201);
  F.dir = dir.json();
  const acl = await req('PUT', `/api/v1/nodes/${F.dir.id}/acl`, {
    token: al.token,
    body: { entries: [{ principal: `user:${U.bob.id}`, level: 'view' }, { principal: `user:${U.carol.id}`, level: 'view' },
      { principal: `user:${U.dave.id}`, level: 'download' }] },
  });
  assert.equal(acl.status, 200, acl.text());
  for (const [name, f] of Object.entries(files)) {
    F[name] = { ...f, node: await upload(al.token, F.dir.id, name, f.data) };
    originals.push(f.data);
  }
});

after(async () => {
  if (server) {
    await server.stop();
    server.cleanup();
  }
});

// ---- members -----------------------------------------------------------------------------------------

const NAMES = ['report.pdf', 'photo.png', 'photo.jpg', 'letter.docx', 'table.xlsx', 'notes.txt'];

test('a view-only member: every content path is 403, pages are served, watermarked per viewer', async () => {
  for (const name of NAMES) {
    const f = F[name];
    const id = f.node.id;
    for (const [p, headers] of [[`/content`, {}], [`/view`, {}], [`/content`, { range: 'bytes=0-99' }], [`/view`, { range: 'bytes=10-' }]]) {
      const r = await req('GET', `/api/v1/files/${id}${p}`, { token: U.bob.token, headers });
      assert.equal(r.status, 403, `${name} ${p} ${JSON.stringify(headers)}: view-only gets no content`);
    }
    const h = await req('HEAD', `/api/v1/files/${id}/content`, { token: U.bob.token });
    assert.equal(h.status, 403);
    const s = await summary(`/api/v1/files/${id}/pages`, U.bob.token);
    assert.deepEqual([s.status, s.pages], ['ready', f.pages], `${name}: the page count`);
    for (let n = 1; n <= f.pages; n++) {
      const b = await page(`/api/v1/files/${id}/pages/${n}?w=960`, U.bob.token, 960);
      const c = await page(`/api/v1/files/${id}/pages/${n}?w=960`, U.carol.token, 960);
      assert.ok(!b.equals(c), `${name} page ${n}: two viewers get different bytes`);
    }
    await page(`/api/v1/files/${id}/pages/1?w=480`, U.bob.token, 480);
    await page(`/api/v1/files/${id}/pages/1`, U.bob.token, 960); // the default width
  }
  await page(`/api/v1/files/${F['report.pdf'].node.id}/pages/2?w=1600`, U.carol.token, 1600);
});

test('a member with download still downloads and views inline; pages work for them too', async () => {
  const f = F['notes.txt'];
  const d = await req('GET', `/api/v1/files/${f.node.id}/content`, { token: U.dave.token });
  assert.equal(d.status, 200);
  const v = await req('GET', `/api/v1/files/${f.node.id}/view`, { token: U.dave.token });
  assert.equal(v.status, 200);
  assert.ok(v.body.equals(f.data));
  bodies.pop(); // these two are the original on purpose (download level): not part of the view-only check
  bodies.pop();
  await page(`/api/v1/files/${f.node.id}/pages/2`, U.dave.token, 960);
});

test('bad input answers a clear 4xx', async () => {
  const id = F['report.pdf'].node.id;
  const cases = [
    ['/pages/0', 400], ['/pages/5', 404], ['/pages/99999', 404], ['/pages/abc', 400], ['/pages/1.5', 400],
    ['/pages/-1', 400], ['/pages/1?w=500', 400], ['/pages/1?w=abc', 400], ['/pages/1?w=', 400],
    ['/pages/1?w=9600000', 400], ['/pages/99999999999', 400],
  ];
  for (const [p, status] of cases) {
    const r = await req('GET', `/api/v1/files/${id}${p}`, { token: U.bob.token });
    assert.equal(r.status, status, `${p}: ${r.text()}`);
    assert.match(r.headers['content-type'], /application\/json/);
    assert.ok(r.json().error, `${p}: an error envelope`);
  }
  // A folder has no pages; an unknown id is 404; someone without access gets 404.
  assert.equal((await req('GET', `/api/v1/files/${F.dir.id}/pages`, { token: U.bob.token })).status, 400);
  assert.equal((await req('GET', `/api/v1/files/${'0'.repeat(32)}/pages`, { token: U.bob.token })).status, 404);
  const al = await req('POST', '/api/v1/admin/users', { token: U.admin.token, body: { username: 'eve', password: pw('eve') } });
  assert.equal(al.status, 201);
  const eve = (await server.login('eve', pw('eve'))).token;
  assert.equal((await req('GET', `/api/v1/files/${id}/pages`, { token: eve })).status, 404);
  assert.equal((await req('GET', `/api/v1/files/${id}/pages/1`, { token: eve })).status, 404);
});

// ---- links --------------------------------------------------------------------------------------------

async function mkLink(node, permission) {
  const r = await req('POST', '/api/v1/shares', { token: U.admin.token, body: { node, permission } });
  assert.equal(r.status, 201, r.text());
  const j = r.json();
  j.token = j.url.slice(`${server.url}/s/`.length);
  const u = await req('POST', `/s/${j.token}/unlock`, { body: { code: j.code } });
  assert.equal(u.status, 200, u.text());
  j.access = u.json().access_token;
  return j;
}

test('a view-only link: content and view are 403, pages are served, two recipients differ', async () => {
  for (const name of NAMES) {
    const f = F[name];
    const L = await mkLink(f.node.id, 'view');
    for (const [p, headers] of [['/content', {}], ['/view', {}], ['/content', { range: 'bytes=0-9' }], ['/view', { range: 'bytes=0-' }]]) {
      const r = await req('GET', `/s/${L.token}${p}`, { token: L.access, headers });
      assert.equal(r.status, 403, `${name} link ${p}`);
    }
    const s = await summary(`/s/${L.token}/pages`, L.access);
    assert.deepEqual([s.status, s.pages], ['ready', f.pages], `${name}: the page count through the link`);
    for (let n = 1; n <= f.pages; n++) {
      const a = await page(`/s/${L.token}/pages/${n}?w=960`, L.access, 960);
      const b = await page(`/api/v1/files/${f.node.id}/pages/${n}?w=960`, U.bob.token, 960);
      assert.ok(!a.equals(b), `${name} page ${n}: a recipient and a member get different bytes`);
    }
    // Without the access token: 401; bad input as for members.
    assert.equal((await req('GET', `/s/${L.token}/pages`)).status, 401);
    assert.equal((await req('GET', `/s/${L.token}/pages/1`)).status, 401);
    assert.equal((await req('GET', `/s/${L.token}/pages/0`, { token: L.access })).status, 400);
    assert.equal((await req('GET', `/s/${L.token}/pages/${f.pages + 1}`, { token: L.access })).status, 404);
    assert.equal((await req('GET', `/s/${L.token}/pages/1?w=100`, { token: L.access })).status, 400);
  }
  // Two links to one file: two recipients, two watermarks.
  const f = F['report.pdf'];
  const A = await mkLink(f.node.id, 'view');
  const B = await mkLink(f.node.id, 'view');
  const a = await page(`/s/${A.token}/pages/1`, A.access, 960);
  const b = await page(`/s/${B.token}/pages/1`, B.access, 960);
  assert.ok(!a.equals(b));
});

test('a view-only folder link: files inside it get pages, never content', async () => {
  const L = await mkLink(F.dir.id, 'view');
  const id = F['report.pdf'].node.id;
  assert.equal((await req('GET', `/s/${L.token}/files/${id}/content`, { token: L.access })).status, 403);
  assert.equal((await req('GET', `/s/${L.token}/files/${id}/view`, { token: L.access })).status, 403);
  const s = await summary(`/s/${L.token}/files/${id}/pages`, L.access);
  assert.equal(s.pages, 4);
  await page(`/s/${L.token}/files/${id}/pages/3?w=480`, L.access, 480);
  assert.equal((await req('GET', `/s/${L.token}/pages`, { token: L.access })).status, 400, 'a folder link has no pages of its own');
  assert.equal((await req('GET', `/s/${L.token}/files/${U.bob.id}/pages`, { token: L.access })).status, 404);
});

// ---- hostile input and renderer failures ------------------------------------------------------------------

test('malformed PDFs and a decompression bomb are unsupported with a reason; the server keeps serving', async () => {
  const good = makePdf(2);
  const hostile = {
    'garbage.pdf': Buffer.concat([Buffer.from('%PDF-1.7\n'), Buffer.alloc(4000, 0x41), Buffer.from('\n%%EOF\n')]),
    'noroot.pdf': Buffer.from('%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 9 0 R >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n'),
    'loop.pdf': Buffer.from('%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [2 0 R] /Count 1 >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n'),
    'bomb.png': makePng(30000, 30000, { rows: 2 }),
  };
  for (const [name, data] of Object.entries(hostile)) {
    const node = await upload(U.admin.token, F.dir.id, name, data);
    originals.push(data);
    const s = await summary(`/api/v1/files/${node.id}/pages`, U.bob.token);
    if (name === 'noroot.pdf' || name === 'loop.pdf') {
      // poppler may repair some damage; whatever it decided, a page is an image or a clear failure.
      if (s.status === 'ready') {
        const r = await req('GET', `/api/v1/files/${node.id}/pages/1`, { token: U.bob.token });
        assert.ok([200, 422].includes(r.status), `${name}: ${r.status}`);
        continue;
      }
    }
    assert.equal(s.status, 'unsupported', `${name}: ${JSON.stringify(s)}`);
    assert.equal(s.pages, 0);
    assert.ok(typeof s.reason === 'string' && s.reason.length > 0, `${name}: a reason`);
    const r = await req('GET', `/api/v1/files/${node.id}/pages/1`, { token: U.bob.token });
    assert.equal(r.status, 415, `${name}: a page of an unsupported file`);
    if (name === 'bomb.png') assert.match(s.reason, /pixels|large|limit/i);
  }
  const ok = await upload(U.admin.token, F.dir.id, 'after.pdf', good);
  originals.push(good);
  assert.equal((await summary(`/api/v1/files/${ok.id}/pages`, U.bob.token)).pages, 2);
  await page(`/api/v1/files/${ok.id}/pages/2`, U.bob.token, 960);
  assert.equal((await req('GET', '/healthz')).status, 200);
});

test('a renderer killed in the middle of a render: that render answers 503 + Retry-After, the next one works', async () => {
  // A page heavy enough to keep a renderer busy: many thousands of strokes.
  let heavy = '';
  for (let i = 0; i < 60000; i++) heavy += `${(i * 7) % 600} ${(i * 13) % 780} m ${(i * 11) % 600} ${(i * 17) % 780} l S\n`;
  const data = makePdf(1, `0.1 w\n${heavy}`);
  const node = await upload(U.admin.token, F.dir.id, 'heavy.pdf', data);
  originals.push(data);
  assert.equal((await summary(`/api/v1/files/${node.id}/pages`, U.bob.token)).pages, 1);
  // The upload's eager render of page 1 (960 px) may still run: wait until every renderer is idle
  // (its CPU time stops moving), so that the renderer seen working below is this request's.
  const deadline0 = Date.now() + 180000;
  for (;;) {
    const a = rendererPids().map((p) => `${p}:${cpuTicks(p)}`).join(',');
    await sleep(250);
    const b = rendererPids().map((p) => `${p}:${cpuTicks(p)}`).join(',');
    if (a === b) break;
    if (Date.now() > deadline0) throw new Error('the renderers never went idle');
  }
  const before = new Map(rendererPids().map((p) => [p, cpuTicks(p)]));
  assert.ok(before.size >= 1, 'renderers are up');
  let killed = 0;
  const pending = req('GET', `/api/v1/files/${node.id}/pages/1?w=1600`, { token: U.bob.token });
  let done = false;
  pending.finally(() => { done = true; });
  // Kill whichever renderer starts burning CPU for this request (mid-render).
  const deadline = Date.now() + 120000;
  while (!done && Date.now() < deadline) {
    for (const p of rendererPids()) {
      const t = cpuTicks(p);
      if (before.has(p) && t > before.get(p) + 1) {
        try { process.kill(p, 'SIGKILL'); killed++; } catch { /* already gone */ }
      }
      if (!before.has(p)) before.set(p, t);
    }
    await sleep(10);
  }
  const r = await pending;
  if (killed > 0) {
    assert.equal(r.status, 503, `killed mid-render: ${r.status} ${r.text()}`);
    assert.ok(Number(r.headers['retry-after']) >= 1);
    assert.equal(r.json().error, 'unavailable');
  } else {
    assert.equal(r.status, 200, 'nothing was killed: the render finished');
  }
  assert.ok(killed > 0, 'a renderer was seen rendering and killed');
  // The server keeps serving, and the renderer family comes back.
  assert.equal((await req('GET', '/healthz')).status, 200);
  await page(`/api/v1/files/${F['photo.png'].node.id}/pages/1?w=1600`, U.carol.token, 1600);
  await page(`/api/v1/files/${node.id}/pages/1?w=480`, U.bob.token, 480);
});

// ---- limits and provenance ---------------------------------------------------------------------------------

test('every page view is a file.page_view event, one per viewer, file and page per window', async () => {
  const id = F['report.pdf'].node.id;
  const r = await req('GET', `/api/v1/audit?action=file.page_view&limit=1000`, { token: U.admin.token });
  assert.equal(r.status, 200, r.text());
  const ev = r.json().events.filter((e) => e.node && e.node.id === id && e.actor && e.actor.id === U.bob.id);
  const pages = ev.map((e) => e.detail.page).sort();
  assert.deepEqual(pages, [...new Set(pages)], 'no page twice within the window');
  for (const n of [1, 2, 3, 4]) assert.ok(pages.includes(n), `bob's view of page ${n} is in the log`);
  for (const e of ev) assert.equal(e.detail.window_s, 600);
});

test('pages are rate-limited per viewer: 429 with Retry-After', async () => {
  const s2 = new Server({ config: { render: { enabled: true, pages_per_minute: 5 } } });
  await s2.start();
  try {
    const al = await s2.login();
    const sp = (await s2.request('GET', '/api/v1/spaces', { token: al.token })).json();
    const data = makePdf(2);
    originals.push(data);
    const up = await s2.request('POST', `/api/v1/files?parent=${sp.private.root}&name=r.pdf`, { token: al.token, body: data });
    assert.equal(up.status, 201);
    const id = up.json().id;
    const statuses = [];
    for (let i = 0; i < 8; i++) {
      const r = await s2.request('GET', `/api/v1/files/${id}/pages/1`, { token: al.token });
      bodies.push(r.body);
      statuses.push(r.status);
      if (r.status === 429) {
        assert.ok(Number(r.headers['retry-after']) >= 1);
        assert.equal(r.json().error, 'rate_limited');
      }
    }
    assert.equal(statuses.filter((s) => s === 429).length, 3, `five allowed, then 429: ${statuses}`);
  } finally {
    await s2.stop();
    s2.cleanup();
  }
});

test('no response body equals an original or holds a 64-byte run of one', () => {
  // Index every original by its 32-byte windows; any common run of 64 bytes covers a 32-aligned
  // window of the body, which is then extended both ways to its full length.
  const index = new Map();
  originals.forEach((o, oi) => {
    for (let i = 0; i + 32 <= o.length; i++) {
      const k = o.toString('latin1', i, i + 32);
      if (!index.has(k)) index.set(k, []);
      const l = index.get(k);
      if (l.length < 8) l.push([oi, i]);
    }
  });
  assert.ok(bodies.length > 100, `bodies checked: ${bodies.length}`);
  for (const b of bodies) {
    for (const o of originals) assert.ok(!b.equals(o), 'a body equals an original');
    for (let p = 0; p + 32 <= b.length; p += 32) {
      const hits = index.get(b.toString('latin1', p, p + 32));
      if (!hits) continue;
      for (const [oi, i] of hits) {
        const o = originals[oi];
        let s = 0;
        while (p - s > 0 && i - s > 0 && b[p - s - 1] === o[i - s - 1]) s++;
        let e = 32;
        while (p + e < b.length && i + e < o.length && b[p + e] === o[i + e]) e++;
        assert.ok(s + e < 64, `a body holds ${s + e} bytes of an original`);
      }
    }
  }
});

// ---- renders run beside the workers, never on them -------------------------------------------------

test('renders never hold a worker: while the renderers hang, downloads, uploads and metadata are served; a full render queue is 503 render_busy', async () => {
  // One renderer and a queue of 4 (render.queue; the default would be 8 per renderer); the server
  // has two worker threads (one per core, at least two). A render deadline far beyond the test: a
  // hung render ends only when this test kills its renderer.
  const s3 = new Server({ config: { render: { enabled: true, processes: 1, queue: 4, max_seconds: 900, pages_per_minute: 1000 } } });
  await s3.start();
  try {
    const al = await s3.login();
    const tok = al.token;
    const sp = (await s3.request('GET', '/api/v1/spaces', { token: tok })).json();
    const root = sp.private.root;
    // A text whose first line makes a fault-injection build's renderer hang on page 3 and later (its
    // count and pages 1-2, what the upload prepares, come back): 4 pages of 60 lines.
    const hang = Buffer.from(`COFFER-TEST-RENDERER-HANG-LATE-PAGES\n${Array.from({ length: 200 }, (_, i) => `line ${i + 1}`).join('\n')}\n`);
    const plain = Buffer.from(Array.from({ length: 4000 }, (_, i) => `plain ${i}\n`).join(''));
    originals.push(hang, plain);
    let r = await s3.request('POST', `/api/v1/files?parent=${root}&name=hang.txt`, { token: tok, body: hang });
    assert.equal(r.status, 201, r.text());
    const hid = r.json().id;
    r = await s3.request('POST', `/api/v1/files?parent=${root}&name=plain.txt`, { token: tok, body: plain });
    assert.equal(r.status, 201, r.text());
    const pid = r.json().id;
    const deadline0 = Date.now() + 240000;
    for (;;) {
      r = await s3.request('GET', `/api/v1/files/${hid}/pages`, { token: tok });
      assert.equal(r.status, 200, r.text());
      if (r.json().status === 'ready') break;
      assert.equal(r.json().status, 'pending');
      if (Date.now() > deadline0) throw new Error('the hanging text was never prepared');
      await sleep(100);
    }
    assert.equal(r.json().pages, 4);

    // Eleven renders of page 3 at once: at most 1 (rendering) + 4 (queued) are taken, and the ones
    // taken can only end when their renderer is killed; the rest (at least 6) are refused at once.
    const settled = [];
    const renders = Array.from({ length: 11 }, (_, i) => {
      const p = s3.request('GET', `/api/v1/files/${hid}/pages/3?w=${WIDTHS[i % 3]}`, { token: tok });
      p.then((x) => { settled.push({ i, r: x }); bodies.push(x.body); }, () => {});
      return p;
    });
    const deadline1 = Date.now() + 120000;
    while (settled.length < 6) {
      if (Date.now() > deadline1) throw new Error(`only ${settled.length} renders were refused`);
      await sleep(20);
    }
    // With every worker free, the rest of the server answers while the renders still hang.
    const dl = await s3.request('GET', `/api/v1/files/${pid}/content`, { token: tok });
    const pendingAtDownload = renders.length - settled.length;
    assert.equal(dl.status, 200, dl.text());
    assert.ok(dl.body.equals(plain), 'the download is the file');
    const meta = await s3.request('GET', `/api/v1/nodes/${pid}`, { token: tok });
    assert.equal(meta.status, 200, meta.text());
    assert.equal(meta.json().size, plain.length);
    const up = await s3.request('POST', `/api/v1/files?parent=${root}&name=during.txt`, { token: tok, body: 'written while the renderers hang\n' });
    assert.equal(up.status, 201, up.text());
    const sum = await s3.request('GET', `/api/v1/files/${hid}/pages`, { token: tok });
    assert.equal(sum.status, 200, sum.text());
    const pendingAfter = renders.length - settled.length;
    // More renders wait than there are workers (two): under synchronous renders nothing above could
    // have been answered. (Preparations of the uploads may hold up to two of the five places.)
    assert.ok(pendingAtDownload >= 3 && pendingAfter >= 3, `renders still hanging: ${pendingAtDownload}, ${pendingAfter}`);
    // What ended before any renderer was killed was refused: 503 render_busy with Retry-After.
    const refused = settled.slice();
    assert.ok(refused.length >= 6, `refused: ${refused.length}`);
    for (const { r: x } of refused) {
      assert.equal(x.status, 503, x.text());
      assert.equal(x.json().error, 'render_busy');
      assert.ok(Number(x.headers['retry-after']) >= 1);
    }

    // Release: kill the renderer whenever one is up until every render taken has ended; each ends
    // with 503 unavailable (the renderer died) and Retry-After.
    const killed = new Set();
    const release = async (done, what) => {
      const deadline = Date.now() + 240000;
      while (!done()) {
        for (const p of rendererPids(s3)) {
          if (killed.has(p)) continue;
          killed.add(p);
          try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
        }
        if (Date.now() > deadline) throw new Error(`${what} never ended`);
        await sleep(50);
      }
    };
    await release(() => settled.length === renders.length, 'the hanging renders');
    for (const { r: x } of settled.slice(refused.length)) {
      assert.equal(x.status, 503, x.text());
      assert.ok(['unavailable', 'render_busy'].includes(x.json().error), x.text());
      assert.ok(Number(x.headers['retry-after']) >= 1);
    }
    assert.ok(settled.slice(refused.length).some(({ r: x }) => x.json().error === 'unavailable'), 'renders taken were failed');

    // The family comes back and renders again.
    const pageOk = async (p, width) => {
      const deadline = Date.now() + 240000;
      for (;;) {
        const x = await s3.request('GET', p, { token: tok });
        bodies.push(x.body);
        if (x.status === 200) {
          assert.equal(x.headers['content-type'], 'image/webp');
          assert.equal(webpSize(x.body).width, width);
          return;
        }
        assert.equal(x.status, 503, x.text()); // a renderer killed above while it started is retried after a pause
        if (Date.now() > deadline) throw new Error(`${p}: the renderers never came back: ${x.text()}`);
        await sleep(200);
      }
    };
    await pageOk(`/api/v1/files/${hid}/pages/1?w=1600`, 1600);

    // A client that goes away while its render waits behind a hanging one: nothing is answered to
    // it, nothing leaks (the server's ASan exit below), and the family goes on. Its stream is followed
    // on the same connection by a metadata request: once that is answered, the server has the page
    // request.
    let hungDone = false;
    const hung = s3.request('GET', `/api/v1/files/${hid}/pages/3?w=480`, { token: tok });
    hung.then(() => { hungDone = true; }, () => { hungDone = true; });
    const g = s3.connect();
    g.on('error', () => {});
    const gone = g.request({ ':method': 'GET', ':path': `/api/v1/files/${hid}/pages/2?w=480`, authorization: `Bearer ${tok}` });
    gone.on('error', () => {});
    const probe = g.request({ ':method': 'GET', ':path': `/api/v1/nodes/${pid}`, authorization: `Bearer ${tok}` });
    await new Promise((res) => { probe.on('response', res); probe.on('error', res); probe.resume(); });
    g.destroy();
    await release(() => hungDone, 'the hanging render');
    const hr = await hung;
    assert.equal(hr.status, 503, hr.text());
    assert.equal(hr.json().error, 'unavailable');
    await pageOk(`/api/v1/files/${hid}/pages/2?w=480`, 480);
    assert.equal((await s3.request('GET', '/healthz')).status, 200);
  } finally {
    await s3.stop();
    s3.cleanup();
  }
});
