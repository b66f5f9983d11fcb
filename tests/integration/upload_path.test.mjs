// The tus upload path of issue 19 (docs/DESIGN.md "Uploads: the running hash and the body budget"):
// the SHA-256 kept running across PATCHes (never re-read at completion; recomputed once from the
// sealed chunks after a restart), the global budget for buffered request bodies
// (limits.max_buffered_body_bytes: 503 + Retry-After, nothing changed, a retry succeeds), and the
// scan still deciding before the file becomes visible when the malware is in the last piece.
//
// And the scan run while a tus upload arrives (DESIGN.md "Uploads: scanning while the upload
// arrives"): same verdicts, bytes and sha256; EICAR in the first or the last piece refused at
// completion; a client that stalls or terminates releases its scanner and the upload falls back to
// the scan after completion. Which path ran is read from coffer_scan_streamed_total and
// coffer_scan_stream_fallback_total (exact increments: each server runs one test at a time).
//
// Servers: `main` (default budget, scan.stream off: every upload scanned after completion) and `tight` (a 64 KiB budget: any two bodies held at once are one
// too many); `stream` (scan.stream on, 2 scanners: at most one streams; a generous idle limit) and
// `stall` (scan.stream on; a streaming scan gives up after 1 s without bytes).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { Server, EICAR, bigBytes, sha256 } from './lib/harness.mjs';

const MiB = 1 << 20;
const T = { 'tus-resumable': '1.0.0' };
const OCT = { ...T, 'content-type': 'application/offset+octet-stream' };
const b64 = (s) => Buffer.from(s).toString('base64');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let main, tight, stream, stall;

async function client(server) {
  const c = server.client((await server.login()).token);
  c.root = (await c.spaces()).private.root;
  return c;
}

async function create(c, length, name) {
  const r = await c.req('POST', '/api/v1/uploads', {
    headers: { ...T, 'upload-length': String(length), 'upload-metadata': `filename ${b64(name)},parent ${b64(c.root)}` },
  });
  assert.equal(r.status, 201, r.text());
  return r.headers.location;
}

function patch(c, loc, offset, body, headers = {}) {
  return c.req('PATCH', loc, { headers: { ...OCT, 'upload-offset': String(offset), ...headers }, body });
}

async function offsetOf(c, loc) {
  const h = await c.req('HEAD', loc, { headers: T });
  assert.equal(h.status, 200);
  return Number(h.headers['upload-offset']);
}

// Pieces that start and end inside chunks, on chunk boundaries, and one that spans several chunks.
function pieces(data) {
  const cuts = [0, 700 * 1024, MiB, 3 * MiB + 5, 3 * MiB + 6, data.length];
  return cuts.slice(1).map((end, i) => [cuts[i], data.subarray(cuts[i], end)]);
}

async function uploadEvent(c, id) {
  const events = (await c.req('GET', '/api/v1/audit?action=file.upload')).json().events;
  return events.find((e) => e.detail.upload === id);
}

async function assertStored(c, nodeId, id, data) {
  const node = (await c.node(nodeId)).json();
  assert.equal(node.sha256, sha256(data));
  assert.equal(node.size, data.length);
  const ev = await uploadEvent(c, id);
  assert.ok(ev, 'a file.upload event');
  assert.equal(ev.detail.sha256, sha256(data));
  assert.equal(ev.detail.via, 'tus');
  const d = await c.download(nodeId);
  assert.equal(d.status, 200);
  assert.ok(d.body.equals(data));
}

before(async () => {
  main = await new Server({ config: { limits: { max_request_body_bytes: '16MiB' }, scan: { stream: false } } }).start();
  tight = await new Server({ config: { limits: { max_request_body_bytes: '16MiB', max_buffered_body_bytes: '64KiB' } } }).start();
  stream = await new Server({ config: { limits: { max_request_body_bytes: '16MiB' }, scan: { stream: true, stream_idle_seconds: 60 } } }).start();
  stall = await new Server({ config: { limits: { max_request_body_bytes: '16MiB' }, scan: { stream: true, stream_idle_seconds: 1 } } }).start();
});

after(async () => {
  for (const s of [main, tight, stream, stall]) if (s) { await s.stop(); s.cleanup(); }
});

test('multi-PATCH upload: the running sha256 is the file\'s, in the metadata and in the provenance event', async () => {
  const c = await client(main);
  const data = bigBytes(4 * MiB + 12345, 190);
  const loc = await create(c, data.length, 'running.bin');
  let r;
  for (const [off, piece] of pieces(data)) {
    // Per-PATCH Upload-Checksum still works beside the running hash (sha1 and sha256 in turn).
    const alg = off % 2 === 0 ? 'sha256' : 'sha1';
    r = await patch(c, loc, off, piece, { 'upload-checksum': `${alg} ${crypto.createHash(alg).update(piece).digest('base64')}` });
    assert.equal(r.status, 204, r.text());
  }
  await assertStored(c, r.headers['coffer-node-id'], loc.split('/').pop(), data);
});

test('a wrong Upload-Checksum stores nothing and leaves the running hash as it was', async () => {
  const c = await client(main);
  const data = bigBytes(2 * MiB + 77, 191);
  const loc = await create(c, data.length, 'checksum.bin');
  assert.equal((await patch(c, loc, 0, data.subarray(0, MiB + 3))).status, 204);
  const wrong = crypto.createHash('sha256').update('other').digest('base64');
  const bad = await patch(c, loc, MiB + 3, data.subarray(MiB + 3), { 'upload-checksum': `sha256 ${wrong}` });
  assert.equal(bad.status, 460);
  assert.equal(await offsetOf(c, loc), MiB + 3);
  const r = await patch(c, loc, MiB + 3, data.subarray(MiB + 3));
  assert.equal(r.status, 204, r.text());
  await assertStored(c, r.headers['coffer-node-id'], loc.split('/').pop(), data);
});

test('an upload resumed after a restart (clean, then killed) still gets the right sha256', async () => {
  let c = await client(main);
  const data = bigBytes(5 * MiB + 999, 192);
  const loc = await create(c, data.length, 'restarted.bin');
  const [p0, p1, p2, p3, p4] = pieces(data);
  assert.equal((await patch(c, loc, p0[0], p0[1])).status, 204);
  await main.stop(); // the running hash is in memory only: the next PATCH recomputes it from the store
  await main.start();
  c = await client(main);
  assert.equal(await offsetOf(c, loc), p1[0]);
  assert.equal((await patch(c, loc, p1[0], p1[1])).status, 204);
  assert.equal((await patch(c, loc, p2[0], p2[1])).status, 204);
  await main.kill(); // a crash: the same, without a clean shutdown
  await main.start();
  c = await client(main);
  assert.equal(await offsetOf(c, loc), p3[0]);
  assert.equal((await patch(c, loc, p3[0], p3[1])).status, 204);
  const r = await patch(c, loc, p4[0], p4[1]);
  assert.equal(r.status, 204, r.text());
  await assertStored(c, r.headers['coffer-node-id'], loc.split('/').pop(), data);
});

test('EICAR in the last piece: refused before the file is ever visible, with the whole file\'s sha256 recorded', async () => {
  const c = await client(main);
  const data = Buffer.concat([bigBytes(3 * MiB + 100, 193), EICAR]);
  const loc = await create(c, data.length, 'late-evil.com');
  assert.equal((await patch(c, loc, 0, data.subarray(0, 2 * MiB))).status, 204);
  assert.equal((await patch(c, loc, 2 * MiB, data.subarray(2 * MiB, 3 * MiB))).status, 204);
  const r = await patch(c, loc, 3 * MiB, data.subarray(3 * MiB));
  assert.equal(r.status, 422, r.text());
  assert.equal(r.json().error, 'infected');
  assert.match(r.json().signature, /EICAR/i);
  assert.equal(r.headers['coffer-node-id'], undefined);
  assert.equal((await c.req('HEAD', loc, { headers: T })).status, 404);
  const kids = (await c.children(c.root)).json().items;
  assert.equal(kids.find((k) => k.name === 'late-evil.com'), undefined);
  const id = loc.split('/').pop();
  assert.equal(await uploadEvent(c, id), undefined, 'no file.upload event');
  const rej = (await c.req('GET', '/api/v1/audit?action=upload.rejected')).json().events.find((e) => e.detail.upload === id);
  assert.ok(rej, 'an upload.rejected event');
  assert.equal(rej.result, 'infected');
  assert.equal(rej.detail.sha256, sha256(data));
});

test('body budget: PATCHes past limits.max_buffered_body_bytes get 503 + Retry-After, change nothing, and a retry succeeds', async () => {
  const c = await client(tight);
  const N = 6;
  const files = Array.from({ length: N }, (_, i) => bigBytes(2 * MiB, 200 + i));
  const locs = [];
  for (let i = 0; i < N; i++) locs.push(await create(c, files[i].length, `budget-${i}.bin`));
  const offsets = new Array(N).fill(0);
  const done = new Array(N).fill(null);
  let refused = 0;
  // Waves of concurrent PATCHes (1 MiB each, 16 times the budget) until one was refused: the first
  // body held is admitted alone, and any body received while it is held is one too many. Every wave
  // moves the uploads on, so the loop ends when they are complete.
  for (let wave = 0; done.includes(null); wave++) {
    assert.ok(wave < 200, 'the uploads complete');
    const rs = await Promise.all(locs.map((loc, i) => (done[i] ? null : patch(c, loc, offsets[i], files[i].subarray(offsets[i], offsets[i] + MiB)))));
    for (let i = 0; i < N; i++) {
      const r = rs[i];
      if (r === null) continue;
      if (r.status === 503) {
        refused++;
        assert.equal(r.headers['retry-after'], '1');
        assert.equal(r.headers['tus-resumable'], '1.0.0');
        assert.equal(r.json().error, 'server_busy');
        assert.equal(await offsetOf(c, locs[i]), offsets[i], 'a refused PATCH stores nothing');
        continue;
      }
      assert.equal(r.status, 204, r.text());
      offsets[i] += MiB;
      if (offsets[i] === files[i].length) done[i] = r.headers['coffer-node-id'];
      else assert.equal(r.headers['upload-offset'], String(offsets[i]));
    }
    if (refused === 0 && !done.includes(null)) break;
    if (rs.some((r) => r && r.status === 503)) await sleep(1000); // as Retry-After says
  }
  assert.ok(refused > 0, 'at least one PATCH met the budget');
  for (let i = 0; i < N; i++) await assertStored(c, done[i], locs[i].split('/').pop(), files[i]);
  // Nothing is left counted once every body is sealed: a single body larger than the budget passes.
  const big = bigBytes(3 * MiB, 210);
  const loc = await create(c, big.length, 'alone.bin');
  const r = await patch(c, loc, 0, big);
  assert.equal(r.status, 204, r.text());
  await assertStored(c, r.headers['coffer-node-id'], loc.split('/').pop(), big);
});

// ---- the scan run while the upload arrives ------------------------------------------------------

async function streamCounts(server) {
  const r = await server.request('GET', '/metrics');
  assert.equal(r.status, 200);
  const get = (name) => {
    const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(r.text());
    assert.ok(m, `GET /metrics reports ${name}`);
    return Number(m[1]);
  };
  return { streamed: get('coffer_scan_streamed_total'), fallback: get('coffer_scan_stream_fallback_total') };
}

async function restarts(server) {
  const r = await server.request('GET', '/metrics');
  const m = /^coffer_scanner_restarts_total (\d+)$/m.exec(r.text());
  assert.ok(m, 'GET /metrics reports coffer_scanner_restarts_total');
  return Number(m[1]);
}

// Polls /metrics until pred(counts) holds (no fixed sleeps; a generous deadline).
async function countsUntil(server, pred, what) {
  const deadline = Date.now() + 120000;
  for (;;) {
    const c = await streamCounts(server);
    if (pred(c)) return c;
    assert.ok(Date.now() < deadline, `waiting for ${what}: ${JSON.stringify(c)}`);
    await sleep(100);
  }
}

async function assertRefused(c, r, loc, name) {
  assert.equal(r.status, 422, r.text());
  assert.equal(r.json().error, 'infected');
  assert.match(r.json().signature, /EICAR/i);
  assert.equal(r.headers['coffer-node-id'], undefined);
  assert.equal((await c.req('HEAD', loc, { headers: T })).status, 404);
  const kids = (await c.children(c.root)).json().items;
  assert.equal(kids.find((k) => k.name === name), undefined);
  assert.equal(await uploadEvent(c, loc.split('/').pop()), undefined, 'no file.upload event');
}

// A whole upload in the given pieces; the last response.
async function uploadPieces(c, loc, data, cuts) {
  let r;
  for (let i = 0; i + 1 < cuts.length; i++) {
    r = await patch(c, loc, cuts[i], data.subarray(cuts[i], cuts[i + 1]));
    if (i + 2 < cuts.length) assert.equal(r.status, 204, r.text());
  }
  return r;
}

test('streaming scan: a multi-PATCH upload is scanned while it arrives, with the same verdict, sha256 and bytes', async () => {
  const c = await client(stream);
  const before = await streamCounts(stream);
  const data = bigBytes(5 * MiB + 4321, 220);
  const loc = await create(c, data.length, 'streamed.bin');
  let r;
  for (const [off, piece] of pieces(data)) {
    r = await patch(c, loc, off, piece);
    assert.equal(r.status, 204, r.text());
  }
  await assertStored(c, r.headers['coffer-node-id'], loc.split('/').pop(), data);
  const n = (await c.node(r.headers['coffer-node-id'])).json();
  assert.equal(n.scan.result, 'clean');
  assert.deepEqual(await streamCounts(stream), { streamed: before.streamed + 1, fallback: before.fallback });
});

test('streaming scan: EICAR in the last piece is refused (422) and never visible', async () => {
  const c = await client(stream);
  const before = await streamCounts(stream);
  const data = Buffer.concat([bigBytes(3 * MiB + 100, 221), EICAR]);
  const loc = await create(c, data.length, 'stream-late.com');
  const r = await uploadPieces(c, loc, data, [0, MiB, 2 * MiB, 3 * MiB, data.length]);
  await assertRefused(c, r, loc, 'stream-late.com');
  assert.deepEqual(await streamCounts(stream), { streamed: before.streamed + 1, fallback: before.fallback });
});

test('streaming scan: EICAR in the first piece of a multi-PATCH upload is refused at completion', async () => {
  const c = await client(stream);
  const before = await streamCounts(stream);
  const data = Buffer.concat([EICAR, bigBytes(3 * MiB, 222)]);
  const loc = await create(c, data.length, 'stream-early.com');
  // The verdict may be in before the rest arrives: the PATCHes in between are still accepted, and
  // the completion decides.
  const r = await uploadPieces(c, loc, data, [0, MiB + 68, 2 * MiB, data.length]);
  await assertRefused(c, r, loc, 'stream-early.com');
  assert.deepEqual(await streamCounts(stream), { streamed: before.streamed + 1, fallback: before.fallback });
});

test('streaming scan: a client that stalls releases its scanner; it resumes and the upload is scanned after completion', async () => {
  const c = await client(stall);
  const before = await streamCounts(stall);
  const restarted = await restarts(stall);
  const data = bigBytes(3 * MiB + 7, 223);
  const loc = await create(c, data.length, 'stalled.bin');
  assert.equal((await patch(c, loc, 0, data.subarray(0, MiB))).status, 204);
  // No bytes for scan.stream_idle_seconds: the streaming scan is cancelled.
  await countsUntil(stall, (k) => k.fallback === before.fallback + 1, 'the stalled stream to be cancelled');
  // The scanners still decide (each of these one-PATCH uploads streams: a scanner is free again).
  const small = bigBytes(300000, 224);
  const l1 = await create(c, small.length, 'other.bin');
  const r1 = await patch(c, l1, 0, small);
  assert.equal(r1.status, 204, r1.text());
  await assertStored(c, r1.headers['coffer-node-id'], l1.split('/').pop(), small);
  const l2 = await create(c, EICAR.length, 'other-evil.com');
  await assertRefused(c, await patch(c, l2, 0, EICAR), l2, 'other-evil.com');
  assert.deepEqual(await streamCounts(stall), { streamed: before.streamed + 2, fallback: before.fallback + 1 });
  assert.equal(await restarts(stall), restarted, 'the cancelled scan left its scanner up');
  // The stalled client resumes: accepted, scanned after completion (never a second stream).
  const r = await uploadPieces(c, loc, data, [MiB, 2 * MiB, data.length]);
  assert.equal(r.status, 204, r.text());
  await assertStored(c, r.headers['coffer-node-id'], loc.split('/').pop(), data);
  assert.equal((await c.node(r.headers['coffer-node-id'])).json().scan.result, 'clean');
  assert.deepEqual(await streamCounts(stall), { streamed: before.streamed + 2, fallback: before.fallback + 1 });
});

test('streaming scan: terminating an upload mid-stream releases the scanner for the next upload', async () => {
  const c = await client(stream);
  const before = await streamCounts(stream);
  const restarted = await restarts(stream);
  const data = bigBytes(4 * MiB, 225);
  const loc = await create(c, data.length, 'terminated.bin');
  assert.equal((await patch(c, loc, 0, data.subarray(0, MiB))).status, 204);
  assert.equal((await c.req('DELETE', loc, { headers: T })).status, 204);
  assert.equal((await c.req('HEAD', loc, { headers: T })).status, 404);
  await countsUntil(stream, (k) => k.fallback === before.fallback + 1, 'the terminated stream to be cancelled');
  // The next multi-PATCH upload streams again and is decided by that scan.
  const next = bigBytes(3 * MiB + 5, 226);
  const l2 = await create(c, next.length, 'after-terminate.bin');
  const r = await uploadPieces(c, l2, next, [0, MiB, 2 * MiB, next.length]);
  assert.equal(r.status, 204, r.text());
  await assertStored(c, r.headers['coffer-node-id'], l2.split('/').pop(), next);
  assert.deepEqual(await streamCounts(stream), { streamed: before.streamed + 1, fallback: before.fallback + 1 });
  assert.equal(await restarts(stream), restarted, 'the cancelled scan left its scanner up');
});

test('streaming scan: more concurrent multi-PATCH uploads than scanners all complete correctly', async () => {
  const c = await client(stream);
  const before = await streamCounts(stream);
  const N = 5;
  const files = Array.from({ length: N }, (_, i) => (i === 2 ? Buffer.concat([bigBytes(2 * MiB, 230 + i), EICAR]) : bigBytes(2 * MiB + 1000 * i, 230 + i)));
  const names = files.map((_, i) => (i === 2 ? 'many-evil.com' : `many-${i}.bin`));
  const locs = [];
  for (let i = 0; i < N; i++) locs.push(await create(c, files[i].length, names[i]));
  const rs = await Promise.all(files.map((f, i) => uploadPieces(c, locs[i], f, [0, 700 * 1024, MiB, 3 * MiB / 2, f.length])));
  for (let i = 0; i < N; i++) {
    if (i === 2) {
      await assertRefused(c, rs[i], locs[i], names[i]);
      continue;
    }
    assert.equal(rs[i].status, 204, rs[i].text());
    await assertStored(c, rs[i].headers['coffer-node-id'], locs[i].split('/').pop(), files[i]);
  }
  // At most one of the two scanners streams at a time; at least the first upload got it; none gave up.
  const after = await streamCounts(stream);
  assert.equal(after.fallback, before.fallback);
  assert.ok(after.streamed >= before.streamed + 1 && after.streamed <= before.streamed + N, JSON.stringify(after));
});

test('streaming scan: bytes of a PATCH that was not stored never decide (the retry with other bytes is scanned after completion)', async () => {
  const c = await client(stream);
  const before = await streamCounts(stream);
  const data = bigBytes(3 * MiB, 240);
  const loc = await create(c, data.length, 'retried.bin');
  assert.equal((await patch(c, loc, 0, data.subarray(0, MiB))).status, 204);
  // Other bytes (EICAR first) with a wrong Upload-Checksum: 460, nothing stored, though its chunks
  // were written and the scanner may have read them.
  const evil = Buffer.concat([EICAR, bigBytes(2 * MiB - EICAR.length, 241)]);
  const wrong = crypto.createHash('sha256').update('not this').digest('base64');
  const bad = await patch(c, loc, MiB, evil, { 'upload-checksum': `sha256 ${wrong}` });
  assert.equal(bad.status, 460, bad.text());
  assert.equal(await offsetOf(c, loc), MiB);
  await countsUntil(stream, (k) => k.fallback === before.fallback + 1, 'the stream to be voided');
  const r = await patch(c, loc, MiB, data.subarray(MiB));
  assert.equal(r.status, 204, r.text());
  await assertStored(c, r.headers['coffer-node-id'], loc.split('/').pop(), data);
  assert.equal((await c.node(r.headers['coffer-node-id'])).json().scan.result, 'clean');
  assert.deepEqual(await streamCounts(stream), { streamed: before.streamed, fallback: before.fallback + 1 });
});

test('scan.stream off: the multi-PATCH uploads above were all scanned after completion', async () => {
  assert.deepEqual(await streamCounts(main), { streamed: 0, fallback: 0 });
});
