/**
 * The one daemon function diskfile calls: after each write into a hash folder
 * (`.../objects/<partition>/<suffix>/<hash>`), mark its suffix for rehashing by appending it to
 * the partition's `hashes.invalid` (Swift's invalidate_hash), because a new file in an existing
 * hash folder does not change the suffix folder's mtime that the hash cache otherwise trusts.
 * Cheap (one small append, no reads), imports nothing of Nebula, never throws.
 */
import { appendFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export const INVALID_FILE = 'hashes.invalid';

export async function invalidateHashDir(hashDir: string): Promise<void> {
  const suffixDir = dirname(hashDir);
  const partitionDir = dirname(suffixDir);
  try {
    await appendFile(join(partitionDir, INVALID_FILE), `${basename(suffixDir)}\n`);
  } catch {
    // The partition folder is gone (moved away): nothing to invalidate.
  }
}
