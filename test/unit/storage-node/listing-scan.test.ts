/**
 * The listing scan against a real LevelDB, checked against a direct port of Swift's
 * list_objects_iter loop (SQL query per pass, marker moved past each subdir) over random names
 * and random queries, plus hand-picked cases.
 */
import test from 'ava';
import { containerPrefix, rowKey, rowsPrefix } from '../../../storage-node/db/keys.js';
import { scanListing, type ScanEntry, type ScanQuery } from '../../../storage-node/listing/scan.js';
import { openTempDatabase } from './helpers/temp-database.js';

type Entry = string | { subdir: string };

/** Python's str order is code point order, which is UTF-8 byte order. */
function cmp(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function nextChar(char: string): string {
  return String.fromCodePoint((char.codePointAt(0) ?? 0) + 1);
}

function lastChar(value: string): string {
  return Array.from(value).at(-1) ?? '';
}

function withoutLastChar(value: string): string {
  return Array.from(value).slice(0, -1).join('');
}

/** Swift 2.30's list_objects_iter, over the sorted live names (path mode with delim_force_gte too). */
function swiftReference(live: readonly string[], query: ScanQuery): Entry[] {
  let { marker, endMarker } = query;
  if (query.reverse) [marker, endMarker] = [endMarker, marker];
  let prefix = query.prefix;
  let delimiter = query.delimiter;
  let path = query.path;
  if (path !== undefined) {
    prefix = path;
    if (path !== '') prefix = path = `${path.replace(/\/+$/, '')}/`;
    delimiter = '/';
  } else if (delimiter !== undefined && prefix === undefined) {
    prefix = '';
  }
  const endPrefix = prefix ? withoutLastChar(prefix) + nextChar(lastChar(prefix)) : '';
  const origMarker = marker;
  const results: Entry[] = [];
  let forceGte = false;
  for (let pass = 0; pass < 10_000 && results.length < query.limit; pass += 1) {
    let rows = live.filter((name) => {
      if (endMarker && (!prefix || cmp(endMarker, endPrefix) < 0)) {
        if (cmp(name, endMarker) >= 0) return false;
      } else if (prefix) {
        if (cmp(name, endPrefix) >= 0) return false;
      }
      if (forceGte) return cmp(name, marker) >= 0;
      if (marker && (!prefix || cmp(marker, prefix) >= 0)) return cmp(name, marker) > 0;
      if (prefix) return cmp(name, prefix) >= 0;
      return true;
    });
    forceGte = false;
    if (query.reverse) rows = rows.reverse();
    rows = rows.slice(0, query.limit - results.length);
    if (prefix === undefined || !delimiter) return rows;
    let rowcount = 0;
    for (const name of rows) {
      rowcount += 1;
      if (query.reverse) endMarker = name;
      else marker = name;
      if (results.length >= query.limit) return results;
      const end = name.indexOf(delimiter, prefix.length);
      const nextMarker = (): string => name.slice(0, end) + withoutLastChar(delimiter) + nextChar(lastChar(delimiter));
      if (path !== undefined) {
        if (name === path) continue;
        if (end >= 0 && name.length > end + delimiter.length) {
          if (query.reverse) endMarker = name.slice(0, end + delimiter.length);
          else {
            marker = nextMarker();
            forceGte = true; // Swift lacks this in path mode (it skips a name equal to the marker)
          }
          break;
        }
      } else if (end >= 0) {
        if (query.reverse) endMarker = name.slice(0, end + delimiter.length);
        else {
          marker = nextMarker();
          forceGte = true;
        }
        const dir = name.slice(0, end + delimiter.length);
        if (dir !== origMarker) results.push({ subdir: dir });
        break;
      }
      results.push(name);
    }
    if (rowcount === 0) break;
  }
  return results;
}

function simplify(entries: ScanEntry<unknown>[]): Entry[] {
  return entries.map((entry) => ('subdir' in entry ? { subdir: entry.subdir } : entry.name));
}

/** A small deterministic PRNG so failures reproduce. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 0x1_0000_0000;
  };
}

const ALPHABET = ['a', 'b', '/', '0', 'é', '😀', '.'];

function randomName(random: () => number, maxLength: number): string {
  const length = 1 + Math.floor(random() * maxLength);
  let name = '';
  for (let index = 0; index < length; index += 1) name += ALPHABET[Math.floor(random() * ALPHABET.length)] ?? 'a';
  return name;
}

function decodeRow(value: string): string | undefined {
  return value === 'deleted' ? undefined : value;
}

test('listings match Swift reference over random names and queries', async (t) => {
  const temp = await openTempDatabase();
  try {
    const random = prng(42);
    let checked = 0;
    for (let dataset = 0; dataset < 6; dataset += 1) {
      const rows = rowsPrefix(containerPrefix(dataset, 'AUTH_test', `c${dataset}`));
      const names = new Set<string>();
      for (let index = 0; index < 150; index += 1) names.add(randomName(random, 5));
      const live: string[] = [];
      const batch = [...names].map((name) => {
        const deleted = random() < 0.2;
        if (!deleted) live.push(name);
        return { type: 'put' as const, key: rowKey(rows, name), value: deleted ? 'deleted' : name };
      });
      await temp.database.db.batch(batch);
      live.sort(cmp);
      for (let round = 0; round < 300; round += 1) {
        const pick = (chance: number, maxLength: number): string | undefined =>
          random() < chance ? randomName(random, maxLength) : undefined;
        const delimiterChoice = random();
        const query: ScanQuery = {
          limit: 1 + Math.floor(random() * 12),
          marker: pick(0.3, 3) ?? '',
          endMarker: pick(0.2, 3) ?? '',
          prefix: pick(0.4, 2),
          delimiter:
            delimiterChoice < 0.4 ? '/' : delimiterChoice < 0.5 ? 'é' : delimiterChoice < 0.55 ? 'a/' : undefined,
          path: random() < 0.1 ? (random() < 0.3 ? '' : randomName(random, 2)) : undefined,
          reverse: random() < 0.4,
        };
        const expected = swiftReference(live, query);
        const actual = simplify(await scanListing(temp.database.db, rows, query, decodeRow));
        t.deepEqual(actual, expected, JSON.stringify(query));
        checked += 1;
      }
    }
    t.is(checked, 1800);
  } finally {
    await temp.cleanup();
  }
});

test('delimiter listing folds subdirs, skips deleted rows, and pages with markers', async (t) => {
  const temp = await openTempDatabase();
  try {
    const rows = rowsPrefix(containerPrefix(7, 'a', 'c'));
    const names = ['a/1', 'a/2', 'a0', 'b', 'c/x/y', 'c/z', 'd/gone'];
    await temp.database.db.batch(
      names.map((name) => ({
        type: 'put' as const,
        key: rowKey(rows, name),
        value: name === 'd/gone' ? 'deleted' : name,
      })),
    );
    const base: ScanQuery = {
      limit: 100,
      marker: '',
      endMarker: '',
      prefix: undefined,
      delimiter: '/',
      reverse: false,
    };
    t.deepEqual(simplify(await scanListing(temp.database.db, rows, base, decodeRow)), [
      { subdir: 'a/' },
      'a0',
      'b',
      { subdir: 'c/' },
    ]);
    t.deepEqual(simplify(await scanListing(temp.database.db, rows, { ...base, reverse: true }, decodeRow)), [
      { subdir: 'c/' },
      'b',
      'a0',
      { subdir: 'a/' },
    ]);
    t.deepEqual(simplify(await scanListing(temp.database.db, rows, { ...base, marker: 'a/' }, decodeRow)), [
      'a0',
      'b',
      { subdir: 'c/' },
    ]);
    t.deepEqual(simplify(await scanListing(temp.database.db, rows, { ...base, prefix: 'c/' }, decodeRow)), [
      { subdir: 'c/x/' },
      'c/z',
    ]);
    t.deepEqual(
      simplify(await scanListing(temp.database.db, rows, { ...base, delimiter: undefined, path: 'c' }, decodeRow)),
      ['c/z'],
    );
    t.deepEqual(simplify(await scanListing(temp.database.db, rows, { ...base, limit: 2 }, decodeRow)), [
      { subdir: 'a/' },
      'a0',
    ]);
    t.deepEqual(
      simplify(
        await scanListing(
          temp.database.db,
          rows,
          { ...base, delimiter: undefined, endMarker: 'b', marker: 'a/1' },
          decodeRow,
        ),
      ),
      ['a/2', 'a0'],
    );
  } finally {
    await temp.cleanup();
  }
});
