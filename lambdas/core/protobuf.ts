// Kubernetes' protobuf envelope, read with @bufbuild/protobuf's wire reader
// (never a hand-written codec): the magic "k8s\0", then a runtime.Unknown
// whose field 2 (raw) holds the object's own message.
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';

const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

/** The length-delimited fields of one message by number (the last one wins, as in protobuf); others skipped. Throws on malformed input. */
export function messageFields(message: Uint8Array): Map<number, Uint8Array> {
  const reader = new BinaryReader(message);
  const found = new Map<number, Uint8Array>();
  while (reader.pos < reader.len) {
    const [number, wireType] = reader.tag();
    if (wireType === WireType.LengthDelimited) found.set(number, reader.bytes());
    else reader.skip(wireType);
  }
  return found;
}

/** The object's bytes inside a Kubernetes protobuf envelope (empty for an object with no field set). Throws when it is not one. */
export function envelopedObject(body: Uint8Array): Uint8Array {
  if (!Buffer.from(body.subarray(0, 4)).equals(MAGIC)) throw new Error('not a Kubernetes protobuf envelope');
  return messageFields(body.subarray(4)).get(2) ?? new Uint8Array();
}
