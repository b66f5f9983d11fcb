// The download path of issue 19: chunk buffers from a pool that is reused (src/core/bufpool.h),
// decryption straight into them with read-ahead, and the "began" provenance record overlapped with
// the transfer (the last byte is held back until the record is durable: download.c's header).
//
// - Exact bytes: files around the chunk boundary (0, 1, 4 KiB, 64 KiB ± 1, 1 MiB ± 1, 2 MiB,
//   3 MiB + 7) downloaded whole and by ranges (first byte, last byte, across a boundary, a middle
//   chunk, a suffix) several rounds over, sequentially and 24 at once, on a server whose pool keeps
//   only 8 idle buffers; the bytes are compared with what was uploaded.
// - The pool: coffer_bufpool_buffers{state="out"} returns to 0 after every kind of download
//   (finished, cancelled by the client at its first DATA frame, cut by a closed connection); a round
//   of sequential downloads after the first allocates no new buffer (they come from the pool); idle
//   buffers never exceed limits.download_buffers, the rest are freed.
// - The tail hold-back (fault builds only: PUT /_test/fault): a write(2) or fsync(2) below RocksDB
//   fails while the "began" event of a download is being made durable. The store fail-stops; the
//   client never receives the whole body (a 5xx, a reset or a cut stream, with at most a strict
//   prefix of the file's bytes); after the restart the log has no completed record of it (at most
//   its "began", when the failed fsync's write reached the log); the next download is whole and
//   recorded completed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { Server, bigBytes, CHUNK, withDeadline } from './lib/harness.mjs';

const POOL = 8;
const SIZES = [0, 1, 4096, 65536, 65537, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 7];
const DEADLINE_MS = 180000; // generous: waits end on events; this only names a hang
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let server, token, root;
const files = []; // {id, data}

async function startServer() {
  await server.start();
  token = (await server.login()).token;
}

const req = (method, p, opts = {}) => server.request(method, p, { token, ...opts });

async function upload(name, data) {
  const r = await req('POST', `/api/v1/files?parent=${root}&name=${name}`, { body: data });
  assert.equal(r.status, 201, `upload ${name}: ${r.status} ${r.text()}`);
  return r.json().id;
}

/** The samples of /metrics whose name starts with prefix: "name{labels}" → number. */
async function metrics(prefix) {
  const r = await server.request('GET', '/metrics');
  assert.equal(r.status, 200);
  const m = new Map();
  for (const line of r.text().split('\n')) {
    if (!line.startsWith(prefix)) continue;
    const sp = line.lastIndexOf(' ');
    m.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return m;
}

async function pool() {
  const m = await metrics('coffer_bufpool_');
  const get = (k) => {
    assert.ok(m.has(k), `/metrics has ${k}`);
    return m.get(k);
  };
  return {
    idle: get('coffer_bufpool_buffers{state="idle"}'),
    out: get('coffer_bufpool_buffers{state="out"}'),
    fromPool: get('coffer_bufpool_takes_total{source="pool"}'),
    allocated: get('coffer_bufpool_takes_total{source="allocated"}'),
    freed: get('coffer_bufpool_freed_total'),
  };
}

/** Waits until every stream has given its buffers back (streams are freed after their response ends). */
async function allReturned(what) {
  const deadline = Date.now() + DEADLINE_MS;
  for (;;) {
    const p = await pool();
    if (p.out === 0) return p;
    assert.ok(Date.now() < deadline, `${what}: ${p.out} buffer(s) still out after ${DEADLINE_MS} ms`);
    await sleep(20); // polling a state (the gauge), not waiting for time to pass
  }
}

/** The ranges asked of a file of n bytes: [header value, first, last] (inclusive). */
function rangesOf(n) {
  if (n === 0) return [];
  const out = [['bytes=0-0', 0, 0], [`bytes=${n - 1}-`, n - 1, n - 1], ['bytes=-1', n - 1, n - 1]];
  if (n > CHUNK + 10) {
    out.push([`bytes=${CHUNK - 10}-${CHUNK + 9}`, CHUNK - 10, CHUNK + 9]);
    out.push([`bytes=${CHUNK}-${Math.min(n, 2 * CHUNK) - 1}`, CHUNK, Math.min(n, 2 * CHUNK) - 1]);
    out.push([`bytes=-${CHUNK + 3}`, n - CHUNK - 3, n - 1]);
  }
  if (n > 100) out.push(['bytes=50-99', 50, 99]);
  return out;
}

/** Every download of one file: whole, then each range; asserts status, length and bytes. */
async function downloadAll(f) {
  const r = await req('GET', `/api/v1/files/${f.id}/content`);
  assert.equal(r.status, 200, `whole ${f.data.length}: ${r.status}`);
  assert.equal(Number(r.headers['content-length']), f.data.length);
  assert.ok(r.body.equals(f.data), `whole ${f.data.length}: the bytes differ`);
  for (const [h, a, b] of rangesOf(f.data.length)) {
    const p = await req('GET', `/api/v1/files/${f.id}/content`, { headers: { range: h } });
    assert.equal(p.status, 206, `${f.data.length} ${h}: ${p.status}`);
    assert.equal(p.headers['content-range'], `bytes ${a}-${b}/${f.data.length}`, `${f.data.length} ${h}`);
    assert.ok(p.body.equals(f.data.subarray(a, b + 1)), `${f.data.length} ${h}: the bytes differ`);
  }
}

/** A GET that ends its stream at the first DATA frame (RST_STREAM CANCEL), or, with destroy, closes
 *  the whole connection then. Resolves the bytes received before. */
function cutDownload(id, { destroy = false } = {}) {
  return new Promise((resolve, reject) => {
    const session = http2.connect(server.url, { rejectUnauthorized: false });
    session.on('error', () => {});
    const timer = setTimeout(() => { session.destroy(); reject(new Error('cut download: no data')); }, DEADLINE_MS);
    const r = session.request({ ':method': 'GET', ':path': `/api/v1/files/${id}/content`, authorization: `Bearer ${token}` });
    let received = 0, cut = false;
    r.on('data', (c) => {
      received += c.length;
      if (cut) return;
      cut = true;
      if (destroy) session.destroy();
      else r.close(http2.constants.NGHTTP2_CANCEL);
    });
    r.on('error', () => {});
    r.on('close', () => { clearTimeout(timer); session.close(); resolve(received); });
    r.end();
  });
}

before(async () => {
  server = new Server({ config: { limits: { download_buffers: POOL }, log: { access: '-' } } });
  await startServer();
  root = (await (await req('GET', '/api/v1/spaces')).json()).private.root;
  for (const [i, n] of SIZES.entries()) files.push({ id: await upload(`f${i}.bin`, bigBytes(n, 100 + i)), data: bigBytes(n, 100 + i) });
});

after(async () => {
  if (server) {
    await server.stop();
    server.cleanup();
  }
});

test('bytes are exact around chunk boundaries and for ranges, with pooled buffers reused', { timeout: 900000 }, async () => {
  for (const f of files) await downloadAll(f);
  const first = await allReturned('after the first round');
  assert.ok(first.idle <= POOL, `idle ${first.idle} ≤ ${POOL}`);
  // Sequential downloads once the pool holds buffers: each waits until the one before gave its
  // buffers back, so every buffer comes from the pool and none is allocated.
  for (let round = 0; round < 2; round++) {
    for (const f of files) {
      await downloadAll(f);
      await allReturned('a sequential download');
    }
  }
  const again = await pool();
  assert.equal(again.allocated, first.allocated, 'sequential downloads allocate no buffer: the pool serves them');
  assert.ok(again.fromPool > first.fromPool, 'buffers were taken from the pool');
});

test('concurrent downloads get exact bytes; the pool stays bounded and every buffer comes back', { timeout: 900000 }, async () => {
  const big = files[files.length - 1];
  const jobs = [];
  for (let i = 0; i < 24; i++) {
    const f = i % 3 === 0 ? files[7] : big; // 1 MiB + 1 and 3 MiB + 7: more buffers out than the pool keeps
    const ranges = rangesOf(f.data.length);
    const [h, a, b] = i % 2 === 0 ? [null, 0, f.data.length - 1] : ranges[i % ranges.length];
    jobs.push(req('GET', `/api/v1/files/${f.id}/content`, h ? { headers: { range: h } } : {}).then((r) => {
      assert.equal(r.status, h ? 206 : 200, `concurrent ${i}: ${r.status}`);
      assert.ok(r.body.equals(f.data.subarray(a, b + 1)), `concurrent ${i} (${h || 'whole'}): the bytes differ`);
    }));
  }
  await Promise.all(jobs);
  const p = await allReturned('after 24 concurrent downloads');
  assert.ok(p.idle <= POOL, `idle ${p.idle} ≤ ${POOL}`);
  assert.ok(p.freed > 0, 'buffers beyond the bound were freed on return');
});

test('aborted downloads give their buffers back', { timeout: 900000 }, async () => {
  const big = files[files.length - 1];
  const before = await pool();
  const cuts = [];
  for (let i = 0; i < 6; i++) cuts.push(cutDownload(big.id, { destroy: i % 2 === 1 }));
  const received = await Promise.all(cuts);
  for (const n of received) assert.ok(n > 0 && n < big.data.length, `a cut download received ${n} bytes`);
  const p = await allReturned('after cancelled and cut downloads');
  assert.ok(p.fromPool + p.allocated > before.fromPool + before.allocated, 'the cut downloads took buffers');
  // The server still serves the file whole.
  await downloadAll(big);
  await allReturned('after the check download');
});

// ---- the tail hold-back ----------------------------------------------------------------------------

async function faultBuild() {
  const r = await server.request('GET', '/_test/fault');
  return r.status === 200;
}

/** Waits until no provenance event is queued (the uploads' events are durable before a fault is armed). */
async function auditQuiet() {
  const deadline = Date.now() + DEADLINE_MS;
  for (;;) {
    const m = await metrics('coffer_audit_queue_depth');
    if (m.get('coffer_audit_queue_depth') === 0) return;
    assert.ok(Date.now() < deadline, 'provenance events still queued');
    await sleep(20); // polling a state
  }
}

async function transfers(id) {
  const r = await req('GET', `/api/v1/audit?node=${id}&limit=1000`);
  assert.equal(r.status, 200, `audit: ${r.status} ${r.text()}`);
  return r.json().events.filter((e) => e.action === 'file.download');
}

test('sequential downloads: every "began" and "end" record is committed; the writer commits them in batches', { timeout: 900000 }, async () => {
  // A download's end record is queued as the client sends its next request; the provenance writer
  // lets it wait up to 1 ms for the next "began" (audit.c LINGER_US), so that both share one fsync.
  // Whether they meet depends on the machine's speed: only what holds whatever the timing is asserted.
  const data = bigBytes(4096, 4096);
  const id = await upload('sequential.bin', data);
  await auditQuiet();
  const m0 = await metrics('coffer_audit_');
  for (let i = 0; i < 8; i++) {
    const r = await req('GET', `/api/v1/files/${id}/content`);
    assert.equal(r.status, 200);
    assert.ok(r.body.equals(data), `download ${i}: the bytes differ`);
  }
  await auditQuiet();
  const m1 = await metrics('coffer_audit_');
  const events = m1.get('coffer_audit_events_total') - m0.get('coffer_audit_events_total');
  const commits = m1.get('coffer_audit_commits_total') - m0.get('coffer_audit_commits_total');
  console.log(`#   8 sequential downloads: ${events} events in ${commits} commits`);
  assert.equal(events, 16, 'one "began" and one "end" record per download');
  assert.ok(commits >= 1 && commits <= events, `${commits} commits for ${events} events`);
  // The API shows each "began" with its "end" folded in (transfer).
  const t = await transfers(id);
  assert.equal(t.length, 8);
  for (const e of t) assert.deepEqual([e.transfer.range, e.transfer.bytes_sent, e.transfer.completed], [null, data.length, true]);
});

for (const [kind, size] of [['write', CHUNK + 12345], ['fsync', 4096]]) {
  test(`the last byte waits for the durable "began" record: ${kind} fault, ${size} bytes`, { timeout: 900000 }, async (t) => {
    if (!(await faultBuild())) {
      t.skip('not a fault-injection build (-Dfault_injection=true)');
      return;
    }
    const data = bigBytes(size, size);
    const id = await upload(`held-${kind}.bin`, data);
    await auditQuiet();
    const from = server.stderr.length;
    const armed = await server.request('PUT', `/_test/fault?kind=${kind}&n=1`);
    assert.equal(armed.status, 204);
    let outcome;
    try {
      const r = await req('GET', `/api/v1/files/${id}/content`, { noRetry: true });
      outcome = { status: r.status, body: r.body };
    } catch (e) {
      outcome = { error: e, partial: e.partial || Buffer.alloc(0) };
    }
    // The record could not be made durable: the download says so, and the store fail-stops.
    await server.waitForLog(/its provenance record could not be made durable/, { from, timeout: DEADLINE_MS });
    t.diagnostic(outcome.error ? `stream cut after ${outcome.partial.length} of ${data.length} bytes (${outcome.error.message})`
      : `answered ${outcome.status} before any byte`);
    if (outcome.error) {
      assert.ok(outcome.partial.length < data.length, `a cut stream delivered ${outcome.partial.length} of ${data.length} bytes`);
      assert.ok(data.subarray(0, outcome.partial.length).equals(outcome.partial), 'the bytes before the cut are the file\'s');
    } else {
      // Refused before any byte: a JSON error with a 5xx status, never the file.
      assert.ok(outcome.status >= 500 && outcome.status <= 503, `status ${outcome.status}`);
      assert.equal(typeof JSON.parse(outcome.body.toString()).error, 'string');
    }
    const done = await withDeadline(server.closed, DEADLINE_MS, () => `the server did not stop after a storage failure:\n${server.stderr.slice(-3000)}`);
    const rocksAbort = done.signal === 'SIGABRT' && /WritableFileWriter::AssertFalseAndGetStatusForPrevError/.test(server.stderr);
    if (!rocksAbort) assert.equal(done.code, 1, `exit ${done.code} (${done.signal}):\n${server.stderr.slice(-3000)}`);
    assert.doesNotMatch(server.stderr, /ERROR: (Address|Leak)Sanitizer|runtime error:/);
    server.stderr = '';
    await startServer();
    // No completed record of that download. (Its "began" may survive: an fsync that fails says
    // nothing of what reached the disk, and the write-ahead log may hold the event. Then it shows
    // a transfer that never ended.)
    const left = await transfers(id);
    assert.ok(left.length <= 1, `one attempt: ${JSON.stringify(left)}`);
    for (const e of left) assert.deepEqual(e.transfer, { range: null, bytes_sent: null, completed: false }, 'began, never ended');
    // The next download is whole, and recorded completed.
    const r = await req('GET', `/api/v1/files/${id}/content`);
    assert.equal(r.status, 200);
    assert.ok(r.body.equals(data));
    const deadline = Date.now() + DEADLINE_MS;
    let evs;
    for (;;) {
      evs = await transfers(id);
      if (evs.length === left.length + 1 && evs[0].transfer.bytes_sent !== null) break;
      assert.ok(Date.now() < deadline, `the download's end record: ${JSON.stringify(evs)}`);
      await sleep(20); // polling a state
    }
    assert.deepEqual([evs[0].transfer.bytes_sent, evs[0].transfer.completed], [data.length, true]);
    await allReturned('after the fault round');
  });
}
