// departments.js (issue 23): the admin console's "Departments" tab (the tree: create, rename, move,
// delete when empty; each user's primary and other departments), and the pieces the member UI's
// access dialog uses to grant a department (with or without its sub-departments).
//
// setupDepartments() adds the tab and its section to the admin page (admin.js calls it before it
// wires the tabs); loadDepartments() draws it. deptOptgroup(dir), aclKey(p) and aclEntryOut(e) are
// for app.js's access dialog: a department is offered twice, "department:ID" (its members) and
// "department:ID#sub" (and everyone in the departments below it), sent as "subdepartments": true.

import { api } from './api.js';
import { el, $, announce, openDialog, closeDialog, field, alertBox, showAlert } from './ui.js';

const SUB = '#sub';

/* ---- the access dialog (member UI) ----------------------------------------------------------- */

export function deptOptgroup(dir) {
  const ds = (dir.departments || []).slice().sort((a, b) => a.path.localeCompare(b.path));
  const opts = [];
  for (const d of ds) {
    opts.push(el('option', { value: `department:${d.id}` }, d.path));
    opts.push(el('option', { value: `department:${d.id}${SUB}` }, `${d.path} (and sub-departments)`));
  }
  return el('optgroup', { label: 'Departments', 'data-testid': 'acl-departments' }, opts);
}

/** The principal an entry names, whatever its sub-department flag. */
export const aclKey = (p) => (p.endsWith(SUB) ? p.slice(0, -SUB.length) : p);

/** An entry as the API takes it. */
export function aclEntryOut(e) {
  const sub = e.principal.endsWith(SUB) || e.subdepartments === true;
  return { principal: aclKey(e.principal), level: e.level, ...(sub ? { subdepartments: true } : {}) };
}

/* ---- the admin tab -------------------------------------------------------------------------- */

let depts = [];
let users = [];

export function setupDepartments() {
  if ($('#tab-departments')) return;
  const groupsTab = document.querySelector('#tabs button[data-tab="groups"]');
  const tab = el('button', { type: 'button', 'aria-pressed': 'false', 'data-testid': 'tab-departments', dataset: { tab: 'departments', admin: '' } }, 'Departments');
  if (groupsTab) groupsTab.after(tab); else $('#tabs').append(tab);
  const name = el('input', { id: 'nd-name', required: true, autocomplete: 'off', 'data-testid': 'dept-name' });
  const parent = el('select', { id: 'nd-parent', 'data-testid': 'dept-parent' });
  const form = el('form', { class: 'inline-form', 'aria-label': 'Create a department' },
    el('div', { class: 'field' }, el('label', { for: 'nd-name' }, 'Department name'), name),
    el('div', { class: 'field' }, el('label', { for: 'nd-parent' }, 'Inside'), parent),
    el('button', { type: 'submit', class: 'primary', 'data-testid': 'dept-create' }, 'Create department'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await api('POST', '/api/v1/admin/departments', { name: name.value.trim(), parent: parent.value || null });
      form.reset();
      announce('Department created.', 'ok');
      loadDepartments();
    } catch (e) {
      announce(e.code === 'conflict' ? 'A department with that name exists there.' : e.message, 'error');
    }
  });
  const section = el('section', { id: 'tab-departments', hidden: true },
    el('h1', {}, 'Departments'), form,
    el('ul', { id: 'departments', class: 'tree', 'data-testid': 'dept-tree' }),
    el('h2', {}, 'People'),
    el('div', { class: 'table-wrap' }, el('table', { class: 'list' },
      el('caption', { class: 'visually-hidden' }, 'Departments of each user'),
      el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'User'), el('th', { scope: 'col' }, 'Primary department'),
        el('th', { scope: 'col' }, 'Other departments'), el('th', { scope: 'col' }, el('span', { class: 'visually-hidden' }, 'Actions')))),
      el('tbody', { id: 'dept-users' }))));
  const groups = $('#tab-groups');
  if (groups) groups.after(section); else $('#main').append(section);
}

const options = (selected, { none = null, exclude = null } = {}) => {
  const out = none ? [el('option', { value: '' }, none)] : [];
  for (const d of depts) {
    if (exclude && (d.id === exclude || d.path.startsWith(`${pathOf(exclude)}/`))) continue;
    out.push(el('option', { value: d.id, selected: d.id === selected }, d.path));
  }
  return out;
};

const pathOf = (id) => (depts.find((d) => d.id === id) || {}).path || '';

export async function loadDepartments() {
  try {
    ({ departments: depts } = await api('GET', '/api/v1/admin/departments'));
    ({ users } = await api('GET', '/api/v1/admin/users'));
  } catch (e) {
    announce(e.message, 'error');
    return;
  }
  $('#nd-parent').replaceChildren(...options(null, { none: '(top level)' }));
  drawTree();
  drawUsers();
}

function drawTree() {
  const root = $('#departments');
  root.replaceChildren();
  if (depts.length === 0) root.append(el('li', { class: 'muted' }, 'No departments yet.'));
  const byParent = new Map();
  for (const d of depts) {
    const k = d.parent || '';
    if (!byParent.has(k)) byParent.set(k, []);
    byParent.get(k).push(d);
  }
  const draw = (parentId, ul) => {
    for (const d of byParent.get(parentId) || []) {
      const li = el('li', { 'data-testid': 'dept', dataset: { id: d.id, path: d.path } },
        el('strong', {}, d.name), ' ', el('span', { class: 'muted small' }, `${d.members} member${d.members === 1 ? '' : 's'}${d.source === 'directory' ? ' · from the directory' : ''}`), ' ',
        ...(d.source === 'directory' ? [] : [ // the directory sync keeps their names and places (409)
          el('button', { type: 'button', class: 'small', 'data-testid': 'dept-rename', onclick: () => rename(d) }, 'Rename'), ' ',
          el('button', { type: 'button', class: 'small', 'data-testid': 'dept-move', onclick: () => move(d) }, 'Move'), ' ']),
        el('button', { type: 'button', class: 'small', 'data-testid': 'dept-members', onclick: () => members(d) }, 'Members'),
        ' ', el('button', { type: 'button', class: 'small danger', 'data-testid': 'dept-delete', onclick: () => remove(d) }, 'Delete'));
      const sub = el('ul');
      draw(d.id, sub);
      if (sub.children.length) li.append(sub);
      ul.append(li);
    }
  };
  draw('', root);
}

function rename(d) {
  const input = el('input', { value: d.name, required: true, autocomplete: 'off', 'data-testid': 'dept-rename-input' });
  const error = alertBox();
  const go = el('button', { type: 'button', class: 'primary', 'data-testid': 'dept-rename-confirm' }, 'Rename');
  go.addEventListener('click', async () => {
    try {
      await api('PATCH', `/api/v1/admin/departments/${d.id}`, { name: input.value.trim() });
      closeDialog();
      loadDepartments();
    } catch (e) {
      showAlert(error, e.code === 'conflict' ? 'A department with that name exists there.' : e.message);
    }
  });
  openDialog(`Rename ${d.path}`, field('New name', input), error, el('div', { class: 'form-actions' }, go));
}

function move(d) {
  const sel = el('select', { 'data-testid': 'dept-move-parent' }, options(d.parent, { none: '(top level)', exclude: d.id }));
  const error = alertBox();
  const go = el('button', { type: 'button', class: 'primary', 'data-testid': 'dept-move-confirm' }, 'Move');
  go.addEventListener('click', async () => {
    try {
      await api('PATCH', `/api/v1/admin/departments/${d.id}`, { parent: sel.value || null });
      closeDialog();
      announce(`${d.name} moved.`, 'ok');
      loadDepartments();
    } catch (e) {
      showAlert(error, e.code === 'conflict' ? 'A department with that name exists there.' : e.message);
    }
  });
  openDialog(`Move ${d.path}`, field('Inside', sel), error, el('div', { class: 'form-actions' }, go));
}

async function members(d) {
  let list;
  try {
    ({ members: list } = await api('GET', `/api/v1/admin/departments/${d.id}/members`));
  } catch (e) { announce(e.message, 'error'); return; }
  const ul = el('ul', { 'data-testid': 'dept-member-list' }, list.length ? list.map((m) => el('li', {}, m.display_name ? `${m.display_name} (${m.username})` : m.username, m.primary ? ' — primary' : ''))
    : el('li', { class: 'muted' }, 'Nobody.'));
  openDialog(`Members of ${d.path}`, ul);
}

async function remove(d) {
  if (!confirm(`Delete the department ${d.path}? What it was granted is removed.`)) return;
  try {
    await api('DELETE', `/api/v1/admin/departments/${d.id}`);
    announce(`Department ${d.path} deleted.`, 'ok');
    loadDepartments();
  } catch (e) {
    announce(e.code === 'not_empty' ? 'Move its people and sub-departments out first.' : e.message, 'error');
  }
}

function drawUsers() {
  const tb = $('#dept-users');
  tb.replaceChildren();
  for (const u of users.filter((x) => x.status !== 'offboarded')) {
    const cur = u.departments || { primary: null, others: [] };
    const primary = el('select', { 'aria-label': `Primary department of ${u.username}`, 'data-testid': 'dept-user-primary' }, options(cur.primary, { none: '(none)' }));
    const others = el('select', { multiple: true, size: Math.min(4, Math.max(2, depts.length)), 'aria-label': `Other departments of ${u.username}`, 'data-testid': 'dept-user-others' },
      depts.map((d) => el('option', { value: d.id, selected: cur.others.includes(d.id) }, d.path)));
    const save = el('button', { type: 'button', class: 'small', 'data-testid': 'dept-user-save' }, 'Save');
    save.addEventListener('click', async () => {
      try {
        await api('PUT', `/api/v1/admin/users/${u.id}/departments`, { primary: primary.value || null, others: [...others.selectedOptions].map((o) => o.value) });
        announce(`Departments of ${u.username} saved.`, 'ok');
        loadDepartments();
      } catch (e) { announce(e.message, 'error'); }
    });
    tb.append(el('tr', { 'data-testid': 'dept-user', dataset: { username: u.username } }, el('td', {}, u.username), el('td', {}, primary), el('td', {}, others), el('td', {}, save)));
  }
}
