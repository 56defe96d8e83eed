// The credential the cluster accepts. It exists only inside the gateway:
// a static token for non-EKS connections, a per-agent EKS token otherwise.
import type { Connection } from '../core/model.ts';
import type { AgentSession, EksCredentialSource, UpstreamCredential } from '../core/ports.ts';

export interface UpstreamAuth {
  credentialFor(session: AgentSession, connection: Connection): Promise<UpstreamCredential>;
}

/** Chooses by connection type; EKS support is wired in where AWS credentials exist. */
export class ConnectionUpstreamAuth implements UpstreamAuth {
  private readonly eks: EksCredentialSource | undefined;

  constructor(eks?: EksCredentialSource) {
    this.eks = eks;
  }

  async credentialFor(session: AgentSession, connection: Connection): Promise<UpstreamCredential> {
    const credential = connection.credential;
    if (credential.type === 'token') {
      return { authorization: `Bearer ${credential.token}`, expiresAt: Number.POSITIVE_INFINITY };
    }
    if (!this.eks) throw new Error('EKS connections need AWS credentials; this gateway has none configured');
    return this.eks.credentialFor(session, {
      connectionName: connection.name,
      clusterName: credential.clusterName,
      region: credential.region,
      roleArn: credential.roleArn,
    });
  }
}
