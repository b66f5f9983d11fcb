// accessmodel.mjs: a reference model of Coffer's access rules, written from docs/SECURITY.md
// ("Access: the level rule") and docs/API.md (files and folders, ACLs, share links, administration),
// not from the server's answers. model.test.mjs drives the real server and this model with the same
// operations and compares every answer and every level.
//
// The model knows tenants, users (role, status, private space), groups and their members,
// departments (issue 23: a tree per tenant, each user's primary and other departments; an entry
// {p: 'department:d1', sub: true} also reaches the members of the departments below d1), a tree of
// nodes per tenant (parent, name, type, trash state, own ACL entries, space roots with their owner,
// archived spaces), share links (node, creator, permission, revoked, suspended by a freeze) and the
// tenant policy's allow_shares. Nodes and links are named by handles ("n7", "l3"); users and groups by name. An
// operation is plain data ({k: 'move', a: 'bob', node: 'n3', target: 'n5'}); plan(op) predicts its
// answer and returns a commit function that applies it to the model (called only on success).
//
// Where the documents leave a case open, the model accepts every answer the text allows (a set of
// statuses) rather than copying what the server happens to do; those cases are listed at
// linkStatuses() below.

export const NONE = 0, VIEW = 1, DOWNLOAD = 2, EDIT = 3, MANAGE = 4;
export const LEVELS = ['none', 'view', 'download', 'edit', 'manage'];

/** The handover folder's name for an offboarded user's space (API.md, offboard). */
export const handoverName = (username) => `${username} (handed over)`;

export class Model {
  constructor() {
    this.users = new Map();   // name → {name, tenant, role, status, root}
    this.groups = new Map();  // name → {name, tenant, members: Set(name)}
    this.depts = new Map();   // name → {name, tenant, parent (name or null), alive}
    this.udepts = new Map();  // user → {primary (name or null), others: Set(name)}
    this.foreignDepts = new Set(); // "tenant:name" of departments another tenant's admin made (top level)
    this.nodes = new Map();   // handle → {h, tenant, type, name, parent, space, owner, archived, trashed, acl}
    this.links = new Map();   // handle → {h, node, creator, perm, revoked, tainted (suspended by a freeze)}
    this.policy = new Map();  // tenant → {allowShares}
    this.alerts = new Map();  // user → {min, max}: alert.group_change alerts expected so far
    this.known = new Set();   // every node handle that ever existed (a purged one answers 404)
  }

  // ---- building the universe (setup) ----

  addTenant(tenant, rootHandle) {
    this.policy.set(tenant, { allowShares: true });
    this.known.add(rootHandle);
    this.nodes.set(rootHandle, { h: rootHandle, tenant, type: 'folder', name: null, parent: null, space: 'tenant', owner: null, archived: false, trashed: false, acl: [] });
  }

  addUser(name, tenant, role, rootHandle) {
    this.users.set(name, { name, tenant, role, status: 'active', root: rootHandle });
    this.alerts.set(name, { min: 0, max: 0 });
    this.known.add(rootHandle);
    this.nodes.set(rootHandle, { h: rootHandle, tenant, type: 'folder', name: null, parent: null, space: 'private', owner: name, archived: false, trashed: false, acl: [] });
  }

  addFolder(h, parent, name) {
    this.known.add(h);
    this.nodes.set(h, { h, tenant: this.nodes.get(parent).tenant, type: 'folder', name, parent, space: null, owner: null, archived: false, trashed: false, acl: [] });
  }

  addGroup(name, tenant, members = []) {
    this.groups.set(name, { name, tenant, members: new Set(members) });
  }

  addDept(name, tenant, parent = null) {
    this.depts.set(name, { name, tenant, parent, alive: true });
  }

  setDepts(user, primary, others = []) {
    this.udepts.set(user, { primary, others: new Set(others.filter((d) => d !== primary)) });
  }

  /** A user's departments (primary and others). */
  deptsOf(user) {
    const d = this.udepts.get(user);
    if (!d) return [];
    return [...(d.primary ? [d.primary] : []), ...d.others];
  }

  /** Whether department a is d or lies below d. */
  deptBelow(a, d) {
    for (let x = this.depts.get(a); x; x = x.parent === null ? null : this.depts.get(x.parent)) if (x.name === d) return true;
    return false;
  }

  // ---- queries ----

  /** The space root above node h (walking parents, trash ignored). */
  rootOf(h) {
    let n = this.nodes.get(h);
    while (n.parent !== null) n = this.nodes.get(n.parent);
    return n;
  }

  /** Whether a is h or lies below h. */
  isBelow(a, h) {
    for (let n = this.nodes.get(a); n; n = n.parent === null ? null : this.nodes.get(n.parent)) if (n.h === h) return true;
    return false;
  }

  /** Whether node h is trashed or lies below a trashed folder. */
  inTrash(h) {
    for (let n = this.nodes.get(h); n; n = n.parent === null ? null : this.nodes.get(n.parent)) if (n.trashed) return true;
    return false;
  }

  matches(user, e) {
    if (e.p === 'tenant') return true;
    const [kind, name] = e.p.split(':');
    if (kind === 'user') return name === user;
    if (kind === 'department') return this.deptsOf(user).some((d) => d === name || (e.sub === true && this.deptBelow(d, name)));
    const g = this.groups.get(name);
    return !!g && g.members.has(user);
  }

  /**
   * The level rule (SECURITY.md): null when node h does not exist for `user` (another tenant, gone,
   * or trashed unless inTrash), else the effective level (NONE..MANAGE).
   */
  level(user, h, { inTrash = false } = {}) {
    const u = this.users.get(user);
    let n = this.nodes.get(h);
    if (!u || !n || n.tenant !== u.tenant) return null;
    let best = NONE;
    for (;;) {
      if (n.trashed && !inTrash) return null;
      for (const e of n.acl) if (this.matches(user, e) && e.level > best) best = e.level;
      if (n.parent === null) break;
      n = this.nodes.get(n.parent);
    }
    if (n.space === 'private' && n.owner === user) best = MANAGE;
    if (n.space === 'tenant' && u.role === 'admin') best = MANAGE;
    if (u.role === 'auditor' || n.archived) best = NONE;
    return best;
  }

  /** What GET /api/v1/nodes/{h} answers user: {status: 404} or {status: 200, level}. */
  view(user, h) {
    const l = this.level(user, h);
    // The team space's root answers every member of its tenant, with level none; its listing then
    // holds only the children they can see (issue 21, "Team files" for members).
    const n = this.nodes.get(h);
    if (l === NONE && n.space === 'tenant' && n.parent === null && this.users.get(user).role !== 'auditor') return { status: 200, level: LEVELS[NONE] };
    return l === null || l === NONE ? { status: 404 } : { status: 200, level: LEVELS[l] };
  }

  /** 404 / 403 / 0 for an operation on h that needs `need`. */
  access(user, h, need, opts) {
    const l = this.level(user, h, opts);
    if (l === null || l === NONE) return 404;
    return l < need ? 403 : 0;
  }

  liveChild(parent, name) {
    for (const n of this.nodes.values()) if (n.parent === parent && !n.trashed && n.name === name) return n;
    return null;
  }

  /** The ACL entries on the chain from folder h up to its root (the "present chain" of a move). */
  chain(h) {
    const out = [];
    for (let n = this.nodes.get(h); n; n = n.parent === null ? null : this.nodes.get(n.parent)) out.push(...n.acl);
    return out;
  }

  /**
   * Whether moving node h under `target` would raise anyone's level (SECURITY.md, Moves): another
   * space, or an entry on the target's chain that the node's present chain does not cover (same
   * principal or the whole tenant, at the same level or higher; groups and departments as principals,
   * a department entry with sub covering one without, not the other way round).
   */
  moveRaises(h, target) {
    const node = this.nodes.get(h);
    if (this.rootOf(node.parent).h !== this.rootOf(target).h) return true;
    const from = this.chain(node.parent);
    return this.chain(target).some((e) => !from.some((o) => (o.p === 'tenant' || (o.p === e.p && (o.sub === true || e.sub !== true))) && o.level >= e.level));
  }

  active(user) { const u = this.users.get(user); return !!u && u.status === 'active'; }

  /** Every (user, node) level of a tenant, for the "no raise" self-check of the rule (inTrash: trashed
   * nodes at their level where they were, the baseline of a restore). */
  levelTable(tenant, opts) {
    const t = new Map();
    for (const u of this.users.values()) {
      if (u.tenant !== tenant) continue;
      for (const n of this.nodes.values()) if (n.tenant === tenant) t.set(`${u.name} ${n.h}`, this.level(u.name, n.h, opts) ?? NONE);
    }
    return t;
  }

  /**
   * The answers a link's recipient routes may give now (GET /s/{token}/info with an access token,
   * POST /s/{token}/unlock with the right code), as a set of statuses (API.md "Recipients",
   * SECURITY.md "Share links"). Each reason for a link not to work gives its status:
   *  - revoked (explicitly, or by offboarding its creator): 410;
   *  - the node trashed or purged: 404;
   *  - the creator frozen, or frozen since the link was made and unfrozen without restore_links
   *    (the link stays suspended): 410;
   *  - the creator offboarded, or no longer holding manage on the node (a link is a grant to
   *    outsiders, which only manage may make: docs/API.md): 410;
   *  - shares switched off by the tenant policy: 410 (links_disabled; switching them on restores).
   * The documents give no precedence between reasons: when several hold, any of their statuses is
   * accepted. With no reason at all the link works: 200.
   */
  linkStatuses(lh) { return this.linkCase(lh).statuses; }

  /** linkStatuses with the reasons that apply (for the test's statistics of the open cases). */
  linkCase(lh) {
    const l = this.links.get(lh);
    const u = this.users.get(l.creator);
    const sure = new Set(), maybe = new Set(), why = [];
    const reason = (set, status, name) => { set.add(status); why.push(name); };
    if (l.revoked) reason(sure, 410, 'revoked');
    const lv = this.level(l.creator, l.node);
    if (lv === null) reason(sure, 404, 'node gone');
    if (u.status !== 'active') reason(sure, 410, `creator ${u.status}`);
    if (lv !== null && lv < MANAGE) reason(sure, 410, 'creator lost manage'); // a link is a grant: manage only
    if (l.tainted) reason(sure, 410, 'suspended by a freeze');
    if (!this.policy.get(u.tenant).allowShares) reason(sure, 410, 'shares off');
    if (!sure.size) sure.add(200);
    return { statuses: [...new Set([...sure, ...maybe])].sort(), why };
  }

  // ---- operations ----

  /**
   * Predicts op's answer: {expect: [statuses it may give], commit?: () => void (present when the
   * answer is a success: applies it to the model), level?: my_level in the answer, byManager?: a
   * move by someone with manage}. Actors who are not active (frozen, offboarded) have no session any
   * more: 401.
   */
  plan(op) {
    const f = this[`plan_${op.k}`];
    if (!f) throw new Error(`unknown op ${op.k}`);
    if (op.a !== undefined && !this.active(op.a)) return { expect: [401] };
    return f.call(this, op);
  }

  /** Whether every handle op names exists (a shrunk sequence may have dropped its creation). */
  resolvable(op) {
    for (const k of ['node', 'target', 'parent']) if (op[k] !== undefined && !this.known.has(op[k])) return false;
    if (op.link !== undefined && !this.links.has(op.link)) return false;
    return true;
  }

  create(op, type) {
    const p = this.nodes.get(op.parent);
    const deny = p ? this.access(op.a, op.parent, EDIT) : 404;
    if (deny) return { expect: [deny] };
    if (p.type !== 'folder') return { expect: [400] };
    if (this.liveChild(op.parent, op.name)) return { expect: [409] };
    const level = LEVELS[this.level(op.a, op.parent)];
    return {
      expect: [201], level,
      commit: () => {
        this.known.add(op.h);
        this.nodes.set(op.h, { h: op.h, tenant: p.tenant, type, name: op.name, parent: op.parent, space: null, owner: null, archived: false, trashed: false, acl: [] });
      },
    };
  }

  plan_mkdir(op) { return this.create(op, 'folder'); }
  plan_upload(op) { return this.create(op, 'file'); }

  plan_rename(op) {
    const n = this.nodes.get(op.node);
    const deny = n ? this.access(op.a, op.node, EDIT) : 404;
    if (deny) return { expect: [deny] };
    if (n.parent === null) return { expect: [403] };
    const other = this.liveChild(n.parent, op.name);
    if (other && other.h !== n.h) return { expect: [409] };
    return { expect: [200], level: LEVELS[this.level(op.a, op.node)], commit: () => { n.name = op.name; } };
  }

  plan_move(op) {
    const n = this.nodes.get(op.node);
    let deny = n ? this.access(op.a, op.node, EDIT) : 404;
    if (deny) return { expect: [deny] };
    if (n.parent === null) return { expect: [403] };
    if (op.target === n.parent) return { expect: [200] }; // not a move: nothing changes
    const t = this.nodes.get(op.target);
    deny = t ? this.access(op.a, op.target, EDIT) : 404;
    if (deny) return { expect: [deny] };
    if (t.type !== 'folder') return { expect: [400] };
    if (this.isBelow(op.target, op.node)) return { expect: [400] };
    const manage = this.level(op.a, op.node) === MANAGE;
    if (!manage && this.moveRaises(op.node, op.target)) return { expect: [403] };
    if (this.liveChild(op.target, n.name)) return { expect: [409] };
    return { expect: [200], byManager: manage, commit: () => { n.parent = op.target; } };
  }

  plan_acl(op) {
    const n = this.nodes.get(op.node);
    const deny = n ? this.access(op.a, op.node, MANAGE) : 404;
    if (deny) return { expect: [deny] };
    const foreign = op.entries.some((e) => {
      if (e.p === 'tenant') return false;
      const [kind, name] = e.p.split(':');
      const x = kind === 'user' ? this.users.get(name) : kind === 'department' ? this.depts.get(name) : this.groups.get(name);
      return !x || x.tenant !== n.tenant || x.alive === false;
    });
    if (foreign) return { expect: [400] };
    return { expect: [200], commit: () => { n.acl = op.entries.map((e) => ({ ...e })); } };
  }

  plan_trash(op) {
    const n = this.nodes.get(op.node);
    const deny = n ? this.access(op.a, op.node, MANAGE) : 404;
    if (deny) return { expect: [deny] };
    if (n.parent === null) return { expect: [403] };
    return { expect: [204], commit: () => { n.trashed = true; } };
  }

  /**
   * POST /nodes/{id}/restore (issue 21, API.md "The trash"): edit on the node where it was, a trashed
   * top (else 409), edit on the destination (the original folder: 409 when it is in the trash, 403
   * without edit; a chosen one: 404/403, 400 for a file), the move rule from where it was, the name
   * free there (409).
   */
  plan_restore(op) {
    const n = this.nodes.get(op.node);
    const deny = n ? this.access(op.a, op.node, EDIT, { inTrash: true }) : 404;
    if (deny) return { expect: [deny] };
    if (n.parent === null || !n.trashed) return { expect: [409] };
    let dest = n.parent;
    if (op.target !== undefined) {
      const t = this.nodes.get(op.target);
      const d = t ? this.access(op.a, op.target, EDIT) : 404;
      if (d) return { expect: [d] };
      if (t.type !== 'folder') return { expect: [400] };
      dest = op.target;
    } else if (this.inTrash(dest)) {
      return { expect: [409] };
    } else if ((this.level(op.a, dest) ?? NONE) < EDIT) {
      return { expect: [403] };
    }
    const manage = this.level(op.a, op.node, { inTrash: true }) === MANAGE;
    if (!manage && this.moveRaises(op.node, dest)) return { expect: [403] };
    if (this.liveChild(dest, n.name)) return { expect: [409] };
    return { expect: [200], byManager: manage, commit: () => { n.trashed = false; n.parent = dest; } };
  }

  /** The trashed tops user sees in GET /api/v1/trash: edit or more where they were. */
  trashOf(user) {
    return [...this.nodes.values()].filter((n) => n.trashed && (this.level(user, n.h, { inTrash: true }) ?? NONE) >= EDIT).map((n) => n.h);
  }

  /** Removes node h and its whole subtree (trashed descendants included) and returns the handles. */
  destroy(h) {
    const gone = [...this.nodes.keys()].filter((x) => this.isBelow(x, h));
    for (const x of gone) this.nodes.delete(x);
    return gone;
  }

  plan_purge(op) {
    const n = this.nodes.get(op.node);
    const deny = n ? this.access(op.a, op.node, MANAGE, { inTrash: true }) : 404;
    if (deny) return { expect: [deny] };
    if (n.parent === null) return { expect: [403] };
    return { expect: [204], commit: () => { this.destroy(op.node); } };
  }

  plan_share(op) {
    const n = this.nodes.get(op.node);
    const deny = n ? this.access(op.a, op.node, MANAGE) : 404;
    if (deny) return { expect: [deny] };
    if (!this.policy.get(n.tenant).allowShares) return { expect: [403] };
    return {
      expect: [201],
      commit: () => { this.links.set(op.h, { h: op.h, node: op.node, creator: op.a, perm: op.perm, revoked: false, tainted: false }); },
    };
  }

  plan_unshare(op) {
    const l = this.links.get(op.link);
    const u = this.users.get(op.a), c = this.users.get(l.creator);
    if (u.tenant !== c.tenant) return { expect: [404] };
    if (l.creator !== op.a) {
      const lv = this.level(op.a, l.node);
      if (lv === null || lv < MANAGE) return { expect: [404] };
    }
    return { expect: [204], commit: () => { l.revoked = true; } };
  }

  plan_unlock(op) { return { expect: this.linkStatuses(op.link) }; }

  /** 403 for members and auditors on admin routes; 404 for an admin of another tenant. */
  adminDeny(a, tenant) {
    const u = this.users.get(a);
    if (u.role !== 'admin') return 403;
    return u.tenant !== tenant ? 404 : 0;
  }

  plan_members(op) {
    const g = this.groups.get(op.group);
    const deny = this.adminDeny(op.a, g.tenant);
    if (deny) return { expect: [deny] };
    const next = new Set(op.users);
    if (next.has(op.a) && !g.members.has(op.a)) return { expect: [403] }; // another admin must
    if (op.users.some((x) => !this.users.has(x) || this.users.get(x).tenant !== g.tenant)) return { expect: [400] };
    return {
      expect: [200],
      commit: () => {
        const changed = next.size !== g.members.size || [...next].some((x) => !g.members.has(x));
        g.members = next;
        // Owners of private spaces holding a grant to the group are alerted (SECURITY.md). A grant
        // on a trashed node, or a PUT that changes nothing, may or may not count: bounds.
        const sure = new Set(), maybe = new Set();
        for (const n of this.nodes.values()) {
          if (!n.acl.some((e) => e.p === `group:${op.group}`)) continue;
          const root = this.rootOf(n.h);
          if (root.space !== 'private') continue;
          (changed && !this.inTrash(n.h) ? sure : maybe).add(root.owner);
        }
        for (const o of sure) { const a = this.alerts.get(o); a.min++; a.max++; }
        for (const o of maybe) if (!sure.has(o)) this.alerts.get(o).max++;
      },
    };
  }

  /**
   * PUT /admin/users/{id}/departments (issue 23): admins of the user's tenant (another tenant's
   * admin: the user is not found, 404); an admin may not add themselves to a department they are
   * not in (403, as for groups); the departments replace the user's, whole.
   */
  plan_udepts(op) {
    const t = this.users.get(op.who);
    const deny = this.adminDeny(op.a, t.tenant);
    if (deny) return { expect: [deny] };
    const had = new Set(this.deptsOf(op.who));
    const want = [...(op.primary ? [op.primary] : []), ...op.others];
    if (op.who === op.a && want.some((d) => !had.has(d))) return { expect: [403] };
    if (want.some((d) => !this.depts.get(d).alive)) return { expect: [404] };
    return { expect: [200], commit: () => { this.setDepts(op.who, op.primary, op.others); this.deptAlerted(); } };
  }

  /** A department change may alert (alert.department_change) any owner of a private space holding a
   * grant to a department: counted as an upper bound only, since these alerts share the list the
   * server keeps (the newest 200) with the group-change alerts checked exactly. */
  deptAlerted() {
    const owners = new Set();
    for (const n of this.nodes.values()) {
      if (!n.acl.some((e) => e.p.startsWith('department:'))) continue;
      const root = this.rootOf(n.h);
      if (root.space === 'private') owners.add(root.owner);
    }
    for (const o of owners) this.alerts.get(o).other = (this.alerts.get(o).other || 0) + 1;
  }

  /** PATCH /admin/departments/{id} {"parent": under} (issue 23): never below itself (409 cycle). */
  plan_dmove(op) {
    const d = this.depts.get(op.dept);
    const deny = this.adminDeny(op.a, d.tenant);
    if (deny) return { expect: [deny] };
    if (!d.alive || (op.under !== null && !this.depts.get(op.under).alive)) return { expect: [404] };
    if (op.under !== null && this.deptBelow(op.under, op.dept)) return { expect: [409] };
    return { expect: [200], commit: () => { d.parent = op.under; this.deptAlerted(); } };
  }

  /** DELETE /admin/departments/{id}: only when empty (no members, no sub-departments: 409); the entries
   * naming it go with it, everywhere. */
  plan_ddelete(op) {
    const d = this.depts.get(op.dept);
    const deny = this.adminDeny(op.a, d.tenant);
    if (deny) return { expect: [deny] };
    if (!d.alive) return { expect: [404] };
    const busy = [...this.depts.values()].some((x) => x.alive && x.parent === op.dept) ||
      [...this.udepts.keys()].some((u) => this.deptsOf(u).includes(op.dept));
    if (busy) return { expect: [409] };
    return {
      expect: [204],
      commit: () => {
        d.alive = false;
        for (const n of this.nodes.values()) n.acl = n.acl.filter((e) => e.p !== `department:${op.dept}`);
      },
    };
  }

  /** POST /admin/departments {"name", "parent"} for a deleted department's name: a new department
   * (a new id) that inherits nothing. Another tenant's admin creates one in their own tenant (201 at
   * the top; a parent of t1 is not found there: 404). */
  plan_dcreate(op) {
    const d = this.depts.get(op.dept);
    const u = this.users.get(op.a);
    if (u.role !== 'admin') return { expect: [403] };
    if (u.tenant !== d.tenant) { // in their own tenant, where the name is taken after the first time
      const key = `${u.tenant}:${op.dept}`;
      if (op.under !== null) return { expect: [404] };
      if (this.foreignDepts.has(key)) return { expect: [409] };
      return { expect: [201], commit: () => { this.foreignDepts.add(key); } };
    }
    if (op.under !== null && !this.depts.get(op.under).alive) return { expect: [404] };
    return { expect: [201], commit: () => { d.alive = true; d.parent = op.under; } };
  }

  userTarget(op) {
    const t = this.users.get(op.who);
    const deny = this.adminDeny(op.a, t.tenant);
    if (deny) return deny;
    if (t.status === 'offboarded') return 409;
    return 0;
  }

  plan_freeze(op) {
    const deny = this.userTarget(op);
    if (deny) return { expect: [deny] };
    if (op.who === op.a) return { expect: [400] };
    return {
      expect: [200],
      commit: () => {
        const t = this.users.get(op.who);
        if (t.status === 'active') for (const l of this.links.values()) if (l.creator === op.who) l.tainted = true;
        t.status = 'frozen';
      },
    };
  }

  plan_unfreeze(op) {
    const deny = this.userTarget(op);
    if (deny) return { expect: [deny] };
    return {
      expect: [200],
      commit: () => {
        this.users.get(op.who).status = 'active';
        if (op.restore) for (const l of this.links.values()) if (l.creator === op.who) l.tainted = false;
      },
    };
  }

  plan_offboard(op) {
    const deny = this.userTarget(op);
    if (deny) return { expect: [deny] };
    if (op.who === op.a) return { expect: [400] };
    const heir = this.users.get(op.heir);
    if (op.heir === op.who || !heir || heir.tenant !== this.users.get(op.who).tenant || heir.status !== 'active' || heir.role === 'auditor') return { expect: [400] };
    return {
      expect: [200],
      commit: () => {
        const t = this.users.get(op.who);
        t.status = 'offboarded';
        for (const l of this.links.values()) if (l.creator === op.who) l.revoked = true;
        const root = this.nodes.get(t.root);
        if (op.mode === 'archive') {
          root.archived = true;
        } else {
          root.parent = heir.root;
          root.space = null;
          root.owner = null;
          root.name = handoverName(op.who);
        }
      },
    };
  }

  plan_policy(op) {
    const u = this.users.get(op.a);
    if (u.role !== 'admin') return { expect: [403] };
    return { expect: [200], commit: () => { this.policy.get(u.tenant).allowShares = op.allow; } };
  }

  /**
   * The retention job with both retention periods elapsed for everything (the driver waits for
   * that): every trashed subtree and every archived private space, whole, and nothing else.
   * Returns the bounds of its report: trashed tops purged (the order of the job decides whether a
   * trashed node below another trashed node counts), archived spaces purged.
   */
  plan_retention() {
    const trashed = [...this.nodes.values()].filter((n) => n.trashed).map((n) => n.h);
    const tops = trashed.filter((h) => { const n = this.nodes.get(h); return n.parent === null || !this.inTrash(n.parent); });
    const spaces = [...this.nodes.values()].filter((n) => n.parent === null && n.archived).map((n) => n.h);
    return {
      expect: [0],
      report: { trashMin: tops.length, trashMax: trashed.length, spaces: spaces.length },
      commit: () => {
        for (const h of trashed) if (this.nodes.has(h)) this.destroy(h);
        for (const h of spaces) this.destroy(h);
      },
    };
  }
}
