// Refusals on /k8s are Kubernetes `Status` objects, so kubectl prints them the
// way it prints the API server's own errors; elsewhere errors are
// {error:{code,message}}. One error type carries both shapes, and the ports'
// domain errors (errors.ts) become refusals here and nowhere else.
import { AlreadyExistsError, InvalidCursorError, NotFoundError, type Entity } from './errors.ts';

export type StatusReason =
  | 'BadRequest'
  | 'Unauthorized'
  | 'Forbidden'
  | 'NotFound'
  | 'MethodNotAllowed'
  | 'Conflict'
  | 'Expired'
  | 'RequestEntityTooLarge'
  | 'RequestHeaderFieldsTooLarge'
  | 'UnsupportedMediaType'
  | 'NotImplemented'
  | 'TooManyRequests'
  | 'InternalError'
  | 'ServiceUnavailable'
  | 'BadGateway'
  | 'Timeout';

const reasonForCode: Record<number, StatusReason> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  409: 'Conflict',
  410: 'Expired',
  413: 'RequestEntityTooLarge',
  415: 'UnsupportedMediaType',
  431: 'RequestHeaderFieldsTooLarge',
  429: 'TooManyRequests',
  500: 'InternalError',
  // Not a Kubernetes reason, and not meant to be one: kubectl prints "Error from server (NotImplemented)",
  // which no agent reads as a fault worth retrying (InternalError would be).
  501: 'NotImplemented',
  502: 'BadGateway',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

/** A refusal: HTTP status, a stable machine code and a message telling the caller what to do next. */
export class AirlockError extends Error {
  override name = 'AirlockError';
  readonly status: number;
  readonly code: string;
  readonly details: Record<string, unknown> | undefined;

  constructor(status: number, code: string, message: string, details?: Record<string, unknown>) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export interface KubernetesStatus {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure';
  message: string;
  reason: StatusReason;
  details?: { name?: string; kind?: string; causes?: { reason: string; message: string; field?: string }[] };
  code: number;
}

export function kubernetesStatus(error: AirlockError): KubernetesStatus {
  const details: KubernetesStatus['details'] = { causes: [{ reason: error.code, message: error.message }] };
  if (typeof error.details?.approvalId === 'string') {
    details.name = error.details.approvalId;
    details.kind = 'approval';
  }
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: `airlock: ${error.message}`,
    reason: reasonForCode[error.status] ?? 'InternalError',
    details,
    code: error.status,
  };
}

export function errorBody(error: AirlockError): { error: { code: string; message: string } & Record<string, unknown> } {
  return { error: { code: error.code, message: error.message, ...(error.details ?? {}) } };
}

const conflictCodes: Partial<Record<Entity, string>> = {
  agent: 'agent_exists',
  'agent name': 'agent_exists',
  principal: 'principal_taken',
  connection: 'connection_exists',
  grant: 'grant_exists',
  approval: 'approval_exists',
};
const notFoundCodes: Partial<Record<Entity, string>> = { agent: 'agent_not_found', connection: 'connection_not_found' };

/** The refusal a domain error stands for; undefined for anything else (a failure, not a refusal). */
export function refusalFor(error: unknown): AirlockError | undefined {
  if (error instanceof AirlockError) return error;
  if (error instanceof AlreadyExistsError) {
    const code = conflictCodes[error.entity];
    if (code) return new AirlockError(409, code, error.message);
  }
  if (error instanceof NotFoundError) {
    const code = notFoundCodes[error.entity];
    if (code) return new AirlockError(404, code, error.message);
  }
  if (error instanceof InvalidCursorError) return new AirlockError(400, 'invalid_query', error.message);
  // Anything else (an outage, a conflict on a record id) is a failure, not a refusal.
  return undefined;
}

/** Refusals as they are; anything unexpected becomes a 500 that says nothing about internals. */
export function asAirlockError(error: unknown): AirlockError {
  return refusalFor(error) ?? new AirlockError(500, 'internal', 'internal error; the request was not forwarded');
}
