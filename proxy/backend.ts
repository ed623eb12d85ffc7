/**
 * HTTP to the storage nodes: one keep-alive http.Agent per backend (ip:port), and every call
 * bounded by Swift's timeouts: `conn_timeout` to get a connected socket, `node_timeout` for the
 * response headers once the request is sent (and for each 100 Continue), and an idle timeout the
 * caller chooses while it reads the body. Errors are BackendError subclasses with a stable code;
 * callers treat them as "this node failed" and move on to the next replica.
 */
import {
  Agent,
  request as httpRequest,
  type ClientRequest,
  type IncomingMessage,
  type OutgoingHttpHeaders,
} from 'node:http';

export interface BackendNode {
  ip: string;
  port: number;
  device: string;
}

export class BackendError extends Error {
  readonly code: string = 'BackendError';
  constructor(
    message: string,
    readonly node: BackendNode,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export class BackendConnectTimeoutError extends BackendError {
  override readonly code = 'BackendConnectTimeout';
}

export class BackendTimeoutError extends BackendError {
  override readonly code = 'BackendTimeout';
}

export class BackendConnectionError extends BackendError {
  override readonly code = 'BackendConnectionError';
}

export interface BackendRequestOptions {
  node: BackendNode;
  method: string;
  /** The path after the device, already %-encoded: `/<partition>/<account>[/<container>[/<object>]]`. */
  path: string;
  /** The query string without `?`, or empty. */
  query?: string;
  headers: OutgoingHttpHeaders;
  connTimeoutMs: number;
  /** Time allowed for the response headers after the request (or its 100 Continue) is sent. */
  nodeTimeoutMs: number;
  body?: Buffer;
}

/** A request whose body the caller streams after the backend's `100 Continue`. */
export interface OpenUpload {
  request: ClientRequest;
  /** Settles with the final response, whenever the backend sends one (even before Continue). */
  response: Promise<IncomingMessage>;
}

export function nodeLabel(node: BackendNode): string {
  return `${node.ip}:${node.port}/${node.device}`;
}

export function backendUrlPath(node: BackendNode, path: string, query?: string): string {
  const device = encodeURIComponent(node.device);
  return `/${device}${path}${query !== undefined && query !== '' ? `?${query}` : ''}`;
}

const MAX_SOCKETS_PER_BACKEND = 256;
/**
 * Bytes a backend socket buffers each way before it pushes back. Node's 16 KiB default is less
 * than one 64 KiB network chunk, which turned every chunk of a large PUT into a stop-and-wait on
 * the slowest of three replicas; 1 MiB lets the replicas drift apart by a few chunks instead.
 */
export const BACKEND_SOCKET_BUFFER_BYTES = 1024 * 1024;

interface Deadline {
  clear(): void;
}

/**
 * A timeout that only fires once the events already waiting have been handled. Timers run before
 * I/O in each turn of the event loop, so after a stall longer than the timeout (a busy host) a
 * plain timer would fire although the connection or the answer it guards is already there, and
 * fail a healthy replica. Here the timer hands over to setImmediate, which runs after the turn's
 * I/O: `onTimeout` runs only if `clear()` was not called by then.
 */
function deadline(timeoutMs: number, onTimeout: () => void): Deadline {
  let immediate: NodeJS.Immediate | undefined;
  const timer = setTimeout(() => {
    immediate = setImmediate(onTimeout);
  }, timeoutMs);
  return {
    clear() {
      clearTimeout(timer);
      if (immediate !== undefined) clearImmediate(immediate);
    },
  };
}

export class BackendClient {
  private readonly agents = new Map<string, Agent>();

  agentFor(node: BackendNode): Agent {
    const key = `${node.ip}:${node.port}`;
    let agent = this.agents.get(key);
    if (agent === undefined) {
      agent = new Agent({
        keepAlive: true,
        maxSockets: MAX_SOCKETS_PER_BACKEND,
        maxFreeSockets: 32,
        scheduling: 'lifo',
        // Passed on to each net.Socket the agent creates.
        highWaterMark: BACKEND_SOCKET_BUFFER_BYTES,
      } as ConstructorParameters<typeof Agent>[0]);
      this.agents.set(key, agent);
    }
    return agent;
  }

  /** Sends a request with no body (or a small buffered one); resolves once the headers arrive. */
  async request(options: BackendRequestOptions): Promise<IncomingMessage> {
    try {
      return await this.requestOnce(options);
    } catch (error) {
      // A keep-alive socket the server closed between requests fails at once: retry once on a new one.
      if (error instanceof BackendConnectionError && (error as BackendConnectionError & { reused?: boolean }).reused) {
        return this.requestOnce(options);
      }
      throw error;
    }
  }

  private requestOnce(options: BackendRequestOptions): Promise<IncomingMessage> {
    return new Promise<IncomingMessage>((resolve, reject) => {
      const { request, response } = this.start(options, false);
      response.then(resolve, reject);
      request.end(options.body);
    });
  }

  /**
   * Starts an upload with `Expect: 100-continue`. Resolves with the open request once the backend
   * said Continue; or rejects with a BackendError (no connection, timeout, or a final status sent
   * instead of Continue, carried as `status`).
   */
  openUpload(options: BackendRequestOptions): Promise<OpenUpload> {
    return new Promise<OpenUpload>((resolve, reject) => {
      const { request, response, armNodeTimeout } = this.start(
        { ...options, headers: { ...options.headers, Expect: '100-continue' } },
        true,
      );
      let settled = false;
      request.once('continue', () => {
        if (settled) return;
        settled = true;
        armNodeTimeout(false);
        resolve({ request, response });
      });
      response.then(
        (res) => {
          if (settled) return;
          settled = true;
          res.resume();
          reject(
            new BackendUploadRefusedError(`${nodeLabel(options.node)} answered ${res.statusCode}`, options.node, res),
          );
        },
        (error: unknown) => {
          if (settled) return;
          settled = true;
          reject(error instanceof Error ? error : new Error(String(error)));
        },
      );
      request.flushHeaders();
      armNodeTimeout(true);
    });
  }

  private start(
    options: BackendRequestOptions,
    upload: boolean,
  ): { request: ClientRequest; response: Promise<IncomingMessage>; armNodeTimeout: (on: boolean) => void } {
    const { node } = options;
    const headers: OutgoingHttpHeaders = { ...options.headers };
    if (!upload) {
      // Without a length Node would send PUT/POST chunked; backends expect an explicit length.
      for (const name of Object.keys(headers)) if (name.toLowerCase() === 'content-length') delete headers[name];
      headers['Content-Length'] = options.body?.length ?? 0;
    }
    const request = httpRequest({
      host: node.ip,
      port: node.port,
      method: options.method,
      path: backendUrlPath(node, options.path, options.query),
      headers,
      agent: this.agentFor(node),
    });
    let connectTimer: Deadline | undefined;
    let nodeTimer: Deadline | undefined;
    let gotResponse = false;
    const fail = (error: BackendError): void => {
      request.destroy(error);
    };
    const armNodeTimeout = (on: boolean): void => {
      nodeTimer?.clear();
      nodeTimer = undefined;
      if (on && !gotResponse) {
        nodeTimer = deadline(options.nodeTimeoutMs, () => {
          fail(new BackendTimeoutError(`${nodeLabel(node)}: no response in ${options.nodeTimeoutMs} ms`, node));
        });
      }
    };
    request.once('socket', (socket) => {
      if (socket.connecting) {
        connectTimer = deadline(options.connTimeoutMs, () => {
          if (!socket.connecting) return;
          fail(
            new BackendConnectTimeoutError(`${nodeLabel(node)}: no connection in ${options.connTimeoutMs} ms`, node),
          );
        });
        socket.once('connect', () => connectTimer?.clear());
      }
    });
    request.once('finish', () => armNodeTimeout(true));
    const response = new Promise<IncomingMessage>((resolve, reject) => {
      request.once('response', (res) => {
        gotResponse = true;
        connectTimer?.clear();
        armNodeTimeout(false);
        resolve(res);
      });
      request.once('error', (error) => {
        connectTimer?.clear();
        armNodeTimeout(false);
        if (error instanceof BackendError) {
          reject(error);
          return;
        }
        const wrapped = new BackendConnectionError(`${nodeLabel(node)}: ${error.message}`, node, { cause: error });
        (wrapped as BackendConnectionError & { reused?: boolean }).reused = request.reusedSocket && !gotResponse;
        reject(wrapped);
      });
    });
    // The caller may never await `response` (e.g. an upload abandoned before Continue).
    response.catch(() => undefined);
    return { request, response, armNodeTimeout };
  }

  /** Closes idle keep-alive sockets (on shutdown). */
  close(): void {
    for (const agent of this.agents.values()) agent.destroy();
    this.agents.clear();
  }
}

/** A backend that answered an upload with a final status instead of 100 Continue. */
export class BackendUploadRefusedError extends BackendError {
  override readonly code = 'BackendUploadRefused';
  readonly status: number;
  readonly headers: IncomingMessage['headers'];
  constructor(message: string, node: BackendNode, response: IncomingMessage) {
    super(message, node);
    this.status = response.statusCode ?? 500;
    this.headers = response.headers;
  }
}

/** Reads a (small) backend response body fully, bounded in size and in idle time. */
export function readBody(res: IncomingMessage, idleTimeoutMs: number, maxBytes = 16 * 1024 * 1024): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.setTimeout(idleTimeoutMs, () => res.destroy(new Error(`backend body idle for ${idleTimeoutMs} ms`)));
    res.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        res.destroy(new Error(`backend body larger than ${maxBytes} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    res.once('end', () => resolve(Buffer.concat(chunks)));
    res.once('error', reject);
    res.once('close', () => {
      if (!res.complete) reject(new Error('backend closed the connection mid-body'));
    });
  });
}
