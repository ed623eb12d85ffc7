/**
 * AWS Signature Version 4 (header form), written on node:crypto so the S3 hot path has no SDK.
 * `signRequest` returns the headers to add (`Authorization`, `x-amz-date`,
 * `x-amz-content-sha256` for S3); the caller sends them unchanged. Signing keys are cached per
 * (secret, date, region, service), since they change once a day.
 * Pinned by AWS's documented test vectors (test/unit/bench/sigv4.test.ts).
 */
import { createHash, createHmac } from 'node:crypto';

export interface SigV4Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

export interface SigV4Request {
  readonly method: string;
  /** The path as sent on the wire (already URI-encoded, e.g. `/bucket/my%20key`). */
  readonly path: string;
  /** Query parameters, unencoded; they are encoded and sorted here. */
  readonly query?: Readonly<Record<string, string>>;
  /** Headers to sign (must include `host`); names in any case. */
  readonly headers: Readonly<Record<string, string>>;
  /** Hex SHA-256 of the body, or `UNSIGNED-PAYLOAD`. */
  readonly payloadHash: string;
}

export interface SigV4Scope {
  readonly region: string;
  readonly service: string;
  /** `YYYYMMDDTHHMMSSZ`. */
  readonly amzDate: string;
}

export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** RFC 3986 encoding as SigV4 wants it (unreserved characters kept, everything else %XX). */
export function uriEncode(text: string, keepSlash = false): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const char = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-._~]/.test(char) || (keepSlash && char === '/')) out += char;
    else out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

export function amzDateOf(date: Date): string {
  return date
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
}

export function canonicalQuery(query: Readonly<Record<string, string>> | undefined): string {
  if (query === undefined) return '';
  return Object.entries(query)
    .map(([key, value]) => [uriEncode(key), uriEncode(value)] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([key, value]) => `${key}=${value}`)
    .join('&');
}

export function canonicalRequest(request: SigV4Request): { text: string; signedHeaders: string } {
  const headers = new Map<string, string>();
  for (const [name, value] of Object.entries(request.headers)) {
    headers.set(name.toLowerCase(), value.trim().replace(/\s+/g, ' '));
  }
  const names = [...headers.keys()].sort();
  const signedHeaders = names.join(';');
  const text = [
    request.method,
    request.path,
    canonicalQuery(request.query),
    names.map((name) => `${name}:${headers.get(name) ?? ''}\n`).join(''),
    signedHeaders,
    request.payloadHash,
  ].join('\n');
  return { text, signedHeaders };
}

const signingKeys = new Map<string, Buffer>();

export function signingKey(secret: string, date: string, region: string, service: string): Buffer {
  const cacheKey = `${secret}\u0000${date}\u0000${region}\u0000${service}`;
  const cached = signingKeys.get(cacheKey);
  if (cached !== undefined) return cached;
  const hmac = (key: string | Buffer, data: string): Buffer => createHmac('sha256', key).update(data).digest();
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), 'aws4_request');
  if (signingKeys.size > 64) signingKeys.clear(); // bounded: a run uses one or two
  signingKeys.set(cacheKey, key);
  return key;
}

/** The signature and the Authorization header value for a request. */
export function sign(
  credentials: SigV4Credentials,
  scope: SigV4Scope,
  request: SigV4Request,
): { signature: string; authorization: string; stringToSign: string; canonical: string } {
  const date = scope.amzDate.slice(0, 8);
  const credentialScope = `${date}/${scope.region}/${scope.service}/aws4_request`;
  const { text, signedHeaders } = canonicalRequest(request);
  const stringToSign = [
    'AWS4-HMAC-SHA256',
    scope.amzDate,
    credentialScope,
    createHash('sha256').update(text).digest('hex'),
  ].join('\n');
  const signature = createHmac('sha256', signingKey(credentials.secretAccessKey, date, scope.region, scope.service))
    .update(stringToSign)
    .digest('hex');
  const authorization =
    `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${credentialScope}, ` +
    `SignedHeaders=${signedHeaders}, Signature=${signature}`;
  return { signature, authorization, stringToSign, canonical: text };
}

/**
 * Headers for an S3 request: adds `x-amz-date` and `x-amz-content-sha256` to the signed set,
 * and returns them with `authorization`.
 */
export function signS3Headers(
  credentials: SigV4Credentials,
  region: string,
  request: Omit<SigV4Request, 'headers'> & { headers: Record<string, string> },
  now: Date = new Date(),
): Record<string, string> {
  const amzDate = amzDateOf(now);
  const headers: Record<string, string> = {
    ...request.headers,
    'x-amz-date': amzDate,
    'x-amz-content-sha256': request.payloadHash,
  };
  const { authorization } = sign(credentials, { region, service: 's3', amzDate }, { ...request, headers });
  return { ...headers, authorization };
}
