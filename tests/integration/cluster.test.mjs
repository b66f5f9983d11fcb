// Two Coffer nodes over one store (issue 24, "Done when", the cross-node lines; docs/CLUSTER.md
// "Local test cluster"): scripts/cluster.sh up starts, in a directory of this test's own, a Ceph
// monitor with 3 memstore OSDs, a PostgreSQL instance and two nodes A and B whose metadata is in the
// database and chunk bodies in the pool; after() runs scripts/cluster.sh down. Every test drives both
// nodes with real clients and asserts exact statuses and bytes:
//   - a multi-chunk upload on A downloads byte-identical from B (and the other way);
//   - a share link revoked on A is refused by B on its very next request;
//   - a session opened on A works on B, and a logout on B ends it on A;
//   - ten wrong passwords split over A and B throttle the account on both;
//   - a tus upload started on A (creation + first PATCH) is finished on B, byte-identical;
//   - node A killed (SIGKILL) mid-download: the client resumes on B with Range and gets the right
//     bytes; A is started again and serves;
//   - one OSD killed: uploads and downloads go on through both nodes;
//   - PostgreSQL stopped under the running nodes: reads and writes answer 503 (no hang, no exit);
//     once it is back, reads and writes succeed on both nodes;
//   - the provenance chain, holding events written through each node, verifies (`coffer audit
//     verify`, which also checks the metadata journal, against the running cluster, and again at rest);
//     a link revoked on A at the start is still refused on both nodes at the end;
//   - no planted name or content (in file and folder names, tus metadata and bodies, also across a
//     chunk boundary) in a pg_dump of the database or in any object of the RADOS pool;
//   - both nodes stop cleanly on SIGTERM, with no sanitizer report in their logs.
// No fixed sleeps: waits poll a condition until a generous deadline (ASan build, loaded machine).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Server, CHUNK, bigBytes, sha256, cli, repoRoot, withDeadline, markedBytes } from './lib/harness.mjs';

const SCRIPT = path.join(repoRoot, 'scripts', 'cluster.sh');
// Short: PostgreSQL's unix socket and Ceph's admin sockets live under it (sun_path is 108 bytes).
const DIR = fs.mkdtempSync(path.join(process.env.COFFER_TEST_TMP || os.tmpdir(), 'cf-cl-'));
const DEADLINE_MS = 180000; // any one wait on the cluster (a node's restart, the database's return)
const REQUEST_MS = 120000; // one request: a hang is a failure, not a wait

const MARK = crypto.randomBytes(6).toString('hex');
const NAME_MARK = `PLANTED-NAME-${MARK}`;
const BODY_MARK = `PLANTED-BODY-${MARK}`;
const MARKS = [NAME_MARK, BODY_MARK, `folder-${NAME_MARK}`];

let env = {}; // var/cluster/env of this cluster, re-read after each restart
let A, B; // the two nodes, as harness clients (requests only: the processes are cluster.sh's)
let adminA, adminB; // an admin session opened on each node
let folder; // a folder (its name planted) that the tests upload into
const uploaded = []; // {id, data, name}: every file stored, checked again after the faults
let revoked; // {token, access, code} of the link revoked on A: it stays refused on both nodes
const wrote = new Set(); // events written through one node by the tests so far ('share.revoke' on A, 'auth.logout' on B)

/** Runs scripts/cluster.sh with args in this test's directory; returns its output, throws on failure. */
function cluster(...args) {
  const r = spawnSync(SCRIPT, args, {
    env: { ...process.env, CLUSTER_DIR: DIR, CLUSTER_NODES: '2', CLUSTER_DEADLINE: String(DEADLINE_MS / 1000) },
    encoding: 'utf8', timeout: 900000,
  });
  if (r.status !== 0) throw new Error(`cluster.sh ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
  readEnv();
  return r.stderr;
}

/** The variables of a shell-syntax env file (VAR='value' lines). */
function envFile(file) {
  const out = {};
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^(\w+)='(.*)'$/.exec(line);
    if (m) out[m[1]] = m[2];
  }
  return out;
}

function readEnv() {
  if (fs.existsSync(path.join(DIR, 'env'))) env = envFile(path.join(DIR, 'env'));
}

const nodePids = () => env.COFFER_NODE_PIDS.split(' ').map(Number);
const configs = () => env.COFFER_CONFIGS.split(' ');

/** Whether PID is a live process (a zombie waiting to be reaped is not). */
function alive(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]$/.test(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0]);
  } catch { return false; }
}

/** Polls fn (async, returns a truthy value when done) until it is done or the deadline passes. */
async function until(what, fn, ms = DEADLINE_MS) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e; }
    if (Date.now() > end) throw new Error(`${what}: not after ${ms} ms (last: ${last && (last.message || JSON.stringify(last))})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** One request with a deadline: a hung request fails the test, naming itself. */
function req(node, method, p, opts = {}) {
  return withDeadline(node.request(method, p, opts), REQUEST_MS, () => `${method} ${p} on ${node.url}`);
}

/** Drops a node's client connections (after its process was killed or the database restarted). */
function forget(node) {
  for (const s of node.sessions) s.destroy();
  node.sessions.clear();
  node.h2 = null;
}

/** Content with the marker at the start, across every chunk boundary and at the end (lib/harness.mjs). */
const content = (n, seed) => markedBytes(n, seed, BODY_MARK);

async function upload(node, token, name, data) {
  const r = await req(node, 'POST', `/api/v1/files?parent=${folder}&name=${encodeURIComponent(name)}`, { token, body: data });
  assert.equal(r.status, 201, `upload of ${name} on ${node.url}: ${r.status} ${r.text()}`);
  assert.equal(r.json().sha256, sha256(data));
  const f = { id: r.json().id, data, name };
  uploaded.push(f);
  return f;
}

async function assertDownload(node, token, f, what) {
  const r = await req(node, 'GET', `/api/v1/files/${f.id}/content`, { token });
  assert.equal(r.status, 200, `${what}: download of ${f.name} on ${node.url}: ${r.status}`);
  assert.equal(r.body.length, f.data.length, `${what}: length of ${f.name}`);
  assert.ok(r.body.equals(f.data), `${what}: ${f.name} byte-identical`);
}

async function login(node, username, password) {
  const r = await req(node, 'POST', '/api/v1/auth/login', { body: { username, password } });
  assert.equal(r.status, 200, `login of ${username} on ${node.url}: ${r.status} ${r.text()}`);
  return r.json().token;
}

before(async () => {
  const out = cluster('up');
  process.stderr.write(out.split('\n').filter((l) => / up in /.test(l)).join('\n') + '\n'); // how long it took
  const urls = env.COFFER_NODES.split(' ');
  assert.equal(urls.length, 2, 'two nodes');
  [A, B] = urls.map((u) => { const s = new Server({ dir: DIR, clusterNode: true }); s.port = Number(new URL(u).port); return s; });
  adminA = await login(A, 'admin', env.COFFER_ADMIN_PASSWORD);
  adminB = await login(B, 'admin', env.COFFER_ADMIN_PASSWORD);
  const spaces = await req(A, 'GET', '/api/v1/spaces', { token: adminA });
  assert.equal(spaces.status, 200);
  const r = await req(B, 'POST', '/api/v1/folders', { token: adminB, body: { parent: spaces.json().private.root, name: `folder-${NAME_MARK}` } });
  assert.equal(r.status, 201, r.text());
  folder = r.json().id;
});

// A run stopped from outside (meson's timeout, ^C) skips after(): `down` then runs detached, in a
// session of its own, so that it outlives this process (the test runner may kill it next, and a
// signal to the process group may have stopped a cluster.sh it was waiting for).
let stopping = false;
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    spawn(SCRIPT, ['down'], { env: { ...process.env, CLUSTER_DIR: DIR }, detached: true, stdio: 'ignore' }).unref();
    process.exit(1);
  });
}

after(() => {
  for (const n of [A, B]) if (n) forget(n);
  // Keep the nodes' logs for a failed run (the directory goes with down).
  const art = process.env.COFFER_ARTIFACTS;
  if (art) {
    try {
      fs.mkdirSync(path.join(art, 'cluster'), { recursive: true });
      for (const n of [1, 2]) {
        const log = path.join(DIR, `node${n}`, 'serve.log');
        if (fs.existsSync(log)) fs.copyFileSync(log, path.join(art, 'cluster', `node${n}.log`));
      }
    } catch { /* best effort */ }
  }
  try { cluster('down'); } finally { fs.rmSync(DIR, { recursive: true, force: true }); }
});

test('upload on A, download on B byte-identical (multi-chunk), and the other way', async () => {
  const f1 = await upload(A, adminA, `${NAME_MARK}-a.bin`, content(3 * CHUNK + 17, 1));
  await assertDownload(B, adminB, f1, 'A→B');
  const f2 = await upload(B, adminB, `${NAME_MARK}-b.bin`, content(2 * CHUNK + 5, 2));
  await assertDownload(A, adminA, f2, 'B→A');
  // A listing on either node shows both (B's cached listing follows A's write, and back).
  for (const [n, t] of [[A, adminA], [B, adminB]]) {
    const l = await req(n, 'GET', `/api/v1/nodes/${folder}/children`, { token: t });
    assert.equal(l.status, 200);
    assert.deepEqual(l.json().items.map((x) => x.name).sort(), [f1.name, f2.name].sort());
  }
});

test('a share link revoked on A is refused by B on the very next request', async () => {
  const f = uploaded[0] || await upload(A, adminA, `${NAME_MARK}-share.bin`, content(CHUNK + 3, 3));
  const sr = await req(A, 'POST', '/api/v1/shares', { token: adminA, body: { node: f.id, permission: 'download' } });
  assert.equal(sr.status, 201, sr.text());
  const share = sr.json();
  const token = share.url.slice(share.url.indexOf('/s/') + 3);
  const un = await req(B, 'POST', `/s/${token}/unlock`, { body: { code: share.code } });
  assert.equal(un.status, 200, un.text());
  const access = un.json().access_token;
  // B serves the link (and has it cached) right before the revocation.
  const got = await req(B, 'GET', `/s/${token}/content`, { token: access });
  assert.equal(got.status, 200);
  assert.ok(got.body.equals(f.data), 'the link gives the exact bytes on B');
  const del = await req(A, 'DELETE', `/api/v1/shares/${share.id}`, { token: adminA });
  assert.equal(del.status, 204, del.text());
  const refused = await req(B, 'GET', `/s/${token}/content`, { token: access });
  assert.equal(refused.status, 410, `B after the revocation on A: ${refused.status} ${refused.text()}`);
  assert.equal(refused.json().error, 'revoked');
  const unlock = await req(B, 'POST', `/s/${token}/unlock`, { body: { code: share.code } });
  assert.equal(unlock.status, 410, `unlock on B after the revocation: ${unlock.status}`);
  revoked = { token, access, code: share.code };
  wrote.add('share.revoke');
});

test('a session opened on A works on B; a logout on B ends it on A', async () => {
  const token = await login(A, 'admin', env.COFFER_ADMIN_PASSWORD);
  for (const n of [A, B, A]) { // A has it cached when B ends it
    const me = await req(n, 'GET', '/api/v1/me', { token });
    assert.equal(me.status, 200, `GET /me on ${n.url}: ${me.status}`);
    assert.equal(me.json().username, 'admin');
  }
  const out = await req(B, 'POST', '/api/v1/auth/logout', { token });
  assert.equal(out.status, 204, out.text());
  wrote.add('auth.logout');
  for (const n of [A, B]) {
    const me = await req(n, 'GET', '/api/v1/me', { token });
    assert.equal(me.status, 401, `the ended session on ${n.url}: ${me.status}`);
  }
});

test('ten wrong passwords split over A and B throttle the account on both nodes', async () => {
  const username = `throttled-${MARK}`;
  const password = 'Right-password-of-the-test-1';
  const cr = await req(A, 'POST', '/api/v1/admin/users', { token: adminA, body: { username, password } });
  assert.equal(cr.status, 201, cr.text());
  for (let i = 0; i < 10; i++) {
    const n = i % 2 ? B : A;
    const r = await req(n, 'POST', '/api/v1/auth/login', { body: { username, password: `wrong-${i}-password` } });
    assert.equal(r.status, 401, `wrong password ${i + 1} on ${n.url}: ${r.status} ${r.text()}`);
  }
  // Five failures were seen by each node: only a count shared by the nodes reaches the limit of 10.
  for (const n of [A, B]) {
    const r = await req(n, 'POST', '/api/v1/auth/login', { body: { username, password } });
    assert.equal(r.status, 429, `the right password after 10 failures over both nodes, on ${n.url}: ${r.status}`);
    assert.equal(r.json().error, 'rate_limited');
    assert.match(String(r.headers['retry-after']), /^[1-9][0-9]*$/);
  }
});

test('a tus upload started on A is finished on B, byte-identical', async () => {
  const data = content(3 * CHUNK + 1000, 4);
  const name = `${NAME_MARK}-tus.bin`;
  const b64 = (s) => Buffer.from(s).toString('base64');
  const tus = { 'tus-resumable': '1.0.0' };
  const cr = await req(A, 'POST', '/api/v1/uploads', {
    token: adminA,
    headers: { ...tus, 'upload-length': String(data.length), 'upload-metadata': `filename ${b64(name)},parent ${b64(folder)}` },
  });
  assert.equal(cr.status, 201, cr.text());
  const loc = cr.headers.location;
  assert.match(loc, /^\/api\/v1\/uploads\/[0-9a-f]+$/);
  const first = CHUNK + CHUNK / 2; // ends inside the second chunk: B continues a partial chunk
  const p1 = await req(A, 'PATCH', loc, {
    token: adminA, body: data.subarray(0, first),
    headers: { ...tus, 'content-type': 'application/offset+octet-stream', 'upload-offset': '0' },
  });
  assert.equal(p1.status, 204, p1.text());
  assert.equal(p1.headers['upload-offset'], String(first));
  const head = await req(B, 'HEAD', loc, { token: adminB, headers: tus });
  assert.equal(head.status, 200);
  assert.equal(head.headers['upload-offset'], String(first), 'B sees where A stopped');
  assert.equal(head.headers['upload-length'], String(data.length));
  const p2 = await req(B, 'PATCH', loc, {
    token: adminB, body: data.subarray(first),
    headers: { ...tus, 'content-type': 'application/offset+octet-stream', 'upload-offset': String(first) },
  });
  assert.equal(p2.status, 204, p2.text());
  assert.equal(p2.headers['upload-offset'], String(data.length));
  const id = p2.headers['coffer-node-id'];
  assert.match(String(id), /^[0-9a-f]+$/, 'the completing PATCH names the file');
  const f = { id, data, name };
  uploaded.push(f);
  await assertDownload(A, adminA, f, 'tus A→B, read on A');
  await assertDownload(B, adminB, f, 'tus A→B, read on B');
  // One left unfinished (its planted name in the upload's state, its first 1.5 chunks stored) for
  // the plaintext test at the end.
  const open = await req(B, 'POST', '/api/v1/uploads', {
    token: adminB,
    headers: { ...tus, 'upload-length': String(data.length), 'upload-metadata': `filename ${b64(`${NAME_MARK}-unfinished.bin`)},parent ${b64(folder)}` },
  });
  assert.equal(open.status, 201, open.text());
  const op = await req(B, 'PATCH', open.headers.location, {
    token: adminB, body: data.subarray(0, first),
    headers: { ...tus, 'content-type': 'application/offset+octet-stream', 'upload-offset': '0' },
  });
  assert.equal(op.status, 204, op.text());
  const oh = await req(A, 'HEAD', open.headers.location, { token: adminA, headers: tus });
  assert.equal(oh.headers['upload-offset'], String(first), 'A sees the unfinished upload where B left it');
});

/** Both nodes run (a test that needs them fails with this, not with a refused connection). */
function bothRunning() {
  nodePids().forEach((p, i) => assert.ok(alive(p), `node ${i + 1} (pid ${p}) is not running: see the failures above`));
}

test('one OSD killed: uploads and downloads go on through both nodes', async () => {
  bothRunning();
  const osds = env.CEPH_OSD_PIDS.split(' ').map(Number);
  assert.equal(osds.length, 3);
  const victim = osds[1];
  const id = envFile(path.join(DIR, 'ceph', 'env')).CEPH_OSD_IDS.split(' ')[1]; // same order as the PIDs
  process.kill(victim, 'SIGKILL');
  await until('the OSD exited', () => !alive(victim));
  try {
    const fa = await upload(A, adminA, `${NAME_MARK}-osd-a.bin`, content(2 * CHUNK + 11, 7));
    const fb = await upload(B, adminB, `${NAME_MARK}-osd-b.bin`, content(2 * CHUNK + 12, 8));
    await assertDownload(B, adminB, fa, 'one OSD down');
    await assertDownload(A, adminA, fb, 'one OSD down');
    for (const f of uploaded.slice(0, 3)) await assertDownload(A, adminA, f, 'one OSD down, stored before');
  } finally {
    cluster('osd-start', id);
  }
});

test('PostgreSQL restarted: 503 meanwhile (no hang, no exit), reads and writes succeed after on both nodes', async () => {
  bothRunning();
  const pids = nodePids();
  const f = uploaded[0];
  cluster('pg-stop');
  try {
    for (const [n, t] of [[A, adminA], [B, adminB]]) {
      const list = await req(n, 'GET', `/api/v1/nodes/${folder}/children`, { token: t });
      assert.equal(list.status, 503, `listing on ${n.url} with the database down: ${list.status} ${list.text()}`);
      assert.equal(list.json().error, 'unavailable');
      const dl = await req(n, 'GET', `/api/v1/files/${f.id}/content`, { token: t });
      assert.equal(dl.status, 503, `download on ${n.url} with the database down: ${dl.status}`);
      const up = await req(n, 'POST', `/api/v1/files?parent=${folder}&name=refused.bin`, { token: t, body: Buffer.from('never stored') });
      assert.equal(up.status, 503, `upload on ${n.url} with the database down: ${up.status} ${up.text()}`);
    }
    pids.forEach((p, i) => assert.ok(alive(p), `node ${i + 1} still runs with the database down`));
  } finally {
    cluster('pg-start');
  }
  // Back: each node answers reads again (polled: a node may need a moment to reconnect)…
  for (const [n, t] of [[A, adminA], [B, adminB]]) {
    await until(`reads on ${n.url} after the database's return`, async () => {
      const r = await req(n, 'GET', `/api/v1/nodes/${folder}/children`, { token: t });
      assert.ok(r.status === 200 || r.status === 503, `listing on ${n.url} after the restart: ${r.status}`);
      return r.status === 200;
    });
  }
  // …and writes: a first one on each node may still meet a connection that died with the database
  // (503, as while it was down, and nothing else), then they succeed…
  for (const [i, n, t] of [[1, A, adminA], [2, B, adminB]]) {
    await until(`writes on ${n.url} after the database's return`, async () => {
      const data = content(100, 11);
      const name = encodeURIComponent(`${NAME_MARK}-probe-${i}`);
      const r = await req(n, 'POST', `/api/v1/files?parent=${folder}&name=${name}&on_conflict=replace`, { token: t, body: data });
      assert.ok(r.status === 201 || r.status === 503, `an upload on ${n.url} after the restart: ${r.status} ${r.text()}`);
      return r.status === 201;
    });
  }
  // …every time, through both, each read back on the other node.
  const fa = await upload(A, adminA, `${NAME_MARK}-after-pg-a.bin`, content(CHUNK + 1, 9));
  const fb = await upload(B, adminB, `${NAME_MARK}-after-pg-b.bin`, content(CHUNK + 2, 10));
  await assertDownload(B, adminB, fa, 'after the database restart');
  await assertDownload(A, adminA, fb, 'after the database restart');
  pids.forEach((p, i) => assert.ok(alive(p), `node ${i + 1} still runs after the database restart`));
  const l = await req(A, 'GET', `/api/v1/nodes/${folder}/children`, { token: adminA });
  assert.ok(!l.json().items.some((x) => x.name === 'refused.bin'), 'the refused upload is not there');
});

test('node A killed mid-download: the client resumes on B with Range and gets the right bytes', async () => {
  bothRunning();
  const f = await upload(A, adminA, `${NAME_MARK}-big.bin`, content(12 * CHUNK + 333, 5));
  const [pidA] = nodePids();
  // The download on a connection of its own, paused after its first bytes: the server is held by
  // flow control with most of the file unsent when its process is killed.
  const session = A.connect();
  session.on('error', () => {});
  const got = [];
  let received = 0;
  let status;
  const ended = new Promise((resolve) => {
    const s = session.request({ ':method': 'GET', ':path': `/api/v1/files/${f.id}/content`, authorization: `Bearer ${adminA}` });
    s.on('response', (h) => { status = h[':status']; });
    s.on('data', (c) => {
      got.push(c);
      received += c.length;
      if (received >= 65536 && !s.isPaused() && alive(pidA)) {
        s.pause();
        process.kill(pidA, 'SIGKILL');
        // The paused stream learns nothing more: the connection's end settles it.
        session.destroy();
      }
    });
    s.on('end', () => resolve('end'));
    s.on('close', () => resolve('close'));
    s.on('error', () => resolve('error'));
  });
  const how = await withDeadline(ended, REQUEST_MS, () => 'the interrupted download');
  await until('node A exited', () => !alive(pidA));
  const part = Buffer.concat(got);
  assert.equal(status, 200, 'the download had begun');
  assert.ok(part.length >= 65536 && part.length < f.data.length, `mid-download: ${part.length} of ${f.data.length} bytes (${how})`);
  assert.ok(part.equals(f.data.subarray(0, part.length)), 'the bytes before the kill are right');
  // The client retries on B from where it stopped.
  const rest = await req(B, 'GET', `/api/v1/files/${f.id}/content`, { token: adminB, headers: { range: `bytes=${part.length}-` } });
  assert.equal(rest.status, 206, `the Range retry on B: ${rest.status}`);
  assert.equal(rest.headers['content-range'], `bytes ${part.length}-${f.data.length - 1}/${f.data.length}`);
  assert.ok(Buffer.concat([part, rest.body]).equals(f.data), 'the resumed download is byte-identical');
  // B goes on serving while A is away, and A, started again, serves what B wrote meanwhile.
  const f2 = await upload(B, adminB, `${NAME_MARK}-while-a-down.bin`, content(CHUNK + 99, 6));
  forget(A);
  cluster('node-start', '1');
  assert.notEqual(nodePids()[0], pidA);
  await assertDownload(A, adminA, f2, 'A after its restart');
  await assertDownload(A, adminA, f, 'A after its restart');
});

test('the provenance chain holds events written through each node and verifies', async () => {
  // (First: the link revoked on A long ago is still refused on both nodes: no later write of B's,
  // such as its byte accounting of the last download, brought it back.)
  if (revoked) {
    for (const n of [A, B]) {
      const r = await req(n, 'GET', `/s/${revoked.token}/content`, { token: revoked.access });
      assert.equal(r.status, 410, `the revoked link on ${n.url} at the end: ${r.status}`);
    }
  }
  const r = await req(B, 'GET', '/api/v1/audit?action=file.upload&limit=1000', { token: adminB });
  assert.equal(r.status, 200, r.text());
  const events = r.json().events;
  const ids = new Set(events.map((e) => e.node && e.node.id));
  const seen = events.map((e) => `${e.seq}:${e.node && e.node.id}`).join(' ');
  // uploaded[0] went through A, uploaded[1] through B (the first test).
  assert.ok(uploaded.length >= 2, 'the first test stored its files');
  assert.ok(ids.has(uploaded[0].id), `an upload through A (${uploaded[0].id}) is in the chain: ${seen}`);
  assert.ok(ids.has(uploaded[1].id), `an upload through B (${uploaded[1].id}) is in the chain: ${seen}`);
  // And the other way: a revocation written through A, a logout through B (the second and third tests).
  const other = await req(A, 'GET', '/api/v1/audit?action=share.revoke,auth.logout&limit=1000', { token: adminA });
  assert.equal(other.status, 200, other.text());
  const actions = new Set(other.json().events.map((e) => e.action));
  for (const a of wrote) assert.ok(actions.has(a), `${a} in the log (found: ${[...actions].join(',')})`);
  for (const c of configs()) {
    const av = cli(['audit', 'verify', '-c', c]);
    assert.equal(av.status, 0, `audit verify -c ${c}: ${av.stderr}`);
    const m = /^ok: (\d+) events\n$/.exec(av.stdout);
    assert.ok(m, av.stdout);
    assert.ok(Number(m[1]) >= uploaded.length, `${m[1]} events`);
  }
});

test('no planted name or content in a pg_dump of the database or in any object of the pool', async () => {
  const needles = [];
  for (const m of MARKS) needles.push(Buffer.from(m), Buffer.from(Buffer.from(m).toString('hex')), Buffer.from(m).toString('base64'));
  const pgBin = (name) => {
    const vers = fs.readdirSync('/usr/lib/postgresql').filter((v) => fs.existsSync(`/usr/lib/postgresql/${v}/bin/${name}`));
    vers.sort((a, b) => Number(b) - Number(a));
    return vers.length ? `/usr/lib/postgresql/${vers[0]}/bin/${name}` : name;
  };
  // The database: the superuser's dump over the instance's unix socket (bytea as hex).
  const dump = spawnSync(pgBin('pg_dump'), ['-h', path.join(DIR, 'pg'), '-p', env.PGPORT, '-U', 'postgres', '-d', env.PGDATABASE],
    { timeout: 300000, maxBuffer: 1 << 30 });
  assert.equal(dump.status, 0, String(dump.stderr));
  assert.ok(dump.stdout.length > 10000, 'a dump with content');
  const lower = Buffer.from(dump.stdout.toString('latin1').toLowerCase(), 'latin1');
  for (const n of needles) {
    assert.ok(!dump.stdout.includes(n) && !lower.includes(Buffer.from(String(n).toLowerCase())), `${n} in the pg_dump`);
  }
  // The pool: every object, as the storage administrator (client.admin) reads it.
  const rados = (...args) => spawnSync('rados', ['--conf', env.CEPH_CONF, '--keyring', env.CEPH_KEYRING, '--rados-osd-op-timeout', '60',
    '-p', env.COFFER_RADOS_POOL, ...args], { timeout: 120000, maxBuffer: 1 << 28 });
  const ls = rados('ls', '--all');
  assert.equal(ls.status, 0, String(ls.stderr));
  const objects = ls.stdout.toString().split('\n').filter(Boolean).map((l) => l.split('\t'));
  // At least one object per stored chunk of every file uploaded.
  const chunks = uploaded.reduce((s, f) => s + Math.ceil(f.data.length / CHUNK), 0);
  assert.ok(objects.length >= chunks, `${objects.length} objects for ${chunks} chunks`);
  let bytes = 0;
  for (const o of objects) {
    const [ns, name] = o.length === 2 ? o : ['', o[0]];
    const g = rados('-N', ns, 'get', name, '-');
    assert.equal(g.status, 0, `rados get ${ns}/${name}: ${g.stderr}`);
    bytes += g.stdout.length;
    for (const n of needles) assert.ok(!g.stdout.includes(n), `${n} in object ${ns}/${name}`);
    assert.ok(!name.includes(MARK), `the marker in the object name ${name}`);
  }
  const total = uploaded.reduce((s, f) => s + f.data.length, 0);
  assert.ok(bytes >= total, `the pool holds ${bytes} bytes for ${total} bytes uploaded`);
});

test('both nodes stop cleanly on SIGTERM, neither reported a sanitizer error, the chain verifies at rest', async () => {
  const pids = nodePids();
  const logs = [1, 2].map((n) => path.join(DIR, `node${n}`, 'serve.log'));
  const from = logs.map((l) => fs.readFileSync(l, 'utf8').length);
  for (const p of pids) if (alive(p)) process.kill(p, 'SIGTERM');
  for (const p of pids) await until(`node pid ${p} exited after SIGTERM`, () => !alive(p));
  logs.forEach((l, i) => {
    const log = fs.readFileSync(l, 'utf8');
    // (LeakSanitizer reports at exit: the whole log is read after it.)
    assert.ok(!/ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: UndefinedBehaviorSanitizer/.test(log), `node ${i + 1}:\n${log.slice(-3000)}`);
    assert.match(log.slice(from[i]), /coffer\[info\]: stopped\n/, `node ${i + 1} stopped cleanly:\n${log.slice(-2000)}`);
  });
  // With no node running, nothing writes: the chain and the journal verify at rest too.
  const av = cli(['audit', 'verify', '-c', configs()[1]]);
  assert.equal(av.status, 0, `audit verify with both nodes stopped: ${av.stderr}`);
  assert.match(av.stdout, /^ok: \d+ events\n$/);
});
