// SigV2 against the worked example of AWS's S3 developer guide (virtual-hosted GET of
// /photos/puppy.jpg in bucket johnsmith), plus the resource and time rules.
import test from 'ava';
import { isS3Error } from '../../../proxy/s3/errors.js';
import {
  canonicalResourceV2,
  hasSigV2,
  parseSigV2,
  signV2,
  stringToSignV2,
  verifySigV2,
} from '../../../proxy/s3/sigv2.js';
import { parseQuery, type SignedRequest } from '../../../proxy/s3/sigv4.js';

const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const ACCESS = 'AKIAIOSFODNN7EXAMPLE';
const DATE = 'Tue, 27 Mar 2007 19:36:42 +0000';
const NOW = Date.parse(DATE);

function request(method: string, url: string, headers: Record<string, string>): SignedRequest {
  const [rawPath = '/', rawQuery = ''] = url.split('?');
  return { method, rawPath, query: parseQuery(rawQuery), headers };
}

test('developer guide example: GET object, virtual-hosted', (t) => {
  const signed = request('GET', '/photos/puppy.jpg', {
    host: 'johnsmith.s3.amazonaws.com',
    date: DATE,
    authorization: `AWS ${ACCESS}:bWq2s1WEIj+Ydj0vQ697zp+IXMU=`,
  });
  t.true(hasSigV2(signed));
  const auth = parseSigV2(signed, NOW);
  t.is(auth.accessKey, ACCESS);
  t.is(stringToSignV2(signed, auth, 'johnsmith'), `GET\n\n\n${DATE}\n/johnsmith/photos/puppy.jpg`);
  t.notThrows(() => verifySigV2(signed, auth, SECRET, 'johnsmith'));
  const wrong = t.throws(() => verifySigV2(signed, auth, 'not the secret', 'johnsmith'));
  t.true(isS3Error(wrong) && wrong.code === 'SignatureDoesNotMatch');
});

test('resource: signed subresources sorted, others left out; x-amz-date empties the Date line', (t) => {
  const signed = request('PUT', '/bucket/key?uploadId=u1&partNumber=2&foo=bar', {
    'x-amz-date': DATE,
    'x-amz-meta-b': ' two ',
    'x-amz-meta-a': 'one',
    'content-type': 'text/plain',
    'content-md5': 'abc==',
  });
  t.is(canonicalResourceV2(signed, undefined), '/bucket/key?partNumber=2&uploadId=u1');
  const text = stringToSignV2(signed, { accessKey: ACCESS, signature: '' }, undefined);
  t.is(
    text,
    `PUT\nabc==\ntext/plain\n\nx-amz-date:${DATE}\nx-amz-meta-a:one\nx-amz-meta-b:two\n/bucket/key?partNumber=2&uploadId=u1`,
  );
});

test('presigned: Expires is the date line; expired and skewed requests are refused', (t) => {
  const expires = String(Math.floor(NOW / 1000) + 60);
  const text = `GET\n\n\n${expires}\n/bucket/key`;
  const signature = encodeURIComponent(signV2(SECRET, text));
  const signed = request('GET', `/bucket/key?AWSAccessKeyId=${ACCESS}&Expires=${expires}&Signature=${signature}`, {});
  const auth = parseSigV2(signed, NOW);
  t.is(auth.expires, expires);
  t.notThrows(() => verifySigV2(signed, auth, SECRET, undefined));
  const expired = t.throws(() => parseSigV2(signed, NOW + 120_000));
  t.true(isS3Error(expired) && expired.code === 'AccessDenied');
  const headerForm = request('GET', '/bucket/key', { date: DATE, authorization: `AWS ${ACCESS}:x` });
  const skewed = t.throws(() => parseSigV2(headerForm, NOW + 16 * 60_000));
  t.true(isS3Error(skewed) && skewed.code === 'RequestTimeTooSkewed');
  const undated = t.throws(() => parseSigV2(request('GET', '/b/k', { authorization: `AWS ${ACCESS}:x` }), NOW));
  t.true(isS3Error(undated) && undated.code === 'AccessDenied');
});
