/**
 * A tiny stand-in for the storage node's router, for tests of the container and account servers
 * over real HTTP: parses `/<device>/<partition>/<account>[/<container>[/<object>]]`, honours
 * X-Backend-Server-Type, and hands the request to the server the path names. Devices live under
 * a temp dir; the listener is on 127.0.0.1, port 0.
 */
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Koa from 'koa';
import { DEFAULT_CONSTRAINTS, type Constraints } from '../../../../common/constraints.js';
import { createLogger } from '../../../../common/log.js';
import { createAccountServer, type AccountServer } from '../../../../storage-node/account/server.js';
import { createContainerServer, type ContainerServer } from '../../../../storage-node/container/server.js';
import { DatabaseRegistry } from '../../../../storage-node/db/registry.js';

export interface DbServersApp {
  url: string;
  port: number;
  root: string;
  devicesPath: string;
  container: ContainerServer;
  account: AccountServer;
  databases: DatabaseRegistry;
  close(): Promise<void>;
}

export async function startDbServersApp(
  options: {
    devices?: string[];
    constraints?: Readonly<Constraints>;
    debounceMs?: number;
    root?: string;
    /** Default 0: any free port. */
    port?: number;
  } = {},
): Promise<DbServersApp> {
  const root = options.root ?? (await mkdtemp(join(tmpdir(), 'nebula-db-')));
  const devicesPath = join(root, 'devices');
  for (const device of options.devices ?? ['sda']) await mkdir(join(devicesPath, device), { recursive: true });
  const logger = createLogger('test-db', 'silent');
  const databases = new DatabaseRegistry({ logger });
  const constraints = options.constraints ?? DEFAULT_CONSTRAINTS;
  const container = createContainerServer({
    logger,
    constraints,
    databases,
    reclaimAgeSeconds: 7 * 24 * 3600,
    accountUpdateDebounceMs: options.debounceMs ?? 10,
    // Generous: the machine running the tests may be heavily loaded; a refused port fails at once anyway.
    connTimeoutMs: 2000,
    nodeTimeoutMs: 5000,
    pendingRetryIntervalMs: 0,
  });
  const account = createAccountServer({ logger, constraints, databases, reclaimAgeSeconds: 7 * 24 * 3600 });
  const app = new Koa();
  app.use(async (ctx) => {
    const segments = ctx.path.split('/').slice(1);
    const [device = '', partitionText = '', accountName = ''] = segments;
    const decode = (value: string | undefined): string | undefined =>
      value === undefined ? undefined : decodeURIComponent(value);
    const containerName = decode(segments[3]);
    const objectName = segments.length > 4 ? decode(segments.slice(4).join('/')) : undefined;
    const target = {
      device,
      devicePath: join(devicesPath, device),
      partition: Number(partitionText),
      account: decode(accountName) ?? '',
      container: containerName,
      object: objectName,
    };
    const serverType = ctx.get('x-backend-server-type').toLowerCase();
    const kind =
      serverType !== '' ? serverType : objectName !== undefined ? 'object' : containerName ? 'container' : 'account';
    if (kind === 'container') await container.handle(ctx, target);
    else if (kind === 'account') await account.handle(ctx, target);
    else ctx.status = 501;
  });
  const server: Server = await new Promise((resolve) => {
    const listening = app.listen(options.port ?? 0, '127.0.0.1', () => resolve(listening));
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    root,
    devicesPath,
    container,
    account,
    databases,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await container.close();
      await account.close();
      if (options.root === undefined) await rm(root, { recursive: true, force: true });
    },
  };
}
