// trash.js: the Trash view of the member's app (what the signed-in user may restore: restore where it
// was, or into a chosen folder when that folder is gone or not theirs to edit; delete forever; empty
// the trash) and the Versions dialog of a file (list, download an old version, restore it as the
// current one). app.js opens them (the "Trash" space button, the "Versions" row action). Every name
// from the server is inserted as text (ui.js el()).

import { api, query } from './api.js';
import { el, $, formatSize, formatTime, announce, openDialog, closeDialog, alertBox, showAlert } from './ui.js';

const LEVELS = ['view', 'download', 'edit', 'manage'];
const atLeast = (node, level) => LEVELS.indexOf(node.my_level) >= LEVELS.indexOf(level);
const message = (e) => (e && e.message) || String(e);

let ctx = { spaces: null, errorMessage: message, onChange: () => {} };
let cursor = null;

/* ---- the Trash view -------------------------------------------------------------------------- */

// Shows the Trash view in place of the folder listing. c: {spaces, errorMessage, onChange}.
export async function openTrash(c) {
  ctx = { ...ctx, ...c };
  $('#dropzone').hidden = true;
  $('#folder-actions').hidden = true;
  $('#breadcrumbs').replaceChildren(el('ol', {}, el('li', {}, el('span', { 'aria-current': 'page' }, 'Trash'))));
  const view = $('#trash-view');
  view.hidden = false;
  const empty = el('button', { type: 'button', class: 'danger', 'data-testid': 'trash-empty', onclick: emptyDialog }, 'Empty trash');
  const rows = el('tbody', { id: 'trash-rows' });
  view.replaceChildren(
    el('div', { class: 'toolbar' },
      el('p', { class: 'muted' }, 'Deleted items you may restore. Restoring puts an item back where it was; if that folder is gone, choose another.'),
      el('div', { class: 'actions' }, empty)),
    el('div', { class: 'table-wrap' }, el('table', { class: 'files', 'data-testid': 'trash-table' },
      el('caption', { class: 'visually-hidden' }, 'Deleted items'),
      el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Name'), el('th', { scope: 'col', class: 'col-size' }, 'Size'),
        el('th', { scope: 'col', class: 'col-date' }, 'Deleted'), el('th', { scope: 'col' }, el('span', { class: 'visually-hidden' }, 'Actions')))),
      rows)),
    el('p', { class: 'empty', id: 'trash-none', 'data-testid': 'trash-none', hidden: true }, 'The trash is empty.'));
  await loadTrash(false);
}

// Leaves the Trash view (another space was opened).
export function closeTrash() {
  const view = $('#trash-view');
  if (view) { view.hidden = true; view.replaceChildren(); }
  $('#dropzone').hidden = false;
}

async function loadTrash(append) {
  const rows = $('#trash-rows');
  if (!rows) return;
  try {
    const page = await api('GET', `/api/v1/trash${query({ limit: 200, cursor: append ? cursor : null })}`);
    cursor = page.next_cursor;
    if (!append) rows.replaceChildren();
    $('#trash-more')?.remove();
    for (const n of page.items) rows.append(trashRow(n));
    if (cursor) rows.append(el('tr', { id: 'trash-more' }, el('td', { colspan: 4 }, el('button', { type: 'button', onclick: () => loadTrash(true) }, 'Show more'))));
    $('#trash-none').hidden = rows.children.length > 0;
  } catch (e) {
    announce(ctx.errorMessage(e), 'error');
  }
}

function trashRow(n) {
  const isFolder = n.type === 'folder';
  const actions = el('div', { class: 'row-actions' },
    el('button', { type: 'button', class: 'small', 'data-testid': 'trash-restore', onclick: () => restore(n) }, 'Restore'));
  if (atLeast(n, 'manage')) actions.append(el('button', { type: 'button', class: 'small danger', 'data-testid': 'trash-purge', onclick: () => purgeDialog(n) }, 'Delete forever'));
  // original_path ends with the item's own name; the folder is what comes before it, in its space.
  const space = { private: 'My files', tenant: 'Team files', shared: 'Shared with me' }[n.original_space] || '';
  const dir = n.original_path.slice(0, n.original_path.lastIndexOf('/'));
  const folder = dir.startsWith('/') || dir === '' ? `${space}${dir}` : dir; // "…/b": the space is not shown
  const where = n.original_gone ? `from ${folder} (that folder is gone)` : `from ${folder}`;
  return el('tr', { 'data-testid': 'trash-row', dataset: { id: n.id, name: n.name, type: n.type } },
    el('td', { class: 'col-name' },
      el('span', { class: 'name' }, el('span', { class: `icon-${isFolder ? 'folder' : 'file'}`, 'aria-hidden': 'true' }), n.name),
      el('small', { class: 'origin', 'data-testid': 'trash-origin' }, where)),
    el('td', { class: 'col-size' }, isFolder ? '—' : formatSize(n.size)),
    el('td', { class: 'col-date' }, formatTime(n.trashed_at)),
    el('td', { class: 'col-actions' }, actions));
}

async function restore(n, body = {}) {
  try {
    await api('POST', `/api/v1/nodes/${n.id}/restore`, body);
    closeDialog();
    announce(`${n.name} restored.`, 'ok');
    ctx.onChange();
    await loadTrash(false);
  } catch (e) {
    if (e.code === 'original_gone' || (e.status === 403 && !body.parent)) {
      const why = e.code === 'original_gone' ? 'The folder it was in is gone or in the trash.' : 'You may not add to the folder it was in.';
      pickFolder(n, why);
    } else if (e.code === 'conflict') {
      conflictDialog(n, body);
    } else {
      closeDialog();
      announce(ctx.errorMessage(e), 'error');
    }
  }
}

function conflictDialog(n, body) {
  const again = el('button', { type: 'button', class: 'primary', 'data-testid': 'trash-restore-rename', onclick: () => restore(n, { ...body, on_conflict: 'rename' }) }, 'Restore with a new name');
  openDialog(`Restore “${n.name}”`,
    el('p', {}, 'Something with this name is already there. Restore it with a number added to its name?'),
    el('div', { class: 'form-actions' }, el('button', { type: 'button', onclick: closeDialog }, 'Cancel'), again));
}

// Choose a folder (from My files or Team files) to restore n into.
async function pickFolder(n, why) {
  const roots = [{ id: ctx.spaces.private.root, name: 'My files' }, { id: ctx.spaces.tenant.root, name: 'Team files' }];
  let trail = [roots[0]];
  const list = el('ul', { class: 'folder-pick', 'data-testid': 'trash-folders' });
  const where = el('p', { class: 'muted', 'data-testid': 'trash-destination' });
  const error = alertBox();
  const here = el('button', { type: 'button', class: 'primary', 'data-testid': 'trash-restore-here' }, 'Restore here');
  const space = el('select', { 'aria-label': 'Space', 'data-testid': 'trash-space-pick' }, roots.map((r, i) => el('option', { value: String(i) }, r.name)));
  const draw = async () => {
    const cur = trail[trail.length - 1];
    where.textContent = `Destination: ${trail.map((t) => t.name).join(' / ')}`;
    list.replaceChildren();
    if (trail.length > 1) list.append(el('li', {}, el('button', { type: 'button', class: 'link', onclick: () => { trail.pop(); draw(); } }, '↑ Up')));
    try {
      const { items } = await api('GET', `/api/v1/nodes/${cur.id}/children${query({ limit: 500 })}`);
      for (const f of items.filter((i) => i.type === 'folder').sort((a, b) => a.name.localeCompare(b.name))) {
        list.append(el('li', {}, el('button', { type: 'button', class: 'link', dataset: { name: f.name }, onclick: () => { trail.push({ id: f.id, name: f.name }); draw(); } }, `📁 ${f.name}`)));
      }
    } catch (e) {
      showAlert(error, ctx.errorMessage(e));
    }
  };
  space.addEventListener('change', () => { trail = [roots[Number(space.value)]]; draw(); });
  here.addEventListener('click', async () => {
    error.hidden = true;
    try {
      await api('POST', `/api/v1/nodes/${n.id}/restore`, { parent: trail[trail.length - 1].id });
      closeDialog();
      announce(`${n.name} restored to ${trail.map((t) => t.name).join(' / ')}.`, 'ok');
      ctx.onChange();
      await loadTrash(false);
    } catch (e) {
      showAlert(error, e.code === 'conflict' ? 'Something with this name is already in that folder. Choose another.' : ctx.errorMessage(e));
    }
  });
  openDialog(`Restore “${n.name}” to…`, el('p', { class: 'note' }, why), space, where, list, error, el('div', { class: 'form-actions' }, here));
  await draw();
}

function purgeDialog(n) {
  const error = alertBox();
  const go = el('button', { type: 'button', class: 'danger', 'data-testid': 'trash-purge-confirm' }, 'Delete forever');
  go.addEventListener('click', async () => {
    try {
      await api('DELETE', `/api/v1/nodes/${n.id}${query({ purge: 'true' })}`);
      closeDialog();
      announce(`${n.name} deleted forever.`, 'ok');
      await loadTrash(false);
    } catch (e) {
      showAlert(error, ctx.errorMessage(e));
    }
  });
  openDialog(`Delete “${n.name}” forever?`, el('p', {}, 'It cannot be restored afterwards, and its old versions go with it.'), error,
    el('div', { class: 'form-actions' }, el('button', { type: 'button', onclick: closeDialog }, 'Cancel'), go));
}

function emptyDialog() {
  const error = alertBox();
  const go = el('button', { type: 'button', class: 'danger', 'data-testid': 'trash-empty-confirm' }, 'Empty trash');
  go.addEventListener('click', async () => {
    try {
      const r = await api('DELETE', '/api/v1/trash');
      closeDialog();
      announce(`${r.purged} item${r.purged === 1 ? '' : 's'} deleted forever.${r.kept ? ` ${r.kept} kept: others may restore them, only they or an admin may delete them.` : ''}`, 'ok');
      await loadTrash(false);
    } catch (e) {
      showAlert(error, ctx.errorMessage(e));
    }
  });
  openDialog('Empty the trash?', el('p', {}, 'Everything in the trash that you may delete is deleted forever, with its old versions.'), error,
    el('div', { class: 'form-actions' }, el('button', { type: 'button', onclick: closeDialog }, 'Cancel'), go));
}

/* ---- versions of a file ---------------------------------------------------------------------- */

// The Versions dialog of file n. c: {errorMessage, onChange}.
export async function versionsDialog(n, c = {}) {
  ctx = { ...ctx, ...c };
  const list = el('ol', { class: 'timeline', 'data-testid': 'versions' }, el('li', { class: 'muted' }, 'Loading…'));
  const error = alertBox({ 'data-testid': 'versions-error' });
  openDialog(`Versions of “${n.name}”`, list, error);
  await drawVersions(n, list, error);
}

async function drawVersions(n, list, error) {
  let items;
  try {
    ({ items } = await api('GET', `/api/v1/files/${n.id}/versions`));
  } catch (e) {
    list.replaceChildren(el('li', { class: 'error' }, ctx.errorMessage(e)));
    return;
  }
  list.replaceChildren();
  for (const v of items) {
    const actions = el('div', { class: 'row-actions' });
    if (atLeast(n, 'download')) {
      actions.append(el('a', { class: 'button small', href: `/api/v1/files/${n.id}/versions/${v.version}/content`, download: n.name, 'data-testid': 'version-download' }, 'Download'));
    }
    if (!v.current && atLeast(n, 'edit')) {
      actions.append(el('button', {
        type: 'button', class: 'small', 'data-testid': 'version-restore',
        onclick: async () => {
          error.hidden = true;
          try {
            const node = await api('POST', `/api/v1/files/${n.id}/versions/${v.version}/restore`);
            n.version = node.version;
            await ctx.onChange(); // the folder listing reloads (and clears the status line) first
            announce(`Version ${v.version} of ${n.name} restored as version ${node.version}.`, 'ok');
            await drawVersions(n, list, error);
          } catch (e) {
            showAlert(error, ctx.errorMessage(e));
          }
        },
      }, 'Restore'));
    }
    list.append(el('li', { 'data-testid': 'version-row', dataset: { version: String(v.version), current: String(v.current) } },
      el('time', { datetime: v.created_at }, formatTime(v.created_at)),
      el('div', {}, el('strong', {}, `Version ${v.version}`), v.current ? el('span', { class: 'state' }, ' current') : null,
        ` · ${formatSize(v.size)} · ${v.uploader_name || 'unknown'}`),
      actions));
  }
}
