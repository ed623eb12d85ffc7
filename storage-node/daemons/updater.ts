/**
 * The object updater (Swift's object-updater): replays the container updates that object writes
 * could not deliver, from `<device>/async_pending/<suffix>/<hash>-<timestamp>` (format in
 * ../async-pending.ts). An update acknowledged by every container server it names is removed;
 * one acknowledged by some is rewritten naming only the others (by rename, so it is never torn);
 * the rest stay for the next pass. Container servers merge rows by timestamp, so replaying an
 * old update after a newer one is harmless.
 */
import { randomBytes } from 'node:crypto';
import { readdir, readFile, rename, rmdir, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../common/log.js';
import type { AsyncPendingUpdate } from '../async-pending.js';
import { containerTargets, sendOneUpdate, type ContainerTarget } from '../object/container-update.js';
import type { UpdaterConfig } from './config.js';
import { forEachLimited, RateLimiter, roundSeconds, type Daemon, type PassSummary } from './daemon.js';
import { writeRecon } from './recon.js';
import type { RingView } from './ring-view.js';

export interface UpdaterOptions {
  config: UpdaterConfig;
  ring: RingView;
  logger: Logger;
  reconCachePath: string;
}

const PENDING_RE = /^([0-9a-f]{32})-(\d{10}\.\d{5}(?:_[0-9a-f]{16})?)$/;

function parsePending(text: string): AsyncPendingUpdate | undefined {
  try {
    const update = JSON.parse(text) as AsyncPendingUpdate;
    if (
      (update.op === 'PUT' || update.op === 'DELETE') &&
      typeof update.account === 'string' &&
      typeof update.container === 'string' &&
      typeof update.object === 'string' &&
      typeof update.headers === 'object'
    ) {
      return update;
    }
  } catch {
    // fall through: not ours, or torn (cannot be: written by rename)
  }
  return undefined;
}

export class ObjectUpdater implements Daemon {
  readonly name = 'object-updater';
  private readonly limiter: RateLimiter;

  constructor(private readonly options: UpdaterOptions) {
    this.limiter = new RateLimiter(options.config.updatesPerSecond);
  }

  async runOnce(signal?: AbortSignal): Promise<PassSummary> {
    const { logger } = this.options;
    const startedMs = Date.now();
    const stats = { updatesFound: 0, successes: 0, failures: 0, unlinked: 0 };
    const jobs: { devicePath: string; path: string; hash: string; timestamp: string }[] = [];
    for (const device of this.options.ring.localDevices()) {
      const root = join(device.devicePath, 'async_pending');
      const suffixes = await readdir(root).catch(() => [] as string[]);
      for (const suffix of suffixes) {
        const names = await readdir(join(root, suffix)).catch(() => [] as string[]);
        if (names.length === 0) await rmdir(join(root, suffix)).catch(() => undefined);
        for (const name of names) {
          const match = PENDING_RE.exec(name);
          if (match === null) continue;
          jobs.push({
            devicePath: device.devicePath,
            path: join(root, suffix, name),
            hash: match[1] ?? '',
            timestamp: match[2] ?? '',
          });
        }
      }
    }
    // Oldest first: the order the writes happened in.
    jobs.sort((a, b) => (a.timestamp < b.timestamp ? -1 : a.timestamp > b.timestamp ? 1 : 0));
    stats.updatesFound = jobs.length;
    await forEachLimited(
      jobs,
      this.options.config.concurrency,
      async (job) => {
        await this.limiter.wait(1, signal).catch(() => undefined);
        const outcome = await this.replay(job);
        if (outcome === 'done') {
          stats.successes += 1;
          stats.unlinked += 1;
        } else if (outcome === 'failed') {
          stats.failures += 1;
        }
      },
      (job, error) => {
        stats.failures += 1;
        logger.warn({ err: error, path: job.path }, 'async update replay failed');
      },
      signal,
    );
    const summary: PassSummary = { ...stats, seconds: roundSeconds(startedMs) };
    logger.info({ daemon: this.name, ...summary }, 'object update pass');
    await writeRecon(this.options.reconCachePath, 'object', 'updater', {
      ...summary,
      last_pass: Date.now() / 1000,
    }).catch(() => undefined);
    return summary;
  }

  private async replay(job: {
    devicePath: string;
    path: string;
    hash: string;
    timestamp: string;
  }): Promise<'done' | 'failed' | 'gone'> {
    const text = await readFile(job.path, 'utf8').catch(() => undefined);
    if (text === undefined) return 'gone';
    const update = parsePending(text);
    if (update === undefined) {
      this.options.logger.warn({ path: job.path }, 'unreadable async_pending removed');
      await unlink(job.path).catch(() => undefined);
      return 'failed';
    }
    const targets = containerTargets({
      'x-container-host': update.container_host,
      'x-container-partition': update.container_partition,
      'x-container-device': update.container_device,
    });
    const { config, logger } = this.options;
    const options = {
      connTimeoutMs: config.connTimeoutMs,
      nodeTimeoutMs: config.nodeTimeoutMs,
      containerUpdateTimeoutMs: config.nodeTimeoutMs,
      fsync: false,
      logger,
    };
    const results = await Promise.all(
      targets.map((target) =>
        sendOneUpdate(
          target,
          {
            op: update.op,
            devicePath: job.devicePath,
            hash: job.hash,
            timestamp: job.timestamp,
            account: update.account,
            container: update.container,
            object: update.object,
            headers: { ...update.headers, 'User-Agent': `object-updater ${process.pid}` },
          },
          options,
        ),
      ),
    );
    const failed: ContainerTarget[] = targets.filter((_, index) => results[index] !== true);
    if (failed.length === 0) {
      await unlink(job.path).catch(() => undefined);
      return 'done';
    }
    if (failed.length < targets.length) {
      const rest: AsyncPendingUpdate = {
        ...update,
        container_host: failed.map((t) => t.host).join(','),
        container_partition: failed.map((t) => t.partition).join(','),
        container_device: failed.map((t) => t.device).join(','),
      };
      const temp = `${job.path}.${randomBytes(6).toString('hex')}`;
      await writeFile(temp, JSON.stringify(rest));
      await rename(temp, job.path);
    }
    return 'failed';
  }
}
