// One Powertools logger per function. Events are never logged whole: they
// carry tokens. Fields that could hold credentials are never passed in.
import { Logger } from '@aws-lambda-powertools/logger';

export const logger = new Logger({ serviceName: 'airlock' });
