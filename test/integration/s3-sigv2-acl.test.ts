// Signature Version 2 through s3cmd --signature-v2 (header and presigned URL), a byte-for-byte
// round trip; canned ACLs seen by anonymous readers through both APIs; and the bucket and object
// subresources the aws CLI asks for, answered as S3 answers an unconfigured bucket, never a 500.
import test from 'ava';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  CreateBucketCommand,
  GetBucketAclCommand,
  GetObjectAclCommand,
  PutBucketAclCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { ACCESS_KEY, SECRET_KEY, startS3Cluster, type S3TestCluster, writeS3cmdConfig } from './s3-cluster.js';

const run = promisify(execFile);
const ALL_USERS = 'http://acs.amazonaws.com/groups/global/AllUsers';
let s3: S3TestCluster;
let dir: string;

test.before(async () => {
  s3 = await startS3Cluster();
  dir = await mkdtemp(join(tmpdir(), 'nebula-s3-sigv2-'));
});

test.after.always(async () => {
  await s3?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

async function s3cmdV2(...args: string[]): Promise<string> {
  const config = await writeS3cmdConfig(dir, s3.endpoint, 'v2');
  const { stdout } = await run('s3cmd', ['-c', config, '--signature-v2', ...args], {
    env: { PATH: process.env.PATH, HOME: dir },
    timeout: 60_000,
  });
  return stdout;
}

function anonymousGet(url: string): Promise<Response> {
  return fetch(url, { signal: AbortSignal.timeout(10_000) });
}

test.serial('s3cmd --signature-v2: mb, put, get, ls, presigned URL, del; a wrong secret is refused', async (t) => {
  const file = join(dir, 'v2.bin');
  const body = randomBytes(200_000);
  await writeFile(file, body);
  await s3cmdV2('mb', 's3://v2-bucket');
  await s3cmdV2('put', file, 's3://v2-bucket/dir/a b+c.bin');
  await s3cmdV2('get', '--force', 's3://v2-bucket/dir/a b+c.bin', join(dir, 'v2.back'));
  t.deepEqual(await readFile(join(dir, 'v2.back')), body);
  t.true((await s3cmdV2('ls', 's3://v2-bucket/dir/')).includes('a b+c.bin'));
  const url = (await s3cmdV2('signurl', 's3://v2-bucket/dir/a b+c.bin', '+600')).trim();
  t.true(url.includes('AWSAccessKeyId=') && url.includes('Signature='));
  const presigned = await anonymousGet(url);
  t.is(presigned.status, 200);
  t.deepEqual(Buffer.from(await presigned.arrayBuffer()), body);
  const tampered = await anonymousGet(url.replace('Expires=', 'Expires=1'));
  t.is(tampered.status, 403);
  t.regex(await tampered.text(), /<Code>(SignatureDoesNotMatch|AccessDenied)<\/Code>/);
  const expired = await anonymousGet(url.replace(/Expires=\d+/, 'Expires=1000000000'));
  t.is(expired.status, 403);
  t.regex(await expired.text(), /<Code>AccessDenied<\/Code>/);
  const wrong = await fetch(`${s3.endpoint}/v2-bucket/dir/a%20b%2Bc.bin`, {
    headers: { Date: new Date().toUTCString(), Authorization: `AWS ${ACCESS_KEY}:AAAAAAAAAAAAAAAAAAAAAAAAAAA=` },
    signal: AbortSignal.timeout(10_000),
  });
  t.is(wrong.status, 403);
  t.regex(await wrong.text(), /<Code>SignatureDoesNotMatch<\/Code>/);
  await s3cmdV2('del', 's3://v2-bucket/dir/a b+c.bin');
  await s3cmdV2('rb', 's3://v2-bucket');
});

test.serial(
  'canned ACLs: a public-read bucket answers anonymous S3 and Swift reads; private ones refuse',
  async (t) => {
    const client = s3.client();
    await client.send(new CreateBucketCommand({ Bucket: 'open-bucket', ACL: 'public-read' }));
    await client.send(new PutObjectCommand({ Bucket: 'open-bucket', Key: 'docs/hello.txt', Body: 'hello, anyone' }));
    await client.send(new CreateBucketCommand({ Bucket: 'closed-bucket' }));
    await client.send(new PutObjectCommand({ Bucket: 'closed-bucket', Key: 'secret.txt', Body: 'no' }));

    const viaS3 = await anonymousGet(`${s3.endpoint}/open-bucket/docs/hello.txt`);
    t.is(viaS3.status, 200);
    t.is(await viaS3.text(), 'hello, anyone');
    const listing = await anonymousGet(`${s3.endpoint}/open-bucket?list-type=2`);
    t.is(listing.status, 200);
    t.true((await listing.text()).includes('<Key>docs/hello.txt</Key>'));
    const { storageUrl } = await s3.cluster.auth();
    const viaSwift = await anonymousGet(`${storageUrl}/open-bucket/docs/hello.txt`);
    t.is(viaSwift.status, 200);
    t.is(await viaSwift.text(), 'hello, anyone');

    const refused = await anonymousGet(`${s3.endpoint}/closed-bucket/secret.txt`);
    t.is(refused.status, 403);
    t.regex(await refused.text(), /<Code>AccessDenied<\/Code>/);
    const missing = await anonymousGet(`${s3.endpoint}/no-such-bucket-here/x`);
    t.is(missing.status, 404);
    t.regex(await missing.text(), /<Code>NoSuchBucket<\/Code>/);

    const bucketAcl = await client.send(new GetBucketAclCommand({ Bucket: 'open-bucket' }));
    t.true(bucketAcl.Grants?.some((grant) => grant.Grantee?.URI === ALL_USERS && grant.Permission === 'READ'));
    t.true(bucketAcl.Grants?.some((grant) => grant.Grantee?.ID === ACCESS_KEY && grant.Permission === 'FULL_CONTROL'));
    const objectAcl = await client.send(new GetObjectAclCommand({ Bucket: 'open-bucket', Key: 'docs/hello.txt' }));
    t.true(objectAcl.Grants?.some((grant) => grant.Grantee?.URI === ALL_USERS && grant.Permission === 'READ'));

    await client.send(new PutBucketAclCommand({ Bucket: 'closed-bucket', ACL: 'public-read-write' }));
    const widened = await client.send(new GetBucketAclCommand({ Bucket: 'closed-bucket' }));
    t.true(widened.Grants?.some((grant) => grant.Grantee?.URI === ALL_USERS && grant.Permission === 'READ'));
    t.true(widened.Grants?.some((grant) => grant.Grantee?.URI === ALL_USERS && grant.Permission === 'WRITE'));
    await client.send(new PutBucketAclCommand({ Bucket: 'closed-bucket', ACL: 'private' }));
    await client.send(new PutBucketAclCommand({ Bucket: 'open-bucket', ACL: 'private' }));
    const narrowed = await client.send(new GetBucketAclCommand({ Bucket: 'open-bucket' }));
    t.is(narrowed.Grants?.length, 1);
    // Object ACLs: Swift has none. Private is accepted (it is what the object has); others are not.
    const objectPrivate = await aws(
      's3api',
      'put-object-acl',
      '--bucket',
      'closed-bucket',
      '--key',
      'secret.txt',
      '--acl',
      'private',
    );
    t.is(objectPrivate.code, 0, objectPrivate.out);
    const objectPublic = await aws(
      's3api',
      'put-object-acl',
      '--bucket',
      'closed-bucket',
      '--key',
      'secret.txt',
      '--acl',
      'public-read',
    );
    t.true(objectPublic.out.includes('NotImplemented'), objectPublic.out);
  },
);

/** An aws CLI call's exit code and output. */
async function aws(...args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout } = await run('/usr/bin/aws', ['--endpoint-url', s3.endpoint, ...args], {
      env: {
        PATH: process.env.PATH,
        HOME: dir,
        AWS_ACCESS_KEY_ID: ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY: SECRET_KEY,
        AWS_DEFAULT_REGION: 'us-east-1',
      },
      timeout: 60_000,
    });
    return { code: 0, out: stdout };
  } catch (error) {
    const failed = error as { code?: number; stderr?: string; stdout?: string };
    return { code: failed.code ?? -1, out: `${failed.stdout ?? ''}${failed.stderr ?? ''}` };
  }
}

test.serial(
  'anonymous writes, deletes and private listings are S3 AccessDenied in XML (not Swift 401/404), whatever the bucket ACL',
  async (t) => {
    const client = s3.client();
    await client.send(new CreateBucketCommand({ Bucket: 'anon-open', ACL: 'public-read' }));
    await client.send(new PutObjectCommand({ Bucket: 'anon-open', Key: 'kept.txt', Body: 'still here' }));
    await client.send(new CreateBucketCommand({ Bucket: 'anon-closed' }));
    await client.send(new PutObjectCommand({ Bucket: 'anon-closed', Key: 'kept.txt', Body: 'private' }));
    const anonymous = async (method: string, path: string, body?: string): Promise<[number, string, string]> => {
      const response = await fetch(`${s3.endpoint}${path}`, { method, body, signal: AbortSignal.timeout(10_000) });
      return [
        response.status,
        /<Code>([^<]+)<\/Code>/.exec(await response.text())?.[1] ?? '',
        response.headers.get('content-type') ?? '',
      ];
    };
    for (const bucket of ['anon-open', 'anon-closed']) {
      const denied: [string, string, string?][] = [
        ['PUT', `/${bucket}/new.txt`, 'anonymous body'],
        ['DELETE', `/${bucket}/kept.txt`],
        ['POST', `/${bucket}/big.bin?uploads`],
        ['PUT', `/${bucket}?acl`, ''],
        ['PUT', `/${bucket}/kept.txt?tagging`, '<Tagging><TagSet/></Tagging>'],
        ['DELETE', `/${bucket}`],
      ];
      for (const [method, path, body] of denied) {
        const [status, code, type] = await anonymous(method, path, body);
        t.is(status, 403, `${method} ${path}`);
        t.is(code, 'AccessDenied', `${method} ${path}`);
        t.regex(type, /application\/xml/);
      }
    }
    // Nothing changed, as the owner sees it.
    const { storageUrl, token } = await s3.cluster.auth();
    for (const path of ['anon-open/kept.txt', 'anon-closed/kept.txt', 'anon-open', 'anon-closed']) {
      const head = await fetch(`${storageUrl}/${path}`, { method: 'HEAD', headers: { 'x-auth-token': token } });
      t.true(head.status === 200 || head.status === 204, path);
    }
    for (const path of ['anon-open/new.txt', 'anon-closed/new.txt']) {
      const head = await fetch(`${storageUrl}/${path}`, { method: 'HEAD', headers: { 'x-auth-token': token } });
      t.is(head.status, 404, path);
    }
    // Reads: a public-read bucket lists and answers NoSuchKey; a private one is AccessDenied.
    t.deepEqual((await anonymous('GET', '/anon-open?list-type=2')).slice(0, 1), [200]);
    t.deepEqual((await anonymous('GET', '/anon-open/missing.txt')).slice(0, 2), [404, 'NoSuchKey']);
    t.deepEqual((await anonymous('GET', '/anon-closed?list-type=2')).slice(0, 2), [403, 'AccessDenied']);
    t.deepEqual((await anonymous('GET', '/anon-closed/kept.txt')).slice(0, 2), [403, 'AccessDenied']);
    t.is((await anonymous('HEAD', '/anon-open'))[0], 200);
    // READ covers the listing and the objects, not the ACLs, the location or object subresources.
    for (const path of [
      '/anon-open?acl',
      '/anon-open?location',
      '/anon-open/kept.txt?acl',
      '/anon-open/kept.txt?tagging',
    ])
      t.deepEqual((await anonymous('GET', path)).slice(0, 2), [403, 'AccessDenied'], path);
    // No such bucket: NoSuchBucket, except CreateBucket, which needs an identity anyway.
    t.deepEqual((await anonymous('PUT', '/anon-none/x', 'x')).slice(0, 2), [404, 'NoSuchBucket']);
    t.deepEqual((await anonymous('PUT', '/anon-none', '')).slice(0, 2), [403, 'AccessDenied']);
    // The Swift API's own paths keep Swift's answers.
    const swiftPut = await fetch(`${storageUrl}/anon-open/swift.txt`, { method: 'PUT', body: 'x' });
    t.is(swiftPut.status, 401);
  },
);

test.serial('aws s3api: bucket and object subresources answer S3 XML, never a 500', async (t) => {
  t.is((await aws('s3', 'mb', 's3://sub-bucket')).code, 0);
  const file = join(dir, 'sub.txt');
  await writeFile(file, 'x');
  t.is((await aws('s3', 'cp', file, 's3://sub-bucket/sub.txt')).code, 0);
  const versioning = await aws('s3api', 'get-bucket-versioning', '--bucket', 'sub-bucket');
  t.is(versioning.code, 0, versioning.out);
  const tagging = await aws('s3api', 'get-bucket-tagging', '--bucket', 'sub-bucket');
  t.not(tagging.code, 0);
  t.true(tagging.out.includes('NoSuchTagSet'), tagging.out);
  const lifecycle = await aws('s3api', 'get-bucket-lifecycle-configuration', '--bucket', 'sub-bucket');
  t.true(lifecycle.out.includes('NoSuchLifecycleConfiguration'), lifecycle.out);
  const objectTags = await aws('s3api', 'get-object-tagging', '--bucket', 'sub-bucket', '--key', 'sub.txt');
  t.is(objectTags.code, 0, objectTags.out);
  const putTags = await aws(
    's3api',
    'put-object-tagging',
    '--bucket',
    'sub-bucket',
    '--key',
    'sub.txt',
    '--tagging',
    'TagSet=[{Key=a,Value=b}]',
  );
  t.true(putTags.out.includes('NotImplemented'), putTags.out);
  for (const result of [versioning, tagging, lifecycle, objectTags, putTags]) {
    t.false(/InternalError|\(500\)/.test(result.out), result.out);
  }
});
