/**
 * The receiving side of container and account replication: rows and info pushed by a peer merged
 * into the local database under its lock, in one atomic batch. Each row is newest-wins
 * (containers: part by part, by its data, content-type and metadata timestamps; accounts: its put
 * and delete timestamps); the info's timestamps max (created_at min), metadata item by item. A changed row takes the next number
 * of this replica's own row sequence (db/row-sequence.ts), so it is passed on to the other
 * replicas by the next pass. The stats move by the difference each changed row makes, as the
 * brokers' writes do, so a merge costs the rows it carries, not the database's size; only a
 * database whose info is missing or has no stats is recounted over all its rows.
 *
 * A push that carries `source` (the sender's database id and the highest sequence of the rows
 * it carried) moves this replica's sync point for that sender in the same batch: the next pass
 * asks the sender only for rows after it.
 */
import { mergeObjectRowValue } from '../container/broker.js';
import { infoKey, lockName, rowsPrefix, syncPointKey } from '../db/keys.js';
import { mergeMetadata, type MetadataItems } from '../db/metadata.js';
import type { DeviceDatabase } from '../db/registry.js';
import { newDatabaseId, sequencedRowWrite, sequenceOfRow, type BatchOperation } from '../db/row-sequence.js';
import type { Row } from './db-changes.js';

export type DbSpace = 'container' | 'account';

export interface DatabaseDump {
  prefix: Buffer;
  info: string | undefined;
  rows: Row[];
}

/** Who sent a push, and the highest of its row sequences the push carries (Swift's merge_syncs). */
export interface SyncSource {
  id: string;
  through: number;
}

/** One byte past every key of a database (rows are `prefix 0x02 name`). */
const DATABASE_END = 0x03;

/**
 * A row value without its local sequence, which differs between replicas. Rows are written with
 * `q` last (db/row-sequence.ts) and a `,"` never occurs inside a JSON string, so this finds only
 * the field.
 */
export function withoutSequence(value: string): string {
  return value.replace(/,"q":\d+(?=[,}])/, '');
}

function maxString(a: string | undefined, b: string | undefined): string {
  return (a ?? '') > (b ?? '') ? (a ?? '') : (b ?? '');
}

/** Newest-wins for one row (both without sequence); returns the value to keep. */
export function mergeRowValue(space: DbSpace, existing: string | undefined, incoming: string): string {
  if (existing === undefined) return incoming;
  // Containers: part by part, by the row's data, content-type and metadata timestamps.
  if (space === 'container') return mergeObjectRowValue(existing, incoming);
  const a = JSON.parse(existing) as { p: string; x: string; o: number; b: number; i: number; d?: 1 };
  const b = JSON.parse(incoming) as typeof a;
  const newestA = maxString(a.p, a.x);
  const newestB = maxString(b.p, b.x);
  // Reports of the same timestamps may carry different counts: a fixed tie-break lets replicas agree.
  const tie = newestA === newestB && JSON.stringify([b.o, b.b, b.i]) > JSON.stringify([a.o, a.b, a.i]);
  const newer = newestB > newestA || tie ? b : a;
  const row: typeof a = { p: maxString(a.p, b.p), x: maxString(a.x, b.x), o: newer.o, b: newer.b, i: newer.i };
  if (row.x > row.p && row.o === 0) row.d = 1;
  const merged = JSON.stringify(row);
  return merged === existing ? existing : merged;
}

/** Merges two info records' replicated fields (either may be missing); stats are the caller's. */
export function mergeInfoFields(
  space: DbSpace,
  existing: string | undefined,
  incoming: string | undefined,
): Record<string, unknown> | undefined {
  if (existing === undefined && incoming === undefined) return undefined;
  const a = existing === undefined ? undefined : (JSON.parse(existing) as Record<string, unknown>);
  const b = incoming === undefined ? undefined : (JSON.parse(incoming) as Record<string, unknown>);
  const base: Record<string, unknown> = { ...(b ?? {}), ...(a ?? {}) };
  const str = (record: Record<string, unknown> | undefined, field: string): string | undefined =>
    typeof record?.[field] === 'string' ? record[field] : undefined;
  base.put_timestamp = maxString(str(a, 'put_timestamp'), str(b, 'put_timestamp'));
  base.delete_timestamp = maxString(str(a, 'delete_timestamp'), str(b, 'delete_timestamp'));
  const createdA = str(a, 'created_at');
  const createdB = str(b, 'created_at');
  base.created_at =
    createdA === undefined ? createdB : createdB === undefined ? createdA : createdA < createdB ? createdA : createdB;
  const changedA = str(a, 'status_changed_at') ?? '';
  const changedB = str(b, 'status_changed_at') ?? '';
  base.status_changed_at = maxString(changedA, changedB);
  if (space === 'account') base.status = (changedB > changedA ? b?.status : a?.status) ?? '';
  base.metadata = mergeMetadata((a?.metadata ?? {}) as MetadataItems, (b?.metadata ?? {}) as MetadataItems).merged;
  return base;
}

/** The stats fields of a space, in the order rowStats gives them. */
function statFields(space: DbSpace): string[] {
  return space === 'container' ? ['object_count', 'bytes_used'] : ['container_count', 'object_count', 'bytes_used'];
}

/** What one row adds to the stats of its database (statFields order). */
function rowStats(space: DbSpace, value: string | undefined): number[] {
  if (value === undefined) return space === 'container' ? [0, 0] : [0, 0, 0];
  if (space === 'container') {
    const row = JSON.parse(value) as { s: number; d?: 1 };
    return row.d === 1 ? [0, 0] : [1, row.s];
  }
  const row = JSON.parse(value) as { o: number; b: number; d?: 1 };
  return [row.d === 1 ? 0 : 1, row.o, row.b];
}

function setStats(space: DbSpace, info: Record<string, unknown>, totals: readonly number[]): void {
  statFields(space).forEach((field, index) => (info[field] = totals[index] ?? 0));
}

/** Merges two info records (either may be missing) and sets stats from the merged rows. */
export function mergeInfo(
  space: DbSpace,
  existing: string | undefined,
  incoming: string | undefined,
  rows: Iterable<string>,
): string | undefined {
  const base = mergeInfoFields(space, existing, incoming);
  if (base === undefined) return undefined;
  const totals = statFields(space).map(() => 0);
  for (const value of rows)
    rowStats(space, value).forEach((amount, index) => (totals[index] = (totals[index] ?? 0) + amount));
  setStats(space, base, totals);
  return JSON.stringify(base);
}

/** Merges a pushed database (or part of its rows) into the local one, atomically. Returns rows changed. */
export async function mergeDatabase(
  database: DeviceDatabase,
  space: DbSpace,
  dump: DatabaseDump,
  source?: SyncSource,
): Promise<number> {
  return database.locks.run(lockName(dump.prefix), async () => {
    const rowsKey = rowsPrefix(dump.prefix);
    const keys = dump.rows.map(([name]) => Buffer.concat([rowsKey, Buffer.from(name, 'utf8')]));
    const pointKey = source === undefined ? undefined : syncPointKey(dump.prefix, source.id);
    const [currentInfo, point, ...stored] = await database.db.getMany([
      infoKey(dump.prefix),
      pointKey ?? infoKey(dump.prefix),
      ...keys,
    ]);
    const local = currentInfo === undefined ? undefined : (JSON.parse(currentInfo) as Record<string, unknown>);
    const hasStats = local !== undefined && statFields(space).every((field) => typeof local[field] === 'number');
    // A new database: its rows all come through here, so they all get sequences.
    const rowsBefore =
      local === undefined
        ? (await database.db.keys({ gte: rowsKey, lt: databaseEnd(dump.prefix), limit: 1 }).all()).length > 0
        : true;
    const totals = statFields(space).map((field) => (hasStats ? (local[field] as number) : 0));
    let sequence = typeof local?.max_row === 'number' ? local.max_row : 0;
    const operations: BatchOperation[] = [];
    // Per row name: its value now (without sequence) and its sequence, for repeated names in one push.
    const now = new Map<string, { value: string | undefined; sequence: number | undefined }>();
    let changed = 0;
    dump.rows.forEach(([name, incoming], index) => {
      const key = keys[index];
      if (key === undefined) return;
      let before = now.get(name);
      if (before === undefined) {
        const value = stored[index];
        const parsed = value === undefined ? undefined : (JSON.parse(value) as { q?: unknown });
        before = {
          value: value === undefined ? undefined : withoutSequence(value),
          sequence: parsed === undefined ? undefined : sequenceOfRow(parsed),
        };
      }
      const merged = mergeRowValue(space, before.value, withoutSequence(incoming));
      if (merged === before.value) return;
      const removed = rowStats(space, before.value);
      rowStats(space, merged).forEach((amount, at) => (totals[at] = (totals[at] ?? 0) + amount - (removed[at] ?? 0)));
      sequence += 1;
      changed += 1;
      operations.push(...sequencedRowWrite(dump.prefix, key, JSON.parse(merged) as object, before.sequence, sequence));
      now.set(name, { value: merged, sequence });
    });
    const base = mergeInfoFields(space, currentInfo, dump.info);
    if (base !== undefined) {
      if (hasStats || (local === undefined && !rowsBefore)) {
        setStats(space, base, totals);
      } else {
        // No stats to move: count them over every row, the merged ones included.
        const all = statFields(space).map(() => 0);
        const add = (value: string | undefined): void =>
          rowStats(space, value).forEach((amount, at) => (all[at] = (all[at] ?? 0) + amount));
        for await (const [key, value] of database.db.iterator({ gte: rowsKey, lt: databaseEnd(dump.prefix) })) {
          const name = key.toString('utf8', rowsKey.length);
          const merged = now.get(name);
          add(merged === undefined ? value : merged.value);
          now.delete(name);
        }
        for (const merged of now.values()) add(merged.value);
        setStats(space, base, all);
      }
      // The identity and counter are this replica's own, never the sender's.
      base.max_row = sequence;
      if (typeof local?.id === 'string') base.id = local.id;
      else if (local === undefined && !rowsBefore) base.id = newDatabaseId();
      else delete base.id;
      const info = JSON.stringify(base);
      if (info !== currentInfo) operations.push({ type: 'put', key: infoKey(dump.prefix), value: info });
      // A point kept from before the database was lost counts for nothing.
      const known = local === undefined ? -1 : Number(point ?? 0);
      if (pointKey !== undefined && source !== undefined && source.through > known) {
        operations.push({ type: 'put', key: pointKey, value: String(source.through) });
      }
    }
    if (operations.length > 0) await database.db.batch(operations);
    return changed;
  });
}

function databaseEnd(prefix: Buffer): Buffer {
  return Buffer.concat([prefix, Buffer.from([DATABASE_END])]);
}
