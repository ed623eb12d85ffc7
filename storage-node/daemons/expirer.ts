/**
 * The object expirer, by scan: each node looks at the objects on its own devices and, for each
 * one whose X-Delete-At (from its .data, or a newer POST's .meta) has passed, sends its own object
 * server a DELETE stamped with the X-Delete-At time (so every replica writes the same tombstone)
 * naming every container replica in X-Container-*, so the object leaves the listings too (a
 * container server that is down gets an async_pending, which the updater replays).
 *
 * GETs already answer 404 once X-Delete-At passes (diskfile checks it); this makes it so on disk
 * and in listings. Swift keeps a cluster-wide queue (`.expiring_objects`) instead; a scan needs
 * no queue writes on the PUT path, at the cost of reading each object's trailer every pass.
 */
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../common/log.js';
import { Timestamp } from '../../common/timestamp.js';
import { mergeMetadata } from '../diskfile/diskfile.js';
import { decodeFooter, decodeMetadata, TRAILER_FOOTER_BYTES, type ObjectMetadata } from '../diskfile/format.js';
import type { ExpirerConfig } from './config.js';
import { RateLimiter, roundSeconds, type Daemon, type PassSummary } from './daemon.js';
import { callPeer, encodePath, isSuccess } from './http-client.js';
import { walkHashDirs } from './object-walk.js';
import { writeRecon } from './recon.js';
import type { RingView } from './ring-view.js';

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

export class ObjectExpirer implements Daemon {
  readonly name = 'object-expirer';
  private readonly limiter: RateLimiter;

  constructor(private readonly options: ExpirerOptions) {
    this.limiter = new RateLimiter(options.config.deletesPerSecond);
  }

  async runOnce(signal?: AbortSignal): Promise<PassSummary> {
    const { logger, config } = this.options;
    const startedMs = Date.now();
    const nowSeconds = Date.now() / 1000;
    const stats = { objectsChecked: 0, expired: 0, deleted: 0, failures: 0 };
    for await (const entry of walkHashDirs(this.options.ring.localDevices(), signal)) {
      const data = entry.state.data;
      if (data === undefined) continue;
      stats.objectsChecked += 1;
      const dataMetadata = await readTrailer(join(entry.hashDir, data.file));
      if (dataMetadata === undefined) continue;
      const metaMetadata = entry.state.meta && (await readTrailer(join(entry.hashDir, entry.state.meta.file)));
      const metadata = mergeMetadata(dataMetadata, metaMetadata);
      const deleteAt = Number(metadata['X-Delete-At'] ?? Number.NaN);
      if (!(deleteAt <= nowSeconds)) continue;
      const name = metadata.name ?? dataMetadata.name ?? '';
      const [, account = '', container = '', ...objectParts] = name.split('/');
      const object = objectParts.join('/');
      if (account === '' || container === '' || object === '') continue;
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
      } else {
        stats.failures += 1;
        logger.warn({ name, status: response.status, err: response.error }, 'cannot delete expired object');
      }
    }
    const summary: PassSummary = { ...stats, seconds: roundSeconds(startedMs) };
    logger.info({ daemon: this.name, ...summary }, 'object expirer pass');
    await writeRecon(this.options.reconCachePath, 'object', 'expirer', {
      ...summary,
      last_pass: Date.now() / 1000,
    }).catch(() => undefined);
    return summary;
  }
}
