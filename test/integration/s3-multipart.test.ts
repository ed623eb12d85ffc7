// Multipart uploads against a real cluster: @aws-sdk/lib-storage's Upload of a 100 MiB stream
// with the SDK's default checksum settings, read back byte for byte (S3 and Swift APIs), plus
// the low-level calls: UploadPartCopy, ListParts, ListMultipartUploads, Abort, EntityTooSmall.
import test from 'ava';
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3ServiceException,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { startS3Cluster, type S3TestCluster } from './s3-cluster.js';

let s3: S3TestCluster;

test.before(async () => {
  // Access logs on: a test counts the storage nodes' requests.
  s3 = await startS3Cluster({ logLevel: 'info' });
  await s3.client().send(new CreateBucketCommand({ Bucket: 'mpu' }));
});

test.after.always(async () => {
  await s3?.stop();
});

const MiB = 1024 * 1024;

/** A deterministic pseudo-random stream of `size` bytes, in 1 MiB pieces, and its MD5. */
function patternStream(size: number, seed: number): { stream: Readable; md5: string } {
  const piece = Buffer.alloc(MiB);
  let x = seed;
  for (let i = 0; i < piece.length; i += 4) {
    x = (x * 1103515245 + 12345) >>> 0;
    piece.writeUInt32LE(x, i);
  }
  const hash = createHash('md5');
  const pieces: Buffer[] = [];
  for (let offset = 0; offset < size; offset += MiB) {
    const chunk = Buffer.from(piece.subarray(0, Math.min(MiB, size - offset)));
    chunk.writeUInt32LE(offset / MiB, 0); // each piece differs
    pieces.push(chunk);
    hash.update(chunk);
  }
  return { stream: Readable.from(pieces), md5: hash.digest('hex') };
}

async function md5Of(stream: AsyncIterable<Uint8Array>): Promise<{ md5: string; length: number }> {
  const hash = createHash('md5');
  let length = 0;
  for await (const chunk of stream) {
    hash.update(chunk);
    length += chunk.length;
  }
  return { md5: hash.digest('hex'), length };
}

test.serial('lib-storage Upload of a 100 MiB stream, default checksums, read back by S3 and Swift', async (t) => {
  const client = s3.client();
  const size = 100 * MiB;
  const { stream, md5 } = patternStream(size, 7);
  const upload = new Upload({
    client,
    params: {
      Bucket: 'mpu',
      Key: 'big/100MiB',
      Body: stream,
      ContentType: 'application/x-big',
      Metadata: { kind: 'big' },
    },
    partSize: 8 * MiB,
    queueSize: 2,
  });
  const result = await upload.done();
  t.regex(result.ETag ?? '', /^"[0-9a-f]{32}-13"$/);
  const head = await client.send(new HeadObjectCommand({ Bucket: 'mpu', Key: 'big/100MiB' }));
  t.is(head.ContentLength, size);
  t.is(head.ETag, result.ETag);
  t.is(head.ContentType, 'application/x-big');
  t.deepEqual(head.Metadata, { kind: 'big' });
  t.is(head.PartsCount, undefined, 'S3 counts parts only for a read of one part');
  // One part by number (what parallel downloaders do): its bytes, and the count of parts.
  const second = await client.send(new GetObjectCommand({ Bucket: 'mpu', Key: 'big/100MiB', PartNumber: 2 }));
  t.is(second.PartsCount, 13);
  t.is(second.ContentRange, `bytes ${8 * MiB}-${16 * MiB - 1}/${size}`);
  t.is((await second.Body!.transformToByteArray()).length, 8 * MiB);
  const lastHead = await client.send(new HeadObjectCommand({ Bucket: 'mpu', Key: 'big/100MiB', PartNumber: 13 }));
  t.is(lastHead.ContentLength, size - 12 * 8 * MiB);
  const beyond = await t.throwsAsync(
    client.send(new HeadObjectCommand({ Bucket: 'mpu', Key: 'big/100MiB', PartNumber: 14 })),
  );
  t.is((beyond as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode, 416);
  const got = await client.send(new GetObjectCommand({ Bucket: 'mpu', Key: 'big/100MiB' }));
  t.deepEqual(await md5Of(got.Body as AsyncIterable<Uint8Array>), { md5, length: size });
  // A range across a part boundary.
  const range = await client.send(
    new GetObjectCommand({ Bucket: 'mpu', Key: 'big/100MiB', Range: `bytes=${8 * MiB - 10}-${8 * MiB + 9}` }),
  );
  t.is((await range.Body!.transformToByteArray()).length, 20);
  t.is(range.ContentRange, `bytes ${8 * MiB - 10}-${8 * MiB + 9}/${size}`);
  const listing = await client.send(new ListObjectsV2Command({ Bucket: 'mpu', Prefix: 'big/' }));
  t.is(listing.Contents?.[0]?.Size, size);
  t.is(listing.Contents?.[0]?.ETag, result.ETag);
  // The Swift API reads the same object.
  const { token, storageUrl } = await s3.cluster.auth();
  const swift = await fetch(`${storageUrl}/mpu/big/100MiB`, {
    headers: { 'X-Auth-Token': token },
    signal: AbortSignal.timeout(60_000),
  });
  t.is(swift.status, 200);
  t.is(swift.headers.get('x-object-meta-kind'), 'big');
  t.deepEqual(await md5Of(swift.body as unknown as AsyncIterable<Uint8Array>), { md5, length: size });
  const deletesBefore = await segmentDeletesLogged();
  await client.send(new DeleteObjectCommand({ Bucket: 'mpu', Key: 'big/100MiB' }));
  const segments = await fetch(`${storageUrl}/mpu+segments?format=json`, {
    headers: { 'X-Auth-Token': token },
    signal: AbortSignal.timeout(5000),
  });
  t.deepEqual(segments.status === 200 ? await segments.json() : [], []);
  // Each segment deleted once (one DELETE per replica), not again after the SLO delete took it.
  t.is((await segmentDeletesLogged()) - deletesBefore, 13 * 3);
});

/** Object servers' DELETEs in `mpu+segments` in the storage nodes' access logs (written in batches). */
async function segmentDeletesLogged(): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const logDir = join(s3.cluster.dir, 'log');
  let count = 0;
  for (const name of await readdir(logDir)) {
    if (!name.startsWith('storage-node')) continue;
    for (const line of (await readFile(join(logDir, name), 'utf8')).split('\n')) {
      if (
        line.includes('"method":"DELETE"') &&
        line.includes('"server":"object"') &&
        /\/mpu(\+|%2B)segments\//.test(line)
      )
        count += 1;
    }
  }
  return count;
}

test.serial('low-level multipart: copy part, list parts and uploads, too small, abort', async (t) => {
  const client = s3.client();
  const source = Buffer.alloc(6 * MiB, 'x');
  await client.send(new PutObjectCommand({ Bucket: 'mpu', Key: 'source', Body: source }));
  const created = await client.send(
    new CreateMultipartUploadCommand({ Bucket: 'mpu', Key: 'assembled', ContentType: 'text/x-assembled' }),
  );
  const uploadId = created.UploadId!;
  const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: 'mpu' }));
  t.true(uploads.Uploads?.some((upload) => upload.UploadId === uploadId && upload.Key === 'assembled'));
  const part1 = await client.send(
    new UploadPartCopyCommand({
      Bucket: 'mpu',
      Key: 'assembled',
      UploadId: uploadId,
      PartNumber: 1,
      CopySource: 'mpu/source',
      CopySourceRange: `bytes=0-${5 * MiB}`,
    }),
  );
  const part2 = await client.send(
    new UploadPartCommand({ Bucket: 'mpu', Key: 'assembled', UploadId: uploadId, PartNumber: 2, Body: 'tail' }),
  );
  const parts = await client.send(new ListPartsCommand({ Bucket: 'mpu', Key: 'assembled', UploadId: uploadId }));
  t.deepEqual(
    parts.Parts?.map((part) => [part.PartNumber, part.Size]),
    [
      [1, 5 * MiB + 1],
      [2, 4],
    ],
  );
  const complete = await client.send(
    new CompleteMultipartUploadCommand({
      Bucket: 'mpu',
      Key: 'assembled',
      UploadId: uploadId,
      MultipartUpload: {
        Parts: [
          { PartNumber: 1, ETag: part1.CopyPartResult!.ETag },
          { PartNumber: 2, ETag: part2.ETag },
        ],
      },
    }),
  );
  const expectedEtag = createHash('md5')
    .update(
      Buffer.concat([
        createHash('md5')
          .update(source.subarray(0, 5 * MiB + 1))
          .digest(),
        createHash('md5').update('tail').digest(),
      ]),
    )
    .digest('hex');
  t.is(complete.ETag, `"${expectedEtag}-2"`);
  const got = await client.send(new GetObjectCommand({ Bucket: 'mpu', Key: 'assembled' }));
  const bytes = Buffer.from(await got.Body!.transformToByteArray());
  t.is(bytes.length, 5 * MiB + 5);
  t.is(bytes.subarray(-4).toString(), 'tail');
  t.is(got.ContentType, 'text/x-assembled');

  const small = await client.send(new CreateMultipartUploadCommand({ Bucket: 'mpu', Key: 'small' }));
  const s1 = await client.send(
    new UploadPartCommand({ Bucket: 'mpu', Key: 'small', UploadId: small.UploadId, PartNumber: 1, Body: 'a' }),
  );
  const s2 = await client.send(
    new UploadPartCommand({ Bucket: 'mpu', Key: 'small', UploadId: small.UploadId, PartNumber: 2, Body: 'b' }),
  );
  const tooSmall = await client
    .send(
      new CompleteMultipartUploadCommand({
        Bucket: 'mpu',
        Key: 'small',
        UploadId: small.UploadId,
        MultipartUpload: {
          Parts: [
            { PartNumber: 1, ETag: s1.ETag },
            { PartNumber: 2, ETag: s2.ETag },
          ],
        },
      }),
    )
    .catch((error: unknown) => error);
  t.is((tooSmall as S3ServiceException).name, 'EntityTooSmall');
  const badOrder = await client
    .send(
      new CompleteMultipartUploadCommand({
        Bucket: 'mpu',
        Key: 'small',
        UploadId: small.UploadId,
        MultipartUpload: {
          Parts: [
            { PartNumber: 2, ETag: s2.ETag },
            { PartNumber: 1, ETag: s1.ETag },
          ],
        },
      }),
    )
    .catch((error: unknown) => error);
  t.is((badOrder as S3ServiceException).name, 'InvalidPartOrder');
  await client.send(new AbortMultipartUploadCommand({ Bucket: 'mpu', Key: 'small', UploadId: small.UploadId }));
  const gone = await client
    .send(new ListPartsCommand({ Bucket: 'mpu', Key: 'small', UploadId: small.UploadId }))
    .catch((error: unknown) => error);
  t.is((gone as S3ServiceException).name, 'NoSuchUpload');
});
