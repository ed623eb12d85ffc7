/**
 * Runs storage daemons alone, as Swift's `swift-object-replicator <conf> --once`:
 *
 *     node dist/storage-node/daemons/main.js <storage-node.conf> <daemon|all> [--once]
 *
 * `<daemon>` is object-replicator, object-auditor, object-updater or object-expirer (or `all`).
 * With --once each runs one pass and the process exits (1 if a pass threw); without, each runs a
 * pass every `interval` seconds of its section until SIGTERM/SIGINT. The summary of each pass is
 * logged, and with --once also printed on stdout as one JSON line per daemon.
 */
import { createLogger } from '../../common/log.js';
import { tolerateClosedStdio } from '../../common/stdio.js';
import { loadStorageNodeConfig } from '../config.js';
import { daemonsConfigFrom, DAEMON_NAMES, isDaemonName, type DaemonName } from './config.js';
import { createDaemon } from './factory.js';
import { startDaemons } from './attach.js';

async function main(): Promise<number> {
  tolerateClosedStdio();
  const args = process.argv.slice(2);
  const once = args.includes('--once');
  const [configPath, which] = args.filter((arg) => !arg.startsWith('--'));
  if (configPath === undefined || which === undefined || (which !== 'all' && !isDaemonName(which))) {
    process.stderr.write(`usage: main.js <storage-node.conf> <${DAEMON_NAMES.join('|')}|all> [--once]\n`);
    return 2;
  }
  const node = loadStorageNodeConfig(configPath);
  const names: DaemonName[] = which === 'all' ? [...DAEMON_NAMES] : [which];
  const config = daemonsConfigFrom(node);
  const logger = createLogger('storage-daemons', process.env.NEBULA_LOG_LEVEL ?? node.logLevel);
  if (once) {
    let status = 0;
    for (const name of names) {
      const daemon = createDaemon(name, { config, logger });
      if (daemon === undefined) {
        process.stderr.write(`${name}: not available on this node (missing ring)\n`);
        continue;
      }
      try {
        const summary = await daemon.runOnce();
        process.stdout.write(`${JSON.stringify({ daemon: name, ...summary })}\n`);
      } catch (error) {
        process.stderr.write(`${name}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
        status = 1;
      }
    }
    return status;
  }
  const stop = startDaemons({ ...config, inProcess: names }, logger);
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
  await stop();
  return 0;
}

main().then(
  (status) => process.exit(status),
  (error: unknown) => {
    process.stderr.write(
      `storage-daemons: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  },
);
