/**
 * Runs one proxy HTTP server from a ProxyConfig: loads the rings, builds the app and listens.
 * `startProxyServer` resolves once it accepts connections; `close()` stops accepting, lets
 * running requests finish (bounded) and releases sockets and ring timers. Used by main.ts (each
 * worker) and by in-process tests.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../common/log.js';
import { createApp, type AppDeps, type ProxyApp } from './app.js';
import type { ProxyConfig } from './config.js';
import { loadRings } from './rings.js';

export interface RunningProxyServer {
  server: Server;
  proxy: ProxyApp;
  port: number;
  close(drainTimeoutMs?: number): Promise<void>;
}

const DEFAULT_DRAIN_TIMEOUT_MS = 10_000;
const CLIENT_SOCKET_BUFFER_BYTES = 1024 * 1024;

export async function startProxyServer(
  config: ProxyConfig,
  log: Logger,
  stages?: AppDeps['stages'],
): Promise<RunningProxyServer> {
  const rings = loadRings(config.swiftDir, config.swift.hashSecrets, config.ringCheckIntervalMs, (error) =>
    log.error({ err: error }, 'ring reload failed; keeping the previous ring'),
  );
  const proxy = createApp(config, { rings, log, stages });
  const handle = proxy.app.callback();
  // Koa's handler settles its own errors (catch_errors and app 'error'): nothing to await here.
  // Client bodies and responses buffer up to 1 MiB before pushing back (Node's default, 16 KiB,
  // is a quarter of one network chunk): large transfers keep the pipe full.
  const server = createServer({ highWaterMark: CLIENT_SOCKET_BUFFER_BYTES }, (req, res) => {
    void handle(req, res);
  });
  // Clients may pause between chunks of an upload up to client_timeout.
  server.requestTimeout = 0;
  server.headersTimeout = Math.max(config.clientTimeoutMs, 1000);
  server.keepAliveTimeout = 75_000;
  server.maxHeadersCount = 200;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.bindPort, config.bindIp, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    proxy,
    port,
    async close(drainTimeoutMs = DEFAULT_DRAIN_TIMEOUT_MS) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const timer = setTimeout(() => server.closeAllConnections(), drainTimeoutMs);
      await closed;
      clearTimeout(timer);
      rings.close();
      proxy.close();
    },
  };
}
