// apppw.test.mjs: app passwords (issue 22), against the real server: created, listed and revoked by
// their owner; accepted as HTTP Basic (username or tenant\username + app password) on the routes
// flagged CF_ROUTE_BASIC (GET /api/v1/me, GET /api/v1/spaces, and /dav/ once it exists); a revoked
// one fails on the very next request; wrong ones are throttled like logins (same counters); a main
// password is never accepted as Basic; frozen, offboarded and reset accounts lose them; every bad
// input is a 4xx that changes nothing; and the secret is nowhere in the data directory or the log.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { Server, cli, dirContains } from './lib/harness.mjs';

const main = new Server({ config: { auth: { max_failures_per_account: 1000, max_failures_per_ip: 1000 } } });
const thr = new Server({ config: { auth: { max_failures_per_account: 3, max_failures_per_ip: 1000, failure_window: '60s' } } });
const ACME_PASSWORD = 'acme-admin-password-1';
const PW = /^[a-hjkmnp-z2-9]{6}(-[a-hjkmnp-z2-9]{6}){3}$/;
const secrets = [];
let admin, acme;

before(async () => {
  await main.start();
  await main.stop();
  assert.equal(cli(['tenant', 'create', 'acme', '-c', main.configPath]).status, 0);
  const u = cli(['user', 'add', '--tenant', 'acme', '--username', 'root', '--role', 'admin', '-c', main.configPath], { COFFER_USER_PASSWORD: ACME_PASSWORD });
  assert.equal(u.status, 0, u.stderr);
  await Promise.all([main.start(), thr.start()]);
  admin = await main.login();
  acme = await main.login('root', ACME_PASSWORD, 'acme');
});

after(async () => {
  const errors = [];
  for (const s of [main, thr]) {
    try { await s.stop(); } catch (e) { errors.push(e); }
  }
  // The secrets, shown once, are in no store file and no log line (checked after a clean stop).
  for (const s of [main, thr])
    for (const p of secrets) {
      for (const form of [p, p.replaceAll('-', '')]) {
        assert.equal(dirContains(s.dataDir, form), null, `app password in the data directory of ${s.dir}`);
        assert.ok(!s.stderr.includes(form), 'app password in the log');
      }
    }
  for (const s of [main, thr]) s.cleanup();
  if (errors.length) throw errors[0];
});

// ---- helpers ------------------------------------------------------------------------------------

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const basic = (user, pw) => ({ authorization: `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}` });
const get = (server, token, p) => server.request('GET', p, { token });
const asBasic = (server, p, user, pw, extra = {}) => server.request('GET', p, { headers: { ...basic(user, pw), ...extra } });

function assertError(r, status, code, what = '') {
  assert.equal(r.status, status, `${what}: ${r.status} ${r.body && r.text()}`);
  const j = r.json();
  assert.deepEqual(Object.keys(j).sort(), ['error', 'message'], what);
  assert.equal(j.error, code, what);
  return j;
}
async function mkUser(server, token, username, password) {
  const r = await server.request('POST', '/api/v1/admin/users', { token, body: { username, password } });
  assert.equal(r.status, 201, r.text());
  return r.json();
}
async function session(server, username, password, tenant) {
  return server.login(username, password, tenant);
}
async function create(server, token, name) {
  const r = await server.request('POST', '/api/v1/me/app-passwords', { token, body: { name } });
  assert.equal(r.status, 201, r.text());
  const j = r.json();
  assert.deepEqual(Object.keys(j).sort(), ['created_at', 'id', 'name', 'password']);
  assert.match(j.password, PW);
  assert.match(j.id, /^[0-9a-f]{32}$/);
  assert.equal(j.name, name);
  secrets.push(j.password);
  return j;
}
async function list(server, token) {
  const r = await get(server, token, '/api/v1/me/app-passwords');
  assert.equal(r.status, 200, r.text());
  assert.deepEqual(Object.keys(r.json()), ['items']);
  return r.json().items;
}
async function poll(fn, pred, ms = 120000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (pred(v) || Date.now() > deadline) return v;
    await sleep(25);
  }
}
async function events(server, token, action) {
  const r = await get(server, token, `/api/v1/audit?action=${action}`);
  assert.equal(r.status, 200, r.text());
  return r.json().events;
}

// ---- tests --------------------------------------------------------------------------------------

test('create, list, use via Basic on GET /me and /spaces, revoke: the very next request is 401', async () => {
  await mkUser(main, admin.token, 'ann', 'ann-password-1');
  const s = await session(main, 'ann', 'ann-password-1');
  assert.deepEqual(await list(main, s.token), []);
  const p = await create(main, s.token, 'Laptop (rclone)');
  let items = await list(main, s.token);
  assert.deepEqual(items, [{ id: p.id, name: 'Laptop (rclone)', created_at: p.created_at, last_used_at: null, last_used_ip: null }]);
  // Not a login session nor a token: GET /me/sessions does not list it.
  const sess = (await get(main, s.token, '/api/v1/me/sessions')).json().sessions;
  assert.ok(!sess.some((x) => x.id === p.id));
  assertError(await main.request('DELETE', `/api/v1/me/sessions/${p.id}`, { token: s.token }), 404, 'not_found', 'as a session');

  const me = await asBasic(main, '/api/v1/me', 'ann', p.password);
  assert.equal(me.status, 200, me.text());
  assert.equal(me.json().username, 'ann');
  assert.equal(me.headers['set-cookie'], undefined, 'Basic never sets a cookie');
  const sp = await asBasic(main, '/api/v1/spaces', 'ann', p.password);
  assert.equal(sp.status, 200, sp.text());
  assert.deepEqual(sp.json(), (await get(main, s.token, '/api/v1/spaces')).json());
  // Typed differently: upper case, no dashes, spaces; and as default\ann and default/ann.
  assert.equal((await asBasic(main, '/api/v1/me', 'ann', p.password.toUpperCase())).status, 200);
  assert.equal((await asBasic(main, '/api/v1/me', 'ANN', p.password.replaceAll('-', ' '))).status, 200);
  assert.equal((await asBasic(main, '/api/v1/me', 'default\\ann', p.password.replaceAll('-', ''))).status, 200);
  assert.equal((await asBasic(main, '/api/v1/me', 'default/ann', p.password)).status, 200);
  // Only routes flagged for it: elsewhere Basic is not a credential.
  assertError(await asBasic(main, '/api/v1/me/app-passwords', 'ann', p.password), 401, 'unauthorized', 'list via Basic');
  assertError(await asBasic(main, '/api/v1/me/sessions', 'ann', p.password), 401, 'unauthorized', 'sessions via Basic');
  // HTTP/1.1 and HEAD too.
  const h1 = await main.request('GET', '/api/v1/me', { headers: basic('ann', p.password), h1: true });
  assert.equal(h1.status, 200, h1.text());
  assert.equal(h1.headers['set-cookie'], undefined);
  assert.equal((await main.request('HEAD', '/api/v1/me', { headers: basic('ann', p.password) })).status, 200);
  // The app password is no bearer token or session cookie either.
  assertError(await get(main, p.password, '/api/v1/me'), 401, 'unauthorized', 'as bearer');
  assertError(await main.request('GET', '/api/v1/me', { headers: { cookie: `coffer_session=${p.password}` } }), 401, 'unauthorized', 'as cookie');

  // The use is recorded (off the request path: polled).
  items = await poll(() => list(main, s.token), (x) => x[0].last_used_at !== null);
  assert.equal(items[0].last_used_ip, '127.0.0.1');
  assert.ok(Date.parse(items[0].last_used_at) >= Date.parse(p.created_at));

  // Revoked: the very next request fails.
  const d = await main.request('DELETE', `/api/v1/me/app-passwords/${p.id}`, { token: s.token });
  assert.equal(d.status, 204, d.text());
  const r = await asBasic(main, '/api/v1/me', 'ann', p.password);
  assertError(r, 401, 'unauthorized', 'revoked');
  assert.match(r.headers['www-authenticate'], /^Basic realm="Coffer"/);
  assert.deepEqual(await list(main, s.token), []);
  assertError(await main.request('DELETE', `/api/v1/me/app-passwords/${p.id}`, { token: s.token }), 404, 'not_found', 'again');

  // Provenance and the creation alert.
  const ce = (await poll(() => events(main, admin.token, 'app_password.create'), (e) => e.some((x) => x.detail.app_password === p.id)));
  const c = ce.find((x) => x.detail.app_password === p.id);
  assert.equal(c.detail.name, 'Laptop (rclone)');
  assert.equal(c.actor.name, 'ann');
  const re = await poll(() => events(main, admin.token, 'app_password.revoke'), (e) => e.some((x) => x.detail.app_password === p.id));
  assert.ok(re.some((x) => x.detail.app_password === p.id && x.actor.name === 'ann'));
  for (const e of [...ce, ...re]) assert.ok(!JSON.stringify(e).includes(p.password));
  const al = (await get(main, s.token, '/api/v1/me/alerts')).json().alerts.find((x) => x.kind === 'alert.app_password_created');
  assert.ok(al, 'alert');
  assert.equal(al.detail.name, 'Laptop (rclone)');
  assert.equal(al.detail.ip, '127.0.0.1');
});

test('wrong passwords and users: 401, same body; another user\'s app password; other tenants', async () => {
  await mkUser(main, admin.token, 'bob', 'bob-password-1');
  await mkUser(main, admin.token, 'cat', 'cat-password-1');
  const b = await session(main, 'bob', 'bob-password-1');
  const c = await session(main, 'cat', 'cat-password-1');
  const pb = await create(main, b.token, 'phone');
  const pc = await create(main, c.token, 'phone');
  const wrong = await asBasic(main, '/api/v1/me', 'bob', 'aaaaaa-bbbbbb-cccccc-dddddd');
  assertError(wrong, 401, 'unauthorized', 'wrong');
  for (const [u, p, what] of [['bob', pc.password, 'cat\'s password as bob'], ['nobody', pb.password, 'unknown user'],
    ['acme\\bob', pb.password, 'other tenant'], ['nope\\bob', pb.password, 'unknown tenant'], ['bob', 'short', 'malformed'],
    ['bob', `${pb.password}x`, 'one more character'], ['bob', '', 'empty']]) {
    const r = await asBasic(main, '/api/v1/me', u, p);
    assertError(r, 401, 'unauthorized', what);
    assert.ok(r.body.equals(wrong.body), what);
  }
  // Malformed headers.
  for (const h of ['Basic', 'Basic !!!!', `Basic ${Buffer.from('no-colon').toString('base64')}`, `Basic ${Buffer.from(':x').toString('base64')}`,
    `Basic ${Buffer.from('a b:x').toString('base64')}`, `Basic ${'A'.repeat(2000)}`])
    assertError(await main.request('GET', '/api/v1/me', { headers: { authorization: h } }), 401, 'unauthorized', h.slice(0, 20));
  // Cat cannot see or revoke bob's; bob's still works.
  assertError(await main.request('DELETE', `/api/v1/me/app-passwords/${pb.id}`, { token: c.token }), 404, 'not_found', 'other user');
  assertError(await main.request('DELETE', '/api/v1/me/app-passwords/not-an-id', { token: c.token }), 404, 'not_found', 'bad id');
  // A login session's id is not an app password's.
  const sid = (await get(main, c.token, '/api/v1/me/sessions')).json().sessions[0].id;
  assertError(await main.request('DELETE', `/api/v1/me/app-passwords/${sid}`, { token: c.token }), 404, 'not_found', 'session id');
  assert.equal((await get(main, c.token, '/api/v1/me')).status, 200);
  assert.ok((await list(main, c.token)).every((x) => x.id !== pb.id));
  assert.equal((await asBasic(main, '/api/v1/me', 'bob', pb.password)).status, 200);
  // In another tenant: tenant\username.
  const pa = await create(main, acme.token, 'acme-laptop');
  const r = await asBasic(main, '/api/v1/me', 'acme\\root', pa.password);
  assert.equal(r.status, 200, r.text());
  assert.equal(r.json().tenant.name, 'acme');
  assertError(await asBasic(main, '/api/v1/me', 'root', pa.password), 401, 'unauthorized', 'without its tenant');
});

test('the main password is never accepted as Basic, with or without MFA', async () => {
  await mkUser(main, admin.token, 'dan', 'dan-password-1');
  assertError(await asBasic(main, '/api/v1/me', 'dan', 'dan-password-1'), 401, 'unauthorized', 'main password, no MFA');
  const s = await session(main, 'dan', 'dan-password-1');
  const e = await main.request('POST', '/api/v1/me/totp', { token: s.token });
  const secret = e.json().secret;
  const code = execFileSync('oathtool', ['--totp', '-b', secret], { encoding: 'utf8' }).trim();
  assert.equal((await main.request('POST', '/api/v1/me/totp/confirm', { token: s.token, body: { code } })).status, 200);
  assertError(await asBasic(main, '/api/v1/me', 'dan', 'dan-password-1'), 401, 'unauthorized', 'main password, MFA on');
  const p = await create(main, s.token, 'davfs2');
  assert.equal((await asBasic(main, '/api/v1/me', 'dan', p.password)).status, 200, 'app password with MFA on');
});

test('names and bodies: every bad input is a 4xx and creates nothing; at most 20 per user (409)', async () => {
  await mkUser(main, admin.token, 'eve', 'eve-password-1');
  const s = await session(main, 'eve', 'eve-password-1');
  const post = (body, headers = {}) => main.request('POST', '/api/v1/me/app-passwords', { token: s.token, body, headers });
  for (const [body, what] of [[{}, 'no name'], [{ name: '' }, 'empty'], [{ name: 'x'.repeat(65) }, '65 chars'], [{ name: 'a/b' }, 'slash'],
    [{ name: 'a\nb' }, 'newline'], [{ name: 'a\u202eb' }, 'bidi'], [{ name: 'a\u0000b' }, 'NUL'], [{ name: 7 }, 'number'], [{ name: null }, 'null'],
    [{ name: 'ok', extra: 1 }, 'unknown key'], ['[]', 'array'], ['{', 'broken JSON'], [{ name: '.' }, 'dot']]) {
    const r = await post(body);
    assert.ok(r.status >= 400 && r.status < 500, `${what}: ${r.status}`);
    assert.equal(r.json().error, 'bad_request', what);
  }
  assert.deepEqual(await list(main, s.token), []);
  // 64 characters (not bytes) is the limit.
  const p = await create(main, s.token, 'é'.repeat(64));
  for (let i = 1; i < 20; i++) await create(main, s.token, `device ${i}`);
  assertError(await post({ name: 'one more' }), 409, 'too_many_app_passwords', '21st');
  assert.equal((await list(main, s.token)).length, 20);
  assert.equal((await main.request('DELETE', `/api/v1/me/app-passwords/${p.id}`, { token: s.token })).status, 204);
  await create(main, s.token, 'after a revocation');
  // Cookie sessions need the CSRF token here as everywhere; Basic cannot create app passwords.
  assertError(await main.request('POST', '/api/v1/me/app-passwords', { headers: { cookie: `coffer_session=${s.token}`, 'content-type': 'application/json' }, body: '{"name":"x"}' }), 403, 'forbidden', 'no CSRF');
  assertError(await main.request('POST', '/api/v1/me/app-passwords', { headers: basic('eve', secrets.at(-1)), body: { name: 'x' } }), 401, 'unauthorized', 'via Basic');
  assert.equal((await list(main, s.token)).length, 20);
});

test('frozen, offboarded, reset and password change end app passwords', async () => {
  const users = {};
  for (const n of ['fay', 'gus', 'hal', 'ivy']) users[n] = await mkUser(main, admin.token, n, `${n}-password-1`);
  const pw = {};
  for (const n of Object.keys(users)) {
    const s = await session(main, n, `${n}-password-1`);
    pw[n] = { s, p: await create(main, s.token, 'dav') };
    assert.equal((await asBasic(main, '/api/v1/me', n, pw[n].p.password)).status, 200, n);
  }
  const patch = await main.request('PATCH', `/api/v1/admin/users/${users.fay.id}`, { token: admin.token, body: { status: 'frozen' } });
  assert.equal(patch.status, 200, patch.text());
  assertError(await asBasic(main, '/api/v1/me', 'fay', pw.fay.p.password), 401, 'unauthorized', 'frozen');
  // Thawed: they stay ended (a freeze ends every session).
  assert.equal((await main.request('PATCH', `/api/v1/admin/users/${users.fay.id}`, { token: admin.token, body: { status: 'active' } })).status, 200);
  assertError(await asBasic(main, '/api/v1/me', 'fay', pw.fay.p.password), 401, 'unauthorized', 'after thaw');

  const off = await main.request('POST', `/api/v1/admin/users/${users.gus.id}/offboard`, { token: admin.token, body: { transfer_to: admin.user.id } });
  assert.ok(off.status < 300, off.text());
  assertError(await asBasic(main, '/api/v1/me', 'gus', pw.gus.p.password), 401, 'unauthorized', 'offboarded');

  const rs = await main.request('POST', `/api/v1/admin/users/${users.hal.id}/reset`, { token: admin.token, body: { password: true } });
  assert.equal(rs.status, 200, rs.text());
  assertError(await asBasic(main, '/api/v1/me', 'hal', pw.hal.p.password), 401, 'unauthorized', 'reset');

  const ch = await main.request('PUT', '/api/v1/me/password', { token: pw.ivy.s.token, body: { current: 'ivy-password-1', new: 'ivy-password-2' } });
  assert.equal(ch.status, 204, ch.text());
  assertError(await asBasic(main, '/api/v1/me', 'ivy', pw.ivy.p.password), 401, 'unauthorized', 'password changed');
  assert.deepEqual(await list(main, pw.ivy.s.token), []);
});

test('throttled like logins: wrong app passwords count on the account, then 429 for Basic and for login', async () => {
  await mkUser(thr, (await thr.login()).token, 'jim', 'jim-password-1');
  const s = await session(thr, 'jim', 'jim-password-1');
  const p = await create(thr, s.token, 'dav');
  for (let i = 0; i < 3; i++)
    assertError(await asBasic(thr, '/api/v1/me', 'jim', 'aaaaaa-bbbbbb-cccccc-dddddd'), 401, 'unauthorized', `failure ${i}`);
  const r = await asBasic(thr, '/api/v1/me', 'jim', p.password);
  assertError(r, 429, 'rate_limited', 'right password after 3 failures');
  assert.ok(Number(r.headers['retry-after']) > 0);
  // The same counter as logins: the main password is refused too, and other accounts are not.
  assertError(await thr.request('POST', '/api/v1/auth/login', { body: { username: 'jim', password: 'jim-password-1' } }), 429, 'rate_limited', 'login');
  assert.equal((await thr.request('POST', '/api/v1/auth/login', { body: { username: 'admin', password: 'admin-password-1' } })).status, 200);
  // The existing session keeps working.
  assert.equal((await get(thr, s.token, '/api/v1/me')).status, 200);
});
