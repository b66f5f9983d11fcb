// bench/search.mjs URL PASSWORD FILES [QUERIES]: search latency on a store seeded by cf-search-seed
// (bench/search.sh runs it). Logs in as admin (the owner of every seeded file), makes a member
// "searcher" who is granted view on one folder of the hundred (project-007; project-000 when there are fewer), and sends QUERIES
// (default 1000) searches per arm, one at a time over one HTTP/2 connection, cycling through classes
// of selectivity: a unique number, 0.1 %, 1 %, 10 %, every file, a path query, and no match at all
// (the whole index scanned). Prints a markdown table of p50/p99/max per class and arm, and the totals.
// Measures; asserts nothing but that every answer is a 200.
import http2 from 'node:http2';

const [url, password, filesArg, queriesArg] = process.argv.slice(2);
const FILES = Number(filesArg);
const QUERIES = Number(queriesArg || 1000);
const session = http2.connect(url, { rejectUnauthorized: false });
session.on('error', (e) => { console.error(`bench: ${e.message}`); process.exit(1); });

function req(method, path, { token, body } = {}) {
  return new Promise((resolve, reject) => {
    const headers = { ':method': method, ':path': path };
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const r = session.request(headers, { endStream: body === undefined });
    const chunks = [];
    let status;
    r.on('response', (h) => { status = h[':status']; });
    r.on('data', (c) => chunks.push(c));
    r.on('end', () => resolve({ status, body: Buffer.concat(chunks).toString('utf8') }));
    r.on('error', reject);
    if (body !== undefined) r.end(JSON.stringify(body));
  });
}

async function must(p, status = 200) {
  const r = await p;
  if (r.status !== status) throw new Error(`expected ${status}, got ${r.status}: ${r.body}`);
  return r.body ? JSON.parse(r.body) : null;
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
const rnd = (n) => Math.floor(Math.random() * n);
const pad = (n, w) => String(n).padStart(w, '0');
const folders = Math.ceil(FILES / 1000);

const classes = [
  ['unique number (1 hit)', () => `doc-${pad(rnd(FILES), 6)}`],
  ['0.1 % ("zebra")', () => (Math.random() < 0.5 ? 'zebra' : 'ZeBrA')],
  ['1 % ("invoice")', () => 'invoice'],
  ['10 % (a word)', () => ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliet'][rnd(10)]],
  ['every file ("doc-")', () => 'doc-'],
  ['path "project-NNN/invoice"', () => `project-${pad(rnd(folders), 3)}/invoice`],
  ['no match (full scan)', () => `nothing-${rnd(1e6)}`],
];

async function arm(name, token) {
  const per = classes.map(() => []);
  const hits = classes.map(() => 0);
  for (let w = 0; w < 20; w++) await must(req('GET', `/api/v1/search?q=${classes[w % classes.length][1]()}`, { token }));
  for (let i = 0; i < QUERIES; i++) {
    const c = i % classes.length;
    const q = encodeURIComponent(classes[c][1]());
    const t0 = process.hrtime.bigint();
    const r = await req('GET', `/api/v1/search?q=${q}`, { token });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r.status !== 200) throw new Error(`search ${q}: ${r.status} ${r.body}`);
    per[c].push(ms);
    hits[c] += JSON.parse(r.body).items.length;
  }
  const all = per.flat().sort((a, b) => a - b);
  const rows = classes.map(([label], c) => {
    const s = per[c].sort((a, b) => a - b);
    return `| ${name} | ${label} | ${(hits[c] / s.length).toFixed(1)} | ${s.length} | ${pct(s, 50).toFixed(2)} | ${pct(s, 99).toFixed(2)} | ${s[s.length - 1].toFixed(2)} |`;
  });
  rows.push(`| ${name} | **all ${all.length} queries** | | ${all.length} | **${pct(all, 50).toFixed(2)}** | **${pct(all, 99).toFixed(2)}** | ${all[all.length - 1].toFixed(2)} |`);
  return { rows, p99: pct(all, 99) };
}

const admin = (await must(req('POST', '/api/v1/auth/login', { body: { username: 'admin', password } }))).token;
const granted_name = `project-${pad(Math.min(7, folders - 1), 3)}`;
const folder = (await must(req('GET', `/api/v1/search?q=${granted_name}`, { token: admin }))).items.find((x) => x.name === granted_name);
if (!folder) throw new Error(`${granted_name} not found: is the store seeded?`);
// The member (made by an earlier run on the same store, or now).
const made = await req('POST', '/api/v1/admin/users', { token: admin, body: { username: 'searcher', password: 'searcher-password-1' } });
const searcher = made.status === 201 ? JSON.parse(made.body)
  : (await must(req('GET', '/api/v1/admin/users', { token: admin }))).users.find((u) => u.username === 'searcher');
await must(req('PUT', `/api/v1/nodes/${folder.id}/acl`, { token: admin, body: { entries: [{ principal: `user:${searcher.id}`, level: 'view' }] } }));
const member = (await must(req('POST', '/api/v1/auth/login', { body: { username: 'searcher', password: 'searcher-password-1' } }))).token;

const owner = await arm('owner (sees all)', admin);
const granted = await arm('member (1 folder of ' + folders + ')', member);
console.log(`\n${FILES} files, ${QUERIES} queries per arm, limit 50 (the default), one at a time over one h2 connection; ms\n`);
console.log('| arm | query class | items per answer | queries | p50 | p99 | max |');
console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: |');
for (const r of [...owner.rows, ...granted.rows]) console.log(r);
console.log(`\np99 owner ${owner.p99.toFixed(2)} ms, member ${granted.p99.toFixed(2)} ms (target < 50 ms)`);
session.close();
