// A transparent HTTPS tap between the local stack and the test kube-apiserver:
// a connection whose server is the tap reaches the real cluster, and the test
// sees exactly what arrived "at the cluster" (method, path and query, every
// header, body), keyed by the Audit-ID the gateway sends. It proves "nothing
// was forwarded" and "this header never reached the cluster" directly.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createCertificateAuthority } from '../../local/tls.ts';

export interface TappedRequest {
  method: string;
  /** Path and query exactly as received. */
  url: string;
  /** Lower-cased names, every value. */
  headers: Record<string, string[]>;
  body: Buffer;
}

export interface UpstreamTap {
  /** https://127.0.0.1:PORT — use as the connection's server. */
  url: string;
  /** The CA that signs the tap's certificate — use as the connection's CA. */
  caFile: string;
  requests: TappedRequest[];
  /** The request the gateway forwarded with this Audit-ID (= x-airlock-request-id), if any. */
  forwarded(requestId: string): TappedRequest | undefined;
  stop(): Promise<void>;
}

export async function startUpstreamTap(target: { server: string; caPem: string }): Promise<UpstreamTap> {
  const ca = await createCertificateAuthority('airlock-test-upstream-tap');
  const leaf = await ca.issue({ commonName: '127.0.0.1', ipAddresses: ['127.0.0.1'], dnsNames: ['localhost'] });
  const caFile = join(mkdtempSync(join(tmpdir(), 'airlock-tap-')), 'ca.crt');
  writeFileSync(caFile, ca.certPem);
  const upstream = new URL(target.server);
  const requests: TappedRequest[] = [];

  const server = createServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const headers: Record<string, string[]> = {};
      for (const [name, values] of Object.entries(req.headersDistinct)) if (values) headers[name] = values;
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers, body });
      const out = request({ hostname: upstream.hostname, port: upstream.port, method: req.method, path: req.url, ca: target.caPem, headers: { ...req.headers, host: upstream.host } }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      out.on('error', () => {
        if (!res.headersSent) res.writeHead(502).end();
        else res.destroy();
      });
      res.on('close', () => out.destroy());
      out.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `https://127.0.0.1:${port}`,
    caFile,
    requests,
    forwarded: (requestId) => requests.find((tapped) => tapped.headers['audit-id']?.includes(requestId)),
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
