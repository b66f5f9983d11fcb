// Departments (issue 23, docs/API.md "Departments", docs/SECURITY.md): the tree per tenant (create,
// rename, move, delete when empty) with exact statuses, stored state (also after a restart) and a
// provenance event naming the acting admin for every change; each user's primary and other
// departments; ACL entries naming a department with and without "subdepartments"; a user moved
// between departments, and a department moved in the tree, gain or lose access on the very next
// request with no ACL edit; a deleted department's entries are gone, so a new one of the same name
// inherits nothing; bad input (unknown ids 404, malformed 400, cycles 409 "cycle", non-empty delete
// 409 "not_empty", names like group names) changes nothing; what a member may not see is 404.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { Server, cli } from './lib/harness.mjs';

const HEX32 = /^[0-9a-f]{32}$/;
const ACME_PASSWORD = 'acme-admin-password-1';
const server = new Server();
let A, acme, adminId;
const U = {}; // username → {id, c}

before(async () => {
  await server.start();
  const l = await server.login();
  adminId = l.user.id;
  A = server.client(l.token);
  for (const u of ['bob', 'carol', 'dave', 'erin']) {
    const r = await A.req('POST', '/api/v1/admin/users', { body: { username: u, password: `${u}-password-1`, role: 'member' } });
    assert.equal(r.status, 201, r.text());
    U[u] = { id: r.json().id, c: server.client((await server.login(u, `${u}-password-1`)).token) };
  }
  await server.stop();
  assert.equal(cli(['tenant', 'create', 'acme', '-c', server.configPath]).status, 0);
  const add = cli(['user', 'add', '--tenant', 'acme', '--username', 'root', '--role', 'admin', '-c', server.configPath], { COFFER_USER_PASSWORD: ACME_PASSWORD });
  assert.equal(add.status, 0, add.stderr);
  await server.start();
  acme = server.client((await server.login('root', ACME_PASSWORD, 'acme')).token);
});

after(async () => {
  try { await server.stop(); } finally { server.cleanup(); }
});

// ---- helpers ------------------------------------------------------------------------------------

function assertError(r, status, code, what = '') {
  assert.equal(r.status, status, `${what}: ${r.status} ${r.text()}`);
  assert.equal(r.json().error, code, what);
  return r.json();
}

async function ok(p, status = 200) {
  const r = await p;
  assert.equal(r.status, status, r.text());
  return r.status === 204 ? null : r.json();
}

const depts = async (c = A) => (await ok(c.req('GET', '/api/v1/admin/departments'))).departments;
const create = (name, parent, c = A) => ok(c.req('POST', '/api/v1/admin/departments', { body: parent === undefined ? { name } : { name, parent } }), 201);
const patch = (id, body) => A.req('PATCH', `/api/v1/admin/departments/${id}`, { body });
const setDepts = (user, primary, others = []) => A.req('PUT', `/api/v1/admin/users/${user}/departments`, { body: { primary, others } });
const acl = (c, node, entries) => ok(c.req('PUT', `/api/v1/nodes/${node}/acl`, { body: { entries } }));
const level = async (c, node) => {
  const r = await c.node(node);
  if (r.status === 404) return 'none';
  assert.equal(r.status, 200, r.text());
  return r.json().my_level;
};
const teamRoot = async () => (await A.spaces()).tenant.root;
const randomId = () => crypto.randomBytes(16).toString('hex');

async function events(action) {
  return (await ok(A.req('GET', `/api/v1/audit?action=${action}&limit=500`))).events;
}

/** Empties a department of members and sub-departments (depth first) and deletes it. */
async function remove(id) {
  for (const d of (await depts()).filter((x) => x.parent === id)) await remove(d.id);
  const m = (await ok(A.req('GET', `/api/v1/admin/departments/${id}/members`))).members;
  for (const u of m) await ok(setDepts(u.id, null, []));
  await ok(A.req('DELETE', `/api/v1/admin/departments/${id}`), 204);
}

// ---- the tree -----------------------------------------------------------------------------------

test('tree: create, rename, move and delete with exact statuses, stored state (after a restart too) and events', async () => {
  const eng = await create('Engineering');
  assert.match(eng.id, HEX32);
  const { created_at: engAt, ...engRest } = eng;
  assert.ok(!Number.isNaN(Date.parse(engAt)));
  assert.deepEqual(engRest, { id: eng.id, name: 'Engineering', parent: null, path: 'Engineering', source: 'local', members: 0 });
  const be = await create('Backend', eng.id);
  assert.equal(be.path, 'Engineering/Backend');
  assert.equal(be.parent, eng.id);
  const st = await create('Storage', be.id);
  assert.equal(st.path, 'Engineering/Backend/Storage');
  const sales = await create('Sales', null);
  // Sibling names are unique case-insensitively; the same name under another parent is another department.
  assertError(await A.req('POST', '/api/v1/admin/departments', { body: { name: 'backend', parent: eng.id } }), 409, 'conflict', 'sibling name');
  assertError(await A.req('POST', '/api/v1/admin/departments', { body: { name: 'ENGINEERING' } }), 409, 'conflict', 'top-level name');
  const salesBe = await create('Backend', sales.id);
  assert.equal(salesBe.path, 'Sales/Backend');

  // Bad input changes nothing; a member is refused; another tenant's departments do not exist here.
  const acmeDept = await create('Acme', null, acme);
  const before = await depts();
  const bad = [
    [{ name: '' }, 400, 'bad_request', 'empty name'],
    [{ name: 'a/b' }, 400, 'bad_request', 'slash'],
    [{ name: 'x'.repeat(129) }, 400, 'bad_request', 'too long'],
    [{ name: 'a\u0001b' }, 400, 'bad_request', 'control character'],
    [{ name: 'x', title: 'y' }, 400, 'bad_request', 'unknown key'],
    [{ name: 7 }, 400, 'bad_request', 'a number'],
    [{}, 400, 'bad_request', 'no name'],
    [{ name: 'x', parent: 'nope' }, 400, 'bad_request', 'malformed parent'],
    [{ name: 'x', parent: 12 }, 400, 'bad_request', 'numeric parent'],
    [{ name: 'x', parent: randomId() }, 404, 'not_found', 'unknown parent'],
    [{ name: 'x', parent: acmeDept.id }, 404, 'not_found', "another tenant's parent"],
  ];
  for (const [body, status, code, what] of bad) assertError(await A.req('POST', '/api/v1/admin/departments', { body }), status, code, what);
  assertError(await A.req('POST', '/api/v1/admin/departments', { body: '{"name":' }), 400, 'bad_request', 'broken JSON');
  assertError(await U.bob.c.req('POST', '/api/v1/admin/departments', { body: { name: 'Mine' } }), 403, 'forbidden', 'a member creates');
  assertError(await U.bob.c.req('GET', '/api/v1/admin/departments'), 403, 'forbidden', 'a member lists');
  assertError(await U.bob.c.req('PATCH', `/api/v1/admin/departments/${eng.id}`, { body: { name: 'Mine' } }), 403, 'forbidden', 'a member renames');
  assertError(await U.bob.c.req('DELETE', `/api/v1/admin/departments/${sales.id}`), 403, 'forbidden', 'a member deletes');
  assertError(await patch(acmeDept.id, { name: 'x' }), 404, 'not_found', "another tenant's department");
  assertError(await A.req('DELETE', `/api/v1/admin/departments/${acmeDept.id}`), 404, 'not_found', "another tenant's department");
  assertError(await A.req('GET', `/api/v1/admin/departments/${acmeDept.id}/members`), 404, 'not_found', "another tenant's department");
  assertError(await patch('zz', { name: 'x' }), 404, 'not_found', 'malformed id in the path');
  assertError(await patch(randomId(), { name: 'x' }), 404, 'not_found', 'unknown id');
  assertError(await patch(eng.id, {}), 400, 'bad_request', 'nothing to change');
  assertError(await patch(eng.id, { name: 'a/b' }), 400, 'bad_request', 'rename to a slash');
  assertError(await patch(eng.id, { colour: 'red' }), 400, 'bad_request', 'unknown key');
  assert.deepEqual(await depts(), before, 'nothing changed');
  assert.ok(!before.some((d) => d.id === acmeDept.id), "another tenant's departments are not listed");
  assert.deepEqual((await depts(acme)).map((d) => d.path), ['Acme']);

  // Rename: paths below follow; a sibling's name is refused; a change of case is allowed.
  assert.equal((await ok(patch(be.id, { name: 'Platform' }))).path, 'Engineering/Platform');
  assert.equal((await depts()).find((d) => d.id === st.id).path, 'Engineering/Platform/Storage');
  const plat2 = await create('Tools', eng.id);
  assertError(await patch(plat2.id, { name: 'platform' }), 409, 'conflict', "a sibling's name");
  assert.equal((await ok(patch(plat2.id, { name: 'TOOLS' }))).name, 'TOOLS', 'a change of case');

  // Move: below another department, to the top; never below itself (409 cycle); unknown parent 404;
  // a name taken among the new siblings 409.
  assertError(await patch(eng.id, { parent: st.id }), 409, 'cycle', 'below its own grandchild');
  assertError(await patch(eng.id, { parent: eng.id }), 409, 'cycle', 'below itself');
  assertError(await patch(eng.id, { parent: randomId() }), 404, 'not_found', 'unknown parent');
  const topBe = await create('backend', null);
  assertError(await patch(salesBe.id, { parent: null }), 409, 'conflict', 'a top-level department has the name');
  await ok(A.req('DELETE', `/api/v1/admin/departments/${topBe.id}`), 204);
  let m = await ok(patch(salesBe.id, { parent: null }));
  assert.deepEqual([m.parent, m.path], [null, 'Backend']);
  m = await ok(patch(salesBe.id, { parent: eng.id }));
  assert.deepEqual([m.parent, m.path], [eng.id, 'Engineering/Backend']);
  m = await ok(patch(salesBe.id, { parent: sales.id, name: 'Field' }));
  assert.deepEqual([m.parent, m.name, m.path], [sales.id, 'Field', 'Sales/Field']);

  // At most 32 levels: a create or a move deeper is refused (400 too_deep), and changes nothing.
  let at = null;
  const chain = [];
  for (let i = 0; i < 32; i++) {
    const d = await create(`L${i}`, at);
    chain.push(d);
    at = d.id;
  }
  assert.equal(chain[31].path.split('/').length, 32);
  assertError(await A.req('POST', '/api/v1/admin/departments', { body: { name: 'L32', parent: at } }), 400, 'too_deep', 'a 33rd level');
  assertError(await patch(be.id, { parent: at }), 400, 'too_deep', 'a subtree moved too deep');
  assert.equal((await depts()).find((d) => d.id === be.id).path, 'Engineering/Platform');
  await remove(chain[0].id);

  // Delete: refused while it has sub-departments or members (409 not_empty), then 204, then 404.
  assertError(await A.req('DELETE', `/api/v1/admin/departments/${eng.id}`), 409, 'not_empty', 'sub-departments');
  await ok(setDepts(U.erin.id, plat2.id, []));
  assertError(await A.req('DELETE', `/api/v1/admin/departments/${plat2.id}`), 409, 'not_empty', 'a member');
  assert.equal((await depts()).find((d) => d.id === plat2.id).members, 1);
  await ok(setDepts(U.erin.id, null, []));
  await ok(A.req('DELETE', `/api/v1/admin/departments/${plat2.id}`), 204);
  assertError(await A.req('DELETE', `/api/v1/admin/departments/${plat2.id}`), 404, 'not_found', 'deleted twice');
  assertError(await patch(plat2.id, { name: 'again' }), 404, 'not_found', 'renaming a deleted department');
  assertError(await setDepts(U.erin.id, plat2.id, []), 404, 'not_found', 'joining a deleted department');

  // Stored: the same tree after a restart.
  const stored = await depts();
  assert.deepEqual(stored.map((d) => d.path), ['Engineering', 'Engineering/Platform', 'Engineering/Platform/Storage', 'Sales', 'Sales/Field']);
  await server.stop();
  await server.start();
  assert.deepEqual(await depts(), stored, 'the tree survives a restart');

  // Every change is an event naming the acting admin.
  const byAdmin = (e) => e.actor.type === 'user' && e.actor.id === adminId;
  const created = (await events('dept.create')).find((e) => e.detail.department === eng.id);
  assert.ok(created && byAdmin(created));
  assert.deepEqual([created.detail.name, created.detail.parent, created.detail.path], ['Engineering', null, 'Engineering']);
  const renamed = (await events('dept.rename')).find((e) => e.detail.department === be.id);
  assert.ok(renamed && byAdmin(renamed));
  assert.deepEqual([renamed.detail.old_name, renamed.detail.name, renamed.detail.path], ['Backend', 'Platform', 'Engineering/Platform']);
  const moves = (await events('dept.move')).filter((e) => e.detail.department === salesBe.id).reverse(); // oldest first
  assert.deepEqual(moves.map((e) => [e.detail.old_parent, e.detail.parent, e.detail.path]),
    [[sales.id, null, 'Backend'], [null, eng.id, 'Engineering/Backend'], [eng.id, sales.id, 'Sales/Backend']]);
  assert.ok(moves.every(byAdmin));
  const deleted = (await events('dept.delete')).find((e) => e.detail.department === plat2.id);
  assert.ok(deleted && byAdmin(deleted));
  assert.deepEqual([deleted.detail.name, deleted.detail.path, deleted.detail.acl_entries_removed], ['TOOLS', 'Engineering/TOOLS', 0]);
  const joined = (await events('user.departments')).filter((e) => e.detail.user === U.erin.id).reverse();
  assert.deepEqual(joined.map((e) => [e.detail.old_primary, e.detail.primary]), [[null, plat2.id], [plat2.id, null]]);
  assert.ok(joined.every(byAdmin));
  await remove(eng.id);
  await remove(sales.id);
});

// ---- a user's departments ------------------------------------------------------------------------

test("users: primary and other departments, listed with the user and the department; bad input changes nothing", async () => {
  const a = await create('Alpha');
  const b = await create('Beta');
  const c = await create('Gamma', b.id);
  const r = await ok(setDepts(U.bob.id, a.id, [b.id, c.id, b.id, a.id]));
  assert.deepEqual(r, { primary: a.id, others: [b.id, c.id].sort() });
  const listed = (await ok(A.req('GET', '/api/v1/admin/users'))).users.find((u) => u.id === U.bob.id);
  assert.deepEqual(listed.departments, { primary: a.id, others: [b.id, c.id].sort() });
  const carol = (await ok(A.req('GET', '/api/v1/admin/users'))).users.find((u) => u.id === U.carol.id);
  assert.deepEqual(carol.departments, { primary: null, others: [] });
  await ok(setDepts(U.carol.id, null, [a.id]));
  const ma = (await ok(A.req('GET', `/api/v1/admin/departments/${a.id}/members`))).members;
  assert.deepEqual(ma.map((x) => [x.username, x.primary]).sort(), [['bob', true], ['carol', false]]);
  assert.equal((await depts()).find((d) => d.id === a.id).members, 2);

  const bad = [
    [U.bob.id, { primary: randomId(), others: [] }, 404, 'not_found', 'unknown primary'],
    [U.bob.id, { primary: a.id, others: [randomId()] }, 404, 'not_found', 'unknown other'],
    [U.bob.id, { primary: 'x', others: [] }, 400, 'bad_request', 'malformed primary'],
    [U.bob.id, { primary: a.id, others: ['x'] }, 400, 'bad_request', 'malformed other'],
    [U.bob.id, { primary: a.id, others: 'x' }, 400, 'bad_request', 'others not a list'],
    [U.bob.id, { others: [] }, 400, 'bad_request', 'no primary'],
    [U.bob.id, { primary: a.id, extra: 1 }, 400, 'bad_request', 'unknown key'],
    [randomId(), { primary: a.id, others: [] }, 404, 'not_found', 'unknown user'],
    ['zz', { primary: a.id, others: [] }, 404, 'not_found', 'malformed user id'],
  ];
  for (const [user, body, status, code, what] of bad) assertError(await A.req('PUT', `/api/v1/admin/users/${user}/departments`, { body }), status, code, what);
  assertError(await U.bob.c.req('PUT', `/api/v1/admin/users/${U.bob.id}/departments`, { body: { primary: null, others: [] } }), 403, 'forbidden', 'a member');
  const acmeDept = await create('Elsewhere', null, acme);
  assertError(await setDepts(U.bob.id, acmeDept.id, []), 404, 'not_found', "another tenant's department");
  // An admin cannot join a department (and its grants) on their own say; another admin must.
  assertError(await setDepts(adminId, a.id, []), 403, 'forbidden', 'an admin adding themselves');
  const bobNow = (await ok(A.req('GET', '/api/v1/admin/users'))).users.find((u) => u.id === U.bob.id);
  assert.deepEqual(bobNow.departments, { primary: a.id, others: [b.id, c.id].sort() }, 'nothing changed');
  // The primary may become an other and back, and everything may go.
  assert.deepEqual(await ok(setDepts(U.bob.id, null, [a.id])), { primary: null, others: [a.id] });
  assert.deepEqual(await ok(setDepts(U.bob.id, null, [])), { primary: null, others: [] });
  await ok(setDepts(U.carol.id, null, []));
  for (const d of [c, b, a]) await ok(A.req('DELETE', `/api/v1/admin/departments/${d.id}`), 204);
});

// ---- access through departments --------------------------------------------------------------------

test('access: an entry on a department, with and without subdepartments; moves of users and of departments decide the very next request', async () => {
  const { bob, carol, dave } = U;
  const org = await create('Org');
  const eng = await create('Eng', org.id);
  const be = await create('Backend', eng.id);
  const ops = await create('Ops', org.id);
  const folder = await ok(A.mkdir(await teamRoot(), 'Eng handbook'), 201);
  const file = await ok(A.upload(folder.id, 'handbook.txt', Buffer.from('read me\n')), 201);
  await ok(setDepts(bob.id, eng.id, []));     // in Eng itself
  await ok(setDepts(carol.id, null, [be.id])); // in a sub-department of Eng (an "other" department)
  await ok(setDepts(dave.id, ops.id, []));    // elsewhere

  // Without subdepartments: the department's own members only.
  await acl(A, folder.id, [{ principal: `department:${eng.id}`, level: 'download' }]);
  assert.deepEqual([await level(bob.c, file.id), await level(carol.c, file.id), await level(dave.c, file.id)], ['download', 'none', 'none']);
  assert.equal((await bob.c.download(file.id)).text(), 'read me\n');
  assertError(await carol.c.download(file.id), 404, 'not_found', 'no access is 404, not 403');
  let view = await ok(A.req('GET', `/api/v1/nodes/${folder.id}/acl`));
  assert.deepEqual(view.entries, [{ principal: `department:${eng.id}`, level: 'download', name: 'Eng' }]);

  // With subdepartments: every department below it too.
  await acl(A, folder.id, [{ principal: `department:${eng.id}`, level: 'view', subdepartments: true }]);
  assert.deepEqual([await level(bob.c, file.id), await level(carol.c, file.id), await level(dave.c, file.id)], ['view', 'view', 'none']);
  view = await ok(A.req('GET', `/api/v1/nodes/${folder.id}/acl`));
  assert.deepEqual(view.entries, [{ principal: `department:${eng.id}`, level: 'view', name: 'Eng', subdepartments: true }]);
  const inherited = await ok(A.req('GET', `/api/v1/nodes/${file.id}/acl`));
  assert.deepEqual(inherited.inherited, [{ principal: `department:${eng.id}`, level: 'view', name: 'Eng', subdepartments: true, from: folder.id }]);
  const ev = (await (await A.req('GET', '/api/v1/audit?action=acl.change&limit=50')).json()).events.find((e) => e.node && e.node.id === folder.id);
  assert.deepEqual(ev.detail.entries, [{ principal: `department:${eng.id}`, level: 'view', subdepartments: true }]);
  // "Shared with me" and the directory a member picks from.
  assert.ok((await ok(carol.c.req('GET', '/api/v1/shared'))).items.some((n) => n.id === folder.id));
  assert.ok(!(await ok(dave.c.req('GET', '/api/v1/shared'))).items.some((n) => n.id === folder.id));
  const dir = await ok(dave.c.req('GET', '/api/v1/directory'));
  assert.deepEqual(dir.departments.filter((d) => [org.id, eng.id, be.id].includes(d.id)).map((d) => d.path).sort(), ['Org', 'Org/Eng', 'Org/Eng/Backend']);

  // A user moved between departments: the very next request, no ACL edit.
  await ok(setDepts(dave.id, null, [be.id]));
  assert.equal(await level(dave.c, file.id), 'view', 'moved into a sub-department');
  await ok(setDepts(bob.id, ops.id, []));
  assert.equal(await level(bob.c, file.id), 'none', 'moved out');
  assertError(await bob.c.download(file.id), 404, 'not_found');
  await ok(setDepts(bob.id, ops.id, [eng.id]));
  assert.equal(await level(bob.c, file.id), 'view', 'back, as an other department');

  // A department moved in the tree: what its members inherit follows on the very next request.
  await ok(patch(be.id, { parent: ops.id }));
  assert.deepEqual([await level(carol.c, file.id), await level(dave.c, file.id)], ['none', 'none'], 'Backend left Eng');
  await ok(patch(ops.id, { parent: eng.id }));
  assert.deepEqual([await level(carol.c, file.id), await level(dave.c, file.id)], ['view', 'view'], 'Ops (with Backend) moved under Eng');
  await ok(patch(ops.id, { parent: org.id }));
  assert.deepEqual([await level(carol.c, file.id), await level(bob.c, file.id)], ['none', 'view'], 'and back out');

  // A higher level from another entry wins; a department entry never lowers anything.
  await acl(A, folder.id, [{ principal: `department:${eng.id}`, level: 'view', subdepartments: true }, { principal: `user:${bob.id}`, level: 'edit' }]);
  assert.equal(await level(bob.c, file.id), 'edit');

  // Bad entries change nothing.
  const before = await ok(A.req('GET', `/api/v1/nodes/${folder.id}/acl`));
  const badEntries = [
    [[{ principal: `department:${randomId()}`, level: 'view' }], 'an unknown department'],
    [[{ principal: `department:${eng.id.slice(2)}`, level: 'view' }], 'a malformed id'],
    [[{ principal: `group:${eng.id}`, level: 'view' }], 'a department named as a group'],
    [[{ principal: `user:${bob.id}`, level: 'view', subdepartments: true }], 'subdepartments on a user entry'],
    [[{ principal: 'tenant', level: 'view', subdepartments: false }], 'subdepartments on a tenant entry'],
    [[{ principal: `department:${eng.id}`, level: 'view', subdepartments: 'yes' }], 'subdepartments not a boolean'],
    [[{ principal: `department:${eng.id}`, level: 'view' }, { principal: `department:${eng.id}`, level: 'edit', subdepartments: true }], 'a department twice'],
  ];
  for (const [entries, what] of badEntries) assertError(await A.req('PUT', `/api/v1/nodes/${folder.id}/acl`, { body: { entries } }), 400, 'bad_request', what);
  const acmeDept = await create('Acme Eng', null, acme);
  assertError(await A.req('PUT', `/api/v1/nodes/${folder.id}/acl`, { body: { entries: [{ principal: `department:${acmeDept.id}`, level: 'view' }] } }), 400, 'bad_request', "another tenant's department");
  assert.deepEqual(await ok(A.req('GET', `/api/v1/nodes/${folder.id}/acl`)), before, 'nothing changed');
  // A member without manage cannot grant to a department either (403: bob can see the folder).
  assertError(await bob.c.req('PUT', `/api/v1/nodes/${folder.id}/acl`, { body: { entries: [{ principal: `department:${ops.id}`, level: 'view' }] } }), 403, 'forbidden', 'edit is not manage');

  for (const u of [bob, carol, dave]) await ok(setDepts(u.id, null, []));
  await remove(org.id);
});

test('delete: a deleted department grants nothing any more; a new one of the same name inherits nothing', async () => {
  const { carol, dave } = U;
  const fin = await create('Finance');
  const folder = await ok(A.mkdir(await teamRoot(), 'Ledgers'), 201);
  const file = await ok(A.upload(folder.id, 'ledger.txt', Buffer.from('numbers\n')), 201);
  await acl(A, folder.id, [{ principal: `department:${fin.id}`, level: 'download' }, { principal: `user:${dave.id}`, level: 'view' }]);
  await ok(setDepts(carol.id, fin.id, []));
  assert.equal(await level(carol.c, file.id), 'download');
  await ok(setDepts(carol.id, null, []));
  assert.equal(await level(carol.c, file.id), 'none', 'left the department');
  await ok(A.req('DELETE', `/api/v1/admin/departments/${fin.id}`), 204);
  const after = await ok(A.req('GET', `/api/v1/nodes/${folder.id}/acl`));
  assert.deepEqual(after.entries, [{ principal: `user:${dave.id}`, level: 'view', name: 'dave' }], 'its entry is gone, the others stay');
  const ev = (await events('dept.delete')).find((e) => e.detail.department === fin.id);
  assert.equal(ev.detail.acl_entries_removed, 1);

  const fin2 = await create('Finance');
  assert.notEqual(fin2.id, fin.id);
  await ok(setDepts(carol.id, fin2.id, []));
  assert.equal(await level(carol.c, file.id), 'none', 'a new department of the same name inherits nothing');
  assertError(await carol.c.download(file.id), 404, 'not_found');
  assert.ok(!(await ok(carol.c.req('GET', '/api/v1/shared'))).items.some((n) => n.id === folder.id));
  await ok(setDepts(carol.id, null, []));
  await ok(A.req('DELETE', `/api/v1/admin/departments/${fin2.id}`), 204);
});

const deptAlerts = async (c) => (await ok(c.req('GET', '/api/v1/me/alerts'))).alerts
  .filter((x) => x.kind === 'alert.department_change')
  .map((x) => (typeof x.detail === 'string' ? JSON.parse(x.detail) : x.detail));

test('private spaces: a member may grant their own folder to a department; its owner is told of every change of who that reaches', async () => {
  const { bob, carol, dave, erin } = U;
  const team = await create('Team');
  await ok(setDepts(carol.id, team.id, []));
  const priv = (await bob.c.spaces()).private.root;
  const mine = await ok(bob.c.mkdir(priv, 'For the team'), 201);
  const secret = await ok(bob.c.mkdir(priv, 'Not for the team'), 201);
  await acl(bob.c, mine.id, [{ principal: `department:${team.id}`, level: 'edit' }]);
  assert.equal(await level(carol.c, mine.id), 'edit');
  assert.equal(await level(carol.c, secret.id), 'none');
  assert.equal(await level(dave.c, mine.id), 'none');
  // The admin adding dave to the department gives dave what bob granted to it: bob is told.
  const before = (await deptAlerts(bob.c)).length;
  await ok(setDepts(dave.id, null, [team.id]));
  assert.equal(await level(dave.c, mine.id), 'edit');
  let told = await deptAlerts(bob.c);
  assert.equal(told.length, before + 1);
  assert.deepEqual(told[0], { user: dave.id, by: adminId, added: [team.id], removed: [] });
  // A change that reaches no grant of bob's tells him nothing.
  const other = await create('Elsewhere');
  await ok(setDepts(erin.id, other.id, []));
  assert.equal((await deptAlerts(bob.c)).length, before + 1);
  // A department moved under Team: its members reach bob's folder only through an entry with
  // subdepartments; bob is told either way (the move changes who is below Team).
  await acl(bob.c, mine.id, [{ principal: `department:${team.id}`, level: 'edit', subdepartments: true }]);
  assert.equal(await level(erin.c, mine.id), 'none');
  await ok(patch(other.id, { parent: team.id }));
  assert.equal(await level(erin.c, mine.id), 'edit', 'erin is below Team now');
  told = await deptAlerts(bob.c);
  assert.equal(told.length, before + 2);
  assert.deepEqual(told[0], { department: other.id, name: 'Elsewhere', by: adminId, old_parent: null, parent: team.id });
  await ok(patch(other.id, { parent: null }));
  assert.equal(await level(erin.c, mine.id), 'none');
  await ok(setDepts(erin.id, null, []));
  await ok(A.req('DELETE', `/api/v1/admin/departments/${other.id}`), 204);
  for (const u of [carol, dave]) await ok(setDepts(u.id, null, []));
  assert.equal(await level(carol.c, mine.id), 'none');
  await ok(A.req('DELETE', `/api/v1/admin/departments/${team.id}`), 204);
  assert.deepEqual((await ok(bob.c.req('GET', `/api/v1/nodes/${mine.id}/acl`))).entries, []);
});
