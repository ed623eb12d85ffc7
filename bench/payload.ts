/**
 * Object bodies without client-side cost in the timed loop. One random pool buffer is made at
 * start; the body of an object of `size` bytes and variant `v` is the pool read cyclically from
 * offset `v * VARIANT_STRIDE`. Bodies are streamed as subarrays of the pool (no copy), and each
 * (size, variant)'s MD5 (hex, for ETag / GET verification), SHA-256 (for S3 SigV4) and CRC-32 (the
 * S3 checksum the AWS CLI and SDKs send) are computed once, before the timed phase that needs
 * them (`prepare`).
 * Different variants make consecutive objects differ, so a server that deduplicates or caches
 * by content gains nothing; the pool is larger than any cache line or page run that matters.
 */
import { createHash, randomFillSync } from 'node:crypto';
import { type Writable } from 'node:stream';
import * as zlib from 'node:zlib';

// zlib.crc32 exists from Node 20.15; without it S3 PUTs send Content-MD5 instead (clients.ts).
const nativeCrc32 = (zlib as { crc32?: (data: Buffer, value?: number) => number }).crc32;

export const VARIANTS = 8;

/**
 * Variants used for objects of `size`: fewer for huge objects, whose digests cost seconds each to
 * precompute (two 1 GiB variants still make consecutive objects differ).
 */
export function variantsFor(size: number): number {
  return size >= 256 * 1024 * 1024 ? 2 : VARIANTS;
}
// An odd stride keeps the variants' bodies misaligned to each other (no shared 4 KiB pages).
const VARIANT_STRIDE = 1_048_573;

export interface BodyDigest {
  readonly md5Hex: string;
  readonly md5Base64: string;
  readonly sha256Hex: string;
  /** Base64 of the big-endian CRC-32 (x-amz-checksum-crc32); undefined without S3 or zlib.crc32. */
  readonly crc32Base64?: string;
}

export class PayloadPool {
  readonly pool: Buffer;
  private readonly digests = new Map<string, BodyDigest>();

  /**
   * `withSha256`: also precompute SHA-256 (only S3's signed payloads need it; for GiB objects it
   * doubles the preparation time).
   */
  constructor(
    poolBytes = 32 * 1024 * 1024,
    private readonly withSha256 = true,
  ) {
    this.pool = Buffer.allocUnsafeSlow(poolBytes);
    // randomFillSync takes at most 2^31-1 bytes per call
    for (let offset = 0; offset < poolBytes; offset += 1 << 30) {
      randomFillSync(this.pool, offset, Math.min(1 << 30, poolBytes - offset));
    }
  }

  /** The body as a list of pool subarrays (one for small objects, several when it wraps). */
  *chunks(size: number, variant: number, chunkBytesMax = 4 * 1024 * 1024): Generator<Buffer> {
    let position = (variant * VARIANT_STRIDE) % this.pool.length;
    let left = size;
    while (left > 0) {
      const take = Math.min(left, this.pool.length - position, chunkBytesMax);
      yield this.pool.subarray(position, position + take);
      left -= take;
      position = (position + take) % this.pool.length;
    }
  }

  /** The whole body in one buffer (copies only if it wraps; used by tests and small objects). */
  body(size: number, variant: number): Buffer {
    const parts = [...this.chunks(size, variant, Number.MAX_SAFE_INTEGER)];
    return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, size);
  }

  /** Computes (once) the digests of a (size, variant) body; call before timing starts. */
  prepare(size: number, variant: number): BodyDigest {
    const key = `${size}/${variant}`;
    const known = this.digests.get(key);
    if (known !== undefined) return known;
    const md5 = createHash('md5');
    const sha256 = this.withSha256 ? createHash('sha256') : undefined;
    const crc32 = this.withSha256 ? nativeCrc32 : undefined;
    let crc = 0;
    for (const chunk of this.chunks(size, variant)) {
      md5.update(chunk);
      sha256?.update(chunk);
      if (crc32 !== undefined) crc = crc32(chunk, crc);
    }
    const md5Buffer = md5.digest();
    const crcBytes = Buffer.alloc(4);
    crcBytes.writeUInt32BE(crc >>> 0);
    const digest = {
      md5Hex: md5Buffer.toString('hex'),
      md5Base64: md5Buffer.toString('base64'),
      sha256Hex: sha256?.digest('hex') ?? '',
      crc32Base64: crc32 === undefined ? undefined : crcBytes.toString('base64'),
    };
    this.digests.set(key, digest);
    return digest;
  }

  digest(size: number, variant: number): BodyDigest {
    return this.prepare(size, variant);
  }

  /**
   * Writes the body to a request with backpressure; resolves when the last chunk is handed
   * over (the caller ends the request). Bounded: one pass over the body's chunks.
   */
  async writeBody(target: Writable, size: number, variant: number): Promise<void> {
    for (const chunk of this.chunks(size, variant)) {
      if (!target.write(chunk)) {
        await new Promise<void>((resolve, reject) => {
          const onDrain = (): void => {
            target.off('error', onError);
            target.off('close', onClose);
            resolve();
          };
          const onError = (error: Error): void => {
            target.off('drain', onDrain);
            target.off('close', onClose);
            reject(error);
          };
          const onClose = (): void => {
            target.off('drain', onDrain);
            target.off('error', onError);
            reject(new Error('request closed while writing the body'));
          };
          target.once('drain', onDrain);
          target.once('error', onError);
          target.once('close', onClose);
        });
      }
    }
  }
}
