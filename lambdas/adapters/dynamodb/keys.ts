// The state table's key layout, in one place. Every entity lives under
// `pk` = PREFIX + its id or name; claim items (agent name, principal) make
// names unique; grants and approvals also carry index keys whose sort key is
// PREFIX + a zero-padded time, so `begins_with` picks the kind and the order is by time.

const PREFIX = {
  agent: 'AGENT#',
  agentName: 'AGENTNAME#',
  principal: 'PRINCIPAL#',
  connection: 'CONN#',
  grant: 'GRANT#',
  approval: 'APPROVAL#',
  fingerprint: 'FP#',
  plan: 'PLAN#',
  planSpent: 'PLANSPENT#',
  mcpTask: 'MCPTASK#',
} as const;

export const stateKey = {
  agent: (id: string) => `${PREFIX.agent}${id}`,
  agentName: (name: string) => `${PREFIX.agentName}${name}`,
  principal: (principalArn: string) => `${PREFIX.principal}${principalArn}`,
  connection: (name: string) => `${PREFIX.connection}${name}`,
  grant: (id: string) => `${PREFIX.grant}${id}`,
  approval: (id: string) => `${PREFIX.approval}${id}`,
  fingerprint: (fingerprint: string) => `${PREFIX.fingerprint}${fingerprint}`,
  plan: (id: string) => `${PREFIX.plan}${id}`,
  /** One item per spent change: its conditional put is what lets a change pass once. */
  planSpent: (planId: string, fingerprint: string) => `${PREFIX.planSpent}${planId}#${fingerprint}`,
  mcpTask: (id: string) => `${PREFIX.mcpTask}${id}`,
};

/** The kinds listed per agent and per connection. */
export type ListedKind = 'grant' | 'approval' | 'plan';

/** Sort-key prefix of a listed kind (for `begins_with`). */
export function listedPrefix(kind: ListedKind): string {
  return PREFIX[kind];
}

/** Sort key of a listed item: its kind's prefix and a zero-padded time. */
export function listedSortKey(kind: ListedKind, time: number): string {
  return `${PREFIX[kind]}${String(time).padStart(15, '0')}`;
}

/** Values of the byType index's partition key. */
export type TypeKey = 'agent' | 'connection';

/** Attributes that exist only for the key layout: never part of what a store returns. */
const KEY_FIELDS = ['pk', 'gsi1pk', 'gsi1sk', 'gsi2pk', 'gsi2sk', 'typepk', 'typesk', 'entity', 'ttl'];

export function withoutKeys<T>(item: Record<string, unknown> | undefined): T | undefined {
  if (!item) return undefined;
  const copy: Record<string, unknown> = { ...item };
  for (const field of KEY_FIELDS) delete copy[field];
  return copy as T;
}
