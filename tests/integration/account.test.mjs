// account.test.mjs: account recovery and self-service security (issue 21), against the real server:
// the admin reset of a password and of the second factor (and what the next sign-in must do),
// recovery codes (issued at TOTP enrolment, single use, regenerable, throttled like logins), the
// distinct error of a wrong second factor after a right password, the per-user session cap, the
// device cookie behind new-device alerts, and the provenance events and user alerts of each.
// TOTP codes come from oathtool, a real authenticator.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { Server, cli, dirContains } from './lib/harness.mjs';

const CAP = 3; // auth.max_sessions_per_user on main
const main = new Server({ config: { auth: { max_failures_per_account: 1000, max_failures_per_ip: 1000, max_sessions_per_user: CAP } } });
const thr = new Server({ config: { auth: { max_failures_per_account: 3, max_failures_per_ip: 1000, failure_window: '60s' } } });
const ACME_PASSWORD = 'acme-admin-password-1';
let admin, acme, unknownBody;

before(async () => {
  // A second tenant, made while the store is not held, for the cross-tenant checks.
  await main.start();
  await main.stop();
  assert.equal(cli(['tenant', 'create', 'acme', '-c', main.configPath]).status, 0);
  const u = cli(['user', 'add', '--tenant', 'acme', '--username', 'root', '--role', 'admin', '-c', main.configPath], { COFFER_USER_PASSWORD: ACME_PASSWORD });
  assert.equal(u.status, 0, u.stderr);
  await Promise.all([main.start(), thr.start()]);
  admin = await main.login();
  acme = await main.login('root', ACME_PASSWORD, 'acme');
  const r = await login(main, { username: 'no-such-user', password: 'some-password-1' });
  unknownBody = r.body;
});

after(async () => {
  const errors = [];
  for (const s of [main, thr]) {
    try { await s.stop(); } catch (e) { errors.push(e); }
    s.cleanup();
  }
  if (errors.length) throw errors[0];
});

// ---- helpers ------------------------------------------------------------------------------------

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const CODE = /^[a-hjkmnp-z2-9]{4}(-[a-hjkmnp-z2-9]{4}){3}$/;

function assertError(r, status, code, what = '') {
  assert.equal(r.status, status, `${what}: ${r.status} ${r.body && r.text()}`);
  const j = r.json();
  assert.deepEqual(Object.keys(j).sort(), ['error', 'message'], what);
  assert.equal(j.error, code, what);
  return j;
}

function login(server, body, headers = {}) {
  return server.request('POST', '/api/v1/auth/login', { body, headers });
}
async function loginOk(server, body, headers) {
  const r = await login(server, body, headers);
  assert.equal(r.status, 200, `login ${body.username}: ${r.status} ${r.text()}`);
  return r.json();
}
async function mkUser(server, token, username, password) {
  const r = await server.request('POST', '/api/v1/admin/users', { token, body: { username, password } });
  assert.equal(r.status, 201, r.text());
  return r.json();
}
const get = (server, token, p) => server.request('GET', p, { token });
const reset = (server, token, id, body) => server.request('POST', `/api/v1/admin/users/${id}/reset`, { token, body });

const STEP = 30;
const stepNow = () => Math.floor(Date.now() / 1000 / STEP);
const codeAt = (secret, step) => execFileSync('oathtool', ['--totp', '-b', '-N', `@${step * STEP}`, secret], { encoding: 'utf8' }).trim();
function wrongCode(secret, step) {
  const valid = new Set([-1, 0, 1].map((d) => codeAt(secret, step + d)));
  let c = (Number(codeAt(secret, step)) + 500000) % 1000000;
  while (valid.has(String(c).padStart(6, '0'))) c = (c + 1) % 1000000;
  return String(c).padStart(6, '0');
}
async function roomInStep(seconds) {
  const left = STEP - ((Date.now() / 1000) % STEP);
  if (left < seconds) await sleep(left * 1000 + 250);
  return stepNow();
}

/** Enrols TOTP for the session; returns {secret, codes, step}: the recovery codes the confirmation issued. */
async function enrolTotp(server, token) {
  const e = await server.request('POST', '/api/v1/me/totp', { token });
  assert.equal(e.status, 200, e.text());
  const j = e.json();
  assert.deepEqual(Object.keys(j).sort(), ['otpauth_uri', 'qr_svg', 'secret']);
  assert.match(j.qr_svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg" viewBox="0 0 \d+ \d+"/);
  const T = await roomInStep(6);
  const c = await server.request('POST', '/api/v1/me/totp/confirm', { token, body: { code: codeAt(j.secret, T - 1) } });
  assert.equal(c.status, 200, c.text());
  const codes = c.json().recovery_codes;
  assert.equal(codes.length, 10);
  for (const code of codes) assert.match(code, CODE);
  assert.equal(new Set(codes).size, 10);
  assert.equal(new Set(codes.map((x) => x.slice(0, 4))).size, 10, 'distinct tags');
  return { secret: j.secret, codes, step: T - 1 };
}

/** Polls fn until pred holds (a generous deadline: it only ends a wait that failed). */
async function poll(fn, pred, ms = 120000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (pred(v) || Date.now() > deadline) return v;
    await sleep(25);
  }
}
async function events(server, token, action) {
  const r = await get(server, token, `/api/v1/audit?action=${action}`);
  assert.equal(r.status, 200, r.text());
  return r.json().events;
}
async function alerts(server, token) {
  const r = await get(server, token, '/api/v1/me/alerts');
  assert.equal(r.status, 200, r.text());
  return r.json().alerts;
}

// ---- admin reset --------------------------------------------------------------------------------

test('admin reset of a password: temporary password, forced change at next sign-in, sessions end, event and alert', async () => {
  const u = await mkUser(main, admin.token, 'pam', 'pam-password-1');
  const s0 = await loginOk(main, { username: 'pam', password: 'pam-password-1' });
  const tok = await main.request('POST', '/api/v1/me/tokens', { token: s0.token, body: { name: 'script' } });
  assert.equal(tok.status, 201);

  const r = await reset(main, admin.token, u.id, { password: true });
  assert.equal(r.status, 200, r.text());
  const j = r.json();
  assert.deepEqual(Object.keys(j).sort(), ['mfa_enrolment_required', 'password_change_required', 'temporary_password']);
  assert.match(j.temporary_password, /^[A-Za-z0-9]{20}$/);
  assert.equal(j.password_change_required, true);
  assert.equal(j.mfa_enrolment_required, false);

  // Every session and API token of the user ended; the old password is gone.
  assertError(await get(main, s0.token, '/api/v1/me'), 401, 'unauthorized', 'old session');
  assertError(await get(main, tok.json().token, '/api/v1/me'), 401, 'unauthorized', 'old token');
  const old = await login(main, { username: 'pam', password: 'pam-password-1' });
  assertError(old, 401, 'unauthorized', 'old password');
  assert.ok(old.body.equals(unknownBody));

  // The temporary password opens a session that may only change it.
  const t = await loginOk(main, { username: 'pam', password: j.temporary_password });
  assert.equal(t.password_change_required, true);
  assert.equal(t.mfa_enrolment_required, false);
  const me = (await get(main, t.token, '/api/v1/me')).json();
  assert.equal(me.password_change_required, true);
  assertError(await get(main, t.token, '/api/v1/spaces'), 403, 'password_change_required', 'spaces');
  assertError(await get(main, t.token, '/api/v1/me/sessions'), 403, 'password_change_required', 'sessions');
  assertError(await main.request('POST', '/api/v1/me/totp', { token: t.token }), 403, 'password_change_required', 'enrol');
  const pw = (body) => main.request('PUT', '/api/v1/me/password', { token: t.token, body });
  assertError(await pw({ current: j.temporary_password, new: j.temporary_password }), 400, 'bad_request', 'same password');
  assertError(await pw({ current: 'not-the-temp-pw', new: 'pam-password-2' }), 403, 'forbidden', 'wrong current');
  assert.equal((await pw({ current: j.temporary_password, new: 'pam-password-2' })).status, 204);
  // The same session is now a full one; the temporary password no longer works.
  assert.equal((await get(main, t.token, '/api/v1/spaces')).status, 200);
  assert.equal((await get(main, t.token, '/api/v1/me')).json().password_change_required, false);
  assertError(await login(main, { username: 'pam', password: j.temporary_password }), 401, 'unauthorized', 'temp after change');
  const n = await loginOk(main, { username: 'pam', password: 'pam-password-2' });
  assert.equal(n.password_change_required, false);

  // Provenance and the user's alert (with the address and device the reset came from).
  const ev = (await poll(() => events(main, admin.token, 'user.reset'), (e) => e.some((x) => x.detail.user === u.id))).find((x) => x.detail.user === u.id);
  assert.equal(ev.detail.username, 'pam');
  assert.equal(ev.detail.password, true);
  assert.equal(ev.detail.mfa, false);
  assert.equal(ev.actor.name, 'admin');
  assert.ok(!JSON.stringify(ev).includes(j.temporary_password), 'no temporary password in provenance');
  const a = (await alerts(main, n.token)).find((x) => x.kind === 'alert.account_reset');
  assert.ok(a, 'alert.account_reset');
  assert.deepEqual({ password: a.detail.password, mfa: a.detail.mfa, by: a.detail.by, ip: a.detail.ip }, { password: true, mfa: false, by: 'admin', ip: '127.0.0.1' });
});

test('admin reset of MFA: TOTP and recovery codes removed, re-enrolment forced at next sign-in', async () => {
  const u = await mkUser(main, admin.token, 'moe', 'moe-password-1');
  const s = await loginOk(main, { username: 'moe', password: 'moe-password-1' });
  const { codes } = await enrolTotp(main, s.token);

  const r = await reset(main, admin.token, u.id, { mfa: true });
  assert.equal(r.status, 200, r.text());
  assert.deepEqual(r.json(), { password_change_required: false, mfa_enrolment_required: true });
  assertError(await get(main, s.token, '/api/v1/me'), 401, 'unauthorized', 'session ended');
  const users = (await get(main, admin.token, '/api/v1/admin/users')).json().users;
  assert.equal(users.find((x) => x.id === u.id).totp_enabled, false);

  // The password alone signs in now, to a session that must enrol first (the tenant does not require MFA).
  const t = await loginOk(main, { username: 'moe', password: 'moe-password-1' });
  assert.equal(t.mfa_enrolment_required, true);
  assertError(await get(main, t.token, '/api/v1/spaces'), 401, 'mfa_required', 'before enrolment');
  // An old recovery code is no second factor any more (there is none to stand in for).
  const again = await enrolTotp(main, t.token);
  assert.equal((await get(main, t.token, '/api/v1/spaces')).status, 200, 'after enrolment');
  assertError(await login(main, { username: 'moe', password: 'moe-password-1', recovery_code: codes[0] }), 401, 'recovery_code_invalid', 'old code');
  const ok = await loginOk(main, { username: 'moe', password: 'moe-password-1', recovery_code: again.codes[0] });
  assert.equal(ok.mfa_enrolment_required, false);

  const ev = (await poll(() => events(main, admin.token, 'user.reset'), (e) => e.some((x) => x.detail.user === u.id))).find((x) => x.detail.user === u.id);
  assert.deepEqual([ev.detail.password, ev.detail.mfa], [false, true]);
  const a = (await alerts(main, ok.token)).find((x) => x.kind === 'alert.account_reset');
  assert.deepEqual([a.detail.password, a.detail.mfa], [false, true]);
});

test('admin reset of both at once: change the password first, then enrol', async () => {
  const u = await mkUser(main, admin.token, 'bo', 'bo-password-1');
  const s = await loginOk(main, { username: 'bo', password: 'bo-password-1' });
  await enrolTotp(main, s.token);
  const r = await reset(main, admin.token, u.id, { password: true, mfa: true });
  assert.equal(r.status, 200);
  const temp = r.json().temporary_password;
  const t = await loginOk(main, { username: 'bo', password: temp });
  assert.deepEqual([t.password_change_required, t.mfa_enrolment_required], [true, true]);
  assertError(await main.request('POST', '/api/v1/me/totp', { token: t.token }), 403, 'password_change_required', 'enrol first');
  assert.equal((await main.request('PUT', '/api/v1/me/password', { token: t.token, body: { current: temp, new: 'bo-password-2' } })).status, 204);
  assertError(await get(main, t.token, '/api/v1/spaces'), 401, 'mfa_required', 'then enrolment');
  await enrolTotp(main, t.token);
  assert.equal((await get(main, t.token, '/api/v1/spaces')).status, 200);
});

test('admin reset: bad input, self, other tenants, offboarded users, members', async () => {
  const u = await mkUser(main, admin.token, 'cy', 'cy-password-1');
  for (const [body, what] of [
    [{}, 'nothing to reset'], [{ password: false }, 'false only'], [{ password: false, mfa: false }, 'both false'],
    [{ password: 'yes' }, 'string'], [{ mfa: 1 }, 'number'], [{ password: true, extra: true }, 'unknown key'],
    [[], 'array'], ['{"password": tru', 'malformed JSON'],
  ]) assertError(await reset(main, admin.token, u.id, body), 400, 'bad_request', what);
  assertError(await main.request('POST', `/api/v1/admin/users/${u.id}/reset`, { token: admin.token }), 400, 'bad_request', 'no body');
  assertError(await reset(main, admin.token, admin.user.id, { password: true }), 400, 'bad_request', 'self');
  assertError(await reset(main, admin.token, '0'.repeat(32), { password: true }), 404, 'not_found', 'no such user');
  assertError(await reset(main, admin.token, 'not-an-id', { password: true }), 404, 'not_found', 'malformed id');
  // Another tenant's admin cannot see this user, and this admin cannot see theirs.
  assertError(await reset(main, acme.token, u.id, { password: true }), 404, 'not_found', 'acme admin on default user');
  assertError(await reset(main, admin.token, acme.user.id, { password: true }), 404, 'not_found', 'default admin on acme user');
  // Members may not.
  const m = await loginOk(main, { username: 'cy', password: 'cy-password-1' });
  assertError(await reset(main, m.token, admin.user.id, { password: true }), 403, 'forbidden', 'member');
  assertError(await main.request('GET', `/api/v1/admin/users/${u.id}/reset`, { token: admin.token }), 405, 'method_not_allowed', 'GET');
  assertError(await main.request('POST', `/api/v1/admin/users/${u.id}/reset?x=1`, { token: admin.token, body: { password: true } }), 400, 'unknown_parameter', 'query');
  // Offboarded users cannot be reset; nothing changed for cy by any refusal above.
  assert.equal((await loginOk(main, { username: 'cy', password: 'cy-password-1' })).password_change_required, false);
  const off = await main.request('POST', `/api/v1/admin/users/${u.id}/offboard`, { token: admin.token, body: { transfer_to: admin.user.id } });
  assert.equal(off.status, 200, off.text());
  assertError(await reset(main, admin.token, u.id, { password: true }), 409, 'conflict', 'offboarded');
});

// ---- recovery codes -----------------------------------------------------------------------------

test('recovery codes: each signs in once, in any case and spacing; a wrong second factor has its own error', async () => {
  const u = await mkUser(main, admin.token, 'rae', 'rae-password-1');
  const s = await loginOk(main, { username: 'rae', password: 'rae-password-1' });
  assert.equal((await get(main, s.token, '/api/v1/me')).json().recovery_codes_remaining, 0);
  const { secret, codes } = await enrolTotp(main, s.token);
  assert.equal((await get(main, s.token, '/api/v1/me')).json().recovery_codes_remaining, 10);

  const attempt = (extra, password = 'rae-password-1') => login(main, { username: 'rae', password, ...extra }, { 'user-agent': 'rae-laptop' });
  // A wrong password answers as always, whatever the second factor: no oracle before the password.
  for (const extra of [{ recovery_code: codes[0] }, { recovery_code: 'zzzz-zzzz-zzzz-zzzz' }, { totp: codeAt(secret, stepNow()) }, { totp: '000000' }]) {
    const w = await attempt(extra, 'not-raes-password');
    assertError(w, 401, 'unauthorized', `wrong password with ${JSON.stringify(extra)}`);
    assert.ok(w.body.equals(unknownBody), 'same body as an unknown user');
  }
  // After the right password, a wrong factor says which one was wrong.
  assertError(await attempt({}), 401, 'mfa_required', 'no factor');
  assertError(await attempt({ totp: wrongCode(secret, stepNow()) }), 401, 'totp_invalid', 'wrong TOTP');
  assertError(await attempt({ recovery_code: 'abcd-efgh-jkmn-pqrs' }), 401, 'recovery_code_invalid', 'wrong code');
  assertError(await attempt({ recovery_code: 'not a code' }), 401, 'recovery_code_invalid', 'malformed code');
  assertError(await attempt({ recovery_code: codes[0].slice(0, 5) + codes[1].slice(5) }), 401, 'recovery_code_invalid', 'right tag, wrong rest');

  const ok = await attempt({ recovery_code: codes[0] });
  assert.equal(ok.status, 200, ok.text());
  assert.equal(ok.json().recovery_codes_remaining, 9);
  assertError(await attempt({ recovery_code: codes[0] }), 401, 'recovery_code_invalid', 'used code');
  const shout = await attempt({ recovery_code: ` ${codes[1].replaceAll('-', '').toUpperCase()} ` });
  assert.equal(shout.status, 200, `upper case, no dashes: ${shout.text()}`);
  assert.equal(shout.json().recovery_codes_remaining, 8);
  assert.equal((await get(main, shout.json().token, '/api/v1/me')).json().recovery_codes_remaining, 8);

  // Bad input: 400 before any check.
  for (const [extra, what] of [
    [{ totp: '123456', recovery_code: codes[2] }, 'both factors'], [{ recovery_code: 'a'.repeat(65) }, '65 characters'],
    [{ recovery_code: 12345 }, 'number'], [{ recovery_code: ['x'] }, 'array'], [{ recovery_code: {} }, 'object'],
  ]) assertError(await attempt(extra), 400, 'bad_request', what);

  // Provenance and alerts say a code was used and how many are left.
  const evs = await poll(() => events(main, admin.token, 'auth.recovery_code_used'), (e) => e.filter((x) => x.actor.id === u.id).length === 2);
  assert.deepEqual(evs.filter((x) => x.actor.id === u.id).map((x) => x.detail.remaining), [8, 9]);
  const a = (await alerts(main, shout.json().token)).filter((x) => x.kind === 'alert.recovery_code_used');
  assert.deepEqual(a.map((x) => x.detail.remaining), [8, 9]);
  assert.equal(a[0].detail.ip, '127.0.0.1');
  assert.equal(a[0].detail.user_agent, 'rae-laptop');
  assert.equal(typeof a[0].detail.device, 'string');
  // A used code is simply no longer there: its reuse is a wrong code (the race of two logins with one
  // code says 'recovery code already used'). Five wrong or used codes above.
  const failed = await poll(() => events(main, admin.token, 'auth.login_failed'),
    (e) => e.filter((x) => x.actor.id === u.id && x.detail.reason === 'wrong recovery code').length === 4);
  assert.equal(failed.filter((x) => x.actor.id === u.id && x.detail.reason === 'wrong recovery code').length, 4);
  assert.equal(failed.filter((x) => x.actor.id === u.id && x.detail.reason === 'wrong TOTP code').length, 1);
  // Nothing of a code is in provenance.
  for (const c of codes) assert.ok(!JSON.stringify(failed).includes(c));
});

test('recovery codes: one code sent by several logins at once signs in once', async () => {
  await mkUser(main, admin.token, 'zed', 'zed-password-1');
  const s = await loginOk(main, { username: 'zed', password: 'zed-password-1' });
  const { codes } = await enrolTotp(main, s.token);
  const rs = await Promise.all(Array.from({ length: 5 }, () => login(main, { username: 'zed', password: 'zed-password-1', recovery_code: codes[3] })));
  assert.deepEqual(rs.map((r) => r.status).sort(), [200, 401, 401, 401, 401]);
  for (const r of rs.filter((x) => x.status === 401)) assert.equal(r.json().error, 'recovery_code_invalid');
});

test('recovery codes: regeneration needs the password, replaces every old code; TOTP off removes them', async () => {
  await mkUser(main, admin.token, 'gus', 'gus-password-1');
  const s = await loginOk(main, { username: 'gus', password: 'gus-password-1' });
  const regen = (body, token = s.token) => main.request('POST', '/api/v1/me/totp/recovery-codes', { token, body });
  assertError(await regen({ password: 'gus-password-1' }), 409, 'conflict', 'no TOTP yet');
  const { secret, codes } = await enrolTotp(main, s.token);
  for (const [body, what] of [[{}, 'no password'], [{ password: 1 }, 'number'], [{ password: 'gus-password-1', code: '1' }, 'unknown key'], ['nope', 'not JSON']]) {
    assertError(await regen(body), 400, 'bad_request', what);
  }
  assertError(await regen({ password: 'wrong-password' }), 403, 'forbidden', 'wrong password');
  const r = await regen({ password: 'gus-password-1' });
  assert.equal(r.status, 201, r.text());
  assert.deepEqual(Object.keys(r.json()), ['codes']);
  const fresh = r.json().codes;
  assert.equal(fresh.length, 10);
  for (const c of fresh) assert.match(c, CODE);
  assert.equal(fresh.filter((c) => codes.includes(c)).length, 0);
  assertError(await login(main, { username: 'gus', password: 'gus-password-1', recovery_code: codes[5] }), 401, 'recovery_code_invalid', 'old code');
  const ok = await loginOk(main, { username: 'gus', password: 'gus-password-1', recovery_code: fresh[5] });
  assert.equal(ok.recovery_codes_remaining, 9);
  assert.ok((await poll(() => events(main, admin.token, 'auth.recovery_codes_created'), (e) => e.some((x) => x.actor.name === 'gus'))).some((x) => x.actor.name === 'gus'));
  assert.ok((await alerts(main, ok.token)).some((x) => x.kind === 'alert.recovery_codes_created'));

  // Turning TOTP off removes the codes: they stood in for it.
  const T = await roomInStep(4);
  const off = await main.request('DELETE', '/api/v1/me/totp', { token: ok.token, body: { code: codeAt(secret, T + 1) } });
  assert.equal(off.status, 204, off.text());
  assert.equal((await get(main, ok.token, '/api/v1/me')).json().recovery_codes_remaining, 0);
});

test('recovery codes and wrong second factors are throttled like logins', async () => {
  const a = await thr.login();
  await mkUser(thr, a.token, 'tom', 'tom-password-1');
  const s = await loginOk(thr, { username: 'tom', password: 'tom-password-1' });
  const { codes } = await enrolTotp(thr, s.token);
  for (let i = 0; i < 3; i++) {
    assertError(await login(thr, { username: 'tom', password: 'tom-password-1', recovery_code: `aaaa-bbbb-cccc-ddd${i + 2}` }), 401, 'recovery_code_invalid', `failure ${i + 1}`);
  }
  const r = await login(thr, { username: 'tom', password: 'tom-password-1', recovery_code: codes[0] });
  assertError(r, 429, 'rate_limited', 'even the right code');
  assert.match(r.headers['retry-after'], /^\d+$/);
  // Regeneration with a wrong password counts too (the account is now limited).
  assertError(await thr.request('POST', '/api/v1/me/totp/recovery-codes', { token: s.token, body: { password: 'tom-password-1' } }), 429, 'rate_limited', 'regenerate');
});

// ---- sessions and devices -----------------------------------------------------------------------

test('session cap: a login past auth.max_sessions_per_user ends the oldest session; API tokens do not count', async () => {
  await mkUser(main, admin.token, 'sue', 'sue-password-1');
  const first = await loginOk(main, { username: 'sue', password: 'sue-password-1' });
  const tok = await main.request('POST', '/api/v1/me/tokens', { token: first.token, body: { name: 'ci' } });
  assert.equal(tok.status, 201);
  const more = [];
  for (let i = 0; i < CAP; i++) more.push(await loginOk(main, { username: 'sue', password: 'sue-password-1' }));
  assertError(await get(main, first.token, '/api/v1/me'), 401, 'unauthorized', 'the oldest session');
  for (const m of more) assert.equal((await get(main, m.token, '/api/v1/me')).status, 200);
  assert.equal((await get(main, tok.json().token, '/api/v1/me')).status, 200, 'the API token lives');
  const list = (await get(main, more[0].token, '/api/v1/me/sessions')).json().sessions;
  assert.equal(list.filter((x) => x.kind === 'login').length, CAP);
  assert.equal(list.filter((x) => x.kind === 'token').length, 1);
  const ev = await poll(() => events(main, admin.token, 'auth.sessions_ended'), (e) => e.some((x) => x.actor.name === 'sue'));
  assert.equal(ev.find((x) => x.actor.name === 'sue').detail.ended, 1);
});

test('new devices: a device cookie (HttpOnly, Secure, SameSite=Strict) identifies a browser across networks and updates', async () => {
  await mkUser(main, admin.token, 'dee', 'dee-password-1');
  // A script (no Sec-Fetch-Mode, which browsers send) gets no device cookie: it would keep none.
  const script = await login(main, { username: 'dee', password: 'dee-password-1' }, { 'user-agent': 'curl/8.0' });
  assert.equal(script.status, 200);
  assert.ok(![].concat(script.headers['set-cookie']).some((c) => c.startsWith('coffer_device=')));
  const browserish = { 'sec-fetch-mode': 'cors', 'sec-fetch-site': 'same-origin' };
  const first = await login(main, { username: 'dee', password: 'dee-password-1' }, { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0', ...browserish });
  assert.equal(first.status, 200);
  const cookies = [].concat(first.headers['set-cookie']);
  const dc = cookies.find((c) => c.startsWith('coffer_device='));
  assert.ok(dc, cookies.join(' | '));
  assert.match(dc, /^coffer_device=[A-Za-z0-9_-]{43}; Path=\/api\/v1\/auth\/login; HttpOnly; Secure; SameSite=Strict; Max-Age=34560000$/);
  const device = dc.split(';')[0];
  // The same browser, updated (another user agent): known by its cookie, no alert, no new cookie.
  const again = await login(main, { username: 'dee', password: 'dee-password-1' }, { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Firefox/121.0', cookie: device, ...browserish });
  assert.equal(again.status, 200);
  assert.ok(![].concat(again.headers['set-cookie']).some((c) => c.startsWith('coffer_device=')));
  // Another client without the cookie and with another user agent: a new device, alerted with its address and device.
  const other = await login(main, { username: 'dee', password: 'dee-password-1' }, { 'user-agent': 'Mozilla/5.0 (Windows NT 10.0) Chrome/120.0 Safari/537.36', ...browserish });
  assert.equal(other.status, 200);
  const list = await alerts(main, other.json().token);
  // Two: the first browser after the script, and this one; not the updated browser.
  const nd = list.filter((x) => x.kind === 'alert.new_device');
  assert.deepEqual(nd.map((x) => x.detail.device), ['Chrome on Windows', 'Firefox on Linux'], JSON.stringify(list));
  assert.equal(nd[0].detail.ip, '127.0.0.1');
  assert.equal(nd[0].detail.user_agent, 'Mozilla/5.0 (Windows NT 10.0) Chrome/120.0 Safari/537.36');
  assert.equal(nd[0].detail.device_cookie, false);
  // A cookie this user never got (another user's browser) is a new device for this user.
  await mkUser(main, admin.token, 'eve2', 'eve2-password-1');
  const e1 = await loginOk(main, { username: 'eve2', password: 'eve2-password-1' });
  const e2 = await login(main, { username: 'eve2', password: 'eve2-password-1' }, { cookie: device });
  assert.equal(e2.status, 200);
  const ea = (await alerts(main, e1.token)).filter((x) => x.kind === 'alert.new_device');
  assert.equal(ea.length, 1);
  assert.equal(ea[0].detail.device_cookie, true);
  // The device id is neither logged nor on disk in the clear (only its keyed hash is stored).
  const raw = device.split('=')[1];
  assert.ok(!main.stderr.includes(raw), 'not logged');
  assert.equal(dirContains(main.dataDir, raw), null, 'not on disk');
});
