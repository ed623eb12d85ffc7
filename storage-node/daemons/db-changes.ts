/**
 * What a database replica tells its peers each pass, and the rows it sends them: its identity
 * and row counter (db/row-sequence.ts), a hash of the info fields replicas must agree on, and
 * its change log read after a peer's sync point. This is what makes a pass cost what changed
 * since the last one rather than what the database holds (Swift's db_replicator: the remote's
 * sync point, then the rows after it).
 *
 * A database written before sequences existed has no identity: `sequenceDatabase` numbers its
 * rows (a bounded batch at a time, under the database's lock, resuming where it stopped) and
 * then gives it one; until then its peers hold no sync point for it, so the first push is whole.
 */
import { createHash } from 'node:crypto';
import type { DeviceDatabase } from '../db/registry.js';
import { changesAfter, infoKey, rowKey, rowsPrefix, lockName, sequenceOfChangeKey } from '../db/keys.js';
import { newDatabaseId, sequencedRowWrite, sequenceOfRow, type BatchOperation } from '../db/row-sequence.js';
import type { MetadataItems } from '../db/metadata.js';

/** Rows numbered per batch when sequencing an older database. */
const SEQUENCE_BATCH_ROWS = 1_000;
/** One byte past every key of a database (rows are `prefix 0x02 name`). */
const DATABASE_END = 0x03;

export interface LocalState {
  /** The info record as stored (undefined: no info). */
  info: string | undefined;
  /** Undefined for a database whose rows are not all in its change log yet. */
  id: string | undefined;
  maxRow: number;
  /** infoHash(info). */
  infoHash: string;
}

/** The info fields replicas must agree on (stats follow from rows; ids, counters and account_update are local). */
export function infoDigestPart(info: string | undefined): string {
  if (info === undefined) return '';
  const parsed = JSON.parse(info) as Record<string, unknown>;
  const metadata = (parsed.metadata ?? {}) as MetadataItems;
  const sortedMetadata = Object.keys(metadata)
    .sort()
    .map((name) => [name, metadata[name]]);
  return JSON.stringify([parsed.put_timestamp, parsed.delete_timestamp, parsed.status ?? '', sortedMetadata]);
}

export function infoHash(info: string | undefined): string {
  return info === undefined ? '' : createHash('md5').update(infoDigestPart(info)).digest('hex');
}

export async function readLocalState(database: DeviceDatabase, prefix: Buffer): Promise<LocalState> {
  const info = await database.db.get(infoKey(prefix));
  if (info === undefined) return { info, id: undefined, maxRow: 0, infoHash: '' };
  const parsed = JSON.parse(info) as { id?: unknown; max_row?: unknown };
  return {
    info,
    id: typeof parsed.id === 'string' ? parsed.id : undefined,
    maxRow: typeof parsed.max_row === 'number' ? parsed.max_row : 0,
    infoHash: infoHash(info),
  };
}

/**
 * Numbers the rows of a database written by older code and then gives it an identity. Returns
 * the rows numbered. A database with an identity, or without info, is left as it is.
 */
export async function sequenceDatabase(database: DeviceDatabase, prefix: Buffer): Promise<number> {
  const rows = rowsPrefix(prefix);
  const end = Buffer.concat([prefix, Buffer.from([DATABASE_END])]);
  let after: Buffer | undefined;
  let numbered = 0;
  // Bounded: each round moves `after` forward over a finite range.
  for (;;) {
    const finished = await database.locks.run(lockName(prefix), async () => {
      const info = await database.db.get(infoKey(prefix));
      if (info === undefined) return true;
      const parsed = JSON.parse(info) as Record<string, unknown>;
      if (typeof parsed.id === 'string') return true;
      let sequence = typeof parsed.max_row === 'number' ? parsed.max_row : 0;
      const range = after === undefined ? { gte: rows, lt: end } : { gt: after, lt: end };
      const batch = await database.db.iterator({ ...range, limit: SEQUENCE_BATCH_ROWS }).all();
      const operations: BatchOperation[] = [];
      for (const [key, value] of batch) {
        const row = JSON.parse(value) as { q?: unknown };
        if (sequenceOfRow(row) !== undefined) continue;
        sequence += 1;
        numbered += 1;
        operations.push(...sequencedRowWrite(prefix, key, row, undefined, sequence));
      }
      const last = batch.at(-1);
      const done = batch.length < SEQUENCE_BATCH_ROWS || last === undefined;
      parsed.max_row = sequence;
      // The identity comes with the last batch: from then on every row is in the log.
      if (done) parsed.id = newDatabaseId();
      operations.push({ type: 'put', key: infoKey(prefix), value: JSON.stringify(parsed) });
      await database.db.batch(operations);
      after = last?.[0];
      return done;
    });
    if (finished) return numbered;
  }
}

export type Row = [name: string, value: string];

/**
 * Reads a database's rows changed after sequence `after`, `chunkRows` log entries at a time,
 * calling `send` with each chunk and the highest sequence in it; stops early when `send`
 * returns false. Reads from one snapshot of the log: a row rewritten meanwhile is read in its
 * newer version, which newest-wins merges accept, and its newer entry is sent on a later pass.
 */
export async function forEachChangeChunk(
  database: DeviceDatabase,
  prefix: Buffer,
  after: number,
  chunkRows: number,
  send: (rows: Row[], through: number) => Promise<boolean>,
): Promise<boolean> {
  const rows = rowsPrefix(prefix);
  const iterator = database.db.iterator(changesAfter(prefix, after));
  try {
    // Bounded by the log's length.
    for (;;) {
      const entries = await iterator.nextv(chunkRows);
      const last = entries.at(-1);
      if (last === undefined) return true;
      const values = await database.db.getMany(entries.map(([, name]) => rowKey(rows, name)));
      const chunk: Row[] = [];
      entries.forEach(([, name], index) => {
        const value = values[index];
        // A row reclaimed since it was logged is simply gone.
        if (value !== undefined) chunk.push([name, value]);
      });
      if (!(await send(chunk, sequenceOfChangeKey(last[0])))) return false;
    }
  } finally {
    await iterator.close();
  }
}
