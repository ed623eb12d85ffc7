/**
 * Per-suffix hashes of an object partition, as Swift's `get_hashes`: the replicator compares them
 * with each peer's (REPLICATE) and only looks inside the suffixes that differ.
 *
 * A suffix's hash is the MD5 over its hash folders (sorted) of each folder's name and the names
 * of its winning files (newest .data or .ts, and a newer .meta), so two replicas agree exactly
 * when they hold the same versions. Hashing a suffix also cleans it, as Swift's
 * hash_cleanup_listdir: files that lost to newer ones go, tombstones older than reclaim_age go,
 * empty folders go.
 *
 * Cache: `<device>/objects/<partition>/hashes.json` keeps each suffix's hash and the suffix
 * folder's mtime. A suffix is hashed again when its folder's mtime changed (a hash folder came or
 * went), when it is named in `hashes.invalid` (appended by `invalidateHashDir`, which every write
 * into a hash folder calls: a new file in an existing hash folder does not touch the suffix's
 * mtime), or when the caller asks (REPLICATE after a push).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rmdir, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { resolveOnDiskFiles, type OnDiskState } from '../diskfile/diskfile.js';
import { INVALID_FILE } from './invalidate.js';

export { invalidateHashDir, INVALID_FILE } from './invalidate.js';

export const HASHES_FILE = 'hashes.json';
const SUFFIX_RE = /^[0-9a-f]{3}$/;
const HASH_RE = /^[0-9a-f]{32}$/;
/** Bounds on what one folder listing may hold before we call it garbage and stop. */
const ENTRIES_MAX = 1_000_000;

export type SuffixHashes = Record<string, string>;

interface HashCache {
  hashes: SuffixHashes;
  mtimes: Record<string, number>;
}

/** The winning files of one hash folder: what a peer needs to hold the same version. */
export interface HashState {
  /** Internal timestamp and file name of the newest .data or .ts. */
  winner?: { timestamp: string; file: string; kind: 'data' | 'ts' };
  meta?: { timestamp: string; file: string };
}

export function isSuffix(value: string): boolean {
  return SUFFIX_RE.test(value);
}

export function isHash(value: string): boolean {
  return HASH_RE.test(value);
}

export function partitionPath(devicePath: string, partition: number): string {
  return join(devicePath, 'objects', String(partition));
}

function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

async function listOrEmpty(path: string): Promise<string[]> {
  try {
    const names = await readdir(path);
    return names.length > ENTRIES_MAX ? names.slice(0, ENTRIES_MAX) : names;
  } catch (error) {
    if (isMissing(error)) return [];
    throw error;
  }
}

export function stateOf(onDisk: OnDiskState): HashState {
  const state: HashState = {};
  const winner = onDisk.data ?? onDisk.tombstone;
  if (winner !== undefined) {
    state.winner = {
      timestamp: winner.timestamp.internal,
      file: winner.file,
      kind: winner.kind === 'ts' ? 'ts' : 'data',
    };
  }
  if (onDisk.meta !== undefined) state.meta = { timestamp: onDisk.meta.timestamp.internal, file: onDisk.meta.file };
  return state;
}

/**
 * Cleans one hash folder (obsolete files, reclaimable tombstone, empty folder) and returns what
 * wins in it, or undefined when nothing is left.
 */
export async function cleanHashDir(
  hashDir: string,
  reclaimAgeSeconds: number,
  nowMs: number,
): Promise<HashState | undefined> {
  const names = await listOrEmpty(hashDir);
  const onDisk = resolveOnDiskFiles(names);
  const removals = [...onDisk.obsolete];
  if (onDisk.tombstone !== undefined && onDisk.tombstone.timestamp.ms < nowMs - reclaimAgeSeconds * 1000) {
    removals.push(onDisk.tombstone);
    delete onDisk.tombstone;
  }
  for (const file of removals) {
    await unlink(join(hashDir, file.file)).catch((error: unknown) => {
      if (!isMissing(error)) throw error;
    });
  }
  const state = stateOf(onDisk);
  if (state.winner === undefined) {
    // Only removes an empty folder; a concurrent write keeps it (ENOTEMPTY is fine).
    if (names.length - removals.length <= 0) await rmdir(hashDir).catch(() => undefined);
    return undefined;
  }
  return state;
}

/** Every hash folder of a suffix with its winning files (cleaning as it goes). */
export async function listSuffix(
  partitionDir: string,
  suffix: string,
  reclaimAgeSeconds: number,
  nowMs = Date.now(),
): Promise<Map<string, HashState>> {
  const suffixDir = join(partitionDir, suffix);
  const result = new Map<string, HashState>();
  const hashes = (await listOrEmpty(suffixDir)).filter(isHash).sort();
  for (const hash of hashes) {
    const state = await cleanHashDir(join(suffixDir, hash), reclaimAgeSeconds, nowMs);
    if (state !== undefined) result.set(hash, state);
  }
  return result;
}

/** The hash of a suffix, or undefined (and the folder removed) when it holds nothing. */
export async function hashSuffix(
  partitionDir: string,
  suffix: string,
  reclaimAgeSeconds: number,
  nowMs = Date.now(),
): Promise<string | undefined> {
  const states = await listSuffix(partitionDir, suffix, reclaimAgeSeconds, nowMs);
  if (states.size === 0) {
    await rmdir(join(partitionDir, suffix)).catch(() => undefined);
    return undefined;
  }
  const md5 = createHash('md5');
  for (const [hash, state] of states) {
    md5.update(hash);
    if (state.winner !== undefined) md5.update(state.winner.file);
    if (state.meta !== undefined) md5.update(state.meta.file);
  }
  return md5.digest('hex');
}

async function readCache(partitionDir: string): Promise<HashCache> {
  try {
    const parsed = JSON.parse(await readFile(join(partitionDir, HASHES_FILE), 'utf8')) as Partial<HashCache>;
    if (typeof parsed.hashes === 'object' && typeof parsed.mtimes === 'object' && parsed.hashes && parsed.mtimes) {
      return { hashes: parsed.hashes, mtimes: parsed.mtimes };
    }
  } catch {
    // Missing or torn (it is written by rename, so only a crash mid-create): rebuild it.
  }
  return { hashes: {}, mtimes: {} };
}

/** Takes the invalidation list atomically: appends after the rename start a new file. */
async function takeInvalid(partitionDir: string): Promise<Set<string>> {
  const path = join(partitionDir, INVALID_FILE);
  const taken = `${path}.${randomBytes(6).toString('hex')}`;
  try {
    await rename(path, taken);
  } catch (error) {
    if (isMissing(error)) return new Set();
    throw error;
  }
  const text = await readFile(taken, 'utf8').catch(() => '');
  await unlink(taken).catch(() => undefined);
  return new Set(text.split('\n').filter(isSuffix));
}

/** One pass at a time per partition in this process: two passes would race on hashes.json. */
const partitionLocks = new Map<string, Promise<unknown>>();

async function withPartitionLock<T>(partitionDir: string, work: () => Promise<T>): Promise<T> {
  const previous = partitionLocks.get(partitionDir) ?? Promise.resolve();
  const run = previous.then(work, work);
  const tail = run.catch(() => undefined);
  partitionLocks.set(partitionDir, tail);
  try {
    return await run;
  } finally {
    if (partitionLocks.get(partitionDir) === tail) partitionLocks.delete(partitionDir);
  }
}

export interface GetHashesOptions {
  /** Suffixes to hash again whatever the cache says. */
  recalculate?: readonly string[];
  reclaimAgeSeconds: number;
  nowMs?: number;
}

/** The partition's suffix hashes (suffixes holding nothing are left out), with the cache refreshed. */
export function getHashes(partitionDir: string, options: GetHashesOptions): Promise<SuffixHashes> {
  return withPartitionLock(partitionDir, async () => {
    const nowMs = options.nowMs ?? Date.now();
    const cache = await readCache(partitionDir);
    const invalid = await takeInvalid(partitionDir);
    for (const suffix of options.recalculate ?? []) invalid.add(suffix);
    const suffixes = (await listOrEmpty(partitionDir)).filter(isSuffix);
    const next: HashCache = { hashes: {}, mtimes: {} };
    let changed = invalid.size > 0;
    for (const suffix of suffixes) {
      let mtimeMs: number;
      try {
        mtimeMs = (await stat(join(partitionDir, suffix))).mtimeMs;
      } catch (error) {
        if (isMissing(error)) continue;
        throw error;
      }
      const cached = cache.hashes[suffix];
      if (cached !== undefined && !invalid.has(suffix) && cache.mtimes[suffix] === mtimeMs) {
        next.hashes[suffix] = cached;
        next.mtimes[suffix] = mtimeMs;
        continue;
      }
      changed = true;
      const hash = await hashSuffix(partitionDir, suffix, options.reclaimAgeSeconds, nowMs);
      if (hash === undefined) continue;
      next.hashes[suffix] = hash;
      next.mtimes[suffix] = (await stat(join(partitionDir, suffix)).catch(() => ({ mtimeMs: 0 }))).mtimeMs;
    }
    if (Object.keys(cache.hashes).length !== Object.keys(next.hashes).length) changed = true;
    if (changed && suffixes.length > 0) {
      const temp = join(partitionDir, `.${HASHES_FILE}.${randomBytes(6).toString('hex')}`);
      await mkdir(partitionDir, { recursive: true });
      await writeFile(temp, JSON.stringify(next));
      await rename(temp, join(partitionDir, HASHES_FILE));
    }
    return next.hashes;
  });
}

/** Suffixes whose hash differs (or that the peer lacks). */
export function differingSuffixes(local: SuffixHashes, remote: SuffixHashes): string[] {
  return Object.keys(local)
    .filter((suffix) => local[suffix] !== remote[suffix])
    .sort();
}
