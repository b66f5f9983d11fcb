// webdav.test.mjs: WebDAV class 1 at /dav/ (issue 22, docs/WEBDAV.md), against the real server over
// TLS with HTTP Basic and app passwords: the 401 challenge, OPTIONS, PROPFIND depth 0/1 (exact hrefs
// and properties, 404 propstats, infinity refused), MKCOL, PUT/GET byte-exact, PUT of a new version,
// MOVE (Overwrite F/T), DELETE to the trash, the team and shared spaces as the API shows them, a
// view-only member refused the bytes as by the API, EICAR refused with the API's answer and its
// provenance event, a revoked app password refused on the next request; and litmus (basic, copymove,
// http: every test passes).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Server, EICAR, bytes, sha256, curl } from './lib/harness.mjs';

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

test('OPTIONS: DAV 1 and the methods', async () => {
  const r = await dav('OPTIONS', '/dav/private/');
  assert.equal(r.status, 200);
  assert.equal(r.headers.dav, '1');
  assert.equal(r.headers.allow, 'OPTIONS, PROPFIND, GET, HEAD, PUT, DELETE, MKCOL, MOVE, COPY');
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

test('litmus basic, copymove and http against /dav/private/litmus/ over TLS', async () => {
  assert.equal((await dav('MKCOL', '/dav/private/litmus/')).status, 201);
  const run = spawnSync('litmus', ['-k', `${s.url}/dav/private/litmus/`, 'admin', adminPw], {
    env: { ...process.env, TESTS: 'basic copymove http', HOME: s.dir }, cwd: s.dir, timeout: 120000,
  });
  const out = run.stdout.toString();
  const failed = [...out.matchAll(/\d+\. (\w+)\.+ FAIL/g)].map((m) => m[1]);
  assert.deepEqual(failed, [], out);
  const summary = {};
  for (const m of out.matchAll(/<- summary for `(\w+)': of (\d+) tests run: (\d+) passed, (\d+) failed/g))
    summary[m[1]] = { run: +m[2], passed: +m[3], failed: +m[4] };
  assert.deepEqual(summary, LITMUS_EXPECTED, out);
});

// What passes in this slice (docs/WEBDAV.md, "Litmus").
const LITMUS_EXPECTED = {
  basic: { run: 16, passed: 16, failed: 0 },
  copymove: { run: 13, passed: 13, failed: 0 },
  http: { run: 3, passed: 3, failed: 0 },
};
