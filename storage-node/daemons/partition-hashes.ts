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
 * Cache (Swift's hashes.pkl and hashes.invalid): `<device>/objects/<partition>/hashes.json`
 * keeps each suffix's hash and when the partition was last listed in full; every write into a
 * hash folder appends its suffix to `hashes.invalid` (`invalidateHashDir`, called by diskfile,
 * the replication receiver and quarantine). A pass takes that list by rename and rehashes only
 * the suffixes it names (and those a peer asks for with ?recalculate=), so an unchanged
 * partition costs a failed rename and a stat: no folder is listed. The parsed cache stays in
 * memory while hashes.json on disk is the file it came from (another process, e.g. standalone
 * daemons, renames a new one). Once per `rehashIntervalMs` the partition is listed and hashed
 * in full, the net for an invalidation lost in a crash and the way old tombstones in idle
 * suffixes reach reclaim_age.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync, type Stats } from 'node:fs';
import { readdir, rmdir, unlink } from 'node:fs/promises';
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

/** What hashes.json holds: each suffix's hash, and when the partition folder was last listed in full. */
interface HashCache {
  hashes: SuffixHashes;
  listedMs: number;
}

/** A parsed hashes.json kept in memory, valid while the file on disk is the one it was read from. */
interface MemoryEntry {
  /** mtime, size and inode of hashes.json: a rename by any process changes it. */
  fileKey: string;
  cache: HashCache;
  digest: string;
}

/**
 * Parsed caches by partition folder. Bounded by the partitions of this node's devices (a ring has
 * at most 2^part_power of them); cleared wholesale past MEMORY_ENTRIES_MAX all the same.
 */
const memory = new Map<string, MemoryEntry>();
const MEMORY_ENTRIES_MAX = 1 << 20;

function fileKeyOf(stats: { mtimeMs: number; size: number; ino: number }): string {
  return `${stats.mtimeMs}:${stats.size}:${stats.ino}`;
}

/** The MD5 of a partition's suffix hashes: two replicas agree on it exactly when they agree on every suffix. */
export function partitionDigest(hashes: SuffixHashes): string {
  const md5 = createHash('md5');
  for (const suffix of Object.keys(hashes).sort()) md5.update(`${suffix}:${hashes[suffix] ?? ''};`);
  return md5.digest('hex');
}

/** Synchronous for the same reason as takeInvalid's check: a stat of a cached dentry. */
function statOrUndefined(path: string): Stats | undefined {
  return statSync(path, { throwIfNoEntry: false });
}

function readCacheFile(partitionDir: string, fileKey: string): MemoryEntry | undefined {
  try {
    const parsed = JSON.parse(readFileSync(join(partitionDir, HASHES_FILE), 'utf8')) as Partial<HashCache>;
    if (typeof parsed.hashes === 'object' && parsed.hashes !== null && typeof parsed.listedMs === 'number') {
      const hashes = Object.freeze({ ...parsed.hashes });
      return { fileKey, cache: { hashes, listedMs: parsed.listedMs }, digest: partitionDigest(hashes) };
    }
  } catch {
    // Missing or torn (it is written by rename, so only a crash mid-create): rebuild it.
  }
  return undefined; // an older layout (per-suffix mtimes) counts as no cache: one full rehash
}

/**
 * Takes the invalidation list atomically: appends after the rename start a new file. Synchronous,
 * like the rest of this cache's file work (tiny files, no fsync: page-cache operations of a few
 * microseconds, cheaper than a trip through the thread pool and a promise each); this runs for
 * every partition on every pass, and the usual answer, "none", costs one access().
 */
function takeInvalid(partitionDir: string): Set<string> {
  const path = join(partitionDir, INVALID_FILE);
  if (!existsSync(path)) return new Set();
  const taken = `${path}.${randomBytes(6).toString('hex')}`;
  try {
    renameSync(path, taken);
  } catch (error) {
    if (isMissing(error)) return new Set();
    throw error;
  }
  let text = '';
  try {
    text = readFileSync(taken, 'utf8');
    unlinkSync(taken);
  } catch {
    // Gone meanwhile: nothing more to read.
  }
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

/** Swift lists a partition in full every tenth pass; we do it by age, an hour by default. */
export const REHASH_INTERVAL_MS_DEFAULT = 3_600_000;

export interface GetHashesOptions {
  /** Suffixes to hash again whatever the cache says. */
  recalculate?: readonly string[];
  reclaimAgeSeconds: number;
  nowMs?: number;
  /**
   * How old a cache may get before the partition is listed and every suffix hashed again: the
   * safety net for an invalidation lost in a crash, and how tombstones in suffixes that nobody
   * writes to reach reclaim_age. 0 rehashes every time.
   */
  rehashIntervalMs?: number;
}

export interface PartitionHashes {
  hashes: SuffixHashes;
  /** partitionDigest(hashes). */
  digest: string;
}

/**
 * The partition's suffix hashes and their digest. Without invalidations this costs two system
 * calls (the rename that finds no hashes.invalid, the stat of hashes.json) and no folder listing.
 */
export function getPartitionHashes(partitionDir: string, options: GetHashesOptions): Promise<PartitionHashes> {
  return withPartitionLock(partitionDir, async () => {
    const nowMs = options.nowMs ?? Date.now();
    const rehashIntervalMs = options.rehashIntervalMs ?? REHASH_INTERVAL_MS_DEFAULT;
    const invalid = takeInvalid(partitionDir);
    for (const suffix of options.recalculate ?? []) invalid.add(suffix);
    const fileStats = statOrUndefined(join(partitionDir, HASHES_FILE));
    let entry: MemoryEntry | undefined;
    if (fileStats !== undefined) {
      const fileKey = fileKeyOf(fileStats);
      entry = memory.get(partitionDir);
      if (entry?.fileKey !== fileKey) entry = readCacheFile(partitionDir, fileKey);
    }
    const full = entry === undefined || nowMs - entry.cache.listedMs >= rehashIntervalMs;
    if (!full && entry !== undefined && invalid.size === 0) {
      memory.set(partitionDir, entry);
      return { hashes: entry.cache.hashes, digest: entry.digest };
    }
    const next: SuffixHashes = full ? {} : { ...entry?.cache.hashes };
    const suffixes = full ? (await listOrEmpty(partitionDir)).filter(isSuffix) : [...invalid].sort();
    for (const suffix of suffixes) {
      const hash = await hashSuffix(partitionDir, suffix, options.reclaimAgeSeconds, nowMs);
      if (hash === undefined) delete next[suffix];
      else next[suffix] = hash;
    }
    const hashes = Object.freeze(next);
    const cache: HashCache = { hashes, listedMs: full ? nowMs : (entry?.cache.listedMs ?? nowMs) };
    const digest = partitionDigest(hashes);
    const written = writeCacheFile(partitionDir, cache);
    if (memory.size >= MEMORY_ENTRIES_MAX) memory.clear();
    if (written === undefined) memory.delete(partitionDir);
    else memory.set(partitionDir, { fileKey: written, cache, digest });
    return { hashes, digest };
  });
}

/** Writes hashes.json by rename; returns its file key, or undefined when the partition folder is gone. */
function writeCacheFile(partitionDir: string, cache: HashCache): string | undefined {
  const path = join(partitionDir, HASHES_FILE);
  const temp = join(partitionDir, `.${HASHES_FILE}.${randomBytes(6).toString('hex')}`);
  try {
    writeFileSync(temp, JSON.stringify(cache));
    renameSync(temp, path);
    return fileKeyOf(statSync(path));
  } catch (error) {
    try {
      unlinkSync(temp);
    } catch {
      // never made
    }
    if (isMissing(error)) return undefined; // a partition this device does not hold (a peer's question)
    throw error;
  }
}

/** The partition's suffix hashes (suffixes holding nothing are left out), with the cache refreshed. */
export async function getHashes(partitionDir: string, options: GetHashesOptions): Promise<SuffixHashes> {
  return (await getPartitionHashes(partitionDir, options)).hashes;
}

/** Suffixes whose hash differs (or that the peer lacks). */
export function differingSuffixes(local: SuffixHashes, remote: SuffixHashes): string[] {
  return Object.keys(local)
    .filter((suffix) => local[suffix] !== remote[suffix])
    .sort();
}
