/**
 * The object replicator (Swift's object-replicator, with HTTP pushes in place of rsync).
 *
 * For each partition on each local device (`concurrency` at a time): refresh the suffix hashes
 * (from the cache: only invalidated suffixes are hashed again, see partition-hashes.ts), and ask
 * each peer device once per pass for the digests of all the partitions they share (REPLICATE
 * digests). Where a peer's digest differs, REPLICATE it for its suffix hashes, and for every
 * suffix that differs list the peer's versions and
 * push each file the peer lacks or holds older (.data and .ts newest-wins, then a newer .meta),
 * at most `files_per_second`; then REPLICATE again naming the pushed suffixes so the peer
 * rehashes them. On a handoff device the peers are every primary; once all of them answered
 * and took everything, the partition is removed here (Swift's handoff delete). Tombstones older
 * than reclaim_age go while hashing. Each pass ends with one summary line and a recon report.
 */
import { open, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../common/log.js';
import { dropPageCache } from '../diskfile/page-cache.js';
import { splitWholeFile, decodeFooter, decodeMetadata, TRAILER_FOOTER_BYTES } from '../diskfile/format.js';
import type { RingDevice } from '../../ring/ring.js';
import type { ReplicatorConfig } from './config.js';
import { forEachLimited, RateLimiter, roundSeconds, type Daemon, type PassSummary } from './daemon.js';
import { callPeer, encodePath, isSuccess, type PeerResponse } from './http-client.js';
import {
  DIGEST_PARTITIONS_PER_REQUEST_MAX,
  encodeMetadataHeader,
  METADATA_HEADER,
  REPLICATE_REQUEST,
  REPLICATE_VERB,
} from './object-replication.js';
import {
  differingSuffixes,
  getPartitionHashes,
  listSuffix,
  partitionPath,
  type GetHashesOptions,
  type HashState,
  type PartitionHashes,
  type SuffixHashes,
} from './partition-hashes.js';
import { bodyMatches, quarantineHashDir } from './quarantine.js';
import { writeRecon } from './recon.js';
import type { LocalDevice, RingView } from './ring-view.js';

export interface ObjectReplicatorOptions {
  config: ReplicatorConfig;
  ring: RingView;
  logger: Logger;
  reconCachePath: string;
}

interface PassStats {
  partitionsChecked: number;
  partitionsOutOfSync: number;
  suffixesSynced: number;
  objectsPushed: number;
  handoffsRemoved: number;
  failures: number;
}

interface PartitionJob {
  device: LocalDevice;
  partition: number;
  /** Filled by the pass's first step; left undefined when hashing the partition failed. */
  local?: PartitionHashes;
}

/** Per peer device id: its partitions' digests, or 'unreachable' (no connection this pass). */
type PeerDigests = Map<number, Map<number, string> | 'unreachable'>;

/**
 * Files up to this size are read with one call; bigger ones trailer first, then the body. Either
 * way the body is pushed from memory (a known limit: a multi-GiB object needs that much RAM).
 */
const WHOLE_READ_BYTES_MAX = 64 * 1024 * 1024;

function newerThan(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined) return false;
  if (b === undefined) return true;
  // Internal timestamps of equal width sort as strings; the offset suffix only ever adds.
  return a > b;
}

/** Which of the local files a peer needs, given what it holds. */
export function filesToPush(local: HashState, remote: HashState | undefined): string[] {
  const files: string[] = [];
  const winnerPushed = local.winner !== undefined && newerThan(local.winner.timestamp, remote?.winner?.timestamp);
  if (winnerPushed && local.winner !== undefined) files.push(local.winner.file);
  const remoteHasSameData =
    local.winner?.kind === 'data' &&
    (winnerPushed || (remote?.winner?.kind === 'data' && remote.winner.timestamp === local.winner.timestamp));
  if (local.meta !== undefined && remoteHasSameData) {
    if (winnerPushed || newerThan(local.meta.timestamp, remote?.meta?.timestamp)) files.push(local.meta.file);
  }
  return files;
}

async function readObjectFile(path: string): Promise<{ body: Buffer; metadata: Record<string, string> }> {
  const handle = await open(path, 'r');
  let size = 0;
  try {
    size = (await handle.stat()).size;
    if (size <= WHOLE_READ_BYTES_MAX) {
      const whole = Buffer.allocUnsafe(size);
      const { bytesRead } = await handle.read(whole, 0, size, 0);
      if (bytesRead !== size) throw new Error(`short read of ${path}`);
      return splitWholeFile(whole);
    }
    const footer = Buffer.allocUnsafe(TRAILER_FOOTER_BYTES);
    await handle.read(footer, 0, TRAILER_FOOTER_BYTES, size - TRAILER_FOOTER_BYTES);
    const jsonLength = decodeFooter(footer);
    const bodyLength = size - TRAILER_FOOTER_BYTES - jsonLength;
    const json = Buffer.allocUnsafe(jsonLength);
    await handle.read(json, 0, jsonLength, bodyLength);
    const body = Buffer.allocUnsafe(bodyLength);
    await handle.read(body, 0, bodyLength, 0);
    return { body, metadata: decodeMetadata(json) };
  } finally {
    // What is pushed is seldom read here again soon (Swift's ssync sender reads with keep_cache off).
    dropPageCache(handle.fd, 0, size);
    await handle.close();
  }
}

export class ObjectReplicator implements Daemon {
  readonly name = 'object-replicator';
  private readonly limiter: RateLimiter;

  constructor(private readonly options: ObjectReplicatorOptions) {
    this.limiter = new RateLimiter(options.config.filesPerSecond);
  }

  private call(
    node: RingDevice,
    method: string,
    path: string,
    headers?: Record<string, string>,
    body?: Buffer,
  ): Promise<PeerResponse> {
    return callPeer({
      ip: node.replication_ip || node.ip,
      port: node.replication_port || node.port,
      method: method === REPLICATE_VERB ? REPLICATE_REQUEST.method : method,
      path,
      headers: {
        'User-Agent': `object-replicator ${process.pid}`,
        ...(method === REPLICATE_VERB ? REPLICATE_REQUEST.headers : {}),
        ...headers,
      },
      body,
      connTimeoutMs: this.options.config.connTimeoutMs,
      nodeTimeoutMs: this.options.config.nodeTimeoutMs,
    });
  }

  async runOnce(signal?: AbortSignal): Promise<PassSummary> {
    const startedMs = Date.now();
    const stats: PassStats = {
      partitionsChecked: 0,
      partitionsOutOfSync: 0,
      suffixesSynced: 0,
      objectsPushed: 0,
      handoffsRemoved: 0,
      failures: 0,
    };
    const { ring, config, logger } = this.options;
    const jobs: PartitionJob[] = [];
    for (const device of ring.localDevices()) {
      let names: string[];
      try {
        names = await readdir(join(device.devicePath, 'objects'));
      } catch {
        continue; // no objects on this device yet
      }
      for (const name of names) {
        if (!/^\d+$/.test(name)) continue;
        const partition = Number(name);
        // A partition of an older, bigger ring is left alone.
        if (partition < ring.ring.partitionCount) jobs.push({ device, partition });
      }
    }
    // Handoffs first, as Swift's handoffs_first: they are the copies most at risk.
    const handoff = (job: PartitionJob): boolean => !ring.isPrimary(job.partition, job.device.ring);
    jobs.sort((a, b) => Number(handoff(b)) - Number(handoff(a)));
    const onError = (job: PartitionJob, error: unknown): void => {
      stats.failures += 1;
      logger.warn(
        { err: error, device: job.device.ring.device, partition: job.partition },
        'partition replication failed',
      );
    };
    // Local hashes first (from the cache: no folder listing for an unchanged partition)...
    await forEachLimited(
      jobs,
      config.concurrency,
      async (job) => {
        job.local = await getPartitionHashes(partitionPath(job.device.devicePath, job.partition), this.hashOptions());
      },
      onError,
      signal,
    );
    // ...then one digests exchange per peer device instead of one REPLICATE per partition and peer...
    const remote = await this.peerDigests(jobs, signal);
    // ...and only the partitions whose digests differ from a peer's are looked at closer.
    await forEachLimited(
      jobs.filter((job) => job.local !== undefined),
      config.concurrency,
      (job) => this.replicatePartition(job.device, job.partition, stats, signal, job.local, remote),
      onError,
      signal,
    );
    const summary: PassSummary = { ...stats, seconds: roundSeconds(startedMs) };
    logger.info({ daemon: this.name, ...summary }, 'object replication pass');
    await writeRecon(this.options.reconCachePath, 'object', 'replication', {
      last_pass: Date.now() / 1000,
      pass_seconds: summary.seconds,
      partitions_checked: stats.partitionsChecked,
      partitions_out_of_sync: stats.partitionsOutOfSync,
      suffixes_synced: stats.suffixesSynced,
      objects_pushed: stats.objectsPushed,
      handoffs_removed: stats.handoffsRemoved,
      failures: stats.failures,
    }).catch((error: unknown) => logger.warn({ err: error }, 'cannot write recon cache'));
    return summary;
  }

  private hashOptions(): GetHashesOptions {
    const { config } = this.options;
    return { reclaimAgeSeconds: config.reclaimAgeSeconds, rehashIntervalMs: config.rehashIntervalMs };
  }

  /**
   * Asks each peer device once (in chunks) for the digests of the partitions it shares with the
   * jobs. A peer that cannot be reached is marked so, and its partitions count as failed without
   * a call each; a peer that does not answer digests (an older node) leaves its partitions to
   * the per-partition exchange.
   */
  private async peerDigests(jobs: readonly PartitionJob[], signal?: AbortSignal): Promise<PeerDigests> {
    const { ring, config } = this.options;
    const byPeer = new Map<number, { peer: RingDevice; partitions: number[] }>();
    for (const job of jobs) {
      if (job.local === undefined) continue;
      for (const peer of ring.peers(job.partition, job.device.ring)) {
        let entry = byPeer.get(peer.id);
        if (entry === undefined) {
          entry = { peer, partitions: [] };
          byPeer.set(peer.id, entry);
        }
        entry.partitions.push(job.partition);
      }
    }
    const result: PeerDigests = new Map();
    await forEachLimited(
      [...byPeer.values()],
      config.concurrency,
      async ({ peer, partitions }) => {
        const digests = new Map<number, string>();
        for (let start = 0; start < partitions.length; start += DIGEST_PARTITIONS_PER_REQUEST_MAX) {
          if (signal?.aborted === true) return;
          const chunk = partitions.slice(start, start + DIGEST_PARTITIONS_PER_REQUEST_MAX);
          const response = await this.call(
            peer,
            REPLICATE_VERB,
            encodePath(peer.device, 0, 'digests'),
            { 'Content-Type': 'application/json' },
            Buffer.from(JSON.stringify(chunk)),
          );
          if (response.status === 0) {
            result.set(peer.id, 'unreachable');
            return;
          }
          if (!isSuccess(response)) return; // an older peer: per-partition REPLICATE
          const parsed = JSON.parse(response.body.toString('utf8')) as Record<string, unknown>;
          for (const partition of chunk) {
            const digest = parsed[partition];
            if (typeof digest === 'string') digests.set(partition, digest);
          }
        }
        result.set(peer.id, digests);
      },
      () => undefined, // a bad answer leaves the peer to the per-partition exchange
      signal,
    );
    return result;
  }

  /** Replicates one partition; resolves when done (failures counted, never thrown for one peer). */
  async replicatePartition(
    device: LocalDevice,
    partition: number,
    stats: PassStats,
    signal?: AbortSignal,
    local?: PartitionHashes,
    remote?: PeerDigests,
  ): Promise<void> {
    const { ring, config } = this.options;
    const partitionDir = partitionPath(device.devicePath, partition);
    if (partition >= ring.ring.partitionCount) return; // a partition of an older, bigger ring
    stats.partitionsChecked += 1;
    const isPrimary = ring.isPrimary(partition, device.ring);
    const peers = ring.peers(partition, device.ring);
    const current = local ?? (await getPartitionHashes(partitionDir, this.hashOptions()));
    let allSynced = true;
    let outOfSync = false;
    for (const peer of peers) {
      if (signal?.aborted === true) return;
      const known = remote?.get(peer.id);
      let synced: 'in-sync' | 'pushed' | 'failed';
      if (known === 'unreachable') synced = 'failed';
      else if (known?.get(partition) === current.digest) synced = 'in-sync';
      else synced = await this.syncWithPeer(device, partition, partitionDir, current.hashes, peer, stats, signal);
      if (synced === 'failed') {
        allSynced = false;
        stats.failures += 1;
      } else if (synced === 'pushed') {
        outOfSync = true;
      }
    }
    if (outOfSync) stats.partitionsOutOfSync += 1;
    if (isPrimary || !config.deleteHandoffs || !allSynced || peers.length === 0) return;
    // Handoff: every primary has what was here. Anything written meanwhile changes the hashes.
    const after = await getPartitionHashes(partitionDir, this.hashOptions());
    if (after.digest !== current.digest) return; // try again next pass
    await rm(partitionDir, { recursive: true, force: true });
    stats.handoffsRemoved += 1;
    this.options.logger.info({ device: device.ring.device, partition }, 'handoff partition removed');
  }

  private async syncWithPeer(
    device: LocalDevice,
    partition: number,
    partitionDir: string,
    hashes: SuffixHashes,
    peer: RingDevice,
    stats: PassStats,
    signal?: AbortSignal,
  ): Promise<'in-sync' | 'pushed' | 'failed'> {
    const { logger, config } = this.options;
    const remoteResponse = await this.call(peer, 'REPLICATE', encodePath(peer.device, partition, 'hashes'));
    if (!isSuccess(remoteResponse)) {
      logger.debug(
        {
          peer: `${peer.ip}:${peer.port}/${peer.device}`,
          partition,
          status: remoteResponse.status,
          err: remoteResponse.error,
        },
        'peer unreachable',
      );
      return 'failed';
    }
    let remote: SuffixHashes;
    try {
      remote = JSON.parse(remoteResponse.body.toString('utf8')) as SuffixHashes;
    } catch {
      return 'failed';
    }
    const suffixes = differingSuffixes(hashes, remote);
    if (suffixes.length === 0) return 'in-sync';
    const listResponse = await this.call(
      peer,
      'REPLICATE',
      `${encodePath(peer.device, partition, 'list')}?suffixes=${suffixes.join('-')}`,
    );
    if (!isSuccess(listResponse)) return 'failed';
    const remoteStates = JSON.parse(listResponse.body.toString('utf8')) as Record<string, HashState>;
    let failed = false;
    for (const suffix of suffixes) {
      const local = await listSuffix(partitionDir, suffix, config.reclaimAgeSeconds);
      for (const [hash, state] of local) {
        for (const file of filesToPush(state, remoteStates[hash])) {
          if (signal?.aborted === true) return 'failed';
          await this.limiter.wait(1, signal).catch(() => undefined);
          const outcome = await this.pushFile(device, partition, suffix, hash, file, peer);
          if (outcome === 'pushed') stats.objectsPushed += 1;
          else if (outcome === 'failed') failed = true;
        }
      }
    }
    // Have the peer rehash what changed, as Swift's replicator does after rsync.
    await this.call(
      peer,
      'REPLICATE',
      `${encodePath(peer.device, partition, 'hashes')}?recalculate=${suffixes.join('-')}`,
    );
    stats.suffixesSynced += suffixes.length;
    return failed ? 'failed' : 'pushed';
  }

  private async pushFile(
    device: LocalDevice,
    partition: number,
    suffix: string,
    hash: string,
    file: string,
    peer: RingDevice,
  ): Promise<'pushed' | 'skipped' | 'failed'> {
    const hashDir = join(partitionPath(device.devicePath, partition), suffix, hash);
    const path = join(hashDir, file);
    let content: { body: Buffer; metadata: Record<string, string> };
    try {
      content = await readObjectFile(path);
    } catch (error) {
      // Replaced or quarantined since listing: the next pass sees what is there now.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'skipped';
      this.options.logger.warn({ err: error, path }, 'cannot read object file to push; quarantining it');
      await quarantineHashDir(device.devicePath, hashDir).catch(() => undefined);
      return 'skipped';
    }
    if (file.endsWith('.data') && !bodyMatches(content.body, content.metadata)) {
      // Never spread a bad copy: move it aside here; a peer's good copy comes back by replication.
      this.options.logger.warn({ path }, 'object does not match its metadata; quarantined instead of pushed');
      await quarantineHashDir(device.devicePath, hashDir);
      return 'skipped';
    }
    const response = await this.call(
      peer,
      'REPLICATE',
      encodePath(peer.device, partition, 'file', suffix, hash, file),
      { [METADATA_HEADER]: encodeMetadataHeader(content.metadata), 'Content-Type': 'application/octet-stream' },
      content.body,
    );
    // 409: the peer already holds this or something newer; nothing left to do.
    if (isSuccess(response)) return 'pushed';
    if (response.status === 409) return 'skipped';
    this.options.logger.warn(
      { path, peer: `${peer.ip}:${peer.port}/${peer.device}`, status: response.status, err: response.error },
      'push failed',
    );
    return 'failed';
  }
}

export async function partitionExists(devicePath: string, partition: number): Promise<boolean> {
  return stat(partitionPath(devicePath, partition)).then(
    () => true,
    () => false,
  );
}
