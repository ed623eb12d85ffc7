/**
 * The object server: Swift's object backend API on `/<dev>/<part>/<a>/<c>/<o>` (PUT, GET, HEAD,
 * POST, DELETE), with the proxy's X-Timestamp deciding which write wins. It turns disk file errors
 * into Swift's statuses, streams bodies both ways with backpressure, checks MD5 on the fly (and on
 * the way out), and sends container updates after each change. A chunked PUT may end with
 * sysmeta as HTTP trailers (the proxy's metadata footers), stored as if sent with the headers.
 */
import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, Readable, Transform, type TransformCallback } from 'node:stream';
import type { Context } from 'koa';
import { checkMetadata, type Constraints } from '../../common/constraints.js';
import { HttpError, swiftDefaultBody } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { InvalidTimestampError, Timestamp } from '../../common/timestamp.js';
import { sendContinue } from '../expect-continue.js';
import { receiveBody } from '../receive-body.js';
import type { RequestTarget, StorageServer } from '../server-types.js';
import {
  DiskFileManager,
  POST_ALLOWED_HEADERS,
  type ObjectLocation,
  type ObjectMetadata,
  type OpenedObject,
} from '../diskfile/diskfile.js';
import {
  DiskFileDeletedError,
  DiskFileExpiredError,
  DiskFileNotExistError,
  DiskFileQuarantinedError,
} from '../diskfile/errors.js';
import {
  closeContainerUpdateConnections,
  containerTargets,
  sendContainerUpdates,
  storedContainerUpdateOverrides,
  type ContainerUpdateOptions,
} from './container-update.js';
import { evaluateConditionals, parseRange, type ByteRange } from './http-rules.js';

export interface ObjectServerOptions {
  diskfiles: DiskFileManager;
  constraints: Readonly<Constraints>;
  logger: Logger;
  containerUpdates: Omit<ContainerUpdateOptions, 'logger'>;
  clientTimeoutMs: number;
}

/** Metadata keys that are not sent back as-is in GET/HEAD headers. */
const INTERNAL_KEYS = new Set([
  'name',
  'X-Timestamp',
  'Content-Length',
  'ETag',
  'Content-Type',
  'Content-Type-Timestamp',
]);
const ALLOWED_LOWER = new Map(POST_ALLOWED_HEADERS.map((h) => [h.toLowerCase(), h]));

function titleCase(name: string): string {
  return name
    .split('-')
    .map((part) => (part === '' ? part : part[0]?.toUpperCase() + part.slice(1).toLowerCase()))
    .join('-');
}

function header(ctx: Context, name: string): string | undefined {
  const value = ctx.req.headers[name];
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.join(',') : value;
}

function requestTimestamp(ctx: Context): Timestamp {
  const raw = header(ctx, 'x-timestamp');
  if (raw === undefined) throw new HttpError(400, 'Missing timestamp', { code: 'MissingTimestamp' });
  try {
    return Timestamp.parse(raw);
  } catch (error) {
    if (error instanceof InvalidTimestampError) throw new HttpError(400, error.message, { code: 'BadTimestamp' });
    throw error;
  }
}

function checkNames(target: RequestTarget, constraints: Readonly<Constraints>): void {
  const objectLength = Buffer.byteLength(target.object ?? '');
  if (objectLength > constraints.max_object_name_length) {
    throw new HttpError(
      400,
      `Object name length of ${objectLength} longer than ${constraints.max_object_name_length}`,
      {
        code: 'NameTooLong',
      },
    );
  }
  const containerLength = Buffer.byteLength(target.container ?? '');
  if (containerLength > constraints.max_container_name_length) {
    throw new HttpError(
      400,
      `Container name length of ${containerLength} longer than ${constraints.max_container_name_length}`,
      { code: 'NameTooLong' },
    );
  }
  const accountLength = Buffer.byteLength(target.account);
  if (accountLength > constraints.max_account_name_length) {
    throw new HttpError(
      400,
      `Account name length of ${accountLength} longer than ${constraints.max_account_name_length}`,
      {
        code: 'NameTooLong',
      },
    );
  }
}

function checkUserMetadata(ctx: Context, constraints: Readonly<Constraints>): void {
  const problem = checkMetadata(ctx.req.headers, 'object', constraints);
  if (problem !== undefined) throw new HttpError(400, problem, { code: 'BadMetadata' });
}

/** X-Delete-At: an integer in the future (Swift: 400 "X-Delete-At in past"). */
function checkDeleteAt(ctx: Context, timestamp: Timestamp): string | undefined {
  const raw = header(ctx, 'x-delete-at');
  if (raw === undefined || raw === '') return undefined;
  if (!/^\d+$/.test(raw.trim())) throw new HttpError(400, 'Non-integer X-Delete-At', { code: 'BadDeleteAt' });
  const deleteAt = Number(raw.trim());
  if (deleteAt < Math.min(Date.now() / 1000, timestamp.seconds)) {
    throw new HttpError(400, 'X-Delete-At in past', { code: 'BadDeleteAt' });
  }
  return String(deleteAt);
}

/** The user metadata, sysmeta and POST-able headers of a request, under Swift's header names. */
function metadataFromRequest(ctx: Context, includeSysmeta: boolean): ObjectMetadata {
  const metadata: ObjectMetadata = {};
  for (const [name, rawValue] of Object.entries(ctx.req.headers)) {
    if (rawValue === undefined) continue;
    const value = Array.isArray(rawValue) ? rawValue.join(',') : rawValue;
    if (
      name.startsWith('x-object-meta-') ||
      name.startsWith('x-object-transient-sysmeta-') ||
      (includeSysmeta && name.startsWith('x-object-sysmeta-'))
    ) {
      metadata[titleCase(name)] = value;
    } else {
      const allowed = ALLOWED_LOWER.get(name);
      if (allowed !== undefined) metadata[allowed] = value;
    }
  }
  return metadata;
}

/**
 * A PUT's metadata footers: sysmeta the proxy learnt only from the body (an S3 checksum sent as
 * a trailer) and sends as HTTP trailers of the chunked body, stored with the object as if it
 * had come with the headers. Nothing else is taken from trailers.
 */
function metadataFromTrailers(ctx: Context): ObjectMetadata {
  const metadata: ObjectMetadata = {};
  for (const [name, value] of Object.entries(ctx.req.trailers)) {
    if (value !== undefined && name.startsWith('x-object-sysmeta-')) metadata[titleCase(name)] = value;
  }
  return metadata;
}

function notFoundFor(error: DiskFileNotExistError): HttpError {
  const headers: Record<string, string> = {};
  if (error.timestamp !== undefined) headers['X-Backend-Timestamp'] = error.timestamp;
  return new HttpError(404, undefined, { code: error.code, headers });
}

function stripQuotes(etag: string): string {
  return etag
    .trim()
    .replace(/^"(.*)"$/, '$1')
    .toLowerCase();
}

class ObjectServer implements StorageServer {
  private readonly updateOptions: ContainerUpdateOptions;

  constructor(private readonly options: ObjectServerOptions) {
    this.updateOptions = { ...options.containerUpdates, logger: options.logger };
  }

  async handle(ctx: Context, target: RequestTarget): Promise<void> {
    if (target.container === undefined || target.object === undefined) {
      throw new HttpError(400, 'Invalid path', { code: 'BadPath' });
    }
    const location = this.options.diskfiles.locate(
      target.devicePath,
      target.partition,
      target.account,
      target.container,
      target.object,
    );
    switch (ctx.method) {
      case 'PUT':
        return this.put(ctx, target, location);
      case 'GET':
      case 'HEAD':
        return this.get(ctx, location);
      case 'POST':
        return this.post(ctx, target, location);
      case 'DELETE':
        return this.delete(ctx, target, location);
      default:
        ctx.set('Allow', 'PUT, GET, HEAD, POST, DELETE');
        throw new HttpError(405, undefined, { code: 'MethodNotAllowed' });
    }
  }

  close(): Promise<void> {
    closeContainerUpdateConnections();
    return Promise.resolve();
  }

  private async put(ctx: Context, target: RequestTarget, location: ObjectLocation): Promise<void> {
    const { constraints } = this.options;
    const timestamp = requestTimestamp(ctx);
    checkNames(target, constraints);
    checkUserMetadata(ctx, constraints);
    const chunked = /\bchunked\b/i.test(header(ctx, 'transfer-encoding') ?? '');
    const lengthHeader = header(ctx, 'content-length');
    let contentLength: number | undefined;
    if (!chunked) {
      if (lengthHeader === undefined) throw new HttpError(411, 'Missing Content-Length', { code: 'LengthRequired' });
      if (!/^\d+$/.test(lengthHeader.trim())) throw new HttpError(400, 'Invalid Content-Length', { code: 'BadLength' });
      contentLength = Number(lengthHeader.trim());
    }
    if (contentLength !== undefined && contentLength > constraints.max_file_size) {
      throw new HttpError(413, 'Your request is too large.', { code: 'TooLarge' });
    }
    const contentType = header(ctx, 'content-type');
    if (contentType === undefined || contentType === '') {
      throw new HttpError(400, 'No content type', { code: 'NoContentType' });
    }
    const deleteAt = checkDeleteAt(ctx, timestamp);
    const state = await this.options.diskfiles.readState(location);
    const onDisk = state.data ?? state.tombstone;
    if (onDisk !== undefined && onDisk.timestamp.compare(timestamp) >= 0) {
      throw new HttpError(409, undefined, {
        code: 'Conflict',
        headers: { 'X-Backend-Timestamp': onDisk.timestamp.internal },
      });
    }
    if (state.data !== undefined && header(ctx, 'if-none-match') !== undefined) {
      const ifNoneMatch = header(ctx, 'if-none-match') ?? '';
      if (ifNoneMatch.split(',').some((tag) => tag.trim() === '*')) {
        try {
          const existing = await this.options.diskfiles.open(location, { metadataOnly: true }, state);
          await existing.close();
          throw new HttpError(412, undefined, { code: 'PreconditionFailed' });
        } catch (error) {
          if (!(error instanceof DiskFileNotExistError)) throw error;
        }
      }
    }

    sendContinue(ctx.req, ctx.res);
    const writer = await this.options.diskfiles.createWriter(location, state);
    try {
      await receiveBody(ctx.req, writer, {
        contentLength,
        limitBytes: contentLength ?? constraints.max_file_size,
        clientTimeoutMs: this.options.clientTimeoutMs,
        tooLong: () => new HttpError(413, 'Your request is too large.', { code: 'TooLarge' }),
      });
      const etag = writer.digest();
      const clientEtag = header(ctx, 'etag');
      if (clientEtag !== undefined && stripQuotes(clientEtag) !== etag) {
        throw new HttpError(422, undefined, { code: 'EtagMismatch' });
      }
      const metadata: ObjectMetadata = {
        ...metadataFromRequest(ctx, true),
        ...metadataFromTrailers(ctx),
        name: `/${target.account}/${target.container}/${target.object}`,
        'X-Timestamp': timestamp.internal,
        'Content-Type': contentType,
        ETag: etag,
        'Content-Length': String(writer.bytesWritten),
      };
      if (deleteAt !== undefined) metadata['X-Delete-At'] = deleteAt;
      await writer.commit(metadata, timestamp, 'data');
      await this.updateContainers(ctx, location, 'PUT', timestamp, {
        'X-Size': header(ctx, 'x-backend-container-update-override-size') ?? String(writer.bytesWritten),
        'X-Content-Type': header(ctx, 'x-backend-container-update-override-content-type') ?? contentType,
        'X-Etag': header(ctx, 'x-backend-container-update-override-etag') ?? etag,
      });
      ctx.status = 201;
      ctx.set('ETag', etag);
      ctx.set('Last-Modified', timestamp.httpDate);
      ctx.body = '';
    } finally {
      await writer.abort();
    }
  }

  private async openOrThrow(location: ObjectLocation, metadataOnly: boolean): Promise<OpenedObject> {
    try {
      return await this.options.diskfiles.open(location, { metadataOnly });
    } catch (error) {
      if (error instanceof DiskFileQuarantinedError) {
        this.options.logger.warn({ path: location.hashDir, reason: error.message }, 'object quarantined');
      }
      if (error instanceof DiskFileNotExistError) throw notFoundFor(error);
      throw error;
    }
  }

  private async get(ctx: Context, location: ObjectLocation): Promise<void> {
    const isHead = ctx.method === 'HEAD';
    const opened = await this.openOrThrow(location, isHead);
    let handedOff = false;
    try {
      const { metadata } = opened;
      const etag = opened.etag;
      const length = opened.contentLength;
      const lastModifiedSeconds = Math.ceil(opened.timestamp.seconds);
      const headers: Record<string, string> = {
        'Content-Type': metadata['Content-Type'] ?? 'application/octet-stream',
        ETag: etag,
        'Last-Modified': opened.timestamp.httpDate,
        'X-Timestamp': opened.timestamp.normal,
        'X-Backend-Timestamp': opened.timestamp.internal,
        'X-Backend-Data-Timestamp': opened.dataTimestamp.internal,
        'X-Backend-Durable-Timestamp': opened.dataTimestamp.internal,
        'Accept-Ranges': 'bytes',
      };
      for (const [key, value] of Object.entries(metadata)) {
        if (!INTERNAL_KEYS.has(key)) headers[key] = value;
      }
      ctx.set(headers);
      const outcome = evaluateConditionals(
        {
          ifMatch: header(ctx, 'if-match'),
          ifNoneMatch: header(ctx, 'if-none-match'),
          ifModifiedSince: header(ctx, 'if-modified-since'),
          ifUnmodifiedSince: header(ctx, 'if-unmodified-since'),
        },
        etag,
        lastModifiedSeconds,
        true,
      );
      if (outcome === 'precondition-failed') {
        // swob's conditional answer: the object's ETag, no body (not the 412 page).
        ctx.status = 412;
        ctx.body = '';
        ctx.set('Content-Type', 'text/html; charset=UTF-8');
        ctx.remove('Accept-Ranges');
        return;
      }
      if (outcome === 'not-modified') {
        ctx.status = 304;
        return;
      }
      const ranges = parseRange(header(ctx, 'range'), length);
      if (ranges !== undefined && ranges.length === 0) {
        throw new HttpError(416, undefined, {
          code: 'RangeNotSatisfiable',
          headers: { 'Content-Range': `bytes */${length}` },
        });
      }
      if (isHead) {
        ctx.status = 200;
        ctx.set('Content-Length', String(length));
        return;
      }
      if (ranges === undefined) {
        ctx.status = 200;
        ctx.body = opened.verifiedBody ?? this.verifiedStream(ctx, opened);
        handedOff = opened.verifiedBody === undefined;
        ctx.set('Content-Length', String(length));
        return;
      }
      ctx.status = 206;
      if (ranges.length === 1) {
        const [range] = ranges as [ByteRange];
        ctx.body = opened.verifiedBody?.subarray(range.start, range.end + 1) ?? opened.stream(range.start, range.end);
        handedOff = opened.verifiedBody === undefined;
        ctx.set('Content-Range', `bytes ${range.start}-${range.end}/${length}`);
        ctx.set('Content-Length', String(range.end - range.start + 1));
        return;
      }
      const boundary = randomBytes(16).toString('hex');
      const contentType = metadata['Content-Type'] ?? 'application/octet-stream';
      const partHead = (range: ByteRange): string =>
        `--${boundary}\r\nContent-Type: ${contentType}\r\nContent-Range: bytes ${range.start}-${range.end}/${length}\r\n\r\n`;
      const closing = `--${boundary}--`;
      let total = Buffer.byteLength(closing);
      for (const range of ranges) total += Buffer.byteLength(partHead(range)) + range.end - range.start + 1 + 2;
      ctx.set('Content-Type', `multipart/byteranges;boundary=${boundary}`);
      if (opened.verifiedBody !== undefined) {
        const body = opened.verifiedBody;
        const parts: Buffer[] = [];
        for (const range of ranges) {
          parts.push(Buffer.from(partHead(range)), body.subarray(range.start, range.end + 1), Buffer.from('\r\n'));
        }
        parts.push(Buffer.from(closing));
        ctx.body = Buffer.concat(parts);
      } else {
        ctx.body = Readable.from(this.multipartStream(opened, ranges, partHead, closing));
        handedOff = true;
      }
      ctx.set('Content-Length', String(total));
    } finally {
      if (!handedOff) await opened.close();
    }
  }

  private async *multipartStream(
    opened: OpenedObject,
    ranges: readonly ByteRange[],
    partHead: (range: ByteRange) => string,
    closing: string,
  ): AsyncGenerator<Buffer> {
    try {
      for (const range of ranges) {
        yield Buffer.from(partHead(range));
        const chunks = opened.readRange(range.start, range.end);
        for await (const chunk of chunks) yield chunk;
        yield Buffer.from('\r\n');
      }
      yield Buffer.from(closing);
    } finally {
      await opened.close();
    }
  }

  /**
   * The whole body of a large object, hashed on the way out: when the MD5 at the end is not the
   * ETag, the file is quarantined and the connection cut (never a silently wrong body).
   */
  private verifiedStream(ctx: Context, opened: OpenedObject): Readable {
    const md5 = createHash('md5');
    const { diskfiles, logger } = this.options;
    // The last chunk is held back until the MD5 is known, so a bad body can never arrive whole.
    let held: Buffer | undefined;
    const check = new Transform({
      transform(chunk: Buffer, _encoding, callback: TransformCallback): void {
        md5.update(chunk);
        const previous = held;
        held = chunk;
        callback(null, previous);
      },
      flush(callback: TransformCallback): void {
        const actual = md5.digest('hex');
        if (actual === opened.etag) {
          callback(null, held);
          return;
        }
        logger.warn({ path: opened.location.hashDir, actual, etag: opened.etag }, 'object quarantined on read');
        ctx.req.socket.destroy();
        diskfiles.quarantine(opened.location).then(
          () => callback(new Error('object body does not match its ETag')),
          (error: unknown) => callback(error as Error),
        );
      },
    });
    const source = opened.stream(0, Math.max(0, opened.contentLength - 1));
    if (opened.contentLength === 0) {
      source.destroy();
      const empty = new PassThrough();
      empty.end();
      return empty;
    }
    source.once('error', (error) => check.destroy(error));
    return source.pipe(check);
  }

  private async post(ctx: Context, target: RequestTarget, location: ObjectLocation): Promise<void> {
    const { constraints } = this.options;
    const timestamp = requestTimestamp(ctx);
    checkNames(target, constraints);
    checkUserMetadata(ctx, constraints);
    const deleteAt = checkDeleteAt(ctx, timestamp);
    const opened = await this.openOrThrow(location, true);
    await opened.close();
    if (opened.timestamp.compare(timestamp) >= 0) {
      throw new HttpError(409, undefined, {
        code: 'Conflict',
        headers: { 'X-Backend-Timestamp': opened.timestamp.internal },
      });
    }
    const metadata: ObjectMetadata = {
      ...metadataFromRequest(ctx, false),
      name: `/${target.account}/${target.container}/${target.object}`,
      'X-Timestamp': timestamp.internal,
    };
    if (deleteAt !== undefined) metadata['X-Delete-At'] = deleteAt;
    const newContentType = header(ctx, 'content-type');
    const contentTypeChanged =
      newContentType !== undefined && newContentType !== '' && newContentType !== opened.metadata['Content-Type'];
    if (contentTypeChanged) {
      metadata['Content-Type'] = newContentType;
      metadata['Content-Type-Timestamp'] = timestamp.internal;
    } else if (opened.metadata['Content-Type'] !== undefined) {
      // Keep a type an earlier POST set: the newest .meta replaces the older one.
      metadata['Content-Type'] = opened.metadata['Content-Type'];
    }
    await this.options.diskfiles.writeMetadataOnly(location, metadata, timestamp, 'meta');
    // Every POST updates the row, as Swift's does: its metadata timestamp is the listing's
    // last_modified. The row keeps the PUT's data timestamp, and its size and ETag as the PUT
    // overrode them; without a new type the update's content-type timestamp is the data's, older
    // than any type an earlier POST set, so the container keeps that one.
    await this.updateContainers(ctx, location, 'PUT', opened.dataTimestamp, {
      'X-Size': String(opened.contentLength),
      'X-Content-Type': metadata['Content-Type'] ?? 'application/octet-stream',
      'X-Etag': opened.etag,
      ...(contentTypeChanged ? { 'X-Content-Type-Timestamp': timestamp.internal } : {}),
      'X-Meta-Timestamp': timestamp.internal,
      ...storedContainerUpdateOverrides(opened.metadata),
    });
    ctx.status = 202;
    ctx.body = swiftDefaultBody(202); // swob's page for 202, which Swift's proxy passes on
    ctx.set('Content-Type', 'text/html; charset=UTF-8');
  }

  private async delete(ctx: Context, target: RequestTarget, location: ObjectLocation): Promise<void> {
    const timestamp = requestTimestamp(ctx);
    checkNames(target, this.options.constraints);
    const state = await this.options.diskfiles.readState(location);
    let original: Timestamp | undefined;
    let existed = false;
    let currentDeleteAt: string | undefined;
    try {
      const opened = await this.options.diskfiles.open(location, { metadataOnly: true }, state);
      await opened.close();
      original = opened.dataTimestamp;
      currentDeleteAt = opened.metadata['X-Delete-At'];
      existed = true;
    } catch (error) {
      if (error instanceof DiskFileDeletedError || error instanceof DiskFileExpiredError) {
        original = state.tombstone?.timestamp ?? state.data?.timestamp;
      } else if (!(error instanceof DiskFileNotExistError)) {
        throw error;
      }
    }
    const ifDeleteAt = header(ctx, 'x-if-delete-at');
    if (ifDeleteAt !== undefined && ifDeleteAt !== currentDeleteAt) {
      throw new HttpError(412, 'X-If-Delete-At and X-Delete-At do not match', { code: 'PreconditionFailed' });
    }
    if (original !== undefined && original.compare(timestamp) >= 0) {
      const status = existed ? 409 : 404;
      throw new HttpError(status, undefined, { headers: { 'X-Backend-Timestamp': original.internal } });
    }
    await this.options.diskfiles.writeMetadataOnly(
      location,
      { name: `/${target.account}/${target.container}/${target.object}`, 'X-Timestamp': timestamp.internal },
      timestamp,
      'ts',
    );
    await this.updateContainers(ctx, location, 'DELETE', timestamp, {});
    ctx.set('X-Backend-Timestamp', timestamp.internal);
    if (!existed) throw new HttpError(404, undefined, { headers: { 'X-Backend-Timestamp': timestamp.internal } });
    ctx.status = 204;
  }

  private async updateContainers(
    ctx: Context,
    location: ObjectLocation,
    op: 'PUT' | 'DELETE',
    timestamp: Timestamp,
    extra: Record<string, string>,
  ): Promise<void> {
    const targets = containerTargets(ctx.req.headers);
    if (targets.length === 0) return;
    const headers: Record<string, string> = {
      'X-Timestamp': timestamp.internal,
      'X-Trans-Id': header(ctx, 'x-trans-id') ?? '-',
      Referer: `${ctx.method} ${ctx.url}`,
      'User-Agent': `object-server ${process.pid}`,
      ...extra,
    };
    const policy = header(ctx, 'x-backend-storage-policy-index');
    if (policy !== undefined) headers['X-Backend-Storage-Policy-Index'] = policy;
    await sendContainerUpdates(
      targets,
      {
        op,
        devicePath: location.devicePath,
        hash: location.hash,
        timestamp: timestamp.internal,
        account: location.account,
        container: location.container,
        object: location.object,
        headers,
      },
      this.updateOptions,
    );
  }
}

export function createObjectServer(options: ObjectServerOptions): StorageServer {
  return new ObjectServer(options);
}
