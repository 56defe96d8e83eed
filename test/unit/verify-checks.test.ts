// The parts of `airlock verify` that need no running stack: request choice from a
// policy, kubeconfig side doors, and the IAM simulation verdict (IAM has no emulator:
// the simulator is the one stand-in here).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkIamSideDoor, chooseRequests, kubeconfigSideDoors } from '../../cli/verify.ts';
import { parsePolicy } from '../../lambdas/core/policy.ts';
import type { IamSimulator } from '../../cli/iam-simulator.ts';

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
    const { policy } = parsePolicy('approvers: [a@example.com]\nrules:\n  - {effect: deny, resources: [secrets]}\n  - {effect: allow, verbs: [get, list], namespaces: [prod]}\n  - {effect: approve, verbs: [delete], namespaces: [prod]}\n');
    const chosen = chooseRequests(policy);
    expect(chosen.read).toBe('/api/v1/namespaces/prod/pods');
    expect(chosen.refused).toBe('/api/v1/namespaces/prod/secrets');
    expect(chosen.destructive).toMatchObject({ effect: 'approve', path: expect.stringMatching(/^\/api\/v1\/namespaces\/prod\/pods\/airlock-verify-[0-9a-f]{8}$/) });
  });

  it('reports a destructive request that needs no approval', () => {
    const { policy } = parsePolicy('windowApproval: none\nrules:\n  - {effect: allow, namespaces: [prod]}\n');
    expect(chooseRequests(policy).destructive?.effect).toBe('allow');
  });

  it('finds cluster credentials in reachable kubeconfigs, and ignores other clusters', () => {
    const dir = mkdtempSync(join(tmpdir(), 'verify-kubeconfig-'));
    const file = join(dir, 'config');
    writeFileSync(
      file,
      [
        'apiVersion: v1',
        'clusters: [{name: prod, cluster: {server: "https://prod.example:6443/"}}, {name: dev, cluster: {server: "https://dev.example"}}]',
        'users: [{name: admin, user: {token: abc}}, {name: dev-user, user: {client-certificate-data: x}}]',
        'contexts: [{name: prod-admin, context: {cluster: prod, user: admin}}, {name: dev, context: {cluster: dev, user: dev-user}}]',
      ].join('\n'),
    );
    expect(kubeconfigSideDoors([file], 'https://prod.example:6443')).toEqual([`${file}: context prod-admin (token)`]);
    expect(kubeconfigSideDoors([file], 'https://other.example')).toEqual([]);
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
