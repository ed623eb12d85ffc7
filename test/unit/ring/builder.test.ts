import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RingBuilder, type AddDeviceInput } from '../../../ring/builder.js';
import { DuplicateDeviceError, RingBuilderError, RingValidationError } from '../../../ring/errors.js';
import { serializeRingData } from '../../../ring/ring-file.js';
import { FakeClock, assignments, builderWith, randomDevices } from './fixtures.js';

const zoneOf = (builder: RingBuilder, id: number): string => {
  const device = builder.device(id);
  return `${device?.region}/${device?.zone}`;
};

/** The largest weight share of any zone, as a fraction of all weight. */
function largestZoneShare(devices: readonly AddDeviceInput[]): number {
  const byZone = new Map<string, number>();
  let total = 0;
  for (const device of devices) {
    const key = `${device.region ?? 1}/${device.zone}`;
    byZone.set(key, (byZone.get(key) ?? 0) + device.weight);
    total += device.weight;
  }
  return Math.max(...byZone.values()) / total;
}

test('random uneven device sets: every device within 1% (or 1 partition) of its weight share', (t) => {
  let checked = 0;
  for (let seed = 1; checked < 6 && seed < 100; seed += 1) {
    const devices = randomDevices(seed, {
      zones: 6 + (seed % 7),
      hostsPerZoneMax: 3,
      devicesPerHostMax: 3,
      weightMin: 50,
      weightMax: 300,
    });
    // "Where weights allow": a zone holding more than 1/replicas of the weight must be
    // under-filled for dispersion, so its devices cannot match their weight share.
    if (largestZoneShare(devices) > 1 / 3) continue;
    checked += 1;
    const builder = builderWith(devices, 11);
    const result = builder.rebalance(seed);
    builder.validate();
    t.is(result.dispersion, 0, `seed ${seed}`);
    const parts = builder.partsPerDevice();
    const totalWeight = devices.reduce((sum, device) => sum + device.weight, 0);
    for (const device of builder.devices) {
      const share = (device.weight / totalWeight) * builder.partitionCount * 3;
      const held = parts[device.id] ?? 0;
      t.true(
        Math.abs(held - share) <= Math.max(share * 0.01, 1),
        `seed ${seed}: device ${device.id} holds ${held}, weight share ${share.toFixed(1)}`,
      );
    }
  }
  t.is(checked, 6);
});

test('no partition twice on a device; distinct zones whenever zones >= replicas, even with skewed weights', (t) => {
  for (const [seed, zones] of [
    [3, 3],
    [4, 4],
    [5, 5],
    [6, 9],
  ] as const) {
    const devices = randomDevices(seed, {
      zones,
      hostsPerZoneMax: 2,
      devicesPerHostMax: 3,
      weightMin: 10,
      weightMax: 400,
    });
    // Skew one zone to hold most of the weight: dispersion still wins.
    for (const device of devices) if (device.zone === 1) device.weight *= 10;
    const builder = builderWith(devices, 9);
    builder.rebalance(seed);
    builder.validate();
    for (const [partition, ids] of assignments(builder).entries()) {
      t.is(new Set(ids).size, 3, `partition ${partition}: ${ids.join(',')}`);
      t.is(new Set(ids.map((id) => zoneOf(builder, id))).size, 3, `seed ${seed}: partition ${partition} zones`);
    }
  }
});

test('fewer zones than replicas: replicas spread over hosts, never two on one device', (t) => {
  const devices = randomDevices(11, {
    zones: 2,
    hostsPerZoneMax: 3,
    devicesPerHostMax: 2,
    weightMin: 100,
    weightMax: 100,
  });
  const builder = builderWith(devices, 8);
  builder.rebalance(1);
  for (const ids of assignments(builder)) {
    t.is(new Set(ids).size, 3);
    t.is(new Set(ids.map((id) => zoneOf(builder, id))).size, 2);
  }
});

test('adding one device moves close to the minimal share (within 10%)', (t) => {
  for (const seed of [21, 22, 23]) {
    const devices = randomDevices(seed, {
      zones: 8,
      hostsPerZoneMax: 3,
      devicesPerHostMax: 3,
      weightMin: 80,
      weightMax: 200,
    });
    const clock = new FakeClock();
    const builder = builderWith(devices, 11, 3, 1, clock.now);
    builder.rebalance(seed);
    const before = assignments(builder);
    const weight = 150;
    builder.addDevice({ region: 1, zone: 3, ip: '10.3.99.1', port: 6200, device: 'sdz', weight });
    clock.advanceHours(2);
    const result = builder.rebalance(seed + 1);
    builder.validate();
    const totalWeight = devices.reduce((sum, device) => sum + device.weight, 0) + weight;
    const minimal = (weight / totalWeight) * builder.partitionCount * 3;
    const after = assignments(builder);
    let moved = 0;
    for (let partition = 0; partition < after.length; partition += 1) {
      for (let replica = 0; replica < 3; replica += 1)
        if (before[partition]?.[replica] !== after[partition]?.[replica]) moved += 1;
    }
    t.is(moved, result.changedParts);
    t.true(
      moved <= minimal * 1.1 && moved >= minimal * 0.9,
      `seed ${seed}: moved ${moved}, minimal ${minimal.toFixed(1)}`,
    );
    t.true(result.balance < 2, `seed ${seed}: balance ${result.balance}`);
  }
});

test('min_part_hours: nothing moves too early, then at most one replica per partition', (t) => {
  const devices = randomDevices(31, {
    zones: 6,
    hostsPerZoneMax: 2,
    devicesPerHostMax: 2,
    weightMin: 100,
    weightMax: 200,
  });
  const clock = new FakeClock();
  const builder = builderWith(devices, 10, 3, 24, clock.now);
  builder.rebalance(1);
  const first = assignments(builder);
  builder.addDevice({ region: 1, zone: 7, ip: '10.7.0.1', port: 6200, device: 'sda', weight: 400 });
  builder.addDevice({ region: 1, zone: 8, ip: '10.8.0.1', port: 6200, device: 'sda', weight: 400 });
  clock.advanceHours(23);
  t.is(builder.rebalance(2).changedParts, 0, 'every partition moved less than 24 hours ago');
  clock.advanceHours(1);
  const result = builder.rebalance(3);
  t.true(result.changedParts > 0);
  const second = assignments(builder);
  const movedPartitions = new Set<number>();
  for (let partition = 0; partition < second.length; partition += 1) {
    let changed = 0;
    for (let replica = 0; replica < 3; replica += 1)
      if (first[partition]?.[replica] !== second[partition]?.[replica]) changed += 1;
    t.true(changed <= 1, `partition ${partition} moved ${changed} replicas at once`);
    if (changed > 0) movedPartitions.add(partition);
  }
  // Two heavy new devices want more than one rebalance can give: the next one, an hour
  // later, must leave the partitions just moved alone.
  clock.advanceHours(1);
  builder.rebalance(4);
  const third = assignments(builder);
  for (const partition of movedPartitions) t.deepEqual(third[partition], second[partition]);
});

test('a removed device is drained even within min_part_hours, and leaves a hole in the ring', (t) => {
  const devices = randomDevices(41, {
    zones: 5,
    hostsPerZoneMax: 2,
    devicesPerHostMax: 2,
    weightMin: 100,
    weightMax: 100,
  });
  const clock = new FakeClock();
  const builder = builderWith(devices, 9, 3, 24, clock.now);
  builder.rebalance(1);
  builder.removeDevice(2);
  t.true(builder.isMarkedForRemoval(2));
  const result = builder.rebalance(2);
  t.is(result.removedDevices, 1);
  builder.validate();
  t.is(builder.device(2), undefined);
  t.is(builder.getRingData().devs[2], null);
  for (const ids of assignments(builder)) t.false(ids.includes(2));
});

test('a zero-weight device drains once its hours pass', (t) => {
  const devices = randomDevices(42, {
    zones: 5,
    hostsPerZoneMax: 2,
    devicesPerHostMax: 2,
    weightMin: 100,
    weightMax: 100,
  });
  const clock = new FakeClock();
  const builder = builderWith(devices, 9, 3, 1, clock.now);
  builder.rebalance(1);
  builder.setDeviceWeight(0, 0);
  clock.advanceHours(1);
  builder.rebalance(2);
  t.is(builder.partsPerDevice()[0], 0);
});

test('same seed, same ring; an unchanged builder moves nothing', (t) => {
  const devices = randomDevices(51, {
    zones: 7,
    hostsPerZoneMax: 3,
    devicesPerHostMax: 2,
    weightMin: 60,
    weightMax: 240,
  });
  const a = builderWith(devices, 10);
  const b = builderWith(devices, 10);
  a.rebalance('seed-1');
  b.rebalance('seed-1');
  t.true(serializeRingData(a.getRingData()).equals(serializeRingData(b.getRingData())));
  a.pretendMinPartHoursPassed();
  t.is(a.rebalance(7).changedParts, 0);
});

test('builder file round trip keeps devices, table and move history', (t) => {
  const folder = mkdtempSync(join(tmpdir(), 'nebula-ring-builder-'));
  t.teardown(() => rmSync(folder, { recursive: true, force: true }));
  const devices = randomDevices(61, {
    zones: 4,
    hostsPerZoneMax: 2,
    devicesPerHostMax: 2,
    weightMin: 60,
    weightMax: 240,
  });
  const builder = builderWith(devices, 8);
  builder.rebalance(1);
  builder.removeDevice(1);
  const path = join(folder, 'object.builder');
  builder.save(path);
  const loaded = RingBuilder.load(path);
  t.is(loaded.id, builder.id);
  t.deepEqual(loaded.devices, builder.devices);
  t.true(loaded.isMarkedForRemoval(1));
  t.deepEqual(assignments(loaded), assignments(builder));
  t.is(loaded.minPartSecondsLeft > 0, true);
  t.is(loaded.rebalance(2).changedParts, builder.rebalance(2).changedParts);
});

test('bad input is refused with a clear message', (t) => {
  t.throws(() => new RingBuilder(25, 3, 1), {
    instanceOf: RingBuilderError,
    message: /part_power must be an integer in 0\.\.24/,
  });
  t.throws(() => new RingBuilder(-1, 3, 1), { instanceOf: RingBuilderError, message: /part_power/ });
  t.throws(() => new RingBuilder(8.5, 3, 1), { instanceOf: RingBuilderError, message: /part_power/ });
  t.throws(() => new RingBuilder(8, 0, 1), { instanceOf: RingBuilderError, message: /replicas/ });
  t.throws(() => new RingBuilder(8, 2.5, 1), { instanceOf: RingBuilderError, message: /whole number/ });
  t.throws(() => new RingBuilder(8, 3, -1), { instanceOf: RingBuilderError, message: /min_part_hours/ });

  const builder = new RingBuilder(8, 3, 1);
  const device = { region: 1, zone: 1, ip: '10.0.0.1', port: 6200, device: 'sda', weight: 0 };
  builder.addDevice(device);
  t.throws(() => builder.addDevice(device), {
    instanceOf: DuplicateDeviceError,
    message: /already uses 10\.0\.0\.1:6200\/sda/,
  });
  t.throws(() => builder.addDevice({ ...device, id: 0, device: 'sdb' }), {
    instanceOf: DuplicateDeviceError,
    message: /Duplicate device id: 0/,
  });
  t.throws(() => builder.addDevice({ ...device, device: 'sdb', weight: -1 }), {
    instanceOf: RingBuilderError,
    message: /weight/,
  });
  t.throws(() => builder.addDevice({ ...device, device: 'a/b' }), {
    instanceOf: RingBuilderError,
    message: /device name/,
  });
  t.throws(() => builder.addDevice({ ...device, device: 'sdc', port: 70000 }), {
    instanceOf: RingBuilderError,
    message: /port/,
  });
  builder.addDevice({ ...device, ip: '10.0.0.2' });
  builder.addDevice({ ...device, ip: '10.0.0.3' });
  t.throws(() => builder.rebalance(), { instanceOf: RingValidationError, message: /no device has a weight above 0/ });
  builder.setDeviceWeight(0, 100);
  builder.setDeviceWeight(1, 100);
  t.throws(() => builder.rebalance(), {
    instanceOf: RingValidationError,
    message: /Replica count of 3 requires more than 2 devices/,
  });
  t.throws(() => builder.setDeviceWeight(9, 1), { instanceOf: RingBuilderError, message: /no device with id 9/ });
  t.throws(() => builder.validate(), { instanceOf: RingValidationError, message: /rebalance/ });
  t.throws(() => RingBuilder.fromJSON({ format: 'swift' }), {
    instanceOf: RingBuilderError,
    message: /not a Nebula ring builder file/,
  });
});

test('one device per replica: each holds every partition', (t) => {
  const builder = new RingBuilder(6, 3, 1);
  for (let zone = 1; zone <= 3; zone += 1)
    builder.addDevice({ zone, ip: `10.0.0.${zone}`, port: 6200, device: 'sda', weight: zone * 10 });
  builder.rebalance(1);
  t.deepEqual([...builder.partsPerDevice()], [64, 64, 64]);
});

test('a new zone takes exactly one replica of every partition, moved once', (t) => {
  const clock = new FakeClock();
  const builder = new RingBuilder(9, 3, 1, { now: clock.now });
  for (let zone = 1; zone <= 2; zone += 1) {
    for (let host = 0; host < 3; host += 1)
      builder.addDevice({ zone, ip: `10.0.${zone}.${host}`, port: 6200, device: 'sda', weight: 100 });
  }
  builder.rebalance(1);
  for (let host = 0; host < 3; host += 1)
    builder.addDevice({ zone: 3, ip: `10.0.3.${host}`, port: 6200, device: 'sda', weight: 100 });
  clock.advanceHours(2);
  const result = builder.rebalance(2);
  t.is(result.changedParts, builder.partitionCount);
  t.is(result.dispersion, 0);
  for (const ids of assignments(builder)) t.is(new Set(ids.map((id) => zoneOf(builder, id))).size, 3);
});

test("overload 0 is Swift's weight-first placement; a number caps what dispersion may take", (t) => {
  const devices: AddDeviceInput[] = [
    { zone: 1, ip: '10.1.0.1', port: 6200, device: 'sda', weight: 400 },
    { zone: 1, ip: '10.1.0.2', port: 6200, device: 'sda', weight: 400 },
    { zone: 2, ip: '10.2.0.1', port: 6200, device: 'sda', weight: 100 },
    { zone: 3, ip: '10.3.0.1', port: 6200, device: 'sda', weight: 100 },
  ];
  const weightFirst = new RingBuilder(8, 3, 1, { overload: 0 });
  for (const device of devices) weightFirst.addDevice(device);
  const result = weightFirst.rebalance(1);
  t.deepEqual([...weightFirst.partsPerDevice()], [256, 256, 128, 128]);
  t.true(result.dispersion > 0);
  const dispersionFirst = new RingBuilder(8, 3, 1);
  for (const device of devices) dispersionFirst.addDevice(device);
  t.is(dispersionFirst.rebalance(1).dispersion, 0);
  t.deepEqual([...dispersionFirst.partsPerDevice()], [128, 128, 256, 256]);
});
