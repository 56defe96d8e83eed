// A kubeconfig whose only credential is the exec plugin: kubectl asks
// `airlock token` for a short-lived Airlock token, which the cluster itself
// would never accept. The gateway's CA is pinned; TLS is never skipped.
import { stringify } from 'yaml';

export interface KubeconfigInput {
  endpoint: string;
  connection: string;
  /** PEM of the CA that signs the gateway's certificate; omitted when it is publicly trusted. */
  caPem?: string;
  command: string;
  args: string[];
  env?: Record<string, string>;
}

export function kubeconfigFor(input: KubeconfigInput): string {
  const name = `airlock-${input.connection}`;
  const server = `${input.endpoint.replace(/\/$/, '')}/k8s/${input.connection}`;
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name,
        cluster: {
          server,
          ...(input.caPem ? { 'certificate-authority-data': Buffer.from(input.caPem).toString('base64') } : {}),
        },
      },
    ],
    users: [
      {
        name,
        user: {
          exec: {
            apiVersion: 'client.authentication.k8s.io/v1',
            command: input.command,
            args: input.args,
            ...(input.env && Object.keys(input.env).length ? { env: Object.entries(input.env).map(([envName, value]) => ({ name: envName, value })) } : {}),
            interactiveMode: 'Never',
            provideClusterInfo: false,
          },
        },
      },
    ],
    contexts: [{ name, context: { cluster: name, user: name } }],
    'current-context': name,
  });
}
