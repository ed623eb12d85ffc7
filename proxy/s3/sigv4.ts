/**
 * AWS Signature Version 4 as S3 checks it: the Authorization header form and the presigned-URL
 * (query string) form, the canonical request, the string to sign and the derived signing key, plus
 * the per-chunk signatures of `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` bodies.
 *
 * Parsing (`parseSigV4`) checks the request's shape and time (skew beyond 15 minutes, expired
 * presigned URLs) without any secret; `verifySigV4` then checks the signature against the secret
 * the caller looked up for the access key. Both throw `S3Error`s with S3's codes.
 * Region is not enforced: the signature covers whatever region the client put in its scope.
 */
import * as crypto from 'node:crypto';
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { S3Errors } from './errors.js';

export const ALGORITHM = 'AWS4-HMAC-SHA256';
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
export const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';
export const STREAMING_SIGNED = 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD';
export const STREAMING_SIGNED_TRAILER = 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER';
export const STREAMING_UNSIGNED_TRAILER = 'STREAMING-UNSIGNED-PAYLOAD-TRAILER';
/** S3 refuses requests whose time is more than 15 minutes from the server's. */
export const MAX_SKEW_MS = 15 * 60 * 1000;
/** A presigned URL lives at most 7 days. */
export const MAX_PRESIGN_EXPIRES_S = 604_800;

export type HeaderValue = string | string[] | undefined;
export type Headers = Readonly<Record<string, HeaderValue>>;

export interface SignedRequest {
  method: string;
  /** The request path exactly as received, still percent-encoded, without the query. */
  rawPath: string;
  /** The query as decoded (name, value) pairs, in the order received. */
  query: readonly (readonly [string, string])[];
  /** Lower-case header names, as Node's IncomingMessage gives them. */
  headers: Headers;
}

export interface SigV4Auth {
  accessKey: string;
  /** `YYYYMMDD/region/service/aws4_request`. */
  scope: string;
  date: string;
  region: string;
  service: string;
  /** `YYYYMMDDTHHMMSSZ`. */
  amzDate: string;
  signedHeaders: string[];
  signature: string;
  /** The x-amz-content-sha256 value the signature covers (`UNSIGNED-PAYLOAD` for presigned URLs). */
  payloadHash: string;
  presigned: boolean;
}

// crypto.hash (Node 20.12+) hashes in one call, without a Hash object: a third of the cost for
// the short canonical requests every signed request hashes.
const oneShotHash = (crypto as { hash?: (algorithm: string, data: string | Buffer, encoding: 'hex') => string }).hash;

export function sha256Hex(data: string | Buffer): string {
  if (oneShotHash !== undefined) return oneShotHash('sha256', data, 'hex');
  return createHash('sha256').update(data).digest('hex');
}

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

/** RFC 3986 encoding as SigV4 wants it: everything but A-Z a-z 0-9 - . _ ~ (and `/` if kept). */
export function uriEncode(value: string, encodeSlash: boolean): string {
  const encoded = encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return encodeSlash ? encoded : encoded.replace(/%2F/g, '/');
}

export function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** Splits a raw query string into decoded pairs (`+` is a space, as in form encoding). */
export function parseQuery(rawQuery: string): [string, string][] {
  const pairs: [string, string][] = [];
  if (rawQuery === '') return pairs;
  for (const part of rawQuery.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = eq === -1 ? part : part.slice(0, eq);
    const value = eq === -1 ? '' : part.slice(eq + 1);
    pairs.push([safeDecode(name.replace(/\+/g, ' ')), safeDecode(value.replace(/\+/g, ' '))]);
  }
  return pairs;
}

/** Unreserved characters and `/` only: decoding and re-encoding each segment changes nothing. */
const CANONICAL_PATH = /^[A-Za-z0-9\-._~/]*$/;

/** S3 does not normalise paths: each segment is decoded and re-encoded once. */
export function canonicalUri(rawPath: string): string {
  const path = rawPath === '' ? '/' : rawPath;
  if (CANONICAL_PATH.test(path)) return path;
  return path
    .split('/')
    .map((segment) => uriEncode(safeDecode(segment), true))
    .join('/');
}

export function canonicalQueryString(query: readonly (readonly [string, string])[], exclude?: string): string {
  const encoded = query
    .filter(([name]) => name !== exclude)
    .map(([name, value]) => [uriEncode(name, true), uriEncode(value, true)] as const);
  encoded.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return encoded.map(([name, value]) => `${name}=${value}`).join('&');
}

function headerString(value: HeaderValue): string {
  if (value === undefined) return '';
  return (Array.isArray(value) ? value.join(',') : value).trim().replace(/\s+/g, ' ');
}

export function canonicalHeaders(headers: Headers, signedHeaders: readonly string[]): string {
  return signedHeaders.map((name) => `${name}:${headerString(headers[name])}\n`).join('');
}

export function canonicalRequest(
  request: SignedRequest,
  signedHeaders: readonly string[],
  payloadHash: string,
  excludeQuery?: string,
): string {
  return [
    request.method.toUpperCase(),
    canonicalUri(request.rawPath),
    canonicalQueryString(request.query, excludeQuery),
    canonicalHeaders(request.headers, signedHeaders),
    signedHeaders.join(';'),
    payloadHash,
  ].join('\n');
}

export function stringToSign(amzDate: string, scope: string, canonical: string): string {
  return [ALGORITHM, amzDate, scope, sha256Hex(canonical)].join('\n');
}

const signingKeyCache = new Map<string, Buffer>();
const SIGNING_KEY_CACHE_MAX = 1024;

/** kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request"). */
export function signingKey(secret: string, date: string, region: string, service: string): Buffer {
  const cacheKey = `${secret}\n${date}\n${region}\n${service}`;
  const cached = signingKeyCache.get(cacheKey);
  if (cached !== undefined) return cached;
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), 'aws4_request');
  if (signingKeyCache.size >= SIGNING_KEY_CACHE_MAX) signingKeyCache.clear(); // bounded; keys are cheap to redo
  signingKeyCache.set(cacheKey, key);
  return key;
}

export function sign(key: Buffer, text: string): string {
  return createHmac('sha256', key).update(text).digest('hex');
}

export function signaturesEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

const HEX_SIGNATURE = /^[0-9a-fA-F]{64}$/;

/** A computed HMAC-SHA256 digest against a hex signature as sent (either case), in constant time. */
function signatureMatches(expected: Buffer, provided: string): boolean {
  return HEX_SIGNATURE.test(provided) && timingSafeEqual(expected, Buffer.from(provided, 'hex'));
}

/** The number of `count` decimal digits at `start`, or NaN. */
function digitsAt(text: string, start: number, count: number): number {
  let value = 0;
  for (let index = start; index < start + count; index += 1) {
    const digit = text.charCodeAt(index) - 48;
    if (digit < 0 || digit > 9) return Number.NaN;
    value = value * 10 + digit;
  }
  return value;
}

/** `YYYYMMDDTHHMMSSZ` to epoch ms, or NaN. */
export function parseAmzDate(value: string): number {
  if (value.length !== 16 || value[8] !== 'T' || value[15] !== 'Z') return Number.NaN;
  // Date.UTC is NaN as soon as one part is.
  return Date.UTC(
    digitsAt(value, 0, 4),
    digitsAt(value, 4, 2) - 1,
    digitsAt(value, 6, 2),
    digitsAt(value, 9, 2),
    digitsAt(value, 11, 2),
    digitsAt(value, 13, 2),
  );
}

export function formatAmzDate(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
}

interface Credential {
  accessKey: string;
  date: string;
  region: string;
  service: string;
}

function parseCredential(value: string, malformed: (message: string) => Error): Credential {
  const parts = value.split('/');
  if (parts.length < 5 || parts[parts.length - 1] !== 'aws4_request') {
    throw malformed(
      `The authorization header is malformed; the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".`,
    );
  }
  const [date = '', region = '', service = ''] = parts.slice(-4, -1);
  if (!/^\d{8}$/.test(date)) throw malformed(`Invalid credential date "${date}". This date is not the current date.`);
  return { accessKey: parts.slice(0, -4).join('/'), date, region, service };
}

function firstHeader(headers: Headers, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function queryValue(query: readonly (readonly [string, string])[], name: string): string | undefined {
  return query.find(([key]) => key === name)?.[1];
}

/** True when the request carries SigV4 in any form (header or query). */
export function hasSigV4(request: SignedRequest): boolean {
  const authorization = firstHeader(request.headers, 'authorization');
  return (
    authorization?.startsWith(`${ALGORITHM} `) === true || queryValue(request.query, 'X-Amz-Algorithm') !== undefined
  );
}

/**
 * Reads the request's SigV4 parameters and checks its time: throws RequestTimeTooSkewed,
 * AccessDenied (expired presigned URL), or a malformed-authorization error.
 */
export function parseSigV4(request: SignedRequest, nowMs: number = Date.now()): SigV4Auth {
  const authorization = firstHeader(request.headers, 'authorization');
  if (authorization !== undefined && authorization.startsWith(`${ALGORITHM} `)) {
    return parseHeaderAuth(request, authorization, nowMs);
  }
  if (queryValue(request.query, 'X-Amz-Algorithm') !== undefined) return parseQueryAuth(request, nowMs);
  throw S3Errors.accessDenied();
}

// Built field by field: an object spread here cost more than the rest of the parse (V8 slow path).
function sigV4Auth(
  credential: Credential,
  amzDate: string,
  signedHeaders: string[],
  signature: string,
  payloadHash: string,
  presigned: boolean,
): SigV4Auth {
  return {
    accessKey: credential.accessKey,
    date: credential.date,
    region: credential.region,
    service: credential.service,
    scope: `${credential.date}/${credential.region}/${credential.service}/aws4_request`,
    amzDate,
    signedHeaders,
    signature,
    payloadHash,
    presigned,
  };
}

function parseHeaderAuth(request: SignedRequest, authorization: string, nowMs: number): SigV4Auth {
  let credentialText: string | undefined;
  let signedHeadersText: string | undefined;
  let signature: string | undefined;
  for (const part of authorization.slice(ALGORITHM.length + 1).split(',')) {
    const eq = part.indexOf('=');
    if (eq === -1) continue;
    const name = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (name === 'Credential') credentialText = value;
    else if (name === 'SignedHeaders') signedHeadersText = value;
    else if (name === 'Signature') signature = value;
  }
  if (credentialText === undefined || signedHeadersText === undefined || signature === undefined) {
    throw S3Errors.authorizationHeaderMalformed(
      'The authorization header is malformed; the authorization header requires three components: Credential, SignedHeaders, and Signature.',
    );
  }
  const credential = parseCredential(credentialText, S3Errors.authorizationHeaderMalformed);
  const amzDate = firstHeader(request.headers, 'x-amz-date');
  let requestMs: number;
  let amzDateValue: string;
  if (amzDate !== undefined) {
    requestMs = parseAmzDate(amzDate);
    amzDateValue = amzDate;
  } else {
    const date = firstHeader(request.headers, 'date');
    requestMs = date === undefined ? Number.NaN : Date.parse(date);
    amzDateValue = Number.isNaN(requestMs) ? '' : formatAmzDate(requestMs);
  }
  if (Number.isNaN(requestMs)) {
    throw S3Errors.accessDenied('AWS authentication requires a valid Date or x-amz-date header');
  }
  if (Math.abs(nowMs - requestMs) > MAX_SKEW_MS) {
    throw S3Errors.requestTimeTooSkewed(amzDateValue, formatAmzDate(nowMs));
  }
  if (amzDateValue.slice(0, 8) !== credential.date) {
    throw S3Errors.signatureDoesNotMatch();
  }
  const signedHeaders = signedHeadersText.split(';').map((h) => h.trim().toLowerCase());
  if (!signedHeaders.includes('host')) {
    throw S3Errors.accessDenied('Host must be signed.');
  }
  const payloadHash = firstHeader(request.headers, 'x-amz-content-sha256');
  if (payloadHash === undefined) throw S3Errors.missingSecurityHeader('x-amz-content-sha256');
  return sigV4Auth(credential, amzDateValue, signedHeaders, signature, payloadHash, false);
}

function parseQueryAuth(request: SignedRequest, nowMs: number): SigV4Auth {
  const malformed = S3Errors.authorizationQueryParametersError;
  const algorithm = queryValue(request.query, 'X-Amz-Algorithm');
  if (algorithm !== ALGORITHM) throw malformed('X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"');
  const credentialText = queryValue(request.query, 'X-Amz-Credential');
  const amzDate = queryValue(request.query, 'X-Amz-Date');
  const expiresText = queryValue(request.query, 'X-Amz-Expires');
  const signedHeadersText = queryValue(request.query, 'X-Amz-SignedHeaders');
  const signature = queryValue(request.query, 'X-Amz-Signature');
  if (
    credentialText === undefined ||
    amzDate === undefined ||
    expiresText === undefined ||
    signedHeadersText === undefined ||
    signature === undefined
  ) {
    throw malformed(
      'Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.',
    );
  }
  const credential = parseCredential(credentialText, malformed);
  const requestMs = parseAmzDate(amzDate);
  if (Number.isNaN(requestMs))
    throw malformed("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"");
  const expires = Number(expiresText);
  if (!Number.isInteger(expires) || expires < 0) throw malformed('X-Amz-Expires should be a number');
  if (expires > MAX_PRESIGN_EXPIRES_S)
    throw malformed('X-Amz-Expires must be less than a week (in seconds) that is 604800');
  if (requestMs - nowMs > MAX_SKEW_MS) throw S3Errors.accessDenied('Request is not valid yet');
  if (nowMs > requestMs + expires * 1000) throw S3Errors.accessDenied('Request has expired');
  if (amzDate.slice(0, 8) !== credential.date) throw S3Errors.signatureDoesNotMatch();
  const signedHeaders = signedHeadersText.split(';').map((h) => h.trim().toLowerCase());
  if (!signedHeaders.includes('host')) throw S3Errors.accessDenied('Host must be signed.');
  const payloadHash = firstHeader(request.headers, 'x-amz-content-sha256') ?? UNSIGNED_PAYLOAD;
  return sigV4Auth(credential, amzDate, signedHeaders, signature, payloadHash, true);
}

/** The string to sign this request should have; exposed for SignatureDoesNotMatch details and tests. */
export function expectedStringToSign(request: SignedRequest, auth: SigV4Auth): string {
  const canonical = canonicalRequest(
    request,
    auth.signedHeaders,
    auth.payloadHash,
    auth.presigned ? 'X-Amz-Signature' : undefined,
  );
  return stringToSign(auth.amzDate, auth.scope, canonical);
}

/** Checks the signature with the access key's secret; returns the signing key (for chunk signatures). */
export function verifySigV4(request: SignedRequest, auth: SigV4Auth, secret: string): Buffer {
  const key = signingKey(secret, auth.date, auth.region, auth.service);
  const text = expectedStringToSign(request, auth);
  if (!signatureMatches(createHmac('sha256', key).update(text).digest(), auth.signature)) {
    throw S3Errors.signatureDoesNotMatch({
      AWSAccessKeyId: auth.accessKey,
      StringToSign: text,
      SignatureProvided: auth.signature,
    });
  }
  return key;
}

/** The string to sign for one aws-chunked chunk (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD`). */
export function chunkStringToSign(
  amzDate: string,
  scope: string,
  previousSignature: string,
  chunkSha256Hex: string,
): string {
  return ['AWS4-HMAC-SHA256-PAYLOAD', amzDate, scope, previousSignature, EMPTY_SHA256, chunkSha256Hex].join('\n');
}

/** The string to sign for the trailer of a `...-PAYLOAD-TRAILER` body. */
export function trailerStringToSign(
  amzDate: string,
  scope: string,
  previousSignature: string,
  trailerSha256Hex: string,
): string {
  return ['AWS4-HMAC-SHA256-TRAILER', amzDate, scope, previousSignature, trailerSha256Hex].join('\n');
}
