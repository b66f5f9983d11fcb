// admin.js: the admin console at "/admin": users (create, freeze, reset sign-in, offboard, delete), groups, tenant policy,
// provenance search with CSV export, and alerts. Admins see every tab; auditors see provenance and
// alerts (the server enforces this; the page only hides what would answer 403).

import { api, ApiError, csrf, query } from './api.js';
import { el, $, formatSize, formatTime, announce, openDialog, closeDialog, field, alertBox, showAlert } from './ui.js';
import { scanBanner } from './banner.js';
import { loadLinks, setupLinks } from './links.js';
import { setupDepartments, loadDepartments } from './departments.js';
import { setupDirectory, markDirectoryUsers, markDirectoryGroups } from './directory.js';

const ACTIONS = ['auth.login', 'auth.login_failed', 'auth.logout', 'file.upload', 'file.view', 'file.page_view', 'file.download',
  'file.delete', 'file.purge', 'folder.create', 'node.move', 'node.rename', 'acl.change', 'share.create',
  'share.revoke', 'share.unlock', 'share.unlock_failed', 'share.view', 'share.download', 'upload.start',
  'upload.cancel', 'upload.rejected', 'user.create', 'user.update', 'user.offboard', 'group.create',
  'group.members', 'group.rename', 'group.delete', 'user.delete', 'user.reset', 'auth.recovery_code_used', 'auth.sessions_ended',
  'app_password.create', 'app_password.revoke', 'dept.create', 'dept.rename', 'dept.move', 'dept.delete', 'user.departments',
  'node.restore', 'trash.empty', 'file.version_restore', 'file.version_purge', 'file.infected', 'scan.rescan', 'policy.change', 'alert.bulk_download', 'alert.share_bruteforce', 'alert.new_device'];
const ALERTS = ['alert.bulk_download', 'alert.share_bruteforce', 'alert.new_device'];

let me = null;
let users = [];
let auditCursor = null;

function fail(box, err) {
  showAlert(box, err instanceof ApiError ? err.message : String(err));
}

function actorText(a) {
  if (a.type === 'share') return `link ${String(a.id || '').slice(0, 8)}`;
  if (a.type === 'anonymous') return 'anonymous';
  if (a.type === 'system') return 'system';
  return a.name || a.id || '';
}

/* ---- tabs ---------------------------------------------------------------------------------- */

const loaders = { users: loadUsers, groups: loadGroups, departments: loadDepartments, links: openLinks, policy: loadPolicy, audit: () => {}, alerts: loadAlerts };

async function openLinks() {
  try {
    ({ users } = await api('GET', '/api/v1/admin/users'));
  } catch (e) { announce(e.message, 'error'); return; }
  setupLinks(users);
  loadLinks();
}

function openTab(tab) {
  for (const b of document.querySelectorAll('#tabs button')) b.setAttribute('aria-pressed', String(b.dataset.tab === tab));
  for (const s of document.querySelectorAll('main > section')) s.hidden = s.id !== `tab-${tab}`;
  $('#status').replaceChildren();
  loaders[tab]();
}

/* ---- users --------------------------------------------------------------------------------- */

async function loadUsers() {
  try {
    ({ users } = await api('GET', '/api/v1/admin/users'));
  } catch (e) {
    announce(e.message, 'error');
    return;
  }
  const tb = $('#users');
  tb.replaceChildren();
  for (const u of users.sort((a, b) => a.username.localeCompare(b.username))) {
    const acts = el('div', { class: 'row-actions' });
    if (u.status !== 'offboarded' && u.id !== me.id) {
      acts.append(el('button', {
        type: 'button', class: 'small', 'data-testid': u.status === 'frozen' ? 'user-unfreeze' : 'user-freeze',
        onclick: () => setStatus(u, u.status === 'frozen' ? 'active' : 'frozen'),
      }, u.status === 'frozen' ? 'Unfreeze' : 'Freeze'));
      acts.append(el('button', { type: 'button', class: 'small', 'data-testid': 'user-reset', onclick: () => resetDialog(u) }, 'Reset sign-in'));
      acts.append(el('button', { type: 'button', class: 'small danger', 'data-testid': 'user-offboard', onclick: () => offboardDialog(u) }, 'Offboard'));
    }
    if (u.status === 'offboarded') {
      acts.append(el('button', { type: 'button', class: 'small danger', 'data-testid': 'user-delete', onclick: () => deleteUser(u) }, 'Delete'));
    }
    tb.append(el('tr', { 'data-testid': 'user-row', dataset: { username: u.username, status: u.status } },
      el('td', {}, el('strong', {}, u.display_name || u.username), el('small', { class: 'sub' }, u.username)),
      el('td', {}, u.role),
      el('td', {}, el('span', { class: `state ${u.status}` }, u.status)),
      el('td', {}, u.totp_enabled ? 'on' : 'off'),
      el('td', {}, acts)));
  }
  markDirectoryUsers(users);
}

async function setStatus(u, status) {
  try {
    await api('PATCH', `/api/v1/admin/users/${u.id}`, { status });
    announce(status === 'frozen' ? `${u.username} is frozen: every session ended.` : `${u.username} is active again.`, 'ok');
    loadUsers();
  } catch (e) {
    announce(e.message, 'error');
  }
}

// An admin reset (issue 21): a temporary password shown once here, and/or TOTP removed; the user
// sets a new password / enrols again at the next sign-in, and every session of theirs ends now.
function resetDialog(u) {
  const pw = el('input', { type: 'checkbox', checked: true, 'data-testid': 'reset-password' });
  const mfa = el('input', { type: 'checkbox', checked: !!u.totp_enabled, 'data-testid': 'reset-mfa' });
  const error = alertBox();
  const out = el('div', { 'data-testid': 'reset-result' });
  const go = el('button', { type: 'button', class: 'danger', 'data-testid': 'reset-confirm' }, 'Reset');
  go.addEventListener('click', async () => {
    const body = {};
    if (pw.checked) body.password = true;
    if (mfa.checked) body.mfa = true;
    try {
      const r = await api('POST', `/api/v1/admin/users/${u.id}/reset`, body);
      go.disabled = true;
      out.replaceChildren(el('p', {}, `${u.username}'s sessions have ended.`),
        r.temporary_password
          ? el('p', {}, 'Temporary password (shown once; give it to them by a trusted channel): ',
            el('code', { 'data-testid': 'reset-temporary' }, r.temporary_password))
          : el('p', {}, 'They will enrol an authenticator again at their next sign-in.'));
      announce(`${u.username}'s sign-in was reset.`, 'ok');
    } catch (e) { fail(error, e); }
  });
  openDialog(`Reset sign-in of ${u.username}`,
    el('p', {}, 'For a forgotten password or a lost authenticator. The user is alerted, and the reset is recorded in provenance.'),
    el('label', { class: 'check' }, pw, ' a new temporary password (they must choose their own at the next sign-in)'),
    el('label', { class: 'check' }, mfa, ' remove their authenticator and recovery codes (they enrol again)'),
    error, out, el('div', { class: 'form-actions' }, go));
}

function offboardDialog(u) {
  const to = el('select', { 'data-testid': 'offboard-to' },
    users.filter((x) => x.id !== u.id && x.status === 'active' && x.role !== 'auditor').map((x) => el('option', { value: x.id }, x.username)));
  const error = alertBox();
  const go = el('button', { type: 'button', class: 'danger', 'data-testid': 'offboard-confirm' }, 'Offboard');
  go.addEventListener('click', async () => {
    try {
      await api('POST', `/api/v1/admin/users/${u.id}/offboard`, { transfer_to: to.value });
      closeDialog();
      announce(`${u.username} is offboarded.`, 'ok');
      loadUsers();
    } catch (e) { fail(error, e); }
  });
  openDialog(`Offboard ${u.username}`,
    el('p', {}, 'Their sessions end now, their files in the team space pass to the person you choose, and their private space is archived until retention removes it.'),
    field('Give their team files to', to), error, el('div', { class: 'form-actions' }, go));
}

// Offboarded users only; their provenance stays, naming them.
async function deleteUser(u) {
  if (!confirm(`Delete ${u.username} for good? Their events stay in the provenance log.`)) return;
  try {
    await api('DELETE', `/api/v1/admin/users/${u.id}`);
    announce(`${u.username} is deleted.`, 'ok');
    loadUsers();
  } catch (e) {
    announce(e.message, 'error');
  }
}

async function createUser(ev) {
  ev.preventDefault();
  const body = { username: $('#nu-username').value.trim(), password: $('#nu-password').value, role: $('#nu-role').value };
  if ($('#nu-display').value.trim()) body.display_name = $('#nu-display').value.trim();
  try {
    await api('POST', '/api/v1/admin/users', body);
    ev.target.reset();
    announce(`User ${body.username} created.`, 'ok');
    loadUsers();
  } catch (e) {
    announce(e.code === 'conflict' ? 'That username is taken.' : e.message, 'error');
  }
}

/* ---- groups -------------------------------------------------------------------------------- */

async function loadGroups() {
  let groups;
  try {
    ({ groups } = await api('GET', '/api/v1/admin/groups'));
    ({ users } = await api('GET', '/api/v1/admin/users'));
  } catch (e) {
    announce(e.message, 'error');
    return;
  }
  const box = $('#groups');
  box.replaceChildren();
  if (groups.length === 0) box.append(el('p', { class: 'muted' }, 'No groups yet.'));
  for (const g of groups) {
    const members = new Set(g.members.map((m) => (typeof m === 'string' ? m : m.id)));
    const checks = users.filter((u) => u.status !== 'offboarded').map((u) => el('label', { class: 'check' },
      el('input', { type: 'checkbox', value: u.id, checked: members.has(u.id) }), ` ${u.username}`));
    const save = el('button', { type: 'button', class: 'small', 'data-testid': 'group-save' }, 'Save members');
    const rename = el('button', { type: 'button', class: 'small', 'data-testid': 'group-rename', onclick: () => renameGroup(g) }, 'Rename');
    const del = el('button', { type: 'button', class: 'small danger', 'data-testid': 'group-delete', onclick: () => deleteGroup(g) }, 'Delete');
    const card = el('fieldset', { class: 'card', 'data-testid': 'group', dataset: { name: g.name } }, el('legend', {}, g.name), el('div', { class: 'checks' }, checks), save, ' ', rename, ' ', del);
    save.addEventListener('click', async () => {
      const ids = [...card.querySelectorAll('input:checked')].map((i) => i.value);
      try {
        await api('PUT', `/api/v1/admin/groups/${g.id}/members`, { user_ids: ids });
        announce(`Members of ${g.name} saved.`, 'ok');
      } catch (e) { announce(e.message, 'error'); }
    });
    box.append(card);
  }
  markDirectoryGroups(groups);
}

function renameGroup(g) {
  const input = el('input', { value: g.name, required: true, autocomplete: 'off', 'data-testid': 'group-rename-input' });
  const error = alertBox();
  const go = el('button', { type: 'button', class: 'primary', 'data-testid': 'group-rename-confirm' }, 'Rename');
  go.addEventListener('click', async () => {
    try {
      await api('PATCH', `/api/v1/admin/groups/${g.id}`, { name: input.value.trim() });
      closeDialog();
      loadGroups();
    } catch (e) {
      showAlert(error, e.code === 'conflict' ? 'A group with that name exists.' : e.message);
    }
  });
  openDialog(`Rename ${g.name}`, field('New name', input), error, el('div', { class: 'form-actions' }, go));
}

// Its members leave it and every permission it was given is removed.
async function deleteGroup(g) {
  if (!confirm(`Delete the group ${g.name}? Its members lose what it was granted.`)) return;
  try {
    await api('DELETE', `/api/v1/admin/groups/${g.id}`);
    announce(`Group ${g.name} deleted.`, 'ok');
    loadGroups();
  } catch (e) { announce(e.message, 'error'); }
}

async function createGroup(ev) {
  ev.preventDefault();
  try {
    await api('POST', '/api/v1/admin/groups', { name: $('#ng-name').value.trim() });
    ev.target.reset();
    loadGroups();
  } catch (e) {
    announce(e.code === 'conflict' ? 'A group with that name exists.' : e.message, 'error');
  }
}

/* ---- policy -------------------------------------------------------------------------------- */

async function loadPolicy() {
  try {
    const p = await api('GET', '/api/v1/admin/policy');
    $('#p-mfa').checked = p.require_mfa;
    $('#p-shares').checked = p.allow_shares;
    $('#p-expiry').value = String(+(p.share_max_expiry / 86400).toFixed(3));
    $('#p-blocked').value = p.blocked_types.join('\n');
    $('#p-bd-files').value = String(p.bulk_download_alert.files);
    $('#p-bd-mb').value = String(+(p.bulk_download_alert.bytes / 1e6).toFixed(3));
    $('#p-bd-window').value = String(Math.round(p.bulk_download_alert.window / 60));
    $('#p-quota-user').value = String(+(p.user_quota_bytes / 1e6).toFixed(6)); // quotas (issue 21)
    $('#p-quota-tenant').value = String(+(p.tenant_quota_bytes / 1e6).toFixed(6));
  } catch (e) {
    announce(e.message, 'error');
  }
}

async function savePolicy(ev) {
  ev.preventDefault();
  const err = $('#policy-error');
  err.hidden = true;
  const body = {
    require_mfa: $('#p-mfa').checked,
    allow_shares: $('#p-shares').checked,
    share_max_expiry: Math.round(Number($('#p-expiry').value) * 86400),
    blocked_types: $('#p-blocked').value.split('\n').map((s) => s.trim()).filter(Boolean),
    bulk_download_alert: {
      files: Number($('#p-bd-files').value),
      bytes: Math.round(Number($('#p-bd-mb').value) * 1e6),
      window: Math.round(Number($('#p-bd-window').value) * 60),
    },
    user_quota_bytes: Math.round(Number($('#p-quota-user').value) * 1e6),
    tenant_quota_bytes: Math.round(Number($('#p-quota-tenant').value) * 1e6),
  };
  try {
    await api('PATCH', '/api/v1/admin/policy', body);
    announce('Policy saved.', 'ok');
    loadPolicy();
  } catch (e) { fail(err, e); }
}

/* ---- provenance ---------------------------------------------------------------------------- */

function auditFilters() {
  const iso = (v) => (v ? new Date(v).toISOString() : '');
  const node = $('#a-node').value.trim(); // an id, or a name or path (search.js's rule; issue 21)
  return {
    ...(node === '' || /^[0-9a-f]{32}$/.test(node) ? { node } : { name: node }),
    actor: $('#a-actor').value.trim(),
    action: $('#a-action').value,
    ip: $('#a-ip').value.trim(),
    since: iso($('#a-since').value),
    until: iso($('#a-until').value),
  };
}

function updateExport() {
  $('#audit-export').href = `/api/v1/audit${query({ ...auditFilters(), format: 'csv', limit: 100000 })}`;
}

function auditRow(ev) {
  const t = ev.transfer;
  const node = ev.node
    ? [el('button', { type: 'button', class: 'link', title: `Show events of ${ev.node.path || ev.node.name}`, onclick: () => { $('#a-node').value = ev.node.id; search(); } }, ev.node.path || ev.node.name || ev.node.id),
      ev.node.space ? el('small', { class: 'sub' }, ev.node.space === 'tenant' ? 'team space' : ev.node.space.replace('private:', 'private space of ')) : null]
    : '';
  return el('tr', { 'data-testid': 'audit-row', dataset: { action: ev.action, actor: actorText(ev.actor), seq: String(ev.seq), node: ev.node ? ev.node.id : '' } },
    el('td', {}, el('time', { datetime: ev.at }, formatTime(ev.at))),
    el('td', {}, el('code', {}, ev.action)),
    el('td', {}, actorText(ev.actor)),
    el('td', {}, node),
    el('td', { class: 'mono' }, ev.ip || ''),
    el('td', {}, el('span', { class: `state ${ev.result}` }, ev.result)),
    el('td', {}, t ? `${t.bytes_sent === null ? '—' : formatSize(t.bytes_sent)}${t.completed === false ? ' (incomplete)' : t.completed ? ' ✓' : ''}` : ''));
}

async function search(ev, more = false) {
  if (ev) ev.preventDefault();
  const err = $('#audit-error');
  err.hidden = true;
  updateExport();
  const tb = $('#audit-rows');
  try {
    const r = await api('GET', `/api/v1/audit${query({ ...auditFilters(), limit: 100, cursor: more ? auditCursor : '' })}`);
    if (!more) tb.replaceChildren();
    for (const e of r.events) tb.append(auditRow(e));
    if (!more && r.events.length === 0) tb.append(el('tr', {}, el('td', { colspan: 7, class: 'muted' }, 'No events match.')));
    auditCursor = r.next_cursor;
    $('#audit-more').hidden = !auditCursor;
  } catch (e) { fail(err, e); }
}

/* ---- alerts -------------------------------------------------------------------------------- */

async function loadAlerts() {
  const tb = $('#alerts');
  try {
    const { events } = await api('GET', `/api/v1/audit${query({ action: ALERTS.join(','), limit: 200 })}`);
    tb.replaceChildren();
    if (events.length === 0) tb.append(el('tr', {}, el('td', { colspan: 4, class: 'muted' }, 'No alerts.')));
    for (const ev of events) {
      tb.append(el('tr', { 'data-testid': 'alert-row', dataset: { action: ev.action } },
        el('td', {}, formatTime(ev.at)), el('td', {}, el('code', {}, ev.action)), el('td', {}, actorText(ev.actor)),
        el('td', { class: 'mono small' }, JSON.stringify(ev.detail || {}))));
    }
  } catch (e) {
    announce(e.message, 'error');
  }
}

/* ---- start --------------------------------------------------------------------------------- */

async function boot() {
  setupDepartments();
  setupDirectory();
  const sel = $('#a-action');
  for (const a of ACTIONS) sel.append(el('option', { value: a }, a));
  $('#audit-form').addEventListener('submit', (e) => search(e));
  $('#audit-form').addEventListener('input', updateExport);
  $('#audit-more').addEventListener('click', () => search(null, true));
  $('#user-form').addEventListener('submit', createUser);
  $('#group-form').addEventListener('submit', createGroup);
  $('#policy-form').addEventListener('submit', savePolicy);
  for (const b of document.querySelectorAll('#tabs button')) b.addEventListener('click', () => openTab(b.dataset.tab));
  try {
    if (!csrf.get()) throw new Error('no session');
    me = await api('GET', '/api/v1/me');
  } catch {
    for (const s of document.querySelectorAll('main > section')) s.hidden = s.id !== 'tab-signin';
    $('#tabs').hidden = true;
    return;
  }
  $('#who').textContent = `${me.display_name || me.username} (${me.role})`;
  scanBanner(me);
  if (me.role !== 'admin') for (const b of document.querySelectorAll('#tabs [data-admin]')) b.hidden = true;
  if (me.role !== 'admin' && me.role !== 'auditor') {
    announce('The admin console is for administrators and auditors.', 'error');
    for (const s of document.querySelectorAll('main > section')) s.hidden = true;
    $('#tabs').hidden = true;
    return;
  }
  openTab(me.role === 'admin' ? 'users' : 'audit');
  updateExport();
}

boot();
