// Upload safety (issue 6; SPEC §7; docs/SECURITY.md "Upload scanning"): every upload is scanned by
// libclamav in a sandboxed scanner process and typed by libmagic, through the real server.
//
// The signature database is built here at test time (lib/harness.mjs writeSignatureDb: EICAR as an
// MD5 and a body signature); hostile archives come from zip/7z or are assembled byte by byte
// (lib/archives.mjs). Each libclamav pitfall of notes/clamav-libmagic.md that would let an unscanned
// file through is a case below: deflated and nested archives, 7z, a member past MAX_FILESIZE, an
// encrypted zip and 7z, RAR (which Debian's libclamav cannot open), recursion past the limit, an
// overlapping-entries zip bomb and a scan-budget bomb.
//
// Servers: `main` (max_file 256 MiB, scan.max_seconds 60: the 200 MB file and the kill test),
// `tight` (max_file 32 MiB, scan.max_seconds 5: members past the limit, the scan-budget bomb),
// `allow` (its own signature directory, on_unscannable: allow: reloads and admitted unscannables),
// and short-lived servers for start-up refusals and development mode.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { Server, EICAR, writeSignatureDb, bigBytes, bytes, sha256, cli } from './lib/harness.mjs';
import { zipOf, sevenZipOf, rar4, fifieldBomb, distinctBomb } from './lib/archives.mjs';

const HEX32 = /^[0-9a-f]{32}$/;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const MiB = 1 << 20;

let main, tight, allow, work;
const ctx = {}; // per-server {admin, root}

async function adminOf(server) {
  const login = await server.login();
  const admin = server.client(login.token);
  const spaces = await admin.spaces();
  return { admin, root: spaces.private.root, tenantRoot: spaces.tenant.root };
}

before(async () => {
  work = fs.mkdtempSync(path.join(process.env.COFFER_TEST_TMP || '/tmp', 'coffer-scan-work-'));
  main = await new Server({ config: { limits: { max_file_bytes: '256MiB', max_request_body_bytes: '256MiB' },
    scan: { max_seconds: 60 } } }).start();
  tight = await new Server({ config: { limits: { max_file_bytes: '32MiB', max_request_body_bytes: '64MiB' },
    scan: { max_seconds: 5 } } }).start();
  const allowDb = writeSignatureDb(path.join(work, 'allow-sigs'));
  allow = await new Server({ config: { scan: { database_dir: allowDb, on_unscannable: 'allow' } } }).start();
  allow.sigDir = allowDb;
  for (const [name, s] of [['main', main], ['tight', tight], ['allow', allow]]) ctx[name] = await adminOf(s);
});

after(async () => {
  for (const s of [main, tight, allow]) if (s) { await s.stop(); s.cleanup(); }
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

/** Children names of a folder. */
async function names(c, folder) {
  const r = await c.children(folder);
  assert.equal(r.status, 200);
  return r.json().items.map((i) => i.name);
}

/** Uploads and asserts a rejection: status, error code, and that nothing named `name` appeared. */
async function rejected(server, name, data, { status = 422, error, signature, reason, mime } = {}) {
  const { admin, root } = ctx[server];
  const r = await admin.upload(root, name, data);
  assert.equal(r.status, status, `${name}: status (${r.text()})`);
  const j = r.json();
  assert.equal(j.error, error, `${name}: error code`);
  if (signature) assert.match(j.signature, signature, `${name}: signature`);
  if (reason) assert.match(j.reason, reason, `${name}: reason`);
  if (mime) assert.equal(j.mime, mime, `${name}: mime`);
  assert.ok(!(await names(admin, root)).includes(name), `${name}: nothing stored`);
  return j;
}

async function accepted(server, name, data) {
  const { admin, root } = ctx[server];
  const r = await admin.upload(root, name, data, '&on_conflict=rename');
  assert.equal(r.status, 201, `${name}: ${r.text()}`);
  return r.json();
}

/** EICAR behind padding, so that deflate hides it: proves the archive was unpacked, not grepped. */
function eicarText() {
  return Buffer.concat([bytes(20000, 7).toString('base64').match(/.{1,76}/g).join('\n') + '\n', EICAR].map((x) => Buffer.from(x)));
}

/** A 1×1 PNG, assembled (signature, IHDR, IDAT, IEND with their CRCs). */
function png() {
  const chunk = (type, data) => {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const c = Buffer.alloc(4); c.writeUInt32BE(zlib.crc32(td) >>> 0);
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13); ihdr.writeUInt32BE(1, 0); ihdr.writeUInt32BE(1, 4); ihdr[8] = 8; ihdr[9] = 6;
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(Buffer.from([0, 255, 0, 0, 255]))), chunk('IEND', Buffer.alloc(0))]);
}

// ---- detection -------------------------------------------------------------------------------------

test('EICAR plain, zipped, nested three levels, in a 7z: all rejected as infected, each a provenance event', async () => {
  const text = eicarText();
  const zipped = zipOf(work, { 'notes.txt': text });
  assert.ok(!zipped.includes(EICAR), 'the zip deflates EICAR out of sight');
  const nested = zipOf(work, { 'level2.7z': sevenZipOf(work, { 'level1.zip': zipped }) });
  assert.ok(!nested.includes(EICAR));
  const seven = sevenZipOf(work, { 'notes.txt': text });
  assert.ok(!seven.includes(EICAR));
  const sig = /^Test\.EICAR\.(Body|MD5)\.UNOFFICIAL$/;
  await rejected('main', 'eicar.com', EICAR, { error: 'infected', signature: sig });
  await rejected('main', 'zipped.zip', zipped, { error: 'infected', signature: sig });
  await rejected('main', 'nested.zip', nested, { error: 'infected', signature: sig });
  await rejected('main', 'archive.7z', seven, { error: 'infected', signature: sig });
  // The same bytes under an innocent name and type are rejected just the same.
  const { admin, root } = ctx.main;
  const r = await admin.req('POST', `/api/v1/files?parent=${root}&name=photo.jpg`, { body: EICAR, headers: { 'content-type': 'image/jpeg' } });
  assert.equal(r.status, 422);
  assert.equal(r.json().error, 'infected');

  const a = await admin.req('GET', '/api/v1/audit?action=upload.rejected&limit=100');
  assert.equal(a.status, 200);
  const evs = a.json().events;
  const byName = Object.fromEntries(evs.map((e) => [e.detail.name, e]));
  for (const [name, data] of [['eicar.com', EICAR], ['zipped.zip', zipped], ['nested.zip', nested], ['archive.7z', seven], ['photo.jpg', EICAR]]) {
    const e = byName[name];
    assert.ok(e, `an upload.rejected event for ${name}`);
    assert.equal(e.result, 'infected');
    assert.equal(e.detail.reason, 'infected');
    assert.match(e.detail.signature, sig);
    assert.equal(e.detail.size, data.length);
    assert.equal(e.detail.sha256, sha256(data));
    assert.equal(e.actor.name, 'admin');
    assert.equal(e.node.id, root, `${name}: the event names the folder it was meant for`);
  }
  assert.equal(byName['photo.jpg'].detail.mime, 'text/plain', 'the detected type, not the claimed one');
});

// libclamav drops the pages of a large file it has read (fmap aging) and reads them again when a
// parser needs them; that second read went wrong for every scan the scanner fed (scanner.c, "a
// handle fmap claims to be a file descriptor"), and the zip parser then gave up silently. So a zip
// larger than the 8 MiB libclamav keeps, whose first member is EICAR (deflated: no raw match), was
// stored as clean. The same archive rejected, and one more time with the member last.
test('a 20 MiB zip whose EICAR member was read before the rest is still found (pages read again)', async () => {
  const text = eicarText();
  const filler = crypto.randomBytes(20 * MiB);
  const first = zipOf(work, { 'notes.txt': text, 'filler.bin': filler });
  const last = zipOf(work, { 'filler.bin': filler, 'notes.txt': text });
  for (const z of [first, last]) {
    assert.ok(z.length > 20 * MiB && !z.includes(EICAR), 'large, and EICAR deflated out of sight');
  }
  assert.ok(first.indexOf(Buffer.from('notes.txt')) < 64, 'the EICAR member comes first');
  const sig = /^Test\.EICAR\.(Body|MD5)\.UNOFFICIAL$/;
  await rejected('main', 'eicar-first.zip', first, { error: 'infected', signature: sig });
  await rejected('main', 'eicar-last.zip', last, { error: 'infected', signature: sig });
});

test('an encrypted zip, an encrypted 7z and RAR archives are unscannable: rejected under on_unscannable: reject', async () => {
  const clean = Buffer.from('quarterly numbers\n');
  await rejected('main', 'secret.zip', zipOf(work, { 'a.txt': clean }, ['-P', 'pw']),
    { error: 'unscannable', reason: /^Heuristics\.Encrypted\.Zip$/ });
  await rejected('main', 'secret.7z', sevenZipOf(work, { 'a.txt': clean }, ['-ppw', '-mhe=on']),
    { error: 'unscannable', reason: /^Heuristics\.Encrypted\.7Zip$/ });
  const rar = rar4('a.txt', clean);
  assert.equal(rar.subarray(0, 7).toString('latin1'), 'Rar!\x1a\x07\x00');
  await rejected('main', 'clean.rar', rar, { error: 'unscannable', reason: /^Coffer\.Unscannable\.RAR$/ });
  await rejected('main', 'eicar.rar', rar4('e.txt', EICAR), { error: 'unscannable', reason: /^Coffer\.Unscannable\.RAR$/ });
  // A RAR inside a zip is found at depth, too.
  await rejected('main', 'rar-in.zip', zipOf(work, { 'inner.rar': rar }), { error: 'unscannable', reason: /^Coffer\.Unscannable\.RAR$/ });
});

test('a 20-level nested archive and an overlapping zip bomb are rejected (the scanner stops itself)', async (t) => {
  let deep = zipOf(work, { 'notes.txt': eicarText() });
  for (let i = 1; i < 20; i++) deep = zipOf(work, { [`level${i}.zip`]: deep });
  let t0 = Date.now();
  await rejected('main', 'deep.zip', deep, { error: 'unscannable', reason: /^Heuristics\.Limits\.Exceeded\.MaxRecursion$/ });
  t.diagnostic(`20-level nesting rejected in ${Date.now() - t0} ms`);

  const bomb = fifieldBomb(100, 20 * MiB);
  assert.ok(bomb.length < 64 * 1024, `the bomb is small (${bomb.length} bytes) and expands to 2 GB`);
  t0 = Date.now();
  await rejected('main', 'bomb.zip', bomb, { error: 'infected', signature: /^Heuristics\.Zip\.OverlappingFiles$/ });
  t.diagnostic(`overlapping zip bomb rejected in ${Date.now() - t0} ms`);
});

test('tight limits: a member past max_file_bytes and a scan-budget bomb are rejected within scan.max_seconds', async (t) => {
  // EICAR at the end of a 40 MB member, limit 32 MiB: libclamav would cut the member and say CLEAN.
  const big = Buffer.concat([Buffer.alloc(40 * 1000 * 1000), EICAR]);
  const z = zipOf(work, { 'big.bin': big });
  assert.ok(z.length < 1 * MiB && !z.includes(EICAR));
  await rejected('tight', 'member.zip', z, { error: 'unscannable', reason: /^Coffer\.Unscannable\.MemberTooLarge$/ });
  // The same EICAR in a member under the limit is found: the limit, not the content, decided above.
  await rejected('tight', 'small-member.zip', zipOf(work, { 'small.bin': Buffer.concat([Buffer.alloc(1000000), EICAR]) }),
    { error: 'infected', signature: /^Test\.EICAR\./ });

  // 200 distinct members of 16 MiB (3.2 GB unpacked, 3 MB packed): only the scan budget stops it.
  // A 422 (not a 503) proves the scanner stopped itself, inside scan.max_seconds: the server's own
  // deadline (scan.max_seconds + 15 s) would have killed it and answered 503.
  const dbomb = distinctBomb(200, 16 * MiB);
  const t0 = Date.now();
  await rejected('tight', 'budget.zip', dbomb, { error: 'unscannable', reason: /^Heuristics\.Limits\.Exceeded\.Max(ScanTime|ScanSize|Files)$/ });
  t.diagnostic(`scan-budget bomb (3.2 GB unpacked) rejected in ${Date.now() - t0} ms with scan.max_seconds 5`);
  // The scanner that did it is fine: the next upload is scanned and stored.
  await accepted('tight', 'after-bomb.txt', Buffer.from('ok\n'));
});

// ---- what is stored ----------------------------------------------------------------------------------

test('a clean 200 MB file passes; its node shows the verdict, engine and signature database', async (t) => {
  const data = bigBytes(200 * 1000 * 1000, 61);
  const t0 = Date.now();
  const n = await accepted('main', 'clean-200MB.bin', data);
  t.diagnostic(`200 MB upload + scan + commit: ${Date.now() - t0} ms`);
  assert.equal(n.size, data.length);
  assert.equal(n.sha256, sha256(data));
  assert.equal(n.mime, 'application/octet-stream');
  assert.equal(n.scan.result, 'clean');
  assert.equal(n.scan.detail, null);
  assert.match(n.scan.engine, /^ClamAV 1\.\d+\.\d+$/);
  assert.match(n.scan.database, HEX32);
  assert.ok(Date.parse(n.scan.scanned_at) >= t0 - 1000 && Date.parse(n.scan.scanned_at) <= Date.now() + 1000, n.scan.scanned_at);
  const g = await ctx.main.admin.node(n.id);
  assert.deepEqual(g.json().scan, n.scan, 'GET /nodes/{id} shows the same verdict');
  const d = await ctx.main.admin.download(n.id);
  assert.equal(d.status, 200);
  assert.equal(sha256(d.body), sha256(data), 'the stored bytes are the uploaded bytes');
  // The admin view of the scanners agrees with the node.
  const s = await ctx.main.admin.req('GET', '/api/v1/admin/scanner');
  assert.equal(s.status, 200);
  const sj = s.json();
  assert.equal(sj.state, 'ok');
  assert.equal(sj.processes.length, 2);
  for (const p of sj.processes) {
    assert.equal(p.up, true);
    assert.equal(p.database, n.scan.database);
    assert.equal(p.engine, n.scan.engine);
    assert.equal(p.signatures, 2);
    assert.equal(p.development, false);
  }
  assert.equal(sj.max_seconds, 60);
  assert.equal(sj.on_unscannable, 'reject');
});

test('types come from content: a PNG named .txt is image/png; HTML and SVG are never served as themselves', async () => {
  const { admin } = ctx.main;
  const p = await accepted('main', 'not-really.txt', png());
  assert.equal(p.mime, 'image/png');
  let r = await admin.req('GET', `/api/v1/files/${p.id}/view`);
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'image/png');
  assert.equal(r.headers['x-content-type-options'], 'nosniff');

  const html = Buffer.from('<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>\n');
  const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>\n');
  for (const [name, data, mime] of [['page.png', html, 'text/html'], ['logo.svg', svg, 'image/svg+xml']]) {
    const n = await accepted('main', name, data);
    assert.equal(n.mime, mime, `${name}: detected type`);
    r = await admin.req('GET', `/api/v1/files/${n.id}/view`);
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8', `${name}: viewed as its source`);
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    assert.match(r.headers['content-security-policy'], /sandbox/);
    assert.deepEqual(r.body, data);
    r = await admin.download(n.id);
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/octet-stream', `${name}: downloaded as bytes`);
    assert.match(r.headers['content-disposition'], /^attachment;/);
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    assert.match(r.headers['content-security-policy'], /sandbox/);
  }
});

test('executables are refused when the tenant policy blocks them; families and bad entries', async () => {
  const { admin } = ctx.main;
  const pie = fs.readFileSync('/bin/ls');
  const exec = Buffer.from(pie); exec.writeUInt16LE(2, 16); // e_type ET_EXEC: a non-PIE executable
  const before = await accepted('main', 'ls-allowed', pie);
  assert.match(before.mime, /^application\/x-(sharedlib|pie-executable)$/, 'a PIE is reported as a shared object');

  for (const bad of [['*'], ['executables'], ['Application/X-Executable'], ['image/'], ['/png'], [42], 'application/x-executable']) {
    const r = await admin.req('PATCH', '/api/v1/admin/policy', { body: { blocked_types: bad } });
    assert.equal(r.status, 400, `blocked_types ${JSON.stringify(bad)}`);
  }
  let r = await admin.req('PATCH', '/api/v1/admin/policy', { body: { blocked_types: ['application/x-executable'] } });
  assert.equal(r.status, 200);
  await rejected('main', 'ls', pie, { error: 'blocked_type', mime: before.mime });
  await rejected('main', 'tool', exec, { error: 'blocked_type', mime: 'application/x-executable' });
  await accepted('main', 'still-fine.png', png());
  const ev = (await admin.req('GET', '/api/v1/audit?action=upload.rejected&limit=100')).json().events.find((e) => e.detail.name === 'tool');
  assert.equal(ev.result, 'blocked_type');
  assert.equal(ev.detail.mime, 'application/x-executable');

  r = await admin.req('PATCH', '/api/v1/admin/policy', { body: { blocked_types: ['image/*'] } });
  assert.equal(r.status, 200);
  assert.deepEqual(r.json().blocked_types, ['image/*']);
  await rejected('main', 'blocked.png', png(), { error: 'blocked_type', mime: 'image/png' });
  await accepted('main', 'ls-again', pie);
  r = await admin.req('PATCH', '/api/v1/admin/policy', { body: { blocked_types: [] } });
  assert.equal(r.status, 200);
  await accepted('main', 'fine-again.png', png());
});

// ---- failure and reload ---------------------------------------------------------------------------

/** The scanner processes of a server: [{pid, cpu}] from /proc (its children running coffer-scan). */
function scanners(server) {
  const out = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(f[1]) !== server.proc.pid) continue;
      if (!fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0')[0].endsWith('/coffer-scan')) continue;
      out.push({ pid: Number(d), cpu: Number(f[11]) + Number(f[12]) });
    } catch { /* gone */ }
  }
  return out;
}

test('each scanner runs confined: seccomp filter, no new privileges, only its socket (and its empty fmap anchor) open', async () => {
  const ps = scanners(main);
  assert.equal(ps.length, 2);
  for (const { pid } of ps) {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    assert.match(status, /^Seccomp:\s+2$/m, 'seccomp filter mode');
    assert.match(status, /^NoNewPrivs:\s+1$/m);
    const fds = fs.readdirSync(`/proc/${pid}/fd`).map(Number).sort((a, b) => a - b);
    assert.deepEqual(fds, [0, 1, 2, 3, 4], 'stdin, stdout, stderr, the socket and its own anchor, nothing of the server');
    assert.match(fs.readlinkSync(`/proc/${pid}/fd/3`), /^socket:/);
    assert.equal(fs.readlinkSync(`/proc/${pid}/fd/0`), '/dev/null');
    // The fmap anchor (scanner.c): an empty, unlinked file of its own scratch directory, mtime 0.
    assert.match(fs.readlinkSync(`/proc/${pid}/fd/4`), /\/\.fmap-anchor \(deleted\)$/);
    const a = fs.fstatSync(fs.openSync(`/proc/${pid}/fd/4`, 'r'));
    assert.equal(a.size, 0);
    assert.equal(a.mtimeMs, 0);
  }
});

test('a scanner killed during a scan: that upload fails with 503, the next succeeds, the server never stopped', async (t) => {
  const { admin, root } = ctx.main;
  const data = bigBytes(200 * 1000 * 1000, 62);
  const idle = Object.fromEntries(scanners(main).map((p) => [p.pid, p.cpu]));
  assert.equal(Object.keys(idle).length, 2);
  const up = admin.upload(root, 'doomed.bin', data);
  let victim = null;
  const deadline = Date.now() + 120000;
  while (!victim && Date.now() < deadline) {
    await sleep(20);
    for (const p of scanners(main)) if (idle[p.pid] !== undefined && p.cpu - idle[p.pid] >= 5) victim = p.pid;
  }
  assert.ok(victim, 'a scanner started working on the upload');
  process.kill(victim, 'SIGKILL');
  t.diagnostic(`killed scanner ${victim} mid-scan`);
  const r = await up;
  assert.equal(r.status, 503, r.text());
  assert.equal(r.json().error, 'unavailable');
  assert.ok(!(await names(admin, root)).includes('doomed.bin'), 'nothing stored');
  assert.equal(main.proc.exitCode, null, 'the server is still running');
  const n = await accepted('main', 'after-kill.txt', Buffer.from('next one\n'));
  assert.equal(n.scan.result, 'clean');
  await rejected('main', 'eicar-after-kill.com', EICAR, { error: 'infected', signature: /^Test\.EICAR\./ });
  // The replacement starts on its own: polled, with a generous deadline.
  for (const deadline = Date.now() + 120000; scanners(main).length < 2 && Date.now() < deadline;) await sleep(50);
  const now = scanners(main);
  assert.equal(now.length, 2, 'two scanners again');
  assert.ok(!now.some((p) => p.pid === victim), 'the killed one was replaced');
  assert.match(main.stderr, new RegExp(`scanner \\d was killed by signal 9`));
  const h = await main.request('GET', '/healthz');
  assert.deepEqual(h.json(), { status: 'ok' });
});

test('scanners killed while idle are replaced before the next upload, which succeeds', async () => {
  const before = scanners(main).map((p) => p.pid);
  assert.equal(before.length, 2);
  for (const pid of before) process.kill(pid, 'SIGKILL');
  // At once, before any idle check could notice: the upload's scan thread finds its scanner dead
  // and starts a new one instead of failing the upload.
  const n = await accepted('main', 'after-idle-kill.txt', Buffer.from('still scanned\n'));
  assert.equal(n.scan.result, 'clean');
  await rejected('main', 'eicar-after-idle-kill.com', EICAR, { error: 'infected', signature: /^Test\.EICAR\./ });
  for (const deadline = Date.now() + 120000; Date.now() < deadline && scanners(main).filter((p) => !before.includes(p.pid)).length < 2;) await sleep(50);
  const now = scanners(main);
  assert.equal(now.length, 2);
  assert.ok(now.every((p) => !before.includes(p.pid)), 'both were replaced');
});

test('a new version goes through the same scan: an infected replacement is refused, the current version stays', async () => {
  const { admin, root } = ctx.main;
  const v1 = Buffer.from('version one\n');
  const n = await accepted('main', 'versioned.txt', v1);
  const r = await admin.upload(root, n.name, EICAR, '&on_conflict=replace');
  assert.equal(r.status, 422);
  assert.equal(r.json().error, 'infected');
  const g = (await admin.node(n.id)).json();
  assert.equal(g.version, 1);
  assert.equal(g.sha256, sha256(v1));
  assert.deepEqual((await admin.download(n.id)).body, v1);
  const ok = await admin.upload(root, n.name, Buffer.from('version two\n'), '&on_conflict=replace');
  assert.equal(ok.status, 201);
  assert.equal(ok.json().version, 2);
  assert.equal(ok.json().scan.result, 'clean');
});

test('on_unscannable: allow admits an encrypted zip, marked unscannable; infected files are still refused', async () => {
  const z = zipOf(work, { 'a.txt': Buffer.from('private\n') }, ['-P', 'pw']);
  const n = await accepted('allow', 'locked.zip', z);
  assert.equal(n.scan.result, 'unscannable');
  assert.equal(n.scan.detail, 'Heuristics.Encrypted.Zip');
  assert.equal(n.mime, 'application/zip');
  await rejected('allow', 'eicar.com', EICAR, { error: 'infected', signature: /^Test\.EICAR\./ });
});

async function scannerDatabases(c) {
  const r = await c.req('GET', '/api/v1/admin/scanner');
  assert.equal(r.status, 200);
  return r.json().processes.map((p) => `${p.database}/${p.signatures}`);
}

test('SIGHUP: a broken signature file keeps the old engine; a new signature applies to the next upload, uploads during the reload are all answered', async (t) => {
  const { admin } = ctx.allow;
  const marker = Buffer.from(`COFFER-RELOAD-MARKER-${crypto.randomBytes(8).toString('hex')}`);
  const carrier = Buffer.concat([Buffer.from('report body\n'), marker, Buffer.from('\n')]);
  const before = await scannerDatabases(admin);
  await accepted('allow', 'carrier-before.txt', carrier); // not yet a signature

  // A malformed file makes the whole load fail: the running engine stays.
  fs.writeFileSync(path.join(allow.sigDir, 'broken.ndb'), 'this is not a signature\n');
  allow.proc.kill('SIGHUP');
  for (const deadline = Date.now() + 120000; Date.now() < deadline && (allow.stderr.match(/keeping the current engine/g) || []).length < 2;) await sleep(50);
  assert.ok((allow.stderr.match(/keeping the current engine/g) || []).length >= 2, 'both scanners refused the broken database');
  assert.deepEqual(await scannerDatabases(admin), before);
  await rejected('allow', 'eicar-during-broken.com', EICAR, { error: 'infected', signature: /^Test\.EICAR\./ });
  fs.rmSync(path.join(allow.sigDir, 'broken.ndb'));

  // Uploads keep flowing while the scanners build and swap their engines.
  let stop = false;
  const results = [];
  const pump = async (k) => {
    for (let i = 0; !stop || i < 3; i++) {
      const r = await admin.upload(ctx.allow.root, `during-${k}-${i}.txt`, Buffer.from(`clean ${k} ${i}\n`));
      results.push(r.status);
    }
  };
  const pumps = [0, 1, 2, 3].map(pump);
  for (const deadline = Date.now() + 120000; results.length === 0 && Date.now() < deadline;) await sleep(10); // uploads are flowing
  fs.writeFileSync(path.join(allow.sigDir, 'marker.ndb'), `Test.Coffer.Marker:0:*:${marker.toString('hex')}\n`);
  allow.proc.kill('SIGHUP');
  const deadline = Date.now() + 120000; // generous: the reload is polled for, not timed
  let now;
  for (;;) {
    now = await scannerDatabases(admin);
    if (now.every((d) => d.endsWith('/3') && !before.includes(d))) break;
    assert.ok(Date.now() < deadline, `the scanners reloaded (${now})`);
    await sleep(50);
  }
  stop = true;
  await Promise.all(pumps);
  t.diagnostic(`${results.length} uploads during the reload`);
  assert.ok(results.length >= 12);
  assert.deepEqual([...new Set(results)], [201], 'every upload during the reload was answered 201');
  await rejected('allow', 'carrier-after.txt', carrier, { error: 'infected', signature: /^Test\.Coffer\.Marker\.UNOFFICIAL$/ });
  const n = await accepted('allow', 'after-reload.txt', Buffer.from('fine\n'));
  assert.equal(n.scan.database, now[0].split('/')[0], 'new uploads record the new database');
  assert.equal(allow.proc.exitCode, null);
});

// ---- start-up ----------------------------------------------------------------------------------------

test('no signatures: the server refuses to start; with scan.development it starts and says so everywhere', async () => {
  const empty = fs.mkdtempSync(path.join(work, 'empty-sigs-'));
  const s = new Server({ config: { scan: { database_dir: empty } } });
  await assert.rejects(s.start(), /exited early/);
  assert.equal((await s.exited).code, 1);
  assert.match(s.stderr, /no usable engine|No supported database files|holds no signature/);
  assert.match(s.stderr, /scan\.development allows that/);
  s.cleanup();

  const notTmpfs = new Server({ config: { scan: { scratch_dir: work } } });
  await assert.rejects(notTmpfs.start(), /exited early/);
  assert.match(notTmpfs.stderr, /is not a tmpfs/);
  notTmpfs.cleanup();

  const dev = await new Server({ config: { scan: { database_dir: empty, development: 'true' } } }).start();
  try {
    assert.match(dev.stderr, /DEVELOPMENT MODE: the virus scanner has NO SIGNATURES/);
    const h = await dev.request('GET', '/healthz');
    // Unscanned uploads are not accepted silently: 503 until the operator says so (admin.test.mjs).
    assert.equal(h.status, 503);
    assert.deepEqual(h.json(), { status: 'degraded', scan: 'disabled', scanner: 'development: no signatures',
      warning: 'DEVELOPMENT MODE: uploads are not checked for malware; set scan.accept_unscanned: true to accept that, or install signatures' });
    const { admin, root } = await adminOf(dev);
    const r = await admin.upload(root, 'x.txt', Buffer.from('x\n'));
    assert.equal(r.status, 201);
    assert.equal(r.json().scan.result, 'unchecked', 'never recorded as clean');
    assert.equal(r.json().mime, 'text/plain', 'libmagic still types it');
  } finally {
    await dev.stop();
    dev.cleanup();
  }
});

test('the scanner program (coffer-scan) refuses to run by hand without its socket and arguments; coffer has no scanner command', () => {
  const prog = path.join(path.dirname(process.env.COFFER_BIN), 'coffer-scan');
  let r = spawnSync(prog, [], { encoding: 'utf8' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /--db, --scratch and --max-file are required/);
  r = spawnSync(prog, ['--db', '/nonexistent', '--scratch', '/dev/shm', '--max-file', '1000'], { encoding: 'utf8' });
  assert.notEqual(r.status, 0);
  r = cli(['scan-worker']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown command: scan-worker/);
  // coffer without coffer-scan beside it: `serve --check` and `serve` refuse, naming the program.
  const lone = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-lone-'));
  try {
    fs.copyFileSync(process.env.COFFER_BIN, path.join(lone, 'coffer'));
    fs.chmodSync(path.join(lone, 'coffer'), 0o755);
    for (const args of [['serve', '--check', '-c', main.configPath], ['serve', '-c', main.configPath]]) {
      r = spawnSync(path.join(lone, 'coffer'), args, { encoding: 'utf8', timeout: 120000 });
      assert.notEqual(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`the scanner program ${lone}/coffer-scan is missing or not executable`), args.join(' '));
    }
  } finally {
    fs.rmSync(lone, { recursive: true, force: true });
  }
});
