// Coffer as a service: the systemd unit (conf/coffer.service) passes `systemd-analyze verify`,
// `coffer serve --check` accepts a good configuration and names what is wrong with a bad one (exit 2),
// and with `log.format: json` every line a serving server writes to stderr is one JSON object, even
// when a message carries quotes, backslashes, control bytes and bytes that are not UTF-8.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Server, cli, coffer, certificate, freePort, writeSignatureDb, repoRoot, EICAR, ADMIN_PASSWORD } from './lib/harness.mjs';

delete process.env.COFFER_CONFIG;

const tmpRoot = process.env.COFFER_TEST_TMP || path.join(os.tmpdir(), 'coffer-tests');
fs.mkdirSync(tmpRoot, { recursive: true });
const work = fs.mkdtempSync(path.join(tmpRoot, 'service-'));
const cleanups = [];
after(async () => {
  for (const f of cleanups.reverse()) await f();
  fs.rmSync(work, { recursive: true, force: true });
});

const SANITIZER = /ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: UndefinedBehaviorSanitizer/;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** What `coffer serve` (and --check) says first when the tests run as root with `user: root`. */
const ROOT_WARNING = process.getuid() === 0
  ? /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z coffer\[warn\]: user: root: coffer serve keeps running as root \(uid 0\), scanners included; set user: to a service account\n$/
  : /^$/;

// ---- the systemd unit ----------------------------------------------------------------------------

const UNIT = path.join(repoRoot, 'conf', 'coffer.service');
const INSTALLED = '/usr/local/bin/coffer';

/** systemd-analyze verify on a copy of the unit whose commands run the binary under test. */
function verify(name, edit = (s) => s) {
  const dir = fs.mkdtempSync(path.join(work, 'unit-'));
  const file = path.join(dir, name);
  fs.writeFileSync(file, edit(fs.readFileSync(UNIT, 'utf8').replaceAll(INSTALLED, coffer)));
  const r = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8', timeout: 60000 });
  assert.equal(r.error, undefined, 'systemd-analyze runs (Debian package systemd; scripts/deps.sh test)');
  const lines = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.includes(name) || l.includes(dir));
  return { status: r.status, lines, file };
}

test('conf/coffer.service passes systemd-analyze verify; broken copies do not', () => {
  const text = fs.readFileSync(UNIT, 'utf8');
  assert.ok(text.includes(`ExecStart=${INSTALLED} serve -c /etc/coffer/coffer.yaml\n`));
  const good = verify('coffer.service');
  assert.equal(good.status, 0);
  assert.deepEqual(good.lines, [], 'no complaint about the unit');

  // An unknown directive is only a warning to systemd (exit 0), but a line about the unit.
  const unknown = verify('unknown.service', (s) => s.replace('LockPersonality=yes\n', 'LockPersonality=yes\nFrobnicate=yes\n'));
  const at = text.split('\n').indexOf('LockPersonality=yes') + 2;
  assert.equal(unknown.status, 0);
  assert.deepEqual(unknown.lines, [`${unknown.file}:${at}: Unknown key 'Frobnicate' in section [Service], ignoring.`]);
  const badValue = verify('badvalue.service', (s) => s.replace('MemoryDenyWriteExecute=yes', 'MemoryDenyWriteExecute=perhaps'));
  assert.equal(badValue.lines.length, 1);
  assert.match(badValue.lines[0], /badvalue\.service:\d+: Failed to parse boolean value, ignoring: perhaps$/);
  // A command that cannot run fails verification outright.
  const missing = verify('missing.service', (s) => s.replaceAll(coffer, '/nonexistent/coffer'));
  assert.equal(missing.status, 1);
  assert.ok(missing.lines.includes('missing.service: Command /nonexistent/coffer is not executable: No such file or directory'));
});

test('conf/coffer.service keeps its sandbox', () => {
  const lines = new Set(fs.readFileSync(UNIT, 'utf8').split('\n'));
  for (const want of [
    'NoNewPrivileges=yes', 'ProtectSystem=strict', 'ReadWritePaths=/var/lib/coffer /var/log/coffer', 'ProtectHome=yes',
    'PrivateTmp=yes', 'PrivateDevices=yes', 'ProtectKernelTunables=yes', 'ProtectKernelModules=yes',
    'ProtectKernelLogs=yes', 'ProtectControlGroups=yes', 'ProtectClock=yes', 'ProtectHostname=yes',
    'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6', 'RestrictNamespaces=yes', 'RestrictRealtime=yes',
    'RestrictSUIDSGID=yes', 'LockPersonality=yes', 'MemoryDenyWriteExecute=yes', 'SystemCallArchitectures=native',
    'SystemCallFilter=@system-service', 'SystemCallErrorNumber=EPERM',
    'CapabilityBoundingSet=CAP_SETUID CAP_SETGID CAP_NET_BIND_SERVICE CAP_CHOWN CAP_DAC_OVERRIDE CAP_FOWNER CAP_KILL',
    'UMask=0077', 'LimitNOFILE=65536', 'ExecReload=/bin/kill -HUP $MAINPID', 'TimeoutStopSec=60', 'KillMode=mixed',
    'Restart=on-failure', 'RestartPreventExitStatus=2',
  ]) assert.ok(lines.has(want), want);
  assert.ok(![...lines].some((l) => /^User=|^DynamicUser=/.test(l)), 'starts as root and drops to `user:` itself');
});

// ---- serve --check -------------------------------------------------------------------------------

/** An initialised server directory (not serving), plus variants of its configuration beside it. */
async function initialised() {
  const s = new Server({ config: { scan: { database_dir: writeSignatureDb(fs.mkdtempSync(path.join(work, 'sigs-'))) } } });
  s.port = await freePort();
  s.writeConfig(s.port);
  const r = cli(['init', '-c', s.configPath], { COFFER_ADMIN_PASSWORD: ADMIN_PASSWORD });
  assert.equal(r.status, 0, r.stderr);
  cleanups.push(() => s.cleanup());
  let n = 0;
  /** Writes a variant of the configuration (extra merged over it, like Server's) and returns its path. */
  s.variant = (extra, append = '') => {
    const saved = s.opts.config;
    s.opts.config = { ...saved, ...extra, scan: { ...saved.scan, ...(extra.scan || {}) } };
    s.writeConfig(s.port);
    s.opts.config = saved;
    const p = path.join(s.dir, `variant-${++n}.yaml`);
    fs.renameSync(s.configPath, p);
    fs.appendFileSync(p, append);
    s.writeConfig(s.port);
    return p;
  };
  return s;
}

function check(configPath) {
  const r = cli(['serve', '--check', '-c', configPath]);
  assert.doesNotMatch(r.stderr, SANITIZER);
  return r;
}

/** The stderr of a failed check without the root warning line. */
function findings(r) {
  const m = r.stderr.match(/^(\S+ coffer\[warn\]: user: root: [^\n]*\n)?([\s\S]*)$/);
  if (process.getuid() === 0) assert.ok(m[1], 'the root warning comes first');
  return m[2];
}

test('serve --check: a good configuration is ok (exit 0), also beside a running server', async () => {
  const s = await initialised();
  const r = check(s.configPath);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, `coffer: ${s.configPath}: configuration ok\n`);
  assert.match(r.stderr, ROOT_WARNING);
  // Nothing was created or started: no socket, no scratch, the store as it was.
  assert.equal(fs.existsSync(path.join(s.dataDir, 'control.sock')), false);
  assert.equal(fs.existsSync(path.join(s.dir, 'access.log')), false);

  await s.start();
  cleanups.push(() => s.stop());
  const beside = check(s.configPath);
  assert.equal(beside.status, 0, beside.stderr);
  assert.equal(beside.stdout, `coffer: ${s.configPath}: configuration ok\n`);
  assert.equal((await s.request('GET', '/healthz')).status, 200, 'the server did not notice');
  await s.stop();
});

test('serve --check: each problem named with its file (and line for YAML), exit 2', async () => {
  const s = await initialised();
  const cfg = s.configPath;
  const bad = (p) => {
    const r = check(p);
    assert.equal(r.stdout, '', p);
    assert.equal(r.status, 2, r.stderr);
    return r;
  };

  // YAML: an unknown key, with its line (the strict parser: plain text, no root warning, exit 2).
  const unknownPath = s.variant({}, 'bogus: 1\n');
  const line = fs.readFileSync(unknownPath, 'utf8').split('\n').indexOf('bogus: 1') + 1;
  assert.equal(bad(unknownPath).stderr, `coffer: ${unknownPath}:${line}: bogus: unknown key\n`);
  const wrongFormat = s.variant({ log: { access: 'access.log', level: 'info', format: 'xml' } });
  const fline = fs.readFileSync(wrongFormat, 'utf8').split('\n').indexOf('  format: "xml"') + 1;
  assert.equal(bad(wrongFormat).stderr, `coffer: ${wrongFormat}:${fline}: log.format: expected one of: text, json\n`);

  // The TLS key of another certificate.
  const other = path.join(s.dir, 'other-key.pem');
  execFileSync('openssl', ['genpkey', '-algorithm', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', other], { stdio: 'ignore' });
  const mismatch = s.variant({ tls: { certificate: certificate().cert, key: other } });
  assert.equal(findings(bad(mismatch)),
    `coffer: ${mismatch}: tls: the TLS key does not match the certificate ${other}: error:05800074:x509 certificate routines::key values mismatch\n`);

  // The master key readable by its group.
  const mk = path.join(s.dir, 'master.key');
  fs.chmodSync(mk, 0o640);
  assert.equal(findings(bad(cfg)),
    `coffer: ${cfg}: master_key_file: ${mk}: the master key must not be readable by group or others (chmod 600)\n`);
  fs.chmodSync(mk, 0o600);

  // Another master key: it does not open the store.
  const otherKey = path.join(s.dir, 'other.key');
  fs.writeFileSync(otherKey, crypto.randomBytes(32), { mode: 0o600 });
  const wrongKey = s.variant({ master_key_file: 'other.key' });
  assert.equal(findings(bad(wrongKey)),
    `coffer: ${wrongKey}: data_dir: ${s.dataDir}: the master key ${otherKey} does not open this data directory\n`);

  // A key of the wrong size.
  fs.writeFileSync(otherKey, crypto.randomBytes(31), { mode: 0o600 });
  assert.equal(findings(bad(wrongKey)), `coffer: ${wrongKey}: master_key_file: ${otherKey}: a master key is exactly 32 bytes\n`);

  // No signature directory; an empty one.
  const noSigs = s.variant({ scan: { database_dir: path.join(s.dir, 'no-such-sigs') } });
  assert.equal(findings(bad(noSigs)),
    `coffer: ${noSigs}: scan.database_dir: ${path.join(s.dir, 'no-such-sigs')}: No such file or directory\n`);
  const emptyDir = fs.mkdtempSync(path.join(work, 'empty-sigs-'));
  const emptySigs = s.variant({ scan: { database_dir: emptyDir } });
  assert.equal(findings(bad(emptySigs)),
    `coffer: ${emptySigs}: scan.database_dir: ${emptyDir} holds no signature database (*.cvd, *.cld, *.hdb, *.ndb, *.ldb, ...): run freshclam (scan.development allows that, for development only)\n`);
  const dev = s.variant({ scan: { database_dir: emptyDir, development: 'true' } });
  assert.equal(check(dev).status, 0, 'scan.development accepts an empty directory');

  // web_dir, the access log's directory, a listen address, an uninitialised data_dir.
  const noWeb = s.variant({ web_dir: path.join(s.dir, 'no-web') });
  assert.equal(findings(bad(noWeb)),
    `coffer: ${noWeb}: web_dir: ${path.join(s.dir, 'no-web')}: cannot open the web directory: No such file or directory\n`);
  const noLogDir = s.variant({ log: { access: 'no-dir/access.log', level: 'info' } });
  assert.equal(findings(bad(noLogDir)),
    `coffer: ${noLogDir}: log.access: ${path.join(s.dir, 'no-dir/access.log')}: cannot create the access log in ${path.join(s.dir, 'no-dir')}: No such file or directory\n`);
  const badListen = s.variant({ listen: ['127.0.0.1'] });
  assert.equal(findings(bad(badListen)), `coffer: ${badListen}: listen: 127.0.0.1: expected host:port\n`);
  const fresh = s.variant({ data_dir: 'fresh' });
  assert.equal(findings(bad(fresh)),
    `coffer: ${fresh}: data_dir: ${path.join(s.dir, 'fresh')} is not initialised: run \`coffer init -c ${fresh}\` first\n`);

  // Every check runs: two problems, two lines, in serve's order.
  fs.chmodSync(mk, 0o644);
  const both = s.variant({ scan: { database_dir: emptyDir }, listen: ['nocolon'] });
  assert.equal(findings(bad(both)), [
    `coffer: ${both}: scan.database_dir: ${emptyDir} holds no signature database (*.cvd, *.cld, *.hdb, *.ndb, *.ldb, ...): run freshclam (scan.development allows that, for development only)`,
    `coffer: ${both}: master_key_file: ${mk}: the master key must not be readable by group or others (chmod 600)`,
    `coffer: ${both}: listen: nocolon: expected host:port`,
  ].join('\n') + '\n');
  fs.chmodSync(mk, 0o600);

  // The argument itself.
  const stray = cli(['serve', '--checks', '-c', cfg]);
  assert.equal(stray.status, 2);
  assert.equal(stray.stderr, 'coffer: serve takes no arguments besides -c FILE and --check\n');
  assert.equal(check(cfg).status, 0, 'the original configuration is still fine');
});

// ---- log.format: json ----------------------------------------------------------------------------

const RFC3339_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const LEVELS = new Set(['debug', 'info', 'warn', 'error']);

test('log.format json: every stderr line of a serving server is one JSON object', async (t) => {
  // The server's directory has quotes, a backslash, a newline, a control byte, UTF-8 and a byte that
  // is not UTF-8 in its name; the configuration is reached through a plain symlink, so every path
  // the server logs (relative paths resolve against the real directory) carries those bytes.
  const base = fs.mkdtempSync(path.join(work, 'json-'));
  const weirdName = Buffer.concat([Buffer.from('q"b\\s\n\x01\tcaf\u00e9'), Buffer.from([0xff]), Buffer.from('x')]);
  const weird = Buffer.concat([Buffer.from(base + '/'), weirdName]);
  fs.mkdirSync(weird, { mode: 0o700 });
  const link = path.join(base, 'link');
  fs.symlinkSync(weird, link);
  const weirdText = `${base}/q"b\\s\n\x01\tcaf\u00e9\ufffdx`; // how the log must render it
  const c = certificate();
  fs.copyFileSync(c.cert, path.join(link, 'cert.pem'));
  fs.copyFileSync(c.key, path.join(link, 'key.pem'));
  const sigs = writeSignatureDb(path.join(link, 'sigs'));

  const s = new Server({
    dir: link,
    config: {
      tls: { certificate: 'cert.pem', key: 'key.pem' },
      scan: { database_dir: 'sigs', processes: 2 },
      log: { access: '-', level: 'debug', format: 'json' },
    },
  });
  s.port = await freePort();
  s.writeConfig(s.port);
  const init = cli(['init', '-c', s.configPath], { COFFER_ADMIN_PASSWORD: ADMIN_PASSWORD });
  assert.equal(init.status, 0, init.stderr);
  const errPath = path.join(base, 'stderr.log');
  const fd = fs.openSync(errPath, 'w');
  s.proc = spawn(coffer, ['serve', '-c', s.configPath], { stdio: ['ignore', 'ignore', fd] });
  fs.closeSync(fd);
  s.exited = new Promise((resolve) => s.proc.on('exit', (code, signal) => resolve({ code, signal })));
  cleanups.push(async () => { if (s.proc.exitCode === null) { s.proc.kill('SIGKILL'); await s.exited; } fs.rmSync(base, { recursive: true, force: true }); });

  const raw = () => fs.readFileSync(errPath);
  /** Waits (no time limit asserted: the test's own timeout bounds it) until pred holds for the lines. */
  const until = async (what, pred) => {
    for (;;) {
      const text = raw().toString('utf8');
      if (pred(text)) return;
      if (s.proc.exitCode !== null) assert.fail(`server exited while waiting for ${what}:\n${text}`);
      await sleep(50);
    }
  };
  await until('start-up', (x) => x.includes('"msg":"listening on https://'));
  for (;;) {
    try { if ((await s.request('GET', '/healthz', { h1: true })).status === 200) break; } catch { /* not yet */ }
    await sleep(50);
  }
  const beside = check(s.configPath);
  assert.equal(beside.status, 0, beside.stderr);

  // Requests: access lines, scans (debug lines of the scan threads), an infected upload.
  const admin = s.client((await s.login()).token);
  const spaces = await admin.spaces();
  assert.equal((await admin.upload(spaces.private.root, 'a.txt', 'hello\n')).status, 201);
  assert.equal((await admin.upload(spaces.private.root, 'eicar.com', EICAR)).status, 422);

  // A reload that works, then one that fails everywhere: a certificate that is not PEM (the
  // server's line names its path) and a signature file libclamav rejects (the scanners' lines).
  s.proc.kill('SIGHUP');
  await until('a reload', (x) => (x.match(/new engine \(2 signatures\)/g) || []).length >= 2 && x.includes('TLS certificate reloaded'));
  fs.writeFileSync(path.join(link, 'cert.pem'), 'not a certificate\n');
  fs.writeFileSync(path.join(sigs, 'broken.ndb'), 'Broken.Sig:0:*:zz\n');
  s.proc.kill('SIGHUP');
  await until('a failed reload', (x) => x.includes('keeping the current TLS certificate') &&
    (x.match(/keeping the current engine/g) || []).length >= 2);
  s.proc.kill('SIGTERM');
  const { code } = await s.exited;

  const bytes = raw();
  let text;
  assert.doesNotThrow(() => { text = new TextDecoder('utf-8', { fatal: true }).decode(bytes); }, 'stderr is valid UTF-8');
  assert.doesNotMatch(text, SANITIZER);
  assert.equal(code, 0, text);
  assert.ok(text.endsWith('\n'));
  const lines = text.slice(0, -1).split('\n');
  const objects = lines.map((l, i) => {
    assert.doesNotMatch(l, /[\x00-\x1f]/, `line ${i + 1} has no raw control byte`);
    try { return JSON.parse(l); } catch (e) { assert.fail(`line ${i + 1} is not JSON (${e.message}): ${l}`); }
  });
  const pids = new Set();
  for (const o of objects) {
    assert.equal(typeof o, 'object');
    assert.match(o.time, RFC3339_MS);
    assert.ok(LEVELS.has(o.level), o.level);
    assert.equal(typeof o.msg, 'string');
    const keys = Object.keys(o).slice(0, 3);
    assert.deepEqual(keys, ['time', 'level', 'msg'], 'time, level and msg come first');
    if (o.process !== undefined) {
      assert.equal(o.process, 'scan-worker');
      assert.ok(Number.isInteger(o.pid) && o.pid !== s.proc.pid);
      assert.deepEqual(Object.keys(o), ['time', 'level', 'msg', 'process', 'pid']);
      pids.add(o.pid);
    } else if (o.msg === 'access') {
      assert.deepEqual(Object.keys(o), ['time', 'level', 'msg', 'request_id', 'ip', 'method', 'path', 'protocol', 'status', 'bytes', 'duration_ms']);
    } else {
      assert.deepEqual(Object.keys(o), ['time', 'level', 'msg']);
    }
  }
  t.diagnostic(`${objects.length} lines, scanner pids ${[...pids].join(' ')}`);
  const msgs = objects.map((o) => `${o.level} ${o.msg}`);
  const has = (want) => assert.ok(msgs.some((m) => (want instanceof RegExp ? want.test(m) : m === want)), `${want}\n${msgs.join('\n')}`);
  // Start-up, with the paths that carry every kind of byte.
  if (process.getuid() === 0) has('warn user: root: coffer serve keeps running as root (uid 0), scanners included; set user: to a service account');
  has(/^info virus scanner: ClamAV \S+, 2 signatures, 2 processes$/);
  has(`info listening on https://127.0.0.1:${s.port} (2 loops)`);
  // Requests and scans.
  assert.ok(objects.some((o) => o.msg === 'access' && o.method === 'GET' && o.path === '/healthz' && o.status === 200 && o.protocol === 'HTTP/1.1'));
  assert.ok(objects.some((o) => o.msg === 'access' && o.method === 'POST' && o.path === '/api/v1/files' && o.status === 422 && o.protocol === 'HTTP/2'));
  has(/^debug scanner \d: 68 bytes, \d+ reads, \d+ ms: result \d+ \S+/);
  // Reloads: the server, and each scanner process, in JSON.
  has('info reload: TLS certificate reloaded');
  has('info scanner 0: new engine (2 signatures)');
  has('info scanner 1: new engine (2 signatures)');
  const failed = objects.find((o) => o.msg.startsWith('reload: keeping the current TLS certificate: '));
  assert.equal(failed.level, 'error');
  const prefix = `reload: keeping the current TLS certificate: cannot load the TLS certificate ${weirdText}/cert.pem: `;
  assert.equal(failed.msg.slice(0, prefix.length), prefix, 'quotes, backslash, newline, control byte and U+FFFD survive');
  assert.match(failed.msg.slice(prefix.length), /^error:[0-9A-F]{8}:PEM routines::no start line$/);
  const fromScanners = objects.filter((o) => o.process === 'scan-worker');
  assert.ok(fromScanners.some((o) => o.level === 'error' && o.msg === 'reload (signal) failed; keeping the current engine'));
  assert.ok(fromScanners.some((o) => o.level === 'error' && o.msg.startsWith(`loading signatures from ${weirdText}/sigs: `)),
    'the scanners escape too');
  assert.ok(fromScanners.some((o) => o.level === 'error' && o.msg === `libclamav: Can't load ${weirdText}/sigs/broken.ndb: Malformed database`),
    'libclamav\'s own messages too, whole');
  assert.equal(pids.size >= 2, true, 'both scanner processes logged');
  // Shutdown.
  has('info received SIGTERM: finishing in-flight requests');
  assert.equal(msgs[msgs.length - 1], 'info stopped');
});
