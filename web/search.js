// search.js: the search box of the member's app (issue 21; GET /api/v1/search). Typing a name or a
// path ("reports/2024") and pressing Enter lists what the signed-in user may see that matches, with
// each item's path, 50 at a time ("More results" follows the cursor). Choosing a folder opens it;
// choosing a file opens its folder and its preview. app.js hands in how to open a place
// (setupSearch). Every name from the server is inserted as text (ui.js el()), never as markup.

import { api, query } from './api.js';
import { el, $, formatSize, formatTime, announce } from './ui.js';

let ctx = { spaces: () => null, open: async () => {}, errorMessage: (e) => String(e.message || e) };
let current = { q: '', cursor: null };

// c: {spaces() → {private: {root}, tenant: {root}}, open(space, path, file), errorMessage(err)}.
export function setupSearch(c) {
  ctx = { ...ctx, ...c };
  $('#search-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = $('#search-input').value.trim();
    if (q) runSearch(q);
  });
  // Leaving the results for a space (the space buttons) closes them.
  for (const b of document.querySelectorAll('.spaces button')) b.addEventListener('click', closeSearch);
}

export function closeSearch() {
  const view = $('#search-view');
  if (!view || view.hidden) return;
  view.hidden = true;
  view.replaceChildren();
  $('#dropzone').hidden = false;
}

async function runSearch(q) {
  current = { q, cursor: null };
  const view = $('#search-view');
  $('#dropzone').hidden = true;
  const trash = $('#trash-view');
  if (trash) trash.hidden = true;
  $('#folder-actions').hidden = true;
  const zip = $('[data-testid="folder-zip"]'); // quota.js shows it again with the next folder
  if (zip) zip.hidden = true;
  $('#breadcrumbs').replaceChildren(el('ol', {}, el('li', {}, el('span', { 'aria-current': 'page' }, `Search: ${q}`))));
  view.hidden = false;
  view.replaceChildren(
    el('div', { class: 'table-wrap' }, el('table', { class: 'files', 'data-testid': 'search-results' },
      el('caption', { class: 'visually-hidden' }, `Search results for ${q}`),
      el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Name'), el('th', { scope: 'col' }, 'Where'),
        el('th', { scope: 'col', class: 'col-size' }, 'Size'), el('th', { scope: 'col', class: 'col-date' }, 'Modified'))),
      el('tbody', { id: 'search-rows' }))),
    el('p', { class: 'empty', id: 'search-none', 'data-testid': 'search-none', hidden: true }, 'Nothing you may see matches.'),
    el('p', {}, el('button', { type: 'button', id: 'search-more', 'data-testid': 'search-more', hidden: true, onclick: () => loadPage(true) }, 'More results')));
  await loadPage(false);
}

async function loadPage(more) {
  let page;
  try {
    page = await api('GET', `/api/v1/search${query({ q: current.q, cursor: more ? current.cursor : '' })}`);
  } catch (e) {
    announce(ctx.errorMessage(e), 'error');
    return;
  }
  const rows = $('#search-rows');
  if (!rows) return; // closed meanwhile
  for (const n of page.items) rows.append(resultRow(n));
  current.cursor = page.next_cursor;
  $('#search-more').hidden = !page.next_cursor;
  $('#search-none').hidden = rows.children.length > 0 || Boolean(page.next_cursor);
  announce(`${rows.children.length} result${rows.children.length === 1 ? '' : 's'}${page.next_cursor ? ', more available' : ''}`);
}

function resultRow(n) {
  const where = n.path.slice(0, n.path.length - n.name.length).replace(/\/$/, '') || '/';
  const name = el('button', { type: 'button', class: 'link', 'data-testid': 'search-open', onclick: () => openResult(n) },
    n.type === 'folder' ? `📁 ${n.name}` : n.name);
  return el('tr', { 'data-testid': 'search-row', dataset: { id: n.id, name: n.name, type: n.type, path: n.path } },
    el('td', {}, name),
    el('td', { class: 'muted', 'data-testid': 'search-path' }, where),
    el('td', { class: 'col-size' }, n.type === 'file' ? formatSize(n.size) : ''),
    el('td', { class: 'col-date' }, formatTime(n.modified_at)));
}

// The folders from the highest one the user may see down to id, as [{id, name}], and the space they
// lie in ("private", "tenant", or "shared" when the walk stops below a space root).
async function placeOf(id) {
  const spaces = ctx.spaces() || {};
  const path = [];
  let at = id;
  for (let depth = 0; at && depth < 256; depth++) {
    if (spaces.private && at === spaces.private.root) return { space: 'private', path: [{ id: at, name: 'My files' }, ...path] };
    if (spaces.tenant && at === spaces.tenant.root) return { space: 'tenant', path: [{ id: at, name: 'Team files' }, ...path] };
    let n;
    try {
      n = await api('GET', `/api/v1/nodes/${at}`);
    } catch {
      break; // not the user's to see: the path starts below it
    }
    path.unshift({ id: n.id, name: n.name });
    at = n.parent;
  }
  return { space: 'shared', path };
}

async function openResult(n) {
  const folder = n.type === 'folder' ? n.id : n.parent;
  const { space, path } = await placeOf(folder);
  closeSearch();
  if (path.length === 0) { // a file granted on its own: its folder is not the user's to open
    await ctx.open('shared', [], n);
    return;
  }
  await ctx.open(space, path, n.type === 'file' ? n : null);
}
