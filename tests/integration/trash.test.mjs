// Trash and versions (issue 21), against the real server: the trash list (what each caller may see),
// restore to the original folder or into a chosen one (original gone: 409 original_gone), name
// conflicts, the access rules of restoring (a member who lost access sees nothing; a grant on the
// trashed node alone restores nothing into a folder its holder may not edit), emptying the trash
// (only what the caller may purge), the versions of a file (list, byte-exact download with Range and
// HEAD through the download path, view-only 403, restore as a new version), the retention of old
// versions (the job purges them, fsck finds nothing left behind), their provenance, and bad input
// on every endpoint.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, cli, sha256, bytes } from './lib/harness.mjs';

let s;
let admin;
let adminId;
let spaces;
const users = {};

before(async () => {
  s = await new Server().start();
  const login = await s.login();
  admin = s.client(login.token);
  adminId = login.user.id;
  spaces = await admin.spaces();
});

after(async () => {
  if (s) {
    await s.stop().catch(() => {});
    s.cleanup();
  }
});

async function member(name) {
  const pw = `pw-${name}-trash-2026`;
  const r = await admin.req('POST', '/api/v1/admin/users', { body: { username: name, password: pw } });
  assert.equal(r.status, 201, r.text());
  const c = s.client((await s.login(name, pw)).token);
  c.id = r.json().id;
  c.root = (await c.spaces()).private.root;
  users[name] = c;
  return c;
}

async function mkdir(c, parent, name) {
  const r = await c.mkdir(parent, name);
  assert.equal(r.status, 201, r.text());
  return r.json();
}

async function put(c, parent, name, data, extra = '') {
  const r = await c.upload(parent, name, data, extra);
  assert.equal(r.status, 201, r.text());
  return r.json();
}

async function trash(c, id) {
  const r = await c.req('DELETE', `/api/v1/nodes/${id}`);
  assert.equal(r.status, 204, r.text());
}

async function trashList(c, q = '') {
  const r = await c.req('GET', `/api/v1/trash${q}`);
  assert.equal(r.status, 200, r.text());
  return r.json();
}

const restore = (c, id, body) => c.req('POST', `/api/v1/nodes/${id}/restore`, body === undefined ? {} : { body });
const grant = (c, id, entries) => c.req('PUT', `/api/v1/nodes/${id}/acl`, { body: { entries } });

async function events(action, node) {
  const q = new URLSearchParams({ action, ...(node ? { node } : {}) });
  const r = await admin.req('GET', `/api/v1/audit?${q}`);
  assert.equal(r.status, 200, r.text());
  return r.json().events;
}

test('trash → list → restore to the original folder; pages of the list; provenance', async () => {
  const ann = await member('ann');
  const d = await mkdir(ann, ann.root, 'Projects');
  const data = bytes(3000, 7);
  const f = await put(ann, d.id, 'plan.txt', data);
  await trash(ann, f.id);
  assert.equal((await ann.node(f.id)).status, 404);
  assert.deepEqual((await ann.children(d.id)).json().items, []);

  const list = await trashList(ann);
  assert.equal(list.items.length, 1);
  const it = list.items[0];
  assert.equal(it.id, f.id);
  assert.equal(it.name, 'plan.txt');
  assert.equal(it.parent, d.id);
  assert.equal(it.type, 'file');
  assert.equal(it.size, 3000);
  assert.equal(it.my_level, 'manage');
  assert.equal(it.original_path, '/Projects/plan.txt');
  assert.equal(it.original_gone, false);
  assert.equal(it.original_space, 'private');
  assert.match(it.trashed_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(list.next_cursor, null);

  const r = await restore(ann, f.id);
  assert.equal(r.status, 200, r.text());
  assert.equal(r.json().id, f.id);
  assert.equal(r.json().parent, d.id);
  assert.equal(r.json().name, 'plan.txt');
  assert.equal(r.json().my_level, 'manage');
  assert.deepEqual((await ann.children(d.id)).json().items.map((n) => n.id), [f.id]);
  const got = await ann.download(f.id);
  assert.equal(got.status, 200);
  assert.equal(sha256(got.body), sha256(data));
  assert.deepEqual((await trashList(ann)).items, []);
  // A restored node is live: restoring it again is a conflict of state, not a new copy.
  const again = await restore(ann, f.id);
  assert.equal(again.status, 409);
  assert.equal(again.json().error, 'not_in_trash');

  const ev = await events('node.restore', f.id);
  assert.equal(ev.length, 1);
  assert.equal(ev[0].actor.name, 'ann');
  assert.equal(ev[0].node.path, '/Projects/plan.txt');
  assert.equal(ev[0].detail.from_parent, d.id);
  assert.equal(ev[0].detail.to_original, true);
  assert.equal(ev[0].detail.renamed_from, null);

  // Five items, newest first, in pages of two; a folder's contents go (and come back) with it.
  const ids = [];
  for (let i = 0; i < 5; i++) {
    const n = await put(ann, ann.root, `p${i}.txt`, `page ${i}`);
    await trash(ann, n.id);
    ids.unshift(n.id);
  }
  const sub = await mkdir(ann, d.id, 'inner');
  await put(ann, sub.id, 'deep.txt', 'deep');
  await trash(ann, d.id);
  ids.unshift(d.id);
  const seen = [];
  let cursor = null;
  let pages = 0;
  do {
    const page = await trashList(ann, `?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
    assert.ok(page.items.length <= 2);
    seen.push(...page.items.map((n) => n.id));
    cursor = page.next_cursor;
    pages++;
  } while (cursor);
  assert.equal(pages, 3);
  assert.deepEqual(seen, ids);
  assert.equal((await restore(ann, d.id)).status, 200);
  const inner = (await ann.children(d.id)).json().items;
  assert.deepEqual(inner.map((n) => n.name).sort(), ['inner', 'plan.txt']);
  assert.equal((await ann.children(sub.id)).json().items[0].name, 'deep.txt');
});

test('restore when the original folder is trashed (409 original_gone, then into a chosen folder) or purged', async () => {
  const bea = await member('bea');
  const d = await mkdir(bea, bea.root, 'Old');
  const keep = await mkdir(bea, bea.root, 'Keep');
  const f = await put(bea, d.id, 'a.txt', 'alpha');
  await trash(bea, f.id);
  await trash(bea, d.id);
  const list = await trashList(bea);
  assert.deepEqual(list.items.map((n) => n.id), [d.id, f.id]); // newest first
  assert.equal(list.items[1].original_gone, true);
  assert.equal(list.items[1].original_path, '/Old/a.txt');
  assert.equal(list.items[0].original_gone, false);

  const gone = await restore(bea, f.id);
  assert.equal(gone.status, 409);
  assert.equal(gone.json().error, 'original_gone');
  assert.equal((await trashList(bea)).items.length, 2); // nothing changed
  const r = await restore(bea, f.id, { parent: keep.id });
  assert.equal(r.status, 200, r.text());
  assert.equal(r.json().parent, keep.id);
  assert.equal((await bea.download(f.id)).text(), 'alpha');
  const ev = await events('node.restore', f.id);
  assert.equal(ev[0].detail.to_original, false);
  assert.equal(ev[0].detail.from_parent, d.id);
  // Into a folder that is itself in the trash, or below one: not found.
  const g = await put(bea, keep.id, 'g.txt', 'gamma');
  await trash(bea, g.id);
  assert.equal((await restore(bea, g.id, { parent: d.id })).status, 404);

  // The folder purged: what was trashed inside it went with it.
  const d2 = await mkdir(bea, bea.root, 'Doomed');
  const h = await put(bea, d2.id, 'h.txt', 'eta');
  await trash(bea, h.id);
  await trash(bea, d2.id);
  assert.equal((await bea.req('DELETE', `/api/v1/nodes/${d2.id}?purge=true`)).status, 204);
  assert.equal((await restore(bea, h.id)).status, 404);
  assert.equal((await restore(bea, d2.id)).status, 404);
  assert.deepEqual((await trashList(bea)).items.map((n) => n.id).sort(), [d.id, g.id].sort());
  // The folder itself comes back where it was; the file it held was restored elsewhere already.
  assert.equal((await restore(bea, d.id)).status, 200);
  assert.deepEqual((await bea.children(d.id)).json().items, []);
});

test('name conflict at the destination: 409 conflict, or on_conflict rename', async () => {
  const cy = await member('cy');
  const first = await put(cy, cy.root, 'x.txt', 'first');
  await trash(cy, first.id);
  await put(cy, cy.root, 'x.txt', 'second');
  const r = await restore(cy, first.id);
  assert.equal(r.status, 409);
  assert.equal(r.json().error, 'conflict');
  const fail = await restore(cy, first.id, { on_conflict: 'fail' });
  assert.equal(fail.status, 409);
  const ok = await restore(cy, first.id, { on_conflict: 'rename' });
  assert.equal(ok.status, 200, ok.text());
  assert.equal(ok.json().name, 'x (1).txt');
  assert.equal((await cy.download(first.id)).text(), 'first');
  const ev = await events('node.restore', first.id);
  assert.equal(ev[0].detail.renamed_from, 'x.txt');
});

test('access: lost access hides the trashed item; a grant on it alone restores nothing into a folder its holder may not edit', async () => {
  const dee = await member('dee');
  const eli = await member('eli');
  const team = await mkdir(admin, spaces.tenant.root, `Team-${Date.now()}`);
  assert.equal((await grant(admin, team.id, [{ principal: `user:${dee.id}`, level: 'edit' }])).status, 200);
  const f = await put(admin, team.id, 'f.txt', 'team file');
  await trash(admin, f.id);
  // dee may edit the folder: she sees it (level edit, she may restore it, not purge it).
  let mine = (await trashList(dee)).items;
  assert.deepEqual(mine.map((n) => n.id), [f.id]);
  assert.equal(mine[0].my_level, 'edit');
  assert.equal(mine[0].original_path, `/${team.name}/f.txt`);
  assert.equal(mine[0].original_space, 'tenant');
  assert.equal((await dee.req('DELETE', `/api/v1/nodes/${f.id}?purge=true`)).status, 403);
  // eli has nothing here: absent from his trash, 404 everywhere.
  assert.deepEqual((await trashList(eli)).items, []);
  assert.equal((await restore(eli, f.id)).status, 404);
  assert.equal((await restore(eli, f.id, { parent: eli.root })).status, 404);
  // dee loses access to the folder: the item disappears for her too.
  assert.equal((await grant(admin, team.id, [])).status, 200);
  assert.deepEqual((await trashList(dee)).items, []);
  assert.equal((await restore(dee, f.id)).status, 404);
  assert.equal((await restore(dee, f.id, { parent: dee.root })).status, 404);
  assert.equal((await dee.req('DELETE', `/api/v1/nodes/${f.id}?purge=true`)).status, 404);
  assert.ok((await trashList(admin)).items.some((n) => n.id === f.id));

  // A grant of edit on the trashed file itself: listed, but not restorable into the folder (no edit
  // there) nor into dee's own space (that would widen access to it: it needs manage).
  const g = await put(admin, team.id, 'g.txt', 'granted');
  assert.equal((await grant(admin, g.id, [{ principal: `user:${dee.id}`, level: 'edit' }])).status, 200);
  await trash(admin, g.id);
  mine = (await trashList(dee)).items;
  assert.deepEqual(mine.map((n) => n.id), [g.id]);
  assert.equal(mine[0].original_path, '…/g.txt'); // the folder's name is not hers to see
  const r1 = await restore(dee, g.id);
  assert.equal(r1.status, 403);
  const r2 = await restore(dee, g.id, { parent: dee.root });
  assert.equal(r2.status, 403);
  assert.match(r2.json().message, /manage/);
  const view = await mkdir(admin, spaces.tenant.root, `ViewOnly-${Date.now()}`);
  assert.equal((await grant(admin, view.id, [{ principal: `user:${dee.id}`, level: 'view' }])).status, 200);
  assert.equal((await restore(dee, g.id, { parent: view.id })).status, 403);
  assert.ok((await trashList(admin)).items.some((n) => n.id === g.id)); // still in the trash
  // With manage on it she may take it into her own space (as she could have moved it).
  assert.equal((await grant(admin, g.id, [{ principal: `user:${dee.id}`, level: 'manage' }])).status, 404); // trashed: the ACL API does not see it
  const h = await put(admin, team.id, 'h.txt', 'managed');
  assert.equal((await grant(admin, h.id, [{ principal: `user:${dee.id}`, level: 'manage' }])).status, 200);
  await trash(admin, h.id);
  const r3 = await restore(dee, h.id, { parent: dee.root });
  assert.equal(r3.status, 200, r3.text());
  assert.equal(r3.json().parent, dee.root);
  // Someone else's private space, through a grant: "shared".
  const ann = users.ann;
  const priv = await put(ann, ann.root, 'lent.txt', 'lent');
  assert.equal((await grant(ann, priv.id, [{ principal: `user:${dee.id}`, level: 'edit' }])).status, 200);
  await trash(ann, priv.id);
  const lent = (await trashList(dee)).items.find((n) => n.id === priv.id);
  assert.equal(lent.original_space, 'shared');
  assert.equal(lent.original_path, '/lent.txt');
  // The admin restores g where it was.
  const r4 = await restore(admin, g.id);
  assert.equal(r4.status, 200, r4.text());
  assert.equal(r4.json().parent, team.id);
});

test('races: two restores of one item, a restore against a purge, against a restore into the same name', async () => {
  const lu = await member('lu');
  const a = await put(lu, lu.root, 'race.txt', 'race');
  await trash(lu, a.id);
  const both = await Promise.all([restore(lu, a.id), restore(lu, a.id, { parent: lu.root })]);
  assert.deepEqual(both.map((r) => r.status).sort(), [200, 409]);
  assert.equal(both.find((r) => r.status === 409).json().error, 'not_in_trash');
  assert.deepEqual((await lu.children(lu.root)).json().items.map((n) => n.id), [a.id]);
  // Restore against purge: exactly one wins, and the state says which.
  for (let i = 0; i < 5; i++) {
    const f = await put(lu, lu.root, `p${i}.txt`, `p${i}`);
    await trash(lu, f.id);
    const [r, p] = await Promise.all([restore(lu, f.id), lu.req('DELETE', `/api/v1/nodes/${f.id}?purge=true`)]);
    const live = (await lu.node(f.id)).status === 200;
    assert.ok((r.status === 200 && live && p.status === 404) || (r.status === 404 && !live && p.status === 204) ||
      (r.status === 200 && p.status === 204 && !live), `restore ${r.status}, purge ${p.status}, live ${live}`);
    assert.ok(!(await trashList(lu)).items.some((n) => n.id === f.id));
  }
  // Two trashed items of one name restored into one folder at once: one gets the name, the other
  // is refused (fail) or renamed (rename).
  const x = await put(lu, lu.root, 'same.txt', 'one');
  await trash(lu, x.id);
  const y = await put(lu, lu.root, 'same.txt', 'two');
  await trash(lu, y.id);
  const two = await Promise.all([restore(lu, x.id), restore(lu, y.id)]);
  assert.deepEqual(two.map((r) => r.status).sort(), [200, 409]);
  const loser = two[0].status === 409 ? x : y;
  const rn = await restore(lu, loser.id, { on_conflict: 'rename' });
  assert.equal(rn.status, 200);
  assert.equal(rn.json().name, 'same (1).txt');
  assert.deepEqual((await lu.children(lu.root)).json().items.map((n) => n.name).sort(), ['race.txt', 'same (1).txt', 'same.txt']);
});

test('empty trash purges only what the caller may purge', async () => {
  const fay = await member('fay');
  const team = await mkdir(admin, spaces.tenant.root, `Shared-${Date.now()}`);
  assert.equal((await grant(admin, team.id, [{ principal: `user:${fay.id}`, level: 'edit' }])).status, 200);
  const theirs = await put(admin, team.id, 'theirs.txt', 'not fay\'s to purge');
  await trash(admin, theirs.id);
  const own = await put(fay, fay.root, 'own.txt', 'fay\'s own');
  const dir = await mkdir(fay, fay.root, 'dir');
  const inside = await put(fay, dir.id, 'inside.txt', 'inside');
  await trash(fay, inside.id);
  await trash(fay, dir.id);
  await trash(fay, own.id);
  assert.equal((await trashList(fay)).items.length, 4);
  const r = await fay.req('DELETE', '/api/v1/trash');
  assert.equal(r.status, 200, r.text());
  assert.deepEqual(r.json(), { purged: 3, kept: 1 });
  assert.deepEqual((await trashList(fay)).items.map((n) => n.id), [theirs.id]);
  for (const id of [own.id, dir.id, inside.id]) assert.equal((await admin.req('DELETE', `/api/v1/nodes/${id}?purge=true`)).status, 404);
  assert.ok((await trashList(admin)).items.some((n) => n.id === theirs.id));
  const em = (await events('trash.empty')).filter((e) => e.actor.name === 'fay');
  assert.equal(em.length, 1);
  assert.equal(em[0].detail.purged, 3);
  assert.equal(em[0].detail.kept, 1);
  const purges = (await events('file.purge')).filter((e) => e.actor.name === 'fay');
  assert.equal(purges.length, 3);
  for (const e of purges) assert.equal(e.detail.reason, 'trash_empty');
  // The item she could not purge is restorable by her (edit on the folder).
  assert.equal((await restore(fay, theirs.id)).status, 200);
  // An empty trash empties to nothing.
  assert.deepEqual((await fay.req('DELETE', '/api/v1/trash')).json(), { purged: 0, kept: 0 });
});

test('versions: list, byte-exact download of an old version (Range, HEAD, provenance), view-only 403, restore as a new version', async () => {
  const gus = await member('gus');
  const hal = await member('hal');
  const A = bytes(1500000, 11); // two chunks
  const B = Buffer.from('second version');
  const C = bytes(70000, 13);
  const f = await put(gus, gus.root, 'doc.bin', A);
  await put(gus, gus.root, 'doc.bin', B, '&on_conflict=replace');
  const cur = await put(gus, gus.root, 'doc.bin', C, '&on_conflict=replace');
  assert.equal(cur.id, f.id);
  assert.equal(cur.version, 3);

  let vs = await gus.req('GET', `/api/v1/files/${f.id}/versions`);
  assert.equal(vs.status, 200, vs.text());
  let items = vs.json().items;
  assert.deepEqual(items.map((v) => v.version), [3, 2, 1]);
  assert.deepEqual(items.map((v) => v.current), [true, false, false]);
  assert.deepEqual(items.map((v) => v.size), [C.length, B.length, A.length]);
  assert.deepEqual(items.map((v) => v.sha256), [sha256(C), sha256(B), sha256(A)]);
  for (const v of items) {
    assert.equal(v.uploader, gus.id);
    assert.equal(v.uploader_name, 'gus');
    assert.match(v.created_at, /Z$/);
  }
  assert.equal(items[0].replaced_at, null);
  assert.equal(items[1].replaced_at, items[0].created_at);

  const v1 = await gus.req('GET', `/api/v1/files/${f.id}/versions/1/content`);
  assert.equal(v1.status, 200);
  assert.equal(v1.body.length, A.length);
  assert.equal(sha256(v1.body), sha256(A));
  assert.equal(v1.headers.etag, `"${sha256(A).slice(0, 32)}"`);
  assert.match(v1.headers['content-disposition'], /^attachment; filename="doc.bin"/);
  const part = await gus.req('GET', `/api/v1/files/${f.id}/versions/2/content`, { headers: { range: 'bytes=7-13' } });
  assert.equal(part.status, 206);
  assert.equal(part.text(), 'version');
  assert.equal(part.headers['content-range'], `bytes 7-13/${B.length}`);
  const head = await gus.req('HEAD', `/api/v1/files/${f.id}/versions/1/content`);
  assert.equal(head.status, 200);
  assert.equal(Number(head.headers['content-length']), A.length);
  assert.equal(head.body.length, 0);
  const cur3 = await gus.req('GET', `/api/v1/files/${f.id}/versions/3/content`);
  assert.equal(sha256(cur3.body), sha256(C));
  const dl = (await events('file.download', f.id)).filter((e) => e.detail.phase === 'began');
  assert.deepEqual(dl.map((e) => e.detail.version).sort(), [1, 2, 3]);
  const whole = dl.find((e) => e.detail.version === 1);
  assert.equal(whole.actor.name, 'gus');
  assert.equal(whole.detail.size, A.length);
  assert.equal(whole.transfer.bytes_sent, A.length);
  assert.equal(whole.transfer.completed, true);

  // View-only: the list, not the bytes, not a restore. No access at all: 404.
  assert.equal((await grant(gus, f.id, [{ principal: `user:${hal.id}`, level: 'view' }])).status, 200);
  assert.equal((await hal.req('GET', `/api/v1/files/${f.id}/versions`)).status, 200);
  const denied = await hal.req('GET', `/api/v1/files/${f.id}/versions/1/content`);
  assert.equal(denied.status, 403);
  assert.equal(denied.json().error, 'forbidden');
  assert.equal((await hal.req('POST', `/api/v1/files/${f.id}/versions/1/restore`)).status, 403);
  for (const p of ['versions', 'versions/1/content']) assert.equal((await users.ann.req('GET', `/api/v1/files/${f.id}/${p}`)).status, 404);
  assert.equal((await users.ann.req('POST', `/api/v1/files/${f.id}/versions/1/restore`)).status, 404);

  // Restore version 1: a new version 4 with version 1's bytes; the others stay.
  assert.equal((await grant(gus, f.id, [{ principal: `user:${hal.id}`, level: 'edit' }])).status, 200);
  const r = await hal.req('POST', `/api/v1/files/${f.id}/versions/1/restore`);
  assert.equal(r.status, 200, r.text());
  assert.equal(r.json().id, f.id);
  assert.equal(r.json().version, 4);
  assert.equal(r.json().sha256, sha256(A));
  assert.equal(r.json().size, A.length);
  assert.equal(r.json().my_level, 'edit');
  const now = await gus.download(f.id);
  assert.equal(sha256(now.body), sha256(A));
  vs = await gus.req('GET', `/api/v1/files/${f.id}/versions`);
  items = vs.json().items;
  assert.deepEqual(items.map((v) => [v.version, v.current, v.sha256]), [[4, true, sha256(A)], [3, false, sha256(C)], [2, false, sha256(B)], [1, false, sha256(A)]]);
  assert.equal(items[0].uploader, hal.id);
  const ev = await events('file.version_restore', f.id);
  assert.equal(ev.length, 1);
  assert.equal(ev[0].actor.name, 'hal');
  assert.equal(ev[0].detail.from_version, 1);
  assert.equal(ev[0].detail.version, 4);
  assert.equal(ev[0].detail.sha256, sha256(A));
  // An empty JSON object is a body without options; the current version is not restored again.
  const same = await gus.req('POST', `/api/v1/files/${f.id}/versions/4/restore`, { body: {} });
  assert.equal(same.status, 409);
  assert.equal(same.json().error, 'already_current');
  const r2 = await gus.req('POST', `/api/v1/files/${f.id}/versions/2/restore`, { body: {} });
  assert.equal(r2.status, 200, r2.text());
  assert.equal((await gus.download(f.id)).text(), 'second version');
  // A trashed file has no versions to anyone.
  await trash(gus, f.id);
  assert.equal((await gus.req('GET', `/api/v1/files/${f.id}/versions`)).status, 404);
  assert.equal((await gus.req('GET', `/api/v1/files/${f.id}/versions/1/content`)).status, 404);
  assert.equal((await restore(gus, f.id)).status, 200);
  assert.equal((await gus.req('GET', `/api/v1/files/${f.id}/versions`)).json().items.length, 5);
});

test('restoring a larger old version counts against the quota: 507 quota_exceeded, nothing changes', async () => {
  const kim = await member('kim');
  const big = bytes(20000, 5);
  const f = await put(kim, kim.root, 'q.bin', big);
  await put(kim, kim.root, 'q.bin', 'tiny', '&on_conflict=replace');
  assert.equal((await admin.req('PATCH', '/api/v1/admin/policy', { body: { user_quota_bytes: 10000 } })).status, 200);
  try {
    const r = await kim.req('POST', `/api/v1/files/${f.id}/versions/1/restore`);
    assert.equal(r.status, 507, r.text());
    assert.equal(r.json().error, 'quota_exceeded');
    assert.equal((await kim.node(f.id)).json().version, 2);
    assert.equal((await kim.req('GET', `/api/v1/files/${f.id}/versions`)).json().items.length, 2);
  } finally {
    assert.equal((await admin.req('PATCH', '/api/v1/admin/policy', { body: { user_quota_bytes: 0 } })).status, 200);
  }
  const ok = await kim.req('POST', `/api/v1/files/${f.id}/versions/1/restore`);
  assert.equal(ok.status, 200, ok.text());
  assert.equal(sha256((await kim.download(f.id)).body), sha256(big));
});

test('bad input on every endpoint', async () => {
  const ivy = await member('ivy');
  const dir = await mkdir(ivy, ivy.root, 'd');
  const f = await put(ivy, dir.id, 'f.txt', 'one');
  await put(ivy, dir.id, 'f.txt', 'two', '&on_conflict=replace');
  const t = await put(ivy, ivy.root, 't.txt', 'trashed');
  await trash(ivy, t.id);
  const expect = async (method, p, status, error, body) => {
    const r = await ivy.req(method, p, body === undefined ? {} : { body });
    assert.equal(r.status, status, `${method} ${p} ${JSON.stringify(body)}: ${r.text()}`);
    if (error) assert.equal(r.json().error, error, `${method} ${p}`);
    return r;
  };
  // GET/DELETE /trash
  for (const q of ['?limit=0', '?limit=1001', '?limit=x', '?limit=-1', '?cursor=zz', '?cursor=00', `?cursor=${'0'.repeat(47)}`]) await expect('GET', `/api/v1/trash${q}`, 400, 'bad_request');
  const un = await expect('GET', '/api/v1/trash?limt=2', 400, 'unknown_parameter');
  assert.match(un.json().message, /limit cursor/);
  await expect('DELETE', '/api/v1/trash?purge=true', 400, 'unknown_parameter');
  await expect('PUT', '/api/v1/trash', 405, 'method_not_allowed');
  // restore
  await expect('POST', '/api/v1/nodes/nothex/restore', 404, 'not_found');
  await expect('POST', `/api/v1/nodes/${'0'.repeat(32)}/restore`, 404, 'not_found');
  await expect('POST', `/api/v1/nodes/${t.id}/restore?parent=${ivy.root}`, 400, 'unknown_parameter');
  await expect('POST', `/api/v1/nodes/${t.id}/restore`, 400, 'bad_request', { bogus: 1 });
  await expect('POST', `/api/v1/nodes/${t.id}/restore`, 400, 'bad_request', { parent: 5 });
  await expect('POST', `/api/v1/nodes/${t.id}/restore`, 400, 'bad_request', { on_conflict: 'replace' });
  await expect('POST', `/api/v1/nodes/${t.id}/restore`, 400, 'bad_request', { on_conflict: true });
  await expect('POST', `/api/v1/nodes/${t.id}/restore`, 400, 'bad_request', '[1]');
  await expect('POST', `/api/v1/nodes/${t.id}/restore`, 404, 'not_found', { parent: 'zz' });
  await expect('POST', `/api/v1/nodes/${t.id}/restore`, 404, 'not_found', { parent: 'f'.repeat(32) });
  await expect('POST', `/api/v1/nodes/${t.id}/restore`, 400, 'bad_request', { parent: f.id }); // a file
  await expect('POST', `/api/v1/nodes/${f.id}/restore`, 409, 'not_in_trash');
  await expect('POST', `/api/v1/nodes/${ivy.root}/restore`, 409, 'not_in_trash');
  await expect('GET', `/api/v1/nodes/${t.id}/restore`, 405, 'method_not_allowed');
  const txt = await ivy.req('POST', `/api/v1/nodes/${t.id}/restore`, { body: 'parent=x', headers: { 'content-type': 'text/plain' } });
  assert.equal(txt.status, 415);
  assert.ok((await trashList(ivy)).items.some((n) => n.id === t.id)); // none of it restored anything
  // versions
  await expect('GET', '/api/v1/files/nothex/versions', 404, 'not_found');
  await expect('GET', `/api/v1/files/${'0'.repeat(32)}/versions`, 404, 'not_found');
  await expect('GET', `/api/v1/files/${dir.id}/versions`, 400, 'bad_request');
  await expect('GET', `/api/v1/files/${f.id}/versions?limit=1`, 400, 'unknown_parameter');
  for (const v of ['0', 'abc', '-1', '1.0', '01x', '4294967296', '99999999999999999999', '%31']) {
    await expect('GET', `/api/v1/files/${f.id}/versions/${v}/content`, 400, 'bad_request');
    await expect('POST', `/api/v1/files/${f.id}/versions/${v}/restore`, 400, 'bad_request');
  }
  await expect('GET', `/api/v1/files/${f.id}/versions/3/content`, 404, 'not_found');
  await expect('GET', `/api/v1/files/${f.id}/versions/4294967295/content`, 404, 'not_found');
  await expect('POST', `/api/v1/files/${f.id}/versions/3/restore`, 404, 'not_found');
  await expect('GET', `/api/v1/files/${dir.id}/versions/1/content`, 400, 'bad_request');
  await expect('GET', `/api/v1/files/${f.id}/versions/1/content?download=1`, 400, 'unknown_parameter');
  await expect('POST', `/api/v1/files/${f.id}/versions/1/restore`, 400, 'bad_request', { version: 1 });
  await expect('POST', `/api/v1/files/${f.id}/versions/1/restore?x=1`, 400, 'unknown_parameter');
  await expect('POST', `/api/v1/files/${f.id}/versions/1/content`, 405, 'method_not_allowed');
  await expect('DELETE', `/api/v1/files/${f.id}/versions`, 405, 'method_not_allowed');
  const rg = await ivy.req('GET', `/api/v1/files/${f.id}/versions/1/content`, { headers: { range: 'bytes=9-20' } });
  assert.equal(rg.status, 416);
  assert.equal(rg.headers['content-range'], 'bytes */3');
  assert.equal((await ivy.download(f.id)).text(), 'two'); // nothing changed
});

test('retention: old versions replaced longer ago than version_retention are purged by the job, chunks and all', async () => {
  const jo = await member('jo');
  const f = await put(jo, jo.root, 'r.txt', 'retained one');
  await put(jo, jo.root, 'r.txt', 'retained two', '&on_conflict=replace');
  const last = await put(jo, jo.root, 'r.txt', 'retained three', '&on_conflict=replace');
  const other = await put(jo, jo.root, 'single.txt', 'only version');
  const pol = await admin.req('PATCH', '/api/v1/admin/policy', { body: { version_retention: 1 } });
  assert.equal(pol.status, 200, pol.text());
  assert.equal(pol.json().version_retention, 1);
  // Wait (on the clock, not a fixed sleep) until version 3 was committed more than a second ago.
  const v3 = Date.parse((await jo.req('GET', `/api/v1/files/${f.id}/versions`)).json().items[0].created_at);
  while (Date.now() <= v3 + 1500) await new Promise((r) => setTimeout(r, 100));
  const run = cli(['ctl', 'retention', 'run', '-c', s.configPath]);
  assert.equal(run.status, 0, run.stderr);
  const items = (await jo.req('GET', `/api/v1/files/${f.id}/versions`)).json().items;
  assert.deepEqual(items.map((v) => v.version), [3]);
  assert.equal(items[0].current, true);
  assert.equal((await jo.download(f.id)).text(), 'retained three');
  assert.equal(last.version, 3);
  assert.equal((await jo.req('GET', `/api/v1/files/${f.id}/versions/1/content`)).status, 404);
  assert.equal((await jo.req('POST', `/api/v1/files/${f.id}/versions/2/restore`)).status, 404);
  assert.equal((await jo.req('GET', `/api/v1/files/${other.id}/versions`)).json().items.length, 1);
  const ev = await events('file.version_purge', f.id);
  assert.deepEqual(ev.map((e) => e.detail.version).sort(), [1, 2]);
  for (const e of ev) {
    assert.equal(e.actor.type, 'system');
    assert.equal(e.detail.reason, 'version_retention');
    assert.equal(e.node.path, '/r.txt');
  }
  const m = await s.request('GET', '/metrics');
  assert.match(m.text(), /coffer_retention_purged_total\{kind="version"\} [1-9]/);
  // A second run finds nothing more; retention off leaves versions alone.
  assert.equal((await admin.req('PATCH', '/api/v1/admin/policy', { body: { version_retention: 0 } })).status, 200);
  await put(jo, jo.root, 'r.txt', 'retained four', '&on_conflict=replace');
  assert.equal(cli(['ctl', 'retention', 'run', '-c', s.configPath]).status, 0);
  assert.deepEqual((await jo.req('GET', `/api/v1/files/${f.id}/versions`)).json().items.map((v) => v.version), [4, 3]);
  // Nothing of the purged versions is left on disk: fsck finds every chunk accounted for.
  await s.stop();
  const fsck = cli(['fsck', '-c', s.configPath]);
  assert.equal(fsck.status, 0, fsck.stdout + fsck.stderr);
  assert.match(fsck.stdout, /"orphan_contents": 0/);
  assert.match(fsck.stdout, /"corrupt": 0/);
  if (/"usage_wrong"/.test(fsck.stdout)) assert.match(fsck.stdout, /"usage_wrong": 0/); // restored versions kept the quota counters right
  assert.equal(cli(['audit', 'verify', '-c', s.configPath]).status, 0);
});
