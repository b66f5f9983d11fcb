// directory-scale.test.mjs: the directory sync at 5 000 users (issue 23, wave 2). A throw-away slapd
// (lib/slapd.mjs) loaded with an LDIF generated here: 5 000 users in the 3-level ou tree (8 leaves of
// 625), the three groups (one of 2 500 members). Shows that the first sync creates them all with
// their departments and group members, and that a second sync with nothing changed changes nothing;
// prints how long each took (diagnostics, never asserted: docs/OPERATIONS.md "Directory", "Scale"
// has the numbers measured). Matching is hashed (src/ops/directory.c): a quadratic sync would be
// 25 million comparisons here.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Server } from './lib/harness.mjs';
import { Slapd, missing, SERVICE_DN, SERVICE_PW, PEOPLE, GROUPS } from './lib/slapd.mjs';

const why = missing();
const skip = why ? `needs ${why}` : false;
const PER_LEAF = 625; // × 8 leaves = 5 000 users
let ldap, server, A;

before(async () => {
  if (why) return;
  ldap = await Slapd.start({ perLeaf: PER_LEAF });
  const pwFile = path.join(ldap.dir, 'bind.secret');
  fs.writeFileSync(pwFile, `${SERVICE_PW}\n`, { mode: 0o600 });
  server = new Server({ config: { directory: {
    url: ldap.url, ca: ldap.caFile, bind_dn: SERVICE_DN, bind_password_file: pwFile,
    users: { base: PEOPLE, filter: '(objectClass=inetOrgPerson)', username: 'uid', display_name: 'cn', email: 'mail' },
    groups: { base: GROUPS, filter: '(objectClass=groupOfNames)', name: 'cn', members: 'member' },
    departments: 'dn', sync_interval: '0s', timeout: '60s',
  } } });
  await server.start();
  A = server.client((await server.login()).token);
});

after(async () => {
  if (why) return;
  try { await server.stop(); } finally { await ldap.stop(); }
  server.cleanup();
});

async function timedSync(t, label) {
  const t0 = process.hrtime.bigint();
  const r = await A.req('POST', '/api/v1/admin/directory/sync', { body: { dry_run: false } });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  assert.equal(r.status, 200, r.text());
  t.diagnostic(`${label}: ${ms.toFixed(0)} ms`);
  return r.json();
}

test('5 000 users: the first sync creates them all; a second sync with no change changes nothing', { skip }, async (t) => {
  const first = await timedSync(t, 'first sync of 5000 users');
  assert.equal(first.counts.directory_users, 5000);
  assert.equal(first.counts.created, 5000);
  assert.equal(first.counts.skipped, 0);
  assert.equal(first.departments.created.length, 14);
  assert.equal(first.counts.users_moved, 5000);
  const users = (await (await A.req('GET', '/api/v1/admin/users')).json()).users;
  assert.equal(users.filter((u) => u.source === 'directory').length, 5000);
  const groups = (await (await A.req('GET', '/api/v1/admin/groups')).json()).groups;
  assert.equal(groups.find((g) => g.name === 'sales').members.length, 2500);
  assert.equal(groups.find((g) => g.name === 'storage-readers').members.length, 10);
  const second = await timedSync(t, 'second sync of 5000 users, nothing changed');
  const c = second.counts;
  assert.deepEqual([c.directory_users, c.created, c.updated, c.frozen, c.reactivated, c.offboarded, c.users_moved, c.groups_created, c.groups_updated, c.departments_created],
    [5000, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
});
