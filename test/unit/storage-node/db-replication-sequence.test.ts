/**
 * The row sequence behind incremental replication (db/row-sequence.ts, daemons/db-changes.ts,
 * daemons/db-merge.ts) on a real LevelDB: the change log holds each row once, at its latest
 * write, for the brokers' writes and for merges; reading after a point gives exactly the rows
 * changed since; a merge moves the stats as a recount would; reclaim takes a row's log entry
 * with it.
 */
import test from 'ava';
import { DEFAULT_CONSTRAINTS } from '../../../common/constraints.js';
import { Timestamp } from '../../../common/timestamp.js';
import { AccountBroker } from '../../../storage-node/account/broker.js';
import { ContainerBroker, reclaimContainers } from '../../../storage-node/container/broker.js';
import { changeKey, sequenceOfChangeKey, SPACE_CHANGES, syncPointKey } from '../../../storage-node/db/keys.js';
import type { DeviceDatabase } from '../../../storage-node/db/registry.js';
import { forEachChangeChunk, readLocalState, type Row } from '../../../storage-node/daemons/db-changes.js';
import { mergeDatabase, mergeInfo } from '../../../storage-node/daemons/db-merge.js';
import { openTempDatabase } from './helpers/temp-database.js';

const ts = (seconds: number): string => Timestamp.fromSeconds(1_700_000_000 + seconds).internal;
const row = (seconds: number, size: number) => ({ timestamp: ts(seconds), size, contentType: 'text/plain', etag: 'e' });

async function changesAfter(database: DeviceDatabase, prefix: Buffer, after: number): Promise<string[]> {
  const names: string[] = [];
  await forEachChangeChunk(database, prefix, after, 2, (rows: Row[]) => {
    names.push(...rows.map(([name]) => name));
    return Promise.resolve(true);
  });
  return names;
}

async function logLength(database: DeviceDatabase): Promise<number> {
  const keys = await database.db
    .keys({ gte: Buffer.from([SPACE_CHANGES]), lt: Buffer.from([SPACE_CHANGES + 1]) })
    .all();
  return keys.length;
}

test('change keys sort by sequence and read back', (t) => {
  const prefix = Buffer.from('c\0\0\0\x07a\0c\0', 'latin1');
  const small = changeKey(prefix, 255);
  const large = changeKey(prefix, 2 ** 40 + 1);
  t.true(Buffer.compare(small, large) < 0);
  t.is(sequenceOfChangeKey(large), 2 ** 40 + 1);
  t.is(sequenceOfChangeKey(small), 255);
});

test('container writes: one log entry per row at its latest write; rows after a point', async (t) => {
  const temp = await openTempDatabase();
  try {
    const broker = new ContainerBroker(temp.database, 3, 'AUTH_a', 'c');
    await broker.put({ timestamp: ts(0), defaultPolicyIndex: 0, metadata: {} }, DEFAULT_CONSTRAINTS);
    const fresh = await readLocalState(temp.database, broker.prefix);
    t.is(typeof fresh.id, 'string');
    t.is(fresh.maxRow, 0);
    await Promise.all([
      broker.putObject('a', row(1, 1)),
      broker.putObject('b', row(1, 2)),
      broker.putObject('c', row(1, 3)),
    ]);
    const point = (await readLocalState(temp.database, broker.prefix)).maxRow;
    t.is(point, 3);
    await broker.putObject('a', row(2, 5));
    await broker.deleteObject('b', ts(3));
    t.false(await broker.putObject('c', row(0, 9)), 'an older write changes nothing');
    t.deepEqual(await changesAfter(temp.database, broker.prefix, point), ['a', 'b']);
    t.deepEqual(await changesAfter(temp.database, broker.prefix, 0), ['c', 'a', 'b']);
    t.is(await logLength(temp.database), 3);
    await broker.mergeObjectRows([
      { name: 'd', ...row(4, 1) },
      { name: 'c', ...row(4, 1) },
    ]);
    t.deepEqual(await changesAfter(temp.database, broker.prefix, point), ['a', 'b', 'd', 'c']);
    t.is(await logLength(temp.database), 4);
    // Reclaim of the deleted row takes its entry too.
    await reclaimContainers(temp.database, ts(100));
    t.deepEqual(await changesAfter(temp.database, broker.prefix, 0), ['a', 'd', 'c']);
    t.is(await logLength(temp.database), 3);
  } finally {
    await temp.cleanup();
  }
});

test('account reports are logged the same way', async (t) => {
  const temp = await openTempDatabase();
  try {
    const broker = new AccountBroker(temp.database, 2, 'AUTH_a');
    await broker.put(ts(0), {}, DEFAULT_CONSTRAINTS);
    const report = { deleteTimestamp: '0000000000.00000', objectCount: 1, bytesUsed: 1, storagePolicyIndex: 0 };
    await broker.putContainer('x', { ...report, putTimestamp: ts(1) });
    await broker.putContainer('y', { ...report, putTimestamp: ts(1) });
    await broker.putContainer('x', { ...report, putTimestamp: ts(1), objectCount: 2 });
    t.deepEqual(await changesAfter(temp.database, broker.prefix, 0), ['y', 'x']);
    t.is((await readLocalState(temp.database, broker.prefix)).maxRow, 3);
  } finally {
    await temp.cleanup();
  }
});

test('a merge sequences what it changes, records the sender, and moves stats as a recount would', async (t) => {
  const temp = await openTempDatabase();
  try {
    const broker = new ContainerBroker(temp.database, 4, 'AUTH_a', 'm');
    await broker.put({ timestamp: ts(0), defaultPolicyIndex: 0, metadata: {} }, DEFAULT_CONSTRAINTS);
    await broker.putObject('keep', row(5, 10));
    await broker.putObject('old', row(1, 20));
    const info = (await readLocalState(temp.database, broker.prefix)).info;
    const incoming: Row[] = [
      ['old', JSON.stringify({ t: ts(2), s: 0, c: 'application/deleted', e: 'noetag', d: 1, q: 77 })],
      ['keep', JSON.stringify({ t: ts(4), s: 99, c: 'x', e: 'x', q: 78 })],
      ['new', JSON.stringify({ t: ts(3), s: 7, c: 'x', e: 'x', q: 79 })],
    ];
    const changed = await mergeDatabase(
      temp.database,
      'container',
      { prefix: broker.prefix, info, rows: incoming },
      { id: 'peer', through: 79 },
    );
    t.is(changed, 2);
    const after = await broker.getInfo();
    const rows: string[] = [];
    for await (const [, value] of temp.database.db.iterator({
      gte: broker.rows,
      lt: Buffer.concat([broker.prefix, Buffer.from([3])]),
    }))
      rows.push(value);
    const recounted = JSON.parse(mergeInfo('container', undefined, JSON.stringify(after), rows) ?? '{}') as {
      object_count: number;
      bytes_used: number;
    };
    t.is(after?.object_count, 2);
    t.is(after?.bytes_used, 17);
    t.deepEqual([recounted.object_count, recounted.bytes_used], [after?.object_count, after?.bytes_used]);
    t.is(after?.max_row, 4, 'two rows written here, then the two merged ones');
    t.deepEqual(await changesAfter(temp.database, broker.prefix, 2), ['old', 'new']);
    // The same push again changes nothing; the sender's point is kept.
    t.is(await mergeDatabase(temp.database, 'container', { prefix: broker.prefix, info, rows: incoming }), 0);
    t.is(await temp.database.db.get(syncPointKey(broker.prefix, 'peer')), '79');
  } finally {
    await temp.cleanup();
  }
});
