'use strict';

// The client's own behaviour (retries, timeouts, errors, headers) against tiny in-test servers.

const assert = require('node:assert/strict');
const { inspect } = require('node:util');
const { afterEach, describe, it } = require('node:test');

const { MLServiceClient, MLServiceError, ROUTES } = require('..');
const { stubServer, json } = require('./helpers/stub');

const FAST = { retryBaseMs: 1, retryMaxDelayMs: 5 };
const BODIES = {
  createStyleProfile: { user_id: 'u', vlt_records: [{ id: '1', garment_type: 'dress' }] },
  updateStyleProfile: { user_id: 'u', vlt_records: [{ id: '1', garment_type: 'dress' }] },
  optimizePrompt: { user_id: 'u', vlt_spec: { garment_type: 'dress' } },
  submitFeedback: { user_id: 'u', generation_id: 'g', asset_id: 'a', feedback_type: 'like' },
  trainRewardModel: { user_id: 'u' },
  validateImages: { images: [{ id: 'a', vlt: { garment_type: 'dress' } }], target_vlt: { garment_type: 'dress' } },
  selectDiverse: { images: [{ id: 'a', vlt: { garment_type: 'dress' } }], target_count: 1 },
};

/** Calls the client method of `route` with a plausible body or user id. */
function call(client, route, options) {
  if (route.path.includes('{user_id}')) return client[route.name]('u', options);
  if (route.method === 'GET') return client[route.name](options);
  return client[route.name](BODIES[route.name], options);
}

const unavailable = (res) => json(res, 503, { error: { code: 'storage_unavailable', message: 'try again', details: [], request_id: 'r-503' } });

describe('MLServiceClient retries', () => {
  let stub;
  afterEach(async () => {
    if (stub) await stub.close();
    stub = null;
  });

  it('retries an idempotent call on 503 until it succeeds, with one request id', async () => {
    // Given
    stub = await stubServer((req, res, body, n) => (n <= 2 ? unavailable(res) : json(res, 200, { profile: { user_id: 'u' } })));
    const client = new MLServiceClient({ baseUrl: stub.url, ...FAST });

    // When
    const answer = await client.getStyleProfile('u');

    // Then
    assert.deepEqual(answer, { profile: { user_id: 'u' } });
    assert.equal(stub.requests.length, 3);
    assert.equal(new Set(stub.requests.map((r) => r.headers['x-request-id'])).size, 1);
  });

  it('retries feedback (idempotent by its key) after a 429 with Retry-After', async () => {
    // Given
    stub = await stubServer((req, res, body, n) =>
      n === 1
        ? json(res, 429, { message: 'Too Many Requests' }, { 'retry-after': '0' })
        : json(res, 202, { feedback_id: 'f', queued: true, duplicate: false }),
    );
    const client = new MLServiceClient({ baseUrl: stub.url, ...FAST });

    // When
    const answer = await client.submitFeedback(BODIES.submitFeedback);

    // Then
    assert.equal(answer.queued, true);
    assert.equal(stub.requests.length, 2);
    assert.deepEqual(JSON.parse(stub.requests[1].body), BODIES.submitFeedback);
  });

  it('gives up after `retries` extra attempts and reports the last answer', async () => {
    // Given
    stub = await stubServer((req, res) => unavailable(res));
    const client = new MLServiceClient({ baseUrl: stub.url, retries: 3, ...FAST });

    // When
    const error = await client.trainRewardModel({ user_id: 'u' }).catch((e) => e);

    // Then
    assert.ok(error instanceof MLServiceError);
    assert.equal(stub.requests.length, 4);
    assert.equal(error.attempts, 4);
    assert.equal(error.status, 503);
    assert.equal(error.code, 'storage_unavailable');
    assert.equal(error.requestId, 'r-503');
    assert.equal(error.retryable, true);
  });

  for (const route of ROUTES) {
    it(`${route.name} is ${route.idempotent ? '' : 'never '}retried on 503`, async () => {
      // Given
      stub = await stubServer((req, res) => unavailable(res));
      const client = new MLServiceClient({ baseUrl: stub.url, retries: 2, ...FAST });

      // When
      const error = await call(client, route).catch((e) => e);

      // Then
      assert.ok(error instanceof MLServiceError, inspect(error));
      assert.equal(error.status, 503);
      assert.equal(stub.requests.length, route.idempotent ? 3 : 1);
      assert.equal(stub.requests[0].method, route.method);
    });
  }

  it('never retries create, update, optimize, validate or select', () => {
    const retried = ROUTES.filter((r) => r.idempotent).map((r) => r.name);
    for (const name of ['createStyleProfile', 'updateStyleProfile', 'optimizePrompt', 'validateImages', 'selectDiverse']) {
      assert.ok(!retried.includes(name), name);
    }
  });

  it('does not retry a 4xx answer', async () => {
    // Given
    stub = await stubServer((req, res) => json(res, 422, { error: { code: 'validation_error', message: 'user_id: bad', details: [{ field: 'user_id' }], request_id: 'r' } }));
    const client = new MLServiceClient({ baseUrl: stub.url, ...FAST });

    // When
    const error = await client.submitFeedback(BODIES.submitFeedback).catch((e) => e);

    // Then
    assert.equal(stub.requests.length, 1);
    assert.equal(error.status, 422);
    assert.deepEqual(error.details, [{ field: 'user_id' }]);
    assert.equal(error.retryable, false);
  });

  it('retries an idempotent call after a dropped connection, but not a non-idempotent one', async () => {
    // Given
    stub = await stubServer((req) => req.socket.destroy());
    const client = new MLServiceClient({ baseUrl: stub.url, retries: 2, ...FAST });

    // When
    const idempotent = await client.health().catch((e) => e);
    const seenAfterIdempotent = stub.requests.length;
    const once = await client.optimizePrompt(BODIES.optimizePrompt).catch((e) => e);

    // Then
    assert.equal(idempotent.code, 'network_error');
    assert.equal(idempotent.status, 0);
    assert.equal(seenAfterIdempotent, 3);
    assert.equal(once.code, 'network_error');
    assert.equal(stub.requests.length - seenAfterIdempotent, 1);
  });
});

describe('MLServiceClient timeouts and aborts', () => {
  let stub;
  afterEach(async () => {
    if (stub) await stub.close();
    stub = null;
  });

  it('ends an attempt that gets no answer within timeoutMs as a timeout error', async () => {
    // Given: a service that never answers
    stub = await stubServer(() => {});
    const client = new MLServiceClient({ baseUrl: stub.url, timeoutMs: 100, retries: 0 });

    // When
    const error = await client.validateImages(BODIES.validateImages).catch((e) => e);

    // Then
    assert.ok(error instanceof MLServiceError);
    assert.equal(error.code, 'timeout');
    assert.equal(error.status, 0);
    assert.equal(stub.requests.length, 1);
  });

  it('retries an idempotent call whose first attempt timed out', async () => {
    // Given: the first request hangs, the second answers
    stub = await stubServer((req, res, body, n) => (n === 1 ? undefined : json(res, 200, { status: 'ok', version: 't' })));
    const client = new MLServiceClient({ baseUrl: stub.url, timeoutMs: 1_000, retries: 1, ...FAST });

    // When
    const answer = await client.health();

    // Then
    assert.equal(answer.version, 't');
    assert.equal(stub.requests.length, 2);
  });

  it('a per-call timeoutMs overrides the client default', async () => {
    // Given
    stub = await stubServer(() => {});
    const client = new MLServiceClient({ baseUrl: stub.url, timeoutMs: 60_000 });

    // When
    const error = await client.selectDiverse(BODIES.selectDiverse, { timeoutMs: 50 }).catch((e) => e);

    // Then
    assert.equal(error.code, 'timeout');
  });

  it('stops, without retrying, when the caller aborts', async () => {
    // Given
    stub = await stubServer(() => {});
    const client = new MLServiceClient({ baseUrl: stub.url, retries: 3, ...FAST });
    const controller = new AbortController();

    // When
    const pending = client.getRewardModel('u', { signal: controller.signal }).catch((e) => e);
    while (stub.requests.length === 0) await new Promise((r) => setTimeout(r, 5));
    controller.abort();
    const error = await pending;

    // Then
    assert.equal(error.code, 'aborted');
    assert.equal(stub.requests.length, 1);
  });
});

describe('MLServiceClient errors and requests', () => {
  let stub;
  const saved = { ML_SERVICE_URL: process.env.ML_SERVICE_URL, ML_API_KEY: process.env.ML_API_KEY };
  afterEach(async () => {
    if (stub) await stub.close();
    stub = null;
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  it('takes the request id from the x-request-id header when the body has none', async () => {
    // Given
    stub = await stubServer((req, res) => json(res, 404, { error: { code: 'not_found', message: 'no profile for u' } }, { 'x-request-id': 'from-header' }));
    const client = new MLServiceClient({ baseUrl: stub.url });

    // When
    const error = await client.getStyleProfile('u').catch((e) => e);

    // Then
    assert.equal(error.status, 404);
    assert.equal(error.code, 'not_found');
    assert.equal(error.message, 'no profile for u');
    assert.equal(error.requestId, 'from-header');
    assert.equal(error.method, 'GET');
    assert.equal(error.path, '/api/ml/style-profile/u');
  });

  it("maps API Gateway's own {message} bodies and a proxy's HTML to codes", async () => {
    // Given
    stub = await stubServer((req, res, body, n) => {
      if (n === 1) return json(res, 403, { message: 'Forbidden' }, { 'x-amzn-requestid': 'apigw-1' });
      res.writeHead(502, { 'content-type': 'text/html' });
      return res.end('<html>Bad Gateway</html>');
    });
    const client = new MLServiceClient({ baseUrl: stub.url, retries: 0 });

    // When
    const forbidden = await client.health().catch((e) => e);
    const gateway = await client.health().catch((e) => e);

    // Then
    assert.deepEqual([forbidden.status, forbidden.code, forbidden.message, forbidden.requestId], [403, 'forbidden', 'Forbidden', 'apigw-1']);
    assert.deepEqual([gateway.status, gateway.code], [502, 'bad_gateway']);
    assert.equal(gateway.body, '<html>Bad Gateway</html>');
  });

  it('a 2xx answer that is not JSON is an invalid_response error', async () => {
    // Given
    stub = await stubServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
    });
    const client = new MLServiceClient({ baseUrl: stub.url });

    // When
    const error = await client.health().catch((e) => e);

    // Then
    assert.equal(error.code, 'invalid_response');
    assert.equal(error.status, 200);
  });

  it('sends the API key, JSON and an encoded user id; defaults come from ML_SERVICE_URL and ML_API_KEY', async () => {
    // Given
    stub = await stubServer((req, res) => json(res, 200, {}));
    process.env.ML_SERVICE_URL = `${stub.url}/`;
    process.env.ML_API_KEY = 'key-from-env';
    const fromEnv = new MLServiceClient();
    const explicit = new MLServiceClient({ baseUrl: stub.url, apiKey: 'explicit-key' });
    delete process.env.ML_API_KEY;
    const keyless = new MLServiceClient({ baseUrl: stub.url });

    // When
    await fromEnv.getStyleProfile('a/b c');
    await explicit.submitFeedback(BODIES.submitFeedback, { requestId: 'mine' });
    await keyless.health();

    // Then
    const [get, post, health] = stub.requests;
    assert.equal(get.url, '/api/ml/style-profile/a%2Fb%20c');
    assert.equal(get.headers['x-api-key'], 'key-from-env');
    assert.equal(post.headers['x-api-key'], 'explicit-key');
    assert.equal(post.headers['content-type'], 'application/json');
    assert.equal(post.headers['x-request-id'], 'mine');
    assert.deepEqual(JSON.parse(post.body), BODIES.submitFeedback);
    assert.equal(health.headers['x-api-key'], undefined);
  });

  it('defaults to http://localhost:8001 without ML_SERVICE_URL', () => {
    delete process.env.ML_SERVICE_URL;
    assert.equal(new MLServiceClient().baseUrl, 'http://localhost:8001');
  });

  it('refuses an empty user id and a missing body before sending anything', async () => {
    const client = new MLServiceClient({ baseUrl: 'http://127.0.0.1:9' });
    await assert.rejects(client.getStyleProfile(''), TypeError);
    await assert.rejects(client.createStyleProfile(undefined), TypeError);
  });

  it('is importable from ESM with named exports', async () => {
    const esm = await import('designer-ml-client');
    assert.equal(esm.MLServiceClient, MLServiceClient);
    assert.equal(esm.MLServiceError, MLServiceError);
  });
});
