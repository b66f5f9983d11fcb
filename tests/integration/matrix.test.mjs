// The access matrix (issue 3; SPEC §3, §5; API.md "Access", "Administration", "Sharing between
// members"): every node-related and admin endpoint × every kind of caller, one subtest per cell.
//
// Callers (columns): olga (member), vic / dora / ed / mia (granted view / download / edit / manage),
// gus (in group Team, which is granted download), dina (primary department Ops-DEPT, granted view
// without subdepartments), nico (in Night-DEPT, a subdepartment of Ops-DEPT: that grant does not
// reach it), lars (in Deep-DEPT, a subdepartment of Labs-DEPT, granted download with
// "subdepartments": true), oscar (member, nothing granted), admin, aud (auditor), eve (admin of
// another tenant) and anon (no credentials).
//
// Subjects (what the node rows act on), each a folder holding a text file and a subfolder:
//   A  olga's private space, olga owns it and grants vic view, dora download, ed edit, mia manage,
//      Team download, Ops-DEPT view, Labs-DEPT (and subdepartments) download. admin is a non-granted
//      admin there: 404 everywhere.
//   B  the tenant space, created by admin (the owner) with the same grants as A.
//   C  the tenant space, created by admin, granted to the principal "tenant" at view.
//   E  eve's private space in the other tenant: every default-tenant caller is a foreign caller.
//
// Rows: per subject every node route (metadata, listing, content GET/HEAD, view, ACL GET/PUT, rename,
// move, delete, mkdir, upload, resumable-upload creation, share links create/list/revoke) plus rows that put another tenant's
// id in the body (move target, ACL principal); then /shared, /shares, /directory, /spaces and every
// admin route (plus other-tenant ids in group members and offboard transfer_to).
//
// Each cell proves the exact status; an allowed cell proves the exact content (bytes, names,
// levels); a denied cell proves the exact error code, that neither its body nor its headers carry a
// marker, a name, an id or a hash of any subject, and (404 and 401) that the answer is
// byte-identical to the same request naming a freshly generated random id: ids of other tenants
// and ids without access behave exactly like ids that do not exist. Mutations run on throwaway
// nodes made for the cell (and are checked afterwards by the owner: denied means nothing changed).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { Server, cli, sha256 } from './lib/harness.mjs';

const [NONE, VIEW, DOWNLOAD, EDIT, MANAGE] = [0, 1, 2, 3, 4];
const LN = ['none', 'view', 'download', 'edit', 'manage'];
const rid = () => crypto.randomBytes(16).toString('hex');

const ROLES = { olga: 'member', vic: 'member', dora: 'member', ed: 'member', mia: 'member', gus: 'member', dina: 'member', nico: 'member', lars: 'member', oscar: 'member', aud: 'auditor' };
const ACTORS = ['olga', 'vic', 'dora', 'ed', 'mia', 'gus', 'dina', 'nico', 'lars', 'oscar', 'admin', 'aud', 'eve', 'anon'];
const pw = (n) => `pw-${n}-Matrix-2024`;
const EVE_PASSWORD = 'evepassword1';
const display = (n) => `${n[0].toUpperCase()}${n.slice(1)} Matrix-DN`;

const SUBJECTS = [
  { key: 'A', owner: 'olga', space: 'private', folderName: 'olga-private', fileName: 'secret-OLGA-MARKER.txt',
    subName: 'olga-private-sub', marker: 'OLGA-MARKER', grant: 'people', h1: false,
    levels: { olga: MANAGE, vic: VIEW, dora: DOWNLOAD, ed: EDIT, mia: MANAGE, gus: DOWNLOAD, dina: VIEW, lars: DOWNLOAD },
    rootLevels: { olga: MANAGE }, rootNames: ['olga-private'] },
  { key: 'B', owner: 'admin', space: 'tenant', folderName: 'tenant-shared', fileName: 'tenant-report-TENANT-MARKER.txt',
    subName: 'tenant-shared-sub', marker: 'TENANT-MARKER', grant: 'people', h1: true,
    levels: { admin: MANAGE, vic: VIEW, dora: DOWNLOAD, ed: EDIT, mia: MANAGE, gus: DOWNLOAD, dina: VIEW, lars: DOWNLOAD },
    rootLevels: { admin: MANAGE }, rootNames: ['everyone-folder', 'tenant-shared'] },
  { key: 'C', owner: 'admin', space: 'tenant', folderName: 'everyone-folder', fileName: 'everyone-EVERY-MARKER.txt',
    subName: 'everyone-sub', marker: 'EVERY-MARKER', grant: 'tenant', h1: false,
    levels: { admin: MANAGE, olga: VIEW, vic: VIEW, dora: VIEW, ed: VIEW, mia: VIEW, gus: VIEW, dina: VIEW, nico: VIEW, lars: VIEW, oscar: VIEW } },
  { key: 'E', owner: 'eve', space: 'private', folderName: 'eve-folder', fileName: 'eve-EVE-MARKER.txt',
    subName: 'eve-sub', marker: 'EVE-MARKER', grant: 'none', h1: true,
    levels: { eve: MANAGE }, rootLevels: { eve: MANAGE }, rootNames: ['eve-folder'] },
];
const S_ = Object.fromEntries(SUBJECTS.map((s) => [s.key, s]));

let server;
let ready = false;
const U = {}; // username → {id, token, privateRoot}
const G = {}; // team, eveGroup
const D = {}; // departments: ops, night (below ops), labs, deep (below labs); eveDept (other tenant)
const X = {}; // throwaway users for the cross-tenant transfer_to rows: tbXfer (default), eveTb (other)
const defaultActive = new Set(); // active usernames of the default tenant (what the directory must show)
const defaultGroups = new Set();
const eveUsernames = new Set(['eve']);
const eveGroupNames = new Set();
let tenantRoot, eveTenantRoot;
let cells = 0;
let requests = 0;
let identical = 0; // answers proven byte-identical to the random-id answer
let leakChecks = 0;
const table = new Map(); // row label → {actor → cell text}
const failures = [];

after(async () => { if (server) { await server.stop(); server.cleanup(); } });

const tok = (a) => (a === 'anon' ? undefined : U[a].token);
const send = (token, [method, path, body, headers], h1 = false) => server.request(method, path, { token, body, h1, headers });
const b64 = (x) => Buffer.from(x).toString('base64');
const adm = (req) => send(U.admin.token, req);

function okJson(r, status, what = '') {
  assert.equal(r.status, status, `${what} ${r.status} ${r.text().slice(0, 300)}`);
  assert.match(String(r.headers['content-type']), /^application\/json/);
  return r.json();
}

const sortedNames = (items) => items.map((x) => x.name).sort();
const aclKey = (entries) => entries.map((e) => `${e.principal}=${e.level}${e.subdepartments ? '+sub' : ''}${e.from ? `<${e.from}` : ''}`).sort();

/** Every string that must never appear in a denied answer: markers, names, ids and hashes of every subject. */
function allLeaks() {
  const out = [];
  for (const s of SUBJECTS) out.push(s.marker, s.folderName, s.fileName, s.subName, s.folder, s.file, s.sub, s.sha, s.shareId, s.shareToken, s.shareCode);
  for (const n of Object.keys(ROLES)) out.push(U[n].id, display(n));
  out.push(U.eve.id, G.team, G.eveGroup, ...Object.values(D));
  return out.filter(Boolean);
}

function noLeak(r, extra = []) {
  leakChecks++;
  const hay = r.body.toString('latin1') + '\n' + JSON.stringify(r.headers);
  for (const s of [...allLeaks(), ...extra]) assert.ok(!hay.includes(s), `the answer leaks "${s}": ${hay.slice(0, 400)}`);
}

function errorBody(r, code, method) {
  if (method === 'HEAD') {
    assert.equal(r.body.length, 0, 'a HEAD answer carries no body');
    return;
  }
  assert.match(String(r.headers['content-type']), /^application\/json/);
  const j = r.json();
  assert.deepEqual(Object.keys(j).sort(), ['error', 'message'], r.text());
  assert.equal(j.error, code, r.text());
}

const IGNORED_HEADERS = new Set(['date', 'x-request-id']);
function headerView(h) {
  return Object.fromEntries(Object.entries(h).filter(([k]) => !IGNORED_HEADERS.has(k.toLowerCase())).map(([k, v]) => [k.toLowerCase(), String(v)]).sort());
}

const baselineCache = new Map();
/** Asserts r is exactly the answer to `req` (the same request naming a random id): status, body, headers. */
async function sameAsRandom(r, token, req, h1, cacheKey) {
  let b = cacheKey ? baselineCache.get(cacheKey) : undefined;
  if (!b) {
    b = await send(token, req, h1);
    if (cacheKey) baselineCache.set(cacheKey, b);
  }
  assert.equal(r.status, b.status, `status differs from the random-id answer (${b.status} ${b.text()})`);
  assert.equal(r.body.toString('latin1'), b.body.toString('latin1'), 'body differs from the random-id answer');
  assert.deepEqual(headerView(r.headers), headerView(b.headers), 'headers differ from the random-id answer');
  identical++;
}

/** Runs body, then cleanup even if body failed; a cleanup failure never hides the body's. */
async function withCleanup(body, cleanup) {
  let err;
  try { await body(); } catch (e) { err = e; }
  if (cleanup) {
    try { await cleanup(); } catch (e) { err = err || e; }
  }
  if (err) throw err;
}

function record(label, actor, text) {
  if (!table.has(label)) table.set(label, {});
  table.get(label)[actor] = text;
}

/** Runs one cell: records the status for the table, marks it on failure. */
async function cell(label, actor, fn) {
  cells++;
  const status = { v: 'ERR' };
  try {
    await fn(status);
    record(label, actor, String(status.v));
  } catch (e) {
    record(label, actor, `${status.v}!`);
    failures.push(`${label} × ${actor}: ${e.message.split('\n')[0]}`);
    throw e;
  }
}

// ---- setup ---------------------------------------------------------------------------------------

async function makeSubject(S) {
  const owner = U[S.owner];
  const root = S.space === 'private' ? owner.privateRoot : (S.owner === 'eve' ? eveTenantRoot : tenantRoot);
  const c = server.client(owner.token);
  S.root = root;
  S.content = Buffer.from(`Confidential ${S.marker} payload of subject ${S.key}.\nDo not leak ${S.marker}.\n`);
  S.sha = sha256(S.content);
  S.folder = okJson(await c.mkdir(root, S.folderName), 201, 'mkdir').id;
  const f = okJson(await c.upload(S.folder, S.fileName, S.content), 201, 'upload');
  assert.equal(f.mime, 'text/plain');
  S.file = f.id;
  S.sub = okJson(await c.mkdir(S.folder, S.subName), 201, 'mkdir sub').id;
  S.acl = S.grant === 'people'
    ? [{ principal: `user:${U.vic.id}`, level: 'view' }, { principal: `user:${U.dora.id}`, level: 'download' },
      { principal: `user:${U.ed.id}`, level: 'edit' }, { principal: `user:${U.mia.id}`, level: 'manage' },
      { principal: `group:${G.team}`, level: 'download' },
      { principal: `department:${D.ops}`, level: 'view' }, { principal: `department:${D.labs}`, level: 'download', subdepartments: true }]
    : S.grant === 'tenant' ? [{ principal: 'tenant', level: 'view' }] : [];
  if (S.acl.length) {
    const j = okJson(await send(owner.token, ['PUT', `/api/v1/nodes/${S.folder}/acl`, { entries: S.acl }]), 200, 'acl put');
    assert.deepEqual(aclKey(j.entries), aclKey(S.acl));
  }
  // A standing share link on the file, made by the owner.
  S.shareCode = `MatrixCode${S.key}`;
  const sh = okJson(await send(owner.token, ['POST', '/api/v1/shares', { node: S.file, permission: 'view', code: S.shareCode }]), 201, 'share');
  S.shareId = sh.id;
  S.shareToken = sh.url.split('/s/')[1];
  assert.match(S.shareToken, /^[A-Za-z0-9_-]{22,}$/);
}

test('setup: two tenants, users, a group, four subjects', async () => {
  server = new Server();
  const request = server.request.bind(server);
  server.request = (...args) => { requests++; return request(...args); };
  await server.start();
  await server.stop();
  let r = cli(['tenant', 'create', 'other', '-c', server.configPath]);
  assert.equal(r.status, 0, r.stderr);
  r = cli(['user', 'add', '--tenant', 'other', '--username', 'eve', '--role', 'admin', '-c', server.configPath], { COFFER_USER_PASSWORD: EVE_PASSWORD });
  assert.equal(r.status, 0, r.stderr);
  await server.start();

  const al = await server.login();
  U.admin = { id: al.user.id, token: al.token };
  defaultActive.add('admin');
  for (const [n, role] of Object.entries(ROLES)) {
    const j = okJson(await adm(['POST', '/api/v1/admin/users', { username: n, password: pw(n), display_name: display(n), role }]), 201, `create ${n}`);
    assert.equal(j.role, role);
    U[n] = { id: j.id };
    defaultActive.add(n);
  }
  G.team = okJson(await adm(['POST', '/api/v1/admin/groups', { name: 'Team' }]), 201).id;
  defaultGroups.add('Team');
  okJson(await adm(['PUT', `/api/v1/admin/groups/${G.team}/members`, { user_ids: [U.gus.id] }]), 200);
  // Departments: dina in Ops-DEPT, nico in its subdepartment Night-DEPT, lars in Deep-DEPT below Labs-DEPT.
  const dept = async (name, parent) => okJson(await adm(['POST', '/api/v1/admin/departments', parent ? { name, parent } : { name }]), 201, `department ${name}`).id;
  D.ops = await dept('Ops-DEPT');
  D.night = await dept('Night-DEPT', D.ops);
  D.labs = await dept('Labs-DEPT');
  D.deep = await dept('Deep-DEPT', D.labs);
  for (const [n, d] of [['dina', D.ops], ['nico', D.night], ['lars', D.deep]]) {
    const r = await adm(['PUT', `/api/v1/admin/users/${U[n].id}/departments`, { primary: d, others: [] }]);
    assert.ok(r.status === 200 || r.status === 204, `departments of ${n}: ${r.status} ${r.text()}`);
  }
  for (const n of Object.keys(ROLES)) U[n].token = (await server.login(n, pw(n))).token;
  const el = await server.login('eve', EVE_PASSWORD, 'other');
  U.eve = { id: el.user.id, token: el.token };
  for (const n of Object.keys(U)) U[n].privateRoot = (await server.client(U[n].token).spaces()).private.root;
  tenantRoot = (await server.client(U.admin.token).spaces()).tenant.root;
  eveTenantRoot = (await server.client(U.eve.token).spaces()).tenant.root;
  assert.notEqual(tenantRoot, eveTenantRoot);

  for (const S of SUBJECTS) await makeSubject(S);
  // The other tenant's own group and throwaway user; a default-tenant throwaway user.
  G.eveGroup = okJson(await send(U.eve.token, ['POST', '/api/v1/admin/groups', { name: 'EveGroup' }]), 201).id;
  D.eveDept = okJson(await send(U.eve.token, ['POST', '/api/v1/admin/departments', { name: 'EveDept' }]), 201).id;
  eveGroupNames.add('EveGroup');
  X.eveTb = okJson(await send(U.eve.token, ['POST', '/api/v1/admin/users', { username: 'eve-tb', password: pw('eve-tb') }]), 201).id;
  eveUsernames.add('eve-tb');
  X.tbXfer = okJson(await adm(['POST', '/api/v1/admin/users', { username: 'tb-xfer', password: pw('tb-xfer') }]), 201).id;
  defaultActive.add('tb-xfer');
  ready = true;
});

// ---- node rows -----------------------------------------------------------------------------------

const isForeign = (S, a) => a !== 'anon' && (S.key === 'E') !== (a === 'eve');
/** The ids of the other tenant, as seen from subject S. */
const foreignOf = (S) => (S.key === 'E'
  ? { folder: S_.A.folder, user: U.olga.id, group: G.team, dept: D.ops }
  : { folder: S_.E.folder, user: U.eve.id, group: G.eveGroup, dept: D.eveDept });

async function activeSharesOn(S) {
  const j = okJson(await send(U[S.owner].token, ['GET', `/api/v1/shares?node=${S.file}`]), 200, 'owner lists links');
  return j.shares.filter((x) => x.state === 'active').map((x) => x.id).sort();
}
async function ownerGet(S, id) { return send(U[S.owner].token, ['GET', `/api/v1/nodes/${id}`]); }
async function ownerPurge(S, id) {
  const r = await send(U[S.owner].token, ['DELETE', `/api/v1/nodes/${id}?purge=true`]);
  assert.equal(r.status, 204, `cleanup purge: ${r.status} ${r.text()}`);
}
async function throwaway(c, tag) {
  c.tmpName = `tmp-${tag}-${c.a}.txt`;
  const j = okJson(await server.client(U[c.S.owner].token).upload(c.S.folder, c.tmpName, `throwaway ${tag} ${c.a}\n`), 201, 'throwaway');
  c.tmp = j.id;
  c.extraLeaks.push(c.tmpName, c.tmp);
}
const fileNodeChecks = (c, j) => {
  assert.equal(j.id, c.S.file);
  assert.equal(j.type, 'file');
  assert.equal(j.name, c.S.fileName);
  assert.equal(j.parent, c.S.folder);
  assert.equal(j.size, c.S.content.length);
  assert.equal(j.sha256, c.S.sha);
  assert.equal(j.mime, 'text/plain');
  assert.equal(j.version, 1);
  assert.equal(j.owner, U[c.S.owner].id);
  assert.equal(j.my_level, LN[c.lv]);
};
const aclAttack = (c) => {
  // A denied caller tries to grant itself manage (anon: the whole tenant): nothing may change.
  const self = c.a === 'anon' ? 'tenant' : `user:${U[c.a].id}`;
  return [...c.S.acl.filter((e) => e.principal !== self), { principal: self, level: 'manage' }];
};
async function ownerAclUnchanged(S) {
  const j = okJson(await send(U[S.owner].token, ['GET', `/api/v1/nodes/${S.folder}/acl`]), 200, 'owner acl');
  assert.deepEqual(aclKey(j.entries), aclKey(S.acl), 'the ACL changed');
}
async function createdByCaller(c, j, type, name) {
  c.created = j.id;
  assert.equal(j.type, type);
  assert.equal(j.name, name);
  assert.equal(j.parent, c.S.folder);
  assert.equal(j.owner, U[c.a].id);
  // Creating gives nothing (SECURITY.md "The level rule"): the creator's level on what it creates is
  // its level on the folder, inherited; manage stays with the space (its owner, or the admins).
  const g = okJson(await send(c.token, ['GET', `/api/v1/nodes/${j.id}`], c.h1), 200, 'creator reads it back');
  assert.equal(g.my_level, LN[c.lv], 'GET by the creator: my_level');
  assert.equal(j.my_level, LN[c.lv], `my_level in the ${type === 'file' ? 'upload' : 'mkdir'} answer (${j.my_level})`);
}
async function createdVerify(c, allowed, name) {
  const l = okJson(await send(U[c.S.owner].token, ['GET', `/api/v1/nodes/${c.S.folder}/children`]), 200, 'owner list');
  const hit = l.items.find((x) => x.name === name);
  if (!allowed) {
    if (hit) await ownerPurge(c.S, hit.id);
    assert.equal(hit, undefined, 'a denied create created something');
    return;
  }
  assert.ok(hit, 'the created node is listed');
  const id = c.created || hit.id;
  // Deleting needs manage, which creating does not give: a creator with edit on the folder is
  // refused (403), one with manage purges; the space's owner always may.
  const d = await send(c.token, ['DELETE', `/api/v1/nodes/${id}?purge=true`], c.h1);
  if (d.status === 204) c.created = null;
  assert.equal(d.status, c.lv >= MANAGE ? 204 : 403, `the creator purges its node: ${d.status} ${d.text()}`);
  if (c.created) await ownerPurge(c.S, c.created);
  c.created = null;
}
/** Whatever a create cell left behind (its checks failed half-way) goes. */
async function createdCleanup(c) {
  if (c.created) await send(U[c.S.owner].token, ['DELETE', `/api/v1/nodes/${c.created}?purge=true`]);
}

/**
 * Node operations. req(c, ids) → [method, path, body] where ids.node is the node under test (a
 * random id for the "does not exist" baseline) and ids.x a foreign id (rows that carry one).
 */
const NODE_OPS = [
  { key: 'get-folder', label: 'GET /nodes/{folder}', need: VIEW, okStatus: 200,
    req: (c, { node }) => ['GET', `/api/v1/nodes/${node}`],
    ok: (c, r) => {
      const j = okJson(r, 200);
      assert.deepEqual([j.id, j.type, j.name, j.parent, j.owner, j.my_level], [c.S.folder, 'folder', c.S.folderName, c.S.root, U[c.S.owner].id, LN[c.lv]]);
      assert.deepEqual([j.size, j.sha256, j.mime, j.version], [null, null, null, null]);
    } },
  { key: 'get-file', label: 'GET /nodes/{file}', need: VIEW, okStatus: 200, node: (S) => S.file,
    req: (c, { node }) => ['GET', `/api/v1/nodes/${node}`],
    ok: (c, r) => fileNodeChecks(c, okJson(r, 200)) },
  { key: 'get-sub', label: 'GET /nodes/{subfolder}', need: VIEW, okStatus: 200, node: (S) => S.sub,
    req: (c, { node }) => ['GET', `/api/v1/nodes/${node}`],
    ok: (c, r) => {
      const j = okJson(r, 200);
      assert.deepEqual([j.id, j.type, j.name, j.parent, j.my_level], [c.S.sub, 'folder', c.S.subName, c.S.folder, LN[c.lv]]);
    } },
  { key: 'children', label: 'GET /nodes/{folder}/children', need: VIEW, okStatus: 200,
    req: (c, { node }) => ['GET', `/api/v1/nodes/${node}/children`],
    ok: (c, r) => {
      const j = okJson(r, 200);
      assert.deepEqual(sortedNames(j.items), [c.S.fileName, c.S.subName].sort());
      assert.equal(j.next_cursor, null);
      for (const it of j.items) assert.equal(it.my_level, LN[c.lv], `my_level of ${it.name}`);
    } },
  { key: 'children-root', label: 'GET /nodes/{space root}/children', need: VIEW, okStatus: 200, when: (S) => S.rootNames,
    levels: (S) => S.rootLevels, node: (S) => S.root,
    // The team space's root lists, to any member of its tenant without a level on it, only the
    // folders they can see (issue 21: "Team files" for members); auditors and outsiders get 404.
    expect: (S, a) => (S.space === 'tenant' && a !== 'anon' && ROLES[a] === 'member' && !isForeign(S, a) &&
      !((S.rootLevels[a] || NONE) > NONE) ? { status: 200, allowed: true } : null),
    req: (c, { node }) => ['GET', `/api/v1/nodes/${node}/children`],
    ok: (c, r) => assert.deepEqual(sortedNames(okJson(r, 200).items), c.lv === NONE
      ? SUBJECTS.filter((X) => X.space === 'tenant' && X.owner === c.S.owner && (X.levels[c.a] || NONE) > NONE).map((X) => X.folderName).sort()
      : [...c.S.rootNames].sort()) },
  { key: 'content', label: 'GET /files/{file}/content', need: DOWNLOAD, okStatus: 200, node: (S) => S.file,
    req: (c, { node }) => ['GET', `/api/v1/files/${node}/content`],
    ok: (c, r) => {
      assert.equal(r.status, 200);
      assert.ok(r.body.equals(c.S.content), 'exact bytes');
      assert.match(String(r.headers['content-disposition']), /^attachment;/);
      assert.equal(r.headers.etag, `"${c.S.sha.slice(0, 32)}"`);
    } },
  { key: 'head', label: 'HEAD /files/{file}/content', need: DOWNLOAD, okStatus: 200, node: (S) => S.file,
    req: (c, { node }) => ['HEAD', `/api/v1/files/${node}/content`],
    ok: (c, r) => {
      assert.equal(r.status, 200);
      assert.equal(Number(r.headers['content-length']), c.S.content.length);
      assert.equal(r.body.length, 0);
      assert.match(String(r.headers['content-disposition']), /^attachment;/);
    } },
  // View-only callers get pages, never the original (issue 20): /view needs download.
  { key: 'view', label: 'GET /files/{file}/view', need: DOWNLOAD, okStatus: 200, node: (S) => S.file,
    req: (c, { node }) => ['GET', `/api/v1/files/${node}/view`],
    ok: (c, r) => {
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8');
      assert.match(String(r.headers['content-disposition']), /^inline/);
      assert.ok(r.body.equals(c.S.content), 'exact bytes');
    } },
  { key: 'acl-folder', label: 'GET /nodes/{folder}/acl', need: VIEW, okStatus: 200,
    req: (c, { node }) => ['GET', `/api/v1/nodes/${node}/acl`],
    ok: (c, r) => {
      const j = okJson(r, 200);
      assert.equal(j.node, c.S.folder);
      // The owner of the space (null in the tenant space, where the admins hold manage).
      assert.equal(j.owner === null ? null : j.owner.id, c.S.space === 'private' ? U[c.S.owner].id : null);
      assert.deepEqual(aclKey(j.entries), aclKey(c.S.acl));
      assert.deepEqual(j.inherited, []);
    } },
  { key: 'acl-file', label: 'GET /nodes/{file}/acl', need: VIEW, okStatus: 200, node: (S) => S.file,
    req: (c, { node }) => ['GET', `/api/v1/nodes/${node}/acl`],
    ok: (c, r) => {
      const j = okJson(r, 200);
      assert.equal(j.node, c.S.file);
      assert.deepEqual(j.entries, []);
      assert.deepEqual(aclKey(j.inherited), aclKey(c.S.acl.map((e) => ({ ...e, from: c.S.folder }))));
    } },
  { key: 'acl-put', label: 'PUT /nodes/{folder}/acl', need: MANAGE, okStatus: 200,
    req: (c, { node }) => ['PUT', `/api/v1/nodes/${node}/acl`, { entries: c.allowed ? c.S.acl : aclAttack(c) }],
    ok: (c, r) => assert.deepEqual(aclKey(okJson(r, 200).entries), aclKey(c.S.acl)),
    verify: (c) => ownerAclUnchanged(c.S) },
  { key: 'rename', label: 'PATCH /nodes/{file} {name}', need: EDIT, okStatus: 200,
    prepare: (c) => throwaway(c, 'rename'), node: (S, c) => c.tmp,
    req: (c, { node }) => ['PATCH', `/api/v1/nodes/${node}`, { name: `renamed-${c.a}.txt` }],
    ok: (c, r) => {
      const j = okJson(r, 200);
      assert.deepEqual([j.id, j.name, j.parent, j.my_level], [c.tmp, `renamed-${c.a}.txt`, c.S.folder, LN[c.lv]]);
    },
    verify: async (c) => {
      const j = okJson(await ownerGet(c.S, c.tmp), 200, 'owner reads the throwaway');
      assert.equal(j.name, c.allowed ? `renamed-${c.a}.txt` : c.tmpName);
    },
    cleanup: (c) => ownerPurge(c.S, c.tmp) },
  { key: 'move', label: 'PATCH /nodes/{file} {parent: subfolder}', need: EDIT, okStatus: 200,
    prepare: (c) => throwaway(c, 'move'), node: (S, c) => c.tmp,
    req: (c, { node }) => ['PATCH', `/api/v1/nodes/${node}`, { parent: c.S.sub }],
    ok: (c, r) => {
      const j = okJson(r, 200);
      assert.deepEqual([j.id, j.name, j.parent], [c.tmp, c.tmpName, c.S.sub]);
    },
    verify: async (c) => assert.equal(okJson(await ownerGet(c.S, c.tmp), 200).parent, c.allowed ? c.S.sub : c.S.folder),
    cleanup: (c) => ownerPurge(c.S, c.tmp) },
  { key: 'move-foreign', label: 'PATCH /nodes/{file} {parent: other tenant\'s folder}', need: EDIT, okStatus: 404,
    prepare: (c) => throwaway(c, 'movex'), node: (S, c) => c.tmp, x: (S) => foreignOf(S).folder,
    req: (c, { node, x }) => ['PATCH', `/api/v1/nodes/${node}`, { parent: x }],
    ok: async (c, r) => {
      errorBody(r, 'not_found');
      noLeak(r, c.extraLeaks);
      await sameAsRandom(r, c.token, c.op.req(c, { node: c.tmp, x: rid() }), c.h1);
    },
    verify: async (c) => assert.equal(okJson(await ownerGet(c.S, c.tmp), 200).parent, c.S.folder),
    cleanup: (c) => ownerPurge(c.S, c.tmp) },
  { key: 'delete', label: 'DELETE /nodes/{file}', need: MANAGE, okStatus: 204,
    prepare: (c) => throwaway(c, 'delete'), node: (S, c) => c.tmp,
    req: (c, { node }) => ['DELETE', `/api/v1/nodes/${node}`],
    ok: (c, r) => { assert.equal(r.status, 204); assert.equal(r.body.length, 0); },
    verify: async (c) => {
      const g = await ownerGet(c.S, c.tmp);
      c.gone = g.status === 404;
      assert.equal(g.status, c.allowed ? 404 : 200, 'the owner sees the throwaway (only) if it was not deleted');
    },
    cleanup: async (c) => { if (!c.gone) await ownerPurge(c.S, c.tmp); } },
  { key: 'mkdir', label: 'POST /folders {parent: folder}', need: EDIT, okStatus: 201,
    req: (c, { node }) => ['POST', '/api/v1/folders', { parent: node, name: `mk-${c.a}` }],
    ok: async (c, r) => createdByCaller(c, okJson(r, 201), 'folder', `mk-${c.a}`),
    verify: (c) => createdVerify(c, c.allowed, `mk-${c.a}`), cleanup: createdCleanup },
  { key: 'upload', label: 'POST /files?parent={folder}', need: EDIT, okStatus: 201,
    req: (c, { node }) => ['POST', `/api/v1/files?parent=${node}&name=up-${c.a}.txt`, Buffer.from(`uploaded by ${c.a}\n`)],
    ok: async (c, r) => {
      const j = okJson(r, 201);
      assert.equal(j.size, `uploaded by ${c.a}\n`.length);
      assert.equal(j.sha256, sha256(Buffer.from(`uploaded by ${c.a}\n`)));
      await createdByCaller(c, j, 'file', `up-${c.a}.txt`);
    },
    verify: (c) => createdVerify(c, c.allowed, `up-${c.a}.txt`), cleanup: createdCleanup },
  { key: 'tus-create', label: 'POST /uploads (tus, whole file in the creation) {parent: folder}', need: EDIT, okStatus: 201,
    req: (c, { node }) => ['POST', '/api/v1/uploads', Buffer.from(`tus by ${c.a}\n`), {
      'tus-resumable': '1.0.0', 'content-type': 'application/offset+octet-stream',
      'upload-length': String(`tus by ${c.a}\n`.length), 'upload-metadata': `filename ${b64(`tus-${c.a}.txt`)},parent ${b64(node)}` }],
    ok: async (c, r) => {
      assert.equal(r.status, 201, r.text());
      assert.equal(r.headers['upload-offset'], String(`tus by ${c.a}\n`.length));
      assert.match(String(r.headers['coffer-node-id']), /^[0-9a-f]{32}$/);
      const j = okJson(await send(c.token, ['GET', `/api/v1/nodes/${r.headers['coffer-node-id']}`], c.h1), 200, 'the uploaded node');
      assert.equal(j.sha256, sha256(Buffer.from(`tus by ${c.a}\n`)));
      await createdByCaller(c, j, 'file', `tus-${c.a}.txt`);
    },
    verify: (c) => createdVerify(c, c.allowed, `tus-${c.a}.txt`), cleanup: createdCleanup },
  { key: 'share-create', label: 'POST /shares {node: file}', need: MANAGE, okStatus: 201, node: (S) => S.file,
    req: (c, { node }) => ['POST', '/api/v1/shares', { node, permission: 'download' }],
    ok: (c, r) => {
      const j = okJson(r, 201);
      c.share = j.id;
      assert.deepEqual([j.node, j.creator, j.permission], [c.S.file, U[c.a].id, 'download']);
      assert.ok(j.url.startsWith(`${server.publicUrl}/s/`), j.url);
      assert.equal(typeof j.code, 'string');
    },
    verify: async (c) => {
      const active = await activeSharesOn(c.S);
      assert.deepEqual(active, [c.S.shareId, ...(c.share ? [c.share] : [])].sort(), 'the active links on the file');
      if (c.share) {
        // The creator revokes its own link.
        const d = await send(c.token, ['DELETE', `/api/v1/shares/${c.share}`], c.h1);
        assert.equal(d.status, 204, `the creator revokes its link: ${d.status} ${d.text()}`);
        c.share = null;
      }
    },
    cleanup: async (c) => { if (c.share) await send(U[c.S.owner].token, ['DELETE', `/api/v1/shares/${c.share}`]); } },
  { key: 'share-list', label: 'GET /shares?node={file}', need: MANAGE, okStatus: 200, node: (S) => S.file,
    req: (c, { node }) => ['GET', `/api/v1/shares?node=${node}`],
    ok: (c, r) => {
      const j = okJson(r, 200);
      const active = j.shares.filter((x) => x.state === 'active');
      assert.deepEqual(active.map((x) => x.id), [c.S.shareId]);
      const sh = active[0];
      assert.deepEqual([sh.node, sh.creator, sh.permission], [c.S.file, U[c.S.owner].id, 'view']);
      // Only the creator sees the link and its code again.
      if (c.a === c.S.owner) assert.deepEqual([sh.url.split('/s/')[1], sh.code], [c.S.shareToken, c.S.shareCode]);
      else assert.ok(!('url' in sh) && !('code' in sh) && !r.text().includes(c.S.shareToken) && !r.text().includes(c.S.shareCode));
    } },
  { key: 'share-revoke', label: 'DELETE /shares/{id} (link on file)', need: MANAGE, okStatus: 204, below: 404,
    prepare: async (c) => {
      const j = okJson(await send(U[c.S.owner].token, ['POST', '/api/v1/shares', { node: c.S.file, permission: 'view' }]), 201, 'throwaway share');
      c.tmpShare = j.id;
      c.extraLeaks.push(j.id, j.url.split('/s/')[1], j.code);
    },
    node: (S, c) => c.tmpShare,
    req: (c, { node }) => ['DELETE', `/api/v1/shares/${node}`],
    ok: (c, r) => { assert.equal(r.status, 204); assert.equal(r.body.length, 0); },
    verify: async (c) => {
      c.active = (await activeSharesOn(c.S)).includes(c.tmpShare);
      assert.equal(c.active, !c.allowed, 'the link is revoked exactly when allowed');
    },
    cleanup: async (c) => {
      if (c.active) assert.equal((await send(U[c.S.owner].token, ['DELETE', `/api/v1/shares/${c.tmpShare}`])).status, 204);
    } },
  { key: 'acl-foreign-user', label: 'PUT /nodes/{folder}/acl naming another tenant\'s user', need: MANAGE, okStatus: 400,
    x: (S) => foreignOf(S).user,
    req: (c, { node, x }) => ['PUT', `/api/v1/nodes/${node}/acl`, { entries: [...c.S.acl, { principal: `user:${x}`, level: 'view' }] }],
    ok: async (c, r) => {
      errorBody(r, 'bad_request');
      noLeak(r);
      await sameAsRandom(r, c.token, c.op.req(c, { node: c.S.folder, x: rid() }), c.h1);
    },
    verify: (c) => ownerAclUnchanged(c.S) },
  { key: 'acl-foreign-group', label: 'PUT /nodes/{folder}/acl naming another tenant\'s group', need: MANAGE, okStatus: 400,
    x: (S) => foreignOf(S).group,
    req: (c, { node, x }) => ['PUT', `/api/v1/nodes/${node}/acl`, { entries: [...c.S.acl, { principal: `group:${x}`, level: 'view' }] }],
    ok: async (c, r) => {
      errorBody(r, 'bad_request');
      noLeak(r);
      await sameAsRandom(r, c.token, c.op.req(c, { node: c.S.folder, x: rid() }), c.h1);
    },
    verify: (c) => ownerAclUnchanged(c.S) },
  { key: 'acl-foreign-dept', label: 'PUT /nodes/{folder}/acl naming another tenant\'s department', need: MANAGE, okStatus: 400,
    x: (S) => foreignOf(S).dept,
    req: (c, { node, x }) => ['PUT', `/api/v1/nodes/${node}/acl`, { entries: [...c.S.acl, { principal: `department:${x}`, level: 'view', subdepartments: true }] }],
    ok: async (c, r) => {
      errorBody(r, 'bad_request');
      noLeak(r);
      await sameAsRandom(r, c.token, c.op.req(c, { node: c.S.folder, x: rid() }), c.h1);
    },
    verify: (c) => ownerAclUnchanged(c.S) },
];

function nodeRow(S, op) {
  const label = `${S.key} ${op.label}`;
  const levels = () => (op.levels ? op.levels(S) : S.levels);
  const expect = (a) => {
    if (a === 'anon') return { status: 401, code: 'unauthorized' };
    if (op.expect && op.expect(S, a)) return op.expect(S, a);
    const lv = levels()[a] || NONE;
    if (lv === NONE) return { status: 404, code: 'not_found' };
    if (lv < op.need) return op.below === 404 ? { status: 404, code: 'not_found' } : { status: 403, code: 'forbidden' };
    return { status: op.okStatus, allowed: true };
  };
  const tag = (a) => (a === 'anon' ? 'anonymous' : isForeign(S, a) ? 'other tenant' : LN[levels()[a] || NONE]);
  test(label, async (t) => {
    assert.ok(ready, 'setup failed');
    for (const a of ACTORS) {
      const exp = expect(a);
      await t.test(`${label} × ${a} [${tag(a)}] → ${exp.status}`, () => cell(label, a, async (st) => {
        const c = { S, a, op, lv: levels()[a] || NONE, token: tok(a), h1: S.h1, allowed: !!exp.allowed, extraLeaks: [] };
        if (op.prepare) await op.prepare(c);
        await withCleanup(async () => {
          const ids = { node: op.node ? op.node(S, c) : S.folder, x: op.x ? op.x(S) : undefined };
          const req = op.req(c, ids);
          const r = await send(c.token, req, c.h1);
          st.v = r.status;
          if (exp.allowed) {
            await op.ok(c, r);
          } else {
            assert.equal(r.status, exp.status, `${r.status} ${r.text().slice(0, 300)}`);
            errorBody(r, exp.code, req[0]);
            noLeak(r, c.extraLeaks);
            // No access, other tenant, or no credentials: exactly the answer for an id that does not exist.
            if (exp.status !== 403) await sameAsRandom(r, c.token, op.req(c, { ...ids, node: rid() }), c.h1, `${op.key}|${a}|${c.h1}`);
          }
          if (op.verify) await op.verify(c);
        }, op.cleanup && (() => op.cleanup(c)));
      }));
    }
  });
}

for (const S of SUBJECTS) for (const op of NODE_OPS) if (!op.when || op.when(S)) nodeRow(S, op);

// ---- shared, directory, spaces -------------------------------------------------------------------

function simpleRow(label, fn) {
  test(label, async (t) => {
    assert.ok(ready, 'setup failed');
    for (const a of ACTORS) {
      const status = a === 'anon' ? 401 : 200;
      await t.test(`${label} × ${a} → ${status}`, () => cell(label, a, async (st) => {
        const r = await send(tok(a), fn.req(a));
        st.v = r.status;
        if (a === 'anon') {
          assert.equal(r.status, 401);
          errorBody(r, 'unauthorized');
          noLeak(r);
          return;
        }
        await fn.ok(a, okJson(r, 200), r);
      }));
    }
  });
}

simpleRow('GET /shared', {
  req: () => ['GET', '/api/v1/shared'],
  ok: (a, j) => {
    // Exactly the subject folders granted to the caller (directly, by group or to the tenant) outside its own space.
    const want = SUBJECTS.filter((S) => (S.levels[a] || NONE) > NONE && S.owner !== a);
    assert.deepEqual(sortedNames(j.items), want.map((S) => S.folderName).sort());
    for (const it of j.items) {
      const S = SUBJECTS.find((s) => s.folder === it.id);
      assert.equal(it.my_level, LN[S.levels[a]], `my_level of ${it.name}`);
    }
  },
});

simpleRow('GET /shares', {
  req: () => ['GET', '/api/v1/shares'],
  ok: (a, j, r) => {
    // Exactly the links the caller created (the standing ones of setup; the cells' links are revoked).
    const active = j.shares.filter((x) => x.state === 'active');
    assert.deepEqual(active.map((x) => x.id).sort(), SUBJECTS.filter((S) => S.owner === a).map((S) => S.shareId).sort());
    for (const x of j.shares) assert.equal(x.creator, U[a].id);
    for (const S of SUBJECTS.filter((s) => s.owner !== a)) assert.ok(!r.text().includes(S.shareToken) && !r.text().includes(S.shareId));
  },
});

simpleRow('GET /directory', {
  req: () => ['GET', '/api/v1/directory'],
  ok: (a, j, r) => {
    const names = j.users.map((u) => u.username).sort();
    const groups = j.groups.map((g) => g.name).sort();
    if (a === 'eve') {
      assert.deepEqual(names, [...eveUsernames].sort());
      assert.deepEqual(groups, [...eveGroupNames].sort());
      const text = r.text();
      for (const n of defaultActive) assert.ok(!j.users.some((u) => u.username === n), `eve sees ${n}`);
      for (const n of Object.keys(ROLES)) assert.ok(!text.includes(U[n].id) && !text.includes(display(n)), `eve sees ${n}`);
      assert.ok(!text.includes(G.team) && !text.includes(U.admin.id));
    } else {
      assert.deepEqual(names, [...defaultActive].sort());
      assert.deepEqual(groups, [...defaultGroups].sort());
      assert.ok(!r.text().includes(U.eve.id) && !r.text().includes(G.eveGroup));
    }
  },
});

simpleRow('GET /spaces', {
  req: () => ['GET', '/api/v1/spaces'],
  ok: (a, j) => {
    assert.deepEqual(Object.keys(j).sort(), ['private', 'tenant']);
    assert.equal(j.tenant.root, a === 'eve' ? eveTenantRoot : tenantRoot);
    assert.equal(j.private.root, U[a].privateRoot);
    if (a === 'olga') assert.equal(j.private.root, S_.A.root);
    if (a === 'eve') assert.equal(j.private.root, S_.E.root);
    const others = ACTORS.filter((b) => b !== a && b !== 'anon').map((b) => U[b].privateRoot);
    assert.ok(!others.includes(j.private.root), 'private roots are per user');
  },
});

// ---- admin rows ----------------------------------------------------------------------------------

async function usersOf(token) {
  const j = okJson(await send(token, ['GET', '/api/v1/admin/users']), 200, 'list users');
  return new Map(j.users.map((u) => [u.username, u]));
}
async function groupsOf(token) {
  const j = okJson(await send(token, ['GET', '/api/v1/admin/groups']), 200, 'list groups');
  return new Map(j.groups.map((g) => [g.name, g]));
}
const isAdminActor = (a) => a === 'admin' || a === 'eve';

/**
 * An admin route. spec: req(c, ids) (ids.id: the user or group the route names, random for the
 * baseline; ids.x a foreign id in the body), id(c) (absent for routes without one), ok(c, r) for
 * admin, eve(c, r) for the other tenant's admin (default: when the route names a default-tenant id,
 * 404 exactly like a random id), verify(c, allowed) afterwards, prepare/cleanup.
 */
function adminRow(label, spec) {
  const expect = (a) => {
    if (a === 'anon') return { status: 401, code: 'unauthorized' };
    if (a === 'admin') return { status: spec.okStatus, allowed: true };
    if (a === 'eve') return spec.eveStatus ? { status: spec.eveStatus, allowed: true } : { status: 404, code: 'not_found', foreignId: true };
    return { status: 403, code: 'forbidden' };
  };
  const tag = (a) => (a === 'anon' ? 'anonymous' : a === 'admin' ? 'admin' : a === 'eve' ? 'other tenant\'s admin' : ROLES[a]);
  test(label, async (t) => {
    assert.ok(ready, 'setup failed');
    for (const a of ACTORS) {
      const exp = expect(a);
      await t.test(`${label} × ${a} [${tag(a)}] → ${exp.status}`, () => cell(label, a, async (st) => {
        const c = { a, token: tok(a), allowed: !!exp.allowed, extraLeaks: [], self: a === 'anon' ? rid() : U[a].id };
        if (spec.prepare) await spec.prepare(c);
        await withCleanup(async () => {
          const ids = { id: spec.id ? spec.id(c) : undefined, x: spec.x ? spec.x(c) : undefined };
          const req = spec.req(c, ids);
          const r = await send(c.token, req);
          st.v = r.status;
          if (a === 'admin') await spec.ok(c, r);
          else if (a === 'eve' && spec.eveStatus) await spec.eve(c, r);
          else {
            assert.equal(r.status, exp.status, `${r.status} ${r.text().slice(0, 300)}`);
            errorBody(r, exp.code);
            noLeak(r, c.extraLeaks);
            if (exp.status !== 403 && spec.id) await sameAsRandom(r, c.token, spec.req(c, { ...ids, id: rid() }), false);
          }
          if (spec.verify) await spec.verify(c, exp.allowed);
        }, spec.cleanup && (() => spec.cleanup(c)));
      }));
    }
  });
}

adminRow('POST /admin/users', {
  okStatus: 201, eveStatus: 201,
  req: (c) => ['POST', '/api/v1/admin/users', { username: `new-${c.a}`, password: pw('new'), display_name: `New ${c.a} DN` }],
  ok: (c, r) => {
    const j = okJson(r, 201);
    assert.deepEqual([j.username, j.role, j.status, j.tenant.name], [`new-${c.a}`, 'member', 'active', 'default']);
    defaultActive.add(`new-${c.a}`);
  },
  eve: (c, r) => {
    const j = okJson(r, 201);
    assert.deepEqual([j.username, j.tenant.name], ['new-eve', 'other']);
    eveUsernames.add('new-eve');
  },
  verify: async (c) => {
    const mine = await usersOf(U.admin.token);
    assert.equal(mine.has(`new-${c.a}`), c.a === 'admin', 'created in the default tenant only by its admin');
    if (c.a === 'eve') assert.ok((await usersOf(U.eve.token)).has('new-eve'));
  },
});

adminRow('GET /admin/users', {
  okStatus: 200, eveStatus: 200,
  req: () => ['GET', '/api/v1/admin/users'],
  ok: (c, r) => {
    const names = okJson(r, 200).users.map((u) => u.username);
    for (const n of defaultActive) assert.ok(names.includes(n), `lists ${n}`);
    for (const n of eveUsernames) assert.ok(!names.includes(n), `lists the other tenant's ${n}`);
    assert.ok(!r.text().includes(U.eve.id));
  },
  eve: (c, r) => {
    const j = okJson(r, 200);
    assert.deepEqual(j.users.map((u) => u.username).sort(), [...eveUsernames].sort());
    for (const n of Object.keys(ROLES)) assert.ok(!r.text().includes(U[n].id) && !r.text().includes(display(n)), `eve sees ${n}`);
    assert.ok(!r.text().includes(U.admin.id));
  },
});

let oscarDisplay = display('oscar');
adminRow('PATCH /admin/users/{id}', {
  okStatus: 200,
  // admin renames oscar; the other tenant's admin tries the same on oscar's id; members try to make themselves admin.
  id: (c) => (isAdminActor(c.a) || c.a === 'anon' ? U.oscar.id : c.self),
  req: (c, { id }) => ['PATCH', `/api/v1/admin/users/${id}`, isAdminActor(c.a) ? { display_name: `Oscar by ${c.a}` } : { role: 'admin' }],
  ok: (c, r) => {
    const j = okJson(r, 200);
    assert.deepEqual([j.id, j.username, j.display_name, j.role], [U.oscar.id, 'oscar', 'Oscar by admin', 'member']);
    oscarDisplay = 'Oscar by admin';
  },
  verify: async (c) => {
    const us = await usersOf(U.admin.token);
    assert.equal(us.get('oscar').display_name, oscarDisplay);
    for (const n of Object.keys(ROLES)) assert.equal(us.get(n).role, ROLES[n], `role of ${n}`);
  },
});

adminRow('POST /admin/users/{id}/offboard', {
  okStatus: 200,
  prepare: async (c) => {
    c.tb = okJson(await adm(['POST', '/api/v1/admin/users', { username: `off-${c.a}`, password: pw('off') }]), 201).id;
    defaultActive.add(`off-${c.a}`);
    c.extraLeaks.push(c.tb);
  },
  id: (c) => c.tb,
  req: (c, { id }) => ['POST', `/api/v1/admin/users/${id}/offboard`, { transfer_to: c.a === 'admin' ? U.admin.id : c.self }],
  ok: (c, r) => {
    const j = okJson(r, 200);
    assert.deepEqual([j.id, j.status], [c.tb, 'offboarded']);
  },
  verify: async (c, allowed) => {
    const u = (await usersOf(U.admin.token)).get(`off-${c.a}`);
    assert.equal(u.status, allowed ? 'offboarded' : 'active');
  },
  cleanup: async (c) => {
    const u = (await usersOf(U.admin.token)).get(`off-${c.a}`);
    if (u.status !== 'offboarded') okJson(await adm(['POST', `/api/v1/admin/users/${c.tb}/offboard`, { transfer_to: U.admin.id }]), 200, 'cleanup offboard');
    defaultActive.delete(`off-${c.a}`);
  },
});

adminRow('POST /admin/groups', {
  okStatus: 201, eveStatus: 201,
  req: (c) => ['POST', '/api/v1/admin/groups', { name: `grp-${c.a}` }],
  ok: (c, r) => {
    const j = okJson(r, 201);
    assert.deepEqual([j.name, j.members], ['grp-admin', []]);
    defaultGroups.add('grp-admin');
  },
  eve: (c, r) => {
    assert.equal(okJson(r, 201).name, 'grp-eve');
    eveGroupNames.add('grp-eve');
  },
  verify: async (c) => {
    assert.equal((await groupsOf(U.admin.token)).has(`grp-${c.a}`), c.a === 'admin');
    if (c.a === 'eve') assert.ok((await groupsOf(U.eve.token)).has('grp-eve'));
  },
});

adminRow('GET /admin/groups', {
  okStatus: 200, eveStatus: 200,
  req: () => ['GET', '/api/v1/admin/groups'],
  ok: (c, r) => {
    const j = okJson(r, 200);
    assert.deepEqual(j.groups.map((g) => g.name).sort(), [...defaultGroups].sort());
    assert.deepEqual(j.groups.find((g) => g.name === 'Team').members, [U.gus.id]);
  },
  eve: (c, r) => {
    const j = okJson(r, 200);
    assert.deepEqual(j.groups.map((g) => g.name).sort(), [...eveGroupNames].sort());
    assert.ok(!r.text().includes(G.team) && !r.text().includes(U.gus.id));
  },
});

adminRow('PUT /admin/groups/{id}/members', {
  okStatus: 200,
  id: () => G.team,
  // admin sets the same members; eve tries Team's id; members try to add themselves.
  req: (c, { id }) => ['PUT', `/api/v1/admin/groups/${id}/members`, { user_ids: c.a === 'admin' ? [U.gus.id] : [U.gus.id, c.self] }],
  ok: (c, r) => assert.deepEqual(okJson(r, 200).members, [U.gus.id]),
  verify: async () => assert.deepEqual((await groupsOf(U.admin.token)).get('Team').members, [U.gus.id]),
});

let policy;
adminRow('GET /admin/policy', {
  okStatus: 200, eveStatus: 200,
  req: () => ['GET', '/api/v1/admin/policy'],
  ok: (c, r) => {
    policy = okJson(r, 200);
    assert.deepEqual(Object.keys(policy).sort(), ['alert_webhook', 'allow_shares', 'blocked_types', 'bulk_download_alert', 'offboarded_retention', 'require_mfa', 'share_max_expiry', 'tenant_quota_bytes', 'trash_retention', 'user_quota_bytes', 'version_retention']);
  },
  eve: (c, r) => assert.equal(typeof okJson(r, 200).allow_shares, 'boolean'),
});

adminRow('PATCH /admin/policy', {
  okStatus: 200, eveStatus: 200,
  // admin sends its blocked types back unchanged; eve blocks a type in her tenant; members try to flip allow_shares.
  req: (c) => ['PATCH', '/api/v1/admin/policy', c.a === 'admin' ? { blocked_types: policy.blocked_types }
    : c.a === 'eve' ? { blocked_types: ['application/x-eve-only'] } : { allow_shares: !policy.allow_shares }],
  ok: (c, r) => assert.deepEqual(okJson(r, 200), policy),
  eve: (c, r) => assert.deepEqual(okJson(r, 200).blocked_types, ['application/x-eve-only']),
  verify: async () => assert.deepEqual(okJson(await adm(['GET', '/api/v1/admin/policy']), 200), policy, 'the default tenant\'s policy changed'),
});

// Cross-tenant ids inside bodies: exactly like random ids (400 naming nothing), for both admins.
adminRow('PUT /admin/groups/{own}/members naming another tenant\'s user', {
  okStatus: 400, eveStatus: 400,
  id: (c) => (c.a === 'eve' ? G.eveGroup : G.team),
  x: (c) => (c.a === 'eve' ? U.olga.id : U.eve.id),
  req: (c, { id, x }) => ['PUT', `/api/v1/admin/groups/${id}/members`, { user_ids: c.a === 'eve' ? [x] : [U.gus.id, x] }],
  ok: async (c, r) => {
    errorBody(r, 'bad_request');
    noLeak(r);
    await sameAsRandom(r, c.token, ['PUT', `/api/v1/admin/groups/${G.team}/members`, { user_ids: [U.gus.id, rid()] }]);
  },
  eve: async (c, r) => {
    errorBody(r, 'bad_request');
    noLeak(r);
    await sameAsRandom(r, c.token, ['PUT', `/api/v1/admin/groups/${G.eveGroup}/members`, { user_ids: [rid()] }]);
  },
  verify: async () => {
    assert.deepEqual((await groupsOf(U.admin.token)).get('Team').members, [U.gus.id]);
    assert.deepEqual((await groupsOf(U.eve.token)).get('EveGroup').members, []);
  },
});

adminRow('POST /admin/users/{own}/offboard {transfer_to: another tenant\'s user}', {
  okStatus: 400, eveStatus: 400,
  id: (c) => (c.a === 'eve' ? X.eveTb : X.tbXfer),
  x: (c) => (c.a === 'eve' ? U.olga.id : U.eve.id),
  req: (c, { id, x }) => ['POST', `/api/v1/admin/users/${id}/offboard`, { transfer_to: x }],
  ok: async (c, r) => {
    errorBody(r, 'bad_request');
    noLeak(r);
    await sameAsRandom(r, c.token, ['POST', `/api/v1/admin/users/${X.tbXfer}/offboard`, { transfer_to: rid() }]);
  },
  eve: async (c, r) => {
    errorBody(r, 'bad_request');
    noLeak(r);
    await sameAsRandom(r, c.token, ['POST', `/api/v1/admin/users/${X.eveTb}/offboard`, { transfer_to: rid() }]);
  },
  verify: async () => {
    assert.equal((await usersOf(U.admin.token)).get('tb-xfer').status, 'active');
    assert.equal((await usersOf(U.eve.token)).get('eve-tb').status, 'active');
  },
});

// ---- the table -----------------------------------------------------------------------------------

test('matrix table', (t) => {
  const w0 = Math.max(...[...table.keys()].map((k) => k.length), 9);
  const cw = 7;
  const lines = [];
  lines.push(`${'operation'.padEnd(w0)} | ${ACTORS.map((a) => a.padStart(cw)).join(' ')}`);
  lines.push(`${'-'.repeat(w0)}-+-${'-'.repeat((cw + 1) * ACTORS.length - 1)}`);
  for (const [label, row] of table) lines.push(`${label.padEnd(w0)} | ${ACTORS.map((a) => String(row[a] ?? '-').padStart(cw)).join(' ')}`);
  lines.push('');
  lines.push('Subjects: A = olga\'s private folder (owner olga), B = tenant-space folder (owner admin), C = tenant-space');
  lines.push('folder granted to "tenant" at view (owner admin), E = eve\'s private folder in the other tenant.');
  lines.push('Grants on A and B: vic view, dora download, ed edit, mia manage, group Team (gus) download, department');
  lines.push('Ops-DEPT view (dina; not nico, in its subdepartment), Labs-DEPT with subdepartments download (lars, in Deep-DEPT).');
  lines.push('A cell is the status received; "!" marks a cell whose assertions failed.');
  lines.push(`${cells} cells, ${failures.length} failed.`);
  for (const f of failures) lines.push(`FAILED ${f}`);
  lines.push(`${requests} requests; ${identical} answers proven byte-identical to the random-id answer; ${leakChecks} leak checks.`);
  for (const l of lines) t.diagnostic(l);
});
