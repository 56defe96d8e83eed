// Sends one request to the connection's API server: TLS verified against the
// connection's CA (never skipped), keep-alive per (server, CA), response streamed.
import { createHash } from 'node:crypto';
import { Agent, request, type RequestOptions } from 'node:https';
import type { IncomingMessage } from 'node:http';

export interface UpstreamRequest {
  server: string;
  caPem: string;
  method: string;
  /** Path and canonical query, exactly as checked. */
  pathAndQuery: string;
  headers: Record<string, string>;
  body: Buffer;
}

export class UpstreamError extends Error {
  override name = 'UpstreamError';
}

const CONNECT_TIMEOUT_MS = 10_000;

export class Forwarder {
  private readonly agents = new Map<string, Agent>();

  private agentFor(server: string, caPem: string): Agent {
    const key = `${server}\n${createHash('sha256').update(caPem).digest('hex')}`;
    let agent = this.agents.get(key);
    if (!agent) {
      agent = new Agent({ keepAlive: true, maxSockets: 64, ca: caPem, rejectUnauthorized: true });
      this.agents.set(key, agent);
    }
    return agent;
  }

  /** Resolves with the upstream response once its head arrives. */
  forward(upstream: UpstreamRequest, signal?: AbortSignal): Promise<IncomingMessage> {
    const base = new URL(upstream.server);
    if (base.protocol !== 'https:') return Promise.reject(new UpstreamError('connection server is not https'));
    const basePath = base.pathname.replace(/\/$/, '');
    const options: RequestOptions = {
      protocol: 'https:',
      hostname: base.hostname,
      port: base.port || 443,
      servername: base.hostname.match(/^[\d.]+$|:/) ? undefined : base.hostname,
      method: upstream.method,
      path: `${basePath}${upstream.pathAndQuery}`,
      headers: { ...upstream.headers, 'content-length': String(upstream.body.length) },
      agent: this.agentFor(upstream.server, upstream.caPem),
      signal,
    };
    return new Promise((resolve, reject) => {
      const req = request(options, resolve);
      const connectTimer = setTimeout(() => req.destroy(new UpstreamError(`no connection to ${base.host} within ${CONNECT_TIMEOUT_MS / 1000} s`)), CONNECT_TIMEOUT_MS);
      req.once('socket', (socket) => {
        if (!socket.connecting) clearTimeout(connectTimer);
        else socket.once('secureConnect', () => clearTimeout(connectTimer));
      });
      req.once('response', () => clearTimeout(connectTimer));
      req.once('error', (error) => {
        clearTimeout(connectTimer);
        reject(error instanceof UpstreamError ? error : new UpstreamError(describeNetworkError(error)));
      });
      req.end(upstream.body);
    });
  }

  close(): void {
    for (const agent of this.agents.values()) agent.destroy();
    this.agents.clear();
  }
}

function describeNetworkError(error: Error & { code?: string }): string {
  switch (error.code) {
    case 'ECONNREFUSED':
      return 'connection refused by the cluster API server';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'cluster API server host not found';
    case 'ETIMEDOUT':
      return 'cluster API server timed out';
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
    case 'CERT_HAS_EXPIRED':
      return `cluster API server certificate rejected (${error.code}); check the connection's CA`;
    default:
      return `cluster API server unreachable (${error.code ?? error.message})`;
  }
}
