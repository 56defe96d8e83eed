// The parts of `airlock verify` that need no running stack: request choice from a
// policy, gathering credentials and the verdict on trying them (against a loopback
// stand-in for the apiserver's SelfSubjectReview; the real one is in e2e/verify), and
// the IAM simulation verdict (IAM has no emulator: the simulator is the one stand-in here).
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ambientCredentials, checkIamSideDoor, chooseRequests, escalationExposure, kubeconfigCredentials, reachableKubeconfigs, sideDoorVerdict, tryCredential } from '../../cli/verify.ts';
import { createCertificateAuthority, type PemPair } from '../../local/tls.ts';
import { parsePolicy } from '../../lambdas/core/policy-file.ts';
import type { IamSimulator } from '../../cli/iam-simulator.ts';
import { policyOf } from '../support/policies.ts';

const target = { clusterName: 'prod-eks', region: 'eu-west-1', roleArn: 'arn:aws:iam::111122223333:role/airlock-connection-prod' };

function simulator(allowed: string[]): () => IamSimulator {
  return () => ({
    async simulate({ actions }) {
      return actions.map((action) => ({ action, decision: allowed.includes(action) ? 'allowed' : 'implicitDeny' }));
    },
    async trustPolicy() {
      return '{"Version":"2012-10-17","Statement":[]}';
    },
  });
}

describe('airlock verify checks', () => {
  it('chooses an allowed read, a refused read and a held delete with the policy engine', () => {
    const { policy } = parsePolicy(
      'approvers: [a@example.com]\nrules:\n  - {effect: deny, resources: [secrets]}\n  - {effect: allow, verbs: [get, list], namespaces: [prod]}\n  - {effect: approve, verbs: [delete], namespaces: [prod]}\n',
    );
    const chosen = chooseRequests(policy);
    expect(chosen.read).toBe('/api/v1/namespaces/prod/pods');
    expect(chosen.refused).toBe('/api/v1/namespaces/prod/secrets');
    expect(chosen.destructive).toMatchObject({ effect: 'approve', path: expect.stringMatching(/^\/api\/v1\/namespaces\/prod\/pods\/airlock-verify-[0-9a-f]{8}$/) });
  });

  it('reports a destructive request that needs no approval', () => {
    const { policy } = parsePolicy('windowApproval: none\nrules:\n  - {effect: allow, namespaces: [prod]}\n');
    expect(chooseRequests(policy).destructive?.effect).toBe('allow');
  });

  it('passes the IAM side door only when every sts and eks action is denied', async () => {
    const principal = 'arn:aws:iam::111122223333:role/agent';
    expect((await checkIamSideDoor(principal, target, simulator([]))).pass).toBe(true);
    const assumable = await checkIamSideDoor(principal, target, simulator(['sts:AssumeRole']));
    expect(assumable).toMatchObject({ pass: false, text: expect.stringContaining('ALLOWED sts:AssumeRole') });
    expect((await checkIamSideDoor(principal, target, simulator(['eks:AccessKubernetesApi']))).pass).toBe(false);
    expect((await checkIamSideDoor(principal, target)).pass).toBe(false);
    expect((await checkIamSideDoor(undefined, target)).pass).toBe(true);
  });
});

describe('airlock verify side doors: gather every credential, try each', () => {
  const dir = mkdtempSync(join(tmpdir(), 'verify-side-doors-'));
  let server: Server;
  let target: { server: string; caPem: string };
  let clientCert: PemPair;
  let strangerCert: PemPair;
  /** Which API versions the stand-in serves (an old cluster has only v1beta1). */
  let versions = ['v1'];

  beforeAll(async () => {
    const ca = await createCertificateAuthority('verify-test-ca');
    const serving = await ca.issue({ commonName: 'apiserver', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    clientCert = await ca.issue({ commonName: 'cert-admin', usage: 'client' });
    strangerCert = await (await createCertificateAuthority('someone-else')).issue({ commonName: 'stranger', usage: 'client' });
    // The apiserver's answers: 201 with the user, 403 naming the user, 401 for anyone else.
    server = createServer({ key: serving.keyPem, cert: serving.certPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: false }, (req, res) => {
      const version = /^\/apis\/authentication\.k8s\.io\/(v1|v1beta1)\/selfsubjectreviews$/.exec(req.url ?? '')?.[1];
      if (req.method !== 'POST' || !version || !versions.includes(version)) return res.writeHead(404).end('{}');
      const peer = (req.socket as TLSSocket).authorized ? (req.socket as TLSSocket).getPeerCertificate().subject?.CN : undefined;
      const auth = req.headers.authorization ?? '';
      const user = peer ?? (auth === 'Bearer cluster-admin-token' ? 'admin' : auth === `Basic ${Buffer.from('kube:pw').toString('base64')}` ? 'basic-user' : undefined);
      if (auth === 'Bearer forbidden-token') return res.writeHead(403).end('{"kind":"Status","message":"selfsubjectreviews is forbidden: User \\"limited\\" cannot create resource"}');
      if (!user) return res.writeHead(401).end('{"kind":"Status","code":401}');
      res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'SelfSubjectReview', status: { userInfo: { username: user } } }));
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    target = { server: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, caPem: ca.certPem };
  });
  afterAll(() => {
    server?.close();
  });

  const kubeconfigFile = (name: string, users: unknown[], extra: Record<string, unknown> = {}) => {
    const file = join(dir, name);
    writeFileSync(file, JSON.stringify({ apiVersion: 'v1', kind: 'Config', clusters: [], contexts: [], users, ...extra }));
    return file;
  };

  it('gathers every user of every kubeconfig, with a context or not, and never runs an exec plugin', () => {
    writeFileSync(join(dir, 'token.txt'), 'from-a-file\n');
    const file = kubeconfigFile('config-a', [
      { name: 'no-context', user: { token: 'cluster-admin-token' } },
      { name: 'file-token', user: { tokenFile: 'token.txt' } },
      { name: 'cert', user: { 'client-certificate-data': Buffer.from('CERT').toString('base64'), 'client-key-data': Buffer.from('KEY').toString('base64') } },
      { name: 'basic', user: { username: 'kube', password: 'pw' } },
      { name: 'oidc', user: { 'auth-provider': { name: 'oidc', config: { 'id-token': 'an-id-token' } } } },
      { name: 'eks', user: { exec: { command: 'aws', args: ['eks', 'get-token'] } } },
      { name: 'airlock', user: { exec: { command: '/usr/bin/node', args: ['/opt/airlock/cli/airlock.ts', '--agent-id', 'agt_x', 'token', '--connection', 'prod'] } } },
      { name: 'nothing', user: {} },
    ]);
    const { found } = kubeconfigCredentials([file]);
    expect(found.map((c) => [c.where.replace(`${file}: `, ''), c.token ?? (c.clientCert ? 'cert' : c.basic ? 'basic' : c.airlock ? 'airlock' : c.cannotTry)])).toEqual([
      ['user no-context', 'cluster-admin-token'],
      ['user file-token', 'from-a-file'],
      ['user cert', 'cert'],
      ['user basic', 'basic'],
      ['user oidc', 'an-id-token'],
      ['user eks', 'exec plugin aws (verify never runs plugins)'],
      ['user airlock', 'airlock'],
    ]);
  });

  it('reads every KUBECONFIG entry and every file in ~/.kube; a KUBECONFIG entry that is not a kubeconfig is reported', () => {
    const home = join(dir, 'home');
    mkdirSync(join(home, '.kube', 'cache'), { recursive: true });
    writeFileSync(join(home, '.kube', 'config'), 'apiVersion: v1\nkind: Config\nusers: [{name: u, user: {token: t}}]\n');
    writeFileSync(join(home, '.kube', 'old-admin.yaml'), 'users: [{name: old, user: {token: t2}}]\n');
    writeFileSync(join(home, '.kube', 'notes.txt'), ': not yaml : [');
    const listed = kubeconfigFile('listed', [{ name: 'listed', user: { token: 't3' } }]);
    const broken = join(dir, 'broken');
    writeFileSync(broken, ': not yaml : [');
    const env = { HOME: home, KUBECONFIG: [listed, broken, join(dir, 'missing')].join(':') };
    const files = reachableKubeconfigs(env);
    expect(files.sort()).toEqual([broken, listed, join(home, '.kube', 'config'), join(home, '.kube', 'notes.txt'), join(home, '.kube', 'old-admin.yaml')].sort());
    const { found, unreadable } = kubeconfigCredentials(files, [listed, broken]);
    expect(found.map((c) => c.token).sort()).toEqual(['t', 't2', 't3']);
    expect(unreadable).toEqual([broken]);
  });

  it('gathers the service-account token and the well-known token variables', () => {
    const saPath = join(dir, 'sa-token');
    writeFileSync(saPath, 'sa-jwt\n');
    const found = ambientCredentials({ KUBE_TOKEN: 'Bearer env-token', BEARER_TOKEN: '', GITHUB_TOKEN: 'not-ours' }, saPath);
    expect(found.map((c) => [c.where, c.token])).toEqual([
      [`service-account token ${saPath}`, 'sa-jwt'],
      ['env KUBE_TOKEN', 'env-token'],
    ]);
    expect(ambientCredentials({}, join(dir, 'no-such-token'))).toEqual([]);
  });

  it('a credential the cluster accepts is a side door, named with where it was found and who the cluster says it is; never the secret', async () => {
    const found = [
      { where: 'env KUBE_TOKEN', kind: 'environment' as const, token: 'cluster-admin-token' },
      { where: 'f: user stale', kind: 'kubeconfig' as const, token: 'stale-token' },
      { where: 'f: user airlock', kind: 'kubeconfig' as const, airlock: true },
    ];
    const verdict = await sideDoorVerdict(found, target, 'none');
    expect(verdict.pass).toBe(false);
    expect(verdict.text).toContain('env KUBE_TOKEN (accepted as admin)');
    expect(verdict.text).toContain('1 rejected');
    expect(verdict.text).toContain('1 Airlock exec plugin(s) (not side doors)');
    expect(verdict.text).not.toContain('cluster-admin-token');
    expect((await sideDoorVerdict(found.slice(1), target, 'none')).pass).toBe(true);
  });

  it('tries client certificates and basic auth too; a 403 still means the cluster knows the credential', async () => {
    expect(await tryCredential({ where: 'c', kind: 'kubeconfig', clientCert: { cert: clientCert.certPem, key: clientCert.keyPem } }, target)).toEqual({
      outcome: 'accepted',
      detail: 'accepted as cert-admin',
    });
    expect((await tryCredential({ where: 'c', kind: 'kubeconfig', clientCert: { cert: strangerCert.certPem, key: strangerCert.keyPem } }, target)).outcome).toBe('rejected');
    expect((await tryCredential({ where: 'b', kind: 'kubeconfig', basic: { username: 'kube', password: 'pw' } }, target)).detail).toBe('accepted as basic-user');
    expect(await tryCredential({ where: 'f', kind: 'environment', token: 'forbidden-token' }, target)).toEqual({ outcome: 'accepted', detail: 'accepted as limited (403 on the review)' });
  });

  it('falls back to v1beta1 on an older cluster, and says so when neither is served', async () => {
    versions = ['v1beta1'];
    expect((await tryCredential({ where: 'e', kind: 'environment', token: 'cluster-admin-token' }, target)).outcome).toBe('accepted');
    versions = [];
    const none = await tryCredential({ where: 'e', kind: 'environment', token: 'cluster-admin-token' }, target);
    expect(none.outcome).toBe('unknown');
    versions = ['v1'];
  });

  it('an unreachable cluster or an untried credential never passes silently', async () => {
    const verdict = await sideDoorVerdict([{ where: 'env K8S_TOKEN', kind: 'environment', token: 'x' }], { server: 'https://127.0.0.1:1', caPem: target.caPem }, 'none');
    expect(verdict.pass).toBe(false);
    expect(verdict.text).toMatch(/NOT PROVEN: env K8S_TOKEN: cluster unreachable at https:\/\/127\.0\.0\.1:1/);
    const plugin = await sideDoorVerdict([{ where: 'f: user eks', kind: 'kubeconfig', cannotTry: 'exec plugin aws (verify never runs plugins)' }], target, 'none');
    expect(plugin.warnings).toEqual(['f: user eks: cannot try: exec plugin aws (verify never runs plugins)']);
    expect(plugin.text).toContain('warning: f: user eks: cannot try: exec plugin aws');
    expect((await sideDoorVerdict([], target, 'nothing found')).text).toBe('nothing found');
  });
});

describe('escalationExposure: the policy against credential-minting and rights-widening requests', () => {
  it('the README shape lets none through; a rule naming serviceaccounts/token is listed as a deliberate grant', () => {
    const readme = policyOf([
      { effect: 'deny', resources: ['secrets'] },
      { effect: 'allow', verbs: ['get', 'list', 'watch', 'create'], namespaces: ['prod'] },
    ]);
    expect(escalationExposure(readme)).toEqual({ loose: [], named: [], namespace: 'prod' });
    const granted = policyOf([{ effect: 'allow', verbs: ['create'], resources: ['serviceaccounts/token'], namespaces: ['prod'] }]);
    const exposure = escalationExposure(granted);
    expect(exposure.loose).toEqual([]);
    expect(exposure.named).toEqual(['create serviceaccounts/token in prod (allow by rule 1 (allow verbs [create] resources [serviceaccounts/token] namespaces [prod]))']);
  });
});
