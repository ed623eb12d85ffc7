/**
 * The offline ring builder (Swift's `RingBuilder`): devices, weights and failure domains in,
 * a partition -> device table out.
 *
 * Contract:
 * - Replicas are spread "as unique as possible" over region > zone > host (ip) > device, then
 *   in proportion to weight. The per-tier replica plan follows Swift's builder (weighted
 *   replicanths, the dispersion-wanted replicanths, blended by `overload`); Nebula's default
 *   overload is `null`, meaning dispersion always wins over weight (Swift before overload
 *   existed), while a number caps the extra share a device may take as in Swift.
 * - A rebalance moves as little as it can: only replicas on removed devices, replicas that break
 *   the dispersion plan, and replicas on over-full devices that an under-full device can take
 *   without breaking the plan. At most one replica of a partition moves per `minPartHours`
 *   (replicas on removed devices always move, as in Swift).
 * - Deterministic for a given seed and input. The table is typed arrays (part-major internally,
 *   Swift's replica-major in ring files), so a 2^20 x 3 rebalance takes a second or so.
 * - The builder file is Nebula's own JSON (tables base64-encoded), written atomically.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { DuplicateDeviceError, RingBuilderError, RingValidationError } from './errors.js';
import {
  NONE_DEVICE,
  PART_POWER_MAX,
  REPLICA_ARRAYS_MAX,
  writeFileAtomicSync,
  writeRingFile,
  type RingData,
  type RingDeviceRecord,
} from './ring-file.js';

/** Swift shows a zero-weight device that still holds partitions with this balance. */
export const MAX_BALANCE = 999.99;
const BUILDER_FORMAT = 'nebula-ring-builder';
const BUILDER_FORMAT_VERSION = 1;
/** Swift keeps hours-since-move in a byte. */
const PART_MOVE_HOURS_MAX = 255;
/** Balance passes over the table; each moves only from over-full to under-full devices. */
const BALANCE_PASSES_MAX = 3;

export interface BuilderDevice {
  id: number;
  region: number;
  zone: number;
  ip: string;
  port: number;
  replication_ip: string;
  replication_port: number;
  device: string;
  weight: number;
  meta: string;
}

export interface AddDeviceInput {
  id?: number;
  region?: number;
  zone: number;
  ip: string;
  port: number;
  replication_ip?: string;
  replication_port?: number;
  device: string;
  weight: number;
  meta?: string;
}

/** Fields to match; a device matches when every given field matches (meta: substring). */
export type DeviceSearch = Partial<BuilderDevice>;

export interface RebalanceResult {
  /** Partition-replica slots whose device changed. */
  changedParts: number;
  /** Worst device's distance from its weight share, in percent (Swift's balance). */
  balance: number;
  /** Percent of partition-replicas placed worse than the topology allows (Swift's dispersion). */
  dispersion: number;
  removedDevices: number;
}

export interface BuilderOptions {
  /** Overload as a fraction (0.1 = 10%); null: dispersion always wins. Default null. */
  overload?: number | null;
  /** Clock in milliseconds since the epoch; tests inject one to pass min_part_hours. */
  now?: () => number;
}

/** A small, fast, seedable PRNG (splitmix32): same seed, same ring. */
function makeRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** Seeds may be numbers or strings (the CLI's `--seed`); strings are hashed (FNV-1a). */
export function seedToNumber(seed: number | string): number {
  if (typeof seed === 'number' && Number.isFinite(seed)) return Math.trunc(seed) >>> 0;
  const text = String(seed);
  let hash = 0x811c9dc5;
  for (let index = 0; index < text.length; index += 1) {
    hash = Math.imul(hash ^ text.charCodeAt(index), 0x01000193) >>> 0;
  }
  return hash;
}

function checkInteger(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new RingBuilderError(`${name} must be an integer in ${min}..${max} (was ${String(value)})`);
  }
  return value;
}

function checkWeight(weight: unknown): number {
  if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0) {
    throw new RingBuilderError(`weight must be a finite number >= 0 (was ${String(weight)})`);
  }
  return weight;
}

const DEVICE_NAME = /^[^/\s]+$/;

/**
 * The tier tree of one rebalance: node 0 is the cluster, then regions, zones, hosts (ip) and
 * devices. Every device in the builder has a path (so replicas on zero-weight devices count
 * toward dispersion), but only weighted subtrees are children (so nothing is placed on them).
 */
class TierTree {
  readonly nodeCount: number;
  readonly depth: Int32Array;
  readonly parent: Int32Array;
  readonly weight: Float64Array;
  readonly weightedDevices: Int32Array;
  readonly childStart: Int32Array;
  readonly childCount: Int32Array;
  readonly children: Int32Array;
  /** `path[device * 4 + (depth - 1)]`: the node of a device at depths 1 (region) .. 4 (device). */
  readonly path: Int32Array;
  /** Device id of a depth-4 node. */
  readonly deviceOfNode: Int32Array;

  constructor(devices: readonly (BuilderDevice | null)[]) {
    const keys = new Map<string, number>();
    const depth: number[] = [0];
    const parent: number[] = [-1];
    const weight: number[] = [0];
    const weighted: number[] = [0];
    const deviceOfNode: number[] = [-1];
    const path = new Int32Array(devices.length * 4).fill(-1);
    const nodeFor = (key: string, nodeDepth: number, parentNode: number, deviceId: number): number => {
      let node = keys.get(key);
      if (node === undefined) {
        node = depth.length;
        keys.set(key, node);
        depth.push(nodeDepth);
        parent.push(parentNode);
        weight.push(0);
        weighted.push(0);
        deviceOfNode.push(deviceId);
      }
      return node;
    };
    for (const device of devices) {
      if (device === null) continue;
      const region = nodeFor(`${device.region}`, 1, 0, -1);
      const zone = nodeFor(`${device.region}\u0000${device.zone}`, 2, region, -1);
      const host = nodeFor(`${device.region}\u0000${device.zone}\u0000${device.ip}`, 3, zone, -1);
      const leaf = nodeFor(`\u0001${device.id}`, 4, host, device.id);
      path.set([region, zone, host, leaf], device.id * 4);
      if (device.weight > 0) {
        for (let node = leaf; node >= 0; node = parent[node] ?? -1) {
          weight[node] = (weight[node] ?? 0) + device.weight;
          weighted[node] = (weighted[node] ?? 0) + 1;
        }
      }
    }
    this.nodeCount = depth.length;
    this.depth = Int32Array.from(depth);
    this.parent = Int32Array.from(parent);
    this.weight = Float64Array.from(weight);
    this.weightedDevices = Int32Array.from(weighted);
    this.deviceOfNode = Int32Array.from(deviceOfNode);
    this.path = path;
    // Children lists (weighted children only), sorted by node key order of first appearance.
    const lists: number[][] = Array.from({ length: this.nodeCount }, () => []);
    for (let node = 1; node < this.nodeCount; node += 1) {
      if ((this.weightedDevices[node] ?? 0) > 0) lists[this.parent[node] ?? 0]?.push(node);
    }
    this.childStart = new Int32Array(this.nodeCount);
    this.childCount = new Int32Array(this.nodeCount);
    const flat: number[] = [];
    lists.forEach((list, node) => {
      this.childStart[node] = flat.length;
      this.childCount[node] = list.length;
      flat.push(...list);
    });
    this.children = Int32Array.from(flat);
  }
}

/** Swift's replica plan: per-node target replicanths and their floor/ceil. */
interface ReplicaPlan {
  target: Float64Array;
  min: Int32Array;
  max: Int32Array;
}

export class RingBuilder {
  partPower: number;
  replicas: number;
  minPartHours: number;
  overload: number | null;
  /** Bumped on every change, as Swift's builder version. */
  version = 0;
  devsChanged = false;
  /** Swift's builder id: assigned on first save. */
  id: string | undefined;
  dispersion: number | null = null;
  private devs: (BuilderDevice | null)[] = [];
  private readonly removeIds = new Set<number>();
  /** Part-major assignments: `table[partition * replicas + replica]`; null before the first rebalance. */
  private table: Uint16Array | null = null;
  private lastPartMoves: Uint8Array;
  private lastPartMovesEpochSeconds = 0;
  private lastPartGatherStart = 0;
  private readonly now: () => number;

  constructor(partPower: number, replicas: number, minPartHours: number, options: BuilderOptions = {}) {
    this.partPower = checkInteger(partPower, 'part_power', 0, PART_POWER_MAX);
    if (typeof replicas !== 'number' || !Number.isInteger(replicas)) {
      throw new RingBuilderError(
        `replicas must be a whole number (was ${String(replicas)}); Nebula has no fractional replicas`,
      );
    }
    this.replicas = checkInteger(replicas, 'replicas', 1, REPLICA_ARRAYS_MAX);
    this.minPartHours = checkInteger(minPartHours, 'min_part_hours', 0, PART_MOVE_HOURS_MAX);
    const overload = options.overload ?? null;
    if (overload !== null) checkOverload(overload);
    this.overload = overload;
    this.now = options.now ?? Date.now;
    this.lastPartMoves = new Uint8Array(this.partitionCount);
  }

  get partitionCount(): number {
    return 2 ** this.partPower;
  }

  get partShift(): number {
    return 32 - this.partPower;
  }

  get everRebalanced(): boolean {
    return this.table !== null;
  }

  /** Devices currently in the builder (including ones marked for removal), by id. */
  get devices(): readonly BuilderDevice[] {
    return this.devs.filter((device): device is BuilderDevice => device !== null);
  }

  device(id: number): BuilderDevice | undefined {
    return this.devs[id] ?? undefined;
  }

  isMarkedForRemoval(id: number): boolean {
    return this.removeIds.has(id);
  }

  setOverload(overload: number | null): void {
    if (overload !== null) checkOverload(overload);
    this.overload = overload;
    this.version += 1;
  }

  setMinPartHours(hours: number): void {
    this.minPartHours = checkInteger(hours, 'min_part_hours', 0, PART_MOVE_HOURS_MAX);
    this.version += 1;
  }

  /** Adds a device (not placed until the next rebalance). Returns its id. */
  addDevice(input: AddDeviceInput): number {
    const zone = checkInteger(input.zone, 'zone', 0, 2 ** 31 - 1);
    const region = checkInteger(input.region ?? 1, 'region', 0, 2 ** 31 - 1);
    const port = checkInteger(input.port, 'port', 0, 65535);
    const replicationPort = checkInteger(input.replication_port ?? port, 'replication_port', 0, 65535);
    const weight = checkWeight(input.weight);
    if (typeof input.ip !== 'string' || input.ip === '') throw new RingBuilderError('a device needs an ip');
    if (typeof input.device !== 'string' || !DEVICE_NAME.test(input.device)) {
      throw new RingBuilderError(`invalid device name ${JSON.stringify(input.device)}`);
    }
    let id = input.id;
    if (id === undefined) {
      const hole = this.devs.indexOf(null);
      id = hole >= 0 ? hole : this.devs.length;
    }
    checkInteger(id, 'device id', 0, NONE_DEVICE - 1);
    if (this.devs[id] !== undefined && this.devs[id] !== null) {
      throw new DuplicateDeviceError(`Duplicate device id: ${id}`);
    }
    const replicationIp = input.replication_ip ?? input.ip;
    for (const other of this.devs) {
      if (other !== null && other.ip === input.ip && other.port === port && other.device === input.device) {
        throw new DuplicateDeviceError(`Device ${other.id} already uses ${input.ip}:${port}/${input.device}.`);
      }
    }
    while (this.devs.length <= id) this.devs.push(null);
    this.devs[id] = {
      id,
      region,
      zone,
      ip: input.ip,
      port,
      replication_ip: replicationIp,
      replication_port: replicationPort,
      device: input.device,
      weight,
      meta: input.meta ?? '',
    };
    this.devsChanged = true;
    this.version += 1;
    return id;
  }

  /** Marks a device for removal: its partitions move at the next rebalance, then it is gone. */
  removeDevice(id: number): void {
    const device = this.requireDevice(id);
    device.weight = 0;
    this.removeIds.add(id);
    this.devsChanged = true;
    this.version += 1;
  }

  setDeviceWeight(id: number, weight: number): void {
    const device = this.requireDevice(id);
    if (this.removeIds.has(id)) {
      throw new RingBuilderError(`Can not set weight of dev_id ${id} because it is marked for removal`);
    }
    device.weight = checkWeight(weight);
    this.devsChanged = true;
    this.version += 1;
  }

  searchDevices(search: DeviceSearch): BuilderDevice[] {
    return this.devices.filter((device) => {
      for (const key of Object.keys(search) as (keyof BuilderDevice)[]) {
        const wanted = search[key];
        if (wanted === undefined) continue;
        if (key === 'meta') {
          if (!device.meta.includes(String(wanted))) return false;
        } else if (device[key] !== wanted) {
          return false;
        }
      }
      return true;
    });
  }

  private requireDevice(id: number): BuilderDevice {
    const device = this.devs[id];
    if (device === undefined || device === null) throw new RingBuilderError(`no device with id ${id}`);
    return device;
  }

  /** Forgets when partitions last moved, so the next rebalance may move anything (Swift's command). */
  pretendMinPartHoursPassed(): void {
    this.lastPartMovesEpochSeconds = 0;
    this.lastPartMoves.fill(PART_MOVE_HOURS_MAX);
  }

  /** Seconds until a rebalance may move partitions moved by the last one. */
  get minPartSecondsLeft(): number {
    const elapsed = Math.floor(this.now() / 1000) - this.lastPartMovesEpochSeconds;
    return Math.max(this.minPartHours * 3600 - elapsed, 0);
  }

  /** Partition-replicas per device id (0 for holes). */
  partsPerDevice(): Uint32Array {
    const counts = new Uint32Array(this.devs.length);
    const table = this.table;
    if (table === null) return counts;
    for (let slot = 0; slot < table.length; slot += 1) {
      const id = table[slot] ?? NONE_DEVICE;
      if (id !== NONE_DEVICE && id < counts.length) counts[id] = (counts[id] ?? 0) + 1;
    }
    return counts;
  }

  /** Device ids holding a partition's replicas, in replica order. */
  partitionDevices(partition: number): number[] {
    const table = this.table;
    if (table === null) return [];
    return Array.from(table.subarray(partition * this.replicas, (partition + 1) * this.replicas));
  }

  /** Swift's per-device balance: percent above (+) or below (-) the device's weight share. */
  balancePerDevice(parts: Uint32Array = this.partsPerDevice()): Map<number, number> {
    const balances = new Map<number, number>();
    let totalWeight = 0;
    for (const device of this.devices) totalWeight += device.weight;
    const weightOfOnePart = totalWeight > 0 ? (this.partitionCount * this.replicas) / totalWeight : 0;
    for (const device of this.devices) {
      const held = parts[device.id] ?? 0;
      if (device.weight === 0) balances.set(device.id, held > 0 ? MAX_BALANCE : 0);
      else balances.set(device.id, (100 * held) / (device.weight * weightOfOnePart) - 100);
    }
    return balances;
  }

  /** The worst absolute per-device balance (Swift's `get_balance`). */
  getBalance(parts?: Uint32Array): number {
    let worst = 0;
    for (const balance of this.balancePerDevice(parts).values()) worst = Math.max(worst, Math.abs(balance));
    return worst;
  }

  /**
   * Places and moves partitions. Throws RingValidationError when no valid ring is possible
   * (no weighted devices, fewer weighted devices than replicas).
   */
  rebalance(seed?: number | string): RebalanceResult {
    const random = makeRandom(seed === undefined ? randomInt(2 ** 32) : seedToNumber(seed));
    const replicas = this.replicas;
    const partitions = this.partitionCount;
    let weightedDevices = 0;
    for (const device of this.devs) {
      if (device !== null && device.weight > 0 && !this.removeIds.has(device.id)) weightedDevices += 1;
    }
    if (weightedDevices < replicas) {
      throw new RingValidationError(
        `Replica count of ${replicas} requires more than ${weightedDevices} devices` +
          (weightedDevices === 0 ? ' (no device has a weight above 0)' : ''),
      );
    }

    this.updateLastPartMoves();
    const oldTable = this.table === null ? null : this.table.slice();
    const table = this.table ?? new Uint16Array(partitions * replicas).fill(NONE_DEVICE);
    this.table = table;
    /** Bit r set: replica r of the partition moved (or was first placed) in this rebalance. */
    const movedMask = new Uint8Array(partitions);
    const hoursOk = (partition: number): boolean => (this.lastPartMoves[partition] ?? 0) >= this.minPartHours;

    // 1. Replicas on removed devices (and never-placed slots) must be placed, whatever the hours.
    let removedDevices = 0;
    // One flag per possible id: a Set lookup per slot is too slow for millions of slots.
    const mustMove = new Uint8Array(NONE_DEVICE + 1).fill(1);
    for (const device of this.devs) if (device !== null && !this.removeIds.has(device.id)) mustMove[device.id] = 0;
    for (let slot = 0; slot < table.length; slot += 1) {
      if (mustMove[table[slot]!] === 1) {
        table[slot] = NONE_DEVICE;
        const partition = Math.floor(slot / replicas);
        movedMask[partition] = (movedMask[partition] ?? 0) | (1 << (slot - partition * replicas));
      }
    }
    for (const id of this.removeIds) {
      this.devs[id] = null;
      removedDevices += 1;
    }
    this.removeIds.clear();
    while (this.devs.length > 0 && this.devs[this.devs.length - 1] === null) this.devs.pop();

    // 2. The plan: how many replicas of each partition each tier should hold, and how many
    //    partition-replicas each device wants in total.
    const tree = new TierTree(this.devs);
    const plan = this.buildReplicaPlan(tree);
    const parts = new Int32Array(Math.max(this.devs.length, 1));
    for (let slot = 0; slot < table.length; slot += 1) {
      const id = table[slot] ?? NONE_DEVICE;
      if (id !== NONE_DEVICE) parts[id] = (parts[id] ?? 0) + 1;
    }
    const targetParts = this.buildTargetParts(tree, plan, parts);
    const wanted = new Int32Array(parts.length);
    for (let id = 0; id < parts.length; id += 1) wanted[id] = (targetParts[id] ?? 0) - (parts[id] ?? 0);

    const state = new PlacementState(tree, plan, table, replicas, wanted, parts);

    // 3. Replicas that break the dispersion plan move (one per partition, if its hours allow,
    //    or any number when two replicas share one device).
    if (oldTable !== null) {
      for (let partition = 0; partition < partitions; partition += 1) {
        state.gatherUndispersed(partition, movedMask, hoursOk(partition));
      }
    }

    // 4. Place every empty slot, partitions in a seeded random order.
    const pending: number[] = [];
    for (let partition = 0; partition < partitions; partition += 1) {
      if ((movedMask[partition] ?? 0) !== 0) pending.push(partition);
    }
    for (let index = pending.length - 1; index > 0; index -= 1) {
      const other = random() % (index + 1);
      const swap = pending[index] ?? 0;
      pending[index] = pending[other] ?? 0;
      pending[other] = swap;
    }
    for (const partition of pending) state.placeEmptySlots(partition, random);

    // 5. Balance: move replicas from over-full to under-full devices where the plan allows.
    const quarterTurn = Math.floor(partitions / 4);
    for (let pass = 0; pass < BALANCE_PASSES_MAX; pass += 1) {
      if (!state.canStillBalance()) break;
      const start =
        (this.lastPartGatherStart + quarterTurn + (random() % (Math.floor(partitions / 2) + 1))) % partitions;
      this.lastPartGatherStart = start;
      let moves = 0;
      for (let offset = 0; offset < partitions && state.canStillBalance(); offset += 1) {
        const partition = (start + offset) % partitions;
        if (state.moveForBalance(partition, movedMask, hoursOk(partition), random)) moves += 1;
      }
      if (moves === 0) break;
    }

    // 6. Bookkeeping: what changed, when it moved, balance and dispersion.
    let changedParts = 0;
    for (let partition = 0; partition < partitions; partition += 1) {
      let changed = false;
      for (let replica = 0; replica < replicas; replica += 1) {
        const slot = partition * replicas + replica;
        if (oldTable === null || oldTable[slot] !== table[slot]) {
          changedParts += 1;
          changed = true;
        }
      }
      if (changed) this.lastPartMoves[partition] = 0;
    }
    this.devsChanged = false;
    this.version += 1;
    const partsNow = this.partsPerDevice();
    this.dispersion = this.computeDispersion(tree);
    return {
      changedParts,
      balance: this.getBalance(partsNow),
      dispersion: this.dispersion,
      removedDevices,
    };
  }

  private updateLastPartMoves(): void {
    const nowSeconds = Math.floor(this.now() / 1000);
    const elapsedHours = Math.floor((nowSeconds - this.lastPartMovesEpochSeconds) / 3600);
    if (elapsedHours <= 0) return;
    const moves = this.lastPartMoves;
    for (let partition = 0; partition < moves.length; partition += 1) {
      moves[partition] = Math.min((moves[partition] ?? 0) + elapsedHours, PART_MOVE_HOURS_MAX);
    }
    this.lastPartMovesEpochSeconds = nowSeconds;
  }

  /** Swift's `_build_weighted_replicas_by_tier`: replicanths by weight, a device capped at 1. */
  private weightedReplicas(tree: TierTree): Float64Array {
    const replicas = this.replicas;
    const byNode = new Float64Array(tree.nodeCount);
    const total = tree.weight[0] ?? 0;
    const perDevice = new Map<number, number>();
    const withRoom: number[] = [];
    for (const device of this.devs) {
      if (device === null || device.weight <= 0) continue;
      let share = (device.weight * replicas) / total;
      if (share < 1) withRoom.push(device.id);
      else share = 1;
      perDevice.set(device.id, share);
    }
    // Spread what capped devices could not take over the rest; bounded by the device count.
    for (let round = 0; round <= perDevice.size; round += 1) {
      let sum = 0;
      for (const share of perDevice.values()) sum += share;
      const remaining = replicas - sum;
      if (remaining < 1e-10) break;
      const open = withRoom.filter((id) => (perDevice.get(id) ?? 1) < 1);
      let openSum = 0;
      for (const id of open) openSum += perDevice.get(id) ?? 0;
      if (open.length === 0 || openSum <= 0) break;
      const relative = remaining / openSum;
      for (const id of open) perDevice.set(id, Math.min(1, (perDevice.get(id) ?? 0) * (relative + 1)));
    }
    for (const [id, share] of perDevice) {
      for (let depth = 0; depth < 4; depth += 1) {
        const node = tree.path[id * 4 + depth] ?? 0;
        byNode[node] = (byNode[node] ?? 0) + share;
      }
      byNode[0] = (byNode[0] ?? 0) + share;
    }
    return byNode;
  }

  /** Swift's `_build_max_replicas_by_tier`: an even split of replicas down the topology. */
  private maxReplicasByTier(tree: TierTree, bound: (value: number) => number): Float64Array {
    const result = new Float64Array(tree.nodeCount);
    result[0] = this.replicas;
    // Nodes are created parent-first, so one forward sweep sees every parent before its children.
    for (let node = 0; node < tree.nodeCount; node += 1) {
      const count = tree.childCount[node] ?? 0;
      const start = tree.childStart[node] ?? 0;
      for (let index = 0; index < count; index += 1) {
        const child = tree.children[start + index] ?? 0;
        let value = bound((result[node] ?? 0) / count);
        if ((tree.depth[child] ?? 0) === 4) value = Math.min(1, value);
        result[child] = value;
      }
    }
    return result;
  }

  /** Swift's `_build_wanted_replicas_by_tier`: as dispersed as the device counts allow. */
  private wantedReplicas(tree: TierTree, weighted: Float64Array): Float64Array {
    const dispersed = this.maxReplicasByTier(tree, (value) => value);
    const wanted = new Float64Array(tree.nodeCount);
    const place = (node: number, replicanths: number): void => {
      const devices = tree.weightedDevices[node] ?? 0;
      if (replicanths > devices + 1e-10) {
        throw new RingValidationError(`More replicanths (${replicanths}) than devices (${devices}) in a tier`);
      }
      wanted[node] = replicanths;
      const count = tree.childCount[node] ?? 0;
      if (count === 0) return;
      const subs = Array.from(tree.children.subarray(tree.childStart[node] ?? 0, (tree.childStart[node] ?? 0) + count));
      const toPlace = new Map<number, number>(subs.map((sub) => [sub, 0]));
      let remaining = replicanths;
      let spread = subs;
      let deviceLimited = false;
      // Converges in a few rounds; the bound only guards against float ping-pong.
      for (let round = 0; round < 64 + subs.length * 4; round += 1) {
        let weightSum = 0;
        for (const sub of spread) weightSum += weighted[sub] ?? 0;
        for (const sub of spread) {
          const share = weightSum > 0 ? ((weighted[sub] ?? 0) * remaining) / weightSum : remaining / spread.length;
          let value = (toPlace.get(sub) ?? 0) + share;
          const low = Math.floor(dispersed[sub] ?? 0);
          const high = Math.ceil(dispersed[sub] ?? 0);
          if (value < low) value = low;
          else if (value > high && !deviceLimited) value = high;
          const subDevices = tree.weightedDevices[sub] ?? 0;
          if (value > subDevices) value = subDevices;
          toPlace.set(sub, value);
        }
        let placed = 0;
        for (const value of toPlace.values()) placed += value;
        remaining = replicanths - placed;
        if (remaining < -1e-10) {
          spread = subs.filter((sub) => (toPlace.get(sub) ?? 0) > Math.floor(dispersed[sub] ?? 0));
        } else if (remaining > 1e-10) {
          spread = subs.filter((sub) => {
            const value = toPlace.get(sub) ?? 0;
            return (tree.weightedDevices[sub] ?? 0) > value && value < Math.ceil(dispersed[sub] ?? 0);
          });
          if (spread.length === 0) {
            deviceLimited = true;
            spread = subs.filter((sub) => (toPlace.get(sub) ?? 0) < (tree.weightedDevices[sub] ?? 0));
          }
        } else {
          break;
        }
        if (spread.length === 0) break;
      }
      for (const sub of subs) place(sub, toPlace.get(sub) ?? 0);
    };
    place(0, this.replicas);
    return wanted;
  }

  private buildReplicaPlan(tree: TierTree): ReplicaPlan {
    const weighted = this.weightedReplicas(tree);
    const wanted = this.wantedReplicas(tree, weighted);
    let target = wanted;
    if (this.overload !== null) {
      // Swift's blend: each tier moves from its weighted share toward its wanted share by
      // overload / required overload, the required one being the worst device's need.
      let required = 0;
      for (const device of this.devs) {
        if (device === null || device.weight <= 0) continue;
        const leaf = tree.path[device.id * 4 + 3] ?? 0;
        const weightedShare = weighted[leaf] ?? 0;
        if (weightedShare > 0) required = Math.max(required, ((wanted[leaf] ?? 0) - weightedShare) / weightedShare);
      }
      if (required > 0) {
        const effective = Math.min(this.overload, required);
        target = new Float64Array(tree.nodeCount);
        for (let node = 0; node < tree.nodeCount; node += 1) {
          const base = weighted[node] ?? 0;
          target[node] = (((wanted[node] ?? 0) - base) / required) * effective + base;
        }
      }
    }
    const min = new Int32Array(tree.nodeCount);
    const max = new Int32Array(tree.nodeCount);
    for (let node = 0; node < tree.nodeCount; node += 1) {
      min[node] = Math.floor((target[node] ?? 0) + 1e-10);
      max[node] = Math.ceil((target[node] ?? 0) - 1e-10);
    }
    return { target, min, max };
  }

  /**
   * Whole partition-replica counts per device from the plan: the ring's `replicas * partitions`
   * split down the tree by largest remainder, ties to whoever holds more already (so an
   * unchanged builder keeps its targets and moves nothing).
   */
  private buildTargetParts(tree: TierTree, plan: ReplicaPlan, parts: Int32Array): Int32Array {
    const partitions = this.partitionCount;
    const held = new Float64Array(tree.nodeCount);
    for (let id = 0; id < parts.length; id += 1) {
      if ((parts[id] ?? 0) === 0 || this.devs[id] === null || this.devs[id] === undefined) continue;
      for (let depth = 0; depth < 4; depth += 1) {
        const node = tree.path[id * 4 + depth] ?? 0;
        held[node] = (held[node] ?? 0) + (parts[id] ?? 0);
      }
    }
    const nodeParts = new Float64Array(tree.nodeCount);
    nodeParts[0] = partitions * this.replicas;
    const targetParts = new Int32Array(parts.length);
    for (let node = 0; node < tree.nodeCount; node += 1) {
      const count = tree.childCount[node] ?? 0;
      const total = nodeParts[node] ?? 0;
      if (count === 0) {
        const id = tree.deviceOfNode[node] ?? -1;
        if (id >= 0) targetParts[id] = total;
        continue;
      }
      const start = tree.childStart[node] ?? 0;
      const subs = Array.from(tree.children.subarray(start, start + count));
      let targetSum = 0;
      for (const sub of subs) targetSum += plan.target[sub] ?? 0;
      const cap = (sub: number): number => ((tree.depth[sub] ?? 0) === 4 ? partitions : Number.POSITIVE_INFINITY);
      const exact = subs.map((sub) => (targetSum > 0 ? ((plan.target[sub] ?? 0) * total) / targetSum : total / count));
      const floors = exact.map((value, index) => Math.min(Math.floor(value + 1e-9), cap(subs[index] ?? 0)));
      let leftover = total;
      for (const value of floors) leftover -= value;
      const order = subs
        .map((sub, index) => ({
          index,
          fraction: (exact[index] ?? 0) - (floors[index] ?? 0),
          held: held[sub] ?? 0,
          sub,
        }))
        .sort((a, b) => b.fraction - a.fraction || b.held - a.held || a.sub - b.sub);
      // Largest remainder first; a second lap only happens when caps forced more leftovers.
      for (let lap = 0; lap < 4 && leftover > 0; lap += 1) {
        for (const entry of order) {
          if (leftover <= 0) break;
          const sub = subs[entry.index] ?? 0;
          if ((floors[entry.index] ?? 0) + 1 > cap(sub)) continue;
          floors[entry.index] = (floors[entry.index] ?? 0) + 1;
          leftover -= 1;
        }
      }
      subs.forEach((sub, index) => {
        nodeParts[sub] = floors[index] ?? 0;
      });
    }
    return targetParts;
  }

  /** Swift's dispersion: percent of partition-replicas above the topology's per-tier maximum. */
  private computeDispersion(tree: TierTree): number {
    const table = this.table;
    if (table === null) return 0;
    const maxAllowed = this.maxReplicasByTier(tree, Math.ceil);
    const replicas = this.replicas;
    const nodes = new Int32Array(replicas);
    let atRisk = 0;
    const partitions = this.partitionCount;
    for (let partition = 0; partition < partitions; partition += 1) {
      let worst = 0;
      for (let depth = 0; depth < 4; depth += 1) {
        let risk = 0;
        for (let replica = 0; replica < replicas; replica += 1) {
          const id = table[partition * replicas + replica] ?? NONE_DEVICE;
          nodes[replica] = id === NONE_DEVICE ? -1 : (tree.path[id * 4 + depth] ?? -1);
        }
        for (let replica = 0; replica < replicas; replica += 1) {
          const node = nodes[replica] ?? -1;
          if (node < 0) continue;
          let first = true;
          let count = 0;
          for (let other = 0; other < replicas; other += 1) {
            if (nodes[other] === node) {
              if (other < replica) first = false;
              count += 1;
            }
          }
          // Count each tier once per partition, at its first replica.
          // Nodes outside the weighted topology (zero-weight devices) allow no replicas at all.
          const excess = count - (maxAllowed[node] ?? 0);
          if (first && excess > 0) risk += excess;
        }
        worst = Math.max(worst, risk);
      }
      atRisk += worst;
    }
    return (100 * atRisk) / (this.partitionCount * replicas);
  }

  /** Checks the table: every slot on a real device, no partition twice on one device. */
  validate(): void {
    const table = this.table;
    if (table === null) throw new RingValidationError('no partitions assigned; did you forget to rebalance?');
    const replicas = this.replicas;
    const partitions = this.partitionCount;
    for (let partition = 0; partition < partitions; partition += 1) {
      for (let replica = 0; replica < replicas; replica += 1) {
        const id = table[partition * replicas + replica] ?? NONE_DEVICE;
        if (id === NONE_DEVICE || this.devs[id] === null || this.devs[id] === undefined) {
          throw new RingValidationError(`Partition ${partition}, replica ${replica} was not allocated to a device.`);
        }
        for (let other = 0; other < replica; other += 1) {
          if (table[partition * replicas + other] === id) {
            throw new RingValidationError(
              `The partition ${partition} has been assigned to duplicate devices (device ${id})`,
            );
          }
        }
      }
    }
  }

  /** The ring servers load (Swift's `get_ring`): devices without builder-only fields. */
  getRingData(): RingData {
    const table = this.table;
    if (table === null) throw new RingValidationError('no partitions assigned; did you forget to rebalance?');
    const devs: (RingDeviceRecord | null)[] = this.devs.map((device) =>
      device === null
        ? null
        : {
            id: device.id,
            region: device.region,
            zone: device.zone,
            ip: device.ip,
            port: device.port,
            replication_ip: device.replication_ip,
            replication_port: device.replication_port,
            device: device.device,
            weight: device.weight,
            meta: device.meta,
          },
    );
    const replicas = this.replicas;
    const partitions = this.partitionCount;
    const replica2part2dev: Uint16Array[] = [];
    for (let replica = 0; replica < replicas; replica += 1) {
      const part2dev = new Uint16Array(partitions);
      for (let partition = 0; partition < partitions; partition += 1) {
        part2dev[partition] = table[partition * replicas + replica] ?? NONE_DEVICE;
      }
      replica2part2dev.push(part2dev);
    }
    return { devs, partShift: this.partShift, replica2part2dev, version: this.version };
  }

  writeRing(path: string): void {
    this.validate();
    writeRingFile(path, this.getRingData());
  }

  toJSON(): Record<string, unknown> {
    const table = this.table;
    let replica2part2dev: string[] | null = null;
    if (table !== null) {
      replica2part2dev = this.getRingData().replica2part2dev.map((part2dev) => uint16ToBase64(part2dev));
    }
    return {
      format: BUILDER_FORMAT,
      format_version: BUILDER_FORMAT_VERSION,
      id: this.id ?? null,
      part_power: this.partPower,
      replicas: this.replicas,
      min_part_hours: this.minPartHours,
      overload: this.overload,
      version: this.version,
      devs_changed: this.devsChanged,
      dispersion: this.dispersion,
      devs: this.devs,
      remove_devs: [...this.removeIds],
      last_part_moves_epoch: this.lastPartMovesEpochSeconds,
      last_part_gather_start: this.lastPartGatherStart,
      last_part_moves: Buffer.from(
        this.lastPartMoves.buffer,
        this.lastPartMoves.byteOffset,
        this.lastPartMoves.byteLength,
      ).toString('base64'),
      replica2part2dev,
    };
  }

  static fromJSON(value: unknown, options: Omit<BuilderOptions, 'overload'> = {}): RingBuilder {
    const fail = (why: string): never => {
      throw new RingBuilderError(`not a Nebula ring builder file: ${why}`);
    };
    if (typeof value !== 'object' || value === null) return fail('not a JSON object');
    const data = value as Record<string, unknown>;
    if (data.format !== BUILDER_FORMAT) fail(`format is ${JSON.stringify(data.format)}`);
    if (data.format_version !== BUILDER_FORMAT_VERSION) fail(`format_version ${String(data.format_version)}`);
    const overload = data.overload === null || typeof data.overload === 'number' ? data.overload : fail('overload');
    const builder = new RingBuilder(data.part_power as number, data.replicas as number, data.min_part_hours as number, {
      ...options,
      overload,
    });
    builder.id = typeof data.id === 'string' ? data.id : undefined;
    builder.version = typeof data.version === 'number' ? data.version : 0;
    builder.devsChanged = data.devs_changed === true;
    builder.dispersion = typeof data.dispersion === 'number' ? data.dispersion : null;
    if (!Array.isArray(data.devs)) fail('devs is not a list');
    const devs = data.devs as unknown[];
    devs.forEach((device, index) => {
      if (device === null) {
        builder.devs.push(null);
        return;
      }
      const record = device as AddDeviceInput & { id: number };
      if (record.id !== index) fail(`device at position ${index} has id ${String(record.id)}`);
      builder.devs.push(null);
      const versionBefore = builder.version;
      builder.addDevice(record);
      builder.version = versionBefore;
    });
    builder.devsChanged = data.devs_changed === true;
    for (const id of (data.remove_devs as unknown[] | undefined) ?? []) {
      if (typeof id !== 'number' || builder.devs[id] === null || builder.devs[id] === undefined) fail('remove_devs');
      builder.removeIds.add(id as number);
    }
    builder.lastPartMovesEpochSeconds = typeof data.last_part_moves_epoch === 'number' ? data.last_part_moves_epoch : 0;
    builder.lastPartGatherStart = typeof data.last_part_gather_start === 'number' ? data.last_part_gather_start : 0;
    if (typeof data.last_part_moves === 'string') {
      const moves = Buffer.from(data.last_part_moves, 'base64');
      if (moves.length !== builder.partitionCount) fail('last_part_moves has the wrong length');
      builder.lastPartMoves = new Uint8Array(moves);
    }
    if (Array.isArray(data.replica2part2dev)) {
      const arrays = (data.replica2part2dev as unknown[]).map((text) =>
        typeof text === 'string' ? base64ToUint16(text) : fail('replica2part2dev'),
      );
      if (arrays.length !== builder.replicas) fail('replica2part2dev has the wrong number of replicas');
      const partitions = builder.partitionCount;
      const table = new Uint16Array(partitions * builder.replicas);
      arrays.forEach((part2dev, replica) => {
        if (part2dev.length !== partitions) fail(`replica ${replica} has ${part2dev.length} partitions`);
        for (let partition = 0; partition < partitions; partition += 1) {
          const id = part2dev[partition] ?? NONE_DEVICE;
          if (id !== NONE_DEVICE && (builder.devs[id] === null || builder.devs[id] === undefined)) {
            fail(`partition ${partition} replica ${replica} points at missing device ${id}`);
          }
          table[partition * builder.replicas + replica] = id;
        }
      });
      builder.table = table;
    }
    return builder;
  }

  /** Writes the builder file atomically, assigning the builder id on first save (as Swift). */
  save(path: string): void {
    this.id ??= randomBytes(16).toString('hex');
    writeFileAtomicSync(path, Buffer.from(JSON.stringify(this.toJSON())), 0o644);
  }

  static load(path: string, options: Omit<BuilderOptions, 'overload'> = {}): RingBuilder {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      throw new RingBuilderError(`cannot read builder file ${path}: ${(error as Error).message}`, { cause: error });
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw new RingBuilderError(`builder file ${path} is not JSON: ${(error as Error).message}`, { cause: error });
    }
    return RingBuilder.fromJSON(value, options);
  }

  /** Regions, zones and devices (including ones marked for removal), as swift-ring-builder counts them. */
  topologyCounts(): { regions: number; zones: number; devices: number } {
    const regions = new Set<number>();
    const zones = new Set<string>();
    let devices = 0;
    for (const device of this.devices) {
      regions.add(device.region);
      zones.add(`${device.region}/${device.zone}`);
      devices += 1;
    }
    return { regions: regions.size, zones: zones.size, devices };
  }
}

function checkOverload(overload: number): void {
  if (!Number.isFinite(overload) || overload < 0) {
    throw new RingBuilderError(`overload must be a number >= 0 (was ${overload})`);
  }
}

function uint16ToBase64(values: Uint16Array): string {
  const bytes = Buffer.alloc(values.length * 2);
  for (let index = 0; index < values.length; index += 1) bytes.writeUInt16LE(values[index] ?? 0, index * 2);
  return bytes.toString('base64');
}

function base64ToUint16(text: string): Uint16Array {
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length % 2 !== 0) throw new RingBuilderError('not a Nebula ring builder file: odd table length');
  const values = new Uint16Array(bytes.length / 2);
  for (let index = 0; index < values.length; index += 1) values[index] = bytes.readUInt16LE(index * 2);
  return values;
}

/**
 * The mutable state of one rebalance: per-device wanted counts, per-node availability, and the
 * per-node replica counts of the partition being worked on. Kept in typed arrays because the
 * placement loops run millions of times.
 */
class PlacementState {
  private readonly tree: TierTree;
  private readonly max: Int32Array;
  private readonly table: Uint16Array;
  private readonly replicas: number;
  /** Per device: target minus held partition-replicas (negative: over-full). */
  private readonly wanted: Int32Array;
  private readonly parts: Int32Array;
  /** Per node: sum of positive `wanted` below it (room), and the signed sum (net need). */
  private readonly available: Int32Array;
  private readonly net: Int32Array;
  /** Per node: replicas of the current partition below it. */
  private readonly count: Int32Array;
  private overFull = 0;
  private readonly tried: Uint8Array;

  constructor(
    tree: TierTree,
    plan: ReplicaPlan,
    table: Uint16Array,
    replicas: number,
    wanted: Int32Array,
    parts: Int32Array,
  ) {
    this.tree = tree;
    this.max = plan.max;
    this.table = table;
    this.replicas = replicas;
    this.wanted = wanted;
    this.parts = parts;
    this.available = new Int32Array(tree.nodeCount);
    this.net = new Int32Array(tree.nodeCount);
    this.count = new Int32Array(tree.nodeCount);
    this.tried = new Uint8Array(tree.nodeCount);
    for (let id = 0; id < wanted.length; id += 1) {
      if ((tree.path[id * 4] ?? -1) < 0) continue;
      const want = wanted[id] ?? 0;
      if (want < 0) this.overFull += 1;
      this.adjustPath(id, Math.max(want, 0), want);
    }
  }

  private adjustPath(id: number, availableDelta: number, netDelta: number): void {
    const path = this.tree.path;
    for (let depth = 0; depth < 4; depth += 1) {
      const node = path[id * 4 + depth] ?? 0;
      this.available[node] = (this.available[node] ?? 0) + availableDelta;
      this.net[node] = (this.net[node] ?? 0) + netDelta;
    }
    this.available[0] = (this.available[0] ?? 0) + availableDelta;
    this.net[0] = (this.net[0] ?? 0) + netDelta;
  }

  private countPath(id: number, delta: number): void {
    const path = this.tree.path;
    for (let depth = 0; depth < 4; depth += 1) {
      const node = path[id * 4 + depth] ?? 0;
      this.count[node] = (this.count[node] ?? 0) + delta;
    }
  }

  /** Takes one partition-replica onto device `id`. */
  private assign(id: number): void {
    const before = this.wanted[id] ?? 0;
    this.wanted[id] = before - 1;
    this.parts[id] = (this.parts[id] ?? 0) + 1;
    if (before === 0) this.overFull += 1;
    this.adjustPath(id, before > 0 ? -1 : 0, -1);
  }

  /** Gives one partition-replica back from device `id`. */
  private release(id: number): void {
    const before = this.wanted[id] ?? 0;
    this.wanted[id] = before + 1;
    this.parts[id] = (this.parts[id] ?? 0) - 1;
    if (before === -1) this.overFull -= 1;
    this.adjustPath(id, before >= 0 ? 1 : 0, 1);
  }

  private loadPartition(partition: number, delta: number): void {
    const base = partition * this.replicas;
    for (let replica = 0; replica < this.replicas; replica += 1) {
      const id = this.table[base + replica] ?? NONE_DEVICE;
      if (id !== NONE_DEVICE) this.countPath(id, delta);
    }
  }

  canStillBalance(): boolean {
    return this.overFull > 0 && (this.available[0] ?? 0) > 0;
  }

  /**
   * Where a replica of the loaded partition should go: walking down from the cluster, the child
   * under its plan maximum with the most room (then the largest net need); a seeded rotation
   * breaks ties. With `needRoom`, only devices that still want partitions qualify (and the walk
   * backtracks when a branch with room is blocked by the plan lower down). -1 when none.
   */
  private choose(needRoom: boolean, seed: number): number {
    if (needRoom) return this.chooseWithRoom(0, seed);
    let node = 0;
    for (let depth = 0; depth < 4; depth += 1) {
      node = this.bestChild(node, seed >>> (depth * 7), false);
      if (node < 0) return -1;
    }
    return this.tree.deviceOfNode[node] ?? -1;
  }

  /** Depth-first with backtracking: a branch with room may still be blocked lower down. */
  private chooseWithRoom(node: number, seed: number): number {
    const tree = this.tree;
    const depth = tree.depth[node] ?? 0;
    if (depth === 4) return tree.deviceOfNode[node] ?? -1;
    const size = tree.childCount[node] ?? 0;
    let marked: number[] | undefined;
    let found = -1;
    // Bounded: each failed round marks one more child tried.
    for (let round = 0; round < size; round += 1) {
      const best = this.bestChild(node, seed >>> (depth * 7), true);
      if (best < 0) break;
      found = this.chooseWithRoom(best, seed);
      if (found >= 0) break;
      this.tried[best] = 1;
      (marked ??= []).push(best);
    }
    if (marked !== undefined) for (const child of marked) this.tried[child] = 0;
    return found;
  }

  /**
   * The child to descend into: among children under their plan maximum (and not tried), the one
   * with the most room, then the largest net need; the scan starts at a seeded rotation so ties
   * spread out. With `needRoom`, -1 unless that child has room; without, a child over its
   * maximum is taken when nothing else is left (the least over first).
   */
  private bestChild(node: number, rotationSeed: number, needRoom: boolean): number {
    const tree = this.tree;
    const children = tree.children;
    const available = this.available;
    const net = this.net;
    const count = this.count;
    const max = this.max;
    const tried = this.tried;
    const start = tree.childStart[node]!;
    const size = tree.childCount[node]!;
    if (size === 0) return -1;
    const end = start + size;
    let index = start + (rotationSeed % size);
    let best = -1;
    let bestAvailable = -1;
    let bestNet = 0;
    for (let step = 0; step < size; step += 1) {
      const child = children[index]!;
      index += 1;
      if (index === end) index = start;
      if (count[child]! >= max[child]! || tried[child] === 1) continue;
      const room = available[child]!;
      if (room > bestAvailable || (room === bestAvailable && net[child]! > bestNet)) {
        best = child;
        bestAvailable = room;
        bestNet = net[child]!;
      }
    }
    if (needRoom) return bestAvailable > 0 ? best : -1;
    if (best >= 0) return best;
    let bestExcess = Number.POSITIVE_INFINITY;
    for (let offset = 0; offset < size; offset += 1) {
      const child = children[start + offset]!;
      const excess = count[child]! - max[child]!;
      if (excess < bestExcess || (excess === bestExcess && available[child]! > bestAvailable)) {
        best = child;
        bestExcess = excess;
        bestAvailable = available[child]!;
      }
    }
    return best;
  }

  /** Picks up replicas that break the plan's per-tier maximum. */
  gatherUndispersed(partition: number, movedMask: Uint8Array, hoursOk: boolean): void {
    const base = partition * this.replicas;
    const path = this.tree.path;
    this.loadPartition(partition, 1);
    // Bounded by the replica count: each round either removes one replica or stops.
    for (let round = 0; round < this.replicas; round += 1) {
      let worst = -1;
      let worstWanted = 0;
      let worstShared = false;
      for (let replica = 0; replica < this.replicas; replica += 1) {
        const id = this.table[base + replica] ?? NONE_DEVICE;
        if (id === NONE_DEVICE) continue;
        let violates = false;
        for (let depth = 0; depth < 4; depth += 1) {
          const node = path[id * 4 + depth] ?? 0;
          if ((this.count[node] ?? 0) > (this.max[node] ?? 0)) violates = true;
        }
        if (!violates) continue;
        const shared = (this.count[path[id * 4 + 3] ?? 0] ?? 0) > 1;
        const mask = movedMask[partition] ?? 0;
        const movable = shared || (mask & (1 << replica)) !== 0 || (mask === 0 && hoursOk);
        if (!movable) continue;
        const want = this.wanted[id] ?? 0;
        if (worst < 0 || want < worstWanted) {
          worst = replica;
          worstWanted = want;
          worstShared = shared;
        }
      }
      if (worst < 0) break;
      const id = this.table[base + worst] ?? NONE_DEVICE;
      this.countPath(id, -1);
      this.release(id);
      this.table[base + worst] = NONE_DEVICE;
      movedMask[partition] = (movedMask[partition] ?? 0) | (1 << worst);
      if (!worstShared && !hoursOk) break;
    }
    this.loadPartition(partition, -1);
  }

  /** Fills the partition's empty slots. */
  placeEmptySlots(partition: number, random: () => number): void {
    const base = partition * this.replicas;
    this.loadPartition(partition, 1);
    for (let replica = 0; replica < this.replicas; replica += 1) {
      if (this.table[base + replica] !== NONE_DEVICE) continue;
      const id = this.choose(false, random());
      if (id < 0) throw new RingValidationError(`no device can take partition ${partition} replica ${replica}`);
      this.table[base + replica] = id;
      this.assign(id);
      this.countPath(id, 1);
    }
    this.loadPartition(partition, -1);
  }

  /** Moves one replica of the partition from an over-full device to one with room, if allowed. */
  moveForBalance(partition: number, movedMask: Uint8Array, hoursOk: boolean, random: () => number): boolean {
    const base = partition * this.replicas;
    const mask = movedMask[partition] ?? 0;
    if (mask === 0 && !hoursOk) return false;
    let candidates = 0;
    for (let replica = 0; replica < this.replicas; replica += 1) {
      const id = this.table[base + replica] ?? NONE_DEVICE;
      if ((this.wanted[id] ?? 0) < 0 && (mask === 0 || (mask & (1 << replica)) !== 0)) candidates += 1;
    }
    if (candidates === 0) return false;
    this.loadPartition(partition, 1);
    let moved = false;
    const triedReplicas = new Set<number>();
    // Most over-full first; bounded by the replica count.
    for (let round = 0; round < this.replicas && !moved; round += 1) {
      let pick = -1;
      let pickWanted = 0;
      for (let replica = 0; replica < this.replicas; replica += 1) {
        if (triedReplicas.has(replica)) continue;
        const id = this.table[base + replica] ?? NONE_DEVICE;
        const want = this.wanted[id] ?? 0;
        if (want >= 0 || (mask !== 0 && (mask & (1 << replica)) === 0)) continue;
        if (pick < 0 || want < pickWanted) {
          pick = replica;
          pickWanted = want;
        }
      }
      if (pick < 0) break;
      triedReplicas.add(pick);
      const from = this.table[base + pick] ?? NONE_DEVICE;
      this.countPath(from, -1);
      const to = this.choose(true, random());
      if (to >= 0 && to !== from) {
        this.release(from);
        this.assign(to);
        this.table[base + pick] = to;
        this.countPath(to, 1);
        movedMask[partition] = mask | (1 << pick);
        moved = true;
      } else {
        this.countPath(from, 1);
      }
    }
    this.loadPartition(partition, -1);
    return moved;
  }
}
