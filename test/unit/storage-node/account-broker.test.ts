import test from 'ava';
import { DEFAULT_CONSTRAINTS } from '../../../common/constraints.js';
import { Timestamp } from '../../../common/timestamp.js';
import {
  AccountBroker,
  AccountNotFoundError,
  AccountRecentlyDeletedError,
  reclaimAccounts,
} from '../../../storage-node/account/broker.js';
import { openTempDatabase } from './helpers/temp-database.js';

const ts = (seconds: number): string => Timestamp.fromSeconds(1_700_000_000 + seconds).internal;
const ZERO = '0000000000.00000';
const report = (put: number, del: number | undefined, objects: number, bytes: number) => ({
  putTimestamp: ts(put),
  deleteTimestamp: del === undefined ? ZERO : ts(del),
  objectCount: objects,
  bytesUsed: bytes,
  storagePolicyIndex: 0,
});

test('container reports keep the account totals exact; deleted containers leave the count', async (t) => {
  const temp = await openTempDatabase();
  try {
    const broker = new AccountBroker(temp.database, 3, 'AUTH_a');
    await t.throwsAsync(broker.putContainer('c', report(1, undefined, 0, 0)), { instanceOf: AccountNotFoundError });
    t.true((await broker.put(ts(0), {}, DEFAULT_CONSTRAINTS)).created);
    t.false((await broker.put(ts(1), {}, DEFAULT_CONSTRAINTS)).created);
    await broker.putContainer('c1', report(1, undefined, 0, 0));
    await broker.putContainer('c2', report(2, undefined, 3, 30));
    await broker.putContainer('c1', report(1, undefined, 2, 5));
    let info = await broker.getInfo();
    t.deepEqual([info?.container_count, info?.object_count, info?.bytes_used], [2, 5, 35]);
    // An older put timestamp in a report does not roll the row's timestamp back.
    await broker.putContainer('c2', report(1, undefined, 0, 0));
    t.is((await broker.getContainerRow('c2'))?.put_timestamp, ts(2));
    await broker.putContainer('c2', report(2, 3, 0, 0));
    info = await broker.getInfo();
    t.deepEqual([info?.container_count, info?.object_count, info?.bytes_used], [1, 2, 5]);
    t.true((await broker.getContainerRow('c2'))?.deleted);
    const listing = await broker.listContainers({
      limit: 10,
      marker: '',
      endMarker: '',
      prefix: undefined,
      delimiter: undefined,
      reverse: false,
    });
    t.deepEqual(
      listing.map((entry) => ('name' in entry ? entry.name : entry.subdir)),
      ['c1'],
    );
  } finally {
    await temp.cleanup();
  }
});

test('account DELETE marks it deleted; PUT is refused until reclaim; reclaim removes it', async (t) => {
  const temp = await openTempDatabase();
  try {
    const broker = new AccountBroker(temp.database, 0, 'AUTH_b');
    await broker.put(ts(1), { 'X-Account-Meta-A': ['1', ts(1)] }, DEFAULT_CONSTRAINTS);
    await broker.delete(ts(2));
    const info = await broker.getInfo();
    t.is(info?.status, 'DELETED');
    t.deepEqual(info?.metadata['X-Account-Meta-A'], ['', ts(2)]);
    await t.throwsAsync(broker.put(ts(3), {}, DEFAULT_CONSTRAINTS), { instanceOf: AccountRecentlyDeletedError });
    await t.throwsAsync(broker.delete(ts(3)), { instanceOf: AccountNotFoundError });
    await t.throwsAsync(broker.putContainer('c', report(3, undefined, 0, 0)), { instanceOf: AccountNotFoundError });
    await broker.putContainer('c', report(3, 4, 0, 0), true);
    const early = await reclaimAccounts(temp.database, ts(3));
    t.is(early.databasesRemoved, 0);
    const result = await reclaimAccounts(temp.database, ts(10));
    t.is(result.rowsReclaimed, 1);
    t.is(result.databasesRemoved, 1);
    t.is(await broker.getInfo(), undefined);
    t.true((await broker.put(ts(11), {}, DEFAULT_CONSTRAINTS)).created);
  } finally {
    await temp.cleanup();
  }
});
