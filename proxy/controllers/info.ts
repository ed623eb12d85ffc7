/**
 * Account and container lookups the controllers need before they act (existence for writes, ACLs
 * for authorization), through the in-process InfoCache; and account auto-creation on first write
 * (Swift's account_autocreate).
 */
import type { Context } from 'koa';
import { HttpError } from '../../common/errors.js';
import { Timestamp } from '../../common/timestamp.js';
import { accountInfoFrom, containerInfoFrom, type AccountInfo, type ContainerInfo } from '../info-cache.js';
import { backendPath } from '../request-path.js';
import { swiftState } from '../state.js';
import { backendHeaders, bestResult, makeRequests, readFromNodes, type ProxyDeps } from './base.js';

export async function getAccountInfo(ctx: Context, deps: ProxyDeps, account: string): Promise<AccountInfo> {
  const cached = deps.info.getAccount(account);
  if (cached !== undefined) return cached;
  const ring = deps.rings.account;
  const partition = ring.getPartition(account);
  const outcome = await readFromNodes(ctx, deps, {
    ring,
    partition,
    method: 'HEAD',
    path: backendPath(partition, account),
    headers: backendHeaders(ctx, {}, false),
  });
  let info: AccountInfo;
  if (outcome.source !== undefined) {
    outcome.source.response.resume();
    info = accountInfoFrom(outcome.source.response.statusCode ?? 500, outcome.source.response.headers);
  } else {
    info = accountInfoFrom(outcome.failure?.status ?? 503, outcome.failure?.headers ?? {});
  }
  deps.info.setAccount(account, info);
  return info;
}

export async function getContainerInfo(
  ctx: Context,
  deps: ProxyDeps,
  account: string,
  container: string,
): Promise<ContainerInfo> {
  const cached = deps.info.getContainer(account, container);
  if (cached !== undefined) return cached;
  const ring = deps.rings.container;
  const partition = ring.getPartition(account, container);
  const outcome = await readFromNodes(ctx, deps, {
    ring,
    partition,
    method: 'HEAD',
    path: backendPath(partition, account, container),
    headers: backendHeaders(ctx, {}, false),
  });
  let info: ContainerInfo;
  if (outcome.source !== undefined) {
    outcome.source.response.resume();
    info = containerInfoFrom(outcome.source.response.statusCode ?? 500, outcome.source.response.headers);
  } else {
    info = containerInfoFrom(outcome.failure?.status ?? 503, outcome.failure?.headers ?? {});
  }
  deps.info.setContainer(account, container, info);
  return info;
}

/** Creates the account on every account replica (quorum), as Swift's autocreate_account. */
export async function autocreateAccount(ctx: Context, deps: ProxyDeps, account: string): Promise<void> {
  const ring = deps.rings.account;
  const partition = ring.getPartition(account);
  const timestamp = Timestamp.now().normal;
  const results = await makeRequests(ctx, deps, {
    ring,
    partition,
    method: 'PUT',
    path: backendPath(partition, account),
    headersFor: () => backendHeaders(ctx, { 'x-timestamp': timestamp, 'content-length': '0' }, false),
  });
  const best = bestResult(results, ring.replicaCount);
  deps.info.clearAccount(account);
  if (best === undefined || best.status >= 300) {
    swiftState(ctx).log.warn({ account, statuses: results.map((r) => r.status) }, 'account autocreate failed');
    throw new HttpError(503, undefined, { code: 'AccountAutocreateFailed' });
  }
}

/** Account info for a write: auto-created when missing and allowed; 404 when missing. */
export async function accountForWrite(ctx: Context, deps: ProxyDeps, account: string): Promise<AccountInfo> {
  let info = await getAccountInfo(ctx, deps, account);
  if (info.status === 404 && deps.config.accountAutocreate) {
    await autocreateAccount(ctx, deps, account);
    info = await getAccountInfo(ctx, deps, account);
  }
  if (info.status === 404) throw new HttpError(404, undefined, { code: 'AccountNotFound' });
  if (info.status < 200 || info.status >= 300) throw new HttpError(503, undefined, { code: 'AccountUnavailable' });
  return info;
}

/** Runs the request's authorize callback (from the auth middleware); throws its 401/403. */
export function authorize(ctx: Context, acl?: string): void {
  const state = swiftState(ctx);
  if (state.authorize === undefined) return;
  const denied = state.authorize(ctx, acl);
  if (denied !== undefined) throw denied;
}

/** Whether the request passes authorization without any ACL (the owner's case): saves a HEAD. */
export function authorizedWithoutAcl(ctx: Context): boolean {
  const state = swiftState(ctx);
  return state.authorize === undefined || state.authorize(ctx, undefined) === undefined;
}

/** Headers only an account owner may see or set (Swift's swift_owner_headers). */
export const OWNER_HEADERS: readonly string[] = [
  'x-container-read',
  'x-container-write',
  'x-container-sync-key',
  'x-container-sync-to',
  'x-account-meta-temp-url-key',
  'x-account-meta-temp-url-key-2',
  'x-container-meta-temp-url-key',
  'x-container-meta-temp-url-key-2',
  'x-account-access-control',
];

export function stripOwnerHeadersFromResponse(ctx: Context): void {
  if (swiftState(ctx).swiftOwner) return;
  for (const name of OWNER_HEADERS) ctx.remove(name);
}

export function stripOwnerHeadersFromRequest(ctx: Context): void {
  if (swiftState(ctx).swiftOwner) return;
  for (const name of OWNER_HEADERS) delete ctx.req.headers[name];
}
