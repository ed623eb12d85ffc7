/**
 * `npm start`: the whole object store on this machine with one command. Creates (or reuses) the
 * data folder `$NEBULA_DATA` (default `./.nebula`), starts four storage nodes on 6210, 6220,
 * 6230 and 6240 (one device each, three replicas, part power 10; `$NEBULA_STORAGE_PORT` moves
 * the first, the others follow 10 apart) and the proxy on `$NEBULA_PORT` (default 8080), then
 * prints how to use it. Logs go to `<data>/log/`. A service that exits on its own is restarted
 * (a line on stderr, then 1 s, doubling while it keeps dying); Ctrl-C or SIGTERM stops
 * everything; a second start reuses the data.
 */
import { join, resolve } from 'node:path';
import { startLocalCluster, superviseLocalCluster } from './local-cluster.js';
import { tolerateClosedStdio } from '../common/stdio.js';

function portFromEnv(name: string, fallback: number): number {
  const port = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`${name} must be a port number`);
  return port;
}

async function main(): Promise<void> {
  tolerateClosedStdio();
  const dataDir = resolve(process.env.NEBULA_DATA ?? '.nebula');
  const proxyPort = portFromEnv('NEBULA_PORT', 8080);
  const firstStoragePort = portFromEnv('NEBULA_STORAGE_PORT', 6210);
  const STORAGE_PORTS = [0, 10, 20, 30].map((offset) => firstStoragePort + offset);
  const workers = Number(process.env.NEBULA_PROXY_WORKERS ?? '2');
  const cluster = await startLocalCluster({
    dataDir,
    proxyPort,
    storagePorts: STORAGE_PORTS,
    workers: Number.isInteger(workers) && workers >= 0 ? workers : 2,
    // Every storage daemon in each node, at Swift's intervals (replicator 30 s, updater and expirer 300 s).
    storageOptions: { daemons: 'all' },
    // Four nodes share one machine's disk and cores: the auditor walks each node once an hour at
    // most, a quarter of Swift's per-node rates, instead of re-reading every object all the time.
    storageSections: {
      'object-auditor': { interval: '3600', files_per_second: '5', zero_byte_files_per_second: '12' },
    },
  });
  // A service that dies on its own is started again (the others keep serving meanwhile: quorum).
  const supervisor = superviseLocalCluster(cluster, {
    log: (line) => process.stderr.write(`${new Date().toISOString()} ${line} (logs in ${join(dataDir, 'log')})\n`),
  });
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('stopping...\n');
    supervisor.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`error while stopping: ${String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  // Only now: whoever reads this line may stop us at once, and must find the handlers in place.
  const auth = cluster.authUrl;
  process.stdout.write(
    [
      `Nebula is running: proxy ${cluster.proxyUrl}, storage nodes on ports ${STORAGE_PORTS.join(', ')}`,
      `data in ${dataDir}, logs in ${join(dataDir, 'log')}`,
      '',
      `export ST_AUTH=${auth}`,
      'export ST_USER=test:tester',
      'export ST_KEY=testing',
      '',
      `swift -A ${auth} -U test:tester -K testing stat`,
      '',
      'Other users: test:tester3/testing3 (not admin), test2:tester2/testing2, test5:tester5/testing5 (group service).',
      'Press Ctrl-C to stop.',
      '',
    ].join('\n'),
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`all-in-one: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
