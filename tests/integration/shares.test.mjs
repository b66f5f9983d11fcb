// Share links with extraction codes (issue 4; SPEC §5 "Share links"; API.md "Share links";
// SECURITY.md "Share links"), proved through the real server over HTTP/2 and HTTP/1.1.
//
// Besides every rule of the contract, the known failures of Nextcloud and Seafile links are tests:
// - link passwords silently not applied: every recipient route without an unlock answers 401, and a
//   wrong code never unlocks anything;
// - "hide download" bypassed by a direct URL: a view-only link answers 403 on /content, on the
//   folder file routes, with Range and with HEAD, and no byte of the file is anywhere in the answer;
// - links that cannot be revoked: after a revoke the next request answers 410 revoked, also with an
//   access token or cookie obtained before;
// - lock-outs that shut out real recipients: while a brute-force attack exhausts a link's budget, a
//   recipient who unlocked before keeps downloading the exact bytes.
//
// Servers: `main` (tenant default plus a second tenant acme; shares.code_failures_per_ip raised to
// 1000 so that the wrong codes of the functional tests never hit the per-address limit; per link the
// default 20) and `aux` (shares.code_length 6, default brute-force limits: the per-address test).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { Server, ADMIN_PASSWORD, cli, freePort, bytes, bigBytes, dirContains } from './lib/harness.mjs';

const B64URL43 = /^[A-Za-z0-9_-]{43}$/;
const HEX32 = /^[0-9a-f]{32}$/;
const TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const ALPHABET = '23456789ABCDEFGHJKMNPQRSTUVWXYZ';
const WEEK_S = 7 * 24 * 3600;
const DAY_MS = 24 * 3600 * 1000;
const CUSTOM_CODE = 'Zq7XwR3p';
const SHARE_KEYS = ['bytes_left', 'code', 'created_at', 'creator', 'downloads', 'expires_at', 'id', 'internal_only', 'max_downloads',
  'node', 'permission', 'state', 'url'];
const PUBLIC_NODE_KEYS = ['id', 'mime', 'modified_at', 'name', 'size', 'type'];
const pw = (n) => `pw-${n}-Shares-2024`;
const CAROL_PASSWORD = 'carol-acme-password-1';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const randomId = () => crypto.randomBytes(16).toString('hex');
const randomToken = () => crypto.randomBytes(32).toString('base64url');

let main, aux;
const servers = [];
const secrets = []; // link tokens and access tokens handed out by main (for the on-disk search)
const clearCodes = [CUSTOM_CODE]; // custom codes of main's links long enough to search for

after(async () => {
  let first = null;
  for (const s of servers) {
    try { await s.stop(); s.cleanup(); } catch (e) { first = first || e; }
  }
  if (first) throw first;
});

// ---- helpers ---------------------------------------------------------------------------------------

function assertError(r, status, code, what = '') {
  assert.equal(r.status, status, `${what}: ${r.status} ${r.text()}`);
  assert.equal(r.headers['content-type'], 'application/json', `${what}: content-type`);
  const j = r.json();
  assert.deepEqual(Object.keys(j).sort(), ['error', 'message'], what);
  assert.equal(j.error, code, what);
  assert.equal(typeof j.message, 'string', what);
  return j;
}

/** An HTML page answer (recipient page or its error page). */
function assertPage(r, status, what = '') {
  assert.equal(r.status, status, `${what}: ${r.status} ${r.text().slice(0, 300)}`);
  assert.match(r.headers['content-type'], /^text\/html(;|$)/, `${what}: content-type`);
  const csp = r.headers['content-security-policy'];
  assert.ok(csp, `${what}: a CSP`);
  assert.ok(!csp.includes('unsafe-inline'), `${what}: CSP without unsafe-inline: ${csp}`);
  assert.ok(csp.includes("frame-ancestors 'none'"), `${what}: frame-ancestors 'none': ${csp}`);
  assert.match(r.text(), /^<!doctype html>/i, `${what}: an HTML document`);
  return r.text();
}

/** A 410 page that says which of revoked, expired, exhausted. */
function assert410Page(r, which, what) {
  const html = assertPage(r, 410, what);
  const words = { revoked: /revoked/i, expired: /expired/i, download_limit_reached: /download limit/i };
  for (const [k, re] of Object.entries(words)) {
    if (k === which) assert.match(html, re, `${what}: the page says ${which}`);
    else assert.doesNotMatch(html, re, `${what}: the page does not say ${k}`);
  }
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

async function mkUser(server, adminToken, username) {
  const r = await server.request('POST', '/api/v1/admin/users', { token: adminToken, body: { username, password: pw(username) } });
  assert.equal(r.status, 201, `create ${username}: ${r.text()}`);
  const login = await server.login(username, pw(username));
  return { id: r.json().id, token: login.token, c: server.client(login.token) };
}

async function upload(c, parent, name, data) {
  const r = await c.upload(parent, name, data);
  assert.equal(r.status, 201, `upload ${name}: ${r.status} ${r.text()}`);
  return r.json();
}

async function mkdir(c, parent, name) {
  const r = await c.mkdir(parent, name);
  assert.equal(r.status, 201, `mkdir ${name}: ${r.status} ${r.text()}`);
  return r.json();
}

async function putAcl(server, token, node, entries) {
  const r = await server.request('PUT', `/api/v1/nodes/${node}/acl`, { token, body: { entries } });
  assert.equal(r.status, 200, `acl ${JSON.stringify(entries)}: ${r.status} ${r.text()}`);
}

/** POST /api/v1/shares that must succeed; adds .token (the link token). */
async function mkShare(server, token, body, what = 'create share') {
  const r = await server.request('POST', '/api/v1/shares', { token, body });
  assert.equal(r.status, 201, `${what}: ${r.status} ${r.text()}`);
  const j = r.json();
  const prefix = `${server.publicUrl}/s/`;
  assert.ok(j.url.startsWith(prefix), `${what}: url ${j.url}`);
  j.token = j.url.slice(prefix.length);
  assert.match(j.token, B64URL43, `${what}: token`);
  if (server === main) secrets.push(j.token);
  return j;
}

/** POST /s/{token}/unlock that must succeed; adds .cookie (the Cookie header value). */
async function unlockOk(server, token, code, opts = {}) {
  const r = await server.request('POST', `/s/${token}/unlock`, { ...opts, body: { code } });
  assert.equal(r.status, 200, `unlock: ${r.status} ${r.text()}`);
  const j = r.json();
  assert.match(j.access_token, B64URL43);
  if (server === main) secrets.push(j.access_token);
  return { ...j, cookie: `coffer_share=${j.access_token}`, res: r };
}

const viaCookie = (u, extra = {}) => ({ ...extra, headers: { ...(extra.headers || {}), cookie: u.cookie } });
const viaBearer = (u, extra = {}) => ({ ...extra, token: u.access_token });

/** The creator's view of one link. */
async function listed(server, token, id) {
  const r = await server.request('GET', '/api/v1/shares', { token });
  assert.equal(r.status, 200);
  return r.json().shares.find((s) => s.id === id);
}

/** Calls fn until pred(result) holds or ms pass; returns the last result. */
async function poll(fn, pred, ms = 120000) { // a generous deadline: it only ends a wait that failed
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (pred(v) || Date.now() > deadline) return v;
    await sleep(25);
  }
}

/** An HTTP/1.1 request from the loopback address ip (the server sees ip as the client). */
function reqFrom(server, ip, method, urlPath, opts = {}) {
  const headers = { ...(opts.headers || {}) };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let body = opts.body;
  if (body !== undefined && !Buffer.isBuffer(body) && typeof body !== 'string') {
    body = JSON.stringify(body);
    headers['content-type'] = 'application/json';
  }
  return new Promise((resolve, reject) => {
    const req = https.request(server.url + urlPath, { method, headers, rejectUnauthorized: false, agent: false, localAddress: ip }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const buf = Buffer.concat(chunks);
        resolve({ status: res.statusCode, headers: res.headers, body: buf, json: () => JSON.parse(buf.toString('utf8')), text: () => buf.toString('utf8') });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body !== undefined) req.end(body); else req.end();
  });
}

function assertRetryAfter(r, max, what) {
  const v = r.headers['retry-after'];
  assert.match(String(v), /^\d+$/, `${what}: Retry-After ${v}`);
  assert.ok(Number(v) >= 1 && Number(v) <= max, `${what}: Retry-After ${v} within 1..${max}`);
}

/** No byte run of the file in a denied answer: neither the marker nor any 16-byte piece. */
function assertNoFileBytes(r, data, marker, what) {
  const hdrs = JSON.stringify(r.headers);
  assert.ok(!r.body.includes(marker), `${what}: the marker is in the body`);
  assert.ok(!hdrs.includes(marker.toString()), `${what}: the marker is in the headers`);
  for (let i = 0; i + 16 <= data.length; i += 16) assert.ok(!r.body.includes(data.subarray(i, i + 16)), `${what}: file bytes in the body`);
  for (const h of ['content-disposition', 'content-range', 'etag', 'accept-ranges']) assert.equal(r.headers[h], undefined, `${what}: ${h}`);
}

// ---- set-up ------------------------------------------------------------------------------------------

const M = {}; // main's users, spaces and nodes

before(async () => {
  main = new Server({ config: { shares: { code_failures_per_ip: 1000, code_failures_per_link: 20 } } });
  servers.push(main);
  main.port = await freePort();
  main.writeConfig(main.port);
  let r = cli(['init', '-c', main.configPath], { COFFER_ADMIN_PASSWORD: ADMIN_PASSWORD });
  assert.equal(r.status, 0, r.stderr);
  r = cli(['tenant', 'create', 'acme', '-c', main.configPath]);
  assert.equal(r.status, 0, r.stderr);
  r = cli(['user', 'add', '--tenant', 'acme', '--username', 'carol', '--role', 'admin', '-c', main.configPath], { COFFER_USER_PASSWORD: CAROL_PASSWORD });
  assert.equal(r.status, 0, r.stderr);
  await main.start();

  const al = await main.login();
  M.admin = { id: al.user.id, token: al.token, c: main.client(al.token) };
  for (const n of ['alice', 'bob', 'fred', 'gina']) M[n] = await mkUser(main, al.token, n);
  const cl = await main.login('carol', CAROL_PASSWORD, 'acme');
  M.carol = { id: cl.user.id, token: cl.token, c: main.client(cl.token) };
  const sp = await M.admin.c.spaces();
  M.tenantRoot = sp.tenant.root;
  for (const n of ['alice', 'bob', 'fred', 'gina', 'carol']) M[n].root = (await M[n].c.spaces()).private.root;

  // alice's private files.
  M.dataA = bytes(3000, 11);
  M.fileA = await upload(M.alice.c, M.alice.root, 'report-A.bin', M.dataA);
  // The tenant space: Team, created by admin, alice manage, bob download.
  M.team = await mkdir(M.admin.c, M.tenantRoot, 'Team');
  M.teamData = Buffer.from('team file content, owned by admin\n');
  M.teamFile = await upload(M.admin.c, M.team.id, 'team.txt', M.teamData);
  await putAcl(main, M.admin.token, M.team.id, [{ principal: `user:${M.alice.id}`, level: 'manage' }, { principal: `user:${M.bob.id}`, level: 'download' }]);
  // A folder bob may only view.
  M.viewDir = await mkdir(M.admin.c, M.tenantRoot, 'ViewOnly');
  M.viewFile = await upload(M.admin.c, M.viewDir.id, 'v.txt', 'view me\n');
  await putAcl(main, M.admin.token, M.viewDir.id, [{ principal: `user:${M.bob.id}`, level: 'view' }]);
});

// ---- creating, listing, revoking --------------------------------------------------------------------

test('create: the 201 answer, url and token, generated and custom codes', async () => {
  const before = Date.now();
  const sh = await mkShare(main, M.alice.token, { node: M.fileA.id, permission: 'download' });
  assert.deepEqual(Object.keys(sh).filter((k) => k !== 'token').sort(), SHARE_KEYS);
  assert.match(sh.id, HEX32);
  assert.equal(sh.node, M.fileA.id);
  assert.equal(sh.creator, M.alice.id);
  assert.equal(sh.url, `${main.publicUrl}/s/${sh.token}`);
  assert.equal(Buffer.from(sh.token, 'base64url').length, 32, '256 random bits');
  assert.equal(sh.permission, 'download');
  assert.equal(sh.max_downloads, null);
  assert.equal(sh.downloads, 0);
  assert.equal(sh.internal_only, false);
  assert.equal(sh.state, 'active');
  assert.match(sh.created_at, TIME);
  assert.match(sh.expires_at, TIME);
  const created = Date.parse(sh.created_at);
  assert.ok(created >= before - 1000 && created <= Date.now() + 1000, `created_at ${sh.created_at}`);
  assert.equal(Date.parse(sh.expires_at) - created, WEEK_S * 1000, 'expires_in defaults to 7 days exactly');
  assert.equal(sh.code.length, 4, 'shares.code_length defaults to 4');

  // 20 generated codes: 4 characters, all from the unambiguous alphabet; links and codes distinct.
  const codes = [sh.code];
  const tokens = new Set([sh.token]);
  for (let i = 0; i < 19; i++) {
    const s = await mkShare(main, M.alice.token, { node: M.fileA.id, permission: i % 2 ? 'view' : 'download' });
    codes.push(s.code);
    tokens.add(s.token);
  }
  assert.equal(tokens.size, 20, 'every link has its own token');
  for (const c of codes) {
    assert.equal(c.length, 4, `code ${c}`);
    for (const ch of c) assert.ok(ALPHABET.includes(ch), `code ${c}: ${ch} is not in the alphabet`);
  }
  assert.ok(new Set(codes).size >= 15, `generated codes vary: ${codes.join(' ')}`);

  // Custom codes are kept as given (4 and 16 characters, mixed case).
  for (const code of [CUSTOM_CODE, 'abCD', 'A1b2C3d4E5f6G7h8']) {
    const s = await mkShare(main, M.alice.token, { node: M.fileA.id, permission: 'view', code });
    assert.equal(s.code, code);
  }
  // Explicit expires_in, max_downloads and internal_only are reflected.
  const s = await mkShare(main, M.alice.token, { node: M.fileA.id, permission: 'download', expires_in: 3600, max_downloads: 3, internal_only: true });
  assert.equal(Date.parse(s.expires_at) - Date.parse(s.created_at), 3600 * 1000);
  assert.equal(s.max_downloads, 3);
  assert.equal(s.internal_only, true);
  const w = await mkShare(main, M.alice.token, { node: M.fileA.id, permission: 'view', expires_in: WEEK_S, max_downloads: 1000000 });
  assert.equal(Date.parse(w.expires_at) - Date.parse(w.created_at), WEEK_S * 1000, 'exactly the maximum is allowed');
  assert.equal(w.max_downloads, 1000000);
});

test('create: bad input answers 400 and creates nothing', async () => {
  const before = (await main.request('GET', '/api/v1/shares', { token: M.alice.token })).json().shares.length;
  const node = M.fileA.id;
  const cases = [
    ['expires_in over the maximum', { node, permission: 'download', expires_in: WEEK_S + 1 }, '604800'],
    ['expires_in far over the maximum', { node, permission: 'download', expires_in: 30 * 24 * 3600 }, '604800'],
    ['permission edit', { node, permission: 'edit' }],
    ['permission manage', { node, permission: 'manage' }],
    ['permission Download', { node, permission: 'Download' }],
    ['permission empty', { node, permission: '' }],
    ['permission missing', { node }],
    ['permission as number', { node, permission: 1 }],
    ['node missing', { permission: 'view' }],
    ['code of 3', { node, permission: 'view', code: 'abc' }],
    ['code of 17', { node, permission: 'view', code: 'A1b2C3d4E5f6G7h8X' }],
    ['code with a dash', { node, permission: 'view', code: 'abc-def' }],
    ['code with a space', { node, permission: 'view', code: 'abcd efg' }],
    ['code with an umlaut', { node, permission: 'view', code: 'ÄBCDEF' }],
    ['code empty', { node, permission: 'view', code: '' }],
    ['code as number', { node, permission: 'view', code: 123456 }],
    ['max_downloads 0', { node, permission: 'download', max_downloads: 0 }],
    ['max_downloads negative', { node, permission: 'download', max_downloads: -1 }],
    ['max_downloads over 1 000 000', { node, permission: 'download', max_downloads: 1000001 }],
    ['max_downloads as string', { node, permission: 'download', max_downloads: '2' }],
    ['internal_only as string', { node, permission: 'download', internal_only: 'yes' }],
    ['expires_in as string', { node, permission: 'download', expires_in: '3600' }],
    ['expires_in fractional', { node, permission: 'download', expires_in: 3600.5 }],
    ['max_downloads fractional', { node, permission: 'download', max_downloads: 1.5 }],
    ['unknown field', { node, permission: 'download', password: 'secret' }],
    ['unknown field (typo)', { node, permission: 'download', max_download: 2 }],
  ];
  for (const [what, body, mention] of cases) {
    const j = assertError(await main.request('POST', '/api/v1/shares', { token: M.alice.token, body }), 400, 'bad_request', what);
    if (mention) assert.ok(j.message.includes(mention), `${what}: the message names ${mention}: ${j.message}`);
  }
  assertError(await main.request('POST', '/api/v1/shares', { token: M.alice.token, body: '{"node":', headers: { 'content-type': 'application/json' } }), 400, 'bad_request', 'invalid JSON');
  assertError(await main.request('POST', '/api/v1/shares', { body: { node, permission: 'view' } }), 401, 'unauthorized', 'no credentials');
  const after = (await main.request('GET', '/api/v1/shares', { token: M.alice.token })).json().shares.length;
  assert.equal(after, before, 'nothing created');
});

test('create: tenant policy share_max_expiry and allow_shares', async () => {
  const patch = async (body) => {
    const r = await main.request('PATCH', '/api/v1/admin/policy', { token: M.admin.token, body });
    assert.equal(r.status, 200, `policy ${JSON.stringify(body)}: ${r.text()}`);
  };
  await patch({ share_max_expiry: 3600 });
  try {
    const j = assertError(await main.request('POST', '/api/v1/shares', { token: M.alice.token, body: { node: M.fileA.id, permission: 'view', expires_in: 7200 } }), 400, 'bad_request', 'over the tenant maximum');
    assert.ok(j.message.includes('3600'), `the message names the tenant's maximum: ${j.message}`);
    assert.ok(!j.message.includes('604800'), `not the server's: ${j.message}`);
    assertError(await main.request('POST', '/api/v1/shares', { token: M.alice.token, body: { node: M.fileA.id, permission: 'view', expires_in: 3601 } }), 400, 'bad_request', '3601');
    const ok = await mkShare(main, M.alice.token, { node: M.fileA.id, permission: 'view', expires_in: 3600 });
    assert.equal(Date.parse(ok.expires_at) - Date.parse(ok.created_at), 3600 * 1000);
    // Without expires_in the default (7 days) is capped by the tenant's maximum rather than refused.
    const dflt = await mkShare(main, M.alice.token, { node: M.fileA.id, permission: 'view' });
    assert.equal(Date.parse(dflt.expires_at) - Date.parse(dflt.created_at), 3600 * 1000);
  } finally {
    await patch({ share_max_expiry: WEEK_S });
  }
  await patch({ allow_shares: false });
  try {
    for (const perm of ['view', 'download']) {
      assertError(await main.request('POST', '/api/v1/shares', { token: M.alice.token, body: { node: M.fileA.id, permission: perm } }), 403, 'forbidden', `shares disabled (${perm})`);
      assertError(await main.request('POST', '/api/v1/shares', { token: M.admin.token, body: { node: M.teamFile.id, permission: perm } }), 403, 'forbidden', `shares disabled, admin (${perm})`);
    }
  } finally {
    await patch({ allow_shares: true });
  }
  const again = await mkShare(main, M.alice.token, { node: M.fileA.id, permission: 'view', expires_in: 7200 });
  assert.equal(Date.parse(again.expires_at) - Date.parse(again.created_at), 7200 * 1000, 'restored policy applies');
});

test('create: only managers of a visible node; list shows url and code to the creator only; revoke rights', async () => {
  // bob holds download on Team, view on ViewOnly: not enough to share (403); alice's private file is invisible to him (404).
  for (const perm of ['view', 'download']) {
    assertError(await main.request('POST', '/api/v1/shares', { token: M.bob.token, body: { node: M.teamFile.id, permission: perm } }), 403, 'forbidden', `bob download-level (${perm})`);
    assertError(await main.request('POST', '/api/v1/shares', { token: M.bob.token, body: { node: M.team.id, permission: perm } }), 403, 'forbidden', `bob folder (${perm})`);
    assertError(await main.request('POST', '/api/v1/shares', { token: M.bob.token, body: { node: M.viewFile.id, permission: perm } }), 403, 'forbidden', `bob view-level (${perm})`);
    assertError(await main.request('POST', '/api/v1/shares', { token: M.bob.token, body: { node: M.fileA.id, permission: perm } }), 404, 'not_found', `bob on alice's private file (${perm})`);
    assertError(await main.request('POST', '/api/v1/shares', { token: M.admin.token, body: { node: M.fileA.id, permission: perm } }), 404, 'not_found', `admin on alice's private file (${perm})`);
    assertError(await main.request('POST', '/api/v1/shares', { token: M.carol.token, body: { node: M.teamFile.id, permission: perm } }), 404, 'not_found', `another tenant (${perm})`);
    assertError(await main.request('POST', '/api/v1/shares', { token: M.alice.token, body: { node: randomId(), permission: perm } }), 404, 'not_found', `random id (${perm})`);
  }
  const bobs = (await main.request('GET', '/api/v1/shares', { token: M.bob.token })).json();
  assert.deepEqual(bobs, { shares: [] }, 'bob created nothing');

  // alice manages Team through a grant: she may share the admin's file.
  const mine = await mkShare(main, M.alice.token, { node: M.teamFile.id, permission: 'download', code: 'TeamCode42' });
  clearCodes.push('TeamCode42');
  const gen = await mkShare(main, M.alice.token, { node: M.teamFile.id, permission: 'view' });
  const adminLink = await mkShare(main, M.admin.token, { node: M.teamFile.id, permission: 'view', code: 'AdminCode77' });
  clearCodes.push('AdminCode77');

  // GET /shares: the creator's links with url and code, again.
  const all = (await main.request('GET', '/api/v1/shares', { token: M.alice.token })).json().shares;
  for (const s of [mine, gen]) {
    const l = all.find((x) => x.id === s.id);
    assert.ok(l, 'listed');
    assert.deepEqual(Object.keys(l).sort(), SHARE_KEYS);
    const { token, ...created } = s;
    assert.deepEqual(l, created, 'the list repeats the creation answer');
  }
  assert.ok(!all.some((x) => x.id === adminLink.id), "admin's link is not in alice's list");
  assert.ok(all.every((x) => x.creator === M.alice.id));

  // ?node= by a manager who did not create the link: every link on the node, url and code only on his own.
  const byAdmin = (await main.request('GET', `/api/v1/shares?node=${M.teamFile.id}`, { token: M.admin.token })).json().shares;
  assert.deepEqual(byAdmin.map((x) => x.id).sort(), [mine.id, gen.id, adminLink.id].sort());
  for (const l of byAdmin) {
    if (l.id === adminLink.id) {
      assert.equal(l.url, adminLink.url);
      assert.equal(l.code, 'AdminCode77');
    } else {
      assert.deepEqual(Object.keys(l).sort(), SHARE_KEYS.filter((k) => k !== 'url' && k !== 'code'), 'no url or code of another creator');
      assert.equal(l.creator, M.alice.id);
      assert.ok(!JSON.stringify(l).includes(mine.token) && !JSON.stringify(l).includes(gen.token));
    }
  }
  const byAlice = (await main.request('GET', `/api/v1/shares?node=${M.teamFile.id}`, { token: M.alice.token })).json().shares;
  assert.deepEqual(byAlice.map((x) => x.id).sort(), [mine.id, gen.id, adminLink.id].sort());
  assert.equal(byAlice.find((x) => x.id === mine.id).code, 'TeamCode42');
  assert.equal(byAlice.find((x) => x.id === adminLink.id).code, undefined);
  assert.equal(byAlice.find((x) => x.id === adminLink.id).url, undefined);
  assertError(await main.request('GET', `/api/v1/shares?node=${M.teamFile.id}`, { token: M.bob.token }), 403, 'forbidden', 'bob lists by node');
  assertError(await main.request('GET', `/api/v1/shares?node=${M.teamFile.id}`, { token: M.carol.token }), 404, 'not_found', 'carol lists by node');
  assertError(await main.request('GET', `/api/v1/shares?node=${M.fileA.id}`, { token: M.bob.token }), 404, 'not_found', 'bob lists an invisible node');

  // Revoke: a non-manager non-creator learns nothing (404), like a random id; the link lives on.
  const rnd = assertError(await main.request('DELETE', `/api/v1/shares/${randomId()}`, { token: M.bob.token }), 404, 'not_found', 'random share id');
  for (const [who, token] of [['bob', M.bob.token], ['carol', M.carol.token], ['fred', M.fred.token]]) {
    const j = assertError(await main.request('DELETE', `/api/v1/shares/${mine.id}`, { token }), 404, 'not_found', `${who} revokes`);
    assert.deepEqual(j, rnd, `${who}: the same answer as a random id`);
  }
  assert.equal((await listed(main, M.alice.token, mine.id)).state, 'active');
  const u = await unlockOk(main, mine.token, 'teamcode42');
  assert.equal((await main.request('GET', `/s/${mine.token}/content`, viaCookie(u))).status, 200);

  // A manager who is not the creator may revoke; so may the creator.
  const d1 = await main.request('DELETE', `/api/v1/shares/${gen.id}`, { token: M.admin.token });
  assert.equal(d1.status, 204, d1.text());
  assert.equal((await listed(main, M.alice.token, gen.id)).state, 'revoked');
  const d2 = await main.request('DELETE', `/api/v1/shares/${mine.id}`, { token: M.alice.token });
  assert.equal(d2.status, 204, d2.text());
  const l2 = await listed(main, M.alice.token, mine.id);
  assert.equal(l2.state, 'revoked');
  assert.equal(l2.code, 'TeamCode42', 'a revoked link is still listed with its code');
  assertError(await main.request('GET', `/s/${mine.token}/content`, viaCookie(u)), 410, 'revoked', 'after revoke');
});

// ---- recipients -----------------------------------------------------------------------------------

test('recipient flow over HTTP/2 and HTTP/1.1: page, unlock, info, content by cookie or bearer', async () => {
  for (const h1 of [false, true]) {
    const tag = h1 ? 'h1' : 'h2';
    const code = `Flow${tag}Code9`;
    clearCodes.push(code);
    const A = await mkShare(main, M.alice.token, { node: M.fileA.id, permission: 'download', code });
    const B = await mkShare(main, M.alice.token, { node: M.fileA.id, permission: 'download' });
    const R = (method, p, opts = {}) => main.request(method, p, { ...opts, h1 });

    // The recipient page.
    const page = await R('GET', `/s/${A.token}`);
    const html = assertPage(page, 200, `page (${tag})`);
    assert.ok(html.includes('data-testid="share-code-input"'), 'the page has the code input');
    assert.ok(html.includes('data-testid="share-unlock"'), 'the page has the unlock button');
    assert.ok(!html.includes(M.fileA.name), 'the page names nothing before the unlock');
    assert.equal(page.headers['x-content-type-options'], 'nosniff');
    assert.equal(page.headers['referrer-policy'], 'no-referrer');
    // Unknown and malformed links: 404 pages, 404 JSON on the API routes.
    const unknown = assertPage(await R('GET', `/s/${randomToken()}`), 404, `unknown link (${tag})`);
    assert.ok(!unknown.includes('share-code-input'), 'no unlock form for an unknown link');
    for (const bad of ['abc', '!'.repeat(43), `${A.token}A`, A.token.slice(0, 42), Buffer.from(A.token, 'base64url').toString('hex')]) {
      assertPage(await R('GET', `/s/${encodeURIComponent(bad)}`), 404, `malformed ${bad} (${tag})`);
      assertError(await R('POST', `/s/${encodeURIComponent(bad)}/unlock`, { body: { code } }), 404, 'not_found', `unlock malformed ${bad}`);
      assertError(await R('GET', `/s/${encodeURIComponent(bad)}/info`), 404, 'not_found', `info malformed ${bad}`);
    }
    assertError(await R('POST', `/s/${randomToken()}/unlock`, { body: { code } }), 404, 'not_found', `unlock unknown (${tag})`);
    assertError(await R('GET', `/s/${randomToken()}/content`), 404, 'not_found', `content unknown (${tag})`);

    // Nothing works before the unlock (link passwords are applied): 401 on every route, whatever the credentials.
    const denied = [
      ['no credentials', {}],
      ['garbage bearer', { headers: { authorization: 'Bearer garbage' } }],
      ['random bearer', { headers: { authorization: `Bearer ${randomToken()}` } }],
      ['the link token as bearer', { headers: { authorization: `Bearer ${A.token}` } }],
      ['garbage cookie', { headers: { cookie: 'coffer_share=garbage' } }],
      ['random cookie', { headers: { cookie: `coffer_share=${randomToken()}` } }],
      ["the creator's session as bearer", { token: M.alice.token }],
      ["the creator's session cookie", { headers: { cookie: `coffer_session=${M.alice.token}` } }],
      ['the code as bearer', { headers: { authorization: `Bearer ${code}` } }],
    ];
    for (const [what, opts] of denied) {
      for (const p of ['info', 'content', 'view']) assertError(await R('GET', `/s/${A.token}/${p}`, opts), 401, 'unauthorized', `${p}, ${what} (${tag})`);
      const head = await R('HEAD', `/s/${A.token}/content`, opts);
      assert.equal(head.status, 401, `HEAD, ${what} (${tag})`);
      assert.equal(head.body.length, 0, 'HEAD has no body');
    }

    // A wrong code: 403 wrong_code, no token, no cookie; it unlocks nothing.
    for (const wrong of ['WRONG1', code.slice(0, -1), `${code}x`, 'abc', 'A'.repeat(64)]) {
      const r = await R('POST', `/s/${A.token}/unlock`, { body: { code: wrong } });
      assertError(r, 403, 'wrong_code', `wrong code ${wrong} (${tag})`);
      assert.equal(r.headers['set-cookie'], undefined, 'no cookie for a wrong code');
      assert.ok(!r.text().includes('access_token'));
    }
    assertError(await R('POST', `/s/${A.token}/unlock`, { body: { code: B.code } }), 403, 'wrong_code', "another link's code");
    assertError(await R('GET', `/s/${A.token}/info`), 401, 'unauthorized', `still locked (${tag})`);
    // Malformed unlock bodies.
    assertError(await R('POST', `/s/${A.token}/unlock`, { body: {} }), 400, 'bad_request', 'no code');
    assertError(await R('POST', `/s/${A.token}/unlock`, { body: { code: 1234 } }), 400, 'bad_request', 'code as number');
    assertError(await R('POST', `/s/${A.token}/unlock`, { body: { code, remember: true } }), 400, 'bad_request', 'unknown field');

    // The right code, in lower case.
    const before = Date.now();
    const u = await unlockOk(main, A.token, code.toLowerCase(), { h1 });
    assert.deepEqual(Object.keys(u).filter((k) => !['cookie', 'res'].includes(k)).sort(), ['access_token', 'expires_at', 'node', 'permission']);
    assert.equal(u.permission, 'download');
    assert.deepEqual(Object.keys(u.node).sort(), PUBLIC_NODE_KEYS);
    assert.deepEqual(u.node, { id: M.fileA.id, type: 'file', name: 'report-A.bin', size: M.dataA.length, mime: M.fileA.mime, modified_at: M.fileA.modified_at });
    const exp = Date.parse(u.expires_at);
    assert.ok(exp >= before + DAY_MS - 2000 && exp <= Date.now() + DAY_MS + 2000, `an unlock lasts 24 h: ${u.expires_at}`);
    assert.equal(u.res.headers['cache-control'], 'no-store');
    const sc = [].concat(u.res.headers['set-cookie'] || []);
    assert.equal(sc.length, 1, `one Set-Cookie: ${JSON.stringify(sc)}`);
    const { pair, attrs } = cookieAttrs(sc[0]);
    assert.equal(pair, `coffer_share=${u.access_token}`);
    assert.equal(attrs.path, `/s/${A.token}`);
    assert.equal(attrs.httponly, true);
    assert.equal(attrs.secure, true);
    assert.equal(attrs.samesite, 'Strict');
    assert.equal(attrs.domain, undefined);
    if (attrs['max-age'] !== undefined) assert.ok(Math.abs(Number(attrs['max-age']) - 86400) <= 2, `Max-Age ${attrs['max-age']}`);
    // The same code in upper case and as typed also unlock (each unlock its own token).
    const u2 = await unlockOk(main, A.token, code.toUpperCase(), { h1 });
    const u3 = await unlockOk(main, A.token, code, { h1 });
    assert.equal(new Set([u.access_token, u2.access_token, u3.access_token]).size, 3);

    // info, by cookie and by bearer.
    for (const [how, opts] of [['cookie', viaCookie(u)], ['bearer', viaBearer(u)], ['cookie among others', { headers: { cookie: `a=b; ${u.cookie}; c=d` } }]]) {
      const r = await R('GET', `/s/${A.token}/info`, opts);
      assert.equal(r.status, 200, `info by ${how} (${tag}): ${r.text()}`);
      const j = r.json();
      assert.deepEqual(Object.keys(j).sort(), ['downloads_left', 'expires_at', 'internal_only', 'node', 'permission', 'watermark']);
      assert.deepEqual(Object.keys(j.watermark).sort(), ['at', 'ip', 'name']);
      assert.equal(j.watermark.name, `Link recipient ${A.id.slice(0, 8)}`, 'recipients are named by the link, as in the provenance log');
      assert.equal(j.watermark.ip, '127.0.0.1');
      assert.equal(j.permission, 'download');
      assert.equal(j.expires_at, A.expires_at);
      assert.equal(j.internal_only, false);
      assert.equal(j.downloads_left, null);
      assert.deepEqual(j.node, u.node);
    }
    // content: exact bytes with the cookie only, and with the bearer only.
    for (const [how, opts] of [['cookie', viaCookie(u)], ['bearer', viaBearer(u)]]) {
      const r = await R('GET', `/s/${A.token}/content`, opts);
      assert.equal(r.status, 200, `content by ${how} (${tag}): ${r.text().slice(0, 200)}`);
      assert.ok(r.body.equals(M.dataA), `exact bytes by ${how} (${tag})`);
      assert.equal(r.headers['content-type'], M.fileA.mime);
      assert.match(r.headers['content-disposition'], /^attachment; filename="report-A\.bin"/);
      assert.equal(Number(r.headers['content-length']), M.dataA.length);
      assert.equal(r.headers['accept-ranges'], 'bytes');
      assert.equal(r.headers['content-security-policy'], "default-src 'none'; frame-ancestors 'none'; sandbox");
      assert.equal(r.headers['x-content-type-options'], 'nosniff');
      assert.equal(r.headers['cache-control'], 'private, no-cache');
    }
    // An access token is no member credential.
    for (const p of ['/api/v1/me', '/api/v1/spaces', `/api/v1/files/${M.fileA.id}/content`, `/api/v1/nodes/${M.fileA.id}`]) {
      assertError(await R('GET', p, { token: u.access_token }), 401, 'unauthorized', `access token on ${p} (${tag})`);
      assertError(await R('GET', p, { headers: { cookie: `coffer_session=${u.access_token}` } }), 401, 'unauthorized', `access token as session cookie on ${p} (${tag})`);
    }
    // The access of link A does not open link B (cookie or bearer), and B's does not open A.
    for (const [how, opts] of [['cookie', viaCookie(u)], ['bearer', viaBearer(u)]]) {
      for (const p of ['info', 'content']) assertError(await R('GET', `/s/${B.token}/${p}`, opts), 401, 'unauthorized', `A's ${how} on B ${p} (${tag})`);
    }
    const ub = await unlockOk(main, B.token, B.code.toLowerCase(), { h1 });
    assert.ok((await R('GET', `/s/${B.token}/content`, viaCookie(ub))).body.equals(M.dataA));
    assertError(await R('GET', `/s/${A.token}/content`, viaBearer(ub)), 401, 'unauthorized', `B's bearer on A (${tag})`);
    assertError(await R('GET', `/s/${A.token}/content`, viaCookie(ub)), 401, 'unauthorized', `B's cookie on A (${tag})`);
  }
});

test('Range and HEAD on /content', async () => {
  const data = bytes(5000, 21);
  const f = await upload(M.alice.c, M.alice.root, 'ranged.bin', data);
  const sh = await mkShare(main, M.alice.token, { node: f.id, permission: 'download' });
  const u = await unlockOk(main, sh.token, sh.code);
  for (const h1 of [false, true]) {
    const tag = h1 ? 'h1' : 'h2';
    for (const [range, a, b] of [['bytes=10-20', 10, 20], ['bytes=4990-', 4990, 4999], ['bytes=-7', 4993, 4999], ['bytes=0-0', 0, 0], ['bytes=4000-9999', 4000, 4999]]) {
      const r = await main.request('GET', `/s/${sh.token}/content`, viaCookie(u, { h1, headers: { range } }));
      assert.equal(r.status, 206, `${range} (${tag}): ${r.text().slice(0, 200)}`);
      assert.equal(r.headers['content-range'], `bytes ${a}-${b}/5000`);
      assert.ok(r.body.equals(data.subarray(a, b + 1)), `${range}: exact bytes`);
    }
    const bad = await main.request('GET', `/s/${sh.token}/content`, viaBearer(u, { h1, headers: { range: 'bytes=5000-5001' } }));
    assertError(bad, 416, 'range_not_satisfiable', `unsatisfiable (${tag})`);
    assert.equal(bad.headers['content-range'], 'bytes */5000');
    const head = await main.request('HEAD', `/s/${sh.token}/content`, viaBearer(u, { h1 }));
    assert.equal(head.status, 200, `HEAD (${tag})`);
    assert.equal(head.body.length, 0, `HEAD has no body (${tag})`);
    assert.equal(Number(head.headers['content-length']), 5000);
    assert.equal(head.headers['content-type'], f.mime);
    const hr = await main.request('HEAD', `/s/${sh.token}/content`, viaCookie(u, { h1, headers: { range: 'bytes=100-199' } }));
    assert.equal(hr.status, 206);
    assert.equal(hr.body.length, 0);
    assert.equal(hr.headers['content-range'], 'bytes 100-199/5000');
  }
});

test('view-only links never give the bytes: /content, /view, Range, HEAD answer 403', async () => {
  const marker = Buffer.from('VIEW-ONLY-SECRET-MARKER-5b1f');
  const data = Buffer.concat([Buffer.from('line one of a view-only text\n'), marker, Buffer.from('\n'), Buffer.from('x'.repeat(300)), Buffer.from('\nend\n')]);
  const f = await upload(M.alice.c, M.alice.root, 'view-only.txt', data);
  assert.equal(f.mime, 'text/plain');
  const sh = await mkShare(main, M.alice.token, { node: f.id, permission: 'view', code: 'ViewOnly99' });
  clearCodes.push('ViewOnly99');
  const u = await unlockOk(main, sh.token, 'viewonly99');
  assert.equal(u.permission, 'view');
  // The file's etag, as a member who may download sees it (the link's own view answers 403).
  const etag = (await main.request('HEAD', `/api/v1/files/${f.id}/content`, { token: M.alice.token })).headers.etag;
  assert.match(etag, /^"[0-9a-f]+"$/);
  for (const h1 of [false, true]) {
    const tag = h1 ? 'h1' : 'h2';
    for (const [how, cred] of [['cookie', viaCookie], ['bearer', viaBearer]]) {
      for (const headers of [{}, { range: 'bytes=0-' }, { range: 'bytes=29-56' }, { range: 'bytes=-10' }, { 'if-range': 'x', range: 'bytes=0-5' },
        { 'if-none-match': etag }, { 'if-range': etag, range: 'bytes=0-5' }]) {
        const what = `view-only GET /content ${JSON.stringify(headers)} by ${how} (${tag})`;
        const r = await main.request('GET', `/s/${sh.token}/content`, cred(u, { h1, headers }));
        assertError(r, 403, 'forbidden', what);
        assertNoFileBytes(r, data, marker, what);
        const h = await main.request('HEAD', `/s/${sh.token}/content`, cred(u, { h1, headers }));
        assert.equal(h.status, 403, `HEAD ${what}`);
        assert.equal(h.body.length, 0, `HEAD ${what}: no body`);
        assertNoFileBytes(h, data, marker, `HEAD ${what}`);
        assert.notEqual(Number(h.headers['content-length']), data.length, `HEAD ${what}: not the file's length`);
      }
    }
    // Nor inline: view-only means pages, never the original (issue 20; pages.test.mjs).
    for (const headers of [{}, { range: 'bytes=0-' }, { 'if-none-match': etag }]) {
      const v = await main.request('GET', `/s/${sh.token}/view`, viaCookie(u, { h1, headers }));
      assertError(v, 403, 'forbidden', `view ${JSON.stringify(headers)} (${tag})`);
      assertNoFileBytes(v, data, marker, `view (${tag})`);
    }
  }
  // Nothing of the original went out: nothing drawn, the link stays active.
  const l = await listed(main, M.alice.token, sh.id);
  assert.equal(l.downloads, 0);
  assert.equal(l.state, 'active');
});

test('download limit: every byte served counts, Range pieces included; then 410 everywhere', async () => {
  const data = bytes(5000, 31);
  const f = await upload(M.alice.c, M.alice.root, 'limited.bin', data);
  const sh = await mkShare(main, M.alice.token, { node: f.id, permission: 'download', max_downloads: 2 });
  assert.equal(sh.max_downloads, 2);
  const u = await unlockOk(main, sh.token, sh.code);
  const left = async () => {
    const r = await main.request('GET', `/s/${sh.token}/info`, viaCookie(u));
    assert.equal(r.status, 200, r.text());
    return r.json().downloads_left;
  };
  assert.equal(await left(), 2);
  // HEAD sends no content: it does not count.
  const head = await main.request('HEAD', `/s/${sh.token}/content`, viaCookie(u));
  assert.equal(head.status, 200);
  assert.equal(await left(), 2, 'HEAD does not count');
  // A full download counts 1.
  const full = await main.request('GET', `/s/${sh.token}/content`, viaCookie(u));
  assert.equal(full.status, 200);
  assert.ok(full.body.equals(data));
  assert.equal(await left(), 1, 'a full download counts');
  assert.equal((await listed(main, M.alice.token, sh.id)).downloads, 1);
  // Range pieces carry bytes of the original: each draws from the budget of 2 × 5000 bytes (the
  // figure is ⌈bytes served / size⌉, so the first piece past one whole download makes it 2).
  let served = 5000;
  for (const [range, n] of [['bytes=10-20', 11], ['bytes=100-', 4900], ['bytes=-50', 50]]) {
    const r = await main.request('GET', `/s/${sh.token}/content`, viaBearer(u, { headers: { range } }));
    assert.equal(r.status, 206, range);
    served += n;
    assert.equal(await left(), 0, `${range} draws ${n} bytes`);
    assert.equal((await listed(main, M.alice.token, sh.id)).bytes_left, 10000 - served, range);
  }
  assert.ok((await main.request('GET', `/s/${sh.token}/content`, viaBearer(u, { headers: { range: 'bytes=10-20' } }))).body.equals(data.subarray(10, 21)));
  // The last 28 bytes of the budget.
  const r0 = await main.request('GET', `/s/${sh.token}/content`, viaBearer(u, { headers: { range: 'bytes=0-27' }, h1: true }));
  assert.equal(r0.status, 206);
  assert.ok(r0.body.equals(data.subarray(0, 28)));
  const l = await listed(main, M.alice.token, sh.id);
  assert.equal(l.downloads, 2);
  assert.equal(l.state, 'download_limit_reached');
  // Exhausted: every route answers 410 download_limit_reached, the page says so.
  for (const h1 of [false, true]) {
    for (const [what, opts] of [['full', {}], ['Range 10-20', { headers: { range: 'bytes=10-20' } }], ['Range 0-9', { headers: { range: 'bytes=0-9' } }]]) {
      const r = await main.request('GET', `/s/${sh.token}/content`, viaCookie(u, { ...opts, h1 }));
      assertError(r, 410, 'download_limit_reached', `${what} after the limit`);
      assertNoFileBytes(r, data, data.subarray(0, 16), what);
    }
    const h = await main.request('HEAD', `/s/${sh.token}/content`, viaCookie(u, { h1 }));
    assert.equal(h.status, 410, 'HEAD after the limit');
    assertError(await main.request('GET', `/s/${sh.token}/info`, viaCookie(u, { h1 })), 410, 'download_limit_reached', 'info after the limit');
    assertError(await main.request('GET', `/s/${sh.token}/view`, viaBearer(u, { h1 })), 410, 'download_limit_reached', 'view after the limit');
    assertError(await main.request('POST', `/s/${sh.token}/unlock`, { h1, body: { code: sh.code } }), 410, 'download_limit_reached', 'unlock after the limit');
    assert410Page(await main.request('GET', `/s/${sh.token}`, { h1 }), 'download_limit_reached', 'page after the limit');
  }
  assert.equal((await listed(main, M.alice.token, sh.id)).downloads, 2, 'nothing more counted');
});

test('download limit: parallel downloads of a one-download link: exactly one gets the bytes', async () => {
  const data = bigBytes(2 * 1024 * 1024 + 777, 41);
  const f = await upload(M.alice.c, M.alice.root, 'burn.bin', data);
  for (let round = 0; round < 2; round++) {
    const sh = await mkShare(main, M.alice.token, { node: f.id, permission: 'download', max_downloads: 1 });
    const u = await unlockOk(main, sh.token, sh.code);
    const reqs = [];
    for (let i = 0; i < 6; i++) {
      const opts = i % 2 ? viaCookie(u, { h1: true }) : viaBearer(u, { newSession: true });
      reqs.push(main.request('GET', `/s/${sh.token}/content`, opts));
    }
    const rs = await Promise.all(reqs);
    const ok = rs.filter((r) => r.status === 200);
    assert.equal(ok.length, 1, `exactly one download (round ${round}): ${rs.map((r) => r.status).join(' ')}`);
    assert.ok(ok[0].body.equals(data), 'the one download has the exact bytes');
    for (const r of rs.filter((x) => x.status !== 200)) {
      assertError(r, 410, 'download_limit_reached', `a parallel download (round ${round})`);
      assert.ok(r.body.length < 1000);
    }
    const l = await listed(main, M.alice.token, sh.id);
    assert.equal(l.downloads, 1);
    assert.equal(l.state, 'download_limit_reached');
  }
});

test('expiry: expires_at as asked; an expired link answers 410 expired (slow)', async (t) => {
  const f = await upload(M.alice.c, M.alice.root, 'short-lived.txt', 'short lived\n');
  const sh = await mkShare(main, M.alice.token, { node: f.id, permission: 'download', expires_in: 60 });
  assert.equal(Date.parse(sh.expires_at) - Date.parse(sh.created_at), 60000);
  assertError(await main.request('POST', '/api/v1/shares', { token: M.alice.token, body: { node: f.id, permission: 'download', expires_in: 0 } }), 400, 'bad_request', 'expires_in 0');
  const tu0 = Date.now();
  const u = await unlockOk(main, sh.token, sh.code);
  const tu1 = Date.now();
  assert.equal(u.expires_at, sh.expires_at, 'an unlock never outlives its link');
  const sc = cookieAttrs([].concat(u.res.headers['set-cookie'])[0]).attrs;
  // The link's remaining lifetime when it was unlocked (between tu0 and tu1; whole seconds).
  const age = Number(sc['max-age']), left = (t) => (Date.parse(sh.expires_at) - t) / 1000;
  if (sc['max-age'] !== undefined) assert.ok(age <= 60 && age <= Math.ceil(left(tu0)) + 1 && age >= Math.floor(left(tu1)) - 1, `Max-Age ${sc['max-age']}`);
  const info = await main.request('GET', `/s/${sh.token}/info`, viaCookie(u));
  assert.equal(info.json().expires_at, sh.expires_at);
  assert.equal((await main.request('GET', `/s/${sh.token}/content`, viaCookie(u))).text(), 'short lived\n');
  if (!process.env.COFFER_SLOW_TESTS) {
    t.skip('set COFFER_SLOW_TESTS=1 to wait for the expiry');
    return;
  }
  await sleep(Math.max(0, Date.parse(sh.expires_at) - Date.now()) + 1500);
  for (const h1 of [false, true]) {
    assertError(await main.request('GET', `/s/${sh.token}/content`, viaCookie(u, { h1 })), 410, 'expired', 'content after expiry');
    assertError(await main.request('GET', `/s/${sh.token}/info`, viaBearer(u, { h1 })), 410, 'expired', 'info after expiry');
    assertError(await main.request('POST', `/s/${sh.token}/unlock`, { h1, body: { code: sh.code } }), 410, 'expired', 'unlock after expiry');
    assert410Page(await main.request('GET', `/s/${sh.token}`, { h1 }), 'expired', 'page after expiry');
  }
  assert.equal((await listed(main, M.alice.token, sh.id)).state, 'expired');
});

// ---- re-checks at the next request -----------------------------------------------------------------

test('revocation mid-session: the next request answers 410 revoked, also with the cookie and the token', async () => {
  const data = bytes(4000, 51);
  const f = await upload(M.alice.c, M.alice.root, 'revoke-me.bin', data);
  const sh = await mkShare(main, M.alice.token, { node: f.id, permission: 'download' });
  const uh2 = await unlockOk(main, sh.token, sh.code);
  const uh1 = await unlockOk(main, sh.token, sh.code, { h1: true });
  // Same HTTP/2 connection throughout (the harness keeps one session).
  assert.ok((await main.request('GET', `/s/${sh.token}/content`, viaCookie(uh2))).body.equals(data));
  assert.ok((await main.request('GET', `/s/${sh.token}/content`, viaBearer(uh1, { h1: true }))).body.equals(data));
  const del = await main.request('DELETE', `/api/v1/shares/${sh.id}`, { token: M.alice.token });
  assert.equal(del.status, 204);
  for (const [u, h1] of [[uh2, false], [uh1, true]]) {
    for (const [how, cred] of [['cookie', viaCookie], ['bearer', viaBearer]]) {
      const r = await main.request('GET', `/s/${sh.token}/content`, cred(u, { h1 }));
      assertError(r, 410, 'revoked', `content by ${how} after revoke`);
      assertNoFileBytes(r, data, data.subarray(0, 16), 'revoked');
      assertError(await main.request('GET', `/s/${sh.token}/content`, cred(u, { h1, headers: { range: 'bytes=100-200' } })), 410, 'revoked', 'Range after revoke');
      assert.equal((await main.request('HEAD', `/s/${sh.token}/content`, cred(u, { h1 }))).status, 410);
      assertError(await main.request('GET', `/s/${sh.token}/info`, cred(u, { h1 })), 410, 'revoked', 'info after revoke');
    }
    assertError(await main.request('POST', `/s/${sh.token}/unlock`, { h1, body: { code: sh.code } }), 410, 'revoked', 'unlock after revoke');
    assert410Page(await main.request('GET', `/s/${sh.token}`, { h1 }), 'revoked', 'page after revoke');
  }
  assert.equal((await listed(main, M.alice.token, sh.id)).state, 'revoked');
  // Revoking again changes nothing; the link stays dead.
  const again = await main.request('DELETE', `/api/v1/shares/${sh.id}`, { token: M.alice.token });
  assert.ok([204, 404].includes(again.status), `second revoke: ${again.status}`);
  assertError(await main.request('GET', `/s/${sh.token}/content`, viaCookie(uh2)), 410, 'revoked', 'still revoked');
});

test('a frozen creator\'s links are suspended; unfreezing alone keeps them so, restore_links brings them back', async () => {
  const data = bytes(2500, 61);
  const f = await upload(M.fred.c, M.fred.root, 'fred.bin', data);
  const sh = await mkShare(main, M.fred.token, { node: f.id, permission: 'download' });
  const u = await unlockOk(main, sh.token, sh.code);
  assert.ok((await main.request('GET', `/s/${sh.token}/content`, viaCookie(u))).body.equals(data));
  const patch = async (status, extra = {}) => {
    const r = await main.request('PATCH', `/api/v1/admin/users/${M.fred.id}`, { token: M.admin.token, body: { status, ...extra } });
    assert.equal(r.status, 200, `${status}: ${r.text()}`);
  };
  await patch('frozen');
  try {
    for (const h1 of [false, true]) {
      assertError(await main.request('GET', `/s/${sh.token}/content`, viaCookie(u, { h1 })), 410, 'suspended', 'content, creator frozen');
      assertError(await main.request('GET', `/s/${sh.token}/content`, viaBearer(u, { h1 })), 410, 'suspended', 'content by bearer, creator frozen');
      assertError(await main.request('GET', `/s/${sh.token}/info`, viaCookie(u, { h1 })), 410, 'suspended', 'info, creator frozen');
      assertError(await main.request('POST', `/s/${sh.token}/unlock`, { h1, body: { code: sh.code } }), 410, 'suspended', 'unlock, creator frozen');
      assert410Page(await main.request('GET', `/s/${sh.token}`, { h1 }), 'suspended', 'page, creator frozen');
    }
  } finally {
    await patch('active');
  }
  // Unfreezing alone revives nothing (issue 17 item 7); the admin restores the links explicitly.
  assertError(await main.request('GET', `/s/${sh.token}/content`, viaCookie(u)), 410, 'suspended', 'unfrozen without restore_links');
  await patch('active', { restore_links: true });
  const back = await main.request('GET', `/s/${sh.token}/content`, viaCookie(u));
  assert.equal(back.status, 200, `after unfreeze: ${back.text().slice(0, 200)}`);
  assert.ok(back.body.equals(data));
  assert.equal((await main.request('GET', `/s/${sh.token}/info`, viaBearer(u))).status, 200);
  const fl = await main.login('fred', pw('fred'));
  M.fred.token = fl.token;
  M.fred.c = main.client(fl.token);
  assert.equal((await listed(main, M.fred.token, sh.id)).state, 'active');
});

test('an offboarded creator\'s links are revoked', async () => {
  const olly = await mkUser(main, M.admin.token, 'olly');
  olly.root = (await olly.c.spaces()).private.root;
  const dir = await mkdir(M.admin.c, M.tenantRoot, 'OllyTeam');
  await putAcl(main, M.admin.token, dir.id, [{ principal: `user:${olly.id}`, level: 'manage' }]);
  const tdata = bytes(900, 65);
  const tf = await upload(M.admin.c, dir.id, 'olly-team.bin', tdata);
  const pdata = bytes(901, 66);
  const pf = await upload(olly.c, olly.root, 'olly-private.bin', pdata);
  const links = [];
  for (const [f, data] of [[tf, tdata], [pf, pdata]]) {
    const sh = await mkShare(main, olly.token, { node: f.id, permission: 'download' });
    const u = await unlockOk(main, sh.token, sh.code);
    assert.ok((await main.request('GET', `/s/${sh.token}/content`, viaCookie(u))).body.equals(data));
    links.push({ sh, u, data });
  }
  const off = await main.request('POST', `/api/v1/admin/users/${olly.id}/offboard`, { token: M.admin.token, body: { transfer_to: M.admin.id } });
  assert.equal(off.status, 200, off.text());
  for (const { sh, u, data } of links) {
    for (const h1 of [false, true]) {
      const r = await main.request('GET', `/s/${sh.token}/content`, viaCookie(u, { h1 }));
      assertError(r, 410, 'revoked', 'content, creator offboarded');
      assertNoFileBytes(r, data, data.subarray(0, 16), 'offboarded');
      assertError(await main.request('GET', `/s/${sh.token}/info`, viaBearer(u, { h1 })), 410, 'revoked', 'info, creator offboarded');
      assertError(await main.request('POST', `/s/${sh.token}/unlock`, { h1, body: { code: sh.code } }), 410, 'revoked', 'unlock, creator offboarded');
      assert410Page(await main.request('GET', `/s/${sh.token}`, { h1 }), 'revoked', 'page, creator offboarded');
    }
  }
  // The tenant-space file passed to admin; olly's link on it shows as revoked to its manager.
  const l = (await main.request('GET', `/api/v1/shares?node=${tf.id}`, { token: M.admin.token })).json().shares;
  assert.deepEqual(l.map((x) => [x.id, x.state]), [[links[0].sh.id, 'revoked']]);
});

test('a creator who loses manage: every link of hers acts revoked', async () => {
  const dir = await mkdir(M.admin.c, M.tenantRoot, 'GinaTeam');
  const data = bytes(3333, 71);
  const f = await upload(M.admin.c, dir.id, 'gina-team.bin', data);
  await putAcl(main, M.admin.token, dir.id, [{ principal: `user:${M.gina.id}`, level: 'manage' }]);
  const dl = await mkShare(main, M.gina.token, { node: f.id, permission: 'download' });
  const vw = await mkShare(main, M.gina.token, { node: f.id, permission: 'view' });
  const ud = await unlockOk(main, dl.token, dl.code);
  const uv = await unlockOk(main, vw.token, vw.code);
  assert.ok((await main.request('GET', `/s/${dl.token}/content`, viaCookie(ud))).body.equals(data));
  assert.equal((await main.request('GET', `/s/${vw.token}/info`, viaCookie(uv))).status, 200);

  // gina keeps only edit: a link is a grant to outsiders, which only manage may make, so both
  // links stop (SECURITY.md "The level rule"); given manage back, they work again.
  await putAcl(main, M.admin.token, dir.id, [{ principal: `user:${M.gina.id}`, level: 'edit' }]);
  assertError(await main.request('GET', `/s/${dl.token}/content`, viaCookie(ud)), 410, 'revoked', 'download link, creator holds edit');
  assertError(await main.request('GET', `/s/${dl.token}/info`, viaBearer(ud)), 410, 'revoked', 'download link info, creator holds edit');
  assert410Page(await main.request('GET', `/s/${dl.token}`), 'revoked', 'download link page, creator holds edit');
  assertError(await main.request('GET', `/s/${vw.token}/info`, viaCookie(uv)), 410, 'revoked', 'view link, creator holds edit');
  await putAcl(main, M.admin.token, dir.id, [{ principal: `user:${M.gina.id}`, level: 'manage' }]);
  assert.equal((await main.request('GET', `/s/${vw.token}/info`, viaCookie(uv))).status, 200, 'manage again: the link works');

  // The grant is removed: nothing she shared works any more.
  await putAcl(main, M.admin.token, dir.id, []);
  for (const h1 of [false, true]) {
    assertError(await main.request('GET', `/s/${dl.token}/content`, viaCookie(ud, { h1 })), 410, 'revoked', 'download link, grant removed');
    assertError(await main.request('GET', `/s/${vw.token}/info`, viaCookie(uv, { h1 })), 410, 'revoked', 'view link, grant removed');
    assertError(await main.request('GET', `/s/${vw.token}/view`, viaBearer(uv, { h1 })), 410, 'revoked', 'view link view, grant removed');
    assertError(await main.request('POST', `/s/${dl.token}/unlock`, { h1, body: { code: dl.code } }), 410, 'revoked', 'unlock, grant removed');
    assert410Page(await main.request('GET', `/s/${vw.token}`, { h1 }), 'revoked', 'page, grant removed');
  }
});

test('a trashed or purged node: its links answer 404', async () => {
  for (const purge of [false, true]) {
    const data = bytes(1200, purge ? 81 : 82);
    const f = await upload(M.alice.c, M.alice.root, `doomed-${purge}.bin`, data);
    const sh = await mkShare(main, M.alice.token, { node: f.id, permission: 'download' });
    const u = await unlockOk(main, sh.token, sh.code);
    assert.ok((await main.request('GET', `/s/${sh.token}/content`, viaCookie(u))).body.equals(data));
    const del = await main.request('DELETE', `/api/v1/nodes/${f.id}${purge ? '?purge=true' : ''}`, { token: M.alice.token });
    assert.equal(del.status, 204);
    const what = purge ? 'purged' : 'trashed';
    for (const h1 of [false, true]) {
      for (const [how, cred] of [['cookie', viaCookie], ['bearer', viaBearer]]) {
        const r = await main.request('GET', `/s/${sh.token}/content`, cred(u, { h1 }));
        assertError(r, 404, 'not_found', `content by ${how}, node ${what}`);
        assertNoFileBytes(r, data, data.subarray(0, 16), what);
        assertError(await main.request('GET', `/s/${sh.token}/info`, cred(u, { h1 })), 404, 'not_found', `info, node ${what}`);
        assertError(await main.request('GET', `/s/${sh.token}/view`, cred(u, { h1 })), 404, 'not_found', `view, node ${what}`);
      }
      assertError(await main.request('POST', `/s/${sh.token}/unlock`, { h1, body: { code: sh.code } }), 404, 'not_found', `unlock, node ${what}`);
      assertPage(await main.request('GET', `/s/${sh.token}`, { h1 }), 404, `page, node ${what}`);
    }
  }
});

test('internal_only: the access token alone is not enough, a member session of the tenant is', async () => {
  const data = bytes(2222, 91);
  const f = await upload(M.alice.c, M.alice.root, 'internal.bin', data);
  const sh = await mkShare(main, M.alice.token, { node: f.id, permission: 'download', internal_only: true, code: 'Inside2024' });
  clearCodes.push('Inside2024');
  assert.equal(sh.internal_only, true);
  // Unlocking needs the member session too: an outsider with the code learns nothing, not even the
  // file's name (it is refused before the code is checked).
  for (const opts of [{}, { headers: { cookie: `coffer_session=${M.carol.token}` } }]) {
    const x = await main.request('POST', `/s/${sh.token}/unlock`, { ...opts, body: { code: 'inside2024' } });
    assertError(x, 401, 'unauthorized', 'unlock of an internal link without a member session');
    assert.ok(!x.text().includes('internal.bin') && x.headers['set-cookie'] === undefined, 'nothing of the file leaks');
  }
  const u = await unlockOk(main, sh.token, 'inside2024', { headers: { cookie: `coffer_session=${M.bob.token}` } });
  const bob2 = await main.login('bob', pw('bob'));
  for (const h1 of [false, true]) {
    const tag = h1 ? 'h1' : 'h2';
    const bad = [
      ['bearer only', viaBearer(u, { h1 })],
      ['cookie only', viaCookie(u, { h1 })],
      ['bearer + another tenant member', viaBearer(u, { h1, headers: { cookie: `coffer_session=${M.carol.token}` } })],
      ['cookies + another tenant member', { h1, headers: { cookie: `coffer_session=${M.carol.token}; ${u.cookie}` } }],
      ['bearer + garbage session', viaBearer(u, { h1, headers: { cookie: 'coffer_session=garbage' } })],
      ['bearer + random session', viaBearer(u, { h1, headers: { cookie: `coffer_session=${randomToken()}` } })],
      ['member session, no access token', { h1, headers: { cookie: `coffer_session=${M.bob.token}` } }],
      ['member session as bearer, no access token', { h1, token: M.bob.token }],
    ];
    for (const [what, opts] of bad) {
      for (const p of ['info', 'content']) assertError(await main.request('GET', `/s/${sh.token}/${p}`, opts), 401, 'unauthorized', `${p}: ${what} (${tag})`);
    }
    const good = [
      ['bearer + member session cookie', viaBearer(u, { h1, headers: { cookie: `coffer_session=${M.bob.token}` } })],
      ['both cookies', { h1, headers: { cookie: `coffer_session=${M.bob.token}; ${u.cookie}` } }],
      ['bearer + the creator\'s session', viaBearer(u, { h1, headers: { cookie: `coffer_session=${M.alice.token}` } })],
    ];
    for (const [what, opts] of good) {
      const r = await main.request('GET', `/s/${sh.token}/content`, opts);
      assert.equal(r.status, 200, `content: ${what} (${tag}): ${r.text().slice(0, 200)}`);
      assert.ok(r.body.equals(data), `exact bytes: ${what}`);
      const i = await main.request('GET', `/s/${sh.token}/info`, opts);
      assert.equal(i.status, 200);
      assert.equal(i.json().internal_only, true);
    }
  }
  // A session that ended no longer counts.
  const withBob2 = viaBearer(u, { headers: { cookie: `coffer_session=${bob2.token}` } });
  assert.equal((await main.request('GET', `/s/${sh.token}/info`, withBob2)).status, 200);
  assert.equal((await main.request('POST', '/api/v1/auth/logout', { token: bob2.token })).status, 204);
  assertError(await main.request('GET', `/s/${sh.token}/info`, withBob2), 401, 'unauthorized', 'after the member logged out');
});

test('folder share: listing and files inside; nothing outside the folder is reachable', async () => {
  const c = M.alice.c;
  const parent = await mkdir(c, M.alice.root, 'Parent');
  const sibling = await upload(c, parent.id, 'sibling.txt', 'sibling of the shared folder\n');
  const sibDir = await mkdir(c, parent.id, 'SibDir');
  const other = await upload(c, sibDir.id, 'other.txt', 'in another folder\n');
  const outside = await upload(c, M.alice.root, 'outside.txt', 'at the root\n');
  const shared = await mkdir(c, parent.id, 'Shared');
  const aData = Buffer.from('alpha file inside the shared folder\n');
  const a = await upload(c, shared.id, 'a.txt', aData);
  const sub = await mkdir(c, shared.id, 'Sub');
  const deep = await mkdir(c, sub.id, 'Deep');
  const deepData = bytes(4096, 101);
  const deepFile = await upload(c, deep.id, 'deep.bin', deepData);

  const sh = await mkShare(main, M.alice.token, { node: shared.id, permission: 'download' });
  const u = await unlockOk(main, sh.token, sh.code);
  assert.deepEqual(u.node, { id: shared.id, type: 'folder', name: 'Shared', size: null, mime: null, modified_at: shared.modified_at });
  const R = (p, h1 = false, extra = {}) => main.request('GET', `/s/${sh.token}${p}`, viaCookie(u, { h1, ...extra }));

  for (const h1 of [false, true]) {
    const tag = h1 ? 'h1' : 'h2';
    const names = async (q) => {
      const r = await R(`/children${q}`, h1);
      assert.equal(r.status, 200, `children${q} (${tag}): ${r.text()}`);
      const j = r.json();
      assert.deepEqual(Object.keys(j).sort(), ['items', 'next_cursor']);
      assert.equal(j.next_cursor, null);
      for (const it of j.items) assert.deepEqual(Object.keys(it).sort(), PUBLIC_NODE_KEYS);
      return j.items.map((x) => `${x.type}:${x.name}:${x.id}`).sort();
    };
    assert.deepEqual(await names(''), [`file:a.txt:${a.id}`, `folder:Sub:${sub.id}`]);
    assert.deepEqual(await names(`?parent=${shared.id}`), [`file:a.txt:${a.id}`, `folder:Sub:${sub.id}`]);
    assert.deepEqual(await names(`?parent=${sub.id}`), [`folder:Deep:${deep.id}`]);
    assert.deepEqual(await names(`?parent=${deep.id}`), [`file:deep.bin:${deepFile.id}`]);
    const items = (await R(`/children?parent=${deep.id}`, h1)).json().items;
    assert.deepEqual(items[0], { id: deepFile.id, type: 'file', name: 'deep.bin', size: 4096, mime: deepFile.mime, modified_at: deepFile.modified_at });
    // Paging works inside the share.
    const p1 = (await R('/children?limit=1', h1)).json();
    assert.equal(p1.items.length, 1);
    assert.match(p1.next_cursor, /^[0-9a-f]+$/);
    const p2 = (await R(`/children?limit=1&cursor=${p1.next_cursor}`, h1)).json();
    assert.equal(p2.items.length, 1);
    assert.deepEqual([p1.items[0].name, p2.items[0].name].sort(), ['Sub', 'a.txt']);

    // Files deep inside: exact bytes, Range, HEAD, view.
    const d = await R(`/files/${deepFile.id}/content`, h1);
    assert.equal(d.status, 200, `deep content (${tag}): ${d.text().slice(0, 200)}`);
    assert.ok(d.body.equals(deepData));
    assert.match(d.headers['content-disposition'], /^attachment; filename="deep\.bin"/);
    const dr = await R(`/files/${deepFile.id}/content`, h1, { headers: { range: 'bytes=1000-1999' } });
    assert.equal(dr.status, 206);
    assert.ok(dr.body.equals(deepData.subarray(1000, 2000)));
    const dh = await main.request('HEAD', `/s/${sh.token}/files/${deepFile.id}/content`, viaBearer(u, { h1 }));
    assert.equal(dh.status, 200);
    assert.equal(dh.body.length, 0);
    assert.equal(Number(dh.headers['content-length']), 4096);
    const av = await R(`/files/${a.id}/view`, h1);
    assert.equal(av.status, 200);
    assert.ok(av.body.equals(aData));
    assert.ok((await main.request('GET', `/s/${sh.token}/files/${a.id}/content`, viaBearer(u, { h1 }))).body.equals(aData));

    // Everything outside answers 404, exactly like a random id.
    const ref = {};
    for (const [k, p] of [['children', (id) => `/children?parent=${id}`], ['content', (id) => `/files/${id}/content`], ['view', (id) => `/files/${id}/view`]]) {
      ref[k] = assertError(await R(p(randomId()), h1), 404, 'not_found', `${k} random (${tag})`);
      const ids = [['sibling file', sibling.id], ['parent folder', parent.id], ['sibling folder', sibDir.id], ['file in another folder', other.id],
        ['file at the root', outside.id], ['private root', M.alice.root], ["another space's file", M.teamFile.id], ["another user's file", M.fileA.id],
        ['tenant root', M.tenantRoot], ['malformed id', 'zz'], ["another tenant's root", M.carol.root]];
      for (const [what, id] of ids) {
        const r = await R(p(id), h1);
        const j = assertError(r, 404, 'not_found', `${k}: ${what} (${tag})`);
        assert.deepEqual(j, ref[k], `${k}: ${what}: the same answer as a random id`);
        assert.ok(!r.text().includes(id), `${k}: ${what}: the id is not echoed`);
      }
    }
    const hs = await main.request('HEAD', `/s/${sh.token}/files/${sibling.id}/content`, viaCookie(u, { h1 }));
    assert.equal(hs.status, 404, 'HEAD of a sibling');
  }
  // Moving a file out of the folder takes it out of the share; moving it back brings it back.
  const mv = async (to) => {
    const r = await main.request('PATCH', `/api/v1/nodes/${deepFile.id}`, { token: M.alice.token, body: { parent: to } });
    assert.equal(r.status, 200, r.text());
  };
  await mv(parent.id);
  assertError(await R(`/files/${deepFile.id}/content`), 404, 'not_found', 'moved out');
  assert.deepEqual((await R(`/children?parent=${deep.id}`)).json().items, []);
  await mv(deep.id);
  assert.ok((await R(`/files/${deepFile.id}/content`)).body.equals(deepData), 'moved back');
  // A trashed subfolder takes its content with it.
  assert.equal((await main.request('DELETE', `/api/v1/nodes/${sub.id}`, { token: M.alice.token })).status, 204);
  assertError(await R(`/children?parent=${sub.id}`), 404, 'not_found', 'trashed subfolder listing');
  assertError(await R(`/files/${deepFile.id}/content`), 404, 'not_found', 'file under a trashed subfolder');
  assert.deepEqual((await R('/children')).json().items.map((x) => x.name), ['a.txt']);

  // A file link: the folder routes do not take file ids.
  const fsh = await mkShare(main, M.alice.token, { node: a.id, permission: 'download' });
  const fu = await unlockOk(main, fsh.token, fsh.code);
  for (const id of [a.id, deepFile.id, sibling.id]) {
    for (const p of ['content', 'view']) assertError(await main.request('GET', `/s/${fsh.token}/files/${id}/${p}`, viaCookie(fu)), 404, 'not_found', `file link, files/${p}`);
  }
  assert.ok((await main.request('GET', `/s/${fsh.token}/content`, viaCookie(fu))).body.equals(aData));

  // A view-only folder link: listing works, content and the inline original never.
  const vsh = await mkShare(main, M.alice.token, { node: shared.id, permission: 'view' });
  const vu = await unlockOk(main, vsh.token, vsh.code);
  assert.deepEqual((await main.request('GET', `/s/${vsh.token}/children`, viaCookie(vu))).json().items.map((x) => x.name), ['a.txt']);
  for (const h1 of [false, true]) {
    for (const headers of [{}, { range: 'bytes=0-' }, { range: 'bytes=5-15' }]) {
      const what = `view-only folder link, files/{id}/content ${JSON.stringify(headers)} (${h1 ? 'h1' : 'h2'})`;
      const r = await main.request('GET', `/s/${vsh.token}/files/${a.id}/content`, viaBearer(vu, { h1, headers }));
      assertError(r, 403, 'forbidden', what);
      assertNoFileBytes(r, aData, aData.subarray(0, 16), what);
      const h = await main.request('HEAD', `/s/${vsh.token}/files/${a.id}/content`, viaCookie(vu, { h1, headers }));
      assert.equal(h.status, 403, `HEAD ${what}`);
      assert.equal(h.body.length, 0);
      assertNoFileBytes(h, aData, aData.subarray(0, 16), `HEAD ${what}`);
    }
    // Nor the original inline: a view-only link gets pages only (pages.test.mjs).
    const v = await main.request('GET', `/s/${vsh.token}/files/${a.id}/view`, viaCookie(vu, { h1 }));
    assertError(v, 403, 'forbidden', `view-only folder link, files/{id}/view (${h1 ? 'h1' : 'h2'})`);
    assertNoFileBytes(v, aData, aData.subarray(0, 16), 'view-only folder link, view');
  }
});

// ---- brute force -------------------------------------------------------------------------------------

test('per-link limit: 20 wrong codes lock out guessing, not the recipient who unlocked; the creator is alerted', async () => {
  const data = bytes(6000, 111);
  const f = await upload(M.alice.c, M.alice.root, 'attacked.bin', data);
  const sh = await mkShare(main, M.alice.token, { node: f.id, permission: 'download', code: 'Guard1Code' });
  clearCodes.push('Guard1Code');
  const other = await mkShare(main, M.alice.token, { node: f.id, permission: 'download' });
  const recipient = await unlockOk(main, sh.token, 'guard1code');
  const alertsOf = async () => {
    const r = await main.request('GET', '/api/v1/me/alerts', { token: M.alice.token });
    assert.equal(r.status, 200);
    return r.json().alerts.filter((a) => a.kind === 'alert.share_bruteforce');
  };
  assert.deepEqual(await alertsOf(), [], 'no alert before the attack');

  for (let i = 0; i < 20; i++) {
    const r = await main.request('POST', `/s/${sh.token}/unlock`, { h1: i % 2 === 1, body: { code: `Wrong${String(i).padStart(3, '0')}` } });
    assertError(r, 403, 'wrong_code', `wrong code ${i + 1}`);
    // The recipient keeps working during the attack.
    if (i % 5 === 4) assert.ok((await main.request('GET', `/s/${sh.token}/content`, viaCookie(recipient))).body.equals(data), `recipient during the attack (${i + 1})`);
  }
  // The 21st attempt, even with the right code, is refused.
  for (const [what, code, h1] of [['the right code', 'Guard1Code', false], ['the right code (h1)', 'guard1code', true], ['a wrong code', 'Wrong999', false]]) {
    const r = await main.request('POST', `/s/${sh.token}/unlock`, { h1, body: { code } });
    assertError(r, 429, 'rate_limited', `after 20 wrong codes: ${what}`);
    assertRetryAfter(r, 3600, what);
    assert.equal(r.headers['set-cookie'], undefined);
  }
  // The recipient who unlocked before: exact bytes, by cookie and by bearer, on both protocols.
  for (const h1 of [false, true]) {
    for (const cred of [viaCookie, viaBearer]) {
      const r = await main.request('GET', `/s/${sh.token}/content`, cred(recipient, { h1 }));
      assert.equal(r.status, 200, `recipient after the attack: ${r.text().slice(0, 200)}`);
      assert.ok(r.body.equals(data));
    }
  }
  assert.equal((await main.request('GET', `/s/${sh.token}/info`, viaCookie(recipient))).status, 200);
  // The page itself is still served (no hard lock).
  assertPage(await main.request('GET', `/s/${sh.token}`), 200, 'page during the attack');
  // Another link is not affected by this link's budget.
  assertError(await main.request('POST', `/s/${other.token}/unlock`, { body: { code: 'WRONG9' } }), 403, 'wrong_code', 'another link, wrong code');
  const ou = await unlockOk(main, other.token, other.code);
  assert.ok((await main.request('GET', `/s/${other.token}/content`, viaCookie(ou))).body.equals(data));

  // The creator's alert (written in the background), once.
  const alerts = await poll(alertsOf, (a) => a.length >= 1);
  assert.equal(alerts.length, 1, `one alert.share_bruteforce: ${JSON.stringify(alerts)}`);
  assert.match(alerts[0].id, HEX32);
  assert.match(alerts[0].at, TIME);
  assert.equal(alerts[0].detail.share, sh.id);
  for (const n of ['bob', 'admin']) {
    const r = await main.request('GET', '/api/v1/me/alerts', { token: M[n].token });
    assert.ok(!r.json().alerts.some((a) => a.kind === 'alert.share_bruteforce'), `${n} gets no alert`);
  }
  // Whether an attempt raises an alert is decided when it is answered, and the alert's provenance
  // event is queued then: once the queue is empty, a second one would be in the log (an event to
  // wait for, where a pause stood).
  const depth = async () => Number(/^coffer_audit_queue_depth (\d+)$/m.exec((await main.request('GET', '/metrics')).text())[1]);
  assert.equal(await poll(depth, (d) => d === 0), 0, 'the provenance queue drains');
  const logged = await main.request('GET', `/api/v1/audit?action=alert.share_bruteforce&actor=share:${sh.id}`, { token: M.admin.token });
  assert.equal(logged.status, 200, logged.text());
  assert.equal(logged.json().events.length, 1, 'no second alert for refused attempts');
  assert.equal((await alertsOf()).length, 1, 'no second alert for refused attempts');
});

test('aux server: shares.code_length 6; per-address limit 5 wrong codes, then 429 for every link', async () => {
  aux = new Server({ config: { shares: { code_length: 6 } } });
  servers.push(aux);
  await aux.start();
  const al = await aux.login();
  const root = (await aux.client(al.token).spaces()).private.root;
  const data = bytes(1500, 121);
  const f = await upload(aux.client(al.token), root, 'aux.bin', data);
  const codes = [];
  for (let i = 0; i < 10; i++) codes.push((await mkShare(aux, al.token, { node: f.id, permission: 'download' })).code);
  for (const c of codes) {
    assert.equal(c.length, 6, `code ${c}`);
    for (const ch of c) assert.ok(ALPHABET.includes(ch), `code ${c}: ${ch}`);
  }
  const custom = await mkShare(aux, al.token, { node: f.id, permission: 'download', code: 'Ab12' });
  assert.equal(custom.code, 'Ab12', 'a custom code keeps its length');

  const P1 = await mkShare(aux, al.token, { node: f.id, permission: 'download' });
  const P2 = await mkShare(aux, al.token, { node: f.id, permission: 'download' });
  const early = await unlockOk(aux, P1.token, P1.code);
  for (let i = 0; i < 5; i++) {
    assertError(await aux.request('POST', `/s/${P1.token}/unlock`, { h1: i === 2, body: { code: `BAD${i}XX` } }), 403, 'wrong_code', `wrong code ${i + 1} from 127.0.0.1`);
  }
  for (const [what, token, code, h1] of [['the right code', P1.token, P1.code, false], ['the right code, lower case, h1', P1.token, P1.code.toLowerCase(), true],
    ['another link, right code', P2.token, P2.code, false], ['a wrong code', P1.token, 'BAD9XX', false]]) {
    const r = await aux.request('POST', `/s/${token}/unlock`, { h1, body: { code } });
    assertError(r, 429, 'rate_limited', `6th attempt from 127.0.0.1: ${what}`);
    assertRetryAfter(r, 900, what);
    assert.equal(r.headers['set-cookie'], undefined);
  }
  // Whoever unlocked before keeps access from the same address.
  const got = await aux.request('GET', `/s/${P1.token}/content`, viaCookie(early));
  assert.equal(got.status, 200);
  assert.ok(got.body.equals(data));
  // Another address is not affected (the link itself had only 5 failures).
  const r2 = await reqFrom(aux, '127.0.0.2', 'POST', `/s/${P1.token}/unlock`, { body: { code: P1.code } });
  assert.equal(r2.status, 200, `another address: ${r2.status} ${r2.text()}`);
  const r3 = await reqFrom(aux, '127.0.0.2', 'POST', `/s/${P2.token}/unlock`, { body: { code: P2.code.toLowerCase() } });
  assert.equal(r3.status, 200, r3.text());
});

test('aux server: the per-link limit holds across addresses (20 wrong codes from 4 addresses)', async () => {
  const al = await aux.login();
  const root = (await aux.client(al.token).spaces()).private.root;
  const data = bytes(1700, 131);
  const f = await upload(aux.client(al.token), root, 'aux-link.bin', data);
  const Q = await mkShare(aux, al.token, { node: f.id, permission: 'download' });
  const Q2 = await mkShare(aux, al.token, { node: f.id, permission: 'download' });
  // 127.0.0.1 spent its own budget in the previous test: the early recipient comes from 127.0.0.9.
  const eu = await reqFrom(aux, '127.0.0.9', 'POST', `/s/${Q.token}/unlock`, { body: { code: Q.code } });
  assert.equal(eu.status, 200, `early unlock: ${eu.text()}`);
  const early = { cookie: `coffer_share=${eu.json().access_token}` };
  const addrs = ['127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6'];
  for (const ip of addrs) {
    for (let i = 0; i < 5; i++) {
      const r = await reqFrom(aux, ip, 'POST', `/s/${Q.token}/unlock`, { body: { code: `X${ip.slice(-1)}${i}YYY` } });
      assertError(r, 403, 'wrong_code', `wrong code ${i + 1} from ${ip}`);
    }
  }
  // A fresh address with the right code: the link's budget is spent.
  const r = await reqFrom(aux, '127.0.0.7', 'POST', `/s/${Q.token}/unlock`, { body: { code: Q.code } });
  assertError(r, 429, 'rate_limited', 'fresh address after 20 wrong codes on the link');
  assertRetryAfter(r, 3600, 'per link');
  // The same fresh address may unlock another link; the early recipient keeps downloading.
  const ok = await reqFrom(aux, '127.0.0.7', 'POST', `/s/${Q2.token}/unlock`, { body: { code: Q2.code } });
  assert.equal(ok.status, 200, ok.text());
  const got = await reqFrom(aux, '127.0.0.8', 'GET', `/s/${Q.token}/content`, { headers: { cookie: early.cookie } });
  assert.equal(got.status, 200);
  assert.ok(got.body.equals(data));
  const alerts = await poll(async () => (await aux.request('GET', '/api/v1/me/alerts', { token: al.token })).json().alerts
    .filter((a) => a.kind === 'alert.share_bruteforce' && a.detail.share === Q.id), (a) => a.length >= 1);
  assert.equal(alerts.length, 1, 'the creator is alerted');
});

// ---- at rest -----------------------------------------------------------------------------------------

test('codes and link tokens are never stored in clear', async () => {
  await main.stop();
  assert.ok(secrets.length >= 40, `secrets collected: ${secrets.length}`);
  const codes = [...new Set(clearCodes.flatMap((c) => [c, c.toUpperCase(), c.toLowerCase()]))];
  for (const c of codes) assert.equal(dirContains(main.dataDir, Buffer.from(c)), null, `the code ${c} is on disk`);
  for (const s of secrets) {
    assert.equal(dirContains(main.dataDir, Buffer.from(s)), null, 'a link or access token in text form is on disk');
    assert.equal(dirContains(main.dataDir, Buffer.from(s, 'base64url')), null, "a link or access token's raw bytes are on disk");
  }
  // Cluster mode (lib/harness.mjs): the store is a database and a RADOS pool; neither holds them.
  if (main.storeContains) {
    const found = main.storeContains([...codes, ...secrets, ...secrets.map((s) => Buffer.from(s, 'base64url'))]);
    assert.equal(found, null, 'a code or token in the database or the pool');
  }
  const log = fs.readFileSync(path.join(main.dir, 'access.log'), 'utf8');
  assert.ok(log.includes('/s/'), 'recipient requests are logged');
  for (const s of secrets) assert.ok(!log.includes(s), 'a token in the access log');
  for (const c of codes) assert.ok(!log.includes(c), 'a code in the access log');
});
