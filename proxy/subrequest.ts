/**
 * Internal subrequests: a middleware's own request run through the pipeline stages after
 * authentication, with a fresh Koa context over a synthetic request (no socket), the caller's
 * identity and transaction id, and errors rendered into the response rather than thrown.
 * See state.ts for the contract middlewares rely on.
 */
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { Readable } from 'node:stream';
import type Koa from 'koa';
import type { Context, Middleware } from 'koa';
import { HttpError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { renderError } from './middleware/catch-errors.js';
import {
  MAX_SUBREQUEST_DEPTH,
  swiftState,
  type SubResponse,
  type SubrequestOptions,
  type SwiftState,
} from './state.js';

const DEFAULT_BUFFER_MAX_BYTES = 64 * 1024 * 1024;

export async function bufferBody(body: SubResponse['body'], maxBytes = DEFAULT_BUFFER_MAX_BYTES): Promise<Buffer> {
  if (body === null) return Buffer.alloc(0);
  if (typeof body === 'string') return Buffer.from(body);
  if (Buffer.isBuffer(body)) return body;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer | string>) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    size += buffer.length;
    if (size > maxBytes) {
      body.destroy();
      throw new Error(`subrequest body larger than ${maxBytes} bytes`);
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

/**
 * A subrequest's request headers (lower-case names, the caller's Host when it names none, the
 * parent's transaction id) and its body as a stream, with Content-Length for a whole body; no
 * body gives `undefined` and Content-Length 0 unless the caller set one.
 */
export function subrequestHeadersAndBody(
  options: Pick<SubrequestOptions, 'headers' | 'body'>,
  host: string,
  txId: string,
): { headers: Record<string, string>; body: Readable | undefined } {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(options.headers ?? {})) headers[name.toLowerCase()] = value;
  headers.host ??= host;
  headers['x-trans-id'] = txId;
  if (options.body === undefined) {
    headers['content-length'] ??= '0';
    return { headers, body: undefined };
  }
  if (typeof options.body === 'string' || Buffer.isBuffer(options.body)) {
    const buffer = Buffer.from(options.body);
    headers['content-length'] = String(buffer.length);
    return { headers, body: Readable.from([buffer]) };
  }
  return { headers, body: options.body };
}

export class SubrequestRunner {
  private app: Koa | undefined;
  private inner: Middleware | undefined;

  /** Wires the runner to the app and to the composed stages after authentication. */
  attach(app: Koa, inner: Middleware): void {
    this.app = app;
    this.inner = inner;
  }

  /**
   * The composed stages after authentication, for a middleware that runs them on the client's own
   * context instead of a synthetic one (proxy/s3/in-place.ts); undefined before attach().
   */
  get pipeline(): Middleware | undefined {
    return this.inner;
  }

  async run(parentCtx: Context, options: SubrequestOptions): Promise<SubResponse> {
    const { app, inner } = this;
    if (app === undefined || inner === undefined) throw new Error('SubrequestRunner used before attach()');
    const parent = swiftState(parentCtx);
    if (parent.depth >= MAX_SUBREQUEST_DEPTH) {
      throw new HttpError(500, `subrequests nested deeper than ${MAX_SUBREQUEST_DEPTH}`, { code: 'SubrequestLoop' });
    }
    const req = new IncomingMessage(new Socket());
    req.method = options.method.toUpperCase();
    req.url = options.path;
    req.httpVersion = '1.1';
    req.httpVersionMajor = 1;
    req.httpVersionMinor = 1;
    const { headers, body: givenBody } = subrequestHeadersAndBody(options, parentCtx.get('host'), parent.txId);
    const body = givenBody ?? Readable.from([]);
    req.headers = headers;
    req.push(null);
    const res = new ServerResponse(req);
    const ctx = app.createContext(req, res);
    // Made on first use: most subrequests log nothing at the configured level.
    let log: Logger | undefined;
    const state: SwiftState = {
      txId: parent.txId,
      get log(): Logger {
        log ??= parent.log.child({ source: options.source ?? 'subrequest' });
        return log;
      },
      startMs: Date.now(),
      body,
      remoteUser: parent.remoteUser,
      authorize: options.preAuthed === true ? undefined : parent.authorize,
      swiftOwner: options.asOwner === true,
      source: options.source,
      depth: parent.depth + 1,
      env: new Map(),
      footers: options.footers,
      subrequest: (nested) => this.run(ctx, nested),
    };
    (ctx.state as { swift?: SwiftState }).swift = state;
    try {
      await inner(ctx, () => Promise.resolve());
    } catch (error) {
      renderError(ctx, error, state.log);
    }
    const responseHeaders: Record<string, string> = {};
    for (const [name, value] of Object.entries(ctx.response.headers)) {
      if (value === undefined) continue;
      responseHeaders[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value);
    }
    const responseBody: unknown = ctx.body;
    let subBody: SubResponse['body'] = null;
    if (responseBody instanceof Readable || Buffer.isBuffer(responseBody) || typeof responseBody === 'string') {
      subBody = responseBody;
    } else if (responseBody !== null && responseBody !== undefined) {
      subBody = JSON.stringify(responseBody);
    }
    if (parent.log.isLevelEnabled('debug')) {
      state.log.debug({ method: req.method, path: options.path, status: ctx.status }, 'subrequest');
    }
    return {
      status: ctx.status,
      headers: responseHeaders,
      body: subBody,
      buffer: (maxBytes?: number) => bufferBody(subBody, maxBytes),
    };
  }
}
