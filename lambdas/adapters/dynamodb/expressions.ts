// Small builders for DynamoDB expressions, and the one place a DynamoDB call's
// failure becomes a domain outcome or a DependencyUnavailableError.
import { ConditionalCheckFailedException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand, type UpdateCommandInput } from '@aws-sdk/lib-dynamodb';
import { DependencyUnavailableError, errorText } from '../../core/errors.ts';

export type Item = Record<string, unknown>;

export function documentClient(client: DynamoDBClient): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
}

/** Builds "SET #a = :a, ..." for a partial object, skipping undefined values. */
function setExpression(changes: Item, prefix = 'c'): { expression: string; names: Record<string, string>; values: Item } {
  const names: Record<string, string> = {};
  const values: Item = {};
  const parts: string[] = [];
  Object.entries(changes).forEach(([key, value], index) => {
    if (value === undefined) return;
    names[`#${prefix}${index}`] = key;
    values[`:${prefix}${index}`] = value;
    parts.push(`#${prefix}${index} = :${prefix}${index}`);
  });
  return { expression: parts.length ? `SET ${parts.join(', ')}` : '', names, values };
}

/** An UpdateItem input that sets `changes` on the item at `key` if `condition` holds. */
export function conditionalUpdate(table: string, key: Item, changes: Item, condition: string, extra: { names?: Record<string, string>; values?: Item } = {}): UpdateCommandInput {
  const set = setExpression(changes);
  return {
    TableName: table,
    Key: key,
    UpdateExpression: set.expression,
    ConditionExpression: condition,
    ExpressionAttributeNames: { ...set.names, ...extra.names },
    ExpressionAttributeValues: { ...set.values, ...extra.values },
  };
}

/** "#status IN (:from0, :from1, ...)" with its values. */
export function statusIn(statuses: readonly string[]): { condition: string; values: Item } {
  const values: Item = {};
  statuses.forEach((status, index) => (values[`:from${index}`] = status));
  return { condition: `#status IN (${statuses.map((_, index) => `:from${index}`).join(', ')})`, values };
}

function isConditionFailure(error: unknown): boolean {
  return error instanceof ConditionalCheckFailedException || (error as { name?: string })?.name === 'ConditionalCheckFailedException';
}

export interface CallSite {
  store: 'state store' | 'record store';
  table: string;
}

/**
 * Runs one DynamoDB call. A failed condition is a domain outcome, so
 * `onConditionFailure` decides it (returns a value or throws a domain error);
 * without one it is a failure like any other SDK error, which becomes a
 * DependencyUnavailableError with the SDK error as its cause.
 */
export async function call<T>(site: CallSite, operation: string, run: () => Promise<T>, onConditionFailure?: (cause: unknown) => T): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (onConditionFailure && isConditionFailure(error)) return onConditionFailure(error);
    throw new DependencyUnavailableError(site.store, `DynamoDB ${operation} on ${site.table} failed: ${errorText(error)}`, { cause: error });
  }
}

/** Writes an item whose key (`pk` or `id`) must be new; `taken` is the domain error when it is not. */
export async function putNew(doc: DynamoDBDocumentClient, site: CallSite, key: 'pk' | 'id', item: Item, taken: (cause: unknown) => Error): Promise<void> {
  await call(
    site,
    'PutItem',
    () => doc.send(new PutCommand({ TableName: site.table, Item: item, ConditionExpression: `attribute_not_exists(${key})` })),
    (cause) => {
      throw taken(cause);
    },
  );
}
