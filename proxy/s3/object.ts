/**
 * Object operations: PutObject, GetObject, HeadObject, DeleteObject, CopyObject and object ACLs.
 * Bodies stream both ways. A multipart object is a manifest in Swift (SLO-style JSON listing its
 * segments, flagged X-Static-Large-Object); reads fetch it with `multipart-manifest=get` and
 * stream the segments here, so they work whether or not the proxy has an SLO middleware.
 * Conditionals and ranges on manifests are evaluated here, against the S3 ETag.
 */
import { Readable } from 'node:stream';
import { checkMetadata } from '../../common/constraints.js';
import { forEachLimited } from './bucket.js';
import { aclResponse, readBucketAcl } from './acl.js';
import {
  checkObjectCannedAcl,
  evaluateConditions,
  isManifest,
  MAX_OBJECT_SIZE,
  notFoundError,
  objectHeadersFromRequest,
  objectResponseHeaders,
  parseRange,
  quoteEtag,
  s3Date,
  s3EtagOf,
  swiftFailure,
  SYSMETA,
  unquoteEtag,
  xmlResponse,
  type ByteRange,
  type S3Context,
  type S3Response,
} from './context.js';
import { S3Errors } from './errors.js';
import { bodyStream, discard, type SwiftSubresponse } from './swift-client.js';
import { safeDecode } from './sigv4.js';
import { xmlElement } from './xml.js';

const MAX_KEY_BYTES = 1024;
const MANIFEST_BYTES_MAX = 8 * 1024 * 1024;
const SEGMENT_DELETE_CONCURRENCY = 4;
const TRANSIENT_CHECKSUM = 'x-object-transient-sysmeta-s3api-checksum-';

export interface ManifestSegment {
  /** `/<container>/<object>`, not %-encoded. */
  name: string;
  hash: string;
  bytes: number;
}

export function parseManifest(text: string): ManifestSegment[] {
  const value = JSON.parse(text) as unknown;
  if (!Array.isArray(value)) throw S3Errors.internalError();
  return value.map((entry: unknown) => {
    const row = entry as {
      name?: unknown;
      path?: unknown;
      hash?: unknown;
      etag?: unknown;
      bytes?: unknown;
      size_bytes?: unknown;
    };
    const name = typeof row.name === 'string' ? row.name : typeof row.path === 'string' ? row.path : undefined;
    const bytes =
      typeof row.bytes === 'number' ? row.bytes : typeof row.size_bytes === 'number' ? row.size_bytes : undefined;
    if (name === undefined || bytes === undefined) throw S3Errors.internalError();
    return {
      name,
      bytes,
      hash: typeof row.hash === 'string' ? row.hash : typeof row.etag === 'string' ? row.etag : '',
    };
  });
}

function splitSegmentName(name: string): [string, string] {
  const trimmed = name.startsWith('/') ? name.slice(1) : name;
  const slash = trimmed.indexOf('/');
  return [trimmed.slice(0, slash), trimmed.slice(slash + 1)];
}

/** Streams `range` of the concatenated segments, one Swift GET at a time. */
function segmentStream(ctx: S3Context, segments: readonly ManifestSegment[], range: ByteRange): Readable {
  async function* generate(): AsyncGenerator<Buffer> {
    let offset = 0;
    for (const segment of segments) {
      const first = offset;
      const last = offset + segment.bytes - 1;
      offset += segment.bytes;
      if (segment.bytes === 0 || last < range.start || first > range.end) continue;
      const from = Math.max(range.start, first) - first;
      const to = Math.min(range.end, last) - first;
      const [container, object] = splitSegmentName(segment.name);
      const whole = from === 0 && to === segment.bytes - 1;
      const response = await ctx.swift.request('GET', container, object, {
        headers: whole ? {} : { range: `bytes=${from}-${to}` },
      });
      if (response.status !== 200 && response.status !== 206) {
        discard(response);
        throw new Error(`segment ${segment.name} answered ${response.status}`);
      }
      for await (const chunk of bodyStream(response) as AsyncIterable<Buffer>) yield chunk;
    }
  }
  return Readable.from(generate(), { objectMode: false });
}

export interface OpenedObject {
  /** Swift headers of the object (or manifest). */
  headers: Record<string, string>;
  etag: string;
  size: number;
  lastModified?: string;
  manifest?: ManifestSegment[];
  /** Whether the response covers only `range`. */
  range?: ByteRange;
  /** The body (whole, or the range). Drains nothing until read. */
  stream(): Readable;
  /** The same, as the pipeline made it: a small object may be one Buffer (no stream to wrap it). */
  payload(): Readable | Buffer | string;
  /** Releases the backend response without reading it. */
  close(): void;
}

/**
 * Opens an object for reading (GET, or HEAD when `headOnly`), resolving manifests: `rangeHeader`
 * applies to the object's bytes either way. Throws NoSuchKey / NoSuchBucket / InvalidRange.
 */
export async function openObject(
  ctx: S3Context,
  bucket: string,
  key: string,
  rangeHeader: string | undefined,
  headOnly: boolean,
  partNumber?: number,
): Promise<OpenedObject> {
  const method = headOnly ? 'HEAD' : 'GET';
  const query = { 'multipart-manifest': 'get' };
  let response: SwiftSubresponse = await ctx.swift.request(method, bucket, key, {
    query,
    headers: rangeHeader === undefined ? {} : { range: rangeHeader },
  });
  if (response.status === 404) {
    discard(response);
    throw await notFoundError(ctx, bucket, key);
  }
  if (response.status === 416 && rangeHeader !== undefined) {
    // The range may have been applied to a manifest's JSON: look again without it.
    discard(response);
    response = await ctx.swift.request(method, bucket, key, { query });
    if (response.status === 200 && !isManifest(response.headers)) {
      discard(response);
      throw S3Errors.invalidRange();
    }
  }
  if (response.status !== 200 && response.status !== 206) {
    discard(response);
    throw swiftFailure(response, { bucket, key });
  }
  if (response.headers['x-object-manifest'] !== undefined) {
    // A DLO: let the proxy's DLO stage concatenate it (multipart-manifest=get gives its manifest).
    discard(response);
    response = await ctx.swift.request(method, bucket, key, {
      headers: rangeHeader === undefined ? {} : { range: rangeHeader },
    });
    if (response.status !== 200 && response.status !== 206) {
      discard(response);
      throw swiftFailure(response, { bucket, key });
    }
  }
  const headers = response.headers;
  // An object that is not a multipart upload has one part: the whole of it.
  if (partNumber !== undefined && partNumber > 1 && !isManifest(headers)) {
    discard(response);
    throw S3Errors.invalidPartNumber();
  }
  if (!isManifest(headers)) {
    const contentRange = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(headers['content-range'] ?? '');
    const size = contentRange !== null ? Number(contentRange[3]) : Number(headers['content-length'] ?? 0);
    const opened = response;
    return {
      headers,
      etag: s3EtagOf(headers),
      size,
      lastModified: headers['last-modified'],
      range:
        response.status === 206 && contentRange !== null
          ? { start: Number(contentRange[1]), end: Number(contentRange[2]) }
          : undefined,
      stream: () => bodyStream(opened),
      payload: () => opened.body ?? bodyStream(opened),
      close: () => discard(opened),
    };
  }
  // A manifest: its bytes are the segment list. Ranges and HEADs are ours to resolve.
  if (headOnly || response.status === 206) {
    discard(response);
    response = await ctx.swift.request('GET', bucket, key, { query });
    if (response.status !== 200) {
      discard(response);
      throw response.status === 404 ? await notFoundError(ctx, bucket, key) : swiftFailure(response, { bucket, key });
    }
  }
  const manifest = parseManifest((await response.buffer(MANIFEST_BYTES_MAX)).toString('utf8'));
  const size = manifest.reduce((sum, segment) => sum + segment.bytes, 0);
  const range =
    partNumber === undefined
      ? size === 0
        ? undefined
        : parseRange(rangeHeader, size)
      : partRange(manifest, partNumber);
  const stream = (): Readable =>
    size === 0 ? Readable.from([]) : segmentStream(ctx, manifest, range ?? { start: 0, end: size - 1 });
  return {
    headers: response.headers,
    etag: s3EtagOf(response.headers),
    size,
    lastModified: response.headers['last-modified'],
    manifest,
    range,
    stream,
    payload: stream,
    close: () => undefined,
  };
}

/** The bytes of part `partNumber` (1-based) of a multipart object: its manifest's segment. */
function partRange(manifest: readonly ManifestSegment[], partNumber: number): { start: number; end: number } {
  const part = manifest[partNumber - 1];
  if (part === undefined) throw S3Errors.invalidPartNumber();
  const start = manifest.slice(0, partNumber - 1).reduce((sum, segment) => sum + segment.bytes, 0);
  return { start, end: start + part.bytes - 1 };
}

/** `?partNumber=N` of a GET or HEAD: 1 to 10,000, never with a Range. */
function requestedPartNumber(ctx: S3Context): number | undefined {
  const text = ctx.query.get('partNumber');
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < 1 || value > 10_000)
    throw S3Errors.invalidArgument('partNumber', text, 'Part number must be an integer between 1 and 10000, inclusive');
  if (ctx.header('range') !== undefined)
    throw S3Errors.invalidRequest('Cannot specify both Range header and partNumber query parameter');
  return value;
}

const RESPONSE_OVERRIDES: Readonly<Record<string, string>> = {
  'response-content-type': 'content-type',
  'response-content-language': 'content-language',
  'response-expires': 'expires',
  'response-cache-control': 'cache-control',
  'response-content-disposition': 'content-disposition',
  'response-content-encoding': 'content-encoding',
};

export async function getObject(ctx: S3Context, bucket: string, key: string, headOnly: boolean): Promise<S3Response> {
  if (ctx.query.has('versionId') && ctx.query.get('versionId') !== 'null')
    throw S3Errors.notImplemented('Versioning is not implemented.');
  const partNumber = requestedPartNumber(ctx);
  const rangeHeader = ctx.header('range');
  const object = await openObject(ctx, bucket, key, rangeHeader, headOnly, partNumber);
  const condition = evaluateConditions(
    {
      ifMatch: ctx.header('if-match'),
      ifNoneMatch: ctx.header('if-none-match'),
      ifModifiedSince: ctx.header('if-modified-since'),
      ifUnmodifiedSince: ctx.header('if-unmodified-since'),
    },
    object.etag,
    object.lastModified,
  );
  const checksumMode =
    (ctx.header('x-amz-checksum-mode') ?? '').toUpperCase() === 'ENABLED' && object.range === undefined;
  const headers = objectResponseHeaders(object.headers, checksumMode);
  if (object.manifest !== undefined) {
    // S3 gives the count of parts only to a read of one part.
    if (partNumber !== undefined) headers['x-amz-mp-parts-count'] = String(object.manifest.length);
    headers['content-type'] =
      object.headers[`${SYSMETA}content-type`] ?? object.headers['content-type'] ?? 'binary/octet-stream';
  }
  if (condition === 304) {
    object.close();
    return {
      status: 304,
      headers: {
        etag: headers.etag ?? '',
        ...(headers['last-modified'] === undefined ? {} : { 'last-modified': headers['last-modified'] }),
      },
    };
  }
  if (condition === 412) {
    object.close();
    throw S3Errors.preconditionFailed(ctx.header('if-match') !== undefined ? 'If-Match' : 'If-Unmodified-Since');
  }
  for (const [parameter, header] of Object.entries(RESPONSE_OVERRIDES)) {
    const value = ctx.query.get(parameter);
    if (value !== undefined) headers[header] = value;
  }
  let status = 200;
  let length = object.size;
  if (object.range !== undefined) {
    status = 206;
    length = object.range.end - object.range.start + 1;
    headers['content-range'] = `bytes ${object.range.start}-${object.range.end}/${object.size}`;
  }
  headers['content-length'] = String(length);
  if (headOnly) {
    object.close();
    return { status, headers, body: null };
  }
  return { status, headers, body: object.payload() };
}

function checkKey(key: string): void {
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw S3Errors.keyTooLong();
}

function checkStorageClass(ctx: S3Context): void {
  const storageClass = ctx.header('x-amz-storage-class');
  if (storageClass !== undefined && storageClass !== 'STANDARD') throw S3Errors.invalidStorageClass();
}

function checkSize(ctx: S3Context, headers: Record<string, string>): void {
  const problem = checkMetadata(headers, 'object');
  if (problem !== undefined) throw S3Errors.metadataTooLarge();
  const length = Number(ctx.header('x-amz-decoded-content-length') ?? ctx.header('content-length') ?? '0');
  if (length > MAX_OBJECT_SIZE) throw S3Errors.entityTooLarge();
}

export interface StoredBody {
  etag: string;
  checksums: Partial<Record<string, string>>;
  /** Whether the checksums known only at the end were stored with the object (as footers). */
  lateStored: boolean;
  response: SwiftSubresponse;
}

/**
 * Streams the request body into a Swift object, checked on the way (signatures, SHA-256,
 * Content-MD5, checksums). On any check failure the Swift write is aborted and the S3 error
 * thrown; checksums known up front are stored as object sysmeta.
 */
export async function storeBody(
  ctx: S3Context,
  container: string,
  object: string,
  headers: Record<string, string>,
): Promise<StoredBody> {
  // Content-MD5 goes to Swift as the ETag (below), whose object servers check it.
  const body = ctx.body({ storedWithEtag: true });
  const swiftHeaders: Record<string, string> = { ...headers };
  if (body.length !== undefined) swiftHeaders['content-length'] = String(body.length);
  else swiftHeaders['transfer-encoding'] = 'chunked';
  for (const algorithm of body.checksumAlgorithms) {
    const value = ctx.header(`x-amz-checksum-${algorithm}`);
    if (value !== undefined) swiftHeaders[`${SYSMETA}checksum-${algorithm}`] = value;
  }
  const contentMd5 = ctx.header('content-md5');
  if (contentMd5 !== undefined) swiftHeaders.etag = Buffer.from(contentMd5, 'base64').toString('hex');
  // Checksums not sent as headers (trailers, or computed for x-amz-sdk-checksum-algorithm) are
  // known after the last byte: they go to the object servers as the PUT's metadata footers.
  const late = body.checksumAlgorithms.filter(
    (algorithm) => swiftHeaders[`${SYSMETA}checksum-${algorithm}`] === undefined,
  );
  let lateStored = false;
  const footers =
    late.length === 0
      ? undefined
      : (): Record<string, string> => {
          lateStored = true;
          const values: Record<string, string> = {};
          for (const algorithm of late) {
            const value = body.check.results[algorithm];
            if (value !== undefined) values[`${SYSMETA}checksum-${algorithm}`] = value;
          }
          return values;
        };
  let response: SwiftSubresponse;
  try {
    response = await ctx.swift.request('PUT', container, object, { headers: swiftHeaders, body: body.stream, footers });
  } catch (error) {
    throw body.failure() ?? error;
  }
  const failure = body.failure();
  if (failure !== undefined) {
    discard(response);
    throw failure;
  }
  discard(response);
  if (response.status === 422) throw S3Errors.badDigest();
  if (response.status !== 201) {
    if (response.status === 404) throw S3Errors.noSuchBucket(ctx.bucket ?? container);
    throw swiftFailure(response, { bucket: container, key: object });
  }
  const checksums: Partial<Record<string, string>> = {};
  for (const algorithm of body.checksumAlgorithms) checksums[algorithm] = body.check.results[algorithm];
  return { etag: unquoteEtag(response.headers.etag ?? body.check.md5Hex), checksums, lateStored, response };
}

export async function putObject(ctx: S3Context, bucket: string, key: string): Promise<S3Response> {
  checkKey(key);
  if (ctx.header('x-amz-copy-source') !== undefined) return copyObject(ctx, bucket, key);
  checkObjectCannedAcl(ctx.header('x-amz-acl'));
  checkStorageClass(ctx);
  const headers = objectHeadersFromRequest(ctx);
  checkSize(ctx, headers);
  const stored = await storeBody(ctx, bucket, key, headers);
  // Checksums known only at the end go with the PUT as footers; where a stage between made the
  // PUT itself (and never asked for them), a metadata POST keeps them (it must repeat every
  // POST-able header, as a Swift POST replaces them all).
  const late = Object.entries(stored.checksums).filter(
    ([algorithm]) => ctx.header(`x-amz-checksum-${algorithm}`) === undefined,
  );
  if (late.length > 0 && !stored.lateStored) {
    const postHeaders: Record<string, string> = { ...headers };
    for (const [algorithm, value] of late)
      if (value !== undefined) postHeaders[`${TRANSIENT_CHECKSUM}${algorithm}`] = value;
    discard(await ctx.swift.request('POST', bucket, key, { headers: postHeaders }));
  }
  const responseHeaders: Record<string, string> = { etag: quoteEtag(stored.etag) };
  for (const [algorithm, value] of Object.entries(stored.checksums))
    if (value !== undefined) responseHeaders[`x-amz-checksum-${algorithm}`] = value;
  return { status: 200, headers: responseHeaders };
}

/** `/bucket/key` or `bucket/key`, %-encoded, with an optional `?versionId=`. */
export function parseCopySource(value: string): { bucket: string; key: string } {
  const [pathPart = '', queryPart] = value.split('?', 2);
  if (queryPart !== undefined) {
    const versionId = new URLSearchParams(queryPart).get('versionId');
    if (versionId !== null && versionId !== 'null') throw S3Errors.notImplemented('Versioning is not implemented.');
  }
  const decoded = safeDecode(pathPart.startsWith('/') ? pathPart.slice(1) : pathPart);
  const slash = decoded.indexOf('/');
  if (slash <= 0 || slash === decoded.length - 1) {
    throw S3Errors.invalidArgument(
      'x-amz-copy-source',
      value,
      'Copy Source must mention the source bucket and key: sourcebucket/sourcekey',
    );
  }
  return { bucket: decoded.slice(0, slash), key: decoded.slice(slash + 1) };
}

/** Opens the copy source and checks the x-amz-copy-source-if-* conditions (412 on failure). */
export async function openCopySource(
  ctx: S3Context,
  rangeHeader?: string,
): Promise<{ source: OpenedObject; bucket: string; key: string }> {
  const { bucket, key } = parseCopySource(ctx.header('x-amz-copy-source') ?? '');
  const source = await openObject(ctx, bucket, key, rangeHeader, false);
  const condition = evaluateConditions(
    {
      ifMatch: ctx.header('x-amz-copy-source-if-match'),
      ifNoneMatch: ctx.header('x-amz-copy-source-if-none-match'),
      ifModifiedSince: ctx.header('x-amz-copy-source-if-modified-since'),
      ifUnmodifiedSince: ctx.header('x-amz-copy-source-if-unmodified-since'),
    },
    source.etag,
    source.lastModified,
  );
  if (condition !== undefined) {
    source.close();
    throw S3Errors.preconditionFailed('x-amz-copy-source-If');
  }
  return { source, bucket, key };
}

const COPIED_HEADERS = [
  'content-type',
  'content-disposition',
  'content-encoding',
  'content-language',
  'cache-control',
  'expires',
];

export async function copyObject(ctx: S3Context, bucket: string, key: string): Promise<S3Response> {
  checkObjectCannedAcl(ctx.header('x-amz-acl'));
  checkStorageClass(ctx);
  const directive = (ctx.header('x-amz-metadata-directive') ?? 'COPY').toUpperCase();
  if (directive !== 'COPY' && directive !== 'REPLACE') {
    throw S3Errors.invalidArgument('x-amz-metadata-directive', directive, 'Unknown metadata directive.');
  }
  const copySource = parseCopySource(ctx.header('x-amz-copy-source') ?? '');
  if (copySource.bucket === bucket && copySource.key === key && directive === 'COPY') {
    throw S3Errors.invalidRequest(
      "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
    );
  }
  const { source } = await openCopySource(ctx);
  if (source.size > MAX_OBJECT_SIZE) {
    source.close();
    throw S3Errors.entityTooLarge();
  }
  let headers: Record<string, string>;
  if (directive === 'REPLACE') {
    headers = objectHeadersFromRequest(ctx);
  } else {
    headers = {};
    for (const [name, value] of Object.entries(source.headers)) {
      if (COPIED_HEADERS.includes(name) || name.startsWith('x-object-meta-')) headers[name] = value;
      // The bytes are the same, so their checksums are too (not a multipart's composite ones).
      if (
        source.manifest === undefined &&
        (name.startsWith(`${SYSMETA}checksum-`) || name.startsWith(TRANSIENT_CHECKSUM))
      ) {
        headers[`${SYSMETA}checksum-${name.replace(/^.*checksum-/, '')}`] = value;
      }
    }
  }
  if (checkMetadata(headers, 'object') !== undefined) {
    source.close();
    throw S3Errors.metadataTooLarge();
  }
  headers['content-length'] = String(source.size);
  const response = await ctx.swift.request('PUT', bucket, key, { headers, body: source.stream() });
  discard(response);
  if (response.status !== 201) {
    if (response.status === 404) throw S3Errors.noSuchBucket(bucket);
    throw swiftFailure(response, { bucket, key });
  }
  const etag = unquoteEtag(response.headers.etag ?? '');
  const lastModifiedMs = Date.parse(response.headers['last-modified'] ?? '') || ctx.nowMs;
  return xmlResponse(
    xmlElement('CopyObjectResult', [
      xmlElement('LastModified', s3Date(lastModifiedMs)),
      xmlElement('ETag', quoteEtag(etag)),
    ]),
  );
}

const SLO_DELETE_REPLY_BYTES_MAX = 1024 * 1024;

/**
 * Whether a `DELETE ?multipart-manifest=delete` was answered by the SLO stage with every segment
 * and the manifest gone (its bulk-delete JSON says 200 OK, no errors); a plain object DELETE
 * (no SLO stage) answers 204 instead.
 */
async function deletedWithSegments(response: SwiftSubresponse): Promise<boolean> {
  if (response.status !== 200 || !(response.headers['content-type'] ?? '').startsWith('application/json')) return false;
  try {
    const reply = JSON.parse((await response.buffer(SLO_DELETE_REPLY_BYTES_MAX)).toString('utf8')) as {
      'Response Status'?: unknown;
      Errors?: unknown;
    };
    const status = reply['Response Status'];
    return (
      typeof status === 'string' && status.startsWith('200') && Array.isArray(reply.Errors) && reply.Errors.length === 0
    );
  } catch {
    return false;
  }
}

/** Deletes an object; a multipart object's segments go with it. Missing objects are not an error. */
export async function deleteObjectAndSegments(ctx: S3Context, bucket: string, key: string): Promise<void> {
  const head = await ctx.swift.request('HEAD', bucket, key, { query: { 'multipart-manifest': 'get' } });
  discard(head);
  if (head.status === 404) {
    const error = await notFoundError(ctx, bucket, key);
    if (error.code === 'NoSuchBucket') throw error;
    return;
  }
  if (head.status < 200 || head.status >= 300) throw swiftFailure(head, { bucket, key });
  let segments: ManifestSegment[] = [];
  if (isManifest(head.headers)) {
    const manifest = await ctx.swift.request('GET', bucket, key, { query: { 'multipart-manifest': 'get' } });
    if (manifest.status === 200) segments = parseManifest((await manifest.buffer(MANIFEST_BYTES_MAX)).toString('utf8'));
    else discard(manifest);
  }
  const response = await ctx.swift.request('DELETE', bucket, key, {
    query: { 'multipart-manifest': segments.length > 0 ? 'delete' : undefined },
    headers: segments.length > 0 ? { accept: 'application/json' } : {},
  });
  if (response.status !== 404 && (response.status < 200 || response.status >= 300)) {
    discard(response);
    throw swiftFailure(response, { bucket, key });
  }
  if (segments.length > 0 && (await deletedWithSegments(response))) return;
  discard(response);
  // No SLO stage took the manifest's segments (or it missed some): they go one by one.
  await forEachLimited(segments, SEGMENT_DELETE_CONCURRENCY, async (segment) => {
    const [container, object] = splitSegmentName(segment.name);
    discard(await ctx.swift.request('DELETE', container, object));
  });
}

export async function deleteObject(ctx: S3Context, bucket: string, key: string): Promise<S3Response> {
  if (ctx.query.has('versionId') && ctx.query.get('versionId') !== 'null')
    throw S3Errors.notImplemented('Versioning is not implemented.');
  await deleteObjectAndSegments(ctx, bucket, key);
  return { status: 204 };
}

/** GetObjectAcl: the object must exist; its grants are its bucket's that apply to objects. */
export async function getObjectAcl(ctx: S3Context, bucket: string, key: string): Promise<S3Response> {
  const head = await ctx.swift.request('HEAD', bucket, key, { query: { 'multipart-manifest': 'get' } });
  discard(head);
  if (head.status === 404) throw await notFoundError(ctx, bucket, key);
  if (head.status < 200 || head.status >= 300) throw swiftFailure(head, { bucket, key });
  return aclResponse(ctx, await readBucketAcl(ctx, bucket), true);
}
