/**
 * The storage node process: `node dist/storage-node/main.js <storage-node.conf>`.
 *
 * Loads the config (and swift.conf), removes temp files a crash left in each device's `tmp/`,
 * starts the object, container and account servers behind one router on `bind_ip:bind_port`,
 * prints one line `listening <ip>:<port>` on stdout once it accepts connections (port 0 picks a
 * free port), and on SIGTERM/SIGINT stops accepting, lets running requests finish (up to 10 s),
 * closes the servers and exits 0.
 */
import { readdir } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createLogger, type Logger } from '../common/log.js';
import { createApp, notImplementedServer } from './app.js';
import { ASYNC_TEMP_PREFIX } from './async-pending.js';
import { loadStorageNodeConfig, type StorageNodeConfig } from './config.js';
import { cleanTempFiles, DiskFileManager, OBJECT_TEMP_PREFIX } from './diskfile/diskfile.js';
import { markAwaitingContinue } from './expect-continue.js';
import { createObjectServer } from './object/server.js';
import type { ServerType, StorageServer } from './server-types.js';

const DRAIN_TIMEOUT_MS = 10_000;

// Every PUT holds a libuv thread through its fsyncs; with the default 4 threads, 4 slow fsyncs stall
// every other file operation. More threads let the kernel batch concurrent fsyncs into one journal
// commit. Set before the first file operation (the pool starts lazily); an operator's value wins.
process.env.UV_THREADPOOL_SIZE ??= '64';

/**
 * The container or account server, loaded by name so this process runs (answering 501) while that
 * code is missing or broken. Both share one per-device database registry (storage-node/db/).
 */
async function loadOptionalServer(
  type: 'container' | 'account',
  config: StorageNodeConfig,
  logger: Logger,
  shared: { databases?: Promise<unknown> },
): Promise<StorageServer> {
  const factoryName = type === 'container' ? 'createContainerServer' : 'createAccountServer';
  try {
    const module = (await import(new URL(`./${type}/server.js`, import.meta.url).href)) as Record<string, unknown>;
    const factory = module[factoryName];
    if (typeof factory !== 'function') throw new Error(`${factoryName} is not exported`);
    shared.databases ??= import(new URL('./db/registry.js', import.meta.url).href).then(
      (registry: Record<string, unknown>) => {
        const Registry = registry.DatabaseRegistry as new (options: { logger: Logger }) => unknown;
        return new Registry({ logger: logger.child({ component: 'db' }) });
      },
    );
    const options = {
      logger: logger.child({ server: type }),
      constraints: config.swift.constraints,
      databases: await shared.databases,
      reclaimAgeSeconds: config.object.reclaimAgeSeconds,
      connTimeoutMs: config.object.connTimeoutMs,
      nodeTimeoutMs: config.object.nodeTimeoutMs,
      devices: config.devices,
      mountCheck: config.mountCheck,
      hashSecrets: config.swift.hashSecrets,
      ini: config.ini,
    };
    return await (factory as (options: unknown) => StorageServer | Promise<StorageServer>)(options);
  } catch (error) {
    logger.error({ err: error }, `${type} server not available: answering 501`);
    return notImplementedServer(type);
  }
}

async function cleanAllTempFiles(config: StorageNodeConfig, logger: Logger): Promise<void> {
  let devices: string[];
  try {
    devices = await readdir(config.devices);
  } catch (error) {
    logger.warn({ err: error, devices: config.devices }, 'cannot list devices');
    return;
  }
  for (const device of devices) {
    const removed = await cleanTempFiles(join(config.devices, device), [OBJECT_TEMP_PREFIX, ASYNC_TEMP_PREFIX]).catch(
      () => 0,
    );
    if (removed > 0) logger.info({ device, removed }, 'removed temp files left by a crash');
  }
}

async function main(): Promise<void> {
  const configPath = process.argv[2] ?? '/etc/nebula/storage-node.conf';
  const config = loadStorageNodeConfig(configPath);
  const logger = createLogger('storage-node', process.env.NEBULA_LOG_LEVEL ?? config.logLevel);
  await cleanAllTempFiles(config, logger);

  const diskfiles = new DiskFileManager({
    hashSecrets: config.swift.hashSecrets,
    fsync: config.object.fsync,
    reclaimAgeSeconds: config.object.reclaimAgeSeconds,
    verifyBeforeSendBytesMax: config.object.verifyBeforeSendBytesMax,
    diskChunkSize: config.object.diskChunkSize,
  });
  const shared = {};
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
    container: await loadOptionalServer('container', config, logger, shared),
    account: await loadOptionalServer('account', config, logger, shared),
  };
  const app = createApp(config, { logger, servers });
  const handler = app.callback();
  const server = createServer(
    { maxHeaderSize: Math.max(65536, config.swift.constraints.max_header_size * 8) },
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
  logger.info({ ip: address.address, port: address.port, devices: config.devices }, 'storage node started');
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
