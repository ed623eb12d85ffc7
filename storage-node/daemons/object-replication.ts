/**
 * The object side of the REPLICATE verb: what one storage node answers to a peer's replicator.
 * Node's HTTP parser accepts only the methods it knows, and REPLICATE is not one of them, so the
 * verb travels as `POST` with `X-Backend-Replicate: REPLICATE` (an X-Backend-* header: the proxy's
 * gatekeeper strips those from clients, so only cluster members can send it):
 *
 *   REPLICATE /<dev>/<part>/hashes[?recalculate=abc-def]   -> 200 JSON { suffix: hash }
 *   REPLICATE /<dev>/<part>/list?suffixes=abc-def          -> 200 JSON { hash: HashState }
 *   REPLICATE /<dev>/<part>/file/<suffix>/<hash>/<name>    -> 201 stored, 409 newer on disk
 *   REPLICATE /<dev>/0/digests   body JSON [part, ...]     -> 200 JSON { part: digest }
 *
 * `digests` answers for many partitions in one exchange (each digest is partitionDigest() of the
 * partition's suffix hashes), so a replicator pass over unchanged partitions costs one request
 * per peer device, not one per partition and peer.
 *
 * `file` carries one object file (`<timestamp>.data|.ts|.meta`): the body is the object's bytes
 * (empty for .ts and .meta), `X-Nebula-Metadata` its metadata as base64 JSON. The receiver checks
 * a .data's length and MD5 against that metadata before writing (never a corrupt copy), keeps
 * the newest-wins rule (a .data or .ts only over older ones, a .meta only over an older data and
 * meta), and writes through diskfile (temp, fsync, rename), so the stored file is byte-identical
 * to the sender's.
 */
import { join } from 'node:path';
import type { Context } from 'koa';
import { HttpError } from '../../common/errors.js';
import { Timestamp } from '../../common/timestamp.js';
import type { DiskFileManager, ObjectLocation } from '../diskfile/diskfile.js';
import { decodeMetadata, type ObjectMetadata } from '../diskfile/format.js';
import { receiveBody } from '../receive-body.js';
import type { RequestTarget } from '../server-types.js';
import {
  getHashes,
  getPartitionHashes,
  invalidateHashDir,
  isHash,
  isSuffix,
  listSuffix,
  partitionPath,
  stateOf,
  type HashState,
} from './partition-hashes.js';

export const METADATA_HEADER = 'x-nebula-metadata';
/** The header that turns a POST into the REPLICATE verb. */
export const REPLICATE_HEADER = 'x-backend-replicate';
export const REPLICATE_VERB = 'REPLICATE';

/** The method and headers of an outgoing REPLICATE request. */
export const REPLICATE_REQUEST = Object.freeze({
  method: 'POST',
  headers: Object.freeze({ [REPLICATE_HEADER]: REPLICATE_VERB }),
});

export function isReplicateRequest(ctx: Context): boolean {
  return ctx.method === 'POST' && ctx.get(REPLICATE_HEADER).toUpperCase() === REPLICATE_VERB;
}
const FILE_NAME_RE = /^(\d{10}\.\d{5}(?:_[0-9a-f]{16})?)\.(data|ts|meta)$/;
/** A list request names at most every suffix of a partition. */
const SUFFIXES_PER_REQUEST_MAX = 4096;
/** A digests request names at most this many partitions (the replicator sends them in chunks). */
export const DIGEST_PARTITIONS_PER_REQUEST_MAX = 4096;
/** Room for that many partition numbers in JSON. */
const DIGEST_REQUEST_BYTES_MAX = DIGEST_PARTITIONS_PER_REQUEST_MAX * 12;

export interface ObjectReplicationOptions {
  diskfiles: DiskFileManager;
  reclaimAgeSeconds: number;
  /** See GetHashesOptions.rehashIntervalMs. */
  rehashIntervalMs?: number;
  maxFileSize: number;
  clientTimeoutMs: number;
}

function suffixList(raw: string | undefined): string[] {
  if (raw === undefined || raw === '') return [];
  const suffixes = raw.split('-');
  if (suffixes.length > SUFFIXES_PER_REQUEST_MAX || !suffixes.every(isSuffix)) {
    throw new HttpError(400, 'Invalid suffixes', { code: 'BadSuffixes' });
  }
  return suffixes;
}

/** The body of a digests request: a JSON array of partition numbers, bounded in bytes and count. */
async function partitionList(ctx: Context): Promise<number[]> {
  const chunks: Buffer[] = [];
  let size = 0;
  // Bounded by DIGEST_REQUEST_BYTES_MAX.
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > DIGEST_REQUEST_BYTES_MAX) throw new HttpError(413, 'Too many partitions', { code: 'TooLarge' });
    chunks.push(chunk as Buffer);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    parsed = undefined;
  }
  if (
    !Array.isArray(parsed) ||
    parsed.length > DIGEST_PARTITIONS_PER_REQUEST_MAX ||
    !parsed.every((value) => Number.isSafeInteger(value) && (value as number) >= 0 && (value as number) < 2 ** 32)
  ) {
    throw new HttpError(400, 'Invalid partition list', { code: 'BadPartitions' });
  }
  return parsed as number[];
}

function queryString(ctx: Context, name: string): string | undefined {
  const value = ctx.query[name];
  return Array.isArray(value) ? value.join('-') : value;
}

export function hashLocation(devicePath: string, partition: number, suffix: string, hash: string): ObjectLocation {
  return {
    devicePath,
    partition,
    account: '',
    container: '',
    object: '',
    hash,
    suffix,
    hashDir: join(partitionPath(devicePath, partition), suffix, hash),
  };
}

export function encodeMetadataHeader(metadata: ObjectMetadata): string {
  return Buffer.from(JSON.stringify(metadata), 'utf8').toString('base64');
}

function decodeMetadataHeader(raw: string | undefined): ObjectMetadata {
  if (raw === undefined) throw new HttpError(400, 'Missing X-Nebula-Metadata', { code: 'MissingMetadata' });
  try {
    return decodeMetadata(Buffer.from(raw, 'base64'));
  } catch (error) {
    throw new HttpError(400, 'Invalid X-Nebula-Metadata', { code: 'BadMetadata', cause: error });
  }
}

export async function handleObjectReplicate(
  ctx: Context,
  target: RequestTarget,
  options: ObjectReplicationOptions,
): Promise<void> {
  const partitionDir = partitionPath(target.devicePath, target.partition);
  const op = target.account;
  if (op === 'hashes' && target.container === undefined) {
    const hashes = await getHashes(partitionDir, {
      recalculate: suffixList(queryString(ctx, 'recalculate')),
      reclaimAgeSeconds: options.reclaimAgeSeconds,
      rehashIntervalMs: options.rehashIntervalMs,
    });
    ctx.status = 200;
    ctx.type = 'application/json';
    ctx.body = JSON.stringify(hashes);
    return;
  }
  if (op === 'digests' && target.container === undefined) {
    const digests: Record<string, string> = {};
    for (const partition of await partitionList(ctx)) {
      const { digest } = await getPartitionHashes(partitionPath(target.devicePath, partition), {
        reclaimAgeSeconds: options.reclaimAgeSeconds,
        rehashIntervalMs: options.rehashIntervalMs,
      });
      digests[partition] = digest;
    }
    ctx.status = 200;
    ctx.type = 'application/json';
    ctx.body = JSON.stringify(digests);
    return;
  }
  if (op === 'list' && target.container === undefined) {
    const listing: Record<string, HashState> = {};
    for (const suffix of suffixList(queryString(ctx, 'suffixes'))) {
      for (const [hash, state] of await listSuffix(partitionDir, suffix, options.reclaimAgeSeconds)) {
        listing[hash] = state;
      }
    }
    ctx.status = 200;
    ctx.type = 'application/json';
    ctx.body = JSON.stringify(listing);
    return;
  }
  if (op === 'file' && target.container !== undefined && target.object !== undefined) {
    return receiveFile(ctx, target, target.container, target.object, options);
  }
  throw new HttpError(400, 'Invalid REPLICATE path', { code: 'BadReplicatePath' });
}

async function receiveFile(
  ctx: Context,
  target: RequestTarget,
  suffix: string,
  rest: string,
  options: ObjectReplicationOptions,
): Promise<void> {
  const [hash = '', fileName = '', ...extra] = rest.split('/');
  const match = FILE_NAME_RE.exec(fileName);
  if (!isSuffix(suffix) || !isHash(hash) || !hash.endsWith(suffix) || match === null || extra.length > 0) {
    throw new HttpError(400, 'Invalid replicated file path', { code: 'BadReplicatePath' });
  }
  const timestamp = Timestamp.parse(match[1] ?? '');
  const ext = match[2] as 'data' | 'ts' | 'meta';
  const metadata = decodeMetadataHeader(ctx.get(METADATA_HEADER) || undefined);
  if (
    metadata['X-Timestamp'] !== timestamp.internal &&
    Timestamp.parse(metadata['X-Timestamp'] ?? '').compare(timestamp) !== 0
  ) {
    throw new HttpError(400, 'X-Timestamp of the metadata is not the file name', { code: 'BadMetadata' });
  }
  const { diskfiles } = options;
  const location = hashLocation(target.devicePath, target.partition, suffix, hash);
  const onDisk = stateOf(await diskfiles.readState(location));
  const conflict = (current: string): HttpError =>
    new HttpError(409, undefined, { code: 'Conflict', headers: { 'X-Backend-Timestamp': current } });
  if (ext === 'meta') {
    if (onDisk.winner?.kind !== 'data') throw conflict(onDisk.winner?.timestamp ?? '0');
    const newest = [onDisk.winner.timestamp, onDisk.meta?.timestamp ?? '0'];
    for (const current of newest) {
      if (Timestamp.parse(current).compare(timestamp) >= 0) throw conflict(current);
    }
  } else if (onDisk.winner !== undefined && Timestamp.parse(onDisk.winner.timestamp).compare(timestamp) >= 0) {
    throw conflict(onDisk.winner.timestamp);
  }
  const expectedLength = ext === 'data' ? Number(metadata['Content-Length']) : 0;
  if (!Number.isSafeInteger(expectedLength) || expectedLength < 0 || expectedLength > options.maxFileSize) {
    throw new HttpError(400, 'Invalid Content-Length in metadata', { code: 'BadMetadata' });
  }
  const writer = await diskfiles.createWriter(location);
  try {
    await receiveBody(ctx.req, writer, {
      contentLength: expectedLength,
      limitBytes: expectedLength,
      clientTimeoutMs: options.clientTimeoutMs,
      tooLong: () => new HttpError(400, 'Body longer than its metadata says', { code: 'BadLength' }),
    });
    // Assert the data right before writing it: a bad sender copy must never spread. The writer
    // hashed the body as it went to disk: no second MD5 of every byte here.
    const md5 = writer.digest();
    if (ext === 'data' && md5 !== metadata.ETag) {
      throw new HttpError(422, 'Body does not match its ETag', { code: 'EtagMismatch' });
    }
    await writer.commit(metadata, timestamp, ext);
  } finally {
    await writer.abort();
  }
  await invalidateHashDir(location.hashDir);
  ctx.status = 201;
  ctx.body = '';
}
