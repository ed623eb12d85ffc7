/**
 * A lean load generator's HTTP/1.1 connection: one kept-alive TCP socket, one request at a time,
 * the request written as one buffer (head and body), the response parsed just enough to find its
 * end (Content-Length or chunked) and its status, the body dropped.
 *
 * Why not node:http: on a shared 2-core host a benchmark's client gets a fair share of the CPU
 * like any other task, and node:http's ClientRequest, agent and IncomingMessage cost about as
 * much CPU per small request as the storage node serving it (measured with the storage node
 * bench: ~0.1-0.2 ms per 4 KiB GET, next to the server's 0.2-0.3 ms). The faster server was then
 * held back by its client. This costs a write, a read or two and a small parse per request.
 */
import { connect, type Socket } from 'node:net';

export class RawHttpError extends Error {
  readonly code = 'RawHttpError';
}

/** Bound on a response head (status line and headers). */
const HEAD_BYTES_MAX = 64 * 1024;
const CRLF_CRLF = Buffer.from('\r\n\r\n');

interface Waiting {
  resolve: (status: number) => void;
  reject: (error: Error) => void;
}

export class RawHttpConnection {
  private readonly socket: Socket;
  private readonly ready: Promise<void>;
  private buffered: Buffer = Buffer.alloc(0);
  private waiting: Waiting | undefined;
  private status = 0;
  /** Body bytes still to skip (Content-Length), or -1 while reading the head, or -2 for chunked. */
  private bodyLeft = -1;
  private closedError: Error | undefined;

  constructor(host: string, port: number, timeoutMs: number) {
    this.socket = connect({ host, port, noDelay: true });
    this.ready = new Promise((resolve, reject) => {
      this.socket.once('connect', resolve);
      this.socket.once('error', reject);
    });
    this.socket.setTimeout(timeoutMs, () => this.socket.destroy(new RawHttpError('request timeout')));
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', (error) => this.fail(error));
    this.socket.on('close', () => this.fail(new RawHttpError('connection closed')));
  }

  /** Sends one request (head lines without the final blank line, and an optional body); resolves with the status. */
  async request(head: string, body?: Buffer): Promise<number> {
    await this.ready;
    if (this.closedError !== undefined) throw this.closedError;
    if (this.waiting !== undefined) throw new RawHttpError('one request at a time');
    const headBuffer = Buffer.from(`${head}\r\n\r\n`, 'latin1');
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.bodyLeft = -1;
      this.socket.write(body === undefined ? headBuffer : Buffer.concat([headBuffer, body]));
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private fail(error: Error): void {
    this.closedError ??= error;
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.reject(error);
  }

  private onData(chunk: Buffer): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    // Bounded: each pass consumes bytes or returns to wait for more.
    for (;;) {
      if (this.waiting === undefined) {
        if (this.buffered.length > 0) this.socket.destroy(new RawHttpError('bytes after the response'));
        return;
      }
      if (this.bodyLeft === -1 && !this.parseHead()) return;
      if (this.bodyLeft === -2 && !this.skipChunks()) return;
      if (this.bodyLeft > 0) {
        const taken = Math.min(this.bodyLeft, this.buffered.length);
        this.bodyLeft -= taken;
        this.buffered = this.buffered.subarray(taken);
        if (this.bodyLeft > 0) return;
      }
      const waiting = this.waiting;
      this.waiting = undefined;
      waiting.resolve(this.status);
    }
  }

  /** Reads the head once whole; false while more bytes are needed. */
  private parseHead(): boolean {
    const end = this.buffered.indexOf(CRLF_CRLF);
    if (end === -1) {
      if (this.buffered.length > HEAD_BYTES_MAX) this.socket.destroy(new RawHttpError('response head too large'));
      return false;
    }
    const head = this.buffered.toString('latin1', 0, end);
    this.buffered = this.buffered.subarray(end + 4);
    this.status = Number(head.slice(9, 12));
    const length = /\r\ncontent-length:[ \t]*(\d+)/i.exec(head);
    if (/\r\ntransfer-encoding:[^\r]*chunked/i.test(head)) this.bodyLeft = -2;
    else this.bodyLeft = length === null || this.status === 204 || this.status === 304 ? 0 : Number(length[1]);
    return true;
  }

  /** Skips a chunked body up to its last chunk and trailers; false while more bytes are needed. */
  private skipChunks(): boolean {
    // Bounded: each pass consumes one chunk or returns.
    for (;;) {
      const lineEnd = this.buffered.indexOf('\r\n');
      if (lineEnd === -1) return false;
      const size = Number.parseInt(this.buffered.toString('latin1', 0, lineEnd), 16);
      if (Number.isNaN(size)) {
        this.socket.destroy(new RawHttpError('bad chunk size'));
        return false;
      }
      if (size === 0) {
        const trailerEnd = this.buffered.indexOf(CRLF_CRLF, lineEnd);
        if (trailerEnd === -1) return false;
        this.buffered = this.buffered.subarray(trailerEnd + 4);
        this.bodyLeft = 0;
        return true;
      }
      if (this.buffered.length < lineEnd + 2 + size + 2) return false;
      this.buffered = this.buffered.subarray(lineEnd + 2 + size + 2);
    }
  }
}
