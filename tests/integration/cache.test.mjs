// The metadata cache (issue 19; docs/DESIGN.md "The metadata cache"): every change that narrows or
// widens access is seen by the VERY NEXT request, however warm the cache was. Each test first reads
// the same things several times (so sessions, users, nodes, ACL entries and group lists are cached),
// then makes the change, then asserts the exact answer of the next request: a revocation, a group
// change, a move out of and into a shared folder, a freeze, a logout and a session revocation; then
// a sequence interleaving two users' reads with writes; and the cache's counters on /metrics.
//
// Cast: admin, alice (owner of the folders), bob (the one whose access changes), carol, dave.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server } from './lib/harness.mjs';

const s = new Server();
let admin, alice, bob;
const WARM = 4;

async function user(name) {
  const r = await admin.req('POST', '/api/v1/admin/users', { body: { username: name, password: `${name}-password-1` } });
  assert.equal(r.status, 201, r.text());
  const c = s.client((await s.login(name, `${name}-password-1`)).token);
  c.id = r.json().id;
  c.root = (await c.spaces()).private.root;
  return c;
}

async function ok(p, status = 200) {
  const r = await p;
  assert.equal(r.status, status, r.text());
  return r.body.length ? r.json() : null;
}

function assertError(r, status, code, what) {
  assert.equal(r.status, status, `${what}: ${r.status} ${r.text()}`);
  assert.equal(r.json().error, code, what);
}

const acl = (c, id, entries) => c.req('PUT', `/api/v1/nodes/${id}/acl`, { body: { entries } });
const move = (c, id, parent) => c.req('PATCH', `/api/v1/nodes/${id}`, { body: { parent } });
const rename = (c, id, name) => c.req('PATCH', `/api/v1/nodes/${id}`, { body: { name } });
const grantUser = (u, level) => ({ principal: `user:${u.id}`, level });

// Reads a node WARM times (and its parent's listing when it can), asserting the same answer each time.
async function warm(c, id, status, level) {
  for (let i = 0; i < WARM; i++) {
    const r = await c.node(id);
    assert.equal(r.status, status, `warm read ${i}: ${r.text()}`);
    if (status === 200) {
      assert.equal(r.json().my_level, level);
      const p = r.json().parent;
      if (p) await c.children(p);
    }
  }
}

before(async () => {
  await s.start();
  admin = s.client((await s.login()).token);
  alice = await user('alice');
  bob = await user('bob');
});

after(async () => {
  await s.stop();
  s.cleanup();
});

test('a revoked ACL entry is seen by the very next request (node, child, listing)', async () => {
  const f = await ok(alice.mkdir(alice.root, 'shared'), 201);
  const x = await ok(alice.upload(f.id, 'x.txt', 'x body'), 201);
  await ok(acl(alice, f.id, [grantUser(bob, 'view')]));
  await warm(bob, x.id, 200, 'view');
  await warm(bob, f.id, 200, 'view');
  assert.equal((await bob.children(f.id)).status, 200);

  await ok(acl(alice, f.id, []));
  assertError(await bob.node(x.id), 404, 'not_found', 'the child, right after the revocation');
  assertError(await bob.node(f.id), 404, 'not_found', 'the folder');
  assertError(await bob.children(f.id), 404, 'not_found', 'the listing');
  assertError(await bob.download(x.id), 404, 'not_found', 'the content');

  // And the grant back, the other way round: the next request sees it.
  await warm(bob, x.id, 404);
  await ok(acl(alice, f.id, [grantUser(bob, 'edit')]));
  const r = await bob.node(x.id);
  assert.equal(r.status, 200, r.text());
  assert.equal(r.json().my_level, 'edit');
  // A lowered level too.
  await warm(bob, x.id, 200, 'edit');
  await ok(acl(alice, f.id, [grantUser(bob, 'view')]));
  assert.equal((await bob.node(x.id)).json().my_level, 'view');
});

test('a group change is seen by the very next request', async () => {
  const g = await ok(admin.req('POST', '/api/v1/admin/groups', { body: { name: 'team' } }), 201);
  await ok(admin.req('PUT', `/api/v1/admin/groups/${g.id}/members`, { body: { user_ids: [bob.id] } }));
  const f = await ok(alice.mkdir(alice.root, 'team-folder'), 201);
  const y = await ok(alice.upload(f.id, 'y.txt', 'y body'), 201);
  await ok(acl(alice, f.id, [{ principal: `group:${g.id}`, level: 'download' }]));
  await warm(bob, y.id, 200, 'download');

  await ok(admin.req('PUT', `/api/v1/admin/groups/${g.id}/members`, { body: { user_ids: [] } }));
  assertError(await bob.node(y.id), 404, 'not_found', 'right after bob left the group');
  assertError(await bob.children(f.id), 404, 'not_found', 'the listing');

  await warm(bob, y.id, 404);
  await ok(admin.req('PUT', `/api/v1/admin/groups/${g.id}/members`, { body: { user_ids: [bob.id] } }));
  const r = await bob.node(y.id);
  assert.equal(r.status, 200, r.text());
  assert.equal(r.json().my_level, 'download');
});

test('a move out of and into a shared folder is seen by the very next request', async () => {
  const shared = await ok(alice.mkdir(alice.root, 'open'), 201);
  const closed = await ok(alice.mkdir(alice.root, 'closed'), 201);
  await ok(acl(alice, shared.id, [grantUser(bob, 'view')]));
  const z = await ok(alice.upload(shared.id, 'z.txt', 'z body'), 201);
  const sub = await ok(alice.mkdir(shared.id, 'sub'), 201);
  const deep = await ok(alice.upload(sub.id, 'deep.txt', 'deep'), 201);
  await warm(bob, z.id, 200, 'view');
  await warm(bob, deep.id, 200, 'view');

  await ok(move(alice, z.id, closed.id));
  assertError(await bob.node(z.id), 404, 'not_found', 'a file moved out');
  await ok(move(alice, sub.id, closed.id));
  assertError(await bob.node(deep.id), 404, 'not_found', 'a file whose ancestor moved out');

  await warm(bob, z.id, 404);
  await warm(bob, deep.id, 404);
  await ok(move(alice, z.id, shared.id));
  let r = await bob.node(z.id);
  assert.equal(r.status, 200, r.text());
  assert.equal(r.json().parent, shared.id);
  await ok(move(alice, sub.id, shared.id));
  r = await bob.node(deep.id);
  assert.equal(r.status, 200, r.text());
  assert.equal(r.json().my_level, 'view');

  // A rename is seen too (the node record itself).
  await warm(bob, z.id, 200, 'view');
  await ok(rename(alice, z.id, 'renamed.txt'));
  assert.equal((await bob.node(z.id)).json().name, 'renamed.txt');
});

test('a freeze refuses the very next request of a warm session, and an unfreeze needs a new login', async () => {
  const carol = await user('carol');
  for (let i = 0; i < WARM; i++) assert.equal((await carol.req('GET', '/api/v1/me')).status, 200);
  await ok(admin.req('PATCH', `/api/v1/admin/users/${carol.id}`, { body: { status: 'frozen' } }));
  assertError(await carol.req('GET', '/api/v1/me'), 401, 'unauthorized', 'right after the freeze');
  assertError(await carol.node(carol.root), 401, 'unauthorized', 'a node');
  await ok(admin.req('PATCH', `/api/v1/admin/users/${carol.id}`, { body: { status: 'active' } }));
  assertError(await carol.req('GET', '/api/v1/me'), 401, 'unauthorized', 'the old session stays dead');
  const again = s.client((await s.login('carol', 'carol-password-1')).token);
  assert.equal((await again.req('GET', '/api/v1/me')).status, 200);
});

test('a logout and a revoked session are refused by the very next request', async () => {
  const dave = await user('dave');
  const other = s.client((await s.login('dave', 'dave-password-1')).token);
  for (let i = 0; i < WARM; i++) {
    assert.equal((await dave.req('GET', '/api/v1/me')).status, 200);
    assert.equal((await other.req('GET', '/api/v1/me')).status, 200);
  }
  assert.equal((await dave.req('POST', '/api/v1/auth/logout')).status, 204);
  assertError(await dave.req('GET', '/api/v1/me'), 401, 'unauthorized', 'right after the logout');
  assert.equal((await other.req('GET', '/api/v1/me')).status, 200, 'the other session lives');

  // Revoked from a third session by id.
  const third = s.client((await s.login('dave', 'dave-password-1')).token);
  const list = (await ok(third.req('GET', '/api/v1/me/sessions'))).sessions;
  const victim = list.find((x) => !x.current && x.kind === 'login');
  assert.ok(victim, 'the other session is listed');
  for (let i = 0; i < WARM; i++) assert.equal((await other.req('GET', '/api/v1/me')).status, 200);
  assert.equal((await third.req('DELETE', `/api/v1/me/sessions/${victim.id}`)).status, 204);
  assertError(await other.req('GET', '/api/v1/me'), 401, 'unauthorized', 'right after the revocation');
  assert.equal((await third.req('GET', '/api/v1/me')).status, 200);
});

test('two users, reads interleaved with writes: every read agrees with the last acknowledged write', async () => {
  // A deterministic walk: alice changes bob's level on a folder, moves a file between it and a
  // closed folder and renames it; after every write both read the file and the folder.
  const open = await ok(alice.mkdir(alice.root, 'walk-open'), 201);
  const closed = await ok(alice.mkdir(alice.root, 'walk-closed'), 201);
  const file = await ok(alice.upload(open.id, 'w0.txt', 'walk'), 201);
  let seed = 12345;
  const rnd = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
  const levels = [null, 'view', 'download', 'edit'];
  let level = null, inOpen = true, name = 'w0.txt';
  for (let step = 0; step < 40; step++) {
    const op = rnd(3);
    if (op === 0) {
      level = levels[rnd(levels.length)];
      await ok(acl(alice, open.id, level ? [grantUser(bob, level)] : []));
    } else if (op === 1) {
      inOpen = !inOpen;
      await ok(move(alice, file.id, inOpen ? open.id : closed.id));
    } else {
      name = `w${step}.txt`;
      await ok(rename(alice, file.id, name));
    }
    for (let k = 0; k < 2; k++) {
      const a = await alice.node(file.id);
      assert.equal(a.status, 200, `step ${step}: alice ${a.text()}`);
      assert.equal(a.json().name, name, `step ${step}: alice sees the name`);
      assert.equal(a.json().parent, inOpen ? open.id : closed.id, `step ${step}: alice sees the parent`);
      const b = await bob.node(file.id);
      const visible = inOpen && level !== null;
      assert.equal(b.status, visible ? 200 : 404, `step ${step} (op ${op}, level ${level}, open ${inOpen}): bob ${b.text()}`);
      if (visible) {
        assert.equal(b.json().my_level, level, `step ${step}: bob's level`);
        assert.equal(b.json().name, name, `step ${step}: bob sees the name`);
      }
      const l = await bob.children(open.id);
      assert.equal(l.status, level !== null ? 200 : 404, `step ${step}: bob lists the folder`);
      if (level !== null)
        assert.deepEqual(l.json().items.map((i) => i.name), inOpen ? [name] : [], `step ${step}: the listing`);
    }
  }
});

test('the cache counters are on /metrics', async () => {
  const r = await s.request('GET', '/metrics');
  assert.equal(r.status, 200, r.text());
  const text = r.text();
  const value = (name) => {
    const m = text.match(new RegExp(`^${name} (\\d+)$`, 'm'));
    assert.ok(m, `${name} is on the page`);
    return Number(m[1]);
  };
  assert.ok(value('coffer_metadata_cache_hits_total') > 0, 'the warm reads hit the cache');
  assert.ok(value('coffer_metadata_cache_misses_total') > 0);
  assert.ok(value('coffer_metadata_cache_invalidations_total') > 0);
  assert.ok(value('coffer_metadata_cache_entries') > 0);
  assert.ok(value('coffer_metadata_cache_bytes') > 0);
  value('coffer_metadata_cache_evictions_total');
  value('coffer_metadata_cache_refused_total');
});
