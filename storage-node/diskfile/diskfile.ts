/**
 * Swift's diskfile: the only code that touches object files.
 *
 * Layout: `<device>/objects/<partition>/<suffix>/<hash>/<timestamp>.data|.ts|.meta`, where `hash`
 * is the object's hash path and `suffix` its last three hex digits. The newest `.data` or `.ts`
 * decides whether the object exists; a `.meta` newer than the `.data` carries POSTed metadata.
 * Writes go to `<device>/tmp/`, are fsynced, renamed into place and the folder fsynced, so a reader
 * (or a restart after kill -9) sees a whole file or none. Metadata rides in a trailer of the same
 * file (see format.ts). Older files are removed after each write into an existing folder (a folder
 * the write made holds nothing older); tombstones after `reclaimAge`.
 *
 * I/O model (measured, see bench/storage-node-bench.ts): the cheap metadata calls on page-cached
 * folders (readdir, open, fstat, rename, mkdir, unlink, close, and reads/writes of small files) are
 * made synchronously, as Swift's eventlet servers make them, because a hop through the libuv pool
 * costs more than the call itself on a busy host; only the calls that wait for the disk (fsync,
 * fdatasync) and the streaming of large bodies go through the pool.
 *
 * Page cache (Swift's drop_buffer_cache, page-cache.ts): what a PUT wrote is dropped from the page
 * cache once fdatasync has made it durable, and what a GET read of an object of `keepCacheSize`
 * bytes or more, so that object bytes do not fill the host's memory and make every new write pay
 * for reclaim. The whole file goes, metadata trailer included: the kernel drops whole folios only,
 * and ext4 caches a file in folios of up to 2 MiB, so keeping the trailer's page kept (measured)
 * the whole of a 1 MiB object and ~0.5-1 MiB of larger ones; a later HEAD reads the tail again.
 * A small object (written in one call, up to `BUFFERED_BYTES_MAX`) keeps its pages, unlike in
 * Swift: dropping them measured no gain in server CPU or ops/s for 4 KiB PUT and GET with memory
 * full, costs a call per PUT, and sends the GET of a fresh small object to the disk.
 */
import { strict as assert } from 'node:assert';
import { createHash, hash as oneShotHash, randomBytes, type Hash } from 'node:crypto';
import {
  close,
  closeSync,
  constants as fsConstants,
  createReadStream,
  fdatasync,
  fstatSync,
  fsync,
  mkdirSync,
  openSync,
  read,
  readdirSync,
  readSync,
  renameSync,
  rmdirSync,
  writeSync,
  writev,
  writevSync,
} from 'node:fs';
import { mkdir, readdir, rename, unlink } from 'node:fs/promises';
import { promisify } from 'node:util';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { hashPath, type HashPathSecrets } from '../../common/hash-path.js';
import { Timestamp } from '../../common/timestamp.js';
import { invalidateHashDir } from '../daemons/invalidate.js';
import { dropBehind, dropPageCache } from './page-cache.js';
import { recordDeleteAt } from '../object/expiry-index.js';
import {
  DiskFileDeletedError,
  DiskFileExpiredError,
  DiskFileNotExistError,
  DiskFileQuarantinedError,
} from './errors.js';
import {
  decodeFooter,
  decodeMetadata,
  encodeTrailer,
  splitWholeFile,
  TRAILER_FOOTER_BYTES,
  TrailerError,
  type ObjectMetadata,
} from './format.js';

export type { ObjectMetadata } from './format.js';

/** Prefix of this module's temp files in `<device>/tmp/`: the ones removed at start. */
export const OBJECT_TEMP_PREFIX = 'object-';

/** Headers a POST may set, replacing the PUT's values (Swift's default `allowed_headers`). */
export const POST_ALLOWED_HEADERS: readonly string[] = [
  'Content-Disposition',
  'Content-Encoding',
  'X-Delete-At',
  'X-Object-Manifest',
  'X-Static-Large-Object',
  'Cache-Control',
  'Content-Language',
  'Expires',
  'X-Robots-Tag',
];

export interface DiskFileOptions {
  hashSecrets: Readonly<HashPathSecrets>;
  fsync: boolean;
  reclaimAgeSeconds: number;
  /** Objects up to this size are read whole and checked against their ETag before being served. */
  verifyBeforeSendBytesMax: number;
  diskChunkSize: number;
  /** Swift's `keep_cache_size`: a GET of a smaller object leaves its pages cached; larger ones are dropped. */
  keepCacheSize: number;
}

export interface ObjectLocation {
  devicePath: string;
  partition: number;
  account: string;
  container: string;
  object: string;
  hash: string;
  suffix: string;
  hashDir: string;
}

interface OnDiskFile {
  file: string;
  timestamp: Timestamp;
  kind: 'data' | 'ts' | 'meta';
}

/** What a hash folder holds once Swift's rules are applied. */
export interface OnDiskState {
  data?: OnDiskFile;
  tombstone?: OnDiskFile;
  meta?: OnDiskFile;
  /** Files that lost: older than the winner, or metadata older than the data. */
  obsolete: OnDiskFile[];
  /** The hash folder was not there when read: a write that follows makes it before its rename. */
  folderMissing?: boolean;
}

const FILE_RE = /^(.+)\.(data|ts|meta)$/;
const TEMP_NAME_STEM = `${process.pid.toString(36)}-${Date.now().toString(36)}-`;
let tempCounter = 0;
/**
 * Bytes read from the end of a file to find its metadata without reading the body (HEAD, POST,
 * DELETE, large GETs): footer and JSON in one read for the usual few hundred bytes of metadata.
 */
const METADATA_TAIL_BYTES = 4096;
/** A hash folder holds a handful of files; more than this is garbage we refuse to walk. */
const HASH_DIR_FILES_MAX = 10_000;

export function newestTimestamp(state: OnDiskState): Timestamp | undefined {
  return (state.data ?? state.tombstone)?.timestamp;
}

/** Swift's get_ondisk_files: newest .data/.ts wins; the newest .meta after a winning .data applies. */
export function resolveOnDiskFiles(names: readonly string[]): OnDiskState {
  const files: OnDiskFile[] = [];
  for (const name of names.slice(0, HASH_DIR_FILES_MAX)) {
    const match = FILE_RE.exec(name);
    if (match === null) continue;
    let timestamp: Timestamp;
    try {
      timestamp = Timestamp.parse(match[1] ?? '');
    } catch {
      continue;
    }
    files.push({ file: name, timestamp, kind: match[2] as OnDiskFile['kind'] });
  }
  files.sort((a, b) => b.timestamp.compare(a.timestamp));
  const state: OnDiskState = { obsolete: [] };
  let winner: OnDiskFile | undefined;
  for (const file of files) {
    if (winner !== undefined) {
      state.obsolete.push(file);
    } else if (file.kind === 'meta') {
      if (state.meta === undefined) state.meta = file;
      else state.obsolete.push(file);
    } else {
      winner = file;
      if (file.kind === 'data') state.data = file;
      else state.tombstone = file;
    }
  }
  if (state.meta !== undefined && state.data === undefined) {
    // Metadata with nothing (or only a tombstone) under it is dead.
    state.obsolete.push(state.meta);
    delete state.meta;
  }
  return state;
}

/**
 * What only the PUT decides, whatever a later POST says (Swift's DATAFILE_SYSTEM_META and
 * sysmeta): a POST must not turn an SLO manifest back into a plain object, nor drop the
 * container-update overrides that its later container updates still need.
 */
function isDataFileSystemMetadata(lowerKey: string): boolean {
  return lowerKey === 'x-static-large-object' || lowerKey.startsWith('x-object-sysmeta-');
}

/** The metadata a client sees: the PUT's, with a newer POST's user metadata and allowed headers. */
export function mergeMetadata(dataMetadata: ObjectMetadata, metaMetadata: ObjectMetadata | undefined): ObjectMetadata {
  if (metaMetadata === undefined) return dataMetadata;
  const merged: ObjectMetadata = {};
  const replaced = new Set(POST_ALLOWED_HEADERS.map((h) => h.toLowerCase()));
  const kept = new Set<string>();
  for (const [key, value] of Object.entries(dataMetadata)) {
    const lower = key.toLowerCase();
    if (isDataFileSystemMetadata(lower)) {
      kept.add(lower);
    } else if (
      lower.startsWith('x-object-meta-') ||
      lower.startsWith('x-object-transient-sysmeta-') ||
      replaced.has(lower)
    ) {
      continue;
    }
    merged[key] = value;
  }
  for (const [key, value] of Object.entries(metaMetadata)) {
    if (key === 'name' || key === 'Content-Type-Timestamp' || kept.has(key.toLowerCase())) continue;
    merged[key] = value;
  }
  return merged;
}

const fsyncAsync = promisify(fsync);
const fdatasyncAsync = promisify(fdatasync);
const readAsync = promisify(read);

async function fsyncDirectory(path: string): Promise<void> {
  const fd = openSync(path, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
  try {
    await fsyncAsync(fd);
  } finally {
    closeSync(fd);
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}

function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

/** An object found on disk, opened for reading. Call `close()` unless `stream()` took the file. */
export class OpenedObject {
  private fdOwned: boolean;

  constructor(
    readonly location: ObjectLocation,
    /** Merged metadata (data + newer POST). */
    readonly metadata: ObjectMetadata,
    readonly dataTimestamp: Timestamp,
    /** X-Timestamp of the metadata the client sees (the .meta's when there is one). */
    readonly timestamp: Timestamp,
    readonly contentLength: number,
    private readonly fd: number | undefined,
    /** The whole body, already checked against its ETag (small objects only). */
    readonly verifiedBody: Buffer | undefined,
    private readonly chunkSize: number,
    /** Whether the pages read are dropped from the page cache (an object of keep_cache_size or more). */
    private readonly dropRead = false,
  ) {
    this.fdOwned = fd !== undefined;
  }

  get etag(): string {
    return this.metadata.ETag ?? '';
  }

  /** A stream of bytes [start, end] (inclusive) of the body; it closes the file when done. */
  stream(start: number, end: number): Readable {
    if (this.fd === undefined || !this.fdOwned) throw new Error('stream() without an open file');
    this.fdOwned = false;
    return createReadStream('', {
      fd: this.fd,
      start,
      end,
      highWaterMark: this.chunkSize,
      autoClose: true,
      // The stream's own read, with each chunk's pages dropped once it is in memory.
      ...(this.dropRead ? { fs: { read: readThenDrop(start), close } } : {}),
    });
  }

  /** Bytes [start, end] (inclusive) in chunks, keeping the file open (for multipart ranges). */
  async *readRange(start: number, end: number): AsyncGenerator<Buffer> {
    if (this.fd === undefined || !this.fdOwned) throw new Error('readRange() without an open file');
    let position = start;
    let dropFrom = start;
    const passesMax = Math.ceil((end - start + 1) / this.chunkSize) + 1;
    for (let pass = 0; position <= end && pass < passesMax; pass += 1) {
      const buffer = Buffer.allocUnsafe(Math.min(this.chunkSize, end - position + 1));
      const { bytesRead } = await readAsync(this.fd, buffer, 0, buffer.length, position);
      if (bytesRead === 0) throw new Error('object file shorter than its metadata says');
      position += bytesRead;
      if (this.dropRead) dropFrom = dropBehind(this.fd, dropFrom, position);
      yield buffer.subarray(0, bytesRead);
    }
  }

  close(): Promise<void> {
    if (this.fd !== undefined && this.fdOwned) {
      this.fdOwned = false;
      closeQuietly(this.fd);
    }
    return Promise.resolve();
  }
}

/** fs.read for a ReadStream from `start` that drops the pages of each chunk once it is read. */
function readThenDrop(start: number): typeof read {
  let dropFrom = start;
  return ((
    fd: number,
    buffer: NodeJS.ArrayBufferView,
    offset: number,
    length: number,
    position: number,
    callback: (error: NodeJS.ErrnoException | null, bytesRead: number, buffer: NodeJS.ArrayBufferView) => void,
  ): void => {
    read(fd, buffer, offset, length, position, (error, bytesRead, filled) => {
      if (error === null) dropFrom = dropBehind(fd, dropFrom, position + bytesRead);
      callback(error, bytesRead, filled);
    });
  }) as typeof read;
}

/**
 * A body being written. Up to `BUFFERED_BYTES_MAX` stays in memory, so a small object costs one
 * write; a larger one streams to its temp file in `<device>/tmp/`: the chunks as they came from
 * the socket are gathered until `BATCH_BYTES`, then handed to one writev (no copy into a bigger
 * buffer), one batch on its way to the disk while the next is gathered. write() returns a promise
 * only when both are full (backpressure: the caller pauses its source until it settles), so the
 * common chunk costs no promise. The MD5 is updated chunk by chunk as each batch is written.
 * Every `SYNC_EVERY_BYTES` an fdatasync starts in the background (Swift's `mb_per_sync`), so the
 * disk writes while the body still arrives instead of taking the whole object at the final
 * fdatasync. What each fdatasync made durable is dropped from the page cache (Swift drops after
 * each `mb_per_sync` and at the end of a PUT). `commit()` makes it visible, `abort()` removes it.
 */
export class DiskFileWriter {
  static readonly BUFFERED_BYTES_MAX = 64 * 1024;
  static readonly BATCH_BYTES = 1024 * 1024;
  static readonly SYNC_EVERY_BYTES = 16 * 1024 * 1024;
  /** The batch being written, if any; its failure surfaces at the next write or at commit. */
  private writing: Promise<void> | undefined;
  /** The first failure of a batch write or of a background fdatasync that matters. */
  private failure: Error | undefined;
  /** The background fdatasync, if one runs. */
  private syncing: Promise<void> | undefined;
  private bytesSinceSync = 0;
  /** Bytes handed to the file (written batches), and where the next drop of synced pages starts. */
  private bytesFlushed = 0;
  private bytesDropped = 0;
  /** Made at the first flush: a body that stays in memory is hashed in one call (no Hash object). */
  private md5: Hash | undefined;
  bytesWritten = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private fd: number | undefined;
  private fileCreated = false;
  private done = false;
  /** After digest(), what is flushed (the trailer) is no longer body: it is not hashed. */
  private digested = false;

  constructor(
    private readonly manager: DiskFileManager,
    readonly location: ObjectLocation,
    private readonly tempPath: string,
    /** The hash folder was missing when the writer was made (a hint: it may exist by the rename). */
    private readonly folderMissing: boolean,
  ) {}

  /**
   * Takes a chunk (kept, not copied: the caller must not change it). Returns a promise only when
   * the caller must wait before the next write: a batch is in flight and the next one is full.
   */
  write(chunk: Buffer): Promise<void> | undefined {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    this.bytesWritten += chunk.length;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    const threshold = this.fd === undefined ? DiskFileWriter.BUFFERED_BYTES_MAX : DiskFileWriter.BATCH_BYTES;
    if (this.pendingBytes < threshold) return undefined;
    if (this.writing === undefined) {
      this.startBatch();
      return undefined;
    }
    return this.writing.then(() => {
      if (this.failure !== undefined) throw this.failure;
      // The batch that finished may already have started this one (see startBatch).
      if (this.writing === undefined && this.pendingBytes > 0) this.startBatch();
    });
  }

  /** Hashes what is pending and starts writing it (the file is made on the first batch). */
  private startBatch(): void {
    this.fd ??= this.openFile();
    const batch = this.pending;
    const batchBytes = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    if (!this.digested) {
      this.md5 ??= createHash('md5');
      for (const chunk of batch) this.md5.update(chunk);
    }
    const fd = this.fd;
    this.writing = new Promise<void>((resolve) => {
      writevAll(fd, batch, (error) => {
        this.writing = undefined;
        if (error !== null) {
          this.failure ??= error;
        } else {
          this.bytesSinceSync += batchBytes;
          this.bytesFlushed += batchBytes;
          this.maybeStartSync(fd);
          // A full batch gathered meanwhile goes straight on: the disk never waits for the caller.
          if (this.pendingBytes >= DiskFileWriter.BATCH_BYTES && this.failure === undefined) this.startBatch();
        }
        resolve();
      });
    });
  }

  private openFile(): number {
    const fd = this.manager.openTempSync(this.tempPath);
    this.fileCreated = true;
    return fd;
  }

  private maybeStartSync(fd: number): void {
    if (!this.manager.options.fsync || this.syncing !== undefined) return;
    if (this.bytesSinceSync < DiskFileWriter.SYNC_EVERY_BYTES) return;
    this.bytesSinceSync = 0;
    const syncedEnd = this.bytesFlushed;
    // A failed early sync matters only if the final one fails too: its error is dropped. What a
    // sync made durable leaves the page cache.
    this.syncing = fdatasyncAsync(fd)
      .then(() => {
        this.bytesDropped = dropBehind(fd, this.bytesDropped, syncedEnd);
      })
      .catch(() => undefined)
      .finally(() => {
        this.syncing = undefined;
      });
  }

  /** Waits until no batch is in flight (a finishing batch may start the next one). */
  private async settle(): Promise<void> {
    // Bounded: each batch started here takes what is pending, and nothing is added meanwhile.
    while (this.writing !== undefined) await this.writing;
    if (this.failure !== undefined) throw this.failure;
  }

  /** The hex MD5 of what was written so far. Call once, after the last write. */
  digest(): string {
    assert.ok(!this.digested, 'digest() is called once');
    this.digested = true;
    if (this.md5 === undefined) {
      // The whole body is still in memory: one call hashes it.
      const body = this.pending.length === 1 ? (this.pending[0] as Buffer) : Buffer.concat(this.pending);
      this.pending = body.length === 0 ? [] : [body];
      return oneShotHash('md5', body, 'hex');
    }
    for (const chunk of this.pending) this.md5.update(chunk);
    return this.md5.digest('hex');
  }

  /** Appends the metadata trailer, fsyncs, renames to `<timestamp>.<ext>` and fsyncs the folder. */
  async commit(metadata: ObjectMetadata, timestamp: Timestamp, ext: 'data' | 'meta' | 'ts'): Promise<void> {
    this.pending.push(encodeTrailer(metadata));
    const fileName = `${timestamp.internal}.${ext}`;
    if (this.fd !== undefined) {
      await this.settle();
      this.startBatch();
      await this.settle();
      await this.syncing;
      if (this.manager.options.fsync) {
        await fdatasyncAsync(this.fd);
        dropPageCache(this.fd, this.bytesDropped, this.bytesFlushed - this.bytesDropped);
      }
      const fd = this.fd;
      this.fd = undefined;
      closeSync(fd);
    } else {
      // Small: the whole file in one synchronous write, then one fdatasync through the pool.
      const fd = this.openFile();
      try {
        writeAllSync(fd, this.pending);
        this.pending = [];
        if (this.manager.options.fsync) await fdatasyncAsync(fd);
      } finally {
        closeSync(fd);
      }
    }
    // The expirer's index (object/expiry-index.ts), before the file is visible: never an entry short.
    if (ext !== 'ts') await recordDeleteAt(this.location, metadata['X-Delete-At']);
    await this.manager.moveIntoPlace(this.tempPath, this.location, fileName, this.folderMissing);
    this.done = true;
  }

  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    this.pending = [];
    this.pendingBytes = 0;
    this.failure ??= new Error('writer aborted');
    while (this.writing !== undefined) await this.writing;
    await this.syncing;
    if (this.fd !== undefined) closeQuietly(this.fd);
    this.fd = undefined;
    if (this.fileCreated) await unlink(this.tempPath).catch(() => undefined);
  }
}

/** Writes the buffers in order with writev, going on after a short write; `done` gets the first error. */
function writevAll(fd: number, buffers: Buffer[], done: (error: Error | null) => void): void {
  writev(fd, buffers, (error, written) => {
    if (error !== null) {
      done(error);
      return;
    }
    // A short write is legal: drop what went out and write the rest (each pass writes >= 1 byte).
    let skip = written;
    let first = 0;
    while (first < buffers.length && skip >= (buffers[first] as Buffer).length) {
      skip -= (buffers[first] as Buffer).length;
      first += 1;
    }
    if (first === buffers.length) {
      done(null);
      return;
    }
    if (written <= 0) {
      done(new Error('write made no progress'));
      return;
    }
    const rest = buffers.slice(first);
    rest[0] = (rest[0] as Buffer).subarray(skip);
    writevAll(fd, rest, done);
  });
}

/** Writes the buffers in order: one writev for the usual case, plain writes for what a short write left. */
function writeAllSync(fd: number, buffers: readonly Buffer[]): void {
  let total = 0;
  for (const buffer of buffers) total += buffer.length;
  let written = writevSync(fd, buffers);
  if (written === total) return;
  const rest = Buffer.concat(buffers).subarray(written);
  let offset = 0;
  // Bounded: each pass writes >= 1 byte or throws.
  while (offset < rest.length) {
    written = writeSync(fd, rest, offset, rest.length - offset);
    if (written <= 0) throw new Error('write made no progress');
    offset += written;
  }
}

function readExactlySync(fd: number, position: number, length: number): Buffer {
  const buffer = Buffer.allocUnsafe(length);
  let offset = 0;
  // Bounded: each pass reads >= 1 byte or stops at end of file.
  while (offset < length) {
    const bytesRead = readSync(fd, buffer, offset, length - offset, position + offset);
    if (bytesRead === 0) throw new TrailerError('file shorter than expected');
    offset += bytesRead;
  }
  return buffer;
}

export class DiskFileManager {
  constructor(readonly options: Readonly<DiskFileOptions>) {}

  locate(devicePath: string, partition: number, account: string, container: string, object: string): ObjectLocation {
    const hash = hashPath(this.options.hashSecrets, account, container, object);
    const suffix = hash.slice(-3);
    return {
      devicePath,
      partition,
      account,
      container,
      object,
      hash,
      suffix,
      // Concatenation, not join(): the parts are known clean, and this runs on every request.
      hashDir: `${devicePath.endsWith('/') ? devicePath.slice(0, -1) : devicePath}/objects/${partition}/${suffix}/${hash}`,
    };
  }

  // eslint-disable-next-line @typescript-eslint/require-await -- async so that errors reject, like the rest
  async readState(location: ObjectLocation): Promise<OnDiskState> {
    let names: string[];
    try {
      names = readdirSync(location.hashDir);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return { obsolete: [], folderMissing: code === 'ENOENT' };
      throw error;
    }
    return resolveOnDiskFiles(names);
  }

  /**
   * Opens the current version. Throws DiskFileNotExist / Deleted (with the tombstone's timestamp) /
   * Expired / Quarantined (the file failed its checks and has been moved aside).
   */
  async open(
    location: ObjectLocation,
    options: { nowMs?: number; metadataOnly?: boolean } = {},
    state?: OnDiskState,
  ): Promise<OpenedObject> {
    const nowMs = options.nowMs ?? Date.now();
    const onDisk = state ?? (await this.readState(location));
    if (onDisk.tombstone !== undefined) throw new DiskFileDeletedError(onDisk.tombstone.timestamp.internal);
    if (onDisk.data === undefined) throw new DiskFileNotExistError();
    let fd: number;
    try {
      fd = openSync(`${location.hashDir}/${onDisk.data.file}`, 'r');
    } catch (error) {
      // Cleaned up by a concurrent newer write: read again, once.
      if (isNotFound(error) && state === undefined) return this.open(location, options, await this.readState(location));
      throw error;
    }
    let keepFd = false;
    try {
      const { size } = fstatSync(fd);
      let dataMetadata: ObjectMetadata;
      let verifiedBody: Buffer | undefined;
      let bodyLength: number;
      try {
        if (options.metadataOnly !== true && size <= this.options.verifyBeforeSendBytesMax + 64 * 1024) {
          const split = splitWholeFile(readExactlySync(fd, 0, size));
          dataMetadata = split.metadata;
          verifiedBody = split.body;
          bodyLength = split.body.length;
        } else {
          if (size < TRAILER_FOOTER_BYTES) throw new TrailerError('file too short');
          // One read of the file's tail holds footer and metadata, unless the metadata is large.
          const tailLength = Math.min(size, METADATA_TAIL_BYTES);
          const tail = readExactlySync(fd, size - tailLength, tailLength);
          const jsonLength = decodeFooter(tail.subarray(tailLength - TRAILER_FOOTER_BYTES));
          bodyLength = size - TRAILER_FOOTER_BYTES - jsonLength;
          if (bodyLength < 0) throw new TrailerError('metadata longer than the file');
          dataMetadata = decodeMetadata(
            jsonLength + TRAILER_FOOTER_BYTES <= tailLength
              ? tail.subarray(tailLength - TRAILER_FOOTER_BYTES - jsonLength, tailLength - TRAILER_FOOTER_BYTES)
              : readExactlySync(fd, bodyLength, jsonLength),
          );
        }
      } catch (error) {
        if (error instanceof TrailerError) {
          await this.quarantine(location);
          throw new DiskFileQuarantinedError(error.message);
        }
        throw error;
      }
      if (dataMetadata['Content-Length'] !== String(bodyLength)) {
        await this.quarantine(location);
        throw new DiskFileQuarantinedError(`length ${bodyLength} is not ${dataMetadata['Content-Length']}`);
      }
      if (verifiedBody !== undefined && bodyLength <= this.options.verifyBeforeSendBytesMax) {
        const md5 = oneShotHash('md5', verifiedBody, 'hex');
        if (md5 !== dataMetadata.ETag) {
          await this.quarantine(location);
          throw new DiskFileQuarantinedError(`md5 ${md5} is not the ETag ${dataMetadata.ETag}`);
        }
      } else {
        verifiedBody = undefined; // big enough to stream; checked on the way out
      }
      const metaMetadata = onDisk.meta === undefined ? undefined : this.readMetadataFile(location, onDisk.meta.file);
      const metadata = mergeMetadata(dataMetadata, metaMetadata);
      const timestamp = Timestamp.parse(metadata['X-Timestamp'] ?? onDisk.data.timestamp.internal);
      const deleteAt = metadata['X-Delete-At'];
      if (deleteAt !== undefined && Number(deleteAt) * 1000 <= nowMs) {
        throw new DiskFileExpiredError(timestamp.internal);
      }
      keepFd = verifiedBody === undefined && options.metadataOnly !== true;
      const dropRead = options.metadataOnly !== true && bodyLength >= this.options.keepCacheSize;
      // A whole-file read (only with keep_cache_size under verify_before_send_bytes_max) is done.
      if (dropRead && !keepFd) dropPageCache(fd, 0, size);
      return new OpenedObject(
        location,
        metadata,
        onDisk.data.timestamp,
        timestamp,
        bodyLength,
        keepFd ? fd : undefined,
        verifiedBody,
        this.options.diskChunkSize,
        dropRead && keepFd,
      );
    } finally {
      if (!keepFd) closeQuietly(fd);
    }
  }

  private readMetadataFile(location: ObjectLocation, file: string): ObjectMetadata | undefined {
    let fd: number;
    try {
      fd = openSync(`${location.hashDir}/${file}`, 'r');
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
    try {
      return splitWholeFile(readExactlySync(fd, 0, fstatSync(fd).size)).metadata;
    } catch (error) {
      if (error instanceof TrailerError) return undefined; // a torn .meta cannot exist (atomic rename); ignore junk
      throw error;
    } finally {
      closeSync(fd);
    }
  }

  /**
   * A writer for a new body (or an empty one for .meta / .ts); its temp file is made on first need.
   * `state`, when the caller just read it, tells whether the hash folder is there.
   */
  createWriter(location: ObjectLocation, state?: OnDiskState): Promise<DiskFileWriter> {
    // Unique without randomness: pid (other processes share tmp/), start time (a restarted pid), counter.
    tempCounter += 1;
    const tempPath = `${location.devicePath}/tmp/${OBJECT_TEMP_PREFIX}${TEMP_NAME_STEM}${tempCounter.toString(36)}`;
    return Promise.resolve(new DiskFileWriter(this, location, tempPath, state?.folderMissing === true));
  }

  /** @internal Creates a temp file (and `<device>/tmp/` when missing). */
  openTempSync(tempPath: string): number {
    try {
      return openSync(tempPath, 'wx');
    } catch (error) {
      if (!isNotFound(error)) throw error;
      mkdirSync(dirname(tempPath), { recursive: true });
      return openSync(tempPath, 'wx');
    }
  }

  /** Writes a metadata-only file (`.ts` tombstone or `.meta`) atomically. */
  async writeMetadataOnly(
    location: ObjectLocation,
    metadata: ObjectMetadata,
    timestamp: Timestamp,
    ext: 'ts' | 'meta',
  ): Promise<void> {
    const writer = await this.createWriter(location);
    try {
      await writer.commit(metadata, timestamp, ext);
    } catch (error) {
      await writer.abort();
      throw error;
    }
  }

  /**
   * Renames a synced temp file into the hash folder, fsyncs that folder, and cleans up.
   *
   * Durability: the file's bytes were fdatasync'd before the rename, so the name can never point
   * at missing data (Swift's renamer). The rename is a change of the hash folder, and only an
   * fsync of that folder makes it durable before we answer, so the leaf is fsynced on every write,
   * as Swift does. Folders this call created are not fsynced one by one in their parents (Swift
   * fsyncs each of them): on ext4 (jbd2) and XFS (the CIL) directory changes are journaled and
   * the journal commits in order, so the fsync of the leaf waits for the commit of the
   * transaction holding the rename, and every earlier change (the mkdirs made just before it)
   * is in that transaction or an older, already committed one. The parents' fsyncs then only
   * wait for a commit that has happened: 2-3 more open/fsync/close and thread-pool trips per new
   * object for nothing. (ext4 without a journal syncs new parents itself: ext4_sync_parent.)
   */
  async moveIntoPlace(
    tempPath: string,
    location: ObjectLocation,
    fileName: string,
    folderMissing = false,
  ): Promise<void> {
    const target = `${location.hashDir}/${fileName}`;
    let madeFolder = false;
    // Synchronous, like the other cheap metadata calls: measured under load, a pool hop per new
    // object cost more CPU (~0.15 ms per PUT) than the event loop ever waited on the mkdir.
    const makeFolder = (): boolean => mkdirSync(location.hashDir, { recursive: true }) !== undefined;
    if (folderMissing) {
      // A new object: mkdir first (a no-op if a concurrent write made the folder meanwhile), not
      // a rename that fails (its ENOENT is a syscall and a JS Error built: ~3.5% of a PUT's CPU).
      madeFolder = makeFolder();
      renameSync(tempPath, target);
    } else {
      try {
        // Rename first: for an existing object the folder is there, and mkdir would cost two calls.
        renameSync(tempPath, target);
      } catch (error) {
        if (!isNotFound(error)) throw error;
        madeFolder = makeFolder();
        renameSync(tempPath, target);
      }
    }
    await invalidateHashDir(location.hashDir); // daemons/invalidate.ts
    if (this.options.fsync) await fsyncDirectory(location.hashDir);
    // A folder this write made held nothing older: no listing needed, unless the new file is a
    // tombstone, which may already be past reclaim_age. (A concurrent writer that found the folder
    // made does its own cleanup after its rename; in the rare interleaving where both skip, the
    // older file loses on every read and the replicator's rehash of the suffix, which
    // invalidateHashDir requested, removes it.)
    if (!madeFolder || fileName.endsWith('.ts')) await this.cleanup(location);
  }

  /** Removes files that lost to newer ones, and a tombstone older than reclaim_age with its folder. */
  async cleanup(location: ObjectLocation, nowMs = Date.now()): Promise<OnDiskState> {
    const state = await this.readState(location);
    const removals = [...state.obsolete];
    if (state.tombstone !== undefined && state.tombstone.timestamp.ms < nowMs - this.options.reclaimAgeSeconds * 1000) {
      removals.push(state.tombstone);
    }
    if (removals.length === 0) return state;
    // Through the pool: unlinking a file with blocks can wait on the journal, and the event loop must not.
    await Promise.all(
      removals.map((file) =>
        unlink(`${location.hashDir}/${file.file}`).catch((error: unknown) => {
          if (!isNotFound(error)) throw error;
        }),
      ),
    );
    if (state.data === undefined && state.tombstone !== undefined && removals.includes(state.tombstone)) {
      try {
        rmdirSync(location.hashDir);
      } catch {
        // not empty: someone wrote meanwhile
      }
    }
    return state;
  }

  /** Moves the hash folder to `<device>/quarantined/objects/<hash>[-<random>]`. */
  async quarantine(location: ObjectLocation): Promise<string> {
    const target = join(location.devicePath, 'quarantined', 'objects');
    await mkdir(target, { recursive: true });
    let destination = join(target, location.hash);
    for (let attempt = 0; attempt < 5; attempt += 1) {
      try {
        await rename(location.hashDir, destination);
        return destination;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (isNotFound(error)) return destination; // already moved by a concurrent reader
        if (code !== 'EEXIST' && code !== 'ENOTEMPTY') throw error;
        destination = join(target, `${location.hash}-${randomBytes(8).toString('hex')}`);
      }
    }
    throw new Error(`cannot quarantine ${location.hashDir}`);
  }
}

/** Removes this module's temp files left by a crash (run at start, before serving). */
export async function cleanTempFiles(devicePath: string, prefixes: readonly string[]): Promise<number> {
  const tmpDir = join(devicePath, 'tmp');
  let names: string[];
  try {
    names = await readdir(tmpDir);
  } catch (error) {
    if (isNotFound(error)) return 0;
    throw error;
  }
  let removed = 0;
  for (const name of names) {
    if (!prefixes.some((prefix) => name.startsWith(prefix))) continue;
    await unlink(join(tmpDir, name)).catch(() => undefined);
    removed += 1;
  }
  return removed;
}
