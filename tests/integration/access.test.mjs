// The access model under sequences of operations (issue 17; docs/SECURITY.md "Access: the level
// rule"): the confirmed holes, each as the attacker ran it, each asserting the refusal and that
// nothing changed. matrix.test.mjs checks cells; model.test.mjs checks long random sequences; this
// file pins down each known attack by name.
//
// Cast: alice, bob, carol (members), admin (the first admin), admin2 (a second admin).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, cli, sha256 } from './lib/harness.mjs';

const s = new Server();
let admin, admin2, alice, bob, carol, ids = {};

async function user(name, role) {
  const body = { username: name, password: `${name}-password-1`, ...(role ? { role } : {}) };
  const r = await admin.req('POST', '/api/v1/admin/users', { body });
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

const level = async (c, id) => {
  const r = await c.node(id);
  return r.status === 404 ? 'none' : r.json().my_level;
};
const acl = (c, id, entries) => c.req('PUT', `/api/v1/nodes/${id}/acl`, { body: { entries } });
const move = (c, id, parent) => c.req('PATCH', `/api/v1/nodes/${id}`, { body: { parent } });
const purge = (c, id) => c.req('DELETE', `/api/v1/nodes/${id}?purge=true`);
const share = (c, node) => c.req('POST', '/api/v1/shares', { body: { node, permission: 'download' } });
const grantUser = (u, lvl) => ({ principal: `user:${u.id}`, level: lvl });

function assertDenied(r, what) {
  assert.equal(r.status, 403, `${what}: ${r.status} ${r.text()}`);
  assert.equal(r.json().error, 'forbidden', what);
}

before(async () => {
  await s.start();
  admin = s.client((await s.login()).token);
  admin.id = (await admin.req('GET', '/api/v1/me')).json().id;
  admin.spaces_ = await admin.spaces();
  alice = await user('alice');
  bob = await user('bob');
  carol = await user('carol');
  admin2 = await user('admin2', 'admin');
});

after(async () => {
  await s.stop();
  s.cleanup();
});

test('a move cannot turn edit into manage: into one\'s own space, a third party\'s space, out of the tenant space', async () => {
  // alice's folder "team" is shared with bob (edit); carol shares her "inbox" with bob (edit).
  const team = await ok(alice.mkdir(alice.root, 'team'), 201);
  const secret = await ok(alice.upload(team.id, 'secret.txt', 'alice secret'), 201);
  const sub = await ok(alice.mkdir(team.id, 'sub'), 201);
  await ok(acl(alice, team.id, [grantUser(bob, 'edit')]));
  const inbox = await ok(carol.mkdir(carol.root, 'inbox'), 201);
  await ok(acl(carol, inbox.id, [grantUser(bob, 'edit')]));
  assert.equal(await level(bob, secret.id), 'edit');

  // 1. Into bob's own private space: refused, nothing moved, bob still has edit only.
  assertDenied(await move(bob, secret.id, bob.root), 'file into own space');
  assertDenied(await move(bob, sub.id, bob.root), 'folder into own space');
  assert.equal((await alice.node(secret.id)).json().parent, team.id);
  assert.equal((await alice.node(sub.id)).json().parent, team.id);
  assert.equal(await level(bob, secret.id), 'edit');
  // ... so bob cannot rewrite the ACL, make a public link, or purge.
  assertDenied(await acl(bob, secret.id, [grantUser(bob, 'manage')]), 'acl by editor');
  assertDenied(await share(bob, secret.id), 'link by editor');
  assertDenied(await purge(bob, secret.id), 'purge by editor');
  assert.equal((await alice.download(secret.id)).body.toString(), 'alice secret');

  // 2. Into a third party's space (carol would gain manage): refused too.
  assertDenied(await move(bob, secret.id, inbox.id), 'file into carol\'s space');
  assert.equal(await level(carol, secret.id), 'none');

  // 3. Out of the tenant space (admins would lose control).
  const tf = await ok(admin.mkdir(admin.spaces_.tenant.root, 'projects'), 201);
  const plan = await ok(admin.upload(tf.id, 'plan.txt', 'tenant plan'), 201);
  await ok(acl(admin, tf.id, [grantUser(bob, 'edit')]));
  assertDenied(await move(bob, plan.id, bob.root), 'tenant file into own space');
  assertDenied(await move(bob, tf.id, bob.root), 'tenant folder into own space');
  assert.equal(await level(admin, plan.id), 'manage');

  // 4. Within the same place, nobody gains: allowed with edit.
  const r = await move(bob, secret.id, sub.id);
  assert.equal(r.status, 200, r.text());
  assert.equal(r.json().parent, sub.id);
  assert.equal(await level(bob, secret.id), 'edit');
  // ... but not into a subfolder shared more widely (the tenant would gain view).
  const open = await ok(alice.mkdir(team.id, 'open'), 201);
  await ok(acl(alice, open.id, [{ principal: 'tenant', level: 'view' }]));
  assertDenied(await move(bob, secret.id, open.id), 'into a more widely shared folder');
  assert.equal(await level(carol, secret.id), 'none');
  // The space's owner may: she holds manage, as an explicit grant would need.
  await ok(move(alice, secret.id, open.id));
  assert.equal(await level(carol, secret.id), 'view');
  // And a manager of the node may move it between spaces: explicit, like a grant.
  await ok(move(alice, secret.id, sub.id));
  ids.team = team.id;
});

test('creating in someone else\'s folder gives no manage; the space owner keeps control', async () => {
  const drop = await ok(alice.mkdir(alice.root, 'drop'), 201);
  await ok(acl(alice, drop.id, [grantUser(bob, 'edit')]));
  const f = await ok(bob.upload(drop.id, 'bob.txt', 'from bob'), 201);
  assert.equal(f.my_level, 'edit');
  assert.equal(f.owner, bob.id); // who created it: recorded, confers nothing
  const d = await ok(bob.mkdir(drop.id, 'bobdir'), 201);
  assert.equal(d.my_level, 'edit');
  assert.equal(await level(bob, f.id), 'edit');
  assertDenied(await acl(bob, d.id, [grantUser(carol, 'view')]), 'acl on own creation');
  assertDenied(await share(bob, f.id), 'link on own creation');
  assertDenied(await purge(bob, f.id), 'purge own creation in alice\'s space');
  assert.equal(await level(alice, f.id), 'manage');
  const view = await ok(alice.req('GET', `/api/v1/nodes/${f.id}/acl`));
  assert.equal(view.owner.id, alice.id); // the space's owner
  // The tenant space: a member's creation is the admins' to manage.
  const tf = await ok(admin.mkdir(admin.spaces_.tenant.root, 'intake'), 201);
  await ok(acl(admin, tf.id, [grantUser(bob, 'edit')]));
  const tfile = await ok(bob.upload(tf.id, 'in.txt', 'intake'), 201);
  assert.equal(tfile.my_level, 'edit');
  assert.equal(await level(admin, tfile.id), 'manage');
  assert.equal((await ok(admin.req('GET', `/api/v1/nodes/${tfile.id}/acl`))).owner, null);
});

test('offboarding hands the private space over whole; retention never destroys nodes in other people\'s spaces', async () => {
  const dave = await user('dave');
  const erin = await user('erin');
  // dave shares a folder of his with carol; dave creates a folder inside alice's shared folder,
  // where alice keeps her own file.
  const mine = await ok(dave.mkdir(dave.root, 'handbook'), 201);
  const page = await ok(dave.upload(mine.id, 'page.txt', 'dave page'), 201);
  await ok(acl(dave, mine.id, [grantUser(carol, 'view')]));
  const link = await ok(share(dave, page.id), 201);
  const shared = await ok(alice.mkdir(alice.root, 'with-dave'), 201);
  await ok(acl(alice, shared.id, [grantUser(dave, 'edit'), grantUser(erin, 'edit')]));
  const dfolder = await ok(dave.mkdir(shared.id, 'dave-made'), 201);
  const afile = await ok(alice.upload(dfolder.id, 'alice-in-dave-folder.txt', 'alice keeps this'), 201);
  // erin's space is archived at her offboarding; her folder in alice's space must survive retention.
  const efolder = await ok(erin.mkdir(shared.id, 'erin-made'), 201);
  const efile = await ok(alice.upload(efolder.id, 'alice-in-erin-folder.txt', 'alice keeps this too'), 201);
  const eprivate = await ok(erin.upload(erin.root, 'erin.txt', 'erin private'), 201);

  // Bad input changes nothing.
  for (const body of [{ transfer_to: alice.id, private_space: 'burn' }, { transfer_to: alice.id, private_space: 1 },
    { transfer_to: alice.id, links: 'keep' }, { transfer_to: dave.id }, { transfer_to: '0'.repeat(32) }]) {
    const r = await admin.req('POST', `/api/v1/admin/users/${dave.id}/offboard`, { body });
    assert.equal(r.status, 400, JSON.stringify(body));
  }
  assert.equal(await level(carol, page.id), 'view');

  // dave → transfer to bob.
  const off = await admin.req('POST', `/api/v1/admin/users/${dave.id}/offboard`, { body: { transfer_to: bob.id } });
  assert.equal(off.status, 200, off.text());
  assert.equal(off.json().status, 'offboarded');
  const kids = (await ok(bob.children(bob.root))).items;
  const handed = kids.find((k) => k.name === 'dave (handed over)');
  assert.ok(handed, JSON.stringify(kids.map((k) => k.name)));
  assert.equal(handed.id, dave.root);
  assert.equal(handed.my_level, 'manage');
  assert.equal(await level(bob, page.id), 'manage');
  assert.equal((await bob.download(page.id)).body.toString(), 'dave page');
  assert.equal(await level(carol, page.id), 'view'); // grants inside survive the handover
  assert.equal(await level(admin, page.id), 'none'); // admins gain nothing
  // dave's link is revoked.
  const linkState = (await ok(bob.req('GET', `/api/v1/shares?node=${page.id}`))).shares.find((x) => x.id === link.id);
  assert.equal(linkState.state, 'revoked');
  // What dave made in alice's space stays in alice's space, hers to manage.
  assert.equal(await level(alice, dfolder.id), 'manage');
  // The handover is in provenance, in the folder's activity too.
  const ev = (await ok(admin.req('GET', '/api/v1/audit?action=user.offboard'))).events[0]; // newest first
  assert.equal(ev.detail.transfer_to, bob.id);
  assert.equal(ev.detail.private_space, 'handed_over');
  assert.equal(ev.detail.folder, dave.root);
  assert.equal(ev.detail.links, 'revoked');

  // erin → archive; retention then purges her space and nothing else.
  const c = s.configPath;
  assert.equal((await admin.req('PATCH', '/api/v1/admin/policy', { body: { offboarded_retention: 1 } })).status, 200);
  const off2 = await admin.req('POST', `/api/v1/admin/users/${erin.id}/offboard`, { body: { transfer_to: bob.id, private_space: 'archive' } });
  assert.equal(off2.status, 200, off2.text());
  assert.equal(await level(bob, eprivate.id), 'none');
  // The archived space becomes due once a second has passed: run the job until it reports it.
  let out = '';
  for (let i = 0; i < 600 && !/1 offboarded space/.test(out); i++) {
    const run = cli(['ctl', 'retention', 'run', '-c', c]);
    assert.equal(run.status, 0, run.stderr);
    out = run.stdout;
    if (!/1 offboarded space/.test(out)) await new Promise((r) => setTimeout(r, 100));
  }
  assert.match(out, /1 offboarded space\(s\)/);
  assert.equal((await alice.node(efolder.id)).status, 200);
  assert.equal((await alice.download(efile.id)).body.toString(), 'alice keeps this too');
  assert.equal((await alice.download(afile.id)).body.toString(), 'alice keeps this');
  assert.equal((await bob.node(page.id)).status, 200); // the handed-over space is not archived
  // erin's private file is gone for good: not even a purge from the trash finds it.
  assert.equal((await purge(admin, eprivate.id)).status, 404);
});

test('offboarding with links: "transfer" hands the links over with the space, and they keep working', async () => {
  const fred = await user('fred');
  const doc = await ok(fred.upload(fred.root, 'price-list.txt', 'fred prices'), 201);
  const link = await ok(share(fred, doc.id), 201);
  const bad = await admin.req('POST', `/api/v1/admin/users/${fred.id}/offboard`, { body: { transfer_to: carol.id, links: 'keep' } });
  assert.equal(bad.status, 400, bad.text());
  assert.match(bad.json().message, /links must be/);
  const off = await admin.req('POST', `/api/v1/admin/users/${fred.id}/offboard`, { body: { transfer_to: carol.id, links: 'transfer' } });
  assert.equal(off.status, 200, off.text());
  const mine = (await ok(carol.req('GET', '/api/v1/shares'))).shares.find((x) => x.id === link.id);
  assert.ok(mine, 'the link is carol\'s now');
  assert.equal(mine.creator, carol.id);
  assert.equal(mine.state, 'active');
  assert.equal(mine.code, link.code, 'carol may see its code, as its creator');
  // The recipient's view of the link still works: unlock with the code, then download.
  const token = link.url.split('/s/')[1];
  const u = await s.request('POST', `/s/${token}/unlock`, { body: { code: link.code } });
  assert.equal(u.status, 200, u.text());
  const ev = (await ok(admin.req('GET', '/api/v1/audit?action=user.offboard'))).events[0]; // newest first
  assert.equal(ev.detail.links, 'handed_over');
  assert.equal(ev.detail.links_count, 1);
});

test('private means private: an admin cannot join a group on their own say; owners are alerted', async () => {
  const g = await ok(admin.req('POST', '/api/v1/admin/groups', { body: { name: 'editors' } }), 201);
  await ok(admin.req('PUT', `/api/v1/admin/groups/${g.id}/members`, { body: { user_ids: [carol.id] } }));
  const diary = await ok(alice.mkdir(alice.root, 'diary'), 201);
  const entry = await ok(alice.upload(diary.id, 'today.txt', 'dear diary'), 201);
  await ok(acl(alice, diary.id, [{ principal: `group:${g.id}`, level: 'view' }]));
  assert.equal(await level(admin, entry.id), 'none');

  const self = await admin.req('PUT', `/api/v1/admin/groups/${g.id}/members`, { body: { user_ids: [carol.id, admin.id] } });
  assertDenied(self, 'admin adds self');
  assert.equal(await level(admin, entry.id), 'none');
  const groups = (await ok(admin.req('GET', '/api/v1/admin/groups'))).groups;
  assert.deepEqual(groups.find((x) => x.id === g.id).members, [carol.id]);

  // Another admin may; the owner of the private grant hears of it.
  const before = (await ok(alice.req('GET', '/api/v1/me/alerts'))).alerts.length;
  await ok(admin2.req('PUT', `/api/v1/admin/groups/${g.id}/members`, { body: { user_ids: [carol.id, admin.id] } }));
  assert.equal(await level(admin, entry.id), 'view');
  const alerts = (await ok(alice.req('GET', '/api/v1/me/alerts'))).alerts;
  assert.equal(alerts.length, before + 1);
  assert.equal(alerts[0].kind, 'alert.group_change');
  const d = typeof alerts[0].detail === 'string' ? JSON.parse(alerts[0].detail) : alerts[0].detail;
  assert.equal(d.group, g.id);
  assert.equal(d.by, admin2.id);
  assert.deepEqual(d.added, [admin.id]);
  assert.deepEqual(d.removed, []);
  // Removing oneself is fine (it lowers a level), and is alerted too.
  await ok(admin.req('PUT', `/api/v1/admin/groups/${g.id}/members`, { body: { user_ids: [carol.id] } }));
  assert.equal(await level(admin, entry.id), 'none');
  assert.equal((await ok(alice.req('GET', '/api/v1/me/alerts'))).alerts.length, before + 2);
  // Carol, not an owner of a private grant to the group, gets no alert.
  assert.ok(!(await ok(carol.req('GET', '/api/v1/me/alerts'))).alerts.some((a) => a.kind === 'alert.group_change'));
});

test('a trashed file can be purged; purging a folder takes its trashed children with it', async () => {
  const box = await ok(alice.mkdir(alice.root, 'box'), 201);
  const a = await ok(alice.upload(box.id, 'a.txt', 'trashed then purged'), 201);
  const b = await ok(alice.upload(box.id, 'b.txt', 'trashed, purged with its folder'), 201);
  assert.equal((await alice.req('DELETE', `/api/v1/nodes/${a.id}`)).status, 204);
  assert.equal((await alice.node(a.id)).status, 404);
  // Others cannot purge (or learn of) it; its owner can.
  assert.equal((await purge(bob, a.id)).status, 404);
  assert.equal((await purge(alice, a.id)).status, 204);
  assert.equal((await purge(alice, a.id)).status, 404);
  // A trashed child of a purged folder goes too (its version and data key with it).
  assert.equal((await alice.req('DELETE', `/api/v1/nodes/${b.id}`)).status, 204);
  assert.equal((await purge(alice, box.id)).status, 204);
  assert.equal((await purge(alice, b.id)).status, 404);
  const events = (await ok(admin.req('GET', `/api/v1/audit?action=file.purge`))).events;
  assert.ok(events.some((e) => e.node && e.node.id === a.id));
});

test('afterwards the store is consistent: fsck finds every remaining version and no orphan', async () => {
  await s.stop();
  const r = cli(['fsck', '-c', s.configPath]);
  assert.equal(r.status, 0, r.stderr + r.stdout);
  assert.doesNotMatch(r.stdout, /orphan[^:]*: [1-9]/);
  await s.start();
});
