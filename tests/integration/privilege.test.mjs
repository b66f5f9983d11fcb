// Privilege drop and file modes (docs/SECURITY.md, "Process"): started as root with `user:`, the
// server binds, reads its keys, spawns its scanners, then runs as that account; every scanner runs as
// it too; everything Coffer creates is 0600 (files) / 0700 (directories) and belongs to it (the
// master key, created by `coffer init` as root, stays root's). Root without `user:` is refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Server, EICAR, bigBytes, sha256, writeSignatureDb, freePort, coffer } from './lib/harness.mjs';

const ACCOUNT = 'coffer-test';
const isRoot = process.getuid() === 0;

/** The test's service account: a system account made once (idempotent), else `nobody`. */
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

/** {Uid: [real, effective, saved, fs], Gid: [...], Groups: [...]} of a process. */
function ids(pid) {
  const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (k) => (text.match(new RegExp(`^${k}:[ \\t]*(.*)$`, 'm'))[1].trim().split(/\s+/).filter(Boolean).map(Number));
  return { Uid: field('Uid'), Gid: field('Gid'), Groups: field('Groups'), PPid: field('PPid')[0] };
}

function children(pid) {
  const out = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try { if (ids(e).PPid === pid) out.push(Number(e)); } catch { /* gone */ }
  }
  return out;
}

/** Every entry under dir (dir included): [{path, mode, uid, gid, dir}]. */
function walk(dir) {
  const st = fs.lstatSync(dir);
  const out = [{ path: dir, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, dir: st.isDirectory() }];
  if (st.isDirectory()) for (const e of fs.readdirSync(dir)) out.push(...walk(path.join(dir, e)));
  return out;
}

function assertPrivate(entries, who, label) {
  const wrong = entries.filter((e) => e.mode !== (e.dir ? 0o700 : 0o600) || e.uid !== who.uid || e.gid !== who.gid)
    .map((e) => `${e.path}: ${e.mode.toString(8)} ${e.uid}:${e.gid}`);
  assert.deepEqual(wrong, [], `${label}: every directory 0700, every file 0600, owned by ${who.name} (${who.uid}:${who.gid})`);
}

let who, srv;

before(async () => {
  if (!isRoot) return;
  who = account();
  srv = new Server({ config: { user: who.name, scan: { processes: 2 } } });
  // The account must reach the data directory and the signatures (not list the rest).
  fs.chmodSync(srv.dir, 0o711);
  const sigs = writeSignatureDb(path.join(srv.dir, 'sigs'));
  fs.chmodSync(sigs, 0o755);
  for (const f of fs.readdirSync(sigs)) fs.chmodSync(path.join(sigs, f), 0o644);
  srv.opts.config.scan.database_dir = sigs;
  await srv.start();
});

after(async () => {
  if (srv) { await srv.stop().catch(() => {}); srv.cleanup(); }
});

test('root with user: the server and every scanner run as the account; uploads work; files are private', { skip: !isRoot && 'needs root' }, async () => {
  const pid = srv.proc.pid;
  const server = ids(pid);
  assert.deepEqual(server.Uid, [who.uid, who.uid, who.uid, who.uid], 'server Uid (real, effective, saved, fs)');
  assert.deepEqual(server.Gid, [who.gid, who.gid, who.gid, who.gid], 'server Gid');
  assert.ok(!server.Groups.includes(0), `server keeps no root group: ${server.Groups}`);
  assert.match(srv.stderr, new RegExp(`running as ${who.name} \\(uid ${who.uid}, gid ${who.gid}\\)`));

  const scanners = children(pid);
  assert.equal(scanners.length, 2, 'two scanner processes');
  for (const c of scanners) {
    const s = ids(c);
    assert.deepEqual(s.Uid, [who.uid, who.uid, who.uid, who.uid], `scanner ${c} Uid`);
    assert.deepEqual(s.Gid, [who.gid, who.gid, who.gid, who.gid], `scanner ${c} Gid`);
    assert.deepEqual(s.Groups, [], `scanner ${c} has no supplementary groups`);
  }
  // The scanners' scratch directory (tmpfs) belongs to the account as well.
  const scratch = fs.readdirSync('/dev/shm').filter((d) => d.startsWith(`coffer-scan-${pid}-`));
  assert.equal(scratch.length, 1);
  assertPrivate(walk(path.join('/dev/shm', scratch[0])), who, 'scanner scratch');

  // A round trip through the store, the scanners and back.
  const admin = srv.client((await srv.login()).token);
  const root = (await admin.spaces()).private.root;
  const data = bigBytes(3 * (1 << 20) + 17, 11);
  const up = await admin.upload(root, 'priv.bin', data);
  assert.equal(up.status, 201, up.text());
  const down = await admin.download(up.json().id);
  assert.equal(down.status, 200);
  assert.equal(sha256(down.body), sha256(data));
  const bad = await admin.upload(root, 'eicar.txt', EICAR);
  assert.equal(bad.status, 422, 'the scanners, running as the account, still detect');

  // A scanner killed while the server runs as the account is restarted as the account.
  process.kill(scanners[0], 'SIGKILL');
  let again = [];
  for (const deadline = Date.now() + 120000; Date.now() < deadline && !(again.length === 2 && !again.includes(scanners[0]));) {
    await new Promise((r) => setTimeout(r, 100)); // polling the process table, with a generous deadline
    again = children(pid);
  }
  assert.equal(again.length, 2, 'the killed scanner was restarted');
  for (const c of again) assert.deepEqual(ids(c).Uid, [who.uid, who.uid, who.uid, who.uid], `restarted scanner ${c} Uid`);

  // SIGHUP after the drop reads the certificate as the account: here its directory is root's (0700),
  // so the reload is refused with the reason, the server said so at start, and the old context stays.
  assert.match(srv.stderr, /SIGHUP cannot reload the TLS certificate: .* is not readable by coffer-test|not readable by/);
  srv.proc.kill('SIGHUP');
  await srv.waitForLog(/reload: keeping the current TLS certificate/);
  assert.match(srv.stderr, new RegExp(`reload: keeping the current TLS certificate: .*Permission denied; .* is not readable by ${who.name}`));
  assert.equal((await srv.request('GET', '/healthz', { h1: true })).status, 200);

  await srv.stop();
  assertPrivate(walk(srv.dataDir), who, 'data_dir');
  const log = fs.statSync(path.join(srv.dir, 'access.log'));
  assert.ok(log.size > 0, 'the access log was written');
  assertPrivate(walk(path.join(srv.dir, 'access.log')), who, 'access log');
  // The master key: created by `coffer init` as root, read by the server before it drops; the account
  // cannot read it from disk.
  assertPrivate(walk(path.join(srv.dir, 'master.key')), { name: 'root', uid: 0, gid: 0 }, 'master key');
});

test('root without user: is refused (exit 2); a data directory of another owner is refused (exit 1)', { skip: !isRoot && 'needs root' }, async () => {
  const s = new Server({ config: { user: undefined } });
  try {
    s.port = await freePort();
    s.writeConfig(s.port);
    assert.doesNotMatch(fs.readFileSync(s.configPath, 'utf8'), /^user:/m);
    const r = spawnSync(coffer, ['serve', '-c', s.configPath], { encoding: 'utf8', timeout: 120000, killSignal: 'SIGKILL' });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /coffer\.yaml: user: required when coffer serve is started as root: .*`user: root`/);
  } finally {
    s.cleanup();
  }

  // The data directory of the first test, now root's: refused with the command that fixes it.
  fs.chownSync(srv.dataDir, 0, 0);
  const r = spawnSync(coffer, ['serve', '-c', srv.configPath], { encoding: 'utf8', timeout: 120000, killSignal: 'SIGKILL' });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`data is owned by root, not by ${who.name}.*chown -R ${who.name}: `));
  fs.chownSync(srv.dataDir, who.uid, who.gid);
});

test('not root, user: naming another account: refused (exit 2)', { skip: !isRoot && 'needs root' }, () => {
  const dir = fs.mkdtempSync(path.join(path.dirname(srv.dir), 'priv-'));
  try {
    fs.chmodSync(dir, 0o755);
    const cfg = path.join(dir, 'coffer.yaml');
    fs.writeFileSync(cfg, fs.readFileSync(srv.configPath, 'utf8').replace(/^user: .*$/m, 'user: "root"'), { mode: 0o644 });
    const r = spawnSync('setpriv', [`--reuid=${who.uid}`, `--regid=${who.gid}`, '--clear-groups', coffer, 'serve', '-c', cfg],
      { encoding: 'utf8', timeout: 120000, killSignal: 'SIGKILL' });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`user: root: coffer serve runs as ${who.name} and cannot switch to root`));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
