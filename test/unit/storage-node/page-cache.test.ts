/**
 * Unit tests of the page_cache addon (storage-node/native/) and of its use in the diskfile: what a
 * PUT made durable and what a GET of a large object read leave the page cache, the metadata tail
 * stays, a GET under keep_cache_size keeps its pages, and without the addon nothing breaks.
 * Residency is read with util-linux's fincore (mincore(2) over the file), in a temp dir per test.
 * The kernel drops whole folios only (ext4 caches files in folios of up to 2 MiB): a GET drops
 * the body it read, and the folio holding the end of the body and the trailer may stay.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { closeSync, fdatasyncSync, openSync, writeSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Timestamp } from '../../../common/timestamp.js';
import { DiskFileManager, type ObjectLocation } from '../../../storage-node/diskfile/diskfile.js';
import {
  PAGE_CACHE_ADDON_PATH,
  pageCacheDropAvailable,
  pageCacheDropper,
} from '../../../storage-node/diskfile/page-cache.js';

const PAGE_BYTES = 4096;
const MIB = 1024 * 1024;
/** Pages that may stay after a GET: the (at most two) folios holding the end of the body and the trailer. */
const TAIL_PAGES_MAX = (2 * 2 * MIB) / PAGE_BYTES;

/** Pages of `path` in the page cache now. */
function residentPages(path: string): number {
  return Number(execFileSync('fincore', ['--noheadings', '--output', 'PAGES', path], { encoding: 'utf8' }).trim());
}

async function inTempDir(run: (dir: string) => Promise<void> | void): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'nebula-page-cache-'));
  try {
    await run(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A file of `bytes` written and fdatasync'd, still open: its pages are cached and clean. */
function writeSyncedFile(path: string, bytes: number): number {
  const fd = openSync(path, 'w+');
  writeSync(fd, Buffer.alloc(bytes, 1));
  fdatasyncSync(fd);
  return fd;
}

test('the addon is built and drops the pages of a synced range; advice errors are returned, bad arguments throw', async (t) => {
  t.true(pageCacheDropAvailable(), `no addon at ${PAGE_CACHE_ADDON_PATH}: run npm run build with a C compiler`);
  const addon = createRequire(import.meta.url)(PAGE_CACHE_ADDON_PATH) as {
    dropPageCache(fd: number, offset: number, length: number): number;
  };
  await inTempDir((dir) => {
    const path = join(dir, 'file');
    const fd = writeSyncedFile(path, MIB);
    try {
      t.is(residentPages(path), MIB / PAGE_BYTES);
      t.is(addon.dropPageCache(fd, 0, MIB), 0);
      t.is(residentPages(path), 0);
    } finally {
      closeSync(fd);
    }
    const wholePath = join(dir, 'whole');
    const wholeFd = writeSyncedFile(wholePath, MIB);
    try {
      t.is(addon.dropPageCache(wholeFd, 0, 0), 0); // 0: to the end of the file
      t.is(residentPages(wholePath), 0);
    } finally {
      closeSync(wholeFd);
    }
    t.is(addon.dropPageCache(fd, 0, 0), 9); // EBADF: the descriptor is closed
    t.throws(() => addon.dropPageCache(-1, 0, 0), { instanceOf: TypeError });
    t.throws(() => (addon.dropPageCache as (...args: unknown[]) => number)('3', 0), { instanceOf: TypeError });
  });
});

test('without the addon, dropping does nothing and warns once', async (t) => {
  const warnings: Error[] = [];
  const onWarning = (warning: Error): void => {
    if ((warning as NodeJS.ErrnoException).code === 'NEBULA_NO_PAGE_CACHE_ADDON') warnings.push(warning);
  };
  process.on('warning', onWarning);
  try {
    const dropper = pageCacheDropper(join(tmpdir(), 'no-such-dir', 'page_cache.node'));
    await inTempDir((dir) => {
      const path = join(dir, 'file');
      const fd = writeSyncedFile(path, 64 * 1024);
      try {
        dropper.drop(fd, 0, 64 * 1024);
        dropper.drop(fd, 0, 64 * 1024);
        t.false(dropper.available());
        t.is(residentPages(path), 16);
      } finally {
        closeSync(fd);
      }
    });
    await new Promise((resolve) => setImmediate(resolve)); // warnings are emitted on the next tick
    t.is(warnings.length, 1);
  } finally {
    process.off('warning', onWarning);
  }
});

async function withManager(
  keepCacheSize: number,
  run: (manager: DiskFileManager, location: ObjectLocation) => Promise<void>,
): Promise<void> {
  await inTempDir(async (device) => {
    const manager = new DiskFileManager({
      hashSecrets: { prefix: '', suffix: 'unit' },
      fsync: true,
      reclaimAgeSeconds: 604800,
      verifyBeforeSendBytesMax: 64 * 1024,
      diskChunkSize: MIB,
      keepCacheSize,
    });
    await run(manager, manager.locate(device, 3, 'a', 'c', 'o'));
  });
}

/** PUTs `bytes` of body in 64 KiB chunks; returns the .data file's path. */
async function putObject(manager: DiskFileManager, location: ObjectLocation, bytes: number): Promise<string> {
  const writer = await manager.createWriter(location);
  const chunk = Buffer.alloc(64 * 1024, 2);
  for (let offset = 0; offset < bytes; offset += chunk.length) await writer.write(chunk);
  const timestamp = Timestamp.parse('1700000000.00000');
  await writer.commit(
    {
      name: '/a/c/o',
      'X-Timestamp': timestamp.internal,
      'Content-Type': 'a/b',
      ETag: writer.digest(),
      'Content-Length': String(bytes),
    },
    timestamp,
    'data',
  );
  return join(location.hashDir, (await readdir(location.hashDir))[0] ?? '');
}

async function readWhole(manager: DiskFileManager, location: ObjectLocation): Promise<number> {
  const opened = await manager.open(location);
  let bytes = 0;
  for await (const chunk of opened.stream(0, opened.contentLength - 1)) bytes += (chunk as Buffer).length;
  return bytes;
}

test('a PUT leaves the page cache once synced (after the background fdatasyncs and the last)', async (t) => {
  await withManager(5 * MIB, async (manager, location) => {
    const path = await putObject(manager, location, 20 * MIB); // past one background fdatasync (16 MiB)
    // At most the last page or two (one a kernel batch may still hold at that instant) of 5120.
    t.true(residentPages(path) <= 2, `${residentPages(path)} of ${(20 * MIB) / PAGE_BYTES} pages resident`);
    const opened = await manager.open(location, { metadataOnly: true });
    t.is(opened.contentLength, 20 * MIB);
  });
});

test('a GET of an object of keep_cache_size or more drops what it read; a smaller one keeps it', async (t) => {
  const bodyBytes = 12 * MIB;
  const bodyPages = bodyBytes / PAGE_BYTES;
  await withManager(8 * MIB, async (manager, location) => {
    const path = await putObject(manager, location, bodyBytes);
    t.is(await readWhole(manager, location), bodyBytes);
    t.true(residentPages(path) <= TAIL_PAGES_MAX, `${residentPages(path)} of ${bodyPages} pages resident after a GET`);
    // A range to the end of the body: readahead past a range's end stays cached, as it would in Swift.
    const ranged = await manager.open(location);
    for await (const chunk of ranged.readRange(MIB, bodyBytes - 1)) t.is(chunk.length, MIB);
    await ranged.close();
    t.true(
      residentPages(path) <= TAIL_PAGES_MAX,
      `${residentPages(path)} of ${bodyPages} pages resident after a ranged GET`,
    );
  });
  await withManager(16 * MIB, async (manager, location) => {
    const path = await putObject(manager, location, bodyBytes);
    t.is(await readWhole(manager, location), bodyBytes);
    t.true(residentPages(path) >= bodyPages, `${residentPages(path)} of ${bodyPages} pages resident after a GET`);
  });
});
