// bench/lib/login-timing.mjs URL SAMPLES: the timing side of "login failures look the same"
// (bench/login-timing.sh starts the server and calls this). Outside the pass/fail suite on purpose:
// a duration asserted in a test fails whenever the machine is busy, while here the question is asked
// of whole distributions, with a control that shows how large a real leak would be.
//
// Four arms, each SAMPLES logins over one HTTP/2 connection, in a random order every round (so that
// drift, GC and neighbours' load fall on every arm alike):
//   wrongPassword  an existing user, a wrong password            → 401, one Argon2id verification
//   unknownUser    a user that does not exist                    → 401, must cost the same
//   unknownTenant  a tenant that does not exist                  → 401, must cost the same
//   noHashing      an empty password, refused before any hashing → 400: the control, what a path
//                  that skipped Argon2 would look like
// Prints a markdown table (median, p10, p90, mean and sd per arm, in ms), then for each arm against
// wrongPassword: the difference of medians, the Mann–Whitney U and Kolmogorov–Smirnov two-sided
// p-values, and the difference as a share of the control's gap (what skipping Argon2 saves). An arm
// "DIFFERS" when both tests reject equal distributions (p < 0.01) and its median is off by at least
// 10 % of one verification (with hundreds of samples the tests alone flag differences far smaller
// than anything an attacker could use); else "no difference detected". The control must differ, or
// the run could not have seen a leak. Exit 0 either way, unless --check is given: then a difference
// (or a failed control) exits 1.
import http2 from 'node:http2';

const [url, samplesArg, ...flags] = process.argv.slice(2);
const SAMPLES = Number(samplesArg || 200);
const CHECK = flags.includes('--check');
if (!url || !Number.isInteger(SAMPLES) || SAMPLES < 10) {
  console.error('usage: login-timing.mjs URL SAMPLES [--check]');
  process.exit(2);
}

const session = http2.connect(url, { rejectUnauthorized: false });
session.on('error', (e) => { console.error(`login-timing: connection: ${e.message}`); process.exit(1); });

function post(path, body, token) {
  return new Promise((resolve, reject) => {
    const h = { ':method': 'POST', ':path': path, 'content-type': 'application/json' };
    if (token) h.authorization = `Bearer ${token}`;
    const t0 = process.hrtime.bigint();
    const req = session.request(h);
    let status = 0;
    const chunks = [];
    req.on('response', (x) => { status = x[':status']; });
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve({ status, ms: Number(process.hrtime.bigint() - t0) / 1e6, body: Buffer.concat(chunks).toString() }));
    req.on('error', reject);
    req.on('close', () => reject(new Error(`${path}: stream closed before its answer`)));
    req.end(JSON.stringify(body));
  });
}

const admin = await post('/api/v1/auth/login', { username: 'admin', password: 'bench-password-1' });
if (admin.status !== 200) throw new Error(`admin login: ${admin.status} ${admin.body}`);
const token = JSON.parse(admin.body).token;
const made = await post('/api/v1/admin/users', { username: 'tim', password: 'tim-password-1' }, token);
if (made.status !== 201 && made.status !== 409) throw new Error(`create tim: ${made.status} ${made.body}`);

const arms = {
  wrongPassword: { body: { username: 'tim', password: 'wrong-password-x' }, status: 401 },
  unknownUser: { body: { username: 'tim-does-not-exist', password: 'wrong-password-x' }, status: 401 },
  unknownTenant: { body: { tenant: 'nowhere', username: 'tim', password: 'wrong-password-x' }, status: 401 },
  noHashing: { body: { username: 'tim', password: '' }, status: 400 },
};
const names = Object.keys(arms);
const t = Object.fromEntries(names.map((k) => [k, []]));
const bodies = {};
async function once(k) {
  const r = await post('/api/v1/auth/login', arms[k].body);
  if (r.status !== arms[k].status) throw new Error(`${k}: ${r.status} ${r.body} (expected ${arms[k].status})`);
  if (k !== 'noHashing') {
    bodies[r.body] = (bodies[r.body] || 0) + 1;
  }
  return r.ms;
}
function shuffled(xs) {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}
for (let i = 0; i < 5; i++) for (const k of names) await once(k); // warm-up, not recorded
for (let i = 0; i < SAMPLES; i++) for (const k of shuffled(names)) t[k].push(await once(k));
session.close();

// ---- statistics ----------------------------------------------------------------------------------
const sorted = (xs) => [...xs].sort((a, b) => a - b);
function quantile(s, q) {
  const pos = (s.length - 1) * q, lo = Math.floor(pos), hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sd = (xs) => { const m = mean(xs); return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1)); };

// The complementary error function (Numerical Recipes' erfcc, |error| < 1.2e-7).
function erfc(x) {
  const z = Math.abs(x), u = 1 / (1 + 0.5 * z);
  const r = u * Math.exp(-z * z - 1.26551223 + u * (1.00002368 + u * (0.37409196 + u * (0.09678418 + u * (-0.18628806 +
    u * (0.27886807 + u * (-1.13520398 + u * (1.48851587 + u * (-0.82215223 + u * 0.17087277)))))))));
  return x >= 0 ? r : 2 - r;
}
/** Mann–Whitney U, two-sided p (normal approximation with a tie correction). */
function mannWhitney(a, b) {
  const all = [...a.map((v) => [v, 0]), ...b.map((v) => [v, 1])].sort((x, y) => x[0] - y[0]);
  const ranks = new Array(all.length);
  let tie = 0;
  for (let i = 0; i < all.length;) {
    let j = i;
    while (j + 1 < all.length && all[j + 1][0] === all[i][0]) j++;
    const r = (i + j + 2) / 2, n = j - i + 1;
    for (let k = i; k <= j; k++) ranks[k] = r;
    tie += n ** 3 - n;
    i = j + 1;
  }
  const n1 = a.length, n2 = b.length, N = n1 + n2;
  const r1 = all.reduce((acc, x, i) => acc + (x[1] === 0 ? ranks[i] : 0), 0);
  const u = r1 - (n1 * (n1 + 1)) / 2;
  const sigma = Math.sqrt(((n1 * n2) / 12) * (N + 1 - tie / (N * (N - 1))));
  const z = (u - (n1 * n2) / 2) / sigma;
  return erfc(Math.abs(z) / Math.SQRT2);
}
/** Two-sample Kolmogorov–Smirnov: {d, p} (asymptotic distribution, Stephens' small-sample correction). */
function ks(a, b) {
  const x = sorted(a), y = sorted(b);
  let i = 0, j = 0, d = 0;
  while (i < x.length && j < y.length) {
    const v = Math.min(x[i], y[j]);
    while (i < x.length && x[i] <= v) i++;
    while (j < y.length && y[j] <= v) j++;
    d = Math.max(d, Math.abs(i / x.length - j / y.length));
  }
  const ne = (x.length * y.length) / (x.length + y.length);
  const lambda = (Math.sqrt(ne) + 0.12 + 0.11 / Math.sqrt(ne)) * d;
  let p = 0;
  for (let k = 1; k <= 100; k++) p += 2 * (-1) ** (k - 1) * Math.exp(-2 * k * k * lambda * lambda);
  return { d, p: Math.min(1, Math.max(0, p)) };
}

const f = (v) => v.toFixed(2);
const fp = (p) => (p < 1e-4 ? p.toExponential(1) : p.toFixed(4));
const med = Object.fromEntries(names.map((k) => [k, quantile(sorted(t[k]), 0.5)]));
console.log(`| arm (${SAMPLES} logins each) | median ms | p10 | p90 | mean | sd |`);
console.log('| --- | --- | --- | --- | --- | --- |');
for (const k of names) {
  const s = sorted(t[k]);
  console.log(`| ${k} | ${f(med[k])} | ${f(quantile(s, 0.1))} | ${f(quantile(s, 0.9))} | ${f(mean(s))} | ${f(sd(s))} |`);
}
const gap = med.wrongPassword - med.noHashing; // what one Argon2 verification costs
console.log('');
console.log('| against wrongPassword | Δ median ms | Mann–Whitney p | KS D | KS p | Δ as a share of one verification | verdict |');
console.log('| --- | --- | --- | --- | --- | --- | --- |');
let differs = false;
for (const k of ['unknownUser', 'unknownTenant', 'noHashing']) {
  const dm = med[k] - med.wrongPassword;
  const share = gap > 0 ? Math.abs(dm) / gap : Infinity;
  const k2 = ks(t[k], t.wrongPassword);
  const mw = mannWhitney(t[k], t.wrongPassword);
  const different = mw < 0.01 && k2.p < 0.01 && share >= 0.1;
  const control = k === 'noHashing';
  const verdict = control ? (different ? 'control: a path without Argon2 stands out' : 'CONTROL FAILED: no measurable Argon2 cost')
    : (different ? 'DIFFERS' : 'no difference detected');
  if (control !== different) differs = true;
  console.log(`| ${k} | ${f(dm)} | ${fp(mw)} | ${k2.d.toFixed(3)} | ${fp(k2.p)} | ${(share * 100).toFixed(1)} % | ${verdict} |`);
}
const distinct = Object.keys(bodies).length;
console.log('');
console.log(`bodies of the ${3 * (SAMPLES + 5)} refused logins (401): ${distinct === 1 ? 'all identical' : `${distinct} different bodies`}`);
if (distinct !== 1) differs = true;
if (CHECK && differs) process.exit(1);
