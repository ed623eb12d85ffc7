/**
 * The object auditor (Swift's object-auditor): walks every object on the local devices and checks
 * its newest .data against its own metadata, quarantining what does not match (the replicator
 * then sees the copy missing and restores a good one from a peer).
 *
 * Each pass is two sweeps, as Swift runs its zero-byte-files auditor beside the full one:
 * - sizes only (fast, `zero_byte_files_per_second`): the trailer must parse and the body length
 *   must be the Content-Length;
 * - full (`files_per_second`, `bytes_per_second`): the whole body is re-read and its MD5 must be
 *   the ETag. What it read leaves the page cache window by window (Swift's auditor reads with
 *   keep_cache off): one pass over every object must not push the hot ones out of memory.
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../common/log.js';
import { dropBehind, dropPageCache } from '../diskfile/page-cache.js';
import { decodeFooter, decodeMetadata, TRAILER_FOOTER_BYTES, TrailerError } from '../diskfile/format.js';
import type { AuditorConfig } from './config.js';
import { RateLimiter, roundSeconds, type Daemon, type PassSummary } from './daemon.js';
import { walkHashDirs } from './object-walk.js';
import { quarantineHashDir } from './quarantine.js';
import { writeRecon } from './recon.js';
import type { RingView } from './ring-view.js';

export interface AuditorOptions {
  config: AuditorConfig;
  ring: RingView;
  logger: Logger;
  reconCachePath: string;
}

export type AuditMode = 'sizes' | 'full';
const CHUNK_BYTES = 65536;
/** Bytes read between two drops of what was read (Swift's DROP_CACHE_WINDOW). */
const DROP_CACHE_WINDOW_BYTES = 1024 * 1024;

export class AuditFailure extends Error {
  readonly code = 'AuditFailure';
}

/** Checks one .data file; throws AuditFailure when it does not match its metadata. */
export async function auditDataFile(
  path: string,
  mode: AuditMode,
  bytesLimiter?: RateLimiter,
  signal?: AbortSignal,
): Promise<number> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    if (size < TRAILER_FOOTER_BYTES) throw new AuditFailure('file shorter than its trailer');
    const footer = Buffer.allocUnsafe(TRAILER_FOOTER_BYTES);
    await handle.read(footer, 0, TRAILER_FOOTER_BYTES, size - TRAILER_FOOTER_BYTES);
    let metadata: Record<string, string>;
    let bodyLength: number;
    try {
      const jsonLength = decodeFooter(footer);
      bodyLength = size - TRAILER_FOOTER_BYTES - jsonLength;
      if (bodyLength < 0) throw new TrailerError('metadata longer than the file');
      const json = Buffer.allocUnsafe(jsonLength);
      await handle.read(json, 0, jsonLength, bodyLength);
      metadata = decodeMetadata(json);
    } catch (error) {
      if (error instanceof TrailerError) throw new AuditFailure(error.message);
      throw error;
    }
    if (metadata['Content-Length'] !== String(bodyLength)) {
      throw new AuditFailure(`length ${bodyLength} is not Content-Length ${metadata['Content-Length']}`);
    }
    if (mode === 'sizes') return 0;
    const md5 = createHash('md5');
    const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
    let position = 0;
    let dropFrom = 0;
    let droppedAt = 0;
    // Bounded: each pass reads >= 1 byte or fails.
    while (position < bodyLength) {
      const want = Math.min(CHUNK_BYTES, bodyLength - position);
      await bytesLimiter?.wait(want, signal);
      const { bytesRead } = await handle.read(buffer, 0, want, position);
      if (bytesRead === 0) throw new AuditFailure('file shorter than its metadata says');
      md5.update(buffer.subarray(0, bytesRead));
      position += bytesRead;
      if (position - droppedAt >= DROP_CACHE_WINDOW_BYTES) {
        dropFrom = dropBehind(handle.fd, dropFrom, position);
        droppedAt = position;
      }
    }
    dropPageCache(handle.fd, dropFrom, size - dropFrom); // the rest of the body and the trailer
    const actual = md5.digest('hex');
    if (actual !== metadata.ETag) throw new AuditFailure(`md5 ${actual} is not the ETag ${metadata.ETag}`);
    return bodyLength;
  } finally {
    await handle.close();
  }
}

export class ObjectAuditor implements Daemon {
  readonly name = 'object-auditor';

  constructor(private readonly options: AuditorOptions) {}

  async runOnce(signal?: AbortSignal): Promise<PassSummary> {
    const sizes = await this.sweep('sizes', signal);
    const full = await this.sweep('full', signal);
    return { ...full, sizesFilesChecked: sizes.filesChecked, sizesQuarantined: sizes.quarantined };
  }

  async sweep(
    mode: AuditMode,
    signal?: AbortSignal,
  ): Promise<PassSummary & { filesChecked: number; quarantined: number }> {
    const { config, logger } = this.options;
    const startedMs = Date.now();
    const files = new RateLimiter(mode === 'sizes' ? config.zeroByteFilesPerSecond : config.filesPerSecond);
    const bytes = new RateLimiter(config.bytesPerSecond);
    let filesChecked = 0;
    let bytesRead = 0;
    let quarantined = 0;
    let errors = 0;
    for await (const entry of walkHashDirs(this.options.ring.localDevices(), signal)) {
      const data = entry.state.data;
      if (data === undefined) continue;
      await files.wait(1, signal).catch(() => undefined);
      if (signal?.aborted === true) break;
      const path = join(entry.hashDir, data.file);
      filesChecked += 1;
      try {
        bytesRead += await auditDataFile(path, mode, bytes, signal);
      } catch (error) {
        if (error instanceof AuditFailure) {
          const destination = await quarantineHashDir(entry.device.devicePath, entry.hashDir).catch(() => undefined);
          quarantined += 1;
          logger.warn({ path, reason: error.message, destination }, 'object quarantined by the auditor');
        } else if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
          errors += 1;
          logger.warn({ err: error, path }, 'cannot audit object');
        }
      }
    }
    const summary = { mode, filesChecked, bytesRead, quarantined, errors, seconds: roundSeconds(startedMs) };
    logger.info({ daemon: this.name, ...summary }, 'object audit pass');
    await writeRecon(this.options.reconCachePath, 'object', 'auditor', {
      ...summary,
      last_pass: Date.now() / 1000,
    }).catch(() => undefined);
    return summary;
  }
}
