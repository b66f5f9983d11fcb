// Provenance (issue 5; SPEC §5 "Provenance"; API.md "Provenance"), proved through the real server.
//
// - One file touched by its owner (olga), a granted viewer (vic) and an anonymous link recipient:
//   the admin's query returns every event, newest first, with the right actor, address, user agent,
//   result, range, bytes sent and completion; every filter (node, actor in its three forms, action,
//   ip, since/until in each time form, limit + cursor) returns exactly what the whole log holds for
//   it; the node's activity route answers managers only. A download the client cancels is recorded
//   as incomplete with the bytes actually sent.
// - CSV: the header row, RFC 4180 quoting read back by Python's standard csv module, one row per
//   JSON event with the same cells, and formula injection neutralised.
// - Authorization: members 403, auditors 200, anonymous 401; another tenant's admin sees nothing of
//   this tenant.
// - Durability: a SIGKILL in the middle of a download leaves its "began" event (bytes_sent null).
// - Integrity: `coffer audit verify` passes on the untouched log (also with retention configured)
//   and fails, naming the event, after each direct edit of the `audit` column family (cf-dbtool on
//   copies of the stopped server's directory). The retention purge itself is covered by
//   tests/unit/test_audit.c (it needs events older than the one-day minimum retention).
// - Bulk-download alert: fires at the policy's threshold (files, then bytes) and not below it,
//   once per window, per actor; Range requests not starting at byte 0 and inline views do not count.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http2 from 'node:http2';
import path from 'node:path';
import { Server, cli, bigBytes, coffer, curl, dbtool, clusterDb, clusterPsql } from './lib/harness.mjs';

const CLUSTER = !!process.env.COFFER_TEST_CLUSTER;

const HEX32 = /^[0-9a-f]{32}$/;
const HEX64 = /^[0-9a-f]{64}$/;
const TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const EVENT_KEYS = ['action', 'actor', 'at', 'detail', 'hash', 'ip', 'node', 'result', 'seq', 'share', 'tenant', 'user_agent'];
const CSV_HEADER = ['seq', 'at', 'action', 'actor_type', 'actor_id', 'actor_name', 'node_id', 'node_name', 'node_path',
  'share', 'ip', 'user_agent', 'result', 'range', 'bytes_sent', 'completed', 'detail', 'hash'];
const UA_OLGA = 'OwnerUA/2';
const UA_VIC = 'VicBrowser/1';
const UA_RECIPIENT = 'Recipient/3';
const UA_ADMIN = 'AdminConsole/9';
const SHARE_CODE = 'Pq7Rs8Tu';
const FORMULA_NAME = '=HYPERLINK("x","y")'; // names may not hold '/'
const ACME_PASSWORD = 'acme-boss-password-1';
const pw = (n) => `pw-${n}-Provenance-2024`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const randomId = () => crypto.randomBytes(16).toString('hex');

const servers = [];
const copies = []; // tampered copies of a server directory
after(async () => {
  let first = null;
  for (const s of servers) {
    try { await s.stop(); } catch (e) { first = first || e; }
    s.cleanup();
  }
  for (const d of copies) fs.rmSync(d, { recursive: true, force: true });
  if (first) throw first;
});

// ---- helpers ---------------------------------------------------------------------------------------

function assertError(r, status, code, what = '') {
  assert.equal(r.status, status, `${what}: ${r.status} ${r.text()}`);
  const j = r.json();
  assert.deepEqual(Object.keys(j).sort(), ['error', 'message'], what);
  assert.equal(j.error, code, what);
  return j;
}

/** A client that sends every request with its bearer token and its own User-Agent. */
function agent(server, token, ua) {
  return {
    token,
    ua,
    req(method, p, opts = {}) {
      return server.request(method, p, { ...opts, token, headers: { 'user-agent': ua, ...(opts.headers || {}) } });
    },
    async json(method, p, body, status = 200) {
      const r = await this.req(method, p, body === undefined ? {} : { body });
      assert.equal(r.status, status, `${method} ${p}: ${r.status} ${r.text()}`);
      return r.status === 204 ? null : r.json();
    },
    /** GET /api/v1/audit?qs → {events, next_cursor} (asserts 200). */
    async audit(qs = '') {
      const r = await this.req('GET', `/api/v1/audit${qs ? `?${qs}` : ''}`);
      assert.equal(r.status, 200, `audit ?${qs}: ${r.status} ${r.text()}`);
      assert.match(r.headers['content-type'], /^application\/json/);
      const j = r.json();
      assert.deepEqual(Object.keys(j).sort(), ['events', 'next_cursor'], `audit ?${qs}`);
      return j;
    },
    /** Every event a query selects, following next_cursor (limit 1000 per page). */
    async auditAll(qs = '') {
      const out = [];
      let cursor = null;
      for (let page = 0; page < 100; page++) {
        const j = await this.audit([qs, 'limit=1000', cursor ? `cursor=${cursor}` : ''].filter(Boolean).join('&'));
        out.push(...j.events);
        if (j.next_cursor === null) return out;
        cursor = j.next_cursor;
      }
      throw new Error('audit: too many pages');
    },
  };
}

async function login(server, username, password, ua, tenant) {
  const r = await server.request('POST', '/api/v1/auth/login', {
    body: { username, password, ...(tenant ? { tenant } : {}) }, headers: { 'user-agent': ua },
  });
  assert.equal(r.status, 200, `login ${username}: ${r.status} ${r.text()}`);
  return agent(server, r.json().token, ua);
}

/** Polls fn until it returns a truthy value (or throws with the last value after ms). */
async function waitFor(fn, what, ms = 120000) { // a generous deadline: it only ends a wait that failed
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Waits until every transfer among the events a query selects has its end record. */
async function settled(client, qs) {
  return waitFor(async () => {
    const evs = await client.auditAll(qs);
    return evs.every((e) => !e.transfer || e.transfer.bytes_sent !== null) ? evs : null;
  }, `the transfers of ?${qs} to end`);
}

/** Structural checks that hold for every event. */
function assertEventShape(e, tenantId, what) {
  const transfer = ['file.view', 'file.download', 'share.view', 'share.download'].includes(e.action);
  assert.deepEqual(Object.keys(e).sort(), [...EVENT_KEYS, ...(transfer ? ['transfer'] : [])].sort(), `${what}: keys of ${e.action}`);
  assert.ok(Number.isInteger(e.seq) && e.seq > 0, `${what}: seq`);
  assert.match(e.at, TIME, `${what}: at`);
  assert.equal(e.tenant, tenantId, `${what}: tenant`);
  assert.match(e.hash, HEX64, `${what}: hash`);
  assert.ok(['ok', 'denied', 'error'].includes(e.result), `${what}: result`);
  assert.ok(['user', 'share', 'anonymous', 'system'].includes(e.actor.type), `${what}: actor.type`);
  assert.ok(e.detail !== null && typeof e.detail === 'object' && !Array.isArray(e.detail), `${what}: detail is an object`);
}

/** Newest first: seq strictly descending, at not increasing. */
function assertNewestFirst(evs, what) {
  for (let i = 1; i < evs.length; i++) {
    assert.ok(evs[i - 1].seq > evs[i].seq, `${what}: seq ${evs[i - 1].seq} before ${evs[i].seq}`);
    assert.ok(Date.parse(evs[i - 1].at) >= Date.parse(evs[i].at), `${what}: at ${evs[i - 1].at} before ${evs[i].at}`);
  }
}

/** GET over HTTP/2 that cancels the stream (RST_STREAM CANCEL) at the first DATA frame. */
function cancelledDownload(server, token, urlPath, ua) {
  return new Promise((resolve, reject) => {
    const session = http2.connect(server.url, { rejectUnauthorized: false });
    session.on('error', () => {});
    const timer = setTimeout(() => { session.destroy(); reject(new Error('cancelled download: timeout')); }, 30000);
    const req = session.request({ ':method': 'GET', ':path': urlPath, authorization: `Bearer ${token}`, 'user-agent': ua });
    let status, received = 0, cancelled = false;
    req.on('response', (h) => { status = h[':status']; });
    req.on('data', (c) => {
      received += c.length;
      if (!cancelled) { cancelled = true; req.close(http2.constants.NGHTTP2_CANCEL); }
    });
    req.on('error', () => {});
    req.on('close', () => { clearTimeout(timer); session.close(); resolve({ status, received, cancelled }); });
    req.end();
  });
}

/** Python's standard csv module (strict mode) reads the text: rows of cells. */
function pythonCsv(text) {
  const py = 'import csv, io, json, sys\n' +
    "data = sys.stdin.buffer.read().decode('utf-8')\n" +
    "rows = list(csv.reader(io.StringIO(data, newline=''), strict=True))\n" +
    'sys.stdout.write(json.dumps(rows))\n';
  const r = spawnSync('python3', ['-c', py], { input: text, maxBuffer: 1 << 28 });
  assert.equal(r.status, 0, `python csv failed: ${r.stderr}`);
  return JSON.parse(r.stdout.toString('utf8'));
}

/** What a CSV cell must hold for a value: empty for null, formula starts neutralised with '. */
function csvCell(v) {
  if (v === null || v === undefined) return '';
  const s = String(v);
  return /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
}

function expectedRow(e) {
  const t = e.transfer;
  return [String(e.seq), e.at, e.action, e.actor.type, e.actor.id, e.actor.name, e.node && e.node.id,
    e.node && e.node.name, e.node && e.node.path, e.share, e.ip, e.user_agent, e.result, t ? t.range : null,
    t && t.bytes_sent !== null ? String(t.bytes_sent) : null, t ? String(t.completed) : null].map(csvCell);
}

// ---- cf-dbtool ---------------------------------------------------------------------------------------

function tool(args, input) {
  const r = spawnSync(dbtool, args, { input, maxBuffer: 1 << 28, timeout: 60000 });
  if (r.status !== 0) throw new Error(`cf-dbtool ${args.slice(1, 4).join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout.toString();
}
// In cluster mode (lib/harness.mjs) the column family is the table coffer_<cf> (k bytea, v bytea) of
// the server's database, edited with psql instead (a copied directory gets a copy of the database).
const sql = (dir, q) => clusterPsql(q, clusterDb(dir));
function dbKeys(dir, cf) {
  if (CLUSTER) return sql(dir, `SELECT encode(k, 'hex') FROM coffer_${cf} ORDER BY k`).split('\n').filter(Boolean);
  return tool([dir, 'keys', cf]).split('\n').filter(Boolean).map((l) => l.split(' ')[0]);
}
function dbGet(dir, cf, key) {
  if (CLUSTER) return Buffer.from(sql(dir, `SELECT encode(v, 'hex') FROM coffer_${cf} WHERE k = '\\x${key}'`).trim(), 'hex');
  return Buffer.from(tool([dir, 'get', cf, key]).trim(), 'hex');
}
function dbPut(dir, cf, key, val) {
  if (CLUSTER) sql(dir, `INSERT INTO coffer_${cf} VALUES ('\\x${key}', '\\x${val.toString('hex')}') ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v`);
  else tool([dir, 'put', cf, key, '-'], val.toString('hex'));
}
function dbDelete(dir, cf, key) {
  if (CLUSTER) sql(dir, `DELETE FROM coffer_${cf} WHERE k = '\\x${key}'`);
  else tool([dir, 'delete', cf, key]);
}
const evKey = (tenantHex, seq) => tenantHex + seq.toString(16).padStart(16, '0');
/** The seqs of one tenant's events in the audit column family, ascending. */
function auditSeqs(dataDir, tenantHex) {
  return dbKeys(dataDir, 'audit').filter((k) => k.startsWith(tenantHex)).map((k) => {
    assert.equal(k.length, 48, `audit key ${k} is tenant (16) ‖ seq (8)`);
    return parseInt(k.slice(32), 16);
  });
}

/** `coffer audit verify`: {status, stdout, stderr}; a crash or spawn failure is an error of its own. */
function verify(configPath, extra = []) {
  const args = ['audit', 'verify', ...extra, '-c', configPath];
  const r = spawnSync(coffer, args, { encoding: 'utf8', timeout: 120000 });
  if (r.error || r.signal) throw new Error(`coffer ${args.join(' ')}: ${r.error || `killed by ${r.signal}`}\n${r.stderr}`);
  if (/ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:/.test(r.stderr)) throw new Error(`sanitizer report from coffer ${args.join(' ')}:\n${r.stderr}`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

// ---- the main server ---------------------------------------------------------------------------------

let main;
let admin, olga, vic, mia, audrey, boss;
let users = {}; // username → user
let defaultTenant, acmeTenant, tenantRoot, projects;
let file; // {id, data}
let big; // {id, size}
let share; // {id, token}

before(async () => {
  main = new Server({ config: { limits: { max_request_body_bytes: '64MiB' } } });
  servers.push(main);
  await main.start();
  await main.stop();
  let r = cli(['tenant', 'create', 'acme', '-c', main.configPath]);
  assert.equal(r.status, 0, r.stderr);
  r = cli(['user', 'add', '--tenant', 'acme', '--username', 'boss', '--role', 'admin', '-c', main.configPath],
    { COFFER_USER_PASSWORD: ACME_PASSWORD });
  assert.equal(r.status, 0, r.stderr);
  await main.start();

  admin = await login(main, 'admin', 'admin-password-1', UA_ADMIN);
  const me = await admin.json('GET', '/api/v1/me');
  defaultTenant = me.tenant.id;
  users.admin = me;
  for (const [username, role] of [['olga', 'member'], ['vic', 'member'], ['mia', 'member'], ['audrey', 'auditor'],
    ['bulka', 'member'], ['bulkb', 'member'], ['bulkc', 'member'], ['bulkd', 'member']]) {
    users[username] = await admin.json('POST', '/api/v1/admin/users', { username, password: pw(username), role }, 201);
  }
  olga = await login(main, 'olga', pw('olga'), UA_OLGA);
  vic = await login(main, 'vic', pw('vic'), UA_VIC);
  mia = await login(main, 'mia', pw('mia'), 'MiaUA/1');
  audrey = await login(main, 'audrey', pw('audrey'), 'AuditorUA/1');
  boss = await login(main, 'boss', ACME_PASSWORD, 'BossUA/1', 'acme');
  acmeTenant = (await boss.json('GET', '/api/v1/me')).tenant.id;
  assert.notEqual(acmeTenant, defaultTenant);

  tenantRoot = (await admin.json('GET', '/api/v1/spaces')).tenant.root;
  projects = await admin.json('POST', '/api/v1/folders', { parent: tenantRoot, name: 'Projects' }, 201);
  // olga manages Projects (creating in it would give her no more than her level on it: she grants
  // and shares the files she uploads there, so the admin grants her manage).
  await admin.json('PUT', `/api/v1/nodes/${projects.id}/acl`, { entries: [{ principal: `user:${users.olga.id}`, level: 'manage' }] });
});

// ---- 1. one file, three kinds of actor ---------------------------------------------------------------

test('owner, granted viewer and link recipient: the admin sees each event exactly', async (t) => {
  const data = Buffer.from(Array.from({ length: 150 }, (_, i) => `Quarterly report, line ${i}: figures are fine.\n`).join(''));
  let r = await olga.req('POST', `/api/v1/files?parent=${projects.id}&name=report.txt`, { body: data });
  assert.equal(r.status, 201, r.text());
  file = { id: r.json().id, data };
  // download: the inline view of the original needs it (view-only callers get pages: pages.test.mjs).
  await olga.json('PUT', `/api/v1/nodes/${file.id}/acl`, { entries: [{ principal: `user:${users.vic.id}`, level: 'download' }] });

  r = await vic.req('GET', `/api/v1/files/${file.id}/view`);
  assert.equal(r.status, 200, r.text());
  assert.ok(r.body.equals(data), 'vic sees the exact text');
  r = await olga.req('GET', `/api/v1/files/${file.id}/content`);
  assert.equal(r.status, 200);
  assert.ok(r.body.equals(data));
  r = await olga.req('GET', `/api/v1/files/${file.id}/content`, { headers: { range: 'bytes=0-9' } });
  assert.equal(r.status, 206);
  assert.ok(r.body.equals(data.subarray(0, 10)));

  const sh = await olga.json('POST', '/api/v1/shares', { node: file.id, permission: 'download', code: SHARE_CODE }, 201);
  share = { id: sh.id, token: new URL(sh.url).pathname.split('/')[2] };
  const recipient = (p, opts = {}) => main.request(opts.method || 'GET', `/s/${share.token}${p}`,
    { ...opts, headers: { 'user-agent': UA_RECIPIENT, ...(opts.headers || {}) } });
  r = await recipient('/unlock', { method: 'POST', body: { code: 'Wrong123' } });
  assertError(r, 403, 'wrong_code', 'wrong code');
  r = await recipient('/unlock', { method: 'POST', body: { code: SHARE_CODE } });
  assert.equal(r.status, 200, r.text());
  const access = r.json().access_token;
  r = await recipient('/content', { headers: { authorization: `Bearer ${access}` } });
  assert.equal(r.status, 200);
  assert.ok(r.body.equals(data), 'the recipient gets the exact bytes');

  const events = await settled(admin, `node=${file.id}`);
  const node = { id: file.id, name: 'report.txt', path: '/Projects/report.txt', space: 'tenant' };
  const user = (u) => ({ type: 'user', id: users[u].id, name: u });
  const shareActor = { type: 'share', id: share.id, name: null };
  const whole = { range: null, bytes_sent: data.length, completed: true };
  const expected = [
    { action: 'share.download', actor: shareActor, share: share.id, user_agent: UA_RECIPIENT, result: 'ok', transfer: whole },
    { action: 'share.unlock', actor: shareActor, share: share.id, user_agent: UA_RECIPIENT, result: 'ok' },
    { action: 'share.unlock_failed', actor: shareActor, share: share.id, user_agent: UA_RECIPIENT, result: 'denied' },
    { action: 'share.create', actor: user('olga'), share: share.id, user_agent: UA_OLGA, result: 'ok' },
    { action: 'file.download', actor: user('olga'), share: null, user_agent: UA_OLGA, result: 'ok', transfer: { range: 'bytes=0-9', bytes_sent: 10, completed: true } },
    { action: 'file.download', actor: user('olga'), share: null, user_agent: UA_OLGA, result: 'ok', transfer: whole },
    { action: 'file.view', actor: user('vic'), share: null, user_agent: UA_VIC, result: 'ok', transfer: whole },
    { action: 'acl.change', actor: user('olga'), share: null, user_agent: UA_OLGA, result: 'ok' },
    { action: 'file.upload', actor: user('olga'), share: null, user_agent: UA_OLGA, result: 'ok' },
  ];
  await t.test('the node query: every event, newest first, each field', () => {
    assert.deepEqual(events.map((e) => e.action), expected.map((e) => e.action), 'the actions, newest first');
    assertNewestFirst(events, 'node query');
    assert.equal(new Set(events.map((e) => e.hash)).size, events.length, 'every hash differs');
    events.forEach((e, i) => assertEventShape(e, defaultTenant, `event ${i} (${e.action})`));
    for (const e of events) {
      if (!e.transfer) continue;
      assert.match(e.transfer.ended_at, TIME, `${e.action}: transfer.ended_at`);
      assert.ok(Date.parse(e.transfer.ended_at) >= Date.parse(e.at), `${e.action}: ended_at ${e.transfer.ended_at} before at ${e.at}`);
    }
    // All fields of all events at once, so that one diff shows every difference.
    const project = (e) => ({
      action: e.action, actor: e.actor, ip: e.ip, user_agent: e.user_agent, result: e.result, share: e.share, node: e.node,
      ...(e.transfer ? { transfer: { range: e.transfer.range, bytes_sent: e.transfer.bytes_sent, completed: e.transfer.completed } } : {}),
    });
    assert.deepEqual(events.map(project), expected.map((x) => ({ ip: '127.0.0.1', node, ...x })).map(project));
  });

  const all = await admin.auditAll();
  const ids = (evs) => evs.map((e) => e.seq);
  await t.test('the whole log: newest first, each node event once, nothing from another tenant', () => {
    assertNewestFirst(all, 'whole log');
    all.forEach((e, i) => assertEventShape(e, defaultTenant, `log event ${i}`));
    assert.deepEqual(ids(all.filter((e) => e.node && e.node.id === file.id)), ids(events));
    assert.ok(all.some((e) => e.action === 'auth.login' && e.actor.name === 'vic' && e.user_agent === UA_VIC), "vic's login");
  });

  await t.test('actor filter: username, user:ID, share:ID', async () => {
    const vics = all.filter((e) => e.actor.type === 'user' && e.actor.id === users.vic.id);
    assert.deepEqual(vics.map((e) => e.action), ['file.view', 'auth.login']);
    assert.deepEqual(await admin.auditAll('actor=vic'), vics);
    assert.deepEqual(await admin.auditAll(`actor=user:${users.vic.id}`), vics);
    const olgas = all.filter((e) => e.actor.type === 'user' && e.actor.id === users.olga.id);
    assert.deepEqual(await admin.auditAll('actor=olga'), olgas);
    assert.ok(olgas.length >= 6);
    const shares = all.filter((e) => e.actor.type === 'share' && e.actor.id === share.id);
    assert.deepEqual(shares.map((e) => e.action), ['share.download', 'share.unlock', 'share.unlock_failed']);
    assert.deepEqual(await admin.auditAll(`actor=share:${share.id}`), shares);
    assert.deepEqual((await admin.audit('actor=nobody')).events, [], 'unknown username');
    assert.deepEqual((await admin.audit(`actor=user:${randomId()}`)).events, [], 'unknown user id');
    assert.deepEqual((await admin.audit(`actor=share:${randomId()}`)).events, [], 'unknown share id');
    assert.deepEqual((await admin.audit(`actor=user:${share.id}`)).events, [], 'a share id is not a user id');
  });

  await t.test('action filter (comma list) and ip filter', async () => {
    const transfers = events.filter((e) => ['file.download', 'file.view'].includes(e.action));
    assert.equal(transfers.length, 3);
    assert.deepEqual(await admin.auditAll(`node=${file.id}&action=file.download,file.view`), transfers);
    assert.deepEqual(await admin.auditAll('action=share.unlock_failed'), all.filter((e) => e.action === 'share.unlock_failed'));
    assert.deepEqual(await admin.auditAll('action=file.upload,acl.change,share.create'),
      all.filter((e) => ['file.upload', 'acl.change', 'share.create'].includes(e.action)));
    assert.deepEqual((await admin.audit('action=no.such')).events, []);
    assert.deepEqual(await admin.auditAll(`node=${file.id}&ip=127.0.0.1`), events);
    assert.deepEqual((await admin.audit('ip=10.0.0.1')).events, [], 'a non-matching ip');
    assert.deepEqual((await admin.audit(`node=${file.id}&ip=127.0.0.10`)).events, [], 'a prefix is not a match');
  });

  await t.test('since and until (inclusive; RFC 3339, date and ms forms)', async () => {
    for (const q of ['until=2000-01-01T00:00:00Z', 'until=946684800000', 'until=2000-01-01', 'since=2999-01-01',
      'since=2999-01-01T00:00:00.000Z', 'since=32472144000000']) {
      const j = await admin.audit(q);
      assert.deepEqual(j.events, [], q);
      assert.equal(j.next_cursor, null, q);
    }
    const lo = events[7].at, hi = events[1].at; // inclusive bounds at two events' own times
    const want = events.filter((e) => Date.parse(e.at) >= Date.parse(lo) && Date.parse(e.at) <= Date.parse(hi));
    assert.ok(want.length >= 7 && want.length <= 9);
    assert.deepEqual(await admin.auditAll(`node=${file.id}&since=${Date.parse(lo)}&until=${encodeURIComponent(hi)}`), want, 'ms and RFC 3339 with ms');
    assert.deepEqual(await admin.auditAll(`node=${file.id}&since=${encodeURIComponent(lo)}&until=${Date.parse(hi)}`), want);
    const secLo = new Date(Math.floor(Date.parse(lo) / 1000) * 1000).toISOString().replace('.000Z', 'Z');
    const wantSec = events.filter((e) => Date.parse(e.at) >= Date.parse(secLo));
    assert.deepEqual(await admin.auditAll(`node=${file.id}&since=${secLo}`), wantSec, 'RFC 3339 without fraction');
    assert.deepEqual(await admin.auditAll(`node=${file.id}&since=${lo.slice(0, 10)}`), events.filter((e) => e.at >= lo.slice(0, 10)), 'a date');
    assert.deepEqual(await admin.auditAll(`node=${file.id}&until=${Date.parse(events[8].at)}`),
      events.filter((e) => Date.parse(e.at) <= Date.parse(events[8].at)), 'until the oldest event includes it');
  });

  await t.test('malformed queries answer 400', async () => {
    for (const q of ['since=yesterday', 'until=2026-13-01T00:00:00Z', 'since=2026-01-01T00:00:00', 'since=2026-01-01T00:00:00+02:00',
      'until=2026-1-1', 'since=', 'limit=0', 'limit=1001', 'limit=x', 'cursor=abc', 'cursor=0', 'node=xyz', 'format=xml',
      `node=${file.id}&actor=vic`, 'action=a,,b', 'action=,']) {
      const r = await admin.req('GET', `/api/v1/audit?${q}`);
      assertError(r, 400, 'bad_request', q);
    }
  });

  await t.test('limit 2 and the cursor walk every event once', async () => {
    const seen = [];
    let cursor = null, pages = 0;
    for (;;) {
      const j = await admin.audit(`node=${file.id}&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      pages++;
      assert.ok(j.events.length <= 2);
      seen.push(...j.events);
      if (j.next_cursor === null) break;
      assert.equal(typeof j.next_cursor, 'string');
      assert.equal(j.events.length, 2, 'only the last page is short');
      cursor = j.next_cursor;
      assert.ok(pages < 20);
    }
    assert.equal(pages, 5, '9 events in pages of 2');
    assert.deepEqual(seen, events, 'no repeats, no gaps, same order');
    const first = await admin.audit('limit=3');
    assert.equal(first.events.length, 3);
    assert.deepEqual(first.events, all.slice(0, 3));
    const second = await admin.audit(`limit=3&cursor=${first.next_cursor}`);
    assert.deepEqual(second.events, all.slice(3, 6));
  });

  await t.test('the node activity route: managers only', async () => {
    const j = await olga.json('GET', `/api/v1/files/${file.id}/activity`);
    assert.deepEqual(j, { events, next_cursor: null }, 'the owner (manage) sees the same events');
    assert.deepEqual(await admin.json('GET', `/api/v1/files/${file.id}/activity`), { events, next_cursor: null }, 'a tenant admin');
    assertError(await vic.req('GET', `/api/v1/files/${file.id}/activity`), 403, 'forbidden', 'vic (download, not manage)');
    assertError(await mia.req('GET', `/api/v1/files/${file.id}/activity`), 404, 'not_found', 'mia (no access)');
    assertError(await audrey.req('GET', `/api/v1/files/${file.id}/activity`), 404, 'not_found', 'an auditor has no node access');
    const page = await olga.json('GET', `/api/v1/files/${file.id}/activity?limit=4`);
    assert.deepEqual(page.events, events.slice(0, 4));
    assert.equal(typeof page.next_cursor, 'string');
    assert.deepEqual((await admin.json('GET', `/api/v1/files/${projects.id}/activity?action=folder.create`)).events.map((e) => e.action),
      ['folder.create'], 'folders too (the admin manages the tenant space)');
    assert.equal((await olga.req('GET', `/api/v1/files/${projects.id}/activity`)).status, 200, 'olga manages the folder');
    assertError(await vic.req('GET', `/api/v1/files/${projects.id}/activity`), 404, 'not_found', 'vic has no access to the folder');
  });
});

test('a download the client cancels is recorded as incomplete, with the bytes sent', async () => {
  const size = 8 << 20;
  const data = bigBytes(size, 5);
  let r = await olga.req('POST', `/api/v1/files?parent=${projects.id}&name=big.bin`, { body: data });
  assert.equal(r.status, 201, r.text());
  big = { id: r.json().id, size };
  const got = await cancelledDownload(main, olga.token, `/api/v1/files/${big.id}/content`, UA_OLGA);
  assert.equal(got.status, 200);
  assert.ok(got.cancelled && got.received > 0 && got.received < size, `received ${got.received}`);
  const evs = await waitFor(async () => {
    const j = await admin.audit(`node=${big.id}&action=file.download`);
    return j.events.length === 1 && j.events[0].transfer.bytes_sent !== null ? j.events : null;
  }, 'the end record of the cancelled download', 4000);
  const e = evs[0];
  assert.deepEqual(e.actor, { type: 'user', id: users.olga.id, name: 'olga' });
  assert.equal(e.user_agent, UA_OLGA);
  assert.equal(e.transfer.range, null);
  assert.equal(e.transfer.completed, false, 'completed: false');
  assert.ok(e.transfer.bytes_sent < size, `bytes_sent ${e.transfer.bytes_sent} < ${size}`);
  assert.ok(e.transfer.bytes_sent >= got.received, `bytes_sent ${e.transfer.bytes_sent} ≥ received ${got.received}`);
  assert.match(e.transfer.ended_at, TIME);
  assert.deepEqual(e.node, { id: big.id, name: 'big.bin', path: '/Projects/big.bin', space: 'tenant' });
});

// ---- 2. CSV ----------------------------------------------------------------------------------------

test('CSV export: header, RFC 4180 quoting read by Python csv, the same events as JSON, no formulas', async (t) => {
  let r = await olga.req('POST', `/api/v1/files?parent=${projects.id}&name=${encodeURIComponent(FORMULA_NAME)}`, { body: 'formula bait\n' });
  assert.equal(r.status, 201, r.text());
  const formula = r.json();
  assert.equal(formula.name, FORMULA_NAME);
  await olga.json('POST', '/api/v1/folders', { parent: projects.id, name: '+cmd' }, 201);
  r = await olga.req('GET', `/api/v1/files/${formula.id}/content`, { headers: { 'user-agent': '@evil-agent' } });
  assert.equal(r.status, 200);
  r = await olga.req('GET', `/api/v1/files/${formula.id}/content`, { headers: { 'user-agent': '-dash, "quoted" agent' } });
  assert.equal(r.status, 200);
  await settled(admin, `node=${formula.id}`);

  await t.test('the CSV answer is valid HTTP: HTTP/1.1 (Node, curl) and HTTP/2 (curl) read it', async () => {
    let h1;
    await assert.doesNotReject(async () => { h1 = await main.request('GET', '/api/v1/audit?format=csv', { h1: true, token: admin.token }); },
      'Node\'s HTTP/1.1 parser accepts the response');
    assert.equal(h1.status, 200);
    assert.equal(h1.headers['content-disposition'], 'attachment; filename="provenance.csv"');
    for (const v of ['--http1.1', '--http2']) {
      const c = curl([v, '-D', '-', '-o', '/dev/null', '-H', `Authorization: Bearer ${admin.token}`, `${main.url}/api/v1/audit?format=csv`]);
      assert.equal(c.status, 0, `curl ${v}: exit ${c.status} ${c.stderr}`);
      assert.match(c.stdout.toString(), /\r\ncontent-disposition: attachment; filename="provenance\.csv"\r\n/i, `curl ${v}`);
    }
  });

  r = await admin.req('GET', '/api/v1/audit?format=csv');
  assert.equal(r.status, 200, r.text());
  assert.match(r.headers['content-type'], /^text\/csv(;|$)/);
  assert.equal(r.headers['x-next-cursor'], undefined, 'everything fits: no cursor');
  const text = r.text();
  assert.ok(text.startsWith(`${CSV_HEADER.join(',')}\r\n`), 'the exact header row, CRLF');
  assert.ok(text.endsWith('\r\n'), 'CRLF after the last row');
  assert.ok(!/[^\r]\n/.test(text.replace(/"(?:[^"]|"")*"/g, '')), 'outside quoted cells every line ends in CRLF');
  const rows = pythonCsv(text);
  assert.deepEqual(rows[0], CSV_HEADER);
  const body = rows.slice(1);
  // The same events as JSON, up to the newest one the CSV holds.
  const newest = Number(body[0][0]);
  const json = await admin.auditAll(`cursor=${newest + 1}`);
  await t.test('Content-Disposition: attachment', () => {
    assert.equal(r.headers['content-disposition'], 'attachment; filename="provenance.csv"');
  });
  await t.test('one row per JSON event, every cell as expected', () => {
    assert.equal(body.length, json.length, 'as many rows as events');
    body.forEach((row, i) => {
      const e = json[i];
      assert.equal(row.length, 18, `row ${i}: 18 cells`);
      assert.deepEqual(row.slice(0, 16), expectedRow(e), `row ${i} (seq ${e.seq}, ${e.action})`);
      assert.deepEqual(JSON.parse(row[16]), e.detail, `row ${i}: detail`);
      assert.equal(row[17], e.hash, `row ${i}: hash`);
    });
  });
  await t.test('formula injection is neutralised', () => {
    const f = body.filter((row) => row[6] === formula.id);
    assert.ok(f.length >= 3, 'upload and two downloads of the formula file');
    for (const row of f) assert.equal(row[7], `'${FORMULA_NAME}`, `node_name of ${row[2]}`);
    assert.ok(text.includes(`,"'=HYPERLINK(""x"",""y"")",`), 'quoted, quotes doubled, apostrophe first');
    assert.ok(body.some((row) => row[2] === 'folder.create' && row[7] === "'+cmd"), 'the +cmd folder');
    assert.ok(body.some((row) => row[11] === "'@evil-agent"), 'a user agent starting with @');
    assert.ok(body.some((row) => row[11] === `'-dash, "quoted" agent`), 'a user agent starting with -, with comma and quotes');
    for (const row of rows) for (const cell of row) assert.ok(!/^[=+\-@\t\r]/.test(cell), `cell ${JSON.stringify(cell)} starts like a formula`);
  });
  await t.test('Accept: text/csv, filters and X-Next-Cursor', async () => {
    const a = await admin.req('GET', `/api/v1/audit?node=${file.id}`, { headers: { accept: 'text/csv' } });
    assert.equal(a.status, 200);
    assert.match(a.headers['content-type'], /^text\/csv(;|$)/);
    const nodeEvents = await admin.auditAll(`node=${file.id}`);
    const nodeRows = pythonCsv(a.text());
    assert.deepEqual(nodeRows[0], CSV_HEADER);
    assert.deepEqual(nodeRows.slice(1).map((row) => row.slice(0, 16)), nodeEvents.map(expectedRow));
    const p = await admin.req('GET', '/api/v1/audit?format=csv&limit=3');
    const pj = await admin.audit('limit=3');
    assert.equal(p.headers['x-next-cursor'], pj.next_cursor);
    assert.deepEqual(pythonCsv(p.text()).slice(1).map((row) => row.slice(0, 16)), pj.events.map(expectedRow));
    assertError(await admin.req('GET', '/api/v1/audit?format=csv&since=never'), 400, 'bad_request', 'CSV with a bad query');
  });
});

// ---- 3. who may query ------------------------------------------------------------------------------

test('authorization: members 403, auditors 200, anonymous 401, other tenants see nothing', async () => {
  assertError(await mia.req('GET', '/api/v1/audit'), 403, 'forbidden', 'a member');
  assertError(await mia.req('GET', '/api/v1/audit?format=csv'), 403, 'forbidden', 'a member, CSV');
  assertError(await mia.req('GET', `/api/v1/audit?node=${file.id}`), 403, 'forbidden', 'a member, node');
  assertError(await olga.req('GET', '/api/v1/audit'), 403, 'forbidden', 'a member who owns files');
  assertError(await main.request('GET', '/api/v1/audit'), 401, 'unauthorized', 'anonymous');
  assertError(await main.request('GET', '/api/v1/audit', { token: 'x'.repeat(43) }), 401, 'unauthorized', 'a bogus token');

  const mine = await admin.auditAll();
  const seen = await audrey.auditAll(`cursor=${mine[0].seq + 1}`);
  assert.deepEqual(seen, mine, 'an auditor sees what the admin sees');
  assert.equal((await audrey.req('GET', '/api/v1/audit?format=csv')).status, 200);

  const theirs = await boss.auditAll();
  assert.ok(theirs.length >= 1);
  for (const e of theirs) {
    assertEventShape(e, acmeTenant, `acme event ${e.seq}`);
    assert.ok(!e.node || e.node.id !== file.id, 'no node of tenant default');
    assert.ok(!Object.values(users).some((u) => u.id === e.actor.id), 'no actor of tenant default');
  }
  assert.ok(theirs.some((e) => e.action === 'auth.login' && e.actor.name === 'boss' && e.user_agent === 'BossUA/1'), "boss's own login");
  const blob = JSON.stringify(theirs);
  for (const needle of ['report.txt', 'olga', file.id, share.id, UA_RECIPIENT]) assert.ok(!blob.includes(needle), `acme's log holds ${needle}`);
  assert.deepEqual(await boss.audit(`node=${file.id}`), { events: [], next_cursor: null }, "node = tenant default's file");
  assert.deepEqual((await boss.audit(`actor=user:${users.olga.id}`)).events, []);
  assert.deepEqual((await boss.audit('actor=olga')).events, []);
  assert.deepEqual((await boss.audit(`actor=share:${share.id}`)).events, []);
  const csv = pythonCsv((await boss.req('GET', '/api/v1/audit?format=csv')).text());
  assert.equal(csv.length, theirs.length + 1);
  assertError(await boss.req('GET', `/api/v1/files/${file.id}/activity`), 404, 'not_found', "acme's admin on default's file");
  assert.ok(!mine.some((e) => e.tenant !== defaultTenant), "default's log holds no acme event");
  assert.ok(!mine.some((e) => e.actor.name === 'boss'), "default's log holds nothing by acme's admin");
});

// ---- 4. bulk-download alert ------------------------------------------------------------------------

// Cluster mode: requests alternate between the two nodes, so the alert at the threshold proves that
// the nodes count in one shared window (src/api/audit.c over storage/coord.c cf_coord_window).

test('bulk-download alert: at the threshold, not below, once per window, per actor', async (t) => {
  const bulk = await admin.json('POST', '/api/v1/folders', { parent: tenantRoot, name: 'Bulk' }, 201);
  await admin.json('PUT', `/api/v1/nodes/${bulk.id}/acl`, { entries: [{ principal: 'tenant', level: 'download' }] });
  const files = [];
  for (let i = 1; i <= 5; i++) {
    const r = await admin.req('POST', `/api/v1/files?parent=${bulk.id}&name=f${i}.txt`, { body: `${String(i).repeat(999)}\n` });
    assert.equal(r.status, 201, r.text());
    assert.equal(r.json().size, 1000);
    files.push(r.json().id);
  }
  const policy = await admin.json('PATCH', '/api/v1/admin/policy', { bulk_download_alert: { files: 3, bytes: 1000000000, window: 3600 } });
  assert.deepEqual(policy.bulk_download_alert, { files: 3, bytes: 1000000000, window: 3600 });
  const bulka = await login(main, 'bulka', pw('bulka'), 'BulkA/1');
  const bulkb = await login(main, 'bulkb', pw('bulkb'), 'BulkB/1');
  const bulkc = await login(main, 'bulkc', pw('bulkc'), 'BulkC/1');
  const bulkd = await login(main, 'bulkd', pw('bulkd'), 'BulkD/1');

  const alerts = async (u) => (await admin.auditAll(`actor=user:${users[u].id}&action=alert.bulk_download`));
  /** Downloads (or views) and waits for its end record: an alert it caused is written before that. */
  const fetch = async (client, u, id, { range, view } = {}) => {
    const before = (await admin.auditAll(`actor=user:${users[u].id}&action=file.download,file.view`)).length;
    const r = await client.req('GET', `/api/v1/files/${id}/${view ? 'view' : 'content'}`, range ? { headers: { range } } : {});
    assert.equal(r.status, range ? 206 : 200, r.text());
    await waitFor(async () => {
      const evs = await admin.auditAll(`actor=user:${users[u].id}&action=file.download,file.view`);
      return evs.length === before + 1 && evs[0].transfer.bytes_sent !== null;
    }, `the end of ${u}'s transfer`);
  };

  await t.test('files threshold 3: two downloads no alert, the third one alert, the fourth none more', async () => {
    await fetch(bulka, 'bulka', files[0]);
    await fetch(bulka, 'bulka', files[1]);
    assert.deepEqual(await alerts('bulka'), [], 'no alert below the threshold (2 of 3)');
    await fetch(bulka, 'bulka', files[2]);
    const a = await alerts('bulka');
    assert.equal(a.length, 1, 'one alert at the threshold');
    assert.equal(a[0].action, 'alert.bulk_download');
    assert.deepEqual(a[0].actor, { type: 'user', id: users.bulka.id, name: 'bulka' });
    assert.equal(a[0].ip, '127.0.0.1');
    assert.equal(a[0].result, 'ok');
    assert.equal(a[0].node, null);
    assert.equal(a[0].detail.files, 3);
    assert.equal(a[0].detail.bytes, 3000);
    await fetch(bulka, 'bulka', files[3]);
    await fetch(bulka, 'bulka', files[4]);
    assert.equal((await alerts('bulka')).length, 1, 'once per window');
  });

  await t.test('another user is counted separately; Range requests not at byte 0 do not count', async () => {
    for (const id of files.slice(0, 4)) await fetch(bulkb, 'bulkb', id, { range: 'bytes=5-9' });
    assert.deepEqual(await alerts('bulkb'), [], "4 ranges from byte 5 are no downloads (and bulka's count is not bulkb's)");
    await fetch(bulkb, 'bulkb', files[0]);
    await fetch(bulkb, 'bulkb', files[1]);
    assert.deepEqual(await alerts('bulkb'), [], 'two whole downloads: below the threshold');
    await fetch(bulkb, 'bulkb', files[2]);
    const a = await alerts('bulkb');
    assert.equal(a.length, 1, 'the third whole download: the alert');
    assert.deepEqual(a[0].actor, { type: 'user', id: users.bulkb.id, name: 'bulkb' });
    assert.equal(a[0].detail.files, 3);
    assert.equal(a[0].detail.bytes, 3000);
    assert.equal((await alerts('bulka')).length, 1, "bulka's alert is still the only one of bulka");
  });

  await t.test('bytes threshold 3000: 2000 bytes no alert, 3000 bytes alert', async () => {
    const p = await admin.json('PATCH', '/api/v1/admin/policy', { bulk_download_alert: { files: 1000, bytes: 3000, window: 3600 } });
    assert.deepEqual(p.bulk_download_alert, { files: 1000, bytes: 3000, window: 3600 });
    await fetch(bulkc, 'bulkc', files[0]);
    await fetch(bulkc, 'bulkc', files[1]);
    assert.deepEqual(await alerts('bulkc'), [], '2000 of 3000 bytes');
    await fetch(bulkc, 'bulkc', files[2]);
    const a = await alerts('bulkc');
    assert.equal(a.length, 1, '3000 bytes reach the threshold');
    assert.deepEqual(a[0].actor, { type: 'user', id: users.bulkc.id, name: 'bulkc' });
    assert.equal(a[0].detail.bytes, 3000);
    assert.equal(a[0].detail.files, 3);
  });

  await t.test('inline views are not downloads', async () => {
    await admin.json('PATCH', '/api/v1/admin/policy', { bulk_download_alert: { files: 3, bytes: 1000000000, window: 3600 } });
    for (const id of files.slice(0, 4)) await fetch(bulkd, 'bulkd', id, { view: true });
    assert.deepEqual(await alerts('bulkd'), [], 'four views of whole files raise no bulk-download alert');
  });
});

// ---- 5. integrity: verify, tampering ---------------------------------------------------------------

test('audit verify while the server runs', () => {
  const r = verify(main.configPath);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^ok: \d+ events\n$/);
});

test('audit verify on the stopped server, then every kind of tampering is found and named', async (t) => {
  const sample = (await admin.audit('limit=5')).events;
  await main.stop();
  const defHex = defaultTenant, acmeHex = acmeTenant;
  assert.match(defHex, HEX32);
  const seqs = auditSeqs(main.dataDir, defHex);
  const acmeSeqs = auditSeqs(main.dataDir, acmeHex);
  const total = dbKeys(main.dataDir, 'audit').length;
  assert.equal(total, seqs.length + acmeSeqs.length, 'every audit key belongs to one of the two tenants');
  assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1), 'default: seqs 1..N without gaps');
  assert.ok(seqs.length > 40, `${seqs.length} events`);

  await t.test('untouched: ok with the exact count', () => {
    let r = verify(main.configPath);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `ok: ${total} events\n`);
    assert.equal(r.stderr, '');
    r = verify(main.configPath, ['--tenant', 'default']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `ok: ${seqs.length} events\n`);
    r = verify(main.configPath, ['--tenant', 'acme']);
    assert.equal(r.stdout, `ok: ${acmeSeqs.length} events\n`);
    r = verify(main.configPath, ['--tenant', 'nosuch']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /nosuch/);
  });

  await t.test("each event's hash is its chain MAC in the audit column family", () => {
    for (const e of sample) {
      const v = dbGet(main.dataDir, 'audit', evKey(defHex, e.seq));
      assert.equal(v.subarray(0, 32).toString('hex'), e.hash, `event ${e.seq}`);
    }
  });

  const last = seqs[seqs.length - 1];
  const mid = Math.floor(seqs.length / 2);
  /** A fresh copy of the stopped server's directory, edited by fn, then verified. */
  const tampered = (name, fn) => {
    const dir = `${main.dir}-copy-${name}`;
    copies.push(dir);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.cpSync(main.dir, dir, { recursive: true });
    fn(path.join(dir, 'data'));
    return verify(path.join(dir, 'coffer.yaml'));
  };
  const assertNamed = (r, tenant, seq, what) => {
    assert.equal(r.status, 1, `${what}: exit 1 (stdout ${r.stdout}, stderr ${r.stderr})`);
    assert.equal(r.stdout, '', `${what}: no ok line`);
    assert.match(r.stderr, new RegExp(`^coffer: audit: tenant ${tenant}: event ${seq}: \\S.*\\n$`), `${what}: names event ${seq}`);
  };

  await t.test('a deleted middle event', () => {
    assertNamed(tampered('delete', (d) => dbDelete(d, 'audit', evKey(defHex, mid))), 'default', mid, 'delete');
  });
  await t.test('one byte of the sealed record altered', () => {
    assertNamed(tampered('alter', (d) => {
      const v = dbGet(d, 'audit', evKey(defHex, mid));
      v[40] ^= 0x01;
      dbPut(d, 'audit', evKey(defHex, mid), v);
    }), 'default', mid, 'alter record');
  });
  await t.test('one byte of the MAC altered', () => {
    assertNamed(tampered('mac', (d) => {
      const v = dbGet(d, 'audit', evKey(defHex, mid + 1));
      v[7] ^= 0x80;
      dbPut(d, 'audit', evKey(defHex, mid + 1), v);
    }), 'default', mid + 1, 'alter MAC');
  });
  await t.test('two events swapped', () => {
    assertNamed(tampered('swap', (d) => {
      const a = dbGet(d, 'audit', evKey(defHex, mid - 2)), b = dbGet(d, 'audit', evKey(defHex, mid + 3));
      dbPut(d, 'audit', evKey(defHex, mid - 2), b);
      dbPut(d, 'audit', evKey(defHex, mid + 3), a);
    }), 'default', mid - 2, 'swap');
  });
  await t.test('the last event deleted (truncation)', () => {
    assertNamed(tampered('truncate', (d) => dbDelete(d, 'audit', evKey(defHex, last))), 'default', last, 'truncate');
  });
  await t.test('a copy of an event inserted past the head', () => {
    assertNamed(tampered('insert', (d) => dbPut(d, 'audit', evKey(defHex, last + 1), dbGet(d, 'audit', evKey(defHex, mid)))),
      'default', last + 1, 'insert');
  });
  await t.test('the chain head altered', () => {
    const r = tampered('head', (d) => {
      const k = `${defHex}68`; // tenant ‖ 'h'
      const v = dbGet(d, 'audit_meta', k);
      assert.equal(v.length, 72);
      v[20] ^= 0x01;
      dbPut(d, 'audit_meta', k, v);
    });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /^coffer: audit: tenant default: event \d+: \S.*\n$/);
  });
  await t.test("tampering with acme's chain names acme; default still verifies on its own", () => {
    const dir = `${main.dir}-copy-acme`;
    const r = tampered('acme', (d) => dbDelete(d, 'audit', evKey(acmeHex, acmeSeqs[acmeSeqs.length - 1])));
    assertNamed(r, 'acme', acmeSeqs[acmeSeqs.length - 1], 'acme truncated');
    const ok = verify(path.join(dir, 'coffer.yaml'), ['--tenant', 'default']);
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(ok.stdout, `ok: ${seqs.length} events\n`);
  });
  await t.test('the original is still intact', () => {
    const r = verify(main.configPath);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `ok: ${total} events\n`);
  });
});

// ---- 6. durability: SIGKILL in the middle of a download ---------------------------------------------

test('SIGKILL mid-download: the began event survives; verify passes with retention configured', async () => {
  const dur = new Server({ config: { limits: { max_request_body_bytes: '64MiB' }, audit: { retention: '1d' } } });
  servers.push(dur);
  await dur.start();
  let a = await login(dur, 'admin', 'admin-password-1', UA_ADMIN);
  const root = (await a.json('GET', '/api/v1/spaces')).private.root;
  const size = 40 << 20;
  let r = await a.req('POST', `/api/v1/files?parent=${root}&name=huge.bin`, { body: bigBytes(size, 9) });
  assert.equal(r.status, 201, r.text());
  const id = r.json().id;

  const out = path.join(dur.dir, 'partial.bin');
  const c = spawn('curl', ['-sk', '--http2', '--limit-rate', '5M', '-A', 'DurableCurl/1', '-H', `Authorization: Bearer ${a.token}`,
    '-o', out, `${dur.url}/api/v1/files/${id}/content`], { stdio: 'ignore' });
  const curlDone = new Promise((res) => c.on('exit', (code) => res(code)));
  try {
    // Killed mid-transfer: once a good part (1 MiB of 40) has arrived, an event where a pause was.
    await waitFor(() => fs.existsSync(out) && fs.statSync(out).size >= 1 << 20, 'the first MiB of the download', 120000);
    await dur.kill();
  } finally {
    const code = await Promise.race([curlDone, sleep(5000).then(() => { c.kill('SIGKILL'); return 'killed'; })]);
    assert.notEqual(code, 0, 'curl cannot have finished');
  }
  const partial = fs.statSync(out).size;
  assert.ok(partial > 0 && partial < size, `curl got ${partial} bytes`);

  await dur.start();
  a = await login(dur, 'admin', 'admin-password-1', UA_ADMIN);
  const evs = await a.auditAll(`node=${id}`);
  assert.deepEqual(evs.map((e) => e.action), ['file.download', 'file.upload']);
  const e = evs[0];
  assert.deepEqual(e.actor, { type: 'user', id: (await a.json('GET', '/api/v1/me')).id, name: 'admin' });
  assert.equal(e.user_agent, 'DurableCurl/1');
  assert.equal(e.ip, '127.0.0.1');
  assert.equal(e.result, 'ok');
  assert.deepEqual(e.transfer, { range: null, bytes_sent: null, completed: false }, 'began, never ended');

  // Logging goes on after the restart: a whole download now ends normally.
  r = await a.req('GET', `/api/v1/files/${id}/content`, { headers: { range: 'bytes=0-99' } });
  assert.equal(r.status, 206);
  const after2 = await waitFor(async () => {
    const evs = await a.auditAll(`node=${id}`);
    return evs.length === 3 && evs[0].transfer.bytes_sent !== null ? evs : null;
  }, 'the end of the range download');
  assert.deepEqual(after2.map((x) => x.action), ['file.download', 'file.download', 'file.upload']);
  assert.deepEqual((({ ended_at: _, ...rest }) => rest)(after2[0].transfer), { range: 'bytes=0-99', bytes_sent: 100, completed: true });
  assert.ok(after2[0].seq > e.seq);

  await dur.stop();
  const total = dbKeys(dur.dataDir, 'audit').length;
  const v = verify(dur.configPath);
  assert.equal(v.status, 0, v.stderr);
  assert.equal(v.stdout, `ok: ${total} events\n`, 'every event verifies; retention (1d) purged nothing recent');
});
