// Operations on a cluster store (issue 24, docs/CLUSTER.md "Backups and restore", "Keys and tenants"):
// one Coffer node with `store: engine: cluster` over a throw-away PostgreSQL (tests/integration/lib/
// pg.mjs) and a throw-away Ceph (tests/integration/lib/ceph.mjs: metadata in the database, chunk
// bodies in a RADOS pool).
// - A backup is a pg_dump of the database, then a `rados export` of the pool; the tested restore puts
//   both into a NEW database and a NEW pool, and a node over them serves every file backed up, byte
//   for byte, and the share link, and not what was written after the backup. The node's journal
//   anchor (kept with the master key) notices the older store and refuses it until the operator says
//   `coffer journal accept`; afterwards `audit verify` and `fsck` pass on the restore.
// - A tenant's content-key rotation and its deletion (crypto-shredding) run on the cluster store:
//   files read back after the rotation; after the deletion its sessions end, its RADOS namespace is
//   empty and the other tenant's files are untouched.
// No planted name or content in the database dump or the pool export.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Server, CHUNK, bigBytes, sha256, cli, markedBytes } from './lib/harness.mjs';
import { Postgres } from './lib/pg.mjs';
import { Ceph } from './lib/ceph.mjs';

const NAME_MARK = `PLANTED-NAME-${crypto.randomBytes(6).toString('hex')}`;
const BODY_MARK = `PLANTED-BODY-${crypto.randomBytes(6).toString('hex')}`;
const ACME_PASSWORD = 'acme-password-1';

let pg, ceph, server, restored;

before(async () => {
  pg = new Postgres().start();
  ceph = new Ceph().start();
  server = new Server({ config: { ...storeConfig('coffer', ceph.pool('coffer', 'coffer')), limits: { max_request_body_bytes: '160MiB' } } });
  await server.start();
});

after(async () => {
  for (const s of [restored, server]) if (s) { try { await s.kill(); } catch { /* gone */ } s.cleanup(); }
  if (ceph) ceph.cleanup();
  if (pg) pg.cleanup();
});

function storeConfig(dbname, rados) {
  return { store: { engine: 'cluster', postgres: { conninfo: pg.tcp.replace(/dbname=\w+/, `dbname=${dbname}`), password_file: pg.passwordFile, timeout: '10s' }, rados } };
}

/** Content with the marker at the start, across every chunk boundary and at the end (lib/harness.mjs). */
const content = (n, seed) => markedBytes(n, seed, BODY_MARK);

function assertNoMarks(buf, what) {
  const lower = buf.toString('latin1').toLowerCase();
  for (const mark of [NAME_MARK, BODY_MARK]) {
    assert.ok(!buf.includes(Buffer.from(mark)), `${mark} in ${what}`);
    assert.ok(!lower.includes(Buffer.from(mark).toString('hex')), `${mark} (hex) in ${what}`);
  }
}

function pgTool(name, args) {
  const r = spawnSync(pg.bin(name), ['-h', pg.dir, '-p', pg.env.PGPORT, '-U', 'postgres', ...args], { encoding: 'utf8', timeout: 300000 });
  assert.equal(r.status, 0, `${name} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

test('backup (pg_dump + rados export) and a tested restore into a new database and pool', async () => {
  const admin = server.client((await server.login()).token);
  const root = (await admin.spaces()).private.root;
  const folder = await admin.mkdir(root, `folder-${NAME_MARK}`);
  assert.equal(folder.status, 201, folder.text());
  const fid = folder.json().id;
  const files = [];
  for (const [i, n] of [100, 3 * CHUNK + 17, 2 * CHUNK].entries()) {
    const data = content(n, i + 1);
    const r = await admin.upload(fid, `${NAME_MARK}-${i}.bin`, data);
    assert.equal(r.status, 201, `upload ${n}: ${r.text()}`);
    files.push({ id: r.json().id, data, name: `${NAME_MARK}-${i}.bin` });
  }
  const sr = await admin.req('POST', '/api/v1/shares', { body: { node: files[1].id, permission: 'download' } });
  assert.equal(sr.status, 201, sr.text());
  const share = sr.json();
  const stoken = share.url.slice(`${server.url}/s/`.length);

  // The backup, online: the database first, then the pool (every chunk a dumped record names was
  // written before that record was committed, so it is in the pool export too).
  const bdir = fs.mkdtempSync(path.join(server.dir, 'backup-'));
  const dumpFile = path.join(bdir, 'coffer.pgdump');
  const poolFile = path.join(bdir, 'coffer.rados');
  pgTool('pg_dump', ['-d', 'coffer', '-Fc', '-f', dumpFile]);
  const ex = ceph.rados(['-p', 'coffer', 'export', poolFile]);
  assert.equal(ex.status, 0, `rados export: ${ex.stderr}`);
  assertNoMarks(fs.readFileSync(poolFile), 'the pool export');
  assertNoMarks(Buffer.from(pgTool('pg_restore', ['-f', '-', dumpFile])), 'the database dump');

  // Written after the backup: not in the restore.
  const late = await admin.upload(fid, 'after-the-backup.bin', Buffer.from('written after the backup'));
  assert.equal(late.status, 201, late.text());

  // The restore: a new database and a new pool (with its own cephx user), as after losing both.
  pg.psql('CREATE DATABASE restored OWNER coffer');
  pgTool('pg_restore', ['-d', 'restored', '--exit-on-error', dumpFile]);
  const rados2 = ceph.pool('restored', 'restorer');
  const im = ceph.rados(['-p', 'restored', 'import', poolFile]);
  assert.equal(im.status, 0, `rados import: ${im.stderr}`);
  const orig = new Set(ceph.list('coffer')), rest = ceph.list('restored');
  assert.ok(rest.every((l) => orig.has(l)), 'the restored pool holds objects of the original only');
  assert.equal(rest.length, orig.size - 1, 'every object but the one chunk written after the backup');

  // A node over the restore, with the master key and its anchor (kept together, off the store).
  restored = new Server({ config: storeConfig('restored', rados2) });
  restored.initialised = true;
  for (const f of ['master.key', 'master.key.anchor']) {
    fs.copyFileSync(path.join(server.dir, f), path.join(restored.dir, f));
    fs.chmodSync(path.join(restored.dir, f), 0o600);
  }
  await assert.rejects(restored.start(), /does not continue the metadata journal/, 'the anchor notices the older store');
  const acc = cli(['journal', 'accept', '-c', restored.configPath]);
  assert.equal(acc.status, 0, acc.stderr);
  await restored.start();

  const radmin = restored.client((await restored.login()).token);
  for (const f of files) {
    const r = await radmin.download(f.id);
    assert.equal(r.status, 200, `${f.name} on the restore: ${r.status}`);
    assert.equal(sha256(r.body), sha256(f.data), `${f.name}: byte-identical on the restore`);
  }
  const list = await radmin.children(fid);
  assert.equal(list.status, 200);
  assert.deepEqual(list.json().items.map((x) => x.name).sort(), files.map((f) => f.name).sort(), 'what was written after the backup is not there');
  const un = await restored.request('POST', `/s/${stoken}/unlock`, { body: { code: share.code } });
  assert.equal(un.status, 200, un.text());
  const got = await restored.request('GET', `/s/${stoken}/content`, { token: un.json().access_token });
  assert.equal(got.status, 200);
  assert.ok(got.body.equals(files[1].data), 'the share link gives the exact bytes on the restore');

  await restored.stop();
  const av = cli(['audit', 'verify', '-c', restored.configPath]);
  assert.equal(av.status, 0, av.stderr);
  assert.match(av.stdout, /^ok: \d+ events\n$/);
  const fk = cli(['fsck', '-c', restored.configPath]);
  assert.equal(fk.status, 0, fk.stderr);
  assert.equal(JSON.parse(fk.stdout).versions, files.length);
});

test('a node killed mid-upload: the chunks it left are collected at its next start, by its own node id', async () => {
  const admin = server.client((await server.login()).token);
  const root = (await admin.spaces()).private.root;
  const nsOf = () => new Set(ceph.list('coffer').map((l) => l.split('\t')[0]));
  const objects = () => ceph.list('coffer').length;
  const uploadMarks = () => Number(pg.psql("SELECT count(*) FROM coffer_pending WHERE get_byte(v, 0) = 85").trim()); // 'U'
  // The same, asynchronously: the upload's body is sent by this process's event loop meanwhile.
  const run = promisify(execFile);
  const marksAsync = async () => Number((await run(pg.bin('psql'), ['-h', pg.dir, '-p', pg.env.PGPORT, '-U', 'postgres', '-d', 'coffer', '-XAtq', '-c',
    'SELECT count(*) FROM coffer_pending WHERE get_byte(v, 0) = 85'])).stdout.trim());
  const objectsAsync = async () => (await run('rados', ['--conf', ceph.conf, '-p', 'coffer', 'ls', '--all'])).stdout.split('\n').filter(Boolean).length;
  // Kill the node once its upload has put at least one chunk into the pool: the pending mark (written
  // synced before the first chunk) is seen in the database, then an object more than before. An
  // upload that finishes first (a fast machine) is simply tried again.
  let left = false;
  for (let attempt = 0; attempt < 5 && !left; attempt++) {
    const before0 = objects();
    const big = bigBytes(128 * CHUNK, 40 + attempt);
    let settled = false;
    const up = admin.upload(root, `interrupted-${attempt}.bin`, big).then((r) => { settled = true; return r; }, (e) => { settled = true; return e; });
    const deadline = Date.now() + 300000;
    while (!settled && (await marksAsync()) === 0 && Date.now() < deadline) { /* the mark */ }
    while (!settled && (await objectsAsync()) <= before0 && Date.now() < deadline) { /* the first chunk */ }
    if (settled) {
      const r = await up;
      assert.equal(r.status, 201, `an upload that finished before it could be interrupted: ${r.status ?? r}`);
      continue;
    }
    await server.kill();
    await up;
    left = true;
  }
  assert.ok(left, 'an upload was interrupted after its first chunk (5 attempts)');
  const marks = pg.psql('SELECT length(v) FROM coffer_pending WHERE get_byte(v, 0) = 85').trim().split('\n');
  assert.deepEqual(marks, ['25'], 'one simple-upload mark, stamped with its node (kind, time, node id)');
  const nodeId = fs.readFileSync(path.join(server.dataDir, 'node-id'), 'utf8');
  assert.match(nodeId, /^[0-9a-f]{32}$/);
  assert.equal(pg.psql("SELECT encode(substr(v, 10, 16), 'hex') FROM coffer_pending WHERE get_byte(v, 0) = 85").trim(), nodeId);
  const fk0 = cli(['fsck', '-c', server.configPath]);
  assert.equal(fk0.status, 0, fk0.stderr);
  assert.equal(JSON.parse(fk0.stdout).unfinished_contents, 1, 'the chunks of the interrupted upload are in the pool');
  assert.equal(JSON.parse(fk0.stdout).orphan_contents, 0);

  // Restarted (same data_dir, same node id): its own mark and chunks go before it serves.
  const from = server.stderr.length;
  await server.start();
  assert.match(server.stderr.slice(from), /collected 1 unfinished upload\(s\) left by an earlier run/);
  assert.equal(uploadMarks(), 0);
  assert.ok(nsOf().size >= 1);
  await server.stop();
  const fk = cli(['fsck', '-c', server.configPath]);
  assert.equal(fk.status, 0, fk.stderr);
  assert.equal(JSON.parse(fk.stdout).unfinished_contents, 0);
  assert.equal(JSON.parse(fk.stdout).orphan_contents, 0, 'no chunk of the interrupted upload is left in the pool');
  await server.start();
});

test('another node\'s start leaves this node\'s upload in flight alone; it commits and reads back through either node', async () => {
  const admin = server.client((await server.login()).token);
  const root = (await admin.spaces()).private.root;
  const run = promisify(execFile);
  const marksAsync = async () => Number((await run(pg.bin('psql'), ['-h', pg.dir, '-p', pg.env.PGPORT, '-U', 'postgres', '-d', 'coffer', '-XAtq', '-c',
    'SELECT count(*) FROM coffer_pending WHERE get_byte(v, 0) = 85'])).stdout.trim());
  const objectsAsync = async () => (await run('rados', ['--conf', ceph.conf, '-p', 'coffer', 'ls', '--all'])).stdout.split('\n').filter(Boolean).length;
  const nodeB = new Server({ config: { ...storeConfig('coffer', server.opts.config.store.rados), limits: { max_request_body_bytes: '160MiB' } } });
  nodeB.initialised = true;
  fs.copyFileSync(path.join(server.dir, 'master.key'), path.join(nodeB.dir, 'master.key'));
  fs.chmodSync(path.join(nodeB.dir, 'master.key'), 0o600);
  try {
    let paused = null, data = null;
    for (let attempt = 0; attempt < 5 && !paused; attempt++) {
      const before0 = (await objectsAsync());
      data = bigBytes(128 * CHUNK, 60 + attempt);
      let settled = false;
      const up = admin.upload(root, `in-flight-${attempt}.bin`, data).then((r) => { settled = true; return r; });
      const deadline = Date.now() + 300000;
      while (!settled && (await marksAsync()) === 0 && Date.now() < deadline) { /* the mark */ }
      while (!settled && (await objectsAsync()) <= before0 && Date.now() < deadline) { /* the first chunk */ }
      if (settled) { assert.equal((await up).status, 201); continue; }
      process.kill(server.proc.pid, 'SIGSTOP'); // node A holds its upload, mid-way
      if (Number(pg.psql('SELECT count(*) FROM coffer_pending WHERE get_byte(v, 0) = 85').trim()) === 1) {
        paused = up;
        break;
      }
      process.kill(server.proc.pid, 'SIGCONT'); // too late: it had committed already
      assert.equal((await up).status, 201);
    }
    assert.ok(paused, 'an upload was caught in flight (5 attempts)');
    const markBefore = pg.psql("SELECT encode(v, 'hex') FROM coffer_pending WHERE get_byte(v, 0) = 85").trim();
    assert.match(markBefore, /^55[0-9a-f]{48}$/, 'node A\'s mark, with its node id');
    try {
      await nodeB.start();
    } finally {
      process.kill(server.proc.pid, 'SIGCONT');
    }
    assert.doesNotMatch(nodeB.stderr, /collected \d+ unfinished upload/, 'node B collected nothing of node A');
    assert.equal(pg.psql("SELECT encode(v, 'hex') FROM coffer_pending WHERE get_byte(v, 0) = 85").trim(), markBefore, 'node A\'s mark is untouched');
    const r = await paused;
    assert.equal(r.status, 201, `node A's upload commits after B's start: ${r.text()}`);
    const onB = await nodeB.client((await nodeB.login()).token).download(r.json().id);
    assert.equal(onB.status, 200);
    assert.equal(sha256(onB.body), sha256(data), 'byte-identical through node B');
    assert.equal(Number(pg.psql('SELECT count(*) FROM coffer_pending WHERE get_byte(v, 0) = 85').trim()), 0);
  } finally {
    try { await nodeB.stop(); } catch { /* reported above */ }
    nodeB.cleanup();
  }
});

test('a tenant\'s key rotation and its deletion (crypto-shredding) on the cluster store', async () => {
  const admin = server.client((await server.login()).token);
  const mine = content(CHUNK + 5, 9);
  const kept = await admin.upload((await admin.spaces()).private.root, 'kept.bin', mine);
  assert.equal(kept.status, 201, kept.text());
  const before0 = new Set(ceph.list('coffer').map((l) => l.split('\t')[0]));

  assert.equal(cli(['tenant', 'create', 'acme', '-c', server.configPath]).status, 0);
  const add = cli(['user', 'add', '--tenant', 'acme', '--username', 'root', '--role', 'admin', '-c', server.configPath], { COFFER_USER_PASSWORD: ACME_PASSWORD });
  assert.equal(add.status, 0, add.stderr);
  const acmeLogin = await server.login('root', ACME_PASSWORD, 'acme');
  const acme = server.client(acmeLogin.token);
  const data = content(2 * CHUNK + 3, 10);
  const up = await acme.upload((await acme.spaces()).private.root, `${NAME_MARK}-acme.bin`, data);
  assert.equal(up.status, 201, up.text());
  const acmeNs = [...new Set(ceph.list('coffer').map((l) => l.split('\t')[0]))].filter((ns) => !before0.has(ns));
  assert.equal(acmeNs.length, 1, `one new RADOS namespace for the new tenant: ${acmeNs}`);
  assert.equal(ceph.list('coffer').filter((l) => l.startsWith(`${acmeNs[0]}\t`)).length, 3, 'its three chunks');

  // Rotation: the data keys rewrapped, every file still reads, new uploads work.
  const rot = cli(['keys', 'rotate-tenant', 'acme', '-c', server.configPath]);
  assert.equal(rot.status, 0, rot.stderr);
  const back = await acme.download(up.json().id);
  assert.equal(back.status, 200);
  assert.equal(sha256(back.body), sha256(data), 'byte-identical after the rotation');
  const up2 = await acme.upload((await acme.spaces()).private.root, 'after-rotation.bin', Buffer.from('new generation'));
  assert.equal(up2.status, 201, up2.text());
  assert.equal((await acme.download(up2.json().id)).body.toString(), 'new generation');

  // Deletion: keys destroyed, sessions end, every object of its namespace gone; the other tenant untouched.
  const del = cli(['tenant', 'delete', 'acme', '--yes', '-c', server.configPath]);
  assert.equal(del.status, 0, del.stderr);
  const gone = await acme.req('GET', '/api/v1/spaces');
  assert.equal(gone.status, 401, 'the deleted tenant\'s session ends');
  assert.deepEqual(ceph.list('coffer').filter((l) => l.startsWith(`${acmeNs[0]}\t`)), [], 'its RADOS namespace is empty');
  const k = await admin.download(kept.json().id);
  assert.equal(k.status, 200);
  assert.ok(k.body.equals(mine), 'the default tenant\'s file is untouched');
  assert.equal((await server.login('root', ACME_PASSWORD, 'acme').catch((e) => e)).message.match(/login root failed: (\d+)/)?.[1], '401');

  await server.stop();
  const av = cli(['audit', 'verify', '-c', server.configPath]);
  assert.equal(av.status, 0, av.stderr);
  const fk = cli(['fsck', '-c', server.configPath]);
  assert.equal(fk.status, 0, fk.stderr);
});
