/**
 * Reclaim: the removal of what deletes leave behind once reclaim_age has passed, over one key
 * space of a device's database (containers or accounts), one database at a time. Deleted rows
 * older than the cutoff go; then the database's info record is offered to `reclaimInfo`, which
 * may drop deleted metadata items or, when nothing else remains, the whole record. Each
 * database's deletions run under its lock and re-check the rows they delete, so a row written
 * again meanwhile is never lost. Work is bounded: rows are deleted in batches of
 * RECLAIM_BATCH_ROWS and the walk stops after `maxKeys` keys (the caller resumes from `after`).
 * A reclaimed row's change-log entry goes with it, and a removed database's log and sync points
 * with the database (row-sequence.ts).
 */
import { changeKey, databasePrefixOf, databaseSideRanges, infoKey, isInfoKey, lockName, spaceRange } from './keys.js';
import type { DeviceDatabase } from './registry.js';
import { sequenceOfRow } from './row-sequence.js';

export const RECLAIM_BATCH_ROWS = 1000;

export type InfoReclaim = { action: 'keep' } | { action: 'delete' } | { action: 'rewrite'; value: string };

export interface ReclaimPolicy {
  space: number;
  /** True when a stored row is a deletion older than `cutoff` (an internal timestamp). */
  isReclaimableRow(value: string, cutoff: string): boolean;
  /**
   * Given the info record and whether any row remains, says to keep it, to delete it (the
   * database is gone for good), or to rewrite it (e.g. without old deleted metadata).
   */
  reclaimInfo(value: string, cutoff: string, rowsRemain: boolean): InfoReclaim;
}

export interface ReclaimResult {
  rowsReclaimed: number;
  databasesRemoved: number;
  keysScanned: number;
  /** Set when the walk stopped at maxKeys: pass it back as `after` to continue. */
  resumeAfter?: Buffer;
}

export async function reclaimSpace(
  database: DeviceDatabase,
  policy: ReclaimPolicy,
  cutoff: string,
  options: { maxKeys?: number; after?: Buffer } = {},
): Promise<ReclaimResult> {
  const maxKeys = options.maxKeys ?? Number.MAX_SAFE_INTEGER;
  const range = spaceRange(policy.space);
  const result: ReclaimResult = { rowsReclaimed: 0, databasesRemoved: 0, keysScanned: 0 };
  let current: Buffer | undefined;
  let candidates: Buffer[] = [];
  let rowsSeen = 0;
  let rowsGone = 0;
  let hasInfo = false;

  const flushRows = async (prefix: Buffer): Promise<void> => {
    if (candidates.length === 0) return;
    const keys = candidates;
    candidates = [];
    await database.locks.run(lockName(prefix), async () => {
      const values = await database.db.getMany(keys);
      const deletions: { type: 'del'; key: Buffer }[] = [];
      let rows = 0;
      keys.forEach((key, index) => {
        const value = values[index];
        if (value === undefined || !policy.isReclaimableRow(value, cutoff)) return;
        rows += 1;
        deletions.push({ type: 'del', key });
        const sequence = sequenceOfRow(JSON.parse(value) as { q?: unknown });
        if (sequence !== undefined) deletions.push({ type: 'del', key: changeKey(prefix, sequence) });
      });
      if (deletions.length > 0) await database.db.batch(deletions);
      rowsGone += rows;
      result.rowsReclaimed += rows;
    });
  };

  const finishDatabase = async (prefix: Buffer): Promise<void> => {
    await flushRows(prefix);
    if (!hasInfo) return;
    const rowsRemain = rowsSeen > rowsGone;
    await database.locks.run(lockName(prefix), async () => {
      const key = infoKey(prefix);
      const value = await database.db.get(key);
      if (value === undefined) return;
      const outcome = policy.reclaimInfo(value, cutoff, rowsRemain);
      if (outcome.action === 'keep') return;
      if (outcome.action === 'delete') {
        // A row written since the walk passed keeps the database alive.
        const iterator = database.db.keys({ gt: key, lt: Buffer.concat([prefix, Buffer.from([0xff])]), limit: 1 });
        const later = await iterator.all();
        if (later.length > 0) return;
        await database.db.del(key);
        for (const range of databaseSideRanges(prefix)) await database.db.clear(range);
        result.databasesRemoved += 1;
      } else {
        await database.db.put(key, outcome.value);
      }
    });
  };

  const bounds = options.after === undefined ? { gte: range.gte, lt: range.lt } : { gt: options.after, lt: range.lt };
  const iterator = database.db.iterator({ ...bounds, keyEncoding: 'buffer', valueEncoding: 'utf8' });
  try {
    // Bounded by maxKeys and by the finite range.
    while (result.keysScanned < maxKeys) {
      const batch = await iterator.nextv(Math.min(RECLAIM_BATCH_ROWS, maxKeys - result.keysScanned));
      if (batch.length === 0) break;
      for (const [key, value] of batch) {
        result.keysScanned += 1;
        const prefix = databasePrefixOf(key);
        if (current === undefined || !prefix.equals(current)) {
          if (current !== undefined) await finishDatabase(current);
          current = Buffer.from(prefix);
          rowsSeen = 0;
          rowsGone = 0;
          hasInfo = false;
        }
        if (isInfoKey(key, current)) {
          hasInfo = true;
          continue;
        }
        rowsSeen += 1;
        if (policy.isReclaimableRow(value, cutoff)) {
          candidates.push(Buffer.from(key));
          if (candidates.length >= RECLAIM_BATCH_ROWS) await flushRows(current);
        }
        if (result.keysScanned >= maxKeys) result.resumeAfter = Buffer.from(key);
      }
    }
    if (current !== undefined) {
      if (result.resumeAfter === undefined) await finishDatabase(current);
      else await flushRows(current);
    }
  } finally {
    await iterator.close();
  }
  return result;
}
