// pixels.mjs: the page images the server sent, decoded and looked at (pages-i18n.test.mjs,
// pages-office.test.mjs). WebP is decoded by dwebp (package webp) into a PPM, read here as
// luminance; the checks are plain pixel arithmetic:
// - ink: pixels darker than a threshold (body text is near black, line numbers mid grey, the
//   watermark light grey: a threshold picks one of them);
// - bands and segments: the rows with ink (lines of text), and in a band the runs of columns with
//   ink (glyphs, or parts of a glyph);
// - boxes: a segment whose ink is a hollow rectangle. A character that no installed font has is
//   drawn by Pango as such a box (with its code in hex inside), and by LibreOffice as the fallback
//   font's .notdef box: the tofu that a CJK font makes go away. The strings the tests draw are
//   chosen without a character that is itself a closed rectangle (口, 日, 田, 目, 回, ...);
// - unrotate: the watermark is drawn at 30° up to the right; turned back, its lines are
//   horizontal and the same checks apply.
import { execFileSync } from 'node:child_process';

/** Decodes a WebP with dwebp: {w, h, lum} (lum: one byte per pixel, Rec. 601 luma). */
export function decodeWebp(buf) {
  const ppm = execFileSync('dwebp', ['-quiet', '-ppm', '-o', '-', '--', '-'], { input: buf, maxBuffer: 1 << 28 });
  // "P6" w h maxval, each followed by one whitespace byte.
  let off = 0;
  const tok = [];
  while (tok.length < 4) {
    while (/\s/.test(String.fromCharCode(ppm[off]))) off++;
    let s = '';
    while (!/\s/.test(String.fromCharCode(ppm[off]))) s += String.fromCharCode(ppm[off++]);
    tok.push(s);
  }
  off++;
  if (tok[0] !== 'P6' || tok[3] !== '255') throw new Error(`dwebp wrote no 8-bit PPM: ${tok.join(' ')}`);
  const w = Number(tok[1]), h = Number(tok[2]);
  if (ppm.length !== off + w * h * 3) throw new Error(`PPM of ${ppm.length} bytes for ${w}x${h}`);
  const lum = new Uint8Array(w * h);
  for (let i = 0; i < w * h; i++) {
    const o = off + i * 3;
    lum[i] = Math.round(0.299 * ppm[o] + 0.587 * ppm[o + 1] + 0.114 * ppm[o + 2]);
  }
  return { w, h, lum };
}

/** The ink mask of img: 1 where the luminance is below thr. */
export function ink(img, thr) {
  const m = new Uint8Array(img.w * img.h);
  for (let i = 0; i < m.length; i++) m[i] = img.lum[i] < thr ? 1 : 0;
  return { w: img.w, h: img.h, m };
}

/** The bounding box of the ink in rect r ({x0, y0, x1, y1}, exclusive ends; default all): {x0, y0, x1, y1, count}, or null. */
export function bbox(mask, r = { x0: 0, y0: 0, x1: mask.w, y1: mask.h }) {
  let x0 = Infinity, y0 = Infinity, x1 = -1, y1 = -1, count = 0;
  for (let y = r.y0; y < r.y1; y++) {
    for (let x = r.x0; x < r.x1; x++) {
      if (!mask.m[y * mask.w + x]) continue;
      count++;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
    }
  }
  return count === 0 ? null : { x0, y0, x1: x1 + 1, y1: y1 + 1, count };
}

/** Runs of indices in [from, to) where has(i) holds, as [start, end) pairs; gaps up to `bridge` are joined. */
function runs(from, to, has, bridge = 0) {
  const out = [];
  for (let i = from; i < to; i++) {
    if (!has(i)) continue;
    const last = out[out.length - 1];
    if (last && i - last[1] <= bridge) last[1] = i + 1;
    else out.push([i, i + 1]);
  }
  return out;
}

/** The lines of text in rect r: runs of rows holding at least minInk ink pixels. */
export function bands(mask, r = { x0: 0, y0: 0, x1: mask.w, y1: mask.h }, minInk = 1) {
  return runs(r.y0, r.y1, (y) => {
    let n = 0;
    for (let x = r.x0; x < r.x1; x++) n += mask.m[y * mask.w + x];
    return n >= minInk;
  }).map(([y0, y1]) => ({ x0: r.x0, y0, x1: r.x1, y1 }));
}

/** The segments of a band: runs of columns with ink (a glyph, or a part of one), each with its ink's bounding box. */
export function segments(mask, band) {
  return runs(band.x0, band.x1, (x) => {
    for (let y = band.y0; y < band.y1; y++) if (mask.m[y * mask.w + x]) return true;
    return false;
  }).map(([x0, x1]) => bbox(mask, { x0, y0: band.y0, x1, y1: band.y1 })).filter(Boolean);
}

/**
 * Whether segment s (a bounding box) is a hollow rectangle: at least minSide pixels each way, ink
 * along at least 85 % of each of its four sides (within a few pixels of the edge: antialiasing and
 * lossy compression blur a thin line), and an interior mostly without ink (a filled block, such as a
 * hyphen, is no box).
 */
export function isBox(mask, s, minSide) {
  const W = s.x1 - s.x0, H = s.y1 - s.y0;
  if (W < minSide || H < minSide) return false;
  const t = Math.max(2, Math.round(Math.min(W, H) * 0.1));
  const at = (x, y) => mask.m[y * mask.w + x] === 1;
  const side = (n, hit) => {
    let k = 0;
    for (let i = 0; i < n; i++) if (hit(i)) k++;
    return k >= 0.85 * n;
  };
  const near = (x, y, dx, dy) => {
    for (let d = 0; d < t; d++) if (at(x + d * dx, y + d * dy)) return true;
    return false;
  };
  const left = side(H, (i) => near(s.x0, s.y0 + i, 1, 0));
  const right = side(H, (i) => near(s.x1 - 1, s.y0 + i, -1, 0));
  const top = side(W, (i) => near(s.x0 + i, s.y0, 0, 1));
  const bottom = side(W, (i) => near(s.x0 + i, s.y1 - 1, 0, -1));
  if (!(left && right && top && bottom)) return false;
  let inside = 0, all = 0;
  for (let y = s.y0 + 2 * t; y < s.y1 - 2 * t; y++) {
    for (let x = s.x0 + 2 * t; x < s.x1 - 2 * t; x++) { all++; inside += mask.m[y * mask.w + x]; }
  }
  return all > 0 && inside < 0.6 * all;
}

/**
 * img turned back by the watermark's angle (it is drawn rotated by -30° about the image's centre,
 * in cairo's y-down coordinates): a square image of the diagonal's size, white outside the source,
 * nearest-neighbour samples.
 */
export function unrotate(img, degrees = -30) {
  const th = (degrees * Math.PI) / 180, c = Math.cos(th), s = Math.sin(th);
  const D = Math.ceil(Math.hypot(img.w, img.h));
  const lum = new Uint8Array(D * D).fill(255);
  const cx = img.w / 2, cy = img.h / 2;
  for (let v = 0; v < D; v++) {
    for (let u = 0; u < D; u++) {
      const du = u - D / 2, dv = v - D / 2;
      const x = Math.round(cx + du * c - dv * s), y = Math.round(cy + du * s + dv * c);
      if (x >= 0 && y >= 0 && x < img.w && y < img.h) lum[v * D + u] = img.lum[y * img.w + x];
    }
  }
  return { w: D, h: D, lum };
}

/** Pixels that differ between two masks of the same size, inside rect r. */
export function maskDiff(a, b, r) {
  let n = 0;
  for (let y = r.y0; y < r.y1; y++) for (let x = r.x0; x < r.x1; x++) n += a.m[y * a.w + x] !== b.m[y * b.w + x] ? 1 : 0;
  return n;
}

/** The union of two boxes. */
export function union(a, b) {
  return { x0: Math.min(a.x0, b.x0), y0: Math.min(a.y0, b.y0), x1: Math.max(a.x1, b.x1), y1: Math.max(a.y1, b.y1) };
}

/**
 * The glyph analysis of the text in rect r of mask: its bands, every segment, and the segments
 * that are boxes (tofu) at least minSide pixels each way.
 */
export function glyphs(mask, r, minSide, minInk = 1) {
  const bs = bands(mask, r, minInk);
  const segs = bs.flatMap((b) => segments(mask, b));
  return { bands: bs, segs, boxes: segs.filter((s) => isBox(mask, s, minSide)) };
}
