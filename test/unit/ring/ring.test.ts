import test from 'ava';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ring } from '../../../ring/ring.js';
import { writeRingFile } from '../../../ring/ring-file.js';
import { builderWith, randomDevices } from './fixtures.js';

const SECRETS = { prefix: 'pre', suffix: 'suf' };

function tempFolder(t: { teardown: (fn: () => void) => void }): string {
  const folder = mkdtempSync(join(tmpdir(), 'nebula-ring-'));
  t.teardown(() => rmSync(folder, { recursive: true, force: true }));
  return folder;
}

function ringFile(folder: string, seed: number, zones: number, regions = 1): string {
  const builder = builderWith(
    randomDevices(seed, { zones, hostsPerZoneMax: 2, devicesPerHostMax: 2, weightMin: 50, weightMax: 150, regions }),
    8,
  );
  builder.rebalance(seed);
  const path = join(folder, `ring-${seed}.ring.gz`);
  writeRingFile(path, builder.getRingData());
  return path;
}

test('getPartition is the top part_power bits of md5(prefix + /a/c/o + suffix)', (t) => {
  const ring = Ring.load(ringFile(tempFolder(t), 1, 5), SECRETS, { reloadIntervalMs: 0 });
  t.is(ring.partPower, 8);
  t.is(ring.partitionCount, 256);
  t.is(ring.replicaCount, 3);
  for (const [account, container, object] of [
    ['AUTH_test', undefined, undefined],
    ['AUTH_test', 'photos', undefined],
    ['AUTH_test', 'photos', 'cat \u00e9.jpg'],
  ] as const) {
    const path = ['', account, container, object].filter((part) => part !== undefined).join('/');
    const digest = createHash('md5').update(`pre${path}suf`).digest();
    t.is(ring.getPartition(account, container, object), digest.readUInt32BE(0) >>> 24);
  }
});

test('getNodes: distinct primaries with their replica index; getNodeIds agrees', (t) => {
  const ring = Ring.load(ringFile(tempFolder(t), 2, 6), SECRETS, { reloadIntervalMs: 0 });
  const ids = new Uint16Array(8);
  for (let partition = 0; partition < ring.partitionCount; partition += 1) {
    const nodes = ring.getNodes(partition);
    t.deepEqual(
      nodes.map((node) => node.index),
      [0, 1, 2],
    );
    t.is(new Set(nodes.map((node) => node.id)).size, 3);
    const count = ring.getNodeIds(partition, ids);
    t.deepEqual(
      [...ids.subarray(0, count)],
      nodes.map((node) => node.id),
    );
  }
  const { partition, nodes } = ring.getPartitionAndNodes('a', 'c', 'o');
  t.deepEqual(nodes, ring.getNodes(partition));
  t.throws(() => ring.getNodes(256), { instanceOf: RangeError });
  t.throws(() => ring.getNodes(-1), { instanceOf: RangeError });
  t.throws(() => ring.getNodes(1.5), { instanceOf: RangeError });
});

test('getMoreNodes: never a primary, never twice, every other device, new zones first', (t) => {
  const ring = Ring.load(ringFile(tempFolder(t), 3, 7, 2), SECRETS, { reloadIntervalMs: 0 });
  for (const partition of [0, 1, 77, 255]) {
    const primaries = ring.getNodes(partition);
    const handoffs = [...ring.getMoreNodes(partition)];
    const primaryIds = new Set(primaries.map((node) => node.id));
    t.false(handoffs.some((node) => primaryIds.has(node.id)));
    t.is(new Set(handoffs.map((node) => node.id)).size, handoffs.length);
    t.is(handoffs.length + primaries.length, ring.devices.length);
    t.deepEqual(
      handoffs.map((node) => node.handoff_index),
      handoffs.map((_, index) => index),
    );
    // Zones come before a second device in a zone already used.
    const zoneKey = (node: { region: number; zone: number }): string => `${node.region}/${node.zone}`;
    const usedZones = new Set(primaries.map(zoneKey));
    let sawRepeat = false;
    for (const node of handoffs) {
      const fresh = !usedZones.has(zoneKey(node));
      if (!fresh) sawRepeat = true;
      t.false(sawRepeat && fresh, `partition ${partition}: a fresh zone after a used one`);
      usedZones.add(zoneKey(node));
    }
  }
});

test('reloads when the file changes; keeps the old ring when the new one is corrupt', async (t) => {
  const folder = tempFolder(t);
  const path = join(folder, 'object.ring.gz');
  const builder = builderWith(
    randomDevices(4, { zones: 4, hostsPerZoneMax: 1, devicesPerHostMax: 2, weightMin: 100, weightMax: 100 }),
    6,
  );
  builder.rebalance(1);
  writeRingFile(path, builder.getRingData());
  const errors: Error[] = [];
  let reloads = 0;
  const ring = Ring.load(path, SECRETS, {
    reloadIntervalMs: 20,
    onReloadError: (error) => errors.push(error),
    onReload: () => {
      reloads += 1;
    },
  });
  t.teardown(() => ring.close());
  const countBefore = ring.devices.length;
  t.false(await ring.reload(), 'unchanged file');

  builder.addDevice({ region: 1, zone: 9, ip: '10.9.0.1', port: 6200, device: 'sda', weight: 100 });
  builder.pretendMinPartHoursPassed();
  builder.rebalance(2);
  writeRingFile(path, builder.getRingData());
  // The timer notices within a few intervals; bounded wait.
  for (let attempt = 0; attempt < 100 && ring.devices.length === countBefore; attempt += 1) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  t.is(ring.devices.length, countBefore + 1);
  t.true(reloads >= 1);

  writeFileSync(path, 'garbage');
  // The timer may be mid-check (then reload() declines); either way an error is reported.
  for (let attempt = 0; attempt < 100 && errors.length === 0; attempt += 1) {
    t.false(await ring.reload());
    if (errors.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
  }
  t.is(ring.devices.length, countBefore + 1, 'old ring still served');
  t.regex(errors[0]?.message ?? '', /not a valid gzip stream/);
  await new Promise((resolve) => setTimeout(resolve, 120));
  t.is(errors.length, 1, 'a bad file is reported once, not at every interval');
  ring.close();
});
