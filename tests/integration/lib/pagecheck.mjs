// pagecheck.mjs: a pages client for the pages suites (pages-i18n.test.mjs, pages-office.test.mjs,
// pages-idle.test.mjs; pages.test.mjs takes its webpSize, assertPage and rendererPids):
// every response body it receives is kept, every original uploaded is kept, and at the end
// noOriginal() checks that no body equals an original or holds a 64-byte run of one (the view-only
// promise: pages are never the file). Waits poll the pages status under a generous deadline
// (LibreOffice on two busy cores); nothing asserts how long anything took.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export const WIDTHS = [480, 960, 1600];

/** The renderer processes of a server (its children named coffer-render), by the server's pid. */
export function rendererPids(serverPid) {
  const out = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = fs.readFileSync(`/proc/${d}/stat`, 'latin1');
      const m = st.match(/^\d+ \((.*)\) \S (\d+) /);
      if (m && m[1] === 'coffer-render' && Number(m[2]) === serverPid) out.push(Number(d));
    } catch { /* gone */ }
  }
  return out;
}

/** A served page r of path p: the headers and the image's asked width. */
export function assertPage(r, p, width) {
  assert.equal(r.status, 200, `${p}: ${r.status} ${r.text()}`);
  assert.equal(r.headers['content-type'], 'image/webp');
  assert.equal(r.headers['cache-control'], 'no-store');
  assert.equal(r.headers['x-content-type-options'], 'nosniff');
  const s = webpSize(r.body);
  assert.equal(s.width, width, `${p}: the asked width`);
  assert.ok(s.height > 0 && s.height <= width * 8, `${p}: a sane height`);
}

/** Checks a WebP container and returns its {width, height} (VP8, VP8L or VP8X). */
export function webpSize(b) {
  assert.ok(b.length > 30, 'a WebP is longer than its header');
  assert.equal(b.toString('latin1', 0, 4), 'RIFF');
  assert.equal(b.readUInt32LE(4), b.length - 8, 'RIFF length matches');
  assert.equal(b.toString('latin1', 8, 12), 'WEBP');
  const kind = b.toString('latin1', 12, 16);
  if (kind === 'VP8X') return { width: 1 + b.readUIntLE(24, 3), height: 1 + b.readUIntLE(27, 3) };
  if (kind === 'VP8L') {
    assert.equal(b[20], 0x2f);
    const v = b.readUInt32LE(21);
    return { width: 1 + (v & 0x3fff), height: 1 + ((v >>> 14) & 0x3fff) };
  }
  assert.equal(kind, 'VP8 ');
  assert.deepEqual([b[23], b[24], b[25]], [0x9d, 0x01, 0x2a], 'VP8 start code');
  return { width: b.readUInt16LE(26) & 0x3fff, height: b.readUInt16LE(28) & 0x3fff };
}

export class PageClient {
  constructor(server) {
    this.server = server;
    this.bodies = [];
    this.originals = [];
  }

  async req(method, p, opts = {}) {
    const r = await this.server.request(method, p, opts);
    this.bodies.push(r.body);
    return r;
  }

  async upload(token, parent, name, data) {
    const r = await this.req('POST', `/api/v1/files?parent=${parent}&name=${encodeURIComponent(name)}`, { token, body: data });
    assert.equal(r.status, 201, `upload ${name}: ${r.status} ${r.text()}`);
    this.originals.push(Buffer.from(data));
    return r.json();
  }

  /** Polls a pages summary until it is no longer pending; returns it. */
  async summary(p, token, ms = 300000) {
    const deadline = Date.now() + ms;
    for (;;) {
      const r = await this.req('GET', p, { token });
      assert.equal(r.status, 200, `${p}: ${r.status} ${r.text()}`);
      assert.equal(r.headers['cache-control'], 'no-store');
      const j = r.json();
      assert.deepEqual(j.widths, WIDTHS);
      if (j.status !== 'pending') return j;
      assert.ok(r.headers['retry-after'], 'pending says when to come back');
      if (Date.now() > deadline) throw new Error(`${p} still pending after ${ms} ms`);
      await sleep(100);
    }
  }

  /** A page that must be served: checks the headers and the image's width, returns the bytes. */
  async page(p, token, width, ms = 300000) {
    const deadline = Date.now() + ms;
    for (;;) {
      const r = await this.req('GET', p, { token });
      if (r.status === 503 && Date.now() < deadline) { // a page of a file still being prepared
        assert.ok(r.headers['retry-after'], `${p}: 503 carries Retry-After`);
        await sleep(100);
        continue;
      }
      assertPage(r, p, width);
      return r.body;
    }
  }

  /** Every content path of file id answers 403 to a view-only token. */
  async contentForbidden(id, token, what) {
    for (const [p, headers] of [['/content', {}], ['/view', {}], ['/content', { range: 'bytes=0-99' }], ['/view', { range: 'bytes=10-' }]]) {
      const r = await this.req('GET', `/api/v1/files/${id}${p}`, { token, headers });
      assert.equal(r.status, 403, `${what} ${p} ${JSON.stringify(headers)}: view-only gets no content`);
    }
    const h = await this.req('HEAD', `/api/v1/files/${id}/content`, { token });
    assert.equal(h.status, 403, `${what}: HEAD content`);
  }

  /** No body received equals an original or holds a 64-byte run of one. */
  noOriginal(minBodies) {
    // Every original indexed by its 32-byte windows; a common run of 64 bytes covers a 32-aligned
    // window of the body, which is then extended both ways to its full length.
    const index = new Map();
    this.originals.forEach((o, oi) => {
      for (let i = 0; i + 32 <= o.length; i++) {
        const k = o.toString('latin1', i, i + 32);
        if (!index.has(k)) index.set(k, []);
        const l = index.get(k);
        if (l.length < 8) l.push([oi, i]);
      }
    });
    assert.ok(this.bodies.length >= minBodies, `bodies checked: ${this.bodies.length}`);
    for (const b of this.bodies) {
      for (const o of this.originals) assert.ok(!b.equals(o), 'a body equals an original');
      for (let p = 0; p + 32 <= b.length; p += 32) {
        const hits = index.get(b.toString('latin1', p, p + 32));
        if (!hits) continue;
        for (const [oi, i] of hits) {
          const o = this.originals[oi];
          let s = 0;
          while (p - s > 0 && i - s > 0 && b[p - s - 1] === o[i - s - 1]) s++;
          let e = 32;
          while (p + e < b.length && i + e < o.length && b[p + e] === o[i + e]) e++;
          assert.ok(s + e < 64, `a body holds ${s + e} bytes of an original`);
        }
      }
    }
  }
}
