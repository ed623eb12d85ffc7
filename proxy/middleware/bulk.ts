/**
 * Bulk operations (Swift 2.30's bulk middleware), a stage right after authentication:
 * - `PUT /v1/<account>[/<container>[/<prefix>]]?extract-archive=tar|tar.gz` reads a tar archive
 *   from the request stream (gzip through node:zlib) and PUTs each regular file as an object
 *   (creating containers as needed) with the client's own requests, one file at a time and
 *   streamed: nothing of the archive is held beyond one 512-byte header. `tar.bz2` is 400
 *   ("Unsupported archive format"): there is no bzip2 in node and no npm package was added.
 * - `POST|DELETE /v1/<account>?bulk-delete` with a body of newline-separated %-encoded
 *   `/<container>/<object>` or `/<container>` names (at most 10,000) deletes them (objects first,
 *   then containers), four at a time.
 * Both answer 200 with Swift's summary (Number Files Created / Number Deleted, Number Not Found,
 * Response Status, Response Body, Errors) as text, JSON or XML by Accept.
 */
import { PassThrough, Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { Context, Middleware, Next } from 'koa';
import { HttpError } from '../../common/errors.js';
import { parseSwiftPath, quoteName, type SwiftPath } from '../request-path.js';
import { swiftState } from '../state.js';
import { bulkFormat, bulkResponseBody, statusLine } from './bulk-response.js';
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

  async skip(size: number): Promise<void> {
    let left = size;
    while (left > 0) {
      const part = await this.readSome(Math.min(left, 1 << 16));
      if (part.length === 0) throw new TarError('unexpected end of data');
      left -= part.length;
    }
  }
}

function cString(block: Buffer, start: number, length: number): string {
  const field = block.subarray(start, start + length);
  const end = field.indexOf(0);
  return field.subarray(0, end < 0 ? field.length : end).toString('utf8');
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
  if (!/^[0-7]+$/.test(text)) throw new TarError('invalid header');
  return parseInt(text, 8);
}

function checksumOk(block: Buffer): boolean {
  const stored = octal(block, 148, 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : (block[i] ?? 0);
  return sum === stored;
}

function paxPath(data: Buffer): string | undefined {
  let offset = 0;
  let found: string | undefined;
  while (offset < data.length) {
    const space = data.indexOf(0x20, offset);
    if (space < 0) break;
    const length = Number(data.subarray(offset, space).toString('ascii'));
    if (!Number.isSafeInteger(length) || length <= 0) break;
    const record = data.subarray(space + 1, offset + length - 1).toString('utf8');
    const equals = record.indexOf('=');
    if (record.slice(0, equals) === 'path') found = record.slice(equals + 1);
    offset += length;
  }
  return found;
}

interface TarEntry {
  name: string;
  size: number;
  isFile: boolean;
}

/** The next entry's header (long names and pax paths applied), or undefined at the end. */
async function nextEntry(reader: ByteReader): Promise<TarEntry | undefined> {
  let longName: string | undefined;
  for (let guard = 0; guard < 16; guard++) {
    const block = await reader.readSome(BLOCK);
    if (block.length === 0) return undefined;
    const header =
      block.length === BLOCK ? block : Buffer.concat([block, await reader.readExactly(BLOCK - block.length)]);
    if (header.every((byte) => byte === 0)) return undefined;
    if (!checksumOk(header)) throw new TarError('checksum mismatch');
    const size = octal(header, 124, 12);
    const type = String.fromCharCode(header[156] ?? 0);
    const padded = Math.ceil(size / BLOCK) * BLOCK;
    if (type === 'L' || type === 'x') {
      if (size > 1024 * 1024) throw new TarError('extended header too large');
      const data = (await reader.readExactly(padded)).subarray(0, size);
      longName = type === 'L' ? cString(data, 0, data.length) : (paxPath(data) ?? longName);
      continue;
    }
    let name = cString(header, 0, 100);
    if (header.subarray(257, 262).toString('latin1') === 'ustar') {
      const prefix = cString(header, 345, 155);
      if (prefix !== '') name = `${prefix}/${name}`;
    }
    return { name: longName ?? name, size, isFile: type === '0' || type === '\0' || type === '7' };
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

async function extractArchive(ctx: Context, path: SwiftPath, kind: string, options: BulkOptions): Promise<void> {
  const state = swiftState(ctx);
  let base = [path.container, path.object].filter((part) => part !== undefined).join('/');
  base = base.replace(/\/+$/, '');
  const source = kind === 'tar.gz' ? state.body.pipe(createGunzip()) : state.body;
  const reader = new ByteReader(source);
  const errors: [string, string][] = [];
  const containers = new Map<string, string | undefined>();
  let created = 0;
  let responseStatus = '201 Created';
  let responseBody = '';
  try {
    for (let count = 0; count < MAX_ENTRIES; count++) {
      const entry = await nextEntry(reader);
      if (entry === undefined || errors.length >= options.maxFailedExtractions) break;
      const padded = Math.ceil(entry.size / BLOCK) * BLOCK;
      let objectPath = entry.name.startsWith('./') ? entry.name.slice(2) : entry.name;
      objectPath = objectPath.replace(/^\/+/, '');
      if (base !== '') objectPath = `${base}/${objectPath}`;
      const slash = objectPath.indexOf('/');
      if (!entry.isFile || slash < 0) {
        await reader.skip(padded);
        continue;
      }
      if (entry.size > options.maxFileSize) {
        errors.push([quoteName(objectPath), statusLine(413)]);
        await reader.skip(padded);
        continue;
      }
      const container = objectPath.slice(0, slash);
      if (!containers.has(container)) {
        if (containers.size >= options.maxContainersPerExtraction) {
          throw new HttpError(400, `More than ${options.maxContainersPerExtraction} containers to create from tar.`);
        }
        containers.set(container, await ensureContainer(ctx, path.version, path.account, container));
      }
      const failure = containers.get(container);
      if (failure !== undefined) {
        errors.push([quoteName(objectPath), failure]);
        if (failure.startsWith('401')) throw new HttpError(401);
        await reader.skip(padded);
        continue;
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
        headers: { 'content-length': String(entry.size) },
        body,
        source: 'EA',
      });
      discardBody(put);
      // The PUT may have stopped reading early (refused): finish this entry's bytes either way.
      body.resume();
      await feed;
      await reader.skip(padded - entry.size);
      if (put.status >= 200 && put.status < 300) {
        created += 1;
      } else {
        errors.push([quoteName(objectPath), statusLine(put.status)]);
        if (put.status === 401) throw new HttpError(401);
      }
    }
    if (errors.length > 0) responseStatus = statusLine(400);
    else if (created === 0) {
      responseStatus = statusLine(400);
      responseBody = 'Invalid Tar File: No Valid Files';
    }
  } catch (error) {
    if (error instanceof HttpError) {
      responseStatus = statusLine(error.status);
      responseBody = error.status === 401 ? '' : error.message;
    } else if (
      error instanceof TarError ||
      (error instanceof Error && 'code' in error && String(error.code).startsWith('Z_'))
    ) {
      responseStatus = statusLine(400);
      responseBody = `Invalid Tar File: ${error.message}`;
    } else {
      throw error;
    }
  }
  respond(
    ctx,
    { 'Number Files Created': created, 'Response Status': responseStatus, 'Response Body': responseBody },
    errors,
    'extract',
  );
}

/** Creates the container unless it exists; answers the failure line, or undefined when usable. */
async function ensureContainer(
  ctx: Context,
  version: string,
  account: string,
  container: string,
): Promise<string | undefined> {
  const state = swiftState(ctx);
  const path = `/${version}/${quoteName(account)}/${quoteName(container)}`;
  const head = await state.subrequest({ method: 'HEAD', path, source: 'EA' });
  discardBody(head);
  if (head.status >= 200 && head.status < 300) return undefined;
  if (head.status !== 404 && head.status !== 403) return statusLine(head.status);
  const put = await state.subrequest({ method: 'PUT', path, source: 'EA' });
  discardBody(put);
  if (put.status >= 200 && put.status < 300) return undefined;
  return statusLine(put.status);
}

async function bulkDelete(ctx: Context, path: SwiftPath, options: BulkOptions): Promise<void> {
  const state = swiftState(ctx);
  if (ctx.get('content-length') === '' && ctx.get('transfer-encoding').toLowerCase() !== 'chunked') {
    throw new HttpError(411, undefined, { code: 'LengthRequired' });
  }
  const fields: Record<string, string | number> = {
    'Number Deleted': 0,
    'Number Not Found': 0,
    'Response Status': statusLine(200),
    'Response Body': '',
  };
  const errors: [string, string][] = [];
  const names: string[] = [];
  try {
    let rest = '';
    let total = 0;
    const limit = (options.maxDeletesPerRequest + 1) * 2048;
    for await (const chunk of state.body as AsyncIterable<Buffer | string>) {
      const text = typeof chunk === 'string' ? chunk : chunk.toString('latin1');
      total += text.length;
      if (total > limit) throw new HttpError(413, `Maximum Bulk Deletes: ${options.maxDeletesPerRequest} per request`);
      rest += text;
      const lines = rest.split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) if (line.trim() !== '') names.push(line.trim());
      if (names.length > options.maxDeletesPerRequest) {
        throw new HttpError(413, `Maximum Bulk Deletes: ${options.maxDeletesPerRequest} per request`);
      }
      if (rest.length > 4096) throw new HttpError(400, 'Invalid File Name');
    }
    if (rest.trim() !== '') names.push(rest.trim());
    if (names.length > options.maxDeletesPerRequest) {
      throw new HttpError(413, `Maximum Bulk Deletes: ${options.maxDeletesPerRequest} per request`);
    }
    const decoded = names.map((raw) => {
      return decodeLatin1Utf8(raw).replace(/^\/+/, '');
    });
    // Objects first, then containers (a container empties before its DELETE).
    const ordered = [...decoded.filter((name) => name.includes('/')), ...decoded.filter((name) => !name.includes('/'))];
    const objects = ordered.filter((name) => name.includes('/'));
    const containerNames = ordered.filter((name) => !name.includes('/'));
    const deleteOne = async (name: string): Promise<void> => {
      if (name === '') return;
      const response = await state.subrequest({
        method: 'DELETE',
        path: `/${path.version}/${quoteName(path.account)}/${quoteName(name)}`,
        source: 'BD',
      });
      discardBody(response);
      if (response.status >= 200 && response.status < 300)
        fields['Number Deleted'] = Number(fields['Number Deleted']) + 1;
      else if (response.status === 404) fields['Number Not Found'] = Number(fields['Number Not Found']) + 1;
      else errors.push([quoteName(name), statusLine(response.status)]);
    };
    for (const group of [objects, containerNames]) {
      let index = 0;
      const worker = async (): Promise<void> => {
        while (index < group.length) {
          const name = group[index] ?? '';
          index += 1;
          await deleteOne(name);
        }
      };
      await Promise.all(Array.from({ length: DELETE_CONCURRENCY }, () => worker()));
    }
    if (errors.length > 0) fields['Response Status'] = statusLine(400);
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

/** %-decoding of bytes (the names are UTF-8 once decoded). */
function decodeLatin1Utf8(raw: string): string {
  const bytes = Buffer.from(raw, 'latin1');
  const out: number[] = [];
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i] ?? 0;
    if (
      byte === 0x25 &&
      i + 2 < bytes.length &&
      /^[0-9a-fA-F]{2}$/.test(bytes.subarray(i + 1, i + 3).toString('latin1'))
    ) {
      out.push(parseInt(bytes.subarray(i + 1, i + 3).toString('latin1'), 16));
      i += 2;
    } else {
      out.push(byte);
    }
  }
  return Buffer.from(out).toString('utf8');
}

export function bulkMiddleware(options: BulkOptions): Middleware {
  return async (ctx: Context, next: Next): Promise<void> => {
    const extract = ctx.query['extract-archive'];
    const isDelete = 'bulk-delete' in ctx.query && (ctx.method === 'POST' || ctx.method === 'DELETE');
    if ((extract === undefined || ctx.method !== 'PUT') && !isDelete) {
      await next();
      return;
    }
    let path: SwiftPath | undefined;
    try {
      path = parseSwiftPath(ctx.path, options.validVersions);
    } catch {
      path = undefined;
    }
    if (path === undefined) throw new HttpError(404);
    if (extract !== undefined && ctx.method === 'PUT') {
      const kind = String(Array.isArray(extract) ? extract[0] : extract)
        .toLowerCase()
        .replace(/^\.+|\.+$/g, '');
      if (kind !== 'tar' && kind !== 'tar.gz') throw new HttpError(400, 'Unsupported archive format');
      await extractArchive(ctx, path, kind, options);
      return;
    }
    await bulkDelete(ctx, path, options);
  };
}
