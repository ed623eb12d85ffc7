/**
 * A container's records in its device's LevelDB database (Swift's ContainerBroker, without
 * SQLite): the info record (timestamps, exact object count and bytes used, metadata, where to
 * report to the account) and one row per object name, newest X-Timestamp winning. Deleted rows
 * stay, marked deleted, until reclaim_age. Every change of one container runs under its lock and
 * is written as one atomic batch (row and stats together), so the stats always equal the rows.
 * Errors are domain errors with stable codes; the server maps them to HTTP statuses.
 */
import { strict as assert } from 'node:assert';
import { containerPrefix, infoKey, lockName, rowKey, rowsPrefix, SPACE_CONTAINER } from '../db/keys.js';
import {
  checkMergedMetadata,
  clearedMetadata,
  mergeMetadata,
  reclaimMetadata,
  type MetadataItems,
} from '../db/metadata.js';
import { reclaimSpace, type ReclaimPolicy, type ReclaimResult } from '../db/reclaim.js';
import type { DeviceDatabase } from '../db/registry.js';
import { newDatabaseId, sequencedRowWrite, sequenceOfRow, type BatchOperation } from '../db/row-sequence.js';
import { scanListing, type ScanEntry, type ScanQuery } from '../listing/scan.js';
import type { Constraints } from '../../common/constraints.js';
import { Timestamp } from '../../common/timestamp.js';

export const ZERO_TIMESTAMP = '0000000000.00000';
/** Rows per mergeObjectRows call: bounds one batch's memory and the time the container's lock is held. */
export const MERGE_ROWS_MAX = 10_000;

/** Where the container server reports this container's stats (from the proxy's X-Account-* headers). */
export interface AccountUpdateTarget {
  /** `ip:port` of each account server. */
  hosts: string[];
  devices: string[];
  partition: string;
}

export interface ContainerInfo {
  account: string;
  container: string;
  /** Internal timestamps (`1700000000.12345[_offset]`), which sort as strings. */
  created_at: string;
  put_timestamp: string;
  delete_timestamp: string;
  status_changed_at: string;
  object_count: number;
  bytes_used: number;
  storage_policy_index: number;
  metadata: MetadataItems;
  account_update?: AccountUpdateTarget;
  /** This replica's identity and row counter (db/row-sequence.ts); absent in older databases. */
  id?: string;
  max_row?: number;
}

/**
 * An object row as stored: short keys, as it is written once per object. A row has Swift's three
 * timestamps: the data's (`t`, which decides size, ETag and deletion), the content type's and the
 * metadata's (a POST's); the last two are stored only when newer than the one before them.
 */
interface StoredObjectRow {
  /** The data timestamp: the X-Timestamp of the PUT or DELETE. */
  t: string;
  s: number;
  c: string;
  e: string;
  /** Present (1) on deleted rows. */
  d?: 1;
  /** The row's sequence (db/row-sequence.ts). */
  q?: number;
  /** The content-type timestamp (a POST that changed Content-Type), when newer than `t`. */
  ct?: string;
  /** The metadata timestamp (the newest POST), when newer than the content type's. */
  mt?: string;
}

const contentTypeTimestampOf = (row: StoredObjectRow): string => row.ct ?? row.t;
const metaTimestampOf = (row: StoredObjectRow): string => row.mt ?? contentTypeTimestampOf(row);
const newer = (a: string, b: string): string => (a > b ? a : b);

/**
 * Swift's update_new_item_from_existing: each part of a row is taken from whichever side's own
 * timestamp is newer (size, ETag and deletion by data timestamp, the type by content-type
 * timestamp), so a POST's update, which carries the PUT's data timestamp and newer content-type
 * and metadata timestamps, changes the type and the last-modified time and nothing else.
 * Returns the merged row, or undefined when the incoming one has nothing newer.
 */
export function mergeObjectRow(
  existing: StoredObjectRow | undefined,
  incoming: StoredObjectRow,
): StoredObjectRow | undefined {
  if (existing === undefined) return incoming;
  const dataSide = incoming.t > existing.t ? incoming : existing;
  const typeSide = contentTypeTimestampOf(incoming) > contentTypeTimestampOf(existing) ? incoming : existing;
  const metaTimestamp = newer(metaTimestampOf(incoming), metaTimestampOf(existing));
  if (dataSide === existing && typeSide === existing && metaTimestamp === metaTimestampOf(existing)) return undefined;
  const typeTimestamp = newer(contentTypeTimestampOf(typeSide), dataSide.t);
  const merged: StoredObjectRow = { t: dataSide.t, s: dataSide.s, c: typeSide.c, e: dataSide.e };
  if (dataSide.d === 1) merged.d = 1;
  if (typeTimestamp !== merged.t) merged.ct = typeTimestamp;
  if (metaTimestamp > typeTimestamp) merged.mt = metaTimestamp;
  return merged;
}

/** What a row adds to the container's object count and bytes used (deleted rows: nothing). */
const rowCount = (row: StoredObjectRow | undefined): number => (row === undefined || row.d === 1 ? 0 : 1);
const rowBytes = (row: StoredObjectRow | undefined): number => (row === undefined || row.d === 1 ? 0 : row.s);

/** Merges two stored row values (replication): the merged value, or the existing one when it wins. */
export function mergeObjectRowValue(existing: string, incoming: string): string {
  const merged = mergeObjectRow(parseRow(existing), parseRow(incoming));
  return merged === undefined ? existing : JSON.stringify(merged);
}

export interface ObjectRow {
  created_at: string;
  /** The newest of the data, content-type and metadata timestamps: a listing's last_modified. */
  meta_timestamp: string;
  size: number;
  content_type: string;
  etag: string;
  deleted: boolean;
}

export class ContainerError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ContainerError';
  }
}

export class ContainerNotFoundError extends ContainerError {
  constructor() {
    super('ContainerNotFound', 'container not found');
  }
}

/** DELETE of a container that still has objects. */
export class ContainerNotEmptyError extends ContainerError {
  constructor() {
    super('ContainerNotEmpty', 'container not empty');
  }
}

/** A PUT older than the container's delete, or a DELETE older than its PUT: the other side wins. */
export class ContainerTimestampConflictError extends ContainerError {
  constructor() {
    super('ContainerTimestampConflict', 'a newer operation decided the container state');
  }
}

export class ContainerPolicyConflictError extends ContainerError {
  constructor(readonly currentPolicyIndex: number) {
    super('ContainerPolicyConflict', 'the container exists with another storage policy');
  }
}

export class ContainerMetadataError extends ContainerError {
  constructor(message: string) {
    super('ContainerMetadataInvalid', message);
  }
}

export class CorruptRecordError extends Error {
  readonly code = 'CorruptRecord';
  constructor(what: string, options?: { cause?: unknown }) {
    super(`corrupt record: ${what}`, options);
    this.name = 'CorruptRecordError';
  }
}

export function isContainerDeleted(info: ContainerInfo | undefined): boolean {
  return info === undefined || (info.object_count === 0 && info.delete_timestamp > info.put_timestamp);
}

export function parseContainerInfo(value: string): ContainerInfo {
  let info: ContainerInfo;
  try {
    info = JSON.parse(value) as ContainerInfo;
  } catch (error) {
    throw new CorruptRecordError('container info is not JSON', { cause: error });
  }
  if (
    typeof info !== 'object' ||
    typeof info.put_timestamp !== 'string' ||
    typeof info.delete_timestamp !== 'string' ||
    !Number.isSafeInteger(info.object_count) ||
    !Number.isSafeInteger(info.bytes_used) ||
    typeof info.metadata !== 'object'
  ) {
    throw new CorruptRecordError('container info fields');
  }
  return info;
}

function encodeInfo(info: ContainerInfo): string {
  assert.ok(info.object_count >= 0 && info.bytes_used >= 0, 'container stats never go negative');
  return JSON.stringify(info);
}

function toObjectRow(row: StoredObjectRow): ObjectRow {
  return {
    created_at: row.t,
    meta_timestamp: metaTimestampOf(row),
    size: row.s,
    content_type: row.c,
    etag: row.e,
    deleted: row.d === 1,
  };
}

function parseRow(value: string): StoredObjectRow {
  const row = JSON.parse(value) as StoredObjectRow;
  if (typeof row.t !== 'string' || typeof row.s !== 'number') throw new CorruptRecordError('object row');
  return row;
}

/** The listing decoder: undefined for deleted rows, which listings skip. */
function decodeListedRow(value: string): ObjectRow | undefined {
  const row = parseRow(value);
  if (row.d === 1) return undefined;
  return toObjectRow(row);
}

export interface ContainerPutOptions {
  timestamp: string;
  /** X-Backend-Storage-Policy-Index when the request named one. */
  requestedPolicyIndex?: number;
  /** The policy for a new (or re-created) container. */
  defaultPolicyIndex: number;
  metadata: MetadataItems;
  accountUpdate?: AccountUpdateTarget;
}

export interface ObjectRowUpdate {
  timestamp: string;
  size: number;
  contentType: string;
  etag: string;
  /** X-Content-Type-Timestamp of a POST's update (Content-Type changed after the PUT). */
  contentTypeTimestamp?: string;
  /** X-Meta-Timestamp of a POST's update. */
  metaTimestamp?: string;
}

/** The stored row of an update: Swift's rule that a content-type timestamp is a metadata one too. */
function rowOfUpdate(update: ObjectRowUpdate): StoredObjectRow {
  const row: StoredObjectRow = { t: update.timestamp, s: update.size, c: update.contentType, e: update.etag };
  const typeTimestamp = newer(update.contentTypeTimestamp ?? update.timestamp, update.timestamp);
  const metaTimestamp = newer(update.metaTimestamp ?? typeTimestamp, typeTimestamp);
  if (typeTimestamp !== row.t) row.ct = typeTimestamp;
  if (metaTimestamp !== typeTimestamp) row.mt = metaTimestamp;
  return row;
}

/** Row updates per group commit: bounds one batch's memory and how long the lock is held. */
const GROUP_ROWS_MAX = 1_000;

interface PendingRow {
  key: Buffer;
  row: StoredObjectRow;
  resolve(changed: boolean): void;
  reject(error: unknown): void;
}

/** Per database, per container lock: the group of row updates still taking newcomers. */
const openGroups = new WeakMap<DeviceDatabase, Map<string, PendingRow[]>>();

export class ContainerBroker {
  readonly prefix: Buffer;
  readonly rows: Buffer;
  private readonly infoKey: Buffer;
  private readonly lock: string;

  constructor(
    readonly database: DeviceDatabase,
    readonly partition: number,
    readonly account: string,
    readonly container: string,
  ) {
    this.prefix = containerPrefix(partition, account, container);
    this.rows = rowsPrefix(this.prefix);
    this.infoKey = infoKey(this.prefix);
    this.lock = lockName(this.prefix);
  }

  async getInfo(): Promise<ContainerInfo | undefined> {
    const value = await this.database.db.get(this.infoKey);
    return value === undefined ? undefined : parseContainerInfo(value);
  }

  /** Creates, re-creates or updates the container (Swift's _update_or_create plus metadata). */
  async put(
    options: ContainerPutOptions,
    limits: Readonly<Constraints>,
  ): Promise<{ created: boolean; info: ContainerInfo }> {
    return this.database.locks.run(this.lock, async () => {
      const existing = await this.getInfo();
      let info: ContainerInfo;
      let created: boolean;
      if (existing === undefined) {
        info = {
          account: this.account,
          container: this.container,
          // Swift stamps a database's creation with the local clock, not the request's X-Timestamp.
          created_at: Timestamp.now().internal,
          put_timestamp: options.timestamp,
          delete_timestamp: ZERO_TIMESTAMP,
          status_changed_at: options.timestamp,
          object_count: 0,
          bytes_used: 0,
          storage_policy_index: options.requestedPolicyIndex ?? options.defaultPolicyIndex,
          metadata: {},
          id: newDatabaseId(),
          max_row: 0,
        };
        created = true;
      } else {
        info = { ...existing };
        const recreated = isContainerDeleted(existing);
        if (recreated) {
          info.storage_policy_index = options.requestedPolicyIndex ?? options.defaultPolicyIndex;
        } else if (
          options.requestedPolicyIndex !== undefined &&
          options.requestedPolicyIndex !== existing.storage_policy_index
        ) {
          throw new ContainerPolicyConflictError(existing.storage_policy_index);
        }
        if (options.timestamp > info.put_timestamp) info.put_timestamp = options.timestamp;
        if (isContainerDeleted(info)) throw new ContainerTimestampConflictError();
        if (recreated) info.status_changed_at = options.timestamp;
        created = recreated;
      }
      const { merged } = mergeMetadata(info.metadata, options.metadata);
      const problem = checkMergedMetadata(merged, limits);
      if (problem !== undefined) throw new ContainerMetadataError(problem);
      info.metadata = merged;
      if (options.accountUpdate !== undefined) info.account_update = options.accountUpdate;
      await this.database.db.put(this.infoKey, encodeInfo(info));
      return { created, info };
    });
  }

  /**
   * POST: merges metadata items (each newest-wins) and, as Swift's container server does, moves
   * the put timestamp up to the POST's. Returns the info and whether the put timestamp moved
   * (then the account should hear of it).
   */
  async updateMetadata(
    items: MetadataItems,
    limits: Readonly<Constraints>,
    timestamp?: string,
  ): Promise<{ info: ContainerInfo; putTimestampMoved: boolean }> {
    return this.database.locks.run(this.lock, async () => {
      const info = await this.getInfo();
      if (info === undefined || isContainerDeleted(info)) throw new ContainerNotFoundError();
      const { merged, changed } = mergeMetadata(info.metadata, items);
      const putTimestampMoved = timestamp !== undefined && timestamp > info.put_timestamp;
      if (!changed && !putTimestampMoved) return { info, putTimestampMoved };
      const problem = checkMergedMetadata(merged, limits);
      if (problem !== undefined) throw new ContainerMetadataError(problem);
      const updated = { ...info, metadata: merged };
      if (putTimestampMoved) updated.put_timestamp = timestamp;
      await this.database.db.put(this.infoKey, encodeInfo(updated));
      return { info: updated, putTimestampMoved };
    });
  }

  /**
   * DELETE of the container: refused while it has objects; marks it deleted at `timestamp`
   * (kept until reclaim_age, so an older PUT arriving late cannot bring it back). Returns
   * whether it existed (was live) before.
   */
  async delete(
    timestamp: string,
    accountUpdate?: AccountUpdateTarget,
  ): Promise<{ existed: boolean; info: ContainerInfo }> {
    return this.database.locks.run(this.lock, async () => {
      const current = await this.getInfo();
      if (current === undefined) throw new ContainerNotFoundError();
      if (current.object_count > 0) throw new ContainerNotEmptyError();
      const existed = current.put_timestamp !== ZERO_TIMESTAMP && !isContainerDeleted(current);
      const info: ContainerInfo = { ...current };
      info.metadata = mergeMetadata(info.metadata, clearedMetadata(info.metadata, timestamp)).merged;
      if (timestamp > info.delete_timestamp) {
        info.delete_timestamp = timestamp;
        info.status_changed_at = timestamp;
      }
      if (!isContainerDeleted(info)) throw new ContainerTimestampConflictError();
      if (accountUpdate !== undefined) info.account_update = accountUpdate;
      await this.database.db.put(this.infoKey, encodeInfo(info));
      return { existed, info };
    });
  }

  /** Records an object PUT; returns true when the row (and so perhaps the stats) changed. */
  async putObject(name: string, update: ObjectRowUpdate): Promise<boolean> {
    assert.ok(Number.isSafeInteger(update.size) && update.size >= 0, 'object size is a non-negative integer');
    return this.mergeRow(name, rowOfUpdate(update));
  }

  /** Records an object DELETE as a deleted row (Swift: size 0, application/deleted, noetag). */
  async deleteObject(name: string, timestamp: string): Promise<boolean> {
    return this.mergeRow(name, { t: timestamp, s: 0, c: 'application/deleted', e: 'noetag', d: 1 });
  }

  /**
   * Group commit: row updates for one container that arrive while its lock is busy wait in one
   * group, and the group is applied in one go (one read of the info and the rows, one atomic
   * batch). Each update is judged in arrival order against the row as the ones before it left
   * it, so the outcome is the one of applying them one by one; each caller learns whether its row
   * changed. Groups are bounded (GROUP_ROWS_MAX): a full one is closed and a new one starts.
   */
  private mergeRow(name: string, incoming: StoredObjectRow): Promise<boolean> {
    let groups = openGroups.get(this.database);
    if (groups === undefined) {
      groups = new Map();
      openGroups.set(this.database, groups);
    }
    const open = groups;
    return new Promise<boolean>((resolve, reject) => {
      const waiting: PendingRow = { key: rowKey(this.rows, name), row: incoming, resolve, reject };
      const group = open.get(this.lock);
      if (group !== undefined && group.length < GROUP_ROWS_MAX) {
        group.push(waiting);
        return;
      }
      const mine = [waiting];
      open.set(this.lock, mine);
      this.database.locks
        .run(this.lock, () => {
          // From here on the group is closed: later arrivals start the next one.
          if (open.get(this.lock) === mine) open.delete(this.lock);
          return this.applyRowGroup(mine);
        })
        .catch((error: unknown) => {
          for (const pending of mine) pending.reject(error);
        });
    });
  }

  private async applyRowGroup(group: readonly PendingRow[]): Promise<void> {
    const keys = [...new Map(group.map((pending) => [pending.key.toString('latin1'), pending.key])).values()];
    const [infoValue, ...rowValues] = await this.database.db.getMany([this.infoKey, ...keys]);
    if (infoValue === undefined) throw new ContainerNotFoundError();
    const info = parseContainerInfo(infoValue);
    const current = new Map<string, StoredObjectRow | undefined>();
    const previousSequence = new Map<string, number | undefined>();
    keys.forEach((key, index) => {
      const value = rowValues[index];
      const stored = value === undefined ? undefined : parseRow(value);
      current.set(key.toString('latin1'), stored);
      previousSequence.set(key.toString('latin1'), stored === undefined ? undefined : sequenceOfRow(stored));
    });
    let count = info.object_count;
    let bytes = info.bytes_used;
    const changed = new Map<string, { key: Buffer; row: StoredObjectRow }>();
    const outcomes: boolean[] = [];
    for (const pending of group) {
      const id = pending.key.toString('latin1');
      const existing = current.get(id);
      const merged = mergeObjectRow(existing, pending.row);
      if (merged === undefined) {
        outcomes.push(false);
        continue;
      }
      count += rowCount(merged) - rowCount(existing);
      bytes += rowBytes(merged) - rowBytes(existing);
      current.set(id, merged);
      changed.set(id, { key: pending.key, row: merged });
      outcomes.push(true);
    }
    if (changed.size > 0) {
      let sequence = info.max_row ?? 0;
      const operations: BatchOperation[] = [];
      for (const [id, { key, row }] of changed) {
        sequence += 1;
        operations.push(...sequencedRowWrite(this.prefix, key, row, previousSequence.get(id), sequence));
      }
      const updated: ContainerInfo = { ...info, object_count: count, bytes_used: bytes, max_row: sequence };
      operations.push({ type: 'put', key: this.infoKey, value: encodeInfo(updated) });
      await this.database.db.batch(operations);
    }
    group.forEach((pending, index) => pending.resolve(outcomes[index] === true));
  }

  /**
   * Merges many object rows at once (a replicator's or a bulk loader's batch, Swift's
   * merge_items): one read of the existing rows, one atomic batch, newest timestamp per name.
   * Returns how many rows changed.
   */
  async mergeObjectRows(updates: readonly (ObjectRowUpdate & { name: string; deleted?: boolean })[]): Promise<number> {
    assert.ok(updates.length <= MERGE_ROWS_MAX, `at most ${MERGE_ROWS_MAX} rows per merge`);
    return this.database.locks.run(this.lock, async () => {
      const newest = new Map<string, StoredObjectRow>();
      for (const update of updates) {
        const incoming: StoredObjectRow = update.deleted
          ? { t: update.timestamp, s: 0, c: 'application/deleted', e: 'noetag', d: 1 }
          : rowOfUpdate(update);
        const seen = newest.get(update.name);
        const merged = mergeObjectRow(seen, incoming);
        if (merged !== undefined) newest.set(update.name, merged);
      }
      const names = [...newest.keys()];
      const keys = names.map((name) => rowKey(this.rows, name));
      const [infoValue, ...rowValues] = await this.database.db.getMany([this.infoKey, ...keys]);
      if (infoValue === undefined) throw new ContainerNotFoundError();
      const info = parseContainerInfo(infoValue);
      let count = info.object_count;
      let bytes = info.bytes_used;
      let sequence = info.max_row ?? 0;
      let changedRows = 0;
      const operations: BatchOperation[] = [];
      names.forEach((name, index) => {
        const incoming = newest.get(name);
        const key = keys[index];
        if (incoming === undefined || key === undefined) return;
        const rowValue = rowValues[index];
        const existing = rowValue === undefined ? undefined : parseRow(rowValue);
        const merged = mergeObjectRow(existing, incoming);
        if (merged === undefined) return;
        count += rowCount(merged) - rowCount(existing);
        bytes += rowBytes(merged) - rowBytes(existing);
        sequence += 1;
        changedRows += 1;
        const previous = existing === undefined ? undefined : sequenceOfRow(existing);
        operations.push(...sequencedRowWrite(this.prefix, key, merged, previous, sequence));
      });
      if (changedRows === 0) return 0;
      const updated: ContainerInfo = { ...info, object_count: count, bytes_used: bytes, max_row: sequence };
      await this.database.db.batch([...operations, { type: 'put', key: this.infoKey, value: encodeInfo(updated) }]);
      return changedRows;
    });
  }

  /** One object row (deleted rows included), for replication and tests. */
  async getObjectRow(name: string): Promise<ObjectRow | undefined> {
    const value = await this.database.db.get(rowKey(this.rows, name));
    if (value === undefined) return undefined;
    return toObjectRow(parseRow(value));
  }

  /** One listing page; see listing/scan.ts for the rules. */
  async listObjects(query: ScanQuery): Promise<ScanEntry<ObjectRow>[]> {
    return scanListing(this.database.db, this.rows, query, decodeListedRow);
  }
}

/** What reclaim removes from the container space: old deleted rows, old deleted metadata, dead containers. */
export const CONTAINER_RECLAIM_POLICY: ReclaimPolicy = {
  space: SPACE_CONTAINER,
  isReclaimableRow(value, cutoff) {
    const row = parseRow(value);
    return row.d === 1 && row.t < cutoff;
  },
  reclaimInfo(value, cutoff, rowsRemain) {
    const info = parseContainerInfo(value);
    if (!rowsRemain && isContainerDeleted(info) && info.delete_timestamp < cutoff) return { action: 'delete' };
    const metadata = reclaimMetadata(info.metadata, cutoff);
    return metadata === undefined
      ? { action: 'keep' }
      : { action: 'rewrite', value: encodeInfo({ ...info, metadata }) };
  },
};

/** Reclaims the containers of a device; `cutoff` is the internal timestamp now - reclaim_age. */
export async function reclaimContainers(
  database: DeviceDatabase,
  cutoff: string,
  options?: { maxKeys?: number; after?: Buffer },
): Promise<ReclaimResult> {
  return reclaimSpace(database, CONTAINER_RECLAIM_POLICY, cutoff, options);
}
