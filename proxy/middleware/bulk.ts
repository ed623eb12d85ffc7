/**
 * Bulk operations (Swift 2.30's bulk middleware), a stage right after authentication:
 * - `PUT /v1/<account>[/<container>[/<prefix>]]?extract-archive=tar|tar.gz|tar.bz2` reads a tar
 *   archive from the request stream (gzip through node:zlib, bzip2 through a `bzip2 -dc` child,
 *   see bulk-bzip2.ts) and PUTs each regular file as an object (creating containers as needed)
 *   with the client's own requests, one file at a time and streamed: nothing of the archive is
 *   held beyond one 512-byte header, nor written to disk. Archive errors read as Python's tarfile
 *   words them (Swift answers with its messages): a bad first header is an error, a bad or short
 *   header later ends the archive. Names that are not UTF-8 fail with 412, as in Swift.
 * - `POST|DELETE /v1/<account>?bulk-delete` with a body of newline-separated %-encoded
 *   `/<container>/<object>` or `/<container>` names (at most 10,000) deletes them (objects first,
 *   then containers), four at a time.
 * Both answer 200 with Swift's summary (Number Files Created / Number Deleted, Number Not Found,
 * Response Status, Response Body, Errors) as text, JSON or XML by Accept.
 */
import { PassThrough, Readable } from 'node:stream';
import { constants as zlibConstants, createGunzip } from 'node:zlib';
import type { Context, Middleware, Next } from 'koa';
import { HttpError } from '../../common/errors.js';
import { swiftPathOrUndefined, quoteName, type SwiftPath } from '../request-path.js';
import { swiftState } from '../state.js';
import { decompressBzip2, type Bzip2Decompressor } from './bulk-bzip2.js';
import { bulkFormat, bulkResponseBody, statusLine, swiftQuote } from './bulk-response.js';
import { discardBody } from './large-object-segments.js';

export interface BulkOptions {
  validVersions: readonly string[];
  maxFileSize: number;
  maxDeletesPerRequest: number;
  maxContainersPerExtraction: number;
  maxFailedExtractions: number;
}

const BLOCK = 512;
const MAX_ENTRIES = 1_000_000;
const DELETE_CONCURRENCY = 4;

export function bulkInfo(options: BulkOptions): Record<string, Record<string, unknown>> {
  return {
    bulk_upload: {
      max_containers_per_extraction: options.maxContainersPerExtraction,
      max_failed_extractions: options.maxFailedExtractions,
    },
    bulk_delete: { max_deletes_per_request: options.maxDeletesPerRequest, max_failed_deletes: 1000 },
  };
}

class TarError extends Error {}
/** A header that is not one: fatal as the first header, the end of the archive after it. */
class TarHeaderError extends TarError {}

/** Pull-based reads of exact byte counts from a stream. */
class ByteReader {
  private readonly iterator: AsyncIterator<Buffer | string>;
  private pending: Buffer = Buffer.alloc(0);
  private done = false;

  constructor(stream: Readable) {
    this.iterator = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
  }

  /** Up to `max` bytes (fewer only at the end of the stream). */
  async readSome(max: number): Promise<Buffer> {
    while (this.pending.length === 0 && !this.done) {
      const next = await this.iterator.next();
      if (next.done === true) this.done = true;
      else this.pending = typeof next.value === 'string' ? Buffer.from(next.value) : next.value;
    }
    const out = this.pending.subarray(0, max);
    this.pending = this.pending.subarray(out.length);
    return out;
  }

  async readExactly(size: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let got = 0;
    while (got < size) {
      const part = await this.readSome(size - got);
      if (part.length === 0) throw new TarError('unexpected end of data');
      parts.push(part);
      got += part.length;
    }
    return Buffer.concat(parts);
  }

  /** Reads to the end of the stream, dropping the bytes; a stream error ends it too. */
  async drain(): Promise<void> {
    try {
      while ((await this.readSome(1 << 16)).length > 0);
    } catch {
      // Nothing more can be read.
    }
  }

  async skip(size: number): Promise<void> {
    let left = size;
    while (left > 0) {
      const part = await this.readSome(Math.min(left, 1 << 16));
      if (part.length === 0) throw new TarError('unexpected end of data');
      left -= part.length;
    }
  }
}

function cBytes(block: Buffer, start: number, length: number): Buffer {
  const field = block.subarray(start, start + length);
  const end = field.indexOf(0);
  return field.subarray(0, end < 0 ? field.length : end);
}

function cString(block: Buffer, start: number, length: number): string {
  return cBytes(block, start, length).toString('utf8');
}

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

/** The name's UTF-8 text, or undefined when the bytes are not UTF-8 (Swift's check_utf8 fails). */
function utf8OrUndefined(bytes: Buffer): string | undefined {
  try {
    return STRICT_UTF8.decode(bytes);
  } catch {
    return undefined;
  }
}

function octal(block: Buffer, start: number, length: number): number {
  const field = block.subarray(start, start + length);
  if ((field[0] ?? 0) & 0x80) {
    // GNU base-256 size.
    let value = 0;
    for (let i = 1; i < field.length; i++) value = value * 256 + (field[i] ?? 0);
    return value;
  }
  const text = cString(block, start, length).trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new TarHeaderError('invalid header');
  return parseInt(text, 8);
}

function checksumOk(block: Buffer): boolean {
  const stored = octal(block, 148, 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : (block[i] ?? 0);
  return sum === stored;
}

/** The records of a pax extended header (`<length> <key>=<value>\n` each), values as bytes. */
function paxRecords(data: Buffer): Map<string, Buffer> {
  const records = new Map<string, Buffer>();
  let offset = 0;
  for (let guard = 0; guard < 10_000 && offset < data.length; guard++) {
    const space = data.indexOf(0x20, offset);
    if (space < 0) break;
    const length = Number(data.subarray(offset, space).toString('ascii'));
    if (!Number.isSafeInteger(length) || length <= 0) throw new TarError('invalid header');
    const record = data.subarray(space + 1, offset + length - 1);
    const equals = record.indexOf(0x3d);
    if (equals > 0) records.set(record.subarray(0, equals).toString('utf8'), record.subarray(equals + 1));
    offset += length;
  }
  return records;
}

/** Swift's pax_key_to_swift_header: user xattrs that GNU tar or bsdtar stored become metadata. */
function paxHeader(key: string): string | undefined {
  if (key === 'SCHILY.xattr.user.mime_type' || key === 'LIBARCHIVE.xattr.user.mime_type') return 'content-type';
  for (const prefix of ['SCHILY.xattr.user.meta.', 'LIBARCHIVE.xattr.user.meta.']) {
    if (key.startsWith(prefix)) return `x-object-meta-${key.slice(prefix.length)}`;
  }
  return undefined;
}

interface TarEntry {
  /** Undefined when the stored name is not valid UTF-8. */
  name: string | undefined;
  /** The name as stored, for the error line of a name that is not UTF-8. */
  rawName: Buffer;
  size: number;
  isFile: boolean;
  /** Object headers from the entry's pax records. */
  headers: Record<string, string>;
}

/** Reads one 512-byte header block: undefined at the end of the stream, short blocks refused. */
async function readHeaderBlock(reader: ByteReader): Promise<Buffer | undefined> {
  const block = await reader.readSome(BLOCK);
  if (block.length === 0) return undefined;
  const parts = [block];
  let got = block.length;
  while (got < BLOCK) {
    const part = await reader.readSome(BLOCK - got);
    if (part.length === 0) throw new TarHeaderError('truncated header');
    parts.push(part);
    got += part.length;
  }
  return parts.length === 1 ? block : Buffer.concat(parts);
}

/**
 * The next entry's header (GNU long names and pax records applied), or undefined at the end.
 * As Python's tarfile (which Swift reads archives with), only the archive's first header may fail
 * the request: after it, an empty, short or invalid header just ends the archive.
 */
async function nextEntry(reader: ByteReader, isFirst: boolean): Promise<TarEntry | undefined> {
  let longName: Buffer | undefined;
  let headers: Record<string, string> = {};
  for (let guard = 0; guard < 16; guard++) {
    let header: Buffer | undefined;
    let size: number;
    try {
      header = await readHeaderBlock(reader);
      if (header === undefined) throw new TarHeaderError('empty file');
      if (header.every((byte) => byte === 0)) {
        if (guard === 0) return undefined;
        throw new TarHeaderError('end of archive');
      }
      if (!checksumOk(header)) throw new TarHeaderError('bad checksum');
      size = octal(header, 124, 12);
    } catch (error) {
      if (!(error instanceof TarHeaderError)) throw error;
      // The header a long name or pax record announced must follow it.
      if (guard > 0) throw new TarError('missing or bad subsequent header');
      if (isFirst) throw error;
      return undefined;
    }
    const type = String.fromCharCode(header[156] ?? 0);
    const padded = Math.ceil(size / BLOCK) * BLOCK;
    if (type === 'L' || type === 'x') {
      if (size > 1024 * 1024) throw new TarError('extended header too large');
      const data = (await reader.readExactly(padded)).subarray(0, size);
      if (type === 'L') {
        longName = cBytes(data, 0, data.length);
        continue;
      }
      const records = paxRecords(data);
      longName = records.get('path') ?? longName;
      headers = {};
      for (const [key, value] of records) {
        const name = paxHeader(key);
        if (name !== undefined) headers[name] = value.toString('utf8');
      }
      continue;
    }
    let rawName = cBytes(header, 0, 100);
    if (header.subarray(257, 262).toString('latin1') === 'ustar') {
      const prefix = cBytes(header, 345, 155);
      if (prefix.length > 0) rawName = Buffer.concat([prefix, Buffer.from('/'), rawName]);
    }
    rawName = longName ?? rawName;
    return {
      name: utf8OrUndefined(rawName),
      rawName,
      size,
      isFile: type === '0' || type === '\0' || type === '7',
      headers,
    };
  }
  throw new TarError('too many extended headers');
}

function respond(
  ctx: Context,
  fields: Record<string, string | number>,
  errors: [string, string][],
  root: string,
): void {
  const format = bulkFormat(ctx);
  ctx.status = 200;
  ctx.type = format;
  ctx.body = bulkResponseBody(format, fields, errors, root);
}

/** Request headers that Swift copies onto each extracted object's PUT. */
function copiedHeaders(ctx: Context): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(ctx.headers)) {
    if (typeof value !== 'string') continue;
    if (name === 'x-delete-at' || name === 'x-delete-after' || name.startsWith('x-object-meta-')) {
      headers[name] = value;
    }
  }
  return headers;
}

/** zlib's words for bad gzip data, in tarfile's (Swift answers with tarfile's). */
function gzipErrorMessage(error: Error): string {
  return /incorrect header check|unknown compression method/.test(error.message)
    ? 'not a gzip file'
    : 'invalid compressed data';
}

function isZlibError(error: unknown): error is Error {
  return error instanceof Error && 'code' in error && String(error.code).startsWith('Z_');
}

async function extractArchive(ctx: Context, path: SwiftPath, kind: string, options: BulkOptions): Promise<void> {
  const state = swiftState(ctx);
  let base = [path.container, path.object].filter((part) => part !== undefined).join('/');
  base = base.replace(/\/+$/, '');
  let bzip2: Bzip2Decompressor | undefined;
  let source: Readable = state.body;
  if (kind === 'tar.gz') {
    // A stream cut short after the last member still extracts, as Python's gzip reader allows.
    source = state.body.pipe(createGunzip({ finishFlush: zlibConstants.Z_SYNC_FLUSH }));
  } else if (kind === 'tar.bz2') {
    bzip2 = decompressBzip2(state.body);
    source = bzip2.output;
  }
  const reader = new ByteReader(source);
  const errors: [string, string][] = [];
  const containers = new Set<string>();
  let containersCreated = 0;
  const extraHeaders = copiedHeaders(ctx);
  const fields: Record<string, string | number> = {
    'Response Status': statusLine(201),
    'Response Body': '',
    'Number Files Created': 0,
  };
  let failedStatus = 400;
  let refused = false;
  try {
    for (let count = 0; count < MAX_ENTRIES; count++) {
      const entry = await nextEntry(reader, count === 0);
      if (entry === undefined || errors.length >= options.maxFailedExtractions) break;
      const padded = Math.ceil(entry.size / BLOCK) * BLOCK;
      const name = entry.name ?? entry.rawName.toString('latin1');
      let objectPath = name.startsWith('./') ? name.slice(2) : name;
      objectPath = objectPath.replace(/^\/+/, '');
      if (base !== '') objectPath = `${base}/${objectPath}`;
      const slash = objectPath.indexOf('/');
      if (!entry.isFile || slash < 0) {
        await reader.skip(padded);
        continue;
      }
      if (entry.name === undefined) {
        // Python quotes the name's raw bytes.
        const quoted = swiftQuote(objectPath.slice(0, objectPath.length - name.length)) + percentBytes(entry.rawName);
        errors.push([quoted, statusLine(412)]);
        await reader.skip(padded);
        continue;
      }
      if (entry.size > options.maxFileSize) {
        errors.push([swiftQuote(objectPath), statusLine(413)]);
        await reader.skip(padded);
        continue;
      }
      const container = objectPath.slice(0, slash);
      let containerFailure: [string, string] | undefined;
      if (!containers.has(container)) {
        const result = await ensureContainer(ctx, path.version, path.account, container);
        containers.add(container);
        if (result === 'created') containersCreated += 1;
        if (containersCreated > options.maxContainersPerExtraction) {
          throw new HttpError(400, `More than ${options.maxContainersPerExtraction} containers to create from tar.`);
        }
        if (result !== 'created' && result !== 'exists') {
          // The object PUT may still succeed (an ACL may allow it): report only if it fails.
          containerFailure = [swiftQuote(`/${path.version}/${path.account}/${container}`), result];
          if (result.startsWith('401')) throw new HttpError(401);
        }
      }
      const body = new PassThrough();
      const feed = (async (): Promise<void> => {
        let left = entry.size;
        while (left > 0) {
          const part = await reader.readSome(Math.min(left, 1 << 16));
          if (part.length === 0) throw new TarError('unexpected end of data');
          left -= part.length;
          if (!body.write(part)) await new Promise<void>((resolve) => body.once('drain', resolve));
        }
        body.end();
      })();
      feed.catch((error: unknown) => body.destroy(error instanceof Error ? error : new Error(String(error))));
      const put = await state.subrequest({
        method: 'PUT',
        path: `/${path.version}/${quoteName(path.account)}/${quoteName(objectPath)}`,
        headers: { ...extraHeaders, ...entry.headers, 'content-length': String(entry.size) },
        body,
        source: 'EA',
      });
      discardBody(put);
      // The PUT may have stopped reading early (refused): finish this entry's bytes either way.
      body.resume();
      await feed;
      await reader.skip(padded - entry.size);
      if (put.status >= 200 && put.status < 300) {
        fields['Number Files Created'] = Number(fields['Number Files Created']) + 1;
      } else {
        if (containerFailure !== undefined) errors.push(containerFailure);
        if (put.status === 401) {
          errors.push([swiftQuote(objectPath), statusLine(401)]);
          throw new HttpError(401);
        }
        if (put.status >= 500) failedStatus = 502;
        errors.push([swiftQuote(objectPath), statusLine(put.status)]);
      }
    }
    if (errors.length > 0) fields['Response Status'] = statusLine(failedStatus);
    else if (fields['Number Files Created'] === 0) {
      fields['Response Status'] = statusLine(400);
      fields['Response Body'] = 'Invalid Tar File: No Valid Files';
    }
  } catch (error) {
    if (error instanceof HttpError) {
      refused = true;
      fields['Response Status'] = statusLine(error.status);
      fields['Response Body'] = error.status === 401 ? '' : error.message;
    } else if (error instanceof TarError) {
      fields['Response Status'] = statusLine(400);
      fields['Response Body'] = `Invalid Tar File: ${error.message}`;
    } else if (isZlibError(error)) {
      fields['Response Status'] = statusLine(400);
      fields['Response Body'] = `Invalid Tar File: ${gzipErrorMessage(error)}`;
    } else {
      bzip2?.stop();
      throw error;
    }
  }
  // Read the rest of the body and drop it (what follows the archive's end, or all that a failure
  // left unread): clients send the whole body before they read the answer. Only a refused
  // request stops bzip2 rather than spend its CPU on data that will not be used.
  if (bzip2 !== undefined && refused) bzip2.stop();
  else await reader.drain();
  if (bzip2 !== undefined && !refused) {
    // Bad compressed data ends bzip2's output early, which the tar reader may have taken for the
    // archive's end: bzip2's own verdict decides.
    const outcome = await bzip2.outcome();
    if (!outcome.ok) {
      fields['Response Status'] = statusLine(400);
      fields['Response Body'] = `Invalid Tar File: ${outcome.message}`;
    }
  }
  if (!state.body.readableEnded) {
    state.body.unpipe();
    state.body.resume();
  }
  respond(ctx, fields, errors, 'extract');
}

/** %XX for every byte (a name that is not UTF-8, quoted as Python quotes bytes). */
function percentBytes(bytes: Buffer): string {
  let out = '';
  for (const byte of bytes) {
    const char = String.fromCharCode(byte);
    out += /[A-Za-z0-9_.\-~/]/.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** 'created', 'exists', or the status line of the HEAD or PUT that failed. */
type ContainerOutcome = string;

/** Creates the container unless it exists (Swift's create_container). */
async function ensureContainer(
  ctx: Context,
  version: string,
  account: string,
  container: string,
): Promise<ContainerOutcome> {
  const state = swiftState(ctx);
  const path = `/${version}/${quoteName(account)}/${quoteName(container)}`;
  const head = await state.subrequest({ method: 'HEAD', path, source: 'EA' });
  discardBody(head);
  if (head.status >= 200 && head.status < 300) return 'exists';
  if (head.status !== 404) return statusLine(head.status);
  const put = await state.subrequest({ method: 'PUT', path, source: 'EA' });
  discardBody(put);
  if (put.status >= 200 && put.status < 300) return 'created';
  return statusLine(put.status);
}

async function bulkDelete(ctx: Context, path: SwiftPath, options: BulkOptions): Promise<void> {
  const state = swiftState(ctx);
  const fields: Record<string, string | number> = {
    'Response Status': statusLine(200),
    'Response Body': '',
    'Number Deleted': 0,
    'Number Not Found': 0,
  };
  const errors: [string, string][] = [];
  let failedStatus = 400;
  try {
    if (ctx.get('content-length') === '' && ctx.get('transfer-encoding').toLowerCase() !== 'chunked') {
      throw new HttpError(411, '');
    }
    const incoming = ctx.get('content-type');
    // Swift reads only newline-separated names.
    if (incoming !== '' && !incoming.startsWith('text/plain')) throw new HttpError(406, '');
    const names = await readDeleteNames(state.body, options.maxDeletesPerRequest);
    // Swift's check_utf8 on each decoded name: not UTF-8 (or a NUL) is a 412 for that line.
    const valid: { line: string; name: string }[] = [];
    for (const raw of names) {
      const name = decodePercentStrict(raw);
      if (name === undefined) errors.push([percentBytes(Buffer.from(decodePercentBytes(raw))), statusLine(412)]);
      else if (name.includes('\u0000')) errors.push([swiftQuote(name), statusLine(412)]);
      else if (name !== '') valid.push({ line: name, name: name.replace(/^\/+/, '') });
    }
    // Objects first, then containers (a container empties before its DELETE).
    const isObject = (name: string): boolean => name.replace(/\/+$/, '').includes('/');
    const objects = valid.filter((item) => isObject(item.name));
    const containerNames = valid.filter((item) => !isObject(item.name));
    const deleteOne = async (item: { line: string; name: string }): Promise<void> => {
      const response = await state.subrequest({
        method: 'DELETE',
        path: `/${path.version}/${quoteName(path.account)}/${quoteName(item.name)}`,
        source: 'BD',
      });
      discardBody(response);
      if (response.status >= 200 && response.status < 300) {
        fields['Number Deleted'] = Number(fields['Number Deleted']) + 1;
      } else if (response.status === 404) {
        fields['Number Not Found'] = Number(fields['Number Not Found']) + 1;
      } else {
        if (response.status >= 500) failedStatus = 502;
        errors.push([swiftQuote(item.line), statusLine(response.status)]);
      }
    };
    for (const group of [objects, containerNames]) {
      let index = 0;
      const worker = async (): Promise<void> => {
        while (index < group.length) {
          const item = group[index];
          index += 1;
          if (item !== undefined) await deleteOne(item);
        }
      };
      await Promise.all(Array.from({ length: DELETE_CONCURRENCY }, () => worker()));
    }
    if (errors.length > 0) fields['Response Status'] = statusLine(failedStatus);
    else if (Number(fields['Number Deleted']) === 0 && Number(fields['Number Not Found']) === 0) {
      fields['Response Status'] = statusLine(400);
      fields['Response Body'] = 'Invalid bulk delete.';
    }
  } catch (error) {
    if (!(error instanceof HttpError)) throw error;
    fields['Response Status'] = statusLine(error.status);
    fields['Response Body'] = error.message;
  }
  respond(ctx, fields, errors, 'delete');
}

/** The body's non-empty lines, trimmed and still %-encoded (as bytes in latin1), bounded. */
async function readDeleteNames(body: Readable, maxDeletes: number): Promise<string[]> {
  const tooMany = (): HttpError => new HttpError(413, `Maximum Bulk Deletes: ${maxDeletes} per request`);
  const names: string[] = [];
  let rest = '';
  let total = 0;
  const limit = (maxDeletes + 1) * 2048;
  for await (const chunk of body as AsyncIterable<Buffer | string>) {
    const text = typeof chunk === 'string' ? chunk : chunk.toString('latin1');
    total += text.length;
    if (total > limit) throw tooMany();
    rest += text;
    const lines = rest.split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) if (line.trim() !== '') names.push(line.trim());
    if (names.length > maxDeletes) throw tooMany();
    if (rest.length > 4096) throw new HttpError(400, 'Invalid File Name');
  }
  if (rest.trim() !== '') names.push(rest.trim());
  if (names.length > maxDeletes) throw tooMany();
  return names;
}

/** %-decoding of a latin1 string's bytes (the bytes that came on the wire). */
function decodePercentBytes(raw: string): Uint8Array {
  const bytes = Buffer.from(raw, 'latin1');
  const out: number[] = [];
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i] ?? 0;
    const hex = bytes.subarray(i + 1, i + 3).toString('latin1');
    if (byte === 0x25 && /^[0-9a-fA-F]{2}$/.test(hex)) {
      out.push(parseInt(hex, 16));
      i += 2;
    } else {
      out.push(byte);
    }
  }
  return Uint8Array.from(out);
}

/** The decoded name, or undefined when its bytes are not UTF-8. */
function decodePercentStrict(raw: string): string | undefined {
  try {
    return STRICT_UTF8.decode(decodePercentBytes(raw));
  } catch {
    return undefined;
  }
}

export function bulkMiddleware(options: BulkOptions): Middleware {
  return async (ctx: Context, next: Next): Promise<void> => {
    const extract = ctx.query['extract-archive'];
    const isDelete = 'bulk-delete' in ctx.query && (ctx.method === 'POST' || ctx.method === 'DELETE');
    if ((extract === undefined || ctx.method !== 'PUT') && !isDelete) {
      await next();
      return;
    }
    const path = swiftPathOrUndefined(ctx.path, options.validVersions);
    if (path === undefined) throw new HttpError(404);
    if (extract !== undefined && ctx.method === 'PUT') {
      const kind = String(Array.isArray(extract) ? extract[0] : extract)
        .toLowerCase()
        .replace(/^\.+|\.+$/g, '');
      if (kind !== 'tar' && kind !== 'tar.gz' && kind !== 'tar.bz2') {
        throw new HttpError(400, 'Unsupported archive format');
      }
      await extractArchive(ctx, path, kind, options);
      return;
    }
    await bulkDelete(ctx, path, options);
  };
}
