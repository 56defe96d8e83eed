// HTTPS calls to the Airlock endpoint with its CA pinned (never insecure).
import type { IncomingMessage } from 'node:http';
import { request } from 'node:https';

export class ApiError extends Error {
  override name = 'ApiError';
  readonly status: number;
  readonly code: string;
  readonly body: unknown;

  constructor(status: number, code: string, message: string, body: unknown) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

/** Signs a request (SigV4 for API Gateway IAM authorization on AWS); returns the headers to add. */
export type RequestSigner = (request: { method: string; url: URL; headers: Record<string, string>; body?: Buffer }) => Promise<Record<string, string>>;

export interface ClientOptions {
  endpoint: string;
  caPem?: string;
  authorization?: string;
  signer?: RequestSigner;
  /** Maps a route path before sending (IAM agents use /v1/iam/...). */
  rewritePath?: (path: string) => string;
}

export interface ApiResponse<T> {
  status: number;
  body: T;
}

export class AirlockClient {
  private readonly options: ClientOptions;

  constructor(options: ClientOptions) {
    this.options = options;
  }

  withAuthorization(authorization: string): AirlockClient {
    return new AirlockClient({ ...this.options, authorization, signer: undefined });
  }

  withSigner(signer: RequestSigner, rewritePath?: (path: string) => string): AirlockClient {
    return new AirlockClient({ ...this.options, authorization: undefined, signer, rewritePath });
  }

  /** Any response, error statuses included (verify inspects refusals). `origin` overrides the endpoint's. */
  raw(
    method: string,
    path: string,
    headers: Record<string, string> = {},
    origin?: string,
    body?: string,
  ): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }> {
    const base = origin ? `${origin}/` : this.options.endpoint.endsWith('/') ? this.options.endpoint : `${this.options.endpoint}/`;
    const url = new URL(path, base);
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        { method, ca: this.options.caPem, headers: { accept: 'application/json', ...headers, ...(body ? { 'content-length': String(Buffer.byteLength(body)) } : {}) }, timeout: 30_000 },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer from ${url.origin} within 30 s`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  /** A JSON request whose answer is read as it streams (`airlock exec`); resolves with the response once its head arrives. */
  stream(method: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<IncomingMessage> {
    const url = new URL(path, this.options.endpoint.endsWith('/') ? this.options.endpoint : `${this.options.endpoint}/`);
    const payload = Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = request(url, {
        method,
        ca: this.options.caPem,
        headers: { 'content-type': 'application/json', 'content-length': String(payload.length), ...(this.options.authorization ? { authorization: this.options.authorization } : {}), ...headers },
      });
      req.once('response', resolve);
      req.once('error', reject);
      req.end(payload);
    });
  }

  /** `form`: the body goes as application/x-www-form-urlencoded (OAuth token requests), else as JSON. */
  async call<T>(method: string, path: string, body?: unknown, options: { form?: boolean } = {}): Promise<ApiResponse<T>> {
    const url = new URL(this.options.rewritePath ? this.options.rewritePath(path) : path, this.options.endpoint.endsWith('/') ? this.options.endpoint : `${this.options.endpoint}/`);
    const payload = body === undefined ? undefined : Buffer.from(options.form ? new URLSearchParams(body as Record<string, string>).toString() : JSON.stringify(body));
    const headers: Record<string, string> = {
      accept: 'application/json',
      ...(payload ? { 'content-type': options.form ? 'application/x-www-form-urlencoded' : 'application/json', 'content-length': String(payload.length) } : {}),
      ...(this.options.authorization ? { authorization: this.options.authorization } : {}),
    };
    if (this.options.signer) Object.assign(headers, await this.options.signer({ method, url, headers: { ...headers, host: url.host }, body: payload }));
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        {
          method,
          ca: this.options.caPem,
          headers,
          timeout: 30_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown = text;
            try {
              parsed = text ? JSON.parse(text) : {};
            } catch {
              // keep text
            }
            const status = res.statusCode ?? 0;
            if (status >= 400) {
              const shaped = parsed as { error?: { code?: string; message?: string } | string; error_description?: string; message?: string };
              // Airlock's {error:{code,message}}, or an OAuth error {error, error_description}.
              const error = typeof shaped.error === 'string' ? { code: shaped.error, message: shaped.error_description } : shaped.error;
              const message = error?.message ?? shaped.message ?? `HTTP ${status}`;
              reject(new ApiError(status, error?.code ?? `http_${status}`, message, parsed));
              return;
            }
            resolve({ status, body: parsed as T });
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer from ${url.origin} within 30 s`)));
      req.on('error', (error: Error & { code?: string }) => {
        if (error.code === 'ECONNREFUSED') reject(new Error(`cannot reach Airlock at ${url.origin} (is it running? npm start)`));
        else if (error.code?.includes('CERT') || error.code === 'SELF_SIGNED_CERT_IN_CHAIN' || error.code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE') {
          reject(new Error(`TLS verification of ${url.origin} failed (${error.code}); pass --ca-file with the gateway's CA`));
        } else reject(error);
      });
      req.end(payload);
    });
  }
}
