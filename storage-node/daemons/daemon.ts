/**
 * What every storage daemon shares: the `Daemon` contract (`runOnce()` does one bounded pass and
 * returns its summary; Swift's run_once), `runForever` (a pass every `intervalMs` until the signal
 * aborts, a failed pass logged and retried next time; Swift's run_forever), a token-bucket rate
 * limiter (Swift's ratelimit_sleep), and a bounded worker pool for per-partition concurrency.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../common/log.js';

export type PassSummary = Record<string, number | string | boolean>;

export interface Daemon {
  /** Swift's name for it: `object-replicator`, `object-auditor`, ... */
  readonly name: string;
  /** One whole pass over the local devices; resolves with the numbers of its summary line. */
  runOnce(signal?: AbortSignal): Promise<PassSummary>;
}

/** Runs `daemon` every `intervalMs` (measured start to start, as Swift's) until `signal` aborts. */
export async function runForever(
  daemon: Daemon,
  intervalMs: number,
  logger: Logger,
  signal: AbortSignal,
): Promise<void> {
  // Bounded by the signal: every iteration either aborts or sleeps at least a little.
  while (!signal.aborted) {
    const startedMs = Date.now();
    try {
      await daemon.runOnce(signal);
    } catch (error) {
      if (signal.aborted) return;
      logger.error({ err: error, daemon: daemon.name }, 'pass failed');
    }
    const waitMs = Math.max(100, intervalMs - (Date.now() - startedMs));
    try {
      await sleep(waitMs, undefined, { signal });
    } catch {
      return; // aborted
    }
  }
}

/**
 * At most `perSecond` events per second on average, with a one-second burst (0 = unlimited).
 * `wait(n)` spends n tokens (bytes, files, objects).
 */
export class RateLimiter {
  private tokens: number;
  private lastMs = Date.now();

  constructor(private readonly perSecond: number) {
    this.tokens = perSecond;
  }

  async wait(count = 1, signal?: AbortSignal): Promise<void> {
    if (this.perSecond <= 0) return;
    const now = Date.now();
    this.tokens = Math.min(this.perSecond, this.tokens + ((now - this.lastMs) / 1000) * this.perSecond);
    this.lastMs = now;
    this.tokens -= count;
    if (this.tokens < 0) {
      const waitMs = (-this.tokens / this.perSecond) * 1000;
      await sleep(Math.ceil(waitMs), undefined, signal === undefined ? undefined : { signal });
    }
  }
}

/** Runs `work` over `items` with at most `concurrency` in flight; never rejects (errors go to `onError`). */
export async function forEachLimited<T>(
  items: readonly T[],
  concurrency: number,
  work: (item: T) => Promise<void>,
  onError: (item: T, error: unknown) => void,
  signal?: AbortSignal,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    // Bounded by items.length: each iteration takes one item.
    while (next < items.length && signal?.aborted !== true) {
      const item = items[next] as T;
      next += 1;
      try {
        await work(item);
      } catch (error) {
        onError(item, error);
      }
    }
  };
  const workers = Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, () => worker());
  await Promise.all(workers);
}

export function roundSeconds(startedMs: number): number {
  return Math.round((Date.now() - startedMs) / 10) / 100;
}
