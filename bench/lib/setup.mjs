// bench/lib/setup.mjs URL SIZE [COUNT]: logs in as admin, uploads COUNT files of SIZE random bytes into
// the private space, prints "TOKEN ID1 ID2 …" on one line. Used by the benchmark scripts.
import https from 'node:https';
import crypto from 'node:crypto';

const [url, sizeArg, countArg] = process.argv.slice(2);
const size = Number(sizeArg), count = Number(countArg || 1);
const agent = new https.Agent({ rejectUnauthorized: false, keepAlive: true });
function req(method, path, { token, body, json } = {}) {
  return new Promise((resolve, reject) => {
    const headers = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (json) headers['content-type'] = 'application/json';
    const r = https.request(url + path, { method, headers, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }));
    });
    r.on('error', reject);
    r.end(body);
  });
}
const login = await req('POST', '/api/v1/auth/login', { json: true, body: JSON.stringify({ username: 'admin', password: 'bench-password-1' }) });
const token = JSON.parse(login.body).token;
const root = JSON.parse((await req('GET', '/api/v1/spaces', { token })).body).private.root;
const ids = [];
for (let i = 0; i < count; i++) {
  const r = await req('POST', `/api/v1/files?parent=${root}&name=f${i}-${crypto.randomUUID()}.bin`, { token, body: crypto.randomBytes(size) });
  if (r.status !== 201) throw new Error(`upload failed: ${r.status} ${r.body}`);
  ids.push(JSON.parse(r.body).id);
}
console.log([token, ...ids].join(' '));
agent.destroy();
