// bench/lib/client.mjs: the parts of bench/run.sh that need a real API client (HTTP/2, Node's
// http2 module). Each subcommand prints one line of numbers for the shell script.
//
//   login URL -                                     → "TOKEN PRIVATE_ROOT" of the bench admin
//                                                     (password: BENCH_ADMIN_PASSWORD, else bench-password-1)
//   upload URL TOKEN PARENT FILE                    → node id (simple upload of FILE)
//   tus URL TOKEN PARENT FILE PIECE N               → "seconds retries" for N concurrent tus uploads of FILE
//                                                     (retries: 429/503 answers retried after Retry-After,
//                                                     as a tus client does when the server's budget is full)
//   listing-make URL TOKEN N                        → id of a new folder holding N one-byte files
//   listing-page URL TOKEN FOLDER N                 → "p50_ms p99_ms pages" paging that folder by 100 (checks N seen)
//   shares URL TOKEN FILE_ID SECONDS CONCURRENCY [once]
//                                                   → "MB/s unlocks" of unlock + download by recipients;
//                                                     with `once` each recipient unlocks once and then only
//                                                     downloads (the same client's cost without the unlocks);
//                                                     run.sh's (7) uses bench/cf-share-recipients instead
//   share URL TOKEN FILE_ID CODE                    → the path (/s/TOKEN) of a new download link to the file
//                                                     with that code, for bench/cf-share-recipients
import http2 from 'node:http2';
import fs from 'node:fs';
import crypto from 'node:crypto';

const [cmd, url, token, ...args] = process.argv.slice(2);

function connect() {
  const s = http2.connect(url, { rejectUnauthorized: false, settings: { initialWindowSize: 16 << 20, maxFrameSize: (1 << 24) - 1 } });
  s.on('error', () => {});
  s.on('connect', () => s.setLocalWindowSize(64 << 20));
  return s;
}

// One request; resolves {status, headers, body (Buffer, or byte count when count)}.
function request(session, method, path, { headers = {}, body, count = false, auth = token } = {}) {
  return new Promise((resolve, reject) => {
    const h = { ':method': method, ':path': path, ...headers };
    if (auth) h.authorization = `Bearer ${auth}`;
    const req = session.request(h, { endStream: body === undefined });
    let status = 0, rh = {}, bytes = 0;
    const chunks = [];
    req.on('response', (x) => { rh = x; status = x[':status']; });
    req.on('data', (c) => { if (count) bytes += c.length; else chunks.push(c); });
    req.on('end', () => resolve({ status, headers: rh, body: count ? bytes : Buffer.concat(chunks) }));
    req.on('error', reject);
    if (body !== undefined) req.end(body);
  });
}

const ok = (r, want, what) => {
  if (r.status !== want) throw new Error(`${what}: ${r.status} ${Buffer.isBuffer(r.body) ? r.body.toString().slice(0, 200) : ''}`);
  return r;
};
const b64 = (s) => Buffer.from(s).toString('base64');
const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];

// A retryable refusal (429 or 503: the server's upload or body budget is full) is retried after its
// Retry-After (default 1 s), for at most 10 minutes per request; every retry is counted.
let tusRetries = 0;
async function retrying(send, want, what) {
  const deadline = Date.now() + 600_000;
  for (;;) {
    const r = await send();
    if ((r.status === 429 || r.status === 503) && Date.now() < deadline) {
      tusRetries++;
      const after = Number(r.headers['retry-after']);
      await new Promise((res) => setTimeout(res, Number.isFinite(after) && after > 0 ? after * 1000 : 1000));
      continue;
    }
    return ok(r, want, what);
  }
}

async function tusUpload(session, parent, file, size, piece, name) {
  const c = await retrying(() => request(session, 'POST', '/api/v1/uploads', {
    headers: { 'tus-resumable': '1.0.0', 'upload-length': String(size), 'upload-metadata': `filename ${b64(name)},parent ${b64(parent)}` },
  }), 201, 'tus create');
  const loc = c.headers.location;
  const fd = fs.openSync(file, 'r');
  try {
    for (let off = 0; off < size;) {
      const n = Math.min(piece, size - off);
      const buf = Buffer.allocUnsafe(n);
      fs.readSync(fd, buf, 0, n, off);
      await retrying(() => request(session, 'PATCH', loc, {
        // Content-Length as browsers and tus-js-client send it (node's HTTP/2 client does not add it).
        headers: { 'tus-resumable': '1.0.0', 'upload-offset': String(off), 'content-type': 'application/offset+octet-stream', 'content-length': String(n) },
        body: buf,
      }), 204, `tus patch at ${off}`);
      off += n;
    }
  } finally {
    fs.closeSync(fd);
  }
}

async function main() {
  const session = connect();
  try {
    if (cmd === 'login') {
      const r = ok(await request(session, 'POST', '/api/v1/auth/login', {
        auth: null, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: process.env.BENCH_ADMIN_PASSWORD || 'bench-password-1' }),
      }), 200, 'login');
      const t = JSON.parse(r.body).token;
      const spaces = JSON.parse(ok(await request(session, 'GET', '/api/v1/spaces', { auth: t }), 200, 'spaces').body);
      console.log(`${t} ${spaces.private.root}`);
    } else if (cmd === 'upload') {
      const [parent, file] = args;
      const r = ok(await request(session, 'POST', `/api/v1/files?parent=${parent}&name=${crypto.randomUUID()}.bin`, { body: fs.readFileSync(file) }), 201, 'upload');
      console.log(JSON.parse(r.body).id);
    } else if (cmd === 'tus') {
      const [parent, file, pieceArg, nArg] = args;
      const size = fs.statSync(file).size;
      const n = Number(nArg);
      // One connection per upload, as separate clients would.
      const sessions = Array.from({ length: n }, () => connect());
      const t0 = process.hrtime.bigint();
      await Promise.all(sessions.map((s, i) => tusUpload(s, parent, file, size, Number(pieceArg), `tus-${i}-${crypto.randomUUID()}.bin`)));
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      for (const s of sessions) s.close();
      console.log(`${secs.toFixed(3)} ${tusRetries}`);
    } else if (cmd === 'listing-make') {
      const n = Number(args[0]);
      const spaces = JSON.parse(ok(await request(session, 'GET', '/api/v1/spaces'), 200, 'spaces').body);
      const folder = JSON.parse(ok(await request(session, 'POST', '/api/v1/folders', {
        headers: { 'content-type': 'application/json' }, body: JSON.stringify({ parent: spaces.private.root, name: `listing-${crypto.randomUUID()}` }),
      }), 201, 'folder').body).id;
      let next = 0;
      const body = Buffer.from('x');
      const worker = async () => {
        while (next < n) {
          const i = next++;
          ok(await request(session, 'POST', `/api/v1/files?parent=${folder}&name=file-${String(i).padStart(6, '0')}.txt`, { body }), 201, 'small upload');
        }
      };
      await Promise.all(Array.from({ length: 64 }, worker));
      console.log(folder);
    } else if (cmd === 'listing-page') {
      const [folder, nArg] = args;
      const n = Number(nArg);
      const times = [];
      let cursor = null, seen = 0;
      do {
        const t0 = process.hrtime.bigint();
        const r = ok(await request(session, 'GET', `/api/v1/nodes/${folder}/children?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`), 200, 'page');
        times.push(Number(process.hrtime.bigint() - t0) / 1e6);
        const j = JSON.parse(r.body);
        seen += j.items.length;
        cursor = j.next_cursor;
      } while (cursor);
      if (seen !== n) throw new Error(`listed ${seen} of ${n}`);
      times.sort((a, b) => a - b);
      console.log(`${percentile(times, 50).toFixed(2)} ${percentile(times, 99).toFixed(2)} ${times.length}`);
    } else if (cmd === 'shares') {
      const [fileId, secondsArg, concArg, onceArg] = args;
      const once = onceArg === 'once';
      const code = 'BENCH2026';
      const sh = JSON.parse(ok(await request(session, 'POST', '/api/v1/shares', {
        headers: { 'content-type': 'application/json' }, body: JSON.stringify({ node: fileId, permission: 'download', code }),
      }), 201, 'share').body);
      const path = new URL(sh.url).pathname;
      const deadline = Date.now() + Number(secondsArg) * 1000;
      let bytes = 0, unlocks = 0;
      const recipient = async () => {
        const s = connect(); // each recipient is its own client
        let access = null;
        while (Date.now() < deadline) {
          if (!once || access === null) {
            const u = ok(await request(s, 'POST', `${path}/unlock`, { auth: null, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code }) }), 200, 'unlock');
            unlocks++;
            access = JSON.parse(u.body).access_token;
          }
          // Not "bytes += await …": that reads bytes before the await and loses the other recipients' counts.
          const got = ok(await request(s, 'GET', `${path}/content`, { auth: access, count: true }), 200, 'share download').body;
          bytes += got;
        }
        s.close();
      };
      const t0 = process.hrtime.bigint();
      await Promise.all(Array.from({ length: Number(concArg) }, recipient));
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      console.log(`${(bytes / 1e6 / secs).toFixed(1)} ${unlocks}`);
    } else if (cmd === 'share') {
      const [fileId, code] = args;
      const sh = JSON.parse(ok(await request(session, 'POST', '/api/v1/shares', {
        headers: { 'content-type': 'application/json' }, body: JSON.stringify({ node: fileId, permission: 'download', code }),
      }), 201, 'share').body);
      console.log(new URL(sh.url).pathname);
    } else {
      throw new Error(`unknown command ${cmd}`);
    }
  } finally {
    session.close();
  }
}

main().catch((e) => { console.error(`bench client: ${e.message}`); process.exit(1); });
