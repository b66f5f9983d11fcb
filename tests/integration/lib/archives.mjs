// archives.mjs: hostile and awkward files for the scanner tests, built at test time.
//
// zip and 7z archives come from the real tools (zip, 7z: scripts/deps.sh test); the formats no free
// Debian tool writes (RAR) or that need exact control (zip bombs) are assembled here, byte by byte,
// from their published layouts. Nothing is downloaded and no sample is checked in.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';

/** zip -9 (deflate) of files {name: Buffer} made in dir; extra args (e.g. ['-P', 'pw']) before the archive. */
export function zipOf(dir, files, extra = []) {
  const work = fs.mkdtempSync(path.join(dir, 'zip-'));
  for (const [n, b] of Object.entries(files)) fs.writeFileSync(path.join(work, n), b);
  execFileSync('zip', ['-q', '-9', '-X', ...extra, 'out.zip', ...Object.keys(files)], { cwd: work });
  const out = fs.readFileSync(path.join(work, 'out.zip'));
  fs.rmSync(work, { recursive: true, force: true });
  return out;
}

/** 7z archive of files {name: Buffer}; extra args (e.g. ['-ppw', '-mhe=on']). */
export function sevenZipOf(dir, files, extra = []) {
  const work = fs.mkdtempSync(path.join(dir, '7z-'));
  for (const [n, b] of Object.entries(files)) fs.writeFileSync(path.join(work, n), b);
  execFileSync('7z', ['a', '-bd', '-y', '-mx=9', ...extra, 'out.7z', ...Object.keys(files)], { cwd: work, stdio: 'ignore' });
  const out = fs.readFileSync(path.join(work, 'out.7z'));
  fs.rmSync(work, { recursive: true, force: true });
  return out;
}

const crc = (b) => zlib.crc32(b) >>> 0;

// RAR 1.5-4.x: marker block, archive header, one file header (method 0x30: stored), end block.
// Each header starts with the low 16 bits of the CRC-32 of the rest of the header.
function hdr(type, flags, rest) { // rest: the bytes after HEAD_SIZE
  const size = 7 + rest.length;
  const b = Buffer.alloc(size);
  b.writeUInt8(type, 2); b.writeUInt16LE(flags, 3); b.writeUInt16LE(size, 5); rest.copy(b, 7);
  b.writeUInt16LE(crc(b.subarray(2)) & 0xffff, 0);
  return b;
}
/** A RAR 4 archive holding one stored file. */
export function rar4(name, data) {
  const marker = Buffer.from([0x52, 0x61, 0x72, 0x21, 0x1a, 0x07, 0x00]);
  const main = hdr(0x73, 0, Buffer.alloc(6));
  const n = Buffer.from(name);
  const f = Buffer.alloc(25 + n.length);
  f.writeUInt32LE(data.length, 0); f.writeUInt32LE(data.length, 4); f.writeUInt8(2, 8);
  f.writeUInt32LE(crc(data), 9); f.writeUInt32LE(0x5a000000, 13); f.writeUInt8(20, 17); f.writeUInt8(0x30, 18);
  f.writeUInt16LE(n.length, 19); f.writeUInt32LE(0x20, 21); n.copy(f, 25);
  const file = hdr(0x74, 0x8000, f);
  const end = hdr(0x7b, 0x4000, Buffer.alloc(0));
  return Buffer.concat([marker, main, file, data, end]);
}

// A fully overlapping zip bomb (D. Fifield, "A better zip bomb", 2019): every file's deflate stream
// quotes the local headers of the files after it and ends in one shared kernel of zeros.
// k files of (about) kernelSize bytes each from one copy of the compressed kernel.
export function fifieldBomb(k, kernelSize) {
  const kernel = zlib.deflateRawSync(Buffer.alloc(kernelSize), { level: 9 });
  const zeros = Buffer.alloc(kernelSize);
  const zerosCrcFrom = (init) => zlib.crc32(zeros, init) >>> 0;
  const headers = new Array(k), crcs = new Array(k), usizes = new Array(k), csizes = new Array(k), names = [];
  let tail = Buffer.alloc(0); // the headers that follow, as quoted content (uncompressed prefix)
  for (let i = k - 1; i >= 0; i--) {
    const name = Buffer.from(`f${String(i).padStart(4, '0')}`);
    names[i] = name;
    // content of file i = headers i+1..k-1 (each quoted) + zeros
    const prefix = tail;
    usizes[i] = prefix.length + kernelSize;
    crcs[i] = zerosCrcFrom(zlib.crc32(prefix) >>> 0);
    // compressed: for each following header, a 5-byte stored-block header then the header bytes; then the kernel
    let quoted = 0;
    for (let j = i + 1; j < k; j++) quoted += 5 + headers[j].length;
    csizes[i] = quoted + kernel.length;
    const h = Buffer.alloc(30 + name.length);
    h.writeUInt32LE(0x04034b50, 0); h.writeUInt16LE(20, 4); h.writeUInt16LE(0, 6); h.writeUInt16LE(8, 8);
    h.writeUInt32LE(0, 10); h.writeUInt32LE(crcs[i], 14); h.writeUInt32LE(csizes[i], 18); h.writeUInt32LE(usizes[i], 22);
    h.writeUInt16LE(name.length, 26); h.writeUInt16LE(0, 28); name.copy(h, 30);
    headers[i] = h;
    tail = Buffer.concat([h, tail]);
  }
  // layout: H0 Q(H1) H1 Q(H2) H2 ... H(k-1) kernel, where Q(x) is a non-final stored block header for x
  const parts = [], offsets = [];
  let off = 0;
  for (let i = 0; i < k; i++) {
    if (i > 0) {
      const q = Buffer.alloc(5);
      q.writeUInt8(0, 0); q.writeUInt16LE(headers[i].length, 1); q.writeUInt16LE(~headers[i].length & 0xffff, 3);
      parts.push(q); off += 5;
    }
    offsets[i] = off; parts.push(headers[i]); off += headers[i].length;
  }
  parts.push(kernel); off += kernel.length;
  const cds = [];
  for (let i = 0; i < k; i++) {
    const cd = Buffer.alloc(46 + names[i].length);
    cd.writeUInt32LE(0x02014b50, 0); cd.writeUInt16LE(20, 4); cd.writeUInt16LE(20, 6); cd.writeUInt16LE(0, 8); cd.writeUInt16LE(8, 10);
    cd.writeUInt32LE(0, 12); cd.writeUInt32LE(crcs[i], 16); cd.writeUInt32LE(csizes[i], 20); cd.writeUInt32LE(usizes[i], 24);
    cd.writeUInt16LE(names[i].length, 28); cd.writeUInt32LE(offsets[i], 42); names[i].copy(cd, 46);
    cds.push(cd);
  }
  const cdBuf = Buffer.concat(cds);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0); eocd.writeUInt16LE(k, 8); eocd.writeUInt16LE(k, 10);
  eocd.writeUInt32LE(cdBuf.length, 12); eocd.writeUInt32LE(off, 16);
  return Buffer.concat([...parts, cdBuf, eocd]);
}

// Many distinct members that each expand to memberSize zeros (behind 16 unique bytes): no member
// over the limits, no overlap, no cache hits: only the scan budget stops it.
// Each member is a 16-byte stored block followed by a shared deflate kernel of zeros.
export function distinctBomb(n, memberSize) {
  const kernel = zlib.deflateRawSync(Buffer.alloc(memberSize - 16), { level: 9 });
  const zeros = Buffer.alloc(memberSize - 16);
  const parts = [], cds = [];
  let off = 0;
  for (let i = 0; i < n; i++) {
    const uniq = Buffer.from(`member ${String(i).padStart(8, '0')}\n`.padEnd(16, '-'));
    const c = zlib.crc32(zeros, zlib.crc32(uniq)) >>> 0;
    const stored = Buffer.alloc(5); stored.writeUInt8(0, 0); stored.writeUInt16LE(16, 1); stored.writeUInt16LE(~16 & 0xffff, 3);
    const csize = 5 + 16 + kernel.length;
    const name = Buffer.from(`m${String(i).padStart(5, '0')}.bin`);
    const h = Buffer.alloc(30 + name.length);
    h.writeUInt32LE(0x04034b50, 0); h.writeUInt16LE(20, 4); h.writeUInt16LE(8, 8);
    h.writeUInt32LE(c, 14); h.writeUInt32LE(csize, 18); h.writeUInt32LE(memberSize, 22); h.writeUInt16LE(name.length, 26); name.copy(h, 30);
    const cd = Buffer.alloc(46 + name.length);
    cd.writeUInt32LE(0x02014b50, 0); cd.writeUInt16LE(20, 4); cd.writeUInt16LE(20, 6); cd.writeUInt16LE(8, 10);
    cd.writeUInt32LE(c, 16); cd.writeUInt32LE(csize, 20); cd.writeUInt32LE(memberSize, 24); cd.writeUInt16LE(name.length, 28);
    cd.writeUInt32LE(off, 42); name.copy(cd, 46);
    parts.push(h, stored, uniq, kernel); off += h.length + csize; cds.push(cd);
  }
  const cdBuf = Buffer.concat(cds);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0); eocd.writeUInt16LE(n, 8); eocd.writeUInt16LE(n, 10);
  eocd.writeUInt32LE(cdBuf.length, 12); eocd.writeUInt32LE(off, 16);
  return Buffer.concat([...parts, cdBuf, eocd]);
}
