#!/usr/bin/env node
'use strict';

/*
 * Writes index.d.ts from the service's OpenAPI document (layers/designer_ml/openapi.json, made
 * by `make openapi` from the pydantic models): one TypeScript type per schema and the client
 * class with each method's request and response types. test/types.test.js fails when the
 * committed index.d.ts differs from what this prints.
 *
 * Own code rather than openapi-typescript: that tool emits `paths[...]` lookup types, not a
 * client class, and the method names must come from src/routes.js (the table the client uses)
 * anyway; the schemas pydantic emits need only the small JSON Schema subset handled here.
 *
 * Usage: node scripts/gen-types.js [--check] [path/to/openapi.json]
 */

const fs = require('node:fs');
const path = require('node:path');
const { ROUTES } = require('../src/routes');

const DEFAULT_DOCUMENT = path.resolve(__dirname, '../../../layers/designer_ml/openapi.json');
const OUTPUT = path.resolve(__dirname, '../index.d.ts');
const HANDWRITTEN_NAMES = new Set([
  'MLServiceClient', 'MLServiceClientOptions', 'MLServiceError', 'MLServiceErrorCode', 'CallOptions',
  'RouteSpec', 'ROUTES', 'CLIENT_VERSION',
]);
const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function typeName(name) {
  return name.replace(/[^A-Za-z0-9_$]/g, '_').replace(/^(\d)/, '_$1');
}

function literal(value) {
  return JSON.stringify(value);
}

function unique(types) {
  return [...new Set(types)];
}

function isEmptySchema(schema) {
  if (schema === true || schema === undefined || schema === null) return true;
  const meaningful = Object.keys(schema).filter((k) => !['title', 'description', 'default', 'examples'].includes(k));
  return meaningful.length === 0;
}

class Renderer {
  constructor(doc) {
    this.doc = doc;
    this.schemas = (doc.components && doc.components.schemas) || {};
    this.warnings = [];
  }

  ref(pointer) {
    const prefix = '#/components/schemas/';
    const name = pointer.startsWith(prefix) ? pointer.slice(prefix.length) : null;
    if (name && Object.prototype.hasOwnProperty.call(this.schemas, name)) return typeName(name);
    this.warnings.push(`unresolved $ref ${pointer}: typed as unknown`);
    return `unknown /* unresolved ${pointer} */`;
  }

  /** The TypeScript type of a JSON Schema (the subset pydantic emits); `indent` for object bodies. */
  type(schema, indent = '') {
    if (schema === false) return 'never';
    if (isEmptySchema(schema)) return 'unknown';
    if (schema.$ref) return this.ref(schema.$ref);
    if ('const' in schema) return literal(schema.const);
    if (Array.isArray(schema.enum)) return unique(schema.enum.map(literal)).join(' | ');
    const alternatives = schema.anyOf || schema.oneOf;
    if (alternatives) return unique(alternatives.map((s) => this.type(s, indent))).join(' | ');
    if (schema.allOf) {
      const parts = unique(schema.allOf.map((s) => this.type(s, indent)));
      return parts.length === 1 ? parts[0] : parts.map((p) => `(${p})`).join(' & ');
    }
    if (Array.isArray(schema.type)) {
      return unique(schema.type.map((t) => this.type({ ...schema, type: t }, indent))).join(' | ');
    }
    switch (schema.type) {
      case 'string':
        return 'string';
      case 'integer':
      case 'number':
        return 'number';
      case 'boolean':
        return 'boolean';
      case 'null':
        return 'null';
      case 'array':
        if (Array.isArray(schema.prefixItems)) {
          const items = schema.prefixItems.map((s) => this.type(s, indent));
          const rest = schema.items === false || schema.items === undefined ? [] : [`...Array<${this.type(schema.items, indent)}>`];
          return `[${[...items, ...rest].join(', ')}]`;
        }
        return `Array<${this.type(schema.items, indent)}>`;
      case 'object':
        return this.object(schema, indent);
      default:
        return schema.properties ? this.object(schema, indent) : 'unknown';
    }
  }

  object(schema, indent) {
    const properties = schema.properties || {};
    const keys = Object.keys(properties);
    const extra = schema.additionalProperties;
    if (keys.length === 0) {
      if (extra === false) return 'Record<string, never>';
      return `{ [key: string]: ${extra && extra !== true ? this.type(extra, indent) : 'unknown'} }`;
    }
    const required = new Set(schema.required || []);
    const inner = `${indent}  `;
    const lines = ['{'];
    for (const key of keys) {
      const prop = properties[key];
      lines.push(...this.docComment(prop, inner));
      const name = IDENTIFIER.test(key) ? key : literal(key);
      lines.push(`${inner}${name}${required.has(key) ? '' : '?'}: ${this.type(prop, inner)};`);
    }
    // Extra keys the service keeps (pydantic extra="allow"); typed loosely so the named keys stay exact.
    if (extra) lines.push(`${inner}[key: string]: unknown;`);
    lines.push(`${indent}}`);
    return lines.join('\n');
  }

  /** JSDoc lines for a schema: its description, default and limits (also from anyOf branches). */
  docComment(schema, indent) {
    if (!schema || typeof schema !== 'object') return [];
    const notes = [];
    if (schema.description) notes.push(...String(schema.description).split('\n'));
    const limits = [];
    const branches = [schema, ...(schema.anyOf || schema.oneOf || []).filter((s) => s && s.type !== 'null')];
    for (const branch of branches) {
      for (const key of ['pattern', 'minLength', 'maxLength', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'minItems', 'maxItems']) {
        if (branch[key] !== undefined) limits.push(`${key} ${branch[key]}`);
      }
    }
    if (limits.length) notes.push(`Limits: ${unique(limits).join(', ')}.`);
    if (schema.default !== undefined) notes.push(`@default ${literal(schema.default)}`);
    if (notes.length === 0) return [];
    const safe = notes.map((n) => n.replace(/\*\//g, '*\\/'));
    if (safe.length === 1) return [`${indent}/** ${safe[0]} */`];
    return [`${indent}/**`, ...safe.map((n) => `${indent} * ${n}`), `${indent} */`];
  }

  declaration(name, schema) {
    const id = typeName(name);
    if (HANDWRITTEN_NAMES.has(id)) throw new Error(`schema ${name} collides with a name of the client; rename the model`);
    const head = this.docComment({ description: schema.description }, '');
    const body = this.type(schema, '');
    const isInterface = !schema.$ref && !schema.anyOf && !schema.oneOf && !schema.allOf && body.startsWith('{\n');
    return [...head, isInterface ? `export interface ${id} ${body}` : `export type ${id} = ${body};`].join('\n');
  }

  jsonSchemaOf(content) {
    const json = content && (content['application/json'] || Object.entries(content).find(([k]) => k.endsWith('+json'))?.[1]);
    return json ? json.schema : undefined;
  }

  method(route) {
    const operation = (this.doc.paths?.[route.path] || {})[route.method.toLowerCase()];
    const pathParams = [...route.path.matchAll(/\{([a-z_]+)\}/g)].map((m) => m[1]);
    const args = [];
    const lines = [];
    const notes = [];
    if (operation) {
      if (operation.summary) notes.push(`${operation.summary}.`.replace(/\.\.$/, '.'));
      if (operation.description) notes.push(...operation.description.split('\n'));
    } else {
      notes.push('Not in the OpenAPI document yet: request and response are untyped until `npm run gen-types` runs on a document that has it.');
    }
    notes.push(`\`${route.method} ${route.path}\`. ${route.idempotent ? 'Retried on 429, 5xx, timeouts and network errors.' : 'Never retried (not idempotent).'}`);
    for (const param of pathParams) {
      const spec = (operation?.parameters || []).find((p) => p.in === 'path' && p.name === param);
      const camel = param.replace(/_([a-z])/g, (_, c) => c.toUpperCase());
      const limits = this.docComment(spec?.schema, '').join(' ').replace(/^\/\*\* | \*\/$/g, '');
      notes.push(`@param ${camel} \`${param}\`${limits ? ` (${limits.replace(/\.$/, '')})` : ''}`);
      args.push(`${camel}: ${spec ? this.type(spec.schema, '  ') : 'string'}`);
    }
    if (route.method !== 'GET' && route.method !== 'DELETE') {
      const body = operation ? this.jsonSchemaOf(operation.requestBody?.content) : undefined;
      args.push(`body: ${body ? this.type(body, '  ') : '{ [key: string]: unknown }'}`);
    }
    args.push('options?: CallOptions');
    let result = 'unknown';
    if (operation) {
      const success = Object.keys(operation.responses || {}).filter((s) => /^2\d\d$/.test(s)).sort();
      const typed = success.map((s) => this.jsonSchemaOf(operation.responses[s].content)).filter(Boolean);
      if (typed.length) result = unique(typed.map((s) => this.type(s, '  '))).join(' | ');
      else if (success.length) result = 'null';
      const failures = Object.keys(operation.responses || {}).filter((s) => !/^2/.test(s)).sort();
      if (failures.length) notes.push(`@throws {MLServiceError} documented: ${failures.join(', ')}; also 401/403/429/5xx from a gateway, and status 0 for timeout/network_error/aborted`);
    }
    lines.push('  /**', ...notes.map((n) => `   * ${n.replace(/\*\//g, '*\\/')}`), '   */');
    lines.push(`  ${route.name}(${args.join(', ')}): Promise<${result}>;`);
    return lines.join('\n');
  }
}

const HANDWRITTEN = `
export interface MLServiceClientOptions {
  /** Service root, an API Gateway stage URL included. Default: ML_SERVICE_URL, else http://localhost:8001. */
  baseUrl?: string;
  /** Sent as x-api-key. Default: ML_API_KEY. */
  apiKey?: string;
  /** Per attempt, in milliseconds. @default 30000 */
  timeoutMs?: number;
  /** Extra attempts of idempotent calls after a 429, a 5xx, a timeout or a network error. @default 2 */
  retries?: number;
  /** Backoff before retry n is uniform in [0, min(retryMaxDelayMs, retryBaseMs * 2^(n-1))) (full jitter). @default 200 */
  retryBaseMs?: number;
  /** Upper bound of one backoff, Retry-After included. @default 5000 */
  retryMaxDelayMs?: number;
  /** Headers added to every request. */
  headers?: Record<string, string>;
  /** A fetch implementation. @default globalThis.fetch */
  fetch?: typeof fetch;
}

export interface CallOptions {
  /** Aborts the call (no retry after it). */
  signal?: AbortSignal;
  /** Overrides the client's timeoutMs for this call. */
  timeoutMs?: number;
  /** Overrides the client's retries for this call (idempotent calls only). */
  retries?: number;
  /** Sent as x-request-id on every attempt; a new UUID by default. */
  requestId?: string;
  headers?: Record<string, string>;
}

/** The service's codes (the error body's \`code\`), and the client's own for status 0. */
export type MLServiceErrorCode =
  | 'bad_request' | 'unauthorized' | 'forbidden' | 'not_found' | 'conflict' | 'payload_too_large'
  | 'validation_error' | 'throttled' | 'internal_error' | 'bad_gateway' | 'service_unavailable'
  | 'storage_unavailable' | 'gateway_timeout'
  | 'timeout' | 'network_error' | 'aborted' | 'invalid_response'
  | (string & {});

/** Every failure of a call. Service answers carry their status; client-side failures have status 0. */
export declare class MLServiceError extends Error {
  readonly name: 'MLServiceError';
  /** HTTP status, or 0 for timeout, network_error and aborted. */
  readonly status: number;
  readonly code: MLServiceErrorCode;
  /** Per-field details of a validation error: { field, message, type }. */
  readonly details: Array<{ [key: string]: unknown }>;
  /** The service's request id (error body, else the x-request-id header); quote it in bug reports. */
  readonly requestId: string | null;
  readonly method: string;
  readonly path: string;
  /** Attempts made, retries included. */
  readonly attempts: number;
  /** The parsed error body (or its text when it was not JSON). */
  readonly body: unknown;
  /** True for 429, 5xx, timeout and network_error. */
  readonly retryable: boolean;
}

export interface RouteSpec {
  readonly name: string;
  readonly method: 'GET' | 'POST' | 'DELETE';
  readonly path: string;
  readonly idempotent: boolean;
}

export declare const ROUTES: ReadonlyArray<RouteSpec>;
export declare const CLIENT_VERSION: string;
`;

/** index.d.ts for an OpenAPI document; throws when the document has a route the client lacks. */
function render(doc) {
  const renderer = new Renderer(doc);
  const known = new Set(ROUTES.map((r) => `${r.method} ${r.path}`));
  for (const [route, operations] of Object.entries(doc.paths || {})) {
    for (const method of Object.keys(operations)) {
      if (['parameters', 'summary', 'description', 'servers'].includes(method)) continue;
      const key = `${method.toUpperCase()} ${route}`;
      if (!known.has(key)) throw new Error(`the OpenAPI document has ${key}, which the client has no method for: add it to src/routes.js and src/index.js`);
    }
  }
  const title = doc.info?.title || 'the service';
  const version = doc.info?.version || '?';
  const parts = [
    `// Generated by scripts/gen-types.js from layers/designer_ml/openapi.json (${title} ${version}).`,
    '// Do not edit: change the models, run `make openapi`, then `npm run gen-types` in clients/node.',
    '',
  ];
  for (const [name, schema] of Object.entries(renderer.schemas)) {
    parts.push(renderer.declaration(name, schema), '');
  }
  parts.push(HANDWRITTEN.trim(), '');
  parts.push(
    '/** The Designer BFF ML service. Each method sends the request body of API.md and resolves to the response body. */',
    'export declare class MLServiceClient {',
    '  constructor(options?: MLServiceClientOptions);',
    '  readonly baseUrl: string;',
    '  readonly timeoutMs: number;',
    '  readonly retries: number;',
    '',
    ROUTES.map((r) => renderer.method(r)).join('\n\n'),
    '}',
    '',
  );
  return { text: parts.join('\n'), warnings: unique(renderer.warnings) };
}

function main(argv) {
  const check = argv.includes('--check');
  const source = argv.find((a) => !a.startsWith('--')) || DEFAULT_DOCUMENT;
  const { text, warnings } = render(JSON.parse(fs.readFileSync(source, 'utf8')));
  for (const warning of warnings) process.stderr.write(`gen-types: ${warning}\n`);
  if (check) {
    const current = fs.existsSync(OUTPUT) ? fs.readFileSync(OUTPUT, 'utf8') : '';
    if (current !== text) {
      process.stderr.write('index.d.ts is out of date with the OpenAPI document: run `npm run gen-types`\n');
      return 1;
    }
    return 0;
  }
  fs.writeFileSync(OUTPUT, text);
  process.stdout.write(`wrote ${path.relative(process.cwd(), OUTPUT) || OUTPUT}\n`);
  return 0;
}

module.exports = { render, DEFAULT_DOCUMENT, OUTPUT };

if (require.main === module) process.exitCode = main(process.argv.slice(2));
