// The exec plugin's token cache (cli/token-cache.ts) and its entry (cli/airlock-token.ts):
// private files, one per (endpoint, agent, connection, window, plan), never handed out
// within a minute of expiry, gone with logout; the entry answers from it without the CLI.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { runCli } from '../../cli/airlock.ts';
import { agentKubeconfig } from '../../cli/commands/kubeconfig.ts';
import { writeProfile } from '../../cli/profile.ts';
import { execCredential, readCachedToken, removeCachedTokens, switchWindow, TOKEN_REUSE_MARGIN_MS, tokenCacheName, writeCachedToken, type TokenCacheKey } from '../../cli/token-cache.ts';

const fresh = () => mkdtempSync(join(tmpdir(), 'airlock-token-cache-'));
const NOW = Date.parse('2026-01-01T00:00:00Z');
const KEY: TokenCacheKey = { endpoint: 'https://airlock.example:8443', agent: 'agt_aaaaaaaaaaaaaaaaaaaaaa', connection: 'prod', window: 'gr_1' };
const inMinutes = (minutes: number) => new Date(NOW + minutes * 60_000).toISOString();

describe('token cache', () => {
  it('hands a stored token out again until shortly before it expires', () => {
    const dir = fresh();
    writeCachedToken(dir, KEY, { token: 'a.b.c', expiresAt: inMinutes(10) });
    expect(readCachedToken(dir, KEY, NOW)).toEqual({ token: 'a.b.c', expiresAt: inMinutes(10) });
    expect(readCachedToken(dir, KEY, NOW + 10 * 60_000 - TOKEN_REUSE_MARGIN_MS - 1)).toBeDefined();
    expect(readCachedToken(dir, KEY, NOW + 10 * 60_000 - TOKEN_REUSE_MARGIN_MS)).toBeUndefined();
  });

  it('keeps one private file per endpoint, agent, connection, window and plan', () => {
    const dir = fresh();
    writeCachedToken(dir, KEY, { token: 'a.b.c', expiresAt: inMinutes(10) });
    for (const other of [
      { ...KEY, window: 'gr_2' },
      { ...KEY, connection: 'staging' },
      { ...KEY, agent: 'agt_b' },
      { ...KEY, endpoint: 'https://other.example' },
      { ...KEY, plan: 'pl_1', mode: 'plan' },
    ]) {
      expect(readCachedToken(dir, other, NOW)).toBeUndefined();
    }
    expect(readCachedToken(dir, { ...KEY, endpoint: 'HTTPS://Airlock.Example:8443/' }, NOW)).toBeDefined();
    for (const file of readdirSync(join(dir, 'tokens'))) expect(statSync(join(dir, 'tokens', file)).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'tokens')).mode & 0o777).toBe(0o700);
  });

  it("removes an agent's tokens (logout), and only that agent's", () => {
    const dir = fresh();
    const other = { ...KEY, agent: 'agt_b' };
    writeCachedToken(dir, KEY, { token: 'a.b.c', expiresAt: inMinutes(10) });
    writeCachedToken(dir, other, { token: 'd.e.f', expiresAt: inMinutes(10) });
    removeCachedTokens(dir, KEY);
    expect(readCachedToken(dir, KEY, NOW)).toBeUndefined();
    expect(readCachedToken(dir, other, NOW)).toBeDefined();
  });

  it('ignores a file it cannot read as a token', () => {
    const dir = fresh();
    writeCachedToken(dir, KEY, { token: 'a.b.c', expiresAt: inMinutes(10) });
    const file = readdirSync(join(dir, 'tokens')).find((name) => name.endsWith('.token'));
    writeFileSync(join(dir, 'tokens', file!), '1\n{not json\n');
    expect(readCachedToken(dir, KEY, NOW)).toBeUndefined();
  });

  it('the exec entry answers from the cache for a logged-in agent without asking the gateway', () => {
    const dir = fresh();
    const endpoint = 'https://127.0.0.1:9'; // nothing listens: a request would fail
    writeProfile({ endpoint, agentId: KEY.agent, secret: 'alk_x', windows: { prod: 'gr_1' } }, dir, { makeCurrent: true });
    const expiresAt = new Date(Date.now() + 10 * 60_000).toISOString();
    writeCachedToken(dir, { ...KEY, endpoint }, { token: 'a.b.c', expiresAt });
    const out = execFileSync(process.execPath, ['cli/airlock-token.ts', '--endpoint', endpoint, '--agent-id', KEY.agent, '--profile-dir', dir, 'token', '--connection', 'prod'], { encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual(JSON.parse(execCredential({ token: 'a.b.c', expiresAt })));
  });
});

// The sh fast path (cli/airlock-token.sh) as kubeconfigs run it: the kubeconfig comes from the real
// `airlock kubeconfig`, its plugin is run with /bin/sh. A token it prints came from the cache without
// Node; anything else falls through to the real Node entry, which here finds no gateway
// (nothing listens on the endpoint) and says so: stdout stays empty.
describe('the sh fast path of kubeconfigs', () => {
  const endpoint = 'https://127.0.0.1:9';
  const agent = KEY.agent;
  /** A profile directory whose path holds quotes, spaces, $, `, * and a newline. */
  const oddDir = () => join(fresh(), `it's "odd" $HOME \`x\` *\nline`);
  const inSeconds = (seconds: number) => new Date(Date.now() + seconds * 1000).toISOString();

  async function loggedIn(dir: string, options: { window?: string; agentId?: string } = {}) {
    const agentId = options.agentId ?? agent;
    writeProfile({ endpoint, agentId, secret: 'alk_x', windows: { prod: options.window ?? 'gr_1' } }, dir, { makeCurrent: true });
    const out: string[] = [];
    const code = await runCli(['--profile-dir', dir, '--endpoint', endpoint, '--agent-id', agentId, 'kubeconfig', '--connection', 'prod'], { out: (text) => out.push(text), err: () => {} });
    expect(code).toBe(0);
    return (parseYaml(out.join('\n')) as { users: { user: { exec: { command: string; args: string[]; env: { name: string; value: string }[] } } }[] }).users[0]!.user.exec;
  }
  type Exec = Awaited<ReturnType<typeof loggedIn>>;
  function run(exec: Exec, options: { env?: NodeJS.ProcessEnv; node?: string } = {}) {
    // `node`: what the script would run instead of Node (a path that does not exist: proves it ran nothing).
    const args = options.node ? exec.args.map((arg) => (arg === process.execPath ? options.node! : arg)) : exec.args;
    const env = { ...process.env, ...Object.fromEntries(exec.env.map(({ name, value }) => [name, value])), ...options.env };
    return spawnSync(exec.command, args, { encoding: 'utf8', env });
  }
  const credentialFor = (token: string, expiresAt: string) => `${execCredential({ token, expiresAt })}\n`;

  it('kubeconfigs run it with /bin/sh, naming the profile directory and the cache, then Node with the entry', async () => {
    const dir = fresh();
    const exec = await loggedIn(dir);
    expect(exec.command).toBe('/bin/sh');
    expect(exec.args.slice(0, 5)).toEqual([resolve('cli/airlock-token.sh'), dir, tokenCacheName({ endpoint, agent, connection: 'prod' }), process.execPath, resolve('cli/airlock-token.ts')]);
  });

  it('prints a cached token of the current window exactly, without starting anything', async () => {
    const dir = oddDir();
    const exec = await loggedIn(dir);
    const expiresAt = inSeconds(600);
    writeCachedToken(dir, { endpoint, agent, connection: 'prod', window: 'gr_1' }, { token: 'a.b.c', expiresAt });
    const result = run(exec, { node: join(dir, 'no-such-node') });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toBe(credentialFor('a.b.c', expiresAt));
    expect(result.stderr).toBe('');
  });

  it('within the reuse margin of expiry: not printed; the Node entry runs with the same arguments', async () => {
    const dir = oddDir();
    const exec = await loggedIn(dir);
    writeCachedToken(dir, { endpoint, agent, connection: 'prod', window: 'gr_1' }, { token: 'a.b.c', expiresAt: inSeconds(TOKEN_REUSE_MARGIN_MS / 1000 - 1) });
    const result = run(exec);
    expect(result.status).not.toBe(0);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('cannot reach Airlock at https://127.0.0.1:9');
    expect(result.stderr).not.toContain('a.b.c');
  });

  it("never prints another window's, connection's or agent's token", async () => {
    const dir = fresh();
    const exec = await loggedIn(dir);
    const expiresAt = inSeconds(600);
    // A token of the connection's earlier window, then a new window: the new one has no token yet.
    writeCachedToken(dir, { endpoint, agent, connection: 'prod', window: 'gr_1' }, { token: 'old.window.token', expiresAt });
    expect(run(exec, { node: join(dir, 'no-such-node') }).stdout).toBe(credentialFor('old.window.token', expiresAt));
    switchWindow(dir, { endpoint, agent, connection: 'prod' }, 'gr_2', () => writeProfile({ endpoint, agentId: agent, secret: 'alk_x', windows: { prod: 'gr_2' } }, dir));
    // Even if a token request of the earlier window, in flight meanwhile, writes its token after.
    writeCachedToken(dir, { endpoint, agent, connection: 'prod', window: 'gr_1' }, { token: 'old.window.token', expiresAt });
    writeCachedToken(dir, { endpoint, agent, connection: 'staging', window: 'gr_2' }, { token: 'other.connection.token', expiresAt });
    const other = 'agt_bbbbbbbbbbbbbbbbbbbbbb';
    writeProfile({ endpoint, agentId: other, secret: 'alk_y', windows: { prod: 'gr_2' } }, dir);
    writeCachedToken(dir, { endpoint, agent: other, connection: 'prod', window: 'gr_2' }, { token: 'other.agent.token', expiresAt });
    const result = run(exec);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('cannot reach Airlock');
    // The new window's token is printed once there is one.
    writeCachedToken(dir, { endpoint, agent, connection: 'prod', window: 'gr_2' }, { token: 'new.window.token', expiresAt });
    expect(run(exec, { node: join(dir, 'no-such-node') }).stdout).toBe(credentialFor('new.window.token', expiresAt));
  });

  it("a plan's kubeconfig prints only that plan's token in its mode, never the window's", async () => {
    const dir = fresh();
    await loggedIn(dir);
    const kubeconfig = agentKubeconfig({ profileDir: dir, endpoint, agentId: agent }, resolve('cli/airlock.ts'), 'prod', { plan: 'pl_1', mode: 'plan' });
    const exec = (parseYaml(kubeconfig) as { users: { user: { exec: Exec } }[] }).users[0]!.user.exec;
    const expiresAt = inSeconds(600);
    writeCachedToken(dir, { endpoint, agent, connection: 'prod', window: 'gr_1' }, { token: 'window.token', expiresAt });
    writeCachedToken(dir, { endpoint, agent, connection: 'prod', plan: 'pl_1', mode: 'apply' }, { token: 'apply.token', expiresAt });
    writeCachedToken(dir, { endpoint, agent, connection: 'prod', plan: 'pl_2', mode: 'plan' }, { token: 'other.plan.token', expiresAt });
    const none = run(exec, { node: join(dir, 'no-such-node') });
    expect(none.stdout).toBe('');
    expect(none.status).toBe(127);
    writeCachedToken(dir, { endpoint, agent, connection: 'prod', plan: 'pl_1', mode: 'plan' }, { token: 'plan.token', expiresAt });
    expect(run(exec, { node: join(dir, 'no-such-node') }).stdout).toBe(credentialFor('plan.token', expiresAt));
  });

  it('after logout nothing is printed', async () => {
    const dir = fresh();
    const exec = await loggedIn(dir);
    writeCachedToken(dir, { endpoint, agent, connection: 'prod', window: 'gr_1' }, { token: 'a.b.c', expiresAt: inSeconds(600) });
    expect(await runCli(['--profile-dir', dir, '--endpoint', endpoint, '--agent-id', agent, 'logout'], { out: () => {}, err: () => {} })).toBe(0);
    const result = run(exec);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(`this kubeconfig was issued for agent ${agent} at ${endpoint}`);
    expect(result.stderr).not.toContain('/tokens/'); // the script's own reads say nothing
  });

  it('falls through on a file it should not trust or cannot read', async () => {
    const dir = fresh();
    const exec = await loggedIn(dir);
    const key = { endpoint, agent, connection: 'prod', window: 'gr_1' };
    const tokens = join(dir, 'tokens');
    const tokenFile = () =>
      join(
        tokens,
        readdirSync(tokens).find((name) => name.endsWith('.token'))!,
      );
    const windowFile = () =>
      join(
        tokens,
        readdirSync(tokens).find((name) => name.endsWith('.window'))!,
      );
    // The Node entry would answer from the token file itself (it reads the profile's window, and
    // line 2 only): here the script runs a Node that does not exist, so a fall-through shows as 127.
    const fellThrough = (what: string) => {
      const result = run(exec, { node: join(dir, 'no-such-node') });
      expect(result.stdout, what).toBe('');
      expect(result.status, what).toBe(127);
      expect(result.stderr, what).not.toContain('a.b.c');
      expect(result.stderr, what).not.toContain('/tokens/'); // the script's own reads say nothing
    };
    const expiresAt = inSeconds(600);
    const until = Math.floor(Date.parse(expiresAt) / 1000) - 60;
    const cases: [string, () => void][] = [
      ['readable by others', () => chmodSync(tokenFile(), 0o644)],
      [
        'a symlink',
        () => {
          const target = join(dir, 'elsewhere');
          copyFileSync(tokenFile(), target);
          rmSync(tokenFile());
          symlinkSync(target, join(tokens, `${tokenCacheName(key)}.window-gr_1.token`));
        },
      ],
      ['a leading zero (octal to sh)', () => writeFileSync(tokenFile(), `0${until}\n${execCredential({ token: 'a.b.c', expiresAt })}\n`)],
      ['not a number', () => writeFileSync(tokenFile(), `${until}x\n${execCredential({ token: 'a.b.c', expiresAt })}\n`)],
      ['no ExecCredential', () => writeFileSync(tokenFile(), `${until}\n{"token":"a.b.c"}\n`)],
      [
        'a window id of other characters',
        () => {
          writeFileSync(windowFile(), 'gr.1\n');
          copyFileSync(tokenFile(), join(tokens, `${tokenCacheName(key)}.window-gr.1.token`));
        },
      ],
      ['no window named', () => rmSync(windowFile())],
    ];
    for (const [what, spoil] of cases) {
      removeCachedTokens(dir, key);
      writeCachedToken(dir, key, { token: 'a.b.c', expiresAt });
      expect(run(exec, { node: join(dir, 'no-such-node') }).stdout, what).toBe(credentialFor('a.b.c', expiresAt));
      spoil();
      fellThrough(what);
    }
  });

  it('without --profile-dir in the kubeconfig: the default directory where kubectl runs, as the Node entry finds it', async () => {
    const home = fresh();
    const dir = join(home, '.config', 'airlock');
    const exec = await loggedIn(dir);
    const defaults = {
      ...exec,
      args: exec.args.map((arg, index) => (index === 1 ? '' : arg)).filter((arg, index) => !(exec.args[index] === '--profile-dir' || exec.args[index - 1] === '--profile-dir')),
    };
    const expiresAt = inSeconds(600);
    writeCachedToken(dir, { endpoint, agent, connection: 'prod', window: 'gr_1' }, { token: 'a.b.c', expiresAt });
    const none = { AIRLOCK_PROFILE_DIR: undefined, XDG_CONFIG_HOME: undefined };
    expect(run(defaults, { env: { ...none, HOME: home }, node: join(dir, 'no-such-node') }).stdout).toBe(credentialFor('a.b.c', expiresAt));
    expect(run(defaults, { env: { ...none, XDG_CONFIG_HOME: join(home, '.config') }, node: join(dir, 'no-such-node') }).stdout).toBe(credentialFor('a.b.c', expiresAt));
    expect(run(defaults, { env: { ...none, AIRLOCK_PROFILE_DIR: dir }, node: join(dir, 'no-such-node') }).stdout).toBe(credentialFor('a.b.c', expiresAt));
    // Another directory there: the Node entry decides (this agent is not logged in there).
    const elsewhere = run(defaults, { env: { ...none, AIRLOCK_PROFILE_DIR: fresh() } });
    expect(elsewhere.stdout).toBe('');
    expect(elsewhere.stderr).toContain(`this kubeconfig was issued for agent ${agent}`);
  });
});
