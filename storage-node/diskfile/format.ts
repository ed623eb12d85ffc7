/**
 * The on-disk format of object files. Swift keeps metadata in xattrs, which ext4 caps at 4 KiB per
 * inode; Nebula appends it to the file instead, so data and metadata land in one atomic rename:
 *
 *     <body bytes> <metadata JSON, UTF-8> <uint32 BE: JSON byte length> <4 bytes magic "NBo1">
 *
 * A trailer (not a header) because ETag and length are known only after the body has streamed
 * through. `.data` files carry the body; `.meta` (POSTed metadata) and `.ts` (tombstone) files
 * have an empty body. The metadata is a flat object of strings keyed by Swift's header names
 * (`X-Timestamp`, `Content-Type`, `ETag`, `Content-Length`, `X-Object-Meta-*`, ...) plus `name`.
 */

export const TRAILER_MAGIC = Buffer.from('NBo1', 'latin1');
export const TRAILER_FOOTER_BYTES = 8;
/** A sanity bound: metadata is limited to a few KiB by the constraints; anything bigger is corruption. */
export const METADATA_BYTES_MAX = 1024 * 1024;

export type ObjectMetadata = Record<string, string>;

export class TrailerError extends Error {
  readonly code = 'TrailerError';
}

export function encodeTrailer(metadata: ObjectMetadata): Buffer {
  const json = Buffer.from(JSON.stringify(metadata), 'utf8');
  if (json.length > METADATA_BYTES_MAX) throw new TrailerError(`metadata of ${json.length} bytes is too large`);
  const footer = Buffer.alloc(TRAILER_FOOTER_BYTES);
  footer.writeUInt32BE(json.length, 0);
  TRAILER_MAGIC.copy(footer, 4);
  return Buffer.concat([json, footer]);
}

/** Reads the JSON length from the last 8 bytes of a file; throws on a missing magic. */
export function decodeFooter(footer: Buffer): number {
  if (footer.length !== TRAILER_FOOTER_BYTES || !footer.subarray(4).equals(TRAILER_MAGIC)) {
    throw new TrailerError('no metadata trailer');
  }
  const length = footer.readUInt32BE(0);
  if (length > METADATA_BYTES_MAX) throw new TrailerError(`metadata length ${length} out of range`);
  return length;
}

export function decodeMetadata(json: Buffer): ObjectMetadata {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json.toString('utf8'));
  } catch (error) {
    throw new TrailerError('metadata is not JSON', { cause: error });
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new TrailerError('metadata is not an object');
  }
  const metadata: ObjectMetadata = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (typeof value !== 'string') throw new TrailerError(`metadata ${key} is not a string`);
    metadata[key] = value;
  }
  if (metadata['X-Timestamp'] === undefined) throw new TrailerError('metadata has no X-Timestamp');
  return metadata;
}

/** Splits a whole file (body + trailer) read into memory. */
export function splitWholeFile(file: Buffer): { body: Buffer; metadata: ObjectMetadata } {
  if (file.length < TRAILER_FOOTER_BYTES) throw new TrailerError('file too short for a trailer');
  const jsonLength = decodeFooter(file.subarray(file.length - TRAILER_FOOTER_BYTES));
  const bodyLength = file.length - TRAILER_FOOTER_BYTES - jsonLength;
  if (bodyLength < 0) throw new TrailerError('metadata longer than the file');
  return {
    body: file.subarray(0, bodyLength),
    metadata: decodeMetadata(file.subarray(bodyLength, file.length - TRAILER_FOOTER_BYTES)),
  };
}
