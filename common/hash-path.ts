/**
 * Swift's hash path: where a name lives.
 *
 * `md5(prefix + "/" + account [+ "/" + container [+ "/" + object]] + suffix)`, with the cluster's
 * `swift_hash_path_prefix` / `swift_hash_path_suffix` from `[swift-hash]`. The partition is the
 * top `part_power` bits of the digest's first four bytes (big-endian), i.e. `>>> part_shift`.
 * Identical to Swift's `hash_path` + `Ring.get_part`, so Nebula and Swift place names the same.
 */
import { createHash } from 'node:crypto';

export interface HashPathSecrets {
  prefix: string;
  suffix: string;
}

export function hashPathDigest(secrets: HashPathSecrets, account: string, container?: string, object?: string): Buffer {
  if (object !== undefined && container === undefined) {
    throw new Error('hash_path: an object name needs a container name');
  }
  let path = `/${account}`;
  if (container !== undefined) path += `/${container}`;
  if (object !== undefined) path += `/${object}`;
  return createHash('md5').update(secrets.prefix).update(path).update(secrets.suffix).digest();
}

/** The hex form: the name of an object's hash folder on disk. */
export function hashPath(secrets: HashPathSecrets, account: string, container?: string, object?: string): string {
  return hashPathDigest(secrets, account, container, object).toString('hex');
}

/** The partition for a digest under a ring's `part_shift` (32 - part_power). */
export function partitionOfDigest(digest: Buffer, partShift: number): number {
  return digest.readUInt32BE(0) >>> partShift;
}
