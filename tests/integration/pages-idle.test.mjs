// Renderers stopped when idle (render.idle_stop; src/core/child.h "Stopped when idle"), through the
// real server and its real coffer-render processes: with `render: { idle_stop: 1s }`,
// - both renderers are spawned at start and, once no job came for a second, stopped: no
//   coffer-render process of the server is left, and /healthz stays 200 {"status":"ok"} throughout
//   (a renderer stopped for idleness is not a degraded server);
// - a page of a PDF and of a PNG (a page image and the viewer's watermark, both renders) is then
//   answered exactly as on a server whose renderers never stopped: 200, image/webp, no-store, a WebP
//   of the asked width; the renderer it needed is started again (the log says so, with its pid, and
//   that process is the server's coffer-render);
// - stopping is no failure: no "restarted", no death, no "is down" in the log;
// - SIGHUP while every renderer is stopped, and then SIGTERM: the server reloads, stops with status 0
//   and ASan finds nothing (the harness's stop());
// - bad input: a negative, unitless, garbage or too long render.idle_stop is refused at start (exit 2,
//   `coffer: FILE:LINE: render.idle_stop: …`, nothing created).
// Waits poll with generous deadlines; nothing asserts how long anything took.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { Server, WAIT_DEADLINE_MS, cli } from './lib/harness.mjs';
import { PageClient, assertPage, rendererPids as serverRenderers } from './lib/pagecheck.mjs';
import { makePdf as docPdf, makePng } from './lib/docs.mjs';

let server, pc, token;
const F = {};

/** A PDF of n pages written by hand, text on each. */
function makePdf(n) {
  return docPdf(n, (i) => `BT /F1 28 Tf 72 720 Td (Page ${i} of ${n}: idle renderers) Tj ET\n`);
}

const rendererPids = () => serverRenderers(server.proc.pid);

/** /healthz answers exactly 200 {"status":"ok"}. */
async function healthy(what) {
  const r = await server.request('GET', '/healthz');
  assert.equal(r.status, 200, `${what}: /healthz ${r.status} ${r.text()}`);
  assert.deepEqual(r.json(), { status: 'ok' }, `${what}: /healthz`);
}

/** Polls until no coffer-render process of the server is left; /healthz is 200 at every poll. */
async function untilAllStopped(what) {
  const deadline = Date.now() + WAIT_DEADLINE_MS;
  for (;;) {
    await healthy(what);
    if (rendererPids().length === 0) return;
    if (Date.now() > deadline) throw new Error(`${what}: renderers still up: ${rendererPids()}\n${server.stderr.slice(-3000)}`);
    await sleep(100);
  }
}

/** A page that must be answered at once (no retry: a stopped renderer is no reason for a 503). */
async function pageNow(id, n, width) {
  const p = `/api/v1/files/${id}/pages/${n}?w=${width}`;
  const r = await pc.req('GET', p, { token });
  assertPage(r, p, width);
}

/** After a page answered on stopped renderers: the log says which renderer started again, with its
 * pid; that process is the server's coffer-render, or the log says it was stopped again since. */
async function startedAgain(from, what) {
  const m = await server.waitForLog(/renderer (\d+) started again for a job \(pid (\d+)\)/, { from });
  const [, index, pid] = m;
  const up = rendererPids();
  const stoppedSince = new RegExp(`renderer ${index} stopped: no job`).test(server.stderr.slice(from + m.index));
  assert.ok(up.includes(Number(pid)) || stoppedSince, `${what}: renderer ${index} (pid ${pid}) is up (${up}) or stopped again since`);
  if (!stoppedSince) assert.ok(up.length >= 1, `${what}: a renderer is up again`);
}

before(async () => {
  server = new Server({ config: { render: { enabled: true, pages_per_minute: 1000, max_seconds: 120, idle_stop: '1s' } } });
  await server.start();
  pc = new PageClient(server);
  token = (await server.login()).token;
  const sp = (await pc.req('GET', '/api/v1/spaces', { token })).json();
  F.pdf = await pc.upload(token, sp.tenant.root, 'idle.pdf', makePdf(3));
  F.png = await pc.upload(token, sp.tenant.root, 'idle.png', makePng(160, 120));
});

after(async () => {
  if (server) {
    if (server.proc && server.proc.exitCode === null) await server.stop();
    server.cleanup();
  }
});

test('render.idle_stop: both renderers are spawned at start and say so', async () => {
  await server.waitForLog(/renderers: 2 processes, office conversion (on|off), each stopped after 1 s without a job/);
  // The uploads are prepared (page count, first pages) by the renderers.
  assert.deepEqual([(await pc.summary(`/api/v1/files/${F.pdf.id}/pages`, token)).pages,
    (await pc.summary(`/api/v1/files/${F.png.id}/pages`, token)).pages], [3, 1]);
});

test('idle renderers are stopped; /healthz stays 200', async () => {
  await untilAllStopped('after the uploads were prepared');
  await server.waitForLog(/renderer 0 stopped: no job for 1 s \(the next job starts it again\)/);
  await server.waitForLog(/renderer 1 stopped: no job for 1 s \(the next job starts it again\)/);
});

test('a PDF page on stopped renderers is served exactly as before; the renderer is started again', async () => {
  await untilAllStopped('before the PDF page');
  const from = server.stderr.length;
  await pageNow(F.pdf.id, 3, 1600); // not rendered at upload: a page render and a watermark
  await startedAgain(from, 'PDF page');
  await healthy('after the PDF page');
});

test('an image page on stopped renderers is served exactly as before', async () => {
  await untilAllStopped('before the image page');
  const from = server.stderr.length;
  await pageNow(F.png.id, 1, 480);
  await startedAgain(from, 'image page');
  await healthy('after the image page');
  pc.noOriginal(4);
});

test('stopping an idle renderer is no failure: nothing restarted, nothing died, nothing down', () => {
  assert.doesNotMatch(server.stderr, /renderer \d+ restarted/);
  assert.doesNotMatch(server.stderr, /renderer \d+ (was killed by signal|exited with status|is down|did not come up)/);
  assert.doesNotMatch(server.stderr, /renderer \d+: (no answer in time|it died)/);
});

test('SIGHUP and SIGTERM with every renderer stopped: reload, then a clean stop', async () => {
  await untilAllStopped('before SIGHUP');
  const from = server.stderr.length;
  server.proc.kill('SIGHUP');
  await server.waitForLog(/reload: TLS certificate reloaded/, { from });
  await healthy('after SIGHUP');
  assert.equal(rendererPids().length, 0, 'SIGHUP starts no renderer');
  await server.stop(); // status 0, no sanitizer report
});

test('bad input: render.idle_stop that is not a duration from 0s to 7d is refused at start', () => {
  for (const [value, want] of [['-1s', 'expected a duration like 7d'], ['60', 'expected a duration like 7d'],
    ['soon', 'expected a duration like 7d'], ['1.5s', 'expected a duration like 7d'], ['8d', 'duration out of range']]) {
    const s = new Server({ config: { render: { enabled: true, idle_stop: value } } });
    try {
      s.writeConfig(1);
      const lines = fs.readFileSync(s.configPath, 'utf8').split('\n');
      const line = lines.findIndex((l) => l.includes('idle_stop')) + 1;
      assert.ok(line > 0);
      const r = cli(['serve', '-c', s.configPath]);
      assert.equal(r.status, 2, `${value}: exit status (${r.stderr})`);
      assert.equal(r.stderr, `coffer: ${s.configPath}:${line}: render.idle_stop: ${want}\n`, value);
      assert.ok(!fs.existsSync(path.join(s.dir, 'data')), `${value}: nothing created`);
    } finally {
      s.cleanup();
    }
  }
});
