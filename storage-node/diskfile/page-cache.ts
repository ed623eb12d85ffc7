/**
 * Dropping a file's pages from the page cache: Swift's drop_buffer_cache, through the page_cache
 * addon (storage-node/native/, built by `npm run build`; Node.js has no posix_fadvise).
 *
 * Why: a storage node reads and writes far more object bytes than memory holds, and without advice
 * the kernel keeps them all. Once memory is full of them every new page written costs reclaim
 * (measured: four 64 MiB PUTs through the all-in-one took 5.0-7.2 s with memory full of cache,
 * 2.8-3.6 s with memory free). What was written is dropped only after an fdatasync of it (clean
 * pages), never for ordering or durability, and it is advice: failures are ignored.
 *
 * posix_fadvise drops only whole folios inside the range (ext4: up to 2 MiB): see dropBehind.
 * Without the addon (no compiler when the build ran) nothing is dropped, and the first call prints
 * one warning. Synchronous: after fdatasync the pages are clean, and dropping them measured
 * 19 us for a 4 KiB file and 0.7 ms per 16 MiB on this machine (an MD5 of 16 MiB costs ~30 ms on
 * the same thread), cheaper than a trip through the libuv pool for the small ones.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** Drops the whole pages within bytes [offset, offset + length) of an open file; length <= 0 drops none. */
export type DropPageCache = (fd: number, offset: number, length: number) => void;

interface PageCacheAddon {
  dropPageCache(fd: number, offset: number, length: number): number;
}

/** Where node-gyp leaves the addon, from dist/storage-node/diskfile/. */
export const PAGE_CACHE_ADDON_PATH = fileURLToPath(
  new URL('../../../storage-node/native/build/Release/page_cache.node', import.meta.url),
);

/**
 * A dropper backed by the addon at `addonPath`, loaded at the first call; when it cannot be
 * loaded, a no-op that has warned once.
 */
export function pageCacheDropper(addonPath: string): { drop: DropPageCache; available: () => boolean } {
  let addon: PageCacheAddon | null | undefined;
  const load = (): PageCacheAddon | null => {
    if (addon !== undefined) return addon;
    try {
      addon = createRequire(import.meta.url)(addonPath) as PageCacheAddon;
    } catch (error) {
      addon = null;
      process.emitWarning(
        `page cache addon not loaded (${(error as Error).message.split('\n')[0]}): objects written and read stay ` +
          'in the page cache (run `npm run build` with a C compiler to build storage-node/native/)',
        { code: 'NEBULA_NO_PAGE_CACHE_ADDON' },
      );
    }
    return addon;
  };
  return {
    drop: (fd, offset, length) => {
      // posix_fadvise reads length 0 as "to the end of the file": never pass it on.
      if (length <= 0) return;
      load()?.dropPageCache(fd, offset, length);
    },
    available: () => load() !== null,
  };
}

const dropper = pageCacheDropper(PAGE_CACHE_ADDON_PATH);

/** The largest folio the page cache uses (x86-64: PMD size, 2 MiB); a folio is aligned to its size. */
const FOLIO_BYTES_MAX = 2 * 1024 * 1024;

/**
 * For a reader or writer moving forward through a file: drops bytes [from, end) and returns where
 * the next call should start. The kernel drops only the folios a range covers whole, so that is
 * the last folio boundary at or below `end`: a folio straddling `end` goes with the next window.
 */
export function dropBehind(fd: number, from: number, end: number): number {
  dropper.drop(fd, from, end - from);
  return Math.max(from, end - (end % FOLIO_BYTES_MAX));
}

/** Drops the pages of bytes [offset, offset + length) of an open file (after fdatasync, or clean reads). */
export const dropPageCache: DropPageCache = dropper.drop;
/** Whether the addon loaded (false: dropPageCache does nothing). */
export const pageCacheDropAvailable = dropper.available;
