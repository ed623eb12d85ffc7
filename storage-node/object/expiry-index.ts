/**
 * The per-device index of objects that carry X-Delete-At, so the expirer finds what is due
 * without reading every object's trailer (daemons/expirer.ts).
 *
 * Layout: `<device>/expiry-index/<bucket>`, one append-only text file per minute of delete-at
 * time (`<bucket>` is that minute's first second, 10 digits), each line `<deleteAt> <partition>
 * <hash>`. diskfile appends a line before it renames a .data or .meta carrying X-Delete-At into
 * place (so a crash leaves an entry too many, never one too few); objects that arrive by
 * replication take the same path. Entries are never removed on POST or DELETE: the index is a
 * superset, and the expirer checks each due entry against the object's current metadata.
 *
 * The expirer takes a due bucket by renaming it to `<bucket>.taken.<random>` (appends after the
 * rename start a new file), works through it, puts back what is not due or failed, and removes
 * it; a taken file left by a crash is taken again on the next pass. Imports nothing of Nebula
 * (diskfile imports it), never throws on the write path.
 */
import { randomBytes } from 'node:crypto';
import { appendFile, mkdir, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';

export const EXPIRY_INDEX_DIR = 'expiry-index';
export const EXPIRY_BUCKET_SECONDS = 60;
const BUCKET_RE = /^(\d{10})(?:\.taken\.[0-9a-f]+)?$/;
const LINE_RE = /^(\d{1,12}) (\d{1,10}) ([0-9a-f]{32})$/;
/** Bound on the lines read from one bucket file (a minute's expiries on one device). */
const ENTRIES_PER_BUCKET_MAX = 10_000_000;

export interface ExpiryEntry {
  deleteAtSeconds: number;
  partition: number;
  hash: string;
}

export function bucketName(deleteAtSeconds: number): string {
  const start = deleteAtSeconds - (deleteAtSeconds % EXPIRY_BUCKET_SECONDS);
  return String(start).padStart(10, '0');
}

function line(entry: ExpiryEntry): string {
  return `${entry.deleteAtSeconds} ${entry.partition} ${entry.hash}\n`;
}

/** Appends entries to their buckets; resolves false when the device cannot take them. */
export async function appendExpiryEntries(devicePath: string, entries: readonly ExpiryEntry[]): Promise<boolean> {
  const byBucket = new Map<string, string>();
  for (const entry of entries) {
    const name = bucketName(entry.deleteAtSeconds);
    byBucket.set(name, (byBucket.get(name) ?? '') + line(entry));
  }
  const dir = join(devicePath, EXPIRY_INDEX_DIR);
  let ok = true;
  for (const [name, text] of byBucket) {
    try {
      await appendFile(join(dir, name), text);
    } catch {
      try {
        await mkdir(dir, { recursive: true });
        await appendFile(join(dir, name), text);
      } catch {
        ok = false; // the daily full scan still finds the object
      }
    }
  }
  return ok;
}

/**
 * diskfile's hook: records an object's X-Delete-At (the raw header value) before its file is
 * renamed into place. Anything but a plain integer is ignored (the object server validated it).
 */
export async function recordDeleteAt(
  location: { devicePath: string; partition: number; hash: string },
  deleteAt: string | undefined,
): Promise<void> {
  if (deleteAt === undefined || !/^\d{1,12}$/.test(deleteAt)) return;
  await appendExpiryEntries(location.devicePath, [
    { deleteAtSeconds: Number(deleteAt), partition: location.partition, hash: location.hash },
  ]);
}

export interface TakenBucket {
  path: string;
  entries: ExpiryEntry[];
}

/**
 * Takes every bucket whose minute has begun by `nowSeconds` (and taken files a crash left), in
 * time order. The caller must `releaseBucket` each once it put back what it keeps.
 */
export async function takeDueBuckets(devicePath: string, nowSeconds: number): Promise<TakenBucket[]> {
  const dir = join(devicePath, EXPIRY_INDEX_DIR);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return []; // no object with X-Delete-At was ever written here
  }
  const due = names
    .filter((name) => {
      const match = BUCKET_RE.exec(name);
      return match !== null && Number(match[1]) <= nowSeconds;
    })
    .sort();
  const taken: TakenBucket[] = [];
  for (const name of due) {
    let path = join(dir, name);
    if (!name.includes('.taken.')) {
      const target = `${path}.taken.${randomBytes(6).toString('hex')}`;
      try {
        await rename(path, target);
      } catch {
        continue; // taken by another expirer meanwhile
      }
      path = target;
    }
    const text = await readFile(path, 'utf8').catch(() => '');
    const entries: ExpiryEntry[] = [];
    for (const raw of text.split('\n')) {
      if (entries.length >= ENTRIES_PER_BUCKET_MAX) break;
      const match = LINE_RE.exec(raw);
      if (match === null) continue; // a line torn by a crash mid-append
      entries.push({ deleteAtSeconds: Number(match[1]), partition: Number(match[2]), hash: match[3] ?? '' });
    }
    taken.push({ path, entries });
  }
  return taken;
}

export async function releaseBucket(bucket: TakenBucket): Promise<void> {
  await unlink(bucket.path).catch(() => undefined);
}
