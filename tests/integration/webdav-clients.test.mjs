// webdav-clients.test.mjs: real WebDAV clients against /dav/ over TLS (issue 22 "Done when",
// docs/WEBDAV.md "Client set-up" and "PUT size and memory"):
// - rclone (webdav remote, vendor other, configured only through RCLONE_CONFIG_* variables) copies a
//   tree of 200 files (nested folders, UTF-8 names, 0 bytes to a few MiB, one of 300 MB from a
//   seeded generator) up to /dav/private/ and back down; `rclone check` is clean every way and the
//   300 MB file comes back with the same SHA-256;
// - cadaver, scripted on its stdin (a pseudo-terminal: it asks about the self-signed certificate on
//   a terminal only): lock, put, discover, unlock, get, same bytes (needs class 2 in OPTIONS);
// - davfs2: mount -t davfs (root and /dev/fuse), list, write, read back, umount (always, in a finally);
// - dav.max_put_bytes: 413 with a text body naming the limit, before the body is read when its
//   Content-Length says so (HTTP/1.1 and h2o's own cap), a chunked PUT cut once past the limit, an
//   HTTP/2 stream reset; limits.max_buffered_body_bytes: 503 + Retry-After, nothing stored, a retry
//   succeeds (PUT bodies, and COPY's read buffers); Basic never answered over cleartext (and, in fault builds, 403 tls_required on a
//   connection the TLS check says is cleartext).
//
// Servers: `big` (bodies and PUTs up to 320 MiB: the 300 MB file) and `tight` (dav.max_put_bytes
// 1 MiB within 4 MiB bodies, a 64 KiB body budget).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { Server, bytes, sha256, certificate, withDeadline, WAIT_DEADLINE_MS } from './lib/harness.mjs';

const MiB = 1 << 20;
const BIG = 300 * 1000 * 1000; // the 300 MB file
const PUT_MAX = MiB;            // tight: dav.max_put_bytes
const BODY_MAX = 4 * MiB;       // tight: limits.max_request_body_bytes

const big = new Server({
  config: {
    limits: { max_request_body_bytes: '320MiB', max_file_bytes: '1GiB', max_buffered_body_bytes: '1GiB', request_timeout: '900s' },
    dav: { max_put_bytes: '320MiB' },
    uploads: { max_pending_bytes: '2GiB' },
    auth: { max_failures_per_account: 1000, max_failures_per_ip: 1000 },
  },
});
const tight = new Server({
  config: {
    limits: { max_request_body_bytes: '4MiB', max_buffered_body_bytes: '64KiB' },
    dav: { max_put_bytes: '1MiB' },
    auth: { max_failures_per_account: 1000, max_failures_per_ip: 1000 },
  },
});
let bigPw, tightPw;

const basic = (user, pw) => ({ authorization: `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}` });

async function appPassword(server) {
  const { token } = await server.login();
  const r = await server.request('POST', '/api/v1/me/app-passwords', { token, body: { name: 'clients' } });
  assert.equal(r.status, 201, r.text());
  return r.json().password;
}

before(async () => {
  await Promise.all([big.start(), tight.start()]);
  [bigPw, tightPw] = await Promise.all([appPassword(big), appPassword(tight)]);
});

after(async () => {
  try {
    await Promise.all([big.stop(), tight.stop()]);
  } finally {
    big.cleanup();
    tight.cleanup();
  }
});

/**
 * Runs a command without blocking this process (the servers' stderr pipes must keep draining):
 * resolves {code, signal, stdout, stderr, ms}. A generous deadline kills it (SIGKILL, by its pid)
 * and rejects, so that a hung client fails the test with its name instead of hanging the suite.
 */
function run(cmd, args, { env = {}, input, cwd, timeout = 1800000 } = {}) {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env: { ...process.env, ...env }, cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const out = [], err = [];
    p.stdout.on('data', (d) => out.push(d));
    p.stderr.on('data', (d) => err.push(d));
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')}: still running after ${timeout} ms\n${Buffer.concat(err)}`));
    }, timeout);
    p.on('error', (e) => { clearTimeout(timer); reject(e); });
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), ms: Date.now() - t0 });
    });
    p.stdin.on('error', () => {});
    p.stdin.end(input);
  });
}

/**
 * Drives an interactive program: for each [expected, line] step, waits until the output since the
 * previous line ends with `expected` (its prompt), then writes line. Resolves {code, out} once it
 * exits; rejects (after killing it) if a prompt does not come within the deadline.
 */
function dialog(cmd, args, steps, { env = {}, cwd, timeout = 300000 } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env: { ...process.env, ...env }, cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '', from = 0, step = 0;
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`${cmd}: no prompt ${JSON.stringify(steps[step] && steps[step][0])} after ${timeout} ms:\n${out}`));
    }, timeout);
    const onData = (d) => {
      out += d.toString();
      while (step < steps.length && out.slice(from).trimEnd().endsWith(steps[step][0].trimEnd())) {
        p.stdin.write(`${steps[step][1]}\n`);
        from = out.length;
        step++;
      }
    };
    p.stdout.on('data', onData);
    p.stderr.on('data', onData);
    p.stdin.on('error', () => {});
    p.on('error', (e) => { clearTimeout(timer); reject(e); });
    p.on('close', (code) => { clearTimeout(timer); resolve({ code, out }); });
  });
}

const have = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

/** The DAV: header of OPTIONS on the big server (class 2 once LOCK is there). */
async function davClasses() {
  const r = await big.request('OPTIONS', '/dav/private/', { h1: true, headers: basic('admin', bigPw) });
  assert.equal(r.status, 200);
  return String(r.headers.dav || '').split(',').map((x) => x.trim());
}

// ---- rclone -------------------------------------------------------------------------------------

/** Writes the 300 MB file from a seeded AES-256-CTR keystream (not zeros: the scan reads real bytes),
 * 8 MiB at a time; returns its SHA-256. */
function writeBigFile(file, seed) {
  const key = crypto.createHash('sha256').update(`webdav-clients:${seed}`).digest();
  const c = crypto.createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const h = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'w', 0o600);
  const zero = Buffer.alloc(8 * MiB);
  try {
    for (let left = BIG; left > 0;) {
      const n = Math.min(left, zero.length);
      const b = c.update(zero.subarray(0, n));
      h.update(b);
      fs.writeSync(fd, b);
      left -= n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

// Names from several scripts (precomposed, as a Linux file system keeps them), spaces and some
// punctuation.
const NAMES = ['café', 'Ωmega', '日本語のファイル', 'Привет мир', 'naïve résumé', 'ü+ö=ä', 'emoji 🙂', 'a b (1)', "it's", 'x_y-z.1'];

/** The local tree: 199 files in nested folders (sizes 0 B … 2.4 MB) plus the 300 MB one. */
function writeTree(root) {
  let n = 0;
  for (let i = 0; i < 199; i++) {
    const dir = path.join(root, `dir ${i % 5}`, NAMES[i % NAMES.length], i % 3 === 0 ? `sub ${i % 4}` : '');
    fs.mkdirSync(dir, { recursive: true });
    const size = i % 25 === 0 ? MiB + i * 7919 : i % 7 === 0 ? 0 : (i * 4099) % (64 * 1024);
    fs.writeFileSync(path.join(dir, `${NAMES[(i * 3) % NAMES.length]} ${i}.bin`), bytes(size, 1000 + i));
    n++;
  }
  fs.mkdirSync(path.join(root, 'große Dateien'), { recursive: true });
  const sha = writeBigFile(path.join(root, 'große Dateien', 'archiv 300MB.bin'), 7);
  return { files: n + 1, sha };
}

test('rclone: 200 files with a 300 MB one up to /dav/private/ and back; rclone check clean every way', { timeout: 3600000 }, async (t) => {
  assert.ok(have('rclone'), 'rclone is installed by scripts/deps.sh test');
  const root = fs.mkdtempSync(path.join(big.dir, 'rclone-'));
  const src = path.join(root, 'src'), down = path.join(root, 'down');
  const { files, sha } = writeTree(src);
  assert.equal(files, 200);
  const obscured = spawnSync('rclone', ['obscure', '-'], { input: bigPw, env: { ...process.env, HOME: root } });
  assert.equal(obscured.status, 0, String(obscured.stderr));
  const env = {
    HOME: root,
    RCLONE_CONFIG: path.join(root, 'rclone.conf'), // absent: the remote lives in the variables below
    RCLONE_CONFIG_COFFER_TYPE: 'webdav',
    RCLONE_CONFIG_COFFER_URL: `${big.url}/dav/private`,
    RCLONE_CONFIG_COFFER_VENDOR: 'other',
    RCLONE_CONFIG_COFFER_USER: 'admin',
    RCLONE_CONFIG_COFFER_PASS: String(obscured.stdout).trim(),
  };
  // The server's certificate is self-signed; --retries 1 so that a failure shows instead of being
  // retried away (low-level retries stay: they are what rclone does on a dropped connection).
  const flags = ['--no-check-certificate', '--retries', '1', '--transfers', '4', '--checkers', '4', '--log-level', 'NOTICE'];
  const up = await run('rclone', ['copy', src, 'coffer:rclone tree', ...flags], { env });
  assert.equal(up.code, 0, `rclone copy up: ${up.stderr}`);
  const dn = await run('rclone', ['copy', 'coffer:rclone tree', down, ...flags], { env });
  assert.equal(dn.code, 0, `rclone copy down: ${dn.stderr}`);
  // WebDAV (vendor other) has no common hash with the local disk: rclone compares sizes and names
  // against the remote; the two local trees compare by MD5, so the bytes came back whole.
  const checks = [[src, 'coffer:rclone tree'], ['coffer:rclone tree', down], [src, down]];
  const times = { up: up.ms, down: dn.ms };
  for (const [a, b] of checks) {
    const c = await run('rclone', ['check', a, b, ...flags], { env });
    assert.equal(c.code, 0, `rclone check ${a} ${b}: ${c.stderr}`);
    assert.match(c.stderr, /0 differences found/);
    assert.match(c.stderr, new RegExp(`${files} matching files`));
    // The one ERROR line rclone logs against WebDAV is the absence of a common hash (size only).
    assert.deepEqual(c.stderr.split('\n').filter((l) => /ERROR/.test(l) && !/No common hash found/.test(l)), [], c.stderr);
    times[`check ${a === src ? 'src' : 'remote'}-${b === down ? 'down' : 'remote'}`] = c.ms;
  }
  const back = crypto.createHash('sha256');
  for await (const b of fs.createReadStream(path.join(down, 'große Dateien', 'archiv 300MB.bin'))) back.update(b);
  assert.equal(back.digest('hex'), sha, 'the 300 MB file came back byte for byte');
  // The server's peak resident memory so far (the 300 MB body is held whole while it is received,
  // hashed, sealed and scanned): reported, not asserted.
  const hwm = fs.readFileSync(`/proc/${big.proc.pid}/status`, 'utf8').match(/VmHWM:\s+(\d+) kB/);
  t.diagnostic(`rclone times (ms): ${JSON.stringify(times)}; server peak RSS ${hwm ? Math.round(hwm[1] / 1024) : '?'} MiB`);
  // What the server holds, through /dav/: the big file's size.
  const r = await big.request('PROPFIND', `/dav/private/rclone%20tree/gro%C3%9Fe%20Dateien/`, { h1: true, headers: { ...basic('admin', bigPw), depth: '1' } });
  assert.equal(r.status, 207);
  assert.match(r.text(), /<D:getcontentlength>300000000<\/D:getcontentlength>/);
  fs.rmSync(root, { recursive: true, force: true });
});

test('rclone: a file over dav.max_put_bytes fails at once, showing the 413 text', { timeout: 600000 }, async () => {
  assert.ok(have('rclone'), 'rclone is installed by scripts/deps.sh test');
  const root = fs.mkdtempSync(path.join(tight.dir, 'rclone-'));
  fs.writeFileSync(path.join(root, 'too big.bin'), bytes(PUT_MAX + 4096, 20));
  const obscured = spawnSync('rclone', ['obscure', '-'], { input: tightPw, env: { ...process.env, HOME: root } });
  const env = {
    HOME: root,
    RCLONE_CONFIG: path.join(root, 'rclone.conf'),
    RCLONE_CONFIG_TIGHT_TYPE: 'webdav',
    RCLONE_CONFIG_TIGHT_URL: `${tight.url}/dav/private`,
    RCLONE_CONFIG_TIGHT_VENDOR: 'other',
    RCLONE_CONFIG_TIGHT_USER: 'admin',
    RCLONE_CONFIG_TIGHT_PASS: String(obscured.stdout).trim(),
  };
  // HTTP/1.1 (--disable-http2): the answer is the 413 whether the sweep or the pipeline gives it.
  const r = await run('rclone', ['copyto', path.join(root, 'too big.bin'), 'tight:too big.bin', '--no-check-certificate',
    '--disable-http2', '--retries', '1'], { env });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /Failed to copy: This server accepts a WebDAV PUT of at most 1048576 bytes \(dav\.max_put_bytes\)/);
  assert.match(r.stderr, /413 Payload Too Large/);
  assert.equal(await propfindStatus('/dav/private/too%20big.bin'), 404);
  fs.rmSync(root, { recursive: true, force: true });
});

// ---- cadaver ------------------------------------------------------------------------------------

test('cadaver: a scripted session locks, puts, unlocks and gets the same bytes', { timeout: 600000 }, async (t) => {
  assert.ok(have('cadaver'), 'cadaver is installed by scripts/deps.sh test');
  const classes = await davClasses();
  if (!classes.includes('2')) {
    // The only reason to skip: the server does not advertise class 2 (LOCK), which this session needs.
    t.skip(`the server's OPTIONS says DAV: ${classes.join(', ')} (no class 2: LOCK/UNLOCK not built yet)`);
    return;
  }
  const home = fs.mkdtempSync(path.join(big.dir, 'cadaver-'));
  fs.writeFileSync(path.join(home, '.netrc'), `machine 127.0.0.1 login admin password ${bigPw}\n`, { mode: 0o600 });
  const local = path.join(home, 'local.bin'), got = path.join(home, 'got.bin');
  const data = bytes(200 * 1024 + 3, 42);
  fs.writeFileSync(local, data);
  assert.equal((await big.request('MKCOL', '/dav/private/cadaver/', { h1: true, headers: basic('admin', bigPw) })).status, 201);
  // cadaver (neon over GnuTLS) trusts only the system's CAs and asks about any other certificate,
  // on a terminal only (and drops what was typed ahead): it runs on a pseudo-terminal (script(1)),
  // and each line is written once cadaver prompts for it.
  const prompt = 'dav:/dav/private/cadaver/> ';
  const steps = [
    ['dav:!> ', `open ${big.url}/dav/private/cadaver/`],
    ['(y/n) ', 'y'],
    [prompt, 'lock notes.bin'],
    [prompt, 'put local.bin notes.bin'],
    [prompt, 'discover notes.bin'],
    [prompt, 'unlock notes.bin'],
    [prompt, 'get notes.bin got.bin'],
    [prompt, 'quit'],
  ];
  const c = await dialog('script', ['-qec', 'cadaver', '/dev/null'], steps, { env: { HOME: home, TERM: 'dumb' }, cwd: home });
  const out = c.out;
  assert.equal(c.code, 0, out);
  assert.match(out, /Locking `notes\.bin': succeeded/, out);
  assert.match(out, /Uploading local\.bin to `[^']*notes\.bin':[\s\S]*?succeeded/, out);
  assert.match(out, /Unlocking `notes\.bin': succeeded/, out);
  assert.match(out, /Downloading `[^']*notes\.bin' to got\.bin:[\s\S]*?succeeded/, out);
  assert.doesNotMatch(out, /failed/i, out);
  assert.ok(fs.readFileSync(got).equals(data), 'cadaver got back the bytes it put');
  // Unlocked: another client may write it without a token.
  const w = await big.request('PUT', '/dav/private/cadaver/notes.bin', { h1: true, headers: basic('admin', bigPw), body: Buffer.from('after') });
  assert.equal(w.status, 204, w.text());
});

// ---- davfs2 -------------------------------------------------------------------------------------

/** Why this machine cannot mount davfs2, or null if it can (checked, not assumed). */
function davfsUnavailable() {
  if (!have('mount.davfs')) return 'mount.davfs is not installed (scripts/deps.sh test installs davfs2)';
  if (process.getuid() !== 0) return 'not root: mount -t davfs from a test needs root (or an fstab entry with user)';
  if (!fs.existsSync('/dev/fuse')) return 'no /dev/fuse on this machine';
  try {
    fs.closeSync(fs.openSync('/dev/fuse', 'r+'));
  } catch (e) {
    return `/dev/fuse cannot be opened: ${e.code}`;
  }
  return null;
}

const mounted = (dir) => fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === dir);

test('davfs2: mount, list, write, read back, umount (no mount left behind)', { timeout: 600000 }, async (t) => {
  const why = davfsUnavailable();
  if (why) {
    t.skip(why);
    return;
  }
  const classes = await davClasses();
  // The daemon runs as the davfs2 user (davfs2.conf dav_user): it must be able to enter the
  // folders above its cache (execute only; nothing in them becomes readable).
  const root = fs.mkdtempSync(path.join(big.dir, 'davfs-'));
  for (const d of [path.dirname(big.dir), big.dir, root]) fs.chmodSync(d, fs.statSync(d).mode | 0o711);
  const mnt = path.join(root, 'mnt'), cache = path.join(root, 'cache');
  fs.mkdirSync(mnt);
  // As /var/cache/davfs2: root's, group davfs2 (the daemon's user) may write; each mount gets a
  // private folder in it.
  const gid = Number(spawnSync('getent', ['group', 'davfs2'], { encoding: 'utf8' }).stdout.split(':')[2]);
  assert.ok(Number.isInteger(gid), 'the davfs2 group exists (the davfs2 package creates it)');
  fs.mkdirSync(cache);
  fs.chownSync(cache, 0, gid);
  fs.chmodSync(cache, 0o775);
  const url = `${big.url}/dav/private/davfs/`;
  fs.writeFileSync(path.join(root, 'secrets'), `${url} admin ${bigPw}\n`, { mode: 0o600 });
  fs.copyFileSync(certificate().cert, path.join(root, 'server.pem'));
  fs.writeFileSync(path.join(root, 'davfs2.conf'), [
    `cache_dir ${cache}`,
    `secrets ${path.join(root, 'secrets')}`,
    `trust_server_cert ${path.join(root, 'server.pem')}`,
    'buf_size 64', // kernels ≥ 6.16: without it `ls` fails with "Invalid argument" (davfs2 issue 22)
    `use_locks ${classes.includes('2') ? 1 : 0}`,
    'ask_auth 0',
    'delay_upload 0', // write back at close, so that the server has the file when the test reads it
    '',
  ].join('\n'));
  assert.equal((await big.request('MKCOL', '/dav/private/davfs/', { h1: true, headers: basic('admin', bigPw) })).status, 201);
  const seeded = bytes(5000, 77);
  assert.equal((await big.request('PUT', '/dav/private/davfs/seeded.bin', { h1: true, headers: basic('admin', bigPw), body: seeded })).status, 201);
  const m = await run('mount', ['-t', 'davfs', url, mnt, '-o', `conf=${path.join(root, 'davfs2.conf')}`], { timeout: 120000 });
  try {
    if (m.code !== 0 && /fuse|coda|No such device|not permitted|Permission denied/i.test(m.stderr) && !mounted(mnt)) {
      t.skip(`mount.davfs refused on this machine: ${m.stderr.trim()}`);
      return;
    }
    assert.equal(m.code, 0, `mount -t davfs: ${m.stderr}`);
    assert.ok(mounted(mnt), 'the mount is in /proc/self/mounts');
    const names = fs.readdirSync(mnt).filter((n) => n !== 'lost+found').sort();
    assert.deepEqual(names, ['seeded.bin']);
    assert.ok(fs.readFileSync(path.join(mnt, 'seeded.bin')).equals(seeded), 'read through the mount');
    const written = bytes(300 * 1024 + 11, 78);
    fs.writeFileSync(path.join(mnt, 'written é.bin'), written);
    assert.ok(fs.readFileSync(path.join(mnt, 'written é.bin')).equals(written));
    assert.deepEqual(fs.readdirSync(mnt).filter((n) => n !== 'lost+found').sort(), ['seeded.bin', 'written é.bin']);
  } finally {
    if (mounted(mnt)) {
      // umount waits for davfs2 to upload what it still holds, then the daemon exits.
      const u = await run('umount', [mnt], { timeout: 300000 });
      t.diagnostic(`davfs2: mount ${m.ms} ms, umount ${u.ms} ms (exit ${u.code})`);
      if (u.code !== 0 || mounted(mnt)) await run('umount', ['-l', mnt], { timeout: 60000 });
    }
    assert.ok(!mounted(mnt), 'no davfs2 mount left behind');
  }
  // After umount: the server has what was written through the mount, byte for byte.
  const g = await big.request('GET', '/dav/private/davfs/written%20%C3%A9.bin', { h1: true, headers: basic('admin', bigPw) });
  assert.equal(g.status, 200);
  assert.equal(sha256(g.body), sha256(bytes(300 * 1024 + 11, 78)));
});

// ---- dav.max_put_bytes, the body budget, TLS only ----------------------------------------------

const TEXT413 = new RegExp(`at most ${PUT_MAX} bytes \\(dav\\.max_put_bytes\\)[\\s\\S]*tus[\\s\\S]*raise dav\\.max_put_bytes`);

/**
 * A raw HTTP/1.1 exchange over TLS: writes head, then body pieces from more() (called each time
 * the previous one is written, until it returns null or the response has begun), and resolves with
 * what the server sent up to its close: {text, sent (body bytes written), closed}.
 */
function rawH1(server, head, more = () => null) {
  return withDeadline(new Promise((resolve, reject) => {
    const sock = tls.connect({ host: '127.0.0.1', port: server.port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
    const got = [];
    let sent = 0, answered = false;
    const pump = () => {
      while (!answered) {
        const piece = more(sent);
        if (piece === null) return;
        sent += piece.length;
        if (!sock.write(piece)) {
          sock.once('drain', pump);
          return;
        }
      }
    };
    sock.on('secureConnect', () => { sock.write(head); pump(); });
    sock.on('data', (d) => { answered = true; got.push(d); });
    sock.on('error', (e) => { if (!answered) reject(e); });
    sock.on('close', () => resolve({ text: Buffer.concat(got).toString('utf8'), sent }));
  }), WAIT_DEADLINE_MS, () => `raw request ${head.split('\r\n')[0]}`);
}

const putHead = (pw, p, extra) => `PUT ${p} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: ${basic('admin', pw).authorization}\r\n${extra}\r\n`;

async function propfindStatus(p) {
  return (await tight.request('PROPFIND', p, { h1: true, headers: { ...basic('admin', tightPw), depth: '0' } })).status;
}

test('PUT at the limit is stored; one byte more gets 413 with the limit in a text body, nothing stored', async () => {
  const ok = await tight.request('PUT', '/dav/private/exact.bin', { h1: true, headers: basic('admin', tightPw), body: bytes(PUT_MAX, 5) });
  assert.equal(ok.status, 201, ok.text());
  const over = bytes(PUT_MAX + 1, 6);
  // HTTP/1.1: 413 from the sweep while the body arrives, or from the pipeline if it was whole first
  // (read as raw bytes up to the close: the sweep closes the connection while the client may still
  // be writing, which an HTTP client library may report as an error instead of the answer).
  const h1 = await rawH1(tight, putHead(tightPw, '/dav/private/over.bin', `content-length: ${over.length}\r\nconnection: close\r\n`),
    (sent) => (sent === 0 ? over : null));
  assert.match(h1.text, /^HTTP\/1\.1 413 /);
  assert.match(h1.text, /\r\ncontent-type: text\/plain; charset=utf-8\r\n/i);
  assert.match(h1.text, TEXT413);
  // HTTP/2: 413 from the pipeline, or the stream reset (CANCEL) by the sweep while it arrived.
  const r = await tight.request('PUT', '/dav/private/over.bin', { headers: basic('admin', tightPw), body: over, newSession: true })
    .catch((e) => e);
  if (r instanceof Error) {
    assert.equal(r.rstCode, http2.constants.NGHTTP2_CANCEL, r.message);
  } else {
    assert.equal(r.status, 413, r.text());
    assert.match(r.headers['content-type'], /^text\/plain; charset=utf-8/);
    assert.match(r.text(), TEXT413);
  }
  assert.equal(await propfindStatus('/dav/private/over.bin'), 404, 'nothing stored');
});

test('HTTP/1.1 PUT whose Content-Length is over dav.max_put_bytes: 413 before the body is sent', async () => {
  // Below h2o's own cap (limits.max_request_body_bytes): Coffer's sweep answers.
  const a = await rawH1(tight, putHead(tightPw, '/dav/private/cl.bin', `content-length: ${2 * MiB}\r\n`));
  assert.match(a.text, /^HTTP\/1\.1 413 /);
  assert.match(a.text, /\r\ncontent-type: text\/plain; charset=utf-8\r\n/i);
  assert.match(a.text, /\r\nstrict-transport-security: /i);
  assert.match(a.text, TEXT413);
  assert.equal(a.sent, 0, 'no body byte was sent: the answer came on the headers alone');
  // Over h2o's own cap: h2o answers, with the same text.
  const b = await rawH1(tight, putHead(tightPw, '/dav/private/cl.bin', `content-length: ${BODY_MAX + 1}\r\n`));
  assert.match(b.text, /^HTTP\/1\.1 413 /);
  assert.match(b.text, TEXT413);
  // Part of a body, then nothing: still answered.
  const c = await rawH1(tight, putHead(tightPw, '/dav/private/cl.bin', `content-length: ${2 * MiB}\r\n`), (sent) => (sent === 0 ? bytes(1000, 9) : null));
  assert.match(c.text, /^HTTP\/1\.1 413 /);
  assert.equal(await propfindStatus('/dav/private/cl.bin'), 404);
  // Another route is not limited by dav.max_put_bytes: a 2 MiB simple upload is stored.
  const { token } = await tight.login();
  const root = (await tight.request('GET', '/api/v1/spaces', { token })).json().private.root;
  const up = await tight.request('POST', `/api/v1/files?parent=${root}&name=two.bin`, { token, body: bytes(2 * MiB, 10) });
  assert.equal(up.status, 201, up.text());
});

test('chunked PUT (as Finder sends): cut with 413 once past dav.max_put_bytes', async () => {
  const piece = bytes(64 * 1024, 11);
  const chunk = Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]);
  // Pieces until the answer comes (or 8 MiB: far past the limit, then the wait for the answer).
  const r = await rawH1(tight, putHead(tightPw, '/dav/private/chunked.bin', 'transfer-encoding: chunked\r\n'),
    (sent) => (sent < 8 * MiB ? chunk : null));
  assert.match(r.text, /^HTTP\/1\.1 413 /);
  assert.match(r.text, TEXT413);
  assert.equal(await propfindStatus('/dav/private/chunked.bin'), 404);
  // Under the limit, chunked works.
  const small = bytes(300 * 1024, 12);
  const body = Buffer.concat([Buffer.from(`${small.length.toString(16)}\r\n`), small, Buffer.from('\r\n0\r\n\r\n')]);
  const ok = await rawH1(tight, putHead(tightPw, '/dav/private/chunked-ok.bin', 'transfer-encoding: chunked\r\nconnection: close\r\n'),
    (sent) => (sent === 0 ? body : null));
  assert.match(ok.text, /^HTTP\/1\.1 201 /);
  const g = await tight.request('GET', '/dav/private/chunked-ok.bin', { h1: true, headers: basic('admin', tightPw) });
  assert.equal(sha256(g.body), sha256(small));
});

test('HTTP/2 PUT whose content-length is over dav.max_put_bytes: the stream is reset, the connection goes on', async () => {
  const session = tight.connect();
  session.on('error', () => {});
  try {
    const req = session.request({ ':method': 'PUT', ':path': '/dav/private/h2.bin', 'content-length': String(2 * MiB), ...basic('admin', tightPw) });
    req.on('error', () => {});
    req.write(bytes(1000, 13)); // and never the rest
    const code = await withDeadline(new Promise((resolve) => req.on('close', () => resolve(req.rstCode))), WAIT_DEADLINE_MS, () => 'the reset');
    assert.equal(code, http2.constants.NGHTTP2_CANCEL);
    const next = session.request({ ':method': 'PROPFIND', ':path': '/dav/private/h2.bin', depth: '0', ...basic('admin', tightPw) });
    const status = await withDeadline(new Promise((resolve, reject) => { next.on('response', (h) => resolve(h[':status'])); next.on('error', reject); next.end(); }), WAIT_DEADLINE_MS, () => 'the next request');
    assert.equal(status, 404, 'the same connection answers the next request; nothing stored');
  } finally {
    session.close();
  }
});

test('PUT bodies count against limits.max_buffered_body_bytes: 503 + Retry-After, nothing stored, the retry succeeds', async () => {
  const N = 6;
  const files = Array.from({ length: N }, (_, i) => bytes(768 * 1024, 300 + i));
  const done = new Array(N).fill(false);
  let refused = 0;
  // Waves of concurrent PUTs (each 12 times the 64 KiB budget) as streams of one HTTP/2 connection:
  // one body alone is admitted, any body received while another is held is refused. (On separate
  // connections the intake gate would mostly stop the senders instead, so that bodies arrive one
  // after the other: intake.test.mjs. It cannot stop one stream of a connection and not another.)
  // Until every file is stored.
  for (let wave = 0; done.includes(false); wave++) {
    assert.ok(wave < 200, 'every PUT is stored in the end');
    const rs = await Promise.all(files.map((f, i) => (done[i] ? null
      : tight.request('PUT', `/dav/private/budget-${i}.bin`, { headers: basic('admin', tightPw), body: f }))));
    for (let i = 0; i < N; i++) {
      const r = rs[i];
      if (r === null) continue;
      if (r.status === 503) {
        refused++;
        assert.equal(r.headers['retry-after'], '1');
        assert.equal(r.json().error, 'server_busy');
        assert.equal(await propfindStatus(`/dav/private/budget-${i}.bin`), 404, 'a refused PUT stores nothing');
      } else {
        assert.equal(r.status, 201, r.text());
        done[i] = true;
      }
    }
  }
  assert.ok(refused > 0, 'some PUT found the budget taken');
  for (let i = 0; i < N; i++) {
    const g = await tight.request('GET', `/dav/private/budget-${i}.bin`, { h1: true, headers: basic('admin', tightPw) });
    assert.equal(sha256(g.body), sha256(files[i]));
  }
});

test('a COPY\'s read buffer counts against limits.max_buffered_body_bytes like a PUT body: 503 + Retry-After, nothing stored', async () => {
  const src = bytes(768 * 1024, 400);
  const put = await tight.request('PUT', '/dav/private/copy-src.bin', { h1: true, headers: basic('admin', tightPw), body: src });
  assert.equal(put.status, 201, put.text());
  const N = 6;
  const done = new Array(N).fill(false);
  let refused = 0;
  // Waves of concurrent COPYs: each holds the file's bytes (12 times the 64 KiB budget) from its read
  // until the copy is sealed; one alone is admitted, any read while another is held is refused.
  for (let wave = 0; done.includes(false); wave++) {
    assert.ok(wave < 200, 'every COPY is made in the end');
    const rs = await Promise.all(done.map((d, i) => (d ? null
      : tight.request('COPY', '/dav/private/copy-src.bin', { h1: true, headers: { ...basic('admin', tightPw), destination: `/dav/private/copy-${i}.bin` } }))));
    for (let i = 0; i < N; i++) {
      const r = rs[i];
      if (r === null) continue;
      if (r.status === 503) {
        refused++;
        assert.equal(r.headers['retry-after'], '1');
        assert.equal(r.json().error, 'server_busy');
        assert.equal(await propfindStatus(`/dav/private/copy-${i}.bin`), 404, 'a refused COPY stores nothing');
      } else {
        assert.equal(r.status, 201, r.text());
        done[i] = true;
      }
    }
  }
  assert.ok(refused > 0, 'some COPY found the budget taken');
  for (let i = 0; i < N; i++) {
    const g = await tight.request('GET', `/dav/private/copy-${i}.bin`, { h1: true, headers: basic('admin', tightPw) });
    assert.equal(sha256(g.body), sha256(src));
  }
});

test('Basic credentials are never answered over cleartext: plain HTTP on the listener gets no HTTP response', async () => {
  // Every listener is TLS (tls.certificate is required); a cleartext request is not HTTP to it. The
  // pipeline also refuses Basic on any connection without TLS (403 tls_required): unreachable here.
  const reply = await withDeadline(new Promise((resolve) => {
    const sock = net.connect(tight.port, '127.0.0.1', () => sock.write(putHead(tightPw, '/dav/private/clear.bin', 'content-length: 5\r\n') + 'hello'));
    const got = [];
    sock.on('data', (d) => got.push(d));
    sock.on('error', () => {});
    sock.on('close', () => resolve(Buffer.concat(got)));
  }), WAIT_DEADLINE_MS, () => 'the cleartext connection');
  assert.ok(!reply.toString('latin1').startsWith('HTTP/'), `no HTTP answer: ${reply.toString('latin1').slice(0, 40)}`);
  assert.equal(await propfindStatus('/dav/private/clear.bin'), 404);
});

test('Basic on a connection without TLS: 403 tls_required before the credentials are checked (fault builds)', async (t) => {
  // No listener is cleartext, so a fault build stands in for one: the "cleartext" fault makes the
  // next TLS check of a request with Basic say no (storage/fault.h).
  const arm = await tight.request('PUT', '/_test/fault?kind=cleartext&n=1');
  if (arm.status === 404) {
    t.skip('not a fault-injection build (meson -Dfault_injection=true): /_test/fault does not exist');
    return;
  }
  assert.equal(arm.status, 204, arm.text());
  const r = await tight.request('PUT', '/dav/private/clear.bin', { h1: true, headers: basic('admin', 'not-even-checked'), body: Buffer.from('hello') });
  assert.equal(r.status, 403, r.text());
  assert.equal(r.json().error, 'tls_required');
  assert.equal(await propfindStatus('/dav/private/clear.bin'), 404, 'nothing stored');
  const fired = (await tight.request('GET', '/_test/fault')).json().cleartext.fired;
  assert.equal(fired, 1);
  // The next request is over TLS again: answered as usual (a wrong password is a 401 again).
  const w = await tight.request('PROPFIND', '/dav/private/', { h1: true, headers: { ...basic('admin', 'wrong'), depth: '0' } });
  assert.equal(w.status, 401);
});
