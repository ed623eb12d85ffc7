/**
 * The one way the benchmark talks HTTP: node:http/https with keep-alive agents, an idle timeout
 * on every request (covers connect, a stalled upload and a stalled response alike) and an
 * overall deadline. The response body is either hashed as it streams (MD5, for GET
 * verification), kept as text up to a cap (listings, auth), or drained.
 * Failures reject with `OperationError`, whose `kind` is what the report counts errors by.
 */
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import * as https from 'node:https';

export class OperationError extends Error {
  readonly code = 'OperationError';
  /** Stable error kind for the report: `http_503`, `timeout`, `net_ECONNRESET`, `md5_mismatch`, ... */
  readonly kind: string;

  constructor(kind: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
  }
}

/** Error kind of a request lost on a reused keep-alive socket before any answer: safe to resend. */
export const STALE_SOCKET = 'net_stale_socket';

export type BodyMode = 'md5' | 'text' | 'drain';

export interface HttpRequestOptions {
  readonly url: URL;
  readonly method: string;
  readonly headers: Readonly<Record<string, string>>;
  /** `false`: a connection of its own, closed after this exchange. */
  readonly agent: http.Agent | false;
  /** Longest time with no progress (connect, send, receive). */
  readonly idleTimeoutMs: number;
  /** Longest time for the whole exchange. */
  readonly deadlineMs: number;
  readonly bodyMode: BodyMode;
  /** Writes the request body (the caller's writer ends nothing; `end` is called here). */
  readonly writeBody?: (request: http.ClientRequest) => Promise<void>;
  readonly textBytesMax?: number;
}

export interface HttpResult {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly bodyBytes: number;
  readonly md5Hex?: string;
  readonly text?: string;
}

export function createAgent(url: URL, socketsMax: number): http.Agent {
  const options = { keepAlive: true, maxSockets: socketsMax, maxFreeSockets: socketsMax, scheduling: 'lifo' as const };
  return url.protocol === 'https:' ? new https.Agent(options) : new http.Agent(options);
}

function networkKind(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? `net_${code}` : 'net_error';
}

export function httpRequest(options: HttpRequestOptions): Promise<HttpResult> {
  return new Promise<HttpResult>((resolve, reject) => {
    const transport = options.url.protocol === 'https:' ? https : http;
    let settled = false;
    const finish = (error: OperationError | undefined, result?: HttpResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      if (error !== undefined) {
        request.destroy();
        reject(error);
      } else resolve(result as HttpResult);
    };
    const request = transport.request(options.url, {
      method: options.method,
      headers: options.headers,
      agent: options.agent,
    });
    const deadline = setTimeout(
      () => finish(new OperationError('timeout', `${options.method} ${options.url.pathname}: deadline`)),
      options.deadlineMs,
    );
    request.setTimeout(options.idleTimeoutMs, () =>
      finish(new OperationError('timeout', `${options.method} ${options.url.pathname}: idle timeout`)),
    );
    let answered = false;
    request.on('error', (error: Error) => {
      // A kept-alive socket the server closed just as we reused it (its idle timeout raced our
      // request): nothing reached the server, so the caller may send the request again.
      const kind = !answered && request.reusedSocket ? STALE_SOCKET : networkKind(error);
      finish(new OperationError(kind, error.message, { cause: error }));
    });
    request.on('response', (response: IncomingMessage) => {
      answered = true;
      const md5 = options.bodyMode === 'md5' ? createHash('md5') : undefined;
      const textBytesMax = options.textBytesMax ?? 64 * 1024 * 1024;
      const textParts: Buffer[] = [];
      let bodyBytes = 0;
      response.on('data', (chunk: Buffer) => {
        bodyBytes += chunk.length;
        if (md5 !== undefined) md5.update(chunk);
        else if (options.bodyMode === 'text' && bodyBytes <= textBytesMax) textParts.push(chunk);
      });
      response.on('error', (error) => finish(new OperationError(networkKind(error), error.message, { cause: error })));
      response.on('aborted', () => finish(new OperationError('net_aborted', 'response aborted')));
      response.on('end', () => {
        if (!response.complete) {
          finish(new OperationError('truncated', 'response ended early'));
          return;
        }
        finish(undefined, {
          status: response.statusCode ?? 0,
          headers: response.headers,
          bodyBytes,
          ...(md5 !== undefined ? { md5Hex: md5.digest('hex') } : {}),
          ...(options.bodyMode === 'text' ? { text: Buffer.concat(textParts).toString('utf8') } : {}),
        });
      });
    });
    if (options.writeBody === undefined) {
      request.end();
    } else {
      options.writeBody(request).then(
        () => request.end(),
        (error: unknown) =>
          finish(new OperationError(networkKind(error), error instanceof Error ? error.message : String(error))),
      );
    }
  });
}

/** Rejects non-2xx answers with an `http_<status>` kind (and the start of the body, for the log). */
export function expectStatus(result: HttpResult, what: string, allowed: readonly number[]): void {
  if (!allowed.includes(result.status)) {
    const detail = result.text === undefined ? '' : `: ${result.text.slice(0, 200)}`;
    throw new OperationError(`http_${result.status}`, `${what}: HTTP ${result.status}${detail}`);
  }
}
