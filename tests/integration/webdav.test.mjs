// webdav.test.mjs: WebDAV class 1 at /dav/ (issue 22, docs/WEBDAV.md), against the real server over
// TLS with HTTP Basic and app passwords: the 401 challenge, OPTIONS, PROPFIND depth 0/1 (exact hrefs
// and properties, 404 propstats, infinity refused), MKCOL, PUT/GET byte-exact, PUT of a new version,
// MOVE (Overwrite F/T), DELETE to the trash, the team and shared spaces as the API shows them, a
// view-only member refused the bytes as by the API, EICAR refused with the API's answer and its
// provenance event, a revoked app password refused on the next request; class 2 and properties:
// PROPPATCH (atomic, protected properties, exact stored values, MOVE/COPY), LOCK/UNLOCK (the
// creator only, conflicts, refresh, collections, lock-null, expiry polled), the If header and
// If-Match/If-None-Match, RFC 4331 quota properties, the sealed records on disk and their purge;
// shared roots of one name (each by its own URL), the Depth 1 cap (507), COPY of a collection at
// Depth 0 with its dead properties, MOVE with Overwrite T atomic;
// and litmus (basic, copymove, props, locks, http: every test passes, no warning).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Server, EICAR, bytes, sha256, curl, dbtool, cli } from './lib/harness.mjs';

const s = new Server({ config: { auth: { max_failures_per_account: 1000, max_failures_per_ip: 1000 } } });
let admin, dan, adminPw, danPw;

const basic = (user, pw) => ({ authorization: `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}` });
const dav = (method, p, { user = 'admin', pw = adminPw, headers = {}, body } = {}) =>
  s.request(method, p, { h1: true, headers: { ...basic(user, pw), ...headers }, body });
const hrefs = (xml) => [...xml.matchAll(/<D:href>([^<]*)<\/D:href>/g)].map((m) => m[1]);
// The <D:response> for href, as text.
const responseOf = (xml, href) => xml.split('<D:response>').find((r) => r.includes(`<D:href>${href}</D:href>`));

async function appPassword(token, name) {
  const r = await s.request('POST', '/api/v1/me/app-passwords', { token, body: { name } });
  assert.equal(r.status, 201, r.text());
  return r.json();
}

before(async () => {
  await s.start();
  const a = await s.login();
  admin = s.client(a.token);
  admin.token = a.token;
  const r = await admin.req('POST', '/api/v1/admin/users', { body: { username: 'dan', password: 'dan-password-1' } });
  assert.equal(r.status, 201, r.text());
  const dl = await s.login('dan', 'dan-password-1');
  dan = s.client(dl.token);
  dan.token = dl.token;
  dan.id = r.json().id;
  adminPw = (await appPassword(a.token, 'dav')).password;
  danPw = (await appPassword(dl.token, 'dav')).password;
});

after(async () => {
  try { await s.stop(); } finally { s.cleanup(); }
});

test('no credentials: 401 with the Basic challenge; a cookie or bearer token is not a way in', async () => {
  const r = await s.request('PROPFIND', '/dav/', { h1: true, headers: { depth: '0' } });
  assert.equal(r.status, 401);
  assert.match(r.headers['www-authenticate'], /^Basic realm="Coffer"/);
  const t = await s.request('PROPFIND', '/dav/', { h1: true, token: admin.token, headers: { depth: '0' } });
  assert.equal(t.status, 401);
  assert.match(t.headers['www-authenticate'], /^Basic realm="Coffer"/);
  const w = await dav('PROPFIND', '/dav/', { pw: 'wrong', headers: { depth: '0' } });
  assert.equal(w.status, 401);
});

test('OPTIONS: DAV 1 and 2, and the methods', async () => {
  const r = await dav('OPTIONS', '/dav/private/');
  assert.equal(r.status, 200);
  assert.equal(r.headers.dav, '1, 2');
  assert.equal(r.headers.allow, 'OPTIONS, PROPFIND, PROPPATCH, GET, HEAD, PUT, DELETE, MKCOL, MOVE, COPY, LOCK, UNLOCK');
  const q = await dav('OPTIONS', '/dav/?x=1');
  assert.equal(q.status, 400, 'DAV takes no query parameters');
});

test('PROPFIND /dav/: the three spaces; depth infinity refused; bad bodies 400', async () => {
  const r = await dav('PROPFIND', '/dav/', { headers: { depth: '1' } });
  assert.equal(r.status, 207, r.text());
  assert.match(r.headers['content-type'], /^application\/xml/);
  assert.deepEqual(hrefs(r.text()), ['/dav/', '/dav/private/', '/dav/team/', '/dav/shared/']);
  assert.match(responseOf(r.text(), '/dav/team/'), /<D:resourcetype><D:collection\/><\/D:resourcetype>/);
  const z = await dav('PROPFIND', '/dav/', { headers: { depth: '0' } });
  assert.deepEqual(hrefs(z.text()), ['/dav/']);
  const noslash = await dav('PROPFIND', '/dav', { headers: { depth: '0' } });
  assert.equal(noslash.status, 207);
  assert.deepEqual(hrefs(noslash.text()), ['/dav/']);
  assert.equal((await dav('PROPFIND', '/davx', { headers: { depth: '0' } })).status, 404);
  const inf = await dav('PROPFIND', '/dav/private/', { headers: { depth: 'infinity' } });
  assert.equal(inf.status, 403);
  assert.match(inf.text(), /<D:propfind-finite-depth\/>/);
  const bad = await dav('PROPFIND', '/dav/private/', { headers: { depth: '0' }, body: '<propfind xmlns="DAV:"><prop>' });
  assert.equal(bad.status, 400);
  assert.equal((await dav('PROPFIND', '/dav/nowhere/', { headers: { depth: '0' } })).status, 404);
  // Dot segments, sent as they are (Node's URL parser would resolve them first).
  for (const p of ['/dav/private/..', '/dav/private/%2E%2E', '/dav/private/.', '/dav/private/a/../b']) {
    const c = curl(['--path-as-is', '-o', '/dev/null', '-w', '%{http_code}', '-u', `admin:${adminPw}`, '-X', 'PROPFIND', '-H', 'depth: 0', `${s.url}${p}`]);
    assert.equal(c.stdout.toString(), '400', p);
  }
  assert.equal((await dav('PROPFIND', '/dav/private/a%00b', { headers: { depth: '0' } })).status, 400);
  assert.equal((await dav('PROPFIND', '/dav/private//x', { headers: { depth: '0' } })).status, 400);
  assert.equal((await dav('PROPFIND', '/dav/private/a%zz', { headers: { depth: '0' } })).status, 400);
});

test('MKCOL, PUT, GET, new version, PROPFIND properties, MOVE, DELETE', async () => {
  assert.equal((await dav('MKCOL', '/dav/private/docs/')).status, 201);
  assert.equal((await dav('MKCOL', '/dav/private/docs/')).status, 405, 'exists');
  assert.equal((await dav('MKCOL', '/dav/private/no/such/')).status, 409, 'parent missing');
  assert.equal((await dav('MKCOL', '/dav/private/withbody/', { body: '<x/>' })).status, 415);
  const v1 = bytes(100000, 3);
  const p1 = await dav('PUT', '/dav/private/docs/a%20b.txt', { body: v1 });
  assert.equal(p1.status, 201, p1.text());
  const g1 = await dav('GET', '/dav/private/docs/a%20b.txt');
  assert.equal(g1.status, 200);
  assert.equal(sha256(g1.body), sha256(v1));
  const v2 = Buffer.from('second version\n');
  assert.equal((await dav('PUT', '/dav/private/docs/a%20b.txt', { body: v2 })).status, 204);
  const g2 = await dav('GET', '/dav/private/docs/a%20b.txt');
  assert.deepEqual(g2.body, v2);
  const range = await dav('GET', '/dav/private/docs/a%20b.txt', { headers: { range: 'bytes=0-5' } });
  assert.equal(range.status, 206);
  assert.equal(range.text(), 'second');
  const head = await dav('HEAD', '/dav/private/docs/a%20b.txt');
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-length'], String(v2.length));

  const pf = await dav('PROPFIND', '/dav/private/docs/', { headers: { depth: '1' } });
  assert.equal(pf.status, 207);
  assert.deepEqual(hrefs(pf.text()), ['/dav/private/docs/', '/dav/private/docs/a%20b.txt']);
  const fr = responseOf(pf.text(), '/dav/private/docs/a%20b.txt');
  assert.match(fr, new RegExp(`<D:getcontentlength>${v2.length}</D:getcontentlength>`));
  assert.match(fr, /<D:displayname>a b.txt<\/D:displayname>/);
  assert.match(fr, /<D:getcontenttype>text\/plain[^<]*<\/D:getcontenttype>/);
  assert.match(fr, /<D:resourcetype\/>/);
  assert.match(fr, /<D:getlastmodified>[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT<\/D:getlastmodified>/);
  assert.match(fr, /<D:creationdate>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ<\/D:creationdate>/);
  assert.ok(fr.includes(`<D:getetag>${g2.headers.etag.replaceAll('"', '&quot;')}</D:getetag>`) ||
            fr.includes(`<D:getetag>${g2.headers.etag}</D:getetag>`), `etag ${g2.headers.etag} in ${fr}`);
  assert.match(responseOf(pf.text(), '/dav/private/docs/'), /<D:resourcetype><D:collection\/><\/D:resourcetype>/);
  // Named properties: the known ones in a 200 propstat, the unknown in a 404 one.
  const named = await dav('PROPFIND', '/dav/private/docs/a%20b.txt', {
    headers: { depth: '0', 'content-type': 'application/xml' },
    body: '<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:X="urn:x"><D:prop><D:getcontentlength/><X:color/></D:prop></D:propfind>',
  });
  assert.equal(named.status, 207);
  assert.match(named.text(), /<D:propstat><D:prop><D:getcontentlength>15<\/D:getcontentlength><\/D:prop><D:status>HTTP\/1.1 200 OK<\/D:status><\/D:propstat>/);
  assert.match(named.text(), /<D:propstat><D:prop><P:color xmlns:P="urn:x"\/><\/D:prop><D:status>HTTP\/1.1 404 Not Found<\/D:status><\/D:propstat>/);
  // The API sees the same file, with two versions.
  const docs = (await admin.children((await admin.spaces()).private.root)).json().items.find((n) => n.name === 'docs');
  const file = (await admin.children(docs.id)).json().items.find((n) => n.name === 'a b.txt');
  assert.equal(file.version, 2);

  // MOVE: new name 201; onto an existing one with Overwrite F 412, T 204; another server 502.
  assert.equal((await dav('PUT', '/dav/private/docs/other.txt', { body: 'other' })).status, 201);
  const dest = (p) => ({ destination: `${s.url}${p}` });
  assert.equal((await dav('MOVE', '/dav/private/docs/a%20b.txt', { headers: dest('/dav/private/c.txt') })).status, 201);
  assert.equal((await dav('GET', '/dav/private/docs/a%20b.txt')).status, 404);
  assert.deepEqual((await dav('GET', '/dav/private/c.txt')).body, v2);
  assert.equal((await dav('MOVE', '/dav/private/c.txt', { headers: { ...dest('/dav/private/docs/other.txt'), overwrite: 'F' } })).status, 412);
  assert.equal((await dav('MOVE', '/dav/private/c.txt', { headers: { ...dest('/dav/private/docs/other.txt'), overwrite: 'T' } })).status, 204);
  assert.deepEqual((await dav('GET', '/dav/private/docs/other.txt')).body, v2);
  assert.equal((await dav('MOVE', '/dav/private/docs/other.txt', { headers: { destination: 'https://elsewhere.example/dav/private/x' } })).status, 502);
  assert.equal((await dav('MOVE', '/dav/private/docs/other.txt', { headers: dest('/dav/private/none/x') })).status, 409);

  // COPY of a file: a new file with the same bytes (uploaded again through the safety step); onto
  // an existing one: Overwrite F 412, T a new version (204). A collection: Depth 0 is the collection
  // alone.
  assert.equal((await dav('COPY', '/dav/private/docs/other.txt', { headers: dest('/dav/private/copy.txt') })).status, 201);
  assert.deepEqual((await dav('GET', '/dav/private/copy.txt')).body, v2);
  // It went through the upload path: scanned (its own verdict), and a file.upload event names it.
  const copied = (await admin.children((await admin.spaces()).private.root)).json().items.find((n) => n.name === 'copy.txt');
  assert.equal((await admin.node(copied.id)).json().scan.result, 'clean');
  const up = await admin.req('GET', `/api/v1/audit?node=${copied.id}&action=file.upload&limit=10`);
  assert.equal(up.status, 200, up.text());
  assert.equal(up.json().events.length, 1);
  assert.equal((await dav('COPY', '/dav/private/docs/other.txt', { headers: { ...dest('/dav/private/copy.txt'), overwrite: 'F' } })).status, 412);
  assert.equal((await dav('PUT', '/dav/private/copy.txt', { body: 'changed' })).status, 204);
  assert.equal((await dav('COPY', '/dav/private/docs/other.txt', { headers: dest('/dav/private/copy.txt') })).status, 204);
  assert.deepEqual((await dav('GET', '/dav/private/copy.txt')).body, v2);
  assert.equal((await dav('COPY', '/dav/private/docs/', { headers: { ...dest('/dav/private/docs2/'), depth: '0' } })).status, 201);
  assert.deepEqual(hrefs((await dav('PROPFIND', '/dav/private/docs2/', { headers: { depth: '1' } })).text()), ['/dav/private/docs2/']);
  // Depth infinity: the members too, each file uploaded again; never into itself.
  assert.equal((await dav('MKCOL', '/dav/private/docs/sub/')).status, 201);
  assert.equal((await dav('PUT', '/dav/private/docs/sub/deep.txt', { body: 'deep' })).status, 201);
  assert.equal((await dav('COPY', '/dav/private/docs/', { headers: dest('/dav/private/docs3/') })).status, 201);
  assert.deepEqual(hrefs((await dav('PROPFIND', '/dav/private/docs3/', { headers: { depth: '1' } })).text()).sort(),
    ['/dav/private/docs3/', '/dav/private/docs3/other.txt', '/dav/private/docs3/sub/']);
  assert.deepEqual((await dav('GET', '/dav/private/docs3/other.txt')).body, v2);
  assert.equal((await dav('GET', '/dav/private/docs3/sub/deep.txt')).text(), 'deep');
  assert.equal((await dav('COPY', '/dav/private/docs/', { headers: dest('/dav/private/docs/sub/again/') })).status, 403);
  assert.equal((await dav('COPY', '/dav/private/docs/', { headers: { ...dest('/dav/private/docs3/'), overwrite: 'F' } })).status, 412);
  assert.equal((await dav('COPY', '/dav/private/docs/sub/', { headers: dest('/dav/private/docs3/') })).status, 204, 'replaces');
  assert.deepEqual(hrefs((await dav('PROPFIND', '/dav/private/docs3/', { headers: { depth: '1' } })).text()),
    ['/dav/private/docs3/', '/dav/private/docs3/deep.txt']);

  // DELETE: to the trash.
  assert.equal((await dav('DELETE', '/dav/private/docs/other.txt')).status, 204);
  assert.equal((await dav('GET', '/dav/private/docs/other.txt')).status, 404);
  const trash = await admin.req('GET', '/api/v1/trash');
  assert.ok(trash.json().items.some((n) => n.name === 'other.txt'), 'in the trash');
  assert.equal((await dav('DELETE', '/dav/private/')).status, 403, 'a space root');
});

test('over HTTP/2 as well (rclone\'s Go client speaks it over TLS)', async () => {
  const h2 = (method, p, opts = {}) => s.request(method, p, { headers: { ...basic('admin', adminPw), ...(opts.headers || {}) }, body: opts.body });
  assert.equal((await h2('PUT', '/dav/private/h2.txt', { body: 'over h2' })).status, 201);
  const pf = await h2('PROPFIND', '/dav/private/h2.txt', { headers: { depth: '0' } });
  assert.equal(pf.status, 207);
  assert.deepEqual(hrefs(pf.text()), ['/dav/private/h2.txt']);
  assert.equal((await h2('GET', '/dav/private/h2.txt')).text(), 'over h2');
  assert.equal((await h2('DELETE', '/dav/private/h2.txt')).status, 204);
});

test('large and chunked PUTs (several storage chunks; Finder sends chunked bodies), UTF-8 names', async () => {
  const big = bytes(3 * (1 << 20) + 12345, 9);
  const name = encodeURIComponent('Überblick 日本.bin');
  assert.equal((await dav('PUT', `/dav/private/${name}`, { body: big })).status, 201);
  assert.equal(sha256((await dav('GET', `/dav/private/${name}`)).body), sha256(big));
  const file = path.join(s.dir, 'chunked.bin');
  fs.writeFileSync(file, big.subarray(0, 2 * (1 << 20) + 7));
  const c = curl(['-o', '/dev/null', '-w', '%{http_code}', '-u', `admin:${adminPw}`, '-T', file, '-H', 'transfer-encoding: chunked',
    `${s.url}/dav/private/chunked.bin`]);
  assert.equal(c.stdout.toString(), '201', c.stderr);
  assert.equal(sha256((await dav('GET', '/dav/private/chunked.bin')).body), sha256(big.subarray(0, 2 * (1 << 20) + 7)));
  const pf = await dav('PROPFIND', '/dav/private/', { headers: { depth: '1' } });
  assert.ok(hrefs(pf.text()).includes(`/dav/private/${name.replace(/[!'()*]/g, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`)}`), pf.text());
});

test('team and shared spaces: a view-only member sees the file but gets no bytes, as from the API', async () => {
  assert.equal((await dav('PUT', '/dav/team/plan.txt', { body: 'team plan' })).status, 201);
  const spaces = await admin.spaces();
  const plan = (await admin.children(spaces.tenant.root)).json().items.find((n) => n.name === 'plan.txt');
  // dan sees nothing of it yet.
  const before = await dav('PROPFIND', '/dav/team/', { user: 'dan', pw: danPw, headers: { depth: '1' } });
  assert.equal(before.status, 207, before.text());
  assert.deepEqual(hrefs(before.text()), ['/dav/team/']);
  assert.equal((await dav('GET', '/dav/team/plan.txt', { user: 'dan', pw: danPw })).status, 404);
  const acl = await admin.req('PUT', `/api/v1/nodes/${plan.id}/acl`, { body: { entries: [{ principal: `user:${dan.id}`, level: 'view' }] } });
  assert.equal(acl.status, 200, acl.text());
  const after = await dav('PROPFIND', '/dav/team/', { user: 'dan', pw: danPw, headers: { depth: '1' } });
  assert.deepEqual(hrefs(after.text()), ['/dav/team/', '/dav/team/plan.txt']);
  const api = await dan.download(plan.id);
  const g = await dav('GET', '/dav/team/plan.txt', { user: 'dan', pw: danPw });
  assert.equal(api.status, 403);
  assert.equal(g.status, api.status);
  assert.equal(g.json().error, api.json().error);
  // The shared space lists it by name.
  const sh = await dav('PROPFIND', '/dav/shared/', { user: 'dan', pw: danPw, headers: { depth: '1' } });
  assert.deepEqual(hrefs(sh.text()), ['/dav/shared/', '/dav/shared/plan.txt']);
  const one = await dav('PROPFIND', '/dav/shared/plan.txt', { user: 'dan', pw: danPw, headers: { depth: '0' } });
  assert.equal(one.status, 207);
  assert.match(one.text(), /<D:getcontentlength>9<\/D:getcontentlength>/);
  // A new version needs edit on the folder, as POST /api/v1/files?on_conflict=replace: dan has no
  // level on the team root, so 404 (as the API answers).
  assert.equal((await dav('PUT', '/dav/team/plan.txt', { user: 'dan', pw: danPw, body: 'mine' })).status, 404);
  assert.equal((await dav('DELETE', '/dav/team/plan.txt', { user: 'dan', pw: danPw })).status, 403);
  // Nothing in dan's view of the admin's private space.
  assert.equal((await dav('PROPFIND', '/dav/shared/docs/', { user: 'dan', pw: danPw, headers: { depth: '0' } })).status, 404);
});

test('shared roots of one name: each by its own URL (owner\'s name, then (2)), bytes right, 404 for others', async () => {
  const mk = async (username, display_name) => {
    const body = { username, password: `${username}-password-1` };
    if (display_name) body.display_name = display_name;
    const r = await admin.req('POST', '/api/v1/admin/users', { body });
    assert.equal(r.status, 201, r.text());
    const l = await s.login(username, `${username}-password-1`);
    const c = s.client(l.token);
    c.id = r.json().id;
    c.pw = (await appPassword(l.token, 'dav')).password;
    return c;
  };
  const erin = await mk('erin', 'Erin Example');
  const frank = await mk('frank');
  const gus = await mk('gus');
  const hal = await mk('hal');
  // Two owners share a folder named "Reports" with gus; erin shares a second "Reports" (in another
  // folder of hers); frank's "Unique" keeps its own name.
  const share = async (owner, parent, name, content) => {
    const f = await owner.mkdir(parent, name);
    assert.equal(f.status, 201, f.text());
    const u = await owner.upload(f.json().id, 'r.txt', Buffer.from(content));
    assert.equal(u.status, 201, u.text());
    const acl = await owner.req('PUT', `/api/v1/nodes/${f.json().id}/acl`, { body: { entries: [{ principal: `user:${gus.id}`, level: 'edit' }] } });
    assert.equal(acl.status, 200, acl.text());
    return f.json().id;
  };
  const er = (await erin.spaces()).private.root;
  const fr = (await frank.spaces()).private.root;
  const old = (await erin.mkdir(er, 'old')).json().id;
  const ids = {
    erin1: await share(erin, er, 'Reports', 'erin one'),
    erin2: await share(erin, old, 'Reports', 'erin two'),
    frank: await share(frank, fr, 'Reports', 'frank'),
    uniq: await share(frank, fr, 'Unique', 'unique'),
    // A root whose own name is what another's collision makes of its name: still two names.
    lit: await share(erin, er, 'Reports (frank)', 'literal'),
  };
  const api = (await s.request('GET', '/api/v1/shared', { token: gus.token })).json().items.map((n) => n.id).sort();
  assert.deepEqual(api, Object.values(ids).sort(), 'the API lists the five');
  // erin's two: the one with the smaller node id keeps the owner's name, the other gets (2).
  const [first, second] = [ids.erin1, ids.erin2].sort(); // ids are fixed-width hex of the id bytes
  const [f1, f2] = [ids.frank, ids.lit].sort();
  const names = {
    [first]: 'Reports (Erin Example)', [second]: 'Reports (Erin Example) (2)', [f1]: 'Reports (frank)',
    [f2]: 'Reports (frank) (2)', [ids.uniq]: 'Unique',
  };
  const want = { [ids.erin1]: 'erin one', [ids.erin2]: 'erin two', [ids.frank]: 'frank', [ids.uniq]: 'unique', [ids.lit]: 'literal' };
  const enc = (n) => encodeURIComponent(n).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  const g = { user: 'gus', pw: gus.pw };
  const list = await dav('PROPFIND', '/dav/shared/', { ...g, headers: { depth: '1' } });
  assert.equal(list.status, 207, list.text());
  assert.deepEqual(hrefs(list.text()).sort(), ['/dav/shared/', ...Object.values(names).map((n) => `/dav/shared/${enc(n)}/`)].sort());
  for (const id of Object.keys(names)) {
    assert.match(responseOf(list.text(), `/dav/shared/${enc(names[id])}/`), new RegExp(`<D:displayname>${names[id].replace(/[()]/g, '\\$&')}</D:displayname>`));
    const got = await dav('GET', `/dav/shared/${enc(names[id])}/r.txt`, g);
    assert.equal(got.status, 200, names[id]);
    assert.equal(got.text(), want[id], names[id]);
    const pf = await dav('PROPFIND', `/dav/shared/${enc(names[id])}/`, { ...g, headers: { depth: '1' } });
    assert.equal(pf.status, 207);
    assert.deepEqual(hrefs(pf.text()), [`/dav/shared/${enc(names[id])}/`, `/dav/shared/${enc(names[id])}/r.txt`]);
    // hal was granted nothing: 404, not 403, for every one of those names.
    assert.equal((await dav('GET', `/dav/shared/${enc(names[id])}/r.txt`, { user: 'hal', pw: hal.pw })).status, 404);
    assert.equal((await dav('PROPFIND', `/dav/shared/${enc(names[id])}/`, { user: 'hal', pw: hal.pw, headers: { depth: '0' } })).status, 404);
  }
  // The plain name no longer reaches either "Reports"; a write lands in the right owner's folder.
  assert.equal((await dav('PROPFIND', '/dav/shared/Reports/', { ...g, headers: { depth: '0' } })).status, 404);
  assert.equal((await dav('PUT', `/dav/shared/${enc(names[ids.frank])}/from-gus.txt`, { ...g, body: 'hi frank' })).status, 201);
  const fk = (await frank.children(ids.frank)).json().items.map((n) => n.name).sort();
  assert.deepEqual(fk, ['from-gus.txt', 'r.txt']);
  const hl = await dav('PROPFIND', '/dav/shared/', { user: 'hal', pw: hal.pw, headers: { depth: '1' } });
  assert.deepEqual(hrefs(hl.text()), ['/dav/shared/']);
});

test('MOVE with Overwrite T is atomic: the replaced node is trashed in the move\'s batch, or not at all', async () => {
  const dst = (p) => ({ destination: `${s.url}${p}` });
  assert.equal((await dav('MKCOL', '/dav/private/mva/')).status, 201);
  assert.equal((await dav('MKCOL', '/dav/private/mva/in/')).status, 201);
  assert.equal((await dav('PUT', '/dav/private/mva/in/keep.txt', { body: 'keep me' })).status, 201);
  const inId = (await admin.children((await admin.spaces()).private.root)).json().items.find((n) => n.name === 'mva').id;
  const keep = (await admin.children((await admin.children(inId)).json().items.find((n) => n.name === 'in').id)).json().items[0];
  // A move refused under the namespace lock (a folder into its own subfolder) leaves the node it
  // would have replaced where it was: live, not in the trash.
  const bad = await dav('MOVE', '/dav/private/mva/', { headers: { ...dst('/dav/private/mva/in/keep.txt'), overwrite: 'T' } });
  assert.equal(bad.status, 400, bad.text());
  assert.equal((await dav('GET', '/dav/private/mva/in/keep.txt')).text(), 'keep me');
  assert.equal((await admin.node(keep.id)).json().trashed_at ?? null, null);
  assert.ok(!(await admin.req('GET', '/api/v1/trash')).json().items.some((n) => n.id === keep.id), 'not in the trash');
  // A move that succeeds: the replaced node is in the trash, named in the node.move event.
  assert.equal((await dav('PUT', '/dav/private/mva/new.txt', { body: 'new' })).status, 201);
  assert.equal((await dav('MOVE', '/dav/private/mva/new.txt', { headers: { ...dst('/dav/private/mva/in/keep.txt'), overwrite: 'T' } })).status, 204);
  assert.equal((await dav('GET', '/dav/private/mva/in/keep.txt')).text(), 'new');
  assert.equal((await dav('GET', '/dav/private/mva/new.txt')).status, 404);
  assert.ok((await admin.req('GET', '/api/v1/trash')).json().items.some((n) => n.id === keep.id), 'the replaced one is in the trash');
  const ev = await admin.req('GET', '/api/v1/audit?action=node.move&limit=50');
  assert.equal(ev.status, 200, ev.text());
  assert.ok(ev.json().events.some((e) => JSON.stringify(e).includes(keep.id)), 'node.move names the replaced node');
});

test('Depth 1 PROPFIND lists at most dav.max_propfind_members: the exact listing at the cap, 507 past it', async () => {
  const small = new Server({ config: { dav: { max_propfind_members: 3 } } });
  await small.start();
  try {
    const l = await small.login();
    const pw = (await small.request('POST', '/api/v1/me/app-passwords', { token: l.token, body: { name: 'dav' } })).json().password;
    const d = (method, p, opts = {}) => small.request(method, p, { h1: true, ...opts, headers: { ...basic('admin', pw), ...(opts.headers || {}) } });
    assert.equal((await d('MKCOL', '/dav/private/big/')).status, 201);
    for (const n of ['a.txt', 'b.txt']) assert.equal((await d('PUT', `/dav/private/big/${n}`, { body: n })).status, 201);
    assert.equal((await d('MKCOL', '/dav/private/big/sub/')).status, 201);
    const at = await d('PROPFIND', '/dav/private/big/', { headers: { depth: '1' } });
    assert.equal(at.status, 207, at.text());
    assert.deepEqual(hrefs(at.text()).sort(), ['/dav/private/big/', '/dav/private/big/a.txt', '/dav/private/big/b.txt', '/dav/private/big/sub/']);
    assert.match(responseOf(at.text(), '/dav/private/big/b.txt'), /<D:getcontentlength>5<\/D:getcontentlength>/);
    assert.equal((await d('PUT', '/dav/private/big/c.txt', { body: 'c' })).status, 201);
    const past = await d('PROPFIND', '/dav/private/big/', { headers: { depth: '1' } });
    assert.equal(past.status, 507, past.text());
    assert.equal(past.json().error, 'too_many_members');
    assert.match(past.json().message, /more than 3 members.*dav\.max_propfind_members/);
    // Depth 0 and the members themselves still answer; one fewer and the listing is back.
    assert.equal((await d('PROPFIND', '/dav/private/big/', { headers: { depth: '0' } })).status, 207);
    assert.equal((await d('PROPFIND', '/dav/private/big/c.txt', { headers: { depth: '1' } })).status, 207);
    assert.equal((await d('DELETE', '/dav/private/big/a.txt')).status, 204);
    const back = await d('PROPFIND', '/dav/private/big/', { headers: { depth: '1' } });
    assert.equal(back.status, 207);
    assert.deepEqual(hrefs(back.text()).sort(), ['/dav/private/big/', '/dav/private/big/b.txt', '/dav/private/big/c.txt', '/dav/private/big/sub/']);
  } finally {
    try { await small.stop(); } finally { small.cleanup(); }
  }
});

test('EICAR over PUT: refused with the API\'s answer and an upload.rejected event; nothing visible', async () => {
  const r = await dav('PUT', '/dav/private/evil.com', { body: EICAR });
  assert.equal(r.status, 422, r.text());
  assert.equal(r.json().error, 'infected');
  assert.equal((await dav('GET', '/dav/private/evil.com')).status, 404);
  const ev = await admin.req('GET', '/api/v1/audit?action=upload.rejected&limit=50');
  assert.equal(ev.status, 200, ev.text());
  assert.ok(ev.json().events.some((e) => e.detail && e.detail.name === 'evil.com'), 'the refusal is in the provenance');
});

test('a revoked app password fails the very next request', async () => {
  const p = await appPassword(dan.token, 'to-revoke');
  assert.equal((await dav('PROPFIND', '/dav/', { user: 'dan', pw: p.password, headers: { depth: '0' } })).status, 207);
  assert.equal((await s.request('DELETE', `/api/v1/me/app-passwords/${p.id}`, { token: dan.token })).status, 204);
  const r = await dav('PROPFIND', '/dav/', { user: 'dan', pw: p.password, headers: { depth: '0' } });
  assert.equal(r.status, 401);
  assert.match(r.headers['www-authenticate'], /^Basic/);
});

// ---- class 2 and dead properties (issue 22, second slice) ---------------------------------------

const XML = { 'content-type': 'application/xml' };
const patchBody = (ops) => `<?xml version="1.0" encoding="utf-8"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z" xmlns:W="urn:schemas-microsoft-com:">${ops}</D:propertyupdate>`;
const propfind = (p, props, opts = {}) => dav('PROPFIND', p, {
  ...opts, headers: { depth: '0', ...XML, ...(opts.headers || {}) },
  body: `<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:Z="urn:z" xmlns:W="urn:schemas-microsoft-com:">${props}</D:propfind>`,
});
const lockBody = (scope = 'exclusive', owner = '<D:href>mailto:a@example.com</D:href>') =>
  `<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:${scope}/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>${owner}</D:owner></D:lockinfo>`;
const tokenOf = (r) => { assert.match(r.headers['lock-token'] || '', /^<opaquelocktoken:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}>$/); return r.headers['lock-token'].slice(1, -1); };
const propstats = (xml) => [...xml.matchAll(/<D:propstat><D:prop>(.*?)<\/D:prop><D:status>HTTP\/1.1 (\d+)[^<]*<\/D:status><\/D:propstat>/g)].map((m) => [m[1], +m[2]]);

test('PROPPATCH: atomic set and remove of dead properties, exact values back, protected ones refused with nothing applied', async () => {
  assert.equal((await dav('PUT', '/dav/private/props.txt', { body: 'p' })).status, 201);
  // A protected live property in the request: 403 for it, 424 for the rest, nothing stored.
  const bad = await dav('PROPPATCH', '/dav/private/props.txt', { headers: XML, body: patchBody(
    '<D:set><D:prop><Z:color>red</Z:color><D:getetag>"x"</D:getetag></D:prop></D:set>') });
  assert.equal(bad.status, 207, bad.text());
  assert.deepEqual(propstats(bad.text()), [['<D:getetag/>', 403], ['<P:color xmlns:P="urn:z"/>', 424]]);
  assert.match(bad.text(), /<D:cannot-modify-protected-property\/>/);
  const none = await propfind('/dav/private/props.txt', '<D:prop><Z:color/></D:prop>');
  assert.deepEqual(propstats(none.text()), [['<P:color xmlns:P="urn:z"/>', 404]]);
  // Set (structured value, xml:lang, high Unicode, Explorer's Win32 times), in document order.
  const ok = await dav('PROPPATCH', '/dav/private/props.txt', { headers: XML, body: patchBody(
    '<D:set><D:prop><Z:color xml:lang="en">red <Z:b a="1">&amp; 𝄞</Z:b></Z:color><Z:gone>x</Z:gone>' +
    '<W:Win32LastModifiedTime>Sat, 05 Dec 2026 10:00:00 GMT</W:Win32LastModifiedTime></D:prop></D:set>' +
    '<D:remove><D:prop><Z:gone/></D:prop></D:remove>') });
  assert.equal(ok.status, 207, ok.text());
  assert.deepEqual(propstats(ok.text()).map((p) => p[1]), [200]);
  const got = await propfind('/dav/private/props.txt', '<D:prop><Z:color/><Z:gone/><W:Win32LastModifiedTime/></D:prop>');
  assert.deepEqual(propstats(got.text()), [
    ['<n0:color xmlns:n0="urn:z" xml:lang="en">red <n0:b a="1">&amp; 𝄞</n0:b></n0:color>' +
     '<n0:Win32LastModifiedTime xmlns:n0="urn:schemas-microsoft-com:">Sat, 05 Dec 2026 10:00:00 GMT</n0:Win32LastModifiedTime>', 200],
    ['<P:gone xmlns:P="urn:z"/>', 404]]);
  // allprop and propname name them too.
  const all = await dav('PROPFIND', '/dav/private/props.txt', { headers: { depth: '0' } });
  assert.ok(all.text().includes('<n0:color xmlns:n0="urn:z" xml:lang="en">'), all.text());
  assert.match(all.text(), /<D:supportedlock><D:lockentry><D:lockscope><D:exclusive\/><\/D:lockscope>/);
  const names = await propfind('/dav/private/props.txt', '<D:propname/>');
  assert.ok(names.text().includes('<P:color xmlns:P="urn:z"/>') && names.text().includes('<D:quota-used-bytes/>'), names.text());
  // MOVE keeps them (same node), COPY copies them; the copy's are its own.
  assert.equal((await dav('MOVE', '/dav/private/props.txt', { headers: { destination: `${s.url}/dav/private/props2.txt` } })).status, 201);
  assert.equal((await dav('COPY', '/dav/private/props2.txt', { headers: { destination: `${s.url}/dav/private/props3.txt` } })).status, 201);
  for (const p of ['/dav/private/props2.txt', '/dav/private/props3.txt'])
    assert.match((await propfind(p, '<D:prop><Z:color/></D:prop>')).text(), /<n0:color xmlns:n0="urn:z" xml:lang="en">red /, p);
  assert.equal((await dav('PROPPATCH', '/dav/private/props3.txt', { headers: XML, body: patchBody('<D:remove><D:prop><Z:color/></D:prop></D:remove>') })).status, 207);
  assert.deepEqual(propstats((await propfind('/dav/private/props3.txt', '<D:prop><Z:color/></D:prop>')).text()).map((p) => p[1]), [404]);
  assert.deepEqual(propstats((await propfind('/dav/private/props2.txt', '<D:prop><Z:color/></D:prop>')).text()).map((p) => p[1]), [200]);
  // A collection's COPY at Depth 0 copies its dead properties, not its members; onto an existing
  // collection (Overwrite T) that one goes to the trash first (204).
  assert.equal((await dav('MKCOL', '/dav/private/pcoll/')).status, 201);
  assert.equal((await dav('PUT', '/dav/private/pcoll/m.txt', { body: 'member' })).status, 201);
  assert.equal((await dav('PROPPATCH', '/dav/private/pcoll/', { headers: XML, body: patchBody('<D:set><D:prop><Z:color>blue</Z:color></D:prop></D:set>') })).status, 207);
  assert.equal((await dav('COPY', '/dav/private/pcoll/', { headers: { destination: `${s.url}/dav/private/pcoll0/`, depth: '0' } })).status, 201);
  assert.deepEqual(hrefs((await dav('PROPFIND', '/dav/private/pcoll0/', { headers: { depth: '1' } })).text()), ['/dav/private/pcoll0/']);
  assert.deepEqual(propstats((await propfind('/dav/private/pcoll0/', '<D:prop><Z:color/></D:prop>')).text()),
    [['<n0:color xmlns:n0="urn:z">blue</n0:color>', 200]]);
  assert.equal((await dav('MKCOL', '/dav/private/pcoll1/')).status, 201);
  assert.equal((await dav('PUT', '/dav/private/pcoll1/old.txt', { body: 'old' })).status, 201);
  assert.equal((await dav('COPY', '/dav/private/pcoll/', { headers: { destination: `${s.url}/dav/private/pcoll1/`, depth: '0', overwrite: 'F' } })).status, 412);
  assert.equal((await dav('COPY', '/dav/private/pcoll/', { headers: { destination: `${s.url}/dav/private/pcoll1/`, depth: '0' } })).status, 204);
  assert.deepEqual(hrefs((await dav('PROPFIND', '/dav/private/pcoll1/', { headers: { depth: '1' } })).text()), ['/dav/private/pcoll1/']);
  assert.deepEqual(propstats((await propfind('/dav/private/pcoll1/', '<D:prop><Z:color/></D:prop>')).text()).map((p) => p[1]), [200]);
  assert.ok((await admin.req('GET', '/api/v1/trash')).json().items.some((n) => n.name === 'pcoll1'), 'the replaced one is in the trash');
  // Bad bodies: clear 4xx, nothing applied.
  for (const [body, status] of [['', 400], ['<D:propertyupdate xmlns:D="DAV:"><D:set>', 400], ['<x/>', 400],
    ['<!DOCTYPE x [<!ENTITY a "b">]><D:propertyupdate xmlns:D="DAV:"/>', 400],
    [patchBody(`<D:set><D:prop><Z:big>${'v'.repeat(70000)}</Z:big></D:prop></D:set>`), 413],
    [patchBody(`<D:set><D:prop><Z:${'n'.repeat(300)}>1</Z:${'n'.repeat(300)}></D:prop></D:set>`), 422]]) {
    const r = await dav('PROPPATCH', '/dav/private/props2.txt', { headers: XML, body });
    assert.equal(r.status, status, `${body.slice(0, 60)}: ${r.text()}`);
  }
  assert.equal((await dav('PROPPATCH', '/dav/private/nothere.txt', { headers: XML, body: patchBody('<D:set><D:prop><Z:a>1</Z:a></D:prop></D:set>') })).status, 404);
  assert.equal((await dav('PROPPATCH', '/dav/', { headers: XML, body: patchBody('<D:set><D:prop><Z:a>1</Z:a></D:prop></D:set>') })).status, 403);
  // A view-only member may read the properties, not change them (404 when they see nothing).
  assert.equal((await dav('PROPPATCH', '/dav/team/plan.txt', { user: 'dan', pw: danPw, headers: XML, body: patchBody('<D:set><D:prop><Z:a>1</Z:a></D:prop></D:set>') })).status, 403);
  const ev = await admin.req('GET', '/api/v1/audit?action=dav.proppatch&limit=50');
  assert.equal(ev.status, 200, ev.text());
  assert.ok(ev.json().events.length >= 2, 'PROPPATCH is in the provenance');
});

test('LOCK/UNLOCK: tokens, discovery, 423 without the token, the creator only, refresh, lock-null, bad requests', async () => {
  assert.equal((await dav('MKCOL', '/dav/team/locks/')).status, 201);
  assert.equal((await dav('PUT', '/dav/team/locks/f.txt', { body: 'one' })).status, 201);
  const spaces = await admin.spaces();
  const folder = (await admin.children(spaces.tenant.root)).json().items.find((n) => n.name === 'locks');
  const acl = await admin.req('PUT', `/api/v1/nodes/${folder.id}/acl`, { body: { entries: [{ principal: `user:${dan.id}`, level: 'manage' }] } });
  assert.equal(acl.status, 200, acl.text());
  assert.equal((await dav('PUT', '/dav/team/locks/f.txt', { user: 'dan', pw: danPw, body: 'dan can write' })).status, 204);

  const l = await dav('LOCK', '/dav/team/locks/f.txt', { headers: { ...XML, timeout: 'Second-100', depth: '0' }, body: lockBody() });
  assert.equal(l.status, 200, l.text());
  const token = tokenOf(l);
  assert.match(l.text(), new RegExp(`<D:locktoken><D:href>${token}</D:href></D:locktoken>`));
  assert.match(l.text(), /<D:timeout>Second-(100|99)<\/D:timeout>/);
  assert.match(l.text(), /<D:owner xmlns:D="DAV:"><D:href>mailto:a@example.com<\/D:href><\/D:owner>/, 'the owner as sent (a self-contained fragment)');
  const disc = await propfind('/dav/team/locks/f.txt', '<D:prop><D:lockdiscovery/></D:prop>', { user: 'dan', pw: danPw });
  assert.ok(disc.text().includes(token), 'lock discovery shows the lock to whoever may see the file');
  // dan, even with the token: 423 (the creator only); UNLOCK by dan: 403. Nothing changed.
  const ifh = { if: `(<${token}>)` };
  for (const [m, opts] of [['PUT', { body: 'dan' }], ['DELETE', {}], ['PROPPATCH', { body: patchBody('<D:set><D:prop><Z:a>1</Z:a></D:prop></D:set>') }],
    ['MOVE', { headers: { destination: `${s.url}/dav/team/locks/g.txt` } }]]) {
    for (const h of [{}, ifh]) {
      const r = await dav(m, '/dav/team/locks/f.txt', { user: 'dan', pw: danPw, ...opts, headers: { ...XML, ...(opts.headers || {}), ...h } });
      assert.equal(r.status, 423, `${m} ${JSON.stringify(h)}: ${r.text()}`);
      assert.match(r.text(), /<D:lock-token-submitted><D:href>\/dav\/team\/locks\/f.txt<\/D:href><\/D:lock-token-submitted>/);
    }
  }
  assert.equal((await dav('UNLOCK', '/dav/team/locks/f.txt', { user: 'dan', pw: danPw, headers: { 'lock-token': `<${token}>` } })).status, 403);
  assert.equal((await dav('GET', '/dav/team/locks/f.txt')).text(), 'dan can write');
  // A second exclusive lock, or a shared one: 423 no-conflicting-lock.
  for (const scope of ['exclusive', 'shared']) {
    const r = await dav('LOCK', '/dav/team/locks/f.txt', { user: 'dan', pw: danPw, headers: XML, body: lockBody(scope) });
    assert.equal(r.status, 423, r.text());
    assert.match(r.text(), /<D:no-conflicting-lock\/>/);
  }
  // The creator with the token writes; without it, 423.
  assert.equal((await dav('PUT', '/dav/team/locks/f.txt', { body: 'admin' })).status, 423);
  assert.equal((await dav('PUT', '/dav/team/locks/f.txt', { body: 'admin', headers: ifh })).status, 204);
  // Refresh: empty body + If; a wrong token 412; no If 400.
  const rf = await dav('LOCK', '/dav/team/locks/f.txt', { headers: { ...ifh, timeout: 'Infinite' } });
  assert.equal(rf.status, 200, rf.text());
  assert.match(rf.text(), /<D:timeout>Second-(3600|3599)<\/D:timeout>/);
  assert.equal(rf.headers['lock-token'], undefined);
  assert.equal((await dav('LOCK', '/dav/team/locks/f.txt', { headers: { if: '(<opaquelocktoken:00000000-0000-4000-8000-000000000000>)' } })).status, 412);
  assert.equal((await dav('LOCK', '/dav/team/locks/f.txt')).status, 400);
  // A depth-infinity lock on the folder conflicts with the exclusive lock below it.
  const fl = await dav('LOCK', '/dav/team/locks/', { user: 'dan', pw: danPw, headers: XML, body: lockBody('shared') });
  assert.equal(fl.status, 423, fl.text());
  // UNLOCK: unknown token 409, no header 400, the creator 204; then dan may write.
  const unk = await dav('UNLOCK', '/dav/team/locks/f.txt', { headers: { 'lock-token': '<opaquelocktoken:00000000-0000-4000-8000-000000000000>' } });
  assert.equal(unk.status, 409);
  assert.match(unk.text(), /<D:lock-token-matches-request-uri\/>/);
  assert.equal((await dav('UNLOCK', '/dav/team/locks/f.txt')).status, 400);
  assert.equal((await dav('UNLOCK', '/dav/team/locks/f.txt', { headers: { 'lock-token': `<${token}>` } })).status, 204);
  assert.equal((await dav('PUT', '/dav/team/locks/f.txt', { user: 'dan', pw: danPw, body: 'dan again' })).status, 204);
  // Now dan locks the folder (depth infinity): its members and new members need dan's token.
  const dl = await dav('LOCK', '/dav/team/locks/', { user: 'dan', pw: danPw, headers: XML, body: lockBody() });
  assert.equal(dl.status, 200, dl.text());
  const dtok = tokenOf(dl);
  assert.match(dl.text(), /<D:depth>infinity<\/D:depth>/);
  assert.match(dl.text(), /<D:lockroot><D:href>\/dav\/team\/locks\/<\/D:href><\/D:lockroot>/);
  assert.equal((await dav('PUT', '/dav/team/locks/f.txt', { body: 'admin' })).status, 423);
  assert.equal((await dav('PUT', '/dav/team/locks/n.txt', { body: 'admin' })).status, 423);
  assert.equal((await dav('MKCOL', '/dav/team/locks/sub/')).status, 423);
  assert.equal((await dav('PUT', '/dav/team/locks/n.txt', { user: 'dan', pw: danPw, body: 'dan', headers: { if: `</dav/team/locks/> (<${dtok}>)` } })).status, 201);
  assert.equal((await dav('DELETE', '/dav/team/locks/n.txt', { user: 'dan', pw: danPw, headers: { if: `(<${dtok}>)` } })).status, 204);
  assert.equal((await dav('UNLOCK', '/dav/team/locks/f.txt', { user: 'dan', pw: danPw, headers: { 'lock-token': `<${dtok}>` } })).status, 204, 'UNLOCK through a member');
  // Lock-null: LOCK on an unmapped URL makes an empty file (through the upload path), 201.
  const ln = await dav('LOCK', '/dav/team/locks/new.txt', { headers: XML, body: lockBody() });
  assert.equal(ln.status, 201, ln.text());
  const newFile = (await admin.children(folder.id)).json().items.find((n) => n.name === 'new.txt');
  assert.equal(newFile.size, 0);
  assert.equal((await admin.node(newFile.id)).json().scan.result, 'clean');
  assert.equal((await dav('DELETE', '/dav/team/locks/new.txt', { user: 'dan', pw: danPw })).status, 423);
  assert.equal((await dav('UNLOCK', '/dav/team/locks/new.txt', { headers: { 'lock-token': ln.headers['lock-token'] } })).status, 204);
  // A MOVE by the lock's creator (token submitted) leaves the lock behind (RFC 4918 §9.9.4).
  const ml = await dav('LOCK', '/dav/team/locks/f.txt', { headers: XML, body: lockBody() });
  assert.equal(ml.status, 200);
  assert.equal((await dav('MOVE', '/dav/team/locks/f.txt', { headers: { destination: `${s.url}/dav/team/locks/moved.txt`, if: `(${ml.headers['lock-token']})` } })).status, 201);
  assert.doesNotMatch((await propfind('/dav/team/locks/moved.txt', '<D:prop><D:lockdiscovery/></D:prop>')).text(), /activelock/);
  assert.equal((await dav('MOVE', '/dav/team/locks/moved.txt', { user: 'dan', pw: danPw, headers: { destination: `${s.url}/dav/team/locks/f.txt` } })).status, 201);
  // Bad LOCK requests: 400 / 422, nothing locked.
  for (const [body, headers, status] of [['<D:lockinfo xmlns:D="DAV:"><D:lockscope>', {}, 400], ['<x/>', {}, 400],
    ['<D:lockinfo xmlns:D="DAV:"><D:locktype><D:write/></D:locktype></D:lockinfo>', {}, 400],
    ['<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:weird/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>', {}, 422],
    [lockBody(), { depth: '1' }, 400], [lockBody(), { if: '(<a:b' }, 400]]) {
    const r = await dav('LOCK', '/dav/team/locks/f.txt', { headers: { ...XML, ...headers }, body });
    assert.equal(r.status, status, `${body}: ${r.text()}`);
  }
  assert.doesNotMatch((await propfind('/dav/team/locks/f.txt', '<D:prop><D:lockdiscovery/></D:prop>')).text(), /activelock/);
  const ev = await admin.req('GET', '/api/v1/audit?action=dav.lock&limit=50');
  assert.ok(ev.json().events.length >= 2, 'LOCK is in the provenance');
});

test('a WebDAV lock binds the API too: another user gets 423 locked on rename, delete, upload, tus, folders; the creator writes', async () => {
  assert.equal((await dav('MKCOL', '/dav/team/guard/')).status, 201);
  assert.equal((await dav('PUT', '/dav/team/guard/g.txt', { body: 'g' })).status, 201);
  const spaces = await admin.spaces();
  const folder = (await admin.children(spaces.tenant.root)).json().items.find((n) => n.name === 'guard');
  const file = (await admin.children(folder.id)).json().items.find((n) => n.name === 'g.txt');
  assert.equal((await admin.req('PUT', `/api/v1/nodes/${folder.id}/acl`, { body: { entries: [{ principal: `user:${dan.id}`, level: 'manage' }] } })).status, 200);
  const l = await dav('LOCK', '/dav/team/guard/g.txt', { headers: { ...XML, depth: '0' }, body: lockBody() });
  assert.equal(l.status, 200);
  const locked = (r, what) => { assert.equal(r.status, 423, `${what}: ${r.text()}`); assert.equal(r.json().error, 'locked', what); };
  locked(await dan.req('PATCH', `/api/v1/nodes/${file.id}`, { body: { name: 'renamed.txt' } }), 'rename');
  locked(await dan.req('DELETE', `/api/v1/nodes/${file.id}`), 'delete');
  locked(await dan.upload(folder.id, 'g.txt', 'new version', '&on_conflict=replace'), 'new version');
  const tus = await s.request('POST', '/api/v1/uploads', { token: dan.token, headers: { 'tus-resumable': '1.0.0', 'upload-length': '3',
    'upload-metadata': `filename ${Buffer.from('g.txt').toString('base64')},parent ${Buffer.from(folder.id).toString('base64')},on_conflict ${Buffer.from('replace').toString('base64')}` } });
  assert.equal(tus.status, 423, tus.text());
  // A depth-0 lock on the file leaves the folder's other members alone.
  assert.equal((await dan.upload(folder.id, 'other.txt', 'o')).status, 201);
  assert.equal((await dan.mkdir(folder.id, 'sub')).status, 201);
  // The creator may (the API has no token to send).
  assert.equal((await admin.upload(folder.id, 'g.txt', 'admin v2', '&on_conflict=replace')).status, 201);
  // A depth-infinity lock on the folder: new members too.
  assert.equal((await dav('UNLOCK', '/dav/team/guard/g.txt', { headers: { 'lock-token': l.headers['lock-token'] } })).status, 204);
  const fl = await dav('LOCK', '/dav/team/guard/', { headers: XML, body: lockBody() });
  assert.equal(fl.status, 200, fl.text());
  locked(await dan.upload(folder.id, 'new.txt', 'n'), 'a new member');
  locked(await dan.mkdir(folder.id, 'sub2'), 'a new folder');
  locked(await dan.req('PATCH', `/api/v1/nodes/${folder.id}`, { body: { name: 'guard2' } }), 'rename of the folder');
  assert.equal((await dan.req('GET', `/api/v1/nodes/${file.id}`)).status, 200, 'reads are not locked');
  assert.equal((await dav('GET', '/dav/team/guard/g.txt', { user: 'dan', pw: danPw })).text(), 'admin v2');
  assert.equal((await dav('UNLOCK', '/dav/team/guard/', { headers: { 'lock-token': fl.headers['lock-token'] } })).status, 204);
  assert.equal((await dan.upload(folder.id, 'new.txt', 'n')).status, 201, 'unlocked');
});

test('a lock with a 1-second timeout expires: discovery stops showing it and writes pass again', async () => {
  assert.equal((await dav('PUT', '/dav/private/short.txt', { body: 's' })).status, 201);
  const l = await dav('LOCK', '/dav/private/short.txt', { headers: { ...XML, timeout: 'Second-0' }, body: lockBody() });
  assert.equal(l.status, 200);
  assert.match(l.text(), /<D:timeout>Second-1<\/D:timeout>/, 'clamped to 1 s');
  const deadline = Date.now() + 60000;
  for (;;) {
    const d = await propfind('/dav/private/short.txt', '<D:prop><D:lockdiscovery/></D:prop>');
    if (!d.text().includes('activelock')) break;
    assert.ok(Date.now() < deadline, 'the lock never expired');
    await new Promise((res) => setImmediate(res));
  }
  // The retention job removes the lapsed record (reads already ignore it): one more dav_lock purged.
  const purged = async () => Number(((await s.request('GET', '/metrics')).text().match(/^coffer_retention_purged_total\{kind="dav_lock"\} (\d+)$/m) || [])[1]);
  const before = await purged();
  const run = cli(['ctl', 'retention', 'run', '-c', s.configPath]);
  assert.equal(run.status, 0, run.stderr);
  assert.ok(await purged() >= before + 1, 'the expired lock record was removed');
  assert.equal((await dav('PUT', '/dav/private/short.txt', { body: 'free' })).status, 204);
  assert.equal((await dav('UNLOCK', '/dav/private/short.txt', { headers: { 'lock-token': l.headers['lock-token'] } })).status, 409, 'gone');
});

test('If headers: malformed 400, false 412, nothing changed; ETag preconditions on GET/PUT/DELETE/MOVE', async () => {
  assert.equal((await dav('PUT', '/dav/private/cond.txt', { body: 'c1' })).status, 201);
  const etag = (await dav('HEAD', '/dav/private/cond.txt')).headers.etag;
  for (const h of ['', '(', '(<a:b>', '<x>', '(Not)', '([e])', `(<a:b>)${' '.repeat(9000)}`, '<t:u> ) (', '(<a:b>) <t:u> (<c:d>)']) {
    const r = await dav('PUT', '/dav/private/cond.txt', { body: 'x', headers: { if: h } });
    assert.equal(r.status, 400, `If: ${JSON.stringify(h.slice(0, 20))}`);
  }
  assert.equal((await dav('PUT', '/dav/private/cond.txt', { body: 'x', headers: { if: '(<DAV:no-lock>)' } })).status, 412);
  assert.equal((await dav('PUT', '/dav/private/cond.txt', { body: 'x', headers: { if: '(["nope"])' } })).status, 412);
  assert.equal((await dav('DELETE', '/dav/private/cond.txt', { headers: { if: `(Not [${etag}])` } })).status, 412);
  assert.equal((await dav('GET', '/dav/private/cond.txt')).text(), 'c1', 'nothing changed');
  assert.equal((await dav('PUT', '/dav/private/cond.txt', { body: 'c2', headers: { if: `([${etag}])` } })).status, 204);
  assert.equal((await dav('PUT', '/dav/private/cond.txt', { body: 'c3', headers: { if: `</dav/private/other> (["nope"])` } })).status, 204, 'a list about another resource is ignored');
  // If-Match / If-None-Match.
  const e3 = (await dav('HEAD', '/dav/private/cond.txt')).headers.etag;
  assert.equal((await dav('PUT', '/dav/private/cond.txt', { body: 'x', headers: { 'if-none-match': '*' } })).status, 412);
  assert.equal((await dav('PUT', '/dav/private/cond.txt', { body: 'x', headers: { 'if-match': etag } })).status, 412);
  assert.equal((await dav('GET', '/dav/private/cond.txt', { headers: { 'if-match': '"other"' } })).status, 412);
  assert.equal((await dav('GET', '/dav/private/cond.txt', { headers: { 'if-none-match': e3 } })).status, 304);
  assert.equal((await dav('MOVE', '/dav/private/cond.txt', { headers: { 'if-match': etag, destination: `${s.url}/dav/private/cond2.txt` } })).status, 412);
  assert.equal((await dav('DELETE', '/dav/private/cond.txt', { headers: { 'if-none-match': e3 } })).status, 412);
  assert.equal((await dav('GET', '/dav/private/cond.txt')).text(), 'c3', 'nothing changed');
  assert.equal((await dav('PUT', '/dav/private/new-only.txt', { body: 'n', headers: { 'if-none-match': '*' } })).status, 201);
  assert.equal((await dav('PUT', '/dav/private/cond.txt', { body: 'c4', headers: { 'if-match': `"zz", ${e3}` } })).status, 204);
  assert.equal((await dav('DELETE', '/dav/private/cond.txt', { headers: { 'if-match': (await dav('HEAD', '/dav/private/cond.txt')).headers.etag } })).status, 204);
});

test('RFC 4331 quota properties: used bytes, and the available bytes once a limit applies', async () => {
  const q = await propfind('/dav/private/', '<D:prop><D:quota-used-bytes/><D:quota-available-bytes/></D:prop>');
  const me = (await admin.req('GET', '/api/v1/me')).json();
  const used = me.usage ? me.usage.bytes : undefined;
  assert.match(q.text(), /<D:quota-used-bytes>(\d+)<\/D:quota-used-bytes>/);
  if (used !== undefined) assert.ok(q.text().includes(`<D:quota-used-bytes>${used}</D:quota-used-bytes>`), q.text());
  assert.match(q.text(), /<D:propstat><D:prop><D:quota-available-bytes\/><\/D:prop><D:status>HTTP\/1.1 404/, 'no limit, no property');
  const set = await s.request('PATCH', '/api/v1/admin/policy', { token: admin.token, body: { user_quota_bytes: 1e12 } });
  assert.equal(set.status, 200, set.text());
  const q2 = await propfind('/dav/private/', '<D:prop><D:quota-used-bytes/><D:quota-available-bytes/></D:prop>');
  const u = +q2.text().match(/<D:quota-used-bytes>(\d+)</)[1];
  assert.ok(q2.text().includes(`<D:quota-available-bytes>${1e12 - u}</D:quota-available-bytes>`), q2.text());
  assert.equal((await s.request('PATCH', '/api/v1/admin/policy', { token: admin.token, body: { user_quota_bytes: 0 } })).status, 200);
});

test('on disk: dead properties and locks are sealed under their tags; a purge drops them with the node', async () => {
  const marker = `marker-${Date.now()}-7f3a`;
  assert.equal((await dav('PUT', '/dav/private/sealed.txt', { body: 's' })).status, 201);
  assert.equal((await dav('PROPPATCH', '/dav/private/sealed.txt', { headers: XML, body: patchBody(`<D:set><D:prop><Z:secret>${marker}</Z:secret></D:prop></D:set>`) })).status, 207);
  const l = await dav('LOCK', '/dav/private/sealed.txt', { headers: { ...XML, timeout: 'Second-3600' }, body: lockBody('exclusive', `<D:href>${marker}</D:href>`) });
  assert.equal(l.status, 200);
  const node = (await admin.children((await admin.spaces()).private.root)).json().items.find((n) => n.name === 'sealed.txt');
  const db = (...args) => {
    const r = spawnSync(dbtool, [s.dataDir, ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  const keys = () => db('keys', 'uploads').split('\n').filter(Boolean).map((line) => line.split(' ')[0]);
  const mine = (tag) => keys().filter((k) => new RegExp(`^[0-9a-f]{32}${tag}${node.id}`).test(k));
  const tokenHash = crypto.createHash('sha256').update(l.headers['lock-token'].slice(1, -1)).digest('hex');
  const tokens = () => keys().filter((k) => new RegExp(`^[0-9a-f]{32}6b${tokenHash}$`).test(k));
  await s.stop();
  assert.equal(mine('64').length, 1, 'one property record: T d node HMAC(name)');
  assert.equal(mine('64')[0].length, 130);
  assert.equal(mine('6c').length, 1, 'one lock record: T l node lock-id');
  assert.equal(tokens().length, 1, 'one token index entry: T k SHA-256(token)');
  const hex = Buffer.from(marker).toString('hex');
  assert.ok(!db('values').includes(hex), 'the value and the owner are sealed');
  assert.ok(!db('values').includes(Buffer.from(l.headers['lock-token'].slice(1, -1)).toString('hex')), 'the token is not stored in the clear');
  await s.start();
  assert.equal((await dav('DELETE', '/dav/private/sealed.txt')).status, 423, 'still locked after a restart');
  assert.equal((await dav('DELETE', '/dav/private/sealed.txt', { headers: { if: `(${l.headers['lock-token']})` } })).status, 204);
  assert.equal((await admin.req('DELETE', '/api/v1/trash')).status, 200);
  await s.stop();
  assert.deepEqual([mine('64'), mine('6c'), tokens()], [[], [], []], 'purged with the node');
  await s.start();
});

test('litmus basic, copymove, props, locks and http against /dav/private/litmus/ over TLS', async () => {
  assert.equal((await dav('MKCOL', '/dav/private/litmus/')).status, 201);
  const run = spawnSync('litmus', ['-k', `${s.url}/dav/private/litmus/`, 'admin', adminPw], {
    env: { ...process.env, TESTS: 'basic copymove props locks http', HOME: s.dir }, cwd: s.dir, timeout: 120000,
  });
  const out = run.stdout.toString();
  const failed = [...out.matchAll(/\d+\. (\w+)\.+ FAIL/g)].map((m) => m[1]);
  assert.deepEqual(failed, [], out);
  assert.doesNotMatch(out, /WARNING/, 'no warnings either');
  const summary = {};
  for (const m of out.matchAll(/<- summary for `(\w+)': of (\d+) tests run: (\d+) passed, (\d+) failed/g))
    summary[m[1]] = { run: +m[2], passed: +m[3], failed: +m[4] };
  assert.deepEqual(summary, LITMUS_EXPECTED, out);
});

// Every test of the five groups passes (docs/WEBDAV.md, "Litmus").
const LITMUS_EXPECTED = {
  basic: { run: 16, passed: 16, failed: 0 },
  copymove: { run: 13, passed: 13, failed: 0 },
  props: { run: 30, passed: 30, failed: 0 },
  locks: { run: 41, passed: 41, failed: 0 },
  http: { run: 3, passed: 3, failed: 0 },
};
