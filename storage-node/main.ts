/**
 * The storage node process: `node dist/storage-node/main.js <storage-node.conf>`.
 *
 * Loads the config (and swift.conf), removes temp files a crash left in each device's `tmp/`,
 * starts the object, container and account servers behind one router on `bind_ip:bind_port`,
 * prints one line `listening <ip>:<port>` on stdout once it accepts connections (port 0 picks a
 * free port), and on SIGTERM/SIGINT stops accepting, lets running requests finish (up to 10 s),
 * closes the servers and exits 0.
 *
 * With `servers_per_port` > 0 this process is only a parent (servers-per-port.ts): it starts one
 * child per ring port of this host, and each child is this same program serving its assigned
 * devices on its port (other devices: 507), printing its own `listening` line, draining as above.
 */
import { readdir } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type Koa from 'koa';
import { join } from 'node:path';
import { createLogger, type Logger } from '../common/log.js';
import { tolerateClosedStdio } from '../common/stdio.js';
import { createAccountServer } from './account/server.js';
import { createApp } from './app.js';
import { ASYNC_TEMP_PREFIX } from './async-pending.js';
import { loadStorageNodeConfig, type StorageNodeConfig } from './config.js';
import { createContainerServer } from './container/server.js';
import { attachDaemons } from './daemons/attach.js';
import { daemonsConfigFrom } from './daemons/config.js';
import { reconMiddleware } from './daemons/recon.js';
import { DatabaseRegistry } from './db/registry.js';
import { cleanTempFiles, DiskFileManager, OBJECT_TEMP_PREFIX } from './diskfile/diskfile.js';
import { markAwaitingContinue } from './expect-continue.js';
import { createObjectServer } from './object/server.js';
import { isWildcardIp } from './local-ips.js';
import { ServersPerPortParent, workerAssignmentFrom } from './servers-per-port.js';
import type { ServerType, StorageServer } from './server-types.js';

const DRAIN_TIMEOUT_MS = 10_000;

async function cleanAllTempFiles(config: StorageNodeConfig, logger: Logger): Promise<void> {
  let devices: string[];
  try {
    devices = await readdir(config.devices);
  } catch (error) {
    logger.warn({ err: error, devices: config.devices }, 'cannot list devices');
    return;
  }
  for (const device of devices) {
    if (config.servedDevices !== undefined && !config.servedDevices.has(device)) continue;
    const removed = await cleanTempFiles(join(config.devices, device), [OBJECT_TEMP_PREFIX, ASYNC_TEMP_PREFIX]).catch(
      () => 0,
    );
    if (removed > 0) logger.info({ device, removed }, 'removed temp files left by a crash');
  }
}

/** The servers_per_port parent: no server of its own, children until SIGTERM/SIGINT. */
function runParent(config: StorageNodeConfig, logger: Logger): void {
  const parent = new ServersPerPortParent({
    swiftDir: config.swiftDir,
    bindIp: config.bindIp,
    serversPerPort: config.serversPerPort,
    ringCheckIntervalMs: config.ringCheckIntervalMs,
    logger,
  });
  parent.start();
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping the children');
    void parent.stop().then(() => {
      logger.info('stopped');
      process.exit(0);
    });
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

async function main(): Promise<void> {
  tolerateClosedStdio();
  const configPath = process.argv[2] ?? '/etc/nebula/storage-node.conf';
  const fileConfig = loadStorageNodeConfig(configPath);
  const logger = createLogger('storage-node', process.env.NEBULA_LOG_LEVEL ?? fileConfig.logLevel);
  const assignment = workerAssignmentFrom(process.env);
  if (assignment === undefined && fileConfig.serversPerPort > 0) {
    runParent(fileConfig, logger);
    return;
  }
  const config: StorageNodeConfig =
    assignment === undefined
      ? fileConfig
      : Object.freeze({
          ...fileConfig,
          bindPort: assignment.port,
          serversPerPort: 0,
          servedDevices: new Set(assignment.devices),
        });
  await cleanAllTempFiles(config, logger);

  const diskfiles = new DiskFileManager({
    hashSecrets: config.swift.hashSecrets,
    fsync: config.object.fsync,
    reclaimAgeSeconds: config.object.reclaimAgeSeconds,
    verifyBeforeSendBytesMax: config.object.verifyBeforeSendBytesMax,
    diskChunkSize: config.object.diskChunkSize,
    keepCacheSize: config.object.keepCacheSize,
  });
  // One LevelDB database per device, shared by the container and account servers.
  const databases = new DatabaseRegistry({ logger: logger.child({ component: 'db' }) });
  const servers: Record<ServerType, StorageServer> = {
    object: createObjectServer({
      diskfiles,
      constraints: config.swift.constraints,
      logger: logger.child({ server: 'object' }),
      clientTimeoutMs: config.object.clientTimeoutMs,
      containerUpdates: {
        connTimeoutMs: config.object.connTimeoutMs,
        nodeTimeoutMs: config.object.nodeTimeoutMs,
        containerUpdateTimeoutMs: config.object.containerUpdateTimeoutMs,
        fsync: config.object.fsync,
      },
    }),
    container: createContainerServer({
      logger: logger.child({ server: 'container' }),
      constraints: config.swift.constraints,
      databases,
      reclaimAgeSeconds: config.object.reclaimAgeSeconds,
      connTimeoutMs: config.object.connTimeoutMs,
      nodeTimeoutMs: config.object.nodeTimeoutMs,
    }),
    account: createAccountServer({
      logger: logger.child({ server: 'account' }),
      constraints: config.swift.constraints,
      databases,
      reclaimAgeSeconds: config.object.reclaimAgeSeconds,
    }),
  };
  // The port is known once listening (bind_port 0 in tests), so the recon path follows from it.
  const reconState: { serve?: (ctx: Koa.Context, next: Koa.Next) => Promise<void> } = {};
  const recon = (ctx: Koa.Context, next: Koa.Next): Promise<void> =>
    reconState.serve === undefined ? next() : reconState.serve(ctx, next);
  const app = createApp(config, { logger, servers, preRouting: [recon] });
  const handler = app.callback();
  const server = createServer(
    {
      maxHeaderSize: Math.max(65536, config.swift.constraints.max_header_size * 8),
      // Node's 16 KiB default makes a large body cross the event loop in small slices.
      highWaterMark: 1024 * 1024,
    },
    (request: IncomingMessage, response: ServerResponse) => void handler(request, response),
  );
  server.on('checkContinue', (request: IncomingMessage, response: ServerResponse) => {
    markAwaitingContinue(request);
    void handler(request, response);
  });
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    // Swift (eventlet) answers an oversized header block with 400, not 431.
    const reason = error.code === 'HPE_HEADER_OVERFLOW' ? 'Headers Too Large' : 'Bad Request';
    socket.end(`HTTP/1.1 400 ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  });
  server.keepAliveTimeout = 30_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.bindPort, config.bindIp, () => resolve());
  });
  const address = server.address() as AddressInfo;
  // The daemons wrap the servers in place (REPLICATE verb) and start their passes. They find their
  // devices in the rings by ip and port: a child listening on a wildcard gives its devices' ring ip.
  const daemonsNode =
    assignment !== undefined && isWildcardIp(config.bindIp) ? { ...config, bindIp: assignment.ringIp } : config;
  await attachDaemons(servers, { config: daemonsNode, logger, diskfiles, databases, bindPort: address.port });
  reconState.serve = reconMiddleware(daemonsConfigFrom({ ...config, bindPort: address.port }).reconCachePath);
  logger.info(
    {
      ip: address.address,
      port: address.port,
      devices: config.devices,
      // What libuv read at start (common/thread-pool.ts: only the spawning process can set it).
      uvThreadpoolSize: process.env.UV_THREADPOOL_SIZE ?? 'default',
    },
    'storage node started',
  );
  process.stdout.write(`listening ${address.address}:${address.port}\n`);

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'draining');
    const force = setTimeout(() => {
      logger.warn('drain timed out; closing connections');
      server.closeAllConnections();
    }, DRAIN_TIMEOUT_MS);
    force.unref();
    server.close(() => {
      void Promise.allSettled(Object.values(servers).map((s) => s.close())).then(() => {
        clearTimeout(force);
        logger.info('stopped');
        process.exit(0);
      });
    });
    server.closeIdleConnections();
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

main().catch((error: unknown) => {
  process.stderr.write(`storage-node: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
