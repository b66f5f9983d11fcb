// harness.mjs: starts a real `coffer` server on 127.0.0.1 with a fresh data directory and drives it
// with real clients (Node's http2 and https modules, curl, nghttp).
//
// Every server started here is stopped by its test file; stop() asserts a clean exit (code 0) and that
// the sanitizers (when the binary is an ASan/UBSan build) reported nothing.
//
// COFFER_TEST_CLUSTER (the env file of an infrastructure-only test cluster) turns every Server into
// two nodes over one PostgreSQL database and RADOS pool, requests alternating: "cluster mode" below.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '../../..');
export const coffer = process.env.COFFER_BIN || path.join(repoRoot, 'build/src/coffer');
export const dbtool = process.env.COFFER_DBTOOL || path.join(path.dirname(coffer), '../tests/tools/cf-dbtool');
export const ADMIN_PASSWORD = 'admin-password-1';
// Deadlines for waits on events (a server's start, a log line): generous, because the suites run
// beside each other and beside other load on two cores (scripts/test.sh --busy). They only turn a
// hang into a failure that names what never came; nothing asserts how long anything took.
export const START_DEADLINE_MS = 180000;
export const WAIT_DEADLINE_MS = 120000;

/**
 * p, or a rejection saying what() never settled within ms: a generous deadline that turns a hang
 * into a failure with a message (its timer also keeps the event loop alive while p is pending, and
 * is cleared as soon as p settles).
 */
export function withDeadline(p, ms, what) {
  let timer;
  const late = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what()}: not settled after ${ms} ms`)), ms); });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

const tmpRoot = process.env.COFFER_TEST_TMP || path.join(os.tmpdir(), 'coffer-tests');
fs.mkdirSync(tmpRoot, { recursive: true });

let certCache = null;
/** A self-signed ECDSA certificate for localhost, made once per test process. */
export function certificate() {
  if (certCache) return certCache;
  const dir = fs.mkdtempSync(path.join(tmpRoot, 'cert-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
  certCache = { dir, cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') };
  return certCache;
}

/** EICAR, assembled at run time so that no scanner flags this source file. Exactly 68 bytes. */
export const EICAR = Buffer.from(['X5O!P%@AP[4\\PZX54(P^)7CC)7}$', 'EICAR-STANDARD-ANTIVIRUS-TEST-FILE!', '$H+H*'].join(''));

/**
 * Writes a ClamAV signature database into dir (created): an MD5 hash signature and a body (ndb)
 * signature for EICAR, built here at test time (no network, no official database). Returns dir.
 */
export function writeSignatureDb(dir) {
  fs.mkdirSync(dir, { recursive: true });
  const md5 = crypto.createHash('md5').update(EICAR).digest('hex');
  fs.writeFileSync(path.join(dir, 'test.hdb'), `${md5}:${EICAR.length}:Test.EICAR.MD5\n`);
  fs.writeFileSync(path.join(dir, 'test.ndb'), `Test.EICAR.Body:0:*:${EICAR.toString('hex')}\n`);
  return dir;
}

let sigDbCache = null;
/** The shared test signature database (one per test process). */
export function signatureDb() {
  if (!sigDbCache) sigDbCache = writeSignatureDb(fs.mkdtempSync(path.join(tmpRoot, 'sigs-')));
  return sigDbCache;
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
    s.on('error', reject);
  });
}

/** Serialises a plain object as the YAML subset the config needs (maps, lists, scalars). */
export function toYaml(obj, indent = '') {
  let out = '';
  for (const [k, v] of Object.entries(obj)) {
    if (v === undefined) continue;
    if (Array.isArray(v)) out += `${indent}${k}: [${v.map((x) => JSON.stringify(String(x))).join(', ')}]\n`;
    else if (v !== null && typeof v === 'object') out += `${indent}${k}:\n${toYaml(v, indent + '  ')}`;
    else out += `${indent}${k}: ${JSON.stringify(String(v))}\n`;
  }
  return out;
}

function sanitizerReport(text) {
  return /ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: UndefinedBehaviorSanitizer/.test(text);
}

/** Runs the coffer CLI synchronously; returns {status, stdout, stderr}. */
export function cli(args, env = {}) {
  const r = spawnSync(coffer, args, { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 120000 });
  if (sanitizerReport(r.stderr || '')) throw new Error(`sanitizer report from coffer ${args.join(' ')}:\n${r.stderr}`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export class Server {
  /**
   * opts.config: extra configuration merged over the defaults (deep for maps).
   * opts.dir: reuse a directory (restart over existing data).
   * opts.env: extra environment for the server process.
   */
  constructor(opts = {}) {
    // Cluster mode (COFFER_TEST_CLUSTER names the env of scripts/cluster.sh with CLUSTER_NODES=0):
    // the same interface over two nodes of one store (ClusterServer below).
    if (process.env.COFFER_TEST_CLUSTER && new.target === Server && !opts.clusterNode) return new ClusterServer(opts);
    this.opts = opts;
    this.dir = opts.dir || fs.mkdtempSync(path.join(tmpRoot, 'srv-'));
    this.stderr = '';
    this.sessions = new Set(); // every h2 connection this harness opened to the server (kill() ends them)
  }

  get dataDir() { return path.join(this.dir, 'data'); }
  get configPath() { return path.join(this.dir, 'coffer.yaml'); }
  get url() { return `https://127.0.0.1:${this.port}`; }
  /** The configured public_url (share links start with it); in cluster mode the same on every node. */
  get publicUrl() { return this.url; }

  writeConfig(port) {
    const c = certificate();
    const base = {
      listen: [`127.0.0.1:${port}`],
      public_url: `https://127.0.0.1:${port}`,
      tls: { certificate: c.cert, key: c.key },
      data_dir: 'data',
      master_key_file: 'master.key',
      threads: 2,
      limits: { max_request_body_bytes: '16MiB' },
      scan: { database_dir: signatureDb(), processes: 2 },
      // Page rendering (issue 20) is on in the product; suites that do not test it keep their
      // process counts and start-up time: pages.test.mjs and web-pages.test.mjs switch it on.
      render: { enabled: false },
      auth: { argon2_memory: '8MiB', argon2_iterations: 1 },
      log: { access: 'access.log', level: 'info' },
      // Started as root, `coffer serve` refuses to run without `user:` (privilege.test.mjs drops to
      // a service account; the other suites keep root on purpose).
      user: process.getuid() === 0 ? 'root' : undefined,
    };
    const merged = { ...base };
    for (const [k, v] of Object.entries(this.opts.config || {})) {
      merged[k] = v && typeof v === 'object' && !Array.isArray(v) && typeof base[k] === 'object' ? { ...base[k], ...v } : v;
    }
    fs.writeFileSync(this.configPath, toYaml(merged));
  }

  /**
   * Starts the server. A port picked here (freePort) can be taken by another test file's server
   * before this one binds it: then the start is tried again on a fresh port, a few times. A port the
   * test chose, or kept across a restart, is never changed. (A cluster node's port is the cluster's
   * to pick again: ClusterServer.start.)
   */
  async start() {
    if (!this.port) {
      this.port = await freePort();
      this.portPicked = true;
    }
    for (let tries = 1; ; tries++) {
      try {
        await this.start1();
        this.portPicked = false;
        return this;
      } catch (e) {
        if (!e.addressInUse || !this.portPicked || this.opts.clusterNode || tries >= 5) throw e;
        this.port = await freePort();
      }
    }
  }

  async start1() {
    this.writeConfig(this.port);
    // A store in PostgreSQL (store: engine: cluster) leaves no CURRENT in data_dir: this object
    // remembers that it initialised it.
    if (!this.initialised && !fs.existsSync(path.join(this.dataDir, 'CURRENT'))) {
      const r = cli(['init', '-c', this.configPath], { COFFER_ADMIN_PASSWORD: ADMIN_PASSWORD });
      if (r.status !== 0) throw new Error(`coffer init failed (${r.status}): ${r.stderr}`);
    }
    this.initialised = true;
    const from = this.stderr.length;
    this.proc = spawn(coffer, ['serve', '-c', this.configPath], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...(this.opts.env || {}) } });
    this.proc.stderr.on('data', (d) => { this.stderr += d.toString(); });
    this.exited = new Promise((resolve) => this.proc.on('exit', (code, signal) => resolve({ code, signal })));
    // Like exited, once its stderr has also been read to the end (every line it logged is in this.stderr).
    this.closed = new Promise((resolve) => this.proc.on('close', (code, signal) => resolve({ code, signal })));
    // A generous deadline: an ASan build on two busy cores can take many seconds to come up.
    const deadline = Date.now() + START_DEADLINE_MS;
    // Up means *this* process has bound the port (its own log says so) and answers: test files run
    // in parallel, and a port picked by freePort, or kept across a restart, can meanwhile be taken
    // by another file's server, whose /healthz would answer just the same.
    const listening = `listening on https://127.0.0.1:${this.port}`;
    for (;;) {
      if (this.proc.exitCode !== null) {
        const e = new Error(`coffer serve exited early:\n${this.stderr}`);
        e.addressInUse = /: Address already in use/.test(this.stderr.slice(from));
        throw e;
      }
      if (!this.stderr.slice(from).includes(listening)) {
        if (Date.now() > deadline) throw new Error(`coffer serve did not come up:\n${this.stderr}`);
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      try {
        const r = await this.request('GET', '/healthz', { h1: true });
        // Up: 200, or a development server without signatures that says so (503 "scan": "disabled").
        if (r.status === 200 || (r.status === 503 && /"scan":"disabled"/.test(r.text()))) break;
      } catch { /* not up yet */ }
      if (Date.now() > deadline) throw new Error(`coffer serve did not come up:\n${this.stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return this;
  }

  /** Sends a signal and waits for the exit; asserts code 0 and no sanitizer report. */
  async stop(signal = 'SIGTERM') {
    this.closeSessions();
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill(signal);
    const { code } = await this.exited;
    if (code !== 0) throw new Error(`coffer serve exited with ${code} on ${signal}:\n${this.stderr.slice(-4000)}`);
    if (sanitizerReport(this.stderr)) throw new Error(`sanitizer report:\n${this.stderr}`);
  }

  /**
   * SIGKILL: no clean exit expected. Every request still in flight on this harness's connections
   * then rejects: the connections are destroyed once the process is gone. (A killed peer does not
   * always show on the client's socket: an h2 connection whose uploads wait for flow-control
   * credit neither reads nor writes, so nothing would ever settle them, and with no other work the
   * event loop would end with their promises pending.)
   */
  async kill() {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGKILL');
      await this.exited;
    }
    const gone = new Error('the server was killed');
    for (const s of this.sessions) s.destroy(gone);
    this.sessions.clear();
    this.h2 = null;
  }

  closeSessions() {
    for (const s of this.sessions) s.close();
    this.sessions.clear();
    this.h2 = null;
  }

  /** An h2 connection to this server, remembered so that kill() and stop() can end it. */
  connect(opts = {}) {
    const session = http2.connect(this.url, { rejectUnauthorized: false, ...opts });
    this.sessions.add(session);
    session.once('close', () => this.sessions.delete(session));
    return session;
  }

  /**
   * Resolves with the first match of re in this server's stderr after offset `from` (default: all
   * of it), as soon as the line arrives. Rejects when the process ends without printing it, or
   * after `timeout` ms: a generous deadline so that a missing line fails with its name instead of
   * hanging, not a timing assertion.
   */
  waitForLog(re, { from = 0, timeout = WAIT_DEADLINE_MS } = {}) {
    const find = () => re.exec(this.stderr.slice(from));
    const m = find();
    if (m) return Promise.resolve(m);
    return new Promise((resolve, reject) => {
      const done = (fn, v) => {
        clearTimeout(timer);
        this.proc.stderr.off('data', onData);
        this.proc.off('close', onClose);
        fn(v);
      };
      const onData = () => { const x = find(); if (x) done(resolve, x); };
      const onClose = () => { const x = find(); done(x ? resolve : reject, x || new Error(`coffer serve ended without logging ${re}:\n${this.stderr.slice(-3000)}`)); };
      const timer = setTimeout(() => done(reject, new Error(`no ${re} in the server's log after ${timeout} ms:\n${this.stderr.slice(-3000)}`)), timeout);
      // The harness's own 'data' listener was added first: this.stderr already holds the chunk.
      this.proc.stderr.on('data', onData);
      if (this.proc.exitCode !== null || this.proc.signalCode !== null) onClose();
      else this.proc.on('close', onClose);
    });
  }

  cleanup() { fs.rmSync(this.dir, { recursive: true, force: true }); }

  h2session() {
    if (!this.h2 || this.h2.closed || this.h2.destroyed) {
      const session = this.connect();
      session.on('error', () => {});
      // The server closes idle connections (GOAWAY after http2 idle_timeout): never reuse one
      // that is going away.
      session.on('goaway', () => { if (this.h2 === session) this.h2 = null; });
      this.h2 = session;
    }
    return this.h2;
  }

  /**
   * One request. opts: headers, body (Buffer|string|object → JSON), h1 (use HTTP/1.1), token (bearer),
   * newSession (a fresh h2 connection, closed after), onSent (called once the whole request has been
   * written to the connection: a request sent after that on the same h2 connection reaches the
   * server after it).
   * Resolves {status, headers, body: Buffer, json()}; rejects on a transport error (reset, abort).
   */
  request(method, urlPath, opts = {}) {
    // REFUSED_STREAM means the server did not process the stream at all (RFC 9113 §8.7), and a
    // stream refused by the client itself after a GOAWAY (ERR_HTTP2_GOAWAY_SESSION) was never sent:
    // a request that raced an idle-timeout GOAWAY is sent again, once, on a fresh connection. Only
    // the connection that refused it is closed: when many requests are refused at once (a test that
    // starts 50 after a pause longer than the idle timeout), each retry must not close the fresh
    // connection the retry before it has just opened, or every retry fails in turn.
    return this.request1(method, urlPath, opts).catch((e) => {
      const refused = e && (e.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM || /REFUSED_STREAM/.test(String(e.message)) ||
        e.code === 'ERR_HTTP2_GOAWAY_SESSION');
      if (opts.h1 || opts.noRetry || !refused) throw e;
      if (this.h2 && this.h2 === e.session) { this.h2.close(); this.h2 = null; }
      return this.request1(method, urlPath, { ...opts, noRetry: true });
    });
  }

  request1(method, urlPath, opts = {}) {
    let body = opts.body;
    const headers = { ...(opts.headers || {}) };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    if (body !== undefined && !Buffer.isBuffer(body) && typeof body !== 'string') {
      body = JSON.stringify(body);
      if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
    }
    const wrap = (status, hdrs, chunks) => {
      const buf = Buffer.concat(chunks);
      return { status, headers: hdrs, body: buf, json: () => JSON.parse(buf.toString('utf8')), text: () => buf.toString('utf8') };
    };
    if (opts.h1) {
      return new Promise((resolve, reject) => {
        let answered = false;
        const req = https.request(this.url + urlPath, { method, headers, rejectUnauthorized: false, agent: false }, (res) => {
          answered = true;
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => resolve(wrap(res.statusCode, res.headers, chunks)));
          res.on('error', reject);
          res.on('aborted', () => reject(new Error('aborted')));
          // The connection ended before the whole response arrived (the server was killed).
          res.on('close', () => { if (!res.complete) reject(new Error('aborted')); });
        });
        req.on('error', reject);
        req.on('close', () => { if (!answered) reject(new Error('the connection closed before a response')); });
        if (opts.onSent) req.on('finish', opts.onSent);
        if (body !== undefined) req.end(body); else req.end();
      });
    }
    return new Promise((resolve, reject0) => {
      const session = opts.newSession ? this.connect() : this.h2session();
      // Every failure names (unlisted) the connection it happened on: see request().
      const reject = (e) => reject0(e instanceof Error ? Object.defineProperty(e, 'session', { value: session, configurable: true }) : e);
      if (opts.newSession) session.on('error', reject);
      let req;
      try {
        req = session.request({ ':method': method, ':path': urlPath, ...headers }, { endStream: body === undefined });
      } catch (e) {
        reject(e);
        return;
      }
      let status, hdrs;
      const chunks = [];
      req.on('response', (h) => { status = h[':status']; hdrs = h; });
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => { if (opts.newSession) session.close(); resolve(wrap(status, hdrs, chunks)); });
      req.on('error', (e) => { if (opts.newSession) session.close(); reject(e); });
      req.on('close', () => {
        if (req.rstCode && req.rstCode !== http2.constants.NGHTTP2_NO_ERROR) reject(Object.assign(new Error(`stream reset ${req.rstCode}`), { rstCode: req.rstCode, partial: Buffer.concat(chunks), status }));
        // Closed with no error code and no end (its connection was destroyed): settle all the same
        // (after 'end' this does nothing: the promise has resolved).
        else reject(Object.assign(new Error('stream closed before its response ended'), { partial: Buffer.concat(chunks), status }));
      });
      if (opts.onSent) req.on('finish', opts.onSent);
      if (body !== undefined) req.end(body);
    });
  }

  async login(username = 'admin', password = ADMIN_PASSWORD, tenant) {
    const r = await this.request('POST', '/api/v1/auth/login', { body: { username, password, ...(tenant ? { tenant } : {}) } });
    if (r.status !== 200) throw new Error(`login ${username} failed: ${r.status} ${r.text()}`);
    return r.json();
  }

  /** A small API client bound to one bearer token. */
  client(token) {
    const s = this;
    return {
      token,
      req: (method, p, opts = {}) => s.request(method, p, { ...opts, token }),
      async spaces() { return (await s.request('GET', '/api/v1/spaces', { token })).json(); },
      async mkdir(parent, name) { return s.request('POST', '/api/v1/folders', { token, body: { parent, name } }); },
      async upload(parent, name, data, extra = '') {
        return s.request('POST', `/api/v1/files?parent=${parent}&name=${encodeURIComponent(name)}${extra}`, { token, body: Buffer.from(data) });
      },
      async children(id, q = '') { return s.request('GET', `/api/v1/nodes/${id}/children${q}`, { token }); },
      async download(id, opts = {}) { return s.request('GET', `/api/v1/files/${id}/content`, { ...opts, token }); },
      async node(id) { return s.request('GET', `/api/v1/nodes/${id}`, { token }); },
    };
  }
}

// ---- cluster mode (issue 24) ---------------------------------------------------------------------
//
// COFFER_TEST_CLUSTER names the env file that `CLUSTER_NODES=0 scripts/cluster.sh up` writes: a Ceph
// monitor with 3 OSDs and a PostgreSQL instance, no Coffer node (scripts/test.sh brings it up for the
// cluster-<name> suites of tests/meson.build). Then every `new Server(opts)` is a ClusterServer: its
// own fresh database in that PostgreSQL (owned by the env's role), two node configurations over it
// with the same store section (engine cluster, postgres conninfo + password file, the RADOS pool of the
// env; chunk objects live in per-tenant namespaces, and tenant ids are random, so servers never see
// each other's objects), `coffer init` once, both nodes started. Layout of its directory:
//   coffer.yaml (node 1: configPath, for the CLI), node2/coffer.yaml, data/node1 and data/node2 (the
//   data_dirs: dataDir is data/, so a search of it covers both), master.key (shared), node1.anchor
//   and node2.anchor (each node's journal anchor), access.log (both nodes append to it),
//   cluster.json ({db, home}: a directory copied elsewhere, as model.test.mjs copies its start state,
//   gets a copy of the database too: CREATE DATABASE … TEMPLATE).
// Every request() (so client(), login()) goes to the next node in turn; so do `url` and `port` (each
// read gives the next node's: curl, fetch, tus-js-client and hand-made connections alternate too);
// `publicUrl` is node 1's, the public_url of both (as behind a load balancer: share links start with
// it). stop(), kill() and start() act on both (start: the same data again); both nodes' stderr go to
// this.stderr (whole lines) and waitForLog; `proc` is node 1's process, `procs` both.
// COFFER_TEST_CLUSTER_NODES (default 2) sets the number of nodes.

let clusterCache = null;
/** The parsed env file of the test cluster; throws a message saying what to run when it is missing. */
function clusterEnv() {
  if (clusterCache) return clusterCache;
  const file = process.env.COFFER_TEST_CLUSTER;
  if (!fs.existsSync(file)) {
    throw new Error(`COFFER_TEST_CLUSTER=${file}: no such file. The cluster-* suites need the test cluster's ` +
      'infrastructure (Ceph and PostgreSQL, no nodes): scripts/test.sh brings it up, or run ' +
      `CLUSTER_NODES=0 CLUSTER_DIR=${path.dirname(file)} scripts/cluster.sh up <builddir> first`);
  }
  // Shell assignments, one a line, values plain or in single quotes.
  const read = (f) => {
    const out = {};
    for (const line of fs.readFileSync(f, 'utf8').split('\n')) {
      const m = /^(\w+)=(.*)$/.exec(line);
      if (m) out[m[1]] = m[2].replace(/^'(.*)'$/, '$1');
    }
    return out;
  };
  const env = read(file);
  for (const k of ['PGPORT', 'PGUSER', 'COFFER_PG_PASSWORD_FILE', 'CEPH_CONF', 'COFFER_RADOS_POOL', 'COFFER_RADOS_USER', 'COFFER_RADOS_KEYRING']) {
    if (!env[k]) throw new Error(`${file} has no ${k}: not an env file of scripts/cluster.sh`);
  }
  // The superuser's way in: the unix socket of tests/lib/pgtmp.sh (local connections are trusted).
  env.socketDir = read(path.join(path.dirname(file), 'pg', 'env')).PGHOST;
  const vers = fs.existsSync('/usr/lib/postgresql') ? fs.readdirSync('/usr/lib/postgresql').filter((v) => fs.existsSync(`/usr/lib/postgresql/${v}/bin/psql`)) : [];
  vers.sort((a, b) => Number(b) - Number(a));
  env.psql = vers.length ? `/usr/lib/postgresql/${vers[0]}/bin/psql` : 'psql';
  env.nodes = Number(process.env.COFFER_TEST_CLUSTER_NODES || 2);
  clusterCache = env;
  return env;
}

/** SQL as the test cluster's superuser; returns stdout (throws on an error). */
export function clusterPsql(sql, db = 'postgres') {
  const e = clusterEnv();
  const r = spawnSync(e.psql, ['-h', e.socketDir, '-p', e.PGPORT, '-U', 'postgres', '-d', db, '-XAtq', '-v', 'ON_ERROR_STOP=1', '-c', sql],
    { encoding: 'utf8', timeout: 120000 });
  if (r.status !== 0) throw new Error(`psql ${sql}: ${r.error || r.stderr}`);
  return r.stdout;
}

/**
 * Cluster mode: the database of the server directory dir (or of its data directory, dir/data). A
 * directory copied elsewhere (fs.cpSync) still names the original's database: it gets a copy of it
 * (CREATE DATABASE … TEMPLATE: the original's nodes must be stopped), and its configurations are
 * rewritten to name the copy and its own paths. So a copy of a stopped server's directory is a copy
 * of its store, as in single mode.
 */
export function clusterDb(dir) {
  if (path.basename(dir) === 'data' && fs.existsSync(path.join(path.dirname(dir), 'cluster.json'))) dir = path.dirname(dir);
  const meta = path.join(dir, 'cluster.json');
  const m = JSON.parse(fs.readFileSync(meta, 'utf8'));
  if (m.home === dir) return m.db;
  const db = `coffer_t_${crypto.randomBytes(6).toString('hex')}`;
  clusterPsql(`CREATE DATABASE ${db} TEMPLATE ${m.db} OWNER ${clusterEnv().PGUSER}`);
  for (const f of [path.join(dir, 'coffer.yaml'), ...fs.readdirSync(dir).filter((x) => /^node\d+$/.test(x)).map((x) => path.join(dir, x, 'coffer.yaml'))]) {
    if (!fs.existsSync(f)) continue;
    fs.writeFileSync(f, fs.readFileSync(f, 'utf8').replaceAll(`dbname=${m.db} `, `dbname=${db} `).replaceAll(`${m.home}/`, `${dir}/`));
  }
  fs.writeFileSync(meta, JSON.stringify({ db, home: dir }));
  return db;
}

class ClusterServer extends Server {
  constructor(opts = {}) {
    super(opts);
    this.cluster = clusterEnv();
    this.stderr = '';
    this.rr = 0;
    this.logWaiters = new Set();
    this.nodes = [];
    for (let i = 1; i <= this.cluster.nodes; i++) {
      const dir = i === 1 ? this.dir : path.join(this.dir, `node${i}`);
      fs.mkdirSync(dir, { recursive: true });
      fs.mkdirSync(path.join(this.dir, 'data', `node${i}`), { recursive: true });
      const node = new Server({ dir, env: opts.env, clusterNode: true });
      node.initialised = true; // init runs once, here, for the store of every node
      this.nodes.push(node);
    }
    // The database: this directory's own, a copy of the one of the directory this was copied from,
    // or a fresh one.
    const meta = path.join(this.dir, 'cluster.json');
    if (fs.existsSync(meta)) {
      this.db = clusterDb(this.dir);
      this.initialised = true;
    } else {
      this.db = `coffer_t_${crypto.randomBytes(6).toString('hex')}`;
      clusterPsql(`CREATE DATABASE ${this.db} OWNER ${this.cluster.PGUSER}`);
      fs.writeFileSync(meta, JSON.stringify({ db: this.db, home: this.dir }));
    }
  }

  /** The next node in turn. */
  pick() { return this.nodes[this.rr++ % this.nodes.length]; }
  get url() { return this.pick().url; }
  get port() { return this.pick().port; }
  set port(p) { this.nodes[0].port = p; }
  get publicUrl() { return this.nodes[0].url; }
  get proc() { return this.nodes[0].proc; }
  get procs() { return this.nodes.map((n) => n.proc); }
  get dataDir() { return path.join(this.dir, 'data'); }

  /** Node i's configuration (its Server's opts.config): opts.config, then what the cluster fixes. */
  nodeConfig(i) {
    const c = this.cluster, own = this.opts.config || {};
    return {
      ...own,
      public_url: this.publicUrl,
      data_dir: path.join(this.dir, 'data', `node${i + 1}`),
      master_key_file: path.join(this.dir, 'master.key'),
      journal_anchor_file: path.join(this.dir, `node${i + 1}.anchor`),
      log: { ...(own.log || {}), access: path.join(this.dir, 'access.log') },
      store: {
        engine: 'cluster',
        postgres: { conninfo: `host=127.0.0.1 port=${c.PGPORT} dbname=${this.db} user=${c.PGUSER}`, password_file: c.COFFER_PG_PASSWORD_FILE },
        rados: { conf: c.CEPH_CONF, pool: c.COFFER_RADOS_POOL, user: c.COFFER_RADOS_USER, keyring: c.COFFER_RADOS_KEYRING, op_timeout: '30s' },
      },
    };
  }

  /** Writes every node's configuration whose port is known (node 1's: port). */
  writeConfig(port) {
    if (port) this.nodes[0].port = port;
    for (const [i, n] of this.nodes.entries()) {
      if (!n.port) continue;
      n.opts = { ...n.opts, config: this.nodeConfig(i) };
      n.writeConfig(n.port);
    }
  }

  async start() {
    for (const n of this.nodes) {
      if (!n.port) {
        n.port = await freePort();
        n.portPicked = true;
      }
    }
    this.writeConfig();
    // (A suite may have run `coffer init` itself, as shares.test.mjs does: then master.key is there.)
    if (!this.initialised && !fs.existsSync(path.join(this.dir, 'master.key'))) {
      const r = cli(['init', '-c', this.configPath], { COFFER_ADMIN_PASSWORD: ADMIN_PASSWORD });
      if (r.status !== 0) throw new Error(`coffer init failed (${r.status}): ${r.stderr}`);
    }
    this.initialised = true;
    // One node after the other (as scripts/cluster.sh): each has made what it makes at its first start
    // before the next opens the store. Their stderr reaches this.stderr line by line.
    for (const n of this.nodes) {
      // A picked port taken meanwhile by another file's server: a fresh one, every configuration
      // written again (node 1's port is the public URL of all), and the node started again.
      for (let tries = 1; ; tries++) {
        const from = n.stderr.length;
        try {
          await n.start();
        } catch (e) {
          if (e.addressInUse && n.portPicked && tries < 5) {
            n.port = await freePort();
            this.writeConfig();
            continue;
          }
          if (n.proc) this.follow(n, from);
          throw e;
        }
        this.follow(n, from);
        break;
      }
      n.portPicked = false;
    }
    return this;
  }

  /** Appends node n's stderr from offset `from` to this.stderr, whole lines only, from now on. */
  follow(n, from) {
    let pending = n.stderr.slice(from);
    const flush = (all) => {
      const cut = all ? pending.length : pending.lastIndexOf('\n') + 1;
      if (cut <= 0) return;
      this.stderr += pending.slice(0, cut);
      pending = pending.slice(cut);
      for (const w of this.logWaiters) w();
    };
    flush(false);
    n.proc.stderr.on('data', (d) => { pending += d.toString(); flush(false); });
    n.proc.on('close', () => { flush(true); for (const w of this.logWaiters) w(); });
  }

  async stop(signal = 'SIGTERM') {
    let first = null;
    for (const n of this.nodes) {
      try { await n.stop(signal); } catch (e) { first = first || e; }
    }
    if (first) throw first;
  }

  async kill() { for (const n of this.nodes) await n.kill(); }
  closeSessions() { for (const n of this.nodes) n.closeSessions(); }
  connect(opts = {}) { return this.pick().connect(opts); }
  h2session() { return this.pick().h2session(); }
  request(method, urlPath, opts = {}) { return this.pick().request(method, urlPath, opts); }

  /** As Server's, over both nodes' lines; rejects once every node has ended without it. */
  waitForLog(re, { from = 0, timeout = WAIT_DEADLINE_MS } = {}) {
    const find = () => re.exec(this.stderr.slice(from));
    const m = find();
    if (m) return Promise.resolve(m);
    const ended = () => this.nodes.every((n) => !n.proc || n.proc.exitCode !== null || n.proc.signalCode !== null);
    return new Promise((resolve, reject) => {
      const done = (fn, v) => { clearTimeout(timer); this.logWaiters.delete(check); fn(v); };
      const check = () => {
        const x = find();
        if (x) done(resolve, x);
        else if (ended()) done(reject, new Error(`every coffer node ended without logging ${re}:\n${this.stderr.slice(-3000)}`));
      };
      const timer = setTimeout(() => done(reject, new Error(`no ${re} in the nodes' logs after ${timeout} ms:\n${this.stderr.slice(-3000)}`)), timeout);
      this.logWaiters.add(check);
      check();
    });
  }

  /**
   * The first of needles (Buffers or strings) found in this server's store, or null: in a pg_dump of
   * its database (raw, and in hex as the dump writes bytea) and in every RADOS object of its tenants'
   * namespaces (the pool's other objects belong to other test servers). The cluster mode's search
   * of "the disk": in single mode, suites search data_dir (dirContains).
   */
  storeContains(needles) {
    const e = this.cluster;
    const dump = spawnSync(e.psql.replace(/psql$/, 'pg_dump'), ['-h', e.socketDir, '-p', e.PGPORT, '-U', 'postgres', '-d', this.db],
      { timeout: 300000, maxBuffer: 1 << 30 });
    if (dump.status !== 0) throw new Error(`pg_dump ${this.db}: ${dump.error || dump.stderr}`);
    const text = dump.stdout.toString('latin1').toLowerCase();
    const tenants = clusterPsql("SELECT encode(k, 'hex') FROM coffer_tenants", this.db).split('\n').filter(Boolean);
    const script = 'for ns in "$@"; do for o in $(rados -c "$CONF" -p "$POOL" -N "$ns" ls); do rados -c "$CONF" -p "$POOL" -N "$ns" get "$o" - || exit 1; done; done';
    const objs = spawnSync('bash', ['-c', script, 'objects', ...tenants],
      { env: { ...process.env, CONF: e.CEPH_CONF, POOL: e.COFFER_RADOS_POOL }, timeout: 600000, maxBuffer: 1 << 30 });
    if (objs.status !== 0) throw new Error(`rados get: ${objs.error || objs.stderr}`);
    for (const n of needles) {
      const b = Buffer.from(n);
      // (Raw in the dump only when not all hex digits: the dump's bytea are hex text, in which a short
      // needle such as a 6-digit code would be found by chance.)
      const rawInDump = !/^[0-9a-f]*$/i.test(b.toString('latin1')) && dump.stdout.includes(b);
      if (rawInDump || text.includes(b.toString('hex')) || objs.stdout.includes(b)) return n;
    }
    return null;
  }

  /**
   * Removes the directory, its tenants' objects from the pool (the OSDs keep them in memory: 512 MiB
   * each) and the database.
   */
  cleanup() {
    super.cleanup();
    const e = this.cluster;
    try {
      const tenants = clusterPsql("SELECT encode(k, 'hex') FROM coffer_tenants", this.db).split('\n').filter(Boolean);
      const script = 'for ns in "$@"; do rados -c "$CONF" -p "$POOL" -N "$ns" ls | xargs -r rados -c "$CONF" -p "$POOL" -N "$ns" rm --force-full; done';
      spawnSync('bash', ['-c', script, 'rm', ...tenants], { env: { ...process.env, CONF: e.CEPH_CONF, POOL: e.COFFER_RADOS_POOL }, timeout: 300000 });
    } catch { /* no database (never initialised), or the cluster is going down */ }
    try { clusterPsql(`DROP DATABASE IF EXISTS ${this.db} WITH (FORCE)`); } catch { /* the cluster is going down */ }
  }
}

/** Starts a server and logs in as admin: {server, admin (client), me, spaces}. */
export async function startWithAdmin(opts = {}) {
  const server = await new Server(opts).start();
  const login = await server.login();
  const admin = server.client(login.token);
  const spaces = await admin.spaces();
  return { server, admin, login, spaces };
}

/** Runs curl; returns {status (exit code), stdout (Buffer), stderr}. */
export function curl(args, opts = {}) {
  const r = spawnSync('curl', ['-sk', ...args], { timeout: opts.timeout || 120000, maxBuffer: 1 << 30 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr ? r.stderr.toString() : '' };
}

export function sha256(buf) { return crypto.createHash('sha256').update(buf).digest('hex'); }

/** Deterministic pseudo-random bytes (so failures reproduce). */
export function bytes(n, seed = 1) {
  const out = Buffer.alloc(n);
  let block = Buffer.alloc(0), off = 0, counter = 0;
  for (let i = 0; i < n; i++) {
    if (off === block.length) {
      block = crypto.createHash('sha256').update(`${seed}:${counter++}`).digest();
      off = 0;
    }
    out[i] = block[off++];
  }
  return out;
}

/** Fast large deterministic buffer (AES-CTR keystream). */
export function bigBytes(n, seed = 1) {
  const key = crypto.createHash('sha256').update(`key${seed}`).digest();
  const c = crypto.createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return Buffer.concat([c.update(Buffer.alloc(n)), c.final()]);
}

/** Recursively lists every regular file under dir. */
export function walkFiles(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...walkFiles(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/** Whether any file under dir contains needle (Buffer). */
export function dirContains(dir, needle) {
  for (const f of walkFiles(dir)) {
    if (fs.readFileSync(f).includes(needle)) return f;
  }
  return null;
}

export const CHUNK = 1 << 20;

/**
 * bigBytes(n, seed) with mark planted at the start, across every chunk boundary (from 7 bytes before
 * it) and at the end, where n leaves room: content whose plaintext a dump of the store must not show.
 */
export function markedBytes(n, seed, mark) {
  const b = bigBytes(n, seed);
  const m = Buffer.from(mark);
  if (n >= m.length) m.copy(b, 0);
  for (let at = CHUNK - 7; at + m.length <= n; at += CHUNK) m.copy(b, at);
  if (n >= 2 * m.length) m.copy(b, n - m.length);
  return b;
}

/** Polls fn (async; a truthy value ends the wait) until the deadline, which is generous: a loaded machine. */
export async function until(fn, what, ms = WAIT_DEADLINE_MS) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
