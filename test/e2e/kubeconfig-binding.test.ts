// One identity per kubeconfig, with real kubectl: a kubeconfig runs as the agent and
// endpoint that issued it, whoever logs in later into the same profile directory, and
// refuses (naming that agent and endpoint) once that agent is logged out there.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { kubectl } from '../support/kubectl.ts';
import { PROD_POLICY, startTestStack, type CliResult, type TestAgent, type TestStack } from '../support/stack.ts';

const cluster = inject('cluster');

describe.skipIf(!cluster)('a kubeconfig is bound to the agent and endpoint that issued it', () => {
  let env: TestStack;
  let alpha: TestAgent;
  let beta: TestAgent;
  /** One profile directory for both agents, as on a shared CI runner. */
  let shared: (args: string[]) => Promise<CliResult>;
  let alphaKubeconfig: string;
  let betaKubeconfig: string;
  const suffix = Date.now().toString(36);

  const records = async (): Promise<{ agent: string; verb: string; name?: string }[]> => {
    const listed = await env.cli(['--json', 'audit', 'list', '--connection', 'prod-cluster', '--all', '--limit', '500']);
    expect(listed.code, listed.stderr).toBe(0);
    return (JSON.parse(listed.stdout) as { items: { agent: string; verb: string; name?: string }[] }).items;
  };
  /** The agents on record for reads of `name` (a create's record has no name: the name is in its body). */
  const recordedAgentOf = async (name: string): Promise<string[]> => (await records()).filter((item) => item.name === name).map((item) => item.agent);
  const clusterHas = async (name: string) => (await kubectl(['get', 'configmap', name, '-n', 'prod', '-o', 'name'], { kubeconfig: cluster!.adminKubeconfig })).code === 0;

  beforeAll(async () => {
    env = await startTestStack();
    await env.createConnection('prod-cluster', { cluster: cluster!, policy: PROD_POLICY });
    alpha = await env.createAgent(`alpha-${suffix}`);
    beta = await env.createAgent(`beta-${suffix}`);
    shared = alpha.cli; // alpha's profile directory
    const window = await shared(['access', 'request', '--connection', 'prod-cluster', '--duration', '30m', '--reason', 'kubeconfig binding e2e']);
    expect(window.code, window.stderr).toBe(0);
    alphaKubeconfig = await alpha.kubeconfig('prod-cluster');
    // beta logs in to the same directory afterwards and becomes its default agent.
    const login = await shared(['login', '--agent-id', beta.id, '--secret-file', join(env.dir, `${beta.name}.secret`)]);
    expect(login.code, login.stderr).toBe(0);
    const betaWindow = await shared(['access', 'request', '--connection', 'prod-cluster', '--duration', '30m', '--reason', 'kubeconfig binding e2e']);
    expect(betaWindow.code, betaWindow.stderr).toBe(0);
    const issued = await shared(['kubeconfig', '--connection', 'prod-cluster']);
    expect(issued.code, issued.stderr).toBe(0);
    betaKubeconfig = join(env.dir, 'beta-shared.kubeconfig');
    writeFileSync(betaKubeconfig, issued.stdout, { mode: 0o600 });
  });
  afterAll(async () => {
    await env?.stop();
  });

  it('names its agent and endpoint in the exec plugin', async () => {
    const text = readFileSync(alphaKubeconfig, 'utf8');
    const config = parseYaml(text) as { users: { user: { exec: { args: string[] } } }[] };
    const args = config.users[0]!.user.exec.args;
    const after = (flag: string) => args[args.indexOf(flag) + 1];
    expect(after('--agent-id')).toBe(alpha.id);
    expect(after('--endpoint')).toBe(env.stack.url);
    expect(after('--profile-dir')).toBe(alpha.profileDir);
    expect(args.slice(-3)).toEqual(['token', '--connection', 'prod-cluster']);
    expect(text).not.toContain(alpha.secret);
  });

  it('two agents logged in side by side in one profile directory: each kubeconfig acts as its own agent', async () => {
    const asAlpha = `as-alpha-${suffix}`;
    const asBeta = `as-beta-${suffix}`;
    const a = await kubectl(['create', 'configmap', asAlpha, '-n', 'prod'], { kubeconfig: alphaKubeconfig });
    expect(a.code, a.stderr).toBe(0);
    const b = await kubectl(['create', 'configmap', asBeta, '-n', 'prod'], { kubeconfig: betaKubeconfig });
    expect(b.code, b.stderr).toBe(0);
    expect((await kubectl(['get', 'configmap', asAlpha, '-n', 'prod'], { kubeconfig: alphaKubeconfig })).code).toBe(0);
    expect((await kubectl(['get', 'configmap', asBeta, '-n', 'prod'], { kubeconfig: betaKubeconfig })).code).toBe(0);
    expect(await recordedAgentOf(asAlpha)).toEqual([alpha.name]);
    expect(await recordedAgentOf(asBeta)).toEqual([beta.name]);
    await kubectl(['delete', 'configmap', asAlpha, asBeta, '-n', 'prod'], { kubeconfig: cluster!.adminKubeconfig });
  });

  it('the exec plugin output is a valid ExecCredential, and token without flags runs as the default agent', async () => {
    const bound = await shared(['--agent-id', alpha.id, 'token', '--connection', 'prod-cluster']);
    expect(bound.code, bound.stderr).toBe(0);
    const credential = JSON.parse(bound.stdout) as { apiVersion: string; kind: string; status: { token: string; expirationTimestamp: string } };
    expect(credential).toMatchObject({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential' });
    expect(Date.parse(credential.status.expirationTimestamp)).toBeGreaterThan(Date.now());
    const claims = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { sub: string };
    expect(claims(credential.status.token).sub).toBe(alpha.id);
    const unbound = await shared(['token', '--connection', 'prod-cluster']);
    expect(unbound.code, unbound.stderr).toBe(0);
    expect(claims((JSON.parse(unbound.stdout) as typeof credential).status.token).sub).toBe(beta.id);
  });

  it('a later login at another endpoint into the same directory changes nothing for kubeconfigs already issued', async () => {
    const other = await startTestStack();
    try {
      const gamma = await other.createAgent(`gamma-${suffix}`);
      const login = await other.cli(['--profile-dir', alpha.profileDir, 'login', '--agent-id', gamma.id, '--secret-file', join(other.dir, `${gamma.name}.secret`)]);
      expect(login.code, login.stderr).toBe(0);
      const name = `after-other-endpoint-${suffix}`;
      const created = await kubectl(['create', 'configmap', name, '-n', 'prod'], { kubeconfig: betaKubeconfig });
      expect(created.code, created.stderr).toBe(0);
      expect((await kubectl(['get', 'configmap', name, '-n', 'prod'], { kubeconfig: alphaKubeconfig })).code).toBe(0);
      expect(await recordedAgentOf(name)).toEqual([alpha.name]);
      await kubectl(['delete', 'configmap', name, '-n', 'prod'], { kubeconfig: cluster!.adminKubeconfig });
    } finally {
      await other.stop();
    }
  });

  it('after its agent logs out, the kubeconfig refuses, naming agent, endpoint and the login to run; nothing reaches the cluster', async () => {
    const loggedOut = await shared(['--agent-id', alpha.id, 'logout']);
    expect(loggedOut.code, loggedOut.stderr).toBe(0);
    const name = `after-logout-${suffix}`;
    const before = (await records()).length;
    const refused = await kubectl(['create', 'configmap', name, '-n', 'prod'], { kubeconfig: alphaKubeconfig });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(`this kubeconfig was issued for agent ${alpha.id} at ${env.stack.url}`);
    expect(refused.stderr).toContain(`airlock login --agent-id ${alpha.id} --endpoint ${env.stack.url}`);
    expect(await clusterHas(name)).toBe(false);
    expect((await records()).length).toBe(before);
    // beta, still logged in there, is untouched.
    const stillBeta = await kubectl(['get', 'configmap', 'app-config', '-n', 'prod', '-o', 'name'], { kubeconfig: betaKubeconfig });
    expect(stillBeta.code, stillBeta.stderr).toBe(0);
  });

  it('logging out an agent that is not logged in changes nothing and says so', async () => {
    const again = await shared(['--agent-id', alpha.id, 'logout']);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain(`agent ${alpha.id} is not logged in`);
    const stillBeta = await shared(['token', '--connection', 'prod-cluster']);
    expect(stillBeta.code, stillBeta.stderr).toBe(0);
  });
});
