// The API client. The access token lives only in this module's memory; the refresh token is
// in an HttpOnly cookie the page cannot read, exchanged at /v1/auth/web/refresh with the
// CSRF value from the readable `penpal_csrf` cookie.

let access = null;
let accessUntil = 0;
let refreshing = null;
const listeners = new Set();

/** An API failure: HTTP status, stable code and a message meant for people. */
export class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/** Called with true/false when the session starts or ends. */
export function onSession(f) {
  listeners.add(f);
}

function setSession(body) {
  const was = !!access;
  access = body ? body.access_token : null;
  accessUntil = body ? Date.now() + (body.expires_in - 20) * 1000 : 0;
  if (was !== !!access) listeners.forEach((f) => f(!!access));
}

function csrf() {
  const c = document.cookie.split(';').map((s) => s.trim()).find((s) => s.startsWith('penpal_csrf='));
  return c ? c.slice('penpal_csrf='.length) : null;
}

/** Whether a browser session may exist (its readable cookie is there). */
export const maybeSignedIn = () => !!csrf();
export const signedIn = () => !!access;

async function errorOf(resp) {
  let code = 'http_' + resp.status;
  let message = resp.statusText || 'request failed';
  try {
    const b = await resp.json();
    if (b && b.error) ({ code, message } = b.error);
  } catch { /* not JSON */ }
  return new ApiError(resp.status, code, message, Number(resp.headers.get('retry-after')) || undefined);
}

/** Exchanges the refresh cookie for a new access token; false when there is no session. */
export function refresh() {
  if (!refreshing) {
    const run = async () => {
      // Read inside the lock: another tab may have rotated the cookie meanwhile.
      const token = csrf();
      if (!token) {
        setSession(null);
        return false;
      }
      const r = await fetch('/v1/auth/web/refresh', { method: 'POST', headers: { 'X-CSRF-Token': token } });
      if (!r.ok) {
        setSession(null);
        if (r.status >= 500) throw await errorOf(r);
        return false;
      }
      setSession(await r.json());
      return true;
    };
    // Tabs share the cookie; a used refresh token ends the session, so refresh one at a time.
    const locked = navigator.locks ? navigator.locks.request('penpal-refresh', run) : run();
    refreshing = locked.finally(() => { refreshing = null; });
  }
  return refreshing;
}

/** Calls the API; signs in requests, refreshing the access token when it has run out. */
export async function api(method, path, body, { auth = true } = {}) {
  if (auth && (!access || Date.now() > accessUntil)) await refresh();
  for (let attempt = 0; ; attempt++) {
    const headers = {};
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (auth && access) headers.Authorization = `Bearer ${access}`;
    let resp;
    try {
      resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch {
      throw new ApiError(0, 'offline', 'network');
    }
    if (resp.status === 401 && auth && attempt === 0 && (await refresh())) continue;
    if (!resp.ok) {
      const e = await errorOf(resp);
      if (resp.status === 401 && auth) setSession(null);
      throw e;
    }
    if (resp.status === 204) return null;
    const type = resp.headers.get('content-type') || '';
    return type.includes('json') ? resp.json() : resp.text();
  }
}

/** Signs up or in (`kind` is `register` or `login`) and keeps the session. */
export async function startSession(kind, body) {
  setSession(await api('POST', `/v1/auth/web/${kind}`, body, { auth: false }));
}

/** Signs out: ends the session on the server and forgets the token. */
export async function endSession() {
  const token = csrf();
  if (token) await fetch('/v1/auth/web/logout', { method: 'POST', headers: { 'X-CSRF-Token': token } }).catch(() => {});
  setSession(null);
}

/** Forgets the session locally (after account deletion the server has ended it). */
export function dropSession() {
  document.cookie = 'penpal_csrf=; Path=/; Max-Age=0; SameSite=Strict';
  setSession(null);
}
