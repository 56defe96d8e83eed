// The forwarder on its own, against a loopback HTTPS server: TLS is verified
// against the connection's CA (never skipped), the path and headers go as
// given, and each way of not reaching the cluster is an UpstreamError that
// says which.
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Forwarder, UpstreamError } from '../../lambdas/proxy/forwarder.ts';
import { createCertificateAuthority, type CertificateAuthority } from '../../local/tls.ts';

let ca: CertificateAuthority;
let otherCa: CertificateAuthority;
let server: Server;
let url: string;
const seen: { method?: string; url?: string; headers: Record<string, unknown>; body: string }[] = [];
const forwarder = new Forwarder();

beforeAll(async () => {
  ca = await createCertificateAuthority('forwarder-test-ca');
  otherCa = await createCertificateAuthority('not-the-cluster-ca');
  const leaf = await ca.issue({ commonName: '127.0.0.1', ipAddresses: ['127.0.0.1'] });
  server = createServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, headers: req.headers, body });
      res.writeHead(201, { 'content-type': 'application/json' }).end('{"kind":"ConfigMap"}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  forwarder.close();
  await new Promise((resolve) => server.close(resolve));
});

const request = (overrides: Partial<Parameters<Forwarder['forward']>[0]> = {}) => ({
  server: url,
  caPem: ca.certPem,
  method: 'POST',
  pathAndQuery: '/api/v1/namespaces/prod/configmaps?fieldManager=kubectl',
  headers: { authorization: 'Bearer the-connection-credential', 'content-type': 'application/json' },
  body: Buffer.from('{"metadata":{"name":"x"}}'),
  ...overrides,
});

describe('Forwarder', () => {
  it("sends the request as given over TLS verified against the connection's CA, and resolves with the response head", async () => {
    const response = await forwarder.forward(request({ server: `${url}/base/` }));
    expect(response.statusCode).toBe(201);
    response.resume();
    expect(seen.at(-1)).toMatchObject({
      method: 'POST',
      url: '/base/api/v1/namespaces/prod/configmaps?fieldManager=kubectl',
      headers: { authorization: 'Bearer the-connection-credential', 'content-length': '25' },
      body: '{"metadata":{"name":"x"}}',
    });
  });

  it('a server whose certificate does not chain to the connection CA is refused', async () => {
    const sent = seen.length;
    await expect(forwarder.forward(request({ caPem: otherCa.certPem }))).rejects.toThrow(UpstreamError);
    await expect(forwarder.forward(request({ caPem: otherCa.certPem }))).rejects.toThrow(/certificate rejected.*check the connection's CA/);
    expect(seen).toHaveLength(sent);
  });

  it('a server that is not https is refused before anything is sent', async () => {
    await expect(forwarder.forward(request({ server: url.replace('https:', 'http:') }))).rejects.toThrow('connection server is not https');
  });

  it('a port nobody listens on: connection refused', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    await expect(forwarder.forward(request({ server: `https://127.0.0.1:${port}` }))).rejects.toThrow('connection refused by the cluster API server');
  });
});
