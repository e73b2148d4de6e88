'use strict';

// The seed's own Node.js client (test/seed/mlService.js, copied verbatim from the seed's
// "Integration with Node.js") must keep working, unchanged, against the same service.

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { after, before, describe, it } = require('node:test');

const axios = require('axios');

const { MLServiceClient, ROUTES } = require('..');
const { startService, documentedRoutes } = require('./helpers/service');
const { portfolio, spec, generatedImages, userId } = require('./helpers/fixtures');

describe("the seed's axios MLService against the service", () => {
  let service;
  let routes;
  let mlService;

  before(async () => {
    service = await startService();
    routes = await documentedRoutes(new MLServiceClient({ baseUrl: service.url }));
    // The seed reads ML_SERVICE_URL once, when it is required.
    process.env.ML_SERVICE_URL = service.url;
    // The seed sends no API key; a service that wants one (API Gateway) gets it from axios's
    // defaults, which leaves the seed's class unchanged.
    if (process.env.ML_API_KEY) axios.defaults.headers.common['x-api-key'] = process.env.ML_API_KEY;
    mlService = require('./seed/mlService');
  }, { timeout: 70_000 });

  after(async () => {
    if (service) await service.stop();
  });

  function served(t, ...names) {
    const missing = names
      .map((name) => ROUTES.find((r) => r.name === name))
      .filter((r) => !routes.has(`${r.method} ${r.path}`))
      .map((r) => `${r.method} ${r.path}`);
    if (missing.length) t.skip(`not in the service's openapi.json yet: ${missing.join(', ')}`);
    return missing.length === 0;
  }

  it('createStyleProfile returns response.data.profile (n_clusters 5 on 12 records)', async (t) => {
    if (!served(t, 'createStyleProfile')) return;
    // Given
    const user = userId('seed-create');

    // When
    const profile = await mlService.createStyleProfile(user, portfolio());

    // Then
    assert.equal(profile.user_id, user);
    assert.ok(profile.clusters.length >= 1 && profile.clusters.length <= 5);
    assert.equal(Object.keys(profile.assignments).length, 12);
  });

  it('optimizePrompt accepts the profile and a feedback history as the seed sends them', async (t) => {
    if (!served(t, 'createStyleProfile', 'optimizePrompt')) return;
    // Given
    const user = userId('seed-optimize');
    const profile = await mlService.createStyleProfile(user, portfolio());
    const history = [{ feedback_type: 'like', prompt_used: 'elegant black a-line midi dress', vlt_spec: spec('evening') }];

    // When
    const answer = await mlService.optimizePrompt(user, 'an evening dress', spec('evening'), profile, history);
    const withoutHistory = await mlService.optimizePrompt(user, 'an evening dress', spec('evening'), profile, undefined);

    // Then
    assert.ok(answer.prompt.length > 0);
    assert.ok(withoutHistory.prompt.length > 0);
  });

  it('validateImages returns validations and a summary', async (t) => {
    if (!served(t, 'validateImages')) return;
    // Given
    const images = generatedImages(3);

    // When
    const answer = await mlService.validateImages('gen-seed', images, spec('evening'));

    // Then the seed's shape: per image the four fields it reads, typed as its code reads them,
    // a summary that adds up, and the outliers array holding exactly the images flagged as one
    assert.equal(answer.validations.length, images.length);
    for (const v of answer.validations) {
      assert.equal(typeof v.image_id, 'string');
      assert.equal(typeof v.consistency_score, 'number');
      assert.equal(typeof v.is_outlier, 'boolean');
      assert.equal(typeof v.is_rejected, 'boolean');
    }
    assert.deepEqual(answer.validations.map((v) => v.image_id), images.map((i) => i.id));
    assert.equal(answer.summary.total, images.length);
    assert.equal(answer.summary.passed + answer.summary.rejected, images.length);
    assert.equal(typeof answer.summary.avg_consistency, 'number');
    assert.ok(Array.isArray(answer.outliers));
    assert.deepEqual(
      answer.outliers.map((o) => o.image_id),
      answer.validations.filter((v) => v.is_outlier).map((v) => v.image_id),
    );
    // The off-style sporty image misses the evening spec
    assert.equal(answer.validations.find((v) => v.image_id === 'img-off').is_rejected, true);
  });

  it('selectDiverse returns target_count images', async (t) => {
    if (!served(t, 'selectDiverse')) return;
    // Given
    const images = generatedImages(5);

    // When
    const answer = await mlService.selectDiverse(images, 2);

    // Then
    assert.equal(answer.selected.length, 2);
    assert.ok(answer.selected.every((s) => images.some((i) => i.id === s.id)));
  });

  it('submitFeedback answers queued, and duplicate on a resend', async (t) => {
    if (!served(t, 'submitFeedback')) return;
    // Given
    const args = [userId('seed-feedback'), `gen-${crypto.randomUUID()}`, 'asset-9', 'outlier', 'a prompt', spec('street')];

    // When
    const first = await mlService.submitFeedback(...args);
    const second = await mlService.submitFeedback(...args);

    // Then
    assert.equal(first.queued, true);
    assert.equal(first.duplicate, false);
    assert.equal(second.duplicate, true);
  });
});
