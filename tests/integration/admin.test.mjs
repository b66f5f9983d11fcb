// Administration of issue 21 (docs/API.md "Administration", docs/OPERATIONS.md "Uploads without
// signatures"): the admin's list of every external link with its filters and bulk revoke (links of
// another tenant are not found), renaming and deleting groups (a deleted group never grants anything
// again, not even through a new group of the same name), deleting offboarded users, "Team files"
// for members (only what they can see), and the development mode without signatures: /healthz 503
// "scan": "disabled" unless accepted, and the rescan job that scans files accepted unscanned once
// signatures arrive (an EICAR uploaded meanwhile is found and purged).
//
// Servers: `main` (the test signature database), `dev` (scan.development with an empty signature
// directory, filled by the test), and a short-lived `accepted` (development + accept_unscanned).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Server, cli, EICAR, writeSignatureDb } from './lib/harness.mjs';

const HEX32 = /^[0-9a-f]{32}$/;
const ACME_PASSWORD = 'acme-admin-password-1';
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-admin-'));
const emptySigs = fs.mkdtempSync(path.join(work, 'sigs-'));

const main = new Server();
const dev = new Server({ config: { scan: { database_dir: emptySigs, development: 'true' } } });
let A, acme; // main's admin client, acme's admin client
const users = {}; // username → {id, c (client)}

before(async () => {
  await Promise.all([main.start(), dev.start()]);
  A = main.client((await main.login()).token);
  for (const u of ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'audrey']) {
    const r = await A.req('POST', '/api/v1/admin/users', { body: { username: u, password: `${u}-password-1`, role: u === 'audrey' ? 'auditor' : 'member' } });
    assert.equal(r.status, 201, r.text());
    users[u] = { id: r.json().id, c: main.client((await main.login(u, `${u}-password-1`)).token) };
  }
  assert.equal(cli(['tenant', 'create', 'acme', '-c', main.configPath]).status, 0);
  const add = cli(['user', 'add', '--tenant', 'acme', '--username', 'root', '--role', 'admin', '-c', main.configPath], { COFFER_USER_PASSWORD: ACME_PASSWORD });
  assert.equal(add.status, 0, add.stderr);
  acme = main.client((await main.login('root', ACME_PASSWORD, 'acme')).token);
});

after(async () => {
  const errors = [];
  for (const s of [main, dev]) {
    try { await s.stop(); } catch (e) { errors.push(e); }
    s.cleanup();
  }
  fs.rmSync(work, { recursive: true, force: true });
  if (errors.length) throw errors[0];
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

const root = async (c, which) => (await c.spaces())[which].root;
const upload = async (c, parent, name, data = `${name}\n`) => ok(c.upload(parent, name, Buffer.from(data)), 201);
const link = (c, node, extra = {}) => ok(c.req('POST', '/api/v1/shares', { body: { node, permission: 'download', ...extra } }), 201);
const acl = (c, node, entries) => ok(c.req('PUT', `/api/v1/nodes/${node}/acl`, { body: { entries } }));
const adminShares = (q = '') => A.req('GET', `/api/v1/admin/shares${q}`);
const tokenOf = (sh) => sh.url.split('/s/')[1];

async function events(action, extra = '') {
  return (await ok(A.req('GET', `/api/v1/audit?action=${action}&limit=500${extra}`))).events;
}

// ---- links ----------------------------------------------------------------------------------------

test('links: the admin lists every link of the tenant with owner, node and state filters and pages; nothing of another tenant', async () => {
  const { alice, bob } = users;
  const ap = await upload(alice.c, await root(alice.c, 'private'), 'alice-private.txt');
  const bp = await upload(bob.c, await root(bob.c, 'private'), 'bob-private.txt');
  const team = await ok(A.mkdir(await root(A, 'tenant'), 'Links team'), 201);
  await acl(A, team.id, [{ principal: `user:${alice.id}`, level: 'manage' }]);
  const tf = await upload(alice.c, team.id, 'team-file.txt');
  const l1 = await link(alice.c, ap.id);
  const l2 = await link(alice.c, tf.id);
  const l3 = await link(bob.c, bp.id);
  const other = await link(acme, (await upload(acme, await root(acme, 'private'), 'acme.txt')).id);

  const all = await ok(adminShares());
  assert.equal(all.next_cursor, null);
  const ids = all.items.map((s) => s.id);
  for (const l of [l1, l2, l3]) assert.ok(ids.includes(l.id), `link ${l.id} listed`);
  assert.ok(!ids.includes(other.id), 'a link of another tenant is never listed');
  const i1 = all.items.find((s) => s.id === l1.id);
  assert.equal(i1.creator, alice.id);
  assert.equal(i1.creator_name, 'alice');
  assert.equal(i1.node, ap.id);
  assert.equal(i1.node_name, null, "a private file's name stays its owner's");
  assert.equal(i1.node_type, 'file');
  assert.equal(i1.state, 'active');
  assert.equal(i1.url, undefined, "another member's link: no url");
  assert.equal(i1.code, undefined, "another member's link: no code");
  const i2 = all.items.find((s) => s.id === l2.id);
  assert.equal(i2.node_name, 'team-file.txt', 'a team-space file is named');

  const byOwner = await ok(adminShares(`?owner=${bob.id}`));
  assert.deepEqual(byOwner.items.map((s) => s.id), [l3.id]);
  const byNode = await ok(adminShares(`?node=${tf.id}`));
  assert.deepEqual(byNode.items.map((s) => s.id), [l2.id]);
  assert.deepEqual((await ok(adminShares(`?node=${crypto.randomBytes(16).toString('hex')}`))).items, []);

  await ok(alice.c.req('DELETE', `/api/v1/shares/${l1.id}`), 204);
  const revoked = await ok(adminShares(`?state=revoked&owner=${alice.id}`));
  assert.deepEqual(revoked.items.map((s) => s.id), [l1.id]);
  const active = await ok(adminShares('?state=active'));
  assert.ok(active.items.every((s) => s.state === 'active'));
  assert.ok(!active.items.some((s) => s.id === l1.id));

  // Pages of one: every link once, in id order, then next_cursor null.
  const seen = [];
  let cursor = '';
  for (let guard = 0; guard < 100; guard++) {
    const p = await ok(adminShares(`?limit=1${cursor ? `&cursor=${cursor}` : ''}`));
    assert.ok(p.items.length <= 1);
    seen.push(...p.items.map((s) => s.id));
    if (p.next_cursor === null) break;
    assert.match(p.next_cursor, HEX32);
    cursor = p.next_cursor;
  }
  assert.deepEqual(seen, [...ids].sort());
  assert.deepEqual(ids, [...ids].sort(), 'the list is in id order');

  assertError(await adminShares('?state=bogus'), 400, 'bad_request', 'unknown state');
  assertError(await adminShares('?owner=alice'), 400, 'bad_request', 'owner is an id');
  assertError(await adminShares('?limit=0'), 400, 'bad_request', 'limit 0');
  assertError(await adminShares('?limit=1001'), 400, 'bad_request', 'limit too large');
  assertError(await adminShares('?cursor=xyz'), 400, 'bad_request', 'bad cursor');
  assertError(await adminShares('?own=x'), 400, 'unknown_parameter', 'misspelt filter');
  assertError(await alice.c.req('GET', '/api/v1/admin/shares'), 403, 'forbidden', 'members');
  assertError(await users.audrey.c.req('GET', '/api/v1/admin/shares'), 403, 'forbidden', 'auditors');
  // acme's admin sees acme's link only.
  assert.deepEqual((await ok(acme.req('GET', '/api/v1/admin/shares'))).items.map((s) => s.id), [other.id]);
});

test('links: bulk revoke validates every id first (another tenant\'s is not found: nothing changes), counts only what it revoked, one event each', async () => {
  const { alice, bob } = users;
  const f = await upload(alice.c, await root(alice.c, 'private'), 'bulk.txt');
  const a = await link(alice.c, f.id);
  const b = await link(alice.c, f.id);
  const c = await link(bob.c, (await upload(bob.c, await root(bob.c, 'private'), 'bulk-b.txt')).id);
  const other = await link(acme, (await upload(acme, await root(acme, 'private'), 'acme-bulk.txt')).id);
  await ok(alice.c.req('DELETE', `/api/v1/shares/${b.id}`), 204);
  const revoke = (ids, c2 = A) => c2.req('POST', '/api/v1/admin/shares/revoke', { body: { ids } });
  const stateOf = async (id) => (await ok(adminShares(`?owner=${alice.id}`))).items.concat((await ok(adminShares(`?owner=${bob.id}`))).items).find((s) => s.id === id).state;

  assertError(await revoke([a.id, other.id]), 404, 'not_found', 'a link of another tenant');
  assertError(await revoke([a.id, crypto.randomBytes(16).toString('hex')]), 404, 'not_found', 'no such link');
  assert.equal(await stateOf(a.id), 'active', 'nothing was revoked by a refused request');
  assert.equal((await acme.req('GET', `/s/${tokenOf(other)}/info`)).status !== 410, true);
  assert.equal((await ok(acme.req('GET', '/api/v1/admin/shares'))).items[0].state, 'active', "acme's link untouched");

  const before = (await events('share.revoke')).length;
  assert.deepEqual(await ok(revoke([a.id, b.id, c.id, a.id])), { revoked: 2 }, 'b was already revoked; a named twice counts once');
  assert.equal(await stateOf(a.id), 'revoked');
  assert.equal(await stateOf(c.id), 'revoked');
  const evs = await events('share.revoke');
  assert.equal(evs.length, before + 2);
  const mine = evs.filter((e) => e.share === a.id || e.share === c.id);
  assert.equal(mine.length, 2);
  for (const e of mine) {
    assert.equal(e.actor.name, 'admin');
    assert.equal(e.detail.by, 'admin');
    assert.ok(e.node, 'the event names the node');
  }
  const info = await main.request('GET', `/s/${tokenOf(a)}/info`);
  assert.equal(info.status, 410, 'the recipient finds it revoked');
  assert.deepEqual(await ok(revoke([a.id])), { revoked: 0 }, 'revoking again revokes nothing');

  assertError(await revoke([]), 400, 'bad_request', 'empty');
  assertError(await revoke(['nothex']), 400, 'bad_request', 'not an id');
  assertError(await A.req('POST', '/api/v1/admin/shares/revoke', { body: { ids: [a.id], all: true } }), 400, 'bad_request', 'unknown key');
  assertError(await A.req('POST', '/api/v1/admin/shares/revoke', { body: { ids: 'x' } }), 400, 'bad_request', 'not an array');
  assertError(await revoke([c.id], users.bob.c), 403, 'forbidden', 'members');
});

// ---- groups -----------------------------------------------------------------------------------------

test('groups: rename (unique names, case-insensitively; a change of case is allowed) with a group.rename event', async () => {
  const g1 = await ok(A.req('POST', '/api/v1/admin/groups', { body: { name: 'Sales' } }), 201);
  await ok(A.req('POST', '/api/v1/admin/groups', { body: { name: 'Ops' } }), 201);
  assertError(await A.req('PATCH', `/api/v1/admin/groups/${g1.id}`, { body: { name: 'ops' } }), 409, 'conflict', 'taken');
  const r = await ok(A.req('PATCH', `/api/v1/admin/groups/${g1.id}`, { body: { name: 'Marketing' } }));
  assert.deepEqual({ id: r.id, name: r.name, members: r.members }, { id: g1.id, name: 'Marketing', members: [] });
  assert.equal((await ok(A.req('PATCH', `/api/v1/admin/groups/${g1.id}`, { body: { name: 'MARKETING' } }))).name, 'MARKETING');
  // The old name is free again.
  await ok(A.req('POST', '/api/v1/admin/groups', { body: { name: 'sales' } }), 201);
  const names = (await ok(A.req('GET', '/api/v1/admin/groups'))).groups.map((g) => g.name);
  assert.ok(names.includes('MARKETING') && names.includes('sales') && !names.includes('Marketing'));
  const ev = (await events('group.rename')).filter((e) => e.detail.group === g1.id);
  assert.deepEqual(ev.map((e) => [e.detail.old_name, e.detail.name]), [['Marketing', 'MARKETING'], ['Sales', 'Marketing']]);

  assertError(await A.req('PATCH', `/api/v1/admin/groups/${crypto.randomBytes(16).toString('hex')}`, { body: { name: 'x' } }), 404, 'not_found', 'unknown');
  assertError(await A.req('PATCH', `/api/v1/admin/groups/${g1.id}`, { body: { name: 'a/b' } }), 400, 'bad_request', 'slash');
  assertError(await A.req('PATCH', `/api/v1/admin/groups/${g1.id}`, { body: { name: '' } }), 400, 'bad_request', 'empty');
  assertError(await A.req('PATCH', `/api/v1/admin/groups/${g1.id}`, { body: { title: 'x' } }), 400, 'bad_request', 'unknown key');
  assertError(await users.alice.c.req('PATCH', `/api/v1/admin/groups/${g1.id}`, { body: { name: 'x' } }), 403, 'forbidden', 'member');
  const acmeGroup = await ok(acme.req('POST', '/api/v1/admin/groups', { body: { name: 'Acme' } }), 201);
  assertError(await A.req('PATCH', `/api/v1/admin/groups/${acmeGroup.id}`, { body: { name: 'x' } }), 404, 'not_found', 'another tenant');
  assertError(await A.req('DELETE', `/api/v1/admin/groups/${acmeGroup.id}`), 404, 'not_found', 'another tenant');
});

test('groups: a deleted group grants nothing any more, and a new group of the same name inherits nothing', async () => {
  const { carol, dave } = users;
  const folder = await ok(A.mkdir(await root(A, 'tenant'), 'Readers only'), 201);
  const file = await upload(A, folder.id, 'memo.txt', 'for readers\n');
  const g = await ok(A.req('POST', '/api/v1/admin/groups', { body: { name: 'Readers' } }), 201);
  await ok(A.req('PUT', `/api/v1/admin/groups/${g.id}/members`, { body: { user_ids: [carol.id] } }));
  await acl(A, folder.id, [{ principal: `group:${g.id}`, level: 'download' }]);
  const bobs = await ok(users.bob.c.mkdir(await root(users.bob.c, 'private'), 'For readers'), 201);
  await acl(users.bob.c, bobs.id, [{ principal: `group:${g.id}`, level: 'view' }]);
  assert.equal((await carol.c.node(bobs.id)).status, 200);
  assert.equal((await carol.c.node(file.id)).status, 200, 'granted through the group');
  assert.equal((await carol.c.download(file.id)).status, 200);

  await ok(A.req('DELETE', `/api/v1/admin/groups/${g.id}`), 204);
  assert.equal((await carol.c.node(file.id)).status, 404, 'the deleted group grants nothing');
  assert.equal((await carol.c.node(folder.id)).status, 404);
  const after = await ok(A.req('GET', `/api/v1/nodes/${folder.id}/acl`));
  assert.deepEqual(after.entries, [], "its ACL entry is gone");
  assert.ok(!(await ok(A.req('GET', '/api/v1/admin/groups'))).groups.some((x) => x.id === g.id));
  const ev = (await events('group.delete')).find((e) => e.detail.group === g.id);
  assert.deepEqual([ev.detail.name, ev.detail.members, ev.detail.acl_entries_removed], ['Readers', 1, 2]);
  assert.equal((await carol.c.node(bobs.id)).status, 404);
  // The owner of a private folder the group could read is told.
  const told = (await ok(users.bob.c.req('GET', '/api/v1/me/alerts'))).alerts
    .map((x) => (typeof x.detail === 'string' ? JSON.parse(x.detail) : x.detail))
    .filter((d) => d.group === g.id && d.deleted === true);
  assert.equal(told.length, 1);
  assert.equal(told[0].name, 'Readers');
  assertError(await A.req('DELETE', `/api/v1/admin/groups/${g.id}`), 404, 'not_found', 'deleted twice');
  assertError(await A.req('PUT', `/api/v1/admin/groups/${g.id}/members`, { body: { user_ids: [carol.id] } }), 404, 'not_found', 'members of a deleted group');

  // The name again, with both carol and dave: a different group, with nothing granted.
  const g2 = await ok(A.req('POST', '/api/v1/admin/groups', { body: { name: 'Readers' } }), 201);
  assert.notEqual(g2.id, g.id);
  await ok(A.req('PUT', `/api/v1/admin/groups/${g2.id}/members`, { body: { user_ids: [carol.id, dave.id] } }));
  for (const u of [carol, dave]) {
    assert.equal((await u.c.node(file.id)).status, 404, 'a new group of the same name inherits nothing');
    assert.equal((await u.c.download(file.id)).status, 404);
  }
  assert.deepEqual((await ok(carol.c.req('GET', '/api/v1/shared'))).items.filter((n) => n.id === folder.id), []);
});

// ---- users ------------------------------------------------------------------------------------------

test('users: only offboarded users can be deleted; their grants go, their events stay and name them, their username is free again', async () => {
  const { erin, frank, alice } = users;
  const team = await ok(A.mkdir(await root(A, 'tenant'), 'Erin was here'), 201);
  await acl(A, team.id, [{ principal: `user:${erin.id}`, level: 'edit' }]);
  await upload(erin.c, team.id, 'erin.txt');
  assertError(await A.req('DELETE', `/api/v1/admin/users/${erin.id}`), 409, 'conflict', 'an active user');
  await ok(A.req('PATCH', `/api/v1/admin/users/${erin.id}`, { body: { status: 'frozen' } }));
  assertError(await A.req('DELETE', `/api/v1/admin/users/${erin.id}`), 409, 'conflict', 'a frozen user');
  await ok(A.req('PATCH', `/api/v1/admin/users/${erin.id}`, { body: { status: 'active' } }));
  await ok(A.req('POST', `/api/v1/admin/users/${erin.id}/offboard`, { body: { transfer_to: alice.id } }));
  await ok(A.req('DELETE', `/api/v1/admin/users/${erin.id}`), 204);

  const list = (await ok(A.req('GET', '/api/v1/admin/users'))).users;
  assert.ok(!list.some((u) => u.id === erin.id || u.username === 'erin'));
  assert.deepEqual((await ok(A.req('GET', `/api/v1/nodes/${team.id}/acl`))).entries, [], 'her ACL entry is gone');
  const hers = (await ok(A.req('GET', `/api/v1/audit?actor=user:${erin.id}&limit=100`))).events;
  assert.ok(hers.some((e) => e.action === 'file.upload'), 'her events stay');
  assert.ok(hers.every((e) => e.actor.name === 'erin'), 'and name her');
  const del = (await events('user.delete')).find((e) => e.detail.user === erin.id);
  assert.deepEqual([del.detail.username, del.detail.status, del.actor.name, del.detail.acl_entries_removed], ['erin', 'offboarded', 'admin', 1]);
  assertError(await A.req('DELETE', `/api/v1/admin/users/${erin.id}`), 404, 'not_found', 'deleted twice');
  assertError(await A.req('PATCH', `/api/v1/admin/users/${erin.id}`, { body: { status: 'active' } }), 404, 'not_found', 'patched after deletion');
  const login = await main.request('POST', '/api/v1/auth/login', { body: { username: 'erin', password: 'erin-password-1' } });
  assert.equal(login.status, 401);

  // The username again: a new user, granted nothing of the old one's.
  const again = await ok(A.req('POST', '/api/v1/admin/users', { body: { username: 'erin', password: 'erin-password-2' } }), 201);
  assert.notEqual(again.id, erin.id);
  const e2 = main.client((await main.login('erin', 'erin-password-2')).token);
  assert.equal((await e2.node(team.id)).status, 404);

  // An archived private space that still holds files waits for its retention.
  await upload(frank.c, await root(frank.c, 'private'), 'kept.txt');
  await ok(A.req('POST', `/api/v1/admin/users/${frank.id}/offboard`, { body: { transfer_to: alice.id, private_space: 'archive' } }));
  const refused = assertError(await A.req('DELETE', `/api/v1/admin/users/${frank.id}`), 409, 'conflict', 'archived space with files');
  assert.match(refused.message, /archived private space still holds files/);

  assertError(await A.req('DELETE', `/api/v1/admin/users/${crypto.randomBytes(16).toString('hex')}`), 404, 'not_found', 'unknown');
  assertError(await A.req('DELETE', '/api/v1/admin/users/xyz'), 404, 'not_found', 'not an id');
  assertError(await users.bob.c.req('DELETE', `/api/v1/admin/users/${frank.id}`), 403, 'forbidden', 'member');
});

// ---- team files -------------------------------------------------------------------------------------

test('team files: a member lists the team space root and sees only what they may see; auditors see nothing', async () => {
  const { dave, bob, audrey } = users;
  const troot = await root(A, 'tenant');
  const visible = await ok(A.mkdir(troot, 'Dave can see'), 201);
  const hidden = await ok(A.mkdir(troot, 'Secret plans'), 201);
  const everyone = await ok(A.mkdir(troot, 'Everyone'), 201);
  await acl(A, visible.id, [{ principal: `user:${dave.id}`, level: 'view' }]);
  await acl(A, everyone.id, [{ principal: 'tenant', level: 'download' }]);
  await upload(A, hidden.id, 'inside.txt');

  const rootNode = await ok(dave.c.node(troot));
  assert.equal(rootNode.id, troot);
  assert.equal(rootNode.my_level, 'none', 'no level on the root itself');
  const names = async (c) => {
    const out = [];
    let cursor = '';
    for (let guard = 0; guard < 100; guard++) {
      const p = await ok(c.children(troot, `?limit=1${cursor ? `&cursor=${cursor}` : ''}`));
      out.push(...p.items.map((n) => `${n.name}:${n.my_level}`));
      if (p.next_cursor === null) break;
      cursor = p.next_cursor;
    }
    return out.sort();
  };
  const daves = await names(dave.c);
  assert.ok(daves.includes('Dave can see:view') && daves.includes('Everyone:download'), daves.join());
  assert.ok(!daves.some((n) => n.startsWith('Secret plans')), 'an invisible child is never listed');
  assert.equal((await dave.c.node(hidden.id)).status, 404);
  assert.equal((await dave.c.children(hidden.id)).status, 404);
  const bobs = await names(bob.c);
  assert.ok(bobs.includes('Everyone:download') && !bobs.some((n) => n.startsWith('Dave can see') || n.startsWith('Secret plans')), bobs.join());
  // Nothing is writable there for them.
  assertError(await dave.c.mkdir(troot, 'mine'), 404, 'not_found', 'no level: creating answers as if absent');
  // The admin lists everything; an auditor nothing.
  const all = (await ok(A.children(troot, '?limit=1000'))).items.map((n) => n.name);
  assert.ok(all.includes('Secret plans'));
  assert.equal((await audrey.c.node(troot)).status, 404);
  assert.equal((await audrey.c.children(troot)).status, 404);
  // Another tenant's member: not found.
  assert.equal((await acme.children(troot)).status, 404);
});

// ---- no signatures ------------------------------------------------------------------------------------

test('healthz: with signatures 200 "ok"; /me says "scan": "ok"', async () => {
  const h = await main.request('GET', '/healthz');
  assert.equal(h.status, 200);
  assert.deepEqual(h.json(), { status: 'ok' });
  assert.equal((await ok(A.req('GET', '/api/v1/me'))).scan, 'ok');
});

test('healthz: development without signatures answers 503 "scan": "disabled" unless scan.accept_unscanned', async () => {
  const h = await dev.request('GET', '/healthz');
  assert.equal(h.status, 503);
  assert.equal(h.json().status, 'degraded');
  assert.equal(h.json().scan, 'disabled');
  assert.match(h.json().warning, /not checked for malware.*accept_unscanned/);
  const d = dev.client((await dev.login()).token);
  assert.equal((await ok(d.req('GET', '/api/v1/me'))).scan, 'disabled');

  const accepted = await new Server({ config: { scan: { database_dir: emptySigs, development: 'true', accept_unscanned: 'true' } } }).start();
  try {
    const a = await accepted.request('GET', '/healthz');
    assert.equal(a.status, 200);
    assert.deepEqual(a.json(), { status: 'ok', scan: 'disabled', scanner: 'development: no signatures',
      warning: 'DEVELOPMENT MODE: uploads are not checked for malware (scan.accept_unscanned)' });
  } finally {
    await accepted.stop();
    accepted.cleanup();
  }
});

test('rescan: files accepted unscanned are scanned once signatures arrive; an EICAR is purged with an event and an alert', async () => {
  const d = dev.client((await dev.login()).token);
  const r0 = await d.spaces();
  const clean = await ok(d.upload(r0.private.root, 'notes.txt', Buffer.from('nothing to see\n')), 201);
  const bad = await ok(d.upload(r0.private.root, 'eicar.txt', EICAR), 201);
  const teamBad = await ok(d.upload(r0.tenant.root, 'eicar-team.com', EICAR), 201);
  for (const n of [clean, bad, teamBad]) assert.equal(n.scan.result, 'unchecked');
  const from = dev.stderr.length;

  writeSignatureDb(emptySigs); // the scanners notice the directory change and reload
  await dev.waitForLog(/rescan: done: 3 of 3 scanned, 2 found and purged, 0 not scanned/, { from });
  assert.equal((await d.node(bad.id)).status, 404, 'the infected file is gone');
  assert.equal((await d.node(teamBad.id)).status, 404);
  const c = await ok(d.node(clean.id));
  assert.equal(c.scan.result, 'clean');
  assert.match(c.scan.database, /^[0-9a-f]+$/);
  assert.equal((await d.download(clean.id)).body.toString(), 'nothing to see\n');

  const evs = (await ok(d.req('GET', '/api/v1/audit?action=file.infected&limit=10'))).events;
  assert.equal(evs.length, 2);
  for (const e of evs) {
    assert.equal(e.actor.type, 'system');
    assert.equal(e.result, 'infected');
    assert.match(e.detail.signature, /^Test\.EICAR/);
    assert.equal(e.detail.action, 'purged');
    assert.equal(e.detail.sha256, crypto.createHash('sha256').update(EICAR).digest('hex'));
  }
  assert.deepEqual(evs.map((e) => e.node.id).sort(), [bad.id, teamBad.id].sort());
  const sum = (await ok(d.req('GET', '/api/v1/audit?action=scan.rescan&limit=10'))).events;
  assert.deepEqual([sum[0].detail.files, sum[0].detail.scanned, sum[0].detail.found, sum[0].detail.failed], [3, 3, 2, 0]);
  const alerts = (await ok(d.req('GET', '/api/v1/me/alerts'))).alerts.filter((x) => x.kind === 'alert.infected_file');
  assert.equal(alerts.length, 2);

  const st = cli(['status', '-c', dev.configPath]);
  assert.equal(st.status, 0, st.stderr);
  assert.match(st.stdout, /^rescan: done: 3\/3 scanned, 2 found, 0 not scanned \(files accepted unscanned\)$/m);
  assert.doesNotMatch(st.stdout, /^scanner:/m, 'the scanners have signatures now');
  const h = await dev.request('GET', '/healthz');
  assert.equal(h.status, 200);
  assert.deepEqual(h.json(), { status: 'ok' });
  assert.equal((await ok(d.req('GET', '/api/v1/me'))).scan, 'ok');
  // New uploads are scanned for real now.
  assertError(await d.upload(r0.private.root, 'again.txt', EICAR), 422, 'infected', 'scanned on upload');
});

test('rescan: files accepted unscanned by an earlier run are scanned when a server with signatures starts', async () => {
  const none = fs.mkdtempSync(path.join(work, 'later-'));
  const s = await new Server({ config: { scan: { database_dir: none, development: 'true' } } }).start();
  try {
    const c = s.client((await s.login()).token);
    const r0 = await c.spaces();
    const bad = await ok(c.upload(r0.private.root, 'early.com', EICAR), 201);
    const good = await ok(c.upload(r0.private.root, 'early.txt', Buffer.from('early\n')), 201);
    assert.equal(bad.scan.result, 'unchecked');
    await s.stop();
    // The operator installs signatures and turns development mode off.
    writeSignatureDb(none);
    s.opts.config = { scan: { database_dir: none } };
    const from = s.stderr.length;
    await s.start();
    await s.waitForLog(/rescan: done: 2 of 2 scanned, 1 found and purged, 0 not scanned/, { from });
    const c2 = s.client((await s.login()).token);
    assert.equal((await c2.node(bad.id)).status, 404);
    assert.equal((await ok(c2.node(good.id))).scan.result, 'clean');
  } finally {
    await s.stop(); // does nothing when it already stopped
    s.cleanup();
  }
});

test('status: a development server says uploads are not scanned', async () => {
  const s = await new Server({ config: { scan: { database_dir: fs.mkdtempSync(path.join(work, 'none-')), development: 'true' } } }).start();
  try {
    const st = cli(['status', '-c', s.configPath]);
    assert.equal(st.status, 0, st.stderr);
    assert.match(st.stdout, /^scanner: development: no signatures \(uploads are NOT scanned for malware\)$/m);
  } finally {
    await s.stop();
    s.cleanup();
  }
});

// ---- backups: a directory the server's account cannot write -------------------------------------------

test('backup create: a folder the service account cannot write fails with a message naming the path and the account', { skip: process.getuid() !== 0 && 'needs root (a server that drops to a service account)' }, async () => {
  const look = (name) => {
    const r = spawnSync('getent', ['passwd', name], { encoding: 'utf8' });
    return r.status === 0 ? { name, uid: Number(r.stdout.split(':')[2]) } : null;
  };
  let who = look('coffer-test');
  if (!who) {
    spawnSync('useradd', ['--system', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', 'coffer-test']);
    who = look('coffer-test') || look('nobody');
  }
  const s = new Server({ config: { user: who.name, scan: { processes: 2 } } });
  fs.chmodSync(s.dir, 0o711);
  const sigs = writeSignatureDb(path.join(s.dir, 'sigs'));
  fs.chmodSync(sigs, 0o755);
  for (const f of fs.readdirSync(sigs)) fs.chmodSync(path.join(sigs, f), 0o644);
  s.opts.config.scan.database_dir = sigs;
  await s.start();
  try {
    const locked = fs.mkdtempSync(path.join(work, 'root-only-')); // 0700, root's
    fs.chmodSync(work, 0o711);
    const expect = (p) => `coffer: backup create: ${p}: permission denied: the account '${who.name}' (uid ${who.uid}), which runs the server, needs write access there (for example: chown ${who.name} ${p}), or choose another directory\n`;
    let r = cli(['backup', 'create', locked, '-c', s.configPath]);
    assert.equal(r.status, 1);
    assert.equal(r.stderr, expect(locked));
    r = cli(['backup', 'create', path.join(locked, 'new', 'deeper'), '-c', s.configPath]);
    assert.equal(r.status, 1);
    assert.equal(r.stderr, expect(locked), 'a folder still to be made: its nearest existing parent is named');
    fs.chownSync(locked, who.uid, 0);
    r = cli(['backup', 'create', locked, '-c', s.configPath]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^backup 1 created in /);
  } finally {
    await s.stop();
    s.cleanup();
  }
});
