// Graceful shutdown (SPEC §1): on SIGTERM the server stops accepting connections, lets in-flight
// downloads finish byte-exact (HTTP/2 and HTTP/1.1), exits 0, and the data survives a restart.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Server, bigBytes, sha256, curl } from './lib/harness.mjs';

const SIZE = 200 * 1000 * 1000;
const config = { limits: { max_request_body_bytes: '256MiB' } };
const SANITIZER = /ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: UndefinedBehaviorSanitizer/;
let server;    // the server currently running (or last run) on the data dir
let dir;       // its directory, reused across restarts
let fileId, digest;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function fileSha256(p) {
  return new Promise((resolve, reject) => {
    const h = crypto.createHash('sha256');
    fs.createReadStream(p).on('data', (d) => h.update(d)).on('end', () => resolve(h.digest('hex'))).on('error', reject);
  });
}

before(async () => {
  server = await new Server({ config }).start();
  dir = server.dir;
  const admin = server.client((await server.login()).token);
  const root = (await admin.spaces()).private.root;
  let data = bigBytes(SIZE, 11);
  digest = sha256(data);
  const r = await admin.upload(root, 'big.bin', data);
  data = null;
  assert.equal(r.status, 201, r.text());
  assert.equal(r.json().size, SIZE);
  assert.equal(r.json().sha256, digest);
  fileId = r.json().id;
});

after(async () => {
  if (server) await server.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** A running server on the data dir (a new process unless one runs), and a fresh token. */
async function restart() {
  if (!server || !server.proc || server.proc.exitCode !== null) server = await new Server({ dir, config }).start();
  const token = (await server.login()).token;
  return token;
}

async function downloadThroughShutdown(proto) {
  const token = await restart();
  const out = path.join(dir, `download-${proto.replace(/\W/g, '')}.bin`);
  fs.rmSync(out, { force: true });
  const url = `${server.url}/api/v1/files/${fileId}/content`;
  const dl = spawn('curl', ['-sSk', proto, '--limit-rate', '40M', '-H', `authorization: Bearer ${token}`, '-o', out,
    '-w', '%{http_code} %{size_download} %{http_version}', url]);
  let dlOut = '', dlErr = '';
  dl.stdout.on('data', (d) => { dlOut += d; });
  dl.stderr.on('data', (d) => { dlErr += d; });
  const dlDone = new Promise((resolve) => dl.on('close', (code) => resolve(code)));

  // The download is under way once its first bytes arrived (40 MB/s leaves seconds to go).
  for (const deadline = Date.now() + 120000; !(fs.existsSync(out) && fs.statSync(out).size > 0);) {
    assert.ok(dl.exitCode === null && Date.now() < deadline, `the download did not start: ${dlErr}`);
    await sleep(20);
  }
  assert.equal(dl.exitCode, null, `the download must still be running when SIGTERM comes: ${dlErr}`);
  const got = fs.existsSync(out) ? fs.statSync(out).size : 0;
  assert.ok(got > 0 && got < SIZE, `the download is under way (${got} bytes so far)`);

  server.closeSessions();
  server.proc.kill('SIGTERM');
  await server.waitForLog(/received SIGTERM: finishing in-flight requests/);

  // Draining: the listeners are closed (by each loop thread, just after that line: polled), so a
  // new connection is refused (curl exit 7), over both protocols, while the download is still running.
  for (const deadline = Date.now() + 120000; curl(['--http1.1', '--max-time', '5', `${server.url}/healthz`]).status !== 7;) {
    assert.ok(Date.now() < deadline, 'the listeners did not close after SIGTERM');
    await sleep(20);
  }
  for (const p of ['--http1.1', '--http2']) {
    const n = curl([p, '--max-time', '5', `${server.url}/healthz`]);
    assert.equal(n.status, 7, `a new connection while draining must be refused (${p}): exit ${n.status}, ${n.stderr} ${n.stdout}`);
  }
  assert.equal(dl.exitCode, null, 'the in-flight download is still running while the server drains');
  assert.equal(server.proc.exitCode, null, 'the server waits for the in-flight download');

  const code = await dlDone;
  assert.equal(code, 0, `curl exit code (stderr: ${dlErr})`);
  const [status, size, version] = dlOut.trim().split(' ');
  assert.equal(status, '200');
  assert.equal(size, String(SIZE));
  assert.equal(version, proto === '--http2' ? '2' : '1.1');
  assert.equal(fs.statSync(out).size, SIZE);
  assert.equal(await fileSha256(out), digest, 'the downloaded bytes are exactly the file');
  fs.rmSync(out, { force: true });

  // The download outlived the signal whole (running after the listeners closed, then every byte),
  // and the server exits once it is done (an event: nothing here times it).
  const ex = await server.exited;
  assert.deepEqual(ex, { code: 0, signal: null }, `server exit:\n${server.stderr.slice(-4000)}`);
  assert.doesNotMatch(server.stderr, SANITIZER);
}

test('SIGTERM during an HTTP/2 download: the download completes byte-exact, new connections are refused, exit 0', async () => {
  await downloadThroughShutdown('--http2');
});

test('SIGTERM during an HTTP/1.1 download: the download completes byte-exact, new connections are refused, exit 0', async () => {
  await downloadThroughShutdown('--http1.1');
});

test('after the shutdowns the file is intact', async () => {
  const token = await restart();
  const admin = server.client(token);
  const node = await admin.node(fileId);
  assert.equal(node.status, 200);
  assert.equal(node.json().size, SIZE);
  assert.equal(node.json().sha256, digest);
  const out = path.join(dir, 'download-after.bin');
  const c = curl(['--http2', '-H', `authorization: Bearer ${token}`, '-o', out, '-w', '%{http_code}', `${server.url}/api/v1/files/${fileId}/content`]);
  assert.equal(c.status, 0, c.stderr);
  assert.equal(c.stdout.toString(), '200');
  assert.equal(await fileSha256(out), digest);
  fs.rmSync(out, { force: true });
  await server.stop();
});
