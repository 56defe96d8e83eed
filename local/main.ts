// `npm start`: the local stack in the foreground. Ctrl-C stops it; state stays in AIRLOCK_HOME.
import { relative } from 'node:path';
import { startLocalStack } from './stack.ts';

const stack = await startLocalStack();
const show = (path: string) => (relative(process.cwd(), path).startsWith('..') ? path : `./${relative(process.cwd(), path)}`);

console.log(`Airlock local stack listening on ${stack.url}`);
console.log(`  CA certificate:   ${show(stack.caFile)}   (clients pin it; never skip TLS verification)`);
console.log(`  admin key:        ${show(stack.adminKeyFile)}   (mode 0600; the CLI reads it for admin commands)`);
console.log(`  approval emails:  ${show(stack.outboxDir)}/*.eml   (links are also printed here)`);
console.log(`  state:            ${show(stack.home)}   (survives restarts)`);
console.log(`  emulators:        DynamoDB ${stack.endpoints.dynamodb}, S3/SNS ${stack.endpoints.s3}   (AWS SDK/CLI with any credentials)`);
console.log('Next: npx airlock agents create my-agent   (see README "First run")');

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.log(`\n${signal}: stopping`);
  await stack.stop();
  console.log('stopped');
  process.exit(0);
}
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));
