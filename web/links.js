// links.js: the admin console's "Links" tab: every external share link of the organisation,
// filtered by owner, file or folder id and state, with bulk revoke (GET /api/v1/admin/shares,
// POST /api/v1/admin/shares/revoke). Names of files in private spaces stay their owners' (the
// server sends node_name null for them).

import { api, query } from './api.js';
import { el, $, formatTime, announce } from './ui.js';

const STATES = ['active', 'expired', 'revoked', 'suspended', 'download_limit_reached', 'links_disabled'];
let cursor = null;

function filters() {
  return { owner: $('#l-owner').value, node: $('#l-node').value.trim(), state: $('#l-state').value, limit: 200 };
}

function row(s) {
  const box = el('input', { type: 'checkbox', value: s.id, 'data-testid': 'link-select', disabled: s.state === 'revoked',
    'aria-label': `Select link ${s.id.slice(0, 8)}` });
  return el('tr', { 'data-testid': 'link-row', dataset: { id: s.id, state: s.state, node: s.node } },
    el('td', {}, box),
    el('td', {}, s.node_name ? el('strong', {}, s.node_name) : el('span', { class: 'muted' }, s.node_type === 'folder' ? 'a private folder' : 'a private file'),
      el('small', { class: 'sub mono' }, s.node)),
    el('td', {}, s.creator_name || el('span', { class: 'muted' }, 'deleted user')),
    el('td', {}, s.permission),
    el('td', {}, el('span', { class: `state ${s.state}` }, s.state.replace(/_/g, ' '))),
    el('td', {}, formatTime(s.created_at)),
    el('td', {}, formatTime(s.expires_at)),
    el('td', {}, s.max_downloads === null ? `${s.downloads}` : `${s.downloads} / ${s.max_downloads}`));
}

export async function loadLinks(more = false) {
  const tb = $('#links');
  try {
    const r = await api('GET', `/api/v1/admin/shares${query({ ...filters(), cursor: more ? cursor : '' })}`);
    if (!more) {
      tb.replaceChildren();
      $('#links-all').checked = false;
    }
    for (const s of r.items) tb.append(row(s));
    if (!more && r.items.length === 0) tb.append(el('tr', {}, el('td', { colspan: 8, class: 'muted' }, 'No links match.')));
    cursor = r.next_cursor;
    $('#links-more').hidden = !cursor;
  } catch (e) {
    announce(e.message, 'error');
  }
}

async function revokeSelected() {
  const ids = [...document.querySelectorAll('#links [data-testid="link-select"]:checked')].map((b) => b.value);
  if (ids.length === 0) {
    announce('Select the links to revoke first.', 'error');
    return;
  }
  try {
    const r = await api('POST', '/api/v1/admin/shares/revoke', { ids });
    announce(`${r.revoked} link${r.revoked === 1 ? '' : 's'} revoked.`, 'ok');
    loadLinks();
  } catch (e) {
    announce(e.message, 'error');
  }
}

// setupLinks(users): fills the owner filter and wires the form (once per console).
export function setupLinks(users) {
  const owner = $('#l-owner');
  owner.replaceChildren(el('option', { value: '' }, 'Anyone'),
    ...users.slice().sort((a, b) => a.username.localeCompare(b.username)).map((u) => el('option', { value: u.id }, u.username)));
  const state = $('#l-state');
  if (state.options.length === 1) for (const s of STATES) state.append(el('option', { value: s }, s.replace(/_/g, ' ')));
  if (!$('#links-form').dataset.wired) {
    $('#links-form').dataset.wired = '1';
    $('#links-form').addEventListener('submit', (ev) => { ev.preventDefault(); loadLinks(); });
    $('#links-revoke').addEventListener('click', revokeSelected);
    $('#links-more').addEventListener('click', () => loadLinks(true));
    $('#links-all').addEventListener('change', (ev) => {
      for (const b of document.querySelectorAll('#links [data-testid="link-select"]:not(:disabled)')) b.checked = ev.target.checked;
    });
  }
}
