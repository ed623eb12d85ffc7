/**
 * The expirer's per-device index (storage-node/object/expiry-index.ts) on real files: diskfile
 * records an X-Delete-At when it commits a .data or .meta (not a .ts), only the minutes that have
 * begun are taken, a taken file left by a crash is taken again, and a torn line is skipped.
 */
import test from 'ava';
import { appendFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Timestamp } from '../../../common/timestamp.js';
import { DiskFileManager } from '../../../storage-node/diskfile/diskfile.js';
import {
  appendExpiryEntries,
  bucketName,
  EXPIRY_INDEX_DIR,
  releaseBucket,
  takeDueBuckets,
} from '../../../storage-node/object/expiry-index.js';

const manager = new DiskFileManager({
  hashSecrets: { prefix: '', suffix: 'unit' },
  fsync: false,
  reclaimAgeSeconds: 604_800,
  verifyBeforeSendBytesMax: 1024 * 1024,
  diskChunkSize: 65536,
  keepCacheSize: 5 * 1024 * 1024,
});

async function device(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'nebula-expiry-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('diskfile records X-Delete-At of a .data and a .meta, not of a .ts or an object without it', async (t) => {
  const dev = await device(t);
  const deleteAt = 1_800_000_030;
  const expiring = manager.locate(dev, 7, 'a', 'c', 'expiring');
  const writer = await manager.createWriter(expiring);
  await writer.write(Buffer.from('body'));
  const etag = writer.digest();
  const ts = Timestamp.fromSeconds(1_700_000_000);
  await writer.commit(
    {
      name: '/a/c/expiring',
      'X-Timestamp': ts.internal,
      'Content-Type': 'text/plain',
      ETag: etag,
      'Content-Length': '4',
      'X-Delete-At': String(deleteAt),
    },
    ts,
    'data',
  );
  const posted = Timestamp.fromSeconds(1_700_000_001);
  await manager.writeMetadataOnly(
    expiring,
    { name: '/a/c/expiring', 'X-Timestamp': posted.internal, 'X-Delete-At': String(deleteAt + 100) },
    posted,
    'meta',
  );
  const deleted = Timestamp.fromSeconds(1_700_000_002);
  await manager.writeMetadataOnly(
    manager.locate(dev, 8, 'a', 'c', 'other'),
    { name: '/a/c/other', 'X-Timestamp': deleted.internal, 'X-Delete-At': String(deleteAt) },
    deleted,
    'ts',
  );
  t.deepEqual((await readdir(join(dev, EXPIRY_INDEX_DIR))).sort(), [bucketName(deleteAt), bucketName(deleteAt + 100)]);
  const taken = await takeDueBuckets(dev, deleteAt + 100);
  t.deepEqual(
    taken.flatMap((bucket) => bucket.entries),
    [
      { deleteAtSeconds: deleteAt, partition: 7, hash: expiring.hash },
      { deleteAtSeconds: deleteAt + 100, partition: 7, hash: expiring.hash },
    ],
  );
});

test('only begun minutes are taken; a crash-left taken file is taken again; torn lines are skipped', async (t) => {
  const dev = await device(t);
  const hash = 'f'.repeat(32);
  await appendExpiryEntries(dev, [
    { deleteAtSeconds: 1_800_000_000, partition: 1, hash },
    { deleteAtSeconds: 1_800_000_100, partition: 2, hash },
  ]);
  await appendFile(join(dev, EXPIRY_INDEX_DIR, bucketName(1_800_000_000)), '1800000001 3 abc');
  const first = await takeDueBuckets(dev, 1_800_000_050);
  t.is(first.length, 1);
  t.deepEqual(first[0]?.entries, [{ deleteAtSeconds: 1_800_000_000, partition: 1, hash }]);
  // Not released (a crash): the next pass takes the same file again, and the next minute now.
  const second = await takeDueBuckets(dev, 1_800_000_200);
  t.deepEqual(
    second.map((bucket) => bucket.entries.map((entry) => entry.partition)),
    [[1], [2]],
  );
  for (const bucket of second) await releaseBucket(bucket);
  t.deepEqual(await readdir(join(dev, EXPIRY_INDEX_DIR)), []);
  t.deepEqual(await takeDueBuckets(join(dev, 'no-such-device'), 1_800_000_200), []);
});
