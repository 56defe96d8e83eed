// The third-party clients the client suites drive, installed once and cached under
// ~/.cache/airlock like the test cluster's binaries:
//   helm         Helm v3 built from the Go module proxy (go install helm.sh/helm/v3/cmd/helm@HELM_VERSION)
//   venv         a Python venv with the `kubernetes` client from PyPI
//   client-node  @kubernetes/client-node from the npm registry (outside the repo: no project dependency)
//   mcp-tools    the MCP Inspector (its CLI) and the MCP conformance tool, from npm (outside the repo)
//
//   npm run client-tools              # builds/installs what is missing, with progress; prints the paths
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const HELM_VERSION = 'v3.22.0';
export const PYTHON_KUBERNETES_VERSION = '37.0.2';
export const CLIENT_NODE_VERSION = '2.0.1';
export const MCP_INSPECTOR_VERSION = '2.12.0';
export const MCP_CONFORMANCE_VERSION = '0.1.16';

export class ToolUnavailableError extends Error {
  override name = 'ToolUnavailableError';
}

function cacheRoot(): string {
  return process.env.AIRLOCK_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'airlock');
}

function log(message: string): void {
  process.stderr.write(`[client-tools] ${message}\n`);
}

function run(what: string, command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): void {
  const started = Date.now();
  log(`${what}: ${command} ${args.join(' ')}`);
  const result = spawnSync(command, args, { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ['ignore', 'inherit', 'inherit'] });
  if (result.error) throw new ToolUnavailableError(`${what}: ${command} could not run (${result.error.message})`);
  if (result.status !== 0) throw new ToolUnavailableError(`${what} failed (exit ${result.status ?? result.signal})`);
  log(`${what}: done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

function goVersion(): string | undefined {
  const result = spawnSync('go', ['env', 'GOVERSION'], { encoding: 'utf8' });
  return result.error || result.status !== 0 ? undefined : result.stdout.trim();
}

/** The helm binary: built once per Helm release and Go version. */
export function ensureHelm(): string {
  const go = goVersion();
  if (!go) throw new ToolUnavailableError('Go is not installed (needed once to build Helm from the Go module proxy)');
  const dir = join(cacheRoot(), 'helm', `${HELM_VERSION}-${go}`);
  const binary = join(dir, 'helm');
  if (existsSync(binary)) return binary;
  const partial = `${dir}.partial-${process.pid}`;
  mkdirSync(partial, { recursive: true });
  try {
    log(`building Helm ${HELM_VERSION} with ${go}; the first build takes minutes, later runs use ${dir}`);
    run('go install helm', 'go', ['install', '-trimpath', '-ldflags=-s -w', `helm.sh/helm/v3/cmd/helm@${HELM_VERSION}`], {
      env: { GOBIN: partial, CGO_ENABLED: '0' },
    });
    rmSync(dir, { recursive: true, force: true });
    renameSync(partial, dir);
  } finally {
    rmSync(partial, { recursive: true, force: true });
  }
  return binary;
}

/** A venv's python with the `kubernetes` package. */
export function ensurePythonVenv(): string {
  const dir = join(cacheRoot(), 'venv');
  const python = join(dir, 'bin', 'python');
  const marker = join(dir, `.kubernetes-${PYTHON_KUBERNETES_VERSION}`);
  if (existsSync(marker)) return python;
  rmSync(dir, { recursive: true, force: true });
  const system = process.env.PYTHON ?? 'python3';
  run('python venv', system, ['-m', 'venv', dir]);
  run('pip install kubernetes', python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', `kubernetes==${PYTHON_KUBERNETES_VERSION}`]);
  writeFileSync(marker, '');
  return python;
}

/** The directory to import @kubernetes/client-node from. */
export function ensureClientNode(): string {
  const prefix = join(cacheRoot(), 'client-node');
  const entry = join(prefix, 'node_modules', '@kubernetes', 'client-node');
  const marker = join(prefix, `.client-node-${CLIENT_NODE_VERSION}`);
  if (existsSync(marker) && existsSync(entry)) return entry;
  mkdirSync(prefix, { recursive: true });
  run('npm install @kubernetes/client-node', 'npm', ['install', '--no-audit', '--no-fund', '--no-save', '--prefix', prefix, `@kubernetes/client-node@${CLIENT_NODE_VERSION}`]);
  writeFileSync(marker, '');
  return entry;
}

/** The MCP Inspector's launcher (`--cli`) and the conformance tool's entry, installed together. */
export function ensureMcpTools(): { inspector: string; conformance: string } {
  const prefix = join(cacheRoot(), 'mcp-tools');
  const inspector = join(prefix, 'node_modules', '@modelcontextprotocol', 'inspector', 'clients', 'launcher', 'build', 'index.js');
  const conformance = join(prefix, 'node_modules', '@modelcontextprotocol', 'conformance', 'dist', 'index.js');
  const marker = join(prefix, `.mcp-tools-${MCP_INSPECTOR_VERSION}-${MCP_CONFORMANCE_VERSION}`);
  if (existsSync(marker) && existsSync(inspector) && existsSync(conformance)) return { inspector, conformance };
  mkdirSync(prefix, { recursive: true });
  run('npm install MCP Inspector and conformance', 'npm', [
    'install',
    '--no-audit',
    '--no-fund',
    '--no-save',
    '--prefix',
    prefix,
    `@modelcontextprotocol/inspector@${MCP_INSPECTOR_VERSION}`,
    `@modelcontextprotocol/conformance@${MCP_CONFORMANCE_VERSION}`,
  ]);
  writeFileSync(marker, '');
  return { inspector, conformance };
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const paths = { helm: ensureHelm(), python: ensurePythonVenv(), clientNode: ensureClientNode(), ...ensureMcpTools() };
    for (const [name, path] of Object.entries(paths)) process.stdout.write(`${name}: ${path}\n`);
  } catch (error) {
    process.stderr.write(`[client-tools] ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  }
}
