/**
 * The per-device database registry shared by the container and account servers of one storage
 * node process: one LevelDB database per device, at `<devices>/<device>/db/`, opened on first use
 * and kept open until close(). LevelDB holds an exclusive lock on its folder, so one process owns
 * a device's database (as Swift's servers_per_port gives a device to one process); a second
 * process gets DatabaseUnavailableError.
 *
 * Each DeviceDatabase carries a KeyedMutex: brokers run each record's read-modify-write inside
 * `locks.run(key, ...)` and write it as one atomic batch.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import type { Logger } from '../../common/log.js';
import { KeyedMutex } from './keyed-mutex.js';

/** Keys are bytes (see keys.ts), values JSON text. */
export type LevelDatabase = ClassicLevel<Buffer, string>;

export class DatabaseUnavailableError extends Error {
  readonly code = 'DatabaseUnavailable';
  constructor(devicePath: string, options?: { cause?: unknown }) {
    super(`cannot open the database of ${devicePath}`, options);
    this.name = 'DatabaseUnavailableError';
  }
}

export interface DeviceDatabase {
  readonly devicePath: string;
  readonly db: LevelDatabase;
  readonly locks: KeyedMutex;
}

export interface DatabaseRegistryOptions {
  logger: Logger;
  /** LevelDB's block cache per device, bytes (classic-level's default is 8 MiB). */
  cacheSizeBytes?: number;
}

export class DatabaseRegistry {
  private readonly open = new Map<string, Promise<DeviceDatabase>>();
  private closed = false;
  private users = 0;

  constructor(private readonly options: DatabaseRegistryOptions) {}

  /** The database of the device at `devicePath`, opened (and created) on first use. */
  async get(devicePath: string): Promise<DeviceDatabase> {
    if (this.closed) throw new DatabaseUnavailableError(devicePath, { cause: new Error('registry closed') });
    let opening = this.open.get(devicePath);
    if (opening === undefined) {
      opening = this.openDevice(devicePath);
      this.open.set(devicePath, opening);
      // A failed open is forgotten so that the next request tries again (e.g. after a remount).
      opening.catch(() => {
        if (this.open.get(devicePath) === opening) this.open.delete(devicePath);
      });
    }
    return opening;
  }

  private async openDevice(devicePath: string): Promise<DeviceDatabase> {
    const location = join(devicePath, 'db');
    try {
      await mkdir(location, { recursive: true });
      const db: LevelDatabase = new ClassicLevel<Buffer, string>(location, {
        keyEncoding: 'buffer',
        valueEncoding: 'utf8',
        cacheSize: this.options.cacheSizeBytes,
      });
      await db.open();
      this.options.logger.debug({ location }, 'database opened');
      return { devicePath, db, locks: new KeyedMutex() };
    } catch (error) {
      this.options.logger.error({ location, err: error }, 'database open failed');
      throw new DatabaseUnavailableError(devicePath, { cause: error });
    }
  }

  /** Paths of the devices whose database is open or opening. */
  get devicePaths(): string[] {
    return [...this.open.keys()];
  }

  /**
   * Registers a user (a server) of the registry; the returned release closes every database when
   * the last user releases, so the container and account servers can each close() on shutdown.
   */
  acquire(): () => Promise<void> {
    this.users += 1;
    let released = false;
    return async () => {
      if (released) return;
      released = true;
      this.users -= 1;
      if (this.users === 0) await this.close();
    };
  }

  /** Closes every database; later get() calls fail. Safe to call twice. */
  async close(): Promise<void> {
    this.closed = true;
    const openings = [...this.open.values()];
    this.open.clear();
    const results = await Promise.allSettled(openings.map(async (opening) => (await opening).db.close()));
    for (const result of results) {
      if (result.status === 'rejected')
        this.options.logger.warn({ err: result.reason as unknown }, 'database close failed');
    }
  }
}
