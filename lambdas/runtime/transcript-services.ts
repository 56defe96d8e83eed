// The transcript store (S3) added to the core services: for the functions
// that read or write transcripts (admin, approvals, proxy) and no others.
// S3's client is the largest the functions use, and none needs it to start:
// the proxy writes a transcript after the response has gone, admin and
// approvals read one on a few pages. So it is loaded on first use
// (core/on-first-use.ts); a load that fails is the store being unavailable.
import type { TranscriptStore } from '../core/ports.ts';
import { DependencyUnavailableError, errorText } from '../core/errors.ts';
import { onFirstUse } from '../core/on-first-use.ts';
import { awsClientConfig, createCoreServices } from './core-services.ts';
import type { AirlockConfig, CoreServices, TranscriptServices } from './services.ts';

export function withTranscripts(config: AirlockConfig, core: CoreServices): TranscriptServices {
  const store = onFirstUse(
    async () => (await import('../adapters/s3.ts')).s3TranscriptStore(awsClientConfig(config, 's3'), config.transcriptBucket),
    (error) => new DependencyUnavailableError('transcript store', `the S3 client could not be loaded: ${errorText(error)}`, { cause: error }),
  );
  const transcripts: TranscriptStore = {
    put: async (key, body) => (await store()).put(key, body),
    get: async (key) => (await store()).get(key),
  };
  return { ...core, transcripts };
}

export async function createTranscriptServices(config: AirlockConfig): Promise<TranscriptServices> {
  return withTranscripts(config, await createCoreServices(config));
}
