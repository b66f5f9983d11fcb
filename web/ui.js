// ui.js: small DOM helpers shared by the pages: element building (text only, never HTML strings,
// so that names from the server can never become markup), formatting, the modal dialog, status
// messages, and the watermarked preview.

import { errorOf } from './api.js';

// el('button', {class: 'x', onclick: f, dataset: {id}}, 'text', child…)
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k === 'class') e.className = v;
    else if (k in e && typeof v !== 'string') e[k] = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) e.append(c);
  return e;
}

export const $ = (sel, root = document) => root.querySelector(sel);

export function formatSize(n) {
  if (n === null || n === undefined) return '';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function formatTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

// One polite live region per page for outcomes ("Uploaded report.pdf").
export function announce(text, kind = 'info') {
  const box = $('#status');
  if (!box) return;
  box.replaceChildren(el('p', { class: `note ${kind}` }, text));
}

// The modal dialog: one <dialog id="dialog"> per page, filled per use. Returns the dialog; close()
// empties it. Escape and the close button close it; focus returns to where it was.
export function openDialog(title, ...body) {
  const dlg = $('#dialog');
  const back = document.activeElement;
  const close = el('button', { type: 'button', class: 'icon', 'aria-label': 'Close', onclick: () => dlg.close() }, '×');
  dlg.replaceChildren(el('header', {}, el('h2', { id: 'dialog-title' }, title), close), ...body);
  dlg.setAttribute('aria-labelledby', 'dialog-title');
  dlg.addEventListener('close', () => { dlg.replaceChildren(); if (back && back.focus) back.focus(); }, { once: true });
  dlg.showModal();
  const first = dlg.querySelector('input, select, textarea, button:not(.icon)');
  if (first) first.focus();
  return dlg;
}

export function closeDialog() {
  const dlg = $('#dialog');
  if (dlg.open) dlg.close();
}

// The error line of a form or dialog: hidden until showAlert(box, text).
export function alertBox(attrs = {}) {
  return el('p', { class: 'note error', role: 'alert', hidden: true, ...attrs });
}

export function showAlert(box, text) {
  box.textContent = text;
  box.hidden = false;
}

// A labelled form field: field('Name', input) → <label>Name <input></label> stacked.
export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  return el('div', { class: 'field' }, el('label', { for: id }, label), control, hint ? el('small', {}, hint) : null);
}

// The watermark: the viewer's name, address and the time, tiled over the preview so that any
// screenshot or photo of the screen names who looked. Purely visual (the file's bytes are not
// changed); it makes leaks attributable, it does not make them impossible.
export function watermark(w) {
  const when = new Date(w.at || Date.now()).toISOString().replace('T', ' ').slice(0, 16) + ' UTC';
  const text = `${w.name} · ${w.ip} · ${when}`;
  const layer = el('div', { class: 'watermark', 'data-testid': 'watermark', 'aria-hidden': 'true' });
  for (let i = 0; i < 40; i++) layer.append(el('span', {}, text));
  layer.dataset.text = text;
  return layer;
}

// The page viewer (issue 20): the file as pages the server rendered and watermarked for this viewer
// (…/pages, …/pages/{n}?w=), never the original. Scroll through the pages; zoom picks the rendered
// width (480, 960, 1600); keys: ←/→ or PageUp/PageDown change page, +/- zoom, Home/End. No download
// or print control, and the images cannot be dragged out or opened from a context menu.
// Returns the viewer element, or null when the server has no pages for this file (unsupported).
export async function pageViewer(pagesUrl, node) {
  let sum;
  for (let i = 0; ; i++) {
    const res = await fetch(pagesUrl, { credentials: 'same-origin', headers: { accept: 'application/json' } });
    if (!res.ok) {
      const err = await errorOf(res);
      throw Object.assign(new Error(err.serverMessage || `The pages are not available (${res.status}).`), { status: res.status });
    }
    sum = await res.json();
    if (sum.status !== 'pending') break;
    if (i > 600) throw new Error('The pages are still being prepared. Try again in a moment.');
    await new Promise((r) => setTimeout(r, 500));
  }
  if (sum.status !== 'ready') return null;
  const widths = sum.widths;
  let zoom = Math.max(0, widths.indexOf(960));
  let current = 1;
  const count = el('span', { 'data-testid': 'page-count', class: 'page-count', 'aria-live': 'polite' });
  const pages = el('div', { class: 'pages', 'data-testid': 'pages', tabindex: '0', role: 'document',
    'aria-label': `${node.name}: ${sum.pages} page${sum.pages === 1 ? '' : 's'}` });
  const imgs = [];
  const src = (n) => `${pagesUrl}/${n}?w=${widths[zoom]}`;
  for (let n = 1; n <= sum.pages; n++) {
    const img = el('img', { class: 'page', alt: `Page ${n} of ${node.name}`, loading: n <= 2 ? 'eager' : 'lazy',
      draggable: 'false', 'data-testid': 'page-image', dataset: { page: String(n) }, src: src(n) });
    img.addEventListener('contextmenu', (e) => e.preventDefault());
    // A page the server could not give now (503 render_busy, a render still running) is asked for
    // again a few times, a little later each time, instead of staying a broken image.
    let tries = 0;
    img.addEventListener('load', () => { tries = 0; });
    img.addEventListener('error', () => {
      if (tries >= 6) return;
      tries += 1;
      const want = img.src;
      setTimeout(() => { if (img.src === want) { img.removeAttribute('src'); img.src = want; } }, 1000 * tries);
    });
    imgs.push(img);
    pages.append(img);
  }
  const label = () => { count.textContent = `Page ${current} of ${sum.pages} · ${widths[zoom]} px`; };
  // A jump scrolls the box; the scroll it causes must not recompute the page from the layout, which
  // is not final while lazy images below have not loaded (they are all at the same offset then).
  let jumping = false;
  const go = (n) => {
    current = Math.min(sum.pages, Math.max(1, n));
    const top = Math.max(0, imgs[current - 1].offsetTop - pages.offsetTop - 12); // this box only, not the page
    const reach = Math.min(top, Math.max(0, pages.scrollHeight - pages.clientHeight)); // where it can go
    if (Math.abs(reach - pages.scrollTop) >= 1) jumping = true; // only then does a scroll event follow
    pages.scrollTop = top;
    label();
  };
  const setZoom = (z) => {
    zoom = Math.min(widths.length - 1, Math.max(0, z));
    pages.dataset.zoom = String(widths[zoom]);
    imgs.forEach((img, i) => { img.src = src(i + 1); });
    label();
  };
  pages.addEventListener('scroll', () => {
    if (jumping) { jumping = false; return; }
    const top = pages.scrollTop;
    let n = 1;
    // Pages not loaded yet have no height and share one offset: the first of them is the page there.
    imgs.forEach((img, i) => {
      if (img.offsetTop - pages.offsetTop <= top + 10 && (i === 0 || img.offsetTop !== imgs[i - 1].offsetTop)) n = i + 1;
    });
    if (n !== current) { current = n; label(); }
  });
  pages.addEventListener('keydown', (e) => {
    const k = { ArrowRight: 1, PageDown: 1, ArrowLeft: -1, PageUp: -1 }[e.key];
    if (k) go(current + k);
    else if (e.key === 'Home') go(1);
    else if (e.key === 'End') go(sum.pages);
    else if (e.key === '+' || e.key === '=') setZoom(zoom + 1);
    else if (e.key === '-') setZoom(zoom - 1);
    else return;
    e.preventDefault();
  });
  const btn = (text, title, fn, id) => el('button', { type: 'button', class: 'small', title, 'aria-label': title, 'data-testid': id, onclick: fn }, text);
  const bar = el('div', { class: 'page-bar', role: 'toolbar', 'aria-label': 'Pages' },
    btn('‹', 'Previous page', () => go(current - 1), 'page-prev'), count, btn('›', 'Next page', () => go(current + 1), 'page-next'),
    btn('−', 'Zoom out', () => setZoom(zoom - 1), 'page-zoom-out'), btn('+', 'Zoom in', () => setZoom(zoom + 1), 'page-zoom-in'));
  pages.dataset.zoom = String(widths[zoom]);
  label();
  return el('div', { class: 'page-viewer', 'data-testid': 'page-viewer' }, bar, pages);
}

// The preview of a file: the page viewer (pagesUrl) for everything the server renders; otherwise,
// for viewers who may view the original inline (inline: true), media by url (…/view). View-only
// viewers never get the original: a file without pages has no preview for them.
export async function preview(url, node, wm, pagesUrl, inline = true) {
  const mime = node.mime || '';
  let content;
  if (pagesUrl) {
    let v;
    try {
      v = await pageViewer(pagesUrl, node);
    } catch (e) {
      // Rendering is off or down (503): a viewer who may download falls back to the inline original;
      // a view-only viewer gets the message, never the original.
      if (!inline || e.status !== 503) throw e;
      v = undefined;
    }
    // The watermark is in the pixels the server sent (per viewer, per request): no overlay needed.
    if (v) return el('div', { class: 'preview preview-pages', 'data-testid': 'preview', dataset: { watermark: `${wm.name} · ${wm.ip}` } }, v);
    if (v === undefined) pagesUrl = null;
    else if (!inline || !(mime.startsWith('video/') || mime.startsWith('audio/') || mime.startsWith('image/'))) {
      return el('p', { class: 'note', 'data-testid': 'no-preview' }, inline
        ? 'This type of file has no preview. Download it to open it.'
        : 'This file has no preview, and this access is view only.');
    }
  }
  if (mime === 'application/pdf' && pagesUrl) {
    return el('p', { class: 'note', 'data-testid': 'no-preview' }, 'This PDF has no preview. Download it to open it.');
  }
  if (mime.startsWith('image/')) {
    content = el('img', { src: url, alt: `Preview of ${node.name}`, 'data-testid': 'preview-image' });
  } else if (mime.startsWith('video/')) {
    content = el('video', { src: url, controls: true, 'data-testid': 'preview-media' });
  } else if (mime.startsWith('audio/')) {
    content = el('audio', { src: url, controls: true, 'data-testid': 'preview-media' });
  } else if (mime === 'application/pdf') {
    content = el('iframe', { src: url, title: `Preview of ${node.name}`, 'data-testid': 'preview-frame' });
  } else {
    const res = await fetch(url, { credentials: 'same-origin' });
    if (res.status === 415) return el('p', { class: 'note' }, 'This type of file cannot be previewed. Download it to open it.');
    if (!res.ok) {
      const err = await errorOf(res);
      return el('p', { class: 'note error' }, err.serverMessage || `The preview is not available (${res.status}).`);
    }
    const text = await res.text();
    content = el('pre', { class: 'text-preview', 'data-testid': 'preview-text' }, text);
  }
  return el('div', { class: 'preview', 'data-testid': 'preview' }, content, watermark(wm));
}
