/**
 * The key layout of a device's LevelDB database: the only module that builds or reads keys.
 *
 * One database per device holds every container and account record on it. Keys are bytes:
 *
 *   container space  'c' | partition (u32 BE) | account | 0x00 | container | 0x00 | record
 *   account space    'a' | partition (u32 BE) | account | 0x00 | record
 *   pending updates  'u' | partition (u32 BE) | account | 0x00 | container
 *   change log       'q' | database prefix | row sequence (u64 BE)          -> row name
 *   sync points      'y' | database prefix | remote database id             -> remote's sequence
 *
 * where `record` is 0x01 for the info record (a container's or an account's stats, timestamps and
 * metadata) and 0x02 followed by a name for a row (an object row in a container, a container row
 * in an account). Partition comes right after the space byte so that a replicator walks one
 * partition with one range scan, and every container (or account) is one contiguous range, like
 * one of Swift's .db files. Names are raw UTF-8 ended by 0x00: names never contain NUL (the
 * servers refuse it), so `a\0` sorts before `ab\0` exactly as `a` sorts before `ab`, and rows
 * sort in UTF-8 byte order, which is Swift's listing order. UTF-8 never contains 0xFF, so
 * `prefix + 0xFF` is an upper bound of every name that starts with `prefix`.
 *
 * The change log and sync points (Swift's ROWID order and incoming_sync table) live outside the
 * 'c' and 'a' spaces, so listings, reclaim and the partition walks never see them. A database
 * prefix ends with its last name's 0x00 and names hold no NUL, so no database prefix starts
 * another's: `'q' | prefix` bounds exactly one database's log.
 */
import { strict as assert } from 'node:assert';

export const SPACE_CONTAINER = 0x63; // 'c'
export const SPACE_ACCOUNT = 0x61; // 'a'
export const SPACE_PENDING = 0x75; // 'u'
export const SPACE_CHANGES = 0x71; // 'q'
export const SPACE_SYNC_POINTS = 0x79; // 'y'
const RECORD_INFO = 0x01;
const RECORD_ROW = 0x02;
const SEPARATOR = 0x00;
/** A byte that no UTF-8 string contains: appended to a name prefix it bounds the prefix's range. */
export const NAME_PREFIX_END = 0xff;

function spacePrefix(space: number, partition: number): Buffer {
  assert.ok(Number.isInteger(partition) && partition >= 0 && partition <= 0xffff_ffff, `bad partition ${partition}`);
  const buffer = Buffer.allocUnsafe(5);
  buffer[0] = space;
  buffer.writeUInt32BE(partition, 1);
  return buffer;
}

function nameBytes(name: string): Buffer {
  const bytes = Buffer.from(name, 'utf8');
  assert.ok(!bytes.includes(SEPARATOR), 'names never contain NUL');
  return bytes;
}

/** Everything of one space on one partition: what a replicator walks. */
export function partitionRange(space: number, partition: number): { gte: Buffer; lt: Buffer } {
  const start = spacePrefix(space, partition);
  const end = partition === 0xffff_ffff ? Buffer.from([space + 1]) : spacePrefix(space, partition + 1);
  return { gte: start, lt: end };
}

/** Everything of one space (all partitions). */
export function spaceRange(space: number): { gte: Buffer; lt: Buffer } {
  return { gte: Buffer.from([space]), lt: Buffer.from([space + 1]) };
}

/** The common prefix of every key of one container: its info record and its object rows. */
export function containerPrefix(partition: number, account: string, container: string): Buffer {
  return Buffer.concat([
    spacePrefix(SPACE_CONTAINER, partition),
    nameBytes(account),
    Buffer.from([SEPARATOR]),
    nameBytes(container),
    Buffer.from([SEPARATOR]),
  ]);
}

export function accountPrefix(partition: number, account: string): Buffer {
  return Buffer.concat([spacePrefix(SPACE_ACCOUNT, partition), nameBytes(account), Buffer.from([SEPARATOR])]);
}

/** The info record key of a database (container or account) whose prefix is given. */
export function infoKey(databasePrefix: Buffer): Buffer {
  return Buffer.concat([databasePrefix, Buffer.from([RECORD_INFO])]);
}

/** The prefix of every row of a database; a row key is this plus the row's name in UTF-8. */
export function rowsPrefix(databasePrefix: Buffer): Buffer {
  return Buffer.concat([databasePrefix, Buffer.from([RECORD_ROW])]);
}

export function rowKey(rows: Buffer, name: string): Buffer {
  return Buffer.concat([rows, nameBytes(name)]);
}

/** The row name of a key under `rows` (the inverse of rowKey). */
export function rowName(rows: Buffer, key: Buffer): string {
  return key.toString('utf8', rows.length);
}

export function pendingKey(partition: number, account: string, container: string): Buffer {
  return Buffer.concat([
    spacePrefix(SPACE_PENDING, partition),
    nameBytes(account),
    Buffer.from([SEPARATOR]),
    nameBytes(container),
  ]);
}

export interface DecodedKey {
  space: number;
  partition: number;
  account: string;
  /** Container space and pending keys only. */
  container?: string;
  kind: 'info' | 'row' | 'pending';
  /** Row keys only: the object name (container space) or container name (account space). */
  name?: string;
}

/** Reads any key back into its parts (for replicators, reclaim and tests). */
export function decodeKey(key: Buffer): DecodedKey {
  assert.ok(key.length >= 6, 'key too short');
  const space = key[0] ?? 0;
  const partition = key.readUInt32BE(1);
  const accountEnd = key.indexOf(SEPARATOR, 5);
  if (space === SPACE_PENDING) {
    assert.ok(accountEnd >= 0, 'pending key without container');
    return {
      space,
      partition,
      account: key.toString('utf8', 5, accountEnd),
      container: key.toString('utf8', accountEnd + 1),
      kind: 'pending',
    };
  }
  assert.ok(accountEnd >= 0, 'key without account terminator');
  const account = key.toString('utf8', 5, accountEnd);
  let recordAt = accountEnd + 1;
  let container: string | undefined;
  if (space === SPACE_CONTAINER) {
    const containerEnd = key.indexOf(SEPARATOR, recordAt);
    assert.ok(containerEnd >= 0, 'key without container terminator');
    container = key.toString('utf8', recordAt, containerEnd);
    recordAt = containerEnd + 1;
  } else {
    assert.equal(space, SPACE_ACCOUNT, `unknown key space ${space}`);
  }
  const record = key[recordAt];
  if (record === RECORD_INFO) return { space, partition, account, container, kind: 'info' };
  assert.equal(record, RECORD_ROW, `unknown record kind ${String(record)}`);
  return { space, partition, account, container, kind: 'row', name: key.toString('utf8', recordAt + 1) };
}

/** The database prefix (container or account) of a row or info key: where its record byte starts. */
export function databasePrefixOf(key: Buffer): Buffer {
  const space = key[0];
  const accountEnd = key.indexOf(SEPARATOR, 5);
  assert.ok(accountEnd >= 0, 'key without account terminator');
  if (space === SPACE_ACCOUNT) return key.subarray(0, accountEnd + 1);
  assert.equal(space, SPACE_CONTAINER, `key space ${String(space)} has no databases`);
  const containerEnd = key.indexOf(SEPARATOR, accountEnd + 1);
  assert.ok(containerEnd >= 0, 'key without container terminator');
  return key.subarray(0, containerEnd + 1);
}

/** Whether a key (under its database prefix) is the info record. */
export function isInfoKey(key: Buffer, databasePrefix: Buffer): boolean {
  return key.length === databasePrefix.length + 1 && key[databasePrefix.length] === RECORD_INFO;
}

/** The lock name of a database in its device's KeyedMutex. */
export function lockName(databasePrefix: Buffer): string {
  return databasePrefix.toString('latin1');
}

/** Sequences fit 8 bytes big-endian, so the log sorts by sequence; JS numbers keep 2^53 exact. */
const SEQUENCE_BYTES = 8;

/** The change-log key of the row written with sequence `sequence` in a database. */
export function changeKey(databasePrefix: Buffer, sequence: number): Buffer {
  assert.ok(Number.isSafeInteger(sequence) && sequence >= 0, `bad sequence ${sequence}`);
  const key = Buffer.allocUnsafe(1 + databasePrefix.length + SEQUENCE_BYTES);
  key[0] = SPACE_CHANGES;
  databasePrefix.copy(key, 1);
  key.writeUInt32BE(Math.floor(sequence / 2 ** 32), 1 + databasePrefix.length);
  key.writeUInt32BE(sequence % 2 ** 32, 5 + databasePrefix.length);
  return key;
}

/** The sequence of a change-log key. */
export function sequenceOfChangeKey(key: Buffer): number {
  const at = key.length - SEQUENCE_BYTES;
  return key.readUInt32BE(at) * 2 ** 32 + key.readUInt32BE(at + 4);
}

/** A database's change-log entries with a sequence above `after`, in sequence order. */
export function changesAfter(databasePrefix: Buffer, after: number): { gt: Buffer; lt: Buffer } {
  return { gt: changeKey(databasePrefix, Math.max(0, after)), lt: sideRange(SPACE_CHANGES, databasePrefix).lt };
}

/** Where a database keeps how far it merged the rows of the remote replica `remoteId`. */
export function syncPointKey(databasePrefix: Buffer, remoteId: string): Buffer {
  const id = nameBytes(remoteId);
  return Buffer.concat([Buffer.from([SPACE_SYNC_POINTS]), databasePrefix, id]);
}

function sideRange(space: number, databasePrefix: Buffer): { gte: Buffer; lt: Buffer } {
  const start = Buffer.concat([Buffer.from([space]), databasePrefix]);
  return { gte: start, lt: Buffer.concat([start, Buffer.from([NAME_PREFIX_END])]) };
}

/** The change log and sync points of a database: removed with it. */
export function databaseSideRanges(databasePrefix: Buffer): { gte: Buffer; lt: Buffer }[] {
  return [sideRange(SPACE_CHANGES, databasePrefix), sideRange(SPACE_SYNC_POINTS, databasePrefix)];
}
