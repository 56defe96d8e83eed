// Identifiers: a short type prefix plus 128 random bits, so an id in a log
// line says what it names and cannot be guessed.
import { randomBytes } from 'node:crypto';

export type IdPrefix = 'agt' | 'gr' | 'req' | 'apr' | 'evt' | 'tok' | 'pln' | 'mcp' | 'tsk';

export function newId(prefix: IdPrefix): string {
  return `${prefix}_${randomBytes(16).toString('base64url')}`;
}

const idPattern = /^(agt|gr|req|apr|evt|tok|pln|mcp|tsk)_[A-Za-z0-9_-]{22}$/;

export function isId(value: unknown, prefix?: IdPrefix): value is string {
  if (typeof value !== 'string' || !idPattern.test(value)) return false;
  return prefix === undefined || value.startsWith(`${prefix}_`);
}

/** Names of agents and connections: DNS labels, safe in paths, ARNs and STS session names. */
export const NAME_PATTERN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
