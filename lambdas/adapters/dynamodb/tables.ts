// The two tables' shapes, shared by the local stack (CreateTable) and the CDK
// construct, and the indexes the stores query by name.
import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';

export interface TableNames {
  state: string;
  records: string;
}

interface IndexShape {
  name: string;
  hash: string;
  range: string;
}

/** State table: one item per entity under `pk`; grants and approvals also listed per agent and per connection. */
export const STATE_INDEXES = {
  byAgent: { name: 'byAgent', hash: 'gsi1pk', range: 'gsi1sk' },
  byConnection: { name: 'byConnection', hash: 'gsi2pk', range: 'gsi2sk' },
  byType: { name: 'byType', hash: 'typepk', range: 'typesk' },
} as const satisfies Record<string, IndexShape>;

/** Records table: requests and events by id, listed by agent, connection or day, newest first. */
export const RECORD_INDEXES = {
  byAgent: { name: 'byAgent', hash: 'agent', range: 'time' },
  byConnection: { name: 'byConnection', hash: 'connection', range: 'time' },
  byDay: { name: 'byDay', hash: 'day', range: 'time' },
} as const satisfies Record<string, IndexShape>;

export function stateTableDefinition(tableName: string): CreateTableCommandInput {
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [
      { AttributeName: 'pk', AttributeType: 'S' },
      { AttributeName: 'gsi1pk', AttributeType: 'S' },
      { AttributeName: 'gsi1sk', AttributeType: 'S' },
      { AttributeName: 'gsi2pk', AttributeType: 'S' },
      { AttributeName: 'gsi2sk', AttributeType: 'S' },
      { AttributeName: 'typepk', AttributeType: 'S' },
      { AttributeName: 'typesk', AttributeType: 'S' },
    ],
    KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
    GlobalSecondaryIndexes: Object.values(STATE_INDEXES).map(gsi),
  };
}

export function recordsTableDefinition(tableName: string): CreateTableCommandInput {
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [
      { AttributeName: 'id', AttributeType: 'S' },
      { AttributeName: 'agent', AttributeType: 'S' },
      { AttributeName: 'connection', AttributeType: 'S' },
      { AttributeName: 'day', AttributeType: 'S' },
      { AttributeName: 'time', AttributeType: 'N' },
    ],
    KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
    GlobalSecondaryIndexes: Object.values(RECORD_INDEXES).map(gsi),
  };
}

function gsi(index: IndexShape) {
  return {
    IndexName: index.name,
    KeySchema: [
      { AttributeName: index.hash, KeyType: 'HASH' as const },
      { AttributeName: index.range, KeyType: 'RANGE' as const },
    ],
    Projection: { ProjectionType: 'ALL' as const },
  };
}
