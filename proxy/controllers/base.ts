/**
 * What the account, container and object controllers share (Swift's proxy/controllers/base.py):
 * the headers sent to backends, writes fanned out to every primary with failed primaries replaced
 * by handoffs, Swift's best_response quorum rule, and reads that try primaries in order and then
 * handoffs, returning the first good response with its body unread.
 */
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { Context } from 'koa';
import { isTruthy } from '../../common/config.js';
import { HttpError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { BackendError, nodeLabel, readBody, type BackendClient } from '../backend.js';
import type { ProxyConfig } from '../config.js';
import type { InfoCache } from '../info-cache.js';
import { nodesFor, quorumSize, type ProxyRing, type RingNode, type Rings } from '../rings.js';
import { swiftState } from '../state.js';

export interface ProxyDeps {
  config: ProxyConfig;
  rings: Rings;
  backend: BackendClient;
  info: InfoCache;
  log: Logger;
}

/** Hop-by-hop and proxy-only request headers that never go to a backend. */
const REQUEST_HEADERS_NOT_FORWARDED: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'host',
  'expect',
  'content-length',
  'x-auth-token',
  'x-storage-token',
  'x-service-token',
  'authorization',
  'cookie',
]);

/** Response headers that the proxy sets itself or that are backend-internal. */
const RESPONSE_HEADERS_NOT_RETURNED: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'date',
  'server',
  'x-trans-id',
  'x-openstack-request-id',
  // The account and container servers' put timestamp is for the proxy: Swift 2.30's proxy
  // answers an account or container HEAD or GET with X-Timestamp alone.
  'x-put-timestamp',
]);

// Read once: process.pid is a system call each time.
const USER_AGENT = `proxy-server ${process.pid}`;

/** Swift's generate_request_headers: the client's headers (minus hop-by-hop) plus ours. */
export function backendHeaders(ctx: Context, extra: OutgoingHttpHeaders = {}, transfer = true): OutgoingHttpHeaders {
  const state = swiftState(ctx);
  const headers: OutgoingHttpHeaders = {};
  if (transfer) {
    for (const [name, value] of Object.entries(ctx.req.headers)) {
      if (value === undefined || REQUEST_HEADERS_NOT_FORWARDED.has(name)) continue;
      headers[name] = value;
    }
  }
  headers['x-trans-id'] = state.txId;
  headers['user-agent'] = USER_AGENT;
  headers.referer = `${ctx.method} ${ctx.protocol}://${ctx.host}${ctx.path}`;
  for (const [name, value] of Object.entries(extra)) {
    if (value === undefined) delete headers[name.toLowerCase()];
    else headers[name.toLowerCase()] = value;
  }
  return headers;
}

/** Copies a backend's response headers to the client response, minus hop-by-hop and internals. */
export function copyResponseHeaders(ctx: Context, headers: IncomingHttpHeaders): void {
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || RESPONSE_HEADERS_NOT_RETURNED.has(name) || name.startsWith('x-backend-')) continue;
    ctx.set(name, Array.isArray(value) ? value.map(String) : String(value));
  }
}

export interface NodeResult {
  node: RingNode;
  /** The backend's status, or 503 for a node that could not be reached or timed out. */
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  error?: BackendError | Error;
}

export interface WriteRequest {
  ring: ProxyRing;
  partition: number;
  method: string;
  path: string;
  query?: string;
  /** Headers for the request that replaces primary `index` (or its handoff). */
  headersFor: (index: number) => OutgoingHttpHeaders;
  body?: Buffer;
}

function isRetryableStatus(status: number): boolean {
  return status >= 500 || status === 507;
}

function requestNodeCount(deps: ProxyDeps, ring: ProxyRing): number {
  return deps.config.requestNodeCountPerReplica * ring.replicaCount;
}

/**
 * Sends one request per primary at once (Swift's make_requests). A primary that fails (no
 * connection, timeout, 5xx, 507) is replaced by the next handoff, within request_node_count.
 */
export async function makeRequests(ctx: Context, deps: ProxyDeps, request: WriteRequest): Promise<NodeResult[]> {
  const primaries = request.ring.getNodes(request.partition);
  const handoffs = nodesFor(request.ring, request.partition, requestNodeCount(deps, request.ring) - primaries.length);
  for (let skip = 0; skip < primaries.length; skip += 1) handoffs.next(); // nodesFor yields primaries first
  const log = swiftState(ctx).log;
  const one = async (node: RingNode, index: number): Promise<NodeResult> => {
    try {
      const res = await deps.backend.request({
        node,
        method: request.method,
        path: request.path,
        query: request.query,
        headers: request.headersFor(index),
        connTimeoutMs: deps.config.connTimeoutMs,
        nodeTimeoutMs: deps.config.nodeTimeoutMs,
        body: request.body,
      });
      const body = await readBody(res, deps.config.nodeTimeoutMs);
      return { node, status: res.statusCode ?? 500, headers: res.headers, body };
    } catch (error) {
      log.warn({ node: nodeLabel(node), method: request.method, err: error }, 'backend request failed');
      return { node, status: 503, headers: {}, body: Buffer.alloc(0), error: error as Error };
    }
  };
  const slot = async (primary: RingNode, index: number): Promise<NodeResult> => {
    let result = await one(primary, index);
    // Bounded: the handoff iterator ends after request_node_count nodes in all.
    while (isRetryableStatus(result.status)) {
      const next = handoffs.next();
      if (next.done === true) break;
      result = await one(next.value, index);
    }
    return result;
  };
  return Promise.all(primaries.map((node, index) => slot(node, index)));
}

/**
 * Swift's best_response: the highest status of the first class (2xx, 3xx, 4xx) that a quorum of
 * the replicas agree on; 503 when none has a quorum.
 */
export function bestResult(results: readonly NodeResult[], replicaCount: number): NodeResult | undefined {
  const quorum = quorumSize(replicaCount);
  for (const hundred of [200, 300, 400]) {
    const inClass = results.filter((result) => result.status >= hundred && result.status < hundred + 100);
    if (inClass.length >= quorum) {
      return inClass.reduce((best, result) => (result.status > best.status ? result : best));
    }
  }
  return undefined;
}

/**
 * Swift's best_response with `overrides`: when no class has a quorum, the overridden statuses
 * count as their replacements (a DELETE's 404 as 204: that replica does not have it either) and
 * the quorum is looked for again; the answer's headers and body come from a real response of
 * that status when there is one.
 */
export function bestResultWithOverrides(
  results: readonly NodeResult[],
  replicaCount: number,
  overrides: Readonly<Record<number, number>>,
): NodeResult | undefined {
  const best = bestResult(results, replicaCount);
  if (best !== undefined) return best;
  const faked = new Set<NodeResult>();
  const transformed = results.map((result) => {
    const replacement = overrides[result.status];
    if (replacement === undefined) return result;
    const fake: NodeResult = { ...result, status: replacement, headers: {}, body: Buffer.alloc(0) };
    faked.add(fake);
    return fake;
  });
  const overridden = bestResult(transformed, replicaCount);
  if (overridden === undefined) return undefined;
  return transformed.find((result) => result.status === overridden.status && !faked.has(result)) ?? overridden;
}

/** Answers the client with the best result, its headers and (short) body, or 503. */
export function respondWithBest(
  ctx: Context,
  results: readonly NodeResult[],
  replicaCount: number,
  overrides: Readonly<Record<number, number>> = {},
): NodeResult {
  const best = bestResultWithOverrides(results, replicaCount, overrides);
  if (best === undefined) {
    swiftState(ctx).log.warn({ statuses: results.map((result) => result.status) }, 'no quorum');
    throw new HttpError(503, undefined, { code: 'NoQuorum' });
  }
  ctx.status = best.status;
  copyResponseHeaders(ctx, best.headers);
  ctx.remove('content-length');
  // Koa turns a null body into 204 and drops Content-Length: leave HEAD and empty statuses alone.
  if (ctx.method !== 'HEAD' && best.status !== 204 && best.status !== 304) ctx.body = best.body;
  return best;
}

export interface ReadRequest {
  ring: ProxyRing;
  partition: number;
  method: 'GET' | 'HEAD';
  path: string;
  query?: string;
  headers: OutgoingHttpHeaders;
  /** Nodes to skip (already failed), by label. */
  exclude?: ReadonlySet<string>;
}

/** One replica's answer to a read, with the proxy's timeouts. */
function readFromNode(deps: ProxyDeps, request: ReadRequest, node: RingNode): Promise<IncomingMessage> {
  return deps.backend.request({
    node,
    method: request.method,
    path: request.path,
    query: request.query,
    headers: request.headers,
    connTimeoutMs: deps.config.connTimeoutMs,
    nodeTimeoutMs: deps.config.nodeTimeoutMs,
  });
}

export interface ReadSource {
  node: RingNode;
  response: IncomingMessage;
  /** The remaining nodes in order: a resuming reader continues from them. */
  rest: Iterator<RingNode>;
}

export interface ReadOutcome {
  source?: ReadSource;
  /** When no node gave a good response: the status to answer, with one backend's headers and body. */
  failure?: NodeResult;
}

/** A final answer from a backend: anything but 404, a 5xx or 507 (those make us try the next node). */
function isGoodReadStatus(status: number): boolean {
  return status < 500 && status !== 404;
}

/**
 * Tries the primaries in order and then handoffs (only as many as primaries failed), returning the
 * first good response with its body unread. 404 from every reachable node is a 404.
 */
export async function readFromNodes(ctx: Context, deps: ProxyDeps, request: ReadRequest): Promise<ReadOutcome> {
  if (isTruthy(headerValue(request.headers['x-newest']))) return readNewest(ctx, deps, request);
  const log = swiftState(ctx).log;
  const primaryCount = request.ring.getNodes(request.partition).length;
  const nodes = nodesFor(request.ring, request.partition, requestNodeCount(deps, request.ring) - primaryCount);
  const failures: NodeResult[] = [];
  let errors = 0;
  let tried = 0;
  for (let next = nodes.next(); next.done !== true; next = nodes.next()) {
    const node = next.value;
    tried += 1;
    // Handoffs only stand in for primaries that errored: a clean 404 from all primaries is final.
    if (tried > primaryCount && errors < tried - primaryCount) break;
    if (request.exclude?.has(nodeLabel(node)) === true) {
      errors += 1;
      continue;
    }
    try {
      const response = await readFromNode(deps, request, node);
      const status = response.statusCode ?? 500;
      if (isGoodReadStatus(status)) return { source: { node, response, rest: nodes } };
      const body = await readBody(response, deps.config.nodeTimeoutMs).catch(() => Buffer.alloc(0));
      failures.push({ node, status, headers: response.headers, body });
      if (status !== 404) errors += 1;
    } catch (error) {
      errors += 1;
      log.warn({ node: nodeLabel(node), method: request.method, err: error }, 'backend read failed');
    }
  }
  const notFound = failures.find((failure) => failure.status === 404);
  if (notFound !== undefined) return { failure: notFound };
  const other = failures[0];
  return {
    failure: {
      node: other?.node ?? { id: -1, ip: '', port: 0, device: '' },
      status: 503,
      headers: {},
      body: Buffer.alloc(0),
    },
  };
}

function headerValue(value: OutgoingHttpHeaders[string] | IncomingHttpHeaders[string]): string | undefined {
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.join(',') : String(value);
}

/** The timestamp a replica's answer carries, for X-Newest (0 when it has none). */
function responseTimestamp(headers: IncomingHttpHeaders): number {
  for (const name of ['x-backend-timestamp', 'x-timestamp', 'x-backend-put-timestamp', 'x-put-timestamp']) {
    const value = Number(headerValue(headers[name]));
    if (Number.isFinite(value) && value > 0) return value;
  }
  return 0;
}

/**
 * `X-Newest: true` (Swift): ask every primary at once and answer from the good response with the
 * newest timestamp, so a client can read its own write even while replicas disagree.
 */
async function readNewest(ctx: Context, deps: ProxyDeps, request: ReadRequest): Promise<ReadOutcome> {
  const log = swiftState(ctx).log;
  const primaries = request.ring.getNodes(request.partition);
  const answers = await Promise.all(
    primaries.map(async (node) => {
      try {
        const response = await readFromNode(deps, request, node);
        return { node, response };
      } catch (error) {
        log.warn({ node: nodeLabel(node), method: request.method, err: error }, 'backend read failed');
        return { node, response: undefined };
      }
    }),
  );
  let best: { node: RingNode; response: IncomingMessage } | undefined;
  const failures: NodeResult[] = [];
  for (const { node, response } of answers) {
    if (response === undefined) continue;
    const status = response.statusCode ?? 500;
    if (!isGoodReadStatus(status)) {
      failures.push({ node, status, headers: response.headers, body: Buffer.alloc(0) });
      response.resume();
      continue;
    }
    if (best === undefined || responseTimestamp(response.headers) > responseTimestamp(best.response.headers)) {
      best?.response.destroy();
      best = { node, response };
    } else {
      response.destroy();
    }
  }
  if (best !== undefined) return { source: { ...best, rest: primaries[Symbol.iterator]() } };
  const notFound = failures.find((failure) => failure.status === 404);
  if (notFound !== undefined) return { failure: notFound };
  return {
    failure: {
      node: primaries[0] ?? { id: -1, ip: '', port: 0, device: '' },
      status: 503,
      headers: {},
      body: Buffer.alloc(0),
    },
  };
}

/** Sends a read failure to the client: 404 with Swift's body, or 503. */
export function respondReadFailure(ctx: Context, failure: NodeResult): never {
  if (failure.status === 404) {
    const headers: Record<string, string> = {};
    const timestamp = failure.headers['x-backend-timestamp'];
    if (typeof timestamp === 'string') headers['X-Backend-Timestamp'] = timestamp;
    throw new HttpError(404, undefined, { code: 'NotFound', headers });
  }
  throw new HttpError(503, undefined, { code: 'NoReplica' });
}

/** The request's headers as a lower-case record of strings (first value of repeated headers). */
export function headerRecord(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    out[name] = Array.isArray(value) ? value.join(',') : value;
  }
  return out;
}
