/**
 * Service and bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket,
 * GetBucketLocation, ListObjects (v1 and v2), DeleteObjects, and the configuration subresources
 * a bucket does not have (answered as S3 answers an unconfigured bucket); ACLs are in acl.ts.
 * Buckets are Swift containers of the user's account.
 */
import { readSmallBody } from './body.js';
import {
  bucketAclHeaders,
  bucketCannedAcl,
  DEFAULT_CREATION_DATE,
  listingDate,
  quoteEtag,
  SEGMENTS_SUFFIX,
  swiftFailure,
  tempauthAccountOf,
  xmlResponse,
  type S3Context,
  type S3Response,
} from './context.js';
import { S3Errors } from './errors.js';
import { deleteObjectAndSegments } from './object.js';
import { isValidBucketName } from './s3-request.js';
import { discard } from './swift-client.js';
import { childElements, childText, parseXml, xmlElement, type XmlElementNode, XmlParseError } from './xml.js';

const LISTING_PAGE = 10_000;
const LISTING_PAGES_MAX = 100;
const MAX_KEYS_LIMIT = 1000;
const DELETE_OBJECTS_MAX = 1000;
const DELETE_CONCURRENCY = 4;

interface SwiftListingRow {
  name?: string;
  subdir?: string;
  bytes?: number;
  hash?: string;
  last_modified?: string;
  content_type?: string;
  count?: number;
}

export function ownerElement(ctx: S3Context): XmlElementNode {
  return xmlElement('Owner', [xmlElement('ID', ctx.owner.id), xmlElement('DisplayName', ctx.owner.displayName)]);
}

export async function listBuckets(ctx: S3Context): Promise<S3Response> {
  const buckets: XmlElementNode[] = [];
  let marker = '';
  for (let page = 0; page < LISTING_PAGES_MAX; page += 1) {
    const listing = await ctx.swift.json<SwiftListingRow[]>('GET', undefined, undefined, {
      query: { format: 'json', limit: String(LISTING_PAGE), marker: marker === '' ? undefined : marker },
    });
    if (listing.status === 404) break; // an account with nothing in it yet
    if (listing.value === undefined) {
      if (listing.status === 204) break;
      throw S3Errors.accessDenied();
    }
    for (const row of listing.value) {
      if (row.name === undefined) continue;
      marker = row.name;
      // Segment containers and names S3 cannot address are not buckets.
      if (row.name.endsWith(SEGMENTS_SUFFIX) || !isValidBucketName(row.name)) continue;
      buckets.push(
        xmlElement('Bucket', [
          xmlElement('Name', row.name),
          xmlElement('CreationDate', listingDate(row.last_modified)),
        ]),
      );
    }
    if (listing.value.length < LISTING_PAGE) break;
  }
  return xmlResponse(xmlElement('ListAllMyBucketsResult', [ownerElement(ctx), xmlElement('Buckets', buckets)]));
}

async function readXmlBody(ctx: S3Context, maxBytes = 1_048_576): Promise<XmlElementNode | undefined> {
  const body = await readSmallBody(ctx.body(), maxBytes);
  if (body.length === 0) return undefined;
  try {
    return parseXml(body.toString('utf8'), maxBytes);
  } catch (error) {
    if (error instanceof XmlParseError) throw S3Errors.malformedXml();
    throw error;
  }
}

export { readXmlBody };

export async function createBucket(ctx: S3Context, bucket: string): Promise<S3Response> {
  if (!isValidBucketName(bucket)) throw S3Errors.invalidBucketName(bucket);
  let headers: Record<string, string> = {};
  const canned = ctx.header('x-amz-acl');
  if (canned !== undefined) {
    const kept = bucketCannedAcl(canned);
    if (kept === undefined) throw S3Errors.invalidArgument('x-amz-acl', canned, 'The canned ACL is not supported.');
    // A new container has no ACL to remove: only the headers that grant something.
    headers = Object.fromEntries(
      Object.entries(bucketAclHeaders(kept, tempauthAccountOf(ctx))).filter(([, value]) => value !== ''),
    );
  }
  for (const name of Object.keys(ctx.headers)) {
    if (name.startsWith('x-amz-grant-'))
      throw S3Errors.notImplemented('Grant headers are not supported; use a canned ACL.');
  }
  const config = await readXmlBody(ctx);
  if (config !== undefined && config.name !== 'CreateBucketConfiguration') throw S3Errors.malformedXml();
  const response = await ctx.swift.request('PUT', bucket, undefined, { headers });
  discard(response);
  if (response.status === 202) throw S3Errors.bucketAlreadyOwnedByYou(bucket);
  if (response.status !== 201) throw swiftFailure(response, { bucket });
  return { status: 200, headers: { location: `/${bucket}` } };
}

export async function headBucket(ctx: S3Context, bucket: string): Promise<S3Response> {
  const response = await ctx.swift.request('HEAD', bucket, undefined);
  discard(response);
  if (response.status < 200 || response.status >= 300) throw swiftFailure(response, { bucket });
  return { status: 200, headers: { 'x-amz-bucket-region': 'us-east-1' } };
}

export async function deleteBucket(ctx: S3Context, bucket: string): Promise<S3Response> {
  const response = await ctx.swift.request('DELETE', bucket, undefined);
  discard(response);
  if (response.status === 409) throw S3Errors.bucketNotEmpty(bucket);
  if (response.status < 200 || response.status >= 300) throw swiftFailure(response, { bucket });
  // Leftover parts of uploads never completed go with the bucket, as in S3.
  await emptyAndDeleteContainer(ctx, `${bucket}${SEGMENTS_SUFFIX}`);
  return { status: 204 };
}

async function emptyAndDeleteContainer(ctx: S3Context, container: string): Promise<void> {
  for (let page = 0; page < LISTING_PAGES_MAX; page += 1) {
    const listing = await ctx.swift.json<SwiftListingRow[]>('GET', container, undefined, {
      query: { format: 'json', limit: String(LISTING_PAGE) },
    });
    const rows = listing.value ?? [];
    if (rows.length === 0) break;
    await forEachLimited(rows, DELETE_CONCURRENCY, async (row) => {
      if (row.name === undefined) return;
      discard(await ctx.swift.request('DELETE', container, row.name));
    });
  }
  discard(await ctx.swift.request('DELETE', container, undefined));
}

/** Runs `work` over `items`, at most `limit` at a time. */
export async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  work: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next;
      next += 1;
      await work(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export async function getBucketLocation(ctx: S3Context, bucket: string): Promise<S3Response> {
  await headBucket(ctx, bucket);
  // us-east-1 is the empty LocationConstraint, which every client maps back to us-east-1.
  return xmlResponse(xmlElement('LocationConstraint', ''));
}

function encodeKey(value: string, url: boolean): string {
  return url ? encodeURIComponent(value).replace(/%2F/g, '/') : value;
}

/** The S3 ETag of a listing row: s3api appends `; s3_etag=<etag>` to a multipart object's hash. */
function listingEtag(hash: string | undefined): string {
  const match = /;\s*s3_etag=([^;\s]+)/.exec(hash ?? '');
  return quoteEtag(match?.[1] ?? (hash ?? '').split(';')[0] ?? '');
}

export async function listObjects(ctx: S3Context, bucket: string): Promise<S3Response> {
  const v2 = ctx.query.get('list-type') === '2';
  const prefix = ctx.query.get('prefix') ?? '';
  const delimiter = ctx.query.get('delimiter') ?? '';
  const encodingType = ctx.query.get('encoding-type');
  if (encodingType !== undefined && encodingType !== 'url') {
    throw S3Errors.invalidArgument('encoding-type', encodingType, 'Invalid Encoding Method specified in Request');
  }
  const url = encodingType === 'url';
  const maxKeysText = ctx.query.get('max-keys') ?? '1000';
  const maxKeysValue = Number(maxKeysText);
  if (!Number.isInteger(maxKeysValue) || maxKeysValue < 0) {
    throw S3Errors.invalidArgument('max-keys', maxKeysText, 'Provided max-keys not an integer or within integer range');
  }
  const maxKeys = Math.min(maxKeysValue, MAX_KEYS_LIMIT);
  let marker: string;
  const continuationToken = ctx.query.get('continuation-token');
  const startAfter = ctx.query.get('start-after');
  if (v2) {
    if (continuationToken !== undefined) {
      marker = Buffer.from(continuationToken, 'base64url').toString('utf8');
      if (continuationToken === '')
        throw S3Errors.invalidArgument('continuation-token', '', 'The continuation token provided is incorrect');
    } else {
      marker = startAfter ?? '';
    }
  } else {
    marker = ctx.query.get('marker') ?? '';
  }
  const fetchOwner = !v2 || ctx.query.get('fetch-owner') === 'true';

  let rows: SwiftListingRow[] = [];
  if (maxKeys > 0) {
    const listing = await ctx.swift.json<SwiftListingRow[]>('GET', bucket, undefined, {
      query: {
        format: 'json',
        limit: String(maxKeys + 1),
        prefix: prefix === '' ? undefined : prefix,
        delimiter: delimiter === '' ? undefined : delimiter,
        marker: marker === '' ? undefined : marker,
      },
    });
    if (listing.status < 200 || listing.status >= 300) {
      throw swiftFailure(
        {
          status: listing.status,
          headers: listing.headers,
          body: null,
          buffer: () => Promise.resolve(Buffer.alloc(0)),
        },
        { bucket },
      );
    }
    rows = listing.value ?? [];
  } else {
    await headBucket(ctx, bucket);
  }
  const truncated = rows.length > maxKeys;
  const shown = rows.slice(0, maxKeys);
  const contents: XmlElementNode[] = [];
  const prefixes: XmlElementNode[] = [];
  for (const row of shown) {
    if (row.subdir !== undefined) {
      prefixes.push(xmlElement('CommonPrefixes', [xmlElement('Prefix', encodeKey(row.subdir, url))]));
      continue;
    }
    if (row.name === undefined) continue;
    contents.push(
      xmlElement('Contents', [
        xmlElement('Key', encodeKey(row.name, url)),
        xmlElement('LastModified', listingDate(row.last_modified)),
        xmlElement('ETag', listingEtag(row.hash)),
        xmlElement('Size', row.bytes ?? 0),
        fetchOwner ? ownerElement(ctx) : undefined,
        xmlElement('StorageClass', 'STANDARD'),
      ]),
    );
  }
  const last = shown[shown.length - 1];
  const lastName = last === undefined ? '' : (last.subdir ?? last.name ?? '');
  const children: (XmlElementNode | undefined)[] = [
    xmlElement('Name', bucket),
    xmlElement('Prefix', encodeKey(prefix, url)),
  ];
  if (v2) {
    if (startAfter !== undefined) children.push(xmlElement('StartAfter', encodeKey(startAfter, url)));
    if (continuationToken !== undefined) children.push(xmlElement('ContinuationToken', continuationToken));
    if (truncated) children.push(xmlElement('NextContinuationToken', Buffer.from(lastName).toString('base64url')));
    children.push(xmlElement('KeyCount', shown.length));
  } else {
    children.push(xmlElement('Marker', encodeKey(marker, url)));
    if (truncated) children.push(xmlElement('NextMarker', encodeKey(lastName, url)));
  }
  children.push(xmlElement('MaxKeys', maxKeys));
  if (delimiter !== '') children.push(xmlElement('Delimiter', encodeKey(delimiter, url)));
  if (url) children.push(xmlElement('EncodingType', 'url'));
  children.push(xmlElement('IsTruncated', truncated ? 'true' : 'false'));
  return xmlResponse(xmlElement('ListBucketResult', [...children, ...contents, ...prefixes]));
}

export async function deleteObjects(ctx: S3Context, bucket: string): Promise<S3Response> {
  const document = await readXmlBody(ctx, 2 * 1024 * 1024);
  if (document?.name !== 'Delete') throw S3Errors.malformedXml();
  const quiet = (childText(document, 'Quiet') ?? 'false').trim().toLowerCase() === 'true';
  const objects = childElements(document, 'Object');
  if (objects.length === 0 || objects.length > DELETE_OBJECTS_MAX) throw S3Errors.malformedXml();
  const keys = objects.map((object) => {
    const key = childText(object, 'Key');
    if (key === undefined) throw S3Errors.malformedXml();
    return { key, versionId: childText(object, 'VersionId') };
  });
  const head = await ctx.swift.request('HEAD', bucket, undefined);
  discard(head);
  if (head.status < 200 || head.status >= 300) throw swiftFailure(head, { bucket });
  const results: (XmlElementNode | undefined)[] = new Array<XmlElementNode | undefined>(keys.length);
  await forEachLimited(keys, DELETE_CONCURRENCY, async ({ key, versionId }, index) => {
    if (versionId !== undefined && versionId !== 'null') {
      results[index] = xmlElement('Error', [
        xmlElement('Key', key),
        xmlElement('Code', 'NoSuchVersion'),
        xmlElement('Message', 'The specified version does not exist.'),
      ]);
      return;
    }
    try {
      await deleteObjectAndSegments(ctx, bucket, key);
      results[index] = quiet ? undefined : xmlElement('Deleted', [xmlElement('Key', key)]);
    } catch (error) {
      const code = (error as { code?: string }).code ?? 'InternalError';
      const message = error instanceof Error ? error.message : 'We encountered an internal error.';
      results[index] = xmlElement('Error', [
        xmlElement('Key', key),
        xmlElement('Code', code),
        xmlElement('Message', message),
      ]);
    }
  });
  return xmlResponse(xmlElement('DeleteResult', results));
}

/** Bucket configuration S3 keeps and Swift has no counterpart for: answered as "not configured". */
export async function bucketSubresource(ctx: S3Context, bucket: string, name: string): Promise<S3Response> {
  if (ctx.method !== 'GET') throw S3Errors.notImplemented(`The ${name} subresource is not implemented.`);
  await headBucket(ctx, bucket);
  switch (name) {
    case 'versioning':
      return xmlResponse(xmlElement('VersioningConfiguration', ''));
    case 'tagging':
      throw S3Errors.noSuchTagSet();
    case 'policy':
      throw S3Errors.noSuchBucketPolicy(bucket);
    case 'lifecycle':
      throw S3Errors.noSuchLifecycleConfiguration();
    case 'cors':
      throw S3Errors.noSuchCORSConfiguration();
    case 'logging':
      return xmlResponse(xmlElement('BucketLoggingStatus', ''));
    default:
      throw S3Errors.notImplemented(`The ${name} subresource is not implemented.`);
  }
}

export { DEFAULT_CREATION_DATE };
