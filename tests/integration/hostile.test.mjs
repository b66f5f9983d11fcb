// Hostile clients (a first case of issue 10): HTTP/2 rapid reset (CVE-2023-44487), which libh2o
// 2.2.5 predates. Attackers open streams for a download and cancel each at once (RST_STREAM), as
// fast as Node's http2 module can; meanwhile a well-behaved client downloads the same file on its
// own connection. The server must stay up, answer the well-behaved client every time with the exact
// bytes, and stop cleanly afterwards (under ASan+UBSan: no memory error, no leak on the cancel
// paths). Latencies are printed, not asserted (timing belongs to bench/, not to tests).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { Server } from './lib/harness.mjs';

let server, token, id;
const BODY = Buffer.from('rapid reset target\n');

before(async () => {
  server = await new Server().start();
  token = (await server.login()).token;
  const c = server.client(token);
  const root = (await c.spaces()).private.root;
  const up = await c.upload(root, 'target.txt', BODY);
  assert.equal(up.status, 201);
  id = up.json().id;
});

after(async () => {
  if (server) { await server.stop(); server.cleanup(); }
});

test('HTTP/2 rapid reset: the server stays up and keeps serving a well-behaved client', async () => {
  const probe = async () => {
    const t = Date.now();
    const r = await server.request('GET', `/api/v1/files/${id}/content`, { token, newSession: true });
    return { status: r.status, ok: r.body.equals(BODY), ms: Date.now() - t };
  };
  const baseline = await probe();
  assert.equal(baseline.status, 200);

  const attackers = [];
  for (let k = 0; k < 4; k++) {
    const s = http2.connect(server.url, { rejectUnauthorized: false });
    s.on('error', () => {});
    attackers.push(s);
  }
  let sent = 0;
  const stopAt = Date.now() + 5000;
  const attack = async (s) => {
    while (Date.now() < stopAt && !s.destroyed && !s.closed) {
      for (let i = 0; i < 50; i++) {
        try {
          const req = s.request({ ':method': 'GET', ':path': `/api/v1/files/${id}/content`, authorization: `Bearer ${token}` });
          req.on('error', () => {});
          req.close(http2.constants.NGHTTP2_CANCEL);
          sent++;
        } catch {
          return; // the server closed this connection: that is a defence, not a failure
        }
      }
      await new Promise((r) => setImmediate(r));
    }
  };
  const running = attackers.map(attack);
  const probes = [];
  while (Date.now() < stopAt) {
    probes.push(await probe());
    await new Promise((r) => setTimeout(r, 250));
  }
  await Promise.all(running);
  for (const s of attackers) s.destroy();
  const afterwards = await probe();
  console.log(`# rapid reset: ${sent} streams opened and cancelled in 5 s on 4 connections; ` +
    `well-behaved download: baseline ${baseline.ms} ms, during ${probes.map((p) => p.ms).join('/')} ms, after ${afterwards.ms} ms`);
  assert.ok(sent > 1000, `the attack ran (${sent} streams)`);
  assert.ok(probes.length > 0);
  for (const p of [...probes, afterwards]) {
    assert.equal(p.status, 200);
    assert.ok(p.ok, 'exact bytes');
  }
  assert.equal(server.proc.exitCode, null, 'the server is still running');
});
