// Rollback detection (issue 17, item 5): the metadata journal. A sealed record authenticates against
// its own key, so an older value of the same key opens fine: writing an older share record back
// revived a revoked link, an older file record served the previous version, and nothing noticed.
// With the journal (docs/DESIGN.md §4 "Metadata journal"), with the server stopped and cf-dbtool
// editing RocksDB directly:
//   - an older sealed share record (the link before its revocation) is named by `coffer fsck` and
//     `coffer audit verify` (kind, column family, key, "rolled back to an earlier value"), exit 1;
//     also when the attacker rolls back the journal's index entry for it too;
//   - an older node record of a file with two versions, and its second version record deleted;
//   - records put back after their deletion: a session that was ended, a purged file's node record;
//     a key never written by Coffer;
//   - a provenance log cut back together with its head (the chain still verifies): audit verify
//     names the tenant's head;
//   - the journal itself: its last entry deleted (truncation), its head rolled back: also refused at
//     start;
//   - a whole data_dir replaced by an older copy: `coffer serve` refuses to start, naming both entry
//     numbers and the override; `serve --check` and fsck say so; `coffer journal accept` is the
//     override (a new journal over the store as it is), after which the server starts and fsck passes.
// Every store edited here is a copy (fs.cpSync) of the stopped server's directory, so each case
// starts from the same untouched store, which fsck passes before and after.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Server, cli, coffer, dbtool, sha256, bytes } from './lib/harness.mjs';

let s, admin, tenant, spaces;
const copies = [];

before(async () => {
  s = await new Server().start();
  const login = await s.login();
  admin = s.client(login.token);
  spaces = await admin.spaces();
  tenant = (await admin.req('GET', '/api/v1/me')).json().tenant.id;
  assert.match(tenant, /^[0-9a-f]{32}$/);
});

after(async () => {
  if (s) {
    await s.stop().catch(() => {});
    s.cleanup();
  }
  for (const d of copies) fs.rmSync(d, { recursive: true, force: true });
});

// ---- cf-dbtool ------------------------------------------------------------------------------------

function tool(dir, args, input) {
  const r = spawnSync(dbtool, [dir, ...args], { input, encoding: 'utf8', maxBuffer: 1 << 28 });
  assert.equal(r.status, 0, `cf-dbtool ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}
const keysOf = (dir, cf) => tool(dir, ['keys', cf]).split('\n').filter(Boolean).map((l) => l.split(' ')[0]);
const getHex = (dir, cf, key) => tool(dir, ['get', cf, key]).trim();
const putHex = (dir, cf, key, hex) => tool(dir, ['put', cf, key, '-'], hex);
const del = (dir, cf, key) => tool(dir, ['delete', cf, key]);

/** The journal_keys entry of (cf, key): the index key is cf:u8 ‖ key, so find it by its suffix. */
function indexKeyOf(dir, key) {
  const k = keysOf(dir, 'journal_keys').filter((x) => x.length === key.length + 2 && x.slice(2) === key);
  assert.equal(k.length, 1, `one journal index entry for ${key}`);
  return k[0];
}
const entryKey = (seq) => '65' + seq.toString(16).padStart(16, '0'); // 'e' ‖ seq:u64

// ---- the CLI against a directory ------------------------------------------------------------------

function run(args, dir = s.dir) {
  return cli([...args, '-c', path.join(dir, 'coffer.yaml')]);
}
/** fsck: {status, json, lines (stderr)}. */
function fsck(dir = s.dir) {
  const r = run(['fsck'], dir);
  assert.ok(r.stdout.startsWith('{'), `fsck: ${r.status} ${r.stdout} ${r.stderr}`);
  return { status: r.status, json: JSON.parse(r.stdout), stderr: r.stderr, lines: r.stderr.split('\n').filter(Boolean) };
}

/** A fresh copy of the stopped server's directory, edited by fn. */
function tampered(name, fn) {
  const dir = `${s.dir}-copy-${name}`;
  copies.push(dir);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.cpSync(s.dir, dir, { recursive: true });
  fn(path.join(dir, 'data'));
  return dir;
}

/** `coffer serve` that must refuse to start: its exit code and stderr (a server that starts is killed at the deadline). */
function serveRefused(dir) {
  const r = spawnSync(coffer, ['serve', '-c', path.join(dir, 'coffer.yaml')], { encoding: 'utf8', timeout: 120000 });
  return { status: r.status, signal: r.signal, stderr: r.stderr };
}

const HEX = '[0-9a-f]+';

// ---- the cases -----------------------------------------------------------------------------------

test('the untouched store: fsck and audit verify pass, and the journal covers every record', async () => {
  await s.stop();
  const r = fsck();
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '');
  assert.ok(r.json.journal_head > 0 && r.json.journal_entries === r.json.journal_head, JSON.stringify(r.json));
  assert.equal(r.json.journal_findings, 0);
  assert.equal(r.json.journal_keys, r.json.journal_records, 'one index entry per covered record');
  const av = run(['audit', 'verify']);
  assert.equal(av.status, 0, av.stderr);
  assert.match(av.stdout, /^ok: \d+ events\n$/);
  // The anchor lives beside the master key, private, two 128-byte slots.
  const anchor = path.join(s.dir, 'master.key.anchor');
  assert.equal(fs.statSync(anchor).mode & 0o777, 0o600);
  assert.equal(fs.statSync(anchor).size % 128, 0);
  await s.start();
});

test('a revoked share link put back (its older sealed record) is named by fsck and audit verify', async () => {
  const f = await admin.upload(spaces.private.root, 'shared.txt', 'a file behind a link');
  assert.equal(f.status, 201, f.text());
  const sh = await admin.req('POST', '/api/v1/shares', { body: { node: f.json().id, permission: 'download' } });
  assert.equal(sh.status, 201, sh.text());
  const shareId = sh.json().id;
  const key = tenant + shareId;
  await s.stop();
  const active = getHex(s.dataDir, 'shares', key);
  const activeIndex = getHex(s.dataDir, 'journal_keys', indexKeyOf(s.dataDir, key));
  await s.start();
  const rv = await admin.req('DELETE', `/api/v1/shares/${shareId}`);
  assert.equal(rv.status, 204);
  const mine = (await admin.req('GET', '/api/v1/shares')).json().shares.find((x) => x.id === shareId);
  assert.equal(mine.state, 'revoked');
  await s.stop();
  assert.notEqual(getHex(s.dataDir, 'shares', key), active, 'the revocation rewrote the record');
  assert.equal(fsck().status, 0, 'untouched after the revocation');

  // The record alone.
  let dir = tampered('share', (d) => putHex(d, 'shares', key, active));
  let r = fsck(dir);
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.json.journal_findings, 1);
  assert.match(r.stderr, new RegExp(`^coffer: fsck: share record shares/${key}: rolled back to an earlier value: it holds the value written at journal entry \\d+ \\(\\S+\\); the last write was at journal entry \\d+ \\(\\S+\\)\\n`, 'm'));
  const av = run(['audit', 'verify'], dir);
  assert.equal(av.status, 1);
  assert.equal(av.stdout, '');
  assert.match(av.stderr, new RegExp(`^coffer: audit: share record shares/${key}: rolled back to an earlier value: `, 'm'));

  // The record and its journal index entry both put back: the kept entries still name the last write.
  dir = tampered('share-index', (d) => {
    putHex(d, 'shares', key, active);
    putHex(d, 'journal_keys', indexKeyOf(d, key), activeIndex);
  });
  r = fsck(dir);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^coffer: fsck: share record shares/${key}: rolled back to an earlier value: `, 'm'));
  await s.start();
});

test('an older node record of a file with two versions, and its second version record deleted', async () => {
  const v1 = bytes(3000, 1), v2 = bytes(5000, 2);
  const a = await admin.upload(spaces.private.root, 'report.bin', v1);
  assert.equal(a.status, 201, a.text());
  const id = a.json().id;
  await s.stop();
  const key = tenant + id;
  const old = getHex(s.dataDir, 'nodes', key);
  await s.start();
  const b = await admin.upload(spaces.private.root, 'report.bin', v2, '&on_conflict=replace');
  assert.equal(b.status, 201, b.text());
  assert.equal(b.json().version, 2);
  const d = await admin.download(id);
  assert.equal(sha256(d.body), sha256(v2));
  await s.stop();
  const v2key = key + '00000002';
  assert.ok(keysOf(s.dataDir, 'versions').includes(v2key), 'version 2 is T ‖ file ‖ 2');

  let dir = tampered('node', (dd) => putHex(dd, 'nodes', key, old));
  let r = fsck(dir);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^coffer: fsck: node/file record nodes/${key}: rolled back to an earlier value: it holds the value written at journal entry \\d+`, 'm'));

  dir = tampered('node-version', (dd) => {
    putHex(dd, 'nodes', key, old);
    del(dd, 'versions', v2key);
  });
  r = fsck(dir);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^coffer: fsck: node/file record nodes/${key}: rolled back to an earlier value: `, 'm'));
  assert.match(r.stderr, new RegExp(`^coffer: fsck: file version record versions/${v2key}: deleted: it was last written at journal entry \\d+`, 'm'));
  assert.equal(r.json.journal_findings, 2);
  await s.start();
});

test('records put back after their deletion: an ended session, a purged file', async () => {
  const second = await s.login();
  const sessions = (await admin.req('GET', '/api/v1/me/sessions')).json().sessions;
  const other = sessions.find((x) => !x.current && x.kind === 'login');
  assert.ok(other, 'a second session');
  const f = await admin.upload(spaces.private.root, 'doomed.txt', 'purged soon');
  assert.equal(f.status, 201);
  const nodeKey = tenant + f.json().id;
  await s.stop();
  const sessionsBefore = new Map(keysOf(s.dataDir, 'sessions').map((k) => [k, getHex(s.dataDir, 'sessions', k)]));
  const nodeRecord = getHex(s.dataDir, 'nodes', nodeKey);
  await s.start();
  assert.equal((await admin.req('DELETE', `/api/v1/me/sessions/${other.id}`)).status, 204);
  assert.equal((await s.request('GET', '/api/v1/me', { token: second.token })).status, 401, 'the session ended');
  assert.equal((await admin.req('DELETE', `/api/v1/nodes/${f.json().id}?purge=true`)).status, 204);
  await s.stop();
  assert.equal(fsck().status, 0);
  const gone = [...sessionsBefore.keys()].filter((k) => !keysOf(s.dataDir, 'sessions').includes(k));
  assert.equal(gone.length, 1, 'one session record deleted');
  assert.ok(!keysOf(s.dataDir, 'nodes').includes(nodeKey), 'the node record was purged');

  let dir = tampered('session', (d) => putHex(d, 'sessions', gone[0], sessionsBefore.get(gone[0])));
  let r = fsck(dir);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^coffer: fsck: session sessions/${gone[0]}: resurrected after deletion: it was deleted at journal entry \\d+ \\(\\S+\\)\\n`, 'm'));
  assert.equal(r.json.journal_findings, 1);

  dir = tampered('purged', (d) => putHex(d, 'nodes', nodeKey, nodeRecord));
  r = fsck(dir);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^coffer: fsck: node/file record nodes/${nodeKey}: resurrected after deletion: it was deleted at journal entry \\d+`, 'm'));

  // A record the journal never saw written (a key made up outside Coffer).
  dir = tampered('unjournaled', (d) => putHex(d, 'trash', tenant + '11'.repeat(16), '0000000000000001'));
  r = fsck(dir);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^coffer: fsck: trash entry trash/${tenant}${'11'.repeat(16)}: not in the journal: `, 'm'));
  await s.start();
});

test('a provenance log cut back together with its head: the chain verifies, the journal does not', async () => {
  await s.stop();
  const headKey = tenant + '68'; // audit_meta: T ‖ 'h'
  const oldHead = getHex(s.dataDir, 'audit_meta', headKey);
  const oldEvents = new Set(keysOf(s.dataDir, 'audit').filter((k) => k.startsWith(tenant)));
  const oldSeq = Math.max(...[...oldEvents].map((k) => parseInt(k.slice(32), 16)));
  await s.start();
  const f = await admin.upload(spaces.private.root, 'evidence.txt', 'an upload the provenance log records');
  assert.equal(f.status, 201);
  assert.equal((await admin.req('DELETE', `/api/v1/nodes/${f.json().id}?purge=true`)).status, 204);
  await s.stop();
  const newer = keysOf(s.dataDir, 'audit').filter((k) => k.startsWith(tenant) && !oldEvents.has(k));
  assert.ok(newer.length >= 2, `${newer.length} newer events`);
  const dir = tampered('provenance', (d) => {
    for (const k of newer) del(d, 'audit', k);
    putHex(d, 'audit_meta', headKey, oldHead);
  });
  const av = run(['audit', 'verify'], dir);
  assert.equal(av.status, 1, av.stderr);
  assert.equal(av.stdout, '');
  assert.match(av.stderr, new RegExp(`^coffer: audit: tenant default: event ${oldSeq}: the provenance head rolled back to an earlier value \\(metadata journal: it holds the value written at journal entry \\d+`, 'm'));
  const r = fsck(dir);
  assert.equal(r.status, 1);
  assert.match(r.stderr, new RegExp(`^coffer: fsck: provenance head audit_meta/${headKey}: rolled back to an earlier value: `, 'm'));
  await s.start();
});

test('the journal itself: its last entry deleted (truncated), its head rolled back', async () => {
  await s.stop();
  const head = fsck().json.journal_head;
  const oldHead = getHex(s.dataDir, 'journal', '68');
  await s.start();
  const up = await admin.upload(spaces.private.root, 'after-head.txt', 'written after the head was copied');
  assert.equal(up.status, 201);
  await s.stop();
  const now = fsck().json.journal_head;
  assert.ok(now > head, `${now} > ${head}`);

  let dir = tampered('truncated', (d) => del(d, 'journal', entryKey(now)));
  let r = fsck(dir);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^coffer: fsck: metadata journal: it ends at entry ${now - 1}, but its head is at entry ${now} \\(truncated\\)$`, 'm'));
  let sv = serveRefused(dir);
  assert.equal(sv.status, 1, sv.stderr);
  assert.match(sv.stderr, /the metadata journal of .* is damaged: its last entry is missing or does not verify/);

  dir = tampered('head', (d) => putHex(d, 'journal', '68', oldHead));
  r = fsck(dir);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^coffer: fsck: metadata journal: it holds ${now - head} entr(y|ies) past its head \\(entry ${head}\\): the head was rolled back$`, 'm'));
  sv = serveRefused(dir);
  assert.equal(sv.status, 1, sv.stderr);
  assert.match(sv.stderr, /it holds entries past its head \(the head was rolled back\)/);
  await s.start();
});

test('a whole data_dir replaced by an older copy: refused at start, reported by --check and fsck, accepted on the operator\'s word', async () => {
  await s.stop();
  const old = `${s.dir}-old-data`;
  copies.push(old);
  fs.rmSync(old, { recursive: true, force: true });
  fs.cpSync(s.dataDir, old, { recursive: true });
  const before = fsck().json.journal_head;
  await s.start();
  const up = await admin.upload(spaces.private.root, 'lost-by-rollback.txt', 'newer than the copy');
  assert.equal(up.status, 201);
  await s.stop();
  const after = fsck().json.journal_head;
  assert.ok(after > before);

  // The attacker (or a careless restore) puts the older copy in place.
  fs.rmSync(s.dataDir, { recursive: true, force: true });
  fs.renameSync(old, s.dataDir);
  const sv = serveRefused(s.dir);
  assert.equal(sv.status, 1, `serve must refuse (${sv.signal ?? ''}): ${sv.stderr}`);
  assert.match(sv.stderr, new RegExp(`is at metadata journal entry ${before}, but the anchor \\S+master\\.key\\.anchor recorded entry ${after} \\(written \\S+\\): the data directory was rolled back or replaced by an older copy`));
  assert.match(sv.stderr, /refusing to open it: .*coffer journal accept -c \S+coffer\.yaml/);
  const check = run(['serve', '--check']);
  assert.equal(check.status, 1, check.stderr);
  assert.match(check.stderr, new RegExp(`data_dir: .*is at metadata journal entry ${before}, but the anchor .* recorded entry ${after}`));
  let r = fsck();
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^coffer: fsck: metadata journal: .*is at metadata journal entry ${before}, but the anchor .*recorded entry ${after} .*rolled back`, 'm'));
  assert.equal(run(['audit', 'verify']).status, 1);

  // The override: usage, then accept (the store as it is), then the server starts and fsck passes.
  assert.equal(run(['journal']).status, 2);
  assert.equal(run(['journal', 'accept', 'now']).status, 2);
  const acc = run(['journal', 'accept']);
  assert.equal(acc.status, 0, acc.stderr);
  assert.match(acc.stdout, new RegExp(`^accepted ${s.dataDir} as it is: a new metadata journal over its (\\d+) record\\(s\\), recorded in ${path.join(s.dir, 'master.key.anchor')}\n$`));
  assert.match(acc.stderr, new RegExp(`accepted on the operator's word: .*is at metadata journal entry ${before}, but the anchor .*recorded entry ${after}`));
  r = fsck();
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.json.journal_head, 0, 'a new journal');
  assert.equal(String(r.json.journal_keys), /over its (\d+) record/.exec(acc.stdout)[1]);
  await s.start();
  const list = (await admin.children(spaces.private.root)).json().items.map((n) => n.name);
  assert.ok(!list.includes('lost-by-rollback.txt'), 'the accepted store is the older copy');
  const again = await admin.upload(spaces.private.root, 'after-accept.txt', 'the journal goes on');
  assert.equal(again.status, 201);
  await s.stop();
  r = fsck();
  assert.equal(r.status, 0, r.stderr);
  assert.ok(r.json.journal_head > 0);
  await s.start();
});
