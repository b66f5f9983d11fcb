// Limits that hold under concurrency (issue 17; docs/SECURITY.md "Accounts" and "Share links";
// docs/API.md "Auth and self", "Your account", "Share links"): a throttle that only counts a
// failure after the Argon2id verification (or the code check) lets a burst of parallel guesses
// through: every request of the burst is checked before the first failure is recorded. Coffer
// reserves the attempt before the check and gives it back only when the secret was right. Here
// every guessing route gets N = 40 wrong guesses sent at once, over one HTTP/2 connection and over
// several (HTTP/2 and HTTP/1.1, so that both event loops and all workers take part), and exactly
// `limit` of them must be checked, the rest refused with 429; the right secret sent next is refused
// too. A success in the middle of a burst is not refused, and gives back only its own attempt.
//
// Servers (127.0.0.1):
// - srv:   auth {max_failures_per_account: 10, max_failures_per_ip: 1000}; shares
//          {code_failures_per_ip: 1000, code_failures_per_link: 20}: the per-account and per-link
//          limits alone;
// - ipsrv: auth {max_failures_per_account: 1000, max_failures_per_ip: 10}, shares per address 5
//          (default): the per-address limits alone. It listens twice: on 127.0.0.1 (clients seen as
//          a.b.c.d) and on [::ffff:127.0.0.1] (an IPv6 socket: the same clients seen as
//          ::ffff:a.b.c.d), so that an IPv4 client is proved to have one budget whichever way it
//          arrives. IPv6 /64 grouping itself needs several local IPv6 addresses in one /64, which a
//          test host does not have: tests/unit/test_throttle.c proves the key function (addr.c),
//          and the throttles use nothing else.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import http2 from 'node:http2';
import https from 'node:https';
import { Server, ADMIN_PASSWORD, freePort, bytes } from './lib/harness.mjs';

const N = 40;
const LOGIN_WINDOW_S = 900; // auth.failure_window default (15 min)
const LINK_WINDOW_S = 3600; // per-link code window (1 h)
const IP_CODE_WINDOW_S = 900; // per-address code window (15 min)
const LOGIN = '/api/v1/auth/login';

let srv, ipsrv, ipsrvMapped; // ipsrvMapped: the port of ipsrv's IPv6 ([::ffff:127.0.0.1]) listener
let admin, ipAdmin;         // admin logins {token}
const sessions = [];

before(async () => {
  srv = new Server({ config: {
    auth: { max_failures_per_account: 10, max_failures_per_ip: 1000 },
    shares: { code_failures_per_ip: 1000, code_failures_per_link: 20 },
  } });
  const p = await freePort();
  ipsrvMapped = await freePort();
  ipsrv = new Server({ config: {
    listen: [`127.0.0.1:${p}`, `[::ffff:127.0.0.1]:${ipsrvMapped}`],
    auth: { max_failures_per_account: 1000, max_failures_per_ip: 10 },
  } });
  ipsrv.port = p;
  await Promise.all([srv.start(), ipsrv.start()]);
  admin = await srv.login();
  ipAdmin = await ipsrv.login();
});

after(async () => {
  for (const s of sessions) s.close();
  const errors = [];
  for (const s of [srv, ipsrv]) {
    try { await s.stop(); } catch (e) { errors.push(e); }
    s.cleanup();
  }
  if (errors.length) throw errors[0];
});

// ---- clients --------------------------------------------------------------------------------------

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function wrap(status, headers, chunks) {
  const buf = Buffer.concat(chunks);
  return { status, headers, body: buf, json: () => JSON.parse(buf.toString('utf8')), text: () => buf.toString('utf8') };
}

function encode(opts) {
  const headers = { ...(opts.headers || {}) };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let body = opts.body;
  if (body !== undefined) {
    body = JSON.stringify(body);
    headers['content-type'] = 'application/json';
  }
  return { headers, body };
}

/** A new HTTP/2 connection to server (port: another of its listeners; from: a loopback source address). */
function h2(server, { port = server.port, from } = {}) {
  const s = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false, ...(from ? { localAddress: from } : {}) });
  s.on('error', () => {});
  sessions.push(s);
  return s;
}

/** One request on an HTTP/2 connection. */
function send(session, method, urlPath, opts = {}) {
  const { headers, body } = encode(opts);
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': method, ':path': urlPath, ...headers }, { endStream: body === undefined });
    let status, hdrs;
    const chunks = [];
    req.on('response', (h) => { status = h[':status']; hdrs = h; });
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(wrap(status, hdrs, chunks)));
    req.on('error', reject);
    if (body !== undefined) req.end(body);
  });
}

/** One request over its own HTTP/1.1 connection. */
function sendH1(server, method, urlPath, opts = {}, { port = server.port, from } = {}) {
  const { headers, body } = encode(opts);
  // Node sends a DELETE body without a length unless told (neither chunked nor Content-Length).
  if (body !== undefined) headers['content-length'] = Buffer.byteLength(body);
  return new Promise((resolve, reject) => {
    const req = https.request(`https://127.0.0.1:${port}${urlPath}`,
      { method, headers, rejectUnauthorized: false, agent: false, ...(from ? { localAddress: from } : {}) }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve(wrap(res.statusCode, res.headers, chunks)));
        res.on('error', reject);
      });
    req.on('error', reject);
    if (body !== undefined) req.end(body); else req.end();
  });
}

/**
 * Sends N requests at once. bodyOf(i) is the i-th body; how: 'one' (one HTTP/2 connection) or
 * 'many' (8 HTTP/2 connections and 8 HTTP/1.1 connections). Resolves the answers in order.
 */
function burst(server, method, urlPath, bodyOf, { how = 'one', token, n = N, port, from } = {}) {
  const conns = how === 'one' ? [h2(server, { port, from })] : Array.from({ length: 8 }, () => h2(server, { port, from }));
  return Promise.all(Array.from({ length: n }, (_, i) => {
    const opts = { body: bodyOf(i), token };
    if (how === 'many' && i % 5 === 4) return sendH1(server, method, urlPath, opts, { port, from });
    return send(conns[i % conns.length], method, urlPath, opts);
  }));
}

/** {status: count} of a burst's answers. */
function tally(rs) {
  const t = {};
  for (const r of rs) t[r.status] = (t[r.status] || 0) + 1;
  return t;
}

function assertError(r, status, code, what) {
  assert.equal(r.status, status, `${what}: ${r.status} ${r.text()}`);
  assert.equal(r.headers['content-type'], 'application/json', what);
  const j = r.json();
  assert.deepEqual(Object.keys(j).sort(), ['error', 'message'], what);
  assert.equal(j.error, code, what);
}

/** A 429 rate_limited with a Retry-After of 1..window seconds and no cookie. */
function assertLimited(r, window, what) {
  assertError(r, 429, 'rate_limited', what);
  const ra = String(r.headers['retry-after']);
  assert.match(ra, /^\d+$/, `${what}: Retry-After ${ra}`);
  assert.ok(Number(ra) >= 1 && Number(ra) <= window, `${what}: Retry-After ${ra} within 1..${window}`);
  assert.equal(r.headers['set-cookie'], undefined, `${what}: no cookie`);
}

/**
 * The burst's answers are exactly `checked` times (status, code) and N - checked times 429; every
 * answer of one kind has the same body. Returns {checked: body, limited: body}.
 */
function assertBurst(rs, checked, status, code, window, what) {
  assert.deepEqual(tally(rs), { [status]: checked, 429: rs.length - checked }, `${what}: answers`);
  const first = {};
  for (const r of rs) {
    if (r.status === 429) assertLimited(r, window, what);
    else assertError(r, status, code, what);
    const k = r.status === 429 ? 'limited' : 'checked';
    first[k] = first[k] || r.body;
    assert.ok(r.body.equals(first[k]), `${what}: every ${r.status} has the same body`);
  }
  return first;
}

async function mkUser(server, token, username, password) {
  const r = await server.request('POST', '/api/v1/admin/users', { token, body: { username, password } });
  assert.equal(r.status, 201, `create ${username}: ${r.text()}`);
  return r.json();
}

async function loginOk(server, body) {
  const r = await server.request('POST', LOGIN, { body });
  assert.equal(r.status, 200, `login ${body.username}: ${r.status} ${r.text()}`);
  return r.json();
}

const me = (server, token) => server.request('GET', '/api/v1/me', { token });

// TOTP (RFC 6238: SHA-1, 6 digits, 30 s steps) computed by oathtool, a real authenticator.
const STEP = 30;
const stepNow = () => Math.floor(Date.now() / 1000 / STEP);
const codeAt = (secret, step) => execFileSync('oathtool', ['--totp', '-b', '-N', `@${step * STEP}`, secret], { encoding: 'utf8' }).trim();
/** A well-formed code that matches none of the steps the server accepts around `step`. */
function wrongCode(secret, step, salt = 0) {
  const valid = new Set([-1, 0, 1, 2].map((d) => codeAt(secret, step + d)));
  let c = (Number(codeAt(secret, step)) + 500000 + salt * 7919) % 1000000;
  while (valid.has(String(c).padStart(6, '0'))) c = (c + 1) % 1000000;
  return String(c).padStart(6, '0');
}
/** Waits, if needed, until the current 30-s step has at least `seconds` left; returns the step. */
async function roomInStep(seconds) {
  const left = STEP - ((Date.now() / 1000) % STEP);
  if (left < seconds) await sleep(left * 1000 + 250);
  return stepNow();
}

/** A user of srv with TOTP on (confirmed with the code of step T - 1); returns its secret and T. */
async function totpUser(username, password) {
  await mkUser(srv, admin.token, username, password);
  const s = await loginOk(srv, { username, password });
  const r = await srv.request('POST', '/api/v1/me/totp', { token: s.token });
  assert.equal(r.status, 200, r.text());
  const secret = r.json().secret;
  const T = await roomInStep(20);
  const c = await srv.request('POST', '/api/v1/me/totp/confirm', { token: s.token, body: { code: codeAt(secret, T - 1) } });
  assert.equal(c.status, 200, c.text()); // with the recovery codes (account.test.mjs)
  return { secret, T };
}

async function totpEnabled(username) {
  const r = await srv.request('GET', '/api/v1/admin/users', { token: admin.token });
  assert.equal(r.status, 200);
  return r.json().users.find((u) => u.username === username).totp_enabled;
}

// ---- login ----------------------------------------------------------------------------------------

for (const how of ['one', 'many']) {
  const conns = how === 'one' ? 'one HTTP/2 connection' : '8 HTTP/2 and 8 HTTP/1.1 connections';
  test(`login: ${N} wrong passwords at once over ${conns}: 10 checked, 30 refused; the right one next is refused`, async () => {
    const name = `burst-${how}`, password = `${name}-password-1`;
    await mkUser(srv, admin.token, name, password);
    const real = assertBurst(await burst(srv, 'POST', LOGIN, (i) => ({ username: name, password: `wrong-password-${i}` }), { how }),
      10, 401, 'unauthorized', LOGIN_WINDOW_S, `${name}, wrong passwords`);
    assertLimited(await srv.request('POST', LOGIN, { body: { username: name, password } }), LOGIN_WINDOW_S, `${name}, right password after the burst`);
    // An unknown name: the same answers, the same bodies (throttling does not reveal which names exist).
    const ghost = assertBurst(await burst(srv, 'POST', LOGIN, (i) => ({ username: `ghost-${how}`, password: `wrong-password-${i}` }), { how }),
      10, 401, 'unauthorized', LOGIN_WINDOW_S, 'unknown user');
    assert.ok(ghost.checked.equals(real.checked), 'the same 401 body for an unknown user');
    assert.ok(ghost.limited.equals(real.limited), 'the same 429 body for an unknown user');
    // Other accounts are untouched (the address limit is 1000 here).
    assert.equal((await srv.request('POST', LOGIN, { body: { username: 'admin', password: ADMIN_PASSWORD } })).status, 200);
  });
}

test('login: a right password inside a burst of 9 wrong ones is not refused, and 9 wrong then the right one logs in', async () => {
  await mkUser(srv, admin.token, 'burst-mixed', 'burst-mixed-password');
  const rs = await burst(srv, 'POST', LOGIN, (i) => ({ username: 'burst-mixed', password: i === 5 ? 'burst-mixed-password' : `wrong-${i}-password` }),
    { how: 'many', n: 10 });
  assert.deepEqual(tally(rs), { 200: 1, 401: 9 }, 'one success, nine failures, nothing refused');
  assert.equal(rs[5].status, 200);
  assert.equal((await me(srv, rs[5].json().token)).status, 200, 'the session works');

  await mkUser(srv, admin.token, 'burst-nine', 'burst-nine-password');
  assert.deepEqual(tally(await burst(srv, 'POST', LOGIN, (i) => ({ username: 'burst-nine', password: `wrong-${i}-password` }), { n: 9 })), { 401: 9 });
  const s = await loginOk(srv, { username: 'burst-nine', password: 'burst-nine-password' });
  assert.equal((await me(srv, s.token)).status, 200, '9 wrong, then the right one: logged in');
  // A success forgets the account's failures (docs/API.md): a new burst gets the whole budget again.
  assertBurst(await burst(srv, 'POST', LOGIN, (i) => ({ username: 'burst-nine', password: `again-${i}-password` })),
    10, 401, 'unauthorized', LOGIN_WINDOW_S, 'burst after the success');
});

test('login, TOTP step: 40 wrong codes with the right password at once: 10 checked, 30 refused; the right code next is refused', async () => {
  const { secret, T } = await totpUser('burst-totp', 'burst-totp-password');
  // A right password without a code is no failure: these give their attempts back.
  for (let i = 0; i < 3; i++) {
    assertError(await srv.request('POST', LOGIN, { body: { username: 'burst-totp', password: 'burst-totp-password' } }), 401, 'mfa_required', `no code ${i + 1}`);
  }
  assertBurst(await burst(srv, 'POST', LOGIN, (i) => ({ username: 'burst-totp', password: 'burst-totp-password', totp: wrongCode(secret, T, i % 3) }), { how: 'many' }),
    10, 401, 'totp_invalid', LOGIN_WINDOW_S, 'wrong codes'); // the password was right: the code has its own error
  assertLimited(await srv.request('POST', LOGIN, { body: { username: 'burst-totp', password: 'burst-totp-password', totp: codeAt(secret, T) } }),
    LOGIN_WINDOW_S, 'the right code after the burst');
});

// ---- your account -----------------------------------------------------------------------------------

test('PUT /me/password: 40 wrong current passwords at once: 10 checked (403), 30 refused; the right one next is refused', async () => {
  await mkUser(srv, admin.token, 'burst-pw', 'burst-pw-password-1');
  const s1 = await loginOk(srv, { username: 'burst-pw', password: 'burst-pw-password-1' });
  const s2 = await loginOk(srv, { username: 'burst-pw', password: 'burst-pw-password-1' });
  assertBurst(await burst(srv, 'PUT', '/api/v1/me/password', (i) => ({ current: `wrong-current-${i}`, new: 'burst-pw-password-2' }), { how: 'many', token: s1.token }),
    10, 403, 'forbidden', LOGIN_WINDOW_S, 'wrong current passwords');
  assertLimited(await srv.request('PUT', '/api/v1/me/password', { token: s1.token, body: { current: 'burst-pw-password-1', new: 'burst-pw-password-2' } }),
    LOGIN_WINDOW_S, 'the right current password after the burst');
  // Nothing changed: a change would have ended the other session.
  assert.equal((await me(srv, s2.token)).status, 200, 'the other session lives: the password was not changed');
  // The wrong current passwords were failed logins of the account.
  assertLimited(await srv.request('POST', LOGIN, { body: { username: 'burst-pw', password: 'burst-pw-password-1' } }), LOGIN_WINDOW_S, 'login after the burst');
});

test('PUT /me/password: a success gives back only its own attempt (9 wrong, right, 1 wrong, then refused)', async () => {
  await mkUser(srv, admin.token, 'burst-pw2', 'burst-pw2-password-1');
  const s = await loginOk(srv, { username: 'burst-pw2', password: 'burst-pw2-password-1' });
  const put = (current, next) => srv.request('PUT', '/api/v1/me/password', { token: s.token, body: { current, new: next } });
  assert.deepEqual(tally(await burst(srv, 'PUT', '/api/v1/me/password', (i) => ({ current: `wrong-current-${i}`, new: 'burst-pw2-password-2' }), { token: s.token, n: 9 })),
    { 403: 9 });
  assert.equal((await put('burst-pw2-password-1', 'burst-pw2-password-2')).status, 204, 'the 10th attempt, right: changed');
  assertError(await put('wrong-current-x', 'burst-pw2-password-3'), 403, 'forbidden', 'the 9 failures stayed: this is the 10th');
  assertLimited(await put('burst-pw2-password-2', 'burst-pw2-password-3'), LOGIN_WINDOW_S, 'then refused');
});

test('DELETE /me/totp: 40 wrong codes at once: 10 checked (400), 30 refused; the right code next is refused, TOTP stays on', async () => {
  const { secret, T } = await totpUser('burst-off', 'burst-off-password');
  const s = await loginOk(srv, { username: 'burst-off', password: 'burst-off-password', totp: codeAt(secret, T) });
  assertBurst(await burst(srv, 'DELETE', '/api/v1/me/totp', (i) => ({ code: wrongCode(secret, T, i % 3) }), { how: 'many', token: s.token }),
    10, 400, 'bad_request', LOGIN_WINDOW_S, 'wrong codes');
  assertLimited(await srv.request('DELETE', '/api/v1/me/totp', { token: s.token, body: { code: codeAt(secret, T + 1) } }), LOGIN_WINDOW_S, 'the right code');
  assert.equal(await totpEnabled('burst-off'), true, 'TOTP is still on');
});

test('POST /me/totp/confirm: 40 wrong codes at once: 10 checked (400), 30 refused', async () => {
  await mkUser(srv, admin.token, 'burst-confirm', 'burst-confirm-password');
  const s = await loginOk(srv, { username: 'burst-confirm', password: 'burst-confirm-password' });
  const r = await srv.request('POST', '/api/v1/me/totp', { token: s.token });
  assert.equal(r.status, 200);
  const secret = r.json().secret;
  const T = await roomInStep(20);
  assertBurst(await burst(srv, 'POST', '/api/v1/me/totp/confirm', (i) => ({ code: wrongCode(secret, T, i % 3) }), { token: s.token }),
    10, 400, 'bad_request', LOGIN_WINDOW_S, 'wrong codes');
  assertLimited(await srv.request('POST', '/api/v1/me/totp/confirm', { token: s.token, body: { code: codeAt(secret, T) } }), LOGIN_WINDOW_S, 'the right code');
  assert.equal(await totpEnabled('burst-confirm'), false, 'TOTP was not turned on');
});

// ---- share links -------------------------------------------------------------------------------------

async function mkLink(server, token, fileName) {
  const root = (await server.client(token).spaces()).private.root;
  const up = await server.client(token).upload(root, fileName, bytes(3000, fileName.length));
  assert.equal(up.status, 201, up.text());
  const r = await server.request('POST', '/api/v1/shares', { token, body: { node: up.json().id, permission: 'download' } });
  assert.equal(r.status, 201, r.text());
  const j = r.json();
  return { ...j, token: j.url.slice(j.url.lastIndexOf('/') + 1) };
}

async function shareAlerts(server, token, shareId) {
  const r = await server.request('GET', '/api/v1/me/alerts', { token });
  assert.equal(r.status, 200);
  return r.json().alerts.filter((a) => a.kind === 'alert.share_bruteforce' && a.detail.share === shareId);
}

async function pollAlerts(server, token, shareId) {
  const deadline = Date.now() + 10000;
  for (;;) {
    const a = await shareAlerts(server, token, shareId);
    if (a.length > 0 || Date.now() > deadline) return a;
    await sleep(25);
  }
}

for (const how of ['one', 'many']) {
  const conns = how === 'one' ? 'one HTTP/2 connection' : '8 HTTP/2 and 8 HTTP/1.1 connections';
  test(`share unlock: ${N} wrong codes at once over ${conns}: 20 checked (the per-link limit), 20 refused; the right code next is refused; one alert`, async () => {
    const L = await mkLink(srv, admin.token, `burst-${how}.bin`);
    const wrong = (i) => ({ code: `W${String(i).padStart(3, '0')}X` });
    assertBurst(await burst(srv, 'POST', `/s/${L.token}/unlock`, wrong, { how }), 20, 403, 'wrong_code', LINK_WINDOW_S, 'wrong codes');
    assertLimited(await srv.request('POST', `/s/${L.token}/unlock`, { body: { code: L.code } }), LINK_WINDOW_S, 'the right code after the burst');
    const alerts = await pollAlerts(srv, admin.token, L.id);
    assert.equal(alerts.length, 1, `one alert.share_bruteforce: ${JSON.stringify(alerts)}`);
    // Another link is untouched.
    const other = await mkLink(srv, admin.token, `burst-other-${how}.bin`);
    assert.equal((await srv.request('POST', `/s/${other.token}/unlock`, { body: { code: other.code } })).status, 200);
    assert.equal((await shareAlerts(srv, admin.token, L.id)).length, 1, 'still one alert');
  });
}

test('share unlock: the right code inside a burst of 19 wrong ones is not refused and gives back only its own attempt', async () => {
  const L = await mkLink(srv, admin.token, 'burst-mixed.bin');
  const rs = await burst(srv, 'POST', `/s/${L.token}/unlock`, (i) => ({ code: i === 7 ? L.code : `M${String(i).padStart(3, '0')}X` }), { how: 'many', n: 20 });
  assert.deepEqual(tally(rs), { 200: 1, 403: 19 }, 'one unlock, nineteen wrong codes, nothing refused');
  assert.equal(rs[7].status, 200);
  assert.equal((await shareAlerts(srv, admin.token, L.id)).length, 0, 'no alert: the budget is not spent');
  assertError(await srv.request('POST', `/s/${L.token}/unlock`, { body: { code: 'MXXXX' } }), 403, 'wrong_code', 'the 19 failures stayed: this is the 20th');
  assertLimited(await srv.request('POST', `/s/${L.token}/unlock`, { body: { code: L.code } }), LINK_WINDOW_S, 'then refused');
  assert.equal((await pollAlerts(srv, admin.token, L.id)).length, 1, 'the 20th failure alerted the creator');
});

// ---- per address, one budget per IPv4 client however it connects ---------------------------------------

test('ipsrv: the IPv6 listener sees IPv4 clients as IPv4-mapped addresses', async () => {
  const s = h2(ipsrv, { port: ipsrvMapped, from: '127.0.0.9' });
  const r = await send(s, 'GET', '/api/v1/me/watermark', { token: ipAdmin.token });
  assert.equal(r.status, 200, r.text());
  assert.equal(r.json().ip, '::ffff:127.0.0.9');
  const r4 = await sendH1(ipsrv, 'GET', '/api/v1/me/watermark', { token: ipAdmin.token }, { from: '127.0.0.9' });
  assert.equal(r4.json().ip, '127.0.0.9');
});

test('login per address: 40 wrong logins for 40 names at once from one address: 10 checked, 30 refused, on both listeners', async () => {
  const A = '127.0.0.2';
  assertBurst(await burst(ipsrv, 'POST', LOGIN, (i) => ({ username: `nobody-${i}`, password: 'wrong-password' }), { how: 'many', from: A }),
    10, 401, 'unauthorized', LOGIN_WINDOW_S, 'wrong logins from one address');
  const right = { username: 'admin', password: ADMIN_PASSWORD };
  assertLimited(await sendH1(ipsrv, 'POST', LOGIN, { body: right }, { from: A }), LOGIN_WINDOW_S, 'admin from A');
  // The same client through the IPv6 socket (::ffff:127.0.0.2) has the same budget.
  assertLimited(await send(h2(ipsrv, { port: ipsrvMapped, from: A }), 'POST', LOGIN, { body: right }), LOGIN_WINDOW_S, 'admin from A as ::ffff:127.0.0.2');
  // Another address is another budget, on either listener.
  assert.equal((await send(h2(ipsrv, { port: ipsrvMapped, from: '127.0.0.3' }), 'POST', LOGIN, { body: right })).status, 200, 'from 127.0.0.3');
});

test('share codes per address: 40 wrong codes at once over 8 links from one address: 5 checked, 35 refused, on both listeners', async () => {
  const links = [];
  for (let i = 0; i < 8; i++) links.push(await mkLink(ipsrv, ipAdmin.token, `ip-${i}.bin`));
  const B = '127.0.0.4';
  const conns = Array.from({ length: 8 }, () => h2(ipsrv, { from: B }));
  const rs = await Promise.all(Array.from({ length: N }, (_, i) =>
    send(conns[i % 8], 'POST', `/s/${links[i % 8].token}/unlock`, { body: { code: `Z${String(i).padStart(3, '0')}Z` } })));
  assertBurst(rs, 5, 403, 'wrong_code', IP_CODE_WINDOW_S, 'wrong codes from one address');
  assertLimited(await sendH1(ipsrv, 'POST', `/s/${links[0].token}/unlock`, { body: { code: links[0].code } }, { from: B }), IP_CODE_WINDOW_S, 'right code from B');
  assertLimited(await send(h2(ipsrv, { port: ipsrvMapped, from: B }), 'POST', `/s/${links[1].token}/unlock`, { body: { code: links[1].code } }),
    IP_CODE_WINDOW_S, 'right code from B as ::ffff:127.0.0.4');
  const ok = await send(h2(ipsrv, { port: ipsrvMapped, from: '127.0.0.5' }), 'POST', `/s/${links[0].token}/unlock`, { body: { code: links[0].code } });
  assert.equal(ok.status, 200, `another address: ${ok.text()}`);
});
