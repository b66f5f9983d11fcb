// HTTP behaviour of downloads (Range, conditional requests, HEAD), the headers every response
// carries (SPEC §4), oversized bodies over HTTP/1.1 (413 from h2o) and HTTP/2 (RST_STREAM), and the
// TLS/ALPN configuration (TLS 1.2+ only, ECDHE+AEAD suites only, h2 via ALPN).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import path from 'node:path';
import tls from 'node:tls';
import { Server, CHUNK, bigBytes, curl } from './lib/harness.mjs';

const SIZE = 3 * CHUNK + 5;
let srv;      // default limits (16 MiB bodies)
let small;    // limits.max_request_body_bytes: 64KiB
let admin, smallAdmin, root, smallRoot;
let data, fileId, etag, emptyId;

before(async () => {
  srv = await new Server().start();
  small = await new Server({ config: { limits: { max_request_body_bytes: '64KiB' } } }).start();
  admin = srv.client((await srv.login()).token);
  smallAdmin = small.client((await small.login()).token);
  root = (await admin.spaces()).private.root;
  smallRoot = (await smallAdmin.spaces()).private.root;
  data = bigBytes(SIZE, 7);
  const up = await admin.upload(root, 'range.bin', data);
  assert.equal(up.status, 201, up.text());
  fileId = up.json().id;
  const e = await admin.upload(root, 'empty.bin', Buffer.alloc(0));
  assert.equal(e.status, 201, e.text());
  emptyId = e.json().id;
  const g = await admin.download(fileId);
  assert.equal(g.status, 200);
  etag = g.headers.etag;
  assert.match(etag, /^"[0-9a-f]+"$/);
});

after(async () => {
  for (const s of [srv, small]) {
    if (!s) continue;
    await s.stop();
    s.cleanup();
  }
});

const contentPath = (id) => `/api/v1/files/${id}/content`;

/** The headers of SPEC §4 that every response carries. */
function assertCommonHeaders(h, label, { csp = true } = {}) {
  assert.match(String(h['x-request-id']), /^[0-9a-f]{16}$/, `${label}: x-request-id`);
  assert.match(String(h['strict-transport-security']), /^max-age=\d+(; includeSubDomains)?$/, `${label}: HSTS`);
  assert.equal(h['x-content-type-options'], 'nosniff', `${label}: x-content-type-options`);
  assert.equal(h['referrer-policy'], 'no-referrer', `${label}: referrer-policy`);
  const policy = h['content-security-policy'];
  assert.equal(typeof policy, 'string', `${label}: content-security-policy present`);
  if (!csp) return;
  assert.ok(policy.split(';').map((d) => d.trim()).includes("frame-ancestors 'none'"),
    `${label}: CSP must contain frame-ancestors 'none', got: ${policy}`);
}

function assertJsonError(r, status, code, label, { contentType = true } = {}) {
  assert.equal(r.status, status, `${label}: status (${r.text()})`);
  if (contentType) assert.match(String(r.headers['content-type']), /^application\/json/, `${label}: content-type`);
  const j = r.json();
  assert.equal(j.error, code, `${label}: error code`);
  assert.equal(typeof j.message, 'string', `${label}: message`);
  assert.deepEqual(Object.keys(j).sort(), ['error', 'message'], `${label}: envelope`);
}

/** Parses `curl -i`/`-I` output: the last header block (after any 1xx) and the body. */
function parseCurl(out) {
  let buf = Buffer.isBuffer(out) ? out : Buffer.from(out);
  const blocks = [];
  for (;;) {
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0 || !/^HTTP\//.test(buf.subarray(0, 8).toString('latin1'))) break;
    const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
    const status = Number(lines[0].split(' ')[1]);
    const headers = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      const k = l.slice(0, i).trim().toLowerCase();
      const v = l.slice(i + 1).trim();
      headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
    }
    blocks.push({ statusLine: lines[0], status, headers });
    buf = buf.subarray(end + 4);
    if (status >= 200) break;
  }
  const last = blocks[blocks.length - 1] || { status: undefined, headers: {} };
  return { ...last, blocks, body: buf };
}

// ---- Range ------------------------------------------------------------------------------------

const ok206 = [
  ['bytes=0-0', 0, 0],
  ['bytes=0-', 0, SIZE - 1],
  ['bytes=5-9', 5, 9],
  ['bytes=1048570-1048580', 1048570, 1048580],              // spans the first chunk boundary
  [`bytes=${CHUNK - 3}-${2 * CHUNK + 2}`, CHUNK - 3, 2 * CHUNK + 2], // spans two boundaries
  [`bytes=${3 * CHUNK - 2}-${3 * CHUNK + 1}`, 3 * CHUNK - 2, 3 * CHUNK + 1], // into the short last chunk
  ['bytes=-1', SIZE - 1, SIZE - 1],
  ['bytes=-10', SIZE - 10, SIZE - 1],
  [`bytes=-${SIZE + 100}`, 0, SIZE - 1],
  [`bytes=${SIZE - 1}-${SIZE - 1}`, SIZE - 1, SIZE - 1],
  [`bytes=${SIZE - 1}-`, SIZE - 1, SIZE - 1],
  ['bytes=10-999999999', 10, SIZE - 1],
];
const bad416 = [`bytes=${SIZE}-`, `bytes=${SIZE}-${SIZE + 10}`, 'bytes=5-2', 'bytes=abc', 'bytes=-0', 'bytes=1-2x', 'bytes='];

for (const h1 of [false, true]) {
  const proto = h1 ? 'HTTP/1.1' : 'HTTP/2';
  test(`Range: satisfiable ranges give 206 with exact bytes and headers (${proto})`, async () => {
    for (const [range, first, last] of ok206) {
      const r = await admin.download(fileId, { h1, headers: { range } });
      assert.equal(r.status, 206, `${range}: status`);
      assert.equal(r.headers['content-range'], `bytes ${first}-${last}/${SIZE}`, `${range}: content-range`);
      assert.equal(r.headers['content-length'], String(last - first + 1), `${range}: content-length`);
      assert.equal(r.headers.etag, etag, `${range}: etag`);
      assert.equal(r.headers['accept-ranges'], 'bytes', `${range}: accept-ranges`);
      assert.equal(r.body.length, last - first + 1, `${range}: body length`);
      assert.ok(r.body.equals(data.subarray(first, last + 1)), `${range}: body bytes`);
      // (the download CSP's frame-ancestors is checked in the headers test below)
      assertCommonHeaders(r.headers, `${range} (${proto})`, { csp: false });
    }
  });

  test(`Range: unsatisfiable or malformed ranges give 416 (${proto})`, async () => {
    for (const range of bad416) {
      const r = await admin.download(fileId, { h1, headers: { range } });
      // (the Content-Type of a 416 is checked on its own below)
      assertJsonError(r, 416, 'range_not_satisfiable', range, { contentType: false });
      assert.equal(r.headers['content-range'], `bytes */${SIZE}`, `${range}: content-range`);
      assert.equal(r.headers['content-length'], String(r.body.length), `${range}: content-length`);
    }
  });

  test(`Range: several ranges, another unit, If-Range (${proto})`, async () => {
    const whole = async (headers, label) => {
      const r = await admin.download(fileId, { h1, headers });
      assert.equal(r.status, 200, `${label}: status`);
      assert.equal(r.headers['content-range'], undefined, `${label}: no content-range`);
      assert.equal(r.headers['content-length'], String(SIZE), `${label}: content-length`);
      assert.ok(r.body.equals(data), `${label}: the whole file`);
    };
    await whole({ range: 'bytes=0-1,5-6' }, 'multi-range');
    await whole({ range: 'items=0-1' }, 'unknown unit');
    await whole({ range: 'bytes=0-9', 'if-range': '"0123456789abcdef0123456789abcdef"' }, 'If-Range, another ETag');
    const r = await admin.download(fileId, { h1, headers: { range: 'bytes=0-9', 'if-range': etag } });
    assert.equal(r.status, 206);
    assert.equal(r.headers['content-range'], `bytes 0-9/${SIZE}`);
    assert.ok(r.body.equals(data.subarray(0, 10)));
  });

  test(`Range on a 0-byte file is 416; a plain GET is an empty 200 (${proto})`, async () => {
    for (const range of ['bytes=0-0', 'bytes=0-', 'bytes=-1']) {
      const r = await admin.download(emptyId, { h1, headers: { range } });
      assertJsonError(r, 416, 'range_not_satisfiable', `empty file, ${range}`, { contentType: false });
      assert.equal(r.headers['content-range'], 'bytes */0', `empty file, ${range}`);
    }
    const r = await admin.download(emptyId, { h1 });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-length'], '0');
    assert.equal(r.body.length, 0);
  });

  test(`If-None-Match: the current ETag gives 304 without a body, another gives 200 (${proto})`, async () => {
    for (const inm of [etag, `W/${etag}`, `"nope", ${etag}`, '*']) {
      const r = await admin.download(fileId, { h1, headers: { 'if-none-match': inm } });
      assert.equal(r.status, 304, `If-None-Match: ${inm}`);
      assert.equal(r.body.length, 0, `304 body (${inm})`);
      assert.equal(r.headers.etag, etag, '304 repeats the ETag');
      assertCommonHeaders(r.headers, `304 (${proto})`, { csp: false });
    }
    const r = await admin.download(fileId, { h1, headers: { 'if-none-match': '"0123456789abcdef0123456789abcdef"' } });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-length'], String(SIZE));
    assert.ok(r.body.equals(data));
  });
}

// ---- HEAD -------------------------------------------------------------------------------------

for (const h1 of [false, true]) {
  const proto = h1 ? 'HTTP/1.1' : 'HTTP/2';
  test(`HEAD on content: same headers as GET, no body, connection usable (${proto})`, async () => {
    const get = await admin.download(fileId, { h1 });
    const head = await admin.req('HEAD', contentPath(fileId), { h1 });
    assert.equal(get.status, 200);
    assert.equal(head.status, 200);
    for (const k of ['content-length', 'etag', 'content-type', 'content-disposition', 'accept-ranges', 'cache-control']) {
      assert.equal(head.headers[k], get.headers[k], `HEAD ${k}`);
    }
    assert.equal(head.headers['content-length'], String(SIZE));
    assert.equal(head.body.length, 0);
    assertCommonHeaders(head.headers, `HEAD (${proto})`, { csp: false });
    const hr = await admin.req('HEAD', contentPath(fileId), { h1, headers: { range: 'bytes=5-9' } });
    assert.equal(hr.status, 206);
    assert.equal(hr.headers['content-range'], `bytes 5-9/${SIZE}`);
    assert.equal(hr.headers['content-length'], '5');
    assert.equal(hr.body.length, 0);
    const h416 = await admin.req('HEAD', contentPath(fileId), { h1, headers: { range: 'bytes=5-2' } });
    assert.equal(h416.status, 416);
    assert.equal(h416.headers['content-range'], `bytes */${SIZE}`);
    assert.equal(h416.body.length, 0);
    // The same HTTP/2 session still works after HEADs.
    const again = await admin.req('GET', contentPath(fileId), { h1, headers: { range: 'bytes=0-3' } });
    assert.equal(again.status, 206);
    assert.ok(again.body.equals(data.subarray(0, 4)));
  });
}

test('HEAD then GET on one HTTP/1.1 keep-alive connection (Node agent)', async () => {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false });
  const one = (method) => new Promise((resolve, reject) => {
    const req = https.request(srv.url + contentPath(fileId), { method, agent, headers: { authorization: `Bearer ${admin.token}` } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks), reused: req.reusedSocket }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
  try {
    const head = await one('HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    assert.equal(head.headers.connection, 'keep-alive');
    const get = await one('GET');
    assert.equal(get.reused, true, 'the GET must reuse the HEAD\'s connection');
    assert.equal(get.status, 200);
    assert.equal(get.headers['content-length'], String(SIZE));
    assert.ok(get.body.equals(data));
    const head2 = await one('HEAD');
    assert.equal(head2.reused, true);
    assert.equal(head2.status, 200);
  } finally {
    agent.destroy();
  }
});

test('HEAD with curl (HTTP/1.1 keep-alive, HTTP/2) and nghttp', () => {
  const url = srv.url + contentPath(fileId);
  const auth = ['-H', `authorization: Bearer ${admin.token}`];
  // Two HEADs then a GET over one HTTP/1.1 connection.
  const out = path.join(srv.dir, 'head-then-get.bin');
  const c1 = curl(['--http1.1', '-v', '-I', ...auth, url, url, '--next', '-sk', '--http1.1', '-v', ...auth, '-o', out, url]);
  assert.equal(c1.status, 0, c1.stderr);
  assert.equal((c1.stderr.match(/Re-using existing connection/g) || []).length, 2, 'curl reused the connection twice');
  assert.equal((c1.stderr.match(/Connected to /g) || []).length, 1, 'one TCP connection');
  const heads = c1.stdout.toString('latin1').split('\r\n\r\n').filter((b) => b.startsWith('HTTP/'));
  assert.equal(heads.length, 2);
  for (const h of heads) {
    assert.match(h, /^HTTP\/1\.1 200 /);
    assert.match(h, new RegExp(`\\r\\ncontent-length: ${SIZE}\\r\\n`, 'i'));
    assert.ok(h.toLowerCase().includes(`\r\netag: ${etag}`));
  }
  assert.ok(fs.readFileSync(out).equals(data), 'GET after HEADs on the same connection');

  const c2 = curl(['--http2', '-I', ...auth, url]);
  assert.equal(c2.status, 0, c2.stderr);
  const p2 = parseCurl(c2.stdout);
  assert.equal(p2.statusLine.trim(), 'HTTP/2 200');
  assert.equal(p2.headers['content-length'], String(SIZE));
  assert.equal(p2.headers.etag, etag);
  assert.equal(p2.body.length, 0);

  const n = spawnSync('timeout', ['120', 'nghttp', '-v', '-H', ':method: HEAD', '-H', `authorization: Bearer ${admin.token}`, url],
    { input: '', maxBuffer: 1 << 26 });
  const log = n.stdout.toString();
  assert.equal(n.status, 0, `nghttp exit: ${n.stderr}\n${log.slice(-2000)}`);
  assert.match(log, /recv \(stream_id=\d+\) :status: 200/);
  assert.match(log, new RegExp(`recv \\(stream_id=\\d+\\) content-length: ${SIZE}\\b`));
  const frames = [...log.matchAll(/recv DATA frame <length=(\d+)/g)].map((m) => Number(m[1]));
  assert.deepEqual(frames.filter((x) => x > 0), [], 'no DATA frame with payload');
  // The stream ends cleanly: END_STREAM on the HEADERS or on an empty DATA frame, no RST_STREAM.
  assert.match(log, /recv (HEADERS frame <length=\d+, flags=0x05|DATA frame <length=0, flags=0x01), stream_id=13>/);
  assert.doesNotMatch(log, /recv RST_STREAM/);
});

// ---- headers on every response ----------------------------------------------------------------

test('security headers on every kind of response', async () => {
  for (const h1 of [false, true]) {
    const proto = h1 ? 'h1' : 'h2';
    const health = await srv.request('GET', '/healthz', { h1 });
    assert.equal(health.status, 200);
    assert.deepEqual(health.json(), { status: 'ok' });
    assertCommonHeaders(health.headers, `healthz ${proto}`);

    const nf = await srv.request('GET', '/no/such/path', { h1 });
    assertJsonError(nf, 404, 'not_found', `404 ${proto}`);
    assertCommonHeaders(nf.headers, `404 ${proto}`);

    const na = await srv.request('PUT', '/api/v1/me', { h1, token: admin.token, body: {} });
    assertJsonError(na, 405, 'method_not_allowed', `405 ${proto}`);
    assert.equal(na.headers.allow, 'GET, HEAD');
    assertCommonHeaders(na.headers, `405 ${proto}`);

    const na2 = await srv.request('DELETE', '/api/v1/files', { h1, token: admin.token });
    assertJsonError(na2, 405, 'method_not_allowed', `405 (files) ${proto}`);
    assert.equal(na2.headers.allow, 'POST');

    const un = await srv.request('GET', '/api/v1/me', { h1 });
    assertJsonError(un, 401, 'unauthorized', `401 ${proto}`);
    assertCommonHeaders(un.headers, `401 ${proto}`);

    const bad = await srv.request('POST', '/api/v1/folders', { h1, token: admin.token, body: '{"parent":', headers: { 'content-type': 'application/json' } });
    assertJsonError(bad, 400, 'bad_request', `400 ${proto}`);
    assertCommonHeaders(bad.headers, `400 ${proto}`);
  }
  // Request ids are per request.
  const a = await srv.request('GET', '/healthz');
  const b = await srv.request('GET', '/healthz');
  assert.notEqual(a.headers['x-request-id'], b.headers['x-request-id']);
});

test('security headers on downloads (full, partial, HEAD, 304, 416)', async () => {
  for (const h1 of [false, true]) {
    const proto = h1 ? 'h1' : 'h2';
    const cases = [
      ['GET', {}, 200], ['GET', { range: 'bytes=0-99' }, 206], ['HEAD', {}, 200],
      ['GET', { 'if-none-match': etag }, 304], ['GET', { range: 'bytes=5-2' }, 416],
    ];
    for (const [method, headers, status] of cases) {
      const r = await admin.req(method, contentPath(fileId), { h1, headers });
      assert.equal(r.status, status);
      assertCommonHeaders(r.headers, `download ${method} ${JSON.stringify(headers)} ${proto}`);
    }
  }
});

test('a 416 carries exactly one Content-Type (application/json)', () => {
  for (const proto of ['--http1.1', '--http2']) {
    const c = curl([proto, '-i', '-H', `authorization: Bearer ${admin.token}`, '-H', `range: bytes=${SIZE}-`, srv.url + contentPath(fileId)]);
    assert.equal(c.status, 0, c.stderr);
    const head = c.stdout.toString('latin1').split('\r\n\r\n')[0];
    assert.match(head, /^HTTP\/(1\.1|2) 416/);
    const types = head.split('\r\n').filter((l) => /^content-type:/i.test(l));
    assert.deepEqual(types, ['content-type: application/json'], `${proto}: Content-Type fields of a 416:\n${head}`);
    assert.equal(JSON.parse(c.stdout.toString('latin1').split('\r\n\r\n')[1]).error, 'range_not_satisfiable');
  }
});

test('an h2o-generated 413 (HTTP/1.1, Content-Length over the limit) has the headers and the JSON envelope', async () => {
  const file = path.join(small.dir, 'body-70k.bin');
  fs.writeFileSync(file, bigBytes(70 * 1024, 3));
  const before = (await smallAdmin.children(smallRoot)).json().items;
  const url = `${small.url}/api/v1/files?parent=${smallRoot}&name=big.bin`;
  // With Expect: 100-continue the client waits for the answer before sending the body, so the
  // 413 always arrives (the next test covers clients that send the body at once).
  const c = curl(['-S', '--http1.1', '-i', '-X', 'POST', '-H', `authorization: Bearer ${smallAdmin.token}`,
    '-H', 'Expect: 100-continue', '--data-binary', `@${file}`, url]);
  assert.equal(c.status, 0, `curl: ${c.stderr}`);
  const p = parseCurl(c.stdout);
  assert.equal(p.status, 413, p.statusLine);
  assert.equal(p.headers['content-type'], 'application/json');
  const j = JSON.parse(p.body.toString());
  assert.equal(j.error, 'payload_too_large');
  assert.equal(typeof j.message, 'string');
  assert.deepEqual(Object.keys(j).sort(), ['error', 'message']);
  assert.equal(p.headers['content-length'], String(p.body.length));
  assertCommonHeaders(p.headers, 'h2o 413');
  const after = await smallAdmin.children(smallRoot);
  assert.equal(after.status, 200);
  assert.deepEqual(after.json().items, before, 'nothing stored');
});

test('HTTP/1.1 clients that send an oversized body at once get a 413 or a reset, never a stored file', async () => {
  // libh2o 2.2.5 answers 413 as soon as it sees the Content-Length and closes without draining the
  // unread body (no lingering close, RFC 9112 §9.6), so a client that is still sending may see a
  // connection reset instead of the 413. This is a documented limitation (docs/API.md): clients
  // that send Expect: 100-continue (curl does for large bodies) always get the 413 (test above).
  // What must hold for everyone: nothing is stored and no other answer is given.
  const file = path.join(small.dir, 'body-1m.bin');
  fs.writeFileSync(file, bigBytes(1024 * 1024, 8));
  const url = `${small.url}/api/v1/files?parent=${smallRoot}&name=big.bin`;
  const before = (await smallAdmin.children(smallRoot)).json().items;
  const one = () => new Promise((resolve) => {
    const p = spawn('curl', ['-skS', '--http1.1', '-i', '-X', 'POST', '-H', `authorization: Bearer ${smallAdmin.token}`,
      '-H', 'Expect:', '--data-binary', `@${file}`, url]);
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.on('close', (code) => resolve({ code, status: /^HTTP\/1\.1 (\d+)/.exec(out)?.[1] }));
  });
  for (let round = 0; round < 3; round++) {
    for (const r of await Promise.all(Array.from({ length: 10 }, one))) {
      const ok = (r.code === 0 && r.status === '413') || (r.status === undefined && (r.code === 55 || r.code === 56));
      assert.ok(ok, `unexpected outcome: curl exit ${r.code}, HTTP ${r.status}`);
    }
  }
  const after = (await smallAdmin.children(smallRoot)).json().items;
  assert.deepEqual(after, before, 'nothing stored');
});

test('GET / is HTML with a strict CSP', async (t) => {
  const r = await srv.request('GET', '/');
  if (r.status === 404) {
    t.skip('GET / answers 404: web/index.html is not there yet (the web UI is built elsewhere)');
    return;
  }
  assert.equal(r.status, 200);
  assert.match(String(r.headers['content-type']), /^text\/html/);
  assertCommonHeaders(r.headers, 'GET /');
  const csp = r.headers['content-security-policy'];
  assert.ok(!csp.includes('unsafe-inline'), `CSP of / must not allow unsafe-inline: ${csp}`);
  assert.ok(!csp.includes('unsafe-eval'), `CSP of / must not allow unsafe-eval: ${csp}`);
  assert.match(csp, /(^|;)\s*default-src /);
});

// ---- oversized bodies ------------------------------------------------------------------------

test('HTTP/2 upload over max_request_body_bytes: stream refused, nothing stored', async () => {
  const list0 = await smallAdmin.children(smallRoot);
  assert.equal(list0.status, 200);
  const before = list0.json().items;
  for (const headers of [{}, { 'content-length': String(70 * 1024) }]) {
    const p = small.request('POST', `/api/v1/files?parent=${smallRoot}&name=h2big.bin`, { token: smallAdmin.token, body: bigBytes(70 * 1024, 5), headers, newSession: true });
    const res = await p.then((r) => ({ ok: r }), (e) => ({ err: e }));
    if (res.ok) {
      // A 413 answer would be acceptable too; anything else is not.
      assertJsonError(res.ok, 413, 'payload_too_large', `h2 oversized (${JSON.stringify(headers)})`);
    } else {
      const refused = res.err.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM ||
        (res.err.code === 'ERR_HTTP2_STREAM_ERROR' && /\bNGHTTP2_REFUSED_STREAM\b/.test(res.err.message));
      assert.ok(refused, `expected RST_STREAM(REFUSED_STREAM), got ${res.err.code || ''} ${res.err.message}`);
    }
  }
  // A body just under the limit still goes through on HTTP/2.
  const ok = await smallAdmin.upload(smallRoot, 'h2small.bin', bigBytes(60 * 1024, 6));
  assert.equal(ok.status, 201, ok.text());
  const list1 = await smallAdmin.children(smallRoot);
  assert.equal(list1.status, 200);
  assert.deepEqual(list1.json().items.map((x) => x.name).sort(), [...before.map((x) => x.name), 'h2small.bin'].sort());
  assert.ok(!list1.json().items.some((x) => x.name === 'h2big.bin'));
});

// ---- TLS --------------------------------------------------------------------------------------

function sClient(port, args) {
  const r = spawnSync('timeout', ['120', 'openssl', 's_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', ...args],
    { input: '', encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}\n${r.stderr}` };
}

test('TLS: 1.0 and 1.1 are refused by the server; 1.2 and 1.3 work', () => {
  // SECLEVEL=0 lets the client offer the old versions, so a failure is the server's refusal.
  for (const v of ['-tls1', '-tls1_1']) {
    const r = sClient(srv.port, [v, '-cipher', 'DEFAULT:@SECLEVEL=0']);
    assert.notEqual(r.status, 0, `${v} must fail:\n${r.out}`);
    // The ClientHello went out and the server answered nothing (no ServerHello): h2o closes the
    // connection on a failed handshake, with or without a protocol_version alert.
    assert.match(r.out, /SSL handshake has read (0|7) bytes and written [1-9]\d* bytes/, `${v}: no ServerHello:\n${r.out}`);
    assert.match(r.out, /New, \(NONE\), Cipher is \(NONE\)/);
  }
  const c = curl(['-sS', '--tlsv1.0', '--tls-max', '1.1', '--ciphers', 'DEFAULT:@SECLEVEL=0', `${srv.url}/healthz`]);
  assert.equal(c.status, 35, `curl --tls-max 1.1 must fail the handshake: ${c.stderr}`);
  assert.match(c.stderr, /SSL_ERROR_SYSCALL|unexpected eof|protocol version|unsupported protocol/);

  const t12 = sClient(srv.port, ['-tls1_2']);
  assert.equal(t12.status, 0, t12.out);
  assert.match(t12.out, /^\s*Protocol\s*:\s*TLSv1\.2\s*$/m);
  assert.match(t12.out, /^New, TLSv1\.2, Cipher is /m);
  const cipher = t12.out.match(/^\s*Cipher\s*:\s*(\S+)\s*$/m)[1];
  assert.match(cipher, /^ECDHE-(ECDSA|RSA)-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$/, `negotiated ${cipher}`);
  const t13 = sClient(srv.port, ['-tls1_3']);
  assert.equal(t13.status, 0, t13.out);
  // (with stdin closed, s_client may leave before the TLS 1.3 session block: accept either line)
  assert.match(t13.out, /^\s*Protocol\s*:\s*TLSv1\.3\s*$|^New, TLSv1\.3, Cipher is TLS_/m);
  const c13 = curl(['-sS', '--tlsv1.3', `${srv.url}/healthz`]);
  assert.equal(c13.status, 0, c13.stderr);
  assert.equal(c13.stdout.toString(), '{"status":"ok"}');
});

test('TLS 1.2: only ECDHE with AEAD ciphers', () => {
  // The certificate is ECDSA: the ECDHE-ECDSA CBC suites are the ones a permissive server would pick.
  for (const cipher of ['AES256-SHA', 'ECDHE-RSA-AES256-SHA', 'ECDHE-ECDSA-AES256-SHA', 'ECDHE-ECDSA-AES128-SHA256',
    'ECDHE-ECDSA-AES256-SHA384', 'AES128-GCM-SHA256', 'DHE-RSA-AES128-GCM-SHA256']) {
    const r = sClient(srv.port, ['-tls1_2', '-cipher', `${cipher}:@SECLEVEL=0`]);
    assert.notEqual(r.status, 0, `${cipher} must be refused:\n${r.out}`);
    assert.match(r.out, /SSL handshake has read (0|7) bytes and written [1-9]\d* bytes/, `${cipher}: no ServerHello:\n${r.out}`);
    assert.match(r.out, /New, \(NONE\), Cipher is \(NONE\)/);
  }
  for (const cipher of ['ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305']) {
    const r = sClient(srv.port, ['-tls1_2', '-cipher', cipher]);
    assert.equal(r.status, 0, `${cipher} must work:\n${r.out}`);
    assert.match(r.out, new RegExp(`^\\s*Cipher\\s*:\\s*${cipher}\\s*$`, 'm'));
  }
});

test('ALPN: h2 when offered, HTTP/1.1 for clients that only offer http/1.1 or nothing', () => {
  const h2 = curl(['--http2', '-v', `${srv.url}/healthz`]);
  assert.equal(h2.status, 0, h2.stderr);
  assert.match(h2.stderr, /ALPN: server accepted h2/);
  assert.match(h2.stderr, /< HTTP\/2 200/);
  const h1 = curl(['--http1.1', '-v', `${srv.url}/healthz`]);
  assert.equal(h1.status, 0, h1.stderr);
  assert.match(h1.stderr, /ALPN: offers http\/1\.1/);
  assert.doesNotMatch(h1.stderr, /ALPN: offers h2/);
  assert.match(h1.stderr, /ALPN: server accepted http\/1\.1/);
  assert.match(h1.stderr, /< HTTP\/1\.1 200/);
  const none = curl(['--http1.1', '--no-alpn', '-v', `${srv.url}/healthz`]);
  assert.equal(none.status, 0, none.stderr);
  assert.match(none.stderr, /< HTTP\/1\.1 200/);
  const s = sClient(srv.port, ['-alpn', 'h2,http/1.1']);
  assert.match(s.out, /ALPN protocol: h2/);
});

// ---- HTTP/2 conformance: malformed :path (RFC 9113 §8.3.1, h2spec 8.1.2.3) -----------------------
// Node's client refuses to send an empty :path, so these frames are written by hand.

/** One HTTP/2 frame: 9-byte header + payload. */
function h2frame(type, flags, stream, payload = Buffer.alloc(0)) {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}
/** An HPACK string literal, not Huffman-coded (all values here are under 127 bytes). */
function hpackString(s) {
  const b = Buffer.from(s);
  assert.ok(b.length < 127);
  return Buffer.concat([Buffer.from([b.length]), b]);
}
/** Literal header field without indexing, new name (RFC 7541 §6.2.2). */
const hpackLiteral = (name, value) => Buffer.concat([Buffer.from([0x00]), hpackString(name), hpackString(value)]);
/** Literal header field without indexing, name from static-table index idx (4 is :path). */
const hpackLiteralIndexedName = (idx, value) => Buffer.concat([Buffer.from([idx]), hpackString(value)]);

/** Opens a raw h2 connection, sends the preface and SETTINGS, then requests [stream id, HPACK block]
 *  (each one HEADERS frame with END_STREAM|END_HEADERS). Resolves with the frames the server sent
 *  once stream `until` got its HEADERS or RST_STREAM, or the connection closed. */
function rawRequests(requests, until) {
  return new Promise((resolve, reject) => {
    const frames = [];
    let buf = Buffer.alloc(0);
    let done = false;
    const s = tls.connect({ host: '127.0.0.1', port: srv.port, rejectUnauthorized: false, ALPNProtocols: ['h2'] });
    const finish = (closed) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ frames, closed });
    };
    const timer = setTimeout(() => { s.destroy(); reject(new Error(`no answer on stream ${until}: ${JSON.stringify(frames)}`)); }, 60000);
    s.on('error', () => {});
    s.on('close', () => finish(true));
    s.once('secureConnect', () => {
      assert.equal(s.alpnProtocol, 'h2');
      const out = [Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), h2frame(4, 0, 0)];
      for (const [id, block, body] of requests) {
        if (body === undefined) { out.push(h2frame(1, 0x1 | 0x4, id, block)); continue; }
        out.push(h2frame(1, 0x4, id, block), h2frame(0, 0x1, id, body)); // HEADERS, then DATA with END_STREAM
      }
      s.write(Buffer.concat(out));
    });
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) break;
        const f = { type: buf[3], flags: buf[4], stream: buf.readUInt32BE(5) & 0x7fffffff, payload: buf.subarray(9, 9 + len) };
        buf = buf.subarray(9 + len);
        if (f.type === 4 && (f.flags & 1) === 0) s.write(h2frame(4, 1, 0)); // ACK the server's SETTINGS
        frames.push(f);
        if (typeof until === 'function' ? until(frames) : f.stream === until && (f.type === 1 || f.type === 3)) finish(false);
        if (f.type === 7) finish(false); // GOAWAY
      }
    });
  });
}

test('HTTP/2: an empty or non-origin-form :path is a stream error (RST_STREAM PROTOCOL_ERROR), the connection stays usable', async () => {
  const GET = Buffer.from([0x82, 0x87]); // :method GET, :scheme https (static table)
  const auth = hpackLiteral(':authority', '127.0.0.1');
  const cases = [
    [1, Buffer.concat([GET, auth, hpackLiteral(':path', '')]), 'empty :path, literal name'],
    [3, Buffer.concat([GET, auth, hpackLiteralIndexedName(4, '')]), 'empty :path, indexed name'],
    [5, Buffer.concat([GET, auth, hpackLiteral(':path', 'api/v1/spaces')]), ':path without the leading /'],
    [7, Buffer.concat([GET, hpackLiteralIndexedName(4, ''), auth, hpackLiteral('user-agent', 'raw')]), 'empty :path before :authority'],
    [9, Buffer.concat([Buffer.from([0x83, 0x87]), auth, hpackLiteral(':path', ''), hpackLiteral('content-type', 'application/json')]),
      'POST with an empty :path and a body', Buffer.from('{"username":"admin"}')],
    [11, Buffer.concat([GET, auth, hpackLiteral(':path', '*')]), ':path * with GET (only OPTIONS may use it)'],
    [13, Buffer.concat([GET, auth, hpackLiteralIndexedName(4, '/healthz')]), 'a well-formed request after them'],
  ];
  const { frames, closed } = await rawRequests(cases.map(([id, block, , body]) => [id, block, body]), 13);
  assert.equal(closed, false, `the connection must stay open: ${JSON.stringify(frames)}`);
  assert.equal(frames.filter((f) => f.type === 7).length, 0, 'no GOAWAY: a stream error, not a connection error');
  for (const [id, , label] of cases.slice(0, -1)) {
    const mine = frames.filter((f) => f.stream === id);
    assert.deepEqual(mine.map((f) => f.type), [3], `${label}: exactly one RST_STREAM on stream ${id}, no HEADERS/DATA`);
    assert.equal(mine[0].payload.length, 4);
    assert.equal(mine[0].payload.readUInt32BE(0), 0x1, `${label}: error code PROTOCOL_ERROR`);
  }
  const ok = frames.filter((f) => f.stream === 13);
  assert.equal(ok[0].type, 1, 'HEADERS for the well-formed request');
  assert.equal(ok[0].payload[0], 0x88, ':status 200 (static-table index 8)');
  // The server logged nothing alarming and still answers ordinary clients.
  const r = await admin.spaces();
  assert.ok(r.private.root);
});

test('HTTP/2: 40 malformed streams interleaved with 40 well-formed ones on one connection: each answered its own way', async () => {
  const GET = Buffer.from([0x82, 0x87]);
  const auth = hpackLiteral(':authority', '127.0.0.1');
  const reqs = [];
  for (let i = 0; i < 80; i++) {
    const id = 2 * i + 1;
    // Even: empty :path; odd: /healthz (answered on the loop) or /api/v1/spaces without credentials (401).
    const p = i % 2 === 0 ? '' : i % 4 === 1 ? '/healthz' : '/api/v1/spaces';
    reqs.push([id, Buffer.concat([GET, auth, hpackLiteralIndexedName(4, p)])]);
  }
  const terminal = (frames, id) => frames.some((f) => f.stream === id && (f.type === 3 || (f.type === 1 && (f.flags & 1)) || (f.type === 0 && (f.flags & 1))));
  const { frames, closed } = await rawRequests(reqs, (fs_) => reqs.every(([id]) => terminal(fs_, id)));
  assert.equal(closed, false, 'the connection stays open');
  assert.equal(frames.filter((f) => f.type === 7).length, 0, 'no GOAWAY');
  for (const [id] of reqs) {
    const mine = frames.filter((f) => f.stream === id);
    if (((id - 1) / 2) % 2 === 0) {
      assert.deepEqual(mine.map((f) => [f.type, f.payload.readUInt32BE(0)]), [[3, 1]], `stream ${id}: RST_STREAM(PROTOCOL_ERROR) only`);
    } else {
      assert.equal(mine[0].type, 1, `stream ${id}: a response`);
      assert.equal(mine.filter((f) => f.type === 3).length, 0, `stream ${id}: not reset`);
    }
  }
});
