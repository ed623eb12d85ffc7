/**
 * `/v1/<account>/<container>`: HEAD and GET (the object listing, rendered by the container
 * server: prefix, delimiter, marker, end_marker, limit, reverse, format), PUT (creating the account
 * first when account_autocreate is on, and telling each container replica which account replica
 * to update), POST (metadata and ACLs) and DELETE (409 while not empty).
 */
import type { OutgoingHttpHeaders } from 'node:http';
import type { Context } from 'koa';
import { checkMetadata } from '../../common/constraints.js';
import { constraintError, HttpError } from '../../common/errors.js';
import { policyName } from '../../common/storage-policy.js';
import { Timestamp } from '../../common/timestamp.js';
import { cleanAcl, InvalidAclError } from '../acl.js';
import { backendPath, type SwiftPath } from '../request-path.js';
import type { RingNode } from '../rings.js';
import {
  backendHeaders,
  makeRequests,
  readFromNodes,
  respondReadFailure,
  respondWithBest,
  type ProxyDeps,
} from './base.js';
import {
  accountForWrite,
  authorize,
  authorizedWithoutAcl,
  getContainerInfo,
  stripOwnerHeadersFromRequest,
} from './info.js';
import { checkListingLimit, respondWithListing } from './listing.js';

const ALLOWED = 'HEAD, GET, PUT, POST, DELETE, OPTIONS'; // OPTIONS: CORS preflight (middleware/cors.ts)

export async function handleContainer(ctx: Context, deps: ProxyDeps, path: SwiftPath): Promise<void> {
  const account = path.account;
  const container = path.container ?? '';
  switch (ctx.method) {
    case 'HEAD':
    case 'GET':
      return readContainer(ctx, deps, account, container);
    case 'PUT':
    case 'POST':
      return writeContainer(ctx, deps, account, container);
    case 'DELETE':
      return deleteContainer(ctx, deps, account, container);
    default:
      ctx.set('Allow', ALLOWED);
      throw new HttpError(405, undefined, { code: 'MethodNotAllowed' });
  }
}

async function readContainer(ctx: Context, deps: ProxyDeps, account: string, container: string): Promise<void> {
  if (!authorizedWithoutAcl(ctx)) {
    const info = await getContainerInfo(ctx, deps, account, container);
    authorize(ctx, info.readAcl);
  }
  if (ctx.method === 'GET') checkListingLimit(ctx, deps.config.swift.constraints.container_listing_limit);
  const ring = deps.rings.container;
  const partition = ring.getPartition(account, container);
  const outcome = await readFromNodes(ctx, deps, {
    ring,
    partition,
    method: ctx.method as 'GET' | 'HEAD',
    path: backendPath(partition, account, container),
    query: ctx.querystring,
    headers: backendHeaders(ctx),
  });
  if (outcome.source === undefined) {
    if (outcome.failure === undefined) throw new HttpError(503);
    respondReadFailure(ctx, outcome.failure);
  }
  const { response } = outcome.source;
  const policy = policyName(response.headers['x-backend-storage-policy-index'] as string | undefined);
  if (policy !== undefined && (response.statusCode ?? 500) < 300) ctx.set('X-Storage-Policy', policy);
  respondWithListing(ctx, response, deps.config.nodeTimeoutMs);
}

function checkContainerName(ctx: Context, deps: ProxyDeps, container: string): void {
  const max = deps.config.swift.constraints.max_container_name_length;
  const length = Buffer.byteLength(container);
  if (length > max) throw new HttpError(400, `Container name length of ${length} longer than ${max}`);
}

/** Validates and cleans X-Container-Read / -Write in place (Swift's clean_acls): 400 when invalid. */
function cleanAclHeaders(ctx: Context): void {
  for (const name of ['x-container-read', 'x-container-write']) {
    const value = ctx.req.headers[name];
    if (typeof value !== 'string') continue;
    try {
      ctx.req.headers[name] = cleanAcl(name, value);
    } catch (error) {
      if (error instanceof InvalidAclError) throw new HttpError(400, error.message, { code: 'InvalidAcl' });
      throw error;
    }
  }
}

/** Swift's _backend_requests for containers: account replicas spread over the container replicas. */
export function accountUpdateHeaders(
  accountNodes: readonly RingNode[],
  accountPartition: number,
  count: number,
): OutgoingHttpHeaders[] {
  const perNode: RingNode[][] = Array.from({ length: count }, () => []);
  accountNodes.forEach((node, index) => perNode[index % count]?.push(node));
  return perNode.map((nodes) =>
    nodes.length === 0
      ? {}
      : {
          'x-account-host': nodes.map((node) => `${node.ip}:${node.port}`).join(','),
          'x-account-partition': String(accountPartition),
          'x-account-device': nodes.map((node) => node.device).join(','),
        },
  );
}

async function writeContainer(ctx: Context, deps: ProxyDeps, account: string, container: string): Promise<void> {
  // Container writes are for the account's owners only: no ACL applies (Swift checks before the controller).
  authorize(ctx);
  checkContainerName(ctx, deps, container);
  cleanAclHeaders(ctx);
  const problem = checkMetadata(ctx.req.headers, 'container', deps.config.swift.constraints);
  if (problem !== undefined) throw constraintError(400, problem, 'BadMetadata');
  stripOwnerHeadersFromRequest(ctx);
  if (ctx.method === 'PUT') await accountForWrite(ctx, deps, account);
  const timestamp = Timestamp.now().normal;
  const ring = deps.rings.container;
  const partition = ring.getPartition(account, container);
  const accountRing = deps.rings.account;
  const accountPartition = accountRing.getPartition(account);
  const updates =
    ctx.method === 'PUT'
      ? accountUpdateHeaders(accountRing.getNodes(accountPartition), accountPartition, ring.replicaCount)
      : [];
  const results = await makeRequests(ctx, deps, {
    ring,
    partition,
    method: ctx.method,
    path: backendPath(partition, account, container),
    headersFor: (index) =>
      backendHeaders(ctx, {
        'x-timestamp': timestamp,
        'content-length': '0',
        'x-backend-storage-policy-index': '0',
        ...(updates[index] ?? {}),
      }),
  });
  deps.info.clearContainer(account, container);
  deps.info.clearAccount(account);
  respondWithBest(ctx, results, ring.replicaCount);
}

async function deleteContainer(ctx: Context, deps: ProxyDeps, account: string, container: string): Promise<void> {
  authorize(ctx);
  const timestamp = Timestamp.now().normal;
  const ring = deps.rings.container;
  const partition = ring.getPartition(account, container);
  const accountRing = deps.rings.account;
  const accountPartition = accountRing.getPartition(account);
  const updates = accountUpdateHeaders(accountRing.getNodes(accountPartition), accountPartition, ring.replicaCount);
  const results = await makeRequests(ctx, deps, {
    ring,
    partition,
    method: 'DELETE',
    path: backendPath(partition, account, container),
    headersFor: (index) => backendHeaders(ctx, { 'x-timestamp': timestamp, ...(updates[index] ?? {}) }),
  });
  deps.info.clearContainer(account, container);
  deps.info.clearAccount(account);
  const best = respondWithBest(ctx, results, ring.replicaCount);
  // Swift: a DELETE that only found tombstones (202) is a 404 to the client.
  if (best.status === 202) throw new HttpError(404, undefined, { code: 'NotFound' });
}
