/**
 * Container and account replication (Swift's db_replicator, over one LevelDB per device).
 *
 * A "database" is one container (or account): its info record and its rows, the key range
 * `prefix..prefix+0x03` of keys.ts. Its digest is the MD5 of its info's replicated fields and
 * every row. Each pass, for each partition of the space on a local device, the replicator sends
 * each peer (every primary, from a handoff) its digests; the peer answers with its own; every
 * database whose digest differs is pushed whole, `MERGE_ROWS_MAX` rows per request. The receiver
 * merges under the database's lock, in one atomic batch: each row newest-wins (containers: the
 * row's timestamp; accounts: its put and delete timestamps), the info's timestamps max (created_at
 * min), metadata item by item, and the stats recounted from the merged rows, so they equal the
 * rows. A database missing on the peer is created by the merge. A handoff partition is removed
 * once every primary took it. Rows and databases past reclaim_age are reclaimed by the first
 * pass and then once an hour. Digests are cached while the device's LevelDB takes no write.
 *
 * Wire (REPLICATE = POST with X-Backend-Replicate, see object-replication.ts):
 *   REPLICATE /<dev>/<part>/db-digests?space=container|account  body {digests}  -> {digests}
 *   REPLICATE /<dev>/<part>/db-merge?space=...  body {prefix (hex), info, rows: [[name, value]]}
 *   REPLICATE /<dev>/0/db-pass?space=...        runs one pass for that device here -> summary
 */
import { createHash } from 'node:crypto';
import type { Context } from 'koa';
import { HttpError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { Timestamp } from '../../common/timestamp.js';
import { reclaimAccounts } from '../account/broker.js';
import { reclaimContainers } from '../container/broker.js';
import {
  databasePrefixOf,
  decodeKey,
  infoKey,
  lockName,
  partitionRange,
  rowsPrefix,
  SPACE_ACCOUNT,
  SPACE_CONTAINER,
} from '../db/keys.js';
import { mergeMetadata, type MetadataItems } from '../db/metadata.js';
import type { DatabaseRegistry, DeviceDatabase } from '../db/registry.js';
import type { RingDevice } from '../../ring/ring.js';
import type { ReplicatorConfig } from './config.js';
import { forEachLimited, roundSeconds, type PassSummary } from './daemon.js';
import { callPeer, encodePath, isSuccess } from './http-client.js';
import { REPLICATE_REQUEST } from './object-replication.js';
import { writeRecon } from './recon.js';
import type { LocalDevice, RingView } from './ring-view.js';

export type DbSpace = 'container' | 'account';
/** Rows per merge request: bounds request size and the time a database's lock is held. */
export const MERGE_ROWS_MAX = 5_000;
const REQUEST_BYTES_MAX = 64 * 1024 * 1024;
/** One byte past every key of a database (rows are `prefix 0x02 name`). */
const DATABASE_END = 0x03;

type Row = [name: string, value: string];

export interface DatabaseDump {
  prefix: Buffer;
  info: string | undefined;
  rows: Row[];
}

function spaceByte(space: DbSpace): number {
  return space === 'container' ? SPACE_CONTAINER : SPACE_ACCOUNT;
}

function databaseRange(prefix: Buffer): { gte: Buffer; lt: Buffer } {
  return { gte: prefix, lt: Buffer.concat([prefix, Buffer.from([DATABASE_END])]) };
}

/** The partitions of a space that hold at least one database on this device. */
export async function partitionsOf(database: DeviceDatabase, space: DbSpace): Promise<number[]> {
  const partitions: number[] = [];
  const byte = spaceByte(space);
  let next = partitionRange(byte, 0).gte;
  const end = Buffer.from([byte + 1]);
  // Bounded: each step moves to the next partition.
  for (let guard = 0; guard < 2 ** 24; guard += 1) {
    const [key] = await database.db.keys({ gte: next, lt: end, limit: 1 }).all();
    if (key === undefined) break;
    const partition = key.readUInt32BE(1);
    partitions.push(partition);
    if (partition === 0xffff_ffff) break;
    next = partitionRange(byte, partition + 1).gte;
  }
  return partitions;
}

/** The database prefixes of one partition of a space. */
export async function databasesOf(database: DeviceDatabase, space: DbSpace, partition: number): Promise<Buffer[]> {
  const prefixes: Buffer[] = [];
  const range = partitionRange(spaceByte(space), partition);
  let next = range.gte;
  for (let guard = 0; guard < 10_000_000; guard += 1) {
    const [key] = await database.db.keys({ gte: next, lt: range.lt, limit: 1 }).all();
    if (key === undefined) break;
    const prefix = Buffer.from(databasePrefixOf(key));
    prefixes.push(prefix);
    next = databaseRange(prefix).lt;
  }
  return prefixes;
}

export async function dumpDatabase(database: DeviceDatabase, prefix: Buffer): Promise<DatabaseDump> {
  const info = await database.db.get(infoKey(prefix));
  const rowsKey = rowsPrefix(prefix);
  const rows: Row[] = [];
  for await (const [key, value] of database.db.iterator({ gte: rowsKey, lt: databaseRange(prefix).lt })) {
    rows.push([key.toString('utf8', rowsKey.length), value]);
  }
  return { prefix, info, rows };
}

/**
 * Digests and database lists of a device, kept while its LevelDB takes no write at all (the
 * 'write' event of abstract-level fires after every put, del and batch, whoever makes it), and
 * for at most CACHE_AGE_MS (a batch begun before the listener was attached emits nothing). An
 * idle device answers each pass from memory; a device taking writes dumps as before.
 */
interface DeviceCache {
  generation: number;
  startedMs: number;
  digests: Map<string, string>;
  databases: Map<string, Buffer[]>;
}
const CACHE_AGE_MS = 600_000;
const RECLAIM_INTERVAL_MS = 3_600_000;
const CACHE_ENTRIES_MAX = 1_000_000;
const deviceCaches = new WeakMap<object, DeviceCache>();

function cacheOf(database: DeviceDatabase): DeviceCache {
  let cache = deviceCaches.get(database.db);
  if (cache === undefined) {
    const created: DeviceCache = { generation: 0, startedMs: Date.now(), digests: new Map(), databases: new Map() };
    database.db.on('write', () => clearCache(created));
    deviceCaches.set(database.db, created);
    cache = created;
  }
  if (Date.now() - cache.startedMs > CACHE_AGE_MS || cache.digests.size > CACHE_ENTRIES_MAX) clearCache(cache);
  return cache;
}

function clearCache(cache: DeviceCache): void {
  cache.generation += 1;
  cache.startedMs = Date.now();
  cache.digests.clear();
  cache.databases.clear();
}

/** digestOf(dumpDatabase(...)), from the cache when the device took no write since. */
export async function cachedDigest(database: DeviceDatabase, prefix: Buffer): Promise<string> {
  const cache = cacheOf(database);
  const hex = prefix.toString('hex');
  const known = cache.digests.get(hex);
  if (known !== undefined) return known;
  const generation = cache.generation;
  const digest = digestOf(await dumpDatabase(database, prefix));
  if (cache.generation === generation) cache.digests.set(hex, digest);
  return digest;
}

/** databasesOf(...), from the cache when the device took no write since. */
export async function cachedDatabasesOf(
  database: DeviceDatabase,
  space: DbSpace,
  partition: number,
): Promise<Buffer[]> {
  const cache = cacheOf(database);
  const key = `${space}/${partition}`;
  const known = cache.databases.get(key);
  if (known !== undefined) return known;
  const generation = cache.generation;
  const prefixes = await databasesOf(database, space, partition);
  if (cache.generation === generation) cache.databases.set(key, prefixes);
  return prefixes;
}

/** The info fields replicas must agree on (stats follow from rows; account_update is local). */
function infoDigestPart(info: string | undefined): string {
  if (info === undefined) return '';
  const parsed = JSON.parse(info) as Record<string, unknown>;
  const metadata = (parsed.metadata ?? {}) as MetadataItems;
  const sortedMetadata = Object.keys(metadata)
    .sort()
    .map((name) => [name, metadata[name]]);
  return JSON.stringify([parsed.put_timestamp, parsed.delete_timestamp, parsed.status ?? '', sortedMetadata]);
}

export function digestOf(dump: DatabaseDump): string {
  const md5 = createHash('md5').update(infoDigestPart(dump.info));
  for (const [name, value] of dump.rows) md5.update('\0').update(name).update('\0').update(value);
  return md5.digest('hex');
}

function maxString(a: string | undefined, b: string | undefined): string {
  return (a ?? '') > (b ?? '') ? (a ?? '') : (b ?? '');
}

/** Newest-wins for one row; returns the value to keep. */
export function mergeRowValue(space: DbSpace, existing: string | undefined, incoming: string): string {
  if (existing === undefined) return incoming;
  if (space === 'container') {
    const a = JSON.parse(existing) as { t: string };
    const b = JSON.parse(incoming) as { t: string };
    return b.t > a.t ? incoming : existing;
  }
  const a = JSON.parse(existing) as { p: string; x: string; o: number; b: number; i: number; d?: 1 };
  const b = JSON.parse(incoming) as typeof a;
  const newestA = maxString(a.p, a.x);
  const newestB = maxString(b.p, b.x);
  // Reports of the same timestamps may carry different counts: a fixed tie-break lets replicas agree.
  const tie = newestA === newestB && JSON.stringify([b.o, b.b, b.i]) > JSON.stringify([a.o, a.b, a.i]);
  const newer = newestB > newestA || tie ? b : a;
  const row: typeof a = { p: maxString(a.p, b.p), x: maxString(a.x, b.x), o: newer.o, b: newer.b, i: newer.i };
  if (row.x > row.p && row.o === 0) row.d = 1;
  const merged = JSON.stringify(row);
  return merged === existing ? existing : merged;
}

/** Merges two info records (either may be missing) and sets stats from the merged rows. */
export function mergeInfo(
  space: DbSpace,
  existing: string | undefined,
  incoming: string | undefined,
  rows: Iterable<string>,
): string | undefined {
  if (existing === undefined && incoming === undefined) return undefined;
  const a = existing === undefined ? undefined : (JSON.parse(existing) as Record<string, unknown>);
  const b = incoming === undefined ? undefined : (JSON.parse(incoming) as Record<string, unknown>);
  const base: Record<string, unknown> = { ...(b ?? {}), ...(a ?? {}) };
  const str = (record: Record<string, unknown> | undefined, field: string): string | undefined =>
    typeof record?.[field] === 'string' ? record[field] : undefined;
  base.put_timestamp = maxString(str(a, 'put_timestamp'), str(b, 'put_timestamp'));
  base.delete_timestamp = maxString(str(a, 'delete_timestamp'), str(b, 'delete_timestamp'));
  const createdA = str(a, 'created_at');
  const createdB = str(b, 'created_at');
  base.created_at =
    createdA === undefined ? createdB : createdB === undefined ? createdA : createdA < createdB ? createdA : createdB;
  const changedA = str(a, 'status_changed_at') ?? '';
  const changedB = str(b, 'status_changed_at') ?? '';
  base.status_changed_at = maxString(changedA, changedB);
  if (space === 'account') base.status = (changedB > changedA ? b?.status : a?.status) ?? '';
  base.metadata = mergeMetadata((a?.metadata ?? {}) as MetadataItems, (b?.metadata ?? {}) as MetadataItems).merged;
  if (space === 'container') {
    let count = 0;
    let bytes = 0;
    for (const value of rows) {
      const row = JSON.parse(value) as { s: number; d?: 1 };
      if (row.d !== 1) {
        count += 1;
        bytes += row.s;
      }
    }
    base.object_count = count;
    base.bytes_used = bytes;
  } else {
    let containers = 0;
    let objects = 0;
    let bytes = 0;
    for (const value of rows) {
      const row = JSON.parse(value) as { o: number; b: number; d?: 1 };
      if (row.d !== 1) containers += 1;
      objects += row.o;
      bytes += row.b;
    }
    base.container_count = containers;
    base.object_count = objects;
    base.bytes_used = bytes;
  }
  return JSON.stringify(base);
}

/** Merges a pushed database (or part of its rows) into the local one, atomically. Returns rows changed. */
export async function mergeDatabase(database: DeviceDatabase, space: DbSpace, dump: DatabaseDump): Promise<number> {
  return database.locks.run(lockName(dump.prefix), async () => {
    const rowsKey = rowsPrefix(dump.prefix);
    const keys = dump.rows.map(([name]) => Buffer.concat([rowsKey, Buffer.from(name, 'utf8')]));
    const existing = await database.db.getMany(keys);
    const operations: { type: 'put'; key: Buffer; value: string }[] = [];
    const changedRows = new Map<string, string>();
    dump.rows.forEach(([name, value], index) => {
      const key = keys[index];
      if (key === undefined) return;
      const merged = mergeRowValue(space, existing[index], value);
      if (merged !== existing[index]) {
        operations.push({ type: 'put', key, value: merged });
        changedRows.set(name, merged);
      }
    });
    // Stats are recounted over every row, the merged ones included.
    const allRows: string[] = [];
    for await (const [key, value] of database.db.iterator({ gte: rowsKey, lt: databaseRange(dump.prefix).lt })) {
      const name = key.toString('utf8', rowsKey.length);
      allRows.push(changedRows.get(name) ?? value);
      changedRows.delete(name);
    }
    allRows.push(...changedRows.values());
    const currentInfo = await database.db.get(infoKey(dump.prefix));
    const info = mergeInfo(space, currentInfo, dump.info, allRows);
    if (info !== undefined && info !== currentInfo)
      operations.push({ type: 'put', key: infoKey(dump.prefix), value: info });
    if (operations.length > 0) await database.db.batch(operations);
    return operations.length;
  });
}

function parseSpace(ctx: Context): DbSpace {
  const space = ctx.query.space;
  if (space !== 'container' && space !== 'account') throw new HttpError(400, 'Invalid space', { code: 'BadSpace' });
  return space;
}

async function readJsonBody(ctx: Context): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  // Bounded by REQUEST_BYTES_MAX.
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > REQUEST_BYTES_MAX) throw new HttpError(413, 'Your request is too large.', { code: 'TooLarge' });
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch (error) {
    throw new HttpError(400, 'Body is not JSON', { code: 'BadJson', cause: error });
  }
}

export interface DbReplicationHandlerOptions {
  registry: () => Promise<DatabaseRegistry | undefined>;
  /** Runs one pass of the space's replicator over one device (db-pass), when this node runs one. */
  runPass?: (space: DbSpace, devicePath: string) => Promise<PassSummary>;
}

/** Answers the db-* REPLICATE operations; returns false when the path is not one of them. */
export async function handleDbReplicate(
  ctx: Context,
  target: { devicePath: string; partition: number; account: string; container?: string },
  options: DbReplicationHandlerOptions,
): Promise<boolean> {
  const op = target.account;
  if (!op.startsWith('db-') || target.container !== undefined) return false;
  const space = parseSpace(ctx);
  const registry = await options.registry();
  if (registry === undefined) throw new HttpError(501, 'no databases on this node', { code: 'NotImplemented' });
  const database = await registry.get(target.devicePath);
  if (op === 'db-digests') {
    await readJsonBody(ctx);
    const digests: Record<string, string> = {};
    for (const prefix of await cachedDatabasesOf(database, space, target.partition)) {
      digests[prefix.toString('hex')] = await cachedDigest(database, prefix);
    }
    ctx.status = 200;
    ctx.type = 'application/json';
    ctx.body = JSON.stringify({ digests });
    return true;
  }
  if (op === 'db-merge') {
    const body = (await readJsonBody(ctx)) as { prefix?: unknown; info?: unknown; rows?: unknown };
    if (typeof body.prefix !== 'string' || !Array.isArray(body.rows) || body.rows.length > MERGE_ROWS_MAX) {
      throw new HttpError(400, 'Invalid merge', { code: 'BadMerge' });
    }
    const prefix = Buffer.from(body.prefix, 'hex');
    let decoded;
    try {
      decoded = decodeKey(infoKey(prefix));
    } catch (error) {
      throw new HttpError(400, 'Invalid database prefix', { code: 'BadMerge', cause: error });
    }
    if (decoded.space !== spaceByte(space) || decoded.partition !== target.partition) {
      throw new HttpError(400, 'Database is not of this space and partition', { code: 'BadMerge' });
    }
    const rows = (body.rows as unknown[]).filter(
      (row): row is Row =>
        Array.isArray(row) && typeof row[0] === 'string' && typeof row[1] === 'string' && !row[0].includes('\0'),
    );
    const info = typeof body.info === 'string' ? body.info : undefined;
    const changed = await mergeDatabase(database, space, { prefix, info, rows });
    ctx.status = 200;
    ctx.type = 'application/json';
    ctx.body = JSON.stringify({ changed });
    return true;
  }
  if (op === 'db-pass') {
    if (options.runPass === undefined) throw new HttpError(501, 'no replicator here', { code: 'NotImplemented' });
    const summary = await options.runPass(space, target.devicePath);
    ctx.status = 200;
    ctx.type = 'application/json';
    ctx.body = JSON.stringify(summary);
    return true;
  }
  throw new HttpError(400, 'Invalid REPLICATE path', { code: 'BadReplicatePath' });
}

export interface DbReplicatorOptions {
  space: DbSpace;
  config: ReplicatorConfig;
  ring: RingView;
  registry: () => Promise<DatabaseRegistry | undefined>;
  logger: Logger;
  reconCachePath: string;
}

interface DbStats {
  partitionsChecked: number;
  partitionsOutOfSync: number;
  databasesPushed: number;
  rowsPushed: number;
  handoffsRemoved: number;
  reclaimed: number;
  failures: number;
}

/** The container or account replicator: in the storage node's process, which owns the databases. */
export class DbReplicator {
  readonly name: string;
  private readonly lastReclaimMs = new Map<string, number>();

  constructor(private readonly options: DbReplicatorOptions) {
    this.name = `${options.space}-replicator`;
  }

  private request(
    peer: RingDevice,
    op: string,
    partition: number,
    body: unknown,
  ): Promise<{ ok: boolean; json: unknown }> {
    return callPeer({
      ip: peer.replication_ip || peer.ip,
      port: peer.replication_port || peer.port,
      method: REPLICATE_REQUEST.method,
      path: `${encodePath(peer.device, partition, op)}?space=${this.options.space}`,
      headers: {
        ...REPLICATE_REQUEST.headers,
        'Content-Type': 'application/json',
        'User-Agent': `${this.name} ${process.pid}`,
      },
      body: Buffer.from(JSON.stringify(body), 'utf8'),
      connTimeoutMs: this.options.config.connTimeoutMs,
      nodeTimeoutMs: this.options.config.nodeTimeoutMs,
    }).then((response) => {
      if (!isSuccess(response)) return { ok: false, json: undefined };
      try {
        return { ok: true, json: JSON.parse(response.body.toString('utf8')) as unknown };
      } catch {
        return { ok: false, json: undefined };
      }
    });
  }

  async runOnce(signal?: AbortSignal): Promise<PassSummary> {
    const startedMs = Date.now();
    const stats = this.newStats();
    for (const device of this.options.ring.localDevices()) {
      if (signal?.aborted === true) break;
      await this.replicateDevice(device, stats, signal);
    }
    return this.finish(stats, startedMs);
  }

  /** One pass over one device (the db-pass operation of a standalone run). */
  async runDevice(devicePath: string): Promise<PassSummary> {
    const startedMs = Date.now();
    const stats = this.newStats();
    const device = this.options.ring.localDevices().find((local) => local.devicePath === devicePath);
    if (device !== undefined) await this.replicateDevice(device, stats);
    return this.finish(stats, startedMs);
  }

  private newStats(): DbStats {
    return {
      partitionsChecked: 0,
      partitionsOutOfSync: 0,
      databasesPushed: 0,
      rowsPushed: 0,
      handoffsRemoved: 0,
      reclaimed: 0,
      failures: 0,
    };
  }

  private async finish(stats: DbStats, startedMs: number): Promise<PassSummary> {
    const summary: PassSummary = { ...stats, seconds: roundSeconds(startedMs) };
    this.options.logger.info({ daemon: this.name, ...summary }, `${this.options.space} replication pass`);
    await writeRecon(this.options.reconCachePath, this.options.space, 'replication', {
      last_pass: Date.now() / 1000,
      pass_seconds: summary.seconds,
      partitions_checked: stats.partitionsChecked,
      partitions_out_of_sync: stats.partitionsOutOfSync,
      databases_pushed: stats.databasesPushed,
      rows_pushed: stats.rowsPushed,
      handoffs_removed: stats.handoffsRemoved,
      failures: stats.failures,
    }).catch(() => undefined);
    return summary;
  }

  private async replicateDevice(device: LocalDevice, stats: DbStats, signal?: AbortSignal): Promise<void> {
    const registry = await this.options.registry();
    if (registry === undefined) return;
    const database = await registry.get(device.devicePath);
    const cutoff = Timestamp.fromSeconds(
      Math.max(0, Date.now() / 1000 - this.options.config.reclaimAgeSeconds),
    ).internal;
    // A reclaim reads every key of the space: once an hour is plenty (reclaim_age is a week).
    const lastReclaimMs = this.lastReclaimMs.get(device.devicePath);
    if (lastReclaimMs === undefined || Date.now() - lastReclaimMs >= RECLAIM_INTERVAL_MS) {
      this.lastReclaimMs.set(device.devicePath, Date.now());
      const reclaim = this.options.space === 'container' ? reclaimContainers : reclaimAccounts;
      const reclaimed = await reclaim(database, cutoff).catch(() => undefined);
      if (reclaimed !== undefined) stats.reclaimed += reclaimed.rowsReclaimed + reclaimed.databasesRemoved;
    }
    const partitions = await partitionsOf(database, this.options.space);
    await forEachLimited(
      partitions,
      this.options.config.concurrency,
      (partition) => this.replicatePartition(device, database, partition, stats),
      (partition, error) => {
        stats.failures += 1;
        this.options.logger.warn({ err: error, partition }, `${this.options.space} partition replication failed`);
      },
      signal,
    );
  }

  private async replicatePartition(
    device: LocalDevice,
    database: DeviceDatabase,
    partition: number,
    stats: DbStats,
  ): Promise<void> {
    const { ring } = this.options;
    if (partition >= ring.ring.partitionCount) return;
    stats.partitionsChecked += 1;
    const prefixes = await cachedDatabasesOf(database, this.options.space, partition);
    const digests: Record<string, string> = {};
    for (const prefix of prefixes) digests[prefix.toString('hex')] = await cachedDigest(database, prefix);
    const peers = ring.peers(partition, device.ring);
    let allSynced = peers.length > 0;
    let outOfSync = false;
    for (const peer of peers) {
      const answer = await this.request(peer, 'db-digests', partition, { digests });
      if (!answer.ok) {
        allSynced = false;
        stats.failures += 1;
        continue;
      }
      const remote = (answer.json as { digests?: Record<string, string> }).digests ?? {};
      for (const prefix of prefixes) {
        const hex = prefix.toString('hex');
        if (remote[hex] === digests[hex]) continue;
        outOfSync = true;
        // Read now (not with the digest): only a database that differs is read in full.
        const dump = await dumpDatabase(database, prefix);
        let pushed = true;
        const chunks = Math.max(1, Math.ceil(dump.rows.length / MERGE_ROWS_MAX));
        for (let chunk = 0; chunk < chunks; chunk += 1) {
          const rows = dump.rows.slice(chunk * MERGE_ROWS_MAX, (chunk + 1) * MERGE_ROWS_MAX);
          const merged = await this.request(peer, 'db-merge', partition, { prefix: hex, info: dump.info, rows });
          if (!merged.ok) {
            pushed = false;
            break;
          }
          stats.rowsPushed += rows.length;
        }
        if (pushed) stats.databasesPushed += 1;
        else {
          allSynced = false;
          stats.failures += 1;
        }
      }
    }
    if (outOfSync) stats.partitionsOutOfSync += 1;
    if (ring.isPrimary(partition, device.ring) || !allSynced || !this.options.config.deleteHandoffs) return;
    // A handoff every primary now holds: remove it, unless it changed while we pushed.
    for (const prefix of prefixes) {
      await database.locks.run(lockName(prefix), async () => {
        const now = await dumpDatabase(database, prefix);
        if (digestOf(now) !== digests[prefix.toString('hex')]) return;
        const range = databaseRange(prefix);
        await database.db.clear({ gte: range.gte, lt: range.lt });
      });
    }
    stats.handoffsRemoved += 1;
  }
}
