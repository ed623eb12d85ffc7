/**
 * The per-request context every S3 operation receives, the response it returns, and the shared
 * translations between the two APIs: Swift statuses to S3 errors, x-amz-meta-* to X-Object-Meta-*,
 * S3 ETags and dates, Range parsing and the GET/HEAD conditionals (evaluated here, against the
 * S3 ETag, because a multipart object's S3 ETag is not the manifest's Swift ETag).
 */
import type { Readable } from 'node:stream';
import type { BodyUse, CheckedBody } from './body.js';
import { S3Error, S3Errors } from './errors.js';
import type { SwiftClient, SwiftSubresponse } from './swift-client.js';
import { xmlDocument, type XmlElementNode } from './xml.js';

export const SEGMENTS_SUFFIX = '+segments';
export const MAX_OBJECT_SIZE = 5 * 1024 * 1024 * 1024;
export const MIN_PART_SIZE = 5 * 1024 * 1024;
export const MAX_PARTS = 10_000;
export const SYSMETA = 'x-object-sysmeta-s3api-';
/** S3 shows buckets with no known creation time at this date, as Swift's s3api does. */
export const DEFAULT_CREATION_DATE = '2009-02-03T16:45:09.000Z';

export interface S3Owner {
  id: string;
  displayName: string;
}

export interface S3Context {
  method: string;
  bucket?: string;
  key?: string;
  query: Map<string, string>;
  header(name: string): string | undefined;
  /** All request headers, lower-case names. */
  headers: Readonly<Record<string, string | string[] | undefined>>;
  swift: SwiftClient;
  owner: S3Owner;
  requestId: string;
  /** The request body, decoded and checked while read. Call at most once. */
  body(use?: BodyUse): CheckedBody;
  nowMs: number;
  log: { warn(obj: object, msg: string): void; debug(obj: object, msg: string): void };
}

export interface S3Response {
  status: number;
  headers?: Record<string, string>;
  body?: string | Buffer | Readable | null;
}

export function xmlResponse(root: XmlElementNode, status = 200, headers: Record<string, string> = {}): S3Response {
  return { status, headers: { 'content-type': 'application/xml', ...headers }, body: xmlDocument(root) };
}

/** S3's ISO form with milliseconds and Z. */
export function s3Date(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * Swift listing `last_modified` (ISO without zone, microseconds) to S3's form: whole seconds,
 * rounded up as the object's Last-Modified header is, so a listing and a HEAD agree (`.000Z`, as
 * S3 and Swift's s3api list them).
 */
export function listingDate(value: string | undefined): string {
  const match = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?Z?$/.exec(value ?? '');
  if (match === null) return DEFAULT_CREATION_DATE;
  const wholeMs = Date.parse(`${match[1] ?? ''}Z`);
  if (Number.isNaN(wholeMs)) return DEFAULT_CREATION_DATE;
  return s3Date(wholeMs + (/[1-9]/.test(match[2] ?? '') ? 1000 : 0));
}

export function quoteEtag(etag: string): string {
  const bare = etag.replace(/^"|"$/g, '');
  return `"${bare}"`;
}

export function unquoteEtag(etag: string): string {
  return etag.trim().replace(/^W\//, '').replace(/^"|"$/g, '');
}

/** The S3 ETag of a Swift object response: the s3api sysmeta one for multipart objects. */
export function s3EtagOf(headers: Readonly<Record<string, string>>): string {
  return unquoteEtag(headers[`${SYSMETA}etag`] ?? headers.etag ?? '');
}

export function isManifest(headers: Readonly<Record<string, string>>): boolean {
  return (headers['x-static-large-object'] ?? '').toLowerCase() === 'true';
}

/** Maps a failed Swift response to S3's error for the resource the request named. */
export function swiftFailure(
  response: SwiftSubresponse,
  context: { bucket?: string; key?: string; uploadId?: string },
): S3Error {
  const status = response.status;
  switch (status) {
    case 401:
    case 403:
      return S3Errors.accessDenied();
    case 404:
      if (context.uploadId !== undefined) return S3Errors.noSuchUpload(context.uploadId);
      if (context.key !== undefined) return S3Errors.noSuchKey(context.key);
      return S3Errors.noSuchBucket(context.bucket ?? '');
    case 408:
    case 499:
      return S3Errors.requestTimeout();
    case 411:
      return S3Errors.missingContentLength();
    case 412:
      return S3Errors.preconditionFailed('If-Match');
    case 413:
      return S3Errors.entityTooLarge();
    case 416:
      return S3Errors.invalidRange();
    case 422:
      return S3Errors.badDigest();
    case 503:
    case 507:
      return S3Errors.serviceUnavailable();
    default:
      if (status >= 400 && status < 500)
        return new S3Error('InvalidRequest', 400, `Swift refused the request (${status}).`);
      return S3Errors.internalError();
  }
}

/** An object operation got 404: was it the key or the whole bucket? (s3api asks the container.) */
export async function notFoundError(ctx: S3Context, bucket: string, key: string): Promise<S3Error> {
  const head = await ctx.swift.request('HEAD', bucket, undefined);
  return head.status === 404 ? S3Errors.noSuchBucket(bucket) : S3Errors.noSuchKey(key);
}

const PASSTHROUGH_HEADERS = [
  'content-type',
  'content-disposition',
  'content-encoding',
  'content-language',
  'cache-control',
  'expires',
];

/** S3 request headers to the Swift headers of a PUT: user metadata and the standard headers. */
export function objectHeadersFromRequest(ctx: S3Context): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name of PASSTHROUGH_HEADERS) {
    let value = ctx.header(name);
    if (value === undefined) continue;
    if (name === 'content-encoding') {
      // aws-chunked is the transfer framing, not the object's encoding.
      value = value
        .split(',')
        .map((v) => v.trim())
        .filter((v) => v !== '' && v !== 'aws-chunked')
        .join(', ');
      if (value === '') continue;
    }
    headers[name] = value;
  }
  for (const [name, value] of Object.entries(ctx.headers)) {
    if (!name.startsWith('x-amz-meta-') || value === undefined) continue;
    headers[`x-object-meta-${name.slice('x-amz-meta-'.length)}`] = Array.isArray(value) ? value.join(',') : value;
  }
  return headers;
}

/** Swift object headers to S3 response headers: metadata, standard headers, ETag, dates. */
export function objectResponseHeaders(
  swiftHeaders: Readonly<Record<string, string>>,
  checksumMode: boolean,
): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name of PASSTHROUGH_HEADERS) {
    const value = swiftHeaders[name];
    if (value !== undefined) headers[name] = value;
  }
  for (const [name, value] of Object.entries(swiftHeaders)) {
    if (name.startsWith('x-object-meta-')) headers[`x-amz-meta-${name.slice('x-object-meta-'.length)}`] = value;
    if (checksumMode && name.startsWith(`${SYSMETA}checksum-`))
      headers[`x-amz-checksum-${name.slice(`${SYSMETA}checksum-`.length)}`] = value;
    if (checksumMode && name.startsWith('x-object-transient-sysmeta-s3api-checksum-')) {
      headers[`x-amz-checksum-${name.slice('x-object-transient-sysmeta-s3api-checksum-'.length)}`] = value;
    }
  }
  headers.etag = quoteEtag(s3EtagOf(swiftHeaders));
  if (swiftHeaders['last-modified'] !== undefined) headers['last-modified'] = swiftHeaders['last-modified'];
  headers['accept-ranges'] = 'bytes';
  return headers;
}

export interface ByteRange {
  start: number;
  /** Inclusive. */
  end: number;
}

/**
 * One `bytes=` range against an object of `size` bytes: undefined when absent or not one range
 * (S3 then serves the whole object), InvalidRange when unsatisfiable.
 */
export function parseRange(value: string | undefined, size: number): ByteRange | undefined {
  if (value === undefined) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(value.trim());
  if (match === null) return undefined;
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') return undefined;
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0) throw S3Errors.invalidRange();
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (last !== '' && Number(last) < start) return undefined;
  if (start >= size) throw S3Errors.invalidRange();
  return { start, end };
}

/** RFC 7232 evaluation of If-Match / If-None-Match / If-(Un)Modified-Since: a status or undefined. */
export function evaluateConditions(
  conditions: { ifMatch?: string; ifNoneMatch?: string; ifModifiedSince?: string; ifUnmodifiedSince?: string },
  etag: string,
  lastModified: string | undefined,
): 304 | 412 | undefined {
  const matches = (list: string): boolean =>
    list
      .split(',')
      .map((item) => item.trim())
      .some((item) => item === '*' || unquoteEtag(item) === etag);
  // Parsed only when a date condition needs it: most GETs carry none.
  const modifiedMs = (): number => (lastModified === undefined ? Number.NaN : Date.parse(lastModified));
  if (conditions.ifMatch !== undefined) {
    if (!matches(conditions.ifMatch)) return 412;
  } else if (conditions.ifUnmodifiedSince !== undefined) {
    const since = Date.parse(conditions.ifUnmodifiedSince);
    if (!Number.isNaN(since) && modifiedMs() > since) return 412;
  }
  if (conditions.ifNoneMatch !== undefined) {
    if (matches(conditions.ifNoneMatch)) return 304;
  } else if (conditions.ifModifiedSince !== undefined) {
    const since = Date.parse(conditions.ifModifiedSince);
    if (!Number.isNaN(since) && modifiedMs() <= since) return 304;
  }
  return undefined;
}

/** Container sysmeta keeping a bucket's canned ACL where Swift's container ACLs cannot say it. */
export const BUCKET_ACL_SYSMETA = 'x-container-sysmeta-s3api-acl';

/** The canned ACLs Nebula keeps for buckets (others are stored as the nearest of these). */
export type BucketCannedAcl = 'private' | 'public-read' | 'public-read-write' | 'authenticated-read';

/** A canned ACL as a bucket keeps it; undefined for a name S3 does not have. */
export function bucketCannedAcl(canned: string): BucketCannedAcl | undefined {
  switch (canned) {
    case 'private':
    case 'bucket-owner-read':
    case 'bucket-owner-full-control':
      return 'private';
    case 'public-read':
    case 'public-read-write':
    case 'authenticated-read':
      return canned;
    default:
      return undefined;
  }
}

/**
 * The container headers that store a bucket's canned ACL (an empty value removes a header).
 * Swift's ACLs hold what they can, so the Swift API sees the same access: public reads as
 * `.r:*,.rlistings`, and the users an S3 bucket can have besides its owner (the other users of
 * its account: each S3 user's buckets are its own account's containers) as the tempauth account
 * name, `tempauthAccount`. Anonymous writes have no Swift form (tempauth takes a referrer in a
 * write ACL as an anonymous write grant, which would open the Swift API as well), so the canned
 * name is kept as sysmeta and only the S3 layer lets an anonymous write through (middleware.ts).
 */
export function bucketAclHeaders(canned: BucketCannedAcl, tempauthAccount: string): Record<string, string> {
  const read = { 'public-read': '.r:*,.rlistings', 'public-read-write': '.r:*,.rlistings' } as const;
  return {
    'x-container-read': canned === 'authenticated-read' ? tempauthAccount : (read[canned as keyof typeof read] ?? ''),
    'x-container-write': canned === 'public-read-write' ? tempauthAccount : '',
    [BUCKET_ACL_SYSMETA]: canned === 'public-read-write' || canned === 'authenticated-read' ? canned : '',
  };
}

/**
 * An object's canned ACL (PutObject, CreateMultipartUpload, PutObjectAcl): Swift has no object
 * ACLs, so only private, what every object has, is accepted; an object is as readable as its
 * bucket.
 */
export function checkObjectCannedAcl(canned: string | undefined): void {
  if (canned === undefined) return;
  const kept = bucketCannedAcl(canned);
  if (kept === undefined) throw S3Errors.invalidArgument('x-amz-acl', canned, 'The canned ACL is not valid.');
  if (kept !== 'private') {
    throw S3Errors.notImplemented('Object ACLs other than private are not implemented; set the ACL on the bucket.');
  }
}

/** The tempauth account of the requester (`test` for `test:tester`): the group of its account's users. */
export function tempauthAccountOf(ctx: S3Context): string {
  const id = ctx.owner.id;
  return id.includes(':') ? id.slice(0, id.indexOf(':')) : id;
}

/** The items of a Swift container ACL header (`.r:*,.rlistings` -> ['.r:*', '.rlistings']). */
function aclItems(value: string | string[] | undefined): string[] {
  return (typeof value === 'string' ? value : '')
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

/**
 * A bucket's canned ACL from its container's headers (buckets made through Swift have no sysmeta).
 * The sysmeta counts only while the Swift ACLs it was stored with are still there: a Swift API
 * POST that clears X-Container-Write (or opens X-Container-Read) changes what S3 allows as well,
 * as the owner would expect; it cannot clear the sysmeta itself.
 */
export function bucketAclOf(headers: Readonly<Record<string, string | string[] | undefined>>): BucketCannedAcl {
  const stored = headers[BUCKET_ACL_SYSMETA];
  const readItems = aclItems(headers['x-container-read']);
  const publicRead = readItems.includes('.r:*');
  if (stored === 'public-read-write' && publicRead && aclItems(headers['x-container-write']).length > 0) return stored;
  if (stored === 'authenticated-read' && !publicRead && readItems.length > 0) return stored;
  return publicRead ? 'public-read' : 'private';
}
