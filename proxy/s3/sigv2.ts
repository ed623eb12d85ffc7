/**
 * AWS Signature Version 2 as S3 checks it (s3cmd `--signature-v2`, boto 2, older SDKs): the
 * header form `Authorization: AWS <AccessKeyId>:<Signature>` and the presigned form
 * `?AWSAccessKeyId=&Expires=&Signature=`. The signature is base64 HMAC-SHA1 of
 *
 *   Verb \n Content-MD5 \n Content-Type \n Date-or-Expires \n CanonicalizedAmzHeaders CanonicalizedResource
 *
 * where the resource is the path exactly as sent (prefixed with `/<bucket>` for virtual-hosted
 * requests) plus the subresources S3 signs, sorted. Parsing checks the shape and time (skew
 * beyond 15 minutes, expired URLs) without any secret; `verifySigV2` then checks the signature.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { S3Errors } from './errors.js';
import { formatAmzDate, MAX_SKEW_MS, type HeaderValue, type SignedRequest } from './sigv4.js';

export interface SigV2Auth {
  accessKey: string;
  signature: string;
  /** The `Expires` of a presigned URL (epoch seconds, as sent), else undefined. */
  expires?: string;
}

/** The query parameters that are part of the signed resource (S3's list, as s3api keeps it). */
const SIGNED_SUBRESOURCES = new Set([
  'acl',
  'cors',
  'delete',
  'lifecycle',
  'location',
  'logging',
  'notification',
  'partNumber',
  'policy',
  'requestPayment',
  'response-cache-control',
  'response-content-disposition',
  'response-content-encoding',
  'response-content-language',
  'response-content-type',
  'response-expires',
  'restore',
  'tagging',
  'torrent',
  'uploadId',
  'uploads',
  'versionId',
  'versioning',
  'versions',
  'website',
]);

function headerText(value: HeaderValue): string {
  if (value === undefined) return '';
  return (Array.isArray(value) ? value.join(',') : value).trim();
}

function queryValue(query: SignedRequest['query'], name: string): string | undefined {
  return query.find(([key]) => key === name)?.[1];
}

/** True when the request carries Signature Version 2 in either form. */
export function hasSigV2(request: SignedRequest): boolean {
  return (
    headerText(request.headers.authorization).startsWith('AWS ') ||
    queryValue(request.query, 'AWSAccessKeyId') !== undefined
  );
}

/** Reads the access key and signature and checks the request's time. */
export function parseSigV2(request: SignedRequest, nowMs: number): SigV2Auth {
  const authorization = headerText(request.headers.authorization);
  if (authorization.startsWith('AWS ')) {
    const credentials = authorization.slice(4);
    const colon = credentials.lastIndexOf(':');
    if (colon <= 0 || colon === credentials.length - 1) {
      throw S3Errors.invalidArgument(
        'Authorization',
        authorization,
        'AWS authorization header is invalid.  Expected AwsAccessKeyId:signature',
      );
    }
    const amzDate = headerText(request.headers['x-amz-date']);
    const date = amzDate !== '' ? amzDate : headerText(request.headers.date);
    const requestMs = Date.parse(date);
    if (date === '' || Number.isNaN(requestMs)) {
      throw S3Errors.accessDenied('AWS authentication requires a valid Date or x-amz-date header');
    }
    if (Math.abs(nowMs - requestMs) > MAX_SKEW_MS) {
      throw S3Errors.requestTimeTooSkewed(date, formatAmzDate(nowMs));
    }
    return { accessKey: credentials.slice(0, colon), signature: credentials.slice(colon + 1) };
  }
  const accessKey = queryValue(request.query, 'AWSAccessKeyId') ?? '';
  const expires = queryValue(request.query, 'Expires');
  // A `+` of the base64 signature sent unencoded reads as a space in a query string.
  const signature = queryValue(request.query, 'Signature')?.replace(/ /g, '+');
  if (accessKey === '' || expires === undefined || signature === undefined) {
    throw S3Errors.accessDenied(
      'Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters',
    );
  }
  const expiresS = Number(expires);
  if (!/^\d+$/.test(expires) || !Number.isSafeInteger(expiresS)) {
    throw S3Errors.accessDenied('Invalid date (should be seconds since epoch): ' + expires);
  }
  if (nowMs > expiresS * 1000) throw S3Errors.accessDenied('Request has expired');
  return { accessKey, signature, expires };
}

/** The canonical resource: the raw path (with `/<bucket>` for virtual-hosted style) and signed subresources. */
export function canonicalResourceV2(request: SignedRequest, virtualBucket: string | undefined): string {
  const path = request.rawPath === '' ? '/' : request.rawPath;
  let resource = virtualBucket === undefined ? path : `/${virtualBucket}${path}`;
  const signed = request.query.filter(([name]) => SIGNED_SUBRESOURCES.has(name));
  if (signed.length > 0) {
    signed.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    resource += `?${signed.map(([name, value]) => (value === '' ? name : `${name}=${value}`)).join('&')}`;
  }
  return resource;
}

export function stringToSignV2(request: SignedRequest, auth: SigV2Auth, virtualBucket: string | undefined): string {
  const headers = request.headers;
  const amzHeaders = Object.keys(headers)
    .filter((name) => name.startsWith('x-amz-'))
    .sort()
    .map((name) => `${name}:${headerText(headers[name])}\n`)
    .join('');
  // With x-amz-date the Date line is empty (the date is signed among the x-amz- headers).
  let dateLine = auth.expires ?? headerText(headers.date);
  if (auth.expires === undefined && headers['x-amz-date'] !== undefined) dateLine = '';
  return [
    request.method.toUpperCase(),
    headerText(headers['content-md5']),
    headerText(headers['content-type']),
    dateLine,
    amzHeaders + canonicalResourceV2(request, virtualBucket),
  ].join('\n');
}

export function signV2(secret: string, text: string): string {
  return createHmac('sha1', secret).update(text).digest('base64');
}

/** Checks the signature with the access key's secret: SignatureDoesNotMatch otherwise. */
export function verifySigV2(
  request: SignedRequest,
  auth: SigV2Auth,
  secret: string,
  virtualBucket: string | undefined,
): void {
  const text = stringToSignV2(request, auth, virtualBucket);
  const expected = Buffer.from(signV2(secret, text));
  const given = Buffer.from(auth.signature);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
    throw S3Errors.signatureDoesNotMatch({
      AWSAccessKeyId: auth.accessKey,
      StringToSign: text,
      SignatureProvided: auth.signature,
    });
  }
}
