// Addressing (path-style and virtual-hosted-style), bucket-name rules, and the Range and
// conditional rules GET applies to objects and multipart manifests.
import test from 'ava';
import { evaluateConditions, parseRange } from '../../../proxy/s3/context.js';
import { isValidBucketName, parseS3Target } from '../../../proxy/s3/s3-request.js';

test('path-style and virtual-hosted-style targets', (t) => {
  t.deepEqual(parseS3Target('127.0.0.1:8080', '/', ['localhost']), {});
  t.deepEqual(parseS3Target('127.0.0.1:8080', '/bucket', ['localhost']), { bucket: 'bucket' });
  t.deepEqual(parseS3Target('127.0.0.1:8080', '/bucket/', ['localhost']), { bucket: 'bucket', key: undefined });
  t.deepEqual(parseS3Target('127.0.0.1', '/bucket/a/b%20c', ['localhost']), { bucket: 'bucket', key: 'a/b c' });
  t.deepEqual(parseS3Target('photos.localhost:8080', '/2024/cat.jpg', ['localhost']), {
    bucket: 'photos',
    key: '2024/cat.jpg',
  });
  t.deepEqual(parseS3Target('photos.s3.example.com', '/', ['s3.example.com']), { bucket: 'photos', key: undefined });
  t.deepEqual(parseS3Target('localhost:8080', '/b/k', ['localhost']), { bucket: 'b', key: 'k' });
});

test('bucket names follow S3 DNS rules', (t) => {
  for (const name of ['abc', 'my-bucket', 'my.bucket.1', 'a'.repeat(63)]) t.true(isValidBucketName(name), name);
  for (const name of [
    'ab',
    'a'.repeat(64),
    'Upper',
    'under_score',
    '-start',
    'end-',
    'a..b',
    'a.-b',
    '192.168.1.1',
    'seg+segments',
  ]) {
    t.false(isValidBucketName(name), name);
  }
});

test('ranges: first-last, open-ended, suffix, unsatisfiable', (t) => {
  t.deepEqual(parseRange('bytes=0-9', 100), { start: 0, end: 9 });
  t.deepEqual(parseRange('bytes=90-', 100), { start: 90, end: 99 });
  t.deepEqual(parseRange('bytes=95-200', 100), { start: 95, end: 99 });
  t.deepEqual(parseRange('bytes=-10', 100), { start: 90, end: 99 });
  t.is(parseRange('bytes=0-1,5-6', 100), undefined);
  t.is(parseRange(undefined, 100), undefined);
  t.throws(() => parseRange('bytes=100-', 100), { code: 'InvalidRange' } as never);
});

test('conditionals: If-Match beats If-Unmodified-Since, If-None-Match beats If-Modified-Since', (t) => {
  const modified = 'Wed, 01 Jan 2025 00:00:00 GMT';
  t.is(evaluateConditions({ ifMatch: '"abc"' }, 'abc', modified), undefined);
  t.is(evaluateConditions({ ifMatch: '"xyz"' }, 'abc', modified), 412);
  t.is(
    evaluateConditions({ ifMatch: '*', ifUnmodifiedSince: 'Tue, 31 Dec 2024 00:00:00 GMT' }, 'abc', modified),
    undefined,
  );
  t.is(evaluateConditions({ ifUnmodifiedSince: 'Tue, 31 Dec 2024 00:00:00 GMT' }, 'abc', modified), 412);
  t.is(evaluateConditions({ ifNoneMatch: '"abc"' }, 'abc', modified), 304);
  t.is(evaluateConditions({ ifModifiedSince: 'Thu, 02 Jan 2025 00:00:00 GMT' }, 'abc', modified), 304);
  t.is(evaluateConditions({ ifModifiedSince: 'Tue, 31 Dec 2024 00:00:00 GMT' }, 'abc', modified), undefined);
});
