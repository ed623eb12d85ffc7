/**
 * Builds the daemons by name from the storage node's config, for both ways of running them:
 * inside the storage node process (attach.ts) and alone (main.ts).
 */
import type { Logger } from '../../common/log.js';
import { DiskFileManager } from '../diskfile/diskfile.js';
import type { DatabaseRegistry } from '../db/registry.js';
import { ObjectAuditor } from './auditor.js';
import type { DaemonName, DaemonsConfig } from './config.js';
import type { Daemon, PassSummary } from './daemon.js';
import { DbReplicator, type DbSpace } from './db-replication.js';
import { callPeer, encodePath, isSuccess } from './http-client.js';
import { REPLICATE_REQUEST } from './object-replication.js';
import type { ReplicatorConfig } from './config.js';
import { ObjectExpirer } from './expirer.js';
import { ObjectReplicator } from './object-replicator.js';
import { loadRingView, type RingKind, type RingView } from './ring-view.js';
import { ObjectUpdater } from './updater.js';

export interface DaemonContext {
  config: DaemonsConfig;
  logger: Logger;
  /** The port this node really listens on (bind_port 0 is resolved only after listen). */
  bindPort?: number;
  /**
   * The storage node's database registry, for the container and account replicators when they
   * run in its process. Without it (a standalone run) they ask the local node to run the pass
   * (LevelDB admits one process per database).
   */
  registry?: () => Promise<DatabaseRegistry | undefined>;
}

export function diskFileManagerFor(config: DaemonsConfig): DiskFileManager {
  const { node } = config;
  return new DiskFileManager({
    hashSecrets: node.swift.hashSecrets,
    fsync: node.object.fsync,
    reclaimAgeSeconds: node.object.reclaimAgeSeconds,
    verifyBeforeSendBytesMax: node.object.verifyBeforeSendBytesMax,
    diskChunkSize: node.object.diskChunkSize,
    keepCacheSize: node.object.keepCacheSize,
  });
}

export function ringViewFor(kind: RingKind, context: DaemonContext): RingView | undefined {
  const { node } = context.config;
  return loadRingView(kind, {
    swiftDir: context.config.swiftDir,
    hashSecrets: node.swift.hashSecrets,
    bindIp: node.bindIp,
    bindPort: context.bindPort ?? node.bindPort,
    devices: node.devices,
  });
}

/** The daemon, or undefined when what it needs (a ring) is missing on this node. */
export function createDaemon(name: DaemonName, context: DaemonContext): Daemon | undefined {
  const { config } = context;
  const logger = context.logger.child({ daemon: name });
  const objectRing = (): RingView | undefined => ringViewFor('object', context);
  switch (name) {
    case 'object-replicator': {
      const ring = objectRing();
      return (
        ring &&
        new ObjectReplicator({ config: config.objectReplicator, ring, logger, reconCachePath: config.reconCachePath })
      );
    }
    case 'object-auditor': {
      const ring = objectRing();
      return ring && new ObjectAuditor({ config: config.auditor, ring, logger, reconCachePath: config.reconCachePath });
    }
    case 'object-updater': {
      const ring = objectRing();
      return ring && new ObjectUpdater({ config: config.updater, ring, logger, reconCachePath: config.reconCachePath });
    }
    case 'object-expirer': {
      const ring = objectRing();
      const containerRing = ringViewFor('container', context);
      return (
        ring &&
        containerRing &&
        new ObjectExpirer({
          config: config.expirer,
          ring,
          containerRing,
          logger,
          reconCachePath: config.reconCachePath,
          bindIp: config.node.bindIp,
          bindPort: context.bindPort ?? config.node.bindPort,
        })
      );
    }
    case 'container-replicator':
    case 'account-replicator': {
      const space: DbSpace = name === 'container-replicator' ? 'container' : 'account';
      const ring = ringViewFor(space, context);
      if (ring === undefined) return undefined;
      const replicatorConfig = space === 'container' ? config.containerReplicator : config.accountReplicator;
      if (context.registry !== undefined) {
        return new DbReplicator({
          space,
          config: replicatorConfig,
          ring,
          registry: context.registry,
          logger,
          reconCachePath: config.reconCachePath,
        });
      }
      return new RemoteDbPass(
        space,
        ring,
        replicatorConfig,
        config.node.bindIp,
        context.bindPort ?? config.node.bindPort,
      );
    }
  }
}

/** A standalone container/account replicator run: the local node runs the pass for each device. */
class RemoteDbPass implements Daemon {
  readonly name: string;

  constructor(
    private readonly space: DbSpace,
    private readonly ring: RingView,
    private readonly config: ReplicatorConfig,
    private readonly ip: string,
    private readonly port: number,
  ) {
    this.name = `${space}-replicator`;
  }

  async runOnce(): Promise<PassSummary> {
    const total: Record<string, number> = {};
    for (const device of this.ring.localDevices()) {
      const response = await callPeer({
        ip: this.ip,
        port: this.port,
        method: REPLICATE_REQUEST.method,
        path: `${encodePath(device.ring.device, 0, 'db-pass')}?space=${this.space}`,
        headers: { ...REPLICATE_REQUEST.headers },
        connTimeoutMs: this.config.connTimeoutMs,
        // A whole pass over the device runs behind this one call.
        nodeTimeoutMs: Math.max(this.config.nodeTimeoutMs, 300_000),
      });
      if (!isSuccess(response)) {
        throw new Error(
          `local node did not run the ${this.name} pass on ${device.ring.device}: ${response.status} ${response.error?.message ?? ''}`,
        );
      }
      const summary = JSON.parse(response.body.toString('utf8')) as Record<string, unknown>;
      for (const [key, value] of Object.entries(summary)) {
        if (typeof value === 'number') total[key] = (total[key] ?? 0) + value;
      }
    }
    return total;
  }
}
