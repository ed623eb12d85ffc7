/**
 * The storage node's hook into the daemons, one call in storage-node/main.ts:
 *
 *     await attachDaemons(servers, { config, logger, diskfiles, shared });
 *
 * It (1) routes the REPLICATE verb (a POST marked by X-Backend-Replicate), whatever the path depth, to the replication endpoints
 * (object-replication.ts) by wrapping each server's handle(), and (2) starts the daemons listed
 * in `[DEFAULT] daemons` inside this process, each a pass every `interval` seconds of its
 * section; the servers' close() stops them (waiting for a running pass up to 10 s).
 */
import type { Context } from 'koa';
import type { Logger } from '../../common/log.js';
import type { StorageNodeConfig } from '../config.js';
import type { DiskFileManager } from '../diskfile/diskfile.js';
import type { RequestTarget, ServerType, StorageServer } from '../server-types.js';
import { daemonsConfigFrom, type DaemonsConfig } from './config.js';
import { runForever } from './daemon.js';
import { createDaemon } from './factory.js';
import { HttpError } from '../../common/errors.js';
import { DatabaseRegistry } from '../db/registry.js';
import type { PassSummary } from './daemon.js';
import { DbReplicator, handleDbReplicate, type DbSpace } from './db-replication.js';
import { handleObjectReplicate, isReplicateRequest } from './object-replication.js';

export interface AttachOptions {
  config: StorageNodeConfig;
  logger: Logger;
  diskfiles: DiskFileManager;
  /** The port actually bound, when known (bind_port 0 in tests); else bind_port. */
  bindPort?: number;
  /** The process's database registry (or a promise of it), for the container and account replicators. */
  databases?: unknown;
  /** Or an object whose `databases` property will hold it (storage-node/main.ts's `shared`). */
  shared?: object;
}

const STOP_WAIT_MS = 10_000;

export function replicateHandler(
  config: DaemonsConfig,
  diskfiles: DiskFileManager,
  registry: () => Promise<DatabaseRegistry | undefined>,
  logger: Logger,
): (ctx: Context, target: RequestTarget) => Promise<void> {
  const { node } = config;
  const options = {
    diskfiles,
    reclaimAgeSeconds: config.objectReplicator.reclaimAgeSeconds,
    rehashIntervalMs: config.objectReplicator.rehashIntervalMs,
    maxFileSize: node.swift.constraints.max_file_size,
    clientTimeoutMs: node.object.clientTimeoutMs,
  };
  const passes = new Map<DbSpace, DbReplicator>();
  const runPass = async (space: DbSpace, devicePath: string): Promise<PassSummary> => {
    let replicator = passes.get(space);
    if (replicator === undefined) {
      const daemon = createDaemon(space === 'container' ? 'container-replicator' : 'account-replicator', {
        config,
        logger,
        registry,
      });
      if (!(daemon instanceof DbReplicator))
        throw new HttpError(501, `no ${space} ring here`, { code: 'NotImplemented' });
      replicator = daemon;
      passes.set(space, replicator);
    }
    return replicator.runDevice(devicePath);
  };
  const dbOptions = { registry, runPass };
  return async (ctx, target) => {
    if (await handleDbReplicate(ctx, target, dbOptions)) return;
    await handleObjectReplicate(ctx, target, options);
  };
}

/** Finds the registry however the node passed it: itself, a promise, or `shared.databases`. */
export function registryResolver(
  options: Pick<AttachOptions, 'databases' | 'shared'>,
): () => Promise<DatabaseRegistry | undefined> {
  return async () => {
    const candidate: unknown = await (options.databases ??
      (options.shared as { databases?: unknown } | undefined)?.databases);
    return candidate instanceof DatabaseRegistry ? candidate : undefined;
  };
}

/** Starts the configured in-process daemons; returns a stop function. */
export function startDaemons(
  config: DaemonsConfig,
  logger: Logger,
  bindPort?: number,
  registry?: () => Promise<DatabaseRegistry | undefined>,
): () => Promise<void> {
  const controller = new AbortController();
  const running: Promise<void>[] = [];
  for (const name of config.inProcess) {
    const daemon = createDaemon(name, { config, logger, bindPort, registry });
    if (daemon === undefined) {
      logger.warn({ daemon: name }, 'daemon not started: its ring or code is missing');
      continue;
    }
    const intervalMs = {
      'object-replicator': config.objectReplicator.intervalMs,
      'object-auditor': config.auditor.intervalMs,
      'object-updater': config.updater.intervalMs,
      'object-expirer': config.expirer.intervalMs,
      'container-replicator': config.containerReplicator.intervalMs,
      'account-replicator': config.accountReplicator.intervalMs,
    }[name];
    running.push(runForever(daemon, intervalMs, logger.child({ daemon: name }), controller.signal));
  }
  if (running.length > 0) logger.info({ daemons: config.inProcess }, 'daemons started in process');
  let stopped: Promise<void> | undefined;
  return () => {
    stopped ??= (async () => {
      controller.abort();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled(running),
        new Promise((resolve) => {
          timer = setTimeout(resolve, STOP_WAIT_MS);
        }),
      ]);
      clearTimeout(timer);
    })();
    return stopped;
  };
}

/** Wraps `servers` in place: REPLICATE goes to the replication endpoints; close() stops the daemons. */
export async function attachDaemons(servers: Record<ServerType, StorageServer>, options: AttachOptions): Promise<void> {
  const config = daemonsConfigFrom(options.config);
  const registry = registryResolver(options);
  const logger = options.logger.child({ component: 'daemons' });
  const replicate = replicateHandler(config, options.diskfiles, registry, logger);
  const stop = startDaemons(config, logger, options.bindPort, registry);
  for (const type of ['object', 'container', 'account'] as const) {
    const inner = servers[type];
    servers[type] = {
      handle: (ctx, target) => (isReplicateRequest(ctx) ? replicate(ctx, target) : inner.handle(ctx, target)),
      close: async () => {
        await stop();
        await inner.close();
      },
    };
  }
  return Promise.resolve();
}
