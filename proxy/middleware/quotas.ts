/**
 * Container and account quotas (Swift 2.30's container_quotas and account_quotas), one stage
 * after COPY (so a copy is checked as the PUT it becomes, with the source's length) and before
 * SLO (each segment is a PUT of its own and is counted as it arrives):
 * - `X-Container-Meta-Quota-Bytes` / `-Quota-Count` on a container PUT/POST must be integers
 *   (400 otherwise). An object PUT that would take the container past either is 413
 *   "Upload exceeds quota.".
 * - `X-Account-Meta-Quota-Bytes` (also accepted as `X-Account-Quota-Bytes`, stored as the former)
 *   and `X-Remove-Account-Meta-Quota-Bytes` may be set only by a reseller admin (403 otherwise,
 *   400 when not an integer). An object PUT that would take the account past it is 413.
 * Unauthorized writers get their 401/403 before any 413, as in Swift. A PUT of unknown length
 * counts as 0 bytes (it is refused only when the quota is already used up).
 */
import type { Context, Middleware, Next } from 'koa';
import { HttpError } from '../../common/errors.js';
import type { ProxyDeps } from '../controllers/base.js';
import { getAccountInfo, getContainerInfo } from '../controllers/info.js';
import type { AccountInfo, ContainerInfo } from '../info-cache.js';
import { swiftPathOrUndefined, type SwiftPath } from '../request-path.js';
import { swiftState } from '../state.js';

export interface QuotaOptions {
  validVersions: readonly string[];
  deps: ProxyDeps;
}

const DIGITS = /^\d+$/;

function header(info: { headers: Record<string, string | string[] | undefined> }, name: string): string | undefined {
  const value = info.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function quotaOf(value: string | undefined): number | undefined {
  if (value === undefined || !DIGITS.test(value)) return undefined;
  return Number(value);
}

function isResellerRequest(ctx: Context): boolean {
  const state = swiftState(ctx);
  return (state.remoteUser ?? '').split(',').includes('.reseller_admin');
}

function exceeded(): HttpError {
  return new HttpError(413, 'Upload exceeds quota.', { code: 'QuotaExceeded' });
}

/** Container info with fresh counts when a quota is set (cached counts would let uploads slip past). */
async function freshContainer(ctx: Context, deps: ProxyDeps, path: SwiftPath): Promise<ContainerInfo> {
  const container = path.container ?? '';
  const cached = await getContainerInfo(ctx, deps, path.account, container);
  if (
    header(cached, 'x-container-meta-quota-bytes') === undefined &&
    header(cached, 'x-container-meta-quota-count') === undefined
  ) {
    return cached;
  }
  deps.info.clearContainer(path.account, container);
  return getContainerInfo(ctx, deps, path.account, container);
}

async function freshAccount(ctx: Context, deps: ProxyDeps, account: string): Promise<AccountInfo> {
  const cached = await getAccountInfo(ctx, deps, account);
  if (header(cached, 'x-account-meta-quota-bytes') === undefined) return cached;
  deps.info.clearAccount(account);
  return getAccountInfo(ctx, deps, account);
}

function checkAccountQuotaHeaders(ctx: Context): void {
  const headers = ctx.req.headers;
  const alias = headers['x-account-quota-bytes'];
  if (alias !== undefined) {
    headers['x-account-meta-quota-bytes'] ??= alias;
    delete headers['x-account-quota-bytes'];
  }
  let newQuota = ctx.get('x-account-meta-quota-bytes') || undefined;
  const setInHeaders = headers['x-account-meta-quota-bytes'] !== undefined;
  const remove = ctx.get('x-remove-account-meta-quota-bytes') !== '';
  if (remove) newQuota = '0';
  if (!setInHeaders && !remove) return;
  if (!isResellerRequest(ctx)) throw new HttpError(403, undefined, { code: 'QuotaNotReseller' });
  if (!remove && newQuota !== undefined && !DIGITS.test(newQuota)) {
    throw new HttpError(400, undefined, { code: 'InvalidQuota' });
  }
}

function checkContainerQuotaHeaders(ctx: Context): void {
  const bytes = ctx.get('x-container-meta-quota-bytes');
  if (bytes !== '' && !DIGITS.test(bytes)) {
    throw new HttpError(400, 'Invalid bytes quota.', { code: 'InvalidQuota' });
  }
  const count = ctx.get('x-container-meta-quota-count');
  if (count !== '' && !DIGITS.test(count)) {
    throw new HttpError(400, 'Invalid count quota.', { code: 'InvalidQuota' });
  }
}

export function quotasMiddleware(options: QuotaOptions): Middleware {
  return async (ctx: Context, next: Next): Promise<void> => {
    if (ctx.method !== 'PUT' && ctx.method !== 'POST') {
      await next();
      return;
    }
    const path = swiftPathOrUndefined(ctx.path, options.validVersions);
    if (path === undefined) {
      await next();
      return;
    }
    if (path.container === undefined) {
      checkAccountQuotaHeaders(ctx);
      await next();
      return;
    }
    if (path.object === undefined) {
      checkContainerQuotaHeaders(ctx);
      await next();
      return;
    }
    if (ctx.method === 'PUT') await checkObjectPut(ctx, options.deps, path);
    await next();
  };
}

async function checkObjectPut(ctx: Context, deps: ProxyDeps, path: SwiftPath): Promise<void> {
  const lengthHeader = ctx.get('content-length');
  const length = DIGITS.test(lengthHeader) ? Number(lengthHeader) : 0;
  const state = swiftState(ctx);
  const container = await freshContainer(ctx, deps, path);
  if (container.status >= 200 && container.status < 300) {
    const bytesQuota = quotaOf(header(container, 'x-container-meta-quota-bytes'));
    const countQuota = quotaOf(header(container, 'x-container-meta-quota-count'));
    if (bytesQuota !== undefined || countQuota !== undefined) {
      // 401/403 first: an anonymous writer must not learn about the quota.
      const denied = state.authorize?.(ctx, container.writeAcl);
      if (denied !== undefined) throw denied;
      if (bytesQuota !== undefined && container.bytesUsed + length > bytesQuota) throw exceeded();
      if (countQuota !== undefined && container.objectCount + 1 > countQuota) throw exceeded();
    }
  }
  const account = await freshAccount(ctx, deps, path.account);
  if (account.status < 200 || account.status >= 300) return;
  const accountQuota = quotaOf(header(account, 'x-account-meta-quota-bytes'));
  if (accountQuota === undefined) return;
  const denied = state.authorize?.(ctx, container.writeAcl);
  if (denied !== undefined) throw denied;
  if (account.bytesUsed + length > accountQuota) throw exceeded();
}
