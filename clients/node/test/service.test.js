'use strict';

// The client against the running service (ML_SERVICE_URL, or the local server started here).
// A test whose route the service's openapi.json does not list yet is skipped, saying so.

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { inspect } = require('node:util');
const { after, before, describe, it } = require('node:test');

const { MLServiceClient, MLServiceError, ROUTES } = require('..');
const { startService, documentedRoutes } = require('./helpers/service');
const { portfolio, spec, generatedImages, userId } = require('./helpers/fixtures');

describe('MLServiceClient against the service', () => {
  let service;
  let routes;
  let client;
  let sharedProfile;

  before(async () => {
    service = await startService();
    client = new MLServiceClient({ baseUrl: service.url });
    routes = await documentedRoutes(client);
  }, { timeout: 70_000 });

  after(async () => {
    if (service) await service.stop();
  });

  /** False (and the test skipped) unless the service documents every named method's route. */
  function served(t, ...names) {
    const missing = names
      .map((name) => ROUTES.find((r) => r.name === name))
      .filter((r) => !routes.has(`${r.method} ${r.path}`))
      .map((r) => `${r.method} ${r.path}`);
    if (missing.length) t.skip(`not in the service's openapi.json yet: ${missing.join(', ')}`);
    return missing.length === 0;
  }

  /** One profile of the 12-record portfolio, created once for the tests that only read it. */
  function profileOnce() {
    sharedProfile ??= client.createStyleProfile({ user_id: userId('shared'), vlt_records: portfolio(), n_clusters: 3 });
    return sharedProfile;
  }

  it('health answers ok with the service version', async () => {
    // When
    const health = await client.health();

    // Then
    assert.equal(health.status, 'ok');
    assert.equal(typeof health.version, 'string');
  });

  it('every route the service documents has a client method', async () => {
    // Given
    const known = new Set(ROUTES.map((r) => `${r.method} ${r.path}`));

    // When
    const doc = await client.getOpenApiDocument();

    // Then
    assert.ok(doc.paths['/health']);
    assert.deepEqual([...routes].filter((r) => !known.has(r)), []);
  });

  it('createStyleProfile finds the three styles of a small portfolio', async (t) => {
    if (!served(t, 'createStyleProfile')) return;
    // Given
    const records = portfolio();
    const user = userId('create');

    // When
    const { profile } = await client.createStyleProfile({ user_id: user, vlt_records: records, n_clusters: 3 });

    // Then
    assert.equal(profile.user_id, user);
    assert.equal(profile.version, 1);
    assert.equal(profile.n_records, 12);
    assert.equal(profile.clusters.length, 3);
    assert.deepEqual(Object.keys(profile.assignments).sort(), records.map((r) => r.id).sort());
    const clusterOf = (style) => new Set(records.filter((r) => r.id.startsWith(style)).map((r) => profile.assignments[r.id]));
    const modes = ['evening', 'street', 'sport'].map(clusterOf);
    for (const mode of modes) assert.equal(mode.size, 1, 'records of one style share a cluster');
    assert.equal(new Set(modes.map((m) => [...m][0])).size, 3, 'each style has its own cluster');
    for (const cluster of profile.clusters) assert.equal(typeof cluster.style_summary, 'string');
  });

  it('getStyleProfile reads back the stored profile', async (t) => {
    if (!served(t, 'createStyleProfile', 'getStyleProfile')) return;
    // Given
    const { profile: created } = await profileOnce();

    // When
    const { profile } = await client.getStyleProfile(created.user_id);

    // Then
    assert.equal(profile.user_id, created.user_id);
    assert.equal(profile.version, created.version);
    assert.deepEqual(profile.assignments, created.assignments);
  });

  it('updateStyleProfile adds records, bumps the version and keeps cluster ids', async (t) => {
    if (!served(t, 'createStyleProfile', 'updateStyleProfile')) return;
    // Given
    const user = userId('update');
    const { profile: before } = await client.createStyleProfile({ user_id: user, vlt_records: portfolio(), n_clusters: 3 });
    const added = portfolio()
      .filter((r) => r.id.endsWith('-0'))
      .map((r) => ({ ...r, id: r.id.replace(/-0$/, '-new') }));

    // When
    const { profile: after } = await client.updateStyleProfile({ user_id: user, vlt_records: added });

    // Then
    assert.equal(after.version, before.version + 1);
    assert.equal(after.n_records, 15);
    for (const id of Object.keys(before.assignments)) assert.equal(after.assignments[id], before.assignments[id], `record ${id} keeps its cluster`);
    assert.equal(after.assignments['evening-new'], before.assignments['evening-0']);
  });

  it('optimizePrompt gives a prompt for a designer with a profile and for one without', async (t) => {
    if (!served(t, 'createStyleProfile', 'optimizePrompt')) return;
    // Given
    const { profile } = await profileOnce();

    // When
    const known = await client.optimizePrompt({
      user_id: profile.user_id,
      base_prompt: 'a dress for an evening gallery opening',
      vlt_spec: spec('evening'),
      explore: false,
    });
    const stranger = await client.optimizePrompt({ user_id: userId('newcomer'), vlt_spec: spec('street') });

    // Then
    for (const answer of [known, stranger]) {
      assert.ok(answer.prompt.length > 0);
      assert.equal(typeof answer.negative_prompt, 'string');
      assert.ok(answer.confidence >= 0 && answer.confidence <= 1, `confidence ${answer.confidence}`);
      assert.ok(answer.metadata.candidates_scored >= 1);
    }
    assert.equal(typeof known.metadata.cluster_used, 'number');
  });

  it('submitFeedback stores the same feedback once and says duplicate the second time', async (t) => {
    if (!served(t, 'submitFeedback')) return;
    // Given
    const feedback = {
      user_id: userId('feedback'),
      generation_id: `gen-${crypto.randomUUID()}`,
      asset_id: 'asset-1',
      feedback_type: 'like',
      prompt_used: 'high fashion photography, black a-line midi dress',
      vlt_spec: spec('evening'),
      quality_score: 0.8,
    };

    // When
    const first = await client.submitFeedback(feedback);
    const second = await client.submitFeedback(feedback);

    // Then
    assert.equal(first.duplicate, false);
    assert.equal(second.duplicate, true);
    assert.equal(second.feedback_id, first.feedback_id);
  });

  it('trainRewardModel queues a retrain', async (t) => {
    if (!served(t, 'submitFeedback', 'trainRewardModel')) return;
    // Given
    const user = userId('train');
    await client.submitFeedback({ user_id: user, generation_id: 'gen-1', asset_id: 'a', feedback_type: 'like', vlt_spec: spec() });

    // When
    const answer = await client.trainRewardModel({ user_id: user });

    // Then
    assert.equal(answer.queued, true);
  });

  it('getRewardModel of a designer without one is a 404 MLServiceError', async (t) => {
    if (!served(t, 'getRewardModel')) return;
    // When
    const error = await client.getRewardModel(userId('nomodel')).catch((e) => e);

    // Then
    assert.ok(error instanceof MLServiceError, inspect(error));
    assert.equal(error.status, 404);
  });

  it('validateImages rejects the off-style image and passes on-spec ones', async (t) => {
    if (!served(t, 'validateImages')) return;
    // Given
    const images = generatedImages(4);

    // When
    const answer = await client.validateImages({ generation_id: 'gen-validate', images, target_vlt: spec('evening') });

    // Then
    assert.deepEqual(answer.validations.map((v) => v.image_id), images.map((i) => i.id));
    assert.equal(answer.summary.total, 5);
    const verdict = Object.fromEntries(answer.validations.map((v) => [v.image_id, v]));
    assert.equal(verdict['img-off'].is_rejected, true);
    assert.ok(verdict['img-off'].reasons.length > 0);
    assert.equal(verdict['img-0'].is_rejected, false);
    assert.equal(answer.summary.passed + answer.summary.rejected, 5);
  });

  it('selectDiverse keeps target_count images as sent, the rest rejected', async (t) => {
    if (!served(t, 'selectDiverse')) return;
    // Given
    const images = generatedImages(5);

    // When
    const answer = await client.selectDiverse({ images, target_count: 3, diversity_weight: 0.7, quality_weight: 0.3 });

    // Then
    assert.equal(answer.selected.length, 3);
    assert.equal(answer.rejected.length, 3);
    const byId = Object.fromEntries(images.map((i) => [i.id, i]));
    for (const picked of [...answer.selected, ...answer.rejected]) {
      assert.deepEqual(picked.vlt, byId[picked.id].vlt);
      assert.equal(picked.url, byId[picked.id].url);
    }
    assert.ok(answer.selected.some((i) => i.id === 'img-off'), 'the one different image adds the most diversity');
    assert.equal(typeof answer.diversity_score, 'number');
  });

  it('an unknown profile is an MLServiceError 404 with the code and the request id', async (t) => {
    if (!served(t, 'getStyleProfile')) return;
    // Given
    const requestId = `node-test-${crypto.randomUUID()}`;

    // When
    const error = await client.getStyleProfile(userId('nobody'), { requestId }).catch((e) => e);

    // Then
    assert.ok(error instanceof MLServiceError, inspect(error));
    assert.equal(error.status, 404);
    assert.equal(error.code, 'not_found');
    assert.ok(error.message.length > 0);
    assert.equal(error.requestId, requestId);
    assert.equal(error.attempts, 1, 'a 404 is not retried');
  });

  it('a request the schema refuses is a 422 naming the field, not retried', async (t) => {
    if (!served(t, 'createStyleProfile')) return;
    // When
    const error = await client
      .createStyleProfile({ user_id: '../etc', vlt_records: portfolio() })
      .catch((e) => e);

    // Then
    assert.ok(error instanceof MLServiceError, inspect(error));
    assert.equal(error.status, 422);
    assert.equal(error.code, 'validation_error');
    assert.match(error.message, /user_id/);
    assert.ok(error.requestId);
  });

  it('exportUser of a stranger is a 404; deleteUser of one removes nothing', async (t) => {
    if (!served(t, 'exportUser', 'deleteUser')) return;
    // Given
    const user = userId('stranger');

    // When
    const exported = await client.exportUser(user).catch((e) => e);
    const deletion = await client.deleteUser(user);

    // Then
    assert.ok(exported instanceof MLServiceError, inspect(exported));
    assert.equal(exported.status, 404);
    assert.equal(exported.code, 'not_found');
    assert.equal(deletion.user_id, user);
    assert.ok(Object.values(deletion.deleted).every((n) => n === 0));
  });

  it('exportUser returns what is stored and deleteUser erases it', async (t) => {
    if (!served(t, 'createStyleProfile', 'getStyleProfile', 'exportUser', 'deleteUser')) return;
    // Given
    const user = userId('erase');
    await client.createStyleProfile({ user_id: user, vlt_records: portfolio(), n_clusters: 3 });

    // When
    const exported = await client.exportUser(user);
    const deletion = await client.deleteUser(user);
    const afterwards = await client.getStyleProfile(user).catch((e) => e);

    // Then
    assert.equal(exported.user_id, user);
    assert.equal(exported.profile.user_id, user);
    assert.equal(deletion.user_id, user);
    assert.ok(Object.values(deletion.deleted).some((n) => n > 0));
    assert.ok(afterwards instanceof MLServiceError);
    assert.equal(afterwards.status, 404);
  });
});
