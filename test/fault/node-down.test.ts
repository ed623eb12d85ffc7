/**
 * Probe: one of four storage nodes is killed (SIGKILL) while a client writes objects. Every write
 * must be acknowledged (a handoff takes the dead node's copies); once the node is back and each
 * node's replicator has run, every object is on all three primaries, byte-identical, and no
 * handoff partition is left.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { startFaultCluster } from './harness/cluster.js';
import { dataFileOn, handoffPartitions, inParallel } from './harness/checks.js';

// 500 by default keeps the whole fault suite under 3 minutes on a loaded 2-core machine; NEBULA_FAULT_OBJECTS=1000 for the full probe.
const OBJECT_COUNT = Number(process.env.NEBULA_FAULT_OBJECTS ?? 500);

test('a node down during writes: every acknowledged object ends on its three primaries', async (t) => {
  const cluster = await startFaultCluster();
  t.teardown(() => cluster.stop());
  await cluster.createContainer('AUTH_fault', 'c1');
  const victim = cluster.nodes[1];
  if (victim === undefined) throw new Error('no node 2');

  const names = Array.from({ length: OBJECT_COUNT }, (_, index) => `obj-${String(index).padStart(5, '0')}`);
  const bodies = new Map<string, Buffer>();
  let acknowledged = 0;
  let handoffWrites = 0;
  const writeStarted = Date.now();
  let written = 0;
  let killed: Promise<void> | undefined;
  await inParallel(names, 8, async (name) => {
    // The node dies (kill -9) a tenth of the way in, with writes in flight.
    written += 1;
    if (written === Math.ceil(OBJECT_COUNT / 10)) killed = victim.kill();
    const body = randomBytes(64 + (name.length % 7) * 100);
    bodies.set(name, body);
    const result = await cluster.putObject('AUTH_fault', 'c1', name, body);
    if (result.acknowledged) acknowledged += 1;
    handoffWrites += result.handoffs;
  });
  await killed;
  t.log(
    `wrote ${OBJECT_COUNT} objects in ${Date.now() - writeStarted} ms (node 2 killed after ${Math.ceil(OBJECT_COUNT / 10)}): ${acknowledged} acknowledged, ${handoffWrites} copies on handoffs`,
  );
  t.is(acknowledged, OBJECT_COUNT);
  t.true(handoffWrites > 0);
  t.true((await handoffPartitions(cluster)).length > 0);

  await victim.start();
  const healStarted = Date.now();
  let passes = 0;
  for (let round = 0; round < 3; round += 1) {
    const summaries = [];
    for (const node of cluster.nodes) summaries.push(await cluster.runDaemon(node, 'object-replicator'));
    passes += 1;
    t.log(
      `replication round ${round + 1}: ${JSON.stringify(summaries.map((s) => ({ pushed: s.objectsPushed, handoffsRemoved: s.handoffsRemoved, failures: s.failures, seconds: s.seconds })))}`,
    );
    if ((await handoffPartitions(cluster)).length === 0 && round > 0) break;
  }
  const healMs = Date.now() - healStarted;

  let missing = 0;
  let differing = 0;
  await inParallel(names, 16, async (name) => {
    const partition = cluster.objectRing.getPartition('AUTH_fault', 'c1', name);
    const copies = await Promise.all(
      cluster.objectRing
        .getNodes(partition)
        .map((device) => dataFileOn(cluster, cluster.nodeOf(device).index, 'AUTH_fault', 'c1', name)),
    );
    const first = copies[0];
    for (const copy of copies) {
      if (copy === undefined) missing += 1;
      else if (first === undefined || !copy.equals(first)) differing += 1;
      else if (!copy.subarray(0, bodies.get(name)?.length ?? 0).equals(bodies.get(name) ?? Buffer.alloc(0)))
        differing += 1;
    }
  });
  const leftover = await handoffPartitions(cluster);
  t.log(
    `healed in ${healMs} ms (${passes} replication rounds): ${missing} primary copies missing, ${differing} differing, ${leftover.length} handoff partitions left`,
  );
  t.is(missing, 0);
  t.is(differing, 0);
  t.deepEqual(leftover, []);
});
