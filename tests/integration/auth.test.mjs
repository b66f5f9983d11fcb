// Authentication and isolation (SPEC §3, §4, §5; API.md "Authentication", "Auth and self"):
// login, uniform failures, bearer and cookie sessions with CSRF, logout, tokens stored only as
// hashes, members confined to their private space, admins kept out of private spaces, and tenants
// that see nothing of each other (an id from another tenant answers exactly like a random id).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Server, ADMIN_PASSWORD, cli, dirContains } from './lib/harness.mjs';

const BOB_PASSWORD = 'bob-password-Xy7';
const ACME_PASSWORD = 'acme-admin-password-Q2';
const B64URL43 = /^[A-Za-z0-9_-]{43}$/;
const HEX32 = /^[0-9a-f]{32}$/;
const TTL_S = 12 * 3600; // auth.session_ttl default

let server;
const extra = [];
const tokens = []; // every token and CSRF token handed out, for the on-disk search
after(async () => {
  for (const s of [server, ...extra]) {
    if (!s) continue;
    await s.stop();
    s.cleanup();
  }
});

const randomId = () => crypto.randomBytes(16).toString('hex');
const randomToken = () => crypto.randomBytes(32).toString('base64url');

async function login(body, opts = {}) {
  return server.request('POST', '/api/v1/auth/login', { body, ...opts });
}

/** Logs in and remembers the secrets. */
async function session(username = 'admin', password = ADMIN_PASSWORD, tenant) {
  const j = await server.login(username, password, tenant);
  tokens.push(j.token, j.csrf_token);
  return j;
}

function cookieAttrs(setCookie) {
  const [pair, ...attrs] = setCookie.split(';').map((x) => x.trim());
  const m = {};
  for (const a of attrs) {
    const i = a.indexOf('=');
    m[(i < 0 ? a : a.slice(0, i)).toLowerCase()] = i < 0 ? true : a.slice(i + 1);
  }
  return { pair, attrs: m };
}

function assertError(r, status, code, what = '') {
  assert.equal(r.status, status, `${what}: ${r.status} ${r.text()}`);
  assert.equal(r.headers['content-type'], 'application/json', what);
  const j = r.json();
  assert.deepEqual(Object.keys(j).sort(), ['error', 'message'], what);
  assert.equal(j.error, code, what);
}

test('login returns a token, a CSRF token, the expiry, the user and the session cookie', async () => {
  server = new Server();
  await server.start();
  for (const h1 of [false, true]) {
    const before = Date.now();
    const r = await login({ username: 'admin', password: ADMIN_PASSWORD }, { h1 });
    assert.equal(r.status, 200, r.text());
    const j = r.json();
    tokens.push(j.token, j.csrf_token);
    for (const k of ['token', 'csrf_token', 'expires_at', 'user']) assert.ok(k in j, `login answer has ${k}`);
    assert.match(j.token, B64URL43);
    assert.match(j.csrf_token, B64URL43);
    assert.notEqual(j.token, j.csrf_token);
    assert.equal(Buffer.from(j.token, 'base64url').length, 32);
    assert.match(j.expires_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const exp = Date.parse(j.expires_at);
    assert.ok(exp >= before + TTL_S * 1000 - 1000 && exp <= Date.now() + TTL_S * 1000 + 1000, `expires_at ${j.expires_at}`);
    const u = j.user;
    assert.equal(u.username, 'admin');
    assert.equal(u.role, 'admin');
    assert.equal(u.status, 'active');
    assert.equal(u.display_name, 'Administrator');
    assert.match(u.id, HEX32);
    assert.equal(u.tenant.name, 'default');
    assert.match(u.tenant.id, HEX32);

    const sc = [].concat(r.headers['set-cookie'] || []);
    assert.equal(sc.length, 1, `one Set-Cookie: ${JSON.stringify(sc)}`);
    const { pair, attrs } = cookieAttrs(sc[0]);
    assert.equal(pair, `coffer_session=${j.token}`);
    assert.equal(attrs.path, '/');
    assert.equal(attrs.httponly, true);
    assert.equal(attrs.secure, true);
    assert.equal(attrs.samesite, 'Strict');
    if (attrs['max-age'] !== undefined) assert.equal(attrs['max-age'], String(TTL_S));
    assert.equal(attrs.domain, undefined, 'a host-only cookie');
    assert.equal(r.headers['cache-control'], 'no-store');

    const me = await server.request('GET', '/api/v1/me', { token: j.token, h1 });
    assert.equal(me.status, 200);
    // /me is the login's user plus the caller's own state (issue 21: security summary, scan, usage).
    const mj = me.json();
    assert.deepEqual(Object.fromEntries(Object.keys(u).map((k) => [k, mj[k]])), u);
    assert.deepEqual([mj.totp_enabled, mj.recovery_codes_remaining, mj.password_change_required, mj.mfa_enrolment_required], [false, 0, false, false]);
  }
});

test('wrong password, unknown user and unknown tenant look exactly the same', async () => {
  const attempts = [
    { username: 'admin', password: 'wrong-password-1' },
    { username: 'nobody-here', password: ADMIN_PASSWORD },
    { tenant: 'no-such-tenant', username: 'admin', password: ADMIN_PASSWORD },
  ];
  const bodies = [];
  for (const b of attempts) {
    const r = await login(b);
    assertError(r, 401, 'unauthorized', JSON.stringify(b));
    assert.equal(r.headers['set-cookie'], undefined);
    bodies.push(r.body);
  }
  // and over HTTP/1.1
  const r = await login(attempts[0], { h1: true });
  bodies.push(r.body);
  assert.equal(r.status, 401);
  for (const b of bodies) assert.ok(b.equals(bodies[0]), `bodies differ: ${b} vs ${bodies[0]}`);
});

test('login body validation', async () => {
  const cases = [
    ['missing username', { password: ADMIN_PASSWORD }],
    ['missing password', { username: 'admin' }],
    ['password as number', { username: 'admin', password: 12345678 }],
    ['username as number', { username: 5, password: ADMIN_PASSWORD }],
    ['tenant as number', { tenant: 1, username: 'admin', password: ADMIN_PASSWORD }],
    ['username null', { username: null, password: ADMIN_PASSWORD }],
    ['unknown field', { username: 'admin', password: ADMIN_PASSWORD, remember: true }],
    ['empty username', { username: '', password: ADMIN_PASSWORD }],
    ['empty password', { username: 'admin', password: '' }],
    ['password with NUL', { username: 'admin', password: `${ADMIN_PASSWORD}\u0000x` }],
    ['empty object', {}],
  ];
  for (const [what, body] of cases) {
    const r = await login(body);
    assertError(r, 400, 'bad_request', what);
    assert.equal(r.headers['set-cookie'], undefined, what);
  }
  for (const [what, raw, ct, status, code] of [
    ['invalid JSON', '{"username":', 'application/json', 400, 'bad_request'],
    ['array', '["admin"]', 'application/json', 400, 'bad_request'],
    ['duplicate key', `{"username":"x","username":"admin","password":"${ADMIN_PASSWORD}"}`, 'application/json', 400, 'bad_request'],
    ['form post', `username=admin&password=${ADMIN_PASSWORD}`, 'application/x-www-form-urlencoded', 415, 'unsupported_media_type'],
  ]) {
    const r = await login(raw, { headers: { 'content-type': ct } });
    assertError(r, status, code, what);
  }
  const r = await server.request('GET', '/api/v1/auth/login');
  assertError(r, 405, 'method_not_allowed', 'GET login');
});

test('/api/v1/me: credentials', async () => {
  const { token, user } = await session();
  const bad = [
    ['no credentials', {}],
    ['Basic', { authorization: `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}` }],
    ['Basic with the token', { authorization: `Basic ${token}` }],
    ['the token without a scheme', { authorization: token }],
    ['Bearer garbage', { authorization: 'Bearer garbage' }],
    ['Bearer empty', { authorization: 'Bearer ' }],
    ['Bearer 42 chars', { authorization: `Bearer ${token.slice(0, 42)}` }],
    ['Bearer 44 chars', { authorization: `Bearer ${token}A` }],
    ['Bearer not base64url', { authorization: `Bearer ${'!'.repeat(43)}` }],
    ['Bearer standard base64', { authorization: `Bearer ${Buffer.from(token, 'base64url').toString('base64')}` }],
    ['Bearer random well-formed token', { authorization: `Bearer ${randomToken()}` }],
    ['Bearer the CSRF token', { authorization: `Bearer ${tokens[tokens.length - 1]}` }],
    ['cookie garbage', { cookie: 'coffer_session=garbage' }],
    ['cookie random well-formed token', { cookie: `coffer_session=${randomToken()}` }],
    ['cookie under another name', { cookie: `session=${token}` }],
  ];
  for (const h1 of [false, true]) {
    for (const [what, headers] of bad) {
      const r = await server.request('GET', '/api/v1/me', { headers, h1 });
      assertError(r, 401, 'unauthorized', `${what} (${h1 ? 'h1' : 'h2'})`);
    }
    const ok = await server.request('GET', '/api/v1/me', { token, h1 });
    assert.equal(ok.status, 200);
    // /me is the login's user plus the caller's own state (issue 21: security summary, scan, usage).
    const me = ok.json();
    assert.deepEqual(Object.fromEntries(Object.keys(user).map((k) => [k, me[k]])), user);
  }
  // The same gates on the file API.
  const r = await server.request('GET', '/api/v1/spaces', { headers: { authorization: 'Bearer garbage' } });
  assertError(r, 401, 'unauthorized', 'spaces');
});

test('cookie sessions: reads work, unsafe methods need the session\'s CSRF token', async () => {
  const s1 = await session();
  const s2 = await session();
  const admin = server.client(s1.token);
  const root = (await admin.spaces()).private.root;
  const cookie = `coffer_session=${s1.token}`;
  const names = async () => (await admin.children(root)).json().items.map((x) => x.name).sort();
  const before = await names();

  for (const h1 of [false, true]) {
    const tag = h1 ? 'h1' : 'h2';
    const me = await server.request('GET', '/api/v1/me', { headers: { cookie }, h1 });
    assert.equal(me.status, 200, `cookie GET (${tag})`);
    assert.equal(me.json().username, 'admin');
    const other = await server.request('GET', '/api/v1/me', { headers: { cookie: `a=b; ${cookie}; c=d` }, h1 });
    assert.equal(other.status, 200, `cookie among others (${tag})`);

    const post = (headers, name) => server.request('POST', '/api/v1/folders', { headers, h1, body: { parent: root, name } });
    assertError(await post({ cookie }, `no-csrf-${tag}`), 403, 'forbidden', `cookie POST without CSRF (${tag})`);
    assertError(await post({ cookie, 'x-csrf-token': randomToken() }, `bad-csrf-${tag}`), 403, 'forbidden', `random CSRF (${tag})`);
    assertError(await post({ cookie, 'x-csrf-token': 'short' }, `bad-csrf-${tag}`), 403, 'forbidden', `malformed CSRF (${tag})`);
    assertError(await post({ cookie, 'x-csrf-token': s2.csrf_token }, `other-csrf-${tag}`), 403, 'forbidden', `another session's CSRF (${tag})`);
    assertError(await post({ cookie, 'x-csrf-token': s1.token }, `token-as-csrf-${tag}`), 403, 'forbidden', `the session token as CSRF (${tag})`);
    const expected = [...before, ...(h1 ? ['bearer-ok-h2', 'cookie-ok-h2'] : [])].sort();
    assert.deepEqual(await names(), expected, `nothing created (${tag})`);

    const ok = await post({ cookie, 'x-csrf-token': s1.csrf_token }, `cookie-ok-${tag}`);
    assert.equal(ok.status, 201, `cookie POST with CSRF (${tag}): ${ok.text()}`);
    const bearer = await server.request('POST', '/api/v1/folders', { token: s1.token, h1, body: { parent: root, name: `bearer-ok-${tag}` } });
    assert.equal(bearer.status, 201, `bearer POST without CSRF (${tag})`);

    // Other unsafe methods need it too.
    const id = ok.json().id;
    assertError(await server.request('PATCH', `/api/v1/nodes/${id}`, { headers: { cookie }, h1, body: { name: 'renamed' } }), 403, 'forbidden', `PATCH (${tag})`);
    assertError(await server.request('DELETE', `/api/v1/nodes/${id}`, { headers: { cookie }, h1 }), 403, 'forbidden', `DELETE (${tag})`);
    assertError(await server.request('POST', `/api/v1/files?parent=${root}&name=up-${tag}`, { headers: { cookie }, h1, body: Buffer.from('x') }), 403, 'forbidden', `upload (${tag})`);
    assertError(await server.request('POST', '/api/v1/auth/logout', { headers: { cookie }, h1 }), 403, 'forbidden', `logout (${tag})`);
    const still = await server.request('GET', `/api/v1/nodes/${id}`, { headers: { cookie }, h1 });
    assert.equal(still.json().name, `cookie-ok-${tag}`);
  }
  assert.deepEqual(await names(), [...before, 'bearer-ok-h1', 'bearer-ok-h2', 'cookie-ok-h1', 'cookie-ok-h2'].sort());
});

test('logout ends exactly its own session and clears the cookie', async () => {
  const a = await session();
  const b = await session();
  assert.notEqual(a.token, b.token);
  assert.notEqual(a.csrf_token, b.csrf_token);
  for (const s of [a, b]) assert.equal((await server.request('GET', '/api/v1/me', { token: s.token })).status, 200);

  const out = await server.request('POST', '/api/v1/auth/logout', { token: a.token });
  assert.equal(out.status, 204);
  assert.equal(out.body.length, 0);
  const sc = [].concat(out.headers['set-cookie'] || []);
  assert.equal(sc.length, 1);
  const { pair, attrs } = cookieAttrs(sc[0]);
  assert.equal(pair, 'coffer_session=');
  assert.equal(attrs['max-age'], '0');
  assert.equal(attrs.path, '/');

  for (const h1 of [false, true]) {
    assertError(await server.request('GET', '/api/v1/me', { token: a.token, h1 }), 401, 'unauthorized', 'after logout (bearer)');
    assertError(await server.request('GET', '/api/v1/me', { headers: { cookie: `coffer_session=${a.token}` }, h1 }), 401, 'unauthorized', 'after logout (cookie)');
    assert.equal((await server.request('GET', '/api/v1/me', { token: b.token, h1 })).status, 200, 'the other session lives on');
  }
  assertError(await server.request('POST', '/api/v1/auth/logout', { token: a.token }), 401, 'unauthorized', 'second logout');

  // Logout by cookie, with the CSRF token.
  const c = await session();
  const outc = await server.request('POST', '/api/v1/auth/logout', { headers: { cookie: `coffer_session=${c.token}`, 'x-csrf-token': c.csrf_token }, h1: true });
  assert.equal(outc.status, 204);
  assertError(await server.request('GET', '/api/v1/me', { token: c.token }), 401, 'unauthorized', 'after cookie logout');
  assert.equal((await server.request('GET', '/api/v1/me', { token: b.token })).status, 200);
});

test('session lifetime follows auth.session_ttl', async () => {
  // Expiry itself is not waited for: the shortest configurable TTL is 60 s, too long for this suite.
  // Set COFFER_SLOW_TESTS=1 to wait it out. Here: the configured TTL reaches expires_at and the cookie.
  const s = new Server({ config: { auth: { session_ttl: '60s' } } });
  extra.push(s);
  await s.start();
  const before = Date.now();
  const r = await s.request('POST', '/api/v1/auth/login', { body: { username: 'admin', password: ADMIN_PASSWORD } });
  assert.equal(r.status, 200);
  const exp = Date.parse(r.json().expires_at);
  assert.ok(exp >= before + 59000 && exp <= Date.now() + 61000, `expires_at ${r.json().expires_at}`);
  const { attrs } = cookieAttrs([].concat(r.headers['set-cookie'])[0]);
  if (attrs['max-age'] !== undefined) assert.equal(attrs['max-age'], '60');
  const token = r.json().token;
  assert.equal((await s.request('GET', '/api/v1/me', { token })).status, 200);
  if (process.env.COFFER_SLOW_TESTS) {
    await new Promise((res) => setTimeout(res, Math.max(0, exp - Date.now()) + 1500));
    assertError(await s.request('GET', '/api/v1/me', { token }), 401, 'unauthorized', 'expired session');
  }
});

let adminCtx; // ids in tenant default, for the isolation tests

test('a member sees only his own private space; admins never read private spaces', async () => {
  const a = await session();
  const admin = server.client(a.token);
  const aspaces = await admin.spaces();
  const folder = await admin.mkdir(aspaces.private.root, 'admin-private');
  assert.equal(folder.status, 201);
  const afile = await admin.upload(folder.json().id, 'secret.txt', 'admin secret');
  assert.equal(afile.status, 201);
  const tfolder = await admin.mkdir(aspaces.tenant.root, 'tenant-folder');
  assert.equal(tfolder.status, 201);
  const tfile = await admin.upload(tfolder.json().id, 'tenant.txt', 'tenant data');
  assert.equal(tfile.status, 201);

  await server.stop();
  const add = cli(['user', 'add', '--tenant', 'default', '--username', 'bob', '-c', server.configPath], { COFFER_USER_PASSWORD: BOB_PASSWORD });
  assert.equal(add.status, 0, add.stderr);
  assert.ok(!add.stdout.includes(BOB_PASSWORD), 'a password from the environment is not echoed');
  await server.start();
  // Sessions survive the restart.
  assert.equal((await server.request('GET', '/api/v1/me', { token: a.token })).status, 200);

  const b = await session('bob', BOB_PASSWORD);
  assert.equal(b.user.role, 'member');
  assert.equal(b.user.tenant.name, 'default');
  assert.equal(b.user.tenant.id, a.user.tenant.id);
  const bob = server.client(b.token);
  const bspaces = await bob.spaces();
  assert.notEqual(bspaces.private.root, aspaces.private.root);
  assert.equal(bspaces.tenant.root, aspaces.tenant.root);
  const broot = await bob.node(bspaces.private.root);
  assert.equal(broot.status, 200);
  assert.equal(broot.json().my_level, 'manage');
  assert.equal(broot.json().space, 'private');
  assert.deepEqual((await bob.children(bspaces.private.root)).json().items, []);

  // A 404 for something that exists but is out of reach is byte-identical to one for a random id.
  const notFound = async (client, method, p, opts = {}) => {
    const r = await client.req(method, p, opts);
    assertError(r, 404, 'not_found', `${method} ${p}`);
    return r.body;
  };
  const ref = await notFound(bob, 'GET', `/api/v1/nodes/${randomId()}`);
  const hidden = [aspaces.private.root, folder.json().id, afile.json().id, aspaces.tenant.root, tfolder.json().id, tfile.json().id];
  // The team space's root is the one exception (issue 21, "Team files"): every member of the tenant
  // may open it (its id is in GET /spaces anyway), with level none, and its listing shows only what
  // the member can see: here nothing, although the admin's folder is in it. Everything else on it
  // stays 404.
  const troot = await bob.node(aspaces.tenant.root);
  assert.equal(troot.status, 200, troot.text());
  assert.equal(troot.json().my_level, 'none');
  assert.equal(troot.json().space, 'tenant');
  const tlist = await bob.children(aspaces.tenant.root);
  assert.equal(tlist.status, 200);
  assert.deepEqual(tlist.json().items, []);
  assert.equal((await admin.children(aspaces.tenant.root)).json().items.length > 0, true);
  for (const id of hidden) {
    if (id !== aspaces.tenant.root) {
      assert.ok((await notFound(bob, 'GET', `/api/v1/nodes/${id}`)).equals(ref));
      await notFound(bob, 'GET', `/api/v1/nodes/${id}/children`);
    }
    await notFound(bob, 'GET', `/api/v1/files/${id}/content`);
    await notFound(bob, 'GET', `/api/v1/files/${id}/view`);
    await notFound(bob, 'PATCH', `/api/v1/nodes/${id}`, { body: { name: 'mine' } });
    await notFound(bob, 'PATCH', `/api/v1/nodes/${id}`, { body: { parent: bspaces.private.root } });
    await notFound(bob, 'DELETE', `/api/v1/nodes/${id}?purge=true`);
    await notFound(bob, 'POST', '/api/v1/folders', { body: { parent: id, name: 'x' } });
    await notFound(bob, 'POST', `/api/v1/files?parent=${id}&name=x`, { body: Buffer.from('x') });
  }
  // Bob cannot pull admin's file into his own space either.
  await notFound(bob, 'PATCH', `/api/v1/nodes/${afile.json().id}`, { body: { parent: bspaces.private.root } });

  // Bob works in his own space.
  const bfolder = await bob.mkdir(bspaces.private.root, 'bob-folder');
  assert.equal(bfolder.status, 201);
  const bfile = await bob.upload(bfolder.json().id, 'bob.txt', 'bob data');
  assert.equal(bfile.status, 201, bfile.text());
  assert.equal(bfile.json().owner, b.user.id);
  const got = await bob.download(bfile.json().id);
  assert.equal(got.status, 200);
  assert.equal(got.text(), 'bob data');

  // The admin cannot read, list, download, change or delete anything in bob's space.
  const aref = await notFound(admin, 'GET', `/api/v1/nodes/${randomId()}`);
  for (const id of [bspaces.private.root, bfolder.json().id, bfile.json().id]) {
    assert.ok((await notFound(admin, 'GET', `/api/v1/nodes/${id}`)).equals(aref));
    await notFound(admin, 'GET', `/api/v1/nodes/${id}/children`);
    await notFound(admin, 'GET', `/api/v1/files/${id}/content`);
    await notFound(admin, 'PATCH', `/api/v1/nodes/${id}`, { body: { name: 'taken' } });
    await notFound(admin, 'DELETE', `/api/v1/nodes/${id}`);
    await notFound(admin, 'POST', '/api/v1/folders', { body: { parent: id, name: 'x' } });
    await notFound(admin, 'POST', `/api/v1/files?parent=${id}&name=x`, { body: Buffer.from('x') });
  }
  // Nothing changed for bob.
  const again = await bob.download(bfile.json().id);
  assert.equal(again.text(), 'bob data');
  assert.deepEqual((await bob.children(bfolder.json().id)).json().items.map((x) => x.name), ['bob.txt']);
  // And admin's file is intact.
  assert.equal((await admin.download(afile.json().id)).text(), 'admin secret');

  adminCtx = { a, b, aspaces, bspaces, ids: [...hidden, bspaces.private.root, bfolder.json().id, bfile.json().id], users: [a.user.id, b.user.id] };
});

test('a second tenant sees nothing of tenant default', async () => {
  assert.ok(adminCtx, 'needs the previous test');
  await server.stop();
  const t = cli(['tenant', 'create', 'acme', '-c', server.configPath]);
  assert.equal(t.status, 0, t.stderr);
  const u = cli(['user', 'add', '--tenant', 'acme', '--username', 'admin', '--role', 'admin', '-c', server.configPath], { COFFER_USER_PASSWORD: ACME_PASSWORD });
  assert.equal(u.status, 0, u.stderr);
  await server.start();

  // Usernames are per tenant: the other tenant's password does not open this one.
  assertError(await login({ tenant: 'acme', username: 'admin', password: ADMIN_PASSWORD }), 401, 'unauthorized', 'default admin password on acme');
  assertError(await login({ username: 'admin', password: ACME_PASSWORD }), 401, 'unauthorized', 'acme password on default');
  assertError(await login({ tenant: 'acme', username: 'bob', password: BOB_PASSWORD }), 401, 'unauthorized', 'bob on acme');
  const c = await session('admin', ACME_PASSWORD, 'acme');
  assert.equal(c.user.tenant.name, 'acme');
  assert.notEqual(c.user.tenant.id, adminCtx.a.user.tenant.id);
  assert.notEqual(c.user.id, adminCtx.a.user.id);
  assert.equal(c.user.role, 'admin');
  const acme = server.client(c.token);
  const cspaces = await acme.spaces();
  for (const id of [cspaces.private.root, cspaces.tenant.root]) {
    assert.ok(!adminCtx.ids.includes(id));
    assert.equal((await acme.node(id)).status, 200);
    assert.deepEqual((await acme.children(id)).json().items, []);
  }
  // acme works in its own spaces.
  const cf = await acme.upload(cspaces.tenant.root, 'acme.txt', 'acme data');
  assert.equal(cf.status, 201);

  // Every id of tenant default answers exactly like a random id, for every request.
  const rnd = randomId();
  const requests = (id) => [
    ['GET', `/api/v1/nodes/${id}`, {}],
    ['GET', `/api/v1/nodes/${id}/children`, {}],
    ['GET', `/api/v1/files/${id}/content`, {}],
    ['HEAD', `/api/v1/files/${id}/content`, {}],
    ['GET', `/api/v1/files/${id}/view`, {}],
    ['PATCH', `/api/v1/nodes/${id}`, { body: { name: 'x' } }],
    ['PATCH', `/api/v1/nodes/${cf.json().id}`, { body: { parent: id } }],
    ['DELETE', `/api/v1/nodes/${id}`, {}],
    ['DELETE', `/api/v1/nodes/${id}?purge=true`, {}],
    ['POST', '/api/v1/folders', { body: { parent: id, name: 'x' } }],
    ['POST', `/api/v1/files?parent=${id}&name=x`, { body: Buffer.from('x') }],
  ];
  const ref = [];
  for (const [m, p, o] of requests(rnd)) {
    const r = await acme.req(m, p, o);
    assert.equal(r.status, 404, `${m} ${p}`);
    ref.push(r);
  }
  for (const id of [...adminCtx.ids, ...adminCtx.users]) {
    for (const [i, [m, p, o]] of requests(id).entries()) {
      for (const h1 of [false, true]) {
        const r = await acme.req(m, p, { ...o, h1 });
        assert.equal(r.status, ref[i].status, `${m} ${p} (${h1 ? 'h1' : 'h2'})`);
        assert.ok(r.body.equals(ref[i].body), `${m} ${p}: body differs from a random id's: ${r.text()} vs ${ref[i].text()}`);
        assert.equal(r.headers['content-type'], ref[i].headers['content-type']);
      }
    }
  }
  // Tenant default is untouched.
  const admin = server.client(adminCtx.a.token);
  assert.equal((await admin.node(adminCtx.aspaces.private.root)).status, 200);
  assert.equal((await admin.children(adminCtx.aspaces.tenant.root)).json().items.length, 1);
  const bob = server.client(adminCtx.b.token);
  assert.equal((await bob.children(adminCtx.bspaces.private.root)).json().items.length, 1);
  // And default's users cannot reach acme's ids either.
  for (const id of [cspaces.private.root, cspaces.tenant.root, cf.json().id]) {
    assertError(await admin.node(id), 404, 'not_found', `default admin on acme id ${id}`);
    assertError(await admin.download(id), 404, 'not_found', `default admin download acme id ${id}`);
  }
});

test('tokens and passwords are not stored in clear', async () => {
  await server.stop();
  assert.ok(tokens.length >= 10);
  for (const t of tokens) {
    assert.equal(dirContains(server.dataDir, Buffer.from(t)), null, 'a token in text form is on disk');
    assert.equal(dirContains(server.dataDir, Buffer.from(t, 'base64url')), null, 'a token\'s raw bytes are on disk');
  }
  for (const p of [ADMIN_PASSWORD, BOB_PASSWORD, ACME_PASSWORD]) {
    assert.equal(dirContains(server.dataDir, Buffer.from(p)), null, 'a password is on disk');
  }
  // The token in the access log would be as bad as on disk.
  const log = fs.readFileSync(path.join(server.dir, 'access.log'), 'utf8');
  for (const t of tokens) assert.ok(!log.includes(t), 'a token in the access log');
  await server.start();
  // The sessions are still valid after all this (stored hashed, not lost).
  const still = await server.request('GET', '/api/v1/me', { token: adminCtx.b.token });
  assert.equal(still.status, 200);
  assert.equal(still.json().username, 'bob');
});
