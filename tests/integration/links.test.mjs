// Share links that hold (issue 17, items 4 and 7; docs/API.md "Share links", docs/SECURITY.md "Share
// links"), proved through the real server over HTTP/2 and HTTP/1.1.
//
// - A byte budget per link: every response that carries bytes of the original (full GET, Range GET,
//   /view, each file of a folder link) draws from max_downloads × size, reserved before its first
//   byte, so that neither another route nor a parallel burst gets more; HEAD draws nothing. Exact
//   bytes and statuses, `downloads` and `bytes_left` exact; a transfer cut short gives back what it
//   did not send and its resume finishes; bulk-download accounting counts the same figure.
// - The tenant policy's allow_shares is checked on every request of every existing link (410
//   links_disabled on every route), and switching it back on restores them.
// - Freezing a user suspends their links in the links' own records (410 suspended); unfreezing
//   leaves them suspended (also across a restart) unless the admin restores them explicitly.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { Server, bigBytes, CHUNK } from './lib/harness.mjs';

const pw = (n) => `pw-${n}-Links-2024`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let server;
const U = {}; // admin, alice (link creator)
const T = {}; // nodes

// ---- helpers ---------------------------------------------------------------------------------------

function assertError(r, status, code, what = '') {
  assert.equal(r.status, status, `${what}: ${r.status} ${r.text().slice(0, 300)}`);
  assert.equal(r.headers['content-type'], 'application/json', `${what}: content-type`);
  const j = r.json();
  assert.deepEqual(Object.keys(j).sort(), ['error', 'message'], what);
  assert.equal(j.error, code, what);
  return j;
}

/** A denied answer holds no byte run of the file and none of a file response's headers. */
function assertNoBytes(r, data, what) {
  for (let i = 0; i + 16 <= data.length; i += 997) assert.ok(!r.body.includes(data.subarray(i, i + 16)), `${what}: file bytes in the body`);
  for (const h of ['content-disposition', 'content-range', 'etag', 'accept-ranges']) assert.equal(r.headers[h], undefined, `${what}: ${h}`);
}

/** A 410 answer with the error code: JSON on the API routes, the HTML page on /s/{token}. */
function assertGone(r, code, what) {
  if (r.headers['content-type'] && r.headers['content-type'].startsWith('text/html')) {
    assert.equal(r.status, 410, `${what}: ${r.status}`);
    assert.ok(r.text().includes(`data-error="${code}"`), `${what}: the page names ${code}`);
    return;
  }
  if (r.body.length === 0) { // HEAD
    assert.equal(r.status, 410, `${what}: ${r.status}`);
    return;
  }
  assertError(r, 410, code, what);
}

/** Printable text of n bytes (served inline as text/plain by /view). */
function text(n, seed) {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) out[i] = i % 64 === 63 ? 10 : 97 + ((i * 7 + seed * 13 + Math.floor(i / 64)) % 26);
  return out;
}

async function upload(token, parent, name, data) {
  const r = await server.request('POST', `/api/v1/files?parent=${parent}&name=${encodeURIComponent(name)}`, { token, body: data });
  assert.equal(r.status, 201, `upload ${name}: ${r.status} ${r.text()}`);
  return r.json();
}

async function mkdir(token, parent, name) {
  const r = await server.request('POST', '/api/v1/folders', { token, body: { parent, name } });
  assert.equal(r.status, 201, `mkdir ${name}: ${r.text()}`);
  return r.json();
}

/** POST /api/v1/shares that must succeed; adds .token. */
async function mkShare(token, body) {
  const r = await server.request('POST', '/api/v1/shares', { token, body });
  assert.equal(r.status, 201, `create share: ${r.status} ${r.text()}`);
  const j = r.json();
  j.token = j.url.slice(`${server.url}/s/`.length);
  return j;
}

/** Unlocks a link; returns the access token. */
async function unlock(sh) {
  const r = await server.request('POST', `/s/${sh.token}/unlock`, { body: { code: sh.code } });
  assert.equal(r.status, 200, `unlock: ${r.status} ${r.text()}`);
  return r.json().access_token;
}

/** A recipient request on /s/{token}{p} with the access token (bearer, or the cookie on HTTP/1.1). */
function rcpt(sh, access, method, p, { h1 = false, headers = {}, newSession = false } = {}) {
  const opts = h1 ? { h1, headers: { ...headers, cookie: `coffer_share=${access}` } } : { token: access, headers, newSession };
  return server.request(method, `/s/${sh.token}${p}`, opts);
}

/** The creator's (or a manager's) view of one link. */
async function listed(token, sh, node) {
  const r = await server.request('GET', `/api/v1/shares${node ? `?node=${node}` : ''}`, { token });
  assert.equal(r.status, 200, r.text());
  const l = r.json().shares.find((s) => s.id === sh.id);
  assert.ok(l, 'the link is listed');
  return l;
}

async function figures(sh, want, what) {
  const l = await listed(U.alice.token, sh);
  assert.deepEqual({ downloads: l.downloads, bytes_left: l.bytes_left, state: l.state }, want, what);
}

async function patchUser(id, body) {
  return server.request('PATCH', `/api/v1/admin/users/${id}`, { token: U.admin.token, body });
}

async function userStatus(id) {
  const r = await server.request('GET', '/api/v1/admin/users', { token: U.admin.token });
  assert.equal(r.status, 200);
  return r.json().users.find((u) => u.id === id).status;
}

/** Every provenance event a query selects (admin). */
async function audit(qs) {
  const r = await server.request('GET', `/api/v1/audit?${qs}&limit=1000`, { token: U.admin.token });
  assert.equal(r.status, 200, r.text());
  return r.json().events;
}

/** Waits (generous deadline) until fn() returns something truthy. */
async function waitFor(fn, what, ms = 60000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** The ended transfers (share.download and share.view) of a link. */
async function endedTransfers(sh) {
  return (await audit(`actor=share:${sh.id}&action=share.download,share.view`)).filter((e) => e.transfer && e.transfer.bytes_sent !== null);
}

// ---- set-up ------------------------------------------------------------------------------------------

before(async () => {
  server = new Server({ config: { shares: { code_failures_per_ip: 1000 } } });
  await server.start();
  const al = await server.login();
  U.admin = { id: al.user.id, token: al.token };
  const r = await server.request('POST', '/api/v1/admin/users', { token: al.token, body: { username: 'alice', password: pw('alice') } });
  assert.equal(r.status, 201, r.text());
  const l = await server.login('alice', pw('alice'));
  U.alice = { id: r.json().id, token: l.token };
  U.alice.root = (await server.request('GET', '/api/v1/spaces', { token: l.token })).json().private.root;
  const sp = (await server.request('GET', '/api/v1/spaces', { token: al.token })).json();
  // The tenant space: Team, created by admin, alice manage (so the admin may list her links there).
  T.team = await mkdir(al.token, sp.tenant.root, 'Team');
  const acl = await server.request('PUT', `/api/v1/nodes/${T.team.id}/acl`, { token: al.token, body: { entries: [{ principal: `user:${U.alice.id}`, level: 'manage' }] } });
  assert.equal(acl.status, 200, acl.text());
});

after(async () => {
  if (server) {
    await server.stop();
    server.cleanup();
  }
});

// ---- the byte budget ---------------------------------------------------------------------------------

test('max_downloads 1: one full download, then nothing more through /view, Range or HEAD', async () => {
  const data = text(5000, 1);
  const f = await upload(U.alice.token, U.alice.root, 'budget.txt', data);
  assert.equal(f.mime, 'text/plain');
  const A = await mkShare(U.alice.token, { node: f.id, permission: 'download', max_downloads: 1 });
  assert.deepEqual([A.downloads, A.bytes_left, A.state], [0, 5000, 'active'], 'a new link: the whole budget');
  const a = await unlock(A);

  // HEAD carries no bytes: free, on both routes and both protocols.
  for (const h1 of [false, true]) {
    for (const p of ['/content', '/view']) {
      const h = await rcpt(A, a, 'HEAD', p, { h1 });
      assert.equal(h.status, 200, `HEAD ${p}`);
      assert.equal(h.body.length, 0);
      assert.equal(Number(h.headers['content-length']), 5000);
    }
    const hr = await rcpt(A, a, 'HEAD', '/content', { h1, headers: { range: 'bytes=1-' } });
    assert.equal(hr.status, 206);
    assert.equal(hr.body.length, 0);
  }
  await figures(A, { downloads: 0, bytes_left: 5000, state: 'active' }, 'HEAD draws nothing');

  // One full download: the whole budget.
  const full = await rcpt(A, a, 'GET', '/content');
  assert.equal(full.status, 200);
  assert.ok(full.body.equals(data), 'exact bytes');
  await figures(A, { downloads: 1, bytes_left: 0, state: 'download_limit_reached' }, 'after the download');

  // Then every route that would carry bytes, HEAD and info answer 410, with no byte of the file.
  for (const h1 of [false, true]) {
    for (const [p, headers] of [['/content', {}], ['/content', { range: 'bytes=1-' }], ['/content', { range: 'bytes=0-0' }],
      ['/content', { range: 'bytes=-1' }], ['/view', {}], ['/view', { range: 'bytes=1-' }], ['/info', {}]]) {
      const what = `${p} ${JSON.stringify(headers)} (${h1 ? 'h1' : 'h2'}) after the budget`;
      const r = await rcpt(A, a, 'GET', p, { h1, headers });
      assertError(r, 410, 'download_limit_reached', what);
      assertNoBytes(r, data, what);
    }
    assertGone(await rcpt(A, a, 'HEAD', '/content', { h1 }), 'download_limit_reached', 'HEAD after the budget');
  }
  assertGone(await server.request('GET', `/s/${A.token}`, { h1: true }), 'download_limit_reached', 'the page');
  await figures(A, { downloads: 1, bytes_left: 0, state: 'download_limit_reached' }, 'nothing more drawn');

  // /view of the original draws like a download: after one view the link is spent.
  const B = await mkShare(U.alice.token, { node: f.id, permission: 'download', max_downloads: 1 });
  const b = await unlock(B);
  const v = await rcpt(B, b, 'GET', '/view', { h1: true });
  assert.equal(v.status, 200);
  assert.equal(v.headers['content-type'], 'text/plain; charset=utf-8');
  assert.ok(v.body.equals(data));
  await figures(B, { downloads: 1, bytes_left: 0, state: 'download_limit_reached' }, 'after one view');
  assertError(await rcpt(B, b, 'GET', '/content'), 410, 'download_limit_reached', 'content after a view');

  // Range pieces draw exactly their bytes: 4999, then the last byte; nothing that does not fit.
  const C = await mkShare(U.alice.token, { node: f.id, permission: 'download', max_downloads: 1 });
  const c = await unlock(C);
  const r1 = await rcpt(C, c, 'GET', '/content', { headers: { range: 'bytes=1-' } });
  assert.equal(r1.status, 206);
  assert.equal(r1.headers['content-range'], 'bytes 1-4999/5000');
  assert.ok(r1.body.equals(data.subarray(1)));
  await figures(C, { downloads: 1, bytes_left: 1, state: 'active' }, 'after bytes=1-');
  const info = await rcpt(C, c, 'GET', '/info');
  assert.equal(info.status, 200);
  assert.equal(info.json().downloads_left, 0, 'no whole download left');
  for (const [p, headers] of [['/view', {}], ['/content', {}], ['/content', { range: 'bytes=0-1' }], ['/view', { range: 'bytes=3000-3001' }]]) {
    const r = await rcpt(C, c, 'GET', p, { headers, h1: p === '/view' });
    assertError(r, 410, 'download_limit_reached', `${p} ${JSON.stringify(headers)} needs more than the 1 byte left`);
    assertNoBytes(r, data, p);
  }
  const last = await rcpt(C, c, 'GET', '/content', { headers: { range: 'bytes=0-0' } });
  assert.equal(last.status, 206);
  assert.ok(last.body.equals(data.subarray(0, 1)));
  await figures(C, { downloads: 1, bytes_left: 0, state: 'download_limit_reached' }, 'the last byte');
  assertError(await rcpt(C, c, 'GET', '/info'), 410, 'download_limit_reached', 'info once spent');
});

test('parallel bursts of Range requests never draw more than the budget', async () => {
  const data = text(5000, 2);
  const f = await upload(U.alice.token, U.alice.root, 'burst-ranges.txt', data);
  const D = await mkShare(U.alice.token, { node: f.id, permission: 'download', max_downloads: 1 });
  const d = await unlock(D);
  // 10 pieces of 1000 bytes (each piece twice), on both routes, three kinds of connection: the
  // budget holds 5.
  const pieces = [];
  for (let i = 0; i < 10; i++) pieces.push((i % 5) * 1000);
  const rs = await Promise.all(pieces.map((at, i) => rcpt(D, d, 'GET', i % 3 === 0 ? '/view' : '/content',
    { h1: i % 3 === 1, newSession: i % 3 === 2, headers: { range: `bytes=${at}-${at + 999}` } })));
  const ok = rs.filter((r) => r.status === 206);
  assert.equal(ok.length, 5, `exactly 5 pieces of 1000 bytes: ${rs.map((r) => r.status).join(' ')}`);
  rs.forEach((r, i) => {
    if (r.status === 206) {
      assert.equal(r.headers['content-range'], `bytes ${pieces[i]}-${pieces[i] + 999}/5000`);
      assert.ok(r.body.equals(data.subarray(pieces[i], pieces[i] + 1000)), `piece ${i}: exact bytes`);
    } else {
      assertError(r, 410, 'download_limit_reached', `piece ${i}`);
      assertNoBytes(r, data, `piece ${i}`);
    }
  });
  await figures(D, { downloads: 1, bytes_left: 0, state: 'download_limit_reached' }, 'after the burst');
  const again = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => rcpt(D, d, 'GET', '/content', { h1: i % 2 === 1, headers: { range: `bytes=${i}-${i}` } })));
  for (const r of again) assertError(r, 410, 'download_limit_reached', 'a second burst of one-byte pieces');
});

test('a burst of 20 full downloads of a max_downloads 2 link: exactly 2 get the bytes', async () => {
  const data = bigBytes(300000, 3);
  const f = await upload(U.alice.token, U.alice.root, 'burst-full.bin', data);
  const E = await mkShare(U.alice.token, { node: f.id, permission: 'download', max_downloads: 2 });
  const e = await unlock(E);
  const rs = await Promise.all(Array.from({ length: 20 }, (_, i) => rcpt(E, e, 'GET', '/content', { h1: i % 3 === 1, newSession: i % 3 === 2 })));
  const ok = rs.filter((r) => r.status === 200);
  assert.equal(ok.length, 2, `exactly 2 downloads: ${rs.map((r) => r.status).join(' ')}`);
  for (const r of ok) assert.ok(r.body.equals(data), 'each download has the exact bytes');
  for (const r of rs.filter((x) => x.status !== 200)) {
    assertError(r, 410, 'download_limit_reached', 'a download past the budget');
    assert.ok(r.body.length < 1000);
  }
  await figures(E, { downloads: 2, bytes_left: 0, state: 'download_limit_reached' }, 'after the burst');
});

test('a transfer cut short gives back what it did not send; the resumed transfer finishes', async (t) => {
  const size = 4 * CHUNK;
  const data = bigBytes(size, 4);
  const f = await upload(U.alice.token, U.alice.root, 'resume.bin', data);
  const F = await mkShare(U.alice.token, { node: f.id, permission: 'download', max_downloads: 1 });
  const fa = await unlock(F);

  // HTTP/2 (its flow control keeps what is in flight small): take a little more than 1 MiB, stop
  // reading, cancel the stream.
  const session = server.connect();
  const got = [];
  let received = 0;
  await new Promise((resolve, reject) => {
    const req = session.request({ ':method': 'GET', ':path': `/s/${F.token}/content`, authorization: `Bearer ${fa}` });
    req.on('response', (h) => { if (h[':status'] !== 200) reject(new Error(`status ${h[':status']}`)); });
    req.on('data', (c) => {
      if (received >= CHUNK) return;
      got.push(c);
      received += c.length;
      if (received >= CHUNK) {
        req.pause();
        req.close(http2.constants.NGHTTP2_CANCEL);
        resolve();
      }
    });
    req.on('error', () => {});
    req.on('end', () => reject(new Error('the whole file arrived before the cut')));
  });
  session.close();
  const head = Buffer.concat(got);
  assert.ok(head.equals(data.subarray(0, received)), 'the bytes before the cut are exact');

  // The server records the cut transfer's end once what it did not send is back in the budget.
  const [cut] = await waitFor(async () => { const t = await endedTransfers(F); return t.length === 1 ? t : null; }, 'the end of the cut transfer');
  const sent = cut.transfer.bytes_sent;
  assert.equal(cut.transfer.completed, false);
  assert.ok(sent >= received && sent < size, `handed to the connection: ${sent} (received ${received})`);
  t.diagnostic(`cut after ${received} bytes received; ${sent} handed to the connection`);
  // Budget: 4 MiB + resume credit min(sent, 1 MiB) = 1 MiB; served: what was sent.
  await figures(F, { downloads: sent > CHUNK ? 1 : 0, bytes_left: size + CHUNK - sent, state: 'active' }, 'after the cut');

  // The resume (Range from what arrived) finishes: the exact rest of the file.
  const rest = await rcpt(F, fa, 'GET', '/content', { h1: true, headers: { range: `bytes=${received}-` } });
  assert.equal(rest.status, 206, rest.text().slice(0, 200));
  assert.equal(rest.headers['content-range'], `bytes ${received}-${size - 1}/${size}`);
  assert.ok(Buffer.concat([head, rest.body]).equals(data), 'cut + resume = the file');
  const left = size + CHUNK - sent - (size - received);
  await figures(F, { downloads: 1, bytes_left: left, state: left === 0 ? 'download_limit_reached' : 'active' }, 'after the resume');
  // No second copy: a full download does not fit in what is left.
  const more = await rcpt(F, fa, 'GET', '/content');
  assertError(more, 410, 'download_limit_reached', 'a second full download');
  assertNoBytes(more, data, 'a second full download');
});

test('folder link: each member file has its own budget of max_downloads × its size', async () => {
  const folder = await mkdir(U.alice.token, U.alice.root, 'Members');
  const d1 = text(3000, 5), d2 = text(2000, 6), d3 = text(4000, 7), d4 = text(1500, 8);
  const m1 = await upload(U.alice.token, folder.id, 'm1.txt', d1);
  const m2 = await upload(U.alice.token, folder.id, 'm2.txt', d2);
  const m3 = await upload(U.alice.token, folder.id, 'm3.txt', d3);
  const G = await mkShare(U.alice.token, { node: folder.id, permission: 'download', max_downloads: 1 });
  assert.deepEqual([G.downloads, G.bytes_left, G.state], [0, null, 'active'], 'a folder link reports no single bytes_left');
  const g = await unlock(G);
  const file = (id, p) => `/files/${id}/${p}`;

  // m1: one full download, then nothing of m1 on any route (HEAD included).
  const r1 = await rcpt(G, g, 'GET', file(m1.id, 'content'));
  assert.equal(r1.status, 200);
  assert.ok(r1.body.equals(d1));
  for (const [p, headers, h1] of [['content', {}, false], ['content', { range: 'bytes=1-' }, true], ['view', {}, false], ['view', { range: 'bytes=0-0' }, true]]) {
    const r = await rcpt(G, g, 'GET', file(m1.id, p), { headers, h1 });
    assertError(r, 410, 'download_limit_reached', `m1 ${p} ${JSON.stringify(headers)}`);
    assertNoBytes(r, d1, `m1 ${p}`);
  }
  assertGone(await rcpt(G, g, 'HEAD', file(m1.id, 'content')), 'download_limit_reached', 'HEAD m1');

  // m2: a view of the first 1000 bytes and a download of the rest spend it.
  const v2 = await rcpt(G, g, 'GET', file(m2.id, 'view'), { headers: { range: 'bytes=0-999' } });
  assert.equal(v2.status, 206);
  assert.ok(v2.body.equals(d2.subarray(0, 1000)));
  const c2 = await rcpt(G, g, 'GET', file(m2.id, 'content'), { h1: true, headers: { range: 'bytes=1000-' } });
  assert.equal(c2.status, 206);
  assert.ok(c2.body.equals(d2.subarray(1000)));
  assertError(await rcpt(G, g, 'GET', file(m2.id, 'content'), { headers: { range: 'bytes=5-5' } }), 410, 'download_limit_reached', 'm2 spent');

  // m3: a parallel burst of 8 pieces of 1000 bytes: exactly 4 fit.
  const pieces = [0, 1000, 2000, 3000, 0, 1000, 2000, 3000];
  const rs = await Promise.all(pieces.map((at, i) => rcpt(G, g, 'GET', file(m3.id, i % 2 ? 'view' : 'content'),
    { h1: i % 3 === 1, newSession: i % 3 === 2, headers: { range: `bytes=${at}-${at + 999}` } })));
  assert.equal(rs.filter((r) => r.status === 206).length, 4, `exactly 4 pieces of m3: ${rs.map((r) => r.status).join(' ')}`);
  rs.forEach((r, i) => {
    if (r.status === 206) assert.ok(r.body.equals(d3.subarray(pieces[i], pieces[i] + 1000)), `m3 piece ${i}`);
    else assertError(r, 410, 'download_limit_reached', `m3 piece ${i}`);
  });

  // The link itself stays active: its listing, its info, and a file added later (its own budget).
  const kids = await rcpt(G, g, 'GET', '/children');
  assert.equal(kids.status, 200);
  assert.deepEqual(kids.json().items.map((x) => x.name).sort(), ['m1.txt', 'm2.txt', 'm3.txt']);
  const info = await rcpt(G, g, 'GET', '/info');
  assert.equal(info.status, 200);
  assert.equal(info.json().downloads_left, null, 'per file: no single figure');
  const m4 = await upload(U.alice.token, folder.id, 'm4.txt', d4);
  const h4 = await rcpt(G, g, 'HEAD', file(m4.id, 'content'));
  assert.equal(h4.status, 200);
  const r4 = await rcpt(G, g, 'GET', file(m4.id, 'content'), { h1: true });
  assert.equal(r4.status, 200);
  assert.ok(r4.body.equals(d4));
  assertError(await rcpt(G, g, 'GET', file(m4.id, 'view')), 410, 'download_limit_reached', 'm4 spent');
  // downloads: the members' figures summed (m1, m2, m3, m4: one each).
  await figures(G, { downloads: 4, bytes_left: null, state: 'active' }, 'the folder link');
});

test('bulk-download accounting of a link counts the same figure as its budget', async () => {
  const data = text(1000, 9);
  const f = await upload(U.alice.token, U.alice.root, 'bulk.txt', data);
  const H = await mkShare(U.alice.token, { node: f.id, permission: 'download' });
  const h = await unlock(H);
  const policy = (body) => server.request('PATCH', '/api/v1/admin/policy', { token: U.admin.token, body });
  assert.equal((await policy({ bulk_download_alert: { files: 2, bytes: 1000000000, window: 3600 } })).status, 200);
  try {
    const alerts = () => audit(`actor=share:${H.id}&action=alert.bulk_download`);
    const fetchAndEnd = async (p, headers, n) => {
      const r = await rcpt(H, h, 'GET', p, { headers });
      assert.equal(r.status, headers.range ? 206 : 200);
      await waitFor(async () => (await endedTransfers(H)).length === n, `transfer ${n} to end`);
    };
    // Two halves: 1000 bytes, one whole download by the figure: no alert at 2 files.
    await fetchAndEnd('/content', { range: 'bytes=0-499' }, 1);
    await fetchAndEnd('/view', { range: 'bytes=500-999' }, 2);
    assert.deepEqual(await alerts(), [], 'two halves are one download');
    // A whole view: the figure reaches 2, the alert fires with the bytes drawn.
    await fetchAndEnd('/view', {}, 3);
    const a = await waitFor(async () => { const x = await alerts(); return x.length ? x : null; }, 'the bulk alert');
    assert.equal(a.length, 1);
    assert.equal(a[0].detail.files, 2);
    assert.equal(a[0].detail.bytes, 2000);
    assert.deepEqual([a[0].actor.type, a[0].actor.id, a[0].share], ['share', H.id, H.id]);
  } finally {
    assert.equal((await policy({ bulk_download_alert: { files: 1000000, bytes: 1000000000, window: 3600 } })).status, 200);
  }
});

// ---- policy switch -----------------------------------------------------------------------------------

/** Every recipient route of a link: [what, method, path]. */
function routes(sh, fileId) {
  const r = [['info', 'GET', '/info'], ['HEAD content', 'HEAD', '/content'], ['content', 'GET', '/content'], ['view', 'GET', '/view']];
  if (fileId) {
    r.push(['children', 'GET', '/children'], ['member content', 'GET', `/files/${fileId}/content`],
      ['member view', 'GET', `/files/${fileId}/view`], ['member HEAD', 'HEAD', `/files/${fileId}/content`]);
  }
  return r;
}

/** Asserts that every route of every link (and the page and unlock) answers 410 code. */
async function assertAllGone(links, code, what) {
  for (const { sh, access, member, data } of links) {
    for (const h1 of [false, true]) {
      for (const [name, method, p] of routes(sh, member)) {
        const r = await rcpt(sh, access, method, p, { h1 });
        assertGone(r, code, `${what}: ${name} (${h1 ? 'h1' : 'h2'})`);
        assertNoBytes(r, data, `${what}: ${name}`);
      }
      assertGone(await server.request('GET', `/s/${sh.token}`, { h1 }), code, `${what}: page`);
      assertGone(await server.request('POST', `/s/${sh.token}/unlock`, { h1, body: { code: sh.code } }), code, `${what}: unlock`);
    }
  }
}

test('allow_shares false: every existing link answers 410 links_disabled on every route; true restores them', async () => {
  const data = text(2500, 10);
  const f = await upload(U.alice.token, U.alice.root, 'policy.txt', data);
  const folder = await mkdir(U.alice.token, U.alice.root, 'PolicyDir');
  const inner = await upload(U.alice.token, folder.id, 'inner.txt', data);
  const Lf = await mkShare(U.alice.token, { node: f.id, permission: 'download', max_downloads: 3 });
  const Lv = await mkShare(U.alice.token, { node: f.id, permission: 'view' });
  const Ld = await mkShare(U.alice.token, { node: folder.id, permission: 'download' });
  const links = [{ sh: Lf, access: await unlock(Lf), data }, { sh: Lv, access: await unlock(Lv), data },
    { sh: Ld, access: await unlock(Ld), member: inner.id, data }];
  const policy = (b) => server.request('PATCH', '/api/v1/admin/policy', { token: U.admin.token, body: { allow_shares: b } });

  assert.equal((await policy(false)).status, 200);
  try {
    await assertAllGone(links, 'links_disabled', 'policy off');
    for (const { sh } of links) assert.equal((await listed(U.alice.token, sh)).state, 'links_disabled');
    await figures(Lf, { downloads: 0, bytes_left: 7500, state: 'links_disabled' }, 'nothing drawn while off');
    assertError(await server.request('POST', '/api/v1/shares', { token: U.alice.token, body: { node: f.id, permission: 'view' } }), 403, 'forbidden', 'no new link while off');
  } finally {
    assert.equal((await policy(true)).status, 200);
  }

  // Switched on again (the admin's explicit act): every link works as before.
  for (const { sh } of links) assert.equal((await listed(U.alice.token, sh)).state, 'active');
  const [lf, lv, ld] = links.map((x) => x.access);
  for (const [sh, a, p] of [[Lf, lf, '/content'], [Lf, lf, '/view'], [Ld, ld, `/files/${inner.id}/content`]]) {
    const r = await rcpt(sh, a, 'GET', p);
    assert.equal(r.status, 200, `${p} after the policy is back: ${r.text().slice(0, 200)}`);
    assert.ok(r.body.equals(data));
  }
  assertError(await rcpt(Lv, lv, 'GET', '/content'), 403, 'forbidden', 'a view-only link still has no download');
  assertError(await rcpt(Lv, lv, 'GET', '/view'), 403, 'forbidden', 'nor the original inline (pages only)');
  assert.equal((await rcpt(Ld, ld, 'GET', '/children')).status, 200);
  const again = await server.request('POST', `/s/${Lf.token}/unlock`, { body: { code: Lf.code } });
  assert.equal(again.status, 200, 'unlock works again');
  await figures(Lf, { downloads: 2, bytes_left: 2500, state: 'active' }, 'what was drawn after');
});

// ---- freeze ------------------------------------------------------------------------------------------

test('freezing suspends a user\'s links; unfreezing leaves them suspended; restore_links brings them back', async () => {
  const data = text(1800, 11);
  const f = await upload(U.alice.token, T.team.id, 'frozen.txt', data);
  const dir = await mkdir(U.alice.token, T.team.id, 'FrozenDir');
  const inner = await upload(U.alice.token, dir.id, 'inside.txt', data);
  const Lf = await mkShare(U.alice.token, { node: f.id, permission: 'download' });
  const Ld = await mkShare(U.alice.token, { node: dir.id, permission: 'download' });
  const Lr = await mkShare(U.alice.token, { node: f.id, permission: 'download' });
  const links = [{ sh: Lf, access: await unlock(Lf), data }, { sh: Ld, access: await unlock(Ld), member: inner.id, data }];
  const lr = await unlock(Lr);
  assert.equal((await server.request('DELETE', `/api/v1/shares/${Lr.id}`, { token: U.alice.token })).status, 204);
  const state = async (sh, node) => (await listed(U.admin.token, sh, node)).state;
  // Every link alice made so far that is not revoked (the earlier tests' too) is hers to suspend.
  const mine = (await server.request('GET', '/api/v1/shares', { token: U.alice.token })).json().shares;
  const live = mine.filter((s) => s.state !== 'revoked').length;
  assert.ok(live >= 2, `${live} links`);

  // Freeze: every route of every link answers 410 suspended; the revoked one stays revoked.
  let r = await patchUser(U.alice.id, { status: 'frozen' });
  assert.equal(r.status, 200, r.text());
  assert.equal(r.json().status, 'frozen');
  await assertAllGone(links, 'suspended', 'frozen');
  assertError(await rcpt(Lr, lr, 'GET', '/content'), 410, 'revoked', 'the revoked link');
  assert.deepEqual([await state(Lf, f.id), await state(Ld, dir.id), await state(Lr, f.id)], ['suspended', 'suspended', 'revoked']);

  // Bad input changes nothing: alice stays frozen, the links suspended.
  for (const [what, body] of [['restore_links as a string', { status: 'active', restore_links: 'yes' }],
    ['restore_links as a number', { status: 'active', restore_links: 1 }],
    ['restore_links as null', { status: 'active', restore_links: null }],
    ['restore_links without status', { restore_links: true }],
    ['restore_links with status frozen', { status: 'frozen', restore_links: true }]]) {
    assertError(await patchUser(U.alice.id, body), 400, 'bad_request', what);
    assert.equal(await userStatus(U.alice.id), 'frozen', `${what}: still frozen`);
  }
  assert.deepEqual([await state(Lf, f.id), await state(Ld, dir.id)], ['suspended', 'suspended'], 'bad input restored nothing');

  // Unfreeze alone: alice is active, her links stay suspended, also across a restart.
  r = await patchUser(U.alice.id, { status: 'active' });
  assert.equal(r.status, 200, r.text());
  assert.equal(r.json().status, 'active');
  await assertAllGone(links, 'suspended', 'unfrozen without restore');
  await server.stop();
  await server.start();
  await assertAllGone(links, 'suspended', 'unfrozen, after a restart');
  const l = await server.login('alice', pw('alice'));
  U.alice.token = l.token;
  assert.deepEqual([(await listed(U.alice.token, Lf)).state, (await listed(U.alice.token, Ld)).state], ['suspended', 'suspended'], "alice's own view");
  // A link alice creates now works; the suspended ones do not come back by themselves.
  const N = await mkShare(U.alice.token, { node: f.id, permission: 'download' });
  const n = await unlock(N);
  const nr = await rcpt(N, n, 'GET', '/content');
  assert.equal(nr.status, 200);
  assert.ok(nr.body.equals(data));
  assertError(await rcpt(Lf, links[0].access, 'GET', '/content'), 410, 'suspended', 'the old link');

  // Unfreeze with restore_links (the admin's explicit act): they work again; the revoked one does not.
  r = await patchUser(U.alice.id, { status: 'active', restore_links: true });
  assert.equal(r.status, 200, r.text());
  assert.equal(r.json().status, 'active');
  for (const [sh, a, p] of [[Lf, links[0].access, '/content'], [Lf, links[0].access, '/view'], [Ld, links[1].access, `/files/${inner.id}/content`]]) {
    const got = await rcpt(sh, a, 'GET', p, { h1: true });
    assert.equal(got.status, 200, `${p} after the restore: ${got.text().slice(0, 200)}`);
    assert.ok(got.body.equals(data));
  }
  assert.equal((await rcpt(Ld, links[1].access, 'GET', '/children')).status, 200);
  assert.deepEqual([await state(Lf, f.id), await state(Ld, dir.id), await state(Lr, f.id)], ['active', 'active', 'revoked']);
  assertError(await rcpt(Lr, lr, 'GET', '/content'), 410, 'revoked', 'the revoked link stays revoked');

  // Provenance: the freeze names how many links it suspended, the restore how many it restored.
  const evs = (await audit('action=user.update')).filter((e) => e.detail.user === U.alice.id);
  const frozen = evs.find((e) => e.detail.status === 'frozen');
  assert.equal(frozen.detail.links_suspended, live);
  const restored = evs.find((e) => e.detail.links_restored !== undefined);
  assert.equal(restored.detail.links_restored, live, 'the link made after the freeze was never suspended');
  assert.equal(restored.detail.status, 'active');
});
