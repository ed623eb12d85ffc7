/**
 * The object expirer, by index: each node looks after the objects on its own devices. For each
 * one whose X-Delete-At (from its .data, or a newer POST's .meta) has passed, it sends its own
 * object server a DELETE stamped with the X-Delete-At time (so every replica writes the same
 * tombstone) naming every container replica in X-Container-*, so the object leaves the listings
 * too (a container server that is down gets an async_pending, which the updater replays).
 *
 * Which objects to look at comes from the device's expiry index (../object/expiry-index.ts),
 * which diskfile appends to whenever a .data or .meta carrying X-Delete-At is committed (client
 * PUTs and POSTs and replicated files alike): a pass reads only the minutes that are due, and
 * checks each entry against the object's current metadata (a POST may have moved or removed its
 * X-Delete-At since). Once per `full_scan_interval` (a day by default, and on the first pass of a
 * node that never did one) the pass also walks every object and reads its trailer, the safety
 * net for entries lost with a disk or written before the index existed. Swift keeps a
 * cluster-wide queue (`.expiring_objects`) instead; a local index needs no extra network write
 * on the PUT path.
 *
 * GETs already answer 404 once X-Delete-At passes (diskfile checks it); this makes it so on disk
 * and in listings.
 */
import { open, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../common/log.js';
import { Timestamp } from '../../common/timestamp.js';
import { mergeMetadata, resolveOnDiskFiles, type OnDiskState } from '../diskfile/diskfile.js';
import { decodeFooter, decodeMetadata, TRAILER_FOOTER_BYTES, type ObjectMetadata } from '../diskfile/format.js';
import type { ExpirerConfig } from './config.js';
import { RateLimiter, roundSeconds, type Daemon, type PassSummary } from './daemon.js';
import { callPeer, encodePath, isSuccess } from './http-client.js';
import { appendExpiryEntries, releaseBucket, takeDueBuckets, type ExpiryEntry } from '../object/expiry-index.js';
import { walkHashDirs } from './object-walk.js';
import { partitionPath } from './partition-hashes.js';
import { reconPath, writeRecon } from './recon.js';
import type { LocalDevice, RingView } from './ring-view.js';

export interface ExpirerOptions {
  config: ExpirerConfig;
  ring: RingView;
  containerRing: RingView;
  logger: Logger;
  reconCachePath: string;
  bindIp: string;
  bindPort: number;
}

async function readTrailer(path: string): Promise<ObjectMetadata | undefined> {
  try {
    const handle = await open(path, 'r');
    try {
      const { size } = await handle.stat();
      const footer = Buffer.allocUnsafe(TRAILER_FOOTER_BYTES);
      await handle.read(footer, 0, TRAILER_FOOTER_BYTES, size - TRAILER_FOOTER_BYTES);
      const jsonLength = decodeFooter(footer);
      const json = Buffer.allocUnsafe(jsonLength);
      await handle.read(json, 0, jsonLength, size - TRAILER_FOOTER_BYTES - jsonLength);
      return decodeMetadata(json);
    } finally {
      await handle.close();
    }
  } catch {
    return undefined; // gone, or bad: the auditor's business
  }
}

interface ExpiryStats {
  objectsChecked: number;
  indexEntries: number;
  expired: number;
  deleted: number;
  failures: number;
}

/** The part of a walked hash folder the expiry check needs. */
interface ExpiryCandidate {
  device: LocalDevice;
  partition: number;
  hashDir: string;
  state: OnDiskState;
}

export class ObjectExpirer implements Daemon {
  readonly name = 'object-expirer';
  private readonly limiter: RateLimiter;
  /** When the last full scan ended (from the recon report across restarts); undefined until read. */
  private lastFullScanMs: number | undefined;

  constructor(private readonly options: ExpirerOptions) {
    this.limiter = new RateLimiter(options.config.deletesPerSecond);
  }

  private async fullScanDue(nowMs: number): Promise<boolean> {
    if (this.lastFullScanMs === undefined) {
      const report = await readFile(reconPath(this.options.reconCachePath, 'object', 'expirer'), 'utf8').then(
        (text) => JSON.parse(text) as { last_full_scan?: unknown },
        () => undefined,
      );
      const seconds = report?.last_full_scan;
      this.lastFullScanMs = typeof seconds === 'number' ? seconds * 1000 : 0;
    }
    return nowMs - this.lastFullScanMs >= this.options.config.fullScanIntervalMs;
  }

  async runOnce(signal?: AbortSignal): Promise<PassSummary> {
    const { logger } = this.options;
    const startedMs = Date.now();
    const nowSeconds = startedMs / 1000;
    const stats: ExpiryStats = { objectsChecked: 0, indexEntries: 0, expired: 0, deleted: 0, failures: 0 };
    const devices = this.options.ring.localDevices();
    for (const device of devices) {
      if (signal?.aborted === true) break;
      await this.expireIndexed(device, nowSeconds, stats, signal);
    }
    const fullScan = !(signal?.aborted ?? false) && (await this.fullScanDue(startedMs));
    if (fullScan) {
      for await (const entry of walkHashDirs(devices, signal)) {
        await this.expireIfDue(entry, nowSeconds, stats, signal);
      }
      if (signal?.aborted !== true) this.lastFullScanMs = Date.now();
    }
    const summary: PassSummary = { ...stats, fullScan, seconds: roundSeconds(startedMs) };
    logger.info({ daemon: this.name, ...summary }, 'object expirer pass');
    await writeRecon(this.options.reconCachePath, 'object', 'expirer', {
      ...summary,
      last_pass: Date.now() / 1000,
      ...(this.lastFullScanMs ? { last_full_scan: this.lastFullScanMs / 1000 } : {}),
    }).catch(() => undefined);
    return summary;
  }

  /** Works through the device's due index buckets; puts back what is not due yet or failed. */
  private async expireIndexed(
    device: LocalDevice,
    nowSeconds: number,
    stats: ExpiryStats,
    signal?: AbortSignal,
  ): Promise<void> {
    for (const bucket of await takeDueBuckets(device.devicePath, nowSeconds)) {
      const keep: ExpiryEntry[] = [];
      const seen = new Set<string>();
      for (const entry of bucket.entries) {
        if (entry.deleteAtSeconds > nowSeconds || signal?.aborted === true) {
          keep.push(entry);
          continue;
        }
        const key = `${entry.partition}/${entry.hash}`;
        if (seen.has(key)) continue; // the same object written twice in the minute
        seen.add(key);
        stats.indexEntries += 1;
        const hashDir = join(partitionPath(device.devicePath, entry.partition), entry.hash.slice(-3), entry.hash);
        const names = await readdir(hashDir).catch(() => [] as string[]);
        const candidate = { device, partition: entry.partition, hashDir, state: resolveOnDiskFiles(names) };
        const outcome = await this.expireIfDue(candidate, nowSeconds, stats, signal);
        if (outcome === 'failed') keep.push(entry);
      }
      // Put back before letting go of the taken file: a crash in between only repeats work.
      if (keep.length > 0 && !(await appendExpiryEntries(device.devicePath, keep))) continue;
      await releaseBucket(bucket);
    }
  }

  /** Deletes the object when its current X-Delete-At has passed. */
  private async expireIfDue(
    entry: ExpiryCandidate,
    nowSeconds: number,
    stats: ExpiryStats,
    signal?: AbortSignal,
  ): Promise<'deleted' | 'not-due' | 'failed'> {
    const { logger, config } = this.options;
    const data = entry.state.data;
    if (data === undefined) return 'not-due'; // deleted, or gone: nothing to expire
    stats.objectsChecked += 1;
    const dataMetadata = await readTrailer(join(entry.hashDir, data.file));
    if (dataMetadata === undefined) return 'not-due';
    const metaMetadata = entry.state.meta && (await readTrailer(join(entry.hashDir, entry.state.meta.file)));
    const metadata = mergeMetadata(dataMetadata, metaMetadata);
    const deleteAt = Number(metadata['X-Delete-At'] ?? Number.NaN);
    if (!(deleteAt <= nowSeconds)) return 'not-due';
    const name = metadata.name ?? dataMetadata.name ?? '';
    const [, account = '', container = '', ...objectParts] = name.split('/');
    const object = objectParts.join('/');
    if (account === '' || container === '' || object === '') return 'not-due';
    stats.expired += 1;
    await this.limiter.wait(1, signal).catch(() => undefined);
    // The tombstone must beat every version here; normally that is the X-Delete-At time itself.
    let timestamp = Timestamp.fromSeconds(deleteAt);
    const newest = metaMetadata !== undefined ? entry.state.meta?.timestamp : data.timestamp;
    if (newest !== undefined && newest.compare(timestamp) >= 0) timestamp = newest.withOffset(newest.offset + 1);
    const containerPartition = this.options.containerRing.ring.getPartition(account, container);
    const containers = this.options.containerRing.ring.getNodes(containerPartition);
    const response = await callPeer({
      ip: this.options.bindIp,
      port: this.options.bindPort,
      method: 'DELETE',
      path: encodePath(entry.device.ring.device, entry.partition, account, container, object),
      headers: {
        'X-Timestamp': timestamp.internal,
        'X-Container-Host': containers.map((node) => `${node.ip}:${node.port}`).join(','),
        'X-Container-Partition': String(containerPartition),
        'X-Container-Device': containers.map((node) => node.device).join(','),
        'User-Agent': `object-expirer ${process.pid}`,
      },
      connTimeoutMs: config.connTimeoutMs,
      nodeTimeoutMs: config.nodeTimeoutMs,
    });
    // 404 is the object server saying "not there any more" after writing the tombstone (it was expired).
    if (isSuccess(response) || response.status === 404 || response.status === 409) {
      stats.deleted += 1;
      return 'deleted';
    }
    stats.failures += 1;
    logger.warn({ name, status: response.status, err: response.error }, 'cannot delete expired object');
    return 'failed';
  }
}
