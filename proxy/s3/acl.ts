/**
 * Bucket and object ACLs as S3's canned ACLs, kept on the bucket's container (context.ts
 * bucketAclHeaders): GetBucketAcl and GetObjectAcl answer the grants back, PutBucketAcl takes
 * a canned ACL (x-amz-acl) or the same grants as an AccessControlPolicy document. Objects have
 * no ACL of their own (Swift has none): an object's grants are its bucket's that apply to
 * objects (READ), and PutObjectAcl accepts only private, which is what every object has.
 */
import { ownerElement, readXmlBody } from './bucket.js';
import {
  bucketAclHeaders,
  bucketAclOf,
  bucketCannedAcl,
  swiftFailure,
  tempauthAccountOf,
  xmlResponse,
  type BucketCannedAcl,
  type S3Context,
  type S3Response,
} from './context.js';
import { S3Errors } from './errors.js';
import { discard } from './swift-client.js';
import { childElements, childText, xmlElement } from './xml.js';

const ALL_USERS = 'http://acs.amazonaws.com/groups/global/AllUsers';
const AUTHENTICATED_USERS = 'http://acs.amazonaws.com/groups/global/AuthenticatedUsers';

type GroupGrant = readonly [uri: string, permission: 'READ' | 'WRITE'];

/** The group grants of each canned ACL, besides the owner's FULL_CONTROL (as S3 lists them). */
const CANNED_GRANTS: Readonly<Record<BucketCannedAcl, readonly GroupGrant[]>> = {
  private: [],
  'public-read': [[ALL_USERS, 'READ']],
  'public-read-write': [
    [ALL_USERS, 'READ'],
    [ALL_USERS, 'WRITE'],
  ],
  'authenticated-read': [[AUTHENTICATED_USERS, 'READ']],
};

/** The AccessControlPolicy of a bucket (or, with `forObject`, of an object in it). */
export function aclResponse(ctx: S3Context, canned: BucketCannedAcl, forObject = false): S3Response {
  const xsi = { 'xmlns:xsi': 'http://www.w3.org/2001/XMLSchema-instance' };
  const grants = [
    xmlElement('Grant', [
      xmlElement('Grantee', [xmlElement('ID', ctx.owner.id), xmlElement('DisplayName', ctx.owner.displayName)], {
        ...xsi,
        'xsi:type': 'CanonicalUser',
      }),
      xmlElement('Permission', 'FULL_CONTROL'),
    ]),
  ];
  // WRITE on a bucket lets its grantee write objects; an object itself has no WRITE grant.
  for (const [uri, permission] of CANNED_GRANTS[canned]) {
    if (forObject && permission !== 'READ') continue;
    grants.push(
      xmlElement('Grant', [
        xmlElement('Grantee', [xmlElement('URI', uri)], { ...xsi, 'xsi:type': 'Group' }),
        xmlElement('Permission', permission),
      ]),
    );
  }
  return xmlResponse(xmlElement('AccessControlPolicy', [ownerElement(ctx), xmlElement('AccessControlList', grants)]));
}

/**
 * The canned ACL of a bucket, from a HEAD of its container, with the container's ACL headers
 * (which the Swift API shows only to owners) whoever was allowed to make that HEAD.
 */
export async function readBucketAcl(ctx: S3Context, bucket: string): Promise<BucketCannedAcl> {
  const response = await ctx.swift.request('HEAD', bucket, undefined, { asOwner: true });
  discard(response);
  if (response.status < 200 || response.status >= 300) throw swiftFailure(response, { bucket });
  return bucketAclOf(response.headers);
}

export async function getBucketAcl(ctx: S3Context, bucket: string): Promise<S3Response> {
  return aclResponse(ctx, await readBucketAcl(ctx, bucket));
}

/**
 * The canned ACL a PutBucketAcl/PutObjectAcl asks for: the x-amz-acl header, or the canned ACL
 * whose grants the AccessControlPolicy document lists (the owner's own grant aside).
 */
export async function requestedCannedAcl(ctx: S3Context): Promise<string> {
  const canned = ctx.header('x-amz-acl');
  if (canned !== undefined) return canned;
  const policy = await readXmlBody(ctx);
  if (policy === undefined) throw S3Errors.malformedXml();
  if (policy.name !== 'AccessControlPolicy') throw S3Errors.malformedXml();
  const list = policy.children.find((child) => child.name === 'AccessControlList');
  const asked = new Set<string>();
  for (const grant of list === undefined ? [] : childElements(list, 'Grant')) {
    const grantee = grant.children.find((child) => child.name === 'Grantee');
    const uri = grantee === undefined ? undefined : childText(grantee, 'URI');
    if (uri !== undefined) asked.add(`${uri} ${childText(grant, 'Permission') ?? ''}`);
  }
  for (const [name, grants] of Object.entries(CANNED_GRANTS)) {
    const same = grants.length === asked.size && grants.every(([uri, permission]) => asked.has(`${uri} ${permission}`));
    if (same) return name;
  }
  throw S3Errors.notImplemented(
    'Only the grants of a canned ACL (private, public-read, public-read-write, authenticated-read) are supported.',
  );
}

export async function putBucketAcl(ctx: S3Context, bucket: string): Promise<S3Response> {
  const canned = await requestedCannedAcl(ctx);
  const kept = bucketCannedAcl(canned);
  if (kept === undefined) throw S3Errors.invalidArgument('x-amz-acl', canned, 'The canned ACL is not supported.');
  const headers = bucketAclHeaders(kept, tempauthAccountOf(ctx));
  const response = await ctx.swift.request('POST', bucket, undefined, { headers });
  discard(response);
  if (response.status < 200 || response.status >= 300) throw swiftFailure(response, { bucket });
  return { status: 200 };
}
