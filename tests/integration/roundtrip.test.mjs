// Files come back byte-identical at every size that matters to the chunking, survive a restart, and
// neither their content nor their names appear anywhere on disk (data dir, temp dir).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Server, CHUNK, bigBytes, sha256, dirContains, markedBytes } from './lib/harness.mjs';

const sizes = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17, 100 * CHUNK];
const MARK = 'PLAINTEXT-MARKER-5c1f0e';
let server;
after(async () => { if (server) { await server.stop(); server.cleanup(); } });

/** Content with the marker at the start, across every chunk boundary and at the end (lib/harness.mjs). */
const content = (n, seed) => markedBytes(n, seed, MARK);

test('round trip, restart, no plaintext on disk', async () => {
  server = new Server({ config: { limits: { max_request_body_bytes: '128MiB' } } });
  await server.start();
  const tmpBefore = new Set(fs.readdirSync(os.tmpdir()));
  let admin = server.client((await server.login()).token);
  const root = (await admin.spaces()).private.root;
  const folder = await admin.mkdir(root, `folder-${MARK}`);
  assert.equal(folder.status, 201);
  const fid = folder.json().id;
  const files = [];
  // libh2o spills request bodies over 16 MiB to an unlinked temp file unless told not to (notes §2):
  // watch the server's memory map for such a file while the uploads run (every node's, in cluster mode).
  const spills = new Set();
  const watch = setInterval(() => {
    for (const proc of server.procs || [server.proc]) {
      try {
        for (const line of fs.readFileSync(`/proc/${proc.pid}/maps`, 'utf8').split('\n'))
          if (line.includes('h2o.b.')) spills.add(line);
      } catch { /* the process may be between states */ }
    }
  }, 5);
  for (const [i, n] of sizes.entries()) {
    const data = content(n, i + 1);
    const name = `${MARK}-${n}.bin`;
    const r = await admin.upload(fid, name, data);
    assert.equal(r.status, 201, `upload ${n}: ${r.text()}`);
    const node = r.json();
    assert.equal(node.size, n);
    assert.equal(node.sha256, sha256(data));
    assert.equal(node.name, name);
    assert.equal(node.version, 1);
    files.push({ id: node.id, data, name });
  }
  clearInterval(watch);
  assert.deepEqual([...spills], [], 'a request body was spilled to a temp file');
  const check = async (client, h1) => {
    for (const f of files) {
      const r = await client.download(f.id, { h1 });
      assert.equal(r.status, 200);
      assert.equal(Number(r.headers['content-length']), f.data.length);
      assert.ok(r.body.equals(f.data), `content of ${f.data.length} bytes (${h1 ? 'h1' : 'h2'})`);
    }
  };
  await check(admin, false);
  await check(admin, true);

  // Restart: everything is still there and identical.
  await server.stop();
  await server.start();
  admin = server.client((await server.login()).token);
  await check(admin, false);
  const list = await admin.children(fid);
  assert.equal(list.status, 200);
  assert.deepEqual(list.json().items.map((x) => x.name).sort(), files.map((f) => f.name).sort());

  // Nothing readable on disk: stop (flushes memtables into SST and blob files) and search.
  await server.stop();
  for (const needle of [MARK, 'folder-', 'admin-password-1', 'Administrator']) {
    assert.equal(dirContains(server.dataDir, Buffer.from(needle)), null, `"${needle}" found on disk`);
  }
  // A 32-byte window of a file's content must not appear either (catches unencrypted chunks).
  const big = files.find((f) => f.data.length === 100 * CHUNK);
  assert.equal(dirContains(server.dataDir, big.data.subarray(5 * CHUNK, 5 * CHUNK + 32)), null);
  // Cluster mode (lib/harness.mjs): the store is a database and a RADOS pool; neither holds any of it.
  if (server.storeContains) {
    assert.equal(server.storeContains([MARK, 'folder-', 'admin-password-1', 'Administrator', big.data.subarray(5 * CHUNK, 5 * CHUNK + 32)]),
      null, 'found in the database or the pool');
  }
  // Nor may anything new in the temp directory hold plaintext.
  for (const f of fs.readdirSync(os.tmpdir()).filter((x) => !tmpBefore.has(x))) {
    const p = path.join(os.tmpdir(), f);
    if (fs.statSync(p).isFile()) assert.ok(!fs.readFileSync(p).includes(Buffer.from(MARK)), `marker in ${p}`);
  }
  server.stderr = ''; // the access log lines are in access.log, outside the data dir
  const log = fs.readFileSync(path.join(server.dir, 'access.log'), 'utf8');
  assert.ok(!log.includes(MARK), 'file names must not reach the access log');
  await server.start();
});
