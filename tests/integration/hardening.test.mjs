// Process hardening and what a node's activity shows (issue 17, item 8; docs/SECURITY.md "Process"
// and "Provenance"), each proved from outside the real server:
//
// - Scanners have no terminal: started from a terminal (a pty made by script(1), so the server has a
//   controlling terminal), every scanner leads its own session with no controlling terminal
//   (/proc/PID/stat: session = pid, tty_nr = 0). In fault-injection builds (the test build), each
//   confined scanner tries terminal ioctls on the stderr it shares with the server (that same pty)
//   and logs the answers (COFFER_TEST_SCANNER_IOCTL=1, scanner.c): TIOCSTI, TIOCSETD and TIOCLINUX
//   are refused with EPERM by the seccomp filter, TCGETS passes. Scans still work.
// - No core dumps, however the server starts: as root dropping to `user:`, and started directly as
//   the service account (with a core limit of "unlimited" inherited in both cases): /proc/PID/limits
//   says "Max core file size 0 0" and the /proc/PID files belong to root although the process runs as
//   the account (the kernel does that for non-dumpable processes only), for the server and its
//   scanners.
// - No environment variable switches provenance off: COFFER_BENCH_NO_TRANSFER_AUDIT=1 is ignored by
//   builds without -Dbench_knobs=true (the log says so) and downloads are still recorded.
// - A node's activity shows its caller only what they may see: a manager through a grant inside
//   someone's private space sees neither the names of the folders above the grant in the stored
//   paths nor the id of the private folder a file was moved out of; the owner sees everything.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Server, ADMIN_PASSWORD, EICAR, certificate, coffer, freePort, writeSignatureDb } from './lib/harness.mjs';

const isRoot = process.getuid() === 0;
const ACCOUNT = 'coffer-test';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sanitizerReport = (text) => /ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: UndefinedBehaviorSanitizer/.test(text);

const servers = [];
after(async () => {
  let first = null;
  for (const s of servers) {
    try { await s.stop(); } catch (e) { first = first || e; }
    s.cleanup();
  }
  if (first) throw first;
});

/** The test's service account (privilege.test.mjs makes the same one). */
function account() {
  const look = (name) => {
    const r = spawnSync('getent', ['passwd', name], { encoding: 'utf8' });
    if (r.status !== 0) return null;
    const f = r.stdout.trim().split(':');
    return { name, uid: Number(f[2]), gid: Number(f[3]) };
  };
  let a = look(ACCOUNT);
  if (!a) {
    spawnSync('useradd', ['--system', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', ACCOUNT]);
    a = look(ACCOUNT) || look('nobody');
  }
  return a;
}

/** /proc/PID/stat: {pid, ppid, pgrp, session, ttyNr} (the command may hold spaces and parentheses). */
function stat(pid) {
  const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { pid, ppid: Number(f[1]), pgrp: Number(f[2]), session: Number(f[3]), ttyNr: Number(f[4]) };
}

function cmdline(pid) {
  try { return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0'); } catch { return []; }
}

function children(pid) {
  const out = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try { if (stat(Number(e)).ppid === pid) out.push(Number(e)); } catch { /* gone */ }
  }
  return out;
}

/** The first process at or below pid running `coffer serve` (a wrapper may exec it or fork it). */
function servePid(pid) {
  const queue = [pid];
  while (queue.length > 0) {
    const p = queue.shift();
    const c = cmdline(p);
    if (c[0] === coffer && c[1] === 'serve') return p;
    queue.push(...children(p));
  }
  return null;
}

const scannersOf = (pid) => children(pid).filter((c) => cmdline(c)[0].endsWith('/coffer-scan'));

/** {Uid: [real, effective, saved, fs]} and the owner of the /proc/PID files. */
function procIds(pid) {
  const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const uid = text.match(/^Uid:\s*(.*)$/m)[1].trim().split(/\s+/).map(Number);
  return { Uid: uid, procOwner: fs.statSync(`/proc/${pid}/status`).uid };
}

/** "Max core file size" from /proc/PID/limits: [soft, hard] as written there. */
function coreLimit(pid) {
  const line = fs.readFileSync(`/proc/${pid}/limits`, 'utf8').split('\n').find((l) => l.startsWith('Max core file size'));
  return line.slice('Max core file size'.length).trim().split(/\s+/).slice(0, 2);
}

/**
 * A server whose `coffer serve` runs under a wrapper command (script(1) for a terminal, prlimit and
 * setpriv for limits and another account). opts.wrap(argv) → the argv to spawn; opts.init() runs
 * `coffer init` (returns spawnSync's result). stdout and stderr both count as its log (script
 * writes the terminal's output to its stdout).
 */
class WrappedServer extends Server {
  async start() {
    this.port = this.port || await freePort();
    this.writeConfig(this.port);
    if (!fs.existsSync(path.join(this.dataDir, 'CURRENT'))) {
      const r = this.opts.init();
      if (r.status !== 0) throw new Error(`coffer init failed (${r.status}): ${r.stderr}`);
    }
    const [cmd, ...args] = this.opts.wrap([coffer, 'serve', '-c', this.configPath]);
    this.proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...(this.opts.env || {}) } });
    this.proc.stdout.on('data', (d) => { this.stderr += d.toString(); });
    this.proc.stderr.on('data', (d) => { this.stderr += d.toString(); });
    this.exited = new Promise((resolve) => this.proc.on('exit', (code, signal) => resolve({ code, signal })));
    const listening = `listening on https://127.0.0.1:${this.port}`;
    const deadline = Date.now() + 60000;
    for (;;) {
      if (this.proc.exitCode !== null) throw new Error(`coffer serve exited early:\n${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`coffer serve did not come up:\n${this.stderr}`);
      if (this.stderr.includes(listening)) {
        try {
          if ((await this.request('GET', '/healthz', { h1: true })).status === 200) break;
        } catch { /* not up yet */ }
      }
      await sleep(50);
    }
    this.pid = servePid(this.proc.pid);
    assert.ok(this.pid, 'the coffer serve process');
    return this;
  }

  /** SIGTERM to coffer itself (not to the wrapper); the wrapper ends with it. */
  async stop() {
    this.closeSessions();
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const pid = this.pid || servePid(this.proc.pid);
    if (!pid) { // it never came up: nothing to check, only something to end
      this.proc.kill('SIGKILL');
      await this.exited;
      return;
    }
    process.kill(pid, 'SIGTERM');
    const { code } = await this.exited;
    if (code !== 0) throw new Error(`coffer serve (wrapped) exited with ${code}:\n${this.stderr.slice(-4000)}`);
    if (sanitizerReport(this.stderr)) throw new Error(`sanitizer report:\n${this.stderr}`);
  }
}

/** Waits until pid has n scanner children that said HELLO (their pids). */
async function scanners(pid, n) {
  let got = [];
  for (let i = 0; i < 600 && got.length !== n; i++) {
    got = scannersOf(pid);
    if (got.length !== n) await sleep(50);
  }
  assert.equal(got.length, n, `${n} scanner processes`);
  return got;
}

const shq = (s) => `'${String(s).replace(/'/g, "'\\''")}'`;

test('scanners run without a terminal: own session, no controlling tty, terminal ioctls refused', async (t) => {
  const srv = new WrappedServer({
    config: { scan: { processes: 2 } },
    env: { COFFER_TEST_SCANNER_IOCTL: '1' },
    init: () => spawnSync(coffer, ['init', '-c', path.join(srv.dir, 'coffer.yaml')], { encoding: 'utf8', env: { ...process.env, COFFER_ADMIN_PASSWORD: ADMIN_PASSWORD } }),
    // script(1): runs the command on a new pty, which becomes its controlling terminal.
    wrap: (argv) => ['script', '-qfec', argv.map(shq).join(' '), '/dev/null'],
  });
  servers.push(srv);
  await srv.start();

  const server = stat(srv.pid);
  assert.notEqual(server.ttyNr, 0, 'the server itself has a controlling terminal here (the pty)');
  const ps = await scanners(srv.pid, 2);
  for (const pid of ps) {
    const s = stat(pid);
    assert.equal(s.session, pid, `scanner ${pid} leads its own session`);
    assert.equal(s.pgrp, pid, `scanner ${pid} leads its own process group`);
    assert.notEqual(s.session, server.session, `scanner ${pid} is not in the server's session`);
    assert.equal(s.ttyNr, 0, `scanner ${pid} has no controlling terminal`);
    assert.equal(fs.readlinkSync(`/proc/${pid}/fd/1`), '/dev/null', `scanner ${pid}: stdout is /dev/null`);
    assert.match(fs.readlinkSync(`/proc/${pid}/fd/2`), /^\/dev\/pts\/\d+$/, `scanner ${pid}: stderr is the terminal (so the ioctls below reach a tty)`);
  }
  // The scanners are their own program (coffer-scan): they map the parsers and none of the server's
  // libraries; the server maps no parser of hostile files.
  const libs = (pid) => new Set(fs.readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')
    .map((l) => (l.match(/\/([^/\s]+\.so)[.\d]*$/) || [])[1]).filter(Boolean));
  for (const pid of ps) {
    const l = libs(pid);
    assert.ok(l.has('libclamav.so') && l.has('libmagic.so'), `scanner ${pid} maps libclamav and libmagic: ${[...l]}`);
    for (const no of ['librocksdb.so', 'libceph-common.so', 'librados.so', 'libpq.so', 'libldap.so', 'libh2o-evloop.so', 'libvips.so'])
      assert.ok(!l.has(no), `scanner ${pid} does not map ${no}`);
  }
  const serverLibs = libs(srv.pid);
  assert.ok(serverLibs.has('librocksdb.so'), `the server maps RocksDB: ${[...serverLibs]}`);
  for (const no of ['libclamav.so', 'libmagic.so']) assert.ok(!serverLibs.has(no), `the server does not map ${no}`);

  const fault = await srv.request('GET', '/_test/fault');
  if (fault.status === 200) {
    // Each scanner's self-check, run after its seccomp filter is loaded. errno 1 = EPERM; without
    // the filter the same calls (as root, on this pty) answer TIOCSTI 0, TIOCSETD 0.
    const lines = srv.stderr.split(/\r?\n/).filter((l) => l.includes('ioctl self-check'));
    assert.equal(lines.length, 2, `one self-check per scanner:\n${lines.join('\n')}`);
    for (const l of lines) assert.match(l, /TCGETS=0\/0 TIOCSTI=-1\/1 TIOCSETD=-1\/1 TIOCLINUX=-1\/1$/);
  } else {
    assert.equal(fault.status, 404);
    t.diagnostic('not a fault-injection build: the scanner ioctl self-check is not compiled in');
  }

  // Confined this way, scanners still scan.
  const admin = srv.client((await srv.login()).token);
  const root = (await admin.spaces()).private.root;
  const ok = await admin.upload(root, 'clean.txt', 'hello, terminal-less scanner\n');
  assert.equal(ok.status, 201, ok.text());
  assert.equal(ok.json().scan.result, 'clean');
  const bad = await admin.upload(root, 'eicar.txt', EICAR);
  assert.equal(bad.status, 422, bad.text());
  assert.equal(bad.json().error, 'infected');
  await srv.stop();
});

/** Checks the server and its scanners: no core file, non-dumpable, running as who. */
async function assertNoDumps(srv, who, label) {
  const procs = [srv.pid, ...await scanners(srv.pid, 2)];
  for (const pid of procs) {
    const what = `${label}: ${pid === srv.pid ? 'server' : 'scanner'} ${pid}`;
    assert.deepEqual(coreLimit(pid), ['0', '0'], `${what}: Max core file size 0 0`);
    const ids = procIds(pid);
    assert.deepEqual(ids.Uid, [who.uid, who.uid, who.uid, who.uid], `${what} runs as ${who.name}`);
    // For a process of another account, the kernel makes /proc/PID/* root's only when it is not
    // dumpable (proc(5), PR_SET_DUMPABLE).
    assert.equal(ids.procOwner, 0, `${what}: non-dumpable (its /proc files belong to root, not to ${who.name})`);
  }
}

test('no core dumps and non-dumpable: started as root with user:, and started as the service account', { skip: !isRoot && 'needs root' }, async () => {
  const who = account();
  const sigsFor = (srv) => {
    const sigs = writeSignatureDb(path.join(srv.dir, 'sigs'));
    fs.chmodSync(sigs, 0o755);
    for (const f of fs.readdirSync(sigs)) fs.chmodSync(path.join(sigs, f), 0o644);
    return sigs;
  };
  // A core limit of "unlimited" from whoever starts it: the server must lower it itself.
  const unlimited = ['prlimit', '--core=unlimited:unlimited', '--'];

  // 1. Root, dropping to the account (`user:`).
  const a = new WrappedServer({
    config: { user: who.name, scan: { processes: 2 } },
    init: () => spawnSync(coffer, ['init', '-c', a.configPath], { encoding: 'utf8', env: { ...process.env, COFFER_ADMIN_PASSWORD: ADMIN_PASSWORD } }),
    wrap: (argv) => [...unlimited, ...argv],
  });
  servers.push(a);
  fs.chmodSync(a.dir, 0o711);
  a.opts.config.scan.database_dir = sigsFor(a);
  await a.start();
  await assertNoDumps(a, who, 'root with user:');
  await a.stop();

  // 2. Started as the account itself (setpriv), owning its directory and a copy of the certificate.
  const asAccount = (argv) => ['setpriv', `--reuid=${who.uid}`, `--regid=${who.gid}`, '--clear-groups', ...argv];
  const b = new WrappedServer({
    config: { user: who.name, scan: { processes: 2 } },
    init: () => {
      const [cmd, ...args] = asAccount([coffer, 'init', '-c', b.configPath]);
      return spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, COFFER_ADMIN_PASSWORD: ADMIN_PASSWORD } });
    },
    wrap: (argv) => [...unlimited, ...asAccount(argv)],
  });
  servers.push(b);
  b.opts.config.scan.database_dir = sigsFor(b);
  const c = certificate(); // in a root-only directory: the account gets its own copy
  fs.copyFileSync(c.cert, path.join(b.dir, 'cert.pem'));
  fs.copyFileSync(c.key, path.join(b.dir, 'key.pem'));
  b.opts.config.tls = { certificate: path.join(b.dir, 'cert.pem'), key: path.join(b.dir, 'key.pem') };
  const chown = spawnSync('chown', ['-R', `${who.uid}:${who.gid}`, b.dir]);
  assert.equal(chown.status, 0);
  await b.start();
  assert.doesNotMatch(b.stderr, /running as /, 'no drop: it was started as the account');
  await assertNoDumps(b, who, 'started as the account');
  // It works: an upload through the scanners.
  const admin = b.client((await b.login()).token);
  const up = await admin.upload((await admin.spaces()).private.root, 'x.txt', 'dumpless\n');
  assert.equal(up.status, 201, up.text());
  await b.stop();
});

test('COFFER_BENCH_NO_TRANSFER_AUDIT does not switch provenance off in a build without bench_knobs', async () => {
  const srv = new Server({ env: { COFFER_BENCH_NO_TRANSFER_AUDIT: '1' } });
  servers.push(srv);
  await srv.start();
  assert.match(srv.stderr, /COFFER_BENCH_NO_TRANSFER_AUDIT is ignored/);
  assert.doesNotMatch(srv.stderr, /are NOT recorded/);
  const admin = srv.client((await srv.login()).token);
  const up = await admin.upload((await admin.spaces()).private.root, 'audited.txt', 'every transfer is recorded\n');
  assert.equal(up.status, 201, up.text());
  const id = up.json().id;
  const down = await admin.download(id);
  assert.equal(down.status, 200);
  assert.equal(down.body.toString(), 'every transfer is recorded\n');
  const view = await admin.req('GET', `/api/v1/files/${id}/view`);
  assert.equal(view.status, 200);
  // The transfer events: "began" is durable before the first byte, the end follows the response.
  let events = [];
  for (let i = 0; i < 200; i++) {
    events = (await admin.req('GET', `/api/v1/files/${id}/activity`)).json().events;
    if (events.filter((e) => e.transfer && e.transfer.completed === true).length === 2) break;
    await sleep(50);
  }
  assert.deepEqual(events.map((e) => e.action), ['file.view', 'file.download', 'file.upload']);
  for (const e of events.slice(0, 2)) {
    assert.equal(e.transfer.completed, true, `${e.action} recorded whole`);
    assert.equal(e.transfer.bytes_sent, 27);
  }
  await srv.stop();
});

test('file activity: a manager through a grant sees only the folders they may see', async () => {
  const srv = new Server();
  servers.push(srv);
  await srv.start();
  const admin = srv.client((await srv.login()).token);
  const mk = async (username) => {
    const r = await admin.req('POST', '/api/v1/admin/users', { body: { username, password: `${username}-password-12345` } });
    assert.equal(r.status, 201, r.text());
    const c = srv.client((await srv.login(username, `${username}-password-12345`)).token);
    return { id: r.json().id, c };
  };
  const alice = await mk('alice'), bob = await mk('bob');
  const aroot = (await alice.c.spaces()).private.root;
  const folder = async (parent, name) => {
    const r = await alice.c.mkdir(parent, name);
    assert.equal(r.status, 201, r.text());
    return r.json().id;
  };
  // alice's private space: /HR Reviews/2026 shared with bob (manage); /Layoffs Q3 stays hers.
  const hr = await folder(aroot, 'HR Reviews');
  const y2026 = await folder(hr, '2026');
  const secret = await folder(aroot, 'Layoffs Q3');
  const grant = async (node, entries) => {
    const r = await alice.c.req('PUT', `/api/v1/nodes/${node}/acl`, { body: { entries } });
    assert.equal(r.status, 200, r.text());
  };
  await grant(y2026, [{ principal: `user:${bob.id}`, level: 'manage' }]);
  // A file written in the private folder, then moved into the shared one.
  const up = await alice.c.upload(secret, 'plan.txt', 'the plan\n');
  assert.equal(up.status, 201, up.text());
  const file = up.json().id;
  const mv = await alice.c.req('PATCH', `/api/v1/nodes/${file}`, { body: { parent: y2026 } });
  assert.equal(mv.status, 200, mv.text());
  const dl = await bob.c.download(file);
  assert.equal(dl.status, 200);

  const activity = async (who, q = '') => {
    for (let i = 0; i < 200; i++) {
      const r = await who.c.req('GET', `/api/v1/files/${file}/activity${q}`);
      assert.equal(r.status, 200, r.text());
      if (q !== '') return r;
      const j = r.json();
      if (j.events.length === 3 && j.events[0].transfer.completed !== null) return r;
      await sleep(50);
    }
    throw new Error('the download end was not recorded');
  };
  const summary = (j) => j.events.map((e) => [e.action, e.node.path, e.detail.from_parent === undefined ? '-' : e.detail.from_parent]);

  // The owner sees every path and where the file came from.
  assert.deepEqual(summary((await activity(alice)).json()), [
    ['file.download', '/HR Reviews/2026/plan.txt', '-'],
    ['node.move', '/HR Reviews/2026/plan.txt', secret],
    ['file.upload', '/Layoffs Q3/plan.txt', '-'],
  ]);
  // bob manages the file through the grant on 2026: "HR Reviews" and "Layoffs Q3" are alice's.
  const bobs = await activity(bob);
  assert.deepEqual(summary(bobs.json()), [
    ['file.download', '…/2026/plan.txt', '-'],
    ['node.move', '…/2026/plan.txt', null],
    ['file.upload', '…/plan.txt', '-'],
  ]);
  const csv = await activity(bob, '?format=csv');
  for (const [what, body] of [['JSON', bobs.text()], ['CSV', csv.text()]]) {
    for (const hidden of ['HR Reviews', 'Layoffs Q3', hr, secret]) assert.ok(!body.includes(hidden), `bob's ${what} activity names ${hidden}`);
  }
  assert.match(csv.text(), /,…\/2026\/plan\.txt,/);

  // Given view on "HR Reviews" too, bob sees that name where it stands; the private folder the file
  // came from stays hidden.
  await grant(hr, [{ principal: `user:${bob.id}`, level: 'view' }]);
  assert.deepEqual(summary((await activity(bob)).json()), [
    ['file.download', '/HR Reviews/2026/plan.txt', '-'],
    ['node.move', '/HR Reviews/2026/plan.txt', null],
    ['file.upload', '…/plan.txt', '-'],
  ]);
  await srv.stop();
});
