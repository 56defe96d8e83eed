// EKS bearer tokens, minted inside Airlock and never handed to an agent.
//
// The format is the one `aws eks get-token` and aws-iam-authenticator produce
// and the EKS control plane accepts:
//
//   k8s-aws-v1.<base64url, no padding, of a presigned STS GetCallerIdentity URL>
//
// The URL is signed with SigV4 query authentication for service `sts` at the
// regional endpoint of the cluster's region, with the header
// `x-k8s-aws-id: <cluster name>` signed in, so the token is good for that one
// cluster only. X-Amz-Expires is always 60: STS ignores it and honours a
// presigned GetCallerIdentity URL for 15 minutes after X-Amz-Date, which is
// why `expiresAt` is the signing time plus 15 minutes (the server's rule, not
// a margin; callers that cache must leave their own margin).
//
// The parameters are written in the order the AWS CLI writes them and encoded
// as SigV4 canonical query values, so for the same inputs and signing time the
// token is byte-for-byte the one `aws eks get-token` prints.
import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity } from '@smithy/types';

export interface EksTokenInput {
  clusterName: string;
  region: string;
  credentials: AwsCredentialIdentity;
  /** Signing time; defaults to the current time. */
  now?: Date;
}

export interface EksToken {
  token: string;
  /** Signing time (as written in X-Amz-Date, whole seconds) + 15 minutes: what the EKS server accepts. */
  expiresAt: Date;
}

export const EKS_TOKEN_PREFIX = 'k8s-aws-v1.';
/** The header that binds a token to one cluster. */
export const CLUSTER_ID_HEADER = 'x-k8s-aws-id';
/** Presigned GetCallerIdentity URLs are honoured for this long after X-Amz-Date. */
export const EKS_TOKEN_VALIDITY_MS = 15 * 60_000;
/** The X-Amz-Expires every EKS token carries (ignored by STS; old verifiers require ≤ 60). */
const PRESIGN_EXPIRES_SECONDS = 60;
/** aws-iam-authenticator rejects longer tokens outright. */
export const EKS_TOKEN_MAX_LENGTH = 4096;

const STS_API_VERSION = '2011-06-15';
const clusterNamePattern = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;
const regionPattern = /^[a-z]{2}(-gov)?-[a-z]+-\d$/;

/** The order in which the AWS CLI writes the presigned URL's parameters. */
const PARAMETER_ORDER = ['Action', 'Version', 'X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'X-Amz-Expires', 'X-Amz-SignedHeaders', 'X-Amz-Security-Token', 'X-Amz-Signature'] as const;

/** Throws unless `name` is a valid EKS cluster name (1-100 chars, [A-Za-z0-9][A-Za-z0-9_-]*). */
export function assertClusterName(name: string): void {
  if (typeof name !== 'string' || name.length < 1 || name.length > 100 || !clusterNamePattern.test(name)) {
    throw new Error(`invalid EKS cluster name ${JSON.stringify(name)}: expected 1-100 characters, ` + 'letters, digits, "-" and "_", starting with a letter or digit');
  }
}

/** Throws unless `region` looks like an AWS commercial, China or GovCloud region (e.g. eu-west-1). */
export function assertRegion(region: string): void {
  if (typeof region !== 'string' || !regionPattern.test(region)) {
    throw new Error(`invalid AWS region ${JSON.stringify(region)}: expected a region name such as eu-west-1, cn-north-1 or us-gov-west-1`);
  }
}

/** The partition a (validated) region belongs to. */
export function partitionOf(region: string): 'aws' | 'aws-cn' | 'aws-us-gov' {
  if (region.startsWith('cn-')) return 'aws-cn';
  if (region.startsWith('us-gov-')) return 'aws-us-gov';
  return 'aws';
}

/** The regional STS endpoint host; never the global sts.amazonaws.com. */
export function stsHostFor(region: string): string {
  assertRegion(region);
  return partitionOf(region) === 'aws-cn' ? `sts.${region}.amazonaws.com.cn` : `sts.${region}.amazonaws.com`;
}

/** RFC 3986 encoding, as SigV4 canonical query strings (and the AWS CLI) use it. */
function encodeQueryComponent(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

export async function createEksToken(input: EksTokenInput): Promise<EksToken> {
  const { clusterName, region, credentials } = input;
  assertClusterName(clusterName);
  const host = stsHostFor(region);
  if (!credentials?.accessKeyId || !credentials.secretAccessKey) {
    throw new Error('createEksToken needs credentials with an access key id and a secret access key');
  }
  const now = input.now ?? new Date();
  const nowMs = now.getTime();
  if (!Number.isFinite(nowMs)) throw new Error('createEksToken: `now` is not a valid date');
  // SigV4 carries whole seconds; the server's 15 minutes count from X-Amz-Date.
  const signingDate = new Date(Math.floor(nowMs / 1000) * 1000);

  const signer = new SignatureV4({
    credentials: {
      accessKeyId: credentials.accessKeyId,
      secretAccessKey: credentials.secretAccessKey,
      ...(credentials.sessionToken ? { sessionToken: credentials.sessionToken } : {}),
    },
    region,
    service: 'sts',
    sha256: Sha256,
  });
  const request = new HttpRequest({
    method: 'GET',
    protocol: 'https:',
    hostname: host,
    path: '/',
    headers: { host, [CLUSTER_ID_HEADER]: clusterName },
    query: { Action: 'GetCallerIdentity', Version: STS_API_VERSION },
  });
  const presigned = await signer.presign(request, { expiresIn: PRESIGN_EXPIRES_SECONDS, signingDate });

  const query = presigned.query ?? {};
  const unexpected = Object.keys(query).filter((key) => !(PARAMETER_ORDER as readonly string[]).includes(key));
  if (unexpected.length > 0) {
    throw new Error(`createEksToken: the signer added unexpected parameters: ${unexpected.join(', ')}`);
  }
  const pairs: string[] = [];
  for (const key of PARAMETER_ORDER) {
    const value = query[key];
    if (value === undefined || value === null) {
      if (key === 'X-Amz-Security-Token') continue; // long-term keys carry none
      throw new Error(`createEksToken: the presigned request lacks ${key}`);
    }
    if (typeof value !== 'string') throw new Error(`createEksToken: ${key} has more than one value`);
    pairs.push(`${encodeQueryComponent(key)}=${encodeQueryComponent(value)}`);
  }
  const url = `https://${host}/?${pairs.join('&')}`;
  const token = EKS_TOKEN_PREFIX + Buffer.from(url, 'utf8').toString('base64url');
  if (token.length > EKS_TOKEN_MAX_LENGTH) {
    throw new Error(
      `EKS token for cluster ${clusterName} is ${token.length} characters, over the ${EKS_TOKEN_MAX_LENGTH} the ` +
        'EKS authenticator accepts (the session token is too large: fewer or shorter session tags help)',
    );
  }
  return { token, expiresAt: new Date(signingDate.getTime() + EKS_TOKEN_VALIDITY_MS) };
}
