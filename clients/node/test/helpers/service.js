'use strict';

// The service the tests talk to: ML_SERVICE_URL when set, else the repository's local server
// (`python -m local.server`, what `make run` starts) on a free port, stopped after the tests.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');

const REPO_ROOT = path.resolve(__dirname, '../../../..');
const PYTHON = path.join(REPO_ROOT, '.venv', 'bin', 'python');
const STARTUP_TIMEOUT_MS = 60_000;
const LOG_TAIL_CHARS = 8_000;

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function healthy(url) {
  try {
    const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2_000) });
    return response.ok;
  } catch {
    return false;
  }
}

/**
 * Resolves to { url, started, stop(), logs() }. `started` is false when ML_SERVICE_URL named
 * a running service (then stop() does nothing).
 */
async function startService() {
  const given = process.env.ML_SERVICE_URL;
  if (given) {
    return { url: given.replace(/\/+$/, ''), started: false, stop: async () => {}, logs: () => '' };
  }
  if (!fs.existsSync(PYTHON)) {
    throw new Error(`${PYTHON} not found: run \`make test\` (or \`make run\`) once to create the venv, or set ML_SERVICE_URL`);
  }
  const port = await freePort();
  const env = { ...process.env, HOST: '127.0.0.1', PORT: String(port), LOCAL_LOG_LEVEL: 'WARNING' };
  // The seed's client sends no x-api-key, and the tests want their own embedded moto.
  delete env.API_KEY;
  delete env.AWS_ENDPOINT_URL;
  const child = spawn(PYTHON, ['-m', 'local.server'], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk) => {
    output = (output + chunk).slice(-LOG_TAIL_CHARS);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  const stop = async () => {
    process.removeListener('exit', killOnExit);
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  };

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  let dead = null;
  exited.then((status) => {
    dead = status;
  });
  while (!(await healthy(url))) {
    if (dead) throw new Error(`the local server exited (${JSON.stringify(dead)}) before answering /health:\n${output}`);
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`the local server did not answer GET /health within ${STARTUP_TIMEOUT_MS / 1000} s:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return { url, started: true, stop, logs: () => output };
}

/** The set of "METHOD /path" the service's own OpenAPI document lists (fetched by `client`). */
async function documentedRoutes(client) {
  const doc = await client.getOpenApiDocument();
  const routes = new Set();
  for (const [route, operations] of Object.entries(doc.paths || {})) {
    for (const method of Object.keys(operations)) routes.add(`${method.toUpperCase()} ${route}`);
  }
  return routes;
}

module.exports = { startService, documentedRoutes, freePort, REPO_ROOT };
