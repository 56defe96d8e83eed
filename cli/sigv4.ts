// SigV4 for calls to API Gateway routes with IAM authorization (admins on
// AWS, and agents registered by IAM principal): the caller's own AWS
// credentials, from the standard provider chain, sign each request.
import { Sha256 } from '@aws-crypto/sha256-js';
import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import type { RequestSigner } from './client.ts';

/** The region of an execute-api endpoint, e.g. abc123.execute-api.eu-west-1.amazonaws.com. */
export function regionOf(endpoint: string): string | undefined {
  return /\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$/.exec(new URL(endpoint).hostname)?.[1];
}

export function sigv4Signer(region: string, credentials: AwsCredentialIdentityProvider = fromNodeProviderChain()): RequestSigner {
  const signer = new SignatureV4({ service: 'execute-api', region, credentials, sha256: Sha256 });
  return async ({ method, url, headers, body }) => {
    const signed = await signer.sign(
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
