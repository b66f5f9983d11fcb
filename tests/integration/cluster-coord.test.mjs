// Leases and shared throttles between nodes (issue 24, docs/CLUSTER.md "Leases and shared throttles"):
// two Coffer nodes over one throw-away PostgreSQL (tests/integration/lib/pg.mjs; chunk bodies in the
// database, no Ceph needed). Ten wrong passwords split over A and B throttle the account on both (the
// right password is refused too, 429 with Retry-After); while A works on a tus upload B refuses it
// (423, the per-upload claim), and the upload finishes on B after; the background-jobs lease is held by exactly one node, and passes to the other once its holder stops;
// the coordination tables hold keyed hashes only (no username or address in a dump of the database).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { Server, bigBytes, until } from './lib/harness.mjs';
import { Postgres } from './lib/pg.mjs';

let pg, a, b;
after(async () => {
  for (const s of [b, a]) {
    if (s) { try { await s.kill(); } catch { /* gone */ } s.cleanup(); }
  }
  if (pg) pg.cleanup();
});

function config() {
  return {
    store: { engine: 'cluster', postgres: { conninfo: pg.tcp, password_file: pg.passwordFile, timeout: '10s' } },
    auth: { max_failures_per_account: 10, max_failures_per_ip: 1000, failure_window: '15m' },
    limits: { max_request_body_bytes: '16MiB' },
  };
}

const MiB = 1 << 20;
const T = { 'tus-resumable': '1.0.0' };
const OCT = { ...T, 'content-type': 'application/offset+octet-stream' };
const b64 = (v) => Buffer.from(v).toString('base64');

const login = (s, username, password) =>
  s.request('POST', '/api/v1/auth/login', { body: { username, password } });

test('two nodes: shared login throttle, one jobs-lease holder, no plaintext in the coordination tables', async () => {
  pg = new Postgres().start();
  a = new Server({ config: config() });
  await a.start();
  assert.match(a.stderr, /cluster: node [0-9a-f]{8}/);
  b = new Server({ config: config() });
  b.initialised = true;
  fs.copyFileSync(path.join(a.dir, 'master.key'), path.join(b.dir, 'master.key'));
  fs.chmodSync(path.join(b.dir, 'master.key'), 0o600);
  await b.start();

  // One holder of the background-jobs lease: A (first), B waits.
  assert.match(a.stderr, /this node holds the background-jobs lease/);
  assert.match(b.stderr, /another node holds the background-jobs lease/);

  // A user to throttle (made through A, seen through B).
  const admin = a.client((await a.login()).token);
  const mk = await admin.req('POST', '/api/v1/admin/users', { body: { username: 'victim', password: 'victim-password-1' } });
  assert.equal(mk.status, 201, mk.text());
  assert.equal((await login(b, 'victim', 'victim-password-1')).status, 200, 'the right password works on B');

  // Ten wrong passwords, alternating A, B: each a plain 401.
  for (let i = 0; i < 10; i++) {
    const r = await login(i % 2 ? b : a, 'victim', `wrong-${i}`);
    assert.equal(r.status, 401, `wrong password ${i + 1} on ${i % 2 ? 'B' : 'A'}: ${r.text()}`);
  }
  // The account is throttled on both nodes, even with the right password.
  for (const [s, name] of [[a, 'A'], [b, 'B']]) {
    const r = await login(s, 'victim', 'victim-password-1');
    assert.equal(r.status, 429, `${name}: throttled after ten failures over two nodes: ${r.text()}`);
    assert.equal(r.json().error, 'rate_limited');
    const ra = Number(r.headers['retry-after']);
    assert.ok(ra >= 1 && ra <= 15 * 60, `${name}: Retry-After ${r.headers['retry-after']}`);
  }
  // Another account is not affected.
  assert.equal((await a.login()).token.length > 0, true);

  // No username, no address in the coordination tables: keyed hashes (32 bytes) only.
  const dump = pg.dump();
  assert.ok(dump.includes('coffer_coord_events'), 'the events table is in the dump');
  for (const s of ['victim', '127.0.0.1', 'login-account']) assert.ok(!dump.includes(s), `no "${s}" in the database`);
  const keys = pg.psql("SELECT DISTINCT length(k) FROM coffer_coord_events UNION SELECT DISTINCT length(name) FROM coffer_coord_leases").trim();
  assert.deepEqual(keys.split(/\s+/).filter(Boolean).map(Number).sort(), [32], `keyed hashes only: ${keys}`);

  // tus: while A works on an upload's PATCH, B refuses another request on the same upload (423: the
  // per-upload claim is cluster-wide); the first PATCH wins and the upload completes on B afterwards.
  const viaB = b.client((await b.login()).token);
  const root = (await admin.spaces()).private.root;
  const data = bigBytes(12 * MiB + 5, 24);
  const cr = await admin.req('POST', '/api/v1/uploads', {
    headers: { ...T, 'upload-length': String(data.length), 'upload-metadata': `filename ${b64('claim.bin')},parent ${b64(root)}` },
  });
  assert.equal(cr.status, 201, cr.text());
  const loc = cr.headers.location;
  assert.equal((await admin.req('PATCH', loc, { headers: { ...OCT, 'upload-offset': '0' }, body: data.subarray(0, MiB) })).status, 204);
  // B's probes carry a wrong checksum: one that got in before A's PATCH changes nothing (460). A probe
  // may also reach B before A takes its PATCH up (two connections, two nodes): A's PATCH is then the
  // one refused (423, the claim works both ways) and is sent again.
  const seen = new Set();
  const wrong = `sha1 ${crypto.createHash('sha1').update('not x').digest('base64')}`;
  let fr, aRefused = false;
  for (let attempt = 0; attempt < 20; attempt++) {
    let bodySent;
    const sent = new Promise((res) => { bodySent = res; });
    const first = admin.req('PATCH', loc, { headers: { ...OCT, 'upload-offset': String(MiB) }, body: data.subarray(MiB, 12 * MiB), onSent: bodySent });
    let done = false;
    first.finally(() => { done = true; });
    await sent;
    while (!done) {
      const r = await viaB.req('PATCH', loc, { headers: { ...OCT, 'upload-offset': String(MiB), 'upload-checksum': wrong }, body: Buffer.from('x') });
      seen.add(r.status);
      if (r.status === 423) assert.equal(r.json().error, 'upload_locked');
    }
    fr = await first;
    if (fr.status !== 423) break;
    aRefused = true; /* only B's claim can refuse A here: A itself holds nothing */
  }
  assert.equal(fr.status, 204, fr.text());
  assert.ok(seen.has(423) || aRefused, `one node locked out while the other works on the upload: B saw ${[...seen]}`);
  for (const st of seen) assert.ok([423, 409, 460].includes(st), `unexpected ${st}`);
  // The rest through B, once the claims are given back (a request's claim goes when its job is freed,
  // just after its answer: 423 says "retry", and a client does).
  const last = await until(async () => {
    const r = await viaB.req('PATCH', loc, { headers: { ...OCT, 'upload-offset': String(12 * MiB) }, body: data.subarray(12 * MiB) });
    return r.status === 423 ? null : r;
  }, 'the upload to be free again');
  assert.equal(last.status, 204, last.text());
  const got = await viaB.download(last.headers['coffer-node-id']);
  assert.ok(got.body.equals(data), 'the upload begun on A and finished on B is byte-identical');

  // A stops (it gives the lease up): B takes the jobs over at its next renewal.
  await a.stop();
  await until(() => /holds the background-jobs lease now/.test(b.stderr), 'B to take the jobs lease over');
  // And B still refuses the throttled account.
  assert.equal((await login(b, 'victim', 'victim-password-1')).status, 429);
});
