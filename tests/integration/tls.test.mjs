// TLS (docs/SECURITY.md, "Transport"): the certificate and key reload on SIGHUP without dropping
// connections, and a broken pair keeps the current one; testssl.sh (Debian) finds no HIGH or CRITICAL
// weakness in the server's TLS configuration.
//
// The certificates are signed by a test CA that testssl.sh is told about (--add-ca), valid for 120
// days and naming a CRL distribution point, like a certificate from a real CA: testssl.sh rates a
// self-signed certificate CRITICAL, one that expires within 30 days HIGH and one without CRL or OCSP
// URI HIGH. Those are properties of the certificate the operator installs, not of the server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http2 from 'node:http2';
import os from 'node:os';
import path from 'node:path';
import { Server } from './lib/harness.mjs';

const tmpRoot = process.env.COFFER_TEST_TMP || path.join(os.tmpdir(), 'coffer-tests');
fs.mkdirSync(tmpRoot, { recursive: true });
const dir = fs.mkdtempSync(path.join(tmpRoot, 'tls-'));
const ssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });

/** The test CA and leaf certificates A and B (and C, whose key matches neither). */
function makePki() {
  ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '365',
    '-subj', '/CN=Coffer Test CA', '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-keyout', 'ca.key', '-out', 'ca.pem');
  fs.writeFileSync(path.join(dir, 'leaf.ext'), [
    'subjectAltName=DNS:localhost,IP:127.0.0.1',
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=serverAuth',
    'crlDistributionPoints=URI:http://127.0.0.1:9/coffer-test-ca.crl',
  ].join('\n') + '\n');
  for (const n of ['a', 'b', 'c']) {
    ssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=localhost',
      '-keyout', `${n}.key`, '-out', `${n}.csr`);
    ssl('x509', '-req', '-in', `${n}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '120',
      '-extfile', 'leaf.ext', '-out', `${n}.pem`);
  }
}

const live = { cert: path.join(dir, 'live-cert.pem'), key: path.join(dir, 'live-key.pem') };
/** Installs a pair as the server's files (each replaced atomically, as an operator's tool would). */
function install(certName, keyName, keyBytes) {
  for (const [to, from, bytes] of [[live.cert, certName], [live.key, keyName, keyBytes]]) {
    const tmp = `${to}.new`;
    fs.writeFileSync(tmp, bytes ?? fs.readFileSync(path.join(dir, from)), { mode: 0o600 });
    fs.renameSync(tmp, to);
  }
}

const fingerprint = (name) => new crypto.X509Certificate(fs.readFileSync(path.join(dir, name))).fingerprint256;
let srv, ca;

before(async () => {
  makePki();
  ca = fs.readFileSync(path.join(dir, 'ca.pem'));
  install('a.pem', 'a.key');
  srv = await new Server({ config: { tls: { certificate: live.cert, key: live.key } } }).start();
});

after(async () => {
  if (srv) { await srv.stop(); srv.cleanup(); }
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A verified h2 connection (the test CA, name localhost): {session, fingerprint}. */
function connect() {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://127.0.0.1:${srv.port}`, { ca, servername: 'localhost' });
    session.once('error', reject);
    session.once('connect', () => resolve({ session, fingerprint: session.socket.getPeerCertificate().fingerprint256 }));
  });
}

function get(session, p) {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':path': p });
    let status;
    const chunks = [];
    req.on('response', (h) => { status = h[':status']; });
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve({ status, body: Buffer.concat(chunks).toString() }));
    req.on('error', reject);
  });
}

/** SIGHUP, then waits for the n-th line matching re in the server's log. */
async function hup(re, n) {
  srv.proc.kill('SIGHUP');
  const count = () => (srv.stderr.match(new RegExp(re.source, 'g')) || []).length;
  for (const deadline = Date.now() + 120000; count() < n && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 50));
  assert.equal(count(), n, `after SIGHUP the log says ${re}:\n${srv.stderr.slice(-2000)}`);
}

test('SIGHUP reloads the certificate and key; live connections keep theirs; a broken pair keeps the current one', async () => {
  const kept = await connect();
  assert.equal(kept.fingerprint, fingerprint('a.pem'));
  assert.equal((await get(kept.session, '/healthz')).status, 200);

  install('b.pem', 'b.key');
  await hup(/reload: TLS certificate reloaded/, 1);
  const fresh = await connect();
  assert.equal(fresh.fingerprint, fingerprint('b.pem'), 'a new connection presents certificate B');
  assert.equal((await get(fresh.session, '/healthz')).status, 200);
  fresh.session.close();
  const still = await get(kept.session, '/healthz');
  assert.equal(still.status, 200, 'the connection opened before the reload still answers');
  assert.equal(kept.session.socket.getPeerCertificate().fingerprint256, fingerprint('a.pem'));

  // B's certificate with C's key: refused, B stays, and the log says why.
  install('b.pem', 'c.key');
  await hup(/reload: keeping the current TLS certificate/, 1);
  assert.match(srv.stderr, /reload: keeping the current TLS certificate: the TLS key does not match the certificate \S*live-key\.pem/);
  let after = await connect();
  assert.equal(after.fingerprint, fingerprint('b.pem'), 'a mismatched key keeps certificate B');
  after.session.close();

  // A key file that is not a key at all.
  install('b.pem', null, Buffer.from('-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n'));
  await hup(/reload: keeping the current TLS certificate/, 2);
  assert.match(srv.stderr, /reload: keeping the current TLS certificate: cannot load the TLS key \S*live-key\.pem/);
  after = await connect();
  assert.equal(after.fingerprint, fingerprint('b.pem'), 'a broken key keeps certificate B');
  assert.equal((await get(after.session, '/healthz')).status, 200);
  after.session.close();
  assert.equal((await get(kept.session, '/healthz')).status, 200, 'the first connection survived three reloads');
  kept.session.close();

  install('b.pem', 'b.key'); // for the audit below
});

test('testssl.sh: no HIGH or CRITICAL finding', { timeout: 900000 }, async () => {
  const bin = ['/usr/bin/testssl', '/usr/bin/testssl.sh'].find((p) => fs.existsSync(p));
  assert.ok(bin, 'testssl.sh is not installed (Debian package testssl.sh; scripts/deps.sh test installs it)');
  const json = path.join(dir, 'testssl.json');
  const started = Date.now();
  // Protocols, cipher categories, forward secrecy, server defaults (certificate included), HTTP
  // headers and every vulnerability check; the certificate is trusted through the test CA only.
  const args = ['--quiet', '--color', '0', '--warnings', 'off', '--add-ca', path.join(dir, 'ca.pem'),
    '--protocols', '--std', '--fs', '--server-defaults', '--headers', '--vulnerable',
    '--jsonfile', json, `https://127.0.0.1:${srv.port}`];
  const out = await new Promise((resolve) => {
    const p = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    p.stdout.on('data', (d) => { text += d; });
    p.stderr.on('data', (d) => { text += d; });
    const timer = setTimeout(() => p.kill('SIGKILL'), 600000);
    p.on('exit', (code) => { clearTimeout(timer); resolve({ code, text }); });
  });
  assert.ok(fs.existsSync(json), `testssl.sh wrote no JSON (exit ${out.code}):\n${out.text.slice(-3000)}`);
  const findings = JSON.parse(fs.readFileSync(json, 'utf8'));
  const counts = {};
  for (const f of findings) counts[f.severity] = (counts[f.severity] || 0) + 1;
  console.log(`testssl.sh ${((Date.now() - started) / 1000).toFixed(0)} s, findings per severity: ${JSON.stringify(counts)}`);
  for (const f of findings.filter((x) => ['MEDIUM', 'LOW', 'WARN'].includes(x.severity))) console.log(`  ${f.severity} ${f.id}: ${f.finding}`);
  const bad = findings.filter((x) => ['HIGH', 'CRITICAL'].includes(x.severity)).map((x) => `${x.severity} ${x.id}: ${x.finding}`);
  assert.deepEqual(bad, [], `testssl.sh output:\n${out.text.slice(-6000)}`);
  // It really ran: the checks above are in the JSON, and the test CA made the chain trusted.
  const ids = new Set(findings.map((x) => x.id));
  for (const id of ['SSLv3', 'TLS1', 'TLS1_1', 'TLS1_2', 'TLS1_3', 'PFS', 'HSTS_time', 'heartbleed', 'ROBOT', 'cert_chain_of_trust']) {
    assert.ok(ids.has(id), `testssl.sh reported ${id}`);
  }
  assert.equal(findings.find((x) => x.id === 'cert_chain_of_trust').severity, 'OK');
  assert.equal(findings.find((x) => x.id === 'TLS1').severity, 'INFO', 'TLS 1.0 not offered');
  assert.match(findings.find((x) => x.id === 'TLS1_1').finding, /not offered/);
});
