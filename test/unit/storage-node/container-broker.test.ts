import test from 'ava';
import { DEFAULT_CONSTRAINTS } from '../../../common/constraints.js';
import { Timestamp } from '../../../common/timestamp.js';
import {
  ContainerBroker,
  ContainerMetadataError,
  ContainerNotEmptyError,
  ContainerNotFoundError,
  ContainerTimestampConflictError,
  isContainerDeleted,
  reclaimContainers,
} from '../../../storage-node/container/broker.js';
import { openTempDatabase } from './helpers/temp-database.js';

const ts = (seconds: number): string => Timestamp.fromSeconds(1_700_000_000 + seconds).internal;
const put = (seconds: number, metadata = {}) => ({ timestamp: ts(seconds), defaultPolicyIndex: 0, metadata });
const row = (seconds: number, size: number) => ({ timestamp: ts(seconds), size, contentType: 'text/plain', etag: 'e' });

test('concurrent row updates are group-committed with the outcome of applying them one by one', async (t) => {
  const temp = await openTempDatabase();
  try {
    const broker = new ContainerBroker(temp.database, 5, 'AUTH_a', 'g');
    // A missing container fails every update of the group.
    const missing = await Promise.allSettled([broker.putObject('x', row(1, 1)), broker.putObject('y', row(1, 1))]);
    t.deepEqual(
      missing.map((result) => result.status === 'rejected' && result.reason instanceof ContainerNotFoundError),
      [true, true],
    );
    await broker.put(put(0), DEFAULT_CONSTRAINTS);
    // Other brokers of the same container (one per request in the server) share the group.
    const other = new ContainerBroker(temp.database, 5, 'AUTH_a', 'g');
    const outcomes = await Promise.all([
      broker.putObject('o', row(2, 10)),
      other.putObject('o', row(1, 99)), // older than the one before it: loses
      broker.putObject('o', row(3, 20)), // newer: replaces
      other.putObject('p', row(2, 5)),
      broker.deleteObject('p', ts(4)), // deletes p
      other.putObject('p', row(3, 7)), // older than the delete: loses
      ...Array.from({ length: 50 }, (_, index) => other.putObject(`n${index}`, row(2, 1))),
    ]);
    t.deepEqual(outcomes.slice(0, 6), [true, false, true, true, true, false]);
    t.true(outcomes.slice(6).every((changed) => changed));
    const info = await broker.getInfo();
    t.is(info?.object_count, 51);
    t.is(info?.bytes_used, 70);
    t.is((await broker.getObjectRow('o'))?.size, 20);
    t.true((await broker.getObjectRow('p'))?.deleted);
  } finally {
    await temp.cleanup();
  }
});

test('object rows: newest timestamp wins and stats stay exact', async (t) => {
  const temp = await openTempDatabase();
  try {
    const broker = new ContainerBroker(temp.database, 5, 'AUTH_a', 'c');
    await t.throwsAsync(broker.putObject('o', row(1, 1)), { instanceOf: ContainerNotFoundError });
    t.true((await broker.put(put(0), DEFAULT_CONSTRAINTS)).created);
    t.true(await broker.putObject('o', row(2, 10)));
    t.false(await broker.putObject('o', row(1, 99)), 'an older PUT loses');
    t.false(await broker.putObject('o', row(2, 99)), 'an equal timestamp keeps the first');
    t.true(await broker.putObject('p', row(3, 5)));
    let info = await broker.getInfo();
    t.is(info?.object_count, 2);
    t.is(info?.bytes_used, 15);
    t.true(await broker.putObject('o', row(4, 7)), 'an overwrite replaces the size');
    t.false(await broker.deleteObject('o', ts(3)), 'a delete older than the row loses');
    info = await broker.getInfo();
    t.is(info?.bytes_used, 12);
    t.true(await broker.deleteObject('p', ts(5)));
    t.false(await broker.putObject('p', row(4, 5)), 'a late PUT older than the tombstone stays deleted');
    t.true(await broker.deleteObject('never-existed', ts(5)), 'a delete of an unknown row leaves a tombstone');
    info = await broker.getInfo();
    t.is(info?.object_count, 1);
    t.is(info?.bytes_used, 7);
    t.deepEqual(await broker.getObjectRow('p'), {
      created_at: ts(5),
      meta_timestamp: ts(5),
      size: 0,
      content_type: 'application/deleted',
      etag: 'noetag',
      deleted: true,
    });
    const listed = await broker.listObjects({
      limit: 10,
      marker: '',
      endMarker: '',
      prefix: undefined,
      delimiter: undefined,
      reverse: false,
    });
    t.deepEqual(
      listed.map((entry) => ('name' in entry ? entry.name : entry.subdir)),
      ['o'],
    );
  } finally {
    await temp.cleanup();
  }
});

test("object rows: a POST's update changes the type and last-modified time, never the size or ETag", async (t) => {
  const temp = await openTempDatabase();
  try {
    const broker = new ContainerBroker(temp.database, 5, 'AUTH_a', 'c');
    await broker.put(put(0), DEFAULT_CONSTRAINTS);
    t.true(await broker.putObject('o', { ...row(2, 10), etag: 'slo; slo_etag=abc' }));
    // The object server sends a POST's update with the PUT's data timestamp and its own ones.
    const post = (seconds: number, contentType: string, typeChanged: boolean) => ({
      timestamp: ts(2),
      size: 10,
      contentType,
      etag: 'slo; slo_etag=abc',
      contentTypeTimestamp: typeChanged ? ts(seconds) : undefined,
      metaTimestamp: ts(seconds),
    });
    t.true(await broker.putObject('o', post(3, 'text/csv', true)));
    t.like(await broker.getObjectRow('o'), { created_at: ts(2), meta_timestamp: ts(3), content_type: 'text/csv' });
    t.true(await broker.putObject('o', post(4, 'text/csv', false)));
    t.like(await broker.getObjectRow('o'), { meta_timestamp: ts(4), content_type: 'text/csv', size: 10 });
    t.false(await broker.putObject('o', post(4, 'text/csv', false)), 'the same POST again changes nothing');
    t.false(await broker.putObject('o', post(1, 'image/png', true)), 'an older type loses');
    t.like(await broker.getObjectRow('o'), { etag: 'slo; slo_etag=abc', content_type: 'text/csv' });
    let info = await broker.getInfo();
    t.is(info?.object_count, 1);
    t.is(info?.bytes_used, 10);
    // A newer PUT brings its own data and type.
    t.true(await broker.putObject('o', row(5, 3)));
    t.like(await broker.getObjectRow('o'), { created_at: ts(5), meta_timestamp: ts(5), content_type: 'text/plain' });
    info = await broker.getInfo();
    t.is(info?.bytes_used, 3);
  } finally {
    await temp.cleanup();
  }
});

test('concurrent row updates of one container keep the stats exact', async (t) => {
  const temp = await openTempDatabase();
  try {
    const broker = new ContainerBroker(temp.database, 0, 'a', 'c');
    await broker.put(put(0), DEFAULT_CONSTRAINTS);
    await Promise.all(
      Array.from({ length: 200 }, async (_, index) => {
        await broker.putObject(`o${index % 50}`, row(1 + index, index));
      }),
    );
    const info = await broker.getInfo();
    t.is(info?.object_count, 50);
    // The newest write of each name is index 150..199.
    t.is(
      info?.bytes_used,
      Array.from({ length: 50 }, (_, index) => 150 + index).reduce((a, b) => a + b, 0),
    );
  } finally {
    await temp.cleanup();
  }
});

test('container PUT/DELETE: created, accepted, not empty, newest wins, re-create', async (t) => {
  const temp = await openTempDatabase();
  try {
    const broker = new ContainerBroker(temp.database, 0, 'a', 'c');
    await t.throwsAsync(broker.delete(ts(1)), { instanceOf: ContainerNotFoundError });
    const first = await broker.put(put(1, { 'X-Container-Meta-A': ['1', ts(1)] }), DEFAULT_CONSTRAINTS);
    t.true(first.created);
    t.false((await broker.put(put(2), DEFAULT_CONSTRAINTS)).created);
    await broker.putObject('o', row(3, 1));
    await t.throwsAsync(broker.delete(ts(4)), { instanceOf: ContainerNotEmptyError });
    await broker.deleteObject('o', ts(5));
    await t.throwsAsync(broker.delete(ts(1)), { instanceOf: ContainerTimestampConflictError }, 'older than the PUT');
    const { existed, info } = await broker.delete(ts(6));
    t.true(existed);
    t.true(isContainerDeleted(info));
    t.deepEqual(info.metadata['X-Container-Meta-A'], ['', ts(6)], 'a delete clears the metadata');
    t.false((await broker.delete(ts(7))).existed, 'deleting again: not found');
    await t.throwsAsync(broker.put(put(6.5), DEFAULT_CONSTRAINTS), { instanceOf: ContainerTimestampConflictError });
    const again = await broker.put(put(8), DEFAULT_CONSTRAINTS);
    t.true(again.created, 'a newer PUT re-creates it');
    t.is(again.info.created_at, first.info.created_at, 're-creating keeps created_at');
    t.is(again.info.status_changed_at, ts(8));
  } finally {
    await temp.cleanup();
  }
});

test('metadata: each item newest-wins, limits checked on the merged set, nothing written on refusal', async (t) => {
  const temp = await openTempDatabase();
  try {
    const broker = new ContainerBroker(temp.database, 0, 'a', 'c');
    await broker.put(
      put(1, { 'X-Container-Meta-A': ['1', ts(1)], 'X-Container-Read': ['.r:*', ts(1)] }),
      DEFAULT_CONSTRAINTS,
    );
    await broker.updateMetadata(
      { 'X-Container-Meta-A': ['old', ts(0)], 'X-Container-Meta-B': ['2', ts(2)] },
      DEFAULT_CONSTRAINTS,
    );
    let info = await broker.getInfo();
    t.deepEqual(info?.metadata['X-Container-Meta-A'], ['1', ts(1)]);
    t.deepEqual(info?.metadata['X-Container-Meta-B'], ['2', ts(2)]);
    const limits = { ...DEFAULT_CONSTRAINTS, max_meta_count: 3 };
    await broker.updateMetadata({ 'X-Container-Meta-C': ['3', ts(3)] }, limits);
    await t.throwsAsync(broker.updateMetadata({ 'X-Container-Meta-D': ['4', ts(4)] }, limits), {
      instanceOf: ContainerMetadataError,
      message: 'Too many metadata items; max 3',
    });
    info = await broker.getInfo();
    t.is(info?.metadata['X-Container-Meta-D'], undefined);
    await broker.updateMetadata({ 'X-Container-Meta-A': ['', ts(5)], 'X-Container-Meta-D': ['4', ts(5)] }, limits);
    info = await broker.getInfo();
    t.deepEqual(info?.metadata['X-Container-Meta-A'], ['', ts(5)], 'an empty value deletes, keeping its timestamp');
  } finally {
    await temp.cleanup();
  }
});

test('reclaim removes old deleted rows, old deleted metadata and dead containers only', async (t) => {
  const temp = await openTempDatabase();
  try {
    const live = new ContainerBroker(temp.database, 1, 'a', 'live');
    await live.put(put(1, { 'X-Container-Meta-Old': ['x', ts(1)] }), DEFAULT_CONSTRAINTS);
    await live.updateMetadata({ 'X-Container-Meta-Old': ['', ts(2)] }, DEFAULT_CONSTRAINTS);
    await live.putObject('keep', row(2, 1));
    await live.deleteObject('old-tombstone', ts(3));
    await live.deleteObject('new-tombstone', ts(100));
    const dead = new ContainerBroker(temp.database, 2, 'a', 'dead');
    await dead.put(put(1), DEFAULT_CONSTRAINTS);
    await dead.deleteObject('x', ts(2));
    await dead.delete(ts(4));
    const recent = new ContainerBroker(temp.database, 2, 'a', 'recent');
    await recent.put(put(1), DEFAULT_CONSTRAINTS);
    await recent.delete(ts(200));

    const result = await reclaimContainers(temp.database, ts(50));
    t.is(result.rowsReclaimed, 2);
    t.is(result.databasesRemoved, 1);
    t.is(await live.getObjectRow('old-tombstone'), undefined);
    t.truthy(await live.getObjectRow('new-tombstone'));
    t.truthy(await live.getObjectRow('keep'));
    t.is((await live.getInfo())?.metadata['X-Container-Meta-Old'], undefined);
    t.is(await dead.getInfo(), undefined);
    t.truthy(await recent.getInfo());
    t.is((await live.getInfo())?.object_count, 1);

    // Bounded passes resume where they stopped.
    const first = await reclaimContainers(temp.database, ts(150), { maxKeys: 2 });
    t.truthy(first.resumeAfter);
    const rest = await reclaimContainers(temp.database, ts(150), { after: first.resumeAfter });
    t.is(first.rowsReclaimed + rest.rowsReclaimed, 1);
  } finally {
    await temp.cleanup();
  }
});
