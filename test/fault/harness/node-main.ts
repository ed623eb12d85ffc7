/**
 * Test-only storage node entry point: the same servers as storage-node/main.ts, with the daemons'
 * hook (attachDaemons) applied, for the fault tests while that one-line hook is not yet in
 * main.ts. Usage: `node dist/test/fault/harness/node-main.js <storage-node.conf>`; prints
 * `listening <ip>:<port>`, drains on SIGTERM.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger } from '../../../common/log.js';
import { createApp } from '../../../storage-node/app.js';
import { loadStorageNodeConfig } from '../../../storage-node/config.js';
import { createAccountServer } from '../../../storage-node/account/server.js';
import { createContainerServer } from '../../../storage-node/container/server.js';
import { attachDaemons } from '../../../storage-node/daemons/attach.js';
import { reconMiddleware } from '../../../storage-node/daemons/recon.js';
import { daemonsConfigFrom } from '../../../storage-node/daemons/config.js';
import { DatabaseRegistry } from '../../../storage-node/db/registry.js';
import { DiskFileManager } from '../../../storage-node/diskfile/diskfile.js';
import { markAwaitingContinue } from '../../../storage-node/expect-continue.js';
import { createObjectServer } from '../../../storage-node/object/server.js';
import type { ServerType, StorageServer } from '../../../storage-node/server-types.js';

async function main(): Promise<void> {
  const config = loadStorageNodeConfig(process.argv[2] ?? '');
  const logger = createLogger('storage-node', process.env.NEBULA_LOG_LEVEL ?? config.logLevel);
  const diskfiles = new DiskFileManager({
    hashSecrets: config.swift.hashSecrets,
    fsync: config.object.fsync,
    reclaimAgeSeconds: config.object.reclaimAgeSeconds,
    verifyBeforeSendBytesMax: config.object.verifyBeforeSendBytesMax,
    diskChunkSize: config.object.diskChunkSize,
  });
  const databases = new DatabaseRegistry({ logger });
  const servers: Record<ServerType, StorageServer> = {
    object: createObjectServer({
      diskfiles,
      constraints: config.swift.constraints,
      logger,
      clientTimeoutMs: config.object.clientTimeoutMs,
      containerUpdates: {
        connTimeoutMs: config.object.connTimeoutMs,
        nodeTimeoutMs: config.object.nodeTimeoutMs,
        containerUpdateTimeoutMs: config.object.containerUpdateTimeoutMs,
        fsync: config.object.fsync,
      },
    }),
    container: createContainerServer({
      logger,
      constraints: config.swift.constraints,
      databases,
      reclaimAgeSeconds: config.object.reclaimAgeSeconds,
      connTimeoutMs: config.object.connTimeoutMs,
      nodeTimeoutMs: config.object.nodeTimeoutMs,
    }),
    account: createAccountServer({
      logger,
      constraints: config.swift.constraints,
      databases,
      reclaimAgeSeconds: config.object.reclaimAgeSeconds,
    }),
  };
  await attachDaemons(servers, { config, logger, diskfiles, databases });
  const app = createApp(config, { logger, servers });
  app.middleware.unshift(reconMiddleware(daemonsConfigFrom(config).reconCachePath));
  const handler = app.callback();
  const server = createServer((request, response) => void handler(request, response));
  server.on('checkContinue', (request, response) => {
    markAwaitingContinue(request);
    void handler(request, response);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.bindPort, config.bindIp, () => resolve());
  });
  const address = server.address() as AddressInfo;
  process.stdout.write(`listening ${address.address}:${address.port}\n`);
  const stop = (): void => {
    server.close(() => {
      void Promise.allSettled(Object.values(servers).map((s) => s.close())).then(() => process.exit(0));
    });
    server.closeAllConnections();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`node-main: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
