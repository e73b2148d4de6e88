'use strict';

/**
 * Every endpoint of the service, one client method each (API.md). The client and
 * scripts/gen-types.js both read this table, so a route the OpenAPI document gains without a
 * method here makes the type generation (and its drift test) fail.
 *
 * `idempotent`: safe to send again after a 429, a 5xx, a timeout or a lost connection. GETs and
 * DELETE are by HTTP's rules; feedback is stored once per (user_id, generation_id, asset_id);
 * asking for a retrain twice queues the same retrain. Create, update, optimize, validate and
 * select are not retried: a second create may race the first, a second optimize with
 * `explore` draws another prompt, and validate/select cost a full scoring pass.
 */
const ROUTES = Object.freeze([
  { name: 'health', method: 'GET', path: '/health', idempotent: true },
  { name: 'getOpenApiDocument', method: 'GET', path: '/api/ml/openapi.json', idempotent: true },
  { name: 'createStyleProfile', method: 'POST', path: '/api/ml/style-profile/create', idempotent: false },
  { name: 'updateStyleProfile', method: 'POST', path: '/api/ml/style-profile/update', idempotent: false },
  { name: 'getStyleProfile', method: 'GET', path: '/api/ml/style-profile/{user_id}', idempotent: true },
  { name: 'optimizePrompt', method: 'POST', path: '/api/ml/prompt/optimize', idempotent: false },
  { name: 'submitFeedback', method: 'POST', path: '/api/ml/feedback/submit', idempotent: true },
  { name: 'trainRewardModel', method: 'POST', path: '/api/ml/rlhf/train', idempotent: true },
  { name: 'getRewardModel', method: 'GET', path: '/api/ml/rlhf/model/{user_id}', idempotent: true },
  { name: 'validateImages', method: 'POST', path: '/api/ml/validate', idempotent: false },
  { name: 'selectDiverse', method: 'POST', path: '/api/ml/select/diverse', idempotent: false },
  { name: 'exportUser', method: 'GET', path: '/api/ml/users/{user_id}/export', idempotent: true },
  { name: 'deleteUser', method: 'DELETE', path: '/api/ml/users/{user_id}', idempotent: true },
].map(Object.freeze));

/** The route named `name`; throws on an unknown name. */
function route(name) {
  const found = ROUTES.find((r) => r.name === name);
  if (!found) throw new Error(`no route named ${name}`);
  return found;
}

module.exports = { ROUTES, route };
