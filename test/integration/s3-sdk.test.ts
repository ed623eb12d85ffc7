// The S3 API through @aws-sdk/client-s3 against a real cluster: buckets, objects, listings,
// copy, conditionals, ranges, checksums, and what one API writes the other reads.
import test from 'ava';
import {
  CopyObjectCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetBucketAclCommand,
  GetBucketLocationCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  PutBucketAclCommand,
  PutObjectCommand,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { checksumOf } from '../../proxy/s3/checksums.js';
import { startS3Cluster, type S3TestCluster } from './s3-cluster.js';

let s3: S3TestCluster;

test.before(async () => {
  s3 = await startS3Cluster();
});

test.after.always(async () => {
  await s3?.stop();
});

async function errorCode(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof S3ServiceException) return error.name;
    throw error;
  }
  return 'no error';
}

test.serial('bucket lifecycle: create, head, location, list, not empty, delete', async (t) => {
  const client = s3.client();
  await client.send(new CreateBucketCommand({ Bucket: 'life' }));
  t.is(await errorCode(client.send(new CreateBucketCommand({ Bucket: 'life' }))), 'BucketAlreadyOwnedByYou');
  t.is(await errorCode(client.send(new CreateBucketCommand({ Bucket: 'Bad_Name' }))), 'InvalidBucketName');
  await client.send(new HeadBucketCommand({ Bucket: 'life' }));
  t.is(await errorCode(client.send(new HeadBucketCommand({ Bucket: 'nope-nope' }))), 'NotFound');
  const location = await client.send(new GetBucketLocationCommand({ Bucket: 'life' }));
  t.falsy(location.LocationConstraint);
  const buckets = await client.send(new ListBucketsCommand({}));
  t.true(buckets.Buckets?.some((bucket) => bucket.Name === 'life'));
  await client.send(new PutObjectCommand({ Bucket: 'life', Key: 'k', Body: 'x' }));
  t.is(await errorCode(client.send(new DeleteBucketCommand({ Bucket: 'life' }))), 'BucketNotEmpty');
  await client.send(new DeleteObjectCommand({ Bucket: 'life', Key: 'k' }));
  await client.send(new DeleteBucketCommand({ Bucket: 'life' }));
  const after = await client.send(new ListBucketsCommand({}));
  t.false(after.Buckets?.some((bucket) => bucket.Name === 'life'));
});

test.serial('objects: put, get, head, metadata, range, conditionals, checksums', async (t) => {
  const client = s3.client();
  await client.send(new CreateBucketCommand({ Bucket: 'objs' }));
  const body = Buffer.from('The quick brown fox jumps over the lazy dog');
  const put = await client.send(
    new PutObjectCommand({
      Bucket: 'objs',
      Key: 'dir/fox.txt',
      Body: body,
      ContentType: 'text/plain',
      Metadata: { color: 'brown', 'two-words': 'hello world' },
      CacheControl: 'max-age=60',
      ChecksumAlgorithm: 'SHA256',
    }),
  );
  t.is(put.ETag, '"9e107d9d372bb6826bd81d3542a419d6"');
  const got = await client.send(new GetObjectCommand({ Bucket: 'objs', Key: 'dir/fox.txt', ChecksumMode: 'ENABLED' }));
  t.deepEqual(Buffer.from(await got.Body!.transformToByteArray()), body);
  t.is(got.ContentType, 'text/plain');
  t.is(got.CacheControl, 'max-age=60');
  t.deepEqual(got.Metadata, { color: 'brown', 'two-words': 'hello world' });
  t.truthy(got.ChecksumSHA256);
  const head = await client.send(new HeadObjectCommand({ Bucket: 'objs', Key: 'dir/fox.txt' }));
  t.is(head.ContentLength, body.length);
  t.is(head.ETag, put.ETag);
  const range = await client.send(new GetObjectCommand({ Bucket: 'objs', Key: 'dir/fox.txt', Range: 'bytes=4-8' }));
  t.is(await range.Body!.transformToString(), 'quick');
  t.is(range.ContentRange, `bytes 4-8/${body.length}`);
  t.is(
    await errorCode(client.send(new GetObjectCommand({ Bucket: 'objs', Key: 'dir/fox.txt', IfMatch: '"nope"' }))),
    'PreconditionFailed',
  );
  const notModified = await client
    .send(new GetObjectCommand({ Bucket: 'objs', Key: 'dir/fox.txt', IfNoneMatch: put.ETag }))
    .catch((error: unknown) => error);
  t.is((notModified as S3ServiceException).$metadata?.httpStatusCode, 304);
  const overridden = await client.send(
    new GetObjectCommand({
      Bucket: 'objs',
      Key: 'dir/fox.txt',
      ResponseContentType: 'application/x-fox',
      ResponseContentDisposition: 'attachment',
    }),
  );
  await overridden.Body!.transformToByteArray();
  t.is(overridden.ContentType, 'application/x-fox');
  t.is(overridden.ContentDisposition, 'attachment');
  t.is(await errorCode(client.send(new GetObjectCommand({ Bucket: 'objs', Key: 'missing' }))), 'NoSuchKey');
  t.is(
    await errorCode(client.send(new GetObjectCommand({ Bucket: 'no-such-bucket', Key: 'missing' }))),
    'NoSuchBucket',
  );
});

/** How many `.meta` files (POSTed metadata) the cluster's disks hold. */
async function metaFileCount(dir: string): Promise<number> {
  const names = await readdir(dir, { recursive: true });
  return names.filter((name) => name.endsWith('.meta')).length;
}

test.serial('trailer checksums of streamed uploads are stored with the PUT (no metadata POST)', async (t) => {
  const client = s3.client();
  const sent: string[] = [];
  client.middlewareStack.add(
    (next) => async (args) => {
      const headers = (args.request as { headers?: Record<string, string> }).headers ?? {};
      sent.push(headers['x-amz-trailer'] ?? '');
      return next(args);
    },
    { step: 'deserialize' },
  );
  await client.send(new CreateBucketCommand({ Bucket: 'trailers' }));
  const metaBefore = await metaFileCount(s3.cluster.dir);
  // One body the proxy buffers whole, one it streams to the replicas.
  for (const size of [1000, 200_000]) {
    const data = randomBytes(size);
    const key = `streamed-${size}`;
    sent.length = 0;
    const put = await client.send(
      new PutObjectCommand({
        Bucket: 'trailers',
        Key: key,
        Body: Readable.from([data]),
        ContentLength: size,
        ChecksumAlgorithm: 'CRC32C',
      }),
    );
    t.deepEqual(sent, ['x-amz-checksum-crc32c'], 'the SDK sent the checksum as a trailer');
    t.is(put.ChecksumCRC32C, checksumOf('crc32c', data));
    const got = await client.send(new GetObjectCommand({ Bucket: 'trailers', Key: key, ChecksumMode: 'ENABLED' }));
    t.true(Buffer.from(await got.Body!.transformToByteArray()).equals(data));
    t.is(got.ChecksumCRC32C, checksumOf('crc32c', data));
  }
  t.is(await metaFileCount(s3.cluster.dir), metaBefore);
});

test.serial('listings: v1 and v2 with prefix, delimiter, pagination, url encoding', async (t) => {
  const client = s3.client();
  await client.send(new CreateBucketCommand({ Bucket: 'lists' }));
  const keys = ['a/1', 'a/2', 'b/1', 'c', 'd e', 'f+g'];
  for (const key of keys) await client.send(new PutObjectCommand({ Bucket: 'lists', Key: key, Body: key }));
  const all = await client.send(new ListObjectsV2Command({ Bucket: 'lists' }));
  t.deepEqual(
    all.Contents?.map((o) => o.Key),
    keys,
  );
  t.is(all.KeyCount, keys.length);
  const delimited = await client.send(new ListObjectsV2Command({ Bucket: 'lists', Delimiter: '/' }));
  t.deepEqual(
    delimited.CommonPrefixes?.map((p) => p.Prefix),
    ['a/', 'b/'],
  );
  t.deepEqual(
    delimited.Contents?.map((o) => o.Key),
    ['c', 'd e', 'f+g'],
  );
  const seen: string[] = [];
  let token: string | undefined;
  for (let page = 0; page < 10; page += 1) {
    const result = await client.send(
      new ListObjectsV2Command({ Bucket: 'lists', MaxKeys: 2, ContinuationToken: token }),
    );
    seen.push(...(result.Contents ?? []).map((o) => o.Key ?? ''));
    if (result.IsTruncated !== true) break;
    token = result.NextContinuationToken;
  }
  t.deepEqual(seen, keys);
  const v1 = await client.send(new ListObjectsCommand({ Bucket: 'lists', Prefix: 'a/', Marker: 'a/1' }));
  t.deepEqual(
    v1.Contents?.map((o) => o.Key),
    ['a/2'],
  );
  t.truthy(v1.Contents?.[0]?.Owner?.ID);
  const startAfter = await client.send(
    new ListObjectsV2Command({ Bucket: 'lists', StartAfter: 'c', FetchOwner: true }),
  );
  t.deepEqual(
    startAfter.Contents?.map((o) => o.Key),
    ['d e', 'f+g'],
  );
  t.truthy(startAfter.Contents?.[0]?.Owner?.ID);
  const encoded = await client.send(new ListObjectsV2Command({ Bucket: 'lists', EncodingType: 'url', Prefix: 'd' }));
  t.deepEqual(
    encoded.Contents?.map((o) => o.Key),
    ['d%20e'],
  );
  const deleted = await client.send(
    new DeleteObjectsCommand({ Bucket: 'lists', Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: false } }),
  );
  t.is(deleted.Deleted?.length, keys.length);
  const quiet = await client.send(
    new DeleteObjectsCommand({ Bucket: 'lists', Delete: { Objects: [{ Key: 'zzz' }], Quiet: true } }),
  );
  t.falsy(quiet.Deleted?.length);
  t.is((await client.send(new ListObjectsV2Command({ Bucket: 'lists' }))).KeyCount, 0);
});

test.serial('copy: metadata directive and copy-source conditions', async (t) => {
  const client = s3.client();
  await client.send(new CreateBucketCommand({ Bucket: 'copies' }));
  const put = await client.send(
    new PutObjectCommand({
      Bucket: 'copies',
      Key: 'src',
      Body: 'copy me',
      ContentType: 'text/x-src',
      Metadata: { a: '1' },
    }),
  );
  await client.send(new CopyObjectCommand({ Bucket: 'copies', Key: 'same-meta', CopySource: 'copies/src' }));
  const same = await client.send(new HeadObjectCommand({ Bucket: 'copies', Key: 'same-meta' }));
  t.deepEqual(same.Metadata, { a: '1' });
  t.is(same.ContentType, 'text/x-src');
  t.is(same.ETag, put.ETag);
  await client.send(
    new CopyObjectCommand({
      Bucket: 'copies',
      Key: 'new-meta',
      CopySource: '/copies/src',
      MetadataDirective: 'REPLACE',
      Metadata: { b: '2' },
      ContentType: 'text/x-new',
    }),
  );
  const replaced = await client.send(new GetObjectCommand({ Bucket: 'copies', Key: 'new-meta' }));
  t.is(await replaced.Body!.transformToString(), 'copy me');
  t.deepEqual(replaced.Metadata, { b: '2' });
  t.is(replaced.ContentType, 'text/x-new');
  t.is(
    await errorCode(
      client.send(
        new CopyObjectCommand({ Bucket: 'copies', Key: 'x', CopySource: 'copies/src', CopySourceIfMatch: '"bad"' }),
      ),
    ),
    'PreconditionFailed',
  );
  t.is(
    await errorCode(client.send(new CopyObjectCommand({ Bucket: 'copies', Key: 'src', CopySource: 'copies/src' }))),
    'InvalidRequest',
  );
});

test.serial('ACLs: canned public-read on a bucket lets anonymous Swift reads in', async (t) => {
  const client = s3.client();
  await client.send(new CreateBucketCommand({ Bucket: 'public', ACL: 'public-read' }));
  await client.send(new PutObjectCommand({ Bucket: 'public', Key: 'hello', Body: 'hi all' }));
  const { storageUrl } = await s3.cluster.auth();
  const anonymous = await fetch(`${storageUrl}/public/hello`, { signal: AbortSignal.timeout(5000) });
  t.is(anonymous.status, 200);
  t.is(await anonymous.text(), 'hi all');
  const acl = await client.send(new GetBucketAclCommand({ Bucket: 'public' }));
  t.true(
    acl.Grants?.some(
      (grant) =>
        grant.Grantee?.URI === 'http://acs.amazonaws.com/groups/global/AllUsers' && grant.Permission === 'READ',
    ),
  );
  await client.send(new PutBucketAclCommand({ Bucket: 'public', ACL: 'private' }));
  const { token } = await s3.cluster.auth();
  const head = await fetch(`${storageUrl}/public`, {
    method: 'HEAD',
    headers: { 'X-Auth-Token': token },
    signal: AbortSignal.timeout(5000),
  });
  t.is(head.headers.get('x-container-read'), null);
  const privateAcl = await client.send(new GetBucketAclCommand({ Bucket: 'public' }));
  t.is(privateAcl.Grants?.length, 1);
});

test.serial('S3 and Swift read each other, metadata included', async (t) => {
  const client = s3.client();
  await client.send(new CreateBucketCommand({ Bucket: 'both' }));
  await client.send(
    new PutObjectCommand({
      Bucket: 'both',
      Key: 'from-s3',
      Body: 's3 bytes',
      ContentType: 'text/s3',
      Metadata: { origin: 's3' },
    }),
  );
  const { token, storageUrl } = await s3.cluster.auth();
  const fromSwift = await fetch(`${storageUrl}/both/from-s3`, {
    headers: { 'X-Auth-Token': token },
    signal: AbortSignal.timeout(5000),
  });
  t.is(await fromSwift.text(), 's3 bytes');
  t.is(fromSwift.headers.get('x-object-meta-origin'), 's3');
  t.is(fromSwift.headers.get('content-type'), 'text/s3');
  const put = await fetch(`${storageUrl}/both/from-swift`, {
    method: 'PUT',
    headers: { 'X-Auth-Token': token, 'Content-Type': 'text/swift', 'X-Object-Meta-Origin': 'swift' },
    body: 'swift bytes',
    signal: AbortSignal.timeout(5000),
  });
  t.is(put.status, 201);
  const got = await client.send(new GetObjectCommand({ Bucket: 'both', Key: 'from-swift' }));
  t.is(await got.Body!.transformToString(), 'swift bytes');
  t.deepEqual(got.Metadata, { origin: 'swift' });
  t.is(got.ContentType, 'text/swift');
});
