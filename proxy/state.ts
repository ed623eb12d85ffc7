/**
 * The per-request state every proxy middleware shares, kept at `ctx.state.swift` (Swift keeps the
 * same things in the WSGI environ: swift.trans_id, REMOTE_USER, swift.authorize, swift_owner,
 * swift.source). A middleware reads it with `swiftState(ctx)`.
 *
 * Writing a middleware (SLO, DLO, COPY, TempURL, S3, versioning, ...): add an entry to the
 * ordered pipeline in app.ts. To make a request of its own, call
 * `swiftState(ctx).subrequest({ method, path, headers, body })`: it runs the pipeline after
 * authentication (the stages after `tempauth`) with this request's identity and authorization,
 * the way Swift's make_subrequest does; `preAuthed: true` skips authorization
 * (make_pre_authed_request). Subrequests return a SubResponse and never throw HttpErrors.
 */
import type { Readable } from 'node:stream';
import type { Context } from 'koa';
import type { HttpError } from '../common/errors.js';
import type { Logger } from '../common/log.js';

export interface SubrequestOptions {
  method: string;
  /** `/v1/<account>/<container>/<object>` %-encoded, optionally with `?query`. */
  path: string;
  headers?: Readonly<Record<string, string>>;
  body?: Buffer | string | Readable;
  /** Skip authorization (Swift's make_pre_authed_request): for middleware-internal work. */
  preAuthed?: boolean;
  /**
   * Answer as to the account's owner (Swift's swift_owner), keeping owner-only headers such as
   * X-Container-Read/-Write: for middleware-internal reads of what the store holds.
   */
  asOwner?: boolean;
  /** Short name of the middleware making it, logged as `source` (Swift's swift_source). */
  source?: string;
  /** An object PUT's metadata footers (SwiftState.footers). */
  footers?: FooterSource;
}

/**
 * Object metadata known only once a PUT's body has been read whole (an S3 checksum sent as an
 * aws-chunked trailer), asked for after its last byte: Swift's `swift.callback.update_footers`.
 * Sysmeta names only (`x-object-sysmeta-*`), which the object servers store with the object.
 */
export type FooterSource = () => Readonly<Record<string, string>>;

export interface SubResponse {
  status: number;
  /** Lower-case header names. */
  headers: Record<string, string>;
  /** The body as the inner pipeline left it: a stream to consume, or an in-memory value. */
  body: Readable | Buffer | string | null;
  /** Reads the whole body (bounded) as a Buffer. */
  buffer(maxBytes?: number): Promise<Buffer>;
}

/** Decides whether the request may proceed; `acl` is the container ACL that applies (read or write). */
export type Authorize = (ctx: Context, acl?: string) => HttpError | undefined;

export interface SwiftState {
  txId: string;
  log: Logger;
  /** When the request reached the proxy (ms since epoch). */
  startMs: number;
  /** The request body stream (the client's, or a subrequest's). Middlewares may replace it. */
  body: Readable;
  /** Tempauth groups, comma-separated, first the user's own id (`test,test:tester,AUTH_test`). */
  remoteUser?: string;
  /** Set by the auth middleware; absent means "no auth installed": everything is allowed. */
  authorize?: Authorize;
  /** Set by authorize: the caller owns the account (may see and set ACLs). */
  swiftOwner: boolean;
  /** Set on subrequests: who made it. */
  source?: string;
  /** Depth of subrequest nesting (0 for a client's request); bounded to stop loops. */
  depth: number;
  subrequest(options: SubrequestOptions): Promise<SubResponse>;
  /** Free-form per-request data for middlewares (use a key named after the middleware). */
  env: Map<string, unknown>;
  /**
   * Set for an object PUT whose caller learns metadata from the body itself: the object
   * controller asks for it after the body's last byte and sends it to the object servers with
   * the body (HTTP trailers), so it needs no POST afterwards. Stages that make a PUT of their
   * own do not pass it on; the caller then sees it was never asked for.
   */
  footers?: FooterSource;
}

export function swiftState(ctx: Context): SwiftState {
  const state = (ctx.state as { swift?: SwiftState }).swift;
  if (state === undefined) throw new Error('proxy: ctx.state.swift is not set (request did not enter the pipeline)');
  return state;
}

export const MAX_SUBREQUEST_DEPTH = 8;
