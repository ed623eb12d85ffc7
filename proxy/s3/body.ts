/**
 * The request body as the S3 layer hands it on: decoded from aws-chunked when the client used a
 * streaming payload, and checked while it streams (SHA-256 of a signed payload, x-amz-checksum-*
 * headers or trailers, and Content-MD5 unless Swift checks that itself). Nothing is buffered.
 * The first failure is kept in `failure()` so the caller can answer with S3's error (e.g.
 * XAmzContentSHA256Mismatch) rather than the status of the aborted Swift write.
 */
import type { Readable } from 'node:stream';
import { AwsChunkedDecoder } from './chunked.js';
import { BodyCheckTransform, isChecksumAlgorithm, isWellFormedChecksum, type ChecksumAlgorithm } from './checksums.js';
import { S3Errors, type S3Error, isS3Error } from './errors.js';
import {
  STREAMING_SIGNED,
  STREAMING_SIGNED_TRAILER,
  STREAMING_UNSIGNED_TRAILER,
  UNSIGNED_PAYLOAD,
  type SigV4Auth,
} from './sigv4.js';

export interface CheckedBody {
  stream: Readable;
  check: BodyCheckTransform;
  /** The decoded length when known up front (Content-Length or x-amz-decoded-content-length). */
  length?: number;
  /** Checksums the client sent or announced, by algorithm (header value, or `undefined` for a trailer). */
  checksumAlgorithms: ChecksumAlgorithm[];
  failure(): S3Error | undefined;
}

type HeaderGetter = (name: string) => string | undefined;

export interface BodyUse {
  /**
   * The body is written to a Swift object with Content-MD5 as its `ETag` header (object.ts
   * storeBody): the object servers verify the MD5 and refuse a mismatch with 422, which the
   * caller answers as BadDigest, so it is not hashed a second time here.
   */
  storedWithEtag?: boolean;
}

function parseLength(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const length = Number(value);
  if (!Number.isSafeInteger(length) || length < 0) throw S3Errors.invalidArgument(name, value, `Invalid ${name}`);
  return length;
}

export function prepareBody(
  source: Readable,
  header: HeaderGetter,
  auth: SigV4Auth | undefined,
  maxLength: number,
  use: BodyUse = {},
): CheckedBody {
  const payload = auth?.payloadHash ?? UNSIGNED_PAYLOAD;
  const contentEncoding = header('content-encoding') ?? '';
  const streaming = payload.startsWith('STREAMING-');
  let decoder: AwsChunkedDecoder | undefined;
  let length: number | undefined;
  if (streaming) {
    if (![STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER].includes(payload)) {
      throw S3Errors.invalidArgument(
        'x-amz-content-sha256',
        payload,
        'x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-... or a valid sha256 value.',
      );
    }
    length = parseLength(header('x-amz-decoded-content-length'), 'x-amz-decoded-content-length');
    const signed = payload !== STREAMING_UNSIGNED_TRAILER;
    if (signed && auth === undefined) throw S3Errors.accessDenied();
    decoder = new AwsChunkedDecoder({
      signing:
        signed && auth !== undefined
          ? { key: authKey(auth), amzDate: auth.amzDate, scope: auth.scope, seedSignature: auth.signature }
          : undefined,
      signedTrailer: payload === STREAMING_SIGNED_TRAILER,
      decodedLength: length,
    });
  } else {
    length = parseLength(header('content-length'), 'Content-Length');
    if (contentEncoding.split(',').some((v) => v.trim() === 'aws-chunked')) {
      decoder = new AwsChunkedDecoder({
        decodedLength: parseLength(header('x-amz-decoded-content-length'), 'x-amz-decoded-content-length'),
      });
      length = parseLength(header('x-amz-decoded-content-length'), 'x-amz-decoded-content-length');
    }
  }
  if (length !== undefined && length > maxLength) throw S3Errors.entityTooLarge();

  const expected: Partial<Record<ChecksumAlgorithm, string>> = {};
  const algorithms: ChecksumAlgorithm[] = [];
  for (const algorithm of ['crc32', 'crc32c', 'sha1', 'sha256'] as const) {
    const value = header(`x-amz-checksum-${algorithm}`);
    if (value === undefined) continue;
    if (!isWellFormedChecksum(algorithm, value)) {
      throw S3Errors.invalidRequest(`Value for x-amz-checksum-${algorithm} header is invalid.`);
    }
    expected[algorithm] = value;
    algorithms.push(algorithm);
  }
  const trailerNames = (header('x-amz-trailer') ?? '')
    .split(',')
    .map((name) => name.trim().toLowerCase())
    .filter(Boolean);
  const trailerAlgorithms: ChecksumAlgorithm[] = [];
  for (const name of trailerNames) {
    const algorithm = name.replace(/^x-amz-checksum-/, '');
    if (!name.startsWith('x-amz-checksum-') || !isChecksumAlgorithm(algorithm)) {
      throw S3Errors.invalidRequest(`The value specified in the x-amz-trailer header is not supported: ${name}`);
    }
    trailerAlgorithms.push(algorithm);
    algorithms.push(algorithm);
  }
  const sdkAlgorithm = header('x-amz-sdk-checksum-algorithm')?.toLowerCase();
  if (sdkAlgorithm !== undefined && isChecksumAlgorithm(sdkAlgorithm) && !algorithms.includes(sdkAlgorithm))
    algorithms.push(sdkAlgorithm);

  const contentMd5 = header('content-md5');
  if (contentMd5 !== undefined && Buffer.from(contentMd5, 'base64').length !== 16) throw S3Errors.invalidDigest();
  const signedHash = !streaming && payload !== UNSIGNED_PAYLOAD ? payload : undefined;
  if (signedHash !== undefined && !/^[0-9a-fA-F]{64}$/.test(signedHash)) {
    throw S3Errors.invalidArgument(
      'x-amz-content-sha256',
      signedHash,
      'x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-... or a valid sha256 value.',
    );
  }
  const activeDecoder = decoder;
  const check = new BodyCheckTransform({
    checksums: algorithms,
    expected,
    expectedSha256Hex: signedHash,
    expectedMd5Base64: contentMd5,
    // The object servers hash what they store and the proxy answers their ETag: no second MD5 here.
    md5: false,
    md5CheckedByStore: use.storedWithEtag === true,
    expectedLength: decoder === undefined ? length : undefined,
    maxLength,
    lateExpected: () => {
      const late: Partial<Record<ChecksumAlgorithm, string>> = {};
      for (const algorithm of trailerAlgorithms) {
        const value = activeDecoder?.trailers.get(`x-amz-checksum-${algorithm}`);
        if (value === undefined)
          throw S3Errors.invalidRequest(`The trailer x-amz-checksum-${algorithm} was announced but not sent.`);
        late[algorithm] = value;
      }
      return late;
    },
  });
  let failure: S3Error | undefined;
  const remember = (error: unknown): void => {
    failure ??= isS3Error(error) ? error : S3Errors.incompleteBody();
  };
  check.on('error', remember);
  let stream: Readable;
  if (decoder !== undefined) {
    decoder.on('error', (error) => {
      remember(error);
      check.destroy(error);
    });
    source.on('error', (error) => decoder.destroy(error));
    stream = source.pipe(decoder).pipe(check);
  } else {
    source.on('error', (error) => check.destroy(error));
    stream = source.pipe(check);
  }
  return { stream, check, length, checksumAlgorithms: algorithms, failure: () => failure };
}

// The signing key is derived once by verifySigV4; the middleware attaches it to the auth object.
const signingKeys = new WeakMap<SigV4Auth, Buffer>();

export function rememberSigningKey(auth: SigV4Auth, key: Buffer): void {
  signingKeys.set(auth, key);
}

function authKey(auth: SigV4Auth): Buffer {
  const key = signingKeys.get(auth);
  if (key === undefined) throw S3Errors.accessDenied();
  return key;
}

/** Reads a small request body (XML documents) fully, bounded. */
export async function readSmallBody(body: CheckedBody, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body.stream as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > maxBytes) {
        body.stream.destroy();
        throw S3Errors.malformedXml();
      }
      chunks.push(chunk);
    }
  } catch (error) {
    throw body.failure() ?? error;
  }
  const failure = body.failure();
  if (failure !== undefined) throw failure;
  return Buffer.concat(chunks);
}
