// api.js: the one way the pages talk to the server. Every call goes through api(): JSON in and out,
// the session cookie (HttpOnly, so scripts never see it) and, for unsafe methods, the CSRF token
// that login returned. Errors become ApiError with the server's code and message.

const CSRF_KEY = 'coffer.csrf';
const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export class ApiError extends Error {
  constructor(status, code, message, headers) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || 'error';
    this.serverMessage = message; // the server's own text, if it sent one
    this.headers = headers;
  }
}

export const csrf = {
  get: () => localStorage.getItem(CSRF_KEY),
  set: (t) => localStorage.setItem(CSRF_KEY, t),
  clear: () => localStorage.removeItem(CSRF_KEY),
};

// The headers a request needs besides its body's: the CSRF token on unsafe methods.
export function authHeaders(method) {
  const h = {};
  const t = csrf.get();
  if (UNSAFE.has(method) && t) h['x-csrf-token'] = t;
  return h;
}

export async function errorOf(res) {
  let body = {};
  try { body = await res.json(); } catch { /* not JSON */ }
  return new ApiError(res.status, body.error, body.message, res.headers);
}

// api('GET', '/api/v1/me') → parsed JSON (null for 204). Throws ApiError on any non-2xx answer.
export async function api(method, path, body) {
  const headers = authHeaders(method);
  const init = { method, headers, credentials: 'same-origin' };
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'network', 'The server cannot be reached. Check your connection and try again.');
  }
  if (!res.ok) throw await errorOf(res);
  if (res.status === 204) return null;
  const type = res.headers.get('content-type') || '';
  return type.startsWith('application/json') ? res.json() : res.text();
}

// A query string from an object, skipping empty values.
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}
