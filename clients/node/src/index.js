'use strict';

const crypto = require('node:crypto');
const { ROUTES, route } = require('./routes');
const { version: CLIENT_VERSION } = require('../package.json');

const DEFAULT_BASE_URL = 'http://localhost:8001';
// API Gateway gives up on an integration after 29 s; waiting longer only hides the 504.
const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_RETRIES = 2;
const DEFAULT_RETRY_BASE_MS = 200;
const DEFAULT_RETRY_MAX_DELAY_MS = 5_000;

// The code of an error whose body does not carry one (API Gateway's own 403/429/504 bodies are
// {"message": ...}; a proxy's 502 may be HTML).
const CODE_BY_STATUS = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  409: 'conflict',
  413: 'payload_too_large',
  422: 'validation_error',
  429: 'throttled',
  500: 'internal_error',
  502: 'bad_gateway',
  503: 'service_unavailable',
  504: 'gateway_timeout',
};

/**
 * Every failure of a call: an error answer of the service (status, code, message, details and
 * request id from its error body or x-request-id header), or a client-side failure with status 0
 * and code `timeout`, `network_error`, `aborted` or `invalid_response`.
 */
class MLServiceError extends Error {
  constructor({ status, code, message, details = [], requestId = null, method, path, attempts = 1, body, cause }) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'MLServiceError';
    this.status = status;
    this.code = code;
    this.details = details;
    this.requestId = requestId;
    this.method = method;
    this.path = path;
    this.attempts = attempts;
    this.body = body;
  }

  /** True when the same call may succeed if sent again later (429, 5xx, timeout, network). */
  get retryable() {
    return this.status === 429 || this.status >= 500 || this.code === 'timeout' || this.code === 'network_error';
  }
}

function nonNegativeInt(value, name, fallback) {
  if (value === undefined || value === null) return fallback;
  if (!Number.isInteger(value) || value < 0) throw new TypeError(`${name} must be a non-negative integer, got ${value}`);
  return value;
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(done, ms);
    function done() {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }
    function onAbort() {
      clearTimeout(timer);
      reject(signal.reason);
    }
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Seconds or an HTTP date (RFC 9110) -> milliseconds, or null. */
function retryAfterMs(header) {
  if (!header) return null;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(header);
  return Number.isNaN(at) ? null : Math.max(0, at - Date.now());
}

function parseJson(text) {
  if (!text) return { ok: true, value: null };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false, value: text };
  }
}

function requestIdOf(headers, body) {
  const fromBody = body && typeof body === 'object' && body.error && typeof body.error === 'object' ? body.error.request_id : null;
  return (
    (typeof fromBody === 'string' && fromBody) ||
    headers.get('x-request-id') ||
    headers.get('x-amzn-requestid') ||
    headers.get('apigw-requestid') ||
    null
  );
}

function serviceError(response, parsed, text, ctx) {
  const body = parsed.ok ? parsed.value : text;
  const error = body && typeof body === 'object' && body.error && typeof body.error === 'object' ? body.error : null;
  const fallbackMessage =
    (body && typeof body === 'object' && typeof body.message === 'string' && body.message) ||
    `${ctx.method} ${ctx.path} answered ${response.status} ${response.statusText}`.trim();
  return new MLServiceError({
    status: response.status,
    code: (error && typeof error.code === 'string' && error.code) || CODE_BY_STATUS[response.status] || `http_${response.status}`,
    message: (error && typeof error.message === 'string' && error.message) || fallbackMessage,
    details: (error && Array.isArray(error.details) && error.details) || [],
    requestId: requestIdOf(response.headers, body),
    method: ctx.method,
    path: ctx.path,
    attempts: ctx.attempt,
    body,
  });
}

/**
 * The Designer BFF ML service over HTTP. One method per endpoint; each takes the request body
 * of API.md (snake_case, as sent) and resolves to the response body, or rejects with an
 * MLServiceError.
 */
class MLServiceClient {
  /**
   * @param {object} [options]
   * @param {string} [options.baseUrl] service root (an API Gateway stage URL works);
   *   default ML_SERVICE_URL, else http://localhost:8001
   * @param {string} [options.apiKey] sent as x-api-key; default ML_API_KEY
   * @param {number} [options.timeoutMs] per attempt, 30000 by default
   * @param {number} [options.retries] extra attempts of idempotent calls, 2 by default
   */
  constructor(options = {}) {
    const baseUrl = options.baseUrl ?? process.env.ML_SERVICE_URL ?? DEFAULT_BASE_URL;
    this.baseUrl = String(baseUrl || DEFAULT_BASE_URL).replace(/\/+$/, '');
    this.apiKey = options.apiKey ?? process.env.ML_API_KEY ?? undefined;
    if (this.apiKey === '') this.apiKey = undefined;
    this.timeoutMs = nonNegativeInt(options.timeoutMs, 'timeoutMs', DEFAULT_TIMEOUT_MS);
    this.retries = nonNegativeInt(options.retries, 'retries', DEFAULT_RETRIES);
    this.retryBaseMs = nonNegativeInt(options.retryBaseMs, 'retryBaseMs', DEFAULT_RETRY_BASE_MS);
    this.retryMaxDelayMs = nonNegativeInt(options.retryMaxDelayMs, 'retryMaxDelayMs', DEFAULT_RETRY_MAX_DELAY_MS);
    this.headers = { ...(options.headers || {}) };
    this.fetch = options.fetch || globalThis.fetch;
    if (typeof this.fetch !== 'function') throw new TypeError('no fetch: Node.js 20 or later is required');
  }

  health(options) {
    return this._call('health', {}, options);
  }

  getOpenApiDocument(options) {
    return this._call('getOpenApiDocument', {}, options);
  }

  createStyleProfile(body, options) {
    return this._call('createStyleProfile', { body }, options);
  }

  updateStyleProfile(body, options) {
    return this._call('updateStyleProfile', { body }, options);
  }

  getStyleProfile(userId, options) {
    return this._call('getStyleProfile', { params: { user_id: userId } }, options);
  }

  optimizePrompt(body, options) {
    return this._call('optimizePrompt', { body }, options);
  }

  submitFeedback(body, options) {
    return this._call('submitFeedback', { body }, options);
  }

  trainRewardModel(body, options) {
    return this._call('trainRewardModel', { body }, options);
  }

  getRewardModel(userId, options) {
    return this._call('getRewardModel', { params: { user_id: userId } }, options);
  }

  validateImages(body, options) {
    return this._call('validateImages', { body }, options);
  }

  selectDiverse(body, options) {
    return this._call('selectDiverse', { body }, options);
  }

  exportUser(userId, options) {
    return this._call('exportUser', { params: { user_id: userId } }, options);
  }

  deleteUser(userId, options) {
    return this._call('deleteUser', { params: { user_id: userId } }, options);
  }

  _path(template, params = {}) {
    return template.replace(/\{([a-z_]+)\}/g, (_, name) => {
      const value = params[name];
      if (typeof value !== 'string' || value === '') throw new TypeError(`${name} must be a non-empty string`);
      return encodeURIComponent(value);
    });
  }

  /** Backoff before retry `attempt` (1-based): full jitter, at least what Retry-After asks. */
  _delayMs(attempt, retryAfter) {
    const ceiling = Math.min(this.retryMaxDelayMs, this.retryBaseMs * 2 ** (attempt - 1));
    const jittered = Math.random() * ceiling;
    return retryAfter === null ? jittered : Math.min(this.retryMaxDelayMs, Math.max(jittered, retryAfter));
  }

  async _call(name, { params, body } = {}, callOptions) {
    const options = callOptions || {};
    const spec = route(name);
    const path = this._path(spec.path, params);
    if (spec.method !== 'GET' && spec.method !== 'DELETE' && (body === null || typeof body !== 'object')) {
      throw new TypeError(`${name}: the request body must be an object`);
    }
    const timeoutMs = nonNegativeInt(options.timeoutMs, 'timeoutMs', this.timeoutMs);
    const retries = spec.idempotent ? nonNegativeInt(options.retries, 'retries', this.retries) : 0;
    const headers = {
      accept: 'application/json',
      'user-agent': `designer-ml-client/${CLIENT_VERSION} node/${process.versions.node}`,
      // One id for every attempt of a call, so the service's logs tie the retries together.
      'x-request-id': options.requestId || crypto.randomUUID(),
      ...this.headers,
      ...(options.headers || {}),
    };
    if (this.apiKey) headers['x-api-key'] = this.apiKey;
    const init = { method: spec.method, headers };
    if (body !== undefined && spec.method !== 'GET') {
      headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const ctx = { method: spec.method, path, attempt: 0 };
    const url = this.baseUrl + path;

    for (;;) {
      ctx.attempt += 1;
      let outcome;
      try {
        outcome = await this._attempt(url, init, timeoutMs, options.signal, ctx);
      } catch (error) {
        if (!(error instanceof MLServiceError)) throw error;
        outcome = { error };
      }
      if (!outcome.error) return outcome.value;
      const { error } = outcome;
      if (!error.retryable || ctx.attempt > retries) throw error;
      try {
        await sleep(this._delayMs(ctx.attempt, outcome.retryAfter ?? null), options.signal);
      } catch (reason) {
        throw new MLServiceError({
          status: 0, code: 'aborted', message: `${ctx.method} ${path}: aborted by the caller`,
          method: ctx.method, path, attempts: ctx.attempt, cause: reason,
        });
      }
    }
  }

  /** One HTTP exchange: { value } on 2xx, { error, retryAfter } on an error answer; throws MLServiceError otherwise. */
  async _attempt(url, init, timeoutMs, callerSignal, ctx) {
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new Error(`timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    const onCallerAbort = () => controller.abort(callerSignal.reason);
    if (callerSignal?.aborted) onCallerAbort();
    else callerSignal?.addEventListener('abort', onCallerAbort, { once: true });
    const fail = (code, message, cause) =>
      new MLServiceError({ status: 0, code, message, method: ctx.method, path: ctx.path, attempts: ctx.attempt, cause });
    try {
      let response;
      let text;
      try {
        response = await this.fetch(url, { ...init, signal: controller.signal });
        text = await response.text();
      } catch (cause) {
        if (timedOut) throw fail('timeout', `${ctx.method} ${ctx.path}: no answer within ${timeoutMs} ms`, cause);
        if (callerSignal?.aborted) throw fail('aborted', `${ctx.method} ${ctx.path}: aborted by the caller`, cause);
        const reason = cause?.cause?.code || cause?.cause?.message || cause?.message || String(cause);
        throw fail('network_error', `${ctx.method} ${ctx.path}: ${reason}`, cause);
      }
      const parsed = parseJson(text);
      if (response.ok) {
        if (!parsed.ok) {
          throw new MLServiceError({
            status: response.status, code: 'invalid_response',
            message: `${ctx.method} ${ctx.path}: the answer is not JSON`,
            requestId: requestIdOf(response.headers, null), method: ctx.method, path: ctx.path,
            attempts: ctx.attempt, body: text,
          });
        }
        return { value: parsed.value };
      }
      return { error: serviceError(response, parsed, text, ctx), retryAfter: retryAfterMs(response.headers.get('retry-after')) };
    } finally {
      clearTimeout(timer);
      callerSignal?.removeEventListener('abort', onCallerAbort);
    }
  }
}

module.exports = { MLServiceClient, MLServiceError, ROUTES, CLIENT_VERSION };
