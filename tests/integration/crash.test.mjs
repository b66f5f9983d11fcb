// Crash consistency (issue 10). Each round runs 50 concurrent operations (simple uploads, tus
// uploads in pieces, downloads of earlier files), SIGKILLs the server at a random moment, restarts it
// over the same data directory, and checks what a user was promised:
//   - every acknowledged upload (201, or the tus PATCH that completed it) is listed and downloads
//     byte for byte;
//   - nothing else is visible but whole files: every listed name is one this test uploaded, with
//     exactly the bytes it sent (an upload killed between its commit and its answer may be there,
//     complete; none is ever there in part);
//   - a resumable upload reports an offset at least as far as its last acknowledged PATCH and no
//     further than what was sent, and finishing it after the crash gives the exact bytes;
//   - `coffer fsck`: every stored version decrypts to its recorded SHA-256, and no chunk is an
//     orphan; chunks of uploads cut short (seen before the restart) are gone after it;
//   - `coffer audit verify`: the provenance chain verifies.
// COFFER_CRASH_ROUNDS and COFFER_CRASH_CONCURRENCY shorten it (scripts/test.sh runs the full 20 × 50).
// The random schedule comes from COFFER_CRASH_SEED (printed), so a failure can be replayed.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { Server, sha256, cli, withDeadline } from './lib/harness.mjs';

const ROUNDS = Number(process.env.COFFER_CRASH_ROUNDS || 20);
const CONCURRENCY = Number(process.env.COFFER_CRASH_CONCURRENCY || 50);
const SEED = Number(process.env.COFFER_CRASH_SEED || (Date.now() % 1000000));
const T = { 'tus-resumable': '1.0.0' };
const OCT = { ...T, 'content-type': 'application/offset+octet-stream' };
const b64 = (s) => Buffer.from(s).toString('base64');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A small deterministic PRNG (mulberry32) for sizes, mixes and kill times.
let state = SEED >>> 0;
function rand() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const randInt = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));

let server, token, root;
const attempted = new Map(); // name → {sha, size, acked}
const tusOpen = []; // {loc, name, data, acked (offset), sent (offset)}
const stats = { acked: 0, visibleUnacked: 0, tusResumed: 0, collected: 0, downloads: 0, rounds: 0 };

after(async () => {
  if (server) {
    await server.stop();
    server.cleanup();
  }
});

const req = (method, p, opts = {}) => server.request(method, p, { token, ...opts });

async function login() {
  token = (await server.login()).token;
}

function content(name, size) {
  // Content derived from the name: what a listed name must hold is known without bookkeeping races.
  const out = Buffer.alloc(size);
  let off = 0, i = 0;
  while (off < size) {
    const block = crypto.createHash('sha256').update(`${name}:${i++}`).digest();
    off += block.copy(out, off);
  }
  return out;
}

async function simpleUpload(name) {
  const data = content(name, randInt(0, 3) === 0 ? randInt(0, 4096) : randInt(4096, 1536 * 1024));
  attempted.set(name, { sha: sha256(data), size: data.length, acked: false });
  const r = await req('POST', `/api/v1/files?parent=${root}&name=${name}`, { body: data });
  if (r.status === 201) {
    attempted.get(name).acked = true;
    stats.acked++;
    progress();
  }
}

async function tusUpload(name) {
  const data = content(name, randInt(1024 * 1024, 3 * 1024 * 1024));
  attempted.set(name, { sha: sha256(data), size: data.length, acked: false });
  const c = await req('POST', '/api/v1/uploads', {
    headers: { ...T, 'upload-length': String(data.length), 'upload-metadata': `filename ${b64(name)},parent ${b64(root)}` },
  });
  if (c.status !== 201) return;
  const u = { loc: c.headers.location, name, data, acked: 0, sent: 0 };
  tusOpen.push(u);
  await tusContinue(u);
}

async function tusContinue(u) {
  while (u.acked < u.data.length) {
    const piece = u.data.subarray(u.acked, Math.min(u.data.length, u.acked + randInt(256 * 1024, 1024 * 1024)));
    u.sent = u.acked + piece.length;
    const p = await req('PATCH', u.loc, { headers: { ...OCT, 'upload-offset': String(u.acked) }, body: piece });
    if (p.status !== 204) return;
    u.acked = Number(p.headers['upload-offset']);
    progress();
    if (u.acked === u.data.length) {
      attempted.get(u.name).acked = true;
      stats.acked++;
      tusOpen.splice(tusOpen.indexOf(u), 1);
    }
  }
}

async function download(name) {
  const id = acknowledgedIds.get(name);
  if (!id) return;
  const d = await req('GET', `/api/v1/files/${id}/content`);
  // A transfer the SIGKILL cut short ends early (the connection drops; no reset reaches the client):
  // only a body of the announced length is a finished download, and it must be exact.
  if (d.status === 200 && d.body.length === Number(d.headers['content-length'])) {
    assert.equal(sha256(d.body), attempted.get(name).sha, `download of ${name} during the load`);
    stats.downloads++;
  }
}

const acknowledgedIds = new Map(); // name → node id, filled by each round's verification

// The kill comes after a random number of acknowledgements in the round (so that it always lands
// among operations in flight, however fast this build is), or after a random time.
let roundAcks = 0, killAt = 0, killNow = () => {};
function progress() {
  if (++roundAcks === killAt) killNow();
}

async function listAll() {
  const out = [];
  let cursor = '';
  for (;;) {
    const r = await req('GET', `/api/v1/nodes/${root}/children?limit=500${cursor ? `&cursor=${cursor}` : ''}`);
    assert.equal(r.status, 200, r.text());
    const j = r.json();
    out.push(...j.items);
    if (!j.next_cursor) return out;
    cursor = j.next_cursor;
  }
}

function fsck() {
  const r = cli(['fsck', '-c', server.configPath]);
  assert.ok((r.status === 0 || r.status === 1) && r.stdout.startsWith('{'), `fsck: ${r.status} ${r.stdout} ${r.stderr}`);
  return { ok: r.status === 0, ...JSON.parse(r.stdout) };
}

/** After a restart: the promises, checked against the store. */
async function verify(round) {
  const listed = await listAll();
  const byName = new Map(listed.map((n) => [n.name, n]));
  for (const [name, a] of attempted) {
    if (a.acked) assert.ok(byName.has(name), `round ${round}: acknowledged ${name} is missing after the crash`);
  }
  for (const n of listed) {
    const a = attempted.get(n.name);
    assert.ok(a, `round ${round}: ${n.name} is listed but was never uploaded`);
    if (!a.acked) {
      stats.visibleUnacked++;
      a.acked = true; // it committed before the kill; from now on it must stay
    }
    assert.equal(n.size, a.size, `round ${round}: ${n.name} has the wrong size`);
    if (!acknowledgedIds.has(n.name)) {
      const d = await req('GET', `/api/v1/files/${n.id}/content`);
      assert.equal(d.status, 200);
      assert.equal(sha256(d.body), a.sha, `round ${round}: ${n.name} has other bytes than were sent`);
      acknowledgedIds.set(n.name, n.id);
    }
  }
  // Resumable uploads: durable up to their last acknowledged PATCH, never past what was sent.
  for (const u of [...tusOpen]) {
    const h = await req('HEAD', u.loc, { headers: T });
    if (h.status === 404) {
      // Only an upload that completed (and so is listed) may be gone.
      assert.ok(byName.has(u.name), `round ${round}: resumable ${u.name} lost (acked offset ${u.acked})`);
      tusOpen.splice(tusOpen.indexOf(u), 1);
      continue;
    }
    assert.equal(h.status, 200, `HEAD ${u.name}: ${h.status}`);
    const off = Number(h.headers['upload-offset']);
    assert.ok(off >= u.acked && off <= Math.max(u.acked, u.sent), `round ${round}: ${u.name} offset ${off}, acked ${u.acked}, sent ${u.sent}`);
    u.acked = off;
  }
}

test(`crash consistency: ${ROUNDS} SIGKILLs under ${CONCURRENCY} concurrent uploads and downloads`, { timeout: 1200000 }, async () => {
  console.log(`seed ${SEED}`);
  server = new Server({ config: { limits: { max_request_body_bytes: '8MiB' } } });
  await server.start();
  await login();
  root = (await req('GET', '/api/v1/spaces')).json().private.root;
  let seq = 0;
  for (let round = 1; round <= ROUNDS; round++) {
    // The load: finish earlier resumable uploads, new simple and tus uploads, downloads.
    const work = [];
    for (const u of tusOpen.slice(0, 5)) work.push(tusContinue(u).then(() => { stats.tusResumed++; }));
    const names = [...acknowledgedIds.keys()];
    while (work.length < CONCURRENCY) {
      const r = rand();
      const name = `r${round}-${++seq}.bin`;
      if (r < 0.45) work.push(simpleUpload(name));
      else if (r < 0.7) work.push(tusUpload(name));
      else if (names.length > 0) work.push(download(names[randInt(0, names.length - 1)]));
      else work.push(simpleUpload(name));
    }
    roundAcks = 0;
    killAt = randInt(3, 40);
    const trigger = new Promise((r) => { killNow = r; });
    const settled = Promise.allSettled(work);
    await Promise.race([settled, trigger, sleep(randInt(2000, 8000))]);
    // Every request still in flight rejects once the server is gone (the harness destroys its
    // connections): without that, uploads waiting for flow-control credit on a connection that
    // neither reads nor writes never settled, and the event loop ended with this await pending.
    await server.kill();
    let pending = work.length;
    for (const w of work) w.then(() => pending--, () => pending--);
    const results = await withDeadline(settled, 120000, () => `round ${round}: ${pending} of ${work.length} operations still pending after the SIGKILL`);
    for (const r of results) {
      // Only transport errors from the kill are expected; an assertion inside the load is a failure.
      if (r.status === 'rejected' && r.reason instanceof assert.AssertionError) throw r.reason;
    }
    // The killed store, before any recovery: what the restart will have to clean up.
    const dead = fsck();
    assert.equal(dead.corrupt, 0, `round ${round}: corrupt after SIGKILL: ${JSON.stringify(dead)}`);
    assert.equal(dead.orphan_contents, 0, `round ${round}: orphans after SIGKILL: ${JSON.stringify(dead)}`);
    await server.start();
    await login();
    await verify(round);
    const live = fsck(); // read-only beside the running server, which is idle now
    assert.ok(live.ok, `round ${round}: fsck ${JSON.stringify(live)}`);
    assert.equal(live.unfinished_contents, 0, `round ${round}: uploads cut short were not collected: ${JSON.stringify(live)}`);
    stats.collected += dead.unfinished_contents;
    const av = cli(['audit', 'verify', '-c', server.configPath]);
    assert.equal(av.status, 0, `round ${round}: audit verify: ${av.stdout}${av.stderr}`);
    stats.rounds++;
  }
  const acked = [...attempted.values()].filter((a) => a.acked).length;
  console.log(`rounds ${stats.rounds}, uploads attempted ${attempted.size}, acknowledged ${stats.acked}, committed but unacknowledged (complete) ${stats.visibleUnacked}, stored now ${acked}, downloads ${stats.downloads}, tus resumed ${stats.tusResumed}, cut-short uploads collected ${stats.collected}`);
  assert.ok(stats.collected > 0, 'no round killed an upload in flight: the test did not exercise recovery');
});
