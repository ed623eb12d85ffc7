/**
 * The container server (Swift's container-server behind the storage node's router):
 *
 *   PUT/HEAD/GET/POST/DELETE /<device>/<partition>/<account>/<container>
 *   PUT/DELETE /<device>/<partition>/<account>/<container>/<object> with X-Backend-Server-Type:
 *     container (object rows, sent by object servers: X-Timestamp, X-Size, X-Content-Type, X-Etag)
 *
 * Records live in the device's LevelDB database (broker.ts). After a container PUT or DELETE the
 * server reports to the account servers named by X-Account-Host/-Device/-Partition (and answers
 * 202 when one says the account does not exist, as Swift); after object-row changes it reports
 * a moment later (account-updater.ts). Statuses and headers follow Swift 2.30.
 *
 * Usage: `createContainerServer({ logger, constraints, databases, reclaimAgeSeconds })`, where
 * `databases` is the process's one DatabaseRegistry (shared with the account server). close()
 * stops the reports (turning waiting ones into pending records) and releases the registry.
 */
import type { Context } from 'koa';
import { checkMetadata, type Constraints } from '../../common/constraints.js';
import { HttpError, badRequest, notFound } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { Timestamp } from '../../common/timestamp.js';
import { metadataFromHeaders, visibleMetadata } from '../db/metadata.js';
import type { ReclaimResult } from '../db/reclaim.js';
import type { DatabaseRegistry } from '../db/registry.js';
import { deviceReclaimer, startReclaimTimer } from '../db/reclaim-timer.js';
import {
  checkNames,
  header,
  integerHeader,
  parseTimestampHeader,
  requireTimestamp,
  respondEmpty,
  respondError,
} from '../db/server-edge.js';
import { listingText, objectListingJson, objectListingXml, type ObjectListingEntry } from '../listing/formats.js';
import { bestListingType, parseListingQuery, parseQueryString } from '../listing/query.js';
import type { RequestTarget, StorageServer } from '../server-types.js';
import { AccountUpdater } from './account-updater.js';
import {
  ContainerBroker,
  ContainerMetadataError,
  ContainerNotEmptyError,
  ContainerNotFoundError,
  ContainerPolicyConflictError,
  ContainerTimestampConflictError,
  isContainerDeleted,
  reclaimContainers,
  ZERO_TIMESTAMP,
  type AccountUpdateTarget,
  type ContainerInfo,
} from './broker.js';

export interface ContainerServerOptions {
  logger: Logger;
  constraints: Readonly<Constraints>;
  /** The process's per-device databases, shared with the account server. */
  databases: DatabaseRegistry;
  /** Swift's reclaim_age (default a week): deleted rows and containers older than this go. */
  reclaimAgeSeconds: number;
  /** How often a background reclaim pass runs over the open devices (default an hour; 0: never). */
  reclaimIntervalMs?: number;
  /** Account update timeouts (Swift's conn_timeout / node_timeout). */
  connTimeoutMs?: number;
  nodeTimeoutMs?: number;
  /** Delay gathering object-row changes into one account report. */
  accountUpdateDebounceMs?: number;
  /** How often pending account reports are retried; 0 turns the timer off. */
  pendingRetryIntervalMs?: number;
}

export interface ContainerServer extends StorageServer {
  /** Reclaims one device's deleted rows and containers older than reclaim_age. */
  reclaim(devicePath: string, now?: Timestamp, bounds?: { maxKeys?: number; after?: Buffer }): Promise<ReclaimResult>;
  /** Replays pending account reports of every open device. */
  retryPendingReports(): Promise<{ sent: number; failed: number }>;
  readonly accountUpdater: AccountUpdater;
}

/** Asks a listing for each row's data timestamp as last_modified (object versioning's version ids). */
export const LISTING_DATA_TIMESTAMP = 'x-backend-listing-data-timestamp';

/** Headers kept as container metadata besides X-Container-Meta-* and X-Container-Sysmeta-*. */
const SAVED_HEADERS = new Set([
  'x-container-read',
  'x-container-write',
  'x-container-sync-key',
  'x-container-sync-to',
  'x-versions-location',
  'x-history-location',
]);

function isContainerMetadataHeader(lowerName: string): boolean {
  return (
    SAVED_HEADERS.has(lowerName) ||
    lowerName.startsWith('x-container-meta-') ||
    lowerName.startsWith('x-container-sysmeta-')
  );
}

/** Swift's gen_resp_headers: backend headers always, the stats only for a live container. */
function containerHeaders(info: ContainerInfo | undefined, deleted: boolean): Record<string, string | number> {
  const internal = (value: string | undefined): string => Timestamp.parse(value ?? ZERO_TIMESTAMP).internal;
  const headers: Record<string, string | number> = {
    'X-Backend-Timestamp': internal(info?.created_at),
    'X-Backend-PUT-Timestamp': internal(info?.put_timestamp),
    'X-Backend-DELETE-Timestamp': internal(info?.delete_timestamp),
    'X-Backend-Status-Changed-At': internal(info?.status_changed_at),
    'X-Backend-Storage-Policy-Index': info?.storage_policy_index ?? 0,
  };
  if (!deleted && info !== undefined) {
    headers['X-Container-Object-Count'] = info.object_count;
    headers['X-Container-Bytes-Used'] = info.bytes_used;
    headers['X-Timestamp'] = Timestamp.parse(info.created_at).normal;
    headers['X-PUT-Timestamp'] = Timestamp.parse(info.put_timestamp).normal;
    headers['X-Backend-Sharding-State'] = 'unsharded';
  }
  return headers;
}

function stringHeaders(headers: Record<string, string | number>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, String(value)]));
}

/** `text/plain;swift_bytes=N` (SLO manifests): Swift lists N as the size and drops the parameter. */
function listedSizeAndType(size: number, contentType: string): { bytes: number; contentType: string } {
  const match = /;\s*swift_bytes=(\d+)\s*$/.exec(contentType);
  if (match === null) return { bytes: size, contentType };
  return { bytes: Number(match[1]), contentType: contentType.slice(0, match.index) };
}

function accountUpdateTarget(ctx: Context): AccountUpdateTarget | undefined {
  const hostsHeader = header(ctx, 'x-account-host');
  const partition = header(ctx, 'x-account-partition');
  const hosts = (hostsHeader ?? '').split(',').map((host) => host.trim());
  const devices = (header(ctx, 'x-account-device') ?? '').split(',').map((device) => device.trim());
  if (hosts.length !== devices.length)
    throw badRequest('X-Account-Host and X-Account-Device do not match', 'BadAccountUpdate');
  if (partition === undefined || partition.trim() === '' || hostsHeader === undefined || hostsHeader.trim() === '') {
    return undefined;
  }
  return { hosts, devices, partition: partition.trim() };
}

function policyIndexHeader(ctx: Context, name: string): number | undefined {
  const raw = header(ctx, name);
  if (raw === undefined || raw.trim() === '') return undefined;
  if (!/^\s*\d+\s*$/.test(raw)) throw badRequest(`Invalid ${name}`, 'InvalidPolicyIndex');
  return Number(raw);
}

/** Domain errors to Swift's statuses; anything else is a 500 for the router to log. */
function toHttpError(error: unknown): unknown {
  if (error instanceof ContainerNotFoundError) return notFound();
  if (error instanceof ContainerNotEmptyError || error instanceof ContainerTimestampConflictError) {
    return new HttpError(409, undefined, { code: error.code, cause: error });
  }
  if (error instanceof ContainerPolicyConflictError) {
    return new HttpError(409, undefined, {
      code: error.code,
      headers: { 'X-Backend-Storage-Policy-Index': String(error.currentPolicyIndex) },
    });
  }
  if (error instanceof ContainerMetadataError) return badRequest(error.message, error.code);
  return error;
}

export function createContainerServer(options: ContainerServerOptions): ContainerServer {
  const { constraints, databases, logger } = options;
  const updater = new AccountUpdater({
    logger,
    databases,
    connTimeoutMs: options.connTimeoutMs,
    nodeTimeoutMs: options.nodeTimeoutMs,
    debounceMs: options.accountUpdateDebounceMs,
  });
  const retryIntervalMs = options.pendingRetryIntervalMs ?? 30_000;
  let retrying = false;

  const retryPendingReports = async (): Promise<{ sent: number; failed: number }> => {
    const total = { sent: 0, failed: 0 };
    for (const devicePath of databases.devicePaths) {
      const { sent, failed } = await updater.retryPending(devicePath);
      total.sent += sent;
      total.failed += failed;
    }
    return total;
  };

  const retryTimer =
    retryIntervalMs > 0
      ? setInterval(() => {
          if (retrying) return;
          retrying = true;
          retryPendingReports()
            .then((result) => {
              if (result.sent + result.failed > 0) logger.info(result, 'pending account reports replayed');
            })
            .catch((error: unknown) => logger.error({ err: error }, 'pending account reports failed'))
            .finally(() => {
              retrying = false;
            });
        }, retryIntervalMs)
      : undefined;
  retryTimer?.unref();

  const brokerFor = async (target: RequestTarget): Promise<ContainerBroker> => {
    const database = await databases.get(target.devicePath);
    return new ContainerBroker(database, target.partition, target.account, target.container ?? '');
  };

  const refOf = (
    target: RequestTarget,
  ): { devicePath: string; partition: number; account: string; container: string } => ({
    devicePath: target.devicePath,
    partition: target.partition,
    account: target.account,
    container: target.container ?? '',
  });

  const checkRequestMetadata = (ctx: Context): void => {
    const problem = checkMetadata(ctx.headers, 'container', constraints);
    if (problem !== undefined) throw badRequest(problem, 'InvalidMetadata');
  };

  /** A POST's X-Content-Type-Timestamp or X-Meta-Timestamp, when the update carries one. */
  const optionalTimestamp = (ctx: Context, name: string): string | undefined => {
    const raw = header(ctx, name);
    return raw === undefined ? undefined : parseTimestampHeader(raw, `Invalid ${name} header`);
  };

  async function putObjectRow(ctx: Context, target: RequestTarget, object: string): Promise<void> {
    const timestamp = requireTimestamp(ctx);
    const size = integerHeader(ctx, 'x-size');
    const contentType = header(ctx, 'x-content-type');
    const etag = header(ctx, 'x-etag');
    if (contentType === undefined) throw badRequest('Missing X-Content-Type header', 'MissingHeader');
    if (etag === undefined) throw badRequest('Missing X-Etag header', 'MissingHeader');
    const broker = await brokerFor(target);
    const changed = await broker.putObject(object, {
      timestamp,
      size,
      contentType,
      etag,
      contentTypeTimestamp: optionalTimestamp(ctx, 'x-content-type-timestamp'),
      metaTimestamp: optionalTimestamp(ctx, 'x-meta-timestamp'),
    });
    if (changed) updater.schedule(refOf(target));
    respondEmpty(ctx, 201);
  }

  async function deleteObjectRow(ctx: Context, target: RequestTarget, object: string): Promise<void> {
    const timestamp = requireTimestamp(ctx);
    const broker = await brokerFor(target);
    const changed = await broker.deleteObject(object, timestamp);
    if (changed) updater.schedule(refOf(target));
    respondEmpty(ctx, 204);
  }

  async function putContainer(ctx: Context, target: RequestTarget): Promise<void> {
    const timestamp = requireTimestamp(ctx);
    checkRequestMetadata(ctx);
    const accountUpdate = accountUpdateTarget(ctx);
    const requestedPolicyIndex = policyIndexHeader(ctx, 'x-backend-storage-policy-index');
    const defaultPolicyIndex = policyIndexHeader(ctx, 'x-backend-storage-policy-default') ?? 0;
    const broker = await brokerFor(target);
    const { created, info } = await broker.put(
      {
        timestamp,
        requestedPolicyIndex,
        defaultPolicyIndex,
        metadata: metadataFromHeaders(ctx.headers, isContainerMetadataHeader, timestamp),
        accountUpdate,
      },
      constraints,
    );
    const policyHeader = { 'X-Backend-Storage-Policy-Index': info.storage_policy_index };
    if (accountUpdate !== undefined) {
      const outcome = await updater.reportNow(refOf(target), header(ctx, 'x-trans-id'));
      if (outcome === 'account-missing') return respondEmpty(ctx, 202, policyHeader);
    }
    respondEmpty(ctx, created ? 201 : 202, policyHeader);
  }

  async function deleteContainer(ctx: Context, target: RequestTarget): Promise<void> {
    const timestamp = requireTimestamp(ctx);
    const accountUpdate = accountUpdateTarget(ctx);
    const broker = await brokerFor(target);
    const { existed } = await broker.delete(timestamp, accountUpdate);
    if (accountUpdate !== undefined) {
      const outcome = await updater.reportNow(refOf(target), header(ctx, 'x-trans-id'));
      if (outcome === 'account-missing') return respondEmpty(ctx, 202);
    }
    if (!existed) throw notFound();
    respondEmpty(ctx, 204);
  }

  async function postContainer(ctx: Context, target: RequestTarget): Promise<void> {
    const timestamp = requireTimestamp(ctx);
    checkRequestMetadata(ctx);
    const broker = await brokerFor(target);
    const { putTimestampMoved } = await broker.updateMetadata(
      metadataFromHeaders(ctx.headers, isContainerMetadataHeader, timestamp),
      constraints,
      timestamp,
    );
    if (putTimestampMoved) updater.schedule(refOf(target));
    respondEmpty(ctx, 204);
  }

  /** The live container's info, or 404 with Swift's backend headers. */
  async function liveInfo(target: RequestTarget): Promise<ContainerInfo> {
    const broker = await brokerFor(target);
    const info = await broker.getInfo();
    const deleted = isContainerDeleted(info);
    if (info === undefined || deleted) {
      throw notFound(undefined, stringHeaders(containerHeaders(info, true)));
    }
    return info;
  }

  function setInfoHeaders(ctx: Context, info: ContainerInfo): void {
    for (const [name, value] of Object.entries(containerHeaders(info, false))) ctx.set(name, String(value));
    for (const [name, value] of visibleMetadata(info.metadata)) {
      if (isContainerMetadataHeader(name.toLowerCase())) ctx.set(name, value);
    }
    ctx.set('Last-Modified', Timestamp.parse(info.put_timestamp).httpDate);
  }

  async function headContainer(ctx: Context, target: RequestTarget): Promise<void> {
    const format = parseQueryString(ctx.querystring).get('format');
    const contentType =
      format !== undefined && format !== ''
        ? (({ json: 'application/json', xml: 'application/xml' } as Record<string, string>)[format.toLowerCase()] ??
          'text/plain')
        : bestListingType(header(ctx, 'accept'));
    if (contentType === undefined) throw new HttpError(406, 'Not Acceptable', { code: 'NotAcceptable' });
    const info = await liveInfo(target);
    respondEmpty(ctx, 204);
    setInfoHeaders(ctx, info);
    ctx.set('Content-Type', `${contentType}; charset=utf-8`);
  }

  async function getContainer(ctx: Context, target: RequestTarget): Promise<void> {
    const query = parseListingQuery(ctx.querystring, header(ctx, 'accept'), constraints.container_listing_limit);
    const info = await liveInfo(target);
    const broker = await brokerFor(target);
    const entries = await broker.listObjects(query);
    // A row's last_modified is its newest timestamp, a POST's included (Swift's); object
    // versioning asks for the data's instead, which names the current version.
    const dataTimestamps = header(ctx, LISTING_DATA_TIMESTAMP) === 'true';
    const listing: ObjectListingEntry[] = entries.map((entry) => {
      if ('subdir' in entry) return entry;
      const { bytes, contentType } = listedSizeAndType(entry.row.size, entry.row.content_type);
      return {
        name: entry.name,
        hash: entry.row.etag,
        bytes,
        content_type: contentType,
        last_modified: Timestamp.parse(dataTimestamps ? entry.row.created_at : entry.row.meta_timestamp).isoformat,
      };
    });
    let body: string;
    if (query.contentType.endsWith('/xml')) body = objectListingXml(target.container ?? '', listing);
    else if (query.contentType === 'application/json') body = objectListingJson(listing);
    else body = listingText(listing);
    ctx.body = body;
    ctx.status = body === '' ? 204 : 200;
    setInfoHeaders(ctx, info);
    ctx.set('X-Backend-Record-Type', 'object');
    ctx.set('X-Backend-Record-Storage-Policy-Index', String(info.storage_policy_index));
    ctx.set('Content-Type', `${query.contentType}; charset=utf-8`);
  }

  async function dispatch(ctx: Context, target: RequestTarget): Promise<void> {
    checkNames(target, constraints);
    if (target.container === undefined) throw badRequest('No container given', 'BadPath');
    if (target.object !== undefined) {
      if (ctx.method === 'PUT') return putObjectRow(ctx, target, target.object);
      if (ctx.method === 'DELETE') return deleteObjectRow(ctx, target, target.object);
      throw new HttpError(405, undefined, { code: 'MethodNotAllowed' });
    }
    switch (ctx.method) {
      case 'PUT':
        return putContainer(ctx, target);
      case 'HEAD':
        return headContainer(ctx, target);
      case 'GET':
        return getContainer(ctx, target);
      case 'POST':
        return postContainer(ctx, target);
      case 'DELETE':
        return deleteContainer(ctx, target);
      default:
        throw new HttpError(405, undefined, { code: 'MethodNotAllowed' });
    }
  }

  const reclaim = deviceReclaimer('container', reclaimContainers, {
    databases,
    logger,
    reclaimAgeSeconds: options.reclaimAgeSeconds,
  });

  const reclaimTimer = startReclaimTimer({
    intervalMs: options.reclaimIntervalMs ?? 3_600_000,
    databases,
    logger,
    reclaim: async (devicePath, bounds) => reclaim(devicePath, Timestamp.now(), bounds),
  });
  const release = databases.acquire();

  return {
    accountUpdater: updater,
    async handle(ctx: Context, target: RequestTarget): Promise<void> {
      try {
        await dispatch(ctx, target);
      } catch (error) {
        if (!respondError(ctx, toHttpError(error))) throw error;
      }
    },
    reclaim,
    retryPendingReports,
    async close(): Promise<void> {
      if (retryTimer !== undefined) clearInterval(retryTimer);
      await reclaimTimer.stop();
      await updater.close();
      await release();
    },
  };
}
