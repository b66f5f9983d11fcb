// Tampering with the store (SPEC §4, API.md "download"): chunks flipped, swapped, reordered,
// truncated, deleted or moved between files, and node records altered or moved, must never make the
// server hand out wrong bytes. A failure before the first byte answers 500 {"error":"internal"}; a
// failure after the headers aborts the stream (HTTP/2 RST_STREAM, HTTP/1.1 connection close), so a
// client only ever holds a prefix of the real content. The server stays up and serves everything
// else; its log names the failure but neither the file's name nor its content.
//
// Each case runs on a fresh server: upload, stop, edit the `chunks` or `nodes` column family with
// cf-dbtool, restart, download over HTTP/2, HTTP/1.1 and curl.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import path from 'node:path';
import { Server, CHUNK, bigBytes, curl, dbtool, withDeadline } from './lib/harness.mjs';

const SIZE = 3 * CHUNK + 1234; // 3 full chunks + 1 partial
const NAME = 'tamper-target-Q7ZK.bin';
const CONTROL_NAME = 'control-file-Q7ZK.bin';
const CONTROL_SIZE = 2 * CHUNK + 5;
const TIMEOUT = 30000;

const servers = [];
after(async () => {
  let first = null;
  for (const s of servers) {
    try { await s.stop(); } catch (e) { first = first || e; }
    s.cleanup();
  }
  if (first) throw first;
});

// ---- cf-dbtool ------------------------------------------------------------------------------

function tool(args, input) {
  const r = spawnSync(dbtool, args, { input, maxBuffer: 1 << 28, timeout: 60000 });
  if (r.status !== 0) throw new Error(`cf-dbtool ${args.slice(1, 4).join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout.toString();
}
/** [{key (hex), len}] in key order. */
function dbKeys(dir, cf) {
  return tool([dir, 'keys', cf]).split('\n').filter(Boolean).map((l) => {
    const [key, len] = l.split(' ');
    return { key, len: Number(len) };
  });
}
function dbGet(dir, cf, key) { return Buffer.from(tool([dir, 'get', cf, key]).trim(), 'hex'); }
function dbPut(dir, cf, key, val) { tool([dir, 'put', cf, key, '-'], val.toString('hex')); }
function dbDelete(dir, cf, key) { tool([dir, 'delete', cf, key]); }

/** Chunk keys grouped by content (tenant ‖ content, 32 bytes): Map prefix → [key of index 0, 1, …]. */
function chunkGroups(dir) {
  const groups = new Map();
  for (const { key } of dbKeys(dir, 'chunks')) {
    assert.equal(key.length, 72, `chunk key ${key} is not 36 bytes`);
    const prefix = key.slice(0, 64);
    const index = parseInt(key.slice(64), 16);
    if (!groups.has(prefix)) groups.set(prefix, []);
    groups.get(prefix)[index] = key;
  }
  return groups;
}

function flipBit(buf, offset, bit = 0) {
  const b = Buffer.from(buf);
  b[offset] ^= 1 << bit;
  return b;
}

// ---- clients that never throw: they report what arrived ------------------------------------------

/** GET over HTTP/2 on a fresh connection: {status, headers, body, complete, rstCode, error}. */
function h2getRaw(server, token, urlPath, headers = {}) {
  return new Promise((resolve) => {
    const session = http2.connect(server.url, { rejectUnauthorized: false });
    const chunks = [];
    let status, hdrs, ended = false, error = null, done = false;
    const finish = (extra = {}) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      session.destroy();
      const body = Buffer.concat(chunks);
      resolve({ status, headers: hdrs, body, complete: ended && !error && !extra.rstCode, error, ...extra });
    };
    const timer = setTimeout(() => finish({ error: new Error('timeout') }), TIMEOUT);
    session.on('error', (e) => { error = error || e; finish(); });
    const req = session.request({ ':method': 'GET', ':path': urlPath, authorization: `Bearer ${token}`, ...headers });
    req.on('response', (h) => { status = h[':status']; hdrs = h; });
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => { ended = true; });
    req.on('error', (e) => { error = error || e; });
    req.on('close', () => finish({ rstCode: req.rstCode || 0 }));
    req.end();
  });
}

/** GET over HTTP/1.1 on a fresh connection: {status, headers, body, complete, error}. */
function h1getRaw(server, token, urlPath, headers = {}) {
  return new Promise((resolve) => {
    const chunks = [];
    let status, hdrs, ended = false, aborted = false, error = null, done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const body = Buffer.concat(chunks);
      const cl = hdrs && hdrs['content-length'] !== undefined ? Number(hdrs['content-length']) : null;
      resolve({ status, headers: hdrs, body, complete: ended && !aborted && !error && (cl === null || cl === body.length), error, aborted });
    };
    const timer = setTimeout(() => { error = new Error('timeout'); req.destroy(); finish(); }, TIMEOUT);
    const req = https.request(server.url + urlPath, { method: 'GET', headers: { authorization: `Bearer ${token}`, ...headers }, rejectUnauthorized: false, agent: false }, (res) => {
      status = res.statusCode;
      hdrs = res.headers;
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => { ended = true; });
      res.on('aborted', () => { aborted = true; });
      res.on('error', (e) => { error = error || e; });
      res.on('close', finish);
    });
    req.on('error', (e) => { error = error || e; finish(); });
    req.end();
  });
}

/** After a failed transfer, a server that crashed on it is seen as dead: it answers no more (one
 *  request decides, an event rather than a pause), and then its exit is awaited. */
async function settle(server, r) {
  if (!r.complete) {
    const alive = await server.request('GET', '/healthz', { h1: true }).then(() => true, () => false);
    if (!alive) await withDeadline(server.exited, 60000, () => 'the exit of a server that stopped answering').catch(() => {});
  }
  return r;
}

const h2get = async (server, ...rest) => settle(server, await h2getRaw(server, ...rest));
const h1get = async (server, ...rest) => settle(server, await h1getRaw(server, ...rest));

function serverState(server) {
  if (server.proc && server.proc.exitCode === null && server.proc.signalCode === null) return 'running';
  return `server died (${server.proc.exitCode ?? server.proc.signalCode}); stderr tail:\n${server.stderr.slice(-1500)}`;
}

/**
 * Asserts one failed download. expected: the bytes the request asks for (whole file or range slice).
 * firstBad: the index of the first chunk that fails, relative to the chunks the request reads
 * (0 = the first chunk read fails → 500 before any byte; k > 0 → 200/206, then an abort after at
 * most `limit` bytes).
 */
function assertFailed(r, what, server, { expected, early, okStatus = 200, limit }) {
  const ctx = `${what}: status ${r.status}, ${r.body.length} bytes, complete ${r.complete}, ` +
    `error ${r.error && r.error.message}, rst ${r.rstCode} (${serverState(server)})`;
  assert.ok(r.status !== undefined, `${ctx}: no response at all`);
  if (early) {
    assert.equal(r.status, 500, ctx);
    assert.ok(r.complete, `${ctx}: the 500 must be a complete response`);
    const j = JSON.parse(r.body.toString('utf8'));
    assert.deepEqual(Object.keys(j).sort(), ['error', 'message'], ctx);
    assert.equal(j.error, 'internal', ctx);
    assert.equal(r.headers['content-type'], 'application/json', ctx);
    // An error is not the file: no attachment disposition, no validator of the file's content.
    assert.equal(r.headers['content-disposition'], undefined, `${ctx}: an error response must not be a file attachment`);
    assert.equal(r.headers.etag, undefined, `${ctx}: an error response must not carry the file's ETag`);
    assert.equal(serverState(server), 'running', `${what}: the server must survive`);
    return;
  }
  assert.equal(r.status, okStatus, ctx);
  assert.equal(Number(r.headers['content-length']), expected.length, ctx);
  assert.equal(r.complete, false, `${ctx}: the stream must be aborted`);
  assert.ok(r.body.length < expected.length, `${ctx}: must not receive everything`);
  assert.ok(r.body.length <= limit, `${ctx}: received ${r.body.length} bytes, more than the ${limit} before the bad chunk`);
  assert.ok(r.body.equals(expected.subarray(0, r.body.length)), `${ctx}: received bytes are not a prefix of the content`);
  assert.equal(serverState(server), 'running', `${what}: the server must survive`);
}

function assertCurlFailed(server, token, id, what, expected, h2 = true) {
  const out = path.join(server.dir, `curl-${Math.random().toString(16).slice(2)}.out`);
  const r = curl([h2 ? '--http2' : '--http1.1', '-f', '-H', `Authorization: Bearer ${token}`, '-o', out,
    `${server.url}/api/v1/files/${id}/content`]);
  const got = fs.existsSync(out) ? fs.readFileSync(out) : Buffer.alloc(0);
  fs.rmSync(out, { force: true });
  const ctx = `${what}: curl exit ${r.status}, ${got.length} bytes (${serverState(server)}) ${r.stderr}`;
  assert.notEqual(r.status, 0, ctx);
  assert.ok(got.length < expected.length, ctx);
  assert.ok(got.equals(expected.subarray(0, got.length)), `${ctx}: curl's output is not a prefix`);
  assert.notEqual(r.status, 7, `${ctx}: curl could not connect`);
  assert.equal(serverState(server), 'running', `${what}: the server must survive`);
}

// ---- the cases --------------------------------------------------------------------------------

/**
 * A fresh server with the target file, then (after a restart, so that the target's chunk keys are
 * known for certain) a control file in a folder and, for `twin`, a second file of the target's size.
 * Leaves the server stopped, ready for cf-dbtool, and returns what the checks need.
 */
async function prepare({ twin = false } = {}) {
  const server = new Server();
  servers.push(server);
  await server.start();
  const token = (await server.login()).token;
  const admin = server.client(token);
  const root = (await admin.spaces()).private.root;
  const me = (await admin.req('GET', '/api/v1/me')).json();

  const target = bigBytes(SIZE, 11);
  let r = await admin.upload(root, NAME, target);
  assert.equal(r.status, 201, r.text());
  const targetId = r.json().id;
  await server.stop();
  const g1 = chunkGroups(server.dataDir);
  assert.equal(g1.size, 1, 'a fresh server holds the chunks of one file');
  const targetChunks = [...g1.values()][0];
  assert.equal(targetChunks.length, 4);
  assert.ok(targetChunks.every(Boolean), 'chunk indexes 0..3');

  await server.start();
  const folder = await admin.mkdir(root, 'control-folder');
  assert.equal(folder.status, 201);
  const folderId = folder.json().id;
  const control = bigBytes(CONTROL_SIZE, 12);
  r = await admin.upload(folderId, CONTROL_NAME, control);
  assert.equal(r.status, 201);
  const controlId = r.json().id;
  let twinFile = null;
  if (twin) {
    const data = bigBytes(SIZE, 13);
    r = await admin.upload(root, 'twin.bin', data);
    assert.equal(r.status, 201);
    twinFile = { id: r.json().id, data };
  }
  await server.stop();
  const groups = chunkGroups(server.dataDir);
  const others = [...groups.entries()].filter(([p]) => p !== targetChunks[0].slice(0, 64)).map(([, v]) => v);
  if (twinFile) twinFile.chunks = others.find((c) => c.length === 4);
  return {
    server, token, admin, me, root, folderId, targetId, target, targetChunks, twinFile,
    controls: [{ id: controlId, data: control }, ...(twinFile ? [twinFile] : [])],
  };
}

/** Restarts, then runs the standard checks on the tampered file and the control files. */
async function restartAndCheck(t, ctx, { firstBad, ranges }) {
  const { server, token, targetId, target } = ctx;
  const logFrom = server.stderr.length;
  await server.start();
  const url = `/api/v1/files/${targetId}/content`;
  const early = firstBad === 0;
  const limit = firstBad * CHUNK;
  const step = (name, fn) => t.test(name, fn);

  if (ranges) {
    await step('ranges over untampered chunks return the exact bytes (h2, h1)', async () => {
      for (const h of ['h2', 'h1']) {
        for (const [a, b] of ranges.good) {
          const get = h === 'h2' ? h2get : h1get;
          const r = await get(server, token, url, { range: `bytes=${a}-${b}` });
          const exp = target.subarray(a, b + 1);
          assert.equal(r.status, 206, `${h} range ${a}-${b}: ${r.status} ${r.error && r.error.message} (${serverState(server)})`);
          assert.equal(r.headers['content-range'], `bytes ${a}-${b}/${SIZE}`);
          assert.ok(r.complete && r.body.equals(exp), `${h} range ${a}-${b}: exact bytes`);
        }
      }
    });
  }
  // HTTP/1.1 first, then HTTP/2: every one must fail cleanly, and the server must survive it.
  await step('HTTP/1.1 download fails without wrong bytes', async () =>
    assertFailed(await h1get(server, token, url), 'h1 download', server, { expected: target, early, limit }));
  await step('curl --http1.1 fails, its output is a prefix', () =>
    assertCurlFailed(server, token, targetId, 'curl --http1.1', target, false));
  if (ranges) {
    await step('HTTP/1.1 ranges touching the tampered chunk fail', async () => {
      for (const rg of ranges.bad) {
        assertFailed(await h1get(server, token, url, { range: `bytes=${rg.a}-${rg.b}` }), `h1 range ${rg.a}-${rg.b}`, server,
          { expected: target.subarray(rg.a, rg.b + 1), early: rg.early, okStatus: 206, limit: rg.limit });
      }
    });
  }
  await step('HTTP/2 download fails without wrong bytes', async () =>
    assertFailed(await h2get(server, token, url), 'h2 download', server, { expected: target, early, limit }));
  await step('curl --http2 fails, its output is a prefix', () =>
    assertCurlFailed(server, token, targetId, 'curl --http2', target, true));
  if (ranges) {
    await step('HTTP/2 ranges touching the tampered chunk fail', async () => {
      for (const rg of ranges.bad) {
        assertFailed(await h2get(server, token, url, { range: `bytes=${rg.a}-${rg.b}` }), `h2 range ${rg.a}-${rg.b}`, server,
          { expected: target.subarray(rg.a, rg.b + 1), early: rg.early, okStatus: 206, limit: rg.limit });
      }
    });
  }
  await step('the server is healthy and the other files are intact', () => checkHealthy(ctx));
  await step('a failed download leaves its HTTP/2 connection usable', async () => {
    // The harness's shared session: a reset stream must not take the connection down.
    const session = server.h2session();
    let r = null;
    try { r = await server.request('GET', url, { token }); } catch (e) { r = e; }
    assert.ok(!(r.status === 200 && r.body && r.body.equals(target)), 'the tampered file must not download');
    assert.equal(serverState(server), 'running');
    const c = await ctx.admin.download(ctx.controls[0].id);
    assert.equal(c.status, 200);
    assert.ok(c.body.equals(ctx.controls[0].data));
    assert.equal(server.h2session(), session, 'the same HTTP/2 connection');
  });
  await step('the log names the failure, not the file', () => checkLog(ctx, server.stderr.slice(logFrom)));
}

async function checkHealthy(ctx) {
  const { server, admin, controls } = ctx;
  assert.equal(serverState(server), 'running');
  const h = await server.request('GET', '/healthz', { h1: true });
  assert.equal(h.status, 200, `healthz (${serverState(server)})`);
  assert.equal((await server.request('GET', '/healthz')).status, 200);
  for (const c of controls) {
    for (const h1 of [false, true]) {
      const r = await admin.download(c.id, { h1 });
      assert.equal(r.status, 200, `control ${h1 ? 'h1' : 'h2'}`);
      assert.ok(r.body.equals(c.data), `control file byte-identical (${h1 ? 'h1' : 'h2'})`);
    }
  }
}

/** The log names the failure, never the file's name or content. */
function checkLog(ctx, log) {
  assert.match(log, /fail|corrupt|authenticat/i, `the failure is logged:\n${log}`);
  assert.ok(!log.includes(NAME), 'the file name must not be logged');
  const head = ctx.target.subarray(0, 16);
  for (const needle of [head.toString('hex'), head.toString('base64'), head.toString('latin1')]) {
    assert.ok(!log.includes(needle), 'file content must not be logged');
  }
  assert.ok(!Buffer.from(log, 'utf8').includes(head), 'file content must not be logged');
}

/** Stops the case's server (asserting a clean exit). */
async function finish(ctx) {
  servers.splice(servers.indexOf(ctx.server), 1);
  try { await ctx.server.stop(); } finally { ctx.server.cleanup(); }
}

const CT = 1 + 12; // offset of the ciphertext in a chunk value (format byte, nonce)

async function chunkCase(t, edit, expectation, opts = {}) {
  const ctx = await prepare(opts);
  edit(ctx, ctx.server.dataDir, ctx.targetChunks);
  await restartAndCheck(t, ctx, expectation);
  await finish(ctx);
}

test('(a) one bit flipped in the ciphertext of chunk 0 → 500 before any byte', (t) =>
  chunkCase(t, (ctx, dir, k) => dbPut(dir, 'chunks', k[0], flipBit(dbGet(dir, 'chunks', k[0]), CT + 1000, 3)), { firstBad: 0 }));

test('(b) one bit flipped in the middle chunk (2) → stream aborted after at most 2 chunks', (t) =>
  chunkCase(t, (ctx, dir, k) => dbPut(dir, 'chunks', k[2], flipBit(dbGet(dir, 'chunks', k[2]), CT + 500000, 7)), { firstBad: 2 }));

test('(c) one bit flipped in the nonce of chunk 1 → aborted after chunk 0', (t) =>
  chunkCase(t, (ctx, dir, k) => dbPut(dir, 'chunks', k[1], flipBit(dbGet(dir, 'chunks', k[1]), 1 + 5, 0)), { firstBad: 1 }));

test('(d) one bit flipped in the tag of the last chunk (3) → aborted after chunk 2', (t) =>
  chunkCase(t, (ctx, dir, k) => {
    const v = dbGet(dir, 'chunks', k[3]);
    dbPut(dir, 'chunks', k[3], flipBit(v, v.length - 3, 1));
  }, { firstBad: 3 }));

test('(e) chunks 1 and 2 swapped → aborted after chunk 0', (t) =>
  chunkCase(t, (ctx, dir, k) => {
    const v1 = dbGet(dir, 'chunks', k[1]), v2 = dbGet(dir, 'chunks', k[2]);
    assert.ok(!v1.equals(v2));
    dbPut(dir, 'chunks', k[1], v2);
    dbPut(dir, 'chunks', k[2], v1);
  }, { firstBad: 1 }));

test('(f) reordered: chunk 3 stored at index 1 → aborted after chunk 0', (t) =>
  chunkCase(t, (ctx, dir, k) => dbPut(dir, 'chunks', k[1], dbGet(dir, 'chunks', k[3])), { firstBad: 1 }));

test('(g) truncated: the last chunk deleted → aborted after chunk 2', (t) =>
  chunkCase(t, (ctx, dir, k) => dbDelete(dir, 'chunks', k[3]), { firstBad: 3 }));

test('(h) chunk 1 deleted → aborted after chunk 0', (t) =>
  chunkCase(t, (ctx, dir, k) => dbDelete(dir, 'chunks', k[1]), { firstBad: 1 }));

test('(i) the value of chunk 0 one byte short → 500', (t) =>
  chunkCase(t, (ctx, dir, k) => {
    const v = dbGet(dir, 'chunks', k[0]);
    dbPut(dir, 'chunks', k[0], v.subarray(0, v.length - 1));
  }, { firstBad: 0 }));

test('(j) chunk 0 of another file of the same size moved over this file\'s chunk 0 → 500, the other file intact', (t) =>
  chunkCase(t, (ctx, dir, k) => {
    assert.ok(ctx.twinFile.chunks, 'the twin file has 4 chunks');
    dbPut(dir, 'chunks', k[0], dbGet(dir, 'chunks', ctx.twinFile.chunks[0]));
  }, { firstBad: 0 }, { twin: true }));

test('(k) ranges over untampered chunks still work; ranges touching the tampered chunk fail', (t) =>
  chunkCase(t, (ctx, dir, k) => dbPut(dir, 'chunks', k[2], flipBit(dbGet(dir, 'chunks', k[2]), CT + 77, 5)), {
    firstBad: 2,
    ranges: {
      good: [[0, 99], [CHUNK - 10, CHUNK + 9], [0, 2 * CHUNK - 1], [3 * CHUNK + 1, 3 * CHUNK + 1000], [SIZE - 1234, SIZE - 1]],
      bad: [
        // only chunk 2: the first chunk read fails → 500
        { a: 2 * CHUNK + 5, b: 2 * CHUNK + 104, early: true },
        // chunks 1..3: 206, then an abort after at most the CHUNK - 5 bytes of chunk 1
        { a: CHUNK + 5, b: SIZE - 1, early: false, limit: CHUNK - 5 },
        // the last byte of chunk 1 and the first of chunk 2: at most 1 byte arrives
        { a: 2 * CHUNK - 1, b: 2 * CHUNK, early: false, limit: 1 },
      ],
    },
  }));

// ---- node records ---------------------------------------------------------------------------------

async function recordCase(t, edit) {
  const ctx = await prepare();
  const tenantHex = ctx.me.tenant.id;
  assert.match(tenantHex, /^[0-9a-f]{32}$/);
  const dir = ctx.server.dataDir;
  const fileKey = tenantHex + ctx.targetId;
  const keys = dbKeys(dir, 'nodes').map((x) => x.key);
  assert.ok(keys.includes(fileKey), 'the file node key is tenant ‖ node id');
  assert.ok(keys.includes(tenantHex + ctx.folderId));
  edit(dir, fileKey, tenantHex + ctx.folderId);

  const { server, token, targetId } = ctx;
  const logFrom = server.stderr.length;
  await server.start();
  const url = `/api/v1/files/${targetId}/content`;
  await t.test('GET node answers 500 internal (h2, h1)', async () => {
    for (const h1 of [false, true]) {
      const r = await server.request('GET', `/api/v1/nodes/${targetId}`, { token, h1 });
      assert.equal(r.status, 500, `GET node (${h1 ? 'h1' : 'h2'}): ${r.text()}`);
      assert.equal(r.json().error, 'internal');
      assert.deepEqual(Object.keys(r.json()).sort(), ['error', 'message']);
    }
  });
  await t.test('downloads answer 500 (h2, h1, curl)', async () => {
    assertFailed(await h2get(server, token, url), 'h2 download', server, { expected: ctx.target, early: true });
    assertFailed(await h1get(server, token, url), 'h1 download', server, { expected: ctx.target, early: true });
    assertCurlFailed(server, token, targetId, 'curl --http2', ctx.target, true);
  });
  await t.test('the folder whose record was copied is untouched', async () => {
    const f = await server.request('GET', `/api/v1/nodes/${ctx.folderId}`, { token });
    assert.equal(f.status, 200);
    assert.equal(f.json().name, 'control-folder');
  });
  await t.test('the server is healthy and the other files are intact', () => checkHealthy(ctx));
  await t.test('the log names the failure, not the file', () => checkLog(ctx, server.stderr.slice(logFrom)));
  await finish(ctx);
}

test('(l) one bit flipped in the file\'s node record → GET node and download answer 500', (t) =>
  recordCase(t, (dir, fileKey) => {
    const v = dbGet(dir, 'nodes', fileKey);
    dbPut(dir, 'nodes', fileKey, flipBit(v, Math.floor(v.length / 2), 2));
  }));

test('(m) a folder\'s sealed node record copied onto the file\'s key → 500 (sealing binds the key)', (t) =>
  recordCase(t, (dir, fileKey, folderKey) => dbPut(dir, 'nodes', fileKey, dbGet(dir, 'nodes', folderKey))));
