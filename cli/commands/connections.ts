// Connections: the clusters Airlock reaches, each with its credential and policy (admin).
import type { Command } from 'commander';
import { adminClient, type CommandContext, readText, table, UsageError } from './context.ts';

export function registerConnections({ program, io, globals, print }: CommandContext): void {
  const connections = program.command('connections').description('manage connections to clusters (admin)');
  const connectionOptions = (command: Command) =>
    command
      .requiredOption('--server <url>', 'the cluster API server (https)')
      .option('--ca-file <file>', "CA certificate for the server's TLS certificate")
      .option('--ca-data <base64>', 'the same, base64-encoded PEM')
      .option('--token-file <file>', 'a bearer token for the cluster (non-EKS)')
      .option('--eks-cluster <name>', 'EKS cluster name (per-agent EKS tokens)')
      .option('--region <region>', 'EKS cluster region')
      .option('--role-arn <arn>', 'IAM role Airlock assumes for this cluster')
      .requiredOption('--policy <file>', 'policy file (YAML or JSON)');
  const connectionBody = (options: Record<string, string | undefined>) => {
    const caPem = options.caFile ? readText(options.caFile, 'CA file') : options.caData ? Buffer.from(options.caData, 'base64').toString('utf8') : undefined;
    if (!caPem) throw new UsageError('give --ca-file or --ca-data (the server certificate is always verified)');
    const eks = options.eksCluster || options.region || options.roleArn;
    if (!!options.tokenFile === !!eks) throw new UsageError('give --token-file, or --eks-cluster with --region and --role-arn');
    if (eks && !(options.eksCluster && options.region && options.roleArn)) throw new UsageError('--eks-cluster needs --region and --role-arn');
    return {
      server: options.server,
      caPem,
      ...(options.tokenFile ? { token: readText(options.tokenFile, 'token file').trim() } : {}),
      ...(eks ? { eks: { clusterName: options.eksCluster, region: options.region, roleArn: options.roleArn } } : {}),
      policy: readText(options.policy!, 'policy file'),
    };
  };
  type SavedConnection = { name: string; policyVersion: string; warnings?: string[] };
  // Broad rules that would reach credentials or RBAC: saved, but the admin is told what they do not cover.
  const warnAboutPolicy = (body: SavedConnection) => {
    for (const warning of body.warnings ?? []) io.err(`warning: ${warning}`);
  };
  connectionOptions(connections.command('create <name>').description('add a connection with its policy')).action(async (name: string, options: Record<string, string>) => {
    const { body } = await adminClient(globals()).call<SavedConnection>('POST', 'v1/connections', { name, ...connectionBody(options) });
    warnAboutPolicy(body);
    print(`connection ${body.name} created (policy ${body.policyVersion.slice(0, 19)})`, body);
  });
  connectionOptions(connections.command('update <name>').description('replace a connection (server, CA, credential, policy)')).action(async (name: string, options: Record<string, string>) => {
    const { body } = await adminClient(globals()).call<SavedConnection>('PUT', `v1/connections/${encodeURIComponent(name)}`, connectionBody(options));
    warnAboutPolicy(body);
    print(`connection ${body.name} updated (policy ${body.policyVersion.slice(0, 19)})`, body);
  });
  connections
    .command('list')
    .description('list connections')
    .action(async () => {
      const { body } = await adminClient(globals()).call<{ items: (Record<string, unknown> & { credential: { type: string } })[] }>('GET', 'v1/connections');
      print(
        table(
          body.items.map((item) => ({ ...item, credential: item.credential.type })),
          ['name', 'server', 'credential', 'policyVersion'],
        ),
        body,
      );
    });
  connections
    .command('show <name>')
    .description('show a connection and its policy (never its credential)')
    .action(async (name: string) => {
      const { body } = await adminClient(globals()).call<Record<string, unknown>>('GET', `v1/connections/${encodeURIComponent(name)}`);
      const { caPem: _ca, ...shown } = body;
      print(JSON.stringify(shown, null, 2), body);
    });
}
