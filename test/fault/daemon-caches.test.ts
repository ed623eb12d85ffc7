/**
 * The daemons' caches on a real four-node cluster (daemon passes as separate processes, as an
 * operator runs them): the replicator's suffix-hash cache must not hide a write or a delete made
 * after a cached pass, and the expirer's index must find an object that expires and leave one
 * whose X-Delete-At a POST removed.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { hashPath } from '../../common/hash-path.js';
import { Timestamp } from '../../common/timestamp.js';
import { call, quote, startFaultCluster, type FaultCluster, type FaultNode } from './harness/cluster.js';
import { dataFileOn } from './harness/checks.js';

const SECRETS = { prefix: '', suffix: 'nebula-fault' };
const ACCOUNT = 'AUTH_caches';
let cluster: FaultCluster;

test.before(async () => {
  cluster = await startFaultCluster();
  await cluster.createContainer(ACCOUNT, 'c');
});

test.after.always(async () => {
  await cluster?.stop();
});

function primaries(object: string): FaultNode[] {
  const partition = cluster.objectRing.getPartition(ACCOUNT, 'c', object);
  return cluster.objectRing.getNodes(partition).map((device) => cluster.nodeOf(device));
}

/** A name in the same partition as `object`, so the write lands in a partition already cached. */
function neighbourOf(object: string): string {
  const partition = cluster.objectRing.getPartition(ACCOUNT, 'c', object);
  for (let index = 0; index < 100_000; index += 1) {
    const name = `${object}-n${index}`;
    if (cluster.objectRing.getPartition(ACCOUNT, 'c', name) === partition) return name;
  }
  throw new Error('no neighbour found');
}

/** The winning file names (.data or .ts) of an object on each of its primaries. */
async function winners(object: string): Promise<(string | undefined)[]> {
  const hash = hashPath(SECRETS, ACCOUNT, 'c', object);
  const partition = cluster.objectRing.getPartition(ACCOUNT, 'c', object);
  return Promise.all(
    primaries(object).map(async (node) => {
      const names = await readdir(join(node.devicePath, 'objects', String(partition), hash.slice(-3), hash)).catch(
        () => [] as string[],
      );
      return names
        .filter((name) => name.endsWith('.data') || name.endsWith('.ts'))
        .sort()
        .pop();
    }),
  );
}

/** Writes straight to one storage node, as if the other primaries had missed it. */
async function putOnOne(node: FaultNode, object: string, body: Buffer, timestamp: Timestamp): Promise<void> {
  const partition = cluster.objectRing.getPartition(ACCOUNT, 'c', object);
  const reply = await call(
    node.port,
    'PUT',
    quote(node.device, partition, ACCOUNT, 'c', object),
    {
      'X-Timestamp': timestamp.internal,
      'Content-Type': 'application/octet-stream',
      'Content-Length': String(body.length),
    },
    body,
  );
  if (reply.status !== 201) throw new Error(`PUT on node ${node.index + 1}: ${reply.status}`);
}

async function replicate(nodes: readonly FaultNode[]): Promise<Record<string, unknown>[]> {
  const summaries: Record<string, unknown>[] = [];
  for (const node of nodes) summaries.push(await cluster.runDaemon(node, 'object-replicator'));
  return summaries;
}

test.serial('a write and a delete after a cached pass reach every primary on the next pass', async (t) => {
  const first = 'cached';
  await cluster.putObject(ACCOUNT, 'c', first, randomBytes(100));
  // Every partition hashed and cached, every replica in sync.
  await replicate(cluster.nodes);
  const quiet = await replicate(cluster.nodes);
  t.deepEqual(
    quiet.map((summary) => summary.objectsPushed),
    [0, 0, 0, 0],
  );

  const later = neighbourOf(first);
  const [writer] = primaries(later);
  if (writer === undefined) throw new Error('no primary');
  const body = randomBytes(200);
  const written = Timestamp.now();
  await putOnOne(writer, later, body, written);
  t.deepEqual(await winners(later), [`${written.internal}.data`, undefined, undefined]);
  const afterWrite = await cluster.runDaemon(writer, 'object-replicator');
  t.is(afterWrite.objectsPushed, 2);
  const copies = await Promise.all(
    primaries(later).map((node) => dataFileOn(cluster, node.index, ACCOUNT, 'c', later)),
  );
  for (const copy of copies) t.true(copy?.subarray(0, body.length).equals(body));

  const deleted = new Timestamp(written.ticks + 100_000);
  const reply = await call(
    writer.port,
    'DELETE',
    quote(writer.device, cluster.objectRing.getPartition(ACCOUNT, 'c', later), ACCOUNT, 'c', later),
    { 'X-Timestamp': deleted.internal },
  );
  t.is(reply.status, 204);
  const afterDelete = await cluster.runDaemon(writer, 'object-replicator');
  t.is(afterDelete.objectsPushed, 2);
  t.deepEqual(await winners(later), Array(3).fill(`${deleted.internal}.ts`));
  t.log(
    `unchanged passes pushed ${JSON.stringify(quiet.map((s) => s.objectsPushed))}; a write after them pushed ${String(afterWrite.objectsPushed)}, a delete ${String(afterDelete.objectsPushed)}`,
  );
});

test.serial(
  'the expirer index: an expired object goes from disk and listings; one whose X-Delete-At was removed stays',
  async (t) => {
    // A first pass does the full scan (none was ever done); the next passes use the index alone.
    for (const node of cluster.nodes) await cluster.runDaemon(node, 'object-expirer');
    await cluster.createContainer(ACCOUNT, 'expiring');
    // Delete-at times are taken right before each write: a loaded machine may take seconds per step.
    const goesAt = Math.ceil(Date.now() / 1000) + 2;
    await cluster.putObject(ACCOUNT, 'expiring', 'goes', randomBytes(10), { 'X-Delete-At': String(goesAt) });
    await cluster.putObject(ACCOUNT, 'expiring', 'stays', randomBytes(10));
    await cluster.putObject(ACCOUNT, 'expiring', 'plain', randomBytes(10));
    // One POST sets an X-Delete-At (the index records it), the next removes it (Swift: a POST
    // replaces the metadata), so the index holds an entry that must not delete anything.
    const partition = cluster.objectRing.getPartition(ACCOUNT, 'expiring', 'stays');
    const post = (headers: Record<string, string>): Promise<number[]> =>
      Promise.all(
        cluster.objectRing.getNodes(partition).map(async (device) => {
          const reply = await call(
            cluster.nodeOf(device).port,
            'POST',
            quote(device.device, partition, ACCOUNT, 'expiring', 'stays'),
            { 'X-Timestamp': Timestamp.now().internal, ...headers },
          );
          return reply.status;
        }),
      );
    const staysAt = Math.ceil(Date.now() / 1000) + 4;
    t.deepEqual(await post({ 'X-Delete-At': String(staysAt) }), [202, 202, 202]);
    t.deepEqual(await post({ 'X-Object-Meta-Kept': 'yes' }), [202, 202, 202]);
    const dueMs = Math.max(goesAt, staysAt) * 1000;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, dueMs - Date.now()) + 1100));
    const summaries = [];
    for (const node of cluster.nodes) summaries.push(await cluster.runDaemon(node, 'object-expirer'));
    t.deepEqual(
      summaries.map((summary) => summary.fullScan),
      [false, false, false, false],
    );
    const deleted = summaries.reduce((sum, summary) => sum + Number(summary.deleted), 0);
    t.is(deleted, 3); // one per replica of 'goes'
    for (const listing of await cluster.listings(ACCOUNT, 'expiring')) t.deepEqual(listing, ['plain', 'stays']);
    const goes = cluster.objectRing.getPartition(ACCOUNT, 'expiring', 'goes');
    for (const device of cluster.objectRing.getNodes(goes)) {
      t.is(await dataFileOn(cluster, cluster.nodeOf(device).index, ACCOUNT, 'expiring', 'goes'), undefined);
    }
    const kept = cluster.objectRing.getNodes(partition).map((device) => cluster.nodeOf(device));
    for (const node of kept) t.not(await dataFileOn(cluster, node.index, ACCOUNT, 'expiring', 'stays'), undefined);
    t.log(
      `index-only expirer passes: ${JSON.stringify(summaries.map((s) => ({ checked: s.objectsChecked, entries: s.indexEntries, deleted: s.deleted })))}`,
    );
  },
);

test.serial("the daemons process with bind_ip = 0.0.0.0 finds its devices by this host's addresses", async (t) => {
  const object = `wildcard-${randomBytes(4).toString('hex')}`;
  const [writer] = primaries(object);
  if (writer === undefined) throw new Error('no primary');
  const written = Timestamp.now();
  await putOnOne(writer, object, randomBytes(100), written);
  // As an operator's storage-node.conf on a host that listens on every address (ring: 127.0.0.1).
  const summary = await cluster.runDaemon(writer, 'object-replicator', { NEBULA_DEFAULT__BIND_IP: '0.0.0.0' });
  // At least this object's two copies (the node may hold other writes of the suite's tests).
  t.true(Number(summary.objectsPushed) >= 2, JSON.stringify(summary));
  t.deepEqual(await winners(object), Array(3).fill(`${written.internal}.data`));
});
