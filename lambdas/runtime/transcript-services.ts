// The transcript store (S3) added to the core services: for the functions
// that read or write transcripts (admin, approvals, proxy) and no others.
import { S3Client } from '@aws-sdk/client-s3';
import { S3TranscriptStore } from '../adapters/s3.ts';
import { awsClientConfig, createCoreServices } from './core-services.ts';
import type { AirlockConfig, CoreServices, TranscriptServices } from './services.ts';

export function withTranscripts(config: AirlockConfig, core: CoreServices): TranscriptServices {
  return { ...core, transcripts: new S3TranscriptStore(new S3Client(awsClientConfig(config, 's3')), config.transcriptBucket) };
}

export async function createTranscriptServices(config: AirlockConfig): Promise<TranscriptServices> {
  return withTranscripts(config, await createCoreServices(config));
}
