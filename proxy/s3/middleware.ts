/**
 * The S3 API as a stage of the proxy pipeline (before tempauth, as Swift's s3api sits before its
 * auth middleware). A request signed with AWS Signature V4 (header or presigned URL) is S3's:
 * it is authenticated here against the tempauth users (access key `account:user`, secret = the
 * user's key), given that user's identity and tempauth's authorize(), and then served with Swift
 * subrequests (`state.subrequest`), so Swift's ACLs and the storage path are the same for both
 * APIs. Any other request goes on down the pipeline untouched. Errors answer S3's XML.
 */
import type { Context, Middleware, Next } from 'koa';
import { prepareBody, rememberSigningKey } from './body.js';
import { InPlaceCaller, type InPlaceState } from './in-place.js';
import { MAX_OBJECT_SIZE, type S3Context, type S3Response } from './context.js';
import { isS3Error, S3Error, S3Errors, s3ErrorXml } from './errors.js';
import { routeS3 } from './router.js';
import { parseS3Target, queryMap } from './s3-request.js';
import {
  hasSigV4,
  parseQuery,
  parseSigV4,
  safeDecode,
  verifySigV4,
  type SignedRequest,
  type SigV4Auth,
} from './sigv4.js';
import { SwiftClient, type SwiftCall } from './swift-client.js';

/** The tempauth user fields S3 needs (proxy/config.ts TempAuthUser). */
export interface S3User {
  accountUser: string;
  key: string;
  /** Storage URL (template), ending in the account: `$HOST/v1/AUTH_test`. */
  url: string;
}

export interface S3ApiOptions {
  users: ReadonlyMap<string, S3User>;
  /** tempauth's groups for a user (becomes REMOTE_USER for the subrequests). */
  userGroups(user: S3User): string[];
  /** tempauth's authorize, installed for the subrequests. */
  authorize: unknown;
  /** Base domains for virtual-hosted-style addressing (`<bucket>.<domain>`). */
  storageDomains?: readonly string[];
  /** Clock, for tests. */
  nowMs?: () => number;
  /** The stages after authentication, to run Swift calls in place (in-place.ts); else subrequests. */
  pipeline?: () => Middleware | undefined;
}

/** The pipeline state fields this stage reads and sets (proxy/state.ts SwiftState). */
interface PipelineState extends InPlaceState {
  txId: string;
  log: S3Context['log'] & { error(obj: object, msg: string): void };
  remoteUser?: string;
  authorize?: unknown;
  subrequest: SwiftCall;
}

function pipelineState(ctx: Context): PipelineState {
  const state = (ctx.state as { swift?: PipelineState }).swift;
  if (state === undefined) throw new Error('s3api: ctx.state.swift is not set (stage placed before catch_errors?)');
  return state;
}

/** The account of a storage URL: its last path segment. */
export function accountOfUrl(url: string): string {
  return decodeURIComponent(url.slice(url.lastIndexOf('/') + 1));
}

function isSigV2(ctx: Context, query: readonly (readonly [string, string])[]): boolean {
  return ctx.get('authorization').startsWith('AWS ') || query.some(([name]) => name === 'AWSAccessKeyId');
}

export function s3api(options: S3ApiOptions): Middleware {
  const storageDomains = options.storageDomains ?? [];
  const now = options.nowMs ?? Date.now;
  return async (ctx: Context, next: Next): Promise<void> => {
    const rawUrl = ctx.req.url ?? '/';
    const questionMark = rawUrl.indexOf('?');
    const rawPath = questionMark === -1 ? rawUrl : rawUrl.slice(0, questionMark);
    const rawQuery = questionMark === -1 ? '' : rawUrl.slice(questionMark + 1);
    const query = parseQuery(rawQuery);
    const signed: SignedRequest = { method: ctx.method, rawPath, query, headers: ctx.req.headers };
    const sigV2 = isSigV2(ctx, query);
    if (!sigV2 && !hasSigV4(signed)) {
      await next();
      return;
    }
    const state = pipelineState(ctx);
    ctx.set('x-amz-request-id', state.txId);
    ctx.set('x-amz-id-2', state.txId);
    let inPlace: InPlaceCaller | undefined;
    try {
      if (sigV2) throw S3Errors.notImplemented('AWS Signature Version 2 is not supported; use Signature Version 4.');
      const nowMs = now();
      const auth: SigV4Auth = parseSigV4(signed, nowMs);
      const user = options.users.get(auth.accessKey);
      if (user === undefined) throw S3Errors.invalidAccessKeyId(auth.accessKey);
      rememberSigningKey(auth, verifySigV4(signed, auth, user.key));
      state.remoteUser = options.userGroups(user).join(',');
      state.authorize = options.authorize;
      const target = parseS3Target(ctx.get('host'), rawPath, storageDomains);
      const pipeline = options.pipeline?.();
      if (pipeline !== undefined) inPlace = new InPlaceCaller(ctx, pipeline, state, state.subrequest);
      let bodyTaken = false;
      const s3: S3Context = {
        method: ctx.method,
        bucket: target.bucket,
        key: target.key,
        query: queryMap(query),
        header: (name) => {
          const value = ctx.req.headers[name];
          return Array.isArray(value) ? value.join(',') : value;
        },
        headers: ctx.req.headers,
        swift: new SwiftClient(inPlace?.call ?? state.subrequest, accountOfUrl(user.url)),
        owner: { id: user.accountUser, displayName: user.accountUser },
        requestId: state.txId,
        nowMs,
        log: state.log,
        body: () => {
          if (bodyTaken) throw new Error('s3api: request body read twice');
          bodyTaken = true;
          return prepareBody(ctx.req, (name) => s3.header(name), auth, MAX_OBJECT_SIZE);
        },
      };
      const response = await routeS3(s3);
      inPlace?.close();
      writeResponse(ctx, response);
    } catch (error) {
      inPlace?.close();
      renderS3Error(ctx, error, rawPath, state);
    }
  };
}

function writeResponse(ctx: Context, response: S3Response): void {
  const headers = response.headers ?? {};
  ctx.status = response.status;
  const body = response.body;
  if (
    body === undefined ||
    body === null ||
    ctx.method === 'HEAD' ||
    response.status === 204 ||
    response.status === 304
  ) {
    ctx.body = null;
    for (const [name, value] of Object.entries(headers)) ctx.set(name, value);
    if (body !== undefined && body !== null && typeof body === 'object' && !Buffer.isBuffer(body)) body.destroy();
    // Koa drops a 200's Content-Length with no body; HEAD answers must keep the object's.
    ctx.status = response.status;
    if (headers['content-length'] === undefined && response.status !== 204 && response.status !== 304) ctx.length = 0;
    return;
  }
  // The type first, so Koa does not look one up for the body; the length after it, as Koa drops a
  // Content-Length when a stream replaces an earlier body.
  const contentType = headers['content-type'];
  if (contentType !== undefined) ctx.set('content-type', contentType);
  // An in-place GET left the object's stream as the body already: setting it again would only
  // register Koa's cleanup a second time.
  if (ctx.body !== body) ctx.body = body;
  for (const [name, value] of Object.entries(headers)) ctx.set(name, value);
}

function renderS3Error(ctx: Context, error: unknown, rawPath: string, state: PipelineState): void {
  let s3Error: S3Error;
  if (isS3Error(error)) {
    s3Error = error;
    if (error.status >= 500) state.log.error({ err: error, cause: error.cause }, 's3 request failed');
  } else {
    state.log.error({ err: error }, 's3 request failed');
    s3Error = S3Errors.internalError();
  }
  if (ctx.method === 'HEAD') {
    // Body first: Koa turns the status of a null body into 204.
    ctx.body = null;
    ctx.status = s3Error.status;
    for (const [name, value] of Object.entries(s3Error.headers)) ctx.set(name, value);
    ctx.length = 0;
    return;
  }
  ctx.status = s3Error.status;
  for (const [name, value] of Object.entries(s3Error.headers)) ctx.set(name, value);
  // The path may not be UTF-8 (that is the error being rendered): never throw here.
  ctx.body = s3ErrorXml(s3Error, safeDecode(rawPath), state.txId);
  ctx.type = 'application/xml';
}
