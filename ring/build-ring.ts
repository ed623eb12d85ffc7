/**
 * Builds (or brings up to date) a ring from a declared device list, for code that sets up a
 * cluster (the all-in-one): `buildRing('/data/object.builder', {...})` writes `object.builder`
 * and `object.ring.gz` beside it. Idempotent: with an existing builder of the same part power and
 * replicas, devices are matched by ip:port/device, new ones added, missing ones removed, weights
 * updated, and the ring rebalanced and rewritten only when something changed (or it is absent).
 */
import { existsSync } from 'node:fs';
import { RingBuilder, type AddDeviceInput, type RebalanceResult } from './builder.js';
import { RingBuilderError } from './errors.js';

export interface BuildRingOptions {
  partPower: number;
  replicas: number;
  minPartHours: number;
  devices: readonly AddDeviceInput[];
  /** Rebalance seed; default 1 so that a fresh cluster gets the same ring every time. */
  seed?: number | string;
  overload?: number | null;
}

export interface BuildRingResult {
  builderPath: string;
  ringPath: string;
  /** Undefined when nothing changed and the ring file was already there. */
  rebalance?: RebalanceResult;
}

/** Swift's rule: `x.builder` -> `x.ring.gz`, anything else gets `.ring.gz` appended. */
export function ringPathFor(builderPath: string): string {
  return builderPath.endsWith('.builder')
    ? `${builderPath.slice(0, -'.builder'.length)}.ring.gz`
    : `${builderPath}.ring.gz`;
}

export function buildRing(builderPath: string, options: BuildRingOptions): BuildRingResult {
  const ringPath = ringPathFor(builderPath);
  let builder: RingBuilder;
  if (existsSync(builderPath)) {
    builder = RingBuilder.load(builderPath);
    if (builder.partPower !== options.partPower || builder.replicas !== options.replicas) {
      throw new RingBuilderError(
        `${builderPath} has part power ${builder.partPower} and ${builder.replicas} replicas, ` +
          `not ${options.partPower} and ${options.replicas}; remove it to rebuild`,
      );
    }
    if (builder.minPartHours !== options.minPartHours) builder.setMinPartHours(options.minPartHours);
  } else {
    builder = new RingBuilder(options.partPower, options.replicas, options.minPartHours, {
      overload: options.overload ?? null,
    });
  }
  const key = (device: { ip: string; port: number; device: string }): string =>
    `${device.ip}\u0000${device.port}\u0000${device.device}`;
  const declared = new Map(options.devices.map((device) => [key(device), device]));
  for (const existing of builder.devices) {
    if (builder.isMarkedForRemoval(existing.id)) continue;
    const wanted = declared.get(key(existing));
    if (wanted === undefined) builder.removeDevice(existing.id);
    else if (wanted.weight !== existing.weight) builder.setDeviceWeight(existing.id, wanted.weight);
  }
  const present = new Set(builder.devices.map((device) => key(device)));
  for (const device of options.devices) {
    if (!present.has(key(device))) builder.addDevice(device);
  }
  let rebalance: RebalanceResult | undefined;
  if (builder.devsChanged || !builder.everRebalanced) {
    // A declared layout is the operator saying "this is the cluster now": don't wait out hours.
    builder.pretendMinPartHoursPassed();
    rebalance = builder.rebalance(options.seed ?? 1);
    builder.save(builderPath);
    builder.writeRing(ringPath);
  } else if (!existsSync(ringPath)) {
    builder.writeRing(ringPath);
  }
  return { builderPath, ringPath, rebalance };
}
