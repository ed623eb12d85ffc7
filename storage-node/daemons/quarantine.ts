/**
 * Moving a bad object aside, as Swift's quarantine_renamer: the whole hash folder goes to
 * `<device>/quarantined/objects/<hash>[-<random>]` (never deleted: an operator may want it), and
 * its suffix is marked for rehashing so the replicator sees the copy missing and brings a good one.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, rename } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { invalidateHashDir } from './partition-hashes.js';

/** Whether a .data body matches its metadata's Content-Length and ETag. */
export function bodyMatches(body: Buffer, metadata: Readonly<Record<string, string>>): boolean {
  if (metadata['Content-Length'] !== String(body.length)) return false;
  return createHash('md5').update(body).digest('hex') === metadata.ETag;
}

/** Returns where the folder went (or undefined when it was already gone). */
export async function quarantineHashDir(devicePath: string, hashDir: string): Promise<string | undefined> {
  const target = join(devicePath, 'quarantined', 'objects');
  await mkdir(target, { recursive: true });
  const hash = basename(hashDir);
  let destination = join(target, hash);
  for (let attempt = 0; attempt < 5; attempt += 1) {
    try {
      await rename(hashDir, destination);
      await invalidateHashDir(hashDir);
      return destination;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return undefined;
      if (code !== 'EEXIST' && code !== 'ENOTEMPTY') throw error;
      destination = join(target, `${hash}-${randomBytes(8).toString('hex')}`);
    }
  }
  throw new Error(`cannot quarantine ${hashDir}`);
}
