// The model-based access test (issue 17): long seeded random sequences of operations by several
// actors, run against the real server and against an independent reference model of the access
// rules (lib/accessmodel.mjs, written from docs/SECURITY.md "Access: the level rule" and docs/API.md).
//
// Universe: tenant t1 with two admins (admin, ada), four members (bob, cat, dan, eli) and an auditor
// (aud), groups g1 and g2, every user's private space and the tenant space; tenant t2 with one admin
// (eve) and a folder of hers. Operations: create folder, upload, rename, move, ACL PUT (by anyone,
// with or without manage), trash, purge (also of trashed nodes), share links (create, revoke,
// unlock), group membership changes (admins adding themselves included), freeze and unfreeze,
// offboarding (handover or archive; offboarded users leave the pool), the tenant's share switch, and
// the retention job (`coffer ctl retention run`), departments (issue 23: ACL entries naming a
// department with and without "subdepartments", admins moving users between departments and
// departments within the tree, admins adding themselves included; departments deleted when empty,
// with the entries naming them, and created again under the same name, which must inherit nothing),
// and restores from the trash (issue 21: to the
// original folder or into a chosen one; after each trash, restore and purge the actor's trash list
// must be the model's, and a restore by someone without manage must raise nobody's level above what
// it was where the node was deleted).
//
// Every operation's status is predicted by the model and asserted; the model changes only on
// success. After every step, every active actor's level on every node (GET /api/v1/nodes/{id}:
// my_level, or 404; the auditor and eve every fourth step) and every link's state (GET
// /s/{token}/info with the access token its unlock gave) must equal the model's, and one actor's
// listings (a different one each step) must show exactly the live children with their levels. After
// the operations that change them: the ACL view (own and inherited entries, the space's owner), the
// handed-over space as the heir sees it, the group-change alerts of every active user, the retention
// job's report, a frozen user's dead session and refused login. The model also checks itself: a move
// by someone without manage must raise nobody's level anywhere (the level rule). All the checks of a
// step are sent at once over one HTTP/2 connection.
//
// On a divergence the test prints the seed and the shortest sequence it can find that still diverges
// (delta debugging over the steps, then over the entries of ACL and membership lists: replays, each
// against a fresh copy of the start state, compared once at their end), then fails. Environment: MODEL_SEEDS (comma-separated seeds, default 1..5), MODEL_STEPS (steps per seed,
// default 1000), MODEL_SHRINK_SECONDS (time for shrinking, default 300), MODEL_REPLAY (a JSON list of
// operations, as printed on a failure: run just that sequence, checking after every step).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Server, cli, ADMIN_PASSWORD } from './lib/harness.mjs';
import { Model, LEVELS, NONE, VIEW, EDIT, MANAGE } from './lib/accessmodel.mjs';

const SEEDS = (process.env.MODEL_SEEDS || '1,2,3,4,5').split(',').map((x) => Number(x.trim()));
const STEPS = Number(process.env.MODEL_STEPS || 1000);
const SHRINK_MS = Number(process.env.MODEL_SHRINK_SECONDS || 300) * 1000;
const REPLAY = process.env.MODEL_REPLAY ? JSON.parse(process.env.MODEL_REPLAY) : null;

const T1_USERS = { admin: 'admin', ada: 'admin', bob: 'member', cat: 'member', dan: 'member', eli: 'member', aud: 'auditor' };
const GROUPS = { g1: ['bob', 'cat'], g2: ['dan'] };
// Departments (issue 23): name → parent at the start (d1 > d2 > d3, d4), and each user's [primary, others].
const DEPTS = { d1: null, d2: 'd1', d3: 'd2', d4: null };
const UDEPTS = { bob: ['d1', []], cat: ['d3', []], dan: [null, ['d2']], eli: ['d4', ['d1']] };
const NAMES = ['alpha', 'beta', 'gamma', 'delta'];
const NODE_CAP = 15;     // nodes besides the 10 space roots: ≤ 25 nodes
const LINK_CAP = 8;      // links not revoked, on live nodes
const MAX_OFFBOARDS = 2; // per sequence
const pw = (n) => (n === 'admin' ? ADMIN_PASSWORD : `pw-${n}-model-2024`);

let snapshot = null; // a stopped server's directory: the start state of every sequence
const U = {};        // name → {id, token, root}
const G = {};        // group name → id
const D = {};        // department name → id
const ROOT_IDS = {}; // handle → id of the nodes that exist at the start

before(async () => {
  const s = new Server();
  await s.start();
  await s.stop();
  let r = cli(['tenant', 'create', 'other', '-c', s.configPath]);
  assert.equal(r.status, 0, r.stderr);
  r = cli(['user', 'add', '--tenant', 'other', '--username', 'eve', '--role', 'admin', '-c', s.configPath], { COFFER_USER_PASSWORD: pw('eve') });
  assert.equal(r.status, 0, r.stderr);
  await s.start();
  const al = await s.login();
  U.admin = { id: al.user.id, token: al.token };
  const adm = (method, p, body) => s.request(method, p, { token: U.admin.token, body });
  for (const [n, role] of Object.entries(T1_USERS)) {
    if (n === 'admin') continue;
    const c = await adm('POST', '/api/v1/admin/users', { username: n, password: pw(n), role });
    assert.equal(c.status, 201, c.text());
    U[n] = { id: c.json().id, token: (await s.login(n, pw(n))).token };
  }
  const el = await s.login('eve', pw('eve'), 'other');
  U.eve = { id: el.user.id, token: el.token };
  for (const n of Object.keys(U)) {
    const sp = (await s.request('GET', '/api/v1/spaces', { token: U[n].token })).json();
    U[n].root = sp.private.root;
    ROOT_IDS[`root:${n}`] = sp.private.root;
    if (n === 'admin') ROOT_IDS['root:t1'] = sp.tenant.root;
    if (n === 'eve') ROOT_IDS['root:t2'] = sp.tenant.root;
  }
  for (const [g, members] of Object.entries(GROUPS)) {
    const c = await adm('POST', '/api/v1/admin/groups', { name: g });
    assert.equal(c.status, 201, c.text());
    G[g] = c.json().id;
    const m = await adm('PUT', `/api/v1/admin/groups/${G[g]}/members`, { user_ids: members.map((x) => U[x].id) });
    assert.equal(m.status, 200, m.text());
  }
  for (const [d, parent] of Object.entries(DEPTS)) {
    const c = await adm('POST', '/api/v1/admin/departments', { name: d, parent: parent ? D[parent] : null });
    assert.equal(c.status, 201, c.text());
    D[d] = c.json().id;
  }
  for (const [u, [primary, others]] of Object.entries(UDEPTS)) {
    const c = await adm('PUT', `/api/v1/admin/users/${U[u].id}/departments`, { primary: primary ? D[primary] : null, others: others.map((x) => D[x]) });
    assert.equal(c.status, 200, c.text());
  }
  const pol = await adm('PATCH', '/api/v1/admin/policy', { trash_retention: 0, offboarded_retention: 0 });
  assert.equal(pol.status, 200, pol.text());
  const e1 = await s.request('POST', '/api/v1/folders', { token: U.eve.token, body: { parent: U.eve.root, name: 'e-folder' } });
  assert.equal(e1.status, 201, e1.text());
  ROOT_IDS.e1 = e1.json().id;
  await s.stop();
  snapshot = s.dir;
});

after(() => { if (snapshot) fs.rmSync(snapshot, { recursive: true, force: true }); });

function initialModel() {
  const m = new Model();
  m.addTenant('t1', 'root:t1');
  m.addTenant('t2', 'root:t2');
  for (const [n, role] of Object.entries(T1_USERS)) m.addUser(n, 't1', role, `root:${n}`);
  m.addUser('eve', 't2', 'admin', 'root:eve');
  m.addFolder('e1', 'root:eve', 'e-folder');
  for (const [g, members] of Object.entries(GROUPS)) m.addGroup(g, 't1', members);
  for (const [d, parent] of Object.entries(DEPTS)) m.addDept(d, 't1', parent);
  for (const [u, [primary, others]] of Object.entries(UDEPTS)) m.setDepts(u, primary, others);
  return m;
}

/** A server on a fresh copy of the start state (sessions included, so the tokens work). */
async function freshServer() {
  const dir = fs.mkdtempSync(path.join(path.dirname(snapshot), 'model-'));
  fs.cpSync(snapshot, dir, { recursive: true });
  return new Server({ dir }).start();
}

// ---- seeded randomness ----

function rngOf(seed) {
  let a = seed >>> 0 || 0x9e3779b9;
  return () => { // mulberry32
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const pickOf = (rng) => (xs) => xs[Math.floor(rng() * xs.length)];

// ---- the generator: one random operation from the model's present state ----

function gen(m, rng, ctx) {
  const pick = pickOf(rng);
  const t1 = [...m.users.values()].filter((u) => u.tenant === 't1');
  const active = t1.filter((u) => u.status === 'active').map((u) => u.name);
  const inactive = t1.filter((u) => u.status !== 'active').map((u) => u.name);
  const admins = active.filter((n) => m.users.get(n).role === 'admin');
  const actor = () => {
    const x = rng();
    if (x < 0.04) return 'eve';
    if (x < 0.06 && inactive.length) return pick(inactive);
    if (x < 0.09) return pick(active); // the auditor too, now and then
    return pick(active.filter((n) => m.users.get(n).role !== 'auditor'));
  };
  const adminActor = () => (rng() < 0.85 ? pick(admins) : actor());
  const known = [...m.known];
  const node = (a, need, { folder = false, inTrash = false, p = 0.8, root = true } = {}) => {
    const good = [...m.nodes.values()].filter((n) => (!folder || n.type === 'folder') && (root || n.parent !== null) &&
      (m.level(a, n.h, { inTrash }) ?? NONE) >= need);
    if (good.length && rng() < p) return pick(good).h;
    return pick(known);
  };
  const nonRoots = [...m.nodes.values()].filter((n) => n.parent !== null).length;
  const live = [...m.links.values()].filter((l) => !l.revoked && m.nodes.has(l.node) && !m.inTrash(l.node));
  const entries = () => {
    const ps = [...t1.map((u) => `user:${u.name}`), 'group:g1', 'group:g2',
      ...Object.keys(DEPTS).filter((d) => m.depts.get(d).alive || rng() < 0.2).map((d) => `department:${d}`)];
    if (rng() < 0.5) ps.push('tenant');
    if (rng() < 0.03) ps.push('user:eve');
    const n = rng() < 0.15 ? 0 : 1 + Math.floor(rng() * 3);
    const out = [];
    while (out.length < n) {
      const p = pick(ps);
      if (out.some((e) => e.p === p)) continue;
      const e = { p, level: 1 + Math.floor(rng() * 4) };
      if (p.startsWith('department:') && rng() < 0.5) e.sub = true;
      out.push(e);
    }
    return out;
  };
  const W = [
    ['mkdir', nonRoots < NODE_CAP ? 9 : 0], ['upload', nonRoots < NODE_CAP ? 5 : 0], ['rename', 5], ['move', 20],
    ['acl', 14], ['trash', 6], ['restore', 6], ['purge', nonRoots >= NODE_CAP - 2 ? 10 : 5], ['share', live.length < LINK_CAP ? 5 : 0],
    ['unshare', m.links.size ? 3 : 0], ['unlock', m.links.size ? 2 : 0], ['members', 4], ['freeze', 1.2],
    ['unfreeze', inactive.some((n) => m.users.get(n).status === 'frozen') ? 2.5 : 0.3],
    ['offboard', ctx.offboards < MAX_OFFBOARDS && active.filter((n) => m.users.get(n).role !== 'auditor').length > 4 ? 0.4 : 0],
    ['policy', m.policy.get('t1').allowShares ? 0.5 : 2], ['retention', 0.35], ['udepts', 4], ['dmove', 2],
    ['ddelete', 3], ['dcreate', [...m.depts.values()].some((d) => !d.alive) ? 4 : 0],
  ];
  let x = rng() * W.reduce((s, [, w]) => s + w, 0);
  const k = W.find(([, w]) => (x -= w) < 0)[0];
  const a = actor();
  switch (k) {
    case 'mkdir': case 'upload': return { k, a, parent: node(a, EDIT, { folder: true }), name: pick(NAMES), h: `n${ctx.nextNode++}` };
    case 'rename': return { k, a, node: node(a, EDIT, { root: rng() < 0.1 }), name: pick(NAMES) };
    case 'move': {
      // Half the time a node the actor may edit but not manage: the moves the level rule is about.
      const editOnly = [...m.nodes.values()].filter((n) => n.parent !== null && m.level(a, n.h) === EDIT);
      const h = editOnly.length && rng() < 0.5 ? pick(editOnly).h : node(a, EDIT, { root: rng() < 0.05, p: 0.9 });
      let target = node(a, EDIT, { folder: true, p: 0.9 });
      if (m.nodes.has(h) && target === m.nodes.get(h).parent && rng() < 0.9) target = node(a, EDIT, { folder: true, p: 0.9 });
      return { k, a, node: h, target };
    }
    case 'acl': return { k, a, node: node(a, rng() < 0.7 ? MANAGE : VIEW), entries: entries() };
    case 'trash': return { k, a, node: node(a, MANAGE, { root: rng() < 0.1 }) };
    case 'restore': {
      const tops = [...m.nodes.values()].filter((n) => n.trashed && (m.level(a, n.h, { inTrash: true }) ?? NONE) >= EDIT);
      const h = tops.length && rng() < 0.85 ? pick(tops).h : node(a, EDIT, { inTrash: true, root: rng() < 0.05 });
      return { k, a, node: h, ...(rng() < 0.5 ? { target: node(a, EDIT, { folder: true, p: 0.8 }) } : {}) };
    }
    case 'purge': {
      const trashed = [...m.nodes.values()].filter((n) => m.inTrash(n.h) && (m.level(a, n.h, { inTrash: true }) ?? NONE) >= MANAGE);
      return { k, a, node: trashed.length && rng() < 0.5 ? pick(trashed).h : node(a, MANAGE, { inTrash: true, root: rng() < 0.1 }) };
    }
    case 'share': {
      const h = `l${ctx.nextLink++}`;
      return { k, a, node: node(a, MANAGE), perm: rng() < 0.5 ? 'view' : 'download', h, code: `Code${h.slice(1)}x` };
    }
    case 'unshare': {
      const l = pick([...m.links.values()]);
      return { k, a: rng() < 0.5 && m.active(l.creator) ? l.creator : a, link: l.h };
    }
    case 'unlock': return { k, link: pick([...m.links.keys()]) };
    case 'members': {
      const b = adminActor();
      const users = t1.filter((u) => u.status !== 'offboarded' && u.name !== b && rng() < 0.35).map((u) => u.name);
      if (rng() < 0.2) users.push(b);
      if (rng() < 0.03) users.push('eve');
      return { k, a: b, group: pick(Object.keys(GROUPS)), users };
    }
    case 'freeze': {
      const b = adminActor();
      const others = active.filter((n) => n !== b);
      const target = rng() < 0.1 ? pick(t1.map((u) => u.name)) : others.length ? pick(others) : b;
      return { k, a: b, who: target };
    }
    case 'unfreeze': {
      const frozen = t1.filter((u) => u.status === 'frozen').map((u) => u.name);
      return { k, a: adminActor(), who: frozen.length && rng() < 0.9 ? pick(frozen) : pick(t1.map((u) => u.name)), restore: rng() < 0.4 };
    }
    case 'offboard': {
      const b = adminActor();
      const target = pick(t1.filter((u) => u.name !== b && u.status !== 'offboarded').map((u) => u.name));
      const heir = rng() < 0.85 ? pick(active.filter((n) => n !== target && m.users.get(n).role !== 'auditor')) : pick(t1.map((u) => u.name));
      return { k, a: b, who: target, heir, mode: rng() < 0.5 ? 'archive' : 'transfer' };
    }
    case 'policy': return { k, a: adminActor(), allow: !m.policy.get('t1').allowShares };
    case 'udepts': {
      const b = adminActor();
      const pool = t1.filter((u) => u.status !== 'offboarded' && u.role !== 'auditor').map((u) => u.name);
      const who = rng() < 0.1 ? b : pick(pool);
      const names = Object.keys(DEPTS);
      if (rng() < 0.4) return { k, a: b, who, primary: null, others: [] }; // leaves every department
      return { k, a: b, who, primary: rng() < 0.7 ? pick(names) : null, others: names.filter(() => rng() < 0.25) };
    }
    case 'dmove': {
      const names = Object.keys(DEPTS);
      return { k, a: adminActor(), dept: pick(names), under: rng() < 0.3 ? null : pick(names) };
    }
    case 'ddelete': { // mostly one that is empty (no members, no sub-departments), else any
      const names = Object.keys(DEPTS);
      const held = new Set([...m.udepts.keys()].flatMap((u) => m.deptsOf(u)));
      const empty = names.filter((d) => m.depts.get(d).alive && !held.has(d) && ![...m.depts.values()].some((x) => x.alive && x.parent === d));
      return { k, a: adminActor(), dept: empty.length && rng() < 0.7 ? pick(empty) : pick(names) };
    }
    case 'dcreate': {
      const dead = Object.keys(DEPTS).filter((d) => !m.depts.get(d).alive);
      return { k, a: adminActor(), dept: pick(dead), under: rng() < 0.5 ? null : pick(Object.keys(DEPTS)) };
    }
    case 'retention': return { k };
    default: throw new Error(k);
  }
}

// ---- printing ----

const LN = LEVELS;
function describe(op) {
  const e = (op.entries || []).map((x) => `${x.p}${x.sub ? '+sub' : ''}=${LN[x.level]}`).join(', ');
  switch (op.k) {
    case 'mkdir': case 'upload': return `${op.h} = ${op.a} ${op.k} "${op.name}" in ${op.parent}`;
    case 'rename': return `${op.a} rename ${op.node} to "${op.name}"`;
    case 'move': return `${op.a} move ${op.node} into ${op.target}`;
    case 'acl': return `${op.a} PUT acl ${op.node} [${e}]`;
    case 'trash': case 'purge': return `${op.a} ${op.k} ${op.node}`;
    case 'restore': return `${op.a} restore ${op.node}${op.target !== undefined ? ` into ${op.target}` : ''}`;
    case 'share': return `${op.h} = ${op.a} share ${op.node} (${op.perm})`;
    case 'unshare': return `${op.a} revoke link ${op.link}`;
    case 'unlock': return `unlock link ${op.link}`;
    case 'members': return `${op.a} set members of ${op.group} to [${op.users.join(', ')}]`;
    case 'freeze': case 'unfreeze': return `${op.a} ${op.k} ${op.who}${op.restore ? ' (restore_links)' : ''}`;
    case 'offboard': return `${op.a} offboard ${op.who} to ${op.heir} (${op.mode})`;
    case 'policy': return `${op.a} policy allow_shares=${op.allow}`;
    case 'udepts': return `${op.a} set departments of ${op.who} to primary ${op.primary}, others [${op.others.join(', ')}]`;
    case 'dmove': return `${op.a} move department ${op.dept} under ${op.under ?? 'the top'}`;
    case 'ddelete': return `${op.a} delete department ${op.dept}`;
    case 'dcreate': return `${op.a} create department ${op.dept} again, under ${op.under ?? 'the top'}`;
    case 'retention': return 'retention run';
    default: return JSON.stringify(op);
  }
}

/** The model's tree, one line per node: where it is, its type, trash state and own entries. */
function dumpTree(m) {
  const lines = [];
  const walk = (h, depth) => {
    const n = m.nodes.get(h);
    const flags = [n.type === 'file' ? 'file' : null, n.trashed ? 'TRASHED' : null, n.archived ? 'ARCHIVED' : null,
      n.space ? `${n.space} space${n.owner ? ` of ${n.owner}` : ''}` : null].filter(Boolean).join(', ');
    const acl = n.acl.map((x) => `${x.p}${x.sub ? '+sub' : ''}=${LN[x.level]}`).join(' ');
    lines.push(`${'  '.repeat(depth)}${h}${n.name ? ` "${n.name}"` : ''}${flags ? ` (${flags})` : ''}${acl ? ` [${acl}]` : ''}`);
    for (const c of m.nodes.values()) if (c.parent === h) walk(c.h, depth + 1);
  };
  for (const n of m.nodes.values()) if (n.parent === null) walk(n.h, 1);
  const groups = [...m.groups.values()].map((g) => `${g.name}={${[...g.members].join(',')}}`).join(' ');
  const users = [...m.users.values()].filter((u) => u.status !== 'active').map((u) => `${u.name}:${u.status}`).join(' ');
  const depts = [...m.depts.values()].map((d) => `${d.name}${d.alive ? '' : '(deleted)'}<${d.parent ?? 'top'}`).join(' ');
  const ud = [...m.udepts.entries()].map(([u, d]) => `${u}=${d.primary ?? '-'}+[${[...d.others].join(',')}]`).join(' ');
  return `${lines.join('\n')}\n  groups ${groups}${users ? `; users ${users}` : ''}\n  departments ${depts}; members ${ud}`;
}

// ---- one sequence against one server ----

class Divergence extends Error {}

class Run {
  constructor(server) {
    this.s = server;
    this.m = initialModel();
    this.ids = new Map(Object.entries(ROOT_IDS));
    this.D = { ...D };      // department name → id (a deleted and re-created department gets a new one)
    this.tokens = Object.fromEntries(Object.entries(U).map(([n, u]) => [n, u.token]));
    this.links = new Map(); // handle → {id, token, code, access}
    this.dead = [];         // purged handles, the last few are still checked (404)
    this.deadChecks = new Map(); // link handle → checks done since it was revoked or lost its node
    this.clock = 0;         // when the last trash or archive happened (retention waits past it)
    this.stats = {};
    this.requests = 0;
  }

  req(method, p, opts = {}) {
    this.requests++;
    return this.s.request(method, p, opts);
  }

  principal(p) {
    if (p === 'tenant') return p;
    const [kind, name] = p.split(':');
    if (kind === 'department') return `department:${this.D[name]}`;
    return kind === 'user' ? `user:${U[name].id}` : `group:${G[name]}`;
  }

  exec(op) {
    const id = (h) => this.ids.get(h);
    const token = op.a !== undefined ? this.tokens[op.a] : undefined;
    const R = (method, p, body) => this.req(method, p, { token, body });
    switch (op.k) {
      case 'mkdir': return R('POST', '/api/v1/folders', { parent: id(op.parent), name: op.name });
      case 'upload': return R('POST', `/api/v1/files?parent=${id(op.parent)}&name=${encodeURIComponent(op.name)}`, Buffer.from(`content of ${op.h}\n`));
      case 'rename': return R('PATCH', `/api/v1/nodes/${id(op.node)}`, { name: op.name });
      case 'move': return R('PATCH', `/api/v1/nodes/${id(op.node)}`, { parent: id(op.target) });
      case 'acl': return R('PUT', `/api/v1/nodes/${id(op.node)}/acl`, { entries: op.entries.map((e) => ({ principal: this.principal(e.p), level: LN[e.level], ...(e.sub ? { subdepartments: true } : {}) })) });
      case 'trash': return R('DELETE', `/api/v1/nodes/${id(op.node)}`);
      case 'purge': return R('DELETE', `/api/v1/nodes/${id(op.node)}?purge=true`);
      case 'restore': return R('POST', `/api/v1/nodes/${id(op.node)}/restore`, op.target !== undefined ? { parent: id(op.target) } : undefined);
      case 'share': return R('POST', '/api/v1/shares', { node: id(op.node), permission: op.perm, code: op.code });
      case 'unshare': return R('DELETE', `/api/v1/shares/${this.links.get(op.link).id}`);
      case 'unlock': return this.unlock(op.link);
      case 'members': return R('PUT', `/api/v1/admin/groups/${G[op.group]}/members`, { user_ids: op.users.map((u) => U[u].id) });
      case 'freeze': return R('PATCH', `/api/v1/admin/users/${U[op.who].id}`, { status: 'frozen' });
      case 'unfreeze': return R('PATCH', `/api/v1/admin/users/${U[op.who].id}`, { status: 'active', ...(op.restore ? { restore_links: true } : {}) });
      case 'offboard': return R('POST', `/api/v1/admin/users/${U[op.who].id}/offboard`, { transfer_to: U[op.heir].id, private_space: op.mode });
      case 'policy': return R('PATCH', '/api/v1/admin/policy', { allow_shares: op.allow });
      case 'udepts': return R('PUT', `/api/v1/admin/users/${U[op.who].id}/departments`, { primary: op.primary ? this.D[op.primary] : null, others: op.others.map((d) => this.D[d]) });
      case 'dmove': return R('PATCH', `/api/v1/admin/departments/${this.D[op.dept]}`, { parent: op.under ? this.D[op.under] : null });
      case 'ddelete': return R('DELETE', `/api/v1/admin/departments/${this.D[op.dept]}`);
      case 'dcreate': return R('POST', '/api/v1/admin/departments', { name: op.dept, parent: op.under ? this.D[op.under] : null });
      default: throw new Error(op.k);
    }
  }

  async unlock(lh) {
    const L = this.links.get(lh);
    const r = await this.req('POST', `/s/${L.token}/unlock`, { body: { code: L.code } });
    if (r.status === 200) L.access = r.json().access_token;
    return r;
  }

  fail(op, msg) { throw new Divergence(`${op ? `${describe(op)}: ` : ''}${msg}`); }

  /** The retention job: both periods at 1 s, past every trash and archive time, run, periods off. */
  async retention(op) {
    // Both tenants: t1 through an admin who is active (there always is one), t2 through eve.
    const admin = [...this.m.users.values()].find((u) => u.tenant === 't1' && u.role === 'admin' && u.status === 'active').name;
    const pol = async (body) => {
      for (const who of [admin, 'eve']) {
        const r = await this.req('PATCH', '/api/v1/admin/policy', { token: this.tokens[who], body });
        if (r.status !== 200) this.fail(op, `policy PATCH by ${who} answered ${r.status}`);
      }
    };
    await pol({ trash_retention: 1, offboarded_retention: 1 });
    // The job purges what was trashed (archived) more than 1 s before it runs: wait for the clock.
    while (Date.now() <= this.clock + 1100) await new Promise((res) => setTimeout(res, this.clock + 1150 - Date.now()));
    const plan = this.m.plan_retention();
    const run = cli(['ctl', 'retention', 'run', '-c', this.s.configPath]);
    if (run.status !== 0) this.fail(op, `coffer ctl retention run exited ${run.status}: ${run.stderr}`);
    const got = /^retention: (\d+) trashed node\(s\), (\d+) offboarded space\(s\), (\d+) provenance event\(s\) purged\n$/.exec(run.stdout);
    if (!got) this.fail(op, `unexpected report: ${run.stdout}`);
    const [trash, spaces] = [Number(got[1]), Number(got[2])];
    const { trashMin, trashMax } = plan.report;
    if (trash < trashMin || trash > trashMax || spaces !== plan.report.spaces) {
      this.fail(op, `report "${run.stdout.trim()}"; the model expects ${trashMin === trashMax ? trashMin : `${trashMin}..${trashMax}`} trashed node(s) and ${plan.report.spaces} space(s)`);
    }
    plan.commit();
    await pol({ trash_retention: 0, offboarded_retention: 0 });
  }

  /** One operation: predicted, sent, compared; the model follows on success. 'ok', 'refused' or 'skipped'. */
  async step(op) {
    const m = this.m;
    if (!m.resolvable(op)) return 'skipped';
    const st = (this.stats[op.k] ||= { ok: 0, refused: 0, codes: {} });
    if (op.k === 'retention') {
      await this.retention(op);
      for (const h of [...m.known]) if (!m.nodes.has(h) && !this.dead.includes(h)) this.dead.push(h);
      st.ok++;
      return 'ok';
    }
    const plan = m.plan(op);
    if (op.k === 'move' && m.active(op.a) && m.level(op.a, op.node) === EDIT) {
      const e = (this.stats['move by edit'] ||= { ok: 0, refused: 0, codes: {} });
      e[plan.commit ? 'ok' : 'refused']++;
      e.codes[plan.expect[0]] = (e.codes[plan.expect[0]] || 0) + 1;
    }
    const before = op.k === 'move' ? m.levelTable('t1') : op.k === 'restore' ? m.levelTable('t1', { inTrash: true }) : null;
    const prev = op.who !== undefined ? m.users.get(op.who).status : null;
    let r;
    try {
      r = await this.exec(op);
    } catch (e) {
      this.fail(op, `transport error ${e.message}`);
    }
    if (!plan.expect.includes(r.status)) {
      this.fail(op, `the model expects ${plan.expect.join(' or ')}, the server answered ${r.status} ${r.text().slice(0, 200)}`);
    }
    st.codes[r.status] = (st.codes[r.status] || 0) + 1;
    if (!plan.commit) {
      st.refused++;
      return 'refused';
    }
    st.ok++;
    const j = r.body.length ? r.json() : null;
    if (plan.level !== undefined && j.my_level !== plan.level) this.fail(op, `my_level ${j.my_level} in the answer, the model says ${plan.level}`);
    const gone = new Set(m.known);
    plan.commit();
    if (before && !plan.byManager) {
      const after = m.levelTable('t1');
      for (const [k, v] of before) {
        if ((after.get(k) ?? NONE) > v) throw new Error(`model self-check: ${describe(op)} raised ${k} from ${LN[v]} to ${LN[after.get(k)]} without manage`);
      }
    }
    for (const h of gone) if (!m.nodes.has(h) && !this.dead.includes(h)) this.dead.push(h);
    switch (op.k) {
      case 'mkdir': case 'upload': this.ids.set(op.h, j.id); break;
      case 'trash': this.clock = Date.now(); await this.checkTrash(op); break;
      case 'restore': case 'purge': await this.checkTrash(op); break;
      case 'share': {
        this.links.set(op.h, { id: j.id, token: j.url.split('/s/')[1], code: op.code, access: null });
        const want = m.linkStatuses(op.h);
        const u = await this.unlock(op.h);
        if (!want.includes(u.status)) this.fail(op, `unlock of the new link: the model expects ${want.join(' or ')}, the server answered ${u.status}`);
        break;
      }
      case 'offboard': await this.checkOffboard(op); break;
      case 'acl': await this.checkAcl(op); break;
      case 'freeze':
        if (prev === 'active') {
          const me = await this.req('GET', '/api/v1/me', { token: this.tokens[op.who] });
          if (me.status !== 401) this.fail(op, `the frozen user's session still answers ${me.status}`);
          const li = await this.req('POST', '/api/v1/auth/login', { body: { username: op.who, password: pw(op.who) } });
          if (li.status !== 403) this.fail(op, `a frozen user's login answered ${li.status}`);
        }
        break;
      case 'unfreeze':
        if (prev === 'frozen') {
          const li = await this.req('POST', '/api/v1/auth/login', { body: { username: op.who, password: pw(op.who) } });
          if (li.status !== 200) this.fail(op, `login after unfreezing answered ${li.status}`);
          this.tokens[op.who] = li.json().token;
        }
        break;
      case 'members': await this.checkAlerts(op); break;
      case 'dcreate': if (m.users.get(op.a).tenant === 't1') this.D[op.dept] = j.id; break;
      default: break;
    }
    return 'ok';
  }

  /** The space went whole to the heir, as "<username> (handed over)" in their private space (or is archived). */
  async checkOffboard(op) {
    const root = this.m.nodes.get(`root:${op.who}`);
    if (op.mode === 'archive') {
      this.clock = Date.now();
      return;
    }
    const r = await this.req('GET', `/api/v1/nodes/${this.ids.get(root.h)}`, { token: this.tokens[op.heir] });
    const j = r.status === 200 ? r.json() : {};
    if (r.status !== 200 || j.name !== root.name || j.parent !== this.ids.get(root.parent) || j.space !== undefined || j.my_level !== 'manage') {
      this.fail(op, `the heir sees the handed-over space as ${r.status} ${r.text().slice(0, 300)}; the model: "${root.name}" in ${root.parent}, manage`);
    }
  }

  /** The ACL view after a PUT: own entries, inherited entries (with where from), the space's owner. */
  /** The actor's trash list (GET /api/v1/trash) against the model's. */
  async checkTrash(op) {
    const r = await this.req('GET', '/api/v1/trash?limit=1000', { token: this.tokens[op.a] });
    if (r.status !== 200) this.fail(op, `GET /api/v1/trash answered ${r.status}`);
    const byId = new Map([...this.ids].map(([h, i]) => [i, h]));
    const got = r.json().items.map((n) => byId.get(n.id) || n.id).sort();
    const want = this.m.trashOf(op.a).sort();
    if (JSON.stringify(got) !== JSON.stringify(want)) this.fail(op, `${op.a}'s trash lists [${got.join(', ')}], the model says [${want.join(', ')}]`);
  }

  async checkAcl(op) {
    const m = this.m;
    // Read by the actor, or (if the PUT took the actor's own access away) by someone who still sees it.
    const reader = [op.a, ...m.users.keys()].find((u) => m.active(u) && m.view(u, op.node).status === 200 && m.view(u, op.node).level !== 'none');
    if (!reader) return;
    const r = await this.req('GET', `/api/v1/nodes/${this.ids.get(op.node)}/acl`, { token: this.tokens[reader] });
    if (r.status !== 200) this.fail(op, `GET acl by ${reader} answered ${r.status}`);
    const j = r.json();
    const key = (e, from) => `${this.principal(e.p)}${e.sub ? '+sub' : ''}=${LN[e.level]}${from ? `<${this.ids.get(from)}` : ''}`;
    const own = m.nodes.get(op.node).acl.map((e) => key(e)).sort();
    const inherited = [];
    for (let n = m.nodes.get(op.node); n.parent !== null;) {
      n = m.nodes.get(n.parent);
      inherited.push(...n.acl.map((e) => key(e, n.h)));
    }
    const root = m.rootOf(op.node);
    const owner = root.space === 'private' ? U[root.owner].id : null;
    const got = {
      own: j.entries.map((e) => `${e.principal}${e.subdepartments ? '+sub' : ''}=${e.level}`).sort(),
      inherited: j.inherited.map((e) => `${e.principal}${e.subdepartments ? '+sub' : ''}=${e.level}<${e.from}`).sort(),
      owner: j.owner ? j.owner.id : null,
    };
    const want = { own, inherited: inherited.sort(), owner };
    try {
      assert.deepEqual(got, want);
    } catch {
      this.fail(op, `the ACL view is ${JSON.stringify(got)}, the model's ${JSON.stringify(want)}`);
    }
  }

  /** Every active user's alert.group_change alerts, against the model's bounds. */
  async checkAlerts(op) {
    const users = [...this.m.users.values()].filter((u) => u.status === 'active' && u.tenant === 't1');
    const rs = await Promise.all(users.map((u) => this.req('GET', '/api/v1/me/alerts', { token: this.tokens[u.name] })));
    users.forEach((u, i) => {
      const b = this.m.alerts.get(u.name);
      if (b.max + (b.other || 0) >= 190) return; // the server keeps the newest 200 (department alerts too)
      const n = rs[i].json().alerts.filter((x) => x.kind === 'alert.group_change').length;
      if (n < b.min || n > b.max) this.fail(op, `${u.name} has ${n} group-change alert(s), the model expects ${b.min === b.max ? b.min : `${b.min}..${b.max}`}`);
    });
  }

  /**
   * The full comparison: every active actor × every node (and the last purged ones), every link.
   * The auditor and eve (who must see nothing of t1) every fourth step.
   */
  async check(step) {
    const m = this.m;
    const handles = [...m.nodes.keys(), ...this.dead.slice(-6)];
    const actors = [...m.users.values()].filter((u) => u.status === 'active' && (step % 4 === 0 || (u.role !== 'auditor' && u.name !== 'eve'))).map((u) => u.name);
    const jobs = [];
    for (const a of actors) {
      for (const h of handles) {
        const want = m.view(a, h);
        jobs.push(this.req('GET', `/api/v1/nodes/${this.ids.get(h)}`, { token: this.tokens[a] }).then((r) => {
          const got = r.status === 200 ? { status: 200, level: r.json().my_level } : { status: r.status };
          return want.status === got.status && want.level === got.level ? null
            : `${a} on ${h}: the model says ${want.level ?? want.status}, the server ${got.level ?? got.status}`;
        }));
      }
    }
    for (const [lh, L] of this.links) {
      if (!L.access) continue;
      const l = m.links.get(lh);
      if (l.revoked || !m.nodes.has(l.node) || m.inTrash(l.node)) { // for good: a few more checks only
        const n = this.deadChecks.get(lh) || 0;
        if (n >= 3) continue;
        this.deadChecks.set(lh, n + 1);
      }
      const { statuses: want, why } = m.linkCase(lh);
      jobs.push(this.req('GET', `/s/${L.token}/info`, { token: L.access }).then((r) => {
        if (want.length > 1) { // an open case: what the server chose, for the report
          const e = (this.stats[`link: ${why.join(' + ')}`] ||= { ok: 0, refused: 0, codes: {} });
          e.codes[r.status] = (e.codes[r.status] || 0) + 1;
        }
        return want.includes(r.status) ? null
          : `link ${lh} (${l.perm} on ${l.node} by ${l.creator}; ${why.join(', ') || 'no reason to fail'}): the model expects ${want.join(' or ')}, the server answered ${r.status}`;
      }));
    }
    // One actor's listings (a different actor each step): every folder it can see lists exactly the
    // folder's children that are not trashed, each with the actor's level on it.
    const lister = actors[step % actors.length];
    const byId = new Map([...this.ids].map(([h, id]) => [id, h]));
    for (const f of m.nodes.values()) {
      if (f.type !== 'folder' || m.view(lister, f.h).status !== 200) continue;
      const hideNone = m.level(lister, f.h) === NONE; // the team root listed without a level: what they can see
      const want = [...m.nodes.values()].filter((c) => c.parent === f.h && !c.trashed && !(hideNone && m.level(lister, c.h) === NONE)).map((c) => `${c.h}=${LN[m.level(lister, c.h)]}`).sort();
      jobs.push(this.req('GET', `/api/v1/nodes/${this.ids.get(f.h)}/children?limit=1000`, { token: this.tokens[lister] }).then((r) => {
        if (r.status !== 200) return `${lister} lists ${f.h}: the server answered ${r.status}`;
        const got = r.json().items.map((c) => `${byId.get(c.id) ?? c.id}=${c.my_level}`).sort();
        return got.join() === want.join() ? null : `${lister} lists ${f.h}: the model says [${want.join(' ')}], the server [${got.join(' ')}]`;
      }));
    }
    const diffs = (await Promise.all(jobs)).filter(Boolean);
    if (diffs.length) throw new Divergence(`after the step: ${diffs.length} difference(s):\n    ${diffs.slice(0, 12).join('\n    ')}`);
  }
}

/**
 * Plays a sequence on a fresh server. source: a list of operations, or {seed, steps} to generate
 * them. checkEach: the full comparison after every step (else once at the end). Returns {ops (as
 * played), did (per op: 'ok', 'refused' or 'skipped'), failure?, run}.
 */
async function play(source, { checkEach = true } = {}) {
  const server = await freshServer();
  const run = new Run(server);
  const ops = [], did = [];
  let failure = null;
  const diverged = (e, i) => {
    if (!(e instanceof Divergence)) throw e;
    failure = { step: i, message: e.message, tree: dumpTree(run.m) };
  };
  try {
    const rng = Array.isArray(source) ? null : rngOf(source.seed);
    const ctx = { nextNode: 1, nextLink: 1, offboards: 0 };
    const n = Array.isArray(source) ? source.length : source.steps;
    for (let i = 0; i < n && !failure; i++) {
      const op = rng ? gen(run.m, rng, ctx) : source[i];
      ops.push(op);
      try {
        const r = await run.step(op);
        did.push(r);
        if (op.k === 'offboard' && r === 'ok') ctx.offboards++;
        if (r !== 'skipped' && checkEach) await run.check(i);
      } catch (e) {
        diverged(e, i);
      }
    }
    if (!failure && !checkEach) {
      try { await run.check(0); } catch (e) { diverged(e, ops.length - 1); }
    }
  } finally {
    // The runs are stopped cleanly (the harness then asserts exit code 0 and no sanitizer report);
    // shrinking's replays, which only ask whether a sequence still diverges, are killed: faster.
    if (checkEach) await server.stop();
    else await server.kill();
    server.cleanup();
  }
  return { ops, did, failure, run };
}

/**
 * A shorter list that still diverges, within the time: first only the operations that changed
 * something (and the one that diverged), then delta debugging (ddmin, complements). Every replay
 * that diverges also drops what it skipped (operations naming nodes or links no longer created)
 * and what came after its divergence.
 */
async function shrink(ops, did, deadline) {
  let cur = ops, tries = 0, last = null;
  const fails = async (cand) => {
    tries++;
    const r = await play(cand, { checkEach: false });
    if (!r.failure) return false;
    last = r.failure;
    cur = r.ops.slice(0, r.failure.step + 1).filter((op, i) => r.did[i] !== 'skipped' || i === r.failure.step);
    return true;
  };
  const changed = ops.filter((op, i) => did[i] === 'ok' || i === ops.length - 1);
  if (changed.length < ops.length) await fails(changed);
  let n = 2;
  while (cur.length >= 2 && Date.now() < deadline) {
    const size = Math.ceil(cur.length / n);
    let reduced = false;
    for (let i = 0; i < n && Date.now() < deadline; i++) {
      const cand = [...cur.slice(0, i * size), ...cur.slice((i + 1) * size)];
      if (cand.length && await fails(cand)) {
        n = Math.max(n - 1, 2);
        reduced = true;
        break;
      }
    }
    if (!reduced) {
      if (n >= cur.length) break;
      n = Math.min(cur.length, n * 2);
    }
  }
  // Then smaller operations: ACL entries and group members one by one.
  for (let i = 0; i < cur.length && Date.now() < deadline; i++) {
    const field = cur[i].k === 'acl' ? 'entries' : cur[i].k === 'members' ? 'users' : cur[i].k === 'udepts' ? 'others' : null;
    for (let j = 0; field && j < cur[i][field].length && Date.now() < deadline;) {
      const op = { ...cur[i], [field]: cur[i][field].filter((_, x) => x !== j) };
      const before = cur;
      if (!await fails([...cur.slice(0, i), op, ...cur.slice(i + 1)])) j++;
      else if (cur.length !== before.length) i = -1; // a replay also dropped operations: start over
      if (i < 0) break;
    }
  }
  return { ops: cur, tries, minimal: Date.now() < deadline, failure: last };
}

function report(seed, first, small) {
  const lines = [
    `MODEL DIVERGENCE (seed ${seed}) at step ${first.step + 1}: ${first.message}`,
    `shortest sequence found: ${small.ops.length} step(s) (of ${first.step + 1}; ${small.tries} replays${small.minimal ? '; no single step or list element can be dropped' : '; shrinking stopped at its time limit'}):`,
    ...small.ops.map((op, i) => `  ${String(i + 1).padStart(3)}. ${describe(op)}`),
    `it ends with: ${small.failure ? small.failure.message : first.message}`,
    'model state at that point:',
    small.failure ? small.failure.tree : first.tree,
    `replay: MODEL_REPLAY='${JSON.stringify(small.ops)}'`,
  ];
  return lines.join('\n');
}

async function runSeeds() {
  if (REPLAY) {
    const r = await play(REPLAY);
    if (r.failure) assert.fail(`replay diverges at step ${r.failure.step + 1}: ${r.failure.message}\n${r.failure.tree}`);
    return;
  }
  let steps = 0, requests = 0;
  const t0 = Date.now();
  const stats = {};
  for (const seed of SEEDS) {
    const ts = Date.now();
    let r;
    try {
      r = await play({ seed, steps: STEPS });
    } catch (e) {
      e.message = `seed ${seed}: ${e.message}`;
      throw e;
    }
    steps += r.ops.length;
    requests += r.run.requests;
    for (const [k, v] of Object.entries(r.run.stats)) {
      stats[k] ||= { ok: 0, refused: 0, codes: {} };
      stats[k].ok += v.ok;
      stats[k].refused += v.refused;
      for (const [c, n] of Object.entries(v.codes || {})) stats[k].codes[c] = (stats[k].codes[c] || 0) + n;
    }
    console.log(`# seed ${seed}: ${r.ops.length} steps, ${r.run.requests} requests, ${((Date.now() - ts) / 1000).toFixed(1)} s, ${r.run.m.nodes.size} nodes and ${r.run.m.links.size} links at the end`);
    if (r.failure) {
      console.log(`# seed ${seed} diverged at step ${r.failure.step + 1}: ${r.failure.message}\n# shrinking…`);
      const small = await shrink(r.ops.slice(0, r.failure.step + 1), r.did, Date.now() + SHRINK_MS);
      const text = report(seed, r.failure, small);
      console.log(text);
      assert.fail(text);
    }
  }
  console.log(`# ${steps} steps over ${SEEDS.length} seeds, ${requests} requests, ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  console.log(`# operations (succeeded/refused, then answers): ${Object.entries(stats).map(([k, v]) => `${k} ${v.ok}/${v.refused} {${Object.entries(v.codes).map(([c, n]) => `${c}:${n}`).join(' ')}}`).join(', ')}`);
}

test('model-based access: seeded random sequences, every level and link after every step', { timeout: 3600 * 1000 }, async () => {
  await runSeeds();
});
