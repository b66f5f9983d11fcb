// share.js: the recipient page of a share link (/s/{token}). No account: the extraction code
// unlocks the link (the server sets a cookie scoped to this link's path), then the page shows the
// file, or browses the shared folder, with view and (when the link allows it) download. Views are
// the server's page viewer (pages rendered and watermarked with the link, address and time);
// a view-only link has no download control and never receives the original.

import { api } from './api.js';
import { el, $, formatSize, formatTime, preview } from './ui.js';

const token = location.pathname.split('/')[2] || '';
const base = `/s/${encodeURIComponent(token)}`;
let info = null;
const trail = []; // folder shares: [{id, name}] below the shared folder

function showError(text) {
  const e = $('#error');
  e.textContent = text;
  e.hidden = false;
}

// The recipient's wording for an ApiError of the link's routes.
function errorText(err) {
  switch (err.code) {
    case 'wrong_code': return 'That code is not right. Check it and try again.';
    case 'rate_limited': {
      const s = Number(err.headers.get('retry-after') || 60);
      const wait = s >= 120 ? `${Math.ceil(s / 60)} minutes` : s > 60 ? 'about 2 minutes' : `${s} seconds`;
      return `Too many wrong codes. Wait ${wait}, then try again.`;
    }
    case 'expired': return 'This link has expired. Ask the sender for a new one.';
    case 'revoked': return 'This link was revoked by its owner.';
    case 'download_limit_reached': return 'This link has reached its download limit.';
    case 'not_found': return 'There is no such link, or the file was deleted.';
    case 'unauthorized': return 'This link is for members of the organisation: sign in to Coffer first, then open it again.';
    default: return err.serverMessage || `Something went wrong (${err.status}).`;
  }
}

// GET of one of the link's routes; failures become an Error with the recipient's wording.
async function get(path) {
  try {
    return await api('GET', `${base}${path}`);
  } catch (err) {
    throw Object.assign(new Error(errorText(err)), { status: err.status });
  }
}

function meta(pairs) {
  const dl = $('#meta');
  dl.replaceChildren();
  for (const [k, v] of pairs) if (v !== null && v !== undefined && v !== '') dl.append(el('dt', {}, k), el('dd', {}, v));
}

// The preview: the server's watermarked pages (pagesUrl); the original inline only for a link that
// allows download (a view-only link never gets the original's bytes).
async function showPreview(viewUrl, node, pagesUrl) {
  const area = $('#preview-area');
  area.replaceChildren(el('p', { class: 'muted' }, 'Loading the preview…'));
  try {
    const fresh = await get('/info'); // also re-checks the link, and gives the watermark's time
    area.replaceChildren(await preview(viewUrl, node, fresh.watermark, pagesUrl, info.permission === 'download'));
    area.scrollIntoView({ block: 'nearest' });
  } catch (e) {
    area.replaceChildren();
    showError(e.message);
  }
}

function fileActions(node, viewUrl, downloadUrl) {
  const view = $('#view');
  const dl = $('#download');
  view.hidden = false;
  view.onclick = () => showPreview(viewUrl, node, `${base}/pages`);
  if (info.permission === 'download') {
    dl.href = downloadUrl;
    dl.setAttribute('download', node.name);
    dl.hidden = false;
  } else {
    dl.remove(); // view-only: no download control at all
  }
}

async function listFolder() {
  const parent = trail.length ? trail[trail.length - 1].id : '';
  const q = parent ? `?parent=${encodeURIComponent(parent)}` : '';
  const ul = $('#listing');
  let items;
  try {
    ({ items } = await get(`/children${q}`));
  } catch (e) {
    showError(e.message);
    return;
  }
  const crumbs = $('#crumbs');
  const ol = el('ol');
  const all = [{ id: '', name: info.node.name }, ...trail];
  all.forEach((c, i) => ol.append(el('li', {}, i === all.length - 1
    ? el('span', { 'aria-current': 'page' }, c.name)
    : el('button', { type: 'button', class: 'link', onclick: () => { trail.length = i; listFolder(); } }, c.name))));
  crumbs.replaceChildren(ol);
  crumbs.hidden = false;
  if (info.permission === 'download') { // the folder on screen as one ZIP archive (GET /s/{token}/zip, issue 21)
    const dl = $('#download');
    dl.href = `${base}/zip${q}`;
    dl.setAttribute('download', `${all[all.length - 1].name || 'files'}.zip`);
    dl.textContent = 'Download folder (ZIP)';
    dl.hidden = false;
  }
  ul.replaceChildren();
  $('#preview-area').replaceChildren();
  const sorted = items.sort((a, b) => (a.type === b.type ? a.name.localeCompare(b.name) : a.type === 'folder' ? -1 : 1));
  if (sorted.length === 0) ul.append(el('li', { class: 'muted' }, 'This folder is empty.'));
  for (const it of sorted) {
    if (it.type === 'folder') {
      ul.append(el('li', { 'data-testid': 'share-item', dataset: { name: it.name } },
        el('button', { type: 'button', class: 'link name', onclick: () => { trail.push({ id: it.id, name: it.name }); listFolder(); } },
          el('span', { class: 'icon-folder', 'aria-hidden': 'true' }), it.name)));
    } else {
      const acts = el('span', { class: 'row-actions' },
        el('button', { type: 'button', class: 'small', 'data-testid': 'share-item-view', onclick: () => showPreview(`${base}/files/${it.id}/view`, it, `${base}/files/${it.id}/pages`) }, 'View'));
      if (info.permission === 'download') {
        acts.append(el('a', { class: 'button small', href: `${base}/files/${it.id}/content`, download: it.name, 'data-testid': 'share-item-download' }, 'Download'));
      }
      ul.append(el('li', { 'data-testid': 'share-item', dataset: { name: it.name } },
        el('span', { class: 'name' }, el('span', { class: 'icon-file', 'aria-hidden': 'true' }), it.name, el('small', { class: 'sub' }, formatSize(it.size))), acts));
    }
  }
  ul.hidden = false;
}

async function showShared() {
  try {
    info = await get('/info');
  } catch (e) {
    return e;
  }
  $('#unlock').hidden = true;
  $('#error').hidden = true;
  $('#shared').hidden = false;
  const n = info.node;
  $('#name').textContent = n.name;
  const left = info.downloads_left;
  meta([
    ['Size', n.type === 'file' ? formatSize(n.size) : null],
    ['Type', n.type === 'file' ? n.mime : 'Folder'],
    ['Available until', formatTime(info.expires_at)],
    ['Access', info.permission === 'download' ? 'View and download' : 'View only'],
    ['Downloads left', left === null ? null : String(left)],
  ]);
  if (n.type === 'file') fileActions(n, `${base}/view`, `${base}/content`);
  else {
    if (info.permission !== 'download') $('#download').remove();
    await listFolder();
  }
  return null;
}

$('#unlock-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  $('#error').hidden = true;
  const code = $('#code').value.trim();
  if (!code) { showError('Enter the extraction code.'); return; }
  const btn = $('[data-testid="share-unlock"]');
  btn.disabled = true;
  try {
    await api('POST', `${base}/unlock`, { code });
    const err = await showShared();
    if (err) showError(err.message);
  } catch (err) {
    showError(errorText(err));
    $('#code').select();
  } finally {
    btn.disabled = false;
  }
});

(async () => {
  const err = await showShared();
  if (err === null) return;
  if (err.status === 401) { // not unlocked yet
    $('#unlock').hidden = false;
    $('#code').focus();
  } else {
    showError(err.message);
  }
})();
