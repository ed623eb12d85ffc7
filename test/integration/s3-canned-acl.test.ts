/**
 * S3 canned ACLs beyond private and public-read, with @aws-sdk/client-s3 as users run it:
 * public-read-write lets anonymous clients write, read and delete objects through S3 (and only
 * through S3: the Swift API stays closed to anonymous writes), authenticated-read lets the
 * account's other users (test:tester3, no admin) read but not write, and anonymous users
 * nothing; GetBucketAcl and GetObjectAcl answer the grants back, and PutBucketAcl takes the
 * same grants as an AccessControlPolicy document.
 */
import anyTest, { type TestFn } from 'ava';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetBucketAclCommand,
  GetObjectAclCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutBucketAclCommand,
  PutObjectCommand,
  type Grant,
  type S3Client,
} from '@aws-sdk/client-s3';
import { ACCESS_KEY, startS3Cluster, type S3TestCluster } from './s3-cluster.js';

const test = anyTest.serial as TestFn<{ s3: S3TestCluster }>;
const ALL_USERS = 'http://acs.amazonaws.com/groups/global/AllUsers';
const AUTHENTICATED_USERS = 'http://acs.amazonaws.com/groups/global/AuthenticatedUsers';

test.before(async (t) => {
  t.context = { s3: await startS3Cluster() };
});

test.after.always(async (t) => {
  await t.context.s3?.stop();
});

/** The grants as `<grantee> <permission>` strings, sorted. */
function grantsOf(grants: Grant[] | undefined): string[] {
  return (grants ?? [])
    .map((grant) => `${grant.Grantee?.URI ?? grant.Grantee?.ID ?? '?'} ${grant.Permission ?? '?'}`)
    .sort();
}

/** The S3 error code a call fails with (undefined when it succeeds). */
async function errorCode(call: Promise<unknown>): Promise<string | undefined> {
  try {
    await call;
    return undefined;
  } catch (error) {
    return (error as { Code?: string; name?: string }).Code ?? (error as { name?: string }).name;
  }
}

async function text(client: S3Client, bucket: string, key: string): Promise<string> {
  const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return (await got.Body?.transformToString()) ?? '';
}

test('public-read-write: anonymous clients write, read, list and delete objects through S3', async (t) => {
  const { s3 } = t.context;
  const owner = s3.client();
  const anonymous = s3.client({ anonymous: true });
  await owner.send(new CreateBucketCommand({ Bucket: 'drop-box', ACL: 'public-read-write' }));

  await anonymous.send(new PutObjectCommand({ Bucket: 'drop-box', Key: 'from-anyone.txt', Body: 'hello' }));
  t.is(await text(owner, 'drop-box', 'from-anyone.txt'), 'hello', 'the owner reads what an anonymous client wrote');
  t.is(await text(anonymous, 'drop-box', 'from-anyone.txt'), 'hello');
  const listed = await anonymous.send(new ListObjectsV2Command({ Bucket: 'drop-box' }));
  t.deepEqual(
    listed.Contents?.map((row) => row.Key),
    ['from-anyone.txt'],
  );
  const acl = await owner.send(new GetBucketAclCommand({ Bucket: 'drop-box' }));
  t.deepEqual(grantsOf(acl.Grants), [`${ALL_USERS} READ`, `${ALL_USERS} WRITE`, `${ACCESS_KEY} FULL_CONTROL`]);
  const objectAcl = await owner.send(new GetObjectAclCommand({ Bucket: 'drop-box', Key: 'from-anyone.txt' }));
  t.deepEqual(grantsOf(objectAcl.Grants), [`${ALL_USERS} READ`, `${ACCESS_KEY} FULL_CONTROL`], 'objects have no WRITE');

  // The bucket's ACL stays its owner's, and the Swift API takes no anonymous write.
  t.is(
    await errorCode(anonymous.send(new PutBucketAclCommand({ Bucket: 'drop-box', ACL: 'private' }))),
    'AccessDenied',
  );
  t.is(await errorCode(anonymous.send(new GetBucketAclCommand({ Bucket: 'drop-box' }))), 'AccessDenied');
  const { storageUrl } = await s3.cluster.auth();
  const viaSwift = await fetch(`${storageUrl}/drop-box/by-swift.txt`, {
    method: 'PUT',
    body: 'no',
    signal: AbortSignal.timeout(10_000),
  });
  t.is(viaSwift.status, 401);

  await anonymous.send(new DeleteObjectCommand({ Bucket: 'drop-box', Key: 'from-anyone.txt' }));
  t.is(await errorCode(owner.send(new GetObjectCommand({ Bucket: 'drop-box', Key: 'from-anyone.txt' }))), 'NoSuchKey');

  // Back to private: anonymous writes are refused again.
  await owner.send(new PutBucketAclCommand({ Bucket: 'drop-box', ACL: 'private' }));
  t.is(
    await errorCode(anonymous.send(new PutObjectCommand({ Bucket: 'drop-box', Key: 'late.txt', Body: 'x' }))),
    'AccessDenied',
  );
  t.deepEqual(grantsOf((await owner.send(new GetBucketAclCommand({ Bucket: 'drop-box' }))).Grants), [
    `${ACCESS_KEY} FULL_CONTROL`,
  ]);
});

test('a Swift API change of the container ACLs changes what the S3 ACL allows', async (t) => {
  const { s3 } = t.context;
  const owner = s3.client();
  const anonymous = s3.client({ anonymous: true });
  await owner.send(new CreateBucketCommand({ Bucket: 'shared-drop', ACL: 'public-read-write' }));
  await anonymous.send(new PutObjectCommand({ Bucket: 'shared-drop', Key: 'first.txt', Body: 'one' }));
  // What `swift post -w '' shared-drop` sends: the owner takes write access back through Swift.
  const { storageUrl, token } = await s3.cluster.auth();
  const post = await fetch(`${storageUrl}/shared-drop`, {
    method: 'POST',
    headers: { 'x-auth-token': token, 'x-container-write': '' },
    signal: AbortSignal.timeout(10_000),
  });
  t.is(post.status, 204);
  t.is(
    await errorCode(anonymous.send(new PutObjectCommand({ Bucket: 'shared-drop', Key: 'second.txt', Body: 'two' }))),
    'AccessDenied',
  );
  t.is(await text(anonymous, 'shared-drop', 'first.txt'), 'one', 'reads are still public');
  const acl = await owner.send(new GetBucketAclCommand({ Bucket: 'shared-drop' }));
  t.deepEqual(grantsOf(acl.Grants), [`${ALL_USERS} READ`, `${ACCESS_KEY} FULL_CONTROL`]);
});

test("authenticated-read: the account's other users read, anonymous users do not, nobody else writes", async (t) => {
  const { s3 } = t.context;
  const owner = s3.client();
  const reader = s3.client({ accessKeyId: 'test:tester3', secretAccessKey: 'testing3' });
  const anonymous = s3.client({ anonymous: true });
  await owner.send(new CreateBucketCommand({ Bucket: 'team-docs' }));
  await owner.send(new PutObjectCommand({ Bucket: 'team-docs', Key: 'plan.txt', Body: 'the plan' }));
  t.is(
    await errorCode(reader.send(new GetObjectCommand({ Bucket: 'team-docs', Key: 'plan.txt' }))),
    'AccessDenied',
    'private at first',
  );

  await owner.send(new PutBucketAclCommand({ Bucket: 'team-docs', ACL: 'authenticated-read' }));
  t.is(await text(reader, 'team-docs', 'plan.txt'), 'the plan');
  const listed = await reader.send(new ListObjectsV2Command({ Bucket: 'team-docs' }));
  t.deepEqual(
    listed.Contents?.map((row) => row.Key),
    ['plan.txt'],
  );
  t.is(
    await errorCode(reader.send(new PutObjectCommand({ Bucket: 'team-docs', Key: 'mine.txt', Body: 'x' }))),
    'AccessDenied',
  );
  t.is(await errorCode(anonymous.send(new GetObjectCommand({ Bucket: 'team-docs', Key: 'plan.txt' }))), 'AccessDenied');
  const acl = await owner.send(new GetBucketAclCommand({ Bucket: 'team-docs' }));
  t.deepEqual(grantsOf(acl.Grants), [`${AUTHENTICATED_USERS} READ`, `${ACCESS_KEY} FULL_CONTROL`]);
  const objectAcl = await owner.send(new GetObjectAclCommand({ Bucket: 'team-docs', Key: 'plan.txt' }));
  t.deepEqual(grantsOf(objectAcl.Grants), [`${AUTHENTICATED_USERS} READ`, `${ACCESS_KEY} FULL_CONTROL`]);
});

test('PutBucketAcl with an AccessControlPolicy of AllUsers READ and WRITE is public-read-write', async (t) => {
  const { s3 } = t.context;
  const owner = s3.client();
  const anonymous = s3.client({ anonymous: true });
  await owner.send(new CreateBucketCommand({ Bucket: 'by-grants' }));
  const ownerGrant: Grant = { Grantee: { Type: 'CanonicalUser', ID: ACCESS_KEY }, Permission: 'FULL_CONTROL' };
  const group = (uri: string, permission: 'READ' | 'WRITE'): Grant => ({
    Grantee: { Type: 'Group', URI: uri },
    Permission: permission,
  });
  await owner.send(
    new PutBucketAclCommand({
      Bucket: 'by-grants',
      AccessControlPolicy: {
        Owner: { ID: ACCESS_KEY },
        Grants: [ownerGrant, group(ALL_USERS, 'READ'), group(ALL_USERS, 'WRITE')],
      },
    }),
  );
  await anonymous.send(new PutObjectCommand({ Bucket: 'by-grants', Key: 'k', Body: 'v' }));
  t.is(await text(owner, 'by-grants', 'k'), 'v');
  // A set of grants that is no canned ACL is not something Swift can keep.
  const odd = owner.send(
    new PutBucketAclCommand({
      Bucket: 'by-grants',
      AccessControlPolicy: { Owner: { ID: ACCESS_KEY }, Grants: [ownerGrant, group(ALL_USERS, 'WRITE')] },
    }),
  );
  t.is(await errorCode(odd), 'NotImplemented');
});
