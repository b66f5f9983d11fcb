// tus.js: a tus 1.0.0 client for the browser (creation, core, termination), small enough to read
// in one sitting. XMLHttpRequest rather than fetch, because only XHR reports upload progress.
//
// An upload remembers its URL in localStorage under a fingerprint of (folder, name, size,
// modification time), so that picking the same file again after a reload, a crash or a lost
// connection resumes where the server stands (HEAD) instead of starting over. The server keeps
// unfinished uploads encrypted and drops them after its expiry (24 h by default); a 404 or 410 on
// resume starts a new upload.

import { authHeaders } from './api.js';

const ENDPOINT = '/api/v1/uploads';
const CHUNK = 8 * 1024 * 1024;
const RETRY_DELAYS_MS = [1000, 3000, 5000, 10000, 20000];

// Errors after which retrying the same bytes cannot help.
const FINAL = new Set([400, 403, 404, 409, 410, 412, 413, 415, 422, 429, 460]);

function b64(text) {
  const bytes = new TextEncoder().encode(text);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

function parseError(status, text) {
  let body = {};
  try { body = JSON.parse(text); } catch { /* not JSON */ }
  const err = new Error(body.message || `The server answered ${status}.`);
  err.status = status;
  err.code = body.error || String(status);
  return err;
}

export class TusUpload {
  // file: a File; parent: the folder id; events: {progress(sent, total), state(state, detail)}.
  constructor(file, parent, events = {}) {
    this.file = file;
    this.parent = parent;
    this.events = events;
    this.url = null;
    this.offset = 0;
    this.xhr = null;
    this.state = 'queued';
    this.attempt = 0;
    this.nodeId = null;
    this.fingerprint = `coffer.tus:${parent}:${file.name}:${file.size}:${file.lastModified}`;
  }

  set(state, detail) {
    this.state = state;
    if (this.events.state) this.events.state(state, detail);
  }

  request(method, url, headers, body, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      this.xhr = xhr;
      xhr.open(method, url);
      xhr.withCredentials = true;
      xhr.setRequestHeader('Tus-Resumable', '1.0.0');
      for (const [k, v] of Object.entries({ ...authHeaders(method), ...headers })) xhr.setRequestHeader(k, v);
      if (onProgress) xhr.upload.onprogress = (e) => onProgress(e.loaded);
      xhr.onload = () => { this.xhr = null; resolve(xhr); };
      xhr.onerror = () => { this.xhr = null; reject(Object.assign(new Error('The connection was lost.'), { status: 0 })); };
      xhr.onabort = () => { this.xhr = null; reject(Object.assign(new Error('Paused.'), { status: -1 })); };
      xhr.send(body === undefined ? null : body);
    });
  }

  async create() {
    const meta = `filename ${b64(this.file.name)},parent ${b64(this.parent)}`;
    const xhr = await this.request('POST', ENDPOINT, { 'Upload-Length': String(this.file.size), 'Upload-Metadata': meta });
    if (xhr.status !== 201) throw parseError(xhr.status, xhr.responseText);
    this.url = new URL(xhr.getResponseHeader('Location'), location.href).pathname;
    this.offset = Number(xhr.getResponseHeader('Upload-Offset') || 0);
    this.nodeId = xhr.getResponseHeader('Coffer-Node-Id');
    if (!this.nodeId) localStorage.setItem(this.fingerprint, this.url);
  }

  // Asks the server where the upload stands; false when it no longer exists.
  async head() {
    const xhr = await this.request('HEAD', this.url, {});
    if (xhr.status === 404 || xhr.status === 410) return false;
    if (xhr.status !== 200) throw parseError(xhr.status, '');
    this.offset = Number(xhr.getResponseHeader('Upload-Offset'));
    this.nodeId = xhr.getResponseHeader('Coffer-Node-Id');
    return true;
  }

  async patch() {
    const end = Math.min(this.offset + CHUNK, this.file.size);
    const start = this.offset;
    const xhr = await this.request('PATCH', this.url,
      { 'Upload-Offset': String(start), 'Content-Type': 'application/offset+octet-stream' },
      this.file.slice(start, end),
      (sent) => this.progress(start + sent));
    if (xhr.status === 409) { await this.head(); return; } // another tab moved it on: resync
    if (xhr.status !== 204) throw parseError(xhr.status, xhr.responseText);
    this.offset = Number(xhr.getResponseHeader('Upload-Offset'));
    this.nodeId = xhr.getResponseHeader('Coffer-Node-Id');
    this.attempt = 0;
    this.progress(this.offset);
  }

  progress(sent) {
    if (this.events.progress) this.events.progress(Math.min(sent, this.file.size), this.file.size);
  }

  // Runs (or resumes) the upload until it completes, fails for good, or is paused.
  async start() {
    if (this.state === 'uploading' || this.state === 'done') return;
    this.set('uploading');
    try {
      if (!this.url) this.url = localStorage.getItem(this.fingerprint);
      if (this.url && !(await this.head())) this.url = null;
      if (!this.url) await this.create();
      this.progress(this.offset);
      while (!this.nodeId && this.offset < this.file.size) {
        if (this.state !== 'uploading') return;
        await this.patch();
      }
      localStorage.removeItem(this.fingerprint);
      this.set('done', this.nodeId);
    } catch (err) {
      if (err.status === -1) return; // paused by the user
      if (FINAL.has(err.status)) {
        localStorage.removeItem(this.fingerprint);
        this.url = null;
        this.set('failed', err);
        return;
      }
      // Lost connection, 423 (the server is still finishing the previous piece), 5xx: retry.
      if (this.attempt < RETRY_DELAYS_MS.length) {
        const delay = RETRY_DELAYS_MS[this.attempt++];
        this.set('retrying', { error: err, delay });
        this.timer = setTimeout(() => { this.timer = null; if (this.state === 'retrying') { this.state = 'queued'; this.start(); } }, delay);
        return;
      }
      this.set('failed', err);
    }
  }

  pause() {
    if (this.state !== 'uploading' && this.state !== 'retrying') return;
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    this.set('paused');
    if (this.xhr) this.xhr.abort();
  }

  resume() {
    if (this.state === 'paused' || this.state === 'failed') {
      this.attempt = 0;
      this.state = 'queued';
      this.start();
    }
  }

  // Gives up: the server deletes what it holds (termination).
  async cancel() {
    this.pause();
    this.set('cancelled');
    localStorage.removeItem(this.fingerprint);
    if (this.url) {
      try { await this.request('DELETE', this.url, {}); } catch { /* it expires anyway */ }
    }
  }
}
