// What a transcript may keep. Secret values, service-account tokens and
// credentials never reach S3: JSON bodies are parsed and redacted; container
// logs (plain text) are kept with credential-shaped text replaced; anything
// else that cannot be parsed (protobuf, truncated JSON) is omitted, not stored raw.
import { MAX_HEADER_VALUE_LENGTH } from './kube-request.ts';

export const REDACTED = '[REDACTED]';
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

/** Request headers that carry credentials: their values never appear in a transcript. */
const CREDENTIAL_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-amz-security-token']);

/** Kubernetes also accepts a bearer token smuggled in as a WebSocket subprotocol. */
const WEBSOCKET_BEARER = /base64url\.bearer\.authorization\.k8s\.io\.[^,\s]*/gi;

export function redactHeaders(headers: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    if (CREDENTIAL_HEADERS.has(lower) || lower.startsWith('x-amz-')) out[lower] = REDACTED;
    else if (lower === 'sec-websocket-protocol') out[lower] = value.replace(WEBSOCKET_BEARER, `base64url.bearer.authorization.k8s.io.${REDACTED}`).slice(0, MAX_HEADER_VALUE_LENGTH);
    // Forwarded headers are refused above this length, so what was forwarded is kept whole.
    else out[lower] = value.slice(0, MAX_HEADER_VALUE_LENGTH);
  }
  return out;
}

export interface RedactionContext {
  /** The request addresses secrets: any data/stringData/value there is a Secret value, kind or not. */
  secretsResource: boolean;
  /** A container log (pods/log): plain text is kept, with credential-shaped text replaced (redactText). */
  logText?: boolean;
}

/**
 * Credential shapes in free text (container logs, a command's output and stdin): PEM private keys, JWTs (service-account tokens),
 * bearer/basic credentials, AWS access key ids, passwords in URLs, and the value after a key named
 * like a credential (password=..., "token": "...", api_key: ...).
 */
const TEXT_CREDENTIALS: [RegExp, string][] = [
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)/g, REDACTED],
  [/\beyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]*/g, REDACTED],
  [/\b(bearer|basic)(\s+)[\w~+/.=-]{8,}/gi, `$1$2${REDACTED}`],
  [/\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/g, REDACTED],
  // EKS tokens (a presigned STS URL).
  [/\bk8s-aws-v1\.[\w-]+/g, REDACTED],
  [/(\w+:\/\/[^\s:/@]+:)[^\s@/]+@/g, `$1${REDACTED}@`],
  [/((?:password|passwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credentials?)["']?\s*[:=]\s*["']?)(?!\[REDACTED\])[^\s"',;&]+/gi, `$1${REDACTED}`],
];

/** Free text with credential-shaped substrings replaced (see TEXT_CREDENTIALS). */
export function redactText(text: string): string {
  return TEXT_CREDENTIALS.reduce((out, [pattern, replacement]) => out.replace(pattern, replacement), text);
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function isObject(value: Json | undefined): value is { [key: string]: Json } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function redactValues(value: Json): Json {
  if (!isObject(value)) return REDACTED;
  return Object.fromEntries(Object.keys(value).map((key) => [key, REDACTED]));
}

/** Returns a redacted deep copy. Walks everything: Lists, watch events, Tables, patches. */
export function redactJson(value: Json, context: RedactionContext): Json {
  if (Array.isArray(value)) {
    // A JSON patch against a secret: every op's value may be secret data.
    const isPatch = value.every((op) => isObject(op) && typeof op.op === 'string');
    return value.map((item) => {
      if (isPatch && context.secretsResource && isObject(item) && 'value' in item) return { ...item, value: REDACTED };
      return redactJson(item, context);
    });
  }
  if (!isObject(value)) return value;
  const out: { [key: string]: Json } = {};
  const isSecret = value.kind === 'Secret' || (context.secretsResource && value.kind === undefined);
  for (const [key, child] of Object.entries(value)) {
    if ((isSecret || context.secretsResource) && (key === 'data' || key === 'stringData') && child !== null) {
      out[key] = redactValues(child);
    } else if (value.kind === 'TokenRequest' && key === 'status' && isObject(child)) {
      out[key] = { ...child, ...(child.token !== undefined ? { token: REDACTED } : {}) };
    } else if (key === 'metadata' && isObject(child) && isObject(child.annotations) && child.annotations[LAST_APPLIED] !== undefined) {
      // kubectl apply copies the whole object, Secret data included, into this annotation.
      const annotations = { ...child.annotations, [LAST_APPLIED]: REDACTED };
      out[key] = redactJson({ ...child, annotations }, context);
    } else {
      out[key] = redactJson(child, context);
    }
  }
  return out;
}

export interface RedactedBody {
  /** Redacted JSON, or a note saying why the body is not kept. */
  body: Json;
  bytes: number;
}

/**
 * Redacts a captured body. `complete` is false when capture stopped at its
 * limit: then only whole newline-delimited JSON lines (watch events) are kept.
 */
export function redactBody(raw: Buffer, complete: boolean, totalBytes: number, contentType: string, context: RedactionContext): RedactedBody {
  if (totalBytes === 0) return { body: null, bytes: 0 };
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  const jsonLike = type === '' || type.endsWith('json') || type.endsWith('+yaml') || type === 'application/yaml';
  if (context.logText && type === 'text/plain') {
    const text = raw.toString('utf8');
    // A cut line could hold a cut credential the patterns no longer recognise: it is dropped.
    const kept = complete ? text : text.slice(0, text.lastIndexOf('\n') + 1);
    return { body: complete ? redactText(kept) : { text: redactText(kept), truncated: true }, bytes: totalBytes };
  }
  if (!jsonLike) return { body: `[${totalBytes} bytes of ${type || 'unknown type'} not recorded: cannot be redacted]`, bytes: totalBytes };
  const text = raw.toString('utf8');
  try {
    return { body: redactJson(JSON.parse(text) as Json, context), bytes: totalBytes };
  } catch {
    // Newline-delimited JSON (a watch stream), or truncated / non-JSON text.
  }
  const lines = text.split('\n');
  if (!complete || !text.endsWith('\n')) lines.pop(); // an unfinished line cannot be parsed, so it is dropped
  const events: Json[] = [];
  for (const line of lines) {
    if (line.trim() === '') continue;
    try {
      events.push(redactJson(JSON.parse(line) as Json, context));
    } catch {
      return { body: `[${totalBytes} bytes not recorded: not JSON, cannot be redacted]`, bytes: totalBytes };
    }
  }
  if (events.length === 0) return { body: `[${totalBytes} bytes not recorded: not JSON, cannot be redacted]`, bytes: totalBytes };
  return { body: { stream: events, ...(complete ? {} : { truncated: true }) }, bytes: totalBytes };
}

/**
 * A command line an agent ran (`airlock plan -- COMMAND`, `airlock exec`), for an approver or a
 * transcript: literal values (`--from-literal=key=VALUE`), the values of options named like
 * credentials (`--token X`, `--password=X`) and credential-shaped text (redactText) are replaced.
 */
export function redactCommandLine(command: string): string {
  return redactText(command)
    .replace(/(--from-literal[=\s]+[^=\s]+=)\S+/g, '$1[REDACTED]')
    .replace(/(--?[\w-]*(?:password|passwd|token|secret|key|credential)[\w-]*(?:=|\s+))(?!\[REDACTED\])\S+/gi, '$1[REDACTED]');
}
