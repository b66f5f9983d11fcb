// app.js: the member's app at "/": sign-in (with the TOTP step and enrolment), the file browser
// over the private, tenant and shared spaces, uploads through tus, and the dialogs for preview,
// sharing, permissions, activity, rename, move and delete. Every request goes through api.js; every
// name from the server is inserted as text (ui.js el()), never as markup.

import { api, ApiError, csrf, query } from './api.js';
import { el, $, formatSize, formatTime, announce, openDialog, closeDialog, field, preview, alertBox, showAlert } from './ui.js';
import { TusUpload } from './tus.js';
import { openTrash, closeTrash, versionsDialog } from './trash.js';
import { scanBanner } from './banner.js';
import { showUsage, folderZip } from './quota.js';
import { setupSearch } from './search.js';
import { deptOptgroup, aclKey, aclEntryOut } from './departments.js';

const LEVELS = ['view', 'download', 'edit', 'manage'];
const atLeast = (node, level) => LEVELS.indexOf(node.my_level) >= LEVELS.indexOf(level);

const state = {
  me: null,
  spaces: null,
  space: 'private',
  path: [], // [{id, name}] from the space root to the current folder
  folder: null, // the current folder node (null in "Shared with me")
  cursor: null,
};

function show(view) {
  for (const id of ['login-view', 'enrol-view', 'app-view']) $(`#${id}`).hidden = id !== view;
}

function errorMessage(err) {
  if (!(err instanceof ApiError)) return String(err.message || err);
  if (err.code === 'rate_limited') {
    const s = Number(err.headers?.get('retry-after') || 60);
    return `Too many attempts. Try again in ${Math.max(1, Math.ceil(s / 60))} minute${s > 60 ? 's' : ''}.`;
  }
  return err.message;
}

/* ---- sign-in ------------------------------------------------------------------------------- */

async function onLogin(ev) {
  ev.preventDefault();
  const err = $('#login-error');
  err.hidden = true;
  const body = {
    tenant: $('#login-tenant').value.trim() || 'default',
    username: $('#login-username').value.trim(),
    password: $('#login-password').value,
  };
  const factor = $('#totp-field').hidden ? '' : $('#login-totp').value.trim();
  if (factor) body[/^[0-9]{6}$/.test(factor) ? 'totp' : 'recovery_code'] = factor; // account.js: recovery codes
  if (!body.username || !body.password) {
    err.textContent = 'Enter your username and password.';
    err.hidden = false;
    return;
  }
  const submit = $('[data-testid="login-submit"]');
  submit.disabled = true;
  try {
    const j = await api('POST', '/api/v1/auth/login', body);
    csrf.set(j.csrf_token);
    $('#login-password').value = '';
    $('#login-totp').value = '';
    if (j.mfa_enrolment_required || j.password_change_required) location.assign('/account'); // account.js
    else await enterApp(j.user);
    if (j.recovery_codes_remaining !== undefined) announce(`You signed in with a recovery code: ${j.recovery_codes_remaining} left. Make new ones on your Account page.`, 'info');
  } catch (e) {
    if (e.code === 'totp_invalid' || e.code === 'recovery_code_invalid') {
      err.textContent = e.code === 'totp_invalid' ? 'That code is not right. Type the current code from your app.' : 'That recovery code is not right or was already used.';
    } else if (e.code === 'mfa_required') {
      $('#totp-field').hidden = false;
      err.textContent = body.totp ? 'That code is not right. Type the current code from your app.' : 'Enter the code from your authenticator app.';
      $('#login-totp').focus();
    } else if (e.code === 'unauthorized') {
      err.textContent = body.totp ? 'Sign-in failed: check the username, password and code.' : 'The username or password is not right.';
    } else if (e.code === 'account_frozen') {
      err.textContent = 'This account is frozen. Ask your administrator.';
    } else {
      err.textContent = errorMessage(e);
    }
    err.hidden = false;
  } finally {
    submit.disabled = false;
  }
}

async function startEnrolment() {
  const t = await api('POST', '/api/v1/me/totp');
  $('#enrol-secret').value = t.secret;
  $('#enrol-uri').href = t.otpauth_uri;
  show('enrol-view');
  $('#enrol-code').focus();
}

async function onEnrol(ev) {
  ev.preventDefault();
  const err = $('#enrol-error');
  err.hidden = true;
  try {
    await api('POST', '/api/v1/me/totp/confirm', { code: $('#enrol-code').value.trim() });
    await enterApp(await api('GET', '/api/v1/me'));
  } catch (e) {
    err.textContent = e.status === 400 ? 'That code is not right. Type the current code from your app.' : errorMessage(e);
    err.hidden = false;
  }
}

async function logout() {
  try { await api('POST', '/api/v1/auth/logout'); } catch { /* the session may be gone already */ }
  csrf.clear();
  location.replace('/');
}

/* ---- the browser --------------------------------------------------------------------------- */

async function enterApp(me) {
  if (me.password_change_required || me.mfa_enrolment_required) { location.assign('/account'); return; } // account.js
  state.me = me;
  $('#who').textContent = me.display_name || me.username;
  scanBanner(me);
  showUsage(me);
  $('#admin-link').hidden = !(me.role === 'admin' || me.role === 'auditor');
  state.spaces = await api('GET', '/api/v1/spaces');
  show('app-view');
  await openSpace('private');
}

async function openSpace(space) {
  state.space = space;
  for (const b of document.querySelectorAll('.spaces button')) b.setAttribute('aria-pressed', String(b.dataset.space === space));
  if (space === 'trash') { // trash.js
    state.folder = null;
    await openTrash({ spaces: state.spaces, errorMessage, onChange: () => {} });
    return;
  }
  closeTrash();
  if (space === 'shared') {
    state.path = [];
    await openFolder(null);
  } else {
    const root = state.spaces[space].root;
    state.path = [{ id: root, name: space === 'private' ? 'My files' : 'Team files' }];
    await openFolder(root);
  }
}

// Opens folder id (null: the "Shared with me" list), with path already set to end at it.
async function openFolder(id) {
  $('#status').replaceChildren();
  try {
    if (id === null) {
      state.folder = null;
      const { items } = await api('GET', '/api/v1/shared');
      renderBreadcrumbs();
      renderRows(items, false);
    } else {
      state.folder = await api('GET', `/api/v1/nodes/${id}`);
      const page = await api('GET', `/api/v1/nodes/${id}/children${query({ limit: 500 })}`);
      state.cursor = page.next_cursor;
      renderBreadcrumbs();
      renderRows(page.items, false);
    }
  } catch (e) {
    if (e.status === 401) { show('login-view'); return; }
    announce(errorMessage(e), 'error');
  }
  const canWrite = state.folder !== null && atLeast(state.folder, 'edit');
  $('#folder-actions').hidden = !canWrite;
  folderZip(state.folder); // quota.js
  if (state.me) showUsage();
}

// search.js opens a result here: the space, the folders [{id, name}] down to the one to open (empty:
// the "Shared with me" list) and, for a file, its preview.
async function openAt(space, path, file) {
  closeTrash();
  state.space = space;
  for (const b of document.querySelectorAll('.spaces button')) b.setAttribute('aria-pressed', String(b.dataset.space === space));
  state.path = path;
  await openFolder(path.length ? path[path.length - 1].id : null);
  if (file) showPreview(file);
}

async function loadMore() {
  const page = await api('GET', `/api/v1/nodes/${state.folder.id}/children${query({ limit: 500, cursor: state.cursor })}`);
  state.cursor = page.next_cursor;
  renderRows(page.items, true);
}

function renderBreadcrumbs() {
  const nav = $('#breadcrumbs');
  const crumbs = state.space === 'shared' ? [{ id: null, name: 'Shared with me' }, ...state.path] : state.path;
  const ol = el('ol');
  crumbs.forEach((c, i) => {
    const last = i === crumbs.length - 1;
    ol.append(el('li', {}, last
      ? el('span', { 'aria-current': 'page' }, c.name)
      : el('button', {
        type: 'button', class: 'link',
        onclick: () => {
          if (state.space === 'shared') state.path = state.path.slice(0, i);
          else state.path = state.path.slice(0, i + 1);
          openFolder(c.id);
        },
      }, c.name)));
  });
  nav.replaceChildren(ol);
}

function renderRows(items, append) {
  const tbody = $('#rows');
  if (!append) tbody.replaceChildren();
  const sorted = [...items].sort((a, b) => (a.type === b.type ? a.name.localeCompare(b.name) : a.type === 'folder' ? -1 : 1));
  for (const n of sorted) tbody.append(row(n));
  const more = $('#more');
  if (more) more.remove();
  if (state.cursor && state.folder) {
    tbody.append(el('tr', { id: 'more' }, el('td', { colspan: 4 }, el('button', { type: 'button', onclick: loadMore }, 'Show more'))));
  }
  $('#empty').hidden = tbody.children.length > 0;
}

function row(n) {
  const isFolder = n.type === 'folder';
  const name = el('button', {
    type: 'button', class: 'link name',
    onclick: () => (isFolder ? enter(n) : showPreview(n)),
    title: isFolder ? `Open ${n.name}` : `Preview ${n.name}`,
  }, el('span', { class: `icon-${isFolder ? 'folder' : 'file'}`, 'aria-hidden': 'true' }), n.name);
  const actions = el('div', { class: 'row-actions' });
  if (!isFolder && atLeast(n, 'download')) {
    actions.append(el('a', { class: 'button small', href: `/api/v1/files/${n.id}/content`, download: n.name, 'data-testid': 'download-button' }, 'Download'));
  }
  if (atLeast(n, 'manage')) {
    actions.append(el('button', { type: 'button', class: 'small', 'data-testid': 'share-button', onclick: () => shareDialog(n) }, 'Share'));
  }
  const menu = el('div', { class: 'menu-items' });
  const item = (label, fn, testid) => menu.append(el('button', { type: 'button', 'data-testid': testid, onclick: (e) => { e.target.closest('details').open = false; fn(); } }, label));
  if (!isFolder) item('Preview', () => showPreview(n), 'preview-button');
  if (atLeast(n, 'edit')) { item('Rename', () => renameDialog(n), 'rename-button'); item('Move', () => moveDialog(n), 'move-button'); }
  if (!isFolder) item('Versions', () => versionsDialog(n, { errorMessage, onChange: reload }), 'versions-button');
  item('Who has access', () => accessDialog(n), 'access-button');
  if (atLeast(n, 'manage')) { item('Activity', () => activityDialog(n), 'activity-button'); item('Delete', () => deleteDialog(n), 'delete-button'); }
  actions.append(el('details', { class: 'menu' }, el('summary', { 'aria-label': `More actions for ${n.name}` }, '⋯'), menu));
  return el('tr', { 'data-testid': 'file-row', dataset: { name: n.name, id: n.id, type: n.type } },
    el('td', { class: 'col-name' }, name, el('small', { class: 'sub' }, isFolder ? 'Folder' : `${formatSize(n.size)} · ${formatTime(n.modified_at)}`)),
    el('td', { class: 'col-size' }, isFolder ? '—' : formatSize(n.size)),
    el('td', { class: 'col-date' }, formatTime(n.modified_at)),
    el('td', { class: 'col-actions' }, actions));
}

function enter(n) {
  state.path.push({ id: n.id, name: n.name });
  openFolder(n.id);
}

const reload = () => (state.folder ? openFolder(state.folder.id) : openFolder(null));

/* ---- uploads ------------------------------------------------------------------------------- */

function upload(files) {
  if (!state.folder || !atLeast(state.folder, 'edit')) {
    announce('You cannot upload here. Open a folder you may edit.', 'error');
    return;
  }
  const folderId = state.folder.id;
  for (const file of files) {
    const bar = el('progress', { max: Math.max(file.size, 1), value: 0, 'data-testid': 'upload-progress', 'aria-label': `Upload of ${file.name}` });
    const status = el('span', { class: 'muted' }, 'Waiting…');
    const pause = el('button', { type: 'button', class: 'small', 'data-testid': 'upload-pause' }, 'Pause');
    const cancel = el('button', { type: 'button', class: 'small ghost', 'data-testid': 'upload-cancel' }, 'Cancel');
    const li = el('li', { 'data-testid': 'upload', dataset: { name: file.name } },
      el('div', { class: 'upload-head' }, el('strong', {}, file.name), status), bar, el('div', { class: 'upload-actions' }, pause, cancel));
    $('#uploads').append(li);
    const up = new TusUpload(file, folderId, {
      progress: (sent, total) => {
        bar.value = total === 0 ? 1 : sent;
        status.textContent = `${formatSize(sent)} of ${formatSize(total)}`;
      },
      state: (s, detail) => {
        li.dataset.state = s;
        if (s === 'uploading') { pause.textContent = 'Pause'; pause.hidden = false; cancel.textContent = 'Cancel'; status.className = 'muted'; }
        if (s === 'paused') { status.textContent = `Paused at ${formatSize(up.offset)}`; pause.textContent = 'Resume'; }
        if (s === 'retrying') status.textContent = `Connection problem; retrying in ${Math.round(detail.delay / 1000)} s…`;
        if (s === 'failed') {
          status.textContent = failureText(detail);
          status.className = 'error';
          pause.textContent = 'Retry';
          // Retrying cannot change what the scanner found in the same bytes.
          pause.hidden = ['infected', 'blocked_type', 'unscannable'].includes(detail.code);
          cancel.textContent = 'Dismiss';
          li.dataset.error = detail.code || '';
        }
        if (s === 'done') {
          bar.value = bar.max;
          status.textContent = 'Uploaded';
          status.className = 'ok';
          pause.hidden = true;
          cancel.textContent = 'Dismiss';
          if (state.folder && state.folder.id === folderId) reload();
        }
        if (s === 'cancelled') li.remove();
      },
    });
    pause.addEventListener('click', () => {
      if (up.state === 'uploading' || up.state === 'retrying') up.pause();
      else up.resume();
    });
    cancel.addEventListener('click', () => (up.state === 'done' ? li.remove() : up.cancel()));
    up.start();
  }
}

function failureText(err) {
  switch (err.code) {
    case 'infected': return `Refused: a virus was found (${err.message}).`;
    case 'unscannable': return 'Refused: the file could not be scanned.';
    case 'blocked_type': return 'Refused: your organisation does not allow this type of file.';
    case 'conflict': return 'A file with this name already exists here.';
    case 'payload_too_large': return 'The file is larger than this server accepts.';
    case 'too_many_uploads': return 'Too many unfinished uploads. Finish or cancel some first.';
    default: return err.message || 'The upload failed.';
  }
}

function setupDrop() {
  const zone = $('#dropzone');
  const has = (e) => [...(e.dataTransfer?.types || [])].includes('Files');
  zone.addEventListener('dragover', (e) => { if (has(e)) { e.preventDefault(); zone.classList.add('dragging'); } });
  zone.addEventListener('dragleave', (e) => { if (!zone.contains(e.relatedTarget)) zone.classList.remove('dragging'); });
  zone.addEventListener('drop', (e) => {
    if (!has(e)) return;
    e.preventDefault();
    zone.classList.remove('dragging');
    upload([...e.dataTransfer.files]);
  });
}

/* ---- dialogs ------------------------------------------------------------------------------- */

async function showPreview(n) {
  const body = el('div', { class: 'preview-box' }, el('p', { class: 'muted' }, 'Loading…'));
  openDialog(n.name, body);
  try {
    const wm = await api('GET', '/api/v1/me/watermark');
    const p = await preview(`/api/v1/files/${n.id}/view`, n, wm, `/api/v1/files/${n.id}/pages`, atLeast(n, 'download'));
    const foot = el('p', { class: 'muted small' }, `${formatSize(n.size)} · ${n.mime || ''} · viewing is recorded`);
    body.replaceChildren(p, foot);
  } catch (e) {
    body.replaceChildren(el('p', { class: 'note error' }, errorMessage(e)));
  }
}

const EXPIRY_CHOICES = [[3600, '1 hour'], [86400, '1 day'], [3 * 86400, '3 days'], [7 * 86400, '7 days']];

async function shareDialog(n) {
  const perm = el('select', { 'data-testid': 'share-permission' },
    el('option', { value: 'view' }, 'View only (no download)'),
    atLeast(n, 'download') ? el('option', { value: 'download' }, 'View and download') : null);
  const expiry = el('select', { 'data-testid': 'share-expiry' }, EXPIRY_CHOICES.map(([s, t]) => el('option', { value: String(s) }, t)));
  expiry.value = String(7 * 86400);
  const code = el('input', { 'data-testid': 'share-code', maxlength: 16, placeholder: 'Generated if empty', autocomplete: 'off', spellcheck: 'false', pattern: '[A-Za-z0-9]{4,16}' });
  const limit = el('input', { type: 'number', min: 1, max: 1000000, 'data-testid': 'share-limit', placeholder: 'No limit', inputmode: 'numeric' });
  const internal = el('input', { type: 'checkbox', 'data-testid': 'share-internal' });
  const error = alertBox({ 'data-testid': 'share-dialog-error' });
  const result = el('div', { class: 'share-result', hidden: true });
  const list = el('ul', { class: 'links', 'data-testid': 'share-list' });
  const form = el('form', { class: 'grid2' },
    field('Recipients may', perm),
    field('Link expires after', expiry),
    field('Extraction code', code, '4–16 letters and digits'),
    field('Download limit', limit),
    el('label', { class: 'check' }, internal, ' Only members of my organisation (they must sign in)'),
    el('div', { class: 'form-actions' }, el('button', { type: 'submit', class: 'primary', 'data-testid': 'share-create' }, 'Create link')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.hidden = true;
    const body = { node: n.id, permission: perm.value, expires_in: Number(expiry.value) };
    if (code.value.trim()) body.code = code.value.trim();
    if (limit.value) body.max_downloads = Number(limit.value);
    if (internal.checked) body.internal_only = true;
    try {
      const sh = await api('POST', '/api/v1/shares', body);
      showShareResult(result, sh);
      await listLinks(n, list);
    } catch (err) {
      showAlert(error, errorMessage(err));
    }
  });
  openDialog(`Share “${n.name}”`, form, error, result, el('h3', {}, 'Links to this ' + (n.type === 'folder' ? 'folder' : 'file')), list);
  await listLinks(n, list);
}

function showShareResult(box, sh) {
  const url = el('input', { readonly: true, value: sh.url, 'data-testid': 'share-url', class: 'mono', 'aria-label': 'Link' });
  const code = el('output', { 'data-testid': 'share-code-value', class: 'mono code' }, sh.code);
  const copy = el('button', { type: 'button', 'data-testid': 'share-copy' }, 'Copy link and code');
  copy.addEventListener('click', async () => {
    const text = `${sh.url}\nExtraction code: ${sh.code}`;
    try { await navigator.clipboard.writeText(text); copy.textContent = 'Copied'; } catch { url.select(); copy.textContent = 'Select and copy the link'; }
  });
  box.replaceChildren(
    el('p', { class: 'note ok' }, `Link created. It works until ${formatTime(sh.expires_at)}. Send the code separately from the link.`),
    el('div', { class: 'field' }, el('label', {}, 'Link'), url),
    el('div', { class: 'field' }, el('label', {}, 'Extraction code'), code),
    copy);
  box.hidden = false;
}

async function listLinks(n, ul) {
  try {
    const { shares } = await api('GET', `/api/v1/shares${query({ node: n.id })}`);
    ul.replaceChildren();
    if (shares.length === 0) ul.append(el('li', { class: 'muted' }, 'No links yet.'));
    for (const s of shares) {
      const revoke = s.state === 'active'
        ? el('button', { type: 'button', class: 'small danger', 'data-testid': 'share-revoke', onclick: async () => { await api('DELETE', `/api/v1/shares/${s.id}`); listLinks(n, ul); } }, 'Revoke')
        : null;
      ul.append(el('li', { 'data-testid': 'share-link', dataset: { id: s.id, state: s.state } },
        el('div', {}, el('strong', {}, s.permission === 'download' ? 'View and download' : 'View only'), ' · ',
          el('span', { class: `state ${s.state}` }, s.state.replaceAll('_', ' ')), ' · ',
          `until ${formatTime(s.expires_at)}`, s.max_downloads ? ` · ${s.downloads}/${s.max_downloads} downloads` : ''),
        s.url ? el('div', { class: 'mono small' }, s.url, s.code ? ` · code ${s.code}` : '') : null,
        revoke));
    }
  } catch (e) {
    ul.replaceChildren(el('li', { class: 'error' }, errorMessage(e)));
  }
}

async function accessDialog(n) {
  const box = el('div', {}, el('p', { class: 'muted' }, 'Loading…'));
  openDialog(`Who has access to “${n.name}”`, box);
  let acl;
  let dir = { users: [], groups: [] };
  try {
    acl = await api('GET', `/api/v1/nodes/${n.id}/acl`);
    if (atLeast(n, 'manage')) dir = await api('GET', '/api/v1/directory');
  } catch (e) {
    box.replaceChildren(el('p', { class: 'note error' }, errorMessage(e)));
    return;
  }
  const manage = atLeast(n, 'manage');
  let entries = acl.entries.map((e) => ({ ...e }));
  const table = el('table', { class: 'acl', 'data-testid': 'acl-table' });
  const error = alertBox();
  const levelSelect = (value, label) => {
    const s = el('select', { 'aria-label': label }, LEVELS.map((l) => el('option', { value: l }, l)));
    s.value = value;
    return s;
  };
  const draw = () => {
    table.replaceChildren(el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Who'), el('th', { scope: 'col' }, 'Level'), el('th', { scope: 'col' }, 'Granted'))));
    const tb = el('tbody');
    // The space's owner holds manage; in the team space (owner null) the tenant's admins do.
    if (acl.owner) tb.append(el('tr', { 'data-testid': 'acl-owner' }, el('td', {}, acl.owner.name || 'Owner'), el('td', {}, 'manage'), el('td', { class: 'muted' }, 'owner of this space')));
    else tb.append(el('tr', { 'data-testid': 'acl-owner' }, el('td', {}, 'Admins'), el('td', {}, 'manage'), el('td', { class: 'muted' }, 'team space')));
    for (const e of acl.inherited) {
      tb.append(el('tr', { 'data-testid': 'acl-inherited' }, el('td', {}, e.name || e.principal), el('td', {}, e.level), el('td', { class: 'muted' }, 'from a parent folder')));
    }
    entries.forEach((e, i) => {
      const sel = levelSelect(e.level, `Level for ${e.name || e.principal}`);
      sel.disabled = !manage;
      sel.addEventListener('change', () => { e.level = sel.value; });
      const rm = manage ? el('button', { type: 'button', class: 'small ghost', onclick: () => { entries.splice(i, 1); draw(); } }, 'Remove') : null;
      tb.append(el('tr', { 'data-testid': 'acl-entry', dataset: { principal: e.principal } }, el('td', {}, e.name || e.principal), el('td', {}, sel), el('td', {}, rm)));
    });
    table.append(tb);
  };
  draw();
  const parts = [table];
  if (manage) {
    const who = el('select', { 'data-testid': 'acl-principal' },
      el('option', { value: 'tenant' }, 'Everyone in the organisation'),
      el('optgroup', { label: 'Groups' }, dir.groups.map((g) => el('option', { value: `group:${g.id}` }, g.name))),
      deptOptgroup(dir),
      el('optgroup', { label: 'People' }, dir.users.filter((u) => u.id !== state.me.id).map((u) => el('option', { value: `user:${u.id}` }, u.display_name ? `${u.display_name} (${u.username})` : u.username))));
    const lvl = levelSelect('view', 'Level to grant');
    lvl.dataset.testid = 'acl-level';
    const add = el('button', { type: 'button', 'data-testid': 'acl-add' }, 'Add');
    add.addEventListener('click', () => {
      const name = who.selectedOptions[0].textContent;
      entries = entries.filter((e) => aclKey(e.principal) !== aclKey(who.value));
      entries.push({ principal: who.value, level: lvl.value, name });
      draw();
    });
    const save = el('button', { type: 'button', class: 'primary', 'data-testid': 'acl-save' }, 'Save access');
    save.addEventListener('click', async () => {
      error.hidden = true;
      try {
        acl = await api('PUT', `/api/v1/nodes/${n.id}/acl`, { entries: entries.map(aclEntryOut) });
        entries = acl.entries.map((e) => ({ ...e }));
        draw();
        announce(`Access to ${n.name} saved.`, 'ok');
      } catch (e) {
        showAlert(error, errorMessage(e));
      }
    });
    parts.push(el('div', { class: 'acl-add' }, field('Grant', who), field('Level', lvl), add), error, el('div', { class: 'form-actions' }, save));
  }
  box.replaceChildren(...parts);
}

const ACTION_TEXT = {
  'file.upload': 'uploaded', 'file.view': 'viewed', 'file.page_view': 'viewed pages', 'file.download': 'downloaded', 'file.delete': 'moved to trash',
  'file.purge': 'destroyed', 'node.move': 'moved', 'node.rename': 'renamed', 'acl.change': 'changed access',
  'share.create': 'created a link', 'share.revoke': 'revoked a link', 'share.unlock': 'unlocked the link',
  'share.unlock_failed': 'tried a wrong code', 'share.view': 'viewed through a link', 'share.download': 'downloaded through a link',
  'folder.create': 'created the folder', 'upload.rejected': 'upload refused',
  'node.restore': 'restored from the trash', 'file.version_restore': 'restored an old version', 'file.version_purge': 'old version removed',
};

function actorName(a) {
  if (a.type === 'share') return `Link recipient ${String(a.id || '').slice(0, 8)}`;
  if (a.type === 'anonymous') return 'Anonymous';
  if (a.type === 'system') return 'System';
  return a.name || a.id || 'unknown';
}

async function activityDialog(n) {
  const list = el('ol', { class: 'timeline', 'data-testid': 'activity' }, el('li', { class: 'muted' }, 'Loading…'));
  openDialog(`Activity of “${n.name}”`, list);
  try {
    const { events } = await api('GET', `/api/v1/files/${n.id}/activity${query({ limit: 200 })}`);
    list.replaceChildren();
    if (events.length === 0) list.append(el('li', { class: 'muted' }, 'No activity recorded yet.'));
    for (const ev of events) {
      const t = ev.transfer;
      const transfer = t ? ` · ${t.bytes_sent === null ? 'interrupted' : formatSize(t.bytes_sent)}${t.completed === false ? ' (incomplete)' : ''}` : '';
      list.append(el('li', { 'data-testid': 'activity-event', dataset: { action: ev.action, result: ev.result } },
        el('time', { datetime: ev.at }, formatTime(ev.at)),
        el('div', {}, el('strong', {}, actorName(ev.actor)), ` ${ACTION_TEXT[ev.action] || ev.action}`, ev.result !== 'ok' ? ` (${ev.result})` : ''),
        el('small', { class: 'muted' }, `${ev.ip || ''}${transfer}`)));
    }
  } catch (e) {
    list.replaceChildren(el('li', { class: 'error' }, errorMessage(e)));
  }
}

function simpleForm(title, label, value, submitText, onSubmit) {
  const input = el('input', { value, required: true, 'data-testid': 'dialog-input', spellcheck: 'false' });
  const error = alertBox();
  const form = el('form', {}, field(label, input), error,
    el('div', { class: 'form-actions' }, el('button', { type: 'submit', class: 'primary', 'data-testid': 'dialog-submit' }, submitText)));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      await onSubmit(input.value);
      closeDialog();
      reload();
    } catch (err) {
      showAlert(error, err.code === 'conflict' ? 'Something with this name already exists here.' : errorMessage(err));
    }
  });
  openDialog(title, form);
  input.select();
}

function renameDialog(n) {
  simpleForm(`Rename “${n.name}”`, 'New name', n.name, 'Rename', (name) => api('PATCH', `/api/v1/nodes/${n.id}`, { name }));
}

function newFolderDialog() {
  simpleForm('New folder', 'Folder name', '', 'Create', (name) => api('POST', '/api/v1/folders', { parent: state.folder.id, name }));
}

// Move: browse folders of the same space from its root and pick one.
async function moveDialog(n) {
  const trail = [state.path[0]];
  const list = el('ul', { class: 'folder-pick' });
  const where = el('p', { class: 'muted' });
  const error = alertBox();
  const here = el('button', { type: 'button', class: 'primary', 'data-testid': 'move-here' }, 'Move here');
  const draw = async () => {
    const cur = trail[trail.length - 1];
    where.textContent = `Destination: ${trail.map((t) => t.name).join(' / ')}`;
    list.replaceChildren();
    if (trail.length > 1) list.append(el('li', {}, el('button', { type: 'button', class: 'link', onclick: () => { trail.pop(); draw(); } }, '↑ Up')));
    const { items } = await api('GET', `/api/v1/nodes/${cur.id}/children${query({ limit: 500 })}`);
    for (const f of items.filter((i) => i.type === 'folder' && i.id !== n.id)) {
      list.append(el('li', {}, el('button', { type: 'button', class: 'link', onclick: () => { trail.push({ id: f.id, name: f.name }); draw(); } }, `📁 ${f.name}`)));
    }
  };
  here.addEventListener('click', async () => {
    try {
      await api('PATCH', `/api/v1/nodes/${n.id}`, { parent: trail[trail.length - 1].id });
      closeDialog();
      announce(`Moved ${n.name}.`, 'ok');
      reload();
    } catch (e) {
      showAlert(error, errorMessage(e));
    }
  });
  if (!trail[0]) return;
  openDialog(`Move “${n.name}”`, where, list, error, el('div', { class: 'form-actions' }, here));
  await draw();
}

function deleteDialog(n) {
  const error = alertBox();
  const trash = el('button', { type: 'button', class: 'danger', 'data-testid': 'delete-confirm' }, 'Move to trash');
  const cancel = el('button', { type: 'button', onclick: closeDialog }, 'Cancel');
  trash.addEventListener('click', async () => {
    try {
      await api('DELETE', `/api/v1/nodes/${n.id}`);
      closeDialog();
      announce(`${n.name} moved to trash.`, 'ok');
      reload();
    } catch (e) {
      showAlert(error, errorMessage(e));
    }
  });
  openDialog(`Delete “${n.name}”?`, el('p', {}, n.type === 'folder' ? 'The folder and everything in it go to the trash. Links to them stop working.' : 'The file goes to the trash. Links to it stop working.'), error, el('div', { class: 'form-actions' }, cancel, trash));
}

/* ---- start --------------------------------------------------------------------------------- */

async function boot() {
  $('#login-form').addEventListener('submit', onLogin);
  $('#enrol-form').addEventListener('submit', onEnrol);
  $('#logout').addEventListener('click', logout);
  $('#new-folder').addEventListener('click', newFolderDialog);
  $('#upload-input').addEventListener('change', (e) => { upload([...e.target.files]); e.target.value = ''; });
  for (const b of document.querySelectorAll('.spaces button')) b.addEventListener('click', () => openSpace(b.dataset.space));
  setupDrop();
  setupSearch({ spaces: () => state.spaces, open: openAt, errorMessage }); // search.js
  if (csrf.get()) {
    try {
      await enterApp(await api('GET', '/api/v1/me'));
      return;
    } catch { /* not signed in */ }
  }
  show('login-view');
  $('#login-username').focus();
}

boot();
