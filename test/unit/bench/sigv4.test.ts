import test from 'ava';
import { createHash } from 'node:crypto';
import { amzDateOf, canonicalQuery, EMPTY_SHA256, sign, signS3Headers, uriEncode } from '../../../bench/sigv4.js';

// AWS's documented examples ("Signature Calculations for the Authorization Header: Transferring
// Payload in a Single Chunk", Amazon S3 API reference), with their example credentials.
const credentials = {
  accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
};
const scope = { region: 'us-east-1', service: 's3', amzDate: '20130524T000000Z' };

test('GET object with a Range header matches the documented signature', (t) => {
  const { signature, authorization } = sign(credentials, scope, {
    method: 'GET',
    path: '/test.txt',
    headers: {
      Host: 'examplebucket.s3.amazonaws.com',
      Range: 'bytes=0-9',
      'x-amz-content-sha256': EMPTY_SHA256,
      'x-amz-date': '20130524T000000Z',
    },
    payloadHash: EMPTY_SHA256,
  });
  t.is(signature, 'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41');
  t.is(
    authorization,
    'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, ' +
      'SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, ' +
      'Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
  );
});

test('PUT object with a signed payload matches the documented signature', (t) => {
  const payloadHash = createHash('sha256').update('Welcome to Amazon S3.').digest('hex');
  t.is(payloadHash, '44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072');
  const { signature } = sign(credentials, scope, {
    method: 'PUT',
    path: `/${uriEncode('test$file.text', true)}`,
    headers: {
      Host: 'examplebucket.s3.amazonaws.com',
      Date: 'Fri, 24 May 2013 00:00:00 GMT',
      'x-amz-date': '20130524T000000Z',
      'x-amz-storage-class': 'REDUCED_REDUNDANCY',
      'x-amz-content-sha256': payloadHash,
    },
    payloadHash,
  });
  t.is(signature, '98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd');
});

test('GET bucket with a query string matches the documented signature', (t) => {
  const { signature } = sign(credentials, scope, {
    method: 'GET',
    path: '/',
    query: { 'max-keys': '2', prefix: 'J' },
    headers: {
      Host: 'examplebucket.s3.amazonaws.com',
      'x-amz-date': '20130524T000000Z',
      'x-amz-content-sha256': EMPTY_SHA256,
    },
    payloadHash: EMPTY_SHA256,
  });
  t.is(signature, '34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7');
});

test('encodes as SigV4 wants: unreserved kept, space as %20, slash only in paths', (t) => {
  t.is(uriEncode('a b/c~d_e.f-g'), 'a%20b%2Fc~d_e.f-g');
  t.is(uriEncode('a b/c', true), 'a%20b/c');
  t.is(uriEncode('é'), '%C3%A9');
  t.is(canonicalQuery({ 'start-after': 'obj 1', 'list-type': '2' }), 'list-type=2&start-after=obj%201');
});

test('signS3Headers adds the date, payload hash and authorization', (t) => {
  const headers = signS3Headers(
    credentials,
    'us-east-1',
    { method: 'GET', path: '/b/k', headers: { host: '127.0.0.1:8080' }, payloadHash: EMPTY_SHA256 },
    new Date('2013-05-24T00:00:00Z'),
  );
  t.is(headers['x-amz-date'], '20130524T000000Z');
  t.is(headers['x-amz-content-sha256'], EMPTY_SHA256);
  t.regex(
    headers.authorization ?? '',
    /^AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE\/20130524\/us-east-1\/s3\/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=[0-9a-f]{64}$/,
  );
  t.is(amzDateOf(new Date('2026-01-02T03:04:05.678Z')), '20260102T030405Z');
});
