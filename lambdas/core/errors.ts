// What the ports report when a call does not simply succeed. Adapters turn
// SDK errors into these (keeping the SDK error as `cause`), so nothing above
// them tests AWS error names; status.ts turns them into refusals in one place.
// Modelled on Powertools' idempotency errors: one small class per outcome.

/** The entities the stores name in their errors. */
export type Entity = 'agent' | 'agent name' | 'principal' | 'connection' | 'grant' | 'approval' | 'plan' | 'MCP task' | 'request record' | 'audit event' | 'spooled transcript';

/**
 * What `error` says, for a log line or a message: `Name: message` unless the
 * name is the plain `Error`; `{ name: false }` for the message alone (where a
 * caller sees it and the class name means nothing to them).
 */
export function errorText(error: unknown, options: { name?: boolean } = {}): string {
  if (!(error instanceof Error)) return String(error);
  return options.name !== false && error.name && error.name !== 'Error' ? `${error.name}: ${error.message}` : error.message;
}

// The messages callers see (as refusals, or in logs); the rest follow the defaults below.
const existsText: Partial<Record<Entity, (key: string) => string>> = {
  agent: (id) => `agent id ${id} already exists`,
  'agent name': (name) => `an agent named "${name}" already exists`,
  principal: (arn) => `principal ${arn} already belongs to an agent`,
  connection: (name) => `a connection named "${name}" already exists`,
  grant: (id) => `grant ${id} exists`,
  approval: (id) => `approval ${id} exists`,
};

const missingText: Partial<Record<Entity, (key: string) => string>> = {
  connection: (name) => `no connection named "${name}"`,
};

/** A create found the key taken (a conditional write failed). */
export class AlreadyExistsError extends Error {
  override name = 'AlreadyExistsError';
  readonly entity: Entity;
  readonly key: string;

  constructor(entity: Entity, key: string, options?: ErrorOptions) {
    super(existsText[entity]?.(key) ?? `${entity} ${key} already exists`, options);
    this.entity = entity;
    this.key = key;
  }
}

/** An update addressed something that is not there. */
export class NotFoundError extends Error {
  override name = 'NotFoundError';
  readonly entity: Entity;
  readonly key: string;

  constructor(entity: Entity, key: string, options?: ErrorOptions) {
    super(missingText[entity]?.(key) ?? `no ${entity} ${key}`, options);
    this.entity = entity;
    this.key = key;
  }
}

/** A page cursor the store did not issue (or can no longer read). */
export class InvalidCursorError extends Error {
  override name = 'InvalidCursorError';

  constructor(options?: ErrorOptions) {
    super('cursor: not a cursor from a previous page', options);
  }
}

/** The service behind a port failed the call (unreachable, throttled, refused); `cause` is what it said. */
export class DependencyUnavailableError extends Error {
  override name = 'DependencyUnavailableError';
  readonly dependency: 'state store' | 'record store' | 'transcript store' | 'workflows' | 'notifier' | 'sts';

  constructor(dependency: DependencyUnavailableError['dependency'], message: string, options?: ErrorOptions) {
    super(message, options);
    this.dependency = dependency;
  }
}
