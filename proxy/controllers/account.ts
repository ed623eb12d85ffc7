/**
 * `/v1/<account>`: HEAD and GET (the container listing, which the account server renders in the
 * requested format), POST (metadata), and PUT/DELETE only with allow_account_management (for
 * reseller admins). A missing account reads as an empty one when account_autocreate is on, as Swift.
 */
import type { Context } from 'koa';
import { checkMetadata } from '../../common/constraints.js';
import { constraintError, HttpError } from '../../common/errors.js';
import { DEFAULT_POLICY } from '../../common/storage-policy.js';
import { Timestamp } from '../../common/timestamp.js';
import { backendPath, type SwiftPath } from '../request-path.js';
import {
  backendHeaders,
  makeRequests,
  readFromNodes,
  respondReadFailure,
  respondWithBest,
  type ProxyDeps,
} from './base.js';
import { autocreateAccount, authorize, stripOwnerHeadersFromRequest } from './info.js';
import { checkListingLimit, listingFormat, respondWithListing } from './listing.js';

export async function handleAccount(ctx: Context, deps: ProxyDeps, path: SwiftPath): Promise<void> {
  const { account } = path;
  const limits = deps.config.swift.constraints;
  if (Buffer.byteLength(account) > limits.max_account_name_length) {
    throw new HttpError(
      400,
      `Account name length of ${Buffer.byteLength(account)} longer than ${limits.max_account_name_length}`,
    );
  }
  switch (ctx.method) {
    case 'HEAD':
    case 'GET':
      return readAccount(ctx, deps, account);
    case 'POST':
      return postAccount(ctx, deps, account);
    case 'PUT':
    case 'DELETE':
      // Swift authorizes before the method check: owners get 403, reseller admins 405.
      authorize(ctx);
      if (!deps.config.allowAccountManagement) {
        ctx.set('Allow', 'HEAD, GET, POST');
        throw new HttpError(405, undefined, { code: 'MethodNotAllowed' });
      }
      return writeAccount(ctx, deps, account);
    default:
      ctx.set('Allow', 'HEAD, GET, POST');
      throw new HttpError(405, undefined, { code: 'MethodNotAllowed' });
  }
}

async function readAccount(ctx: Context, deps: ProxyDeps, account: string): Promise<void> {
  authorize(ctx);
  if (ctx.method === 'GET') checkListingLimit(ctx, deps.config.swift.constraints.account_listing_limit);
  const ring = deps.rings.account;
  const partition = ring.getPartition(account);
  const outcome = await readFromNodes(ctx, deps, {
    ring,
    partition,
    method: ctx.method as 'GET' | 'HEAD',
    path: backendPath(partition, account),
    query: ctx.querystring,
    headers: backendHeaders(ctx),
  });
  if (outcome.source === undefined) {
    const failure = outcome.failure;
    if (failure?.status === 404 && deps.config.accountAutocreate) {
      fakeAccountListing(ctx, account);
      return;
    }
    if (failure === undefined) throw new HttpError(503);
    respondReadFailure(ctx, failure);
  }
  respondWithListing(ctx, outcome.source.response, deps.config.nodeTimeoutMs);
}

/** The empty listing Swift answers for an account that does not exist yet (autocreate). */
function fakeAccountListing(ctx: Context, account: string): void {
  const timestamp = Timestamp.now().normal;
  ctx.set('X-Account-Container-Count', '0');
  ctx.set('X-Account-Object-Count', '0');
  ctx.set('X-Account-Bytes-Used', '0');
  ctx.set('X-Timestamp', timestamp);
  ctx.set('X-Put-Timestamp', timestamp);
  ctx.set(`X-Account-Storage-Policy-${DEFAULT_POLICY.name}-Container-Count`, '0');
  const format = listingFormat(ctx);
  if (format === 'json') {
    ctx.status = 200;
    if (ctx.method !== 'HEAD') ctx.body = '[]';
    ctx.type = 'application/json; charset=utf-8';
    ctx.length = 2;
  } else if (format === 'xml') {
    const escaped = account.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
    const body = `<?xml version="1.0" encoding="UTF-8"?>\n<account name="${escaped}"></account>`;
    ctx.status = 200;
    if (ctx.method !== 'HEAD') ctx.body = body;
    ctx.type = 'application/xml; charset=utf-8';
    ctx.length = Buffer.byteLength(body);
  } else {
    ctx.status = 204;
    ctx.set('Content-Type', 'text/plain; charset=utf-8');
  }
}

async function postAccount(ctx: Context, deps: ProxyDeps, account: string): Promise<void> {
  authorize(ctx);
  stripOwnerHeadersFromRequest(ctx);
  const problem = checkMetadata(ctx.req.headers, 'account', deps.config.swift.constraints);
  if (problem !== undefined) throw constraintError(400, problem, 'BadMetadata');
  const send = (): ReturnType<typeof makeRequests> => {
    const timestamp = Timestamp.now().normal;
    const ring = deps.rings.account;
    const partition = ring.getPartition(account);
    return makeRequests(ctx, deps, {
      ring,
      partition,
      method: 'POST',
      path: backendPath(partition, account),
      headersFor: () => backendHeaders(ctx, { 'x-timestamp': timestamp, 'content-length': '0' }),
    });
  };
  let results = await send();
  if (results.filter((r) => r.status === 404).length > results.length / 2 && deps.config.accountAutocreate) {
    await autocreateAccount(ctx, deps, account);
    results = await send();
  }
  deps.info.clearAccount(account);
  respondWithBest(ctx, results, deps.rings.account.replicaCount);
}

async function writeAccount(ctx: Context, deps: ProxyDeps, account: string): Promise<void> {
  authorize(ctx);
  const problem = checkMetadata(ctx.req.headers, 'account', deps.config.swift.constraints);
  if (problem !== undefined) throw constraintError(400, problem, 'BadMetadata');
  const timestamp = Timestamp.now().normal;
  const ring = deps.rings.account;
  const partition = ring.getPartition(account);
  const results = await makeRequests(ctx, deps, {
    ring,
    partition,
    method: ctx.method,
    path: backendPath(partition, account),
    headersFor: () => backendHeaders(ctx, { 'x-timestamp': timestamp, 'content-length': '0' }),
  });
  deps.info.clearAccount(account);
  respondWithBest(ctx, results, ring.replicaCount);
}
