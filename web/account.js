// account.js: the member's account and security page at "/account" (issue 21): profile, password
// change, two-factor sign-in (TOTP enrolment with the QR code the server drew, recovery codes shown
// once and downloadable as text), where the account is signed in (with revoke), the sign-in history
// and the security alerts. It is also where a session that must change its password (an admin reset
// it) or must enrol TOTP first is sent: then only that part of the page shows. Every request goes
// through api.js; everything from the server is inserted as text (ui.js el()), the QR code as an
// <img> of an SVG data URL, never as markup. App passwords (issue 22): made per device, shown once
// with a copy button, listed with their last use, revoked.

import { api, ApiError, csrf } from './api.js';
import { el, $, formatTime, announce, openDialog, closeDialog, field, alertBox, showAlert } from './ui.js';

const ALERT_TEXT = {
  'alert.new_device': 'Sign-in from a new device',
  'alert.recovery_code_used': 'A recovery code was used to sign in',
  'alert.recovery_codes_created': 'New recovery codes were made',
  'alert.account_reset': 'An administrator reset your account',
  'alert.group_change': 'A group with access to your files changed',
  'alert.bulk_download': 'Many files were downloaded',
  'alert.app_password_created': 'An app password was created',
};

let me = null;

function errorMessage(err) {
  if (!(err instanceof ApiError)) return String(err.message || err);
  if (err.code === 'rate_limited') {
    const s = Number(err.headers?.get('retry-after') || 60);
    return `Too many attempts. Try again in ${Math.max(1, Math.ceil(s / 60))} minute${s > 60 ? 's' : ''}.`;
  }
  return err.message;
}

// "Firefox on Linux" from a user agent (the server's alerts carry the same label).
export function deviceLabel(ua) {
  if (!ua) return 'Unknown client';
  const pick = (list) => (list.find(([needle]) => ua.includes(needle)) || [])[1];
  const client = pick([['Edg/', 'Edge'], ['OPR/', 'Opera'], ['Firefox/', 'Firefox'], ['Chrome/', 'Chrome'], ['Safari/', 'Safari'],
    ['curl/', 'curl'], ['node', 'Node.js'], ['python', 'Python']]) || ua.split(/[ /]/)[0] || 'Unknown client';
  const system = pick([['Windows', 'Windows'], ['Android', 'Android'], ['iPhone', 'iOS'], ['iPad', 'iPadOS'], ['Mac OS X', 'macOS'],
    ['CrOS', 'ChromeOS'], ['Linux', 'Linux']]);
  return system ? `${client} on ${system}` : client;
}

function show(...ids) {
  for (const s of document.querySelectorAll('main > section')) s.hidden = !ids.includes(s.id);
}

/* ---- profile and password ------------------------------------------------------------------ */

function renderProfile() {
  const facts = [
    ['Name', me.display_name || '—'], ['Username', me.username], ['Organisation', me.tenant?.name || ''],
    ['Role', me.role], ['E-mail', 'not recorded by this server'],
  ];
  $('#profile-facts').replaceChildren(...facts.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
}

async function onPassword(ev) {
  ev.preventDefault();
  const err = $('#password-error');
  err.hidden = true;
  const current = $('#pw-current').value, next = $('#pw-new').value;
  if (next.length < 8) return showAlert(err, 'The new password needs at least 8 characters.');
  if (next !== $('#pw-again').value) return showAlert(err, 'The two new passwords differ.');
  try {
    await api('PUT', '/api/v1/me/password', { current, new: next });
    for (const id of ['#pw-current', '#pw-new', '#pw-again']) $(id).value = '';
    announce('Your password was changed. Every other session of your account has ended.', 'ok');
    await load();
  } catch (e) {
    showAlert(err, e.code === 'forbidden' ? 'The current password is not right.' : errorMessage(e));
  }
}

/* ---- two-factor sign-in -------------------------------------------------------------------- */

function codesBlock(codes) {
  const text = `Coffer recovery codes for ${me.username} (${me.tenant?.name || ''})\n` +
    'Each code signs you in once in place of your authenticator code. Keep them somewhere safe.\n\n' + codes.join('\n') + '\n';
  const download = el('button', { type: 'button', 'data-testid': 'recovery-download', onclick: () => {
    const url = URL.createObjectURL(new Blob([text], { type: 'text/plain' }));
    const a = el('a', { href: url, download: 'coffer-recovery-codes.txt' });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  } }, 'Download as text');
  return el('div', { class: 'note', 'data-testid': 'recovery-codes-box' },
    el('p', {}, el('strong', {}, 'Your recovery codes. '), 'They are shown only now. Each one signs you in once if you lose your phone.'),
    el('ol', { class: 'codes mono', 'data-testid': 'recovery-codes' }, codes.map((c) => el('li', {}, c))),
    el('div', { class: 'form-actions' }, download));
}

async function startEnrolment() {
  const body = $('#totp-body');
  const t = await api('POST', '/api/v1/me/totp');
  const err = alertBox({ 'data-testid': 'totp-error' });
  const code = el('input', { inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: '6', required: true, 'data-testid': 'totp-code' });
  const qr = el('img', { class: 'qr', alt: 'QR code of your authenticator key', 'data-testid': 'totp-qr', width: '240', height: '240',
    src: `data:image/svg+xml;base64,${btoa(t.qr_svg)}` });
  const form = el('form', { novalidate: true }, field('Code from the app', code), err,
    el('div', { class: 'form-actions' }, el('button', { type: 'submit', class: 'primary', 'data-testid': 'totp-confirm' }, 'Turn on')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.hidden = true;
    try {
      const r = await api('POST', '/api/v1/me/totp/confirm', { code: code.value.trim() });
      me = await api('GET', '/api/v1/me');
      renderTotp(r.recovery_codes);
      announce('Two-factor sign-in is on.', 'ok');
      if (!$('#acct-forced').hidden) await load(r.recovery_codes);
    } catch (e) {
      showAlert(err, e.status === 400 ? 'That code is not right. Type the current code from your app.' : errorMessage(e));
    }
  });
  body.replaceChildren(
    el('p', {}, 'Scan this code with your authenticator app (or type the key), then type the 6-digit code it shows.'),
    qr,
    el('p', {}, 'Key: ', el('code', { class: 'secret', 'data-testid': 'totp-secret' }, t.secret)),
    form);
  code.focus();
}

function newCodesDialog() {
  const err = alertBox();
  const pw = el('input', { type: 'password', autocomplete: 'current-password', required: true, 'data-testid': 'regen-password' });
  const form = el('form', { novalidate: true }, field('Your password', pw), err,
    el('div', { class: 'form-actions' }, el('button', { type: 'button', onclick: closeDialog }, 'Cancel'),
      el('button', { type: 'submit', class: 'primary', 'data-testid': 'regen-confirm' }, 'Make new codes')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const r = await api('POST', '/api/v1/me/totp/recovery-codes', { password: pw.value });
      closeDialog();
      me = await api('GET', '/api/v1/me');
      renderTotp(r.codes);
    } catch (e) {
      showAlert(err, e.code === 'forbidden' ? 'The password is not right.' : errorMessage(e));
    }
  });
  openDialog('New recovery codes', el('p', {}, 'Your old recovery codes stop working.'), form);
}

function disableDialog() {
  const err = alertBox();
  const code = el('input', { inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: '6', required: true });
  const form = el('form', { novalidate: true }, field('Code from your app', code), err,
    el('div', { class: 'form-actions' }, el('button', { type: 'button', onclick: closeDialog }, 'Cancel'),
      el('button', { type: 'submit', class: 'danger' }, 'Turn off')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await api('DELETE', '/api/v1/me/totp', { code: code.value.trim() });
      closeDialog();
      me = await api('GET', '/api/v1/me');
      renderTotp();
    } catch (e) {
      showAlert(err, e.status === 400 ? 'That code is not right.' : errorMessage(e));
    }
  });
  openDialog('Turn off two-factor sign-in?', el('p', {}, 'Your recovery codes stop working too.'), form);
}

function renderTotp(freshCodes) {
  const body = $('#totp-body');
  if (!me.totp_enabled) {
    body.replaceChildren(
      el('p', { 'data-testid': 'totp-state' }, 'Off. With an authenticator app on your phone, a stolen password alone does not open your account.'),
      el('div', { class: 'form-actions' }, el('button', { type: 'button', class: 'primary', 'data-testid': 'totp-start', onclick: () => startEnrolment().catch((e) => announce(errorMessage(e), 'error')) }, 'Set up')));
    return;
  }
  const left = me.recovery_codes_remaining;
  body.replaceChildren(...[
    el('p', { 'data-testid': 'totp-state' }, 'On. ', el('span', { 'data-testid': 'recovery-left' }, `${left} recovery code${left === 1 ? '' : 's'} left.`),
      left <= 3 ? el('span', { class: 'tag warn' }, 'make new ones') : null),
    freshCodes ? codesBlock(freshCodes) : null,
    el('div', { class: 'form-actions' },
      el('button', { type: 'button', 'data-testid': 'recovery-regenerate', onclick: newCodesDialog }, 'New recovery codes'),
      el('button', { type: 'button', class: 'danger', onclick: disableDialog }, 'Turn off')),
  ].filter(Boolean));
}

/* ---- sessions, history, alerts ------------------------------------------------------------- */

async function renderSessions() {
  const { sessions } = await api('GET', '/api/v1/me/sessions');
  sessions.sort((a, b) => (b.current - a.current) || b.created_at.localeCompare(a.created_at));
  $('#sessions-rows').replaceChildren(...sessions.map((s) => el('tr', { 'data-testid': 'session-row', dataset: { id: s.id } },
    el('td', {}, s.kind === 'token' ? `App token “${s.name}”` : deviceLabel(s.user_agent), s.current ? el('span', { class: 'tag' }, 'this browser') : null),
    el('td', {}, s.ip || ''),
    el('td', { class: 'when' }, formatTime(s.created_at)),
    el('td', {}, s.current ? null : el('button', { type: 'button', class: 'small danger', 'data-testid': 'session-revoke', onclick: async (ev) => {
      ev.target.disabled = true;
      try {
        await api('DELETE', `/api/v1/me/sessions/${s.id}`);
        announce(`Signed out ${s.kind === 'token' ? 'the app token' : deviceLabel(s.user_agent)}.`, 'ok');
        await renderSessions();
      } catch (e) {
        ev.target.disabled = false;
        announce(errorMessage(e), 'error');
      }
    } }, s.kind === 'token' ? 'Revoke' : 'Sign out')))));
}

/* ---- app passwords -------------------------------------------------------------------------- */

function freshAppPassword(p) {
  const copy = el('button', { type: 'button', 'data-testid': 'apppw-copy', onclick: async () => {
    try {
      await navigator.clipboard.writeText(p.password);
      announce('App password copied.', 'ok');
    } catch {
      announce('Copying is not allowed here: select the password and copy it by hand.', 'error');
    }
  } }, 'Copy');
  return el('div', { class: 'note', 'data-testid': 'apppw-fresh' },
    el('p', {}, el('strong', {}, `App password for “${p.name}”. `), 'It is shown only now: type it into the app, with your username, in place of your password.'),
    el('p', {}, el('code', { class: 'mono', 'data-testid': 'apppw-secret' }, p.password)),
    el('div', { class: 'form-actions' }, copy,
      el('button', { type: 'button', onclick: () => $('#apppw-fresh').replaceChildren() }, 'Done')));
}

async function renderAppPasswords() {
  const { items } = await api('GET', '/api/v1/me/app-passwords');
  items.sort((a, b) => b.created_at.localeCompare(a.created_at));
  if (!items.length) {
    $('#apppw-rows').replaceChildren(el('tr', {}, el('td', { colspan: 4, class: 'muted' }, 'No app passwords.')));
    return;
  }
  $('#apppw-rows').replaceChildren(...items.map((p) => el('tr', { 'data-testid': 'apppw-row', dataset: { id: p.id } },
    el('td', {}, p.name),
    el('td', { class: 'when' }, formatTime(p.created_at)),
    el('td', { class: 'when', 'data-testid': 'apppw-last-used' }, p.last_used_at ? `${formatTime(p.last_used_at)}${p.last_used_ip ? ` · ${p.last_used_ip}` : ''}` : 'never'),
    el('td', {}, el('button', { type: 'button', class: 'small danger', 'data-testid': 'apppw-revoke', 'aria-label': `Revoke ${p.name}`, onclick: async (ev) => {
      ev.target.disabled = true;
      try {
        await api('DELETE', `/api/v1/me/app-passwords/${p.id}`);
        announce(`Revoked the app password “${p.name}”.`, 'ok');
        await renderAppPasswords();
      } catch (e) {
        ev.target.disabled = false;
        announce(errorMessage(e), 'error');
      }
    } }, 'Revoke')))));
}

async function onAppPassword(ev) {
  ev.preventDefault();
  const err = $('#apppw-error');
  err.hidden = true;
  const name = $('#apppw-name').value.trim();
  const button = ev.submitter || $('#apppw-form button[type=submit]');
  button.disabled = true;
  try {
    const p = await api('POST', '/api/v1/me/app-passwords', { name });
    $('#apppw-name').value = '';
    $('#apppw-fresh').replaceChildren(freshAppPassword(p));
    await renderAppPasswords();
  } catch (e) {
    err.textContent = errorMessage(e);
    err.hidden = false;
  } finally {
    button.disabled = false;
  }
}

const RESULT = { ok: 'Signed in', failed: 'Wrong password', mfa_failed: 'Wrong second factor', mfa_required: 'Password right, code asked', frozen: 'Account frozen' };

async function renderHistory() {
  const { logins } = await api('GET', '/api/v1/me/logins');
  $('#history-rows').replaceChildren(...logins.slice(0, 30).map((l) => el('tr', { 'data-testid': 'login-row' },
    el('td', { class: 'when' }, formatTime(l.at)),
    el('td', {}, deviceLabel(l.user_agent), l.new_device ? el('span', { class: 'tag warn' }, 'new device') : null),
    el('td', {}, l.ip || ''),
    el('td', { class: l.result === 'ok' ? 'ok' : 'error' }, RESULT[l.result] || l.result))));
}

async function renderAlerts() {
  const { alerts } = await api('GET', '/api/v1/me/alerts');
  const list = $('#alerts-list');
  if (!alerts.length) {
    list.replaceChildren(el('li', { class: 'muted' }, 'No alerts.'));
    return;
  }
  list.replaceChildren(...alerts.map((a) => {
    const d = a.detail || {};
    const where = [d.device || (d.user_agent ? deviceLabel(d.user_agent) : null), d.ip].filter(Boolean).join(' · ');
    const extra = a.kind === 'alert.recovery_code_used' ? ` ${d.remaining} left.` : a.kind === 'alert.account_reset'
      ? ` By ${d.by}: ${[d.password ? 'password' : null, d.mfa ? 'two-factor sign-in' : null].filter(Boolean).join(' and ')}.` : '';
    return el('li', { 'data-testid': 'alert-row', dataset: { kind: a.kind } },
      el('div', {}, el('span', { class: 'what' }, ALERT_TEXT[a.kind] || a.kind), extra),
      el('div', { class: 'muted small' }, formatTime(a.at), where ? ` · ${where}` : ''));
  }));
}

/* ---- start --------------------------------------------------------------------------------- */

async function load(freshCodes) {
  me = await api('GET', '/api/v1/me');
  $('#who').textContent = me.display_name || me.username;
  renderTotp(freshCodes);
  if (me.password_change_required) {
    $('#forced-title').textContent = 'Choose a new password';
    $('#forced-text').textContent = 'An administrator reset your password. Type the temporary password you were given, then your new one.';
    $('#files-link').hidden = true;
    show('acct-forced', 'acct-password');
    $('#pw-current').focus();
    return;
  }
  if (me.mfa_enrolment_required) {
    $('#forced-title').textContent = 'Set up two-factor sign-in';
    $('#forced-text').textContent = 'Your organisation requires an authenticator app before you continue.';
    $('#files-link').hidden = true;
    show('acct-forced', 'acct-totp');
    await startEnrolment();
    return;
  }
  $('#files-link').hidden = false;
  renderProfile();
  show('acct-profile', 'acct-password', 'acct-totp', 'acct-sessions', 'acct-apppw', 'acct-history', 'acct-alerts');
  await Promise.all([renderSessions(), renderAppPasswords(), renderHistory(), renderAlerts()]);
}

async function boot() {
  $('#password-form').addEventListener('submit', onPassword);
  $('#apppw-form').addEventListener('submit', onAppPassword);
  $('#logout').addEventListener('click', async () => {
    try { await api('POST', '/api/v1/auth/logout'); } catch { /* gone already */ }
    csrf.clear();
    location.replace('/');
  });
  try {
    await load();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) show('acct-signin');
    else announce(errorMessage(e), 'error');
  }
}

boot();
