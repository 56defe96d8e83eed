// POST /v1/exec in place of parse: the JSON body asks for one command in one
// container; from here on it is the Kubernetes exec request Airlock will make
// (GET .../pods/{pod}/exec?command=…&container=…&stdout=true&stderr=true
// [&stdin=true]), parsed like any other, with stdin as its body. So the policy
// (verb exec on pods/exec, its command), the approval fingerprint (method,
// path, query with the command, stdin's SHA-256), the record and the
// transcript all hold exactly what the API server is asked.
import * as z from 'zod';
import { NAME_PATTERN } from '../../core/ids.ts';
import { AirlockError } from '../../core/status.ts';
import type { Authenticated, Parsed } from './context.ts';
import { parse } from './parse.ts';

/** What the agent asked beyond the request itself: how long it may run, and stdin (undefined: none). */
export interface ExecAsk {
  timeoutMs: number;
  stdin: Buffer | undefined;
}

export const EXEC_TIMEOUT_SECONDS = { default: 60, max: 15 * 60 } as const;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

const ExecBody = z.strictObject({
  connection: z.string().regex(NAME_PATTERN, 'not a connection name').optional(),
  namespace: z.string().regex(DNS_LABEL, 'not a namespace name'),
  pod: z.string().max(253).regex(DNS_SUBDOMAIN, 'not a pod name'),
  container: z.string().regex(DNS_LABEL, 'not a container name').optional(),
  command: z.array(z.string().max(4096), { error: 'must be a list of words, e.g. ["ls", "-l"]' }).min(1, 'give the command to run').max(100),
  stdin: z.string().optional(),
  timeoutSeconds: z.number().int().min(1).max(EXEC_TIMEOUT_SECONDS.max).optional(),
});

export function readExec(authenticated: Authenticated, body: Buffer): { parsed: Parsed; ask: ExecAsk } {
  let raw: unknown;
  try {
    raw = JSON.parse(body.toString('utf8'));
  } catch {
    throw new AirlockError(400, 'invalid_json', 'the exec request body is not valid JSON: send {"namespace", "pod", "command": [...], "container"?, "stdin"?, "timeoutSeconds"?}');
  }
  const result = ExecBody.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new AirlockError(400, 'invalid_request', `${issue.path.length ? issue.path.join('.') : 'body'}: ${issue.message}`);
  }
  const asked = result.data;
  const { claims, request } = authenticated;
  if (asked.connection !== undefined && asked.connection !== claims.connection) {
    throw new AirlockError(403, 'wrong_connection', `this token is for connection "${claims.connection}", not "${asked.connection}"`);
  }
  const stdin = asked.stdin === undefined ? undefined : Buffer.from(asked.stdin, 'utf8');
  const query: Record<string, string[]> = {
    command: asked.command,
    ...(asked.container ? { container: [asked.container] } : {}),
    stdout: ['true'],
    stderr: ['true'],
    ...(stdin !== undefined ? { stdin: ['true'] } : {}),
  };
  const userAgent = request.headers['user-agent'];
  const exec = {
    ...request,
    method: 'GET',
    path: `/api/v1/namespaces/${asked.namespace}/pods/${asked.pod}/exec`,
    query,
    // Only what may reach the cluster: the agent's own headers (its Content-Type is the JSON it sent Airlock).
    headers: { ...(request.headers.authorization ? { authorization: request.headers.authorization } : {}), ...(userAgent ? { 'user-agent': userAgent } : {}) },
    body: stdin ?? Buffer.alloc(0),
  };
  const parsed = parse({ ...authenticated, request: exec });
  return { parsed: { ...parsed, record: { ...parsed.record, method: exec.method, path: exec.path } }, ask: { timeoutMs: (asked.timeoutSeconds ?? EXEC_TIMEOUT_SECONDS.default) * 1000, stdin } };
}
