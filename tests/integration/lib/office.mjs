// office.mjs: OpenDocument files written at test time (no sample files in the tree), for the pages
// suites (pages-office.test.mjs, pages-i18n.test.mjs). An ODF file is a ZIP whose first entry is
// `mimetype`, stored (libmagic, and so the scanner's type detection, reads it at offset 38), then
// content.xml and the manifest; `zip` (package zip, already a test command) packs it. LibreOffice
// opens these without a styles.xml (its defaults apply). The page count of each is fixed by its
// construction: a paragraph that breaks before it starts a page, every sheet prints on pages of its
// own, a slide is a page.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const NS = [
  'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"',
  'xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0"',
  'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"',
  'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"',
  'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"',
  'xmlns:fo="urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0"',
  'xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0"',
  'xmlns:presentation="urn:oasis:names:tc:opendocument:xmlns:presentation:1.0"',
].join(' ');

export const MIME = {
  odt: 'application/vnd.oasis.opendocument.text',
  ods: 'application/vnd.oasis.opendocument.spreadsheet',
  odp: 'application/vnd.oasis.opendocument.presentation',
};

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function content(styles, body) {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<office:document-content ${NS} office:version="1.2">` +
    `<office:automatic-styles>${styles}</office:automatic-styles><office:body>${body}</office:body></office:document-content>\n`;
}

/** Packs content.xml of the given kind (odt, ods, odp) in dir as name; returns the file's bytes. */
function pack(dir, name, kind, xml) {
  const work = fs.mkdtempSync(path.join(dir, `${kind}-`));
  fs.mkdirSync(path.join(work, 'META-INF'));
  fs.writeFileSync(path.join(work, 'mimetype'), MIME[kind]);
  fs.writeFileSync(path.join(work, 'content.xml'), xml);
  fs.writeFileSync(path.join(work, 'META-INF', 'manifest.xml'), '<?xml version="1.0" encoding="UTF-8"?>\n' +
    '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">' +
    `<manifest:file-entry manifest:full-path="/" manifest:media-type="${MIME[kind]}"/>` +
    '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>\n');
  const out = path.join(dir, name);
  fs.rmSync(out, { force: true });
  execFileSync('zip', ['-q', '-X', '-0', out, 'mimetype'], { cwd: work });
  execFileSync('zip', ['-q', '-X', '-r', out, 'content.xml', 'META-INF'], { cwd: work });
  fs.rmSync(work, { recursive: true, force: true });
  return fs.readFileSync(out);
}

/**
 * A text document: one page per entry of pages (each a list of paragraphs); a page's first
 * paragraph breaks before it. size: the font size in points (Western and Asian text alike); Asian
 * text is marked Chinese (China), as a Chinese author's word processor marks it.
 */
export function odt(dir, name, pages, size = 14) {
  const styles = `<style:style style:name="P" style:family="paragraph"><style:text-properties fo:font-size="${size}pt" ` +
    `style:font-size-asian="${size}pt" style:language-asian="zh" style:country-asian="CN"/></style:style>` +
    '<style:style style:name="B" style:family="paragraph" style:parent-style-name="P"><style:paragraph-properties fo:break-before="page"/>' +
    `<style:text-properties fo:font-size="${size}pt" style:font-size-asian="${size}pt"/></style:style>`;
  const body = pages.map((paras, i) => paras.map((p, k) => `<text:p text:style-name="${i > 0 && k === 0 ? 'B' : 'P'}">${esc(p)}</text:p>`).join('')).join('');
  return pack(dir, name, 'odt', content(styles, `<office:text>${body}</office:text>`));
}

/** A spreadsheet: one sheet per entry of sheets (each a list of rows, each a list of cells). */
export function ods(dir, name, sheets) {
  const cell = (v) => (typeof v === 'number'
    ? `<table:table-cell office:value-type="float" office:value="${v}"><text:p>${v}</text:p></table:table-cell>`
    : `<table:table-cell office:value-type="string"><text:p>${esc(v)}</text:p></table:table-cell>`);
  const body = sheets.map((rows, i) => `<table:table table:name="Sheet${i + 1}">` +
    rows.map((r) => `<table:table-row>${r.map(cell).join('')}</table:table-row>`).join('') + '</table:table>').join('');
  return pack(dir, name, 'ods', content('', `<office:spreadsheet>${body}</office:spreadsheet>`));
}

/** A presentation: one slide per entry of slides (each a list of text lines in one frame). */
export function odp(dir, name, slides) {
  const body = slides.map((lines, i) => `<draw:page draw:name="slide${i + 1}">` +
    '<draw:frame svg:x="2cm" svg:y="2cm" svg:width="22cm" svg:height="12cm"><draw:text-box>' +
    lines.map((l) => `<text:p>${esc(l)}</text:p>`).join('') + '</draw:text-box></draw:frame></draw:page>').join('');
  return pack(dir, name, 'odp', content('', `<office:presentation>${body}</office:presentation>`));
}

/**
 * LibreOffice, once for all: converts every file in srcs (names in dir) to ext in dir, in one
 * soffice run (each start costs seconds); returns {name: bytes} of the converted files.
 */
export function convertAll(dir, srcs, ext) {
  execFileSync('soffice', ['--headless', '--norestore', `-env:UserInstallation=file://${dir}/profile`, '--convert-to', ext,
    '--outdir', dir, ...srcs.map((s) => path.join(dir, s))], { stdio: 'ignore', timeout: 300000, env: { ...process.env, HOME: dir } });
  const out = {};
  for (const s of srcs) out[s] = fs.readFileSync(path.join(dir, s.replace(/\.[^.]+$/, `.${ext}`)));
  return out;
}

/** Pages in a PDF LibreOffice wrote (its page objects). */
export function pdfPageCount(pdf) {
  return (pdf.toString('latin1').match(/\/Type\s*\/Page[^s]/g) || []).length;
}
