/**
 * Which S3 operation a request is: by bucket/key presence, method and subresource, as S3
 * dispatches them. Anything S3 has that Nebula does not answers NotImplemented (or, for a
 * bucket's optional configuration, what S3 answers for an unconfigured bucket).
 */
import { getBucketAcl, putBucketAcl, requestedCannedAcl } from './acl.js';
import {
  bucketSubresource,
  createBucket,
  deleteBucket,
  deleteObjects,
  getBucketLocation,
  headBucket,
  listBuckets,
  listObjects,
} from './bucket.js';
import { checkObjectCannedAcl, xmlResponse, type S3Context, type S3Response } from './context.js';
import { S3Errors } from './errors.js';
import {
  abortMultipartUpload,
  completeMultipartUpload,
  createMultipartUpload,
  listMultipartUploads,
  listParts,
  uploadPart,
} from './multipart.js';
import { deleteObject, getObject, getObjectAcl, openObject, putObject } from './object.js';
import { xmlElement } from './xml.js';

const BUCKET_SUBRESOURCES = [
  'versioning',
  'tagging',
  'policy',
  'policyStatus',
  'lifecycle',
  'cors',
  'logging',
  'website',
  'notification',
  'replication',
  'encryption',
  'object-lock',
  'accelerate',
  'requestPayment',
  'ownershipControls',
  'publicAccessBlock',
  'analytics',
  'metrics',
  'inventory',
  'intelligent-tiering',
];

const OBJECT_SUBRESOURCES = ['retention', 'legal-hold', 'torrent', 'restore', 'select', 'attributes', 'renameObject'];

/**
 * Whether a read is covered by the READ grant a public-read bucket gives everyone: listing the
 * bucket (its objects or multipart uploads), HEAD of the bucket, and reading objects. ACLs, the
 * location, configuration subresources and object subresources (tagging, parts, ...) need the
 * owner's rights in S3, so an anonymous request for them is AccessDenied.
 */
export function isReadableByAnyone(key: string | undefined, query: ReadonlyMap<string, string>): boolean {
  const ownerOnly =
    key === undefined
      ? ['acl', 'location', 'versions', ...BUCKET_SUBRESOURCES]
      : ['acl', 'tagging', 'uploadId', ...OBJECT_SUBRESOURCES];
  return !ownerOnly.some((name) => query.has(name));
}

/**
 * Whether a write is covered by the WRITE grant a public-read-write bucket gives everyone: object
 * PUT and DELETE and the multipart upload calls. ACL and tagging changes stay the owner's.
 */
export function isWritableByAnyone(
  method: string,
  key: string | undefined,
  query: ReadonlyMap<string, string>,
): boolean {
  if (key === undefined) return false;
  if (['acl', 'tagging', ...OBJECT_SUBRESOURCES].some((name) => query.has(name))) return false;
  if (method === 'PUT' || method === 'DELETE') return true;
  return method === 'POST' && (query.has('uploads') || query.has('uploadId'));
}

function notAllowed(ctx: S3Context, resource: string): never {
  throw S3Errors.methodNotAllowed(ctx.method, resource);
}

export async function routeS3(ctx: S3Context): Promise<S3Response> {
  const { bucket, key, method, query } = ctx;
  if (bucket === undefined) {
    if (method === 'GET') return listBuckets(ctx);
    notAllowed(ctx, 'SERVICE');
  }
  if (key === undefined) {
    if (query.has('acl')) {
      if (method === 'GET') return getBucketAcl(ctx, bucket);
      if (method === 'PUT') return putBucketAcl(ctx, bucket);
      notAllowed(ctx, 'ACL');
    }
    if (query.has('uploads')) {
      if (method === 'GET') return listMultipartUploads(ctx, bucket);
      notAllowed(ctx, 'BUCKET');
    }
    if (query.has('delete')) {
      if (method === 'POST') return deleteObjects(ctx, bucket);
      notAllowed(ctx, 'BUCKET');
    }
    if (query.has('location')) {
      if (method === 'GET') return getBucketLocation(ctx, bucket);
      notAllowed(ctx, 'BUCKET');
    }
    if (query.has('versions')) throw S3Errors.notImplemented('Listing object versions is not implemented.');
    for (const name of BUCKET_SUBRESOURCES) if (query.has(name)) return bucketSubresource(ctx, bucket, name);
    switch (method) {
      case 'GET':
        return listObjects(ctx, bucket);
      case 'HEAD':
        return headBucket(ctx, bucket);
      case 'PUT':
        return createBucket(ctx, bucket);
      case 'DELETE':
        return deleteBucket(ctx, bucket);
      case 'POST':
        throw S3Errors.notImplemented('POST object (browser form upload) is not implemented.');
      default:
        notAllowed(ctx, 'BUCKET');
    }
  }
  const uploadId = query.get('uploadId');
  if (uploadId !== undefined) {
    switch (method) {
      case 'PUT':
        return uploadPart(ctx, bucket, key, uploadId);
      case 'POST':
        return completeMultipartUpload(ctx, bucket, key, uploadId);
      case 'DELETE':
        return abortMultipartUpload(ctx, bucket, key, uploadId);
      case 'GET':
        return listParts(ctx, bucket, key, uploadId);
      default:
        notAllowed(ctx, 'UPLOAD');
    }
  }
  if (query.has('uploads')) {
    if (method === 'POST') return createMultipartUpload(ctx, bucket, key);
    notAllowed(ctx, 'OBJECT');
  }
  if (query.has('acl')) {
    if (method === 'GET') return getObjectAcl(ctx, bucket, key);
    if (method === 'PUT') {
      checkObjectCannedAcl(await requestedCannedAcl(ctx));
      await openObject(ctx, bucket, key, undefined, true);
      return { status: 200 };
    }
    notAllowed(ctx, 'ACL');
  }
  if (query.has('tagging')) {
    if (method !== 'GET') throw S3Errors.notImplemented('Object tagging is not implemented.');
    await openObject(ctx, bucket, key, undefined, true);
    return xmlResponse(xmlElement('Tagging', [xmlElement('TagSet', [])]));
  }
  for (const name of OBJECT_SUBRESOURCES) {
    if (query.has(name)) throw S3Errors.notImplemented(`The ${name} subresource is not implemented.`);
  }
  switch (method) {
    case 'GET':
      return getObject(ctx, bucket, key, false);
    case 'HEAD':
      return getObject(ctx, bucket, key, true);
    case 'PUT':
      return putObject(ctx, bucket, key);
    case 'DELETE':
      return deleteObject(ctx, bucket, key);
    default:
      notAllowed(ctx, 'OBJECT');
  }
}
