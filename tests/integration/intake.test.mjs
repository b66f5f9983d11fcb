// The intake gate (src/http/conn.c, docs/DESIGN.md "Memory"): while the request bodies in memory
// (still arriving + held by upload handlers) are over limits.max_buffered_body_bytes, the server
// stops reading from the connections sending more body, so TCP slows those clients down instead of
// memory growing with their number; one connection at a time finishes its body when nothing is
// held. Read from /metrics: coffer_intake_pauses_total (the gate engaged), coffer_body_bytes
// (held / receiving back to 0 once everything is in: no count leaks), and
// coffer_body_receiving_peak_bytes (how much was arriving at once).
//
// Every upload is checked byte for byte; a 503 (the handlers' budget, which the gate makes rare but
// cannot rule out: a stopped connection's kernel buffer may already hold the rest of its body) is
// sent again once the handlers hold nothing, as a tus client would after its Retry-After. No fixed
// sleeps: waits poll /metrics with a deadline.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { Server, bigBytes, sha256, until } from './lib/harness.mjs';

const MiB = 1 << 20;
const T = { 'tus-resumable': '1.0.0' };
const OCT = { ...T, 'content-type': 'application/offset+octet-stream' };
const b64 = (s) => Buffer.from(s).toString('base64');
const LIMIT = 2 * MiB;
const N = 8;
const SIZE = 8 * MiB;

let srv, c;

before(async () => {
  srv = await new Server({
    config: { limits: { max_request_body_bytes: '64MiB', max_buffered_body_bytes: '2MiB', request_timeout: '300s' } },
  }).start();
  c = srv.client((await srv.login()).token);
  c.root = (await c.spaces()).private.root;
});

after(async () => {
  await srv?.stop();
});

async function metrics() {
  const r = await srv.request('GET', '/metrics');
  assert.equal(r.status, 200);
  const t = r.text();
  const get = (re, name) => {
    const m = re.exec(t);
    assert.ok(m, `GET /metrics reports ${name}`);
    return Number(m[1]);
  };
  return {
    held: get(/^coffer_body_bytes\{state="held"\} (\d+)$/m, 'held bytes'),
    receiving: get(/^coffer_body_bytes\{state="receiving"\} (\d+)$/m, 'receiving bytes'),
    peak: get(/^coffer_body_receiving_peak_bytes (\d+)$/m, 'the receiving peak'),
    paused: get(/^coffer_intake_paused_connections (\d+)$/m, 'paused connections'),
    pauses: get(/^coffer_intake_pauses_total (\d+)$/m, 'pauses'),
  };
}

// Nothing counted once every body is in and sealed: the gate's and the handlers' counts go back to 0.
async function drained() {
  let m;
  try {
    await until(async () => {
      m = await metrics();
      return m.held === 0 && m.receiving === 0 && m.paused === 0;
    }, 'request bodies to leave memory');
  } catch (e) {
    throw new Error(`${e.message}: ${JSON.stringify(m)}`);
  }
  return m;
}

async function create(name, length) {
  const r = await c.req('POST', '/api/v1/uploads', {
    headers: { ...T, 'upload-length': String(length), 'upload-metadata': `filename ${b64(name)},parent ${b64(c.root)}` },
  });
  assert.equal(r.status, 201, r.text());
  return r.headers.location;
}

// One PATCH of the whole body on a connection of its own (HTTP/2, or HTTP/1.1 with h1), retried
// after Retry-After when the handlers' budget refuses it. Resolves the node id and the 503 count.
async function patchWhole(loc, data, h1) {
  let refused = 0;
  for (;;) {
    const r = await c.req('PATCH', loc, { headers: { ...OCT, 'upload-offset': '0' }, body: data, newSession: !h1, h1 });
    if (r.status === 503) {
      refused++;
      assert.equal(r.headers['retry-after'], '1');
      assert.equal(r.json().error, 'server_busy');
      assert.ok(refused < 60, 'a refused PATCH gets through in the end');
      // Sent again once the handlers hold nothing (then a body is admitted alone), not after a
      // fixed wait.
      await until(async () => (await metrics()).held === 0, 'the handlers to release the budget');
      continue;
    }
    assert.equal(r.status, 204, r.text());
    assert.equal(r.headers['upload-offset'], String(data.length));
    return { node: r.headers['coffer-node-id'], refused };
  }
}

async function assertStored(node, data) {
  const n = (await c.node(node)).json();
  assert.equal(n.size, data.length);
  assert.equal(n.sha256, sha256(data));
  const d = await c.download(node);
  assert.equal(d.status, 200);
  assert.ok(d.body.equals(data), 'the stored bytes are the uploaded ones');
}

// N bodies of SIZE at once, each on its own connection, against a LIMIT of 2 MiB.
async function manyAtOnce(h1, seed) {
  const before = await metrics();
  const files = Array.from({ length: N }, (_, i) => bigBytes(SIZE, seed + i));
  const locs = [];
  for (let i = 0; i < N; i++) locs.push(await create(`intake-${seed}-${i}.bin`, SIZE));
  const results = await Promise.all(locs.map((loc, i) => patchWhole(loc, files[i], h1)));
  for (let i = 0; i < N; i++) await assertStored(results[i].node, files[i]);
  const after = await drained();
  return { before, after, refused: results.reduce((s, r) => s + r.refused, 0) };
}

test('HTTP/2: bodies arriving on many connections are slowed by TCP, not buffered: the gate stops connections, every upload lands byte for byte', async () => {
  const { before, after, refused } = await manyAtOnce(false, 100);
  assert.ok(after.pauses > before.pauses, `the gate stopped connections (pauses ${before.pauses} → ${after.pauses})`);
  // Without the gate all N bodies arrive at line rate at once (N × SIZE = 64 MiB); with it, what
  // arrives at once is the limit plus what each connection's last read brought before it stopped.
  assert.ok(after.peak < (N * SIZE) / 2, `at most half of the bodies arrived at once (peak ${after.peak} bytes)`);
  assert.ok(refused <= N, `few 503s (${refused})`);
});

test('HTTP/1.1: the same gate on connections that send their bodies in one request each', async () => {
  const { before, after } = await manyAtOnce(true, 200);
  assert.ok(after.pauses > before.pauses, `the gate stopped connections (pauses ${before.pauses} → ${after.pauses})`);
});

test('HTTP/2 bodies of a declared length (the buffer reserved whole at once, conn.c h2_presize_bodies) land byte for byte', async () => {
  // Sizes around the reservation's edges: under it (256 KiB), odd, a power of two, one that arrives
  // in many reads. One at a time, so that the gate admits each (the reservation is only made then).
  for (const [i, n] of [200 * 1024, 256 * 1024 + 1, 5 * MiB + 3, 8 * MiB].entries()) {
    const data = bigBytes(n, 400 + i);
    const loc = await create(`intake-declared-${i}.bin`, n);
    const r = await c.req('PATCH', loc, { headers: { ...OCT, 'upload-offset': '0', 'content-length': String(n) }, body: data, newSession: true });
    assert.equal(r.status, 204, r.text());
    assert.equal(r.headers['upload-offset'], String(n));
    await assertStored(r.headers['coffer-node-id'], data);
  }
  // A declared length the body does not reach: h2o refuses the stream, nothing is stored, the count
  // returns to 0.
  const loc = await create('intake-declared-short.bin', 1 * MiB);
  const r = await c.req('PATCH', loc, { headers: { ...OCT, 'upload-offset': '0', 'content-length': String(1 * MiB) }, body: bigBytes(MiB - 1, 499), newSession: true }).catch((e) => ({ status: 0, error: e }));
  assert.notEqual(r.status, 204, 'a body shorter than its declared length is not accepted');
  const head = await c.req('HEAD', loc, { headers: T });
  assert.equal(head.headers['upload-offset'], '0');
  await drained();
});

test('a client that stops mid-body cannot hold the others back: they finish, and its part leaves the count when it goes', async () => {
  const stalledLoc = await create('intake-stalled.bin', SIZE);
  // A raw HTTP/2 stream: headers and 3 MiB of the body (over the 2 MiB limit on its own), then nothing.
  const session = http2.connect(srv.url, { rejectUnauthorized: false });
  session.on('error', () => {});
  const stream = session.request({
    ':method': 'PATCH', ':path': stalledLoc, authorization: `Bearer ${c.token}`, ...OCT,
    'upload-offset': '0', 'content-length': String(SIZE),
  }, { endStream: false });
  stream.on('error', () => {});
  stream.write(bigBytes(3 * MiB, 300));
  await until(async () => (await metrics()).receiving >= 3 * MiB, 'the stalled body to be counted');
  // Others upload meanwhile, each on its own connection: all complete.
  const files = Array.from({ length: 4 }, (_, i) => bigBytes(4 * MiB, 310 + i));
  const locs = [];
  for (let i = 0; i < files.length; i++) locs.push(await create(`intake-past-${i}.bin`, files[i].length));
  const results = await Promise.all(locs.map((loc, i) => patchWhole(loc, files[i], false)));
  for (let i = 0; i < files.length; i++) await assertStored(results[i].node, files[i]);
  // The stalled stream is still counted until its client goes; then nothing is.
  assert.ok((await metrics()).receiving >= 3 * MiB, 'the stalled body is still counted');
  stream.close(http2.constants.NGHTTP2_CANCEL);
  session.destroy();
  await drained();
  // Nothing of the stalled upload was stored.
  const h = await c.req('HEAD', stalledLoc, { headers: T });
  assert.equal(h.status, 200);
  assert.equal(h.headers['upload-offset'], '0');
});

test('a body larger than the limit on its own still gets in (one body alone is always admitted)', async () => {
  const data = bigBytes(6 * MiB, 400);
  const loc = await create('intake-alone.bin', data.length);
  const r = await patchWhole(loc, data, false);
  assert.equal(r.refused, 0);
  await assertStored(r.node, data);
  const m = await drained();
  assert.equal(m.paused, 0);
});
