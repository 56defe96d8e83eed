// Shared set-up of the client suites (test/e2e/clients-*.test.ts): a connection whose cluster
// credential is a ServiceAccount token with the rights everyday tools need in prod (the seeded
// connection user has only pods, configmaps and deployments), and a window approved through the
// emailed link, as the example policies need a human for every window.
import { execFileSync } from 'node:child_process';
import type { ClusterInfo } from '../cluster/harness.ts';
import { kubectlBinary } from '../cluster/harness.ts';
import type { TestAgent, TestStack } from './stack.ts';

/** A ServiceAccount in prod with a Role of `rules` (YAML list items) bound to it: a connection credential with exactly those rights. */
export function serviceAccountRbac(name: string, rules: string): string {
  return `
apiVersion: v1
kind: ServiceAccount
metadata: {name: ${name}, namespace: prod}
automountServiceAccountToken: false
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: ${name}, namespace: prod}
rules:
${rules}---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: ${name}, namespace: prod}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: ${name}}
subjects:
  - {kind: ServiceAccount, name: ${name}, namespace: prod}
`;
}

/** RBAC for the clients' connection credential (what the example policies then narrow). */
const CLIENTS_RBAC = serviceAccountRbac(
  'airlock-clients',
  `  - apiGroups: ['']
    resources: [pods, pods/log, configmaps, services, events]
    verbs: [get, list, watch, create, update, patch, delete, deletecollection]
  - apiGroups: [apps]
    resources: [deployments, deployments/scale, replicasets, statefulsets, daemonsets, controllerrevisions]
    verbs: [get, list, watch, create, update, patch, delete, deletecollection]
  - apiGroups: [events.k8s.io]
    resources: [events]
    verbs: [get, list, watch]
`,
);

export const APPROVER = 'oncall@example.com';

/** Runs the machine's kubectl as the cluster admin (set-up and direct checks). */
export function admin(cluster: ClusterInfo, args: string[], input?: string): string {
  return execFileSync(kubectlBinary(), ['--kubeconfig', cluster.adminKubeconfig, ...args], { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

/** A connection named `name` with `policy`, reaching prod as the airlock-clients ServiceAccount. */
export async function createClientsConnection(env: TestStack, cluster: ClusterInfo, name: string, policy: string): Promise<void> {
  admin(cluster, ['apply', '-f', '-'], CLIENTS_RBAC);
  const token = admin(cluster, ['create', 'token', 'airlock-clients', '-n', 'prod', '--duration', '2h']).trim();
  await env.createConnection(name, { cluster, policy, token });
}

/** Asks for a window, approves it through the approver's emailed link, and waits until it is active. */
export async function approvedWindow(env: TestStack, agent: TestAgent, connection: string, reason: string): Promise<string> {
  const requested = await agent.cli(['--json', 'access', 'request', '--connection', connection, '--duration', '30m', '--reason', reason]);
  const window = JSON.parse(requested.stdout) as { id: string; status: string; approvalId?: string };
  if (window.status === 'pending') {
    if (!window.approvalId) throw new Error(`window ${window.id} is pending without an approval: ${requested.stderr}`);
    const decided = await env.decide(await env.approvalLink(window.approvalId, APPROVER), 'approve');
    if (decided.status !== 200) throw new Error(`approving window ${window.id}: HTTP ${decided.status}`);
  }
  const deadline = Date.now() + 15_000;
  for (;;) {
    const status = JSON.parse((await agent.cli(['--json', 'access', 'status', window.id])).stdout) as { status: string };
    if (status.status === 'active') return window.id;
    if (status.status !== 'pending' || Date.now() > deadline) throw new Error(`window ${window.id} is ${status.status}`);
    await new Promise((done) => setTimeout(done, 200));
  }
}
