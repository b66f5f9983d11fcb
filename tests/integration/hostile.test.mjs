// Hostile clients (issue 10): slowloris on HTTP/1.1 and HTTP/2, TLS handshakes never finished, idle
// connections kept alive by PINGs, unauthenticated large bodies, header floods (HTTP/1.1 and HTTP/2:
// CONTINUATION flood, HPACK table abuse), many connections from one address, and HTTP/2 rapid reset
// (CVE-2023-44487, which libh2o 2.2.5 predates). Each attack runs while a well-behaved client, from
// another address (127.0.0.2), opens a fresh TLS connection, logs in, reads a node and downloads a
// small file; every one of its requests must succeed with the exact status and bytes. Each test also
// asserts the effect of the limit that defends against its attack (a connection closed, a
// connection refused), so that it fails when that limit is removed: HOSTILE_LIMITS='{"key": value}'
// overrides the servers' `limits:` to show it. Latencies and server memory are printed, never
// asserted (timing belongs to bench/); the only time bounds are generous liveness ceilings.
// The servers stop cleanly afterwards (under ASan+UBSan: no memory error, no leak).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { Server, ADMIN_PASSWORD } from './lib/harness.mjs';

const GOOD = '127.0.0.2'; // the well-behaved client's address; attackers use 127.0.0.1 (and 127.0.0.1x)
const BODY = Buffer.from('hostile clients target\n');
const override = JSON.parse(process.env.HOSTILE_LIMITS || '{}');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Server A: short timeouts, for the slow attacks. Server B: default timeouts, the other attacks.
let A, B;
const target = new Map(); // server → file id

async function startServer(limits) {
  const s = await new Server({ config: { limits: { ...limits, ...override } } }).start();
  const token = (await s.login()).token;
  const c = s.client(token);
  const up = await c.upload((await c.spaces()).private.root, 'target.txt', BODY);
  assert.equal(up.status, 201);
  target.set(s, up.json().id);
  return s;
}

before(async () => {
  [A, B] = await Promise.all([
    startServer({ request_timeout: '3s', handshake_timeout: '2s', idle_timeout: '3s' }),
    startServer({ max_request_body_bytes: '64MiB', max_connections: 200, max_connections_per_address: 64 }),
  ]);
});

after(async () => {
  for (const s of [A, B]) if (s) { await s.stop(); s.cleanup(); }
});

// ---- the well-behaved client --------------------------------------------------------------------

function h2req(session, method, path, headers = {}, body) {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': method, ':path': path, ...headers }, { endStream: body === undefined });
    const chunks = [];
    let status;
    req.on('response', (h) => { status = h[':status']; });
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve({ status, body: Buffer.concat(chunks) }));
    req.on('error', reject);
    if (body !== undefined) req.end(body);
  });
}

/** One visit: fresh TLS connection from GOOD, login, GET the node, download it. */
async function visit(srv) {
  const t = performance.now();
  const s = http2.connect(srv.url, { rejectUnauthorized: false, localAddress: GOOD });
  s.on('error', () => {});
  try {
    const login = await h2req(s, 'POST', '/api/v1/auth/login', { 'content-type': 'application/json' },
      JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }));
    assert.equal(login.status, 200, `login: ${login.body}`);
    const auth = { authorization: `Bearer ${JSON.parse(login.body).token}` };
    const id = target.get(srv);
    const node = await h2req(s, 'GET', `/api/v1/nodes/${id}`, auth);
    assert.equal(node.status, 200);
    assert.equal(JSON.parse(node.body).id, id);
    const dl = await h2req(s, 'GET', `/api/v1/files/${id}/content`, auth);
    assert.equal(dl.status, 200);
    assert.ok(dl.body.equals(BODY), 'exact bytes');
    return performance.now() - t;
  } finally {
    s.close();
  }
}

/** Runs attack() while visiting srv every 200 ms; prints p50/max; returns the attack's result. */
async function underAttack(name, srv, attack) {
  const baseline = await visit(srv);
  let done = false;
  const running = attack().finally(() => { done = true; });
  const ms = [];
  while (!done || ms.length < 3) {
    ms.push(await visit(srv));
    await sleep(200);
  }
  const result = await running;
  ms.sort((a, b) => a - b);
  const rss = result && result.rss ? `; server RSS ${result.rss}` : '';
  console.log(`# ${name}: well-behaved client (TLS + login + node + download) baseline ${baseline.toFixed(0)} ms, ` +
    `during the attack p50 ${ms[ms.length >> 1].toFixed(0)} ms, max ${ms[ms.length - 1].toFixed(0)} ms over ${ms.length} visits${rss}`);
  assert.equal(srv.proc.exitCode, null, 'the server is still running');
  return result;
}

// ---- attack tools -------------------------------------------------------------------------------

/** Resolves with the time a socket-like object emitted 'close', or null after ceiling ms. */
function closedWithin(sock, ceiling) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const timer = setTimeout(() => resolve(null), ceiling);
    sock.once('close', () => { clearTimeout(timer); resolve(Date.now() - t0); });
  });
}

function tlsSocket(srv, alpn, opts = {}) {
  const s = tls.connect({ host: '127.0.0.1', port: srv.port, rejectUnauthorized: false, ALPNProtocols: [alpn], ...opts });
  s.on('error', () => {});
  return s;
}

/** Dribbles one byte of data every 400 ms until the socket closes. */
function dribble(sock, head, tail) {
  sock.write(head);
  let i = 0;
  const timer = setInterval(() => {
    if (sock.destroyed) return clearInterval(timer);
    sock.write(tail[i++ % tail.length]);
  }, 400);
  sock.once('close', () => clearInterval(timer));
}

function rssOf(srv) {
  const st = fs.readFileSync(`/proc/${srv.proc.pid}/status`, 'utf8');
  const kb = (k) => Number(st.match(new RegExp(`${k}:\\s+(\\d+)`))[1]);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

// HTTP/2 frames by hand (Node's client will not send malformed or abusive frames).
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
function frame(type, flags, stream, payload = Buffer.alloc(0)) {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}
const HEADERS = 1, SETTINGS = 4, CONTINUATION = 9;
const END_STREAM = 1, END_HEADERS = 4;
function hpackInt(prefixBits, flags, n) {
  const max = (1 << prefixBits) - 1;
  if (n < max) return Buffer.from([flags | n]);
  const out = [flags | max];
  n -= max;
  while (n >= 128) { out.push((n & 127) | 128); n >>= 7; }
  out.push(n);
  return Buffer.from(out);
}
const hpackStr = (s) => Buffer.concat([hpackInt(7, 0, Buffer.byteLength(s)), Buffer.from(s)]);
/** Literal header field without indexing, new name. */
const literal = (name, value) => Buffer.concat([Buffer.from([0]), hpackStr(name), hpackStr(value)]);
/** Literal header field with incremental indexing (enters the dynamic table), new name. */
const indexed = (name, value) => Buffer.concat([Buffer.from([0x40]), hpackStr(name), hpackStr(value)]);
// :method GET, :scheme https, :path /api/v1/spaces, :authority
const GET_PSEUDO = Buffer.concat([Buffer.from([0x82, 0x87, 0x04]), hpackStr('/api/v1/spaces'), Buffer.from([0x41]), hpackStr('127.0.0.1')]);

/** Opens a raw HTTP/2 connection; resolves when the TLS handshake is done. */
async function rawH2(srv) {
  const s = tlsSocket(srv, 'h2');
  await new Promise((resolve, reject) => { s.once('secureConnect', resolve); s.once('close', () => reject(new Error('closed'))); });
  s.write(Buffer.concat([PREFACE, frame(SETTINGS, 0, 0)]));
  s.resume(); // discard what the server sends
  return s;
}

// ---- slowloris and idle connections (server A: request_timeout 3s, handshake 2s, idle 3s) ------

test('slowloris on HTTP/1.1 and HTTP/2, unfinished TLS handshakes, PING-kept idle connections: all closed by the server', async () => {
  const CEILING = 60000; // a liveness deadline (generous: the machine may be busy); the limits are 2-3 s
  const N = 10;
  const res = await underAttack('slowloris (h1 headers, h1 body, h2 HEADERS, h2 DATA, TLS, idle)', A, async () => {
    const kinds = {};
    const watch = (kind, sock) => { (kinds[kind] ||= []).push(closedWithin(sock, CEILING)); };
    for (let i = 0; i < N; i++) {
      // HTTP/1.1: request headers one byte at a time, never ending.
      const h = tlsSocket(A, 'http/1.1');
      h.once('secureConnect', () => dribble(h, 'GET /api/v1/spaces HTTP/1.1\r\nHost: 127.0.0.1\r\n', 'X-Slow: abcdefghij\r\n'));
      watch('h1 headers', h);
      // HTTP/1.1: a body one byte at a time.
      const b = tlsSocket(A, 'http/1.1');
      b.once('secureConnect', () => dribble(b, 'POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n', '{'));
      watch('h1 body', b);
      // TLS: TCP connected, handshake never started; and a ClientHello cut short.
      const t = net.connect(A.port, '127.0.0.1');
      t.on('error', () => {});
      watch('tls silent', t);
      const p = net.connect(A.port, '127.0.0.1', () => p.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])));
      p.on('error', () => {});
      watch('tls partial', p);
    }
    for (let i = 0; i < N; i++) {
      // HTTP/2: a stream whose HEADERS never end (no END_STREAM), PINGs keep h2o's idle timer young.
      const s1 = http2.connect(A.url, { rejectUnauthorized: false });
      s1.on('error', () => {});
      const r1 = s1.request({ ':method': 'POST', ':path': '/api/v1/auth/login', 'content-type': 'application/json' }, { endStream: false });
      r1.on('error', () => {});
      const p1 = setInterval(() => { if (!s1.destroyed) s1.ping(() => {}); }, 400);
      s1.once('close', () => clearInterval(p1));
      watch('h2 open stream', s1);
      // HTTP/2: a body trickled one byte per DATA frame.
      const s2 = http2.connect(A.url, { rejectUnauthorized: false });
      s2.on('error', () => {});
      const r2 = s2.request({ ':method': 'POST', ':path': '/api/v1/auth/login', 'content-type': 'application/json' }, { endStream: false });
      r2.on('error', () => {});
      const p2 = setInterval(() => { if (!r2.destroyed) r2.write('{'); }, 400);
      s2.once('close', () => clearInterval(p2));
      watch('h2 DATA trickle', s2);
      // HTTP/2: no stream at all, only PINGs.
      const s3 = http2.connect(A.url, { rejectUnauthorized: false });
      s3.on('error', () => {});
      const p3 = setInterval(() => { if (!s3.destroyed) s3.ping(() => {}); }, 400);
      s3.once('close', () => clearInterval(p3));
      watch('h2 idle + PING', s3);
    }
    const out = {};
    for (const [k, v] of Object.entries(kinds)) out[k] = await Promise.all(v);
    return out;
  });
  for (const [kind, times] of Object.entries(res)) {
    const open = times.filter((t) => t === null).length;
    const shown = times.filter((t) => t !== null).sort((a, b) => a - b);
    console.log(`#   ${kind}: ${times.length - open}/${times.length} closed by the server, after ${shown[0]}-${shown[shown.length - 1]} ms`);
    assert.equal(open, 0, `${kind}: ${open} of ${times.length} connections still open after ${CEILING} ms`);
  }
});

// ---- unauthenticated large bodies (server B: max_request_body_bytes 64 MiB) ---------------------

test('unauthenticated 60 MiB bodies on HTTP/1.1 and HTTP/2: cut off early, memory stays bounded', async () => {
  const SIZE = 60 * 1024 * 1024;
  // A liveness ceiling per connection, generous: one the server never ends fails this test by its
  // kind (it once hung here until meson's timeout, not reproduced since), instead of hanging the suite.
  const CEILING = 240000;
  const big = Buffer.alloc(SIZE, 0x7b);
  const before0 = rssOf(B);
  let peak = before0.rss;
  const sampler = setInterval(() => { try { peak = Math.max(peak, rssOf(B).rss); } catch { /* exited */ } }, 50);
  const res = await underAttack('60 MiB bodies without credentials (8 h1 + 8 h2 to login, 8 h2 to /api/v1/files)', B, async () => {
    const one = (kind) => new Promise((resolve) => {
      if (kind === 'h1') {
        const s = tlsSocket(B, 'http/1.1');
        let status = null;
        const stuck = setTimeout(() => { open = true; s.destroy(); }, CEILING);
        let open = false;
        s.once('secureConnect', () => {
          s.write(`POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${SIZE}\r\n\r\n`);
          s.write(big);
        });
        s.on('data', (d) => { if (status === null) status = Number(d.toString('latin1').split(' ')[1]); });
        s.once('close', () => { clearTimeout(stuck); resolve({ kind, status, open }); });
        return;
      }
      const sess = http2.connect(B.url, { rejectUnauthorized: false });
      sess.on('error', () => {});
      const path = kind === 'h2 login' ? '/api/v1/auth/login' : `/api/v1/files?parent=${target.get(B)}&name=x.bin`;
      const req = sess.request({ ':method': 'POST', ':path': path, 'content-type': 'application/json' });
      let status = null, open = false;
      const stuck = setTimeout(() => { open = true; sess.destroy(); }, CEILING);
      req.on('response', (h) => { status = h[':status']; });
      req.on('error', () => {});
      req.on('close', () => { clearTimeout(stuck); sess.destroy(); resolve({ kind, status, open }); });
      req.end(big);
    });
    const all = [];
    for (let i = 0; i < 8; i++) all.push(one('h1'), one('h2 login'), one('h2 files'));
    return { outcomes: await Promise.all(all) };
  });
  clearInterval(sampler);
  const after0 = rssOf(B);
  console.log(`#   server RSS ${before0.rss.toFixed(0)} MiB before, peak sampled ${peak.toFixed(0)} MiB, ` +
    `high-water ${after0.hwm.toFixed(0)} MiB, ${after0.rss.toFixed(0)} MiB after (ASan build: ~2x a release build)`);
  // On failure, the server's own account: a connection closed by a limit and still open 10 s later is
  // logged with its state (conn.c), and the limits' counters say which rules fired.
  const why = () => `\n${B.stderr.split('\n').filter((x) => /still open|connection\(s\)/.test(x)).slice(-8).join('\n')}`;
  for (const o of res.outcomes) assert.equal(o.open, false, `${o.kind}: the server kept the connection open ${CEILING / 1000} s after a 60 MiB unauthenticated body${o.open ? why() : ''}`);
  for (const o of res.outcomes) assert.equal(o.status, null, `${o.kind}: the server read the whole body and answered ${o.status}`);
  assert.ok(peak - before0.rss < 512, `peak RSS grew by ${(peak - before0.rss).toFixed(0)} MiB`);
});

// ---- header floods ------------------------------------------------------------------------------

test('header floods: HTTP/1.1 huge and numerous headers, HTTP/2 CONTINUATION flood and HPACK abuse', async () => {
  const CEILING = 60000; // a liveness deadline, generous
  const res = await underAttack('header floods', B, async () => {
    const h1 = (head) => new Promise((resolve) => {
      const s = tlsSocket(B, 'http/1.1');
      let first = '';
      s.once('secureConnect', () => s.write(head));
      s.on('data', (d) => { if (!first) first = d.toString('latin1').split('\r\n')[0]; });
      s.once('close', () => resolve(first));
      setTimeout(() => s.destroy(), CEILING);
    });
    const many = 'GET /api/v1/spaces HTTP/1.1\r\nHost: 127.0.0.1\r\n' +
      Array.from({ length: 150 }, (_, i) => `X-H${i}: v\r\n`).join('') + '\r\n';
    const huge = `GET /api/v1/spaces HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(1 << 20)}\r\n\r\n`;
    // HTTP/2 CONTINUATION flood: headers that never end, 16 KiB at a time, up to 8 MiB.
    const continuation = async () => {
      const s = await rawH2(B);
      const closed = closedWithin(s, CEILING);
      let sent = 0, gone = false;
      s.once('close', () => { gone = true; });
      s.write(frame(HEADERS, END_STREAM, 1, GET_PSEUDO));
      const chunk = Buffer.concat(Array.from({ length: 16 }, () => literal('x-flood', 'f'.repeat(1000))));
      while (!gone && sent < 8 << 20) {
        if (!s.write(frame(CONTINUATION, 0, 1, chunk))) await new Promise((r) => { s.once('drain', r); s.once('close', r); });
        sent += chunk.length;
      }
      return { closed: await closed, sent };
    };
    // HPACK: a dynamic table size update far above SETTINGS_HEADER_TABLE_SIZE.
    const tableSize = async () => {
      const s = await rawH2(B);
      const closed = closedWithin(s, CEILING);
      s.write(frame(HEADERS, END_STREAM | END_HEADERS, 1, Buffer.concat([hpackInt(5, 0x20, 1 << 30), GET_PSEUDO])));
      return { closed: await closed };
    };
    // HPACK: one 4 KB entry in the dynamic table, then referenced by one byte, many times.
    const amplify = async () => {
      const s = await rawH2(B);
      const closed = closedWithin(s, CEILING);
      const refs = Buffer.alloc(16000, 0x80 | 62); // indexed field 62: the newest dynamic entry
      s.write(frame(HEADERS, END_STREAM, 1, Buffer.concat([GET_PSEUDO, indexed('x-amp', 'a'.repeat(4000))])));
      for (let i = 0; i < 30; i++) s.write(frame(CONTINUATION, i === 29 ? END_HEADERS : 0, 1, refs));
      let status = null;
      s.on('data', (d) => { if (d.includes(Buffer.from(':status'))) status = 'answered'; });
      return { closed: await Promise.race([closed, sleep(3000).then(() => 'open')]), status };
    };
    const out = { many: [], huge: [] };
    const jobs = [];
    for (let i = 0; i < 5; i++) {
      jobs.push(h1(many).then((r) => out.many.push(r)), h1(huge).then((r) => out.huge.push(r)));
    }
    [out.continuation, out.tableSize, out.amplify] = await Promise.all([continuation(), tableSize(), amplify(), ...jobs]);
    return out;
  });
  console.log(`#   h1 150 headers: ${JSON.stringify(res.many)}; h1 1 MiB header: ${JSON.stringify(res.huge)}`);
  console.log(`#   h2 CONTINUATION flood: closed after ${res.continuation.closed} ms (${res.continuation.sent} bytes queued by the client); HPACK table size update: ` +
    `closed after ${res.tableSize.closed} ms; HPACK references: ${JSON.stringify(res.amplify)}`);
  // A 4xx, or (when the server closed while the client was still writing) no answer at all; never a 2xx.
  for (const r of res.many) assert.match(r, /^HTTP\/1\.1 4\d\d /, 'refused with a 4xx');
  for (const r of res.huge) assert.match(r, /^(HTTP\/1\.1 4\d\d .*)?$/, 'refused with a 4xx or closed');
  assert.notEqual(res.continuation.closed, null, 'the CONTINUATION flood was cut');
  assert.notEqual(res.tableSize.closed, null, 'the oversized table update was refused');
});

test('HTTP/2 streams past SETTINGS_MAX_CONCURRENT_STREAMS (100) are refused; unfinished ones end with the request timeout', async () => {
  // 120 POSTs whose HEADERS end but whose bodies never start: each stream stays "receiving its
  // request". libh2o refuses every stream past the 100th with RST_STREAM(REFUSED_STREAM); the 100
  // it keeps are closed with the connection once limits.request_timeout passes (server A: 3 s).
  const CEILING = 60000; // a liveness deadline, generous
  const res = await underAttack('unfinished streams', A, async () => {
    const s = await rawH2(A);
    const refused = new Set();
    let buf = Buffer.alloc(0);
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) break;
        if (buf[3] === 3 && buf.readUInt32BE(9) === 7) refused.add(buf.readUInt32BE(5) & 0x7fffffff);
        buf = buf.subarray(9 + len);
      }
    });
    const closed = closedWithin(s, CEILING);
    const post = Buffer.concat([Buffer.from([0x83, 0x87, 0x04]), hpackStr('/api/v1/auth/login'), Buffer.from([0x41]), hpackStr('127.0.0.1'),
      literal('content-type', 'application/json')]);
    for (let i = 0; i < 120; i++) s.write(frame(HEADERS, END_HEADERS, 1 + 2 * i, post));
    return { closed: await closed, refused: [...refused].sort((x, y) => x - y) };
  });
  console.log(`#   120 unfinished streams: ${res.refused.length} refused (streams ${res.refused[0]}..${res.refused.at(-1)}), connection closed after ${res.closed} ms`);
  assert.deepEqual(res.refused, Array.from({ length: 20 }, (_, i) => 201 + 2 * i), 'streams 101..120 refused, no other');
  assert.notEqual(res.closed, null, 'the connection holding 100 unfinished streams was closed by the request timeout');
});

// ---- many connections (server B: 64 per address, 200 in all) -----------------------------------

test('2000 connections from one address: the server keeps at most limits.max_connections_per_address', async () => {
  const N = 2000;
  const res = await underAttack(`${N} connections from one address`, B, async () => {
    const socks = [];
    const results = await Promise.all(Array.from({ length: N }, () => new Promise((resolve) => {
      const s = tlsSocket(B, 'http/1.1');
      socks.push(s);
      s.once('secureConnect', () => resolve('tls'));
      s.once('close', () => resolve('closed'));
    })));
    const kept = results.filter((r) => r === 'tls').length;
    for (const s of socks) s.destroy();
    return { kept };
  });
  console.log(`#   ${res.kept} of ${N} connections completed TLS; the rest were closed at accept`);
  assert.ok(res.kept <= 64, `${res.kept} connections from one address were served`);
  assert.ok(res.kept > 0);
});

test('connections from many addresses: the server keeps at most limits.max_connections in all', async () => {
  const addrs = ['127.0.0.10', '127.0.0.11', '127.0.0.12', '127.0.0.13', '127.0.0.14'];
  const socks = [];
  const results = await Promise.all(addrs.flatMap((a) => Array.from({ length: 64 }, () => new Promise((resolve) => {
    const s = tlsSocket(B, 'http/1.1', { localAddress: a });
    socks.push(s);
    s.once('secureConnect', () => resolve('tls'));
    s.once('close', () => resolve('closed'));
  }))));
  const kept = results.filter((r) => r === 'tls').length;
  for (const s of socks) s.destroy();
  // The server serves again once it has seen them go: visits are retried until one succeeds (an
  // event), with a generous deadline, where a fixed pause used to guess.
  let ms;
  for (const deadline = Date.now() + 120000; ;) {
    try { ms = await visit(B); break; } catch (e) { if (Date.now() > deadline) throw e; await sleep(50); }
  }
  console.log(`#   ${kept} of ${results.length} connections from ${addrs.length} addresses completed TLS (limit 200); a visit afterwards took ${ms.toFixed(0)} ms`);
  assert.ok(kept <= 200, `${kept} connections were served`);
  assert.ok(kept >= 64);
});

// ---- rapid reset (server B: max_cancels_per_connection 100 per 10 s) ----------------------------

test('HTTP/2 rapid reset: connections that cancel too many requests are closed; others are served', async () => {
  const id = target.get(B);
  const token = (await B.login()).token;
  let sent = 0, closedByServer = 0;
  const res = await underAttack('rapid reset (4 attackers, reconnecting)', B, async () => {
    // At least 5 s and at least 1100 pairs (a busy machine writes fewer per second), at most 120 s.
    const start = Date.now();
    const going = () => Date.now() < start + 120000 && (Date.now() < start + 5000 || sent <= 1100);
    // Raw frames, as in the CVE: each HEADERS is followed at once by its RST_STREAM, in the same
    // write (Node's client sends no RST_STREAM for a stream it closes before the HEADERS left, nor
    // for one whose response is already complete, so whether it attacks at all depends on timing).
    const block = Buffer.concat([Buffer.from([0x82, 0x87, 0x04]), hpackStr(`/api/v1/files/${id}/content`),
      Buffer.from([0x41]), hpackStr('127.0.0.1'), literal('authorization', `Bearer ${token}`)]);
    const rst = Buffer.from([0, 0, 0, 8]); // error code CANCEL
    const attacker = async () => {
      while (going()) {
        let s;
        try { s = await rawH2(B); } catch { continue; }
        let closed = false;
        s.once('close', () => { closed = true; });
        let stream = 1;
        while (going() && !closed) {
          const frames = [];
          for (let i = 0; i < 100; i++, stream += 2) {
            frames.push(frame(HEADERS, END_STREAM | END_HEADERS, stream, block), frame(3, 0, stream, rst));
            sent++;
          }
          if (!s.write(Buffer.concat(frames))) await new Promise((r) => { s.once('drain', r); s.once('close', r); });
          await new Promise((r) => setImmediate(r));
        }
        if (closed) closedByServer++;
        s.destroy();
      }
    };
    await Promise.all([attacker(), attacker(), attacker(), attacker()]);
    return {};
  });
  void res;
  console.log(`#   ${sent} HEADERS + RST_STREAM pairs written; the server closed ${closedByServer} attacking connections`);
  for (const l of B.stderr.split('\n').filter((x) => /max_cancels/.test(x)).slice(-2)) console.log(`#   server: ${l}`);
  assert.ok(sent > 1000, `the attack ran (${sent} streams)`);
  // Closed by this limit (the server logs each limit that closed connections), not only by h2o.
  assert.match(B.stderr, /connection\(s\) closed: over limits\.max_cancels_per_connection/);
});

test('no connection closed by a limit outlived its close (coffer_connections_kill_stuck_total is 0)', async () => {
  for (const s of [A, B]) {
    const r = await s.request('GET', '/metrics');
    assert.equal(r.status, 200);
    const m = /^coffer_connections_kill_stuck_total (\d+)$/m.exec(r.text());
    assert.ok(m, 'the counter is on /metrics');
    assert.equal(Number(m[1]), 0, `connections closed by a limit were still open 10 s later:\n${s.stderr.split('\n').filter((x) => /still open/.test(x)).join('\n')}`);
  }
});
