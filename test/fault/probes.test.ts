/**
 * Probes on one four-node cluster (each on its own container, run one after the other): a
 * corrupted .data file, a lost device, a container server down during writes, expiring objects,
 * and conflicting writes. Each prints what it wrote, what was lost and how long healing took.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hashPath } from '../../common/hash-path.js';
import { Timestamp } from '../../common/timestamp.js';
import { call, quote, startFaultCluster, type FaultCluster, type FaultNode } from './harness/cluster.js';
import { dataFileOn, handoffPartitions, inParallel } from './harness/checks.js';

const SECRETS = { prefix: '', suffix: 'nebula-fault' };
let cluster: FaultCluster;

test.before(async () => {
  cluster = await startFaultCluster();
});

test.after.always(async () => {
  await cluster?.stop();
});

async function replicateAll(rounds = 1): Promise<Record<string, unknown>[]> {
  const summaries: Record<string, unknown>[] = [];
  for (let round = 0; round < rounds; round += 1) {
    for (const node of cluster.nodes) summaries.push(await cluster.runDaemon(node, 'object-replicator'));
  }
  return summaries;
}

function primaryNodes(account: string, container: string, object: string): FaultNode[] {
  const partition = cluster.objectRing.getPartition(account, container, object);
  return cluster.objectRing.getNodes(partition).map((device) => cluster.nodeOf(device));
}

async function allPrimariesHold(account: string, container: string, object: string, body: Buffer): Promise<number> {
  let good = 0;
  const copies = await Promise.all(
    primaryNodes(account, container, object).map((node) => dataFileOn(cluster, node.index, account, container, object)),
  );
  for (const copy of copies)
    if (copy !== undefined && copy.subarray(0, body.length).equals(body) && copy.equals(copies[0] ?? Buffer.alloc(0)))
      good += 1;
  return good;
}

test.serial('a corrupted .data file: reads stay right, the bad copy is quarantined and restored', async (t) => {
  await cluster.createContainer('AUTH_fault', 'corrupt');
  const bodies = new Map<string, Buffer>();
  for (let index = 0; index < 20; index += 1) {
    const body = randomBytes(2000);
    bodies.set(`o${index}`, body);
    t.true((await cluster.putObject('AUTH_fault', 'corrupt', `o${index}`, body)).acknowledged);
  }
  // Flip bytes in the first primary's copy of two objects (same length): one found by a GET, one by the auditor.
  const victims = ['o3', 'o7'];
  for (const name of victims) {
    const node = primaryNodes('AUTH_fault', 'corrupt', name)[0] as FaultNode;
    const hash = hashPath(SECRETS, 'AUTH_fault', 'corrupt', name);
    const partition = cluster.objectRing.getPartition('AUTH_fault', 'corrupt', name);
    const hashDir = join(node.devicePath, 'objects', String(partition), hash.slice(-3), hash);
    const [file] = (await readdir(hashDir)).filter((f) => f.endsWith('.data'));
    const path = join(hashDir, file ?? '');
    const bytes = await readFile(path);
    for (let i = 10; i < 20; i += 1) bytes[i] = (bytes[i] ?? 0) ^ 0xff;
    await writeFile(path, bytes);
  }
  t.log(`wrote 20 objects of 2000 bytes; corrupted ${victims.length} copies (10 bytes flipped each)`);
  const started = Date.now();
  const read = await cluster.getObject('AUTH_fault', 'corrupt', 'o3');
  t.is(read.status, 200);
  t.true(read.body.equals(bodies.get('o3') ?? Buffer.alloc(0)), 'GET falls through to a good copy');
  const auditNode = primaryNodes('AUTH_fault', 'corrupt', 'o7')[0] as FaultNode;
  const audit = await cluster.runDaemon(auditNode, 'object-auditor');
  t.log(`auditor on node ${auditNode.index + 1}: ${JSON.stringify(audit)}`);
  t.true(Number(audit.quarantined) >= 1);
  const quarantined = (
    await Promise.all(
      cluster.nodes.map((node) => readdir(join(node.devicePath, 'quarantined', 'objects')).catch(() => [] as string[])),
    )
  ).flat();
  t.true(quarantined.length >= 2, `quarantined: ${quarantined.join(', ')}`);
  await replicateAll();
  let good = 0;
  for (const [name, body] of bodies) good += await allPrimariesHold('AUTH_fault', 'corrupt', name, body);
  t.log(
    `healed in ${Date.now() - started} ms: ${good} of ${bodies.size * 3} primary copies good, ${quarantined.length} quarantined`,
  );
  t.is(good, bodies.size * 3);
});

test.serial('a device folder lost: replication rebuilds its objects, container and account records', async (t) => {
  await cluster.createContainer('AUTH_fault', 'lost');
  const bodies = new Map<string, Buffer>();
  for (let index = 0; index < 60; index += 1) {
    const body = randomBytes(500);
    bodies.set(`o${index}`, body);
    t.true((await cluster.putObject('AUTH_fault', 'lost', `o${index}`, body)).acknowledged);
  }
  const victim = cluster.nodes[2] as FaultNode;
  const onVictim = [...bodies.keys()].filter((name) => primaryNodes('AUTH_fault', 'lost', name).includes(victim));
  await victim.kill();
  await rm(victim.devicePath, { recursive: true, force: true });
  await mkdir(victim.devicePath, { recursive: true }); // a new, empty disk in its place
  await victim.start();
  t.log(`wrote 60 objects; node 3's device (primary for ${onVictim.length} of them) replaced by an empty one`);
  const started = Date.now();
  await replicateAll();
  let good = 0;
  for (const name of onVictim) {
    const copy = await dataFileOn(cluster, victim.index, 'AUTH_fault', 'lost', name);
    if (copy?.subarray(0, 500).equals(bodies.get(name) ?? Buffer.alloc(0)) === true) good += 1;
  }
  t.log(`objects healed in ${Date.now() - started} ms: ${good} of ${onVictim.length} copies back on node 3`);
  t.is(good, onVictim.length);
  t.true(onVictim.length > 0);
  // The device's LevelDB went with it: container and account records come back from peers.
  const dbStarted = Date.now();
  const summaries = [];
  for (const node of cluster.nodes) {
    summaries.push(await cluster.runDaemon(node, 'container-replicator'));
    summaries.push(await cluster.runDaemon(node, 'account-replicator'));
  }
  const listings = await cluster.listings('AUTH_fault', 'lost');
  t.log(
    `databases healed in ${Date.now() - dbStarted} ms: container replicas list ${listings.map((l) => l.length).join('/')} objects; pushed ${JSON.stringify(summaries.map((s) => s.databasesPushed))}`,
  );
  for (const listing of listings) t.is(listing.length, 60);
  const accountPartition = cluster.accountRing.getPartition('AUTH_fault');
  for (const device of cluster.accountRing.getNodes(accountPartition)) {
    const reply = await call(cluster.nodeOf(device).port, 'HEAD', quote(device.device, accountPartition, 'AUTH_fault'));
    t.is(reply.status, 204, `account on node ${cluster.nodeOf(device).index + 1}`);
  }
});

test.serial('a container server down during writes: listings catch up after the updater', async (t) => {
  await cluster.createContainer('AUTH_fault', 'listed');
  const partition = cluster.containerRing.getPartition('AUTH_fault', 'listed');
  const victim = cluster.nodeOf(cluster.containerRing.getNodes(partition)[0] as never);
  await victim.kill();
  const names = Array.from({ length: 30 }, (_, index) => `o${index}`);
  let acknowledged = 0;
  for (const name of names)
    if ((await cluster.putObject('AUTH_fault', 'listed', name, randomBytes(100))).acknowledged) acknowledged += 1;
  t.is(acknowledged, names.length);
  await victim.start();
  const before = await cluster.listings('AUTH_fault', 'listed');
  t.log(
    `wrote ${names.length} objects with container node ${victim.index + 1} down; replicas list ${before.map((l) => l.length).join('/')} objects`,
  );
  const started = Date.now();
  const summaries = [];
  for (const node of cluster.nodes) summaries.push(await cluster.runDaemon(node, 'object-updater'));
  const after = await cluster.listings('AUTH_fault', 'listed');
  t.log(
    `after one updater pass (${Date.now() - started} ms): replicas list ${after.map((l) => l.length).join('/')}; ${JSON.stringify(summaries.map((s) => s.successes))} updates replayed`,
  );
  for (const listing of after) t.deepEqual([...listing].sort(), [...names].sort());
});

test.serial('X-Delete-At objects: gone from GETs at once and from listings after the expirer', async (t) => {
  await cluster.createContainer('AUTH_fault', 'expiring');
  const deleteAt = Math.ceil(Date.now() / 1000) + 2;
  for (let index = 0; index < 5; index += 1) {
    await cluster.putObject('AUTH_fault', 'expiring', `gone${index}`, randomBytes(10), {
      'X-Delete-At': String(deleteAt),
    });
  }
  await cluster.putObject('AUTH_fault', 'expiring', 'kept', randomBytes(10));
  t.is((await cluster.getObject('AUTH_fault', 'expiring', 'gone0')).status, 200);
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, deleteAt * 1000 - Date.now()) + 200));
  t.is((await cluster.getObject('AUTH_fault', 'expiring', 'gone0')).status, 404);
  t.is((await cluster.listings('AUTH_fault', 'expiring'))[0]?.length, 6);
  const started = Date.now();
  const summaries = [];
  for (const node of cluster.nodes) summaries.push(await cluster.runDaemon(node, 'object-expirer'));
  const after = await cluster.listings('AUTH_fault', 'expiring');
  t.log(
    `5 objects expiring at ${deleteAt}, 1 kept; after one expirer pass (${Date.now() - started} ms) replicas list ${JSON.stringify(after)}; deleted ${JSON.stringify(summaries.map((s) => s.deleted))}`,
  );
  for (const listing of after) t.deepEqual(listing, ['kept']);
});

test.serial('conflicting writes from two clients converge to the newest on every replica', async (t) => {
  await cluster.createContainer('AUTH_fault', 'conflict');
  const older = Timestamp.now();
  const newer = new Timestamp(older.ticks + 100);
  const oldBody = Buffer.from('old version');
  const newBody = Buffer.from('new version, longer');
  // Client A's older write reaches every replica; client B's newer write only the last one.
  await cluster.putObject('AUTH_fault', 'conflict', 'x', oldBody, {}, older);
  const partition = cluster.objectRing.getPartition('AUTH_fault', 'conflict', 'x');
  const primaries = cluster.objectRing.getNodes(partition);
  const last = primaries[2];
  if (last === undefined) throw new Error('no third primary');
  const b = await call(
    cluster.nodeOf(last).port,
    'PUT',
    quote(last.device, partition, 'AUTH_fault', 'conflict', 'x'),
    {
      'X-Timestamp': newer.internal,
      'Content-Type': 'text/plain',
      'X-Object-Meta-Client': 'B',
    },
    newBody,
  );
  t.is(b.status, 201);
  // A late older write to that replica loses there.
  const late = await call(
    cluster.nodeOf(last).port,
    'PUT',
    quote(last.device, partition, 'AUTH_fault', 'conflict', 'x'),
    {
      'X-Timestamp': older.internal,
      'Content-Type': 'text/plain',
    },
    oldBody,
  );
  t.is(late.status, 409);
  // A delete newer than both on the first replica only, for another object.
  await cluster.putObject('AUTH_fault', 'conflict', 'y', oldBody, {}, older);
  const yPartition = cluster.objectRing.getPartition('AUTH_fault', 'conflict', 'y');
  const yFirst = cluster.objectRing.getNodes(yPartition)[0];
  if (yFirst === undefined) throw new Error('no primary');
  await call(cluster.nodeOf(yFirst).port, 'DELETE', quote(yFirst.device, yPartition, 'AUTH_fault', 'conflict', 'y'), {
    'X-Timestamp': newer.internal,
  });
  const started = Date.now();
  await replicateAll();
  let newest = 0;
  for (const device of primaries) {
    const copy = await dataFileOn(cluster, cluster.nodeOf(device).index, 'AUTH_fault', 'conflict', 'x');
    if (copy?.subarray(0, newBody.length).equals(newBody) === true) newest += 1;
  }
  let deleted = 0;
  for (const device of cluster.objectRing.getNodes(yPartition)) {
    const reply = await call(
      cluster.nodeOf(device).port,
      'GET',
      quote(device.device, yPartition, 'AUTH_fault', 'conflict', 'y'),
    );
    if (reply.status === 404 && reply.headers['x-backend-timestamp'] === newer.internal) deleted += 1;
  }
  t.log(`x: newest on ${newest}/3 replicas; y: tombstone on ${deleted}/3; converged in ${Date.now() - started} ms`);
  t.is(newest, 3);
  t.is(deleted, 3);
  t.deepEqual(await handoffPartitions(cluster), []);
});

test.serial('recon reports the last replication pass', async (t) => {
  const node = cluster.nodes[0] as FaultNode;
  const reply = await call(node.port, 'GET', '/recon/replication');
  t.is(reply.status, 200);
  const report = JSON.parse(reply.body.toString('utf8')) as {
    object?: { last_pass?: number; partitions_out_of_sync?: number };
  };
  t.log(`node 1 /recon/replication: ${reply.body.toString('utf8')}`);
  t.true(typeof report.object?.last_pass === 'number');
  t.true(typeof report.object?.partitions_out_of_sync === 'number');
});

void inParallel;
