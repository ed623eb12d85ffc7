/**
 * `servers_per_port`: the storage node as a parent of one process per ring port, as Swift's
 * object server runs it (its ServersPerPortStrategy), so a node uses several cores and each
 * device's LevelDB is opened by exactly one process (classic-level holds an exclusive lock).
 *
 * The parent reads the object, container and account rings in `swift_dir`, keeps the devices
 * whose `ip` is one of this host's (Swift's whataremyips: `bind_ip` itself, or every interface
 * address, loopback included, when `bind_ip` is 0.0.0.0 or ::) and groups them by `port`. It forks
 * one child per port (node:cluster, the listening socket made by the parent and accepted on by
 * the children), each serving only that port's devices on `bind_ip:<port>`; `bind_port` is
 * ignored. A child that dies is started again (after a pause that grows while it keeps dying
 * young). Every `ring_check_interval` seconds the parent looks at the rings' mtimes; when the
 * ports or their devices changed it stops the children whose devices changed (so a device's
 * database is closed before another child opens it), then starts the missing ones. SIGTERM stops
 * every child (each drains as a plain node does) and resolves stop().
 *
 * N > 1 children per port share that port's listening socket, but they could not share a LevelDB:
 * a port with any device in the container or account ring gets one child (logged once), and only
 * ports that hold objects alone get N. Only the first child of a port runs the daemons (the others
 * would walk the same devices); every child answers REPLICATE.
 *
 * A device found on two different ports of this host (for example sdb on :6200 in the object ring
 * and :6201 in the container ring) would be opened by two children: the parent refuses such rings
 * (ServersPerPortError at start; at a reload it logs and keeps the children it has).
 */
import cluster, { type Worker } from 'node:cluster';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../common/log.js';
import { storageNodeThreadPoolEnv } from '../common/thread-pool.js';
import { readRingFile } from '../ring/ring-file.js';
import { isLocalIp, localIps } from './local-ips.js';

/** The environment variable carrying a child's WorkerAssignment (JSON). */
export const WORKER_ASSIGNMENT_ENV = 'NEBULA_SERVERS_PER_PORT_WORKER';

const RING_KINDS = ['object', 'container', 'account'] as const;
/** A child's drain takes up to 10 s (main.ts); past this it is killed. */
const CHILD_STOP_TIMEOUT_MS = 15_000;
/** A child that lived less than this counts as dying young: its restart waits. */
const CHILD_YOUNG_MS = 10_000;
const RESTART_DELAY_FIRST_MS = 500;
const RESTART_DELAY_MAX_MS = 30_000;

export class ServersPerPortError extends Error {
  readonly code = 'ServersPerPortLayout';
  constructor(message: string) {
    super(message);
    this.name = 'ServersPerPortError';
  }
}

/** The devices of this host that one port serves. */
export interface PortGroup {
  port: number;
  /** Device names, sorted. */
  devices: readonly string[];
  /** The ring ip of these devices (the first found), for the daemons' notion of "local". */
  ringIp: string;
  /** Whether any device is in the container or account ring (then the port gets one child). */
  holdsDatabases: boolean;
}

/** What one child serves, handed down in WORKER_ASSIGNMENT_ENV. */
export interface WorkerAssignment {
  port: number;
  devices: string[];
  ringIp: string;
  /** 0 for the first child of the port (the one that runs the daemons). */
  index: number;
}

/** This host's devices in the rings of `swiftDir`, grouped by port (sorted by port). */
export function localPortGroups(swiftDir: string, ips: ReadonlySet<string>): PortGroup[] {
  const groups = new Map<number, { devices: Set<string>; ringIp: string; holdsDatabases: boolean }>();
  const portOfDevice = new Map<string, number>();
  for (const kind of RING_KINDS) {
    const path = join(swiftDir, `${kind}.ring.gz`);
    if (!existsSync(path)) continue;
    for (const record of readRingFile(path).devs) {
      if (record === null) continue;
      const { ip, port, device } = record;
      if (typeof ip !== 'string' || typeof device !== 'string' || typeof port !== 'number') {
        throw new ServersPerPortError(`${kind} ring: a device without ip, port or name: ${JSON.stringify(record)}`);
      }
      if (!isLocalIp(ip, ips)) continue;
      if (!Number.isInteger(port) || port <= 0 || port > 65535) {
        throw new ServersPerPortError(`${kind} ring: device ${device} has port ${port}`);
      }
      const known = portOfDevice.get(device);
      if (known !== undefined && known !== port) {
        throw new ServersPerPortError(
          `device ${device} is on port ${known} and on port ${port} of this host: one process must own it`,
        );
      }
      portOfDevice.set(device, port);
      let group = groups.get(port);
      if (group === undefined) {
        group = { devices: new Set(), ringIp: ip, holdsDatabases: false };
        groups.set(port, group);
      }
      group.devices.add(device);
      if (kind !== 'object') group.holdsDatabases = true;
    }
  }
  return [...groups.entries()]
    .sort(([a], [b]) => a - b)
    .map(([port, group]) => ({
      port,
      devices: [...group.devices].sort(),
      ringIp: group.ringIp,
      holdsDatabases: group.holdsDatabases,
    }));
}

/** The ring files' mtimes, one string: it changes when a ring is pushed. */
function ringFilesStamp(swiftDir: string): string {
  return RING_KINDS.map((kind) => {
    try {
      return String(statSync(join(swiftDir, `${kind}.ring.gz`)).mtimeMs);
    } catch {
      return '-';
    }
  }).join(' ');
}

/** The assignment of a servers_per_port child, or undefined in any other process. */
export function workerAssignmentFrom(env: NodeJS.ProcessEnv): WorkerAssignment | undefined {
  const raw = env[WORKER_ASSIGNMENT_ENV];
  if (raw === undefined || cluster.isPrimary) return undefined;
  const parsed = JSON.parse(raw) as Partial<WorkerAssignment>;
  const { port, devices, ringIp, index } = parsed;
  if (
    typeof port !== 'number' ||
    !Array.isArray(devices) ||
    !devices.every((device) => typeof device === 'string') ||
    typeof ringIp !== 'string' ||
    typeof index !== 'number'
  ) {
    throw new ServersPerPortError(`bad ${WORKER_ASSIGNMENT_ENV}: ${raw}`);
  }
  return { port, devices, ringIp, index };
}

export interface ServersPerPortOptions {
  swiftDir: string;
  bindIp: string;
  serversPerPort: number;
  ringCheckIntervalMs: number;
  logger: Logger;
}

interface Slot {
  readonly key: string;
  readonly assignment: WorkerAssignment;
  /** Devices and ring ip: a child whose signature changes is restarted. */
  readonly signature: string;
  worker?: Worker;
  exited?: Promise<void>;
  startedAtMs: number;
  youngDeaths: number;
  restartTimer?: NodeJS.Timeout;
}

function slotsWanted(groups: readonly PortGroup[], serversPerPort: number): Map<string, WorkerAssignment> {
  const wanted = new Map<string, WorkerAssignment>();
  for (const group of groups) {
    const count = group.holdsDatabases ? 1 : serversPerPort;
    for (let index = 0; index < count; index += 1) {
      wanted.set(`${group.port}/${index}`, {
        port: group.port,
        devices: [...group.devices],
        ringIp: group.ringIp,
        index,
      });
    }
  }
  return wanted;
}

function signatureOf(assignment: WorkerAssignment): string {
  return `${assignment.ringIp} ${assignment.devices.join(',')}`;
}

/** The parent process: forks, watches and reconciles the children. */
export class ServersPerPortParent {
  private readonly slots = new Map<string, Slot>();
  private readonly ips: Set<string>;
  private ringStamp = '';
  private groups: PortGroup[] = [];
  private ringTimer?: NodeJS.Timeout;
  /** Reconciles run one after another. */
  private work: Promise<void> = Promise.resolve();
  private stopping = false;
  private clampLogged = false;

  constructor(private readonly options: ServersPerPortOptions) {
    this.ips = localIps(options.bindIp);
  }

  /** Reads the rings and starts the children; throws ServersPerPortError on a bad layout. */
  start(): void {
    // Each child accepts on the shared socket itself (as Swift's forked workers do) instead of the
    // parent accepting every connection and passing it on.
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    cluster.on('exit', (worker, code, signal) => this.onExit(worker, code, signal));
    this.ringStamp = ringFilesStamp(this.options.swiftDir);
    this.groups = localPortGroups(this.options.swiftDir, this.ips);
    this.logLayout('servers_per_port: starting children');
    this.work = this.reconcile();
    this.ringTimer = setInterval(() => {
      this.work = this.work.then(() => this.checkRings());
    }, this.options.ringCheckIntervalMs);
  }

  /** Stops every child (SIGTERM, then SIGKILL past the drain time). */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.ringTimer);
    await this.work;
    await Promise.all([...this.slots.values()].map((slot) => this.stopSlot(slot)));
    this.slots.clear();
  }

  private logLayout(message: string): void {
    const { logger, serversPerPort } = this.options;
    if (this.groups.length === 0) {
      logger.error(
        { ips: [...this.ips], swiftDir: this.options.swiftDir },
        'servers_per_port: no device of this host in the rings; waiting for a ring that has some',
      );
      return;
    }
    logger.info({ ports: this.groups, serversPerPort }, message);
    const clamped = this.groups.filter((group) => group.holdsDatabases).map((group) => group.port);
    if (serversPerPort > 1 && clamped.length > 0 && !this.clampLogged) {
      this.clampLogged = true;
      logger.warn(
        { ports: clamped },
        'servers_per_port: one child for ports whose devices hold container or account databases (LevelDB allows one process)',
      );
    }
  }

  private async checkRings(): Promise<void> {
    if (this.stopping) return;
    const stamp = ringFilesStamp(this.options.swiftDir);
    if (stamp === this.ringStamp) return;
    this.ringStamp = stamp;
    let groups: PortGroup[];
    try {
      groups = localPortGroups(this.options.swiftDir, this.ips);
    } catch (error) {
      this.options.logger.error({ err: error }, 'servers_per_port: new rings not used; the children stay as they are');
      return;
    }
    if (JSON.stringify(groups) === JSON.stringify(this.groups)) return;
    this.groups = groups;
    this.logLayout('servers_per_port: the rings changed this host ports or devices; restarting the children concerned');
    await this.reconcile();
  }

  private async reconcile(): Promise<void> {
    const wanted = slotsWanted(this.groups, this.options.serversPerPort);
    const retiring: Promise<void>[] = [];
    for (const [key, slot] of this.slots) {
      const assignment = wanted.get(key);
      if (assignment === undefined || signatureOf(assignment) !== slot.signature) {
        this.slots.delete(key);
        retiring.push(this.stopSlot(slot));
      }
    }
    // A device moving between ports is released by its old child before its new child opens it.
    await Promise.all(retiring);
    for (const [key, assignment] of wanted) {
      if (this.stopping || this.slots.has(key)) continue;
      const slot: Slot = { key, assignment, signature: signatureOf(assignment), startedAtMs: 0, youngDeaths: 0 };
      this.slots.set(key, slot);
      this.fork(slot);
    }
  }

  private fork(slot: Slot): void {
    const env: Record<string, string> = {
      [WORKER_ASSIGNMENT_ENV]: JSON.stringify(slot.assignment),
      ...storageNodeThreadPoolEnv(process.env),
    };
    if (slot.assignment.index > 0) env.NEBULA_DEFAULT__DAEMONS = '';
    const worker = cluster.fork(env);
    slot.worker = worker;
    slot.startedAtMs = Date.now();
    slot.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    this.options.logger.info(
      { port: slot.assignment.port, index: slot.assignment.index, childPid: worker.process.pid },
      'servers_per_port: child started',
    );
  }

  private slotOf(worker: Worker): Slot | undefined {
    for (const slot of this.slots.values()) if (slot.worker === worker) return slot;
    return undefined;
  }

  private onExit(worker: Worker, code: number | null, signal: string | null): void {
    const slot = this.slotOf(worker);
    // A child stopped on purpose (stop, reconcile) is no longer in `slots` or we are stopping.
    if (slot === undefined || this.stopping) return;
    const livedMs = Date.now() - slot.startedAtMs;
    slot.youngDeaths = livedMs < CHILD_YOUNG_MS ? slot.youngDeaths + 1 : 0;
    const delayMs =
      slot.youngDeaths === 0 ? 0 : Math.min(RESTART_DELAY_MAX_MS, RESTART_DELAY_FIRST_MS * 2 ** (slot.youngDeaths - 1));
    this.options.logger.error(
      { port: slot.assignment.port, index: slot.assignment.index, childPid: worker.process.pid, code, signal, delayMs },
      'servers_per_port: child died; starting it again',
    );
    slot.worker = undefined;
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = undefined;
      if (!this.stopping && this.slots.get(slot.key) === slot) this.fork(slot);
    }, delayMs);
  }

  private async stopSlot(slot: Slot): Promise<void> {
    clearTimeout(slot.restartTimer);
    const { worker, exited } = slot;
    if (worker === undefined || exited === undefined || worker.isDead()) return;
    worker.process.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      exited.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), CHILD_STOP_TIMEOUT_MS);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.options.logger.warn(
        { port: slot.assignment.port, childPid: worker.process.pid },
        'child did not stop; killing it',
      );
      worker.process.kill('SIGKILL');
      await exited;
    }
  }
}
