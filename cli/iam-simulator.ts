// IAM policy simulation for `airlock verify` on AWS: can the agent's own
// principal reach the cluster around Airlock (assume the connection role, call
// EKS)? Uses the caller's AWS credentials; iam:SimulatePrincipalPolicy and
// iam:GetRole are read-only.
import { GetRoleCommand, IAMClient, SimulatePrincipalPolicyCommand } from '@aws-sdk/client-iam';

export interface IamSimulator {
  simulate(input: { principalArn: string; actions: string[]; resourceArn: string; resourcePolicy?: string }): Promise<{ action: string; decision: string }[]>;
  trustPolicy(roleArn: string): Promise<string | undefined>;
}

export function awsIamSimulator(client = new IAMClient({})): IamSimulator {
  return {
    async simulate({ principalArn, actions, resourceArn, resourcePolicy }) {
      const results: { action: string; decision: string }[] = [];
      let Marker: string | undefined;
      do {
        const out = await client.send(
          new SimulatePrincipalPolicyCommand({
            PolicySourceArn: principalArn,
            ActionNames: actions,
            ResourceArns: [resourceArn],
            ...(resourcePolicy ? { ResourcePolicy: resourcePolicy, ResourceOwner: `arn:aws:iam::${resourceArn.split(':')[4]}:root` } : {}),
            Marker,
          }),
        );
        for (const result of out.EvaluationResults ?? []) results.push({ action: result.EvalActionName ?? '?', decision: result.EvalDecision ?? '?' });
        Marker = out.IsTruncated ? out.Marker : undefined;
      } while (Marker);
      return results;
    },
    async trustPolicy(roleArn) {
      const name = roleArn.split('/').pop()!;
      const out = await client.send(new GetRoleCommand({ RoleName: name }));
      return out.Role?.AssumeRolePolicyDocument ? decodeURIComponent(out.Role.AssumeRolePolicyDocument) : undefined;
    },
  };
}

/** EKS actions that would let a principal reach or reconfigure a cluster without Airlock. */
export const EKS_SIDE_DOOR_ACTIONS = [
  'eks:AccessKubernetesApi',
  'eks:DescribeCluster',
  'eks:CreateAccessEntry',
  'eks:AssociateAccessPolicy',
  'eks:UpdateAccessEntry',
  'eks:UpdateClusterConfig',
  'eks:CreatePodIdentityAssociation',
];
