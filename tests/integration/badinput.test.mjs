// Bad input (SPEC §8, API.md "Errors", "Strict JSON", "Names"): every malformed request gets its
// exact 4xx status and error code, and changes nothing. A known tree is snapshotted (both spaces,
// recursively: ids, names, types, parents, sizes, hashes, versions, times) before and after the
// whole table; the files are downloaded byte for byte at the end.
//
// Each row: {name, method, path, headers?, body?, status, error, only?: 'h2'|'h1', check?(res)}.
// Rows run over HTTP/2 and HTTP/1.1 unless `only` says otherwise. Placeholders in paths and bodies:
// {root} {troot} (space roots), {A} {S} (A/S) {B} {T} (tenant space folder), {F} (A/f.txt), {G}
// (T/g.bin), {missing} (a well-formed id that does not exist), {Aup} (A's id in upper case), {A31}
// (A's id less its last digit). limits: max_request_body_bytes 64 KiB, max_json_bytes 16 KiB (below
// the body limit, so that the JSON limit itself is reached over both protocols).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { Server, bytes, curl, sha256 } from './lib/harness.mjs';

let server, admin, token, ids;
const files = {}; // id → original bytes
after(async () => { if (server) { await server.stop(); server.cleanup(); } });

const MAX_BODY = 64 * 1024; // limits.max_request_body_bytes
const MAX_JSON = 16 * 1024; // limits.max_json_bytes

/**
 * One HTTP/1.1 exchange on a raw TLS socket (Connection: close), so that requests Node's client
 * would not send (no body and no Content-Length, a body refused before it is sent) can be made.
 * Returns {status, headers (lower-case names → array of values), body (everything after the head)}.
 */
function rawH1(head, { body, holdBody = false } = {}) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    const sock = tls.connect({ host: '127.0.0.1', port: server.port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => {
      sock.write(head);
      if (body === undefined) return;
      // holdBody: the server should answer from the headers alone; send the body only if it has not.
      if (holdBody) setTimeout(() => { if (!sock.destroyed && chunks.length === 0) sock.write(body); }, 3000);
      else sock.write(body);
    });
    const timer = setTimeout(() => sock.destroy(), 120000); // a hang guard, generous
    sock.on('data', (c) => chunks.push(c));
    sock.on('error', () => {}); // a reset after the response is fine: the response is what counts
    sock.on('close', () => {
      clearTimeout(timer);
      const raw = Buffer.concat(chunks);
      const end = raw.indexOf('\r\n\r\n');
      if (end < 0) return reject(new Error(`no HTTP response: ${JSON.stringify(raw.toString('latin1'))}`));
      const lines = raw.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(lines[0].split(' ')[1]);
      const headers = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        const k = l.slice(0, i).trim().toLowerCase();
        (headers[k] = headers[k] || []).push(l.slice(i + 1).trim());
      }
      resolve({ status, headers, body: raw.subarray(end + 4) });
    });
  });
}

function rawHead(method, p, extra = []) {
  return [`${method} ${p} HTTP/1.1`, `Host: 127.0.0.1:${server.port}`, `Authorization: Bearer ${token}`,
    'Connection: close', ...extra, '', ''].join('\r\n');
}

function fill(s) {
  return s.replace(/\{(\w+)\}/g, (m, k) => {
    if (!(k in ids)) throw new Error(`unknown placeholder ${m}`);
    return ids[k];
  });
}

function fillBody(b) {
  if (b === undefined || Buffer.isBuffer(b)) return b;
  if (typeof b === 'string') return fill(b);
  return JSON.parse(fill(JSON.stringify(b)));
}

const json = { 'content-type': 'application/json' };
const name256 = 'n'.repeat(256);
const nameMulti256 = 'é'.repeat(128); // 256 bytes of valid UTF-8
const nameEmoji256 = '😀'.repeat(64); // 256 bytes
/** A JSON body whose name holds raw bytes (not valid UTF-8). */
const badUtf8Body = (parentKey, bytesInName) => () => Buffer.concat([
  Buffer.from(`{"parent":"${ids[parentKey]}","name":"a`), Buffer.from(bytesInName), Buffer.from('b"}')]);

/** Names with invisible characters (issue 17): zero-width, bidi marks, format characters (Cf). */
const invisibleNames = [
  ['zero width space U+200B', 'repo\u200Brt.pdf'], ['ZWJ U+200D between Latin letters', 'repo\u200Drt.pdf'],
  ['ZWNJ U+200C at the end', 'report\u200C'], ['LRM U+200E', 'a\u200Eb'], ['RLM U+200F', 'a\u200Fb'],
  ['ALM U+061C', 'a\u061Cb'], ['line separator U+2028', 'a\u2028b'], ['word joiner U+2060', 'a\u2060b'],
  ['invisible plus U+2064', 'a\u2064b'], ['BOM U+FEFF', '\uFEFFreport.pdf'], ['soft hyphen U+00AD', 'a\u00ADb'],
  ['tag U+E0041', 'a\u{E0041}b'], ['Hangul filler U+3164', '\u3164'],
];

/** The table. Bodies may be functions (evaluated when the row runs). */
function rows() {
  const folders = '/api/v1/folders';
  const up = (q) => `/api/v1/files?${q}`;
  const badNames = [
    ['empty', ''], ['256 bytes', name256], ['256 bytes of é', nameMulti256], ['256 bytes of emoji', nameEmoji256],
    ['containing /', 'a/b'], ['only /', '/'], ['U+0001', 'a\u0001b'], ['TAB', 'a\tb'], ['newline', 'a\nb'], ['DEL U+007F', 'a\u007fb'],
    ['C1 U+0085', 'a\u0085b'], ['C1 U+009F', 'a\u009fb'], ['.', '.'], ['..', '..'], ['bidi U+202E', 'evil\u202Etxt.exe'],
    ['bidi U+202A', 'a\u202Ab'], ['bidi U+2066', 'a\u2066b'], ['bidi U+2069', 'a\u2069b'],
    ...invisibleNames,
  ];
  const r = [
    // ---- strict JSON ------------------------------------------------------------------------------
    { name: 'invalid JSON', method: 'POST', path: folders, headers: json, body: '{"parent":', status: 400, error: 'bad_request' },
    { name: 'invalid JSON: trailing garbage', method: 'POST', path: folders, headers: json, body: '{"parent":"{A}","name":"x"} x', status: 400, error: 'bad_request' },
    { name: 'invalid JSON: single quotes', method: 'POST', path: folders, headers: json, body: "{'parent':'{A}','name':'x'}", status: 400, error: 'bad_request' },
    { name: 'JSON array', method: 'POST', path: folders, headers: json, body: '[{"parent":"{A}","name":"x"}]', status: 400, error: 'bad_request' },
    { name: 'JSON string', method: 'POST', path: folders, headers: json, body: '"x"', status: 400, error: 'bad_request' },
    { name: 'JSON number', method: 'POST', path: folders, headers: json, body: '5', status: 400, error: 'bad_request' },
    { name: 'JSON null', method: 'POST', path: folders, headers: json, body: 'null', status: 400, error: 'bad_request' },
    { name: 'empty body', method: 'POST', path: folders, headers: json, body: '', status: 400, error: 'bad_request' },
    { name: 'duplicate keys', method: 'POST', path: folders, headers: json, body: '{"parent":"{A}","name":"x","name":"y"}', status: 400, error: 'bad_request' },
    { name: 'duplicate keys (same value)', method: 'POST', path: folders, headers: json, body: '{"parent":"{A}","parent":"{A}","name":"x"}', status: 400, error: 'bad_request' },
    { name: 'unknown field', method: 'POST', path: folders, body: { parent: '{A}', name: 'x', extra: 1 }, status: 400, error: 'bad_request' },
    { name: 'misspelt field', method: 'POST', path: folders, body: { parent: '{A}', nmae: 'x' }, status: 400, error: 'bad_request' },
    { name: 'name: 5', method: 'POST', path: folders, body: { parent: '{A}', name: 5 }, status: 400, error: 'bad_request' },
    { name: 'name: true', method: 'POST', path: folders, body: { parent: '{A}', name: true }, status: 400, error: 'bad_request' },
    { name: 'name: ["x"]', method: 'POST', path: folders, body: { parent: '{A}', name: ['x'] }, status: 400, error: 'bad_request' },
    { name: 'name: {}', method: 'POST', path: folders, body: { parent: '{A}', name: {} }, status: 400, error: 'bad_request' },
    { name: 'name: null (required)', method: 'POST', path: folders, body: { parent: '{A}', name: null }, status: 400, error: 'bad_request' },
    { name: 'parent: true', method: 'POST', path: folders, body: { parent: true, name: 'x' }, status: 400, error: 'bad_request' },
    { name: 'parent: 5', method: 'POST', path: folders, body: { parent: 5, name: 'x' }, status: 400, error: 'bad_request' },
    { name: 'parent: null (required)', method: 'POST', path: folders, body: { parent: null, name: 'x' }, status: 400, error: 'bad_request' },
    { name: 'missing name', method: 'POST', path: folders, body: { parent: '{A}' }, status: 400, error: 'bad_request' },
    { name: 'missing parent', method: 'POST', path: folders, body: { name: 'x' }, status: 400, error: 'bad_request' },
    { name: 'empty object', method: 'POST', path: folders, body: {}, status: 400, error: 'bad_request' },
    { name: 'invalid UTF-8 in JSON (0xFF)', method: 'POST', path: folders, headers: json, body: badUtf8Body('A', [0xff]), status: 400, error: 'bad_request' },
    { name: 'invalid UTF-8 in JSON (overlong /)', method: 'POST', path: folders, headers: json, body: badUtf8Body('A', [0xc0, 0xaf]), status: 400, error: 'bad_request' },
    { name: 'invalid UTF-8 in JSON (truncated sequence)', method: 'POST', path: folders, headers: json, body: badUtf8Body('A', [0xe2, 0x82]), status: 400, error: 'bad_request' },
    { name: 'invalid UTF-8 in JSON (UTF-16 surrogate)', method: 'POST', path: folders, headers: json, body: badUtf8Body('A', [0xed, 0xa0, 0x80]), status: 400, error: 'bad_request' },
    { name: 'JSON \\u0000 in name', method: 'POST', path: folders, headers: json, body: '{"parent":"{A}","name":"a\\u0000b"}', status: 400, error: 'bad_request' },
    { name: 'JSON lone surrogate \\ud800 in name', method: 'POST', path: folders, headers: json, body: '{"parent":"{A}","name":"a\\ud800b"}', status: 400, error: 'bad_request' },
    { name: 'Content-Type text/plain', method: 'POST', path: folders, headers: { 'content-type': 'text/plain' }, body: '{"parent":"{A}","name":"x"}', status: 415, error: 'unsupported_media_type' },
    { name: 'Content-Type application/jsonx', method: 'POST', path: folders, headers: { 'content-type': 'application/jsonx' }, body: '{"parent":"{A}","name":"x"}', status: 415, error: 'unsupported_media_type' },
    { name: 'Content-Type application/x-www-form-urlencoded', method: 'POST', path: folders, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'parent={A}&name=x', status: 415, error: 'unsupported_media_type' },
    { name: 'JSON over max_json_bytes', method: 'POST', path: folders, headers: json, body: () => JSON.stringify({ parent: ids.A, name: 'x', pad: 'p'.repeat(MAX_JSON + 1000) }), status: 413, error: 'payload_too_large' },
    { name: 'PATCH JSON over max_json_bytes', method: 'PATCH', path: '/api/v1/nodes/{B}', headers: json, body: () => JSON.stringify({ name: 'x', pad: 'p'.repeat(MAX_JSON + 1) }), status: 413, error: 'payload_too_large' },

    // ---- names in JSON ---------------------------------------------------------------------------
    ...badNames.map(([what, n]) => ({ name: `folder name ${what}`, method: 'POST', path: folders, body: { parent: '{A}', name: n }, status: 400, error: 'bad_request' })),
    ...badNames.map(([what, n]) => ({ name: `rename to ${what}`, method: 'PATCH', path: '/api/v1/nodes/{F}', body: { name: n }, status: 400, error: 'bad_request' })),
    ...invisibleNames.map(([what, n]) => ({ name: `upload named ${what}`, method: 'POST', path: up(`parent={A}&name=${encodeURIComponent(n)}`), body: 'x', status: 400, error: 'bad_request' })),

    // ---- ids in JSON -----------------------------------------------------------------------------
    { name: 'parent id not hex', method: 'POST', path: folders, body: { parent: 'zz'.repeat(16), name: 'x' }, status: 404, error: 'not_found' },
    { name: 'parent id 31 chars', method: 'POST', path: folders, body: { parent: '{A31}', name: 'x' }, status: 404, error: 'not_found' },
    { name: 'parent id 33 chars', method: 'POST', path: folders, body: { parent: '{A}0', name: 'x' }, status: 404, error: 'not_found' },
    { name: 'parent id upper-case hex', method: 'POST', path: folders, body: { parent: '{Aup}', name: 'x' }, status: 404, error: 'not_found' },
    { name: 'parent id empty', method: 'POST', path: folders, body: { parent: '', name: 'x' }, status: 404, error: 'not_found' },
    { name: 'parent id that does not exist', method: 'POST', path: folders, body: { parent: '{missing}', name: 'x' }, status: 404, error: 'not_found' },
    { name: 'move to a parent that does not exist', method: 'PATCH', path: '/api/v1/nodes/{F}', body: { parent: '{missing}' }, status: 404, error: 'not_found' },
    { name: 'move to a malformed parent id', method: 'PATCH', path: '/api/v1/nodes/{F}', body: { parent: 'x' }, status: 404, error: 'not_found' },
    { name: 'move with parent: 5', method: 'PATCH', path: '/api/v1/nodes/{F}', body: { parent: 5 }, status: 400, error: 'bad_request' },

    // ---- ids in paths ----------------------------------------------------------------------------
    { name: 'GET node: id not hex', method: 'GET', path: `/api/v1/nodes/${'g'.repeat(32)}`, status: 404, error: 'not_found' },
    { name: 'GET node: id 31 chars', method: 'GET', path: '/api/v1/nodes/{A31}', status: 404, error: 'not_found' },
    { name: 'GET node: upper-case id', method: 'GET', path: '/api/v1/nodes/{Aup}', status: 404, error: 'not_found' },
    { name: 'GET node: %-encoded id', method: 'GET', path: '/api/v1/nodes/%FF{A31}', status: 404, error: 'not_found' },
    { name: 'GET node: id that does not exist', method: 'GET', path: '/api/v1/nodes/{missing}', status: 404, error: 'not_found' },
    { name: 'children: id that does not exist', method: 'GET', path: '/api/v1/nodes/{missing}/children', status: 404, error: 'not_found' },
    { name: 'content: id that does not exist', method: 'GET', path: '/api/v1/files/{missing}/content', status: 404, error: 'not_found' },
    { name: 'content: malformed id', method: 'GET', path: '/api/v1/files/{Aup}/content', status: 404, error: 'not_found' },
    { name: 'PATCH: id that does not exist', method: 'PATCH', path: '/api/v1/nodes/{missing}', body: { name: 'x' }, status: 404, error: 'not_found' },
    { name: 'PATCH: malformed id', method: 'PATCH', path: '/api/v1/nodes/{A31}', body: { name: 'x' }, status: 404, error: 'not_found' },
    { name: 'DELETE: id that does not exist', method: 'DELETE', path: '/api/v1/nodes/{missing}', status: 404, error: 'not_found' },
    { name: 'DELETE: malformed id', method: 'DELETE', path: '/api/v1/nodes/{Aup}', status: 404, error: 'not_found' },

    // ---- upload query ----------------------------------------------------------------------------
    { name: 'upload: missing parent', method: 'POST', path: up('name=x.txt'), body: 'x', status: 400, error: 'bad_request' },
    { name: 'upload: missing name', method: 'POST', path: up('parent={A}'), body: 'x', status: 400, error: 'bad_request' },
    { name: 'upload: no query at all', method: 'POST', path: '/api/v1/files', body: 'x', status: 400, error: 'bad_request' },
    { name: 'upload: on_conflict=bogus', method: 'POST', path: up('parent={A}&name=x.txt&on_conflict=bogus'), body: 'x', status: 400, error: 'bad_request' },
    { name: 'upload: on_conflict empty', method: 'POST', path: up('parent={A}&name=x.txt&on_conflict='), body: 'x', status: 400, error: 'bad_request' },
    { name: 'upload: on_conflict=RENAME (case)', method: 'POST', path: up('parent={A}&name=x.txt&on_conflict=RENAME'), body: 'x', status: 400, error: 'bad_request' },
    { name: 'upload: repeated name', method: 'POST', path: up('parent={A}&name=a&name=b'), body: 'x', status: 400, error: 'bad_request' },
    { name: 'upload: repeated parent', method: 'POST', path: up('parent={A}&parent={B}&name=x.txt'), body: 'x', status: 400, error: 'bad_request' },
    { name: 'upload: repeated on_conflict', method: 'POST', path: up('parent={A}&name=x.txt&on_conflict=fail&on_conflict=rename'), body: 'x', status: 400, error: 'bad_request' },
    { name: 'upload: %G1 in name', method: 'POST', path: up('parent={A}&name=a%G1'), body: 'x', status: 400, error: 'bad_request' },
    { name: 'upload: trailing % in name', method: 'POST', path: up('parent={A}&name=abc%'), body: 'x', status: 400, error: 'bad_request' },
    { name: 'upload: truncated %4 in name', method: 'POST', path: up('parent={A}&name=abc%4'), body: 'x', status: 400, error: 'bad_request' },
    { name: 'upload: broken escape in a key', method: 'POST', path: up('parent={A}&na%ZZme=x&name=y'), body: 'x', status: 400, error: 'bad_request' },
    { name: 'upload: name %FF (invalid UTF-8)', method: 'POST', path: up('parent={A}&name=a%FFb'), body: 'x', status: 400, error: 'bad_request' },
    { name: 'upload: name %C0%AF (overlong)', method: 'POST', path: up('parent={A}&name=a%C0%AFb'), body: 'x', status: 400, error: 'bad_request' },
    { name: 'upload: name %ED%A0%80 (surrogate)', method: 'POST', path: up('parent={A}&name=a%ED%A0%80b'), body: 'x', status: 400, error: 'bad_request' },
    { name: 'upload: name %00 (NUL)', method: 'POST', path: up('parent={A}&name=a%00b'), body: 'x', status: 400, error: 'bad_request' },
    { name: 'upload: name %2F (/)', method: 'POST', path: up('parent={A}&name=a%2Fb'), body: 'x', status: 400, error: 'bad_request' },
    { name: 'upload: name %01', method: 'POST', path: up('parent={A}&name=a%01b'), body: 'x', status: 400, error: 'bad_request' },
    { name: 'upload: name %7F', method: 'POST', path: up('parent={A}&name=a%7Fb'), body: 'x', status: 400, error: 'bad_request' },
    { name: 'upload: name %C2%85 (NEL)', method: 'POST', path: up('parent={A}&name=a%C2%85b'), body: 'x', status: 400, error: 'bad_request' },
    { name: 'upload: name %E2%80%AE (bidi)', method: 'POST', path: up('parent={A}&name=evil%E2%80%AEtxt.exe'), body: 'x', status: 400, error: 'bad_request' },
    { name: 'upload: name .', method: 'POST', path: up('parent={A}&name=.'), body: 'x', status: 400, error: 'bad_request' },
    { name: 'upload: name ..', method: 'POST', path: up('parent={A}&name=..'), body: 'x', status: 400, error: 'bad_request' },
    { name: 'upload: name %2E%2E', method: 'POST', path: up('parent={A}&name=%2E%2E'), body: 'x', status: 400, error: 'bad_request' },
    { name: 'upload: empty name', method: 'POST', path: up('parent={A}&name='), body: 'x', status: 400, error: 'bad_request' },
    { name: 'upload: name without =', method: 'POST', path: up('parent={A}&name'), body: 'x', status: 400, error: 'bad_request' },
    { name: 'upload: 256-byte name', method: 'POST', path: up(`parent={A}&name=${name256}`), body: 'x', status: 400, error: 'bad_request' },
    { name: 'upload: 256-byte UTF-8 name', method: 'POST', path: up(`parent={A}&name=${encodeURIComponent(nameMulti256)}`), body: 'x', status: 400, error: 'bad_request' },
    { name: 'upload: parent not hex', method: 'POST', path: up(`parent=${'x'.repeat(32)}&name=x.txt`), body: 'x', status: 404, error: 'not_found' },
    { name: 'upload: parent 31 chars', method: 'POST', path: up('parent={A31}&name=x.txt'), body: 'x', status: 404, error: 'not_found' },
    { name: 'upload: parent upper-case', method: 'POST', path: up('parent={Aup}&name=x.txt'), body: 'x', status: 404, error: 'not_found' },
    { name: 'upload: parent that does not exist', method: 'POST', path: up('parent={missing}&name=x.txt'), body: 'x', status: 404, error: 'not_found' },
    { name: 'upload: parent is a file', method: 'POST', path: up('parent={F}&name=x.txt'), body: 'x', status: 400, error: 'bad_request' },
    { name: 'upload: name taken', method: 'POST', path: up('parent={A}&name=f.txt'), body: 'new content', status: 409, error: 'conflict' },
    { name: 'upload: name taken, on_conflict=fail', method: 'POST', path: up('parent={A}&name=f.txt&on_conflict=fail'), body: 'new content', status: 409, error: 'conflict' },
    { name: 'upload: replace, but a folder is in the way', method: 'POST', path: up('parent={A}&name=S&on_conflict=replace'), body: 'x', status: 409, error: 'conflict' },
    { name: 'upload: no body and no Content-Length (h2)', method: 'POST', path: up('parent={A}&name=empty.txt'), status: 411, error: 'length_required', only: 'h2' },

    // ---- listing ---------------------------------------------------------------------------------
    { name: 'children limit=0', method: 'GET', path: '/api/v1/nodes/{A}/children?limit=0', status: 400, error: 'bad_request' },
    { name: 'children limit=1001', method: 'GET', path: '/api/v1/nodes/{A}/children?limit=1001', status: 400, error: 'bad_request' },
    { name: 'children limit=abc', method: 'GET', path: '/api/v1/nodes/{A}/children?limit=abc', status: 400, error: 'bad_request' },
    { name: 'children limit=-1', method: 'GET', path: '/api/v1/nodes/{A}/children?limit=-1', status: 400, error: 'bad_request' },
    { name: 'children limit= (empty)', method: 'GET', path: '/api/v1/nodes/{A}/children?limit=', status: 400, error: 'bad_request' },
    { name: 'children limit=1.5', method: 'GET', path: '/api/v1/nodes/{A}/children?limit=1.5', status: 400, error: 'bad_request' },
    { name: 'children limit repeated', method: 'GET', path: '/api/v1/nodes/{A}/children?limit=1&limit=2', status: 400, error: 'bad_request' },
    { name: 'children cursor=zz', method: 'GET', path: '/api/v1/nodes/{A}/children?cursor=zz', status: 400, error: 'bad_request' },
    // Strict query strings (API.md "Errors"): a parameter the endpoint does not take is refused.
    { name: 'children: unknown parameter', method: 'GET', path: '/api/v1/nodes/{A}/children?limt=5', status: 400, error: 'unknown_parameter',
      check: (res) => assert.match(JSON.parse(res.body).message, /"limt"/) },
    { name: 'children: a known and an unknown parameter', method: 'GET', path: '/api/v1/nodes/{A}/children?limit=5&x=1', status: 400, error: 'unknown_parameter' },
    { name: 'node GET takes no parameters', method: 'GET', path: '/api/v1/nodes/{A}?x', status: 400, error: 'unknown_parameter' },
    { name: 'audit: misspelt filter ?nod=', method: 'GET', path: '/api/v1/audit?nod={A}', status: 400, error: 'unknown_parameter',
      check: (res) => assert.match(JSON.parse(res.body).message, /"nod".*node/) },
    { name: 'percent-encoded parameter name is unknown', method: 'GET', path: '/api/v1/nodes/{A}/children?%6cimit=5', status: 400, error: 'unknown_parameter' },
    { name: 'broken escape in a parameter name', method: 'GET', path: '/api/v1/nodes/{A}/children?%zzimit=5', status: 400, error: 'bad_request' },
    { name: 'non-ASCII parameter name is not echoed', method: 'GET', path: '/api/v1/nodes/{A}/children?%C3%A9=1', status: 400, error: 'unknown_parameter',
      check: (res) => assert.ok(!/é|%C3/.test(JSON.parse(res.body).message)) },
    { name: 'delete with an unknown parameter changes nothing', method: 'DELETE', path: '/api/v1/nodes/{F}?purg=1', status: 400, error: 'unknown_parameter' },
    { name: 'children cursor odd length', method: 'GET', path: '/api/v1/nodes/{A}/children?cursor=abc', status: 400, error: 'bad_request' },
    { name: 'children broken escape', method: 'GET', path: '/api/v1/nodes/{A}/children?limit=%G1', status: 400, error: 'bad_request' },
    { name: 'children of a file', method: 'GET', path: '/api/v1/nodes/{F}/children', status: 400, error: 'bad_request' },

    // ---- PATCH -----------------------------------------------------------------------------------
    { name: 'PATCH {}', method: 'PATCH', path: '/api/v1/nodes/{A}', body: {}, status: 400, error: 'bad_request' },
    { name: 'PATCH {name: null}', method: 'PATCH', path: '/api/v1/nodes/{A}', body: { name: null }, status: 400, error: 'bad_request' },
    { name: 'PATCH unknown field', method: 'PATCH', path: '/api/v1/nodes/{A}', body: { name: 'x', size: 1 }, status: 400, error: 'bad_request' },
    { name: 'PATCH array body', method: 'PATCH', path: '/api/v1/nodes/{A}', headers: json, body: '["x"]', status: 400, error: 'bad_request' },
    { name: 'PATCH text/plain', method: 'PATCH', path: '/api/v1/nodes/{A}', headers: { 'content-type': 'text/plain' }, body: '{"name":"x"}', status: 415, error: 'unsupported_media_type' },
    { name: 'PATCH: folder into itself', method: 'PATCH', path: '/api/v1/nodes/{A}', body: { parent: '{A}' }, status: 400, error: 'bad_request' },
    { name: 'PATCH: folder into its own subfolder', method: 'PATCH', path: '/api/v1/nodes/{A}', body: { parent: '{S}' }, status: 400, error: 'bad_request' },
    { name: 'PATCH: folder into its own subfolder, renamed too', method: 'PATCH', path: '/api/v1/nodes/{A}', body: { parent: '{S}', name: 'A2' }, status: 400, error: 'bad_request' },
    { name: 'PATCH: move under a file', method: 'PATCH', path: '/api/v1/nodes/{B}', body: { parent: '{F}' }, status: 400, error: 'bad_request' },
    { name: 'PATCH: rename the private root', method: 'PATCH', path: '/api/v1/nodes/{root}', body: { name: 'mine' }, status: 403, error: 'forbidden' },
    { name: 'PATCH: move the private root', method: 'PATCH', path: '/api/v1/nodes/{root}', body: { parent: '{B}' }, status: 403, error: 'forbidden' },
    { name: 'PATCH: rename the tenant root', method: 'PATCH', path: '/api/v1/nodes/{troot}', body: { name: 'ours' }, status: 403, error: 'forbidden' },
    { name: 'PATCH: move the tenant root', method: 'PATCH', path: '/api/v1/nodes/{troot}', body: { parent: '{A}' }, status: 403, error: 'forbidden' },
    { name: 'PATCH: rename to a taken name', method: 'PATCH', path: '/api/v1/nodes/{B}', body: { name: 'A' }, status: 409, error: 'conflict' },
    { name: 'PATCH: move onto a taken name', method: 'PATCH', path: '/api/v1/nodes/{S}', body: { parent: '{root}', name: 'B' }, status: 409, error: 'conflict' },

    // ---- create ----------------------------------------------------------------------------------
    { name: 'folder under a file', method: 'POST', path: folders, body: { parent: '{F}', name: 'x' }, status: 400, error: 'bad_request' },
    { name: 'folder name taken by a folder', method: 'POST', path: folders, body: { parent: '{root}', name: 'A' }, status: 409, error: 'conflict' },
    { name: 'folder name taken by a file', method: 'POST', path: folders, body: { parent: '{A}', name: 'f.txt' }, status: 409, error: 'conflict' },
    { name: 'folder name taken in the tenant space', method: 'POST', path: folders, body: { parent: '{troot}', name: 'T' }, status: 409, error: 'conflict' },

    // ---- DELETE ----------------------------------------------------------------------------------
    { name: 'DELETE the private root', method: 'DELETE', path: '/api/v1/nodes/{root}', status: 403, error: 'forbidden' },
    { name: 'DELETE the private root, purge', method: 'DELETE', path: '/api/v1/nodes/{root}?purge=true', status: 403, error: 'forbidden' },
    { name: 'DELETE the tenant root', method: 'DELETE', path: '/api/v1/nodes/{troot}', status: 403, error: 'forbidden' },
    { name: 'DELETE purge=maybe', method: 'DELETE', path: '/api/v1/nodes/{B}?purge=maybe', status: 400, error: 'bad_request' },
    { name: 'DELETE purge= (empty)', method: 'DELETE', path: '/api/v1/nodes/{B}?purge=', status: 400, error: 'bad_request' },
    { name: 'DELETE purge=TRUE', method: 'DELETE', path: '/api/v1/nodes/{F}?purge=TRUE', status: 400, error: 'bad_request' },
    { name: 'DELETE purge repeated', method: 'DELETE', path: '/api/v1/nodes/{F}?purge=true&purge=true', status: 400, error: 'bad_request' },
    { name: 'DELETE purge broken escape', method: 'DELETE', path: '/api/v1/nodes/{F}?purge=%', status: 400, error: 'bad_request' },

    // ---- content ---------------------------------------------------------------------------------
    { name: 'content of a folder', method: 'GET', path: '/api/v1/files/{A}/content', status: 400, error: 'bad_request' },
    { name: 'view of a folder', method: 'GET', path: '/api/v1/files/{A}/view', status: 400, error: 'bad_request' },
    ...[['bytes=100000-', 'start past the end'], ['bytes=5-2', 'end before start'], ['bytes=abc', 'malformed'], ['bytes=-0', 'empty suffix'], ['bytes=1-2-3', 'garbage']].map(([range, what]) => ({
      name: `Range ${range} (${what})`, method: 'GET', path: '/api/v1/files/{F}/content', headers: { range }, status: 416, error: 'range_not_satisfiable',
      check: (res) => assert.equal(res.headers['content-range'], `bytes */${files[ids.F].length}`),
    })),

    // ---- routing ---------------------------------------------------------------------------------
    { name: 'unknown path', method: 'GET', path: '/api/v1/nope', status: 404, error: 'not_found' },
    { name: 'unknown API version', method: 'GET', path: '/api/v2/spaces', status: 404, error: 'not_found' },
    { name: 'trailing slash', method: 'GET', path: '/api/v1/spaces/', status: 404, error: 'not_found' },
    { name: 'empty id segment', method: 'GET', path: '/api/v1/nodes//children', status: 404, error: 'not_found' },
    { name: 'extra segment', method: 'GET', path: '/api/v1/nodes/{A}/children/x', status: 404, error: 'not_found' },
    { name: 'PUT /api/v1/spaces', method: 'PUT', path: '/api/v1/spaces', body: {}, status: 405, error: 'method_not_allowed', check: (res) => assert.equal(res.headers.allow, 'GET, HEAD') },
    { name: 'DELETE /api/v1/spaces', method: 'DELETE', path: '/api/v1/spaces', status: 405, error: 'method_not_allowed', check: (res) => assert.equal(res.headers.allow, 'GET, HEAD') },
    { name: 'GET /api/v1/folders', method: 'GET', path: '/api/v1/folders', status: 405, error: 'method_not_allowed', check: (res) => assert.equal(res.headers.allow, 'POST') },
    { name: 'PUT on a node', method: 'PUT', path: '/api/v1/nodes/{A}', body: { name: 'x' }, status: 405, error: 'method_not_allowed',
      check: (res) => assert.deepEqual(res.headers.allow.split(', ').sort(), ['DELETE', 'GET', 'HEAD', 'PATCH']) },
    { name: 'POST on file content', method: 'POST', path: '/api/v1/files/{F}/content', body: 'x', status: 405, error: 'method_not_allowed' },
    { name: 'HEAD on an unknown id (no body)', method: 'HEAD', path: '/api/v1/nodes/{missing}', status: 404, error: null },
    { name: 'HEAD on content of a folder (no body)', method: 'HEAD', path: '/api/v1/files/{A}/content', status: 400, error: null },
    { name: 'HEAD on an unknown path (no body)', method: 'HEAD', path: '/api/v1/nope', status: 404, error: null },
  ];
  return r;
}

async function send(row, h1) {
  let body = typeof row.body === 'function' ? row.body() : fillBody(row.body);
  const headers = { ...(row.headers || {}) };
  return server.request(row.method, fill(row.path), { token, h1, headers, body });
}

/** Every node of both spaces, depth first, each folder's children sorted by name. */
async function snapshot() {
  const out = [];
  const spaces = (await admin.spaces());
  async function walk(id, where) {
    const r = await admin.node(id);
    assert.equal(r.status, 200, `snapshot: GET ${where}`);
    const n = r.json();
    out.push({ where, id: n.id, type: n.type, name: n.name, parent: n.parent, size: n.size, sha256: n.sha256, mime: n.mime,
      version: n.version, created_at: n.created_at, modified_at: n.modified_at, owner: n.owner });
    if (n.type !== 'folder') return;
    const items = [];
    let cursor = null;
    do {
      const l = await admin.children(id, `?limit=1000${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(l.status, 200);
      items.push(...l.json().items);
      cursor = l.json().next_cursor;
    } while (cursor);
    items.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const c of items) await walk(c.id, `${where}/${c.name}`);
  }
  await walk(spaces.private.root, 'private:');
  await walk(spaces.tenant.root, 'tenant:');
  return out;
}

function assertEnvelope(res, row, proto) {
  const what = `${row.name} [${proto}]`;
  assert.equal(res.status, row.status, `${what}: status ${res.status}, body ${res.body.toString('utf8').slice(0, 200)}`);
  if (row.method === 'HEAD') {
    assert.equal(res.body.length, 0, `${what}: a HEAD response has no body`);
    return;
  }
  assert.equal(res.headers['content-type'], 'application/json', what);
  let j;
  try { j = JSON.parse(res.body.toString('utf8')); } catch { assert.fail(`${what}: the body is not JSON: ${res.body.toString('utf8').slice(0, 200)}`); }
  assert.deepEqual(Object.keys(j).sort(), ['error', 'message'], `${what}: envelope ${JSON.stringify(j)}`);
  assert.equal(j.error, row.error, `${what}: ${JSON.stringify(j)}`);
  assert.equal(typeof j.message, 'string');
  assert.ok(j.message.length > 0);
}

test('setup', async () => {
  server = new Server({ config: { limits: { max_request_body_bytes: '64KiB', max_json_bytes: '16KiB' } } });
  await server.start();
  token = (await server.login()).token;
  admin = server.client(token);
  const spaces = await admin.spaces();
  const mk = async (parent, name) => {
    const r = await admin.mkdir(parent, name);
    assert.equal(r.status, 201, r.text());
    return r.json().id;
  };
  const put = async (parent, name, data) => {
    const r = await admin.upload(parent, name, data);
    assert.equal(r.status, 201, r.text());
    files[r.json().id] = data;
    return r.json().id;
  };
  const A = await mk(spaces.private.root, 'A');
  const S = await mk(A, 'S');
  const B = await mk(spaces.private.root, 'B');
  const T = await mk(spaces.tenant.root, 'T');
  const F = await put(A, 'f.txt', Buffer.from('the original content of f.txt\n'));
  const G = await put(T, 'g.bin', bytes(40000, 3));
  let missing;
  do missing = crypto.randomBytes(16).toString('hex'); while ([A, S, B, T, F, G].includes(missing));
  ids = { root: spaces.private.root, troot: spaces.tenant.root, A, S, B, T, F, G, missing, Aup: A.toUpperCase(), A31: A.slice(0, 31) };
});

test('every malformed request gets its exact 4xx and changes nothing', async (t) => {
  const before = await snapshot();
  assert.equal(before.length, 8);
  for (const row of rows()) {
    for (const proto of row.only ? [row.only] : ['h2', 'h1']) {
      await t.test(`${row.name} [${proto}]`, async () => {
        const res = await send(row, proto === 'h1');
        assertEnvelope(res, row, proto);
        if (row.check) row.check(res);
      });
    }
  }

  // Requests Node's clients cannot make, on a raw HTTP/1.1 connection.
  await t.test('upload without body and without Content-Length [h1 raw] → 411', async () => {
    const res = await rawH1(rawHead('POST', fill('/api/v1/files?parent={A}&name=empty.txt')));
    assert.equal(res.status, 411, res.body.toString());
    assert.equal(JSON.parse(res.body.toString()).error, 'length_required');
  });
  await t.test('upload without body, curl -X POST [h1] → 411', async () => {
    const r = curl(['--http1.1', '-X', 'POST', '-H', `Authorization: Bearer ${token}`, '-w', '\n%{http_code}',
      `${server.url}${fill('/api/v1/files?parent={A}&name=empty.txt')}`]);
    const out = r.stdout.toString().split('\n');
    assert.equal(out.pop(), '411');
    assert.equal(JSON.parse(out.join('\n')).error, 'length_required');
  });
  await t.test('upload without body, curl -X POST [h2] → 411', async () => {
    const r = curl(['--http2', '-X', 'POST', '-H', `Authorization: Bearer ${token}`, '-w', '\n%{http_code}',
      `${server.url}${fill('/api/v1/files?parent={A}&name=empty.txt')}`]);
    const out = r.stdout.toString().split('\n');
    assert.equal(out.pop(), '411');
    assert.equal(JSON.parse(out.join('\n')).error, 'length_required');
  });
  await t.test('upload over max_request_body_bytes [h1] → 413 before the body is sent', async () => {
    const size = MAX_BODY + 1;
    const res = await rawH1(rawHead('POST', fill('/api/v1/files?parent={A}&name=big.bin'), [`Content-Length: ${size}`]),
      { body: bytes(size, 9), holdBody: true });
    assert.equal(res.status, 413);
    assert.deepEqual(res.headers['content-type'], ['application/json']);
    assert.equal(JSON.parse(res.body.toString()).error, 'payload_too_large');
  });
  await t.test('upload over max_request_body_bytes, curl with Expect: 100-continue [h1] → 413', async () => {
    const f = path.join(server.dir, 'big.bin');
    fs.writeFileSync(f, bytes(MAX_BODY + 100, 4));
    const r = curl(['--http1.1', '-H', 'Expect: 100-continue', '-H', `Authorization: Bearer ${token}`, '--data-binary', `@${f}`,
      '-w', '\n%{http_code}', `${server.url}${fill('/api/v1/files?parent={A}&name=big.bin')}`]);
    const out = r.stdout.toString().split('\n');
    assert.equal(out.pop(), '413', r.stderr);
    assert.equal(JSON.parse(out.join('\n')).error, 'payload_too_large');
  });
  await t.test('upload over max_request_body_bytes [h2] → 413 or REFUSED_STREAM (API.md), nothing stored', async () => {
    try {
      const r = await server.request('POST', fill('/api/v1/files?parent={A}&name=big.bin'), { token, body: bytes(MAX_BODY + 1, 5), newSession: true });
      assert.equal(r.status, 413);
      assert.equal(r.json().error, 'payload_too_large');
    } catch (e) {
      assert.ok(e.rstCode === 7 || /NGHTTP2_REFUSED_STREAM/.test(e.message), `unexpected transport error: ${e.message}`);
    }
  });
  await t.test('JSON over max_request_body_bytes [h1] → 413', async () => {
    const body = Buffer.from(JSON.stringify({ parent: ids.A, name: 'x', pad: 'p'.repeat(65 * 1024) }));
    const res = await rawH1(rawHead('POST', '/api/v1/folders', ['Content-Type: application/json', `Content-Length: ${body.length}`]),
      { body, holdBody: true });
    assert.equal(res.status, 413);
    assert.equal(JSON.parse(res.body.toString()).error, 'payload_too_large');
  });
  await t.test('HEAD on an error path sends no body [h1 raw]', async () => {
    for (const p of ['/api/v1/nodes/{missing}', '/api/v1/files/{A}/content', '/api/v1/nope', '/api/v1/nodes/{A}/children?limit=0']) {
      const res = await rawH1(rawHead('HEAD', fill(p)));
      assert.ok(res.status >= 400, `${p}: ${res.status}`);
      assert.equal(res.body.length, 0, `${p}: HEAD got ${res.body.length} body bytes: ${JSON.stringify(res.body.toString())}`);
    }
  });
  await t.test('a raw non-UTF-8 byte in the request path → 4xx, server fine', async () => {
    const head = Buffer.concat([Buffer.from('GET /api/v1/nodes/'), Buffer.from([0xff, 0xfe]), Buffer.from(` HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`)]);
    const res = await rawH1(head);
    assert.ok(res.status === 400 || res.status === 404, `status ${res.status}`);
  });

  const afterSnap = await snapshot();
  assert.deepEqual(afterSnap, before, 'the bad requests changed the tree');
  const h = await server.request('GET', '/healthz');
  assert.equal(h.status, 200);
});

test('an oversized HTTP/1.1 upload sent at once gets a 413 or a reset, and nothing is stored', async () => {
  // libh2o 2.2.5 answers 413 as soon as it reads Content-Length and closes without draining the rest
  // of the body (no lingering close, RFC 9112 §9.6), so a client still sending may see a reset
  // instead of the 413 — a documented limitation (docs/API.md). Clients that send
  // Expect: 100-continue always get the 413 (test above). What must hold: no other answer, nothing
  // stored, the server unharmed.
  const before = await snapshot();
  const f = path.join(server.dir, 'big-at-once.bin');
  fs.writeFileSync(f, bytes(1 << 20, 6));
  const outcomes = {};
  for (let i = 0; i < 20; i++) {
    const r = curl(['--http1.1', '-H', 'Expect:', '-H', `Authorization: Bearer ${token}`, '--data-binary', `@${f}`,
      '-o', '/dev/null', '-w', '%{http_code}', `${server.url}${fill('/api/v1/files?parent={A}&name=big.bin')}`]);
    const k = `HTTP ${r.stdout.toString()}, curl exit ${r.status}`;
    outcomes[k] = (outcomes[k] || 0) + 1;
  }
  for (const k of Object.keys(outcomes))
    assert.ok(k === 'HTTP 413, curl exit 0' || k === 'HTTP 000, curl exit 55' || k === 'HTTP 000, curl exit 56', `unexpected outcome: ${k}`);
  assert.ok((outcomes['HTTP 413, curl exit 0'] || 0) > 0, 'at least some clients must see the 413');
  assert.deepEqual(await snapshot(), before);
});

test('names of exactly 255 bytes are accepted (and removed again)', async () => {
  const before = await snapshot();
  const created = [];
  const ascii = 'a'.repeat(255);
  const multi = `${'é'.repeat(127)}z`; // 255 bytes
  const emoji = `${'😀'.repeat(63)}xyz`; // 255 bytes
  const multi2 = `${'ü'.repeat(127)}y`;
  for (const [n, kind] of [[ascii, 'folder'], [multi, 'file'], [emoji, 'file'], [multi2, 'folder']]) {
    assert.equal(Buffer.byteLength(n), 255);
    const r = kind === 'folder' ? await admin.mkdir(ids.B, n) : await admin.upload(ids.B, n, 'x');
    assert.equal(r.status, 201, `${kind} with a 255-byte name: ${r.text()}`);
    assert.equal(r.json().name, n);
    const g = await admin.node(r.json().id);
    assert.equal(g.json().name, n);
    created.push(r.json().id);
  }
  for (const id of created) {
    const d = await admin.req('DELETE', `/api/v1/nodes/${id}?purge=true`);
    assert.equal(d.status, 204);
  }
  assert.deepEqual(await snapshot(), before);
});

test('after everything, the original files are byte-identical', async () => {
  assert.equal(Object.keys(files).length, 2);
  for (const [id, data] of Object.entries(files)) {
    for (const h1 of [false, true]) {
      const r = await admin.download(id, { h1 });
      assert.equal(r.status, 200);
      assert.ok(r.body.equals(data), `file ${id} (${h1 ? 'h1' : 'h2'})`);
      assert.equal(sha256(r.body), sha256(data));
    }
  }
});
