/**
 * What an S3 request addresses: the bucket and key (path-style `/<bucket>/<key>`, or
 * virtual-hosted `<bucket>.<storage domain>/<key>`), and its query parameters. Also S3's
 * bucket-name rules (DNS-compatible names, as Swift's s3api checks them by default).
 */
import { S3Error } from './errors.js';

export interface S3Target {
  bucket?: string;
  key?: string;
}

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });
/** Printable ASCII without `%`: nothing to decode. */
const PLAIN_NAME = /^[\x20-\x24\x26-\x7e]*$/;

/**
 * A %-encoded path segment as text. Bytes that are not UTF-8, or a NUL, cannot name a bucket or an
 * object: 400 InvalidURI, as Swift's s3api answers (the Swift API's 412 has no S3 equivalent).
 */
function decodeName(raw: string, rawPath: string): string {
  // Most names are printable ASCII with no escapes: they are their own decoding (and hold no NUL).
  if (PLAIN_NAME.test(raw)) return raw;
  const bytes: number[] = [];
  for (let index = 0; index < raw.length; index += 1) {
    const hex = raw.slice(index + 1, index + 3);
    if (raw[index] === '%' && /^[0-9a-fA-F]{2}$/.test(hex)) {
      bytes.push(Number.parseInt(hex, 16));
      index += 2;
    } else {
      bytes.push(...Buffer.from(raw[index] ?? '', 'utf8'));
    }
  }
  let name: string | undefined;
  try {
    name = STRICT_UTF8.decode(Uint8Array.from(bytes));
  } catch {
    name = undefined;
  }
  if (name === undefined || name.includes('\u0000')) {
    throw new S3Error('InvalidURI', 400, "Couldn't parse the specified URI.", { details: { Uri: rawPath } });
  }
  return name;
}

/** `host` without port; `storageDomains` are like `s3.example.com` (virtual-hosted base domains). */
export function parseS3Target(host: string | undefined, rawPath: string, storageDomains: readonly string[]): S3Target {
  const hostname = (host ?? '').replace(/:\d+$/, '').toLowerCase();
  let hostBucket: string | undefined;
  for (const domain of storageDomains) {
    const suffix = `.${domain.toLowerCase()}`;
    if (hostname.endsWith(suffix) && hostname.length > suffix.length) {
      hostBucket = hostname.slice(0, -suffix.length);
      break;
    }
  }
  const path = rawPath.startsWith('/') ? rawPath.slice(1) : rawPath;
  if (hostBucket !== undefined) {
    return { bucket: hostBucket, key: path === '' ? undefined : decodeName(path, rawPath) };
  }
  if (path === '') return {};
  const slash = path.indexOf('/');
  if (slash === -1) return { bucket: decodeName(path, rawPath) };
  const key = path.slice(slash + 1);
  return {
    bucket: decodeName(path.slice(0, slash), rawPath),
    key: key === '' ? undefined : decodeName(key, rawPath),
  };
}

/** S3's DNS-compatible bucket names: 3-63 of a-z 0-9 . -, letters or digits at both ends, not an IP. */
export function isValidBucketName(name: string): boolean {
  if (name.length < 3 || name.length > 63) return false;
  if (!/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/.test(name)) return false;
  if (name.includes('..') || name.includes('.-') || name.includes('-.')) return false;
  if (/^\d+\.\d+\.\d+\.\d+$/.test(name)) return false;
  return true;
}

/** Query parameters by name (first value wins), from decoded pairs. */
export function queryMap(pairs: readonly (readonly [string, string])[]): Map<string, string> {
  const map = new Map<string, string>();
  for (const [name, value] of pairs) if (!map.has(name)) map.set(name, value);
  return map;
}
