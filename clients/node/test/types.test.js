'use strict';

// index.d.ts is generated from the service's OpenAPI document and must not drift from it.

const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { describe, it } = require('node:test');

const { render, DEFAULT_DOCUMENT, OUTPUT } = require('../scripts/gen-types');
const { MLServiceClient, ROUTES } = require('..');

const ROOT = path.resolve(__dirname, '..');

describe('generated TypeScript declarations', () => {
  it('index.d.ts matches the OpenAPI document (else: npm run gen-types)', () => {
    // Given
    const doc = JSON.parse(fs.readFileSync(DEFAULT_DOCUMENT, 'utf8'));

    // When
    const { text } = render(doc);

    // Then
    const committed = fs.readFileSync(OUTPUT, 'utf8').split('\n');
    const expected = text.split('\n');
    const line = expected.findIndex((l, i) => l !== committed[i]);
    const where = line === -1 ? committed.length : line;
    assert.ok(
      committed.length === expected.length && line === -1,
      `index.d.ts drifted from the OpenAPI document at line ${where + 1}: run \`npm run gen-types\` in clients/node\n` +
        `  committed: ${committed[where] ?? '(end of file)'}\n  expected:  ${expected[where] ?? '(end of file)'}`,
    );
  });

  it('refuses a document with a route the client has no method for', () => {
    // Given
    const doc = JSON.parse(fs.readFileSync(DEFAULT_DOCUMENT, 'utf8'));
    doc.paths['/api/ml/brand-new'] = { post: { responses: {} } };

    // When / Then
    assert.throws(() => render(doc), /POST \/api\/ml\/brand-new/);
  });

  it('types a route from its request and response schemas', () => {
    // Given
    const doc = {
      info: { title: 't', version: '1' },
      paths: {
        '/api/ml/rlhf/train': {
          post: {
            requestBody: { content: { 'application/json': { schema: { $ref: '#/components/schemas/TrainRequest' } } } },
            responses: { 202: { content: { 'application/json': { schema: { $ref: '#/components/schemas/TrainResponse' } } } } },
          },
        },
      },
      components: {
        schemas: {
          TrainRequest: { type: 'object', properties: { user_id: { type: 'string', pattern: '^[a-z]+$' }, n: { anyOf: [{ type: 'integer', maximum: 3 }, { type: 'null' }] } }, required: ['user_id'] },
          TrainResponse: { type: 'object', properties: { queued: { type: 'boolean' } }, required: ['queued'], additionalProperties: true },
        },
      },
    };

    // When
    const { text } = render(doc);

    // Then
    assert.match(text, /export interface TrainRequest \{\n {2}\/\*\* Limits: pattern \^\[a-z\]\+\$\. \*\/\n {2}user_id: string;\n {2}\/\*\* Limits: maximum 3\. \*\/\n {2}n\?: number \| null;\n\}/);
    assert.match(text, /export interface TrainResponse \{\n {2}queued: boolean;\n {2}\[key: string\]: unknown;\n\}/);
    assert.match(text, /trainRewardModel\(body: TrainRequest, options\?: CallOptions\): Promise<TrainResponse>;/);
    assert.match(text, /createStyleProfile\(body: \{ \[key: string\]: unknown \}, options\?: CallOptions\): Promise<unknown>;/);
  });

  it('declares every method the client has, and the client has one per route', () => {
    const declared = fs.readFileSync(OUTPUT, 'utf8');
    for (const route of ROUTES) {
      assert.equal(typeof MLServiceClient.prototype[route.name], 'function', route.name);
      assert.match(declared, new RegExp(`\\n  ${route.name}\\(`), route.name);
    }
  });

  it('compiles with tsc --strict, and a wrong call does not', (t) => {
    let tsc;
    try {
      tsc = require.resolve('typescript/bin/tsc');
    } catch {
      t.skip('typescript is not installed (npm ci installs it)');
      return;
    }
    // When
    const run = () =>
      execFileSync(process.execPath, [tsc, '--noEmit', '--strict', '--target', 'es2022', '--lib', 'es2022,dom',
        '--module', 'node16', '--moduleResolution', 'node16', '--skipLibCheck', 'false', 'index.d.ts', 'test/types-usage.ts'],
      { cwd: ROOT, encoding: 'utf8', stdio: 'pipe' });

    // Then: every @ts-expect-error in types-usage.ts is an error the declarations catch
    assert.doesNotThrow(run, (e) => e.stdout);
  });
});
