/**
 * Container and account replication (Swift's db_replicator, over one LevelDB per device).
 *
 * A "database" is one container (or account): its info record and its rows, the key range
 * `prefix..prefix+0x03` of keys.ts, plus its change log and its peers' sync points (keys.ts,
 * db/row-sequence.ts). Each pass, for each partition of the space on a local device, the
 * replicator sends each peer (every primary, from a handoff) one db-sync request naming, for each
 * database there, its id, its row counter and a hash of its replicated info fields; the peer
 * answers, for each, how far it has merged this replica's rows (its sync point for our id) and
 * its own info hash. A database the peer is level with costs nothing more. Otherwise the rows
 * after the peer's point are read with one range scan of the change log and pushed with the info,
 * `MERGE_ROWS_MAX` rows per db-merge request, each carrying our id and the highest sequence sent,
 * which the peer records with the merged rows (db-merge.ts). So a pass costs what changed since
 * the last one, not the size of the databases. A database with no sync point on the peer (new
 * there, lost, or re-created with a new id) is pushed whole by the same path. A database written
 * before sequences existed is first sequenced here (db-changes.ts), then pushed whole once.
 *
 * A handoff partition is removed once every primary took it and its databases did not change
 * meanwhile. Rows and databases past reclaim_age are reclaimed by the first pass and then once an
 * hour. Database lists and local states are cached while the device's LevelDB takes no write.
 *
 * Wire (REPLICATE = POST with X-Backend-Replicate, see object-replication.ts):
 *   REPLICATE /<dev>/<part>/db-sync?space=container|account
 *       body {databases: {<prefix hex>: {id, max_row, info}}} -> {databases: {<hex>: {point, info}}}
 *   REPLICATE /<dev>/<part>/db-merge?space=...
 *       body {prefix (hex), info, rows: [[name, value]], source?: {id, through}} -> {changed}
 *   REPLICATE /<dev>/<part>/db-digests?space=...  body {digests} -> {digests} (whole-database
 *       MD5s, rows without their sequences: what replicators before db-sync asked)
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
  databaseSideRanges,
  decodeKey,
  infoKey,
  lockName,
  partitionRange,
  rowsPrefix,
  SPACE_ACCOUNT,
  SPACE_CONTAINER,
  syncPointKey,
} from '../db/keys.js';
import type { DatabaseRegistry, DeviceDatabase } from '../db/registry.js';
import type { RingDevice } from '../../ring/ring.js';
import type { ReplicatorConfig } from './config.js';
import { forEachLimited, roundSeconds, type PassSummary } from './daemon.js';
import {
  forEachChangeChunk,
  infoDigestPart,
  infoHash,
  readLocalState,
  sequenceDatabase,
  type LocalState,
  type Row,
} from './db-changes.js';
import { mergeDatabase, withoutSequence, type DatabaseDump, type DbSpace, type SyncSource } from './db-merge.js';
import { callPeer, encodePath, isSuccess } from './http-client.js';
import { REPLICATE_REQUEST } from './object-replication.js';
import { writeRecon } from './recon.js';
import type { LocalDevice, RingView } from './ring-view.js';

export { mergeDatabase, mergeInfo, mergeRowValue, type DatabaseDump, type DbSpace } from './db-merge.js';

/** Rows per merge request: bounds request size and the time a database's lock is held. */
export const MERGE_ROWS_MAX = 5_000;
const REQUEST_BYTES_MAX = 64 * 1024 * 1024;
/** One byte past every key of a database (rows are `prefix 0x02 name`). */
const DATABASE_END = 0x03;

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
  states: Map<string, LocalState>;
}
const CACHE_AGE_MS = 600_000;
const RECLAIM_INTERVAL_MS = 3_600_000;
const CACHE_ENTRIES_MAX = 1_000_000;
const deviceCaches = new WeakMap<object, DeviceCache>();

function cacheOf(database: DeviceDatabase): DeviceCache {
  let cache = deviceCaches.get(database.db);
  if (cache === undefined) {
    const created: DeviceCache = {
      generation: 0,
      startedMs: Date.now(),
      digests: new Map(),
      databases: new Map(),
      states: new Map(),
    };
    database.db.on('write', () => clearCache(created));
    deviceCaches.set(database.db, created);
    cache = created;
  }
  if (
    Date.now() - cache.startedMs > CACHE_AGE_MS ||
    cache.digests.size > CACHE_ENTRIES_MAX ||
    cache.states.size > CACHE_ENTRIES_MAX
  )
    clearCache(cache);
  return cache;
}

function clearCache(cache: DeviceCache): void {
  cache.generation += 1;
  cache.startedMs = Date.now();
  cache.digests.clear();
  cache.databases.clear();
  cache.states.clear();
}

/** readLocalState(...), from the cache when the device took no write since. */
export async function cachedLocalState(database: DeviceDatabase, prefix: Buffer): Promise<LocalState> {
  const cache = cacheOf(database);
  const hex = prefix.toString('hex');
  const known = cache.states.get(hex);
  if (known !== undefined) return known;
  const generation = cache.generation;
  const state = await readLocalState(database, prefix);
  if (cache.generation === generation) cache.states.set(hex, state);
  return state;
}

/** The whole-database digest (db-digests): info fields and every row without its sequence. */
export function digestOf(dump: DatabaseDump): string {
  const md5 = createHash('md5').update(infoDigestPart(dump.info));
  for (const [name, value] of dump.rows) md5.update('\0').update(name).update('\0').update(withoutSequence(value));
  return md5.digest('hex');
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

interface SyncAnswer {
  /** The highest of the asker's row sequences this replica has merged. */
  point: number;
  /** infoHash of this replica's info; '' when it has none. */
  info: string;
}

/** A database prefix sent in hex, checked to be of this space and partition. */
function checkedPrefix(hex: string, space: DbSpace, partition: number): Buffer {
  const prefix = Buffer.from(hex, 'hex');
  let decoded;
  try {
    decoded = decodeKey(infoKey(prefix));
  } catch (error) {
    throw new HttpError(400, 'Invalid database prefix', { code: 'BadMerge', cause: error });
  }
  if (decoded.space !== spaceByte(space) || decoded.partition !== partition) {
    throw new HttpError(400, 'Database is not of this space and partition', { code: 'BadMerge' });
  }
  return prefix;
}

function syncSourceOf(value: unknown): SyncSource | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { id, through } = value as { id?: unknown; through?: unknown };
  if (typeof id !== 'string' || id.length === 0 || id.includes('\0')) return undefined;
  if (typeof through !== 'number' || !Number.isSafeInteger(through) || through < 0) return undefined;
  return { id, through };
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
  if (op === 'db-sync') {
    const body = (await readJsonBody(ctx)) as { databases?: unknown };
    if (typeof body.databases !== 'object' || body.databases === null) {
      throw new HttpError(400, 'Invalid sync', { code: 'BadSync' });
    }
    const answers: Record<string, SyncAnswer> = {};
    for (const [hex, entry] of Object.entries(body.databases as Record<string, unknown>)) {
      const id = (entry as { id?: unknown } | null)?.id;
      if (typeof id !== 'string' || id.length === 0 || id.includes('\0')) continue;
      const prefix = checkedPrefix(hex, space, target.partition);
      const [info, point] = await database.db.getMany([infoKey(prefix), syncPointKey(prefix, id)]);
      // Without the database, a point kept for it counts for nothing: everything is wanted.
      answers[hex] = info === undefined ? { point: 0, info: '' } : { point: Number(point ?? 0), info: infoHash(info) };
    }
    ctx.status = 200;
    ctx.type = 'application/json';
    ctx.body = JSON.stringify({ databases: answers });
    return true;
  }
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
    const body = (await readJsonBody(ctx)) as { prefix?: unknown; info?: unknown; rows?: unknown; source?: unknown };
    if (typeof body.prefix !== 'string' || !Array.isArray(body.rows) || body.rows.length > MERGE_ROWS_MAX) {
      throw new HttpError(400, 'Invalid merge', { code: 'BadMerge' });
    }
    const prefix = checkedPrefix(body.prefix, space, target.partition);
    const rows = (body.rows as unknown[]).filter(
      (row): row is Row =>
        Array.isArray(row) && typeof row[0] === 'string' && typeof row[1] === 'string' && !row[0].includes('\0'),
    );
    const info = typeof body.info === 'string' ? body.info : undefined;
    const changed = await mergeDatabase(database, space, { prefix, info, rows }, syncSourceOf(body.source));
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
  /** Rows of databases written by older code given sequences this pass. */
  rowsSequenced: number;
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
      rowsSequenced: 0,
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
    const states = new Map<string, { prefix: Buffer; state: LocalState }>();
    for (const prefix of prefixes) {
      let state = await cachedLocalState(database, prefix);
      if (state.info !== undefined && state.id === undefined) {
        stats.rowsSequenced += await sequenceDatabase(database, prefix);
        state = await readLocalState(database, prefix);
      }
      if (state.id !== undefined) states.set(prefix.toString('hex'), { prefix, state });
    }
    const request: Record<string, { id: string; max_row: number; info: string }> = {};
    for (const [hex, { state }] of states) {
      if (state.id !== undefined) request[hex] = { id: state.id, max_row: state.maxRow, info: state.infoHash };
    }
    const peers = ring.peers(partition, device.ring);
    let allSynced = peers.length > 0 && states.size === prefixes.length;
    let outOfSync = false;
    for (const peer of peers) {
      const answer = await this.request(peer, 'db-sync', partition, { databases: request });
      if (!answer.ok) {
        allSynced = false;
        stats.failures += 1;
        continue;
      }
      const remote = (answer.json as { databases?: Record<string, Partial<SyncAnswer>> }).databases ?? {};
      for (const [hex, { prefix, state }] of states) {
        const point = remote[hex]?.point ?? 0;
        if (point >= state.maxRow && remote[hex]?.info === state.infoHash) continue;
        outOfSync = true;
        const pushed = await this.pushChanges(peer, partition, prefix, state, point, database, stats);
        if (pushed) stats.databasesPushed += 1;
        else {
          allSynced = false;
          stats.failures += 1;
        }
      }
    }
    if (outOfSync) stats.partitionsOutOfSync += 1;
    if (ring.isPrimary(partition, device.ring) || !allSynced || !this.options.config.deleteHandoffs) return;
    // A handoff every primary now holds: remove it, unless it changed while we pushed (every
    // change of a database rewrites its info: stats, counter or timestamps).
    for (const { prefix, state } of states.values()) {
      await database.locks.run(lockName(prefix), async () => {
        if ((await database.db.get(infoKey(prefix))) !== state.info) return;
        for (const range of [databaseRange(prefix), ...databaseSideRanges(prefix)]) await database.db.clear(range);
      });
    }
    stats.handoffsRemoved += 1;
  }

  /** Pushes a database's rows after the peer's sync point, and its info. Returns whether all went. */
  private async pushChanges(
    peer: RingDevice,
    partition: number,
    prefix: Buffer,
    state: LocalState,
    point: number,
    database: DeviceDatabase,
    stats: DbStats,
  ): Promise<boolean> {
    const hex = prefix.toString('hex');
    const id = state.id ?? '';
    let through = point;
    let sent = false;
    const merge = async (rows: Row[], upTo: number): Promise<boolean> => {
      const source: SyncSource = { id, through: upTo };
      const merged = await this.request(peer, 'db-merge', partition, { prefix: hex, info: state.info, rows, source });
      if (!merged.ok) return false;
      stats.rowsPushed += rows.length;
      through = Math.max(through, upTo);
      sent = true;
      return true;
    };
    const complete = await forEachChangeChunk(database, prefix, point, MERGE_ROWS_MAX, merge);
    if (!complete) return false;
    // Nothing logged after the point (an info change), or the newest rows were reclaimed since.
    if (!sent || through < state.maxRow) return merge([], Math.max(through, state.maxRow));
    return true;
  }
}
