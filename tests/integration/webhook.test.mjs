// A tenant's alert webhook: alert events are POSTed as JSON over verified HTTPS; private targets are
// refused unless the operator allows them; the URL is validated.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import { Server, certificate, ADMIN_PASSWORD } from './lib/harness.mjs';

const servers = [];
after(async () => { for (const s of servers) { await s.stop(); s.cleanup(); } });

/** An HTTPS receiver on 127.0.0.1 with the test certificate; collects POSTed bodies. */
async function receiver() {
  const c = certificate();
  const got = [];
  const srv = https.createServer({ cert: fs.readFileSync(c.cert), key: fs.readFileSync(c.key) }, (req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => { got.push({ method: req.method, url: req.url, type: req.headers['content-type'], body }); res.end('ok'); });
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return { got, port: srv.address().port, close: () => new Promise((r) => srv.close(r)) };
}

async function waitFor(pred, ms = 120000) { // a generous deadline: it only ends a wait that failed
  const end = Date.now() + ms;
  while (Date.now() < end) { if (pred()) return true; await new Promise((r) => setTimeout(r, 50)); }
  return pred();
}

async function triggerBulkAlert(server, admin) {
  const sp = await admin.spaces();
  const f = (await admin.upload(sp.private.root, 'a.txt', 'abc')).json();
  const p = await admin.req('PATCH', '/api/v1/admin/policy', { body: { bulk_download_alert: { files: 1, bytes: 1000000, window: 3600 } } });
  assert.equal(p.status, 200);
  assert.equal((await admin.download(f.id)).status, 200);
}

test('alerts reach the tenant webhook over verified HTTPS', async () => {
  const rx = await receiver();
  const server = await new Server({ config: { audit: { webhook_allow_private: 'true' } } }).start();
  servers.push(server);
  const admin = server.client((await server.login()).token);
  const ca = fs.readFileSync(certificate().cert, 'utf8');
  const url = `https://127.0.0.1:${rx.port}/hooks/coffer`;
  const r = await admin.req('PATCH', '/api/v1/admin/policy', { body: { alert_webhook: { url, ca } } });
  assert.equal(r.status, 200, r.text());
  assert.equal(r.json().alert_webhook.url, url);
  await triggerBulkAlert(server, admin);
  assert.ok(await waitFor(() => rx.got.length === 1), `webhook not called: ${JSON.stringify(rx.got)}`);
  assert.equal(rx.got[0].method, 'POST');
  assert.equal(rx.got[0].url, '/hooks/coffer');
  assert.equal(rx.got[0].type, 'application/json');
  const ev = JSON.parse(rx.got[0].body);
  assert.equal(ev.action, 'alert.bulk_download');
  assert.equal(ev.actor.name, 'admin');
  assert.equal(typeof ev.seq, 'number');
  // Only alerts are sent: the upload and download events were not. A later alert (a login from a
  // new device) marks the point: once it has arrived, the events before it had their turn.
  const marker = await server.request('POST', '/api/v1/auth/login', { body: { username: 'admin', password: ADMIN_PASSWORD }, headers: { 'user-agent': 'webhook-marker/1' } });
  assert.equal(marker.status, 200, marker.text());
  assert.ok(await waitFor(() => rx.got.length >= 2), `the marker alert did not arrive: ${JSON.stringify(rx.got)}`);
  assert.deepEqual(rx.got.map((g) => JSON.parse(g.body).action), ['alert.bulk_download', 'alert.new_device']);
  await rx.close();
});

test('without the tenant CA the certificate is not trusted, and private targets need the operator', async () => {
  const rx = await receiver();
  const server = await new Server({ config: { audit: { webhook_allow_private: 'true' } } }).start();
  servers.push(server);
  const admin = server.client((await server.login()).token);
  let r = await admin.req('PATCH', '/api/v1/admin/policy', { body: { alert_webhook: { url: `https://127.0.0.1:${rx.port}/x` } } });
  assert.equal(r.status, 200);
  await triggerBulkAlert(server, admin);
  await server.waitForLog(/webhook: TLS handshake/); // the delivery was tried, and refused
  assert.equal(rx.got.length, 0, 'a self-signed webhook must not be trusted without its CA');

  const locked = await new Server().start(); // webhook_allow_private defaults to false
  servers.push(locked);
  const a2 = locked.client((await locked.login()).token);
  const ca = fs.readFileSync(certificate().cert, 'utf8');
  r = await a2.req('PATCH', '/api/v1/admin/policy', { body: { alert_webhook: { url: `https://127.0.0.1:${rx.port}/x`, ca } } });
  assert.equal(r.status, 200);
  await triggerBulkAlert(locked, a2);
  await locked.waitForLog(/webhook: refusing a private or loopback address/); // tried, and refused
  assert.equal(rx.got.length, 0, 'a loopback target must be refused by default');
  await rx.close();
});

test('webhook settings are validated', async () => {
  const server = await new Server().start();
  servers.push(server);
  const admin = server.client((await server.login()).token);
  for (const bad of [
    { url: 'http://example.org/' },
    { url: 'https://user@example.org/' },
    { url: 'https://exa mple.org/' },
    { url: 'https://example.org:0/' },
    { url: 'https://example.org:70000/' },
    { url: 'https://example.org/', ca: 'not a pem' },
    { url: 'https://example.org/', extra: 1 },
    'https://example.org/',
  ]) {
    const r = await admin.req('PATCH', '/api/v1/admin/policy', { body: { alert_webhook: bad } });
    assert.equal(r.status, 400, JSON.stringify(bad));
    assert.equal(r.json().error, 'bad_request');
  }
  let r = await admin.req('PATCH', '/api/v1/admin/policy', { body: { alert_webhook: { url: 'https://hooks.example.org/a' } } });
  assert.equal(r.json().alert_webhook.url, 'https://hooks.example.org/a');
  r = await admin.req('PATCH', '/api/v1/admin/policy', { body: { alert_webhook: null } });
  assert.equal(r.json().alert_webhook, null);
});
