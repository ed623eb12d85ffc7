/**
 * `/v1/<account>/<container>/<object>` (Swift's ObjectController for replicated policies).
 *
 * PUT of a small body (BUFFERED_PUT_BYTES_MAX) reads it whole and sends it with the headers to
 * every primary in one write; a larger or chunked body is streamed to every primary at once,
 * waiting for the slowest replica's drain (backpressure, bounded buffering), with
 * `Expect: 100-continue` so a refusing or dead backend is replaced by a handoff before any byte
 * is sent. It answers 201 when a quorum stored the body with the same ETag (the object servers
 * compute the MD5, as in Swift's; the proxy checks that they agree). GET/HEAD read from the first
 * good replica (primaries, then handoffs) and a GET that loses its replica mid-body resumes from
 * the next one at the same offset (Range), checking the ETag is the same. DELETE and POST go to
 * every primary, with quorum. Every write tells each object replica which container replica(s)
 * to update (X-Container-Host/-Partition/-Device).
 */
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import type { Context } from 'koa';
import { checkMetadata } from '../../common/constraints.js';
import { constraintError, HttpError } from '../../common/errors.js';
import { InvalidTimestampError, Timestamp } from '../../common/timestamp.js';
import {
  BackendError,
  BackendTimeoutError,
  BackendUploadRefusedError,
  nodeLabel,
  readBody,
  type OpenUpload,
} from '../backend.js';
import { guessContentType } from '../mime.js';
import { backendPath, type SwiftPath } from '../request-path.js';
import { quorumSize, type ProxyRing, type RingNode } from '../rings.js';
import { swiftState, type FooterSource } from '../state.js';
import {
  backendHeaders,
  bestResult,
  copyResponseHeaders,
  makeRequests,
  readFromNodes,
  respondReadFailure,
  respondWithBest,
  type NodeResult,
  type ProxyDeps,
  type ReadSource,
} from './base.js';
import { authorize, authorizedWithoutAcl, getContainerInfo } from './info.js';

const ALLOWED = 'HEAD, GET, PUT, POST, DELETE, OPTIONS'; // OPTIONS: CORS preflight (middleware/cors.ts)

interface ObjectTarget {
  account: string;
  container: string;
  object: string;
}

export async function handleObject(ctx: Context, deps: ProxyDeps, path: SwiftPath): Promise<void> {
  const target: ObjectTarget = { account: path.account, container: path.container ?? '', object: path.object ?? '' };
  switch (ctx.method) {
    case 'HEAD':
    case 'GET':
      return readObject(ctx, deps, target);
    case 'PUT':
      return putObject(ctx, deps, target);
    case 'POST':
      return postObject(ctx, deps, target);
    case 'DELETE':
      return deleteObject(ctx, deps, target);
    default:
      ctx.set('Allow', ALLOWED);
      throw new HttpError(405, undefined, { code: 'MethodNotAllowed' });
  }
}

// ---------------------------------------------------------------------------------------------
// Shared checks

function checkObjectName(deps: ProxyDeps, object: string): void {
  const max = deps.config.swift.constraints.max_object_name_length;
  const length = Buffer.byteLength(object);
  if (length > max) throw constraintError(400, `Object name length of ${length} longer than ${max}`, 'NameTooLong');
}

function checkObjectMetadata(ctx: Context, deps: ProxyDeps): void {
  const problem = checkMetadata(ctx.req.headers, 'object', deps.config.swift.constraints);
  if (problem !== undefined) throw constraintError(400, problem, 'BadMetadata');
}

/** X-Delete-After becomes X-Delete-At (Swift's check_delete_headers); both must be in the future. */
function applyDeleteHeaders(ctx: Context, now: Timestamp): void {
  const after = ctx.get('x-delete-after');
  if (after !== '') {
    if (!/^-?\d+$/.test(after.trim())) throw constraintError(400, 'Non-integer X-Delete-After', 'BadDeleteAfter');
    const seconds = Number(after);
    if (seconds < 0) throw constraintError(400, 'X-Delete-After in past', 'BadDeleteAfter');
    ctx.req.headers['x-delete-at'] = String(Math.floor(now.seconds + seconds));
    delete ctx.req.headers['x-delete-after'];
  }
  const at = ctx.req.headers['x-delete-at'];
  if (typeof at === 'string' && at !== '') {
    if (!/^\d+(\.\d+)?$/.test(at.trim())) throw constraintError(400, 'Non-integer X-Delete-At', 'BadDeleteAt');
    const deleteAt = Math.floor(Number(at));
    if (deleteAt <= now.seconds) throw constraintError(400, 'X-Delete-At in past', 'BadDeleteAt');
    ctx.req.headers['x-delete-at'] = String(deleteAt);
  }
}

/** The write's X-Timestamp: the client's when valid (container sync does this), else now. */
function requestTimestamp(ctx: Context): Timestamp {
  const given = ctx.get('x-timestamp');
  if (given === '') return Timestamp.now();
  try {
    return Timestamp.parse(given);
  } catch (error) {
    if (error instanceof InvalidTimestampError) throw new HttpError(400, error.message, { code: 'BadTimestamp' });
    throw error;
  }
}

/** Authorizes against the container's ACL (only fetched when the owner check alone fails). */
async function authorizeWith(
  ctx: Context,
  deps: ProxyDeps,
  target: ObjectTarget,
  acl: 'read' | 'write',
): Promise<void> {
  if (authorizedWithoutAcl(ctx)) return;
  const info = await getContainerInfo(ctx, deps, target.account, target.container);
  authorize(ctx, acl === 'read' ? info.readAcl : info.writeAcl);
}

/** The container must exist for a write (and is checked after authorization, as Swift does). */
async function requireContainer(ctx: Context, deps: ProxyDeps, target: ObjectTarget): Promise<void> {
  const info = await getContainerInfo(ctx, deps, target.account, target.container);
  if (info.status === 404) throw new HttpError(404, undefined, { code: 'ContainerNotFound' });
  if (info.status < 200 || info.status >= 300) throw new HttpError(503, undefined, { code: 'ContainerUnavailable' });
}

/**
 * Swift's _get_conn_update_headers: each container replica is named by exactly one object
 * replica (more container replicas than object replicas: some object replicas name several).
 */
export function containerUpdateHeaders(
  containerNodes: readonly RingNode[],
  containerPartition: number,
  objectReplicas: number,
): OutgoingHttpHeaders[] {
  const perObject: RingNode[][] = Array.from({ length: objectReplicas }, () => []);
  containerNodes.forEach((node, index) => perObject[index % objectReplicas]?.push(node));
  return perObject.map((nodes) =>
    nodes.length === 0
      ? {}
      : {
          'x-container-host': nodes.map((node) => `${node.ip}:${node.port}`).join(','),
          'x-container-partition': String(containerPartition),
          'x-container-device': nodes.map((node) => node.device).join(','),
        },
  );
}

function updateHeadersFor(deps: ProxyDeps, target: ObjectTarget, objectReplicas: number): OutgoingHttpHeaders[] {
  const ring = deps.rings.container;
  const partition = ring.getPartition(target.account, target.container);
  return containerUpdateHeaders(ring.getNodes(partition), partition, objectReplicas);
}

// ---------------------------------------------------------------------------------------------
// GET / HEAD

async function readObject(ctx: Context, deps: ProxyDeps, target: ObjectTarget): Promise<void> {
  await authorizeWith(ctx, deps, target, 'read');
  const ring = deps.rings.object;
  const partition = ring.getPartition(target.account, target.container, target.object);
  const path = backendPath(partition, target.account, target.container, target.object);
  const headers = backendHeaders(ctx, { 'x-backend-storage-policy-index': '0' });
  const outcome = await readFromNodes(ctx, deps, {
    ring,
    partition,
    method: ctx.method as 'GET' | 'HEAD',
    path,
    headers,
  });
  if (outcome.source === undefined) {
    if (outcome.failure === undefined) throw new HttpError(503);
    respondReadFailure(ctx, outcome.failure);
  }
  const { response } = outcome.source;
  ctx.status = response.statusCode ?? 500;
  copyResponseHeaders(ctx, response.headers);
  if (ctx.status < 300) ctx.set('Accept-Ranges', 'bytes');
  if (ctx.method === 'HEAD' || ctx.status === 204 || ctx.status === 304) {
    response.resume();
    return;
  }
  const resume: ResumeContext = { ring, partition, path, headers };
  const length = Number(response.headers['content-length']);
  if (Number.isSafeInteger(length) && length <= BUFFERED_GET_BYTES_MAX && coveredRange(response) !== undefined) {
    // Read whole before answering: one write to the client with the headers, and a replica lost
    // mid-body is replaced before the status line is out.
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of resumingBody(ctx, deps, resume, outcome.source)) chunks.push(chunk as Buffer);
    } catch (error) {
      throw new HttpError(503, undefined, { code: 'NoReplica', cause: error });
    }
    ctx.body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    return;
  }
  const body = resumingBody(ctx, deps, resume, outcome.source);
  // After the headers are out a failure can only cut the connection: the client sees a short body.
  body.once('error', () => ctx.res.destroy());
  ctx.body = body;
}

/** Bodies up to this size are read whole from the replica before the client gets the headers. */
export const BUFFERED_GET_BYTES_MAX = 64 * 1024;
/** What a streamed GET body buffers ahead of the client (Node's default is 16 KiB). */
const STREAM_BUFFER_BYTES = 1024 * 1024;

interface ResumeContext {
  ring: ProxyRing;
  partition: number;
  path: string;
  headers: OutgoingHttpHeaders;
}

/** The single byte range a response covers, or undefined when it cannot be resumed (multipart). */
function coveredRange(response: IncomingMessage): { start: number; end: number } | undefined {
  const status = response.statusCode ?? 0;
  const length = Number(response.headers['content-length']);
  if (status === 200 && Number.isSafeInteger(length)) return { start: 0, end: length - 1 };
  if (status === 206) {
    const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(response.headers['content-range'] ?? '');
    if (match !== null) return { start: Number(match[1]), end: Number(match[2]) };
  }
  return undefined;
}

const RESUMES_MAX = 8;

/**
 * The object body as a stream that survives the loss of its replica: on an error or a stall of
 * recoverable_node_timeout it asks the next replica for the remaining bytes (same ETag required).
 * The backend's chunks go from its 'data' events straight into the stream, the backend paused
 * while the stream is full: an async iterator over the response cost a promise or two per chunk
 * and joined whatever was buffered into a new Buffer (a copy of up to a megabyte per read).
 */
function resumingBody(ctx: Context, deps: ProxyDeps, resume: ResumeContext, first: ReadSource): Readable {
  const log = swiftState(ctx).log;
  const range = coveredRange(first.response);
  const etag = first.response.headers.etag;
  const tried = new Set<string>([nodeLabel(first.node)]);
  let current: IncomingMessage = first.response;
  let sent = 0;
  let resumes = 0;
  let detach: (() => void) | undefined;
  const body = new Readable({
    highWaterMark: STREAM_BUFFER_BYTES,
    read() {
      current.resume();
    },
    destroy(error, callback) {
      detach?.();
      current.destroy();
      callback(error);
    },
  });
  const lost = (error: Error): void => {
    if (body.destroyed) return;
    if (range === undefined || resumes >= RESUMES_MAX) {
      body.destroy(error);
      return;
    }
    if (range.start + sent > range.end) {
      body.push(null);
      return;
    }
    resumes += 1;
    log.warn({ err: error, sent }, 'object GET lost its replica mid-body; resuming');
    void openResume(ctx, deps, resume, first.rest, tried, range.start + sent, range.end, etag).then(
      (next) => {
        if (body.destroyed) next?.destroy();
        else if (next === undefined) body.destroy(error);
        else attach(next);
      },
      (resumeError: unknown) => body.destroy(resumeError instanceof Error ? resumeError : error),
    );
  };
  const attach = (response: IncomingMessage): void => {
    current = response;
    const timeoutMs = deps.config.recoverableNodeTimeoutMs;
    response.setTimeout(timeoutMs, () => {
      response.destroy(new BackendTimeoutError(`object body stalled for ${timeoutMs} ms`, first.node));
    });
    const onData = (chunk: Buffer): void => {
      sent += chunk.length;
      if (!body.push(chunk)) response.pause();
    };
    const onEnd = (): void => {
      detach?.();
      if (response.complete) body.push(null);
      else lost(new Error('backend closed the connection mid-body'));
    };
    const onError = (error: Error): void => {
      detach?.();
      lost(error);
    };
    // A connection cut without an error or an end is a lost replica too.
    const onClose = (): void => onError(new Error('backend closed the connection mid-body'));
    response.on('data', onData);
    response.once('end', onEnd);
    response.once('error', onError);
    response.once('close', onClose);
    detach = () => {
      detach = undefined;
      response.off('data', onData);
      response.off('end', onEnd);
      response.off('error', onError);
      response.off('close', onClose);
      // Whatever it says from now on is no longer heard, but must not be an uncaught error.
      response.on('error', () => undefined);
    };
  };
  attach(first.response);
  return body;
}

async function openResume(
  ctx: Context,
  deps: ProxyDeps,
  resume: ResumeContext,
  rest: Iterator<RingNode>,
  tried: Set<string>,
  start: number,
  end: number,
  etag: string | undefined,
): Promise<IncomingMessage | undefined> {
  const candidates: RingNode[] = [...resume.ring.getNodes(resume.partition)];
  for (let next = rest.next(); next.done !== true && candidates.length < 16; next = rest.next())
    candidates.push(next.value);
  for (const node of candidates) {
    const label = nodeLabel(node);
    if (tried.has(label)) continue;
    tried.add(label);
    try {
      const headers = { ...resume.headers, range: `bytes=${start}-${end}` };
      delete headers['if-range'];
      const response = await deps.backend.request({
        node,
        method: 'GET',
        path: resume.path,
        headers,
        connTimeoutMs: deps.config.connTimeoutMs,
        nodeTimeoutMs: deps.config.recoverableNodeTimeoutMs,
      });
      if (response.statusCode === 206 && (etag === undefined || response.headers.etag === etag)) return response;
      response.resume();
    } catch (error) {
      swiftState(ctx).log.warn({ node: label, err: error }, 'resume attempt failed');
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// PUT

interface Putter {
  node: RingNode;
  index: number;
  upload: OpenUpload;
  failed: boolean;
}

function parseContentLength(ctx: Context, maxFileSize: number): number | undefined {
  const transferEncoding = ctx.get('transfer-encoding').toLowerCase();
  const raw = ctx.get('content-length');
  if (transferEncoding !== '') {
    if (
      transferEncoding
        .split(',')
        .map((part) => part.trim())
        .at(-1) !== 'chunked'
    ) {
      throw new HttpError(501, 'Not Implemented', { code: 'BadTransferEncoding' });
    }
    return undefined;
  }
  if (raw === '') throw constraintError(411, 'Missing Content-Length header.', 'MissingContentLength');
  if (!/^\d+$/.test(raw)) throw new HttpError(400, 'Invalid Content-Length header value', { code: 'BadContentLength' });
  const length = Number(raw);
  if (length > maxFileSize) throw constraintError(413, 'Your request is too large.', 'TooLarge');
  return length;
}

async function putObject(ctx: Context, deps: ProxyDeps, target: ObjectTarget): Promise<void> {
  const limits = deps.config.swift.constraints;
  await authorizeWith(ctx, deps, target, 'write');
  await requireContainer(ctx, deps, target);
  checkObjectName(deps, target.object);
  const contentLength = parseContentLength(ctx, limits.max_file_size);
  checkObjectMetadata(ctx, deps);
  const ifNoneMatch = ctx.get('if-none-match');
  if (ifNoneMatch !== '' && ifNoneMatch !== '*') {
    throw new HttpError(400, 'If-None-Match only supports *', { code: 'BadIfNoneMatch' });
  }
  const timestamp = requestTimestamp(ctx);
  applyDeleteHeaders(ctx, Timestamp.now());
  const detect = ['true', '1', 'yes', 'on', 't', 'y'].includes(ctx.get('x-detect-content-type').toLowerCase());
  let contentType = ctx.get('content-type');
  if (contentType === '' || detect) contentType = guessContentType(target.object);
  delete ctx.req.headers['x-detect-content-type'];

  const footers = swiftState(ctx).footers;
  const ring = deps.rings.object;
  const partition = ring.getPartition(target.account, target.container, target.object);
  const path = backendPath(partition, target.account, target.container, target.object);
  const updates = updateHeadersFor(deps, target, ring.getNodes(partition).length);
  const headersFor = (index: number): OutgoingHttpHeaders => {
    const extra: OutgoingHttpHeaders = {
      'x-timestamp': timestamp.internal,
      'content-type': contentType,
      'x-backend-storage-policy-index': '0',
      'x-backend-container-update-override-content-type': undefined,
      ...(updates[index] ?? {}),
    };
    // Footers go as HTTP trailers, which only a chunked body has.
    if (contentLength !== undefined && footers === undefined) extra['content-length'] = String(contentLength);
    else extra['transfer-encoding'] = 'chunked';
    return backendHeaders(ctx, extra);
  };

  const replicas = ring.getNodes(partition).length;
  const quorum = quorumSize(replicas);
  let results =
    contentLength !== undefined && contentLength <= BUFFERED_PUT_BYTES_MAX
      ? await putBuffered(ctx, deps, { ring, partition, path, headersFor, footers }, contentLength)
      : await putStreamed(ctx, deps, { ring, partition, path, headersFor, footers }, contentLength, quorum);
  // Replicas we never reached count as failures in the quorum decision.
  while (results.length < replicas) results.push(failedResult());
  const agreed = agreeOnEtag(results);
  if (agreed.etags.length > 1)
    swiftState(ctx).log.error({ etags: agreed.etags }, 'object PUT: replicas stored different ETags');
  results = agreed.results;
  const etag = agreed.etag;
  const stored = results.filter((result) => result.status >= 200 && result.status < 300).length;
  if (stored < quorum) {
    // Without a body phase of its own, a buffered PUT meets these refusals here (Swift: before the body).
    if (results.some((result) => result.status === 412))
      throw new HttpError(412, undefined, { code: 'PreconditionFailed' });
    if (results.some((result) => result.status === 409)) throw new HttpError(202, undefined, { code: 'Accepted' });
    const best = bestResult(results, replicas);
    if (best !== undefined && best.status >= 300 && best.status < 500) throw new HttpError(best.status);
    swiftState(ctx).log.warn({ statuses: results.map((result) => result.status) }, 'object PUT: no quorum');
    throw new HttpError(503, undefined, { code: 'NoQuorum' });
  }
  ctx.status = 201;
  ctx.set('ETag', etag);
  ctx.set('Last-Modified', timestamp.httpDate);
  ctx.set('X-Timestamp', timestamp.normal);
  ctx.body = '';
  ctx.type = 'text/html; charset=UTF-8';
}

/**
 * Bodies up to this size are read whole from the client first and sent to each replica with
 * their headers in one write, without `Expect: 100-continue`: a round trip and two writes less
 * per replica, and a refusing or dead replica is replaced by a handoff that gets the same bytes.
 */
export const BUFFERED_PUT_BYTES_MAX = 64 * 1024;

interface PutTarget {
  ring: ProxyRing;
  partition: number;
  path: string;
  headersFor: (index: number) => OutgoingHttpHeaders;
  /** Metadata asked for once the client's body has been read whole (state.ts FooterSource). */
  footers?: FooterSource;
}

/** Footers as backend headers: sysmeta only, whatever the caller returned. */
function footerHeaders(footers: FooterSource | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  if (footers === undefined) return headers;
  for (const [name, value] of Object.entries(footers())) {
    const lower = name.toLowerCase();
    if (lower.startsWith('x-object-sysmeta-')) headers[lower] = value;
  }
  return headers;
}

function failedResult(node?: RingNode, error?: Error): NodeResult {
  return {
    node: node ?? { id: -1, ip: '', port: 0, device: '' },
    status: 503,
    headers: {},
    body: Buffer.alloc(0),
    error,
  };
}

/**
 * The ETag most of the stored replicas agree on (the object servers compute it, as in Swift, and
 * check a client's ETag themselves); a replica that stored other bytes counts as failed (503).
 */
export function agreeOnEtag(results: readonly NodeResult[]): { etag: string; etags: string[]; results: NodeResult[] } {
  const etagOf = (result: NodeResult): string => String(result.headers.etag ?? '').replace(/"/g, '');
  const stored = (result: NodeResult): boolean => result.status >= 200 && result.status < 300;
  const votes = new Map<string, number>();
  for (const result of results) if (stored(result)) votes.set(etagOf(result), (votes.get(etagOf(result)) ?? 0) + 1);
  let etag = '';
  let most = 0;
  for (const [candidate, count] of votes) {
    if (count > most) {
      etag = candidate;
      most = count;
    }
  }
  return {
    etag,
    etags: [...votes.keys()],
    results: results.map((result) => (stored(result) && etagOf(result) !== etag ? failedResult(result.node) : result)),
  };
}

/** Reads a small body whole: 499 when the client goes away, 408 past client_timeout, 413 when longer. */
async function readClientBody(ctx: Context, deps: ProxyDeps, contentLength: number): Promise<Buffer> {
  const body = swiftState(ctx).body;
  const chunks: Buffer[] = [];
  let received = 0;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    body.destroy(new Error('client timeout'));
  }, deps.config.clientTimeoutMs);
  try {
    // Bounded: more than contentLength bytes is refused at once.
    for await (const chunk of body as AsyncIterable<Buffer>) {
      received += chunk.length;
      if (received > contentLength) throw new HttpError(413, 'Your request is too large.', { code: 'TooLarge' });
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof HttpError) throw error;
    if (timedOut) throw new HttpError(408, 'Request Timeout', { code: 'ClientTimeout' });
    throw new HttpError(499, 'Client Disconnect', { code: 'ClientDisconnect', cause: error });
  } finally {
    clearTimeout(timer);
  }
  if (received < contentLength) throw new HttpError(499, 'Client Disconnect', { code: 'ClientDisconnect' });
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, received);
}

/** A small PUT: the whole body to every primary at once, a handoff for each that fails (makeRequests). */
async function putBuffered(
  ctx: Context,
  deps: ProxyDeps,
  target: PutTarget,
  contentLength: number,
): Promise<NodeResult[]> {
  const body = await readClientBody(ctx, deps, contentLength);
  if (target.footers === undefined) return makeRequests(ctx, deps, { ...target, method: 'PUT', body });
  // The whole body is here already: its footers go with the headers, and the length is known.
  const footers = footerHeaders(target.footers);
  const headersFor = (index: number): OutgoingHttpHeaders => {
    const headers: OutgoingHttpHeaders = { ...target.headersFor(index), ...footers };
    delete headers['transfer-encoding'];
    headers['content-length'] = String(contentLength);
    return headers;
  };
  return makeRequests(ctx, deps, { ...target, headersFor, method: 'PUT', body });
}

/**
 * A large (or chunked) PUT: `Expect: 100-continue` to every primary (handoffs for those that do
 * not say Continue), then the body streamed to all of them at once.
 */
async function putStreamed(
  ctx: Context,
  deps: ProxyDeps,
  target: PutTarget,
  contentLength: number | undefined,
  quorum: number,
): Promise<NodeResult[]> {
  const { ring, partition, path, headersFor } = target;
  const putters = await connectPutters(ctx, deps, ring, partition, path, headersFor);
  const live = putters.filter(
    (putter): putter is Putter => !(putter instanceof BackendUploadRefusedError) && putter !== undefined,
  );
  const refusals = putters.filter(
    (putter): putter is BackendUploadRefusedError => putter instanceof BackendUploadRefusedError,
  );
  if (live.length < quorum) {
    abortAll(live);
    if (refusals.some((refusal) => refusal.status === 412))
      throw new HttpError(412, undefined, { code: 'PreconditionFailed' });
    const conflict = refusals.find((refusal) => refusal.status === 409);
    if (conflict !== undefined) throw new HttpError(202, undefined, { code: 'Accepted' });
    const clientError = refusals.find((refusal) => refusal.status >= 400 && refusal.status < 500);
    if (clientError !== undefined) throw new HttpError(clientError.status);
    swiftState(ctx).log.warn({ connected: live.length, quorum }, 'object PUT: too few replicas reachable');
    throw new HttpError(503, undefined, { code: 'InsufficientReplicas' });
  }
  await streamBody(ctx, deps, live, contentLength, deps.config.swift.constraints.max_file_size, quorum);
  const footers = footerHeaders(target.footers);
  for (const putter of live) {
    if (putter.failed || putter.upload.request.destroyed) continue;
    if (target.footers !== undefined) putter.upload.request.addTrailers(footers);
    putter.upload.request.end();
  }
  return collectPutResults(ctx, deps, live, quorum);
}

/** One upload per primary at once; a primary that fails to say Continue is replaced by a handoff. */
async function connectPutters(
  ctx: Context,
  deps: ProxyDeps,
  ring: ProxyRing,
  partition: number,
  path: string,
  headersFor: (index: number) => OutgoingHttpHeaders,
): Promise<(Putter | BackendUploadRefusedError | undefined)[]> {
  const primaries = ring.getNodes(partition);
  const handoffs = ring.getMoreNodes(partition)[Symbol.iterator]();
  let handoffsLeft = deps.config.requestNodeCountPerReplica * ring.replicaCount - primaries.length;
  const log = swiftState(ctx).log;
  const slot = async (primary: RingNode, index: number): Promise<Putter | BackendUploadRefusedError | undefined> => {
    let node: RingNode | undefined = primary;
    // Bounded by handoffsLeft, shared by all slots.
    while (node !== undefined) {
      try {
        const upload = await deps.backend.openUpload({
          node,
          method: 'PUT',
          path,
          headers: headersFor(index),
          connTimeoutMs: deps.config.connTimeoutMs,
          nodeTimeoutMs: deps.config.nodeTimeoutMs,
        });
        return { node, index, upload, failed: false };
      } catch (error) {
        if (error instanceof BackendUploadRefusedError && error.status < 500) return error;
        log.warn({ node: nodeLabel(node), err: error }, 'object PUT: replica unavailable, trying a handoff');
      }
      node = undefined;
      if (handoffsLeft > 0) {
        handoffsLeft -= 1;
        const next = handoffs.next();
        if (next.done !== true) node = next.value;
      }
    }
    return undefined;
  };
  return Promise.all(primaries.map((node, index) => slot(node, index)));
}

function abortAll(putters: readonly Putter[]): void {
  for (const putter of putters) putter.upload.request.destroy();
}

/** Waits for a backend to drain, bounded by node_timeout; false when it failed instead. */
function waitDrain(putter: Putter, timeoutMs: number): Promise<boolean> {
  const request = putter.upload.request;
  if (request.destroyed) return Promise.resolve(false);
  return new Promise<boolean>((resolve) => {
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      request.off('drain', onDrain);
      request.off('close', onClose);
      resolve(ok);
    };
    const onDrain = (): void => done(true);
    const onClose = (): void => done(false);
    const timer = setTimeout(() => done(false), timeoutMs);
    request.once('drain', onDrain);
    request.once('close', onClose);
  });
}

/**
 * Streams the client's body to every live putter (the object servers hash it, as in Swift: the
 * proxy only checks that they agree); the caller ends the uploads. Throws 499 when the
 * client goes away, 408 when it stalls past client_timeout, 413 past max_file_size, and 503 when
 * fewer than a quorum of replicas are still receiving.
 *
 * The body is read in flowing mode, each chunk as the socket delivered it, paused while a
 * replica drains: an async iterator's read() joins whatever is buffered into a new Buffer (a
 * copy of up to a megabyte per read, and the external memory that makes V8 run full GCs).
 */
async function streamBody(
  ctx: Context,
  deps: ProxyDeps,
  putters: Putter[],
  contentLength: number | undefined,
  maxFileSize: number,
  quorum: number,
): Promise<void> {
  const state = swiftState(ctx);
  const body = state.body;
  let received = 0;
  let clientTimer: NodeJS.Timeout | undefined;
  let timedOut = false;
  const armClientTimer = (): void => {
    clearTimeout(clientTimer);
    clientTimer = setTimeout(() => {
      timedOut = true;
      body.destroy(new Error('client timeout'));
    }, deps.config.clientTimeoutMs);
  };
  const isAlive = (putter: Putter): boolean => !putter.failed && !putter.upload.request.destroyed;
  const aliveCount = (): number => putters.reduce((count, putter) => count + (isAlive(putter) ? 1 : 0), 0);
  try {
    armClientTimer();
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      let draining = 0;
      const finish = (error?: Error): void => {
        if (settled) return;
        settled = true;
        body.off('data', onData);
        body.off('end', onEnd);
        body.off('error', onError);
        body.off('close', onClose);
        if (error === undefined) {
          resolve();
          return;
        }
        // As an async iterator left early would: the rest of the body is not wanted.
        body.destroy();
        reject(error);
      };
      const checkQuorum = (): boolean => {
        if (aliveCount() >= quorum) return true;
        finish(new HttpError(503, undefined, { code: 'ReplicasLostMidUpload' }));
        return false;
      };
      const onDrained = (putter: Putter, ok: boolean): void => {
        if (!ok) {
          putter.failed = true;
          putter.upload.request.destroy();
        }
        draining -= 1;
        if (draining > 0 || settled) return;
        if (checkQuorum()) body.resume();
      };
      const onData = (chunk: Buffer): void => {
        if (settled) return;
        armClientTimer();
        received += chunk.length;
        if (received > maxFileSize || (contentLength !== undefined && received > contentLength)) {
          finish(new HttpError(413, 'Your request is too large.', { code: 'TooLarge' }));
          return;
        }
        for (const putter of putters) {
          if (!isAlive(putter) || putter.upload.request.write(chunk)) continue;
          draining += 1;
          void waitDrain(putter, deps.config.nodeTimeoutMs).then((ok) => onDrained(putter, ok));
        }
        // Bounded buffering: no more client bytes until the slowest replica has room again.
        if (draining > 0) body.pause();
        else checkQuorum();
      };
      const onEnd = (): void => finish();
      const onError = (error: Error): void => finish(error);
      // A stream destroyed without 'end' or 'error' (the client went away) ends the upload too.
      const onClose = (): void => finish(new Error('client body closed before its end'));
      body.on('data', onData);
      body.once('end', onEnd);
      body.once('error', onError);
      body.once('close', onClose);
      if (body.readableEnded) finish();
      else if (body.destroyed) finish(body.errored ?? new Error('client body closed before its end'));
      else body.resume();
    });
  } catch (error) {
    abortAll(putters);
    if (error instanceof HttpError) throw error;
    if (timedOut) throw new HttpError(408, 'Request Timeout', { code: 'ClientTimeout' });
    throw new HttpError(499, 'Client Disconnect', { code: 'ClientDisconnect', cause: error });
  } finally {
    clearTimeout(clientTimer);
  }
  if (contentLength !== undefined && received < contentLength) {
    abortAll(putters);
    throw new HttpError(499, 'Client Disconnect', { code: 'ClientDisconnect' });
  }
}

/**
 * Each replica's final answer, as Swift's _get_put_responses gathers them: once a quorum of
 * answers decides the outcome (the same status class, and for 2xx the same ETag), the others get
 * post_quorum_timeout more and then count as 503. A PUT then answers when its quorum is durable,
 * not when the slowest of three disks has synced; the late replicas are neither cut off nor
 * forgotten: they finish in the background (bounded by node_timeout) and a failure is logged.
 */
function collectPutResults(ctx: Context, deps: ProxyDeps, putters: Putter[], quorum: number): Promise<NodeResult[]> {
  const log = swiftState(ctx).log;
  const resultOf = async (putter: Putter): Promise<NodeResult> => {
    if (putter.failed) return failedResult(putter.node);
    try {
      const response = await putter.upload.response;
      const body = await readBody(response, deps.config.nodeTimeoutMs);
      return { node: putter.node, status: response.statusCode ?? 500, headers: response.headers, body };
    } catch (error) {
      log.warn({ node: nodeLabel(putter.node), err: error }, 'object PUT: replica failed');
      return failedResult(putter.node, error instanceof Error ? error : new BackendError(String(error), putter.node));
    }
  };
  return new Promise<NodeResult[]>((resolve) => {
    const results: (NodeResult | undefined)[] = putters.map(() => undefined);
    let pending = putters.length;
    let settled = false;
    let lateTimer: NodeJS.Timeout | undefined;
    const answer = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(lateTimer);
      resolve(results.map((result, index) => result ?? failedResult((putters[index] as Putter).node)));
    };
    if (pending === 0) answer();
    putters.forEach((putter, index) => {
      // resultOf never rejects: every failure is a 503 result.
      void resultOf(putter).then((result) => {
        results[index] = result;
        pending -= 1;
        if (pending === 0) answer();
        else if (lateTimer === undefined && !settled && quorumDecided(results, quorum)) {
          lateTimer = setTimeout(answer, deps.config.postQuorumTimeoutMs);
        }
      });
    });
  });
}

/** Swift's have_quorum, with the ETag as part of a success's class: `quorum` answers agree. */
export function quorumDecided(results: readonly (NodeResult | undefined)[], quorum: number): boolean {
  const counts = new Map<string, number>();
  for (const result of results) {
    if (result === undefined) continue;
    const statusClass = Math.floor(result.status / 100);
    const key = statusClass === 2 ? `2:${String(result.headers.etag ?? '').replace(/"/g, '')}` : String(statusClass);
    const count = (counts.get(key) ?? 0) + 1;
    if (count >= quorum) return true;
    counts.set(key, count);
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// POST / DELETE

async function postObject(ctx: Context, deps: ProxyDeps, target: ObjectTarget): Promise<void> {
  await authorizeWith(ctx, deps, target, 'write');
  await requireContainer(ctx, deps, target);
  checkObjectName(deps, target.object);
  checkObjectMetadata(ctx, deps);
  const timestamp = requestTimestamp(ctx);
  applyDeleteHeaders(ctx, Timestamp.now());
  await fanOut(ctx, deps, target, 'POST', timestamp);
}

async function deleteObject(ctx: Context, deps: ProxyDeps, target: ObjectTarget): Promise<void> {
  await authorizeWith(ctx, deps, target, 'write');
  await requireContainer(ctx, deps, target);
  const timestamp = requestTimestamp(ctx);
  // The container's cached info stays: its counts are as stale as recheck_container_existence
  // allows, as in Swift (quotas re-read it themselves), and the next write needs no HEAD.
  await fanOut(ctx, deps, target, 'DELETE', timestamp);
}

async function fanOut(
  ctx: Context,
  deps: ProxyDeps,
  target: ObjectTarget,
  method: string,
  timestamp: Timestamp,
): Promise<void> {
  const ring = deps.rings.object;
  const partition = ring.getPartition(target.account, target.container, target.object);
  const updates = updateHeadersFor(deps, target, ring.getNodes(partition).length);
  const results = await makeRequests(ctx, deps, {
    ring,
    partition,
    method,
    path: backendPath(partition, target.account, target.container, target.object),
    headersFor: (index) =>
      backendHeaders(ctx, {
        'x-timestamp': timestamp.internal,
        'x-backend-storage-policy-index': '0',
        ...(method === 'POST' ? { 'content-length': '0' } : {}),
        ...(updates[index] ?? {}),
      }),
  });
  // Swift's DELETE: without a quorum, a replica's 404 counts as 204 (it does not have it either).
  respondWithBest(ctx, results, ring.replicaCount, method === 'DELETE' ? { 404: 204 } : {});
}
