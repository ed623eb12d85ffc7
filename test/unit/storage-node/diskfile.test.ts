/**
 * Unit tests of the diskfile: Swift's rules for which file wins, the trailer format (pinned by a
 * fixture), the write path (temp file, rename, cleanup), reads with verification and quarantine.
 * Each test in its own temp dir; no ports.
 */
import test from 'ava';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Timestamp } from '../../../common/timestamp.js';
import {
  DiskFileManager,
  mergeMetadata,
  resolveOnDiskFiles,
  type ObjectLocation,
} from '../../../storage-node/diskfile/diskfile.js';
import {
  DiskFileDeletedError,
  DiskFileExpiredError,
  DiskFileNotExistError,
  DiskFileQuarantinedError,
} from '../../../storage-node/diskfile/errors.js';
import { encodeTrailer, splitWholeFile, TrailerError } from '../../../storage-node/diskfile/format.js';

async function withManager(
  run: (manager: DiskFileManager, location: ObjectLocation, device: string) => Promise<void>,
): Promise<void> {
  const device = await mkdtemp(join(tmpdir(), 'nebula-diskfile-'));
  try {
    const manager = new DiskFileManager({
      hashSecrets: { prefix: '', suffix: 'unit' },
      fsync: false,
      reclaimAgeSeconds: 604800,
      verifyBeforeSendBytesMax: 1024,
      diskChunkSize: 256,
      keepCacheSize: 5 * 1024 * 1024,
    });
    await run(manager, manager.locate(device, 3, 'a', 'c', 'o'), device);
  } finally {
    await rm(device, { recursive: true, force: true });
  }
}

async function putObject(
  manager: DiskFileManager,
  location: ObjectLocation,
  body: Buffer,
  timestamp: Timestamp,
  extra: Record<string, string> = {},
): Promise<void> {
  const writer = await manager.createWriter(location);
  for (let offset = 0; offset < body.length; offset += 100) await writer.write(body.subarray(offset, offset + 100));
  const etag = writer.digest();
  await writer.commit(
    {
      name: '/a/c/o',
      'X-Timestamp': timestamp.internal,
      'Content-Type': 'a/b',
      ETag: etag,
      'Content-Length': String(body.length),
      ...extra,
    },
    timestamp,
    'data',
  );
}

test('trailer format is pinned: body, JSON, uint32 length, "NBo1"', (t) => {
  const trailer = encodeTrailer({ 'X-Timestamp': '1700000000.00000' });
  t.is(
    trailer.toString('hex'),
    Buffer.concat([
      Buffer.from('{"X-Timestamp":"1700000000.00000"}'),
      Buffer.from([0, 0, 0, 34]),
      Buffer.from('NBo1'),
    ]).toString('hex'),
  );
  const file = Buffer.concat([Buffer.from('body'), trailer]);
  const split = splitWholeFile(file);
  t.is(split.body.toString(), 'body');
  t.deepEqual(split.metadata, { 'X-Timestamp': '1700000000.00000' });
  t.throws(() => splitWholeFile(Buffer.from('no trailer here')), { instanceOf: TrailerError });
  const badLength = Buffer.from(file);
  badLength.writeUInt32BE(9999, file.length - 8);
  t.throws(() => splitWholeFile(badLength), { instanceOf: TrailerError });
});

test('newest .data or .ts wins; a .meta applies only over a newer-than-it .data', (t) => {
  const state = resolveOnDiskFiles(['1.00000.data', '3.00000.meta', '2.00000.meta', '0.50000.ts', 'junk', 'x.data']);
  t.is(state.data?.file, '1.00000.data');
  t.is(state.meta?.file, '3.00000.meta');
  t.deepEqual(state.obsolete.map((f) => f.file).sort(), ['0.50000.ts', '2.00000.meta']);
  const deleted = resolveOnDiskFiles(['1.00000.data', '2.00000.ts', '3.00000.meta']);
  t.is(deleted.tombstone?.file, '2.00000.ts');
  t.is(deleted.data, undefined);
  t.is(deleted.meta, undefined);
  t.deepEqual(deleted.obsolete.map((f) => f.file).sort(), ['1.00000.data', '3.00000.meta']);
  const oldMeta = resolveOnDiskFiles(['2.00000.data', '1.00000.meta']);
  t.is(oldMeta.meta, undefined);
  t.deepEqual(
    oldMeta.obsolete.map((f) => f.file),
    ['1.00000.meta'],
  );
  // Offsets order events of the same time.
  const offsets = resolveOnDiskFiles(['1.00000.data', '1.00000_0000000000000001.ts']);
  t.is(offsets.tombstone?.file, '1.00000_0000000000000001.ts');
});

test('a POST replaces user metadata and allowed headers, keeps sysmeta and the rest', (t) => {
  const merged = mergeMetadata(
    { 'X-Timestamp': '1', ETag: 'e', 'X-Object-Meta-A': '1', 'X-Object-Sysmeta-S': 's', 'Content-Encoding': 'gzip' },
    { 'X-Timestamp': '2', 'X-Object-Meta-B': '2', name: '/a/c/o' },
  );
  t.deepEqual(merged, { 'X-Timestamp': '2', ETag: 'e', 'X-Object-Sysmeta-S': 's', 'X-Object-Meta-B': '2' });
});

test('write, read back verified, newer write removes the older file', async (t) => {
  await withManager(async (manager, location) => {
    const first = Timestamp.parse('1700000000.00000');
    await putObject(manager, location, Buffer.from('first body'), first);
    const opened = await manager.open(location);
    t.is(opened.verifiedBody?.toString(), 'first body');
    t.is(opened.contentLength, 10);
    t.is(opened.metadata['Content-Type'], 'a/b');
    await opened.close();
    const second = Timestamp.parse('1700000001.00000');
    await putObject(manager, location, Buffer.from('second'), second);
    t.deepEqual(await readdir(location.hashDir), ['1700000001.00000.data']);
    t.is((await manager.open(location)).verifiedBody?.toString(), 'second');
    t.deepEqual(await readdir(join(location.devicePath, 'tmp')), []);
  });
});

test('large bodies stream through a temp file and are read back as a stream', async (t) => {
  await withManager(async (manager, location) => {
    const body = Buffer.alloc(200_000, 7);
    await putObject(manager, location, body, Timestamp.parse('1700000000.00000'));
    const opened = await manager.open(location);
    t.is(opened.verifiedBody, undefined);
    const chunks: Buffer[] = [];
    for await (const chunk of opened.stream(10, 199_999)) chunks.push(chunk as Buffer);
    t.is(Buffer.concat(chunks).length, 199_990);
    const ranged = await manager.open(location);
    const parts: Buffer[] = [];
    for await (const chunk of ranged.readRange(0, 999)) parts.push(chunk);
    await ranged.close();
    t.is(Buffer.concat(parts).length, 1000);
  });
});

test('abort removes the temp file and leaves nothing visible', async (t) => {
  await withManager(async (manager, location, device) => {
    const writer = await manager.createWriter(location);
    await writer.write(Buffer.alloc(100_000)); // past the in-memory buffer: a temp file exists
    t.is((await readdir(join(device, 'tmp'))).length, 1);
    await writer.abort();
    t.deepEqual(await readdir(join(device, 'tmp')), []);
    await t.throwsAsync(manager.open(location), { instanceOf: DiskFileNotExistError });
  });
});

test('tombstone: open throws Deleted with its timestamp; expired objects throw Expired', async (t) => {
  await withManager(async (manager, location) => {
    const now = Timestamp.now();
    await putObject(manager, location, Buffer.from('x'), now, { 'X-Delete-At': String(Math.floor(now.seconds) + 100) });
    await t.throwsAsync(manager.open(location, { nowMs: now.ms + 200_000 }), { instanceOf: DiskFileExpiredError });
    t.truthy(await manager.open(location, { nowMs: now.ms }));
    const later = now.withOffset(1);
    await manager.writeMetadataOnly(location, { 'X-Timestamp': later.internal }, later, 'ts');
    const error = await t.throwsAsync(manager.open(location), { instanceOf: DiskFileDeletedError });
    t.is(error?.timestamp, later.internal);
    t.deepEqual(await readdir(location.hashDir), [`${later.internal}.ts`]);
  });
});

test('reclaim: a tombstone older than reclaim_age is removed with its folder', async (t) => {
  await withManager(async (manager, location) => {
    const old = Timestamp.parse('1000000000.00000');
    await manager.writeMetadataOnly(location, { 'X-Timestamp': old.internal }, old, 'ts');
    await t.throwsAsync(readdir(location.hashDir), { code: 'ENOENT' });
  });
});

test('a rotted small file or a broken trailer is quarantined on open', async (t) => {
  await withManager(async (manager, location, device) => {
    await putObject(manager, location, Buffer.from('precious'), Timestamp.parse('1700000000.00000'));
    const [file = ''] = await readdir(location.hashDir);
    const bytes = await readFile(join(location.hashDir, file));
    bytes[0] = 0x21;
    await writeFile(join(location.hashDir, file), bytes);
    await t.throwsAsync(manager.open(location), { instanceOf: DiskFileQuarantinedError });
    t.deepEqual(await readdir(join(device, 'quarantined', 'objects')), [location.hash]);
    await putObject(manager, location, Buffer.from('again'), Timestamp.parse('1700000001.00000'));
    const [file2 = ''] = await readdir(location.hashDir);
    await writeFile(join(location.hashDir, file2), 'garbage without a trailer');
    await t.throwsAsync(manager.open(location, { metadataOnly: true }), { instanceOf: DiskFileQuarantinedError });
    t.is((await readdir(join(device, 'quarantined', 'objects'))).length, 2);
  });
});

test('a write told the folder is missing makes it (mkdir, no failed rename), even when another write made it meanwhile', async (t) => {
  await withManager(async (manager, location) => {
    const missing = await manager.readState(location);
    t.true(missing.folderMissing);
    const write = async (writer: Awaited<ReturnType<DiskFileManager['createWriter']>>, seconds: string) => {
      await writer.write(Buffer.from(seconds));
      const etag = writer.digest();
      const timestamp = Timestamp.parse(seconds);
      await writer.commit(
        {
          name: '/a/c/o',
          'X-Timestamp': timestamp.internal,
          'Content-Type': 'a/b',
          ETag: etag,
          'Content-Length': '16',
        },
        timestamp,
        'data',
      );
    };
    // Both writers saw no folder; the first makes it, the second finds it made and cleans up.
    const first = await manager.createWriter(location, missing);
    const second = await manager.createWriter(location, missing);
    await write(first, '1700000000.00000');
    await write(second, '1700000001.00000');
    t.deepEqual(await readdir(location.hashDir), ['1700000001.00000.data']);
    t.false((await manager.readState(location)).folderMissing ?? false);
    t.deepEqual(await readdir(join(location.devicePath, 'tmp')), []);
  });
});
