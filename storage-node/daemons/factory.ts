/**
 * Builds the daemons by name from the storage node's config, for both ways of running them:
 * inside the storage node process (attach.ts) and alone (main.ts).
 */
import type { Logger } from '../../common/log.js';
import { DiskFileManager } from '../diskfile/diskfile.js';
import { ObjectAuditor } from './auditor.js';
import type { DaemonName, DaemonsConfig } from './config.js';
import type { Daemon } from './daemon.js';
import { ObjectExpirer } from './expirer.js';
import { ObjectReplicator } from './object-replicator.js';
import { loadRingView, type RingKind, type RingView } from './ring-view.js';
import { ObjectUpdater } from './updater.js';

export interface DaemonContext {
  config: DaemonsConfig;
  logger: Logger;
  /** The port this node really listens on (bind_port 0 is resolved only after listen). */
  bindPort?: number;
}

export function diskFileManagerFor(config: DaemonsConfig): DiskFileManager {
  const { node } = config;
  return new DiskFileManager({
    hashSecrets: node.swift.hashSecrets,
    fsync: node.object.fsync,
    reclaimAgeSeconds: node.object.reclaimAgeSeconds,
    verifyBeforeSendBytesMax: node.object.verifyBeforeSendBytesMax,
    diskChunkSize: node.object.diskChunkSize,
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
    case 'account-replicator':
      return undefined; // see db-replicator.ts (not yet)
  }
}
