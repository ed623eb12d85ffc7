/**
 * Probe of the daemons as the all-in-one runs them: inside each storage node process
 * (`daemons = all`), a pass every second here (10 in the all-in-one). A node is killed during
 * writes and comes back; nothing is run by hand: the copies must reach their primaries, the
 * handoffs empty, and every container replica list every object, on their own.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { startFaultCluster } from './harness/cluster.js';
import { dataFileOn, handoffPartitions } from './harness/checks.js';
import { call } from './harness/cluster.js';
import { STORAGE_NODE_THREAD_POOL_SIZE } from '../../common/thread-pool.js';
import { threadCountOf } from '../helpers/storage-node.js';

const OBJECT_COUNT = 60;
const HEAL_TIMEOUT_MS = 60_000;

test('in-process daemons heal a node killed during writes without any manual pass', async (t) => {
  const cluster = await startFaultCluster({ extraConfig: '[DEFAULT]\ndaemons = all\ninterval = 1\n' });
  t.teardown(() => cluster.stop());
  // The harness starts its nodes as the all-in-one does: with the storage node's libuv pool.
  for (const node of cluster.nodes) {
    t.true((await threadCountOf(node.pid() ?? -1)) >= STORAGE_NODE_THREAD_POOL_SIZE, `node ${node.index + 1}'s pool`);
  }
  await cluster.createContainer('AUTH_fault', 'auto');
  const victim = cluster.nodes[3];
  if (victim === undefined) throw new Error('no node 4');
  const names: string[] = [];
  const bodies = new Map<string, Buffer>();
  for (let index = 0; index < OBJECT_COUNT; index += 1) {
    if (index === 10) await victim.kill();
    const name = `auto-${index}`;
    const body = randomBytes(300);
    names.push(name);
    bodies.set(name, body);
    t.true((await cluster.putObject('AUTH_fault', 'auto', name, body)).acknowledged);
  }
  await victim.start();
  const started = Date.now();
  let missing = Number.POSITIVE_INFINITY;
  let handoffs: string[] = [];
  let shortListings = Number.POSITIVE_INFINITY;
  // Bounded by HEAL_TIMEOUT_MS.
  while (Date.now() - started < HEAL_TIMEOUT_MS) {
    missing = 0;
    for (const name of names) {
      const partition = cluster.objectRing.getPartition('AUTH_fault', 'auto', name);
      for (const device of cluster.objectRing.getNodes(partition)) {
        const copy = await dataFileOn(cluster, cluster.nodeOf(device).index, 'AUTH_fault', 'auto', name);
        if (copy?.subarray(0, 300).equals(bodies.get(name) ?? Buffer.alloc(0)) !== true) missing += 1;
      }
    }
    handoffs = await handoffPartitions(cluster);
    shortListings = (await cluster.listings('AUTH_fault', 'auto')).filter(
      (listing) => listing.length !== OBJECT_COUNT,
    ).length;
    if (missing === 0 && handoffs.length === 0 && shortListings === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  const recon = await call(victim.port, 'GET', '/recon/replication');
  t.log(
    `wrote ${OBJECT_COUNT} objects, node 4 killed after 10; healed by in-process daemons in ${Date.now() - started} ms: ` +
      `${missing} copies missing, ${handoffs.length} handoff partitions, ${shortListings} short listings; node 4 recon: ${recon.body.toString('utf8')}`,
  );
  t.is(missing, 0);
  t.deepEqual(handoffs, []);
  t.is(shortListings, 0);
});
