/**
 * The one daemon function diskfile calls: after each write into a hash folder
 * (`.../objects/<partition>/<suffix>/<hash>`), mark its suffix for rehashing by appending it to
 * the partition's `hashes.invalid` (Swift's invalidate_hash): the replicator's cache rehashes
 * only the suffixes named there (partition-hashes.ts). Cheap (one small synchronous append to a
 * page-cached file, no reads, no fsync: cheaper than a thread-pool trip on every PUT), imports
 * nothing of Nebula, never throws.
 */
import { appendFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export const INVALID_FILE = 'hashes.invalid';

export function invalidateHashDir(hashDir: string): Promise<void> {
  const suffixDir = dirname(hashDir);
  const partitionDir = dirname(suffixDir);
  try {
    appendFileSync(join(partitionDir, INVALID_FILE), `${basename(suffixDir)}\n`);
  } catch {
    // The partition folder is gone (moved away): nothing to invalidate.
  }
  return Promise.resolve();
}
