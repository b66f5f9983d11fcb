// Backups (issue 11): `coffer backup create|list|verify|restore`.
//   - offline: back up a stopped server's store twice (the second incremental), list, verify (checksums)
//     and verify --deep (restore, decrypt, provenance), restore into a new data directory, serve it and
//     find every file byte-identical, a resumable upload resumable, fsck and audit verify passing; the
//     backup directory is private and holds no plaintext (content, file names, user names);
//   - bad input: restore over a store or a non-empty directory, from a non-backup directory, an unknown
//     or purged id, missing arguments, a corrupted backup file, the wrong master key;
//   - online: two backups while simple and tus uploads run against a live server (through its control
//     socket), restored and served: every upload acknowledged before a backup began is in it, whole,
//     and every file in it is byte-identical to what was uploaded under its name.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Server, cli, coffer, sha256, bytes, walkFiles, dirContains, freePort } from './lib/harness.mjs';

delete process.env.COFFER_CONFIG;
const tmpRoot = process.env.COFFER_TEST_TMP || path.join(os.tmpdir(), 'coffer-tests');
fs.mkdirSync(tmpRoot, { recursive: true });
const work = fs.mkdtempSync(path.join(tmpRoot, 'backup-'));
const servers = [];
after(async () => {
  for (const s of servers) {
    await s.stop();
    s.cleanup();
  }
  fs.rmSync(work, { recursive: true, force: true });
});

const T = { 'tus-resumable': '1.0.0' };
const OCT = { ...T, 'content-type': 'application/offset+octet-stream' };
const b64 = (s) => Buffer.from(s).toString('base64');
const CREATED = /^backup (\d+) created in (.+): (\d+) bytes in (\d+) files, (\d+) new bytes copied; (\d+) backups kept, (\d+) purged \(/;

// Distinctive plaintext: none of it may appear anywhere in a backup directory.
const CANARY = 'coffer-backup-canary-7f3a9c51e2';
const SECRET_NAME = 'quarterly-secret-plan-x81q.bin';
const USERNAME = 'canary-user-q7zk';

function backup(args, configPath, opts = {}) {
  if (!opts.cwd) return cli(['backup', ...args, '-c', configPath]);
  const r = spawnSync(coffer, ['backup', ...args, '-c', configPath], { encoding: 'utf8', cwd: opts.cwd, timeout: 120000 });
  assert.doesNotMatch(r.stderr || '', /ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:/);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function parseCreated(r) {
  assert.equal(r.status, 0, `backup create: ${r.stdout}${r.stderr}`);
  const m = CREATED.exec(r.stdout);
  assert.ok(m, `backup create output: ${r.stdout}`);
  return { id: Number(m[1]), dir: m[2], size: Number(m[3]), files: Number(m[4]), copied: Number(m[5]), kept: Number(m[6]), purged: Number(m[7]) };
}

function list(dir, configPath) {
  const r = backup(['list', dir], configPath);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim().split('\n').filter(Boolean).map((l) => {
    const [id, at, size, files] = l.split('\t');
    return { id: Number(id), at, size: Number(size), files: Number(files) };
  });
}

function dirState(dir) {
  if (!fs.existsSync(dir)) return null;
  return walkFiles(dir).sort().map((f) => `${f} ${fs.statSync(f).size} ${fs.statSync(f).mtimeMs}`);
}

/** A server over a restored data directory: a new config dir holding a copy of keyFrom's master key. */
async function serverFor(keyFrom) {
  const s = new Server({ dir: fs.mkdtempSync(path.join(tmpRoot, 'srv-')) });
  s.port = await freePort();
  s.writeConfig(s.port);
  if (keyFrom) {
    fs.copyFileSync(keyFrom, path.join(s.dir, 'master.key'));
    fs.chmodSync(path.join(s.dir, 'master.key'), 0o600);
  }
  servers.push(s);
  return s;
}

async function listAll(server, token, root) {
  const out = [];
  let cursor = '';
  for (;;) {
    const r = await server.request('GET', `/api/v1/nodes/${root}/children?limit=500${cursor ? `&cursor=${cursor}` : ''}`, { token });
    assert.equal(r.status, 200, r.text());
    const j = r.json();
    out.push(...j.items);
    if (!j.next_cursor) return out;
    cursor = j.next_cursor;
  }
}

function checkPrivate(dir) {
  for (const f of walkFiles(dir)) assert.equal(fs.statSync(f).mode & 0o777, 0o600, `${f} is not 0600`);
  const dirs = [dir];
  for (const f of walkFiles(dir)) dirs.push(path.dirname(f));
  for (const d of new Set(dirs)) assert.equal(fs.statSync(d).mode & 0o777, 0o700, `${d} is not 0700`);
}

// ---- offline ------------------------------------------------------------------------------------

let A, bkDir; // server A (stopped after the first test) and its backup directory, reused below
const uploaded = new Map(); // name → Buffer

test('offline: incremental backups, list, verify, verify --deep, restore, serve: byte-identical; private, no plaintext', { timeout: 300000 }, async () => {
  const t0 = Date.now();
  A = new Server();
  servers.push(A);
  await A.start();
  const { token } = await A.login();
  const admin = A.client(token);
  const root = (await admin.spaces()).private.root;
  const u = await A.request('POST', '/api/v1/admin/users', { token, body: { username: USERNAME, password: 'canary-password-1' } });
  assert.equal(u.status, 201, u.text());
  // Files: a text file full of the canary, a secret name, a few binary files over one chunk, one tus upload.
  const files = [
    ['canary.txt', Buffer.from(`${CANARY}\n`.repeat(6000))],
    [SECRET_NAME, bytes(300000, 11)],
    ['big-1.bin', bytes(1200 * 1024, 12)],
    ['small-1.bin', bytes(5000, 13)],
    ['empty.bin', Buffer.alloc(0)],
  ];
  for (const [name, data] of files) {
    const r = await admin.upload(root, name, data);
    assert.equal(r.status, 201, `${name}: ${r.text()}`);
    uploaded.set(name, data);
  }
  const tusData = bytes(700 * 1024, 14);
  const c = await A.request('POST', '/api/v1/uploads', { token, headers: { ...T, 'upload-length': String(tusData.length), 'upload-metadata': `filename ${b64('tus-done.bin')},parent ${b64(root)}` } });
  assert.equal(c.status, 201);
  const p = await A.request('PATCH', c.headers.location, { token, headers: { ...OCT, 'upload-offset': '0' }, body: tusData });
  assert.equal(p.status, 204);
  uploaded.set('tus-done.bin', tusData);
  // A resumable upload left part way (one sealed chunk and a sealed tail): it must survive the backup
  // and be resumable after a restore.
  const HALF = 1100 * 1024;
  const halfData = bytes(1300 * 1024, 15);
  const h = await A.request('POST', '/api/v1/uploads', { token, headers: { ...T, 'upload-length': String(halfData.length), 'upload-metadata': `filename ${b64('tus-half.bin')},parent ${b64(root)}` } });
  assert.equal(h.status, 201);
  const halfLoc = h.headers.location;
  const hp = await A.request('PATCH', halfLoc, { token, headers: { ...OCT, 'upload-offset': '0' }, body: halfData.subarray(0, HALF) });
  assert.equal(hp.status, 204);
  await A.stop();

  // Backup 1, into a relative directory (resolved against the caller's working directory).
  const b1 = parseCreated(backup(['create', 'backups'], A.configPath, { cwd: work }));
  bkDir = path.join(work, 'backups');
  assert.equal(b1.id, 1);
  assert.equal(b1.dir, bkDir);
  assert.equal(b1.kept, 1);
  assert.equal(b1.purged, 0);
  assert.ok(b1.copied >= b1.size, `first backup copied ${b1.copied} < its size ${b1.size}`);
  const plainBytes = [...uploaded.values()].reduce((n, b) => n + b.length, 0) + HALF;
  assert.ok(b1.size > plainBytes, `backup 1 (${b1.size} bytes) is smaller than the content (${plainBytes})`);
  assert.ok(walkFiles(bkDir).some((f) => f.endsWith('.blob')), 'no blob file in the backup (chunks live in blob files)');
  assert.ok(fs.existsSync(path.join(bkDir, 'coffer-backup')));

  // Backup 2 after more uploads: incremental.
  await A.start();
  const { token: t2 } = await A.login();
  const more = bytes(1100 * 1024, 16);
  assert.equal((await A.client(t2).upload(root, 'after-1.bin', more)).status, 201);
  uploaded.set('after-1.bin', more);
  await A.stop();
  const b2 = parseCreated(backup(['create', bkDir, '--keep', '5'], A.configPath));
  assert.equal(b2.id, 2);
  assert.equal(b2.kept, 2);
  assert.equal(b2.purged, 0);
  assert.ok(b2.copied < b1.size, `incremental backup copied ${b2.copied} bytes, the first one holds ${b1.size}`);
  assert.ok(b2.copied >= more.length, `backup 2 copied ${b2.copied} bytes, less than the ${more.length} new bytes`);
  assert.ok(b2.size > b1.size);
  console.log(`backup 1: ${b1.size} bytes in ${b1.files} files; backup 2: ${b2.size} bytes in ${b2.files} files, ${b2.copied} copied`);

  assert.deepEqual(list(bkDir, A.configPath).map((b) => [b.id, b.size, b.files]), [[1, b1.size, b1.files], [2, b2.size, b2.files]]);
  assert.match(list(bkDir, A.configPath)[0].at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

  // Private, and no plaintext: not the content, not a file name, not a user name.
  checkPrivate(bkDir);
  assert.equal(dirContains(bkDir, Buffer.from(CANARY)), null, 'canary content in the backup');
  assert.equal(dirContains(bkDir, Buffer.from(SECRET_NAME)), null, 'a file name in the backup');
  assert.equal(dirContains(bkDir, Buffer.from('tus-half.bin')), null, 'a tus file name in the backup');
  assert.equal(dirContains(bkDir, Buffer.from(USERNAME)), null, 'a user name in the backup');
  assert.equal(dirContains(bkDir, uploaded.get(SECRET_NAME).subarray(100000, 100064)), null, 'file content in the backup');
  assert.equal(dirContains(bkDir, fs.readFileSync(path.join(A.dir, 'master.key'))), null, 'the master key in the backup');

  // verify: checksums of every file; --deep: restore, decrypt, provenance.
  const v = backup(['verify', bkDir], A.configPath);
  assert.equal(v.status, 0, v.stderr);
  assert.match(v.stdout, /^ok: 2 backups, \d+ files \(\d+ bytes\) match their checksums\n$/);
  const vd = backup(['verify', bkDir, '--deep', '--id', '2'], A.configPath);
  assert.equal(vd.status, 0, vd.stderr);
  assert.match(vd.stdout, /^ok: 1 backups, /);
  // Versions: the 7 committed files; the part-way tus upload is a resumable content.
  const deep = /backup 2: restores and opens with the master key; (\d+) versions \((\d+) bytes, \d+ chunks\) decrypt to their SHA-256; (\d+) provenance events in 1 tenants verify; (\d+) unfinished uploads\n/.exec(vd.stdout);
  assert.ok(deep, vd.stdout);
  assert.equal(Number(deep[1]), 7);
  assert.equal(Number(deep[2]), [...uploaded.values()].reduce((n, b) => n + b.length, 0));
  assert.ok(Number(deep[3]) > 0);
  assert.equal(Number(deep[4]), 1);
  assert.equal(fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith('coffer-verify-')).length, 0, 'verify --deep left its temporary restore');

  // Restore backup 2 into a new data directory and serve it.
  const B = await serverFor(path.join(A.dir, 'master.key'));
  const r = backup(['restore', bkDir, '--to', B.dataDir], B.configPath);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^restored backup 2 into ${B.dataDir}; the master key .* opens it\nnext steps:\n`));
  assert.equal(fs.statSync(B.dataDir).mode & 0o777, 0o700);
  await B.start();
  const { token: tb } = await B.login();
  const listed = await listAll(B, tb, root);
  assert.deepEqual(listed.map((n) => n.name).sort(), [...uploaded.keys()].sort());
  for (const n of listed) {
    const d = await B.request('GET', `/api/v1/files/${n.id}/content`, { token: tb });
    assert.equal(d.status, 200);
    assert.equal(sha256(d.body), sha256(uploaded.get(n.name)), `${n.name} differs after the restore`);
  }
  // The resumable upload resumes where it was.
  const head = await B.request('HEAD', halfLoc, { token: tb, headers: T });
  assert.equal(head.status, 200);
  assert.equal(head.headers['upload-offset'], String(HALF));
  const rest = await B.request('PATCH', halfLoc, { token: tb, headers: { ...OCT, 'upload-offset': String(HALF) }, body: halfData.subarray(HALF) });
  assert.equal(rest.status, 204);
  const done = await B.request('GET', `/api/v1/files/${rest.headers['coffer-node-id']}/content`, { token: tb });
  assert.equal(sha256(done.body), sha256(halfData));
  // The canary user came back too.
  const users = (await B.request('GET', '/api/v1/admin/users', { token: tb })).json();
  assert.ok(JSON.stringify(users).includes(USERNAME));
  await B.stop();
  const av = cli(['audit', 'verify', '-c', B.configPath]);
  assert.equal(av.status, 0, av.stderr);
  assert.match(av.stdout, /^ok: \d+ events\n$/);
  const fk = cli(['fsck', '-c', B.configPath]);
  assert.equal(fk.status, 0, fk.stderr);
  assert.equal(JSON.parse(fk.stdout).versions, 8);
  console.log(`offline test: ${Date.now() - t0} ms`);
});

// ---- bad input ----------------------------------------------------------------------------------

test('bad input: restore over a store or into a non-empty dir, non-backup dir, unknown or purged id, usage, corruption, wrong key', { timeout: 300000 }, async () => {
  assert.ok(bkDir, 'needs the backups of the first test');
  const cfg = A.configPath;

  // Restore over an initialised data directory: exit 1, nothing changed.
  const before = dirState(A.dataDir);
  let r = backup(['restore', bkDir, '--to', A.dataDir], cfg);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /already holds a store: restore into a new directory \(nothing was changed\)/);
  assert.deepEqual(dirState(A.dataDir), before);

  // Into a non-empty directory that is not a store: exit 1, nothing changed.
  const junk = path.join(work, 'junk');
  fs.mkdirSync(junk);
  fs.writeFileSync(path.join(junk, 'notes.txt'), 'keep me');
  r = backup(['restore', bkDir, '--to', junk], cfg);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /is not empty: restore into a new or empty directory/);
  assert.deepEqual(fs.readdirSync(junk), ['notes.txt']);

  // From a directory that is not a backup directory (and nothing is created in it).
  const target = path.join(work, 'restored-x');
  r = backup(['restore', junk, '--to', target], cfg);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /junk is not a Coffer backup directory \(it has no coffer-backup file\)/);
  assert.deepEqual(fs.readdirSync(junk), ['notes.txt']);
  assert.equal(fs.existsSync(target), false);
  r = backup(['list', path.join(work, 'nowhere')], cfg);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /nowhere: No such file or directory/);
  r = backup(['verify', junk], cfg);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /not a Coffer backup directory/);
  // backup create refuses a non-empty directory that is not a backup directory.
  r = backup(['create', junk], cfg);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /junk is not empty and is not a Coffer backup directory/);
  assert.deepEqual(fs.readdirSync(junk), ['notes.txt']);

  // Unknown id.
  r = backup(['restore', bkDir, '--id', '99', '--to', target], cfg);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /has no backup 99 \(`coffer backup list` shows the ids\)/);
  assert.equal(fs.existsSync(target), false);
  r = backup(['verify', bkDir, '--id', '99'], cfg);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /has no backup 99/);

  // Usage: exit 2.
  for (const args of [[], ['list'], ['restore', bkDir], ['restore', bkDir, '--to'], ['verify', bkDir, '--id', 'abc'],
    ['verify', bkDir, '--id', '0'], ['create'], ['create', bkDir, '--keep', '0'], ['create', bkDir, '--keep'],
    ['frobnicate', bkDir], ['list', bkDir, '--deep'], ['list', bkDir, 'other'], ['create', bkDir, '--to', junk],
    ['verify', bkDir, '--bogus']]) {
    r = backup(args, cfg);
    assert.equal(r.status, 2, `backup ${args.join(' ')}: ${r.status} ${r.stderr}`);
    assert.match(r.stderr, /coffer: backup|usage: coffer backup/, `backup ${args.join(' ')}`);
  }

  // --keep purges: a third backup keeping two; backup 1 is gone.
  const b3 = parseCreated(backup(['create', bkDir, '--keep', '2'], cfg));
  assert.equal(b3.id, 3);
  assert.equal(b3.kept, 2);
  assert.equal(b3.purged, 1);
  assert.deepEqual(list(bkDir, cfg).map((b) => b.id), [2, 3]);
  r = backup(['restore', bkDir, '--id', '1', '--to', target], cfg);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /has no backup 1/);
  assert.equal(backup(['verify', bkDir], cfg).status, 0);

  // A corrupted file: one byte flipped in a copy of the backup directory.
  const bad = path.join(work, 'backups-bad');
  fs.cpSync(bkDir, bad, { recursive: true });
  // A blob file that the newest backup needs (its meta file lists it).
  const blobRel = fs.readFileSync(path.join(bad, 'meta', '3'), 'utf8').split('\n').map((l) => l.split(' ')[0]).find((f) => f.endsWith('.blob'));
  assert.ok(blobRel, 'backup 3 lists no blob file');
  const blob = path.join(bad, blobRel);
  const buf = fs.readFileSync(blob);
  buf[Math.floor(buf.length / 2)] ^= 0x01;
  fs.writeFileSync(blob, buf);
  const rel = path.relative(bad, blob);
  r = backup(['verify', bad], cfg);
  assert.equal(r.status, 1);
  assert.match(r.stderr, new RegExp(`backups? [0-9, ]+: ${rel.replace(/[.]/g, '\\.')}: content differs from when it was backed up`));
  r = backup(['restore', bad, '--to', target], cfg);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /restoring backup 3 failed \(nothing is left in .*\): Corruption: .*checksum/);
  assert.equal(fs.existsSync(target), false);
  // A truncated file and a missing one.
  fs.truncateSync(blob, 100);
  const manifest = fs.readdirSync(path.join(bad, 'private', '3')).find((f) => f.startsWith('MANIFEST-'));
  fs.rmSync(path.join(bad, 'private', '3', manifest));
  r = backup(['verify', bad], cfg);
  assert.equal(r.status, 1);
  assert.ok(r.stderr.includes(rel), r.stderr);
  // RocksDB leaves out a backup with a missing file; verify still names it and the file.
  assert.match(r.stderr, /backup 3: RocksDB cannot load it/);
  assert.ok(r.stderr.includes(`backup 3: private/3/${manifest}: No such file or directory`), r.stderr);
  r = backup(['list', bad], cfg);
  assert.equal(r.status, 1);
  assert.match(r.stdout, /^2\t/);
  assert.match(r.stderr, /also holds 1 backup\(s\) that RocksDB cannot load/);
  r = backup(['restore', bad, '--id', '3', '--to', target], cfg);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /backup 3 in .* cannot be loaded/);
  assert.equal(fs.existsSync(target), false);

  // The wrong master key: the restore says so plainly; verify --deep too.
  const W = await serverFor(null);
  fs.writeFileSync(path.join(W.dir, 'master.key'), crypto.randomBytes(32), { mode: 0o600 });
  r = backup(['restore', bkDir, '--to', W.dataDir], W.configPath);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /the master key .*master\.key does not open backup 3 \(restored into the new directory, left in place\)\. .*a backup is useless without the master key it was made under/);
  r = backup(['verify', bkDir, '--deep', '--id', '3'], W.configPath);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /does not open backup 3 \(checked in a temporary restore\)/);
  assert.match(r.stdout, /^ok: 1 backups/); // the checksums are fine; only the key is wrong
});

// ---- online -------------------------------------------------------------------------------------

// The load is bounded so that the assertions hold whatever the speed of this build: 8 MiB uploaded
// before the first backup; then each backup begins while uploads are in flight, and at most 4 uploads
// (< 400 KB each) start around each one (≤ 12 with those in flight, < 4.8 MB), so the second backup
// has less new content to copy than the first one holds.
test('online: two backups while simple and tus uploads run; the restore holds every acknowledged upload, whole', { timeout: 300000 }, async () => {
  const t0 = Date.now();
  const S = new Server({ config: { limits: { max_request_body_bytes: '4MiB' } } });
  servers.push(S);
  await S.start();
  const { token } = await S.login();
  const root = (await S.client(token).spaces()).private.root;
  const dir = path.join(work, 'online-backups');

  const content = (name, size) => {
    const out = Buffer.alloc(size);
    for (let off = 0, i = 0; off < size; i++) off += crypto.createHash('sha256').update(`${name}:${i}`).digest().copy(out, off);
    return out;
  };
  const attempted = new Map(); // name → {data, acked}
  let seq = 0, stop = false, inflight = 0, allowed = 0;
  async function simple(name, size) {
    const data = content(name, size);
    attempted.set(name, { data, acked: false });
    const r = await S.request('POST', `/api/v1/files?parent=${root}&name=${name}`, { token, body: data });
    assert.equal(r.status, 201, `${name}: ${r.status} ${r.text()}`);
    attempted.get(name).acked = true;
  }
  async function tus(name, size) {
    const data = content(name, size);
    attempted.set(name, { data, acked: false });
    const c = await S.request('POST', '/api/v1/uploads', { token, headers: { ...T, 'upload-length': String(data.length), 'upload-metadata': `filename ${b64(name)},parent ${b64(root)}` } });
    assert.equal(c.status, 201);
    for (let off = 0; off < data.length;) {
      const piece = data.subarray(off, Math.min(data.length, off + 100 * 1024));
      const p = await S.request('PATCH', c.headers.location, { token, headers: { ...OCT, 'upload-offset': String(off) }, body: piece });
      assert.equal(p.status, 204, `${name} at ${off}: ${p.status}`);
      off = Number(p.headers['upload-offset']);
    }
    attempted.get(name).acked = true;
  }
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  async function uploader(kind) {
    while (!stop) {
      if (allowed <= 0) { await sleep(10); continue; }
      allowed--;
      inflight++;
      const n = ++seq;
      try {
        if (kind === 'tus') await tus(`t-${n}.bin`, 150000 + (n * 104729) % 250000);
        else await simple(`s-${n}.bin`, 20000 + (n * 7919) % 380000);
      } finally { inflight--; }
    }
  }
  const waitFor = async (cond) => { while (!cond()) await sleep(10); };
  const ackedNames = () => new Set([...attempted].filter(([, a]) => a.acked).map(([n]) => n));
  const runBackup = () => new Promise((resolve) => {
    const p = spawn(coffer, ['backup', 'create', dir, '-c', S.configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('exit', (status) => resolve({ status, stdout: out, stderr: err }));
  });

  // 8 MiB first, four at a time.
  for (let i = 0; i < 16; i += 4) await Promise.all([0, 1, 2, 3].map((k) => simple(`pre-${i + k}.bin`, 512 * 1024)));
  const workers = [uploader('simple'), uploader('tus'), uploader('simple'), uploader('tus')];
  allowed = 4;
  await waitFor(() => inflight > 0 && ackedNames().size >= 17);
  const before1 = ackedNames();
  const b1 = parseCreated(await runBackup());
  await waitFor(() => allowed === 0);
  allowed = 4;
  await waitFor(() => inflight > 0 && ackedNames().size >= before1.size + 2);
  const before2 = ackedNames();
  const b2 = parseCreated(await runBackup());
  stop = true;
  await Promise.all(workers);
  assert.equal(b1.id, 1);
  assert.equal(b2.id, 2);
  const newBytes = [...attempted].filter(([n]) => !before1.has(n)).reduce((t, [, a]) => t + a.data.length, 0);
  console.log(`online: ${attempted.size} uploads; backup 1 ${b1.size} bytes (${before1.size} acknowledged before it), backup 2 ${b2.size} bytes, ${b2.copied} copied (${before2.size} before it; ${newBytes} bytes uploaded after backup 1 began)`);
  assert.ok(b2.copied < b1.size, `incremental backup copied ${b2.copied} bytes, the first one holds ${b1.size}`);
  checkPrivate(dir); // written by the server process
  assert.equal(backup(['verify', dir], S.configPath).status, 0);
  await S.stop();

  const R = await serverFor(path.join(S.dir, 'master.key'));
  const r = backup(['restore', dir, '--to', R.dataDir], R.configPath);
  assert.equal(r.status, 0, r.stderr);
  await R.start();
  const { token: tr } = await R.login();
  const listed = await listAll(R, tr, root);
  const names = new Set(listed.map((n) => n.name));
  for (const name of before2) assert.ok(names.has(name), `${name} was acknowledged before backup 2 began but is not in it`);
  for (const n of listed) {
    const a = attempted.get(n.name);
    assert.ok(a, `${n.name} is in the restore but was never uploaded`);
    assert.equal(n.size, a.data.length, `${n.name}: partial in the restore`);
    const d = await R.request('GET', `/api/v1/files/${n.id}/content`, { token: tr });
    assert.equal(d.status, 200);
    assert.equal(sha256(d.body), sha256(a.data), `${n.name} differs in the restore`);
  }
  console.log(`restore of backup 2: ${listed.length} files (${before2.size} acknowledged before it began, ${listed.length - before2.size} committed while it ran)`);
  await R.stop();
  const av = cli(['audit', 'verify', '-c', R.configPath]);
  assert.equal(av.status, 0, av.stderr);
  assert.match(av.stdout, /^ok: \d+ events\n$/);
  const fk = cli(['fsck', '-c', R.configPath]);
  assert.equal(fk.status, 0, `${fk.stdout}${fk.stderr}`);
  assert.equal(JSON.parse(fk.stdout).versions, listed.length);
  console.log(`online test: ${Date.now() - t0} ms`);
});
