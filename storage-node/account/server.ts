/**
 * The account server (Swift's account-server behind the storage node's router):
 *
 *   PUT/HEAD/GET/POST/DELETE /<device>/<partition>/<account>
 *   PUT /<device>/<partition>/<account>/<container> with X-Backend-Server-Type: account
 *     (a container server's report: X-Put-Timestamp, X-Delete-Timestamp, X-Object-Count,
 *     X-Bytes-Used, X-Backend-Storage-Policy-Index)
 *
 * Records live in the device's LevelDB database (broker.ts). Statuses and headers follow Swift
 * 2.30: a deleted account answers 404 with X-Account-Status: Deleted, and a PUT of it 403
 * "Recently deleted" until reclaim_age has passed.
 *
 * Usage: `createAccountServer({ logger, constraints, databases, reclaimAgeSeconds })`, where
 * `databases` is the process's one DatabaseRegistry (shared with the container server).
 * close() releases the registry.
 */
import type { Context } from 'koa';
import { isTruthy } from '../../common/config.js';
import { checkMetadata, type Constraints } from '../../common/constraints.js';
import { HttpError, badRequest } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { DEFAULT_POLICY } from '../../common/storage-policy.js';
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
import { accountListingJson, accountListingXml, listingText, type AccountListingEntry } from '../listing/formats.js';
import { bestListingType, parseListingQuery, parseQueryString } from '../listing/query.js';
import type { RequestTarget, StorageServer } from '../server-types.js';
import {
  AccountBroker,
  AccountMetadataError,
  AccountNotFoundError,
  AccountRecentlyDeletedError,
  AccountTimestampConflictError,
  isAccountDeleted,
  reclaimAccounts,
  type AccountInfo,
} from './broker.js';

export interface AccountServerOptions {
  logger: Logger;
  constraints: Readonly<Constraints>;
  /** The process's per-device databases, shared with the container server. */
  databases: DatabaseRegistry;
  /** Swift's reclaim_age: deleted container rows and accounts older than this go. */
  reclaimAgeSeconds: number;
  /** How often a background reclaim pass runs over the open devices (default an hour; 0: never). */
  reclaimIntervalMs?: number;
}

export interface AccountServer extends StorageServer {
  /** Reclaims one device's deleted container rows and accounts older than reclaim_age. */
  reclaim(devicePath: string, now?: Timestamp, bounds?: { maxKeys?: number; after?: Buffer }): Promise<ReclaimResult>;
}

function isAccountMetadataHeader(lowerName: string): boolean {
  return lowerName.startsWith('x-account-meta-') || lowerName.startsWith('x-account-sysmeta-');
}

const DELETED_HEADERS = { 'X-Account-Status': 'Deleted' };

function toHttpError(error: unknown): unknown {
  if (error instanceof AccountNotFoundError) {
    return new HttpError(404, undefined, { code: error.code, headers: error.statusDeleted ? DELETED_HEADERS : {} });
  }
  if (error instanceof AccountRecentlyDeletedError) {
    return new HttpError(403, 'Recently deleted', { code: error.code, headers: DELETED_HEADERS });
  }
  if (error instanceof AccountTimestampConflictError) return new HttpError(409, undefined, { code: error.code });
  if (error instanceof AccountMetadataError) return badRequest(error.message, error.code);
  return error;
}

/** Swift's get_response_headers. */
function accountHeaders(info: AccountInfo): Record<string, string> {
  const headers: Record<string, string> = {
    'X-Account-Container-Count': String(info.container_count),
    'X-Account-Object-Count': String(info.object_count),
    'X-Account-Bytes-Used': String(info.bytes_used),
    'X-Timestamp': Timestamp.parse(info.created_at).normal,
    'X-PUT-Timestamp': Timestamp.parse(info.put_timestamp).normal,
  };
  // Usage per storage policy that holds containers: Nebula's one policy holds them all.
  if (info.container_count > 0) {
    const prefix = `X-Account-Storage-Policy-${DEFAULT_POLICY.name}`;
    headers[`${prefix}-Container-Count`] = String(info.container_count);
    headers[`${prefix}-Object-Count`] = String(info.object_count);
    headers[`${prefix}-Bytes-Used`] = String(info.bytes_used);
  }
  for (const [name, value] of visibleMetadata(info.metadata)) headers[name] = value;
  return headers;
}

export function createAccountServer(options: AccountServerOptions): AccountServer {
  const { constraints, databases, logger } = options;

  const brokerFor = async (target: RequestTarget): Promise<AccountBroker> => {
    const database = await databases.get(target.devicePath);
    return new AccountBroker(database, target.partition, target.account);
  };

  const checkRequestMetadata = (ctx: Context): void => {
    const problem = checkMetadata(ctx.headers, 'account', constraints);
    if (problem !== undefined) throw badRequest(problem, 'InvalidMetadata');
  };

  async function putContainerRow(ctx: Context, target: RequestTarget, container: string): Promise<void> {
    const rawPut = header(ctx, 'x-put-timestamp');
    const rawDelete = header(ctx, 'x-delete-timestamp');
    if (rawPut === undefined || rawDelete === undefined) {
      throw badRequest('Missing X-Put-Timestamp or X-Delete-Timestamp header', 'MissingHeader');
    }
    // Swift accepts a report without X-Timestamp (it takes now); a malformed one is still a 400.
    if (header(ctx, 'x-timestamp') !== undefined) requireTimestamp(ctx);
    const putTimestamp = parseTimestampHeader(rawPut, 'Invalid X-Put-Timestamp header');
    const deleteTimestamp = parseTimestampHeader(rawDelete, 'Invalid X-Delete-Timestamp header');
    const report = {
      putTimestamp,
      deleteTimestamp,
      objectCount: integerHeader(ctx, 'x-object-count'),
      bytesUsed: integerHeader(ctx, 'x-bytes-used'),
      storagePolicyIndex: integerHeader(ctx, 'x-backend-storage-policy-index', 0),
    };
    const broker = await brokerFor(target);
    await broker.putContainer(container, report, isTruthy(header(ctx, 'x-account-override-deleted')));
    respondEmpty(ctx, deleteTimestamp > putTimestamp ? 204 : 201);
  }

  async function putAccount(ctx: Context, target: RequestTarget): Promise<void> {
    const timestamp = requireTimestamp(ctx);
    checkRequestMetadata(ctx);
    const broker = await brokerFor(target);
    const { created } = await broker.put(
      timestamp,
      metadataFromHeaders(ctx.headers, isAccountMetadataHeader, timestamp),
      constraints,
    );
    respondEmpty(ctx, created ? 201 : 202);
  }

  async function postAccount(ctx: Context, target: RequestTarget): Promise<void> {
    const timestamp = requireTimestamp(ctx);
    checkRequestMetadata(ctx);
    const broker = await brokerFor(target);
    await broker.updateMetadata(metadataFromHeaders(ctx.headers, isAccountMetadataHeader, timestamp), constraints);
    respondEmpty(ctx, 204);
  }

  async function deleteAccount(ctx: Context, target: RequestTarget): Promise<void> {
    const timestamp = requireTimestamp(ctx);
    const broker = await brokerFor(target);
    await broker.delete(timestamp);
    respondEmpty(ctx, 204, DELETED_HEADERS);
  }

  async function liveInfo(target: RequestTarget): Promise<AccountInfo> {
    const broker = await brokerFor(target);
    const info = await broker.getInfo();
    if (info === undefined || isAccountDeleted(info)) throw new AccountNotFoundError(info?.status === 'DELETED');
    return info;
  }

  async function headAccount(ctx: Context, target: RequestTarget): Promise<void> {
    const format = parseQueryString(ctx.querystring).get('format');
    const contentType =
      format !== undefined && format !== ''
        ? (({ json: 'application/json', xml: 'application/xml' } as Record<string, string>)[format.toLowerCase()] ??
          'text/plain')
        : bestListingType(header(ctx, 'accept'));
    if (contentType === undefined) throw new HttpError(406, 'Not Acceptable', { code: 'NotAcceptable' });
    const info = await liveInfo(target);
    respondEmpty(ctx, 204, accountHeaders(info));
    ctx.set('Content-Type', `${contentType}; charset=utf-8`);
  }

  async function getAccount(ctx: Context, target: RequestTarget): Promise<void> {
    const query = parseListingQuery(ctx.querystring, header(ctx, 'accept'), constraints.account_listing_limit);
    const info = await liveInfo(target);
    const broker = await brokerFor(target);
    const entries = await broker.listContainers({ ...query, path: undefined });
    const listing: AccountListingEntry[] = entries.map((entry) =>
      'subdir' in entry
        ? entry
        : {
            name: entry.name,
            count: entry.row.object_count,
            bytes: entry.row.bytes_used,
            last_modified: Timestamp.parse(entry.row.put_timestamp).isoformat,
          },
    );
    let body: string;
    if (query.contentType.endsWith('/xml')) body = accountListingXml(target.account, listing);
    else if (query.contentType === 'application/json') body = accountListingJson(listing);
    else body = listingText(listing);
    ctx.body = body;
    ctx.status = body === '' ? 204 : 200;
    for (const [name, value] of Object.entries(accountHeaders(info))) ctx.set(name, value);
    ctx.set('Content-Type', `${query.contentType}; charset=utf-8`);
  }

  async function dispatch(ctx: Context, target: RequestTarget): Promise<void> {
    // Swift's account server takes 3 or 4 path segments (split_and_validate_path(req, 3, 4)).
    if (target.object !== undefined) throw badRequest('Invalid path', 'BadPath');
    checkNames(target, constraints);
    if (target.container !== undefined) {
      if (ctx.method === 'PUT') return putContainerRow(ctx, target, target.container);
      throw new HttpError(405, undefined, { code: 'MethodNotAllowed' });
    }
    switch (ctx.method) {
      case 'PUT':
        return putAccount(ctx, target);
      case 'HEAD':
        return headAccount(ctx, target);
      case 'GET':
        return getAccount(ctx, target);
      case 'POST':
        return postAccount(ctx, target);
      case 'DELETE':
        return deleteAccount(ctx, target);
      default:
        throw new HttpError(405, undefined, { code: 'MethodNotAllowed' });
    }
  }

  const reclaim = deviceReclaimer('account', reclaimAccounts, {
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
    async handle(ctx: Context, target: RequestTarget): Promise<void> {
      try {
        await dispatch(ctx, target);
      } catch (error) {
        if (!respondError(ctx, toHttpError(error))) throw error;
      }
    },
    reclaim,
    async close(): Promise<void> {
      await reclaimTimer.stop();
      await release();
    },
  };
}
