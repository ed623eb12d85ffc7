/**
 * The read-only ring that servers load (Swift's `swift.common.ring.Ring`).
 *
 * `getPartition` hashes `/account[/container[/object]]` with the cluster's secrets (Swift's
 * `hash_path`) and keeps the top `partPower` bits. `getNodes` returns a partition's primaries
 * (each with `index`, its position among them, as Swift's dicts carry it), `getMoreNodes` yields
 * handoffs in Swift's exact order (devices in unused regions, then zones, then ips, then any
 * device; never a primary, never twice), so a Nebula proxy and a Swift proxy agree on placement.
 *
 * Lookups read one part-major Uint16Array and return shared, frozen device objects: no per-call
 * allocation beyond the small result array. A timer (unref'd, so it never holds the process
 * open) checks the file's mtime every `reloadIntervalMs` (default 15 s, Swift's reload_time) and
 * swaps in the new ring when it changed; a bad new file leaves the old ring in use (as Swift
 * does at runtime) and is reported through `onReloadError`. `close()` stops the timer.
 */
import { createHash } from 'node:crypto';
import { statSync, type Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { HashPathSecrets } from '../common/hash-path.js';
import { hashPathDigest } from '../common/hash-path.js';
import { RingFileError } from './errors.js';
import { NONE_DEVICE, readRingFile, readRingFileAsync, type RingData, type RingDeviceRecord } from './ring-file.js';

export const DEFAULT_RELOAD_INTERVAL_MS = 15_000;

/** A device as Swift's ring hands it out (Swift's field names). */
export interface RingDevice {
  readonly id: number;
  readonly region: number;
  readonly zone: number;
  readonly ip: string;
  readonly port: number;
  readonly replication_ip: string;
  readonly replication_port: number;
  readonly device: string;
  readonly weight: number;
  readonly meta: string;
}

/** A primary: `index` is its position in the partition's primary list (Swift's `index`). */
export interface RingNode extends RingDevice {
  readonly index: number;
}

/** A handoff: `handoff_index` counts handoffs from 0 (Swift's `handoff_index`). */
export interface RingHandoffNode extends RingDevice {
  readonly handoff_index: number;
}

export interface RingOptions {
  /** How often to check the file's mtime; 0 disables reloading. Default 15 000. */
  reloadIntervalMs?: number;
  /** Called when a changed ring file cannot be loaded (the previous ring stays in use). */
  onReloadError?: (error: Error) => void;
  /** Called after a new ring was swapped in. */
  onReload?: (ring: Ring) => void;
}

/** Everything derived from one ring file; replaced as a whole on reload. */
class RingState {
  readonly partShift: number;
  readonly partPower: number;
  readonly partitionCount: number;
  /** Number of replica arrays (the ceiling of a fractional replica count). */
  readonly replicaArrays: number;
  /** Swift's replica_count: whole replicas plus the fraction the last array covers. */
  readonly replicaCount: number;
  /** Part-major copy of the table: `table[partition * replicaArrays + replica]`, NONE_DEVICE for gaps. */
  readonly table: Uint16Array;
  readonly replica2part2dev: readonly Uint16Array[];
  readonly devices: readonly RingDevice[];
  readonly deviceById: readonly (RingDevice | undefined)[];
  /** `nodeByIndex[index][deviceId]`: the frozen primary object for that device at that index. */
  readonly nodeByIndex: readonly (readonly (RingNode | undefined)[])[];
  /** Small integer ids per device for the handoff walk's failure-domain sets. */
  readonly regionOf: Int32Array;
  readonly zoneOf: Int32Array;
  readonly ipOf: Int32Array;
  /** How many distinct regions, zones and ips the devices use (the ranges of regionOf etc.). */
  readonly regionIds: number;
  readonly zoneIds: number;
  readonly ipIds: number;
  readonly regionCount: number;
  readonly zoneCount: number;
  readonly ipCount: number;
  readonly assignedDeviceCount: number;
  readonly version: number | undefined;
  readonly nextPartPower: number | undefined;

  constructor(data: RingData) {
    this.partShift = data.partShift;
    this.partPower = 32 - data.partShift;
    this.partitionCount = 2 ** this.partPower;
    this.replicaArrays = data.replica2part2dev.length;
    this.replica2part2dev = data.replica2part2dev;
    this.version = data.version;
    this.nextPartPower = data.nextPartPower;
    const first = data.replica2part2dev[0];
    const last = data.replica2part2dev[this.replicaArrays - 1];
    this.replicaCount =
      first === undefined || last === undefined ? 0 : this.replicaArrays - 1 + last.length / first.length;

    const deviceById: (RingDevice | undefined)[] = [];
    const devices: RingDevice[] = [];
    for (const record of data.devs) {
      if (record === null) {
        deviceById.push(undefined);
        continue;
      }
      const device = normalizeDevice(record);
      deviceById.push(device);
      devices.push(device);
    }
    this.deviceById = deviceById;
    this.devices = devices;

    const arrays = this.replicaArrays;
    const table = new Uint16Array(this.partitionCount * arrays).fill(NONE_DEVICE);
    data.replica2part2dev.forEach((part2dev, replica) => {
      for (let partition = 0; partition < part2dev.length; partition += 1) {
        table[partition * arrays + replica] = part2dev[partition] ?? NONE_DEVICE;
      }
    });
    this.table = table;

    const nodeByIndex: (RingNode | undefined)[][] = [];
    for (let index = 0; index < arrays; index += 1) {
      nodeByIndex.push(
        deviceById.map((device) => (device === undefined ? undefined : Object.freeze({ ...device, index }))),
      );
    }
    this.nodeByIndex = nodeByIndex;

    // Swift counts only devices holding partitions, so its early exits in get_more_nodes work.
    const assigned = new Uint8Array(deviceById.length);
    for (const part2dev of data.replica2part2dev) {
      for (let partition = 0; partition < part2dev.length; partition += 1) assigned[part2dev[partition] ?? 0] = 1;
    }
    this.regionOf = new Int32Array(deviceById.length).fill(-1);
    this.zoneOf = new Int32Array(deviceById.length).fill(-1);
    this.ipOf = new Int32Array(deviceById.length).fill(-1);
    const regions = new Map<string, number>();
    const zones = new Map<string, number>();
    const ips = new Map<string, number>();
    const assignedRegions = new Set<number>();
    const assignedZones = new Set<number>();
    const assignedIps = new Set<number>();
    let assignedDevices = 0;
    const idOf = (map: Map<string, number>, key: string): number => {
      let id = map.get(key);
      if (id === undefined) {
        id = map.size;
        map.set(key, id);
      }
      return id;
    };
    for (const device of devices) {
      const region = idOf(regions, `${device.region}`);
      const zone = idOf(zones, `${device.region}\u0000${device.zone}`);
      const ip = idOf(ips, `${device.region}\u0000${device.zone}\u0000${device.ip}`);
      this.regionOf[device.id] = region;
      this.zoneOf[device.id] = zone;
      this.ipOf[device.id] = ip;
      if (assigned[device.id] === 1) {
        assignedDevices += 1;
        assignedRegions.add(region);
        assignedZones.add(zone);
        assignedIps.add(ip);
      }
    }
    this.regionIds = regions.size;
    this.zoneIds = zones.size;
    this.ipIds = ips.size;
    this.regionCount = assignedRegions.size;
    this.zoneCount = assignedZones.size;
    this.ipCount = assignedIps.size;
    this.assignedDeviceCount = assignedDevices;
  }
}

function normalizeDevice(record: RingDeviceRecord): RingDevice {
  const text = (value: unknown, fallback: string): string => (typeof value === 'string' ? value : fallback);
  const integer = (value: unknown, fallback: number): number => (typeof value === 'number' ? value : fallback);
  const ip = text(record.ip, '');
  const port = integer(record.port, 0);
  return Object.freeze({
    id: integer(record.id, 0),
    region: integer(record.region, 1),
    zone: integer(record.zone, 0),
    ip,
    port,
    // Old rings lack replication addresses; Swift falls back to the data-path ones.
    replication_ip: text(record.replication_ip, ip),
    replication_port: integer(record.replication_port, port),
    device: text(record.device, ''),
    weight: integer(record.weight, 0),
    meta: text(record.meta, ''),
  });
}

interface FileIdentity {
  mtimeMs: number;
  size: number;
  ino: number;
}

function sameFile(a: FileIdentity, b: FileIdentity): boolean {
  return a.mtimeMs === b.mtimeMs && a.size === b.size && a.ino === b.ino;
}

function identityOf(stats: Stats): FileIdentity {
  return { mtimeMs: stats.mtimeMs, size: stats.size, ino: stats.ino };
}

export class Ring {
  readonly path: string;
  private state: RingState;
  private readonly secrets: HashPathSecrets;
  private identity: FileIdentity;
  private failedIdentity: FileIdentity | undefined;
  private timer: NodeJS.Timeout | undefined;
  private checking = false;
  private readonly options: RingOptions;

  private constructor(
    path: string,
    secrets: HashPathSecrets,
    data: RingData,
    identity: FileIdentity,
    options: RingOptions,
  ) {
    this.path = path;
    this.secrets = secrets;
    this.state = new RingState(data);
    this.identity = identity;
    this.options = options;
    const interval = options.reloadIntervalMs ?? DEFAULT_RELOAD_INTERVAL_MS;
    if (interval > 0) {
      this.timer = setInterval(() => {
        this.reload().catch(() => {
          // reload() reports its own errors through onReloadError; nothing else can throw.
        });
      }, interval);
      this.timer.unref();
    }
  }

  /** Loads a ring file (synchronously: servers do this once at start). Throws RingFileError. */
  static load(path: string, secrets: HashPathSecrets, options: RingOptions = {}): Ring {
    const identity = statIdentity(path);
    return new Ring(path, secrets, readRingFile(path), identity, options);
  }

  /** Builds a ring from data already in memory (tests, tools); it never reloads. */
  static fromData(data: RingData, secrets: HashPathSecrets): Ring {
    return new Ring('<memory>', secrets, data, { mtimeMs: 0, size: 0, ino: 0 }, { reloadIntervalMs: 0 });
  }

  get partPower(): number {
    return this.state.partPower;
  }

  get partShift(): number {
    return this.state.partShift;
  }

  /** Swift's replica_count (fractional when the last replica array is short). */
  get replicaCount(): number {
    return this.state.replicaCount;
  }

  get partitionCount(): number {
    return this.state.partitionCount;
  }

  /** The devices in the ring (removed ids left out), by ascending id. */
  get devices(): readonly RingDevice[] {
    return this.state.devices;
  }

  get version(): number | undefined {
    return this.state.version;
  }

  get nextPartPower(): number | undefined {
    return this.state.nextPartPower;
  }

  device(id: number): RingDevice | undefined {
    return this.state.deviceById[id];
  }

  getPartition(account: string, container?: string, object?: string): number {
    const digest = hashPathDigest(this.secrets, account, container, object);
    const shift = this.state.partShift;
    // `>>> 32` is a no-op in JavaScript, so a one-partition ring needs its own case.
    return shift >= 32 ? 0 : digest.readUInt32BE(0) >>> shift;
  }

  /** The primaries of a partition, deduplicated like Swift's `get_part_nodes`. */
  getNodes(partition: number): readonly RingNode[] {
    const state = this.state;
    if (!(partition >= 0 && partition < state.partitionCount) || !Number.isInteger(partition)) {
      throw new RangeError(`partition ${partition} is outside 0..${state.partitionCount - 1}`);
    }
    const arrays = state.replicaArrays;
    const table = state.table;
    const base = partition * arrays;
    const nodes: RingNode[] = [];
    for (let replica = 0; replica < arrays; replica += 1) {
      const id = table[base + replica] ?? NONE_DEVICE;
      if (id === NONE_DEVICE) continue;
      let seen = false;
      for (let earlier = 0; earlier < replica; earlier += 1) {
        if (table[base + earlier] === id) seen = true;
      }
      if (seen) continue;
      const node = state.nodeByIndex[nodes.length]?.[id];
      if (node !== undefined) nodes.push(node);
    }
    return nodes;
  }

  /**
   * The device ids of a partition's primaries written into `out` (length >= replica arrays);
   * returns how many. For hot loops that want no allocation at all.
   */
  getNodeIds(partition: number, out: Uint16Array): number {
    const state = this.state;
    const arrays = state.replicaArrays;
    const base = partition * arrays;
    let count = 0;
    for (let replica = 0; replica < arrays; replica += 1) {
      const id = state.table[base + replica] ?? NONE_DEVICE;
      if (id === NONE_DEVICE) continue;
      let seen = false;
      for (let earlier = 0; earlier < count; earlier += 1) if (out[earlier] === id) seen = true;
      if (!seen) out[count++] = id;
    }
    return count;
  }

  getPartitionAndNodes(
    account: string,
    container?: string,
    object?: string,
  ): { partition: number; nodes: readonly RingNode[] } {
    const partition = this.getPartition(account, container, object);
    return { partition, nodes: this.getNodes(partition) };
  }

  /**
   * Handoffs for a partition, in Swift's order: first devices in regions no primary uses, then
   * in unused zones, then on unused ips, then any unused device. Each device at most once, never
   * a primary. The walk starts at a partition derived from md5(str(partition)) and steps through
   * the table, so the sequence is stable across small ring changes, as in Swift.
   */
  *getMoreNodes(partition: number): Generator<RingHandoffNode, void, undefined> {
    const state = this.state;
    const primaries = this.getNodes(partition);
    // One allocation for the four "already used" sets, each indexed by its small ids.
    const flags = new Uint8Array(state.deviceById.length + state.regionIds + state.zoneIds + state.ipIds);
    const used = flags.subarray(0, state.deviceById.length);
    const usedRegions = flags.subarray(state.deviceById.length, state.deviceById.length + state.regionIds);
    const usedZones = flags.subarray(
      state.deviceById.length + state.regionIds,
      state.deviceById.length + state.regionIds + state.zoneIds,
    );
    const usedIps = flags.subarray(state.deviceById.length + state.regionIds + state.zoneIds);
    let regionsUsed = 0;
    let zonesUsed = 0;
    let ipsUsed = 0;
    let devicesUsed = 0;
    const mark = (id: number): void => {
      if (used[id] === 0) {
        used[id] = 1;
        devicesUsed += 1;
      }
      const region = state.regionOf[id] ?? 0;
      const zone = state.zoneOf[id] ?? 0;
      const ip = state.ipOf[id] ?? 0;
      if (usedRegions[region] === 0) {
        usedRegions[region] = 1;
        regionsUsed += 1;
      }
      if (usedZones[zone] === 0) {
        usedZones[zone] = 1;
        zonesUsed += 1;
      }
      if (usedIps[ip] === 0) {
        usedIps[ip] = 1;
        ipsUsed += 1;
      }
    };
    for (const node of primaries) mark(node.id);

    const parts = state.replica2part2dev[0]?.length ?? 0;
    const digest = createHash('md5').update(String(partition), 'ascii').digest();
    const start = state.partShift >= 32 ? 0 : digest.readUInt32BE(0) >>> state.partShift;
    const increment = Math.floor(parts / 65536) || 1;
    // Swift's chain(range(start, parts, inc), range(inc - ((parts - start) % inc), start, inc)).
    const secondStart = increment - ((parts - start) % increment);
    let handoffIndex = 0;
    const emit = (id: number): RingHandoffNode => {
      const device = state.deviceById[id] as RingDevice;
      return { ...device, handoff_index: handoffIndex++ };
    };

    // Tier 0: regions, 1: zones, 2: ips, 3: devices. Each pass is bounded by the table size.
    for (let tier = 0; tier < 4; tier += 1) {
      const done = (): boolean =>
        tier === 0
          ? regionsUsed >= state.regionCount
          : tier === 1
            ? zonesUsed >= state.zoneCount
            : tier === 2
              ? ipsUsed >= state.ipCount
              : devicesUsed >= state.assignedDeviceCount;
      if (done()) continue;
      let finished = false;
      for (let pass = 0; pass < 2 && !finished; pass += 1) {
        const from = pass === 0 ? start : secondStart;
        const to = pass === 0 ? parts : start;
        for (let handoffPart = from; handoffPart < to && !finished; handoffPart += increment) {
          for (const part2dev of state.replica2part2dev) {
            if (handoffPart >= part2dev.length) continue;
            const id = part2dev[handoffPart] ?? NONE_DEVICE;
            if (used[id] === 1) continue;
            const fresh =
              tier === 0
                ? usedRegions[state.regionOf[id] ?? 0] === 0
                : tier === 1
                  ? usedZones[state.zoneOf[id] ?? 0] === 0
                  : tier === 2
                    ? usedIps[state.ipOf[id] ?? 0] === 0
                    : true;
            if (!fresh) continue;
            yield emit(id);
            mark(id);
            if (done()) {
              finished = true;
              break;
            }
          }
        }
      }
    }
  }

  /**
   * Checks the file now and swaps in the new ring if it changed. Resolves true when it did.
   * Never rejects: a bad file is reported through `onReloadError` and the old ring stays.
   */
  async reload(): Promise<boolean> {
    if (this.checking) return false;
    this.checking = true;
    try {
      const identity = identityOf(await stat(this.path));
      if (
        sameFile(identity, this.identity) ||
        (this.failedIdentity !== undefined && sameFile(identity, this.failedIdentity))
      ) {
        return false;
      }
      let data: RingData;
      try {
        data = await readRingFileAsync(this.path);
      } catch (error) {
        // Report a bad file once, not at every interval; a new write gets a fresh try.
        this.failedIdentity = identity;
        throw error;
      }
      this.failedIdentity = undefined;
      this.state = new RingState(data);
      this.identity = identity;
      this.options.onReload?.(this);
      return true;
    } catch (error) {
      this.options.onReloadError?.(error instanceof Error ? error : new Error(String(error)));
      return false;
    } finally {
      this.checking = false;
    }
  }

  /** Stops the reload timer. Lookups keep working on the last ring loaded. */
  close(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}

function statIdentity(path: string): FileIdentity {
  try {
    return identityOf(statSync(path));
  } catch (error) {
    throw new RingFileError(`cannot read ring file ${path}: ${(error as Error).message}`, { cause: error });
  }
}
