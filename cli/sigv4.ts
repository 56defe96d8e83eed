// SigV4 for calls to API Gateway routes with IAM authorization (admins on
// AWS, and agents registered by IAM principal): the caller's own AWS
// credentials, from the standard provider chain, sign each request. The AWS
// pieces load on the first signature: commands that never sign (kubectl's
// `airlock token` with a key login) never pay for them.
import type { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import type { RequestSigner } from './client.ts';

/** The region of an execute-api endpoint, e.g. abc123.execute-api.eu-west-1.amazonaws.com. */
export function regionOf(endpoint: string): string | undefined {
  return /\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$/.exec(new URL(endpoint).hostname)?.[1];
}

export function sigv4Signer(region: string, credentials?: AwsCredentialIdentityProvider): RequestSigner {
  let signer: Promise<SignatureV4> | undefined;
  const load = async () => {
    const [{ Sha256 }, { fromNodeProviderChain }, { SignatureV4 }] = await Promise.all([import('@aws-crypto/sha256-js'), import('@aws-sdk/credential-providers'), import('@smithy/signature-v4')]);
    return new SignatureV4({ service: 'execute-api', region, credentials: credentials ?? fromNodeProviderChain(), sha256: Sha256 });
  };
  return async ({ method, url, headers, body }) => {
    const { HttpRequest } = await import('@smithy/protocol-http');
    const signed = await (
      await (signer ??= load())
    ).sign(
      new HttpRequest({
        method,
        protocol: url.protocol,
        hostname: url.hostname,
        port: url.port ? Number(url.port) : undefined,
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        headers,
        body,
      }),
    );
    const { authorization, 'x-amz-date': date, 'x-amz-security-token': token, 'x-amz-content-sha256': contentSha } = signed.headers as Record<string, string>;
    return { authorization: authorization!, 'x-amz-date': date!, ...(token ? { 'x-amz-security-token': token } : {}), ...(contentSha ? { 'x-amz-content-sha256': contentSha } : {}) };
  };
}
