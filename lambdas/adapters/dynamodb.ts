// The DynamoDB adapters, one concern a file under dynamodb/. This entry point
// keeps the path the CDK construct imports the table shapes from.
export { recordsTableDefinition, stateTableDefinition, type TableNames } from './dynamodb/tables.ts';
export { DynamoStateStore } from './dynamodb/state-store.ts';
export { DynamoRecordStore, type RecordStoreOptions } from './dynamodb/record-store.ts';
