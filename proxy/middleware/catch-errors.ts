/**
 * The outermost stage (Swift's catch_errors + proxy_logging): gives every request its transaction
 * id (X-Trans-Id and X-Openstack-Request-Id on the response, `txId` on every log line, passed to
 * every backend), renders any error as Swift's text body, and writes one JSON access line per
 * request when the response is finished (or the client went away).
 */
import type { Context, Middleware, Next } from 'koa';
import { HttpError, STATUS_TEXT, swiftErrorBody } from '../../common/errors.js';
import { newTransactionId, type Logger } from '../../common/log.js';
import type { SwiftState } from '../state.js';
import type { SubrequestRunner } from '../subrequest.js';

/** Turns any thrown value into Swift's response for it; 5xx details go to the log, not the client. */
export function renderError(ctx: Context, error: unknown, log: Logger): void {
  const httpError =
    error instanceof HttpError ? error : new HttpError(500, undefined, { code: 'InternalError', cause: error });
  if (httpError.status >= 500) {
    log.error({ err: error, method: ctx.method, path: ctx.path }, 'request failed');
  }
  const message = httpError.expose ? httpError.message : undefined;
  ctx.status = httpError.status;
  for (const [name, value] of Object.entries(httpError.headers)) ctx.set(name, value);
  if (ctx.method === 'HEAD' || httpError.status === 204 || httpError.status === 304) {
    // A HEAD or empty status keeps no body; Koa's null body would rewrite the status.
    ctx.remove('content-type');
    ctx.remove('content-length');
    return;
  }
  const body = swiftErrorBody(httpError.status, message);
  ctx.body = body;
  // swob's default type, for its pages and for most one-line reasons alike.
  ctx.set('Content-Type', httpError.plainText ? 'text/plain' : 'text/html; charset=UTF-8'); // ctx.type would add a charset
}

const TRANS_ID_EXTRA_MAX = 32;

export function catchErrors(log: Logger, subrequests: SubrequestRunner): Middleware {
  return async (ctx: Context, next: Next): Promise<void> => {
    const startMs = Date.now();
    const extra = ctx
      .get('x-trans-id-extra')
      .replace(/[^A-Za-z0-9_.~-]/g, '')
      .slice(0, TRANS_ID_EXTRA_MAX);
    const txId = newTransactionId(extra === '' ? '' : `-${extra}`);
    // Most requests log nothing but their access line: the child logger (a few allocations and a
    // JSON encoding of its bindings) is made only when something else is logged.
    let requestLog: Logger | undefined;
    const state: SwiftState = {
      txId,
      get log(): Logger {
        requestLog ??= log.child({ txId });
        return requestLog;
      },
      startMs,
      body: ctx.req,
      swiftOwner: false,
      depth: 0,
      env: new Map(),
      subrequest: (options) => subrequests.run(ctx, options),
    };
    (ctx.state as { swift?: SwiftState }).swift = state;
    // Counted from the socket: a 'data' listener on the request would start consuming the body.
    const socket = ctx.req.socket;
    const bytesReadAtStart = socket.bytesRead;
    let logged = false;
    const writeAccessLine = (): void => {
      if (logged) return;
      logged = true;
      const finished = ctx.res.writableFinished;
      // The parent logger with txId first writes the same line the child would.
      log.info(
        {
          txId,
          method: ctx.method,
          path: ctx.originalUrl,
          status: finished ? ctx.status : 499,
          bytesIn: socket.bytesRead - bytesReadAtStart,
          bytesOut:
            ctx.res.getHeader('content-length') !== undefined ? Number(ctx.res.getHeader('content-length')) : undefined,
          durationMs: Date.now() - startMs,
          remoteAddr: ctx.req.socket.remoteAddress,
          userAgent: ctx.get('user-agent') || undefined,
          user: state.remoteUser?.split(',')[1],
        },
        'access',
      );
    };
    ctx.res.once('finish', writeAccessLine);
    ctx.res.once('close', writeAccessLine);
    try {
      await next();
    } catch (error) {
      renderError(ctx, error, state.log);
    }
    // Swift's reason phrase where it differs from Node's (413 Request Entity Too Large, 416
    // Requested Range Not Satisfiable, 500 Internal Error), whichever stage answered.
    const reason = STATUS_TEXT[ctx.status];
    if (reason !== undefined && !ctx.headerSent) ctx.message = reason;
    ctx.set('X-Trans-Id', txId);
    ctx.set('X-Openstack-Request-Id', txId);
  };
}
