// The PostgreSQL engine end to end (issue 24, docs/CLUSTER.md "PostgreSQL"): one Coffer node with
// `store: engine: cluster` over a throw-away PostgreSQL (tests/integration/lib/pg.mjs), metadata and,
// without a rados section, chunk bodies in the database. A real round trip (upload, byte-identical
// download, listing, a share link), nothing of the store in data_dir, no plaintext name or content in
// a pg_dump of the database, the provenance chain and fsck verifying offline; then the database
// stopped under the running server: requests answer 503 (no crash, no hang); once it is back reads
// and writes work again without a restart (no fail-stop: several nodes write one database); a
// restart finds every acknowledged write and not the refused ones. A second node started on the same
// database serves the first one's files and writes of its own.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Server, CHUNK, bigBytes, sha256, cli, markedBytes, until } from './lib/harness.mjs';
import { Postgres } from './lib/pg.mjs';

const NAME_MARK = `PLANTED-NAME-${crypto.randomBytes(6).toString('hex')}`;
const BODY_MARK = `PLANTED-BODY-${crypto.randomBytes(6).toString('hex')}`;

let pg, server;
after(async () => {
  if (server) { try { await server.kill(); } catch { /* gone */ } server.cleanup(); }
  if (pg) pg.cleanup();
});

/** Content with the marker at the start, across every chunk boundary and at the end (lib/harness.mjs). */
const content = (n, seed) => markedBytes(n, seed, BODY_MARK);

function clusterConfig() {
  return { store: { engine: 'cluster', postgres: { conninfo: pg.tcp, password_file: pg.passwordFile, timeout: '10s' } } };
}

test('a node on PostgreSQL: round trip, share link, no plaintext in the database, 503 while the database is away', async () => {
  pg = new Postgres().start();
  server = new Server({ config: clusterConfig() });
  await server.start();
  assert.match(server.stderr, /listening on/);
  assert.ok(!fs.existsSync(path.join(server.dataDir, 'CURRENT')), 'no RocksDB store in data_dir');

  const login = await server.login();
  const admin = server.client(login.token);
  const root = (await admin.spaces()).private.root;
  const folder = await admin.mkdir(root, `folder-${NAME_MARK}`);
  assert.equal(folder.status, 201, folder.text());
  const fid = folder.json().id;
  const files = [];
  for (const [i, n] of [100, 3 * CHUNK + 17].entries()) {
    const data = content(n, i + 1);
    const r = await admin.upload(fid, `${NAME_MARK}-${n}.bin`, data);
    assert.equal(r.status, 201, `upload ${n}: ${r.text()}`);
    assert.equal(r.json().sha256, sha256(data));
    files.push({ id: r.json().id, data, name: `${NAME_MARK}-${n}.bin` });
  }
  for (const f of files) {
    const r = await admin.download(f.id);
    assert.equal(r.status, 200);
    assert.ok(r.body.equals(f.data), `${f.name}: byte-identical`);
  }
  const list = await admin.children(fid);
  assert.equal(list.status, 200);
  assert.deepEqual(list.json().items.map((x) => x.name).sort(), files.map((f) => f.name).sort());

  // A share link: created, unlocked, downloaded by its recipient.
  const sr = await server.request('POST', '/api/v1/shares', { token: login.token, body: { node: files[0].id, permission: 'download' } });
  assert.equal(sr.status, 201, sr.text());
  const share = sr.json();
  const stoken = share.url.slice(`${server.url}/s/`.length);
  const un = await server.request('POST', `/s/${stoken}/unlock`, { body: { code: share.code } });
  assert.equal(un.status, 200, un.text());
  const got = await server.request('GET', `/s/${stoken}/content`, { token: un.json().access_token });
  assert.equal(got.status, 200);
  assert.ok(got.body.equals(files[0].data), 'the link gives the exact bytes');

  // Where the store is: one table per keyspace, rows in them; the chunk bodies too (no rados section).
  const tables = pg.psql("SELECT tablename FROM pg_tables WHERE tablename LIKE 'coffer\\_%' ORDER BY 1").trim().split('\n');
  assert.ok(tables.includes('coffer_nodes') && tables.includes('coffer_chunks') && tables.includes('coffer_journal'), tables.join(','));
  assert.ok(Number(pg.psql('SELECT count(*) FROM coffer_nodes')) >= 3, 'node records in coffer_nodes');
  assert.equal(Number(pg.psql('SELECT count(*) FROM coffer_chunks')), 1 + 4, 'one row per sealed chunk');

  // No plaintext in the database: pg_dump writes bytea as hex, so look for both spellings.
  const dump = pg.dump();
  assert.ok(dump.length > 4 * CHUNK, 'the dump holds the chunks');
  for (const mark of [NAME_MARK, BODY_MARK, 'folder-']) {
    assert.ok(!dump.includes(mark), `${mark} in the dump`);
    assert.ok(!dump.toLowerCase().includes(Buffer.from(mark).toString('hex')), `${mark} (hex) in the dump`);
  }

  // The database stops under the running server: reads and writes answer 503, promptly, and the
  // server lives (a write that never reached the database changed nothing).
  const nodesBefore = pg.psql('SELECT count(*) FROM coffer_nodes').trim();
  pg.stop();
  const down = await admin.children(fid);
  assert.equal(down.status, 503, `listing with the database down: ${down.status} ${down.text()}`);
  assert.equal(down.json().error, 'unavailable');
  const dl = await admin.download(files[1].id);
  assert.equal(dl.status, 503, `download with the database down: ${dl.status}`);
  const upDown = await admin.upload(fid, 'refused.bin', Buffer.from('never stored'));
  assert.equal(upDown.status, 503, `upload with the database down: ${upDown.status} ${upDown.text()}`);
  assert.equal(server.proc.exitCode, null, 'the server still runs');

  // The database is back: reads and writes work again, without a restart (no fail-stop: what the
  // node keeps in memory about the store is re-read under its cluster locks). Each request is
  // answered 200/201 or 503, never anything else, until the first success.
  pg.start();
  const back = await until(async () => {
    const r = await admin.children(fid);
    assert.ok(r.status === 200 || r.status === 503, `listing while the database comes back: ${r.status}`);
    return r.status === 200 ? r : null;
  }, 'a listing once the database is back');
  assert.deepEqual(back.json().items.map((x) => x.name).sort(), files.map((f) => f.name).sort());
  assert.equal(pg.psql('SELECT count(*) FROM coffer_nodes').trim(), nodesBefore, 'no half-written node');
  const after = await until(async () => {
    const r = await admin.upload(fid, `${NAME_MARK}-after.bin`, Buffer.from('written after the database came back'));
    assert.ok(r.status === 201 || r.status === 503, `upload once the database is back: ${r.status} ${r.text()}`);
    return r.status === 201 ? r : null;
  }, 'an upload once the database is back');
  files.push({ id: after.json().id, data: Buffer.from('written after the database came back'), name: `${NAME_MARK}-after.bin` });
  assert.equal(server.proc.exitCode, null, 'the server still runs (no fail-stop)');
  assert.doesNotMatch(server.stderr, /the store refused a write/);

  // Restarted, the node finds everything acknowledged, nothing else.
  await server.stop();
  await server.start();
  const admin2 = server.client((await server.login()).token);
  for (const f of files) {
    const r = await admin2.download(f.id);
    assert.equal(r.status, 200);
    assert.ok(r.body.equals(f.data), `${f.name}: byte-identical after the restart`);
  }
  const list2 = await admin2.children(fid);
  assert.deepEqual(list2.json().items.map((x) => x.name).sort(), files.map((f) => f.name).sort(), 'the refused upload is not there');

  // A second node on the same database starts beside this one (several writers per database) and
  // serves what the first wrote; a write through it is seen through the first.
  const second = new Server({ config: clusterConfig() });
  second.initialised = true;
  fs.copyFileSync(path.join(server.dir, 'master.key'), path.join(second.dir, 'master.key'));
  fs.chmodSync(path.join(second.dir, 'master.key'), 0o600);
  await second.start();
  const viaB = second.client((await second.login()).token);
  const onB = await viaB.download(files[0].id);
  assert.equal(onB.status, 200);
  assert.ok(onB.body.equals(files[0].data), 'the second node serves the first node\'s file byte for byte');
  const upB = await viaB.upload(fid, `${NAME_MARK}-on-b.bin`, Buffer.from('written through the second node'));
  assert.equal(upB.status, 201, upB.text());
  const seenA = await admin2.download(upB.json().id);
  assert.equal(seenA.status, 200);
  assert.equal(seenA.body.toString(), 'written through the second node');
  await second.stop();
  second.cleanup();

  // Offline: the provenance chain and fsck, read from the database.
  await server.stop();
  const av = cli(['audit', 'verify', '-c', server.configPath]);
  assert.equal(av.status, 0, av.stderr);
  assert.match(av.stdout, /^ok: \d+ events\n$/);
  const fk = cli(['fsck', '-c', server.configPath]);
  assert.equal(fk.status, 0, fk.stderr);
  assert.equal(JSON.parse(fk.stdout).versions, 4);
});
