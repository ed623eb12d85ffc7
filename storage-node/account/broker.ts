/**
 * An account's records in its device's LevelDB database (Swift's AccountBroker, without
 * SQLite): the info record (timestamps, status, container/object/byte totals, metadata) and one
 * row per container, as reported by the container servers. A report keeps the newest put and
 * delete timestamps it has seen and takes the report's counts (Swift's merge_items); the totals
 * change in the same atomic batch as the row, under the account's lock, so they stay exact.
 */
import { strict as assert } from 'node:assert';
import { accountPrefix, infoKey, lockName, rowKey, rowsPrefix, SPACE_ACCOUNT } from '../db/keys.js';
import {
  checkMergedMetadata,
  clearedMetadata,
  mergeMetadata,
  reclaimMetadata,
  type MetadataItems,
} from '../db/metadata.js';
import { reclaimSpace, type ReclaimResult } from '../db/reclaim.js';
import type { DeviceDatabase } from '../db/registry.js';
import { newDatabaseId, sequencedRowWrite, sequenceOfRow } from '../db/row-sequence.js';
import { scanListing, type ScanEntry, type ScanQuery } from '../listing/scan.js';
import type { Constraints } from '../../common/constraints.js';
import { Timestamp } from '../../common/timestamp.js';

export const ZERO_TIMESTAMP = '0000000000.00000';

export interface AccountInfo {
  account: string;
  /** Internal timestamps, which sort as strings. */
  created_at: string;
  put_timestamp: string;
  delete_timestamp: string;
  status_changed_at: string;
  /** 'DELETED' once a DELETE marked it (the reaper's cue); '' otherwise. */
  status: '' | 'DELETED';
  container_count: number;
  object_count: number;
  bytes_used: number;
  metadata: MetadataItems;
  /** This replica's identity and row counter (db/row-sequence.ts); absent in older databases. */
  id?: string;
  max_row?: number;
}

/** A container row as stored. */
interface StoredContainerRow {
  /** put_timestamp, delete_timestamp */
  p: string;
  x: string;
  o: number;
  b: number;
  i: number;
  d?: 1;
  /** The row's sequence (db/row-sequence.ts). */
  q?: number;
}

export interface ContainerRow {
  put_timestamp: string;
  delete_timestamp: string;
  object_count: number;
  bytes_used: number;
  storage_policy_index: number;
  deleted: boolean;
}

export class AccountError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'AccountError';
  }
}

export class AccountNotFoundError extends AccountError {
  constructor(readonly statusDeleted = false) {
    super('AccountNotFound', 'account not found');
  }
}

/** PUT of an account a DELETE marked, before reclaim removed it (Swift: 403 "Recently deleted"). */
export class AccountRecentlyDeletedError extends AccountError {
  constructor() {
    super('AccountRecentlyDeleted', 'Recently deleted');
  }
}

export class AccountTimestampConflictError extends AccountError {
  constructor() {
    super('AccountTimestampConflict', 'a newer delete decided the account state');
  }
}

export class AccountMetadataError extends AccountError {
  constructor(message: string) {
    super('AccountMetadataInvalid', message);
  }
}

export class CorruptAccountRecordError extends Error {
  readonly code = 'CorruptRecord';
  constructor(what: string, options?: { cause?: unknown }) {
    super(`corrupt record: ${what}`, options);
    this.name = 'CorruptAccountRecordError';
  }
}

export function isAccountDeleted(info: AccountInfo | undefined): boolean {
  return (
    info === undefined ||
    info.status === 'DELETED' ||
    (info.container_count === 0 && info.delete_timestamp > info.put_timestamp)
  );
}

export function parseAccountInfo(value: string): AccountInfo {
  let info: AccountInfo;
  try {
    info = JSON.parse(value) as AccountInfo;
  } catch (error) {
    throw new CorruptAccountRecordError('account info is not JSON', { cause: error });
  }
  if (
    typeof info !== 'object' ||
    typeof info.put_timestamp !== 'string' ||
    !Number.isSafeInteger(info.container_count) ||
    !Number.isSafeInteger(info.object_count) ||
    !Number.isSafeInteger(info.bytes_used) ||
    typeof info.metadata !== 'object'
  ) {
    throw new CorruptAccountRecordError('account info fields');
  }
  return info;
}

function encodeInfo(info: AccountInfo): string {
  assert.ok(info.container_count >= 0, 'container count never goes negative');
  return JSON.stringify(info);
}

function parseRow(value: string): StoredContainerRow {
  const row = JSON.parse(value) as StoredContainerRow;
  if (typeof row.p !== 'string' || typeof row.o !== 'number') throw new CorruptAccountRecordError('container row');
  return row;
}

function decodeListedRow(value: string): ContainerRow | undefined {
  const row = parseRow(value);
  if (row.d === 1) return undefined;
  return {
    put_timestamp: row.p,
    delete_timestamp: row.x,
    object_count: row.o,
    bytes_used: row.b,
    storage_policy_index: row.i,
    deleted: false,
  };
}

export interface ContainerReport {
  putTimestamp: string;
  deleteTimestamp: string;
  objectCount: number;
  bytesUsed: number;
  storagePolicyIndex: number;
}

export class AccountBroker {
  readonly prefix: Buffer;
  readonly rows: Buffer;
  private readonly infoKey: Buffer;
  private readonly lock: string;

  constructor(
    readonly database: DeviceDatabase,
    readonly partition: number,
    readonly account: string,
  ) {
    this.prefix = accountPrefix(partition, account);
    this.rows = rowsPrefix(this.prefix);
    this.infoKey = infoKey(this.prefix);
    this.lock = lockName(this.prefix);
  }

  async getInfo(): Promise<AccountInfo | undefined> {
    const value = await this.database.db.get(this.infoKey);
    return value === undefined ? undefined : parseAccountInfo(value);
  }

  /** PUT of the account: creates it, or updates its put timestamp and metadata. */
  async put(timestamp: string, metadata: MetadataItems, limits: Readonly<Constraints>): Promise<{ created: boolean }> {
    return this.database.locks.run(this.lock, async () => {
      const existing = await this.getInfo();
      let info: AccountInfo;
      let created: boolean;
      if (existing === undefined) {
        info = {
          account: this.account,
          // Swift stamps a database's creation with the local clock, not the request's X-Timestamp.
          created_at: Timestamp.now().internal,
          put_timestamp: timestamp,
          delete_timestamp: ZERO_TIMESTAMP,
          status_changed_at: timestamp,
          status: '',
          container_count: 0,
          object_count: 0,
          bytes_used: 0,
          metadata: {},
          id: newDatabaseId(),
          max_row: 0,
        };
        created = true;
      } else {
        if (existing.status === 'DELETED') throw new AccountRecentlyDeletedError();
        info = { ...existing };
        created = isAccountDeleted(existing);
        if (timestamp > info.put_timestamp) info.put_timestamp = timestamp;
        if (isAccountDeleted(info)) throw new AccountTimestampConflictError();
      }
      const { merged } = mergeMetadata(info.metadata, metadata);
      const problem = checkMergedMetadata(merged, limits);
      if (problem !== undefined) throw new AccountMetadataError(problem);
      info.metadata = merged;
      await this.database.db.put(this.infoKey, encodeInfo(info));
      return { created };
    });
  }

  async updateMetadata(items: MetadataItems, limits: Readonly<Constraints>): Promise<void> {
    await this.database.locks.run(this.lock, async () => {
      const info = await this.getInfo();
      if (info === undefined || isAccountDeleted(info)) throw new AccountNotFoundError(info?.status === 'DELETED');
      const { merged, changed } = mergeMetadata(info.metadata, items);
      if (!changed) return;
      const problem = checkMergedMetadata(merged, limits);
      if (problem !== undefined) throw new AccountMetadataError(problem);
      await this.database.db.put(this.infoKey, encodeInfo({ ...info, metadata: merged }));
    });
  }

  /** DELETE: marks the account deleted (its containers are the reaper's to remove). */
  async delete(timestamp: string): Promise<void> {
    await this.database.locks.run(this.lock, async () => {
      const current = await this.getInfo();
      if (current === undefined || isAccountDeleted(current))
        throw new AccountNotFoundError(current?.status === 'DELETED');
      const info: AccountInfo = { ...current };
      info.metadata = mergeMetadata(info.metadata, clearedMetadata(info.metadata, timestamp)).merged;
      if (timestamp > info.delete_timestamp) {
        info.delete_timestamp = timestamp;
        info.status = 'DELETED';
        info.status_changed_at = timestamp;
      }
      await this.database.db.put(this.infoKey, encodeInfo(info));
    });
  }

  /** A container server's report; `overrideDeleted` accepts it for a deleted account (reaper). */
  async putContainer(name: string, report: ContainerReport, overrideDeleted = false): Promise<void> {
    const key = rowKey(this.rows, name);
    await this.database.locks.run(this.lock, async () => {
      const [infoValue, rowValue] = await this.database.db.getMany([this.infoKey, key]);
      if (infoValue === undefined) throw new AccountNotFoundError();
      const info = parseAccountInfo(infoValue);
      // A plain 404 here, without X-Account-Status (Swift's account server answers reports so).
      if (!overrideDeleted && isAccountDeleted(info)) throw new AccountNotFoundError();
      const existing = rowValue === undefined ? undefined : parseRow(rowValue);
      const row: StoredContainerRow = {
        p: report.putTimestamp,
        x: report.deleteTimestamp,
        o: report.objectCount,
        b: report.bytesUsed,
        i: report.storagePolicyIndex,
      };
      if (existing !== undefined) {
        if (existing.p > row.p) row.p = existing.p;
        if (existing.x > row.x) row.x = existing.x;
      }
      if (row.x > row.p && row.o === 0) row.d = 1;
      const sequence = (info.max_row ?? 0) + 1;
      const updated: AccountInfo = { ...info, max_row: sequence };
      if (existing !== undefined) {
        updated.container_count -= existing.d === 1 ? 0 : 1;
        updated.object_count -= existing.o;
        updated.bytes_used -= existing.b;
      }
      updated.container_count += row.d === 1 ? 0 : 1;
      updated.object_count += row.o;
      updated.bytes_used += row.b;
      const previous = existing === undefined ? undefined : sequenceOfRow(existing);
      await this.database.db.batch([
        ...sequencedRowWrite(this.prefix, key, row, previous, sequence),
        { type: 'put', key: this.infoKey, value: encodeInfo(updated) },
      ]);
    });
  }

  async getContainerRow(name: string): Promise<ContainerRow | undefined> {
    const value = await this.database.db.get(rowKey(this.rows, name));
    if (value === undefined) return undefined;
    const row = parseRow(value);
    return {
      put_timestamp: row.p,
      delete_timestamp: row.x,
      object_count: row.o,
      bytes_used: row.b,
      storage_policy_index: row.i,
      deleted: row.d === 1,
    };
  }

  async listContainers(query: ScanQuery): Promise<ScanEntry<ContainerRow>[]> {
    return scanListing(this.database.db, this.rows, { ...query, path: undefined }, decodeListedRow);
  }
}

/** Reclaims a device's accounts: old deleted container rows, old deleted metadata, dead accounts. */
export async function reclaimAccounts(
  database: DeviceDatabase,
  cutoff: string,
  options?: { maxKeys?: number; after?: Buffer },
): Promise<ReclaimResult> {
  return reclaimSpace(
    database,
    {
      space: SPACE_ACCOUNT,
      isReclaimableRow(value, rowCutoff) {
        const row = parseRow(value);
        return row.d === 1 && row.x < rowCutoff;
      },
      reclaimInfo(value, infoCutoff, rowsRemain) {
        const info = parseAccountInfo(value);
        if (!rowsRemain && isAccountDeleted(info) && info.delete_timestamp < infoCutoff) return { action: 'delete' };
        const metadata = reclaimMetadata(info.metadata, infoCutoff);
        return metadata === undefined
          ? { action: 'keep' }
          : { action: 'rewrite', value: encodeInfo({ ...info, metadata }) };
      },
    },
    cutoff,
    options,
  );
}
