/**
 * Container replication pushes what changed since the last pass (db-replication.ts): replicas
 * written with different rows converge, a quiet round pushes nothing, a few new rows cost a few
 * rows pushed however big the container is, a replica that was down during many writes catches
 * up, and a container written by code older than row sequences (no id, rows without sequence)
 * still replicates whole, once.
 */
import test from 'ava';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { Timestamp } from '../../common/timestamp.js';
import { containerPrefix, databaseSideRanges, infoKey, rowKey, rowsPrefix } from '../../storage-node/db/keys.js';
import { call, quote, startFaultCluster, type FaultCluster, type FaultNode } from './harness/cluster.js';

const ACCOUNT = 'AUTH_incr';
let cluster: FaultCluster;

test.before(async () => {
  cluster = await startFaultCluster();
});

test.after.always(async () => {
  await cluster?.stop();
});

interface Replica {
  node: FaultNode;
  device: string;
  partition: number;
}

function replicas(container: string): Replica[] {
  const partition = cluster.containerRing.getPartition(ACCOUNT, container);
  return cluster.containerRing
    .getNodes(partition)
    .map((device) => ({ node: cluster.nodeOf(device), device: device.device, partition }));
}

/** An object row written straight to one container replica, as an object server reports it. */
async function putRow(replica: Replica, container: string, name: string, timestamp = Timestamp.now()): Promise<void> {
  const reply = await call(
    replica.node.port,
    'PUT',
    quote(replica.device, replica.partition, ACCOUNT, container, name),
    {
      'X-Backend-Server-Type': 'container',
      'X-Timestamp': timestamp.internal,
      'X-Size': String(name.length),
      'X-Content-Type': 'text/plain',
      'X-Etag': `etag-${name}-${timestamp.internal}`,
    },
  );
  if (reply.status !== 201) throw new Error(`row PUT ${name}: ${reply.status}`);
}

/** One container-replicator pass on every node; returns the summaries by node index. */
async function replicateRound(): Promise<Record<string, unknown>[]> {
  const summaries: Record<string, unknown>[] = [];
  for (const node of cluster.nodes) summaries.push(await cluster.runDaemon(node, 'container-replicator'));
  return summaries;
}

const pushed = (summaries: readonly Record<string, unknown>[]): number =>
  summaries.reduce((sum, summary) => sum + Number(summary.rowsPushed ?? 0), 0);

/** Each replica's listing with etags, and its object count header. */
async function replicaViews(container: string): Promise<{ rows: string; count: string }[]> {
  const views: { rows: string; count: string }[] = [];
  for (const replica of replicas(container)) {
    const path = quote(replica.device, replica.partition, ACCOUNT, container);
    const listing = await call(replica.node.port, 'GET', `${path}?format=json&limit=10000`);
    const rows = (JSON.parse(listing.body.toString('utf8')) as { name: string; hash: string }[]).map(
      (row) => `${row.name}:${row.hash}`,
    );
    const head = await call(replica.node.port, 'HEAD', path);
    views.push({ rows: rows.join(','), count: String(head.headers['x-container-object-count']) });
  }
  return views;
}

/** Rounds until one pushes nothing (at most `max`); returns how many it took. */
async function settle(max = 4): Promise<number> {
  for (let round = 1; round <= max; round += 1) {
    if (pushed(await replicateRound()) === 0) return round;
  }
  return max + 1;
}

test.serial('replicas written with different rows converge; then a pass pushes only the new rows', async (t) => {
  const container = 'diverged';
  await cluster.createContainer(ACCOUNT, container);
  const [first, second, third] = replicas(container);
  if (first === undefined || second === undefined || third === undefined) throw new Error('three replicas');
  for (let index = 0; index < 150; index += 1) await putRow(first, container, `a${String(index).padStart(3, '0')}`);
  for (let index = 0; index < 150; index += 1) await putRow(second, container, `b${String(index).padStart(3, '0')}`);
  // The same name on two replicas: the newer write wins everywhere.
  const older = Timestamp.now();
  const newer = Timestamp.now();
  await putRow(second, container, 'both', older);
  await putRow(first, container, 'both', newer);

  const firstRound = await replicateRound();
  t.log(`first round pushed ${pushed(firstRound)} rows`);
  const rounds = await settle();
  t.true(rounds <= 4, `quiet after ${rounds} more rounds`);
  const views = await replicaViews(container);
  t.is(views[0]?.count, '301');
  t.deepEqual(views[1], views[0]);
  t.deepEqual(views[2], views[0]);
  t.true(views[0]?.rows.includes(`both:etag-both-${newer.internal}`));

  // A quiet round: every peer is at our point, nothing is read or pushed.
  t.is(pushed(await replicateRound()), 0);

  // Five new rows on one replica: its pass pushes those five to each of its two peers, not 306.
  for (let index = 0; index < 5; index += 1) await putRow(third, container, `new${index}`);
  const writer = await cluster.runDaemon(third.node, 'container-replicator');
  t.log(`after 5 new rows, the writer's pass: ${JSON.stringify(writer)}`);
  t.is(writer.rowsPushed, 10);
  await settle();
  const after = await replicaViews(container);
  t.is(after[0]?.count, '306');
  t.deepEqual(after[1], after[0]);
  t.deepEqual(after[2], after[0]);
});

test.serial('a replica that was down during many writes catches up', async (t) => {
  const container = 'catchup';
  await cluster.createContainer(ACCOUNT, container);
  await settle();
  const [first, second, offline] = replicas(container);
  if (first === undefined || second === undefined || offline === undefined) throw new Error('three replicas');
  await offline.node.kill();
  try {
    for (let index = 0; index < 600; index += 1) {
      const name = `o${String(index).padStart(4, '0')}`;
      const timestamp = Timestamp.now();
      await putRow(first, container, name, timestamp);
      await putRow(second, container, name, timestamp);
    }
    // Some of them deleted while it was down.
    for (let index = 0; index < 600; index += 10) {
      const name = `o${String(index).padStart(4, '0')}`;
      const timestamp = Timestamp.now().internal;
      for (const replica of [first, second]) {
        const path = quote(replica.device, replica.partition, ACCOUNT, container, name);
        t.is(
          (
            await call(replica.node.port, 'DELETE', path, {
              'X-Backend-Server-Type': 'container',
              'X-Timestamp': timestamp,
            })
          ).status,
          204,
        );
      }
    }
  } finally {
    await offline.node.start();
  }
  const caughtUp = await cluster.runDaemon(first.node, 'container-replicator');
  t.log(`the first replica's pass: ${JSON.stringify(caughtUp)}`);
  await settle();
  const views = await replicaViews(container);
  t.is(views[0]?.count, '540');
  t.deepEqual(views[2], views[0]);
  t.deepEqual(views[1], views[0]);
});

test.serial('a container written before row sequences replicates whole, and is sequenced once', async (t) => {
  const container = 'legacy';
  await cluster.createContainer(ACCOUNT, container);
  await settle();
  const [old, ...others] = replicas(container);
  if (old === undefined) throw new Error('three replicas');
  await old.node.kill();
  // Make this replica what the previous code wrote: 200 rows with no sequence, an info with no id.
  const db = new ClassicLevel<Buffer, string>(join(old.node.devicePath, 'db'), {
    keyEncoding: 'buffer',
    valueEncoding: 'utf8',
  });
  try {
    await db.open();
    const prefix = containerPrefix(old.partition, ACCOUNT, container);
    const info = JSON.parse((await db.get(infoKey(prefix))) ?? '{}') as Record<string, unknown>;
    const timestamp = Timestamp.now().internal;
    const operations: { type: 'put'; key: Buffer; value: string }[] = [];
    for (let index = 0; index < 200; index += 1) {
      const row = { t: timestamp, s: 1, c: 'text/plain', e: `etag-${index}` };
      operations.push({ type: 'put', key: rowKey(rowsPrefix(prefix), `l${index}`), value: JSON.stringify(row) });
    }
    delete info.id;
    delete info.max_row;
    info.object_count = 200;
    info.bytes_used = 200;
    operations.push({ type: 'put', key: infoKey(prefix), value: JSON.stringify(info) });
    await db.batch(operations);
    for (const range of databaseSideRanges(prefix)) await db.clear(range);
  } finally {
    await db.close();
    await old.node.start();
  }
  const pass = await cluster.runDaemon(old.node, 'container-replicator');
  t.log(`the old replica's first pass: ${JSON.stringify(pass)}`);
  t.is(pass.rowsSequenced, 200);
  t.is(pass.rowsPushed, 400);
  const again = await cluster.runDaemon(old.node, 'container-replicator');
  t.is(again.rowsSequenced, 0);
  await settle();
  const views = await replicaViews(container);
  t.is(views[0]?.count, '200');
  for (const view of views.slice(1)) t.deepEqual(view, views[0]);
  t.is(others.length, 2);
});
