/**
 * The proxy process: `node dist/proxy/main.js <proxy-server.conf>` (the same code on real hosts
 * and in the all-in-one). With `workers = N` (N > 0) a primary process forks N workers through
 * node:cluster, all accepting on the one port, and restarts a worker that dies (bounded); with
 * `workers = 0` the process serves by itself. Prints `listening <ip>:<port>` on stdout once
 * serving (port 0 picks a free port). SIGTERM/SIGINT: stop accepting, finish running requests
 * (up to 10 s), exit 0.
 */
import cluster from 'node:cluster';
import { createLogger } from '../common/log.js';
import { tolerateClosedStdio } from '../common/stdio.js';
import { loadProxyConfig } from './config.js';
import { startProxyServer } from './server.js';

const RESTARTS_MAX = 20;
const STOP_TIMEOUT_MS = 12_000;

async function runWorker(configPath: string): Promise<void> {
  const config = loadProxyConfig(configPath);
  const log = createLogger('proxy-server', config.logLevel);
  const running = await startProxyServer(config, log);
  if (cluster.isPrimary) process.stdout.write(`listening ${config.bindIp}:${running.port}\n`);
  else process.send?.({ listening: running.port });
  log.info({ port: running.port }, 'proxy server listening');
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    running.close().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: error }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // A worker whose primary died has no one to stop it: leave with it.
  if (cluster.isWorker) process.on('disconnect', stop);
}

async function runPrimary(configPath: string, workers: number): Promise<void> {
  const config = loadProxyConfig(configPath);
  const log = createLogger('proxy-server', config.logLevel);
  let announced = false;
  // Workers all listen on the configured port through the primary's one handle; with port 0,
  // node:cluster gives every worker the same random port.
  const fork = (): void => {
    const worker = cluster.fork();
    worker.on('message', (message: { listening?: number }) => {
      if (typeof message.listening === 'number' && !announced) {
        announced = true;
        process.stdout.write(`listening ${config.bindIp}:${message.listening}\n`);
      }
    });
  };
  let restarts = 0;
  let stopping = false;
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    log.error({ pid: worker.process.pid, code, signal }, 'proxy worker died');
    if (restarts >= RESTARTS_MAX) {
      log.error('too many worker restarts; exiting');
      process.exit(1);
    }
    restarts += 1;
    fork();
  });
  for (let index = 0; index < workers; index += 1) fork();
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
    const timer = setTimeout(() => process.exit(0), STOP_TIMEOUT_MS);
    timer.unref();
    cluster.on('exit', () => {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  await Promise.resolve();
}

async function main(): Promise<void> {
  tolerateClosedStdio();
  const configPath = process.argv[2] ?? '/etc/nebula/proxy-server.conf';
  if (cluster.isWorker) {
    await runWorker(configPath);
    return;
  }
  const config = loadProxyConfig(configPath);
  if (config.workers <= 0) {
    await runWorker(configPath);
    return;
  }
  await runPrimary(configPath, config.workers);
}

main().catch((error: unknown) => {
  process.stderr.write(`proxy-server: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
