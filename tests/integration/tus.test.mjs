// Resumable uploads (issue 7; SPEC §5 "Resumable uploads"; docs/API.md "Resumable uploads"): tus 1.0.0
// at /api/v1/uploads through the real server, by hand over HTTP/2, with plain curl following the
// protocol, and with the real tus-js-client through a proxy that kills its connection mid-upload.
//
// Servers: `main` (max_file 3 GiB, bodies up to 16 MiB, max_pending 4 / 160 MiB per user),
// `short` (uploads.expire_after 2s: expiry), and a restart of `main` (resumption across restarts).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawn } from 'node:child_process';
import * as tus from 'tus-js-client';
import { Server, EICAR, bigBytes, bytes, sha256, curl, dirContains, walkFiles, until } from './lib/harness.mjs';

const HEX32 = /^[0-9a-f]{32}$/;
const MiB = 1 << 20;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const b64 = (s) => Buffer.from(s).toString('base64');
const T = { 'tus-resumable': '1.0.0' };
const OCT = { ...T, 'content-type': 'application/offset+octet-stream' };

let main, short, work;
let admin, root, bob, bobRoot, carolToken;

function meta(pairs) {
  return Object.entries(pairs).map(([k, v]) => (v === null ? k : `${k} ${b64(v)}`)).join(',');
}

async function create(client, { length, name, parent, extra = {}, body, headers = {} }) {
  return client.req('POST', '/api/v1/uploads', {
    headers: { ...(body !== undefined ? OCT : T), 'upload-length': String(length), 'upload-metadata': meta({ filename: name, parent, ...extra }), ...headers },
    body,
  });
}

async function patch(client, loc, offset, body, headers = {}) {
  return client.req('PATCH', loc, { headers: { ...OCT, 'upload-offset': String(offset), ...headers }, body });
}

async function head(client, loc) {
  return client.req('HEAD', loc, { headers: T });
}

async function childNamed(client, parent, name) {
  const r = await client.children(parent);
  assert.equal(r.status, 200);
  return r.json().items.find((c) => c.name === name);
}

async function addUser(server, adminClient, username) {
  const r = await adminClient.req('POST', '/api/v1/admin/users', { body: { username, password: `${username}-password-1` } });
  assert.equal(r.status, 201, r.text());
  const login = await server.login(username, `${username}-password-1`);
  return server.client(login.token);
}

before(async () => {
  work = fs.mkdtempSync(path.join(process.env.COFFER_TEST_TMP || '/tmp', 'coffer-tus-work-'));
  main = await new Server({
    config: {
      limits: { max_file_bytes: '3GiB', max_request_body_bytes: '16MiB' },
      uploads: { max_pending: 4, max_pending_bytes: '3GiB' },
    },
  }).start();
  const login = await main.login();
  admin = main.client(login.token);
  root = (await admin.spaces()).private.root;
  bob = await addUser(main, admin, 'bob');
  bobRoot = (await bob.spaces()).private.root;
  carolToken = (await addUser(main, admin, 'carol')).token;
  // scan.stream is on by default; an idle limit of an hour leaves the expiry alone to cancel the
  // scan streaming the expired upload.
  short = await new Server({ config: { uploads: { expire_after: '2s' }, scan: { stream_idle_seconds: 3600 } } }).start();
});

after(async () => {
  for (const s of [main, short]) if (s) { await s.stop(); s.cleanup(); }
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

test('OPTIONS names the protocol, its extensions and limits, without authentication', async () => {
  const r = await main.request('OPTIONS', '/api/v1/uploads');
  assert.equal(r.status, 204);
  assert.equal(r.headers['tus-resumable'], '1.0.0');
  assert.equal(r.headers['tus-version'], '1.0.0');
  assert.equal(r.headers['tus-extension'], 'creation,creation-with-upload,termination,expiration,checksum');
  assert.equal(r.headers['tus-checksum-algorithm'], 'sha1,sha256');
  assert.equal(r.headers['tus-max-size'], String(3 * 1024 * MiB));
});

test('creation: every malformed request gets its status and creates nothing', async () => {
  const good = { 'upload-length': '10', 'upload-metadata': meta({ filename: 'x.bin', parent: root }) };
  const file = await admin.req('POST', `/api/v1/files?parent=${root}&name=not-a-folder.txt`, { body: Buffer.from('x') });
  assert.equal(file.status, 201);
  const cases = [
    [{ 'upload-length': '10', 'upload-metadata': meta({ filename: 'x.bin', parent: root }) }, 412, 'unsupported_version'],
    [{ 'tus-resumable': '0.2.2', ...good }, 412, 'unsupported_version'],
    [{ ...T, 'upload-metadata': good['upload-metadata'] }, 400, 'bad_request'],
    [{ ...T, ...good, 'upload-length': '1e3' }, 400, 'bad_request'],
    [{ ...T, ...good, 'upload-length': '-1' }, 400, 'bad_request'],
    [{ ...T, 'upload-defer-length': '1', 'upload-metadata': good['upload-metadata'] }, 400, 'bad_request'],
    [{ ...T, ...good, 'upload-length': String(3 * 1024 * MiB + 1) }, 413, 'payload_too_large'],
    [{ ...T, 'upload-length': '10' }, 400, 'bad_request'],
    [{ ...T, ...good, 'upload-metadata': meta({ parent: root }) }, 400, 'bad_request'],
    [{ ...T, ...good, 'upload-metadata': meta({ filename: 'x.bin' }) }, 400, 'bad_request'],
    [{ ...T, ...good, 'upload-metadata': `filename !!!,parent ${b64(root)}` }, 400, 'bad_request'],
    [{ ...T, ...good, 'upload-metadata': `filename ${b64('a')},filename ${b64('b')},parent ${b64(root)}` }, 400, 'bad_request'],
    [{ ...T, ...good, 'upload-metadata': meta({ filename: 'a/b', parent: root }) }, 400, 'bad_request'],
    [{ ...T, ...good, 'upload-metadata': meta({ filename: '..', parent: root }) }, 400, 'bad_request'],
    [{ ...T, ...good, 'upload-metadata': meta({ filename: 'x', parent: root, on_conflict: 'merge' }) }, 400, 'bad_request'],
    [{ ...T, ...good, 'upload-metadata': meta({ filename: 'x', parent: 'f'.repeat(32) }) }, 404, 'not_found'],
    [{ ...T, ...good, 'upload-metadata': meta({ filename: 'x', parent: bobRoot }) }, 404, 'not_found'],
    [{ ...T, ...good, 'upload-metadata': meta({ filename: 'x', parent: file.json().id }) }, 400, 'bad_request'],
    [{ ...T, ...good, 'upload-checksum': 'md5 AAAA' }, 400, 'unsupported_checksum'],
    [{ ...T, ...good, 'upload-checksum': 'sha1 !!' }, 400, 'bad_request'],
  ];
  for (const [headers, status, code] of cases) {
    const r = await admin.req('POST', '/api/v1/uploads', { headers });
    assert.equal(r.status, status, `${JSON.stringify(headers)} → ${r.status} ${r.text()}`);
    assert.equal(r.json().error, code);
    assert.equal(r.headers['tus-resumable'], '1.0.0');
    assert.equal(r.headers.location, undefined);
    if (status === 412) assert.equal(r.headers['tus-version'], '1.0.0');
  }
  // A body with the wrong type, and a body longer than the upload.
  let r = await admin.req('POST', '/api/v1/uploads', { headers: { ...T, ...good, 'content-type': 'text/plain' }, body: 'hello' });
  assert.equal(r.status, 415);
  r = await admin.req('POST', '/api/v1/uploads', { headers: { ...OCT, ...good }, body: Buffer.alloc(11) });
  assert.equal(r.status, 400);
  // A file as parent.
  const f = await admin.upload(root, 'plain.txt', 'plain');
  r = await create(admin, { length: 1, name: 'x', parent: f.json().id });
  assert.equal(r.status, 400);
  // Without authentication.
  r = await main.request('POST', '/api/v1/uploads', { headers: { ...T, ...good } });
  assert.equal(r.status, 401);
  // Nothing was created: the admin still has all four upload slots.
  const locs = [];
  for (let i = 0; i < 4; i++) {
    const c = await create(admin, { length: 5, name: `slot${i}`, parent: root });
    assert.equal(c.status, 201, c.text());
    locs.push(c.headers.location);
  }
  for (const l of locs) assert.equal((await admin.req('DELETE', l, { headers: T })).status, 204);
});

test('an upload across unaligned PATCHes is stored byte for byte; HEAD reports progress and completion', async () => {
  const data = bytes(3 * MiB + 12345, 71);
  const t0 = Date.now();
  const r = await create(admin, { length: data.length, name: 'unaligned.bin', parent: root, extra: { filetype: 'application/octet-stream' } });
  assert.equal(r.status, 201, r.text());
  const loc = r.headers.location;
  assert.match(loc, /^\/api\/v1\/uploads\/[0-9a-f]{32}$/);
  assert.equal(r.headers['upload-offset'], '0');
  const expires = Date.parse(r.headers['upload-expires']);
  // 24 h after the creation, which happened between t0 and now (the header counts whole seconds).
  assert.ok(expires >= t0 + 24 * 3600 * 1000 - 1000 && expires <= Date.now() + 24 * 3600 * 1000, r.headers['upload-expires']);
  assert.match(r.headers['upload-expires'], /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/);

  let h = await head(admin, loc);
  assert.equal(h.status, 200);
  assert.equal(h.headers['upload-offset'], '0');
  assert.equal(h.headers['upload-length'], String(data.length));
  assert.equal(h.headers['upload-metadata'], meta({ filename: 'unaligned.bin', parent: root, filetype: 'application/octet-stream' }));
  assert.equal(h.headers['cache-control'], 'no-store');
  assert.equal(h.body.length, 0);

  // Pieces that start and end inside chunks, one spanning two chunk boundaries, one empty.
  const cuts = [0, 1000, 1000, MiB + 17, 3 * MiB - 5, data.length];
  for (let i = 0; i + 1 < cuts.length; i++) {
    const p = await patch(admin, loc, cuts[i], data.subarray(cuts[i], cuts[i + 1]));
    const last = i + 2 === cuts.length;
    assert.equal(p.status, 204, p.text());
    assert.equal(p.headers['upload-offset'], String(cuts[i + 1]));
    if (!last) {
      assert.equal(p.headers['coffer-node-id'], undefined);
      assert.ok(p.headers['upload-expires']);
      h = await head(admin, loc);
      assert.equal(h.headers['upload-offset'], String(cuts[i + 1]));
    } else {
      assert.match(p.headers['coffer-node-id'], HEX32);
      const node = await admin.node(p.headers['coffer-node-id']);
      assert.equal(node.json().name, 'unaligned.bin');
      assert.equal(node.json().size, data.length);
      assert.equal(node.json().sha256, sha256(data));
      assert.equal(node.json().scan.result, 'clean');
      const d = await admin.download(p.headers['coffer-node-id']);
      assert.equal(d.status, 200);
      assert.ok(d.body.equals(data));
      // Completed: HEAD still answers, with the node, so a client that lost the answer learns it.
      h = await head(admin, loc);
      assert.equal(h.status, 200);
      assert.equal(h.headers['upload-offset'], String(data.length));
      assert.equal(h.headers['coffer-node-id'], p.headers['coffer-node-id']);
      // A retried final PATCH is refused (409), an empty PATCH at the end is answered with the node.
      assert.equal((await patch(admin, loc, cuts[i], data.subarray(cuts[i]))).status, 409);
      const e = await patch(admin, loc, data.length, Buffer.alloc(0));
      assert.equal(e.status, 204);
      assert.equal(e.headers['coffer-node-id'], p.headers['coffer-node-id']);
    }
  }
});

test('PATCH: each malformed request gets its status and appends nothing; a checksum mismatch stores nothing', async () => {
  const data = bytes(2 * MiB + 100, 72);
  const loc = (await create(admin, { length: data.length, name: 'patchy.bin', parent: root })).headers.location;
  assert.equal((await patch(admin, loc, 0, data.subarray(0, 700))).status, 204);
  const bad = [
    [{ 'content-type': 'application/offset+octet-stream', 'upload-offset': '700' }, 412],
    [{ ...T, 'content-type': 'application/octet-stream', 'upload-offset': '700' }, 415],
    [{ ...T, 'upload-offset': '700' }, 415],
    [{ ...OCT }, 400],
    [{ ...OCT, 'upload-offset': 'x' }, 400],
    [{ ...OCT, 'upload-offset': '0' }, 409],
    [{ ...OCT, 'upload-offset': '701' }, 409],
    [{ ...OCT, 'upload-offset': '700', 'upload-checksum': 'crc32 AAAA' }, 400],
    [{ ...OCT, 'upload-offset': '700', 'upload-checksum': `sha1 ${crypto.createHash('sha1').update('other').digest('base64')}` }, 460],
    [{ ...OCT, 'upload-offset': '700', 'upload-checksum': `sha256 ${crypto.createHash('sha256').update('other').digest('base64')}` }, 460],
  ];
  for (const [headers, status] of bad) {
    const r = await admin.req('PATCH', loc, { headers, body: data.subarray(700, 700 + MiB) });
    assert.equal(r.status, status, `${JSON.stringify(headers)} → ${r.status} ${r.text()}`);
    if (status === 460) assert.equal(r.json().error, 'checksum_mismatch');
    if (status === 409) assert.equal(r.json().error, 'offset_mismatch');
    assert.equal((await head(admin, loc)).headers['upload-offset'], '700');
  }
  // Past the end.
  let r = await patch(admin, loc, 700, Buffer.alloc(data.length));
  assert.equal(r.status, 400);
  // Correct checksums are accepted (sha1 and sha256).
  r = await patch(admin, loc, 700, data.subarray(700, MiB), { 'upload-checksum': `sha1 ${crypto.createHash('sha1').update(data.subarray(700, MiB)).digest('base64')}` });
  assert.equal(r.status, 204, r.text());
  r = await patch(admin, loc, MiB, data.subarray(MiB), { 'upload-checksum': `sha256 ${crypto.createHash('sha256').update(data.subarray(MiB)).digest('base64')}` });
  assert.equal(r.status, 204, r.text());
  // Nothing of the refused bodies got in: the file is exactly the data.
  const d = await admin.download(r.headers['coffer-node-id']);
  assert.ok(d.body.equals(data));
  // Unknown and malformed ids.
  for (const id of ['0'.repeat(32), 'nothex', 'A'.repeat(32)]) {
    assert.equal((await head(admin, `/api/v1/uploads/${id}`)).status, 404);
    assert.equal((await patch(admin, `/api/v1/uploads/${id}`, 0, Buffer.from('x'))).status, 404);
    assert.equal((await admin.req('DELETE', `/api/v1/uploads/${id}`, { headers: T })).status, 404);
  }
});

test("another user's upload does not exist for them; termination deletes and frees the slot", async () => {
  const loc = (await create(admin, { length: 100, name: 'private.bin', parent: root })).headers.location;
  assert.equal((await patch(admin, loc, 0, bytes(50, 3))).status, 204);
  for (const c of [bob]) {
    assert.equal((await head(c, loc)).status, 404);
    assert.equal((await patch(c, loc, 50, bytes(50, 4))).status, 404);
    assert.equal((await c.req('DELETE', loc, { headers: T })).status, 404);
  }
  assert.equal((await head(admin, loc)).headers['upload-offset'], '50');
  const r = await admin.req('DELETE', loc, { headers: T });
  assert.equal(r.status, 204);
  assert.equal(r.headers['tus-resumable'], '1.0.0');
  assert.equal((await head(admin, loc)).status, 404);
  assert.equal((await patch(admin, loc, 50, bytes(50, 4))).status, 404);
  assert.equal(await childNamed(admin, root, 'private.bin'), undefined);
});

test('creation-with-upload, a whole file in the creation, and an empty file', async () => {
  const data = bytes(MiB + 3, 73);
  let r = await create(admin, { length: data.length, name: 'cwu.bin', parent: root, body: data.subarray(0, 4000) });
  assert.equal(r.status, 201, r.text());
  assert.equal(r.headers['upload-offset'], '4000');
  r = await patch(admin, r.headers.location, 4000, data.subarray(4000));
  assert.equal(r.status, 204);
  assert.ok((await admin.download(r.headers['coffer-node-id'])).body.equals(data));

  r = await create(admin, { length: 5, name: 'whole.txt', parent: root, body: Buffer.from('hello') });
  assert.equal(r.status, 201, r.text());
  assert.equal(r.headers['upload-offset'], '5');
  assert.match(r.headers['coffer-node-id'], HEX32);
  assert.equal((await admin.download(r.headers['coffer-node-id'])).text(), 'hello');

  r = await create(admin, { length: 0, name: 'empty.txt', parent: root });
  assert.equal(r.status, 201, r.text());
  assert.match(r.headers['coffer-node-id'], HEX32);
  const n = (await admin.node(r.headers['coffer-node-id'])).json();
  assert.equal(n.size, 0);
  assert.equal(n.sha256, sha256(Buffer.alloc(0)));

  // A checksum mismatch on the creation body: the upload exists, nothing was appended.
  r = await create(admin, { length: 10, name: 'cwu-bad.bin', parent: root, body: Buffer.from('12345'), headers: { 'upload-checksum': `sha1 ${crypto.createHash('sha1').update('nope').digest('base64')}` } });
  assert.equal(r.status, 201);
  assert.equal(r.headers['upload-offset'], '0');
  assert.equal((await admin.req('DELETE', r.headers.location, { headers: T })).status, 204);
});

test('completion scans: an infected upload answers 422, is discarded and recorded', async () => {
  const data = Buffer.concat([bytes(MiB, 74), EICAR]);
  const loc = (await create(admin, { length: data.length, name: 'evil.com', parent: root })).headers.location;
  assert.equal((await patch(admin, loc, 0, data.subarray(0, MiB))).status, 204);
  const r = await patch(admin, loc, MiB, data.subarray(MiB));
  assert.equal(r.status, 422, r.text());
  assert.equal(r.json().error, 'infected');
  assert.match(r.json().signature, /EICAR/i);
  assert.equal((await head(admin, loc)).status, 404);
  assert.equal(await childNamed(admin, root, 'evil.com'), undefined);
  const ev = (await admin.req('GET', '/api/v1/audit?action=upload.rejected')).json().events.find((e) => e.detail.name === 'evil.com');
  assert.ok(ev, 'an upload.rejected event');
  assert.equal(ev.result, 'infected');
  assert.equal(ev.detail.via, 'tus');
  assert.equal(ev.detail.sha256, sha256(data));
  assert.equal(ev.detail.upload, loc.split('/').pop());
  assert.equal(ev.actor.name, 'admin');
});

test('completion re-checks the parent: a name taken meanwhile (409) and a revoked grant (404) discard the upload', async () => {
  // Name conflict under on_conflict=fail.
  let loc = (await create(admin, { length: 10, name: 'race.txt', parent: root })).headers.location;
  assert.equal((await admin.upload(root, 'race.txt', 'first')).status, 201);
  let r = await patch(admin, loc, 0, Buffer.from('0123456789'));
  assert.equal(r.status, 409, r.text());
  assert.equal(r.json().error, 'conflict');
  assert.equal((await head(admin, loc)).status, 404);
  // on_conflict=replace makes a new version.
  loc = (await create(admin, { length: 10, name: 'race.txt', parent: root, extra: { on_conflict: 'replace' } })).headers.location;
  r = await patch(admin, loc, 0, Buffer.from('0123456789'));
  assert.equal(r.status, 204, r.text());
  assert.equal((await admin.node(r.headers['coffer-node-id'])).json().version, 2);

  // Bob may edit a folder of the admin's, starts an upload there, and loses the grant before finishing.
  const folder = (await admin.mkdir(root, 'shared-edit')).json().id;
  const me = (await bob.req('GET', '/api/v1/me')).json();
  assert.equal((await admin.req('PUT', `/api/v1/nodes/${folder}/acl`, { body: { entries: [{ principal: `user:${me.id}`, level: 'edit' }] } })).status, 200);
  r = await create(bob, { length: 6, name: 'late.txt', parent: folder });
  assert.equal(r.status, 201, r.text());
  loc = r.headers.location;
  assert.equal((await patch(bob, loc, 0, Buffer.from('abc'))).status, 204);
  assert.equal((await admin.req('PUT', `/api/v1/nodes/${folder}/acl`, { body: { entries: [] } })).status, 200);
  r = await patch(bob, loc, 3, Buffer.from('def'));
  assert.equal(r.status, 404, r.text());
  assert.equal((await head(bob, loc)).status, 404);
  assert.equal(await childNamed(admin, folder, 'late.txt'), undefined);
});

test('per-user caps: unfinished uploads by count and by total size (429), freed by completion and termination', async () => {
  const locs = [];
  for (let i = 0; i < 4; i++) {
    const r = await create(bob, { length: 10, name: `cap${i}`, parent: bobRoot });
    assert.equal(r.status, 201);
    locs.push(r.headers.location);
  }
  let r = await create(bob, { length: 10, name: 'cap4', parent: bobRoot });
  assert.equal(r.status, 429);
  assert.equal(r.json().error, 'too_many_uploads');
  // Another user is not affected.
  const carol = main.client(carolToken);
  const carolRoot = (await carol.spaces()).private.root;
  r = await create(carol, { length: 10, name: 'c', parent: carolRoot });
  assert.equal(r.status, 201);
  assert.equal((await carol.req('DELETE', r.headers.location, { headers: T })).status, 204);
  // Completing one frees a slot; terminating the rest frees them all.
  assert.equal((await patch(bob, locs[0], 0, Buffer.from('0123456789'))).status, 204);
  r = await create(bob, { length: 10, name: 'cap5', parent: bobRoot });
  assert.equal(r.status, 201);
  locs.push(r.headers.location);
  for (const l of locs.slice(1)) assert.equal((await bob.req('DELETE', l, { headers: T })).status, 204);
  // Size: 3 GiB in total; two 1.6 GiB uploads do not fit.
  r = await create(bob, { length: 1600 * MiB, name: 'big1', parent: bobRoot });
  assert.equal(r.status, 201);
  const r2 = await create(bob, { length: 1600 * MiB, name: 'big2', parent: bobRoot });
  assert.equal(r2.status, 429);
  assert.equal((await bob.req('DELETE', r.headers.location, { headers: T })).status, 204);
});

test('a second request on an upload that is being completed gets 423; the first one wins', async () => {
  const data = bigBytes(12 * MiB, 75);
  const loc = (await create(admin, { length: data.length, name: 'locked.bin', parent: root })).headers.location;
  assert.equal((await patch(admin, loc, 0, data.subarray(0, MiB))).status, 204);
  // Cluster mode (lib/harness.mjs): the big PATCH goes to node 1, and so do the probes until one is
  // locked out; then they alternate between the nodes (a probe on node 2 that came first would itself
  // hold the upload for a moment, and lock out the big PATCH: only one connection orders them). Even
  // on one node the order is not certain there: each claim is also a lease in the database, taken off
  // the connection's order, so a probe sent after the big PATCH may hold the upload first; the big
  // PATCH then gets 423 and is sent again, as a tus client would (nothing was stored), at most 10 times.
  const [onA, onB] = main.nodes ? main.nodes.map((n) => n.client(admin.token)) : [admin, admin];
  const wrong = `sha1 ${crypto.createHash('sha1').update('not x').digest('base64')}`;
  let r, seen;
  for (let attempt = 1; ; attempt++) {
    let bodySent;
    const sent = new Promise((res) => { bodySent = res; });
    const first = onA.req('PATCH', loc, { headers: { ...OCT, 'upload-offset': String(MiB) }, body: data.subarray(MiB), onSent: bodySent });
    let done = false;
    first.finally(() => { done = true; });
    // The probes carry a wrong checksum, so one that got in before the big PATCH changes nothing (460);
    // while the big one is hashed and scanned, they are locked out (423); after it, 409. They start
    // once the big body is written to the connection they share: their frames follow its last one, so
    // the server takes up the big PATCH first (an event, where a fixed pause used to guess).
    await sent;
    seen = new Set();
    for (let i = 0; !done; i++) {
      const p = await patch(seen.has(423) && i % 2 ? onB : onA, loc, MiB, Buffer.from('x'), { 'upload-checksum': wrong });
      seen.add(p.status);
      if (p.status === 423) assert.equal(p.json().error, 'upload_locked');
      await sleep(2);
    }
    r = await first;
    if (!main.nodes || r.status !== 423 || attempt === 10) break;
  }
  assert.equal(r.status, 204, r.text());
  assert.ok(seen.has(423), `statuses seen: ${[...seen]}`);
  for (const s of seen) assert.ok([423, 409, 460].includes(s), `unexpected ${s}`);
  assert.ok((await admin.download(r.headers['coffer-node-id'])).body.equals(data));
});

test('provenance: upload.start and file.upload (via tus) for the uploader', async () => {
  const loc = (await create(admin, { length: 4, name: 'prov.txt', parent: root })).headers.location;
  const id = loc.split('/').pop();
  const r = await patch(admin, loc, 0, Buffer.from('abcd'));
  assert.equal(r.status, 204);
  const events = (await admin.req('GET', '/api/v1/audit?action=upload.start,file.upload')).json().events;
  const start = events.find((e) => e.action === 'upload.start' && e.detail.upload === id);
  const done = events.find((e) => e.action === 'file.upload' && e.detail.upload === id);
  assert.ok(start && done);
  assert.equal(start.detail.name, 'prov.txt');
  assert.equal(start.detail.size, 4);
  assert.equal(start.node.id, root);
  assert.equal(done.node.id, r.headers['coffer-node-id']);
  assert.equal(done.detail.sha256, sha256(Buffer.from('abcd')));
  assert.equal(done.detail.via, 'tus');
  assert.equal(done.actor.name, 'admin');
  assert.equal(done.ip, '127.0.0.1');
});

test('a half-finished upload leaves no readable trace on disk: data directory, temp and scratch directories', async () => {
  const marker = Buffer.from(`COFFER-TUS-MARKER-${crypto.randomBytes(12).toString('hex')}`);
  // The marker in a full chunk and in the unfinished tail; then a restart flushes RocksDB to SSTs.
  const part = Buffer.concat([Buffer.alloc(1000, 0x20), marker, bytes(MiB, 76), marker, Buffer.alloc(5000, 0x21)]);
  const loc = (await create(admin, { length: 3 * MiB, name: 'marker.bin', parent: root })).headers.location;
  assert.equal((await patch(admin, loc, 0, part)).status, 204);
  const places = [main.dir, '/dev/shm', '/var/tmp'];
  const check = () => {
    for (const d of places) {
      if (!fs.existsSync(d)) continue;
      assert.equal(dirContains(d, marker), null, `marker found under ${d}`);
    }
    // Cluster mode (lib/harness.mjs): the store is a database and a RADOS pool, searched too.
    if (main.storeContains) assert.equal(main.storeContains([marker]), null, 'marker found in the database or the pool');
    for (const f of fs.readdirSync('/tmp')) {
      const p = path.join('/tmp', f);
      try { if (fs.statSync(p).isFile()) assert.ok(!fs.readFileSync(p).includes(marker), `marker in ${p}`); } catch { /* vanished */ }
    }
  };
  check();
  await main.stop();
  await main.start();
  const login = await main.login();
  admin = main.client(login.token);
  bob = main.client((await main.login('bob', 'bob-password-1')).token);
  check();
  // The upload survived the restart and resumes where it was.
  const h = await head(admin, loc);
  assert.equal(h.status, 200);
  assert.equal(h.headers['upload-offset'], String(part.length));
  assert.equal((await admin.req('DELETE', loc, { headers: T })).status, 204);
  // The search looked at the store: its files in data_dir (in cluster mode: the database and the pool).
  if (!main.storeContains) assert.ok(walkFiles(main.dataDir).length > 0);
});

test('expiry: an unfinished upload past Upload-Expires is gone, with its chunks', async () => {
  const login = await short.login();
  const c = short.client(login.token);
  const sroot = (await c.spaces()).private.root;
  const fallbacks = async () => Number(/^coffer_scan_stream_fallback_total (\d+)$/m.exec((await short.request('GET', '/metrics')).text())[1]);
  const fallback0 = short.nodes ? 0 : await fallbacks();
  const r = await create(c, { length: 2 * MiB, name: 'stale.bin', parent: sroot });
  assert.equal(r.status, 201);
  assert.ok(Date.parse(r.headers['upload-expires']) - Date.now() <= 3000);
  assert.equal((await patch(c, r.headers.location, 0, bytes(MiB + 10, 77))).status, 204);
  const deadline = Date.now() + 120000; // generous: the expiry is polled for, not timed
  let status;
  for (;;) {
    status = (await head(c, r.headers.location)).status;
    if (status === 404 || Date.now() > deadline) break;
    assert.equal(status === 200 || status === 410, true, `status ${status}`);
    await sleep(250);
  }
  assert.equal(status, 404);
  // The sweep holds the upload (the busy set; in cluster mode its lease) from before the state is
  // deleted, which HEAD sees at once, until its chunks are gone too: a PATCH in between, which claims
  // the upload first, gets 423 busy and is sent again, as a client would. In cluster mode the
  // sweeping node also logs the sweep after that.
  let gone = await patch(c, r.headers.location, MiB + 10, bytes(10, 1));
  while (gone.status === 423 && Date.now() < deadline) {
    await sleep(250);
    gone = await patch(c, r.headers.location, MiB + 10, bytes(10, 1));
  }
  assert.equal(gone.status, 404);
  // The scan that was streaming the upload (a scanner was free for it) is cancelled by the sweep
  // itself, not an hour later by its idle limit: its scanner is free again. (Single node: in cluster
  // mode the sweep may run on another node than the scan.)
  if (!short.nodes) await until(async () => (await fallbacks()) === fallback0 + 1, 'the expired upload\'s streaming scan to be cancelled');
  else await short.waitForLog(/expired resumable upload\(s\) deleted/);
  assert.match(short.stderr, /expired resumable upload\(s\) deleted/);
});

// ---- interop: plain curl, by the walk-through of docs/API.md ----------------------------------------

test('curl walk-through: create, PATCH in pieces, an interrupted PATCH, HEAD, resume, download', async () => {
  const data = bigBytes(50 * MiB, 78);
  const file = path.join(work, 'curl50.bin');
  fs.writeFileSync(file, data);
  const auth = ['-H', `Authorization: Bearer ${admin.token}`, '-H', 'Tus-Resumable: 1.0.0'];
  const hdr = (out, name) => {
    const m = out.toString().match(new RegExp(`^${name}: *(.*?)\\r?$`, 'mi'));
    return m ? m[1] : undefined;
  };
  // 1. create
  let r = curl(['--http2', '-D', '-', '-o', '/dev/null', '-X', 'POST', ...auth, '-H', `Upload-Length: ${data.length}`,
    '-H', `Upload-Metadata: filename ${b64('curl50.bin')},parent ${b64(root)}`, `${main.url}/api/v1/uploads`]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout.toString(), /^HTTP\/2 201/);
  const loc = hdr(r.stdout, 'location');
  assert.match(loc, /^\/api\/v1\/uploads\/[0-9a-f]{32}$/);
  const piece = 5 * MiB;
  // 2. the first piece
  fs.writeFileSync(path.join(work, 'p1'), data.subarray(0, piece));
  r = curl(['--http2', '-D', '-', '-o', '/dev/null', '-X', 'PATCH', ...auth, '-H', 'Content-Type: application/offset+octet-stream',
    '-H', 'Upload-Offset: 0', '--data-binary', `@${path.join(work, 'p1')}`, `${main.url}${loc}`]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout.toString(), /^HTTP\/2 204/);
  assert.equal(hdr(r.stdout, 'upload-offset'), String(piece));
  // 3. the second piece, interrupted: a slow curl killed half-way
  fs.writeFileSync(path.join(work, 'p2'), data.subarray(piece, 2 * piece));
  const slow = spawn('curl', ['-sk', '--http2', '--limit-rate', '2M', '-o', '/dev/null', '-X', 'PATCH', ...auth, '-H', 'Content-Type: application/offset+octet-stream',
    '-H', `Upload-Offset: ${piece}`, '--data-binary', `@${path.join(work, 'p2')}`, `${main.url}${loc}`]);
  await sleep(1200);
  slow.kill('SIGKILL');
  await new Promise((res) => slow.on('exit', res));
  // 4. HEAD says where to resume (the interrupted body stored nothing: h2o delivers whole bodies)
  r = curl(['--http2', '-I', ...auth, `${main.url}${loc}`]);
  assert.equal(r.status, 0, r.stderr);
  let offset = Number(hdr(r.stdout, 'upload-offset'));
  assert.equal(offset, piece);
  assert.equal(hdr(r.stdout, 'upload-length'), String(data.length));
  // 5. resume piece by piece; the last answer names the node
  let nodeId;
  while (offset < data.length) {
    const end = Math.min(offset + piece, data.length);
    fs.writeFileSync(path.join(work, 'pn'), data.subarray(offset, end));
    r = curl(['--http2', '-D', '-', '-o', '/dev/null', '-X', 'PATCH', ...auth, '-H', 'Content-Type: application/offset+octet-stream',
      '-H', `Upload-Offset: ${offset}`, '--data-binary', `@${path.join(work, 'pn')}`, `${main.url}${loc}`]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout.toString(), /^HTTP\/2 204/, r.stdout.toString());
    offset = Number(hdr(r.stdout, 'upload-offset'));
    assert.equal(offset, end);
    nodeId = hdr(r.stdout, 'coffer-node-id');
  }
  assert.match(nodeId, HEX32);
  // 6. download with curl and compare
  const out = path.join(work, 'curl50.out');
  r = curl(['--http2', '-o', out, '-H', `Authorization: Bearer ${admin.token}`, `${main.url}/api/v1/files/${nodeId}/content`]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(sha256(fs.readFileSync(out)), sha256(data));
});

// ---- interop: tus-js-client through a connection-killing proxy --------------------------------------

/** A TCP proxy to the server that cuts every connection once `cutAfter` bytes went upstream, `cuts` times. */
function cuttingProxy(target, cutAfter, cuts) {
  const state = { cuts: 0, connections: 0, bytesUp: 0 };
  const server = net.createServer((client) => {
    state.connections++;
    const up = net.connect(target.port, '127.0.0.1');
    let sent = 0;
    const kill = () => { client.destroy(); up.destroy(); };
    client.on('data', (d) => {
      sent += d.length;
      state.bytesUp += d.length;
      if (state.cuts < cuts && sent > cutAfter) {
        state.cuts++;
        kill();
        return;
      }
      up.write(d);
    });
    up.on('data', (d) => client.write(d));
    client.on('error', kill);
    up.on('error', kill);
    client.on('close', () => up.destroy());
    up.on('close', () => client.destroy());
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, state, port: server.address().port })));
}

test('tus-js-client uploads 50 MiB in 5 MiB chunks through a connection killed mid-way; the file is identical', async () => {
  const data = bigBytes(50 * MiB, 79);
  const proxy = await cuttingProxy(main, 12 * MiB, 1);
  try {
    const progress = [];
    const node = await new Promise((resolve, reject) => {
      const upload = new tus.Upload(data, {
        endpoint: `https://127.0.0.1:${proxy.port}/api/v1/uploads`,
        chunkSize: 5 * MiB,
        retryDelays: [0, 300, 1000, 2000],
        headers: { authorization: `Bearer ${admin.token}` },
        metadata: { filename: 'tus-js.bin', parent: root, filetype: 'application/octet-stream' },
        httpStack: new tus.DefaultHttpStack({ rejectUnauthorized: false }),
        onProgress: (sent) => progress.push(sent),
        onAfterResponse: (req, res) => {
          const id = res.getHeader('Coffer-Node-Id');
          if (id) upload.cofferNode = id;
        },
        onError: reject,
        onSuccess: () => resolve(upload.cofferNode),
      });
      upload.start();
    });
    assert.equal(proxy.state.cuts, 1, 'the proxy cut the connection once');
    assert.ok(proxy.state.connections >= 2, 'the client reconnected');
    assert.match(node, HEX32);
    const n = (await admin.node(node)).json();
    assert.equal(n.name, 'tus-js.bin');
    assert.equal(n.size, data.length);
    assert.equal(n.sha256, sha256(data));
    const d = await admin.download(node);
    assert.equal(d.status, 200);
    assert.equal(sha256(d.body), sha256(data));
  } finally {
    proxy.server.close();
  }
});
