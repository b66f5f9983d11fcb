// The command line (SPEC §1, §2): exit codes 0/1/2, configuration errors that name file, line and
// key, init that never overwrites, master key checks, and the operator commands (tenant, user).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Server, cli, coffer, certificate, freePort, signatureDb, ADMIN_PASSWORD } from './lib/harness.mjs';

delete process.env.COFFER_USER_PASSWORD;
delete process.env.COFFER_ADMIN_PASSWORD;
delete process.env.COFFER_CONFIG;

const tmpRoot = process.env.COFFER_TEST_TMP || path.join(os.tmpdir(), 'coffer-tests');
fs.mkdirSync(tmpRoot, { recursive: true });
const work = fs.mkdtempSync(path.join(tmpRoot, 'cli-'));
const servers = [];
after(async () => {
  for (const s of servers) {
    await s.stop();
    s.cleanup();
  }
  fs.rmSync(work, { recursive: true, force: true });
});

const SANITIZER = /ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: UndefinedBehaviorSanitizer/;

/** `coffer serve` that is expected to fail at start-up (bounded, so a server that comes up fails the test). */
function serveOnce(configPath) {
  const r = spawnSync(coffer, ['serve', '-c', configPath], { encoding: 'utf8', timeout: 120000, killSignal: 'SIGKILL' }); // a hang guard
  assert.doesNotMatch(r.stderr || '', SANITIZER);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, signal: r.signal };
}

/** A directory with a config file made of the given lines; returns the config's absolute path. */
let nCfg = 0;
function configFile(lines) {
  const dir = path.join(work, `cfg-${++nCfg}`);
  fs.mkdirSync(dir);
  const p = path.join(dir, 'coffer.yaml');
  fs.writeFileSync(p, lines.join('\n') + '\n');
  return p;
}

/** Four valid lines: listen (1), tls (2), data_dir (3), master_key_file (4). */
function baseLines(port = 1) {
  const c = certificate();
  return [
    `listen: ["127.0.0.1:${port}"]`,
    `tls: { certificate: "${c.cert}", key: "${c.key}" }`,
    'data_dir: data',
    'master_key_file: master.key',
  ];
}

/** A complete, valid configuration in a fresh directory (with Argon2 kept cheap). */
async function validConfig() {
  const port = await freePort();
  const p = configFile([...baseLines(port), 'auth: { argon2_memory: 8MiB, argon2_iterations: 1 }', 'log: { access: "off" }',
    `scan: { database_dir: "${signatureDb()}", processes: 2 }`, ...(process.getuid() === 0 ? ['user: root'] : [])]);
  return { path: p, dir: path.dirname(p), port, keyPath: path.join(path.dirname(p), 'master.key'), dataDir: path.join(path.dirname(p), 'data') };
}

function fileState(p) {
  const st = fs.statSync(p);
  return { bytes: fs.readFileSync(p).toString('hex'), mtimeMs: st.mtimeMs, mode: st.mode & 0o777, ino: st.ino };
}

function dirState(dir) {
  return fs.readdirSync(dir).sort().map((f) => {
    const st = fs.statSync(path.join(dir, f));
    return `${f} ${st.size} ${st.mtimeMs}`;
  });
}

// ---- commands and usage -------------------------------------------------------------------------

test('version, no command, unknown command, stray arguments', () => {
  const v = cli(['version']);
  assert.equal(v.status, 0);
  assert.match(v.stdout, /^coffer \d+\.\d+\.\d+ /);
  assert.equal(v.stderr, '');

  const none = cli([]);
  assert.equal(none.status, 2);
  assert.match(none.stderr, /usage: coffer <command>/);
  assert.equal(none.stdout, '');

  const unknown = cli(['frobnicate']);
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /^coffer: unknown command: frobnicate\n/);

  const stray = cli(['serve', 'extra', '-c', '/nonexistent.yaml']);
  assert.equal(stray.status, 2);
  assert.match(stray.stderr, /^coffer: serve takes no arguments/);

  const noFile = cli(['serve', '-c']);
  assert.equal(noFile.status, 2);

  const missing = cli(['serve', '-c', path.join(work, 'does-not-exist.yaml')]);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /^coffer: .*does-not-exist\.yaml: cannot open/);

  const badTenant = cli(['tenant', 'frob', '-c', '/nonexistent.yaml']);
  assert.equal(badTenant.status, 2);
  const badUser = cli(['user', 'add', '--tenant', 'x', '-c', '/nonexistent.yaml']);
  assert.equal(badUser.status, 2);
});

// ---- configuration errors -----------------------------------------------------------------------

/** [what, lines, expected line, key path, expected text after "KEY: " (string: exact; RegExp: match)] */
const configCases = [
  ['unknown top-level key', [...baseLines(), 'bogus: 1'], 5, 'bogus', 'unknown key'],
  ['unknown nested key', [...baseLines(), 'limits:', '  max_file_bytes: 1GiB', '  nope: 3'], 7, 'limits.nope', 'unknown key'],
  ['bad size', [...baseLines(), 'limits: {max_file_bytes: 10XB}'], 5, 'limits.max_file_bytes', 'expected a size like 64MiB'],
  ['bad duration', [...baseLines(), 'shares: {max_expiry: 7 days}'], 5, 'shares.max_expiry', 'expected a duration like 7d'],
  ['duplicate key', [...baseLines(), 'data_dir: other'], 5, 'data_dir', 'duplicate key'],
  ['duplicate nested key', [...baseLines(), 'shares:', '  code_length: 6', '  code_length: 8'], 7, 'shares.code_length', 'duplicate key'],
  ['wrong type (listen: 5)', ['listen: 5', ...baseLines().slice(1)], 1, 'listen', /^expected a list/],
  ['wrong type (limits: 5)', [...baseLines(), 'limits: 5'], 5, 'limits', 'expected a mapping'],
  ['code_length 3', [...baseLines(), 'shares: {code_length: 3}'], 5, 'shares.code_length', 'must be between 4 and 16'],
  ['code_length 17', [...baseLines(), 'shares: {code_length: 17}'], 5, 'shares.code_length', 'must be between 4 and 16'],
  ['unknown on_unscannable', [...baseLines(), 'scan:', '  on_unscannable: maybe'], 6, 'scan.on_unscannable', 'expected one of: reject, allow'],
  ['threads not a number', [...baseLines(), 'threads: many'], 5, 'threads', 'expected a whole number'],
];

test('configuration errors: exit 2 and `coffer: FILE:LINE: KEY: what`', () => {
  for (const [what, lines, line, key, text] of configCases) {
    const p = configFile(lines);
    const r = serveOnce(p);
    assert.equal(r.status, 2, `${what}: exit code (${r.stderr})`);
    assert.equal(r.stdout, '', what);
    const prefix = `coffer: ${p}:${line}: ${key}: `;
    assert.ok(r.stderr.startsWith(prefix), `${what}: expected "${prefix}…", got: ${r.stderr}`);
    const rest = r.stderr.slice(prefix.length);
    if (typeof text === 'string') assert.equal(rest, `${text}\n`, what);
    else assert.match(rest, text, what);
    assert.equal(r.stderr.split('\n').length, 2, `${what}: one line`);
    assert.ok(!fs.existsSync(path.join(path.dirname(p), 'data')), `${what}: nothing created`);
    assert.ok(!fs.existsSync(path.join(path.dirname(p), 'master.key')), `${what}: nothing created`);
  }
  // The same errors stop every command, not only serve.
  const p = configFile([...baseLines(), 'bogus: 1']);
  for (const args of [['init'], ['tenant', 'list'], ['user', 'add', '--tenant', 'default', '--username', 'x']]) {
    const r = cli([...args, '-c', p]);
    assert.equal(r.status, 2, args.join(' '));
    assert.equal(r.stderr, `coffer: ${p}:5: bogus: unknown key\n`);
  }
  assert.ok(!fs.existsSync(path.join(path.dirname(p), 'data')));
});

test('invalid YAML: exit 2 and the line', () => {
  const p = configFile([...baseLines(), 'foo: a: b']);
  const r = serveOnce(p);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, new RegExp(`^coffer: ${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:5: \\S.*\\n$`));
  const q = configFile([...baseLines(), '  bad: indentation']);
  const r2 = serveOnce(q);
  assert.equal(r2.status, 2, r2.stderr);
  assert.ok(r2.stderr.startsWith(`coffer: ${q}:5: `), r2.stderr);
});

test('missing data_dir: exit 2, the message names data_dir', () => {
  const p = configFile(baseLines().filter((l) => !l.startsWith('data_dir')));
  const r = serveOnce(p);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, new RegExp(`^coffer: ${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(:\\d+)?: data_dir: \\S`));
});

test('cross-key errors: exit 2, the message names the key', () => {
  const p = configFile([...baseLines(), 'shares: {default_expiry: 8d, max_expiry: 7d}']);
  const r = serveOnce(p);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /^coffer: \S+coffer\.yaml(:\d+)?: shares\.default_expiry: must not exceed shares\.max_expiry\n$/);

  const q = configFile([...baseLines().slice(0, 3), 'master_key_file: data/master.key']);
  const r2 = serveOnce(q);
  assert.equal(r2.status, 2, r2.stderr);
  assert.match(r2.stderr, /^coffer: \S+coffer\.yaml(:\d+)?: master_key_file: must be outside data_dir/);
});

test('cross-key errors also give the line of the offending key (SPEC §1: what and where)', () => {
  const p = configFile([...baseLines(), 'shares: {default_expiry: 8d, max_expiry: 7d}']);
  const r = serveOnce(p);
  assert.equal(r.status, 2);
  assert.ok(r.stderr.startsWith(`coffer: ${p}:5: shares.default_expiry: `), `expected the line of default_expiry: ${r.stderr}`);
  const q = configFile([...baseLines().slice(0, 3), 'master_key_file: data/master.key']);
  const r2 = serveOnce(q);
  assert.equal(r2.status, 2);
  assert.ok(r2.stderr.startsWith(`coffer: ${q}:4: master_key_file: `), `expected the line of master_key_file: ${r2.stderr}`);
});

test('master_key_file inside data_dir is refused however the paths are spelled', () => {
  const variants = [
    ['data', 'data/master.key'],
    ['data/', 'data/master.key'],
    ['data', './data/master.key'],
    ['./data', 'data/master.key'],
    ['data', 'data/../data/master.key'],
    ['data', 'data'],
  ];
  const accepted = [];
  for (const [dataDir, key] of variants) {
    const p = configFile([...baseLines().slice(0, 2), `data_dir: "${dataDir}"`, `master_key_file: "${key}"`]);
    const r = serveOnce(p);
    if (r.status !== 2 || !/master_key_file: must be outside data_dir/.test(r.stderr)) {
      accepted.push(`data_dir: ${dataDir}, master_key_file: ${key} → exit ${r.status}: ${r.stderr.trim()}`);
    }
  }
  assert.deepEqual(accepted, [], 'every spelling of a key inside the data dir must be a configuration error (exit 2)');
});

// ---- init and the master key --------------------------------------------------------------------

test('init creates a 0600 key; a second init exits 1 and changes nothing', async () => {
  const c = await validConfig();
  const r = cli(['init', '-c', c.path], { COFFER_ADMIN_PASSWORD: ADMIN_PASSWORD });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /created master key/);
  assert.doesNotMatch(r.stdout, /password for admin/, 'a password from the environment is not printed');
  assert.ok(!r.stdout.includes(ADMIN_PASSWORD));
  const key0 = fileState(c.keyPath);
  assert.equal(key0.mode, 0o600);
  assert.equal(fs.statSync(c.keyPath).size, 32);
  const data0 = dirState(c.dataDir);

  await new Promise((res) => setTimeout(res, 20)); // so that a rewrite would show in the mtime
  const again = cli(['init', '-c', c.path], { COFFER_ADMIN_PASSWORD: 'other-password-2' });
  assert.equal(again.status, 1, again.stderr);
  assert.match(again.stderr, /already initialised/);
  assert.equal(again.stdout, '');
  assert.deepEqual(fileState(c.keyPath), key0, 'the master key is untouched');
  assert.deepEqual(dirState(c.dataDir), data0, 'the data directory is untouched');

  // The admin password is still the first one.
  const s = new Server({ dir: c.dir });
  servers.push(s);
  await s.start();
  await s.login('admin', ADMIN_PASSWORD);
  const bad = await s.request('POST', '/api/v1/auth/login', { body: { username: 'admin', password: 'other-password-2' } });
  assert.equal(bad.status, 401);
  await s.stop();
  assert.deepEqual(fileState(c.keyPath), key0);
});

test('init never overwrites an existing master key: it uses it', async () => {
  const s = new Server();
  servers.push(s);
  const key = crypto.randomBytes(32);
  const keyPath = path.join(s.dir, 'master.key');
  fs.writeFileSync(keyPath, key, { mode: 0o600 });
  fs.chmodSync(keyPath, 0o600);
  const before = fileState(keyPath);
  s.port = await freePort();
  s.writeConfig(s.port);
  const r = cli(['init', '-c', s.configPath], { COFFER_ADMIN_PASSWORD: ADMIN_PASSWORD });
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stdout, /created master key/);
  assert.deepEqual(fileState(keyPath), before, 'the pre-existing key is untouched');
  await s.start();
  const login = await s.login();
  assert.equal(typeof login.token, 'string');
  await s.stop();
  assert.deepEqual(fileState(keyPath), before);

  // The store really is bound to that key: another key does not open it.
  fs.writeFileSync(keyPath, crypto.randomBytes(32));
  const wrong = serveOnce(s.configPath);
  assert.equal(wrong.status, 1, wrong.stderr);
  assert.match(wrong.stderr, /does not open/);
  fs.writeFileSync(keyPath, key);
});

test('master key checks at serve: mode 0644, wrong key, wrong length, uninitialised dir', async () => {
  const c = await validConfig();
  assert.equal(cli(['init', '-c', c.path], { COFFER_ADMIN_PASSWORD: ADMIN_PASSWORD }).status, 0);
  const key = fs.readFileSync(c.keyPath);

  fs.chmodSync(c.keyPath, 0o644);
  const loose = serveOnce(c.path);
  assert.equal(loose.status, 1, loose.stderr);
  assert.match(loose.stderr, /chmod/);
  const looseCli = cli(['tenant', 'list', '-c', c.path]);
  assert.equal(looseCli.status, 1);
  assert.match(looseCli.stderr, /chmod/);
  fs.chmodSync(c.keyPath, 0o600);

  fs.writeFileSync(c.keyPath, crypto.randomBytes(32));
  const wrong = serveOnce(c.path);
  assert.equal(wrong.status, 1, wrong.stderr);
  assert.match(wrong.stderr, /does not open/);
  const wrongCli = cli(['tenant', 'list', '-c', c.path]);
  assert.equal(wrongCli.status, 1);
  assert.match(wrongCli.stderr, /does not open/);

  fs.writeFileSync(c.keyPath, crypto.randomBytes(31));
  const short = serveOnce(c.path);
  assert.equal(short.status, 1, short.stderr);
  assert.match(short.stderr, /32 bytes/);

  fs.writeFileSync(c.keyPath, key);
  const list = cli(['tenant', 'list', '-c', c.path]);
  assert.equal(list.status, 0, list.stderr);

  // A data dir that was never initialised (with a valid key next to it).
  const u = await validConfig();
  fs.writeFileSync(u.keyPath, crypto.randomBytes(32), { mode: 0o600 });
  const un = serveOnce(u.path);
  assert.equal(un.status, 1, un.stderr);
  assert.match(un.stderr, /not initialised/);
  const unCli = cli(['tenant', 'list', '-c', u.path]);
  assert.equal(unCli.status, 1);
  assert.match(unCli.stderr, /not initialised/);
});

// ---- tenants and users --------------------------------------------------------------------------

test('tenant create/list, user add, login with the new accounts, store held by a running server', async () => {
  const s = new Server();
  servers.push(s);
  s.port = await freePort();
  s.writeConfig(s.port);
  const c = s.configPath;
  assert.equal(cli(['init', '-c', c], { COFFER_ADMIN_PASSWORD: ADMIN_PASSWORD }).status, 0);

  const t = cli(['tenant', 'create', 'acme', '-c', c]);
  assert.equal(t.status, 0, t.stderr);
  assert.match(t.stdout, /^created tenant acme \(id [0-9a-f]{32}\)\n$/);
  const list = cli(['tenant', 'list', '-c', c]);
  assert.equal(list.status, 0, list.stderr);
  const names = list.stdout.trim().split('\n').map((l) => l.split('\t')[0]).sort();
  assert.deepEqual(names, ['acme', 'default']);

  const dup = cli(['tenant', 'create', 'acme', '-c', c]);
  assert.equal(dup.status, 1, dup.stderr);
  assert.match(dup.stderr, /already exists/);
  const badName = cli(['tenant', 'create', 'Bad_Name', '-c', c]);
  assert.equal(badName.status, 2, badName.stderr);
  assert.match(badName.stderr, /Bad_Name/);
  assert.deepEqual(cli(['tenant', 'list', '-c', c]).stdout.trim().split('\n').map((l) => l.split('\t')[0]).sort(), ['acme', 'default']);

  const bob = cli(['user', 'add', '--tenant', 'acme', '--username', 'bob', '-c', c]);
  assert.equal(bob.status, 0, bob.stderr);
  const m = /^password for bob \(shown once\): (\S+)$/m.exec(bob.stdout);
  assert.ok(m, `a generated password is printed: ${bob.stdout}`);
  const bobPw = m[1];
  assert.ok(bobPw.length >= 16, 'a generated password is long');
  assert.equal(bob.stdout.split(bobPw).length - 1, 1, 'the password is printed once');

  const carol = cli(['user', 'add', '--tenant', 'acme', '--username', 'carol', '--role', 'admin', '-c', c], { COFFER_USER_PASSWORD: 'carol-password-1' });
  assert.equal(carol.status, 0, carol.stderr);
  assert.doesNotMatch(carol.stdout, /password/);
  assert.ok(!carol.stdout.includes('carol-password-1'));

  const BOB = cli(['user', 'add', '--tenant', 'acme', '--username', 'BOB', '-c', c], { COFFER_USER_PASSWORD: 'another-password-1' });
  assert.equal(BOB.status, 1, `usernames are case-insensitive: ${BOB.stdout}${BOB.stderr}`);
  assert.match(BOB.stderr, /already exists/);
  const wizard = cli(['user', 'add', '--tenant', 'acme', '--username', 'dave', '--role', 'wizard', '-c', c]);
  assert.equal(wizard.status, 2, wizard.stderr);
  assert.match(wizard.stderr, /--role/);
  const noTenant = cli(['user', 'add', '--tenant', 'nosuch', '--username', 'erin', '-c', c], { COFFER_USER_PASSWORD: 'erin-password-1' });
  assert.equal(noTenant.status, 1, noTenant.stderr);
  assert.match(noTenant.stderr, /nosuch/);
  const badUser = cli(['user', 'add', '--tenant', 'acme', '--username', 'has space', '-c', c]);
  assert.equal(badUser.status, 2, badUser.stderr);
  const shortPw = cli(['user', 'add', '--tenant', 'acme', '--username', 'frank', '-c', c], { COFFER_USER_PASSWORD: 'x' });
  assert.equal(shortPw.status, 2, shortPw.stderr);
  assert.match(shortPw.stderr, /COFFER_USER_PASSWORD/);

  await s.start();
  // While the server holds the store, operator commands go through its control socket (ctl.c): same
  // output, same exit codes, the server's store.
  const tl = cli(['tenant', 'list', '-c', c]);
  assert.equal(tl.status, 0, tl.stderr);
  assert.deepEqual(tl.stdout.trim().split('\n').map((l) => l.split('\t')[0]).sort(), ['acme', 'default']);
  const other = cli(['tenant', 'create', 'other', '-c', c]);
  assert.equal(other.status, 0, other.stderr);
  assert.match(other.stdout, /^created tenant other \(id [0-9a-f]{32}\)\n$/);
  const again = cli(['ctl', 'tenant', 'create', 'other', '-c', c]);
  assert.equal(again.status, 1);
  assert.equal(again.stderr, 'coffer: tenant other already exists\n');
  const gina = cli(['user', 'add', '--tenant', 'acme', '--username', 'gina', '-c', c], { COFFER_USER_PASSWORD: 'gina-password-1' });
  assert.equal(gina.status, 0, gina.stderr);
  assert.match(gina.stdout, /^created user gina \(member, id [0-9a-f]{32}\)\n$/); // the password stays the caller's
  assert.equal((await s.login('gina', 'gina-password-1', 'acme')).user.username, 'gina');
  const shortOnline = cli(['user', 'add', '--tenant', 'acme', '--username', 'hank', '-c', c], { COFFER_USER_PASSWORD: 'x' });
  assert.equal(shortOnline.status, 2, shortOnline.stderr);
  const init = cli(['init', '-c', c], { COFFER_ADMIN_PASSWORD: ADMIN_PASSWORD });
  assert.equal(init.status, 1);

  const lb = await s.login('bob', bobPw, 'acme');
  assert.equal(lb.user.username, 'bob');
  assert.equal(lb.user.role, 'member');
  const me = await s.request('GET', '/api/v1/me', { token: lb.token });
  assert.equal(me.status, 200);
  assert.equal(me.json().tenant.name, 'acme');
  const lc = await s.login('carol', 'carol-password-1', 'acme');
  assert.equal(lc.user.role, 'admin');
  // bob exists only in acme; the admin of default does not exist in acme.
  for (const body of [{ username: 'bob', password: bobPw }, { tenant: 'default', username: 'bob', password: bobPw },
    { tenant: 'acme', username: 'admin', password: ADMIN_PASSWORD }, { tenant: 'acme', username: 'bob', password: 'another-password-1' }]) {
    const r = await s.request('POST', '/api/v1/auth/login', { body });
    assert.equal(r.status, 401, JSON.stringify(body));
    assert.equal(r.json().error, 'unauthorized');
  }
  await s.stop();
  // Once the server is gone, the store is free again.
  const after = cli(['tenant', 'list', '-c', c]);
  assert.equal(after.status, 0, after.stderr);
});
