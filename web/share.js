// share.js: the recipient page of a share link. Unlocks the link with its extraction code (the
// server sets a cookie scoped to this link), then shows the file (or folder) with view/download.
const token = location.pathname.split('/')[2] || '';
const base = `/s/${encodeURIComponent(token)}`;
const $ = (id) => document.getElementById(id);

function showError(text) {
  const e = $('error');
  e.textContent = text;
  e.hidden = false;
}

function size(n) {
  if (n == null) return '';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

async function errorText(res) {
  let body = {};
  try { body = await res.json(); } catch { /* not JSON */ }
  switch (body.error) {
    case 'wrong_code': return 'That code is not right. Check it and try again.';
    case 'rate_limited': {
      const s = Number(res.headers.get('retry-after') || 60);
      return `Too many attempts. Try again in ${Math.ceil(s / 60)} minute${s > 60 ? 's' : ''}.`;
    }
    case 'expired': return 'This link has expired.';
    case 'revoked': return 'This link was revoked.';
    case 'download_limit_reached': return 'This link has reached its download limit.';
    case 'not_found': return 'There is no such link.';
    default: return body.message || `Something went wrong (${res.status}).`;
  }
}

async function listFolder(parent) {
  const q = parent ? `?parent=${parent}` : '';
  const res = await fetch(`${base}/children${q}`, { credentials: 'same-origin' });
  if (!res.ok) { showError(await errorText(res)); return; }
  const { items } = await res.json();
  const ul = $('listing');
  ul.replaceChildren();
  for (const it of items.sort((a, b) => a.name.localeCompare(b.name))) {
    const li = document.createElement('li');
    if (it.type === 'folder') {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = `${it.name}/`;
      b.addEventListener('click', () => listFolder(it.id));
      li.append(b);
    } else {
      const a = document.createElement('a');
      a.href = `${base}/files/${it.id}/content`;
      a.textContent = it.name;
      li.append(a, ` (${size(it.size)})`);
    }
    ul.append(li);
  }
  ul.hidden = false;
}

async function showShared() {
  const res = await fetch(`${base}/info`, { credentials: 'same-origin' });
  if (!res.ok) return false;
  const info = await res.json();
  $('unlock').hidden = true;
  $('shared').hidden = false;
  $('name').textContent = info.node.name;
  const expires = new Date(info.expires_at).toLocaleString();
  $('meta').textContent = info.node.type === 'file'
    ? `${size(info.node.size)} · ${info.node.mime} · available until ${expires}`
    : `Folder · available until ${expires}`;
  if (info.node.type === 'file') {
    $('view').href = `${base}/view`;
    $('view').hidden = false;
    if (info.permission === 'download') {
      $('download').href = `${base}/content`;
      $('download').setAttribute('download', info.node.name);
      $('download').hidden = false;
    }
  } else {
    await listFolder(null);
  }
  return true;
}

$('unlock-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  $('error').hidden = true;
  const res = await fetch(`${base}/unlock`, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ code: $('code').value.trim() }),
  });
  if (!res.ok) { showError(await errorText(res)); return; }
  await showShared();
});

showShared();
