// Storage quotas (issue 21; storage/usage.c, src/api/quota.c): policy user_quota_bytes and
// tenant_quota_bytes, usage counted per user and per tenant (current versions of files, live and
// in the trash; old versions not), enforced at upload creation and again at the commit.
//
// - GET /api/v1/me shows usage {bytes, quota, tenant_bytes, tenant_quota}; it follows every upload,
//   new version (charged the difference, to the file's owner), trash (still counted) and purge.
// - Over quota: a simple upload and a tus creation are refused with 507 quota_exceeded and the
//   numbers {quota, used, needed, scope}, nothing stored; two tus uploads that each fit at creation
//   but not together: the second to complete is refused at its commit (507, the upload discarded,
//   an upload.rejected event); a replacement that makes a file smaller is allowed at the limit.
// - The tenant's limit: scope "tenant", whoever uploads.
// - Restart keeps the counts; `coffer fsck` finds the counters equal to the files they count.
// - A store whose counters are missing (as one from before quotas): usage is computed from the
//   files, and the first change writes every counter back.
// - Bad policy input: 400.
// - The web UI (Chromium): the top bar shows the usage and the quota (quota.js); the folder's
//   "Download as ZIP" link downloads an archive that unzip -t accepts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { Server, bytes, cli, dbtool } from './lib/harness.mjs';

const b64 = (s) => Buffer.from(s).toString('base64');
const T = { 'tus-resumable': '1.0.0' };
const OCT = { ...T, 'content-type': 'application/offset+octet-stream' };
const meta = (pairs) => Object.entries(pairs).map(([k, v]) => `${k} ${b64(v)}`).join(',');
const pw = (u) => `${u}-password-quota-1`;
const U = {};
let server;

const req = (who, method, p, opts = {}) => server.request(method, p, { token: U[who].token, ...opts });

async function policy(body) {
  return server.request('PATCH', '/api/v1/admin/policy', { token: U.admin.token, body });
}

async function usage(who) {
  const r = await req(who, 'GET', '/api/v1/me');
  assert.equal(r.status, 200, r.text());
  assert.ok(r.json().usage, 'GET /me has usage');
  return r.json().usage;
}

async function upload(who, name, data, extra = '') {
  return req(who, 'POST', `/api/v1/files?parent=${U[who].root}&name=${encodeURIComponent(name)}${extra}`, { body: data });
}

async function tusCreate(who, name, length, extra = {}) {
  return req(who, 'POST', '/api/v1/uploads', { headers: { ...T, 'upload-length': String(length),
    'upload-metadata': meta({ filename: name, parent: U[who].root, ...extra }) } });
}

async function tusPatch(who, loc, offset, body) {
  return req(who, 'PATCH', loc, { headers: { ...OCT, 'upload-offset': String(offset) }, body });
}

function assertQuota(r, want, what) {
  assert.equal(r.status, 507, `${what}: ${r.status} ${r.text()}`);
  const j = r.json();
  assert.equal(j.error, 'quota_exceeded', what);
  assert.equal(typeof j.message, 'string');
  assert.deepEqual({ quota: j.quota, used: j.used, needed: j.needed, scope: j.scope }, want, what);
}

async function names(who) {
  const r = await req(who, 'GET', `/api/v1/nodes/${U[who].root}/children`);
  assert.equal(r.status, 200);
  return r.json().items.map((i) => i.name).sort();
}

before(async () => {
  server = new Server();
  await server.start();
  const al = await server.login();
  U.admin = { id: al.user.id, token: al.token };
  for (const name of ['alice', 'bob']) {
    const r = await server.request('POST', '/api/v1/admin/users', { token: al.token, body: { username: name, password: pw(name) } });
    assert.equal(r.status, 201, r.text());
    const l = await server.login(name, pw(name));
    U[name] = { id: r.json().id, token: l.token };
    U[name].root = (await server.request('GET', '/api/v1/spaces', { token: l.token })).json().private.root;
  }
});

after(async () => {
  if (server) {
    await server.stop();
    server.cleanup();
  }
});

test('no quota: usage is shown, quota null', async () => {
  assert.deepEqual(await usage('alice'), { bytes: 0, quota: null, tenant_bytes: 0, tenant_quota: null });
  assert.equal((await upload('alice', 'first.bin', bytes(1000, 1))).status, 201);
  assert.deepEqual(await usage('alice'), { bytes: 1000, quota: null, tenant_bytes: 1000, tenant_quota: null });
  assert.equal((await usage('bob')).bytes, 0, 'bob owns nothing');
});

test('bad policy input is 400 and changes nothing', async () => {
  for (const body of [{ user_quota_bytes: -1 }, { user_quota_bytes: 'lots' }, { tenant_quota_bytes: 1.5 }, { user_quota_bytes: 2 ** 60 + 1 }, { user_quota_bytes: true }]) {
    const r = await policy(body);
    assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.status} ${r.text()}`);
  }
  const g = await server.request('GET', '/api/v1/admin/policy', { token: U.admin.token });
  assert.equal(g.json().user_quota_bytes, 0);
});

test('user quota: accepted under it, refused at creation over it (simple and tus), nothing stored', async () => {
  const r = await policy({ user_quota_bytes: 100000 });
  assert.equal(r.status, 200, r.text());
  assert.equal(r.json().user_quota_bytes, 100000);
  assert.deepEqual(await usage('alice'), { bytes: 1000, quota: 100000, tenant_bytes: 1000, tenant_quota: null });
  assert.equal((await upload('alice', 'a.bin', bytes(59000, 2))).status, 201);
  assert.equal((await usage('alice')).bytes, 60000);
  const before = await names('alice');
  assertQuota(await upload('alice', 'too-big.bin', bytes(50000, 3)), { quota: 100000, used: 60000, needed: 50000, scope: 'user' }, 'simple');
  assertQuota(await tusCreate('alice', 'too-big-tus.bin', 40001), { quota: 100000, used: 60000, needed: 40001, scope: 'user' }, 'tus');
  assert.deepEqual(await names('alice'), before, 'nothing was stored');
  assert.equal((await usage('alice')).bytes, 60000);
  // Exactly up to the limit fits; bob has his own 100000.
  assert.equal((await upload('bob', 'b.bin', bytes(100000, 4))).status, 201);
  assertQuota(await upload('bob', 'one-more.bin', Buffer.from('x')), { quota: 100000, used: 100000, needed: 1, scope: 'user' }, 'bob full');
  assert.equal((await upload('bob', 'empty.bin', Buffer.alloc(0))).status, 201, 'an empty file always fits');
});

test('two tus uploads that fit alone but not together: the second is refused at its commit', async () => {
  // alice holds 60000 of 100000: each 25000 fits at creation, both do not.
  const a = await tusCreate('alice', 'par-a.bin', 25000);
  const b = await tusCreate('alice', 'par-b.bin', 25000);
  assert.equal(a.status, 201, a.text());
  assert.equal(b.status, 201, b.text());
  const pa = await tusPatch('alice', a.headers.location, 0, bytes(25000, 5));
  assert.equal(pa.status, 204, pa.text());
  assert.equal((await usage('alice')).bytes, 85000);
  const pb = await tusPatch('alice', b.headers.location, 0, bytes(25000, 6));
  assertQuota(pb, { quota: 100000, used: 85000, needed: 25000, scope: 'user' }, 'commit');
  const h = await req('alice', 'HEAD', b.headers.location, { headers: T });
  assert.equal(h.status, 404, 'the refused upload is discarded');
  assert.equal((await usage('alice')).bytes, 85000);
  assert.ok(!(await names('alice')).includes('par-b.bin'));
  const ev = await server.request('GET', `/api/v1/audit?actor=user:${U.alice.id}&action=upload.rejected&limit=50`, { token: U.admin.token });
  assert.ok(ev.json().events.some((e) => e.detail && e.detail.reason === 'quota_exceeded'), 'an upload.rejected event names the quota');
});

test('versions: a new version is charged the difference; a smaller one is allowed at the limit', async () => {
  // alice: first.bin 1000, a.bin 59000, par-a.bin 25000 = 85000.
  let r = await upload('alice', 'a.bin', bytes(70000, 7), '&on_conflict=replace');
  assert.equal(r.status, 201, r.text());
  assert.equal(r.json().version, 2);
  assert.equal((await usage('alice')).bytes, 96000, '85000 - 59000 + 70000');
  r = await upload('alice', 'a.bin', bytes(80000, 8), '&on_conflict=replace');
  assertQuota(r, { quota: 100000, used: 96000, needed: 10000, scope: 'user' }, 'a bigger version over the limit');
  r = await upload('alice', 'a.bin', bytes(10000, 9), '&on_conflict=replace');
  assert.equal(r.status, 201, `a smaller version at the limit: ${r.text()}`);
  assert.equal((await usage('alice')).bytes, 36000);
  // tus too: a replacement over tus is charged its difference.
  const c = await tusCreate('alice', 'a.bin', 12000, { on_conflict: 'replace' });
  assert.equal(c.status, 201, c.text());
  assert.equal((await tusPatch('alice', c.headers.location, 0, bytes(12000, 10))).status, 204);
  assert.equal((await usage('alice')).bytes, 38000);
});

test('trash still counts; purge frees', async () => {
  const id = (await req('alice', 'GET', `/api/v1/nodes/${U.alice.root}/children`)).json().items.find((i) => i.name === 'par-a.bin').id;
  assert.equal((await req('alice', 'DELETE', `/api/v1/nodes/${id}`)).status, 204);
  assert.equal((await usage('alice')).bytes, 38000, 'a trashed file still holds its bytes');
  const p = await req('alice', 'DELETE', `/api/v1/nodes/${id}?purge=true`);
  assert.equal(p.status, 204, p.text());
  assert.equal((await usage('alice')).bytes, 13000, 'purged: 25000 freed');
  // A folder with files inside, purged at once.
  const f = await req('alice', 'POST', '/api/v1/folders', { body: { parent: U.alice.root, name: 'dir' } });
  assert.equal(f.status, 201);
  for (let i = 0; i < 3; i++) {
    const u = await req('alice', 'POST', `/api/v1/files?parent=${f.json().id}&name=f${i}`, { body: bytes(5000, 20 + i) });
    assert.equal(u.status, 201);
  }
  assert.equal((await usage('alice')).bytes, 28000);
  assert.equal((await req('alice', 'DELETE', `/api/v1/nodes/${f.json().id}?purge=true`)).status, 204);
  assert.equal((await usage('alice')).bytes, 13000);
});

test('tenant quota: scope tenant whoever uploads', async () => {
  const t = (await usage('alice')).tenant_bytes;
  assert.equal(t, 13000 + 100000, 'alice and bob');
  let r = await policy({ user_quota_bytes: 0, tenant_quota_bytes: t + 500 });
  assert.equal(r.status, 200, r.text());
  assert.deepEqual(await usage('bob'), { bytes: 100000, quota: null, tenant_bytes: t, tenant_quota: t + 500 });
  assert.equal((await upload('bob', 'small.bin', bytes(500, 30))).status, 201, 'up to the tenant limit');
  assertQuota(await upload('alice', 'x.bin', bytes(10, 31)), { quota: t + 500, used: t + 500, needed: 10, scope: 'tenant' }, 'tenant simple');
  assertQuota(await tusCreate('bob', 'y.bin', 10), { quota: t + 500, used: t + 500, needed: 10, scope: 'tenant' }, 'tenant tus');
  r = await policy({ tenant_quota_bytes: 0 });
  assert.equal(r.status, 200);
  assert.equal((await upload('alice', 'x.bin', bytes(10, 31))).status, 201, 'no limit again');
});

test('restart keeps the counts; fsck finds the counters right', async () => {
  const a = await usage('alice');
  const b = await usage('bob');
  await server.stop();
  const f = cli(['fsck', '-c', server.configPath]);
  assert.equal(f.status, 0, `fsck: ${f.stdout} ${f.stderr}`);
  const rep = JSON.parse(f.stdout);
  assert.equal(rep.usage_wrong, 0);
  assert.ok(rep.usage_counters >= 3, `counters checked: ${rep.usage_counters}`);
  await server.start();
  U.alice.token = (await server.login('alice', pw('alice'))).token;
  U.bob.token = (await server.login('bob', pw('bob'))).token;
  assert.deepEqual(await usage('alice'), a);
  assert.deepEqual(await usage('bob'), b);
});

test('counters missing (a store from before quotas): computed from the files, written at the first change', async () => {
  const a = await usage('alice');
  const b = await usage('bob');
  await server.stop();
  const tool = (args) => {
    const r = spawnSync(dbtool, args, { encoding: 'utf8', maxBuffer: 1 << 26 });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  // Usage counters: uploads keys T ‖ 'q' ‖ user (33 bytes; 'q' = 0x71 at byte 16).
  const keys = tool([server.dataDir, 'keys', 'uploads']).split('\n').filter(Boolean).map((l) => l.split(' ')[0])
    .filter((k) => k.length === 66 && k.slice(32, 34) === '71');
  assert.ok(keys.length >= 3, `counters found: ${keys.length}`);
  for (const k of keys) tool([server.dataDir, 'delete', 'uploads', k]);
  await server.start();
  U.alice.token = (await server.login('alice', pw('alice'))).token;
  U.bob.token = (await server.login('bob', pw('bob'))).token;
  assert.deepEqual(await usage('alice'), a, 'computed from the files');
  assert.deepEqual(await usage('bob'), b);
  assert.equal((await upload('alice', 'after-upgrade.bin', bytes(321, 40))).status, 201);
  assert.equal((await usage('alice')).bytes, a.bytes + 321);
  assert.equal((await usage('bob')).bytes, b.bytes, 'every counter was written back, not only the changed one');
  await server.stop();
  const f = cli(['fsck', '-c', server.configPath]);
  const rep = JSON.parse(f.stdout);
  assert.equal(rep.usage_wrong, 0, f.stderr);
  assert.ok(rep.usage_counters >= 3);
  await server.start();
  U.alice.token = (await server.login('alice', pw('alice'))).token;
  U.bob.token = (await server.login('bob', pw('bob'))).token;
});

test('web UI: usage in the top bar, "Download as ZIP" saves the folder', async () => {
  assert.equal((await policy({ user_quota_bytes: 200000 })).status, 200);
  const u = await usage('alice');
  const browser = await chromium.launch({ executablePath: process.env.COFFER_CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
  try {
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true, acceptDownloads: true });
    ctx.setDefaultTimeout(120000);
    const page = await ctx.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${server.url}/`);
    await page.getByTestId('login-username').fill('alice');
    await page.getByTestId('login-password').fill(pw('alice'));
    await page.getByTestId('login-submit').click();
    await page.locator('#app-view').waitFor();
    const usageEl = page.getByTestId('usage');
    await usageEl.waitFor();
    assert.equal(await usageEl.getAttribute('data-bytes'), String(u.bytes));
    assert.equal(await usageEl.getAttribute('data-quota'), '200000');
    assert.match(await usageEl.textContent(), / of .* used/);
    const link = page.getByTestId('folder-zip');
    await link.waitFor();
    assert.equal(await link.getAttribute('href'), `/api/v1/folders/${U.alice.root}/zip`);
    const [dl] = await Promise.all([page.waitForEvent('download'), link.click()]);
    assert.equal(dl.suggestedFilename(), 'files.zip', 'a space root downloads as files.zip');
    const file = path.join(server.dir, 'ui.zip');
    await dl.saveAs(file);
    const t = spawnSync('unzip', ['-t', file], { encoding: 'utf8' });
    assert.equal(t.status, 0, t.stdout + t.stderr);
    assert.match(t.stdout, /a\.bin/);
    // The admin sets the quotas in the policy tab (megabytes).
    const actx = await browser.newContext({ ignoreHTTPSErrors: true });
    actx.setDefaultTimeout(120000);
    const ap = await actx.newPage();
    ap.on('pageerror', (e) => errors.push(e.message));
    await ap.goto(`${server.url}/`);
    await ap.getByTestId('login-username').fill('admin');
    await ap.getByTestId('login-password').fill('admin-password-1');
    await ap.getByTestId('login-submit').click();
    await ap.locator('#app-view').waitFor();
    await ap.goto(`${server.url}/admin`);
    await ap.locator('#tabs [data-tab="policy"]').click();
    const qu = ap.getByTestId('policy-quota-user');
    await ap.waitForFunction(() => document.querySelector('[data-testid="policy-quota-user"]').value !== '');
    assert.equal(await qu.inputValue(), '0.2', 'the current quota, in MB');
    await qu.fill('0.5');
    await ap.getByTestId('policy-quota-tenant').fill('3');
    await ap.getByTestId('policy-save').click();
    await ap.locator('#status .note.ok').filter({ hasText: 'Policy saved.' }).waitFor();
    const pol = (await server.request('GET', '/api/v1/admin/policy', { token: U.admin.token })).json();
    assert.deepEqual([pol.user_quota_bytes, pol.tenant_quota_bytes], [500000, 3000000]);
    assert.deepEqual(errors, []);
    await actx.close();
    await ctx.close();
  } finally {
    await browser.close();
  }
});
