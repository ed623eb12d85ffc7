// SigV4 against AWS's documented vectors: the aws-sig-v4-test-suite (get-vanilla family) and the
// worked examples of the S3 API reference (header auth, presigned URL, chunked upload seed).
import test from 'ava';
import {
  canonicalRequest,
  canonicalUri,
  EMPTY_SHA256,
  parseAmzDate,
  parseQuery,
  parseSigV4,
  sign,
  signingKey,
  stringToSign,
  verifySigV4,
  type SignedRequest,
} from '../../../proxy/s3/sigv4.js';
import { isS3Error } from '../../../proxy/s3/errors.js';

const S3_SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const S3_ACCESS = 'AKIAIOSFODNN7EXAMPLE';
const S3_NOW = Date.UTC(2013, 4, 24, 0, 0, 0);
const S3_SCOPE = '20130524/us-east-1/s3/aws4_request';

function signatureOf(
  request: SignedRequest,
  signedHeaders: string[],
  payload: string,
  amzDate: string,
  scope: string,
  secret: string,
): string {
  const [date = '', region = '', service = ''] = scope.split('/');
  const text = stringToSign(amzDate, scope, canonicalRequest(request, signedHeaders, payload));
  return sign(signingKey(secret, date, region, service), text);
}

test('aws-sig-v4-test-suite get-vanilla', (t) => {
  const request: SignedRequest = {
    method: 'GET',
    rawPath: '/',
    query: [],
    headers: { host: 'example.amazonaws.com', 'x-amz-date': '20150830T123600Z' },
  };
  t.is(
    signatureOf(
      request,
      ['host', 'x-amz-date'],
      EMPTY_SHA256,
      '20150830T123600Z',
      '20150830/us-east-1/service/aws4_request',
      'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
    ),
    '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
  );
});

test('aws-sig-v4-test-suite get-vanilla-query-order-key-case', (t) => {
  const request: SignedRequest = {
    method: 'GET',
    rawPath: '/',
    query: parseQuery('Param2=value2&Param1=value1'),
    headers: { host: 'example.amazonaws.com', 'x-amz-date': '20150830T123600Z' },
  };
  t.is(
    signatureOf(
      request,
      ['host', 'x-amz-date'],
      EMPTY_SHA256,
      '20150830T123600Z',
      '20150830/us-east-1/service/aws4_request',
      'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
    ),
    'b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500',
  );
});

function headerAuth(signedHeaders: string, signature: string): string {
  return `AWS4-HMAC-SHA256 Credential=${S3_ACCESS}/${S3_SCOPE},SignedHeaders=${signedHeaders},Signature=${signature}`;
}

/** The S3 documentation's example GET of examplebucket/test.txt with a Range, signed `signature`. */
const RANGE_SIGNATURE = 'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41';
const rangeRequest = (signature: string): SignedRequest => ({
  method: 'GET',
  rawPath: '/test.txt',
  query: [],
  headers: {
    host: 'examplebucket.s3.amazonaws.com',
    range: 'bytes=0-9',
    'x-amz-content-sha256': EMPTY_SHA256,
    'x-amz-date': '20130524T000000Z',
    authorization: headerAuth('host;range;x-amz-content-sha256;x-amz-date', signature),
  },
});

test('S3 reference: GET object with Range', (t) => {
  const request = rangeRequest(RANGE_SIGNATURE);
  const auth = parseSigV4(request, S3_NOW);
  t.is(auth.accessKey, S3_ACCESS);
  t.notThrows(() => verifySigV4(request, auth, S3_SECRET));
  const error = t.throws(() => verifySigV4(request, auth, 'wrong-secret'));
  t.true(isS3Error(error) && error.code === 'SignatureDoesNotMatch');
});

test('signatures compare as hex in either case; anything but 64 hex digits is refused', (t) => {
  const signature = RANGE_SIGNATURE;
  const upper = rangeRequest(signature.toUpperCase());
  t.notThrows(() => verifySigV4(upper, parseSigV4(upper, S3_NOW), S3_SECRET));
  for (const provided of [`${signature}0`, `${signature}zz`, signature.slice(0, 62), `${signature.slice(0, 63)}g`]) {
    const request = rangeRequest(provided);
    const error = t.throws(() => verifySigV4(request, parseSigV4(request, S3_NOW), S3_SECRET));
    t.true(isS3Error(error) && error.code === 'SignatureDoesNotMatch', provided);
  }
});

test('x-amz-date parses only as YYYYMMDDTHHMMSSZ', (t) => {
  t.is(parseAmzDate('20130524T000000Z'), S3_NOW);
  t.is(parseAmzDate('20231231T235959Z'), Date.UTC(2023, 11, 31, 23, 59, 59));
  for (const bad of [
    '',
    '2013052T000000Z',
    '20130524T000000',
    '20130524 000000Z',
    '2013O524T000000Z',
    '20130524T00000+Z',
  ])
    t.true(Number.isNaN(parseAmzDate(bad)), bad);
});

test('canonical URI: plain paths as they are, others decoded and re-encoded per segment', (t) => {
  t.is(canonicalUri('/bucket/dir/obj-1_a.b~c'), '/bucket/dir/obj-1_a.b~c');
  t.is(canonicalUri(''), '/');
  t.is(canonicalUri('/bucket/a b+c'), '/bucket/a%20b%2Bc');
  t.is(canonicalUri('/bucket/%7Etilde%2Fslash%e2%82%ac'), '/bucket/~tilde%2Fslash%E2%82%AC');
  t.is(canonicalUri('/bucket/it(s)*!'), '/bucket/it%28s%29%2A%21');
});

test('S3 reference: PUT object', (t) => {
  const signature = '98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd';
  const request: SignedRequest = {
    method: 'PUT',
    rawPath: '/test%24file.text',
    query: [],
    headers: {
      host: 'examplebucket.s3.amazonaws.com',
      date: 'Fri, 24 May 2013 00:00:00 GMT',
      'x-amz-date': '20130524T000000Z',
      'x-amz-storage-class': 'REDUCED_REDUNDANCY',
      'x-amz-content-sha256': '44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072',
      authorization: headerAuth('date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class', signature),
    },
  };
  t.notThrows(() => verifySigV4(request, parseSigV4(request, S3_NOW), S3_SECRET));
});

test('S3 reference: GET bucket lifecycle and list objects', (t) => {
  const base = {
    host: 'examplebucket.s3.amazonaws.com',
    'x-amz-date': '20130524T000000Z',
    'x-amz-content-sha256': EMPTY_SHA256,
  };
  const lifecycle: SignedRequest = {
    method: 'GET',
    rawPath: '/',
    query: parseQuery('lifecycle'),
    headers: {
      ...base,
      authorization: headerAuth(
        'host;x-amz-content-sha256;x-amz-date',
        'fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543',
      ),
    },
  };
  t.notThrows(() => verifySigV4(lifecycle, parseSigV4(lifecycle, S3_NOW), S3_SECRET));
  const list: SignedRequest = {
    method: 'GET',
    rawPath: '/',
    query: parseQuery('max-keys=2&prefix=J'),
    headers: {
      ...base,
      authorization: headerAuth(
        'host;x-amz-content-sha256;x-amz-date',
        '34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7',
      ),
    },
  };
  t.notThrows(() => verifySigV4(list, parseSigV4(list, S3_NOW), S3_SECRET));
});

const presignedQuery =
  'X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404';

test('S3 reference: presigned URL, then expired', (t) => {
  const request: SignedRequest = {
    method: 'GET',
    rawPath: '/test.txt',
    query: parseQuery(presignedQuery),
    headers: { host: 'examplebucket.s3.amazonaws.com' },
  };
  const auth = parseSigV4(request, S3_NOW + 3600_000);
  t.true(auth.presigned);
  t.notThrows(() => verifySigV4(request, auth, S3_SECRET));
  const expired = t.throws(() => parseSigV4(request, S3_NOW + 86_401_000));
  t.true(isS3Error(expired) && expired.code === 'AccessDenied' && expired.message === 'Request has expired');
});

test('clock skew beyond 15 minutes is RequestTimeTooSkewed', (t) => {
  const request: SignedRequest = {
    method: 'GET',
    rawPath: '/',
    query: [],
    headers: {
      host: 'h',
      'x-amz-date': '20130524T000000Z',
      'x-amz-content-sha256': EMPTY_SHA256,
      authorization: headerAuth('host;x-amz-date', 'ab'),
    },
  };
  t.notThrows(() => parseSigV4(request, S3_NOW + 14 * 60_000));
  const error = t.throws(() => parseSigV4(request, S3_NOW + 16 * 60_000));
  t.true(isS3Error(error) && error.code === 'RequestTimeTooSkewed' && error.status === 403);
});

test('unsigned host and malformed credential are refused', (t) => {
  const request: SignedRequest = {
    method: 'GET',
    rawPath: '/',
    query: [],
    headers: {
      host: 'h',
      'x-amz-date': '20130524T000000Z',
      'x-amz-content-sha256': EMPTY_SHA256,
      authorization: headerAuth('x-amz-date', 'ab'),
    },
  };
  t.throws(() => parseSigV4(request, S3_NOW), { code: 'AccessDenied' } as never);
  const bad = {
    ...request,
    headers: { ...request.headers, authorization: 'AWS4-HMAC-SHA256 Credential=x/y, SignedHeaders=host, Signature=ab' },
  };
  t.throws(() => parseSigV4(bad, S3_NOW), { code: 'AuthorizationHeaderMalformed' } as never);
});

export const CHUNKED_SEED = '4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9';

test('S3 reference: chunked upload seed signature', (t) => {
  const request: SignedRequest = {
    method: 'PUT',
    rawPath: '/examplebucket/chunkObject.txt',
    query: [],
    headers: {
      host: 's3.amazonaws.com',
      'x-amz-date': '20130524T000000Z',
      'x-amz-storage-class': 'REDUCED_REDUNDANCY',
      'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
      'content-encoding': 'aws-chunked',
      'x-amz-decoded-content-length': '66560',
      'content-length': '66824',
      authorization: headerAuth(
        'content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class',
        CHUNKED_SEED,
      ),
    },
  };
  t.notThrows(() => verifySigV4(request, parseSigV4(request, S3_NOW), S3_SECRET));
});
