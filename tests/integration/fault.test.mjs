// Fault injection (issue 10): the test build carries the hooks of storage/fault.h. For each
// operation (an upload, a download, a share unlock, an ACL change) and each kind of fault
// (a fallible allocation, a write(2) or fsync(2) below RocksDB, a RocksDB write, a scanner call), the
// test walks N = 1, 2, …: it arms "the N-th call of this kind fails", runs the operation once, and
//   - if the fault fired: the answer is a clean error (a JSON error with a 5xx status, or a reset
//     stream for a download whose headers were already out), nothing of the failed attempt is
//     visible, and the same operation succeeds when retried;
//   - if it did not fire, N has walked past the operation's last call of that kind: done.
// A write or sync that fails below RocksDB leaves RocksDB refusing further writes until it is
// reopened (its background error); Coffer then stops itself with exit code 1 (fail-stop, as
// PostgreSQL does after a failed fsync) and the test restarts it over the same data before the
// retry. The server is stopped at the end of every walk: LeakSanitizer checks every failure path.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, bytes, sha256, cli, withDeadline } from './lib/harness.mjs';

const KINDS = ['alloc', 'write', 'fsync', 'db', 'scan'];
const MAX_N = 400; // a walk longer than this is a bug in the walk, not in the server
const FILE = bytes(1024 * 1024 + 12345, 7); // two chunks: a failure can hit the first, the second or the commit
let server, token, root, fileId, shareToken, bobId;
const log = [];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function startServer() {
  // The access log goes to stderr, after the server's own lines: a request's access line there marks
  // a point in the log (see stopping()).
  if (!server) server = new Server({ config: { log: { access: '-' } } });
  await server.start();
  const login = await server.login();
  token = login.token;
}

const req = (method, p, opts = {}) => server.request(method, p, { token, ...opts });

async function arm(kind, n) {
  const r = await server.request('PUT', `/_test/fault?kind=${kind}&n=${n}`);
  assert.equal(r.status, 204, `arm ${kind} ${n}: ${r.status} ${r.text()}`);
}
async function fired(kind) {
  const r = await server.request('GET', '/_test/fault');
  assert.equal(r.status, 200);
  return r.json()[kind].fired;
}

// Fail-stop: the server logs this line before it answers the request that met the failure. Its
// stderr starts empty at every (re)start, so one match means this server is stopping.
const FAIL_STOP = /the store refused a write .*; stopping/;

const DEADLINE_MS = 180000; // generous: waits end on events; this only names a hang

/**
 * Whether the attempt just made left the server stopping itself, decided on events, not on time.
 * The server logs FAIL_STOP before it answers the request that met the failure, and a provenance
 * event the attempt queued (a download's "end" is queued after its answer) is written, or its
 * failure logged, before the queue depth drops. So: poll /metrics until coffer_audit_queue_depth is
 * 0, then wait for that very request's access-log line (by its x-request-id) in stderr; any
 * FAIL_STOP logged before it has arrived by then. A server that is stopping answers no more, or exits.
 */
async function stopping() {
  const deadline = Date.now() + DEADLINE_MS;
  for (;;) {
    if (FAIL_STOP.test(server.stderr) || server.proc.exitCode !== null) return true;
    const from = server.stderr.length;
    let r;
    try {
      r = await server.request('GET', '/metrics');
    } catch {
      return true; // no answer: it is going away (the caller checks exit code 1 and FAIL_STOP)
    }
    assert.equal(r.status, 200, `GET /metrics: ${r.status} ${r.text()}`);
    const depth = Number((/^coffer_audit_queue_depth (\d+)$/m.exec(r.text()) || [])[1]);
    assert.ok(Number.isInteger(depth), 'GET /metrics reports coffer_audit_queue_depth');
    if (depth === 0) {
      const id = String(r.headers['x-request-id']).replace(/[^\w-]/g, '\\$&');
      try {
        await server.waitForLog(new RegExp(` ${id} `), { from, timeout: DEADLINE_MS });
      } catch {
        return true; // it ended before logging the request
      }
      return FAIL_STOP.test(server.stderr);
    }
    assert.ok(Date.now() < deadline, `provenance events still queued after ${DEADLINE_MS} ms`);
    await sleep(20); // polling a state (the queue's depth), not waiting for time to pass
  }
}

/** Whether the server is stopping itself after a storage failure; if so waits for the exit, checks
 *  it (exit code 1, no sanitizer report) and starts the server again over the same data. */
async function restartedAfterFailStop() {
  if (!(await stopping())) return false;
  // closed, not exited: every line the process logged has been read then.
  const done = await withDeadline(server.closed, DEADLINE_MS, () => `the server did not stop after a storage failure:\n${server.stderr.slice(-3000)}`);
  // Fail-stop is ours (exit 1 after the log line), or RocksDB's own: Debian builds librocksdb with
  // its assertions on, and when two writers race an injected I/O error the library aborts on its
  // WAL writer's earlier error before Coffer sees the status (seen about one run in three with two
  // CPU hogs beside the suite; docs/SECURITY.md "Failures and crashes"). Either way the process
  // is gone, and what matters is checked next: the restart recovers every acknowledged write.
  const rocksAbort = done.signal === 'SIGABRT' && /WritableFileWriter::AssertFalseAndGetStatusForPrevError/.test(server.stderr);
  if (!rocksAbort) {
    assert.equal(done.code, 1, `the server exited with ${done.code} (${done.signal}):\n${server.stderr.slice(-3000)}`);
    assert.match(server.stderr, /stopped after a storage failure/);
  }
  assert.doesNotMatch(server.stderr, /ERROR: (Address|Leak)Sanitizer|runtime error:/);
  server.stderr = '';
  await startServer();
  return true;
}

/** A clean failure: a JSON error with a 5xx status (never 2xx, never a 4xx blaming the client). */
function assertCleanError(r, what) {
  assert.ok(r.status >= 500 && r.status <= 503, `${what}: status ${r.status} ${r.text ? r.text() : ''}`);
  const j = JSON.parse(r.body.toString());
  assert.equal(typeof j.error, 'string', `${what}: error body ${r.body}`);
  assert.equal(typeof j.message, 'string');
}

async function tryRequest(fn) {
  try {
    return { r: await fn() };
  } catch (e) {
    return { e };
  }
}

// ---- the operations ------------------------------------------------------------------------------

let seq = 0;
const OPS = {
  // A two-chunk upload: chunks, scan, commit, provenance.
  upload: {
    async attempt() {
      const name = `up-${++seq}.bin`;
      return { name, ...(await tryRequest(() => req('POST', `/api/v1/files?parent=${root}&name=${name}`, { body: FILE }))) };
    },
    succeeded: (a) => a.r && a.r.status === 201,
    async assertFailedCleanly(a) {
      if (a.r) assertCleanError(a.r, `upload ${a.name}`);
      // Nothing of it is visible: not in the folder, and the name is free.
      const kids = (await req('GET', `/api/v1/nodes/${root}/children?limit=1000`)).json().items.map((c) => c.name);
      assert.ok(!kids.includes(a.name), `a failed upload is visible: ${a.name}`);
    },
    async retry(a, died) {
      if (died) {
        // The fault stopped the server; the upload may have committed before it (unanswered, or
        // answered 201): then it is there whole, and is not uploaded again.
        const kids = (await req('GET', `/api/v1/nodes/${root}/children?limit=1000`)).json().items;
        const there = kids.find((c) => c.name === a.name);
        if (there) {
          const d = await req('GET', `/api/v1/files/${there.id}/content`);
          assert.equal(sha256(d.body), sha256(FILE), 'an upload committed before a fail-stop is whole');
          return;
        }
      }
      const r = await req('POST', `/api/v1/files?parent=${root}&name=${a.name}`, { body: FILE });
      assert.equal(r.status, 201, `retry upload: ${r.status} ${r.text()}`);
      const node = r.json();
      assert.equal(node.name, a.name); // not renamed: nothing held the name
      const d = await req('GET', `/api/v1/files/${node.id}/content`);
      assert.equal(sha256(d.body), sha256(FILE));
    },
  },
  // A download of the same two-chunk file.
  download: {
    attempt: async () => tryRequest(() => req('GET', `/api/v1/files/${fileId}/content`)),
    succeeded: (a) => a.r && a.r.status === 200 && a.r.body.equals(FILE),
    async assertFailedCleanly(a) {
      if (a.r) {
        assertCleanError(a.r, 'download');
      } else {
        // Headers went out, then a chunk could not be produced: the stream is reset, never
        // completed with wrong or missing bytes.
        assert.ok(a.e.rstCode || /aborted|reset|closed|GOAWAY|ECONNRESET/i.test(String(a.e.message)), `download: ${a.e}`);
        if (a.e.partial) assert.ok(FILE.subarray(0, a.e.partial.length).equals(a.e.partial), 'the bytes before the reset are the file\'s');
      }
    },
    async retry() {
      const d = await req('GET', `/api/v1/files/${fileId}/content`);
      assert.equal(d.status, 200);
      assert.ok(d.body.equals(FILE));
    },
  },
  // A recipient unlocking a link with its code (no session, a fresh h2 connection each time).
  unlock: {
    attempt: async () => tryRequest(() => server.request('POST', `/s/${shareToken}/unlock`, { body: { code: 'Fault123' }, newSession: true })),
    succeeded: (a) => a.r && a.r.status === 200,
    async assertFailedCleanly(a) {
      assert.ok(a.r, `unlock: ${a.e}`);
      assertCleanError(a.r, 'unlock');
    },
    async retry() {
      const r = await server.request('POST', `/s/${shareToken}/unlock`, { body: { code: 'Fault123' }, newSession: true });
      assert.equal(r.status, 200, `retry unlock: ${r.status} ${r.text()}`);
      const info = await server.request('GET', `/s/${shareToken}/info`, { token: r.json().access_token, newSession: true });
      assert.equal(info.status, 200);
    },
  },
  // An ACL change, alternating between two states: all or nothing.
  acl: {
    target: 'view',
    async attempt() {
      const cur = (await req('GET', `/api/v1/nodes/${fileId}/acl`)).json().entries;
      this.before = cur.map((e) => `${e.principal}=${e.level}`);
      this.target = this.before[0] === `user:${bobId}=view` ? 'edit' : 'view';
      return tryRequest(() => req('PUT', `/api/v1/nodes/${fileId}/acl`, { body: { entries: [{ principal: `user:${bobId}`, level: this.target }] } }));
    },
    succeeded: (a) => a.r && a.r.status === 200,
    async assertFailedCleanly(a) {
      assert.ok(a.r, `acl: ${a.e}`);
      assertCleanError(a.r, 'acl');
      const now = (await req('GET', `/api/v1/nodes/${fileId}/acl`)).json().entries.map((e) => `${e.principal}=${e.level}`);
      assert.deepEqual(now, this.before, 'a failed ACL change left the ACL as it was');
    },
    async retry(a, died) {
      if (died) {
        const now = (await req('GET', `/api/v1/nodes/${fileId}/acl`)).json().entries.map((e) => `${e.principal}=${e.level}`);
        assert.ok(JSON.stringify(now) === JSON.stringify(this.before) || JSON.stringify(now) === JSON.stringify([`user:${bobId}=${this.target}`]),
          `after a fail-stop the ACL is the old one or the new one, never a mix: ${now}`);
      }
      const r = await req('PUT', `/api/v1/nodes/${fileId}/acl`, { body: { entries: [{ principal: `user:${bobId}`, level: this.target }] } });
      assert.equal(r.status, 200, `retry acl: ${r.status} ${r.text()}`);
      const now = (await req('GET', `/api/v1/nodes/${fileId}/acl`)).json().entries.map((e) => `${e.principal}=${e.level}`);
      assert.deepEqual(now, [`user:${bobId}=${this.target}`]);
    },
  },
};

before(async () => {
  await startServer();
  root = (await req('GET', '/api/v1/spaces')).json().private.root;
  const up = await req('POST', `/api/v1/files?parent=${root}&name=fixed.bin`, { body: FILE });
  assert.equal(up.status, 201);
  fileId = up.json().id;
  const bob = await req('POST', '/api/v1/admin/users', { body: { username: 'bob', password: 'bob-password-1', display_name: 'Bob' } });
  assert.equal(bob.status, 201, bob.text());
  bobId = bob.json().id;
  const sh = await req('POST', '/api/v1/shares', { body: { node: fileId, permission: 'download', code: 'Fault123' } });
  assert.equal(sh.status, 201, sh.text());
  shareToken = sh.json().url.split('/s/')[1];
});

after(async () => {
  if (server) {
    await server.stop();
    server.cleanup();
  }
  console.log(log.join('\n'));
});

for (const [opName, op] of Object.entries(OPS)) {
  test(`fault walk: ${opName} under every kind of failure`, { timeout: 600000 }, async () => {
    for (const kind of KINDS) {
      let n = 1, failures = 0, restarts = 0;
      for (; n <= MAX_N; n++) {
        const before0 = await fired(kind);
        await arm(kind, n);
        const a = await op.attempt();
        const died = await restartedAfterFailStop(); // a new process: nothing armed any more
        const hit = died || (await fired(kind)) > before0;
        if (died) restarts++;
        else await arm(kind, 0);
        if (!hit) {
          assert.ok(op.succeeded(a), `${opName}/${kind} N=${n}: failed with no fault fired: ${a.r ? `${a.r.status} ${a.r.body}` : a.e}`);
          break;
        }
        if (op.succeeded(a) && !died) continue; // the fault hit work this operation does not depend on
        failures++;
        try {
          if (!died) await op.assertFailedCleanly(a);
          await op.retry(a, died);
        } catch (e) {
          e.message = `${opName}/${kind} N=${n}${died ? ' (after a fail-stop)' : ''}: ${e.message}`;
          throw e;
        }
      }
      assert.ok(n <= MAX_N, `${opName}/${kind}: the walk did not end`);
      log.push(`${opName.padEnd(8)} ${kind.padEnd(5)}: ${n - 1} call(s) failed one at a time, ${failures} clean failure(s), ${restarts} fail-stop restart(s)`);
    }
  });
}

test('after every walk: the store verifies (content, chunks, provenance)', async () => {
  await server.stop();
  const fsck = cli(['fsck', '-c', server.configPath]);
  assert.equal(fsck.status, 0, fsck.stdout + fsck.stderr);
  const rep = JSON.parse(fsck.stdout);
  assert.equal(rep.corrupt, 0);
  assert.equal(rep.orphan_contents, 0);
  const av = cli(['audit', 'verify', '-c', server.configPath]);
  assert.equal(av.status, 0, av.stdout + av.stderr);
  await startServer();
});
