/**
 * Swift calls run in place: the stages after authentication (SLO, DLO, symlinks, quotas,
 * versioning, ..., the object controller) run on the S3 request's own Koa context, its URL,
 * method and headers swapped for the Swift request's for the length of the call, instead of on a
 * synthetic request (proxy/subrequest.ts). A plain S3 GET, HEAD or PUT is then one pass through
 * the pipeline, as a Swift request is: no second request/response/context, no second Koa body
 * hand-over, and the object's body stream goes to the client as the controller made it.
 *
 * Only one call at a time can own the context, and only until the S3 response is decided: a call
 * made while another is in flight, while the previous call's body stream is still unread, or
 * after `close()` (segment reads that feed the response as it streams) takes the ordinary
 * subrequest path. What a call did to the response (status, headers) is captured and undone, so
 * the S3 layer writes its own answer from a clean slate.
 */
import { Readable } from 'node:stream';
import type { Context, Middleware } from 'koa';
import { HttpError } from '../../common/errors.js';
import { bufferBody, subrequestHeadersAndBody } from '../subrequest.js';
import type { SwiftCall, SwiftSubrequest, SwiftSubresponse } from './swift-client.js';

/** The pipeline state fields a call swaps (proxy/state.ts SwiftState). */
export interface InPlaceState {
  txId: string;
  log: { error(obj: object, msg: string): void };
  body: Readable;
  swiftOwner: boolean;
  source?: string;
  depth: number;
  env: Map<string, unknown>;
  footers?: () => Readonly<Record<string, string>>;
}

const NOOP_NEXT = (): Promise<void> => Promise.resolve();

export class InPlaceCaller {
  private open = true;
  private busy = false;
  /** The last in-place response's body stream, while it may still be read. */
  private pendingBody: Readable | undefined;

  constructor(
    private readonly ctx: Context,
    private readonly pipeline: Middleware,
    private readonly state: InPlaceState,
    /** The ordinary subrequest, for calls that cannot run in place. */
    private readonly fallback: SwiftCall,
  ) {}

  /** From now on every call is a subrequest (the response is being written). */
  close(): void {
    this.open = false;
  }

  readonly call: SwiftCall = (options) => {
    const pending = this.pendingBody;
    const pendingOpen = pending !== undefined && !pending.destroyed && !pending.readableEnded;
    if (!this.open || this.busy || pendingOpen) return this.fallback(options);
    return this.run(options);
  };

  private async run(options: SwiftSubrequest): Promise<SwiftSubresponse> {
    const { ctx, state } = this;
    const req = ctx.req;
    const res = ctx.res;
    this.busy = true;
    const headersBefore = new Set(res.getHeaderNames());
    // Koa's body cannot be unset without destroying a stream: a call that sets none left this one.
    const bodyBefore: unknown = ctx.body;
    const saved = {
      url: req.url,
      method: req.method,
      headers: req.headers,
      body: state.body,
      swiftOwner: state.swiftOwner,
      source: state.source,
      depth: state.depth,
      env: state.env,
      footers: state.footers,
    };
    const host = typeof saved.headers.host === 'string' ? saved.headers.host : '';
    const { headers, body } = subrequestHeadersAndBody(options, host, state.txId);
    req.url = options.path;
    req.method = options.method.toUpperCase();
    req.headers = headers;
    // A call without a body must not see the client's (an S3 PUT's body belongs to its PUT call),
    // but GET and HEAD never read one: they keep the client's, which for them is empty anyway.
    const readsNoBody = req.method === 'GET' || req.method === 'HEAD';
    state.body = body ?? (readsNoBody ? saved.body : Readable.from([]));
    state.swiftOwner = options.asOwner === true;
    state.source = options.source;
    state.depth = saved.depth + 1;
    state.env = new Map();
    state.footers = options.footers;
    let status: number;
    let errorHeaders: Record<string, string> = {};
    try {
      await this.pipeline(ctx, NOOP_NEXT);
      status = ctx.status;
    } catch (error) {
      // What subrequest.ts renders into a response, answered the same way (minus the text body).
      if (error instanceof HttpError) {
        status = error.status;
        errorHeaders = Object.fromEntries(Object.entries(error.headers).map(([k, v]) => [k.toLowerCase(), String(v)]));
      } else {
        state.log.error({ err: error, method: options.method, path: options.path }, 'in-place Swift call failed');
        status = 500;
      }
    } finally {
      req.url = saved.url;
      req.method = saved.method;
      req.headers = saved.headers;
      state.body = saved.body;
      state.swiftOwner = saved.swiftOwner;
      state.source = saved.source;
      state.depth = saved.depth;
      state.env = saved.env;
      state.footers = saved.footers;
      this.busy = false;
    }
    const responseHeaders: Record<string, string> = {};
    for (const name of res.getHeaderNames()) {
      const value = res.getHeader(name);
      if (value !== undefined && !headersBefore.has(name))
        responseHeaders[name] = Array.isArray(value) ? value.join(', ') : String(value);
    }
    Object.assign(responseHeaders, errorHeaders);
    // Undo the call's headers: the S3 layer answers with its own.
    for (const name of Object.keys(responseHeaders)) if (!headersBefore.has(name)) res.removeHeader(name);
    const responseBody: unknown = ctx.body === bodyBefore ? null : ctx.body;
    let subBody: SwiftSubresponse['body'] = null;
    if (responseBody instanceof Readable) {
      subBody = responseBody;
      this.pendingBody = responseBody;
    } else if (Buffer.isBuffer(responseBody) || typeof responseBody === 'string') {
      subBody = responseBody;
    } else if (responseBody !== null) {
      subBody = JSON.stringify(responseBody);
    }
    return {
      status,
      headers: responseHeaders,
      body: subBody,
      buffer: (maxBytes?: number) => bufferBody(subBody, maxBytes),
    };
  }
}
