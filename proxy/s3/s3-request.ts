/**
 * What an S3 request addresses: the bucket and key (path-style `/<bucket>/<key>`, or
 * virtual-hosted `<bucket>.<storage domain>/<key>`), and its query parameters. Also S3's
 * bucket-name rules (DNS-compatible names, as Swift's s3api checks them by default).
 */
import { safeDecode } from './sigv4.js';

export interface S3Target {
  bucket?: string;
  key?: string;
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
    return { bucket: hostBucket, key: path === '' ? undefined : safeDecode(path) };
  }
  if (path === '') return {};
  const slash = path.indexOf('/');
  if (slash === -1) return { bucket: safeDecode(path) };
  const key = path.slice(slash + 1);
  return { bucket: safeDecode(path.slice(0, slash)), key: key === '' ? undefined : safeDecode(key) };
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
