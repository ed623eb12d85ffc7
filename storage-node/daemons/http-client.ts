/**
 * The daemons' one outbound HTTP call: a request to a peer storage node with a connect timeout,
 * a response timeout (covering the whole exchange), and a bound on the response body it buffers.
 * It never rejects: transport failures come back as status 0 with the error, so a pass can count
 * them and move on to the next peer.
 */
import { request } from 'node:http';

export interface PeerResponse {
  /** 0 when no response arrived (refused, timed out, cut). */
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  error?: Error;
}

export interface PeerRequest {
  ip: string;
  port: number;
  method: string;
  /** Already percent-encoded path and query. */
  path: string;
  headers?: Record<string, string>;
  body?: Buffer;
  connTimeoutMs: number;
  nodeTimeoutMs: number;
  /** Larger bodies are cut off and reported as an error (default 64 MiB). */
  responseBytesMax?: number;
}

const RESPONSE_BYTES_MAX = 64 * 1024 * 1024;

/** Percent-encodes each segment of a storage path, keeping the slashes. */
export function encodePath(...segments: readonly (string | number)[]): string {
  return segments.map((segment) => `/${encodeURIComponent(String(segment)).replace(/%2F/gi, '/')}`).join('');
}

export function callPeer(options: PeerRequest): Promise<PeerResponse> {
  const limit = options.responseBytesMax ?? RESPONSE_BYTES_MAX;
  return new Promise<PeerResponse>((resolve) => {
    let settled = false;
    const finish = (response: PeerResponse): void => {
      if (settled) return;
      settled = true;
      clearTimeout(connectTimer);
      clearTimeout(responseTimer);
      resolve(response);
    };
    const fail = (error: Error): void => finish({ status: 0, headers: {}, body: Buffer.alloc(0), error });
    const body = options.body ?? Buffer.alloc(0);
    const outgoing = request({
      host: options.ip,
      port: options.port,
      method: options.method,
      path: options.path,
      headers: { ...options.headers, 'Content-Length': String(body.length) },
      agent: false,
    });
    const connectTimer = setTimeout(() => outgoing.destroy(new Error('connect timeout')), options.connTimeoutMs);
    const responseTimer = setTimeout(() => outgoing.destroy(new Error('response timeout')), options.nodeTimeoutMs);
    outgoing.once('socket', (socket) => socket.once('connect', () => clearTimeout(connectTimer)));
    outgoing.once('error', fail);
    outgoing.once('response', (response) => {
      const chunks: Buffer[] = [];
      let size = 0;
      response.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > limit) {
          response.destroy(new Error(`response larger than ${limit} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      response.once('error', fail);
      response.once('end', () =>
        finish({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) }),
      );
    });
    outgoing.end(body);
  });
}

export function isSuccess(response: PeerResponse): boolean {
  return response.status >= 200 && response.status < 300;
}
