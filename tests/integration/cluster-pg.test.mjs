// The PostgreSQL engine end to end (issue 24, docs/CLUSTER.md "PostgreSQL"): one Coffer node with
// `store: engine: cluster` over a throw-away PostgreSQL (tests/integration/lib/pg.mjs), metadata and,
// without a rados section, chunk bodies in the database. A real round trip (upload, byte-identical
// download, listing, a share link), nothing of the store in data_dir, no plaintext name or content in
// a pg_dump of the database, the provenance chain and fsck verifying offline; then the database
// stopped under the running server: requests answer 503 (no crash, no hang); once it is back reads
// work again and the first write stops the server (fail-stop, exit 1); a restart finds every
// acknowledged write and not the refused ones.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Server, CHUNK, bigBytes, sha256, cli } from './lib/harness.mjs';
import { Postgres } from './lib/pg.mjs';

const NAME_MARK = `PLANTED-NAME-${crypto.randomBytes(6).toString('hex')}`;
const BODY_MARK = `PLANTED-BODY-${crypto.randomBytes(6).toString('hex')}`;

let pg, server;
after(async () => {
  if (server) { try { await server.kill(); } catch { /* gone */ } server.cleanup(); }
  if (pg) pg.cleanup();
});

/** Content with the marker at the start, across the first chunk boundary and at the end. */
function content(n, seed) {
  const b = bigBytes(n, seed);
  const m = Buffer.from(BODY_MARK);
  m.copy(b, 0);
  if (n >= CHUNK + m.length) m.copy(b, CHUNK - 7);
  m.copy(b, n - m.length);
  return b;
}

function clusterConfig() {
  return { store: { engine: 'cluster', postgres: { conninfo: pg.tcp, password_file: pg.passwordFile, timeout: '10s' } } };
}

test('a node on PostgreSQL: round trip, share link, no plaintext in the database, fail-stop on a lost database', async () => {
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

  // The database is back: reads work again at once. The first write is refused and stops the server
  // (fail-stop): its connections, the one holding the store's lock among them, were lost, and it
  // cannot know what happened meanwhile; a supervisor restarts it.
  pg.start();
  const back = await admin.children(fid);
  assert.equal(back.status, 200, `listing once the database is back: ${back.status}`);
  const up = await admin.upload(fid, 'refused.bin', Buffer.from('never stored')).catch((e) => ({ status: 0, error: e }));
  assert.ok(up.status === 503 || up.status === 0, `the refused write: ${up.status}`);
  const { code } = await server.exited;
  assert.equal(code, 1, 'fail-stop: exit code 1');
  assert.match(server.stderr, /the store refused a write/);
  assert.equal(pg.psql('SELECT count(*) FROM coffer_nodes').trim(), nodesBefore, 'no half-written node');

  // Restarted, the node finds everything acknowledged, nothing else.
  await server.start();
  const admin2 = server.client((await server.login()).token);
  for (const f of files) {
    const r = await admin2.download(f.id);
    assert.equal(r.status, 200);
    assert.ok(r.body.equals(f.data), `${f.name}: byte-identical after the restart`);
  }
  const list2 = await admin2.children(fid);
  assert.deepEqual(list2.json().items.map((x) => x.name).sort(), files.map((f) => f.name).sort(), 'the refused upload is not there');

  // A second node on the same database is refused while this one runs (one writer per database).
  const second = new Server({ config: clusterConfig() });
  second.initialised = true;
  fs.copyFileSync(path.join(server.dir, 'master.key'), path.join(second.dir, 'master.key'));
  fs.chmodSync(path.join(second.dir, 'master.key'), 0o600);
  await assert.rejects(second.start(), /in use by another coffer process/);
  second.cleanup();

  // Offline: the provenance chain and fsck, read from the database.
  await server.stop();
  const av = cli(['audit', 'verify', '-c', server.configPath]);
  assert.equal(av.status, 0, av.stderr);
  assert.match(av.stdout, /^ok: \d+ events\n$/);
  const fk = cli(['fsck', '-c', server.configPath]);
  assert.equal(fk.status, 0, fk.stderr);
  assert.equal(JSON.parse(fk.stdout).versions, 2);
});
