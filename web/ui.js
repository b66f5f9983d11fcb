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

// The preview of a file served inline by url (…/view), by type, with the watermark over it.
// Types the server never shows inline answer 415; the caller gets a message instead.
export async function preview(url, node, wm) {
  const mime = node.mime || '';
  let content;
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
