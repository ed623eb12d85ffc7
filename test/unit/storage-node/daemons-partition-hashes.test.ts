/**
 * Suffix hashes and the partition cache (daemons/partition-hashes.ts) on real files in a temp dir:
 * equal contents hash equal, a new version changes the hash (through invalidation or the suffix
 * named by REPLICATE, or a full rehash), cleaning removes losers and old tombstones, and the
 * cache is reused without reading any folder.
 */
import test from 'ava';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Timestamp } from '../../../common/timestamp.js';
import { DiskFileManager, type ObjectLocation } from '../../../storage-node/diskfile/diskfile.js';
import {
  differingSuffixes,
  getHashes,
  getPartitionHashes,
  HASHES_FILE,
  invalidateHashDir,
  listSuffix,
  partitionDigest,
  partitionPath,
} from '../../../storage-node/daemons/partition-hashes.js';

// diskfile reclaims on write too; a long reclaim_age there leaves the daemon's rules to be seen.
const manager = new DiskFileManager({
  hashSecrets: { prefix: '', suffix: 'unit' },
  fsync: false,
  reclaimAgeSeconds: 1_000_000_000,
  verifyBeforeSendBytesMax: 1024 * 1024,
  diskChunkSize: 65536,
  keepCacheSize: 5 * 1024 * 1024,
});

async function device(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'nebula-hashes-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function put(location: ObjectLocation, body: string, timestamp: Timestamp): Promise<void> {
  const writer = await manager.createWriter(location);
  await writer.write(Buffer.from(body));
  const etag = writer.digest();
  await writer.commit(
    {
      name: '/a/c/o',
      'X-Timestamp': timestamp.internal,
      'Content-Type': 'text/plain',
      ETag: etag,
      'Content-Length': String(body.length),
    },
    timestamp,
    'data',
  );
}

test('two devices holding the same versions hash the same; a newer version differs', async (t) => {
  const [one, two] = [await device(t), await device(t)];
  const ts = Timestamp.fromSeconds(1_700_000_000);
  for (const dev of [one, two]) await put(manager.locate(dev, 5, 'a', 'c', 'o'), 'hello', ts);
  const opts = { reclaimAgeSeconds: 3600 };
  const a = await getHashes(partitionPath(one, 5), opts);
  const b = await getHashes(partitionPath(two, 5), opts);
  t.deepEqual(a, b);
  t.is(Object.keys(a).length, 1);
  const location = manager.locate(two, 5, 'a', 'c', 'o');
  await put(location, 'newer', Timestamp.fromSeconds(1_700_000_001));
  // diskfile invalidated the suffix; once more changes nothing.
  await invalidateHashDir(location.hashDir);
  const c = await getHashes(partitionPath(two, 5), opts);
  t.deepEqual(differingSuffixes(a, c), [location.suffix]);
  t.deepEqual(differingSuffixes(c, c), []);
});

test('a cached hash is reused until the suffix is invalidated, named, or the partition is due a full rehash', async (t) => {
  const dev = await device(t);
  const location = manager.locate(dev, 1, 'a', 'c', 'x');
  await put(location, 'body', Timestamp.fromSeconds(1_700_000_000));
  const partitionDir = partitionPath(dev, 1);
  const first = await getPartitionHashes(partitionDir, { reclaimAgeSeconds: 3600 });
  const cache = JSON.parse(await readFile(join(partitionDir, HASHES_FILE), 'utf8')) as {
    hashes: Record<string, string>;
    listedMs: number;
  };
  t.deepEqual(cache.hashes, first.hashes);
  t.is(first.digest, partitionDigest(first.hashes));
  // Tamper with the cache: a second call without an invalidation trusts it (no folder is read)...
  const stale = JSON.stringify({ hashes: { [location.suffix]: 'stale' }, listedMs: Date.now() });
  await writeFile(join(partitionDir, HASHES_FILE), stale);
  t.is((await getHashes(partitionDir, { reclaimAgeSeconds: 3600 }))[location.suffix], 'stale');
  // ...and naming the suffix (REPLICATE ?recalculate=), invalidating it (every write does), or
  // a partition past its rehash interval hashes it again.
  t.deepEqual(await getHashes(partitionDir, { reclaimAgeSeconds: 3600, recalculate: [location.suffix] }), first.hashes);
  await writeFile(join(partitionDir, HASHES_FILE), stale);
  await invalidateHashDir(location.hashDir);
  t.deepEqual(await getHashes(partitionDir, { reclaimAgeSeconds: 3600 }), first.hashes);
  await writeFile(join(partitionDir, HASHES_FILE), stale);
  t.deepEqual(await getHashes(partitionDir, { reclaimAgeSeconds: 3600, rehashIntervalMs: 0 }), first.hashes);
});

test('a write after a cached pass is seen by the next one, and a suffix emptied by a delete goes', async (t) => {
  const dev = await device(t);
  const partitionDir = partitionPath(dev, 4);
  const one = manager.locate(dev, 4, 'a', 'c', 'one');
  await put(one, 'one', Timestamp.fromSeconds(1_700_000_000));
  const before = await getPartitionHashes(partitionDir, { reclaimAgeSeconds: 3600 });
  const two = manager.locate(dev, 4, 'a', 'c', 'two');
  await put(two, 'two', Timestamp.fromSeconds(1_700_000_001));
  const after = await getPartitionHashes(partitionDir, { reclaimAgeSeconds: 3600 });
  t.true(two.suffix in after.hashes);
  t.not(after.digest, before.digest);
  await manager.writeMetadataOnly(
    two,
    { name: '/a/c/two', 'X-Timestamp': '1700000002.00000' },
    Timestamp.fromSeconds(1_700_000_002),
    'ts',
  );
  const deleted = await getPartitionHashes(partitionDir, { reclaimAgeSeconds: 3600 });
  t.not(deleted.hashes[two.suffix], after.hashes[two.suffix]);
  // A peer asking about a partition this device lacks gets the empty digest, and no folder is made.
  const missing = await getPartitionHashes(partitionPath(dev, 9), { reclaimAgeSeconds: 3600 });
  t.deepEqual(missing.hashes, {});
  t.is(missing.digest, partitionDigest({}));
  t.deepEqual(await readdir(partitionPath(dev, 9)).catch(() => 'absent'), 'absent');
});

test('hashing cleans: losers go, an old tombstone goes with its folders, a fresh one stays', async (t) => {
  const dev = await device(t);
  const nowMs = 1_700_010_000_000;
  const old = manager.locate(dev, 2, 'a', 'c', 'old');
  await put(old, 'v1', Timestamp.fromSeconds(1_700_000_000));
  await manager.writeMetadataOnly(
    old,
    { name: '/a/c/old', 'X-Timestamp': '1700000001.00000' },
    Timestamp.fromSeconds(1_700_000_001),
    'ts',
  );
  const fresh = manager.locate(dev, 2, 'a', 'c', 'fresh');
  await manager.writeMetadataOnly(
    fresh,
    { name: '/a/c/fresh', 'X-Timestamp': '1700009999.00000' },
    Timestamp.fromSeconds(1_700_009_999),
    'ts',
  );
  const listed = await listSuffix(partitionPath(dev, 2), fresh.suffix, 3600, nowMs);
  t.is(listed.get(fresh.hash)?.winner?.kind, 'ts');
  const hashes = await getHashes(partitionPath(dev, 2), { reclaimAgeSeconds: 3600, nowMs });
  t.true(fresh.suffix in hashes);
  if (old.suffix !== fresh.suffix) t.false(old.suffix in hashes);
  t.deepEqual(await readdir(old.hashDir).catch(() => 'gone'), 'gone');
});

test('a .meta counts in the hash; a .meta under a tombstone does not exist', async (t) => {
  const dev = await device(t);
  const location = manager.locate(dev, 3, 'a', 'c', 'm');
  await put(location, 'data', Timestamp.fromSeconds(1_700_000_000));
  const before = await getHashes(partitionPath(dev, 3), { reclaimAgeSeconds: 3600 });
  await manager.writeMetadataOnly(
    location,
    { name: '/a/c/m', 'X-Timestamp': '1700000005.00000', 'X-Object-Meta-K': 'v' },
    Timestamp.fromSeconds(1_700_000_005),
    'meta',
  );
  const after = await getHashes(partitionPath(dev, 3), { reclaimAgeSeconds: 3600, recalculate: [location.suffix] });
  t.not(before[location.suffix], after[location.suffix]);
  const state = (await listSuffix(partitionPath(dev, 3), location.suffix, 3600)).get(location.hash);
  t.is(state?.meta?.file, '1700000005.00000.meta');
  t.is(state?.winner?.file, '1700000000.00000.data');
});
