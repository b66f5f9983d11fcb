// Search by name and path (issue 21; docs/API.md "Search", docs/DESIGN.md "Search"): GET
// /api/v1/search for members (only what they may see, decided through acl.c on every request) and
// name= in the provenance search for admins and auditors. Names are sealed at rest: the index is in
// memory, so a restart must rebuild it.
//
// Cast: admin; alice (owns the files); bob (whose access changes); audrey (auditor). A second tenant,
// acme, holds the same names.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, cli, dirContains } from './lib/harness.mjs';

const s = new Server();
const ACME_PASSWORD = 'acme-admin-password-1';
let admin, alice, bob, audrey, acme;

async function user(name, role = 'member') {
  const r = await admin.req('POST', '/api/v1/admin/users', { body: { username: name, password: `${name}-password-1`, role } });
  assert.equal(r.status, 201, r.text());
  const c = s.client((await s.login(name, `${name}-password-1`)).token);
  c.id = r.json().id;
  if (role !== 'auditor') c.root = (await c.spaces()).private.root;
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

const mkdir = async (c, parent, name) => ok(c.mkdir(parent, name), 201);
const put = async (c, parent, name, data = `content of ${name}`) => ok(c.upload(parent, name, data), 201);
const acl = (c, id, entries) => c.req('PUT', `/api/v1/nodes/${id}/acl`, { body: { entries } });
const grantUser = (u, level = 'view') => ({ principal: `user:${u.id}`, level });
const search = (c, q, extra = '') => c.req('GET', `/api/v1/search?q=${encodeURIComponent(q)}${extra}`);

// The answer of a search as {name → path}, asserting a 200 and no cursor.
async function found(c, q, extra = '') {
  const r = await search(c, q, extra);
  assert.equal(r.status, 200, `search ${q}: ${r.text()}`);
  const body = r.json();
  assert.deepEqual(Object.keys(body).sort(), ['items', 'next_cursor']);
  const out = {};
  for (const it of body.items) {
    assert.equal(typeof it.path, 'string');
    assert.ok(!(it.name in out), `${it.name} listed twice`);
    out[it.name] = it.path;
  }
  return out;
}

before(async () => {
  // A second tenant, made while the store is not held (the CLI opens it).
  await s.start();
  await s.stop();
  assert.equal(cli(['tenant', 'create', 'acme', '-c', s.configPath]).status, 0);
  const u = cli(['user', 'add', '--tenant', 'acme', '--username', 'root', '--role', 'admin', '-c', s.configPath],
    { COFFER_USER_PASSWORD: ACME_PASSWORD });
  assert.equal(u.status, 0, u.stderr);
  await s.start();
  admin = s.client((await s.login()).token);
  acme = s.client((await s.login('root', ACME_PASSWORD, 'acme')).token);
  acme.root = (await acme.spaces()).private.root;
  admin.root = (await admin.spaces()).private.root;
  alice = await user('alice');
  bob = await user('bob');
  audrey = await user('audrey', 'auditor');
});

after(async () => {
  await s.stop();
  s.cleanup();
});

test('substring and case: names, folders and files, with their paths', async () => {
  const reports = await mkdir(alice, alice.root, 'Reports');
  const q3 = await put(alice, reports.id, 'Quarterly-Report-2024.pdf');
  await put(alice, alice.root, 'notes-2024.txt');
  assert.deepEqual(await found(alice, 'report'), {
    Reports: '/Reports',
    'Quarterly-Report-2024.pdf': '/Reports/Quarterly-Report-2024.pdf',
  });
  assert.deepEqual(await found(alice, 'QUARTERLY'), { 'Quarterly-Report-2024.pdf': '/Reports/Quarterly-Report-2024.pdf' });
  assert.deepEqual(await found(alice, 'rt-20'), { 'Quarterly-Report-2024.pdf': '/Reports/Quarterly-Report-2024.pdf' });
  assert.deepEqual(await found(alice, 'no-such-thing'), {});
  // An item is the node as GET /nodes/{id} shows it, plus its path.
  const r = await search(alice, 'quarterly');
  const [item] = r.json().items;
  const node = await ok(alice.node(q3.id));
  assert.deepEqual({ ...item, path: undefined }, { ...node, path: undefined });
  assert.equal(item.my_level, 'manage');
  // Others see none of it.
  assert.deepEqual(await found(bob, 'report'), {});
  assert.deepEqual(await found(admin, 'report'), {}, 'admins have no access to private spaces');
  assert.deepEqual(await found(audrey, 'report'), {}, 'auditors read no content');
});

test('path rule: "a/b" finds b below a folder matching a, at any depth, in order', async () => {
  const proj = await mkdir(alice, alice.root, 'Projects');
  const y = await mkdir(alice, proj.id, 'year-2023');
  const deep = await mkdir(alice, y.id, 'drafts');
  await put(alice, deep.id, 'budget-final.xlsx');
  await put(alice, proj.id, 'budget-overview.md');
  await put(alice, alice.root, 'budget-loose.md');
  assert.deepEqual(await found(alice, 'projects/budget'), {
    'budget-final.xlsx': '/Projects/year-2023/drafts/budget-final.xlsx',
    'budget-overview.md': '/Projects/budget-overview.md',
  });
  assert.deepEqual(await found(alice, 'projects/2023/budget'), { 'budget-final.xlsx': '/Projects/year-2023/drafts/budget-final.xlsx' });
  assert.deepEqual(await found(alice, '2023/projects/budget'), {}, 'segments match in order from the top');
  assert.deepEqual(await found(alice, 'drafts/'), { 'budget-final.xlsx': '/Projects/year-2023/drafts/budget-final.xlsx' });
  assert.deepEqual(await found(alice, '/Projects//budget-o'), { 'budget-overview.md': '/Projects/budget-overview.md' });
  assert.deepEqual(await found(alice, 'budget'), {
    'budget-final.xlsx': '/Projects/year-2023/drafts/budget-final.xlsx',
    'budget-overview.md': '/Projects/budget-overview.md',
    'budget-loose.md': '/budget-loose.md',
  });
});

test('never what the caller cannot see: grant, revoke, move, rename, trash, restore, purge', async () => {
  const team = await mkdir(alice, alice.root, 'Teamwork');
  const inner = await mkdir(alice, team.id, 'Inner');
  const f = await put(alice, inner.id, 'zebra-plan.txt');
  const priv = await mkdir(alice, alice.root, 'Private');
  assert.deepEqual(await found(bob, 'zebra'), {});

  // A grant on the file alone: bob finds it, but the folders above are not his to know.
  await ok(acl(alice, f.id, [grantUser(bob)]));
  assert.deepEqual(await found(bob, 'zebra'), { 'zebra-plan.txt': '…/zebra-plan.txt' });
  assert.deepEqual(await found(bob, 'teamwork/zebra'), {}, 'no match on the name of a folder he cannot see');
  assert.deepEqual(await found(bob, 'inner'), {});
  // Revoked: the very next request.
  await ok(acl(alice, f.id, []));
  assert.deepEqual(await found(bob, 'zebra'), {});

  // A grant on the middle folder: it and what is below, not above.
  await ok(acl(alice, inner.id, [grantUser(bob)]));
  assert.deepEqual(await found(bob, 'zebra'), { 'zebra-plan.txt': '…/Inner/zebra-plan.txt' });
  assert.deepEqual(await found(bob, 'inner/zebra'), { 'zebra-plan.txt': '…/Inner/zebra-plan.txt' });
  assert.deepEqual(await found(bob, 'teamwork/zebra'), {});
  assert.deepEqual(await found(bob, 'in'), { Inner: '…/Inner' });
  const item = (await search(bob, 'zebra')).json().items[0];
  assert.equal(item.my_level, 'view');

  // Moved into a folder bob cannot see: gone for him at once, still there for alice.
  await ok(alice.req('PATCH', `/api/v1/nodes/${f.id}`, { body: { parent: priv.id } }));
  assert.deepEqual(await found(bob, 'zebra'), {});
  assert.deepEqual(await found(alice, 'zebra'), { 'zebra-plan.txt': '/Private/zebra-plan.txt' });
  await ok(alice.req('PATCH', `/api/v1/nodes/${f.id}`, { body: { parent: inner.id } }));
  assert.deepEqual(await found(bob, 'zebra'), { 'zebra-plan.txt': '…/Inner/zebra-plan.txt' });

  // Renamed: the old name finds nothing, the new one finds it.
  await ok(alice.req('PATCH', `/api/v1/nodes/${f.id}`, { body: { name: 'okapi-plan.txt' } }));
  assert.deepEqual(await found(bob, 'zebra'), {});
  assert.deepEqual(await found(alice, 'zebra'), {});
  assert.deepEqual(await found(bob, 'okapi'), { 'okapi-plan.txt': '…/Inner/okapi-plan.txt' });

  // Trashed (the folder above it): nothing below the trash is found, by anyone.
  await ok(alice.req('DELETE', `/api/v1/nodes/${inner.id}`), 204);
  assert.deepEqual(await found(bob, 'okapi'), {});
  assert.deepEqual(await found(alice, 'okapi'), {});
  assert.deepEqual(await found(alice, 'inner'), {});
  // Restored: back for both.
  await ok(alice.req('POST', `/api/v1/nodes/${inner.id}/restore`, { body: {} }));
  assert.deepEqual(await found(alice, 'okapi'), { 'okapi-plan.txt': '/Teamwork/Inner/okapi-plan.txt' });
  assert.deepEqual(await found(bob, 'okapi'), { 'okapi-plan.txt': '…/Inner/okapi-plan.txt' });
  // Trashed then purged: gone.
  await ok(alice.req('DELETE', `/api/v1/nodes/${f.id}`), 204);
  assert.deepEqual(await found(alice, 'okapi'), {});
  await ok(alice.req('DELETE', `/api/v1/nodes/${f.id}?purge=true`), 204);
  assert.deepEqual(await found(alice, 'okapi'), {});
  assert.deepEqual(await found(bob, 'okapi'), {});
  assertError(await alice.node(f.id), 404, 'not_found', 'purged');
});

test('groups and the tenant space: a group grant finds, leaving the group hides, on the next request', async () => {
  const tenantRoot = (await admin.spaces()).tenant.root;
  const team = await mkdir(admin, tenantRoot, 'Heron-Team');
  await put(admin, team.id, 'heron-roadmap.txt');
  assert.deepEqual(await found(admin, 'heron'), { 'Heron-Team': '/Heron-Team', 'heron-roadmap.txt': '/Heron-Team/heron-roadmap.txt' },
    'admins manage the tenant space');
  assert.deepEqual(await found(bob, 'heron'), {}, 'a member sees nothing of it without a grant');
  const g = await ok(admin.req('POST', '/api/v1/admin/groups', { body: { name: 'herons' } }), 201);
  await ok(acl(admin, team.id, [{ principal: `group:${g.id}`, level: 'view' }]));
  assert.deepEqual(await found(bob, 'heron'), {});
  await ok(admin.req('PUT', `/api/v1/admin/groups/${g.id}/members`, { body: { user_ids: [bob.id] } }));
  assert.deepEqual(await found(bob, 'heron'), { 'Heron-Team': '…/Heron-Team', 'heron-roadmap.txt': '…/Heron-Team/heron-roadmap.txt' });
  await ok(admin.req('PUT', `/api/v1/admin/groups/${g.id}/members`, { body: { user_ids: [] } }));
  assert.deepEqual(await found(bob, 'heron'), {}, 'out of the group: gone at once');
  // The whole tenant on the space root: every member sees it, with the whole path.
  await ok(acl(admin, tenantRoot, [{ principal: 'tenant', level: 'view' }]));
  assert.deepEqual(await found(bob, 'heron'), { 'Heron-Team': '/Heron-Team', 'heron-roadmap.txt': '/Heron-Team/heron-roadmap.txt' });
  await ok(acl(admin, tenantRoot, []));
  assert.deepEqual(await found(bob, 'heron'), {});
});

// A seeded random sequence of changes by alice (grants to bob, revocations, moves, renames, trash,
// restores), and after every step bob's search compared with what GET /nodes/{id} lets him see: the
// same set of nodes, and each path exactly the names of the folders above that he may open.
test('model: after every step of a random sequence, search agrees with what the caller may open', async () => {
  let seed = 4242;
  const rnd = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
  const top = await mkdir(alice, alice.root, 'mdl-top');
  const folders = [top];
  for (let i = 0; i < 4; i++) folders.push(await mkdir(alice, folders[rnd(folders.length)].id, `mdl-dir-${i}`));
  const files = [];
  for (let i = 0; i < 6; i++) files.push(await put(alice, folders[rnd(folders.length)].id, `mdl-file-${i}.txt`));
  const all = [...folders, ...files];
  const trashed = new Set();
  let renames = 0;
  const seen = { some: 0, partial: 0, trashed: 0 };

  async function expected(c) {
    const want = {};
    for (const n of all) {
      const r = await c.node(n.id);
      if (r.status !== 200) continue;
      const node = r.json();
      if (!node.name.includes('mdl-')) continue;
      const names = [node.name];
      let at = node.parent;
      let whole = false;
      for (;;) {
        const p = await c.node(at);
        if (p.status !== 200) break;
        const pn = p.json();
        if (pn.parent === null) { whole = true; break; }
        names.unshift(pn.name);
        at = pn.parent;
      }
      want[node.id] = (whole ? '/' : '…/') + names.join('/');
    }
    return want;
  }
  async function actual(c) {
    const got = {};
    let cursor = null;
    for (let i = 0; i < 20; i++) {
      const r = await ok(search(c, 'MDL-', `&limit=7${cursor ? `&cursor=${cursor}` : ''}`));
      for (const it of r.items) got[it.id] = it.path;
      cursor = r.next_cursor;
      if (!cursor) break;
    }
    return got;
  }

  for (let step = 0; step < 40; step++) {
    const kind = rnd(7);
    const n = all[rnd(all.length)];
    let what;
    if (kind <= 1) {
      what = `grant ${n.name}`;
      await acl(alice, n.id, [grantUser(bob, 'view')]);
    } else if (kind === 2) {
      what = `revoke ${n.name}`;
      await acl(alice, n.id, []);
    } else if (kind === 3) {
      const dest = folders[rnd(folders.length)];
      what = `move ${n.name} into ${dest.name}`;
      await alice.req('PATCH', `/api/v1/nodes/${n.id}`, { body: { parent: dest.id } }); // a cycle or trashed target: refused, fine
    } else if (kind === 4) {
      const name = `mdl-renamed-${renames++}${n.type === 'file' ? '.txt' : ''}`;
      what = `rename ${n.name} to ${name}`;
      const r = await alice.req('PATCH', `/api/v1/nodes/${n.id}`, { body: { name } });
      if (r.status === 200) n.name = name;
    } else if (kind === 5 && !trashed.has(n.id)) {
      what = `trash ${n.name}`;
      if ((await alice.req('DELETE', `/api/v1/nodes/${n.id}`)).status === 204) trashed.add(n.id);
    } else {
      const t = [...trashed];
      if (t.length === 0) continue;
      const id = t[rnd(t.length)];
      what = `restore ${id}`;
      const r = await alice.req('POST', `/api/v1/nodes/${id}/restore`, { body: { parent: alice.root } });
      if (r.status === 200) trashed.delete(id);
    }
    const bobs = await expected(bob);
    assert.deepEqual(await actual(bob), bobs, `bob after step ${step}: ${what}`);
    assert.deepEqual(await actual(alice), await expected(alice), `alice after step ${step}: ${what}`);
    seen.some += Object.keys(bobs).length > 0;
    seen.partial += Object.values(bobs).some((p) => p.startsWith('…/') && p.split('/').length > 2);
    seen.trashed += trashed.size > 0;
  }
  // The sequence is only worth something if it went through the interesting states.
  assert.ok(seen.some >= 5 && seen.partial >= 3 && seen.trashed >= 3, JSON.stringify(seen));
});

test('tenants never cross: the same names in two tenants', async () => {
  const mine = await put(admin, admin.root, 'shared-name-ledger.csv', 'default tenant');
  const theirs = await put(acme, acme.root, 'shared-name-ledger.csv', 'acme tenant');
  const a = (await search(admin, 'ledger')).json().items;
  const b = (await search(acme, 'ledger')).json().items;
  assert.deepEqual(a.map((x) => x.id), [mine.id]);
  assert.deepEqual(b.map((x) => x.id), [theirs.id]);
  // Nor through the provenance search.
  const ev = await ok(acme.req('GET', '/api/v1/audit?name=ledger'));
  assert.ok(ev.events.length > 0);
  assert.ok(ev.events.every((e) => e.node.id === theirs.id), JSON.stringify(ev.events.map((e) => e.node)));
});

test('unicode: normalised case folding, compatibility forms, composed and decomposed accents', async () => {
  const u = await mkdir(alice, alice.root, 'Ünïcode');
  await put(alice, u.id, 'Straße-Äpfel.txt');
  await put(alice, u.id, 'ＦＵＬＬ-width.txt');
  await put(alice, u.id, 'Cafe\u0301-menu.txt'); // decomposed é
  await put(alice, u.id, 'ΣΟΦΙΑ-λόγος.txt');
  await put(alice, u.id, '报告-季度.docx');
  assert.deepEqual(Object.keys(await found(alice, 'STRASSE')), ['Straße-Äpfel.txt']);
  assert.deepEqual(Object.keys(await found(alice, 'äpfel')), ['Straße-Äpfel.txt']);
  assert.deepEqual(Object.keys(await found(alice, 'full-WIDTH')), ['ＦＵＬＬ-width.txt']);
  assert.deepEqual(Object.keys(await found(alice, 'café')), ['Cafe\u0301-menu.txt'], 'composed query, decomposed name');
  assert.deepEqual(Object.keys(await found(alice, 'σοφια')), ['ΣΟΦΙΑ-λόγος.txt']);
  assert.deepEqual(Object.keys(await found(alice, '季度')), ['报告-季度.docx']);
  assert.deepEqual(await found(alice, 'ünïcode/报告'), { '报告-季度.docx': '/Ünïcode/报告-季度.docx' });
});

test('limit and cursor: pages cover every hit exactly once', async () => {
  const box = await mkdir(alice, alice.root, 'pagebox');
  const ids = [];
  for (let i = 0; i < 7; i++) ids.push((await put(alice, box.id, `pageitem-${i}.txt`)).id);
  const seen = [];
  let cursor = null;
  const sizes = [];
  for (let guard = 0; guard < 10; guard++) {
    const r = await ok(search(alice, 'pageitem', `&limit=3${cursor ? `&cursor=${cursor}` : ''}`));
    sizes.push(r.items.length);
    seen.push(...r.items.map((x) => x.id));
    cursor = r.next_cursor;
    if (cursor === null) break;
    assert.match(cursor, /^[0-9a-f]{32}$/);
  }
  assert.deepEqual(sizes, [3, 3, 1]);
  assert.deepEqual([...seen].sort(), [...ids].sort());
  assert.deepEqual(seen, [...seen].sort(), 'pages come in id order');
  const all = await ok(search(alice, 'pageitem', '&limit=7'));
  assert.equal(all.items.length, 7);
  assert.equal(all.next_cursor, null);
  assert.equal((await ok(search(alice, 'pageitem'))).items.length, 7, 'default limit 50');
});

test('bad input: each its own 400, nothing changes', async () => {
  const before = await found(alice, 'report');
  const cases = [
    ['/api/v1/search', 'bad_request', 'q missing'],
    ['/api/v1/search?q=', 'bad_request', 'q empty'],
    [`/api/v1/search?q=${'a'.repeat(201)}`, 'bad_request', 'q of 201 bytes'],
    ['/api/v1/search?q=%ff%fe', 'bad_request', 'q not UTF-8'],
    ['/api/v1/search?q=%c0%af', 'bad_request', 'q overlong UTF-8'],
    ['/api/v1/search?q=%ed%a0%80', 'bad_request', 'q a surrogate'],
    ['/api/v1/search?q=a%00b', 'bad_request', 'q with NUL'],
    ['/api/v1/search?q=%2F%2F', 'bad_request', 'q only slashes'],
    ['/api/v1/search?q=report&limit=0', 'bad_request', 'limit 0'],
    ['/api/v1/search?q=report&limit=101', 'bad_request', 'limit 101'],
    ['/api/v1/search?q=report&limit=ten', 'bad_request', 'limit not a number'],
    ['/api/v1/search?q=report&cursor=zz', 'bad_request', 'bad cursor'],
    ['/api/v1/search?q=report&cursor=ABCDEF0123456789ABCDEF0123456789', 'bad_request', 'cursor upper case'],
    ['/api/v1/search?q=report&qq=1', 'unknown_parameter', 'unknown parameter'],
  ];
  for (const [p, code, what] of cases) assertError(await alice.req('GET', p), 400, code, what);
  assert.equal((await search(alice, 'a'.repeat(200))).status, 200, '200 bytes is fine');
  assertError(await s.request('GET', '/api/v1/search?q=report'), 401, 'unauthorized', 'anonymous');
  assert.deepEqual(await found(alice, 'report'), before);
  // The provenance search's name filter: the same rules, and not with another index.
  assertError(await admin.req('GET', '/api/v1/audit?name='), 400, 'bad_request', 'audit name empty');
  assertError(await admin.req('GET', '/api/v1/audit?name=%ff'), 400, 'bad_request', 'audit name not UTF-8');
  assertError(await admin.req('GET', `/api/v1/audit?name=x&node=${'0'.repeat(32)}`), 400, 'bad_request', 'name and node');
  assertError(await admin.req('GET', '/api/v1/audit?nam=x'), 400, 'unknown_parameter', 'audit unknown parameter');
  assertError(await alice.req('GET', '/api/v1/audit?name=report'), 403, 'forbidden', 'members have no audit log');
});

test('provenance search by name: admins and auditors, every node of the tenant, trashed ones too', async () => {
  const f = await put(alice, alice.root, 'walrus-minutes.txt');
  await ok(alice.req('PATCH', `/api/v1/nodes/${f.id}`, { body: { name: 'walrus-minutes-v2.txt' } }));
  const other = await put(alice, alice.root, 'pelican.txt');
  for (const c of [admin, audrey]) {
    const ev = await ok(c.req('GET', '/api/v1/audit?name=WALRUS'));
    const actions = ev.events.map((e) => e.action);
    assert.ok(actions.includes('file.upload') || actions.some((a) => a.startsWith('file.')), actions.join());
    assert.ok(ev.events.every((e) => e.node && e.node.id === f.id), 'only the matching node');
    assert.deepEqual(ev.events.map((e) => e.seq), [...ev.events.map((e) => e.seq)].sort((a, b) => b - a), 'newest first');
  }
  // A trashed node is still found by the audit search (not by members' search).
  await ok(alice.req('DELETE', `/api/v1/nodes/${other.id}`), 204);
  assert.deepEqual(await found(alice, 'pelican'), {});
  const ev = await ok(admin.req('GET', '/api/v1/audit?name=pelican'));
  assert.ok(ev.events.length >= 2, JSON.stringify(ev.events.map((e) => e.action)));
  assert.ok(ev.events.every((e) => e.node.id === other.id));
  // Paging with the usual cursor gives the same events as one page.
  const whole = await ok(admin.req('GET', '/api/v1/audit?name=walrus&limit=1000'));
  const got = [];
  let cursor = null;
  for (let i = 0; i < 20; i++) {
    const page = await ok(admin.req('GET', `/api/v1/audit?name=walrus&limit=1${cursor ? `&cursor=${cursor}` : ''}`));
    got.push(...page.events.map((e) => e.seq));
    cursor = page.next_cursor;
    if (cursor === null) break;
  }
  assert.deepEqual(got, whole.events.map((e) => e.seq));
  // A path query, and nothing for a name nobody has.
  assert.ok((await ok(admin.req('GET', '/api/v1/audit?name=no-such-name-anywhere'))).events.length === 0);
});

test('restart: the index is rebuilt from the sealed records; no name in the data directory', async () => {
  const marker = 'Sealed-Marker-Qx7Z';
  const f = await put(alice, alice.root, `${marker}.txt`);
  const beforeRestart = await found(alice, 'qx7z');
  assert.deepEqual(beforeRestart, { [`${marker}.txt`]: `/${marker}.txt` });
  await s.stop();
  assert.equal(dirContains(s.dataDir, Buffer.from(marker)), null, 'the name is sealed on disk');
  await s.start();
  alice = Object.assign(s.client((await s.login('alice', 'alice-password-1')).token), { id: alice.id, root: alice.root });
  assert.deepEqual(await found(alice, 'qx7z'), beforeRestart);
  assert.deepEqual(await found(alice, 'report'), {
    Reports: '/Reports',
    'Quarterly-Report-2024.pdf': '/Reports/Quarterly-Report-2024.pdf',
  });
  const item = (await search(alice, 'qx7z')).json().items[0];
  assert.equal(item.id, f.id);
});
