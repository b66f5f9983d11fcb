// quota.js: the storage the member holds (and the quota, when the tenant policy sets one), shown
// beside their name from GET /api/v1/me "usage" (issue 21, docs/API.md "Quotas"); and the current
// folder's "Download as ZIP" link (GET /api/v1/folders/{id}/zip), shown to callers with download.

import { api } from './api.js';
import { el, formatSize } from './ui.js';

const LEVELS = ['view', 'download', 'edit', 'manage'];

function usageText(u) {
  return u.quota ? `${formatSize(u.bytes)} of ${formatSize(u.quota)} used` : `${formatSize(u.bytes)} used`;
}

// showUsage(me): shows or updates the usage line from a /me answer (fetched when me is absent or
// does not say, e.g. after an upload).
export async function showUsage(me) {
  if (!me || me.usage === undefined) {
    try { me = await api('GET', '/api/v1/me'); } catch { return; }
  }
  const u = me && me.usage;
  const who = document.getElementById('who');
  const old = document.querySelector('[data-testid="usage"]');
  if (!u || !who) {
    if (old) old.remove();
    return;
  }
  const full = u.quota && u.bytes >= u.quota;
  const high = u.quota && u.bytes >= 0.9 * u.quota;
  const tenant = u.tenant_quota ? ` Organisation: ${formatSize(u.tenant_bytes)} of ${formatSize(u.tenant_quota)}.` : '';
  const span = el('span', {
    class: `usage muted${high ? ' usage-high' : ''}`, 'data-testid': 'usage',
    dataset: { bytes: String(u.bytes), quota: String(u.quota ?? '') },
    title: `Storage you hold: current versions of your files, trash included.${tenant}`,
  }, full ? `${usageText(u)} (full)` : usageText(u));
  if (old) old.replaceWith(span);
  else who.before(span);
}

// folderZip(folder): the "Download as ZIP" link for the folder on screen (null: none), beside the
// folder actions; download level or more.
export function folderZip(folder) {
  let a = document.querySelector('[data-testid="folder-zip"]');
  const ok = folder && folder.type === 'folder' && LEVELS.indexOf(folder.my_level) >= LEVELS.indexOf('download');
  if (!ok) {
    if (a) a.hidden = true;
    return;
  }
  if (!a) {
    a = el('a', { class: 'button', 'data-testid': 'folder-zip' }, 'Download as ZIP');
    const actions = document.getElementById('folder-actions');
    if (!actions) return;
    actions.before(a);
  }
  a.href = `/api/v1/folders/${encodeURIComponent(folder.id)}/zip`;
  a.setAttribute('download', '');
  a.hidden = false;
}
