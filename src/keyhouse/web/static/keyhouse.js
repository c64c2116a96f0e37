// keyhouse.js — a small, dependency-free ES module for keyhouse's client-side API.
// It mirrors the Paddle.js calls that apply here: Initialize, PricePreview, TransactionPreview.
// Requests and responses use Paddle.js's camelCase; the wire is the API's snake_case.

const ENVIRONMENTS = new Set(['sandbox', 'production']);
let settings = null;

/** Error objects carry the API's fields: type, code, detail, documentation_url. */
export class KeyhouseError extends Error {
  constructor({ type, code, detail, documentation_url = null, errors = null }, status = 0, requestId = null) {
    super(detail);
    this.name = 'KeyhouseError';
    this.type = type;
    this.code = code;
    this.detail = detail;
    this.documentation_url = documentation_url;
    this.errors = errors; // [{ field, message }] on validation errors
    this.status = status;
    this.requestId = requestId;
  }
}

export const toSnake = (key) => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
export const toCamel = (key) => key.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());

/** Rename the keys of plain objects, deeply; arrays and values pass through. */
export function renameKeys(value, rename) {
  if (Array.isArray(value)) return value.map((item) => renameKeys(item, rename));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [rename(k), renameKeys(v, rename)]));
  }
  return value;
}

/**
 * Initialize({ token, environment, apiBase }): `environment` is 'sandbox' or 'production'
 * (default 'production', as Paddle.js); `apiBase` defaults to the origin this module was served from.
 */
export function Initialize({ token, environment = 'production', apiBase } = {}) {
  if (typeof token !== 'string' || !/^(test|live)_[a-f0-9]{27}$/.test(token)) {
    throw new KeyhouseError({ type: 'request_error', code: 'invalid_client_token',
      detail: 'Initialize needs a client-side token (test_… or live_…), never an API key.' });
  }
  if (!ENVIRONMENTS.has(environment)) {
    throw new KeyhouseError({ type: 'request_error', code: 'bad_request',
      detail: "environment must be 'sandbox' or 'production'." });
  }
  settings = { token, environment, apiBase: (apiBase ?? new URL(import.meta.url).origin).replace(/\/$/, '') };
  return { ...settings, token: `${token.slice(0, 9)}…` };
}

/** The fetch arguments for one call: exported so tests can check them without a network. */
export function buildRequest(path, request, current = settings) {
  if (!current) {
    throw new KeyhouseError({ type: 'request_error', code: 'authentication_missing',
      detail: 'Call Initialize({ token, environment }) first.' });
  }
  return [`${current.apiBase}${path}`, {
    method: 'POST',
    headers: {
      Authorization: `Bearer ${current.token}`,
      'Content-Type': 'application/json',
      'Keyhouse-Environment': current.environment,
    },
    body: JSON.stringify(renameKeys(request ?? {}, toSnake)),
  }];
}

async function call(path, request, fetcher = globalThis.fetch) {
  const [url, init] = buildRequest(path, request);
  let response;
  try {
    response = await fetcher(url, init);
  } catch (cause) {
    // The browser hides why: most often the origin is not allowed for this token (CORS).
    throw new KeyhouseError({ type: 'network_error', code: 'request_blocked',
      detail: `The request did not complete (${cause?.message ?? cause}). If the API is reachable, this page's origin is probably not allowed for the token.` });
  }
  const body = await response.json().catch(() => null);
  if (!response.ok || !body || body.error) {
    throw new KeyhouseError(body?.error ?? { type: 'api_error', code: 'bad_response',
      detail: `Unexpected answer (HTTP ${response.status}).` }, response.status, body?.meta?.request_id ?? null);
  }
  return renameKeys(body, toCamel);
}

/** Paddle.PricePreview: camelCase request in, camelCase `{ data, meta }` out. */
export const PricePreview = (request, fetcher) => call('/pricing-preview', request, fetcher);

/** Paddle.TransactionPreview: camelCase request in, camelCase `{ data, meta }` out. */
export const TransactionPreview = (request, fetcher) => call('/transactions/preview', request, fetcher);
