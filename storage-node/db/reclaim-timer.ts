/**
 * A background reclaim pass every `intervalMs` over the devices whose database this process has
 * open, so tombstones and deleted databases go once reclaim_age has passed even when no
 * replicator runs. Each pass is bounded (maxKeys per device, resuming where the last pass
 * stopped); passes never overlap; stop() waits for the pass in flight. The timer is unref'd.
 */
import type { Logger } from '../../common/log.js';
import type { ReclaimResult } from './reclaim.js';
import type { DatabaseRegistry } from './registry.js';

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
