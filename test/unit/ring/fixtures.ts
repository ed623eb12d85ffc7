/**
 * Device sets for the ring tests: seeded, so a failure names the seed that reproduces it.
 */
import { RingBuilder, type AddDeviceInput } from '../../../ring/builder.js';

/** mulberry32: a tiny seeded PRNG, returns floats in [0, 1). */
export function testRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 4294967296;
  };
}

export interface DeviceSetOptions {
  zones: number;
  hostsPerZoneMax: number;
  devicesPerHostMax: number;
  weightMin: number;
  weightMax: number;
  regions?: number;
}

/** Random zones, hosts and devices with uneven weights. */
export function randomDevices(seed: number, options: DeviceSetOptions): AddDeviceInput[] {
  const random = testRandom(seed);
  const devices: AddDeviceInput[] = [];
  const regions = options.regions ?? 1;
  for (let zone = 1; zone <= options.zones; zone += 1) {
    const hosts = 1 + Math.floor(random() * options.hostsPerZoneMax);
    for (let host = 0; host < hosts; host += 1) {
      const count = 1 + Math.floor(random() * options.devicesPerHostMax);
      for (let disk = 0; disk < count; disk += 1) {
        const weight = Math.round(options.weightMin + random() * (options.weightMax - options.weightMin));
        devices.push({
          region: 1 + ((zone - 1) % regions),
          zone,
          ip: `10.${zone}.${host}.1`,
          port: 6200,
          device: `sd${String.fromCharCode(97 + disk)}`,
          weight,
        });
      }
    }
  }
  return devices;
}

export function builderWith(
  devices: readonly AddDeviceInput[],
  partPower: number,
  replicas = 3,
  minPartHours = 1,
  now?: () => number,
): RingBuilder {
  const builder = new RingBuilder(partPower, replicas, minPartHours, now === undefined ? {} : { now });
  for (const device of devices) builder.addDevice(device);
  return builder;
}

/** Each partition's device ids, part-major. */
export function assignments(builder: RingBuilder): number[][] {
  const result: number[][] = [];
  for (let partition = 0; partition < builder.partitionCount; partition += 1) {
    result.push(builder.partitionDevices(partition));
  }
  return result;
}

/** A clock tests can move: starts at a fixed date, `advanceHours` moves it. */
export class FakeClock {
  nowMs = Date.UTC(2026, 0, 1);
  readonly now = (): number => this.nowMs;
  advanceHours(hours: number): void {
    this.nowMs += hours * 3600_000;
  }
}
