// Transcripts in S3, one JSON object per request under a predictable key.
import { GetObjectCommand, NoSuchKey, PutObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { DependencyUnavailableError, errorText } from '../core/errors.ts';
import type { TranscriptStore } from '../core/ports.ts';

function named(error: unknown, name: string): boolean {
  return (error as { name?: string } | undefined)?.name === name;
}

export class S3TranscriptStore implements TranscriptStore {
  private readonly s3: S3Client;
  private readonly bucket: string;

  constructor(s3: S3Client, bucket: string) {
    this.s3 = s3;
    this.bucket = bucket;
  }

  private unavailable(operation: string, key: string, error: unknown): DependencyUnavailableError {
    return new DependencyUnavailableError('transcript store', `S3 ${operation} ${this.bucket}/${key} failed: ${errorText(error)}`, { cause: error });
  }

  async put(key: string, body: string): Promise<void> {
    const bytes = Buffer.from(body, 'utf8');
    try {
      await this.s3.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: bytes,
          ContentLength: bytes.length,
          ContentType: 'application/json',
          // Transcripts are evidence: never replace one.
          IfNoneMatch: '*',
        }),
      );
    } catch (error) {
      // Already there: a retry after a write that did land (or a repeated repair). That is success.
      if (named(error, 'PreconditionFailed')) return;
      throw this.unavailable('PutObject', key, error);
    }
  }

  async get(key: string): Promise<string | undefined> {
    try {
      const out = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return await out.Body?.transformToString('utf8');
    } catch (error) {
      if (error instanceof NoSuchKey || named(error, 'NoSuchKey')) return undefined;
      throw this.unavailable('GetObject', key, error);
    }
  }
}

/** The adapter with its own client: the functions load this module on first use (runtime/transcript-services.ts). */
export function s3TranscriptStore(clientConfig: S3ClientConfig, bucket: string): S3TranscriptStore {
  return new S3TranscriptStore(new S3Client(clientConfig), bucket);
}
