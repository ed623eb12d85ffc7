/**
 * The row sequence of a database (Swift's ROWID order): each row write takes the next number of
 * the database's counter (`max_row` in its info record), keeps it in the row (`q`) and puts a
 * change-log entry under it (keys.ts changeKey), deleting the entry of the row's previous
 * version, all in the batch that writes the row. So the log holds one entry per row, in the
 * order rows last changed, and "rows changed after P" is one range scan: what a replicator
 * pushes to a peer that has merged up to P (db-replication.ts).
 *
 * A database whose info carries an `id` has every row in its log. One written before sequences
 * existed has no `id`; the replicator sends it whole until it has sequenced its rows.
 */
import { randomUUID } from 'node:crypto';
import { changeKey } from './keys.js';

export type BatchOperation = { type: 'put'; key: Buffer; value: string } | { type: 'del'; key: Buffer };

/** The operations that write `row` with `sequence`, replacing a version logged at `previous`. */
export function sequencedRowWrite(
  databasePrefix: Buffer,
  rowKey: Buffer,
  row: object,
  previous: number | undefined,
  sequence: number,
): BatchOperation[] {
  const operations: BatchOperation[] = [
    { type: 'put', key: rowKey, value: JSON.stringify({ ...row, q: sequence }) },
    // The row's name: the key after the database prefix and its record byte.
    {
      type: 'put',
      key: changeKey(databasePrefix, sequence),
      value: rowKey.toString('utf8', databasePrefix.length + 1),
    },
  ];
  if (previous !== undefined && previous !== sequence) {
    operations.push({ type: 'del', key: changeKey(databasePrefix, previous) });
  }
  return operations;
}

/** The sequence a stored row value was written with; undefined for rows of older code. */
export function sequenceOfRow(row: { q?: unknown }): number | undefined {
  return typeof row.q === 'number' && Number.isSafeInteger(row.q) ? row.q : undefined;
}

/** A database replica's identity, under which its peers keep their sync points (Swift's db id). */
export function newDatabaseId(): string {
  return randomUUID();
}
