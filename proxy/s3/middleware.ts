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
import { bucketAclOf, MAX_OBJECT_SIZE, type BucketCannedAcl, type S3Context, type S3Response } from './context.js';
import { isS3Error, S3Error, S3Errors, s3ErrorXml } from './errors.js';
import { isReadableByAnyone, isWritableByAnyone, routeS3 } from './router.js';
import { parseS3Target, queryMap } from './s3-request.js';
import { hasSigV2, parseSigV2, verifySigV2 } from './sigv2.js';
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
  /**
   * First path segments that belong to the Swift side (API versions such as `v1`, tempauth's
   * `auth`): an unsigned request there is Swift's. Any other unsigned request that names a bucket
   * (but a CORS preflight) is an anonymous S3 request. Without this list anonymous S3 requests
   * are not recognised.
   */
  swiftPathPrefixes?: readonly string[];
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

/**
 * An unsigned request that names a bucket (a first path segment that is no Swift prefix): S3's
 * anonymous access. Reads are answered where the bucket's ACL lets everyone read; anything else
 * is S3's AccessDenied, never Swift's 401 or 404. OPTIONS (CORS preflights) stays Swift's.
 */
function isAnonymousS3(method: string, rawPath: string, swiftPathPrefixes: readonly string[] | undefined): boolean {
  if (swiftPathPrefixes === undefined || method === 'OPTIONS') return false;
  const first = rawPath.split('/')[1] ?? '';
  return first !== '' && !swiftPathPrefixes.includes(first);
}

/**
 * Whether an anonymous request may go on to Swift's ACL check: only reads can. Swift's container
 * ACLs grant anonymous users nothing but reads (`.r:*`), so anonymous writes, deletes and ACL
 * changes are S3's AccessDenied, except the object writes a public-read-write bucket grants
 * everyone (isWritableByAnyone), which the S3 layer lets through itself.
 */
function isAnonymousRead(method: string): boolean {
  return method === 'GET' || method === 'HEAD';
}

/** The bucket of a virtual-hosted-style request (`<bucket>.<storage domain>`), if it is one. */
function virtualHostBucket(host: string, storageDomains: readonly string[]): string | undefined {
  const hostname = host.replace(/:\d+$/, '').toLowerCase();
  for (const domain of storageDomains) {
    const suffix = `.${domain.toLowerCase()}`;
    if (hostname.endsWith(suffix) && hostname.length > suffix.length) return hostname.slice(0, -suffix.length);
  }
  return undefined;
}

/**
 * The account an anonymous request's bucket lives in, and the bucket's canned ACL. S3 bucket
 * names are global but Swift's are per account: the accounts of the configured users are asked
 * in their configuration order, and the first that has the bucket answers (its ACL then decides,
 * as for any anonymous request).
 */
async function anonymousBucket(
  state: PipelineState,
  users: ReadonlyMap<string, S3User>,
  bucket: string,
): Promise<{ account: string; acl: BucketCannedAcl } | undefined> {
  const accounts = [...new Set([...users.values()].map((user) => accountOfUrl(user.url)))];
  for (const account of accounts) {
    const head = await state.subrequest({
      method: 'HEAD',
      path: new SwiftClient(state.subrequest, account).path(bucket),
      preAuthed: true,
      asOwner: true, // the container's ACLs are part of the bucket's ACL
      source: 'S3',
    });
    if (head.status >= 200 && head.status < 300) return { account, acl: bucketAclOf(head.headers) };
  }
  return undefined;
}

export function s3api(options: S3ApiOptions): Middleware {
  const storageDomains = options.storageDomains ?? [];
  const now = options.nowMs ?? Date.now;
  // A user's groups (REMOTE_USER) follow from the configuration alone: joined once per user.
  const remoteUsers = new WeakMap<S3User, string>();
  const remoteUserOf = (user: S3User): string => {
    let groups = remoteUsers.get(user);
    if (groups === undefined) {
      groups = options.userGroups(user).join(',');
      remoteUsers.set(user, groups);
    }
    return groups;
  };
  return async (ctx: Context, next: Next): Promise<void> => {
    const rawUrl = ctx.req.url ?? '/';
    const questionMark = rawUrl.indexOf('?');
    const rawPath = questionMark === -1 ? rawUrl : rawUrl.slice(0, questionMark);
    const rawQuery = questionMark === -1 ? '' : rawUrl.slice(questionMark + 1);
    const query = parseQuery(rawQuery);
    const signed: SignedRequest = { method: ctx.method, rawPath, query, headers: ctx.req.headers };
    const sigV2 = hasSigV2(signed);
    const anonymous = !sigV2 && !hasSigV4(signed);
    if (anonymous && !isAnonymousS3(ctx.method, rawPath, options.swiftPathPrefixes)) {
      await next();
      return;
    }
    const state = pipelineState(ctx);
    ctx.set('x-amz-request-id', state.txId);
    ctx.set('x-amz-id-2', state.txId);
    let inPlace: InPlaceCaller | undefined;
    try {
      const nowMs = now();
      const host = ctx.get('host');
      const target = parseS3Target(host, rawPath, storageDomains);
      let auth: SigV4Auth | undefined;
      let anonymousWrite = false;
      let account: string;
      let owner: S3Context['owner'];
      if (anonymous) {
        if (target.bucket === undefined) throw S3Errors.accessDenied();
        // CreateBucket needs an identity whether or not the name is taken.
        if (ctx.method === 'PUT' && target.key === undefined) throw S3Errors.accessDenied();
        const found = await anonymousBucket(state, options.users, target.bucket);
        if (found === undefined) throw S3Errors.noSuchBucket(target.bucket);
        const asked = queryMap(query);
        anonymousWrite =
          found.acl === 'public-read-write' &&
          ctx.req.headers['x-amz-copy-source'] === undefined && // a copy reads its source too
          isWritableByAnyone(ctx.method, target.key, asked);
        if (!anonymousWrite && (!isAnonymousRead(ctx.method) || !isReadableByAnyone(target.key, asked)))
          throw S3Errors.accessDenied();
        account = found.account;
        owner = { id: found.account, displayName: found.account };
      } else {
        let user: S3User | undefined;
        if (sigV2) {
          const authV2 = parseSigV2(signed, nowMs);
          user = options.users.get(authV2.accessKey);
          if (user === undefined) throw S3Errors.invalidAccessKeyId(authV2.accessKey);
          verifySigV2(signed, authV2, user.key, virtualHostBucket(host, storageDomains));
        } else {
          const authV4 = parseSigV4(signed, nowMs);
          user = options.users.get(authV4.accessKey);
          if (user === undefined) throw S3Errors.invalidAccessKeyId(authV4.accessKey);
          rememberSigningKey(authV4, verifySigV4(signed, authV4, user.key));
          auth = authV4;
        }
        state.remoteUser = remoteUserOf(user);
        account = accountOfUrl(user.url);
        owner = { id: user.accountUser, displayName: user.accountUser };
      }
      // Anonymous requests get tempauth's authorize too: it lets in what the container ACL allows.
      // An anonymous write to a public-read-write bucket was allowed above, by the S3 ACL that
      // Swift's ACLs cannot hold: its Swift requests go unchecked.
      state.authorize = anonymousWrite ? undefined : options.authorize;
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
        swift: new SwiftClient(inPlace?.call ?? state.subrequest, account),
        owner,
        requestId: state.txId,
        nowMs,
        log: state.log,
        body: (use) => {
          if (bodyTaken) throw new Error('s3api: request body read twice');
          bodyTaken = true;
          return prepareBody(ctx.req, (name) => s3.header(name), auth, MAX_OBJECT_SIZE, use);
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
