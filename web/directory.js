// directory.js (issue 23): the admin console's directory pieces. A "Directory" panel on the Users
// tab runs the sync now (POST /api/v1/admin/directory/sync), or a dry run that shows what it would
// change and changes nothing, and shows the report. Users and groups kept by the directory are
// marked and their directory-managed controls are read-only: the server refuses those edits anyway
// (409 directory_managed); the page just does not offer them.
//
// setupDirectory() adds the panel (admin.js calls it at boot); markDirectoryUsers(users) and
// markDirectoryGroups(groups) run after admin.js has drawn the users table and the group cards.

import { api } from './api.js';
import { el, $, announce } from './ui.js';

const KEYS = [['created', 'Created'], ['updated', 'Updated'], ['frozen', 'Frozen'], ['reactivated', 'Active again'],
  ['offboarded', 'Offboarded'], ['skipped', 'Skipped']];

function names(list) {
  return list.map((x) => (typeof x === 'string' ? x : `${x.username || x.dn}${x.reason ? ` (${x.reason})` : ''}`)).join(', ');
}

function drawReport(box, r) {
  box.replaceChildren(el('p', { 'data-testid': 'directory-summary' },
    `${r.dry_run ? 'Dry run, nothing changed: ' : ''}${r.counts.directory_users} users and ${r.counts.directory_groups} groups in the directory.`));
  const dl = el('dl', { class: 'report' });
  const add = (label, list, testid) => {
    if (!list || list.length === 0) return;
    dl.append(el('dt', {}, `${r.dry_run ? 'Would be ' : ''}${label.toLowerCase()} (${list.length})`), el('dd', { 'data-testid': testid }, names(list)));
  };
  for (const [k, label] of KEYS) add(`${label} users`, r.users[k], `directory-users-${k}`);
  add('Created groups', r.groups.created, 'directory-groups-created');
  add('Updated groups', r.groups.updated, 'directory-groups-updated');
  add('Created departments', r.departments.created, 'directory-departments-created');
  add('Moved users (primary department)', r.departments.users_moved, 'directory-users-moved');
  if (dl.children.length === 0) dl.append(el('dd', {}, 'Nothing to change.'));
  box.append(dl);
}

async function run(dry, box, buttons) {
  for (const b of buttons) b.disabled = true;
  box.replaceChildren(el('p', { class: 'muted' }, dry ? 'Computing the plan…' : 'Syncing…'));
  try {
    const r = await api('POST', '/api/v1/admin/directory/sync', { dry_run: dry });
    drawReport(box, r);
    announce(dry ? 'Dry run done: nothing was changed.' : 'Directory sync done.', 'ok');
  } catch (e) {
    const msg = e.status === 404 ? 'No directory feeds this tenant (see the directory: section of the configuration).'
      : e.code === 'directory_unavailable' ? `The directory cannot be reached; nothing was changed. ${e.message}` : e.message;
    box.replaceChildren(el('p', { class: 'error', 'data-testid': 'directory-error' }, msg));
    announce(msg, 'error');
  } finally {
    for (const b of buttons) b.disabled = false;
  }
}

export function setupDirectory() {
  if ($('#directory-panel')) return;
  const section = $('#tab-users');
  if (!section) return;
  const box = el('div', { 'data-testid': 'directory-report', 'aria-live': 'polite' });
  const sync = el('button', { type: 'button', class: 'primary', 'data-testid': 'directory-sync' }, 'Sync now');
  const dry = el('button', { type: 'button', 'data-testid': 'directory-dry-run' }, 'Dry run');
  sync.addEventListener('click', () => run(false, box, [sync, dry]));
  dry.addEventListener('click', () => run(true, box, [sync, dry]));
  const panel = el('details', { id: 'directory-panel', class: 'card' },
    el('summary', {}, 'Directory (LDAP / Active Directory)'),
    el('p', { class: 'muted' }, 'Users, groups and departments from the company directory. The sync also runs on its own every sync_interval.'),
    sync, ' ', dry, box);
  section.querySelector('h1').after(panel);
}

const badge = () => el('span', { class: 'state', title: 'kept by the directory sync', 'data-testid': 'directory-badge' }, 'directory');

/** After admin.js drew the users table: directory users get a badge and no Freeze/Unfreeze. */
export function markDirectoryUsers(users) {
  const dir = new Set(users.filter((u) => u.source === 'directory').map((u) => u.username));
  for (const row of document.querySelectorAll('#users tr[data-testid="user-row"]')) {
    if (!dir.has(row.dataset.username)) continue;
    row.dataset.source = 'directory';
    row.querySelector('td small')?.after(' ', badge());
    for (const b of row.querySelectorAll('[data-testid="user-freeze"], [data-testid="user-unfreeze"]')) b.remove();
  }
}

/** After admin.js drew the group cards: a directory group's members and name are read-only. */
export function markDirectoryGroups(groups) {
  const dir = new Set(groups.filter((g) => g.source === 'directory').map((g) => g.name));
  for (const card of document.querySelectorAll('#groups [data-testid="group"]')) {
    if (!dir.has(card.dataset.name)) continue;
    card.dataset.source = 'directory';
    card.querySelector('legend')?.append(' ', badge());
    for (const i of card.querySelectorAll('input[type="checkbox"]')) i.disabled = true;
    for (const b of card.querySelectorAll('[data-testid="group-save"], [data-testid="group-rename"]')) b.remove();
  }
}
