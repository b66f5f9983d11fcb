// Folder downloads as one streamed ZIP archive (issue 21; src/api/zip.c, src/core/zipw.c).
//
// - A tree with nested folders, UTF-8 names, an empty folder, an empty file and a file of several
//   chunks (CHUNK = 1 MiB): downloaded by curl and by node's HTTP/2 client; `unzip -t` passes, and
//   python3's zipfile lists exactly the expected entries (folders included, trashed ones not) with
//   every file byte-identical to what was uploaded; headers (application/zip, attachment with the
//   folder's name in RFC 5987 form, Content-Length equal to the bytes).
// - Access: a view-only member gets 403, a member with no access 404; a member with download on a
//   subfolder only can download that subfolder, and its archive holds only it.
// - Provenance: one file.download event per file, detail via "zip", each ended completed with all
//   its bytes.
// - Links: GET /s/{token}/zip of a folder link (and ?parent= a folder inside it) gives the same
//   bytes; each file is drawn from its own budget (max_downloads 1: a second archive is 410
//   download_limit_reached); a link whose file has spent its budget refuses the archive up front
//   and draws nothing from the other files; view-only links 403; file links 400; share.download
//   events per file.
// - Bad input: a malformed id 404, an unknown id 404, a file id 400, an unknown query parameter
//   400 unknown_parameter, a folder over limits.max_zip_entries 413 naming the number.
// - Failures: a chunk that fails authentication in the first buffer answers 500; later, it cuts
//   the stream (never wrong bytes): fewer bytes than Content-Length, the failing file's record
//   ended not completed, the one before it completed; every pooled buffer comes back.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Server, bytes, curl, dbtool, CHUNK } from './lib/harness.mjs';

const MAX_ENTRIES = 40;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let server, dir;
const U = {};
const pw = (u) => `${u}-password-zip-1`;

async function mkdir(token, parent, name) {
  const r = await server.request('POST', '/api/v1/folders', { token, body: { parent, name } });
  assert.equal(r.status, 201, `mkdir ${name}: ${r.text()}`);
  return r.json();
}

async function upload(token, parent, name, data) {
  const r = await server.request('POST', `/api/v1/files?parent=${parent}&name=${encodeURIComponent(name)}`, { token, body: data });
  assert.equal(r.status, 201, `upload ${name}: ${r.status} ${r.text()}`);
  return r.json();
}

/** python3's zipfile on the archive: testzip, then every entry {name, dir, size, sha256, flags}. */
function pyList(file) {
  const script = [
    'import sys, json, zipfile, hashlib',
    'z = zipfile.ZipFile(sys.argv[1])',
    'bad = z.testzip()',
    'out = []',
    'for i in z.infolist():',
    '    d = z.read(i.filename)',
    '    out.append({"name": i.filename, "dir": i.is_dir(), "size": i.file_size, "sha256": hashlib.sha256(d).hexdigest(), "flags": i.flag_bits, "method": i.compress_type})',
    'print(json.dumps({"bad": bad, "entries": out}))',
  ].join('\n');
  const r = spawnSync('python3', ['-c', script, file], { encoding: 'utf8', maxBuffer: 1 << 26 });
  assert.equal(r.status, 0, `python3 zipfile: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

function unzipTest(file) {
  const r = spawnSync('unzip', ['-t', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, `unzip -t: ${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /No errors detected/);
}

/** Asserts that an archive holds exactly want: {path: Buffer | 'dir'}. */
function assertArchive(buf, want, what) {
  const file = path.join(dir, `a-${Math.random().toString(16).slice(2)}.zip`);
  fs.writeFileSync(file, buf);
  unzipTest(file);
  const got = pyList(file);
  assert.equal(got.bad, null, `${what}: testzip`);
  const names = got.entries.map((e) => e.name).sort();
  assert.deepEqual(names, Object.keys(want).sort(), `${what}: the entries`);
  for (const e of got.entries) {
    const w = want[e.name];
    assert.equal(e.method, 0, `${what}: ${e.name} stored`);
    assert.ok(e.flags & 0x800, `${what}: ${e.name} has the UTF-8 flag`);
    if (w === 'dir') {
      assert.ok(e.dir, `${what}: ${e.name} is a folder`);
      continue;
    }
    assert.ok(e.flags & 0x8, `${what}: ${e.name} has a data descriptor`);
    assert.equal(e.size, w.length, `${what}: ${e.name} size`);
    assert.equal(e.sha256, crypto_sha(w), `${what}: ${e.name} bytes`);
  }
  fs.rmSync(file);
}

import crypto from 'node:crypto';
const crypto_sha = (b) => crypto.createHash('sha256').update(b).digest('hex');

async function audit(qs) {
  const r = await server.request('GET', `/api/v1/audit?${qs}&limit=1000`, { token: U.admin.token });
  assert.equal(r.status, 200, r.text());
  return r.json().events;
}

async function waitFor(fn, what, ms = 60000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function mkShare(token, body) {
  const r = await server.request('POST', '/api/v1/shares', { token, body });
  assert.equal(r.status, 201, `create share: ${r.status} ${r.text()}`);
  const j = r.json();
  j.token = j.url.slice(`${server.url}/s/`.length);
  const u = await server.request('POST', `/s/${j.token}/unlock`, { body: { code: j.code } });
  assert.equal(u.status, 200, `unlock: ${u.status} ${u.text()}`);
  j.access = u.json().access_token;
  return j;
}

const rcpt = (sh, p, opts = {}) => server.request('GET', `/s/${sh.token}${p}`, { token: sh.access, ...opts });

// The tree, in alice's private space.
const T = {};
const DATA = {
  greet: Buffer.from('Grüße aus Zürich — 日本語のテキスト\n', 'utf8'),
  big: bytes(2 * CHUNK + 12345, 21),
  empty: Buffer.alloc(0),
  a: bytes(777, 22),
  b: bytes(CHUNK, 23),
  gone: bytes(10, 24),
};
const ROOT = 'Reports ✓ 2024';
let WANT;

before(async () => {
  server = new Server({ config: { limits: { max_zip_entries: MAX_ENTRIES }, shares: { code_failures_per_ip: 1000 } } });
  await server.start();
  dir = fs.mkdtempSync(path.join(server.dir, 'zips-'));
  const al = await server.login();
  U.admin = { id: al.user.id, token: al.token };
  for (const name of ['alice', 'bob', 'carol']) {
    const r = await server.request('POST', '/api/v1/admin/users', { token: al.token, body: { username: name, password: pw(name) } });
    assert.equal(r.status, 201, r.text());
    const l = await server.login(name, pw(name));
    U[name] = { id: r.json().id, token: l.token };
    U[name].root = (await server.request('GET', '/api/v1/spaces', { token: l.token })).json().private.root;
  }
  const t = U.alice.token;
  T.root = await mkdir(t, U.alice.root, ROOT);
  T.greet = await upload(t, T.root.id, 'Grüße 日本語 (1).txt', DATA.greet);
  T.big = await upload(t, T.root.id, 'big.bin', DATA.big);
  T.empty = await upload(t, T.root.id, 'empty.txt', DATA.empty);
  T.emptyDir = await mkdir(t, T.root.id, 'Empty folder');
  T.sub = await mkdir(t, T.root.id, 'sub');
  T.a = await upload(t, T.sub.id, 'a.txt', DATA.a);
  T.deeper = await mkdir(t, T.sub.id, 'deeper ünï');
  T.b = await upload(t, T.deeper.id, 'b.bin', DATA.b);
  // Trashed: neither the folder nor what is in it may appear.
  T.gone = await mkdir(t, T.root.id, 'Gone');
  await upload(t, T.gone.id, 'x.txt', DATA.gone);
  const tr = await upload(t, T.root.id, 'trashed.txt', DATA.gone);
  for (const id of [T.gone.id, tr.id]) {
    const d = await server.request('DELETE', `/api/v1/nodes/${id}`, { token: t });
    assert.equal(d.status, 204, d.text());
  }
  const p = `${ROOT}/`;
  WANT = {
    [p]: 'dir',
    [`${p}Grüße 日本語 (1).txt`]: DATA.greet,
    [`${p}big.bin`]: DATA.big,
    [`${p}empty.txt`]: DATA.empty,
    [`${p}Empty folder/`]: 'dir',
    [`${p}sub/`]: 'dir',
    [`${p}sub/a.txt`]: DATA.a,
    [`${p}sub/deeper ünï/`]: 'dir',
    [`${p}sub/deeper ünï/b.bin`]: DATA.b,
  };
});

after(async () => {
  if (server) {
    await server.stop();
    server.cleanup();
  }
});

let memberArchive;

test('a member downloads a folder as a ZIP: curl and HTTP/2, unzip -t, python zipfile, every byte', async () => {
  const out = path.join(dir, 'curl.zip');
  const hdr = path.join(dir, 'curl.headers');
  const c = curl(['--http2', '-D', hdr, '-o', out, '-w', '%{http_code}', '-H', `authorization: Bearer ${U.alice.token}`,
    `${server.url}/api/v1/folders/${T.root.id}/zip`]);
  assert.equal(c.status, 0, c.stderr);
  assert.equal(c.stdout.toString(), '200');
  const headers = fs.readFileSync(hdr, 'utf8').toLowerCase();
  assert.match(headers, /content-type: application\/zip/);
  assert.match(headers, /content-disposition: attachment; filename="reports ___ 2024.zip"; filename\*=utf-8''reports%20%e2%9c%93%202024.zip/);
  const body = fs.readFileSync(out);
  assert.match(headers, new RegExp(`content-length: ${body.length}\\b`));
  assertArchive(body, WANT, 'curl');

  const r = await server.request('GET', `/api/v1/folders/${T.root.id}/zip`, { token: U.alice.token });
  assert.equal(r.status, 200);
  assert.equal(Number(r.headers['content-length']), r.body.length);
  assert.ok(r.body.equals(body), 'the same folder gives the same archive, byte for byte');
  memberArchive = body;

  // HTTP/1.1 as well.
  const h1 = await server.request('GET', `/api/v1/folders/${T.sub.id}/zip`, { token: U.alice.token, h1: true });
  assert.equal(h1.status, 200);
  assertArchive(h1.body, { 'sub/': 'dir', 'sub/a.txt': DATA.a, 'sub/deeper ünï/': 'dir', 'sub/deeper ünï/b.bin': DATA.b }, 'h1 subfolder');
  // An empty folder is an archive with just itself.
  const e = await server.request('GET', `/api/v1/folders/${T.emptyDir.id}/zip`, { token: U.alice.token });
  assert.equal(e.status, 200);
  assertArchive(e.body, { 'Empty folder/': 'dir' }, 'empty folder');
});

test('provenance: one file.download per file of the archive, via zip, ended completed', async () => {
  const files = [T.greet, T.big, T.empty, T.a, T.b];
  const events = await waitFor(async () => {
    const ev = (await audit(`actor=user:${U.alice.id}&action=file.download`)).filter((x) => x.detail && x.detail.via === 'zip' &&
      x.detail.archive === T.root.id);
    // Two archives of the root were downloaded (curl and HTTP/2): two events per file, all ended.
    return ev.length === 2 * files.length && ev.every((x) => x.transfer && x.transfer.bytes_sent !== null) ? ev : null;
  }, 'the zip downloads recorded');
  for (const f of files) {
    const mine = events.filter((x) => x.node && x.node.id === f.id);
    assert.equal(mine.length, 2, `${f.name}: two downloads`);
    for (const x of mine) {
      assert.equal(x.result, 'ok');
      assert.equal(x.transfer.completed, true, `${f.name} completed`);
      assert.equal(x.transfer.bytes_sent, f.size, `${f.name} bytes_sent`);
      assert.equal(x.detail.size, f.size);
    }
  }
});

test('access: view-only 403, no access 404, download on a subfolder only gives that subfolder', async () => {
  // bob: view on the root; carol: nothing on the root, download on sub.
  let r = await server.request('PUT', `/api/v1/nodes/${T.root.id}/acl`, { token: U.alice.token,
    body: { entries: [{ principal: `user:${U.bob.id}`, level: 'view' }] } });
  assert.equal(r.status, 200, r.text());
  r = await server.request('PUT', `/api/v1/nodes/${T.sub.id}/acl`, { token: U.alice.token,
    body: { entries: [{ principal: `user:${U.carol.id}`, level: 'download' }] } });
  assert.equal(r.status, 200, r.text());
  r = await server.request('GET', `/api/v1/folders/${T.root.id}/zip`, { token: U.bob.token });
  assert.equal(r.status, 403, r.text());
  assert.equal(r.json().error, 'forbidden');
  r = await server.request('GET', `/api/v1/folders/${T.sub.id}/zip`, { token: U.bob.token });
  assert.equal(r.status, 403, 'view inherited on the subfolder: 403 too');
  r = await server.request('GET', `/api/v1/folders/${T.root.id}/zip`, { token: U.carol.token });
  assert.equal(r.status, 404, 'no access at all: 404, existence not revealed');
  r = await server.request('GET', `/api/v1/folders/${T.sub.id}/zip`, { token: U.carol.token });
  assert.equal(r.status, 200, r.text());
  assertArchive(r.body, { 'sub/': 'dir', 'sub/a.txt': DATA.a, 'sub/deeper ünï/': 'dir', 'sub/deeper ünï/b.bin': DATA.b }, 'carol');
  // bob with download on deeper only: the root stays 403 (the archive needs download on the folder).
  r = await server.request('PUT', `/api/v1/nodes/${T.deeper.id}/acl`, { token: U.alice.token,
    body: { entries: [{ principal: `user:${U.bob.id}`, level: 'download' }] } });
  assert.equal(r.status, 200, r.text());
  r = await server.request('GET', `/api/v1/folders/${T.root.id}/zip`, { token: U.bob.token });
  assert.equal(r.status, 403);
  r = await server.request('GET', `/api/v1/folders/${T.deeper.id}/zip`, { token: U.bob.token });
  assert.equal(r.status, 200);
  assertArchive(r.body, { 'deeper ünï/': 'dir', 'deeper ünï/b.bin': DATA.b }, 'bob deeper');
});

test('bad input: malformed and unknown ids 404, a file 400, unknown parameter 400, too many entries 413', async () => {
  const t = U.alice.token;
  let r = await server.request('GET', '/api/v1/folders/not-an-id/zip', { token: t });
  assert.equal(r.status, 404);
  r = await server.request('GET', `/api/v1/folders/${'0'.repeat(32)}/zip`, { token: t });
  assert.equal(r.status, 404);
  r = await server.request('GET', `/api/v1/folders/${T.big.id}/zip`, { token: t });
  assert.equal(r.status, 400, r.text());
  assert.equal(r.json().error, 'bad_request');
  r = await server.request('GET', `/api/v1/folders/${T.root.id}/zip?format=tar`, { token: t });
  assert.equal(r.status, 400);
  assert.equal(r.json().error, 'unknown_parameter');
  r = await server.request('GET', `/api/v1/folders/${T.root.id}/zip`);
  assert.equal(r.status, 401, 'no credentials');
  // limits.max_zip_entries is 40 here: a folder of 40 files (41 entries with itself) is refused.
  const many = await mkdir(t, U.alice.root, 'many');
  for (let i = 0; i < MAX_ENTRIES - 1; i++) await upload(t, many.id, `f${i}.txt`, Buffer.from(`file ${i}\n`));
  r = await server.request('GET', `/api/v1/folders/${many.id}/zip`, { token: t });
  assert.equal(r.status, 200, 'exactly the limit (39 files and the folder) passes');
  assert.equal(pyEntries(r.body), MAX_ENTRIES);
  await upload(t, many.id, 'one-more.txt', Buffer.from('x'));
  r = await server.request('GET', `/api/v1/folders/${many.id}/zip`, { token: t });
  assert.equal(r.status, 413, r.text());
  assert.equal(r.json().error, 'payload_too_large');
  assert.match(r.json().message, new RegExp(`more than ${MAX_ENTRIES} files and folders`));
});

function pyEntries(buf) {
  const file = path.join(dir, 'count.zip');
  fs.writeFileSync(file, buf);
  const r = spawnSync('python3', ['-c', 'import sys, zipfile; print(len(zipfile.ZipFile(sys.argv[1]).namelist()))', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return Number(r.stdout.trim());
}

test('folder links: the same archive, ?parent= a folder inside, budgets per file, share.download per file', async () => {
  const L = await mkShare(U.alice.token, { node: T.root.id, permission: 'download', max_downloads: 1 });
  let r = await rcpt(L, '/zip');
  assert.equal(r.status, 200, r.text());
  assert.equal(r.headers['content-type'], 'application/zip');
  assert.ok(r.body.equals(memberArchive), 'the link gives the members\' archive, byte for byte');
  // Each file could be downloaded once: the second archive is refused up front.
  r = await rcpt(L, '/zip');
  assert.equal(r.status, 410, r.text());
  assert.equal(r.json().error, 'download_limit_reached');
  const ev = await waitFor(async () => {
    const x = (await audit(`actor=share:${L.id}&action=share.download`)).filter((e) => e.detail && e.detail.via === 'zip' && e.result === 'ok');
    return x.length === 5 && x.every((e) => e.transfer && e.transfer.completed === true) ? x : null;
  }, 'the link\'s zip downloads recorded');
  assert.deepEqual(ev.map((e) => e.node.id).sort(), [T.greet.id, T.big.id, T.empty.id, T.a.id, T.b.id].sort());
  // The denial is recorded as the single downloads' are: queued, durable soon after the answer.
  const denied = await waitFor(async () => {
    const x = (await audit(`actor=share:${L.id}&action=share.download`)).filter((e) => e.result === 'denied');
    return x.length > 0 ? x : null;
  }, 'the denied event');
  assert.equal(denied.length, 1, 'the refused archive is one denied event');
  assert.equal(denied[0].detail.reason, 'download_limit_reached');
  assert.equal(denied[0].detail.via, 'zip');

  // ?parent=: a folder inside the link; outside or a file: 404 / 400; unknown parameters 400.
  const M = await mkShare(U.alice.token, { node: T.root.id, permission: 'download' });
  r = await rcpt(M, `/zip?parent=${T.sub.id}`);
  assert.equal(r.status, 200, r.text());
  assertArchive(r.body, { 'sub/': 'dir', 'sub/a.txt': DATA.a, 'sub/deeper ünï/': 'dir', 'sub/deeper ünï/b.bin': DATA.b }, 'link parent');
  assert.equal((await rcpt(M, `/zip?parent=${U.alice.root}`)).status, 404, 'outside the link');
  assert.equal((await rcpt(M, `/zip?parent=${T.a.id}`)).status, 400, 'a file');
  assert.equal((await rcpt(M, '/zip?parent=zz')).status, 404, 'a malformed id');
  const u = await rcpt(M, '/zip?foo=1');
  assert.equal(u.status, 400);
  assert.equal(u.json().error, 'unknown_parameter');
  assert.equal((await server.request('GET', `/s/${M.token}/zip`)).status, 401, 'not unlocked');
});

test('the recipient page: "Download folder (ZIP)" saves the archive of the folder on screen (Chromium)', async () => {
  const { chromium } = await import('playwright-core');
  const L = await mkShare(U.alice.token, { node: T.root.id, permission: 'download' });
  const browser = await chromium.launch({ executablePath: process.env.COFFER_CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
  try {
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true, acceptDownloads: true });
    ctx.setDefaultTimeout(120000);
    const page = await ctx.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${server.url}/s/${L.token}`);
    await page.getByTestId('share-code-input').fill(L.code);
    await page.getByTestId('share-unlock').click();
    await page.locator('[data-testid="share-item"][data-name="sub"]').waitFor();
    const dl = page.getByTestId('share-download');
    assert.equal(await dl.textContent(), 'Download folder (ZIP)');
    let [d] = await Promise.all([page.waitForEvent('download'), dl.click()]);
    assert.equal(d.suggestedFilename(), `${ROOT}.zip`);
    const f1 = path.join(dir, 'page-root.zip');
    await d.saveAs(f1);
    assert.ok(fs.readFileSync(f1).equals(memberArchive), 'the same archive as the member\'s');
    // Into sub: the button follows the folder on screen.
    await page.locator('[data-testid="share-item"][data-name="sub"] button').click();
    await page.locator('[data-testid="share-item"][data-name="a.txt"]').waitFor();
    [d] = await Promise.all([page.waitForEvent('download'), dl.click()]);
    assert.equal(d.suggestedFilename(), 'sub.zip');
    const f2 = path.join(dir, 'page-sub.zip');
    await d.saveAs(f2);
    assertArchive(fs.readFileSync(f2), { 'sub/': 'dir', 'sub/a.txt': DATA.a, 'sub/deeper ünï/': 'dir', 'sub/deeper ünï/b.bin': DATA.b }, 'page sub');
    assert.deepEqual(errors, []);
    await ctx.close();
  } finally {
    await browser.close();
  }
});

test('links: one spent file refuses the whole archive and draws nothing from the others; view-only 403; file links 400', async () => {
  const L = await mkShare(U.alice.token, { node: T.sub.id, permission: 'download', max_downloads: 1 });
  let r = await rcpt(L, `/files/${T.a.id}/content`);
  assert.equal(r.status, 200);
  r = await rcpt(L, '/zip');
  assert.equal(r.status, 410, r.text());
  assert.equal(r.json().error, 'download_limit_reached');
  // b.bin's budget is whole: it downloads once.
  r = await rcpt(L, `/files/${T.b.id}/content`);
  assert.equal(r.status, 200, 'the refused archive drew nothing from b.bin');
  assert.ok(r.body.equals(DATA.b));

  const V = await mkShare(U.alice.token, { node: T.root.id, permission: 'view' });
  r = await rcpt(V, '/zip');
  assert.equal(r.status, 403);
  assert.equal(r.json().error, 'forbidden');
  const F = await mkShare(U.alice.token, { node: T.big.id, permission: 'download' });
  r = await rcpt(F, '/zip');
  assert.equal(r.status, 400);
});

test('a stream cut by the client ends every file\'s record, completed only for what went out', async () => {
  const before = (await audit(`actor=user:${U.alice.id}&action=file.download`)).length;
  // Ask for the root's archive and drop the connection after the first DATA frame.
  await new Promise((resolve) => {
    const session = server.connect();
    session.on('error', () => {});
    const q = session.request({ ':method': 'GET', ':path': `/api/v1/folders/${T.root.id}/zip`, authorization: `Bearer ${U.alice.token}` });
    q.on('error', () => {});
    q.once('data', () => { session.destroy(); resolve(); });
    q.on('close', resolve);
  });
  const ev = await waitFor(async () => {
    const x = (await audit(`actor=user:${U.alice.id}&action=file.download`));
    const fresh = x.slice(0, x.length - before).filter((e) => e.detail && e.detail.via === 'zip');
    return fresh.length === 5 && fresh.every((e) => e.transfer && e.transfer.bytes_sent !== null) ? fresh : null;
  }, 'the cut archive\'s records ended');
  assert.ok(ev.some((e) => e.transfer.completed === false), 'at least one file of a cut archive is not completed');
  // The server is fine afterwards.
  const r = await server.request('GET', `/api/v1/folders/${T.sub.id}/zip`, { token: U.alice.token });
  assert.equal(r.status, 200);
});

// ---- failures: tampered chunks (a server of its own) ---------------------------------------------

function tool(args, input) {
  const r = spawnSync(dbtool, args, { input, maxBuffer: 1 << 28, timeout: 60000 });
  if (r.status !== 0) throw new Error(`cf-dbtool ${args.slice(1, 4).join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout.toString();
}

/** Flips one bit in the chunk whose sealed value is vlen bytes long and whose index is index. */
function tamperChunk(dataDir, vlen, index) {
  const keys = tool([dataDir, 'keys', 'chunks']).split('\n').filter(Boolean).map((l) => l.split(' '));
  const hit = keys.filter(([k, l]) => Number(l) === vlen && parseInt(k.slice(64), 16) === index);
  assert.equal(hit.length, 1, `one chunk ${index} of ${vlen} bytes`);
  const v = Buffer.from(tool([dataDir, 'get', 'chunks', hit[0][0]]).trim(), 'hex');
  v[v.length - 40] ^= 1;
  tool([dataDir, 'put', 'chunks', hit[0][0], '-'], v.toString('hex'));
}

/** GET on a fresh h2 connection that never throws: {status, headers, body, rstCode}. */
function rawGet(srv, token, urlPath) {
  return new Promise((resolve) => {
    const session = srv.connect();
    session.on('error', () => {});
    const chunks = [];
    let status, headers;
    const q = session.request({ ':method': 'GET', ':path': urlPath, authorization: `Bearer ${token}` });
    q.on('response', (h) => { status = h[':status']; headers = h; });
    q.on('data', (c) => chunks.push(c));
    q.on('error', () => {});
    q.on('close', () => { session.close(); resolve({ status, headers, body: Buffer.concat(chunks), rstCode: q.rstCode }); });
    q.end();
  });
}

test('a chunk that fails authentication: 500 before the first byte, a cut stream after it', async () => {
  const srv = new Server();
  try {
    await srv.start();
    const login = await srv.login();
    const t = login.token;
    const root = (await srv.request('GET', '/api/v1/spaces', { token: t })).json().private.root;
    const mk = async (parent, name) => (await srv.request('POST', '/api/v1/folders', { token: t, body: { parent, name } })).json();
    const up = async (parent, name, data) => {
      const r = await srv.request('POST', `/api/v1/files?parent=${parent}&name=${name}`, { token: t, body: data });
      assert.equal(r.status, 201, r.text());
      return r.json();
    };
    const A = await mk(root, 'A');
    await up(A.id, 'early.txt', bytes(100, 31));
    const B = await mk(root, 'B');
    const ok = await up(B.id, 'a-first.txt', bytes(200, 32));
    const bad = await up(B.id, 'b-big.bin', bytes(3 * CHUNK + 300, 33));
    await srv.stop();
    const SEAL = 1 + 12 + 16;
    tamperChunk(srv.dataDir, 100 + SEAL, 0);
    tamperChunk(srv.dataDir, CHUNK + SEAL, 2);
    await srv.start();
    const t2 = (await srv.login()).token;

    const early = await rawGet(srv, t2, `/api/v1/folders/${A.id}/zip`);
    assert.equal(early.status, 500, 'the first buffer failed: nothing went out');

    // B's archive: which file comes first depends on the children order (keyed hashes); the
    // tampered chunk is the big file's third, so the stream starts and is then cut.
    const cut = await rawGet(srv, t2, `/api/v1/folders/${B.id}/zip`);
    assert.equal(cut.status, 200);
    assert.ok(cut.body.length < Number(cut.headers['content-length']), `cut: ${cut.body.length} of ${cut.headers['content-length']}`);
    assert.ok(!cut.body.includes(bytes(3 * CHUNK + 300, 33).subarray(2 * CHUNK, 2 * CHUNK + 4096)), 'no byte of the tampered chunk');
    const admin = login.user.id;
    const ev = await waitForIn(srv, t2, async () => {
      const r = await srv.request('GET', `/api/v1/audit?actor=user:${admin}&action=file.download&limit=100`, { token: t2 });
      const x = r.json().events.filter((e) => e.detail && e.detail.archive === B.id);
      return x.length === 2 && x.every((e) => e.transfer && e.transfer.bytes_sent !== null) ? x : null;
    });
    const big = ev.find((e) => e.node.id === bad.id);
    assert.equal(big.transfer.completed, false, 'the file with the bad chunk is not completed');
    assert.ok(big.transfer.bytes_sent <= 2 * CHUNK, `at most its first two chunks went: ${big.transfer.bytes_sent}`);
    assert.ok(ev.find((e) => e.node.id === ok.id), 'the other file has its record');
    // Every buffer back in the pool.
    await waitForIn(srv, t2, async () => {
      const m = (await srv.request('GET', '/metrics')).text();
      return /coffer_bufpool_buffers\{state="out"\} 0\b/.test(m);
    });
    assert.match(srv.stderr, /zip: a file of the archive could not be read/);
  } finally {
    await srv.stop();
    srv.cleanup();
  }
});

async function waitForIn(srv, token, fn, ms = 60000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error('timed out');
    await sleep(50);
  }
}
