/**
 * One listing page as one ordered range scan over a database's rows (Swift's list_objects_iter /
 * list_containers_iter, with the same marker, end_marker, prefix, delimiter, path and reverse
 * rules), whatever the number of rows: the range bounds come from marker/prefix/end_marker, and
 * when a delimiter folds a run of names into one subdir row the iterator seeks past the whole
 * run instead of reading it. Deleted rows are stepped over (they stay until reclaim_age).
 *
 * Names are compared as UTF-8 bytes, which is Swift's order (Python compares code points).
 */
import { NAME_PREFIX_END } from '../db/keys.js';
import type { LevelDatabase } from '../db/registry.js';

export interface ScanQuery {
  limit: number;
  marker: string;
  endMarker: string;
  prefix: string | undefined;
  delimiter: string | undefined;
  /** `path=` of container listings: the direct children of a pseudo-folder. */
  path?: string | undefined;
  reverse: boolean;
}

export type ScanEntry<R> = { name: string; row: R } | { subdir: string };

/** Rows read per iterator call; smaller with a delimiter, where a seek discards what was read ahead. */
const BATCH_ROWS = 512;
const BATCH_ROWS_DELIMITED = 32;

/**
 * Lists up to `query.limit` entries of the rows under `rowsPrefix` (see keys.ts). `decode` turns
 * a stored value into a row, or undefined for a deleted row, which the listing skips.
 */
export async function scanListing<R>(
  db: LevelDatabase,
  rowsPrefix: Buffer,
  query: ScanQuery,
  decode: (value: string) => R | undefined,
): Promise<ScanEntry<R>[]> {
  const results: ScanEntry<R>[] = [];
  if (query.limit <= 0) return results;
  let marker = query.marker;
  let endMarker = query.endMarker;
  if (query.reverse) [marker, endMarker] = [endMarker, marker];
  let prefix = query.prefix;
  let delimiter = query.delimiter;
  let path = query.path;
  if (path !== undefined) {
    if (path !== '') path = `${path.replace(/\/+$/, '')}/`;
    prefix = path;
    delimiter = '/';
  } else if (delimiter !== undefined && prefix === undefined) {
    prefix = '';
  }
  const prefixBytes = Buffer.from(prefix ?? '', 'utf8');
  const markerBytes = Buffer.from(marker, 'utf8');
  const endMarkerBytes = Buffer.from(endMarker, 'utf8');
  const delimiterBytes = delimiter === undefined ? undefined : Buffer.from(delimiter, 'utf8');
  const pathBytes = path === undefined ? undefined : Buffer.from(path, 'utf8');
  const origMarker = markerBytes;

  // Lower bound: past the marker, or from the prefix when the marker sorts before it.
  const range: { gt?: Buffer; gte?: Buffer; lt?: Buffer } = {};
  if (marker !== '' && (prefixBytes.length === 0 || markerBytes.compare(prefixBytes) >= 0)) {
    range.gt = Buffer.concat([rowsPrefix, markerBytes]);
  } else {
    range.gte = Buffer.concat([rowsPrefix, prefixBytes]);
  }
  // Upper bound: the end marker or the end of the prefix's names, whichever comes first.
  const prefixEnd = prefixBytes.length > 0 ? Buffer.concat([prefixBytes, Buffer.from([NAME_PREFIX_END])]) : undefined;
  let upper: Buffer | undefined;
  if (endMarker !== '') upper = endMarkerBytes;
  if (prefixEnd !== undefined && (upper === undefined || prefixEnd.compare(upper) < 0)) upper = prefixEnd;
  range.lt = Buffer.concat([rowsPrefix, upper ?? Buffer.from([NAME_PREFIX_END])]);

  const iterator = db.iterator({ ...range, reverse: query.reverse, keyEncoding: 'buffer', valueEncoding: 'utf8' });
  try {
    const batchRows = delimiterBytes === undefined ? BATCH_ROWS : BATCH_ROWS_DELIMITED;
    // After a reverse seek to a subdir's first name, a row named exactly that subdir is skipped.
    let skipKey: Buffer | undefined;
    // Terminates: each pass either consumes rows of a finite range or seeks strictly past a run.
    for (;;) {
      const batch = await iterator.nextv(Math.min(batchRows, query.limit - results.length + 1));
      if (batch.length === 0) return results;
      let seeked = false;
      for (const [key, value] of batch) {
        if (skipKey !== undefined) {
          const skip = key.equals(skipKey);
          skipKey = undefined;
          if (skip) continue;
        }
        const row = decode(value);
        if (row === undefined) continue;
        const name = key.subarray(rowsPrefix.length);
        if (delimiterBytes !== undefined) {
          const end = name.indexOf(delimiterBytes, prefixBytes.length);
          const isPathChild = pathBytes !== undefined;
          if (isPathChild && name.equals(pathBytes)) continue;
          if (end >= 0 && (!isPathChild || name.length > end + delimiterBytes.length)) {
            const dir = name.subarray(0, end + delimiterBytes.length);
            if (query.reverse) {
              const target = Buffer.concat([rowsPrefix, dir]);
              iterator.seek(target);
              skipKey = target;
            } else {
              iterator.seek(Buffer.concat([rowsPrefix, dir, Buffer.from([NAME_PREFIX_END])]));
            }
            if (!isPathChild && !dir.equals(origMarker)) results.push({ subdir: dir.toString('utf8') });
            seeked = true;
            break;
          }
        }
        results.push({ name: name.toString('utf8'), row });
        if (results.length >= query.limit) return results;
      }
      if (results.length >= query.limit) return results;
      if (seeked) continue;
    }
  } finally {
    await iterator.close();
  }
}
