#!/usr/bin/env node
// What kubeconfigs run (cli/kubeconfig.ts): `airlock token` as kubectl's exec
// plugin, in the least time. Where there is a /bin/sh, airlock-token.sh runs
// first and prints a cached token without starting Node; this runs when it
// cannot. kubectl runs it for every command, so: Node's compile cache is on
// before anything of ours loads (kubeconfigs also set NODE_COMPILE_CACHE, which
// covers this file), in the agent's own 0700 profile directory; a token still
// valid in the disk cache (token-cache.ts) is answered without loading the CLI;
// anything else runs the whole CLI with the same arguments.
import { enableCompileCache } from 'node:module';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { runCli as RunCli } from './airlock.ts';

/** The arguments a kubeconfig passes; undefined for anything else (the CLI then says what is wrong). */
function kubeconfigArgs(args: string[]) {
  try {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        endpoint: { type: 'string' },
        'agent-id': { type: 'string' },
        'profile-dir': { type: 'string' },
        'endpoint-ca': { type: 'string' },
        connection: { type: 'string' },
        plan: { type: 'string' },
        mode: { type: 'string' },
      },
    });
    const { endpoint, 'agent-id': agent, connection } = values;
    if (positionals.length !== 1 || positionals[0] !== 'token' || !endpoint || !agent || !connection) return undefined;
    return { endpoint, agent, connection, profileDir: values['profile-dir'] ? resolve(values['profile-dir']) : undefined, plan: values.plan, mode: values.mode };
  } catch {
    return undefined;
  }
}

const args = process.argv.slice(2);
const asked = kubeconfigArgs(args);
let credential: string | undefined;
if (asked) {
  const { findProfile, profileDir } = await import('./profile.ts');
  const dir = asked.profileDir ?? profileDir();
  enableCompileCache(join(dir, 'compile-cache'));
  const { execCredential, nameWindow, readCachedToken } = await import('./token-cache.ts');
  // Logged out since: no token from the cache (the CLI says how to log in).
  const profile = findProfile(asked.endpoint, asked.agent, dir);
  const key = {
    endpoint: asked.endpoint,
    agent: asked.agent,
    connection: asked.connection,
    ...(asked.plan ? { plan: asked.plan, mode: asked.mode } : { window: profile?.windows?.[asked.connection] }),
  };
  const cached = profile && readCachedToken(dir, key);
  // The sh fast path (airlock-token.sh) finds this token next time, even if no window was named for it yet.
  if (cached) nameWindow(dir, key);
  credential = cached ? execCredential(cached) : undefined;
}
if (credential) {
  process.stdout.write(`${credential}\n`);
} else {
  // The CLI beside this file: airlock.ts from source, airlock.mjs in the package (scripts/package-cli.ts).
  const cli = new URL(import.meta.url.endsWith('.ts') ? './airlock.ts' : './airlock.mjs', import.meta.url).href;
  const { runCli } = (await import(cli)) as { runCli: typeof RunCli };
  process.exitCode = await runCli(args);
}
