/**
 * Where the daemons stand in the cluster: the three rings from `swift_dir`, and which ring
 * devices are this node's (ip or replication ip one of this host's addresses for `bind_ip`, and
 * port `bind_port`, as Swift's replicator matches `whataremyips()` and its port). Peers are the other primaries of a
 * partition; a partition found on a local device that is not one of its primaries is a handoff.
 */
import { existsSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import type { HashPathSecrets } from '../../common/hash-path.js';
import { Ring, type RingDevice, type RingNode } from '../../ring/ring.js';
import { isLocalIp, localIps } from '../local-ips.js';

export type RingKind = 'object' | 'container' | 'account';

export interface LocalDevice {
  /** The device as the ring knows it. */
  ring: RingDevice;
  devicePath: string;
}

export interface RingView {
  readonly ring: Ring;
  readonly kind: RingKind;
  localDevices(): LocalDevice[];
  isLocal(device: RingDevice): boolean;
  /** The primaries of `partition` that are not `self`. */
  peers(partition: number, self: RingDevice): RingNode[];
  isPrimary(partition: number, self: RingDevice): boolean;
}

export interface RingViewOptions {
  swiftDir: string;
  hashSecrets: Readonly<HashPathSecrets>;
  bindIp: string;
  bindPort: number;
  devices: string;
  reloadIntervalMs?: number;
}

export function ringPath(swiftDir: string, kind: RingKind): string {
  return join(isAbsolute(swiftDir) ? swiftDir : resolve(swiftDir), `${kind}.ring.gz`);
}

/** Loads the ring of `kind`, or returns undefined when its file is missing (a node without rings). */
export function loadRingView(kind: RingKind, options: RingViewOptions): RingView | undefined {
  const path = ringPath(options.swiftDir, kind);
  if (!existsSync(path)) return undefined;
  const ring = Ring.load(path, options.hashSecrets, { reloadIntervalMs: options.reloadIntervalMs ?? 15_000 });
  // With bind_ip 0.0.0.0 (or ::) the devices are found by every address of this host.
  const ips = localIps(options.bindIp);
  const isLocal = (device: RingDevice): boolean =>
    (isLocalIp(device.ip, ips) || isLocalIp(device.replication_ip, ips)) &&
    (device.port === options.bindPort || device.replication_port === options.bindPort);
  const sameDevice = (a: RingDevice, b: RingDevice): boolean => a.id === b.id;
  return {
    ring,
    kind,
    isLocal,
    localDevices(): LocalDevice[] {
      return ring.devices
        .filter(isLocal)
        .map((device) => ({ ring: device, devicePath: join(options.devices, device.device) }))
        .filter((local) => existsSync(local.devicePath));
    },
    peers(partition: number, self: RingDevice): RingNode[] {
      return ring.getNodes(partition).filter((node) => !sameDevice(node, self));
    },
    isPrimary(partition: number, self: RingDevice): boolean {
      return ring.getNodes(partition).some((node) => sameDevice(node, self));
    },
  };
}
