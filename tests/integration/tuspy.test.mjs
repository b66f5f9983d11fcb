// A second, independent tus client (issue 22): Debian's python3-tuspy (tusclient 1.0, over Python
// requests, HTTP/1.1) against /api/v1/uploads of the real server, driven by lib/tuspy_upload.py.
// tus.test.mjs covers the protocol by hand and with tus-js-client; this proves a client written by
// others, with its own metadata encoding, chunking, HEAD-based resumption and Upload-Checksum,
// interoperates: multi-chunk uploads byte-exact, a resumed upload, an EICAR upload refused.
// TLS is verified: REQUESTS_CA_BUNDLE is the test server's certificate (it carries IP:127.0.0.1).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Server, EICAR, bigBytes, bytes, sha256, certificate } from './lib/harness.mjs';

const MiB = 1 << 20;
const SCRIPT = path.join(path.dirname(new URL(import.meta.url).pathname), 'lib', 'tuspy_upload.py');
// Debian's interpreter, where python3-tuspy is installed (a python3 earlier in PATH, e.g. pyenv's, lacks it).
const PYTHON = '/usr/bin/python3';

let srv, admin, root, work;

before(async () => {
  work = fs.mkdtempSync(path.join(process.env.COFFER_TEST_TMP || '/tmp', 'coffer-tuspy-'));
  srv = await new Server().start();
  admin = srv.client((await srv.login()).token);
  root = (await admin.spaces()).private.root;
});

after(async () => {
  if (srv) { await srv.stop(); srv.cleanup(); }
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

/** Runs lib/tuspy_upload.py with args; resolves with its JSON result (rejects on a crash). */
function tuspy(args) {
  return new Promise((resolve, reject) => {
    const p = spawn(PYTHON, [SCRIPT, JSON.stringify({ endpoint: `${srv.url}/api/v1/uploads`, token: admin.token, ...args })], {
      env: { ...process.env, REQUESTS_CA_BUNDLE: certificate().cert },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('error', reject);
    p.on('close', (code) => {
      if (code !== 0) return reject(new Error(`tuspy_upload.py exited ${code}:\n${err}\n${out}`));
      resolve(JSON.parse(out.trim().split('\n').pop()));
    });
  });
}

function writeFile(name, data) {
  const f = path.join(work, name);
  fs.writeFileSync(f, data);
  return f;
}

async function childNamed(parent, name) {
  const r = await admin.children(parent);
  assert.equal(r.status, 200);
  return r.json().items.filter((c) => c.name === name);
}

async function assertStored(id, name, data) {
  const node = await admin.node(id);
  assert.equal(node.status, 200, node.text());
  assert.equal(node.json().name, name);
  assert.equal(node.json().size, data.length);
  const g = await admin.download(id);
  assert.equal(g.status, 200);
  assert.equal(g.body.length, data.length);
  assert.equal(sha256(g.body), sha256(data), `${name}: the downloaded bytes are the uploaded ones`);
  assert.deepEqual((await childNamed(root, name)).map((c) => c.id), [id], `${name}: exactly one node by that name`);
}

test('tuspy: a 5 MiB + 123 B file in 1 MiB chunks (6 PATCHes, sha1 Upload-Checksum) arrives byte-exact', async () => {
  const data = bigBytes(5 * MiB + 123, 221);
  const r = await tuspy({ file: writeFile('five.bin', data), chunk_size: MiB, checksum: true, metadata: { filename: 'five.bin', parent: root } });
  assert.equal(r.error, undefined, JSON.stringify(r));
  assert.match(r.url, new RegExp(`^${srv.url}/api/v1/uploads/[0-9a-f]{32}$`));
  assert.equal(r.start_offset, 0);
  assert.equal(r.offset, data.length);
  assert.equal(r.patches, 6);
  assert.match(r.node_id, /^[0-9a-f]{32}$/);
  await assertStored(r.node_id, 'five.bin', data);
  // Completed: HEAD still answers, with the node, so a client that lost the last answer learns it.
  const h = await admin.req('HEAD', new URL(r.url).pathname, { headers: { 'tus-resumable': '1.0.0' } });
  assert.equal(h.status, 200);
  assert.equal(h.headers['upload-offset'], String(data.length));
  assert.equal(h.headers['coffer-node-id'], r.node_id);
});

test('tuspy: an upload stopped after 2 of 4 chunks is resumed by a new client process from the URL (HEAD offset)', async () => {
  const data = bigBytes(4 * MiB - 7, 222);
  const file = writeFile('resumed.bin', data);
  const metadata = { filename: 'resumed.bin', parent: root };
  const first = await tuspy({ file, chunk_size: MiB, metadata, stop_at: 2 * MiB });
  assert.equal(first.error, undefined, JSON.stringify(first));
  assert.equal(first.offset, 2 * MiB);
  assert.equal(first.patches, 2);
  assert.equal(first.node_id, null);
  // Between the two processes: the server holds exactly 2 MiB and no file is visible yet.
  const loc = new URL(first.url).pathname;
  const h = await admin.req('HEAD', loc, { headers: { 'tus-resumable': '1.0.0' } });
  assert.equal(h.status, 200);
  assert.equal(h.headers['upload-offset'], String(2 * MiB));
  assert.equal(h.headers['upload-length'], String(data.length));
  assert.deepEqual(await childNamed(root, 'resumed.bin'), []);
  const second = await tuspy({ file, chunk_size: MiB, metadata, url: first.url, checksum: true });
  assert.equal(second.error, undefined, JSON.stringify(second));
  assert.equal(second.url, first.url);
  assert.equal(second.start_offset, 2 * MiB, 'tusclient resumed at the offset the server reported');
  assert.equal(second.offset, data.length);
  assert.equal(second.patches, 2);
  await assertStored(second.node_id, 'resumed.bin', data);
});

test('tuspy: resumed through tusclient\'s own URL store (FileStorage, by fingerprint), no URL passed', async () => {
  const data = bigBytes(3 * MiB + 1, 225);
  const file = writeFile('stored.bin', data);
  const store = path.join(work, 'tus-urls.json');
  const metadata = { filename: 'stored.bin', parent: root };
  const first = await tuspy({ file, chunk_size: MiB, metadata, store, stop_at: MiB });
  assert.equal(first.error, undefined, JSON.stringify(first));
  assert.equal(first.offset, MiB);
  assert.ok(fs.readFileSync(store, 'utf8').includes(new URL(first.url).pathname), 'tusclient stored the URL');
  const second = await tuspy({ file, chunk_size: MiB, metadata, store });
  assert.equal(second.error, undefined, JSON.stringify(second));
  assert.equal(second.url, first.url, 'the same upload, found by the file\'s fingerprint');
  assert.equal(second.start_offset, MiB);
  assert.equal(second.patches, 3);
  await assertStored(second.node_id, 'stored.bin', data);
});

test('tuspy: an EICAR upload is refused at completion (422 infected), nothing stored, recorded', async () => {
  const data = Buffer.concat([bytes(MiB + 5, 223), EICAR]);
  const r = await tuspy({ file: writeFile('evil.bin', data), chunk_size: 512 * 1024, metadata: { filename: 'evil.bin', parent: root } });
  assert.ok(r.error, `the last PATCH must be refused: ${JSON.stringify(r)}`);
  assert.equal(r.error.status, 422, r.error.body);
  const body = JSON.parse(r.error.body);
  assert.equal(body.error, 'infected');
  assert.match(body.signature, /EICAR/i);
  assert.equal(r.offset, 2 * 512 * 1024, 'the chunks before the last were stored, the last one refused');
  assert.deepEqual(await childNamed(root, 'evil.bin'), []);
  const h = await admin.req('HEAD', new URL(r.url).pathname, { headers: { 'tus-resumable': '1.0.0' } });
  assert.equal(h.status, 404, 'the refused upload is discarded');
  const ev = (await admin.req('GET', '/api/v1/audit?action=upload.rejected')).json().events.find((e) => e.detail.name === 'evil.bin');
  assert.ok(ev, 'an upload.rejected event');
  assert.equal(ev.result, 'infected');
  assert.equal(ev.detail.via, 'tus');
  assert.equal(ev.detail.sha256, sha256(data));
});

test('tuspy: metadata Coffer refuses (no parent) gets 400 at creation, no upload created', async () => {
  const r = await tuspy({ file: writeFile('orphan.bin', bytes(1000, 224)), chunk_size: MiB, metadata: { filename: 'orphan.bin' } });
  assert.ok(r.error, JSON.stringify(r));
  assert.equal(r.error.status, 400);
  assert.match(r.error.body, /filename and parent/);
  assert.equal(r.url, null);
});
