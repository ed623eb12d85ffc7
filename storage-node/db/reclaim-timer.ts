/**
 * A background reclaim pass every `intervalMs` over the devices whose database this process has
 * open, so tombstones and deleted databases go once reclaim_age has passed even when no
 * replicator runs. Each pass is bounded (maxKeys per device, resuming where the last pass
 * stopped); passes never overlap; stop() waits for the pass in flight. The timer is unref'd.
 */
import type { Logger } from '../../common/log.js';
import { Timestamp } from '../../common/timestamp.js';
import type { ReclaimResult } from './reclaim.js';
import type { DatabaseRegistry, DeviceDatabase } from './registry.js';

export interface ReclaimBounds {
  maxKeys?: number;
  after?: Buffer;
}

/** One device's reclaim pass, with the time that reclaim_age counts back from. */
export type DeviceReclaimer = (devicePath: string, now?: Timestamp, bounds?: ReclaimBounds) => Promise<ReclaimResult>;

/**
 * Makes the reclaim pass the container and account servers share: reclaim_age turned into an
 * internal-timestamp cutoff, the device's database, and one `<kind> reclaim pass` log line.
 */
export function deviceReclaimer(
  kind: 'container' | 'account',
  reclaimRecords: (database: DeviceDatabase, cutoff: string, bounds: ReclaimBounds) => Promise<ReclaimResult>,
  options: { databases: DatabaseRegistry; logger: Logger; reclaimAgeSeconds: number },
): DeviceReclaimer {
  return async (devicePath, now = Timestamp.now(), bounds = {}) => {
    const cutoff = Timestamp.fromSeconds(Math.max(0, now.seconds - options.reclaimAgeSeconds)).internal;
    const database = await options.databases.get(devicePath);
    const result = await reclaimRecords(database, cutoff, bounds);
    const { rowsReclaimed, databasesRemoved, keysScanned } = result;
    options.logger.info({ devicePath, rowsReclaimed, databasesRemoved, keysScanned }, `${kind} reclaim pass`);
    return result;
  };
}

export interface ReclaimTimerOptions {
  intervalMs: number;
  databases: DatabaseRegistry;
  logger: Logger;
  /** Keys walked per device per pass. */
  maxKeysPerPass?: number;
  reclaim(devicePath: string, options: { maxKeys: number; after?: Buffer }): Promise<ReclaimResult>;
}

export interface ReclaimTimer {
  stop(): Promise<void>;
}

export function startReclaimTimer(options: ReclaimTimerOptions): ReclaimTimer {
  const maxKeys = options.maxKeysPerPass ?? 100_000;
  const cursors = new Map<string, Buffer>();
  let running: Promise<void> | undefined;
  let stopped = false;

  const pass = async (): Promise<void> => {
    for (const devicePath of options.databases.devicePaths) {
      if (stopped) return;
      const result = await options.reclaim(devicePath, { maxKeys, after: cursors.get(devicePath) });
      if (result.resumeAfter === undefined) cursors.delete(devicePath);
      else cursors.set(devicePath, result.resumeAfter);
    }
  };

  const timer =
    options.intervalMs > 0
      ? setInterval(() => {
          if (running !== undefined || stopped) return;
          running = pass()
            .catch((error: unknown) => options.logger.error({ err: error }, 'reclaim pass failed'))
            .finally(() => {
              running = undefined;
            });
        }, options.intervalMs)
      : undefined;
  timer?.unref();

  return {
    async stop() {
      stopped = true;
      if (timer !== undefined) clearInterval(timer);
      await running;
    },
  };
}
