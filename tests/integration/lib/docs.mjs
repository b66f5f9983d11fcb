// Test documents written by hand, so that the page tests need no files: PDFs of text pages and RGB
// PNGs. One copy for pages, pages-idle, pages-i18n and web-pages.
import zlib from 'node:zlib';

/**
 * A PDF of n pages (Letter, Helvetica as F1); page(i, n) returns page i's content stream, PDF text
 * operators such as `BT /F1 28 Tf 72 720 Td (text) Tj ET`.
 */
export function makePdf(n, page) {
  const objs = [];
  const kids = [];
  objs[1] = '<< /Type /Catalog /Pages 2 0 R >>';
  objs[3] = '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>';
  let next = 4;
  for (let i = 1; i <= n; i++) {
    const content = page(i, n);
    const c = next++, p = next++;
    objs[c] = `<< /Length ${Buffer.byteLength(content)} >>\nstream\n${content}\nendstream`;
    objs[p] = `<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents ${c} 0 R /Resources << /Font << /F1 3 0 R >> >> >>`;
    kids.push(`${p} 0 R`);
  }
  objs[2] = `<< /Type /Pages /Kids [${kids.join(' ')}] /Count ${n} >>`;
  let out = '%PDF-1.4\n%\xe2\xe3\xcf\xd3\n';
  const offs = [];
  for (let i = 1; i < objs.length; i++) {
    offs[i] = Buffer.byteLength(out, 'latin1');
    out += `${i} 0 obj\n${objs[i]}\nendobj\n`;
  }
  const xref = Buffer.byteLength(out, 'latin1');
  out += `xref\n0 ${objs.length}\n0000000000 65535 f \n`;
  for (let i = 1; i < objs.length; i++) out += `${String(offs[i]).padStart(10, '0')} 00000 n \n`;
  out += `trailer\n<< /Size ${objs.length} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, 'latin1');
}

export function crc32(b) {
  let c = 0xffffffff;
  for (const v of b) {
    c ^= v;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

export function pngChunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/**
 * A w×h RGB PNG. Its pixels are a pattern (so the image has edges to render), or every byte `fill`
 * when given (255: a white page). `rows` < h writes only that many rows of pixel data (a truncated
 * image: the IDAT is short of what the header declares).
 */
export function makePng(w, h, { rows = h, fill } = {}) {
  const raw = Buffer.alloc((w * 3 + 1) * rows, fill ?? 0);
  for (let y = 0; y < rows; y++) {
    raw[y * (w * 3 + 1)] = 0; // filter type: none
    if (fill !== undefined) continue;
    for (let x = 0; x < w; x++) {
      const o = y * (w * 3 + 1) + 1 + x * 3;
      raw[o] = (x * 7 + y) & 255;
      raw[o + 1] = (y * 5) & 255;
      raw[o + 2] = (x ^ y) & 255;
    }
  }
  const ih = Buffer.alloc(13);
  ih.writeUInt32BE(w, 0);
  ih.writeUInt32BE(h, 4);
  ih[8] = 8;
  ih[9] = 2;
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), pngChunk('IHDR', ih),
    pngChunk('IDAT', zlib.deflateSync(raw)), pngChunk('IEND', Buffer.alloc(0))]);
}
