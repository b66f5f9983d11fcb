// GET /metrics (SPEC §5 "Other", issue 11): the Prometheus text format, accepted by promtool (Debian
// package prometheus), with counters that move by exactly what the requests did, shown only to the
// addresses in metrics.allow (anyone else gets the 404 of an unknown path, whatever the method).
//
// Servers: `main` allows 127.0.0.1/32 only and runs one event loop, so that a response's access
// logger (where requests are counted) has run before the next connection's TLS handshake is done;
// `other` allows 127.0.0.2/32 only. Clients bind 127.0.0.2 as their source address for the second
// view (Linux routes all of 127.0.0.0/8 to the loopback interface).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { Server, EICAR, bytes, certificate, cli } from './lib/harness.mjs';

let main, admin, root;

before(async () => {
  main = await new Server({ config: { threads: 1, metrics: { allow: ['127.0.0.1/32'] } } }).start();
  admin = main.client((await main.login()).token);
  root = (await admin.spaces()).private.root;
});

after(async () => {
  if (main) { await main.stop(); main.cleanup(); }
});

/** One HTTP/1.1 request on a fresh connection from the local address `from`. */
function fetchFrom(server, from, method, urlPath) {
  return new Promise((resolve, reject) => {
    const req = https.request(server.url + urlPath, { method, rejectUnauthorized: false, agent: false, localAddress: from }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** A scrape from 127.0.0.1: the text, after checking status and content type. */
async function scrape(server = main, from = '127.0.0.1') {
  const r = await fetchFrom(server, from, 'GET', '/metrics');
  assert.equal(r.status, 200, r.body);
  assert.equal(r.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
  return r.body;
}

/** The samples of an exposition: "name{labels}" → value. */
function samples(text) {
  const m = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    assert.ok(sp > 0, `sample line: ${line}`);
    assert.ok(!m.has(line.slice(0, sp)), `duplicate series: ${line}`);
    m.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return m;
}

/** promtool check metrics: exit 0 and no lint findings. */
function promtool(text) {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 60000 });
  assert.equal(r.error, undefined, `promtool not runnable (Debian package prometheus): ${r.error}`);
  assert.equal(r.stdout + r.stderr, '', 'promtool lint findings');
  assert.equal(r.status, 0);
}

const req = (route, method, code) => `coffer_http_requests_total{route="${route}",method="${method}",code="${code}"}`;
const FILES = '/api/v1/files', CONTENT = '/api/v1/files/{id}/content', NODE = '/api/v1/nodes/{id}';

test('the exposition passes promtool, and every counter moves by exactly what the requests did', async () => {
  const text0 = await scrape();
  promtool(text0);
  const before = samples(text0);
  const at = (m, k) => m.get(k) ?? 0;

  // Three clean uploads, one EICAR upload (refused), three downloads, two 404s of two kinds.
  const sizes = [1000, 2000, 70000];
  const ids = [];
  for (const [i, n] of sizes.entries()) {
    const r = await admin.upload(root, `m${i}.bin`, bytes(n, 40 + i));
    assert.equal(r.status, 201, r.text());
    ids.push(r.json().id);
  }
  const bad = await admin.upload(root, 'eicar.com', EICAR);
  assert.equal(bad.status, 422);
  assert.equal(bad.json().error, 'infected');
  let downloaded = 0;
  for (const id of ids) {
    const r = await admin.download(id);
    assert.equal(r.status, 200);
    downloaded += r.body.length;
  }
  assert.equal(downloaded, 73000);
  assert.equal((await admin.node('0'.repeat(32))).status, 404);
  assert.equal((await main.request('GET', '/no/such/path')).status, 404);

  const text1 = await scrape();
  promtool(text1);
  const after1 = samples(text1);
  const delta = (k) => at(after1, k) - at(before, k);

  assert.equal(delta(req(FILES, 'POST', 201)), 3, 'uploads answered 201');
  assert.equal(delta(req(FILES, 'POST', 422)), 1, 'the EICAR upload answered 422');
  assert.equal(delta(req(CONTENT, 'GET', 200)), 3, 'downloads answered 200');
  assert.equal(delta(req(NODE, 'GET', 404)), 1, 'an unknown node id');
  assert.equal(delta(req('other', 'GET', 404)), 1, 'an unknown path has the route "other"');
  assert.equal(delta(req('/metrics', 'GET', 200)), 1, 'the first scrape itself');
  assert.equal(delta('coffer_scan_total{result="clean"}'), 3);
  assert.equal(delta('coffer_scan_total{result="infected"}'), 1);
  assert.equal(delta('coffer_scan_total{result="unavailable"}'), 0);
  assert.equal(delta('coffer_uploads_rejected_total{reason="infected"}'), 1);
  assert.equal(delta('coffer_uploads_rejected_total{reason="blocked_type"}'), 0);
  assert.equal(at(after1, 'coffer_scanner_restarts_total'), 0);
  assert.equal(at(after1, 'coffer_scanners{state="up"}'), 2, 'scan.processes: 2, both up');
  // Body bytes, exactly: uploads in, downloads out.
  assert.equal(delta(`coffer_http_request_bytes_total{route="${FILES}"}`), 73000 + EICAR.length);
  assert.equal(delta(`coffer_http_response_bytes_total{route="${CONTENT}"}`), 73000);
  assert.equal(delta(`coffer_http_request_bytes_total{route="${CONTENT}"}`), 0);
  // The download histogram: three more observations, cumulative buckets, +Inf equal to the count.
  const h = (suffix, le) => `coffer_http_request_duration_seconds_${suffix}{route="${CONTENT}"${le ? `,le="${le}"` : ''}}`;
  assert.equal(delta(h('count')), 3);
  assert.equal(at(after1, h('bucket', '+Inf')), at(after1, h('count')));
  let prev = 0;
  for (const le of ['0.001', '0.0025', '0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '30', '+Inf']) {
    const v = at(after1, h('bucket', le));
    assert.ok(after1.has(h('bucket', le)), `bucket ${le}`);
    assert.ok(v >= prev, `bucket ${le} is cumulative`);
    prev = v;
  }
  assert.ok(delta(h('sum')) > 0);
  // Gauges and fixed series that exist from the start.
  assert.ok(at(after1, 'coffer_connections_open') >= 1);
  // Transfer end events are queued after the response ends, so the depth may be briefly non-zero.
  const depth = at(after1, 'coffer_audit_queue_depth');
  assert.ok(Number.isInteger(depth) && depth >= 0, `audit queue depth ${depth}`);
  // The name index: the three files uploaded are three more names (the refused EICAR is none).
  assert.equal(at(after1, 'coffer_search_index_ready'), 1);
  assert.equal(delta('coffer_search_index_entries'), 3, 'three names indexed');
  assert.ok(delta('coffer_search_index_bytes') > 0, 'their bytes counted');
  for (const k of ['coffer_rocksdb_sst_bytes', 'coffer_rocksdb_blob_bytes', 'coffer_rocksdb_live_data_bytes',
    'coffer_rocksdb_write_stopped', 'coffer_rocksdb_delayed_write_rate_bytes', 'coffer_rocksdb_stall_seconds_total',
    'process_start_time_seconds', 'coffer_http_requests_uncounted_total']) assert.ok(after1.has(k), k);
  assert.ok(at(after1, 'coffer_rocksdb_memtable_bytes') > 0, 'the uploads are in the memtables');
  assert.equal(at(after1, 'coffer_rocksdb_write_stopped'), 0);
  assert.equal(at(after1, 'coffer_http_requests_uncounted_total'), 0);
  for (const kind of ['trash', 'space', 'audit', 'upload']) assert.ok(after1.has(`coffer_retention_purged_total{kind="${kind}"}`), kind);
  for (const r of ['ok', 'failed']) assert.ok(after1.has(`coffer_retention_runs_total{result="${r}"}`), r);
  for (const kind of ['master', 'tenant']) assert.equal(at(after1, `coffer_key_rotations_total{kind="${kind}"}`), 0, kind);
  assert.match(text1, /^coffer_build_info\{version="[^"]+",rocksdb="[^"]+"\} 1$/m);
});

test('only metrics.allow sees /metrics: 404 like an unknown path for everyone else, whatever the method', async () => {
  const unknown = await fetchFrom(main, '127.0.0.2', 'GET', '/no/such/path');
  assert.equal(unknown.status, 404);
  assert.equal(JSON.parse(unknown.body).error, 'not_found');
  for (const method of ['GET', 'POST', 'DELETE']) {
    const r = await fetchFrom(main, '127.0.0.2', method, '/metrics');
    assert.equal(r.status, 404, method);
    assert.equal(r.headers['content-type'], 'application/json', method);
    assert.equal(r.body, unknown.body, `${method}: the body of an unknown path`);
    assert.equal(r.headers.allow, undefined, method);
  }
  const head = await fetchFrom(main, '127.0.0.2', 'HEAD', '/metrics');
  assert.equal(head.status, 404);
  // For an allowed client the path exists: other methods are 405.
  const post = await fetchFrom(main, '127.0.0.1', 'POST', '/metrics');
  assert.equal(post.status, 405);
  assert.equal(post.headers.allow, 'GET, HEAD');

  const other = await new Server({ config: { metrics: { allow: ['127.0.0.2/32'] } } }).start();
  try {
    const text = await scrape(other, '127.0.0.2');
    promtool(text);
    assert.ok(samples(text).has('coffer_http_requests_uncounted_total'));
    const r = await fetchFrom(other, '127.0.0.1', 'GET', '/metrics');
    assert.equal(r.status, 404);
    assert.equal(JSON.parse(r.body).error, 'not_found');
  } finally {
    await other.stop();
    other.cleanup();
  }
});

test('bad metrics settings: exit 2 with file and line', () => {
  const c = certificate();
  const dir = fs.mkdtempSync(path.join(main.dir, 'cfg-'));
  const p = path.join(dir, 'coffer.yaml');
  const base = [`tls: { certificate: "${c.cert}", key: "${c.key}" }`, 'data_dir: data', 'master_key_file: master.key'];
  const ranges = 'expected an address or a range like 127.0.0.1/8 or ::1/128';
  const cases = [
    [['metrics:', '  allow: ["::1", "10.0.0.0/33"]'], 5, 'metrics.allow', ranges],
    [['metrics:', '  allow:', '    - 127.0.0.1', '    - localhost'], 7, 'metrics.allow', ranges],
    [['metrics: { allow: ["::1/129"] }'], 4, 'metrics.allow', ranges],
    [['metrics: { allow: "127.0.0.1/8" }'], 4, 'metrics.allow', 'expected a list like ["127.0.0.1/8", "::1/128"]'],
    [['metrics:', '  allow: []', '  listen: 9100'], 6, 'metrics.listen', 'unknown key'],
  ];
  for (const [lines, line, key, what] of cases) {
    fs.writeFileSync(p, [...base, ...lines].join('\n') + '\n');
    const r = cli(['serve', '-c', p]);
    assert.equal(r.status, 2, `${lines.join(' ')}: ${r.stderr}`);
    assert.ok(r.stderr.includes(`${p}:${line}: ${key}: ${what}\n`), `${lines.join(' ')}: ${r.stderr}`);
    assert.ok(!fs.existsSync(path.join(dir, 'data')), 'nothing created');
  }
});
