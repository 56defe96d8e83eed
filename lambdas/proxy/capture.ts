// The response body on its way to the agent: passed through unchanged, counted,
// and its first bytes kept for the transcript.
import { Transform, type TransformCallback } from 'node:stream';

/** Passes bytes through unchanged, counting them and keeping the first `limit` for the transcript. */
export class CaptureStream extends Transform {
  bytes = 0;
  truncated = false;
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  private readonly limit: number;

  constructor(limit: number) {
    super();
    this.limit = limit;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.kept < this.limit) {
      const slice = chunk.subarray(0, this.limit - this.kept);
      this.chunks.push(Buffer.from(slice));
      this.kept += slice.length;
      if (slice.length < chunk.length) this.truncated = true;
    } else {
      this.truncated = true;
    }
    callback(null, chunk);
  }

  captured(): Buffer {
    return Buffer.concat(this.chunks);
  }
}
