/**
 * A request body streamed into a disk file writer, for the object server's PUT and the REPLICATE
 * verb's file transfer alike. The chunks come from 'data' events as the socket delivered them (an
 * async iterator would concatenate what is buffered into a new Buffer: one more copy of every
 * byte); the request is paused while the writer asks to wait (backpressure). The length is checked
 * on every chunk. Answers as Swift's object server does: 408 when the sender stalls past
 * client_timeout, 499 when it goes away or sends less than its Content-Length, and the caller's
 * error when the body passes its limit.
 */
import type { IncomingMessage } from 'node:http';
import { finished } from 'node:stream';
import { HttpError } from '../common/errors.js';

/** What receiveBody needs of a writer (diskfile's DiskFileWriter). */
export interface BodySink {
  /** A promise only when the caller must wait before the next write. */
  write(chunk: Buffer): Promise<void> | undefined;
  readonly bytesWritten: number;
}

export interface ReceiveBodyOptions {
  /** The body's announced length; undefined for a chunked body. */
  contentLength: number | undefined;
  /** No more bytes than this are taken (the Content-Length, or the largest object allowed). */
  limitBytes: number;
  clientTimeoutMs: number;
  /** The error for a body longer than `limitBytes`. */
  tooLong: () => HttpError;
}

export async function receiveBody(
  request: IncomingMessage,
  sink: BodySink,
  options: ReceiveBodyOptions,
): Promise<void> {
  let timedOut = false;
  const socket = request.socket;
  const onTimeout = (): void => {
    timedOut = true;
    request.destroy(new Error('client read timeout'));
  };
  socket.setTimeout(options.clientTimeoutMs, onTimeout);
  let onData: ((chunk: Buffer) => void) | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      let failed = false;
      const fail = (error: Error): void => {
        if (failed) return;
        failed = true;
        // As leaving a for-await loop early does: the rest of the body is not wanted.
        request.destroy();
        reject(error);
      };
      onData = (chunk: Buffer): void => {
        if (failed) return;
        const wait = sink.write(chunk);
        if (sink.bytesWritten > options.limitBytes) {
          wait?.catch(() => undefined);
          fail(options.tooLong());
          return;
        }
        if (wait === undefined) return;
        request.pause();
        wait.then(() => request.resume(), fail);
      };
      request.on('data', onData);
      // Bounded by the body: 'end', an error or the close of a body cut short settles it.
      finished(request, { writable: false }, (error) => {
        if (error !== undefined && error !== null) fail(error);
        else if (!failed) resolve();
      });
    });
  } catch (error) {
    if (error instanceof HttpError) throw error;
    if (timedOut) throw new HttpError(408, 'Request Timeout', { code: 'ClientTimeout', cause: error });
    throw new HttpError(499, 'Client Disconnect', { code: 'ClientDisconnect', cause: error });
  } finally {
    if (onData !== undefined) request.removeListener('data', onData);
    socket.setTimeout(0);
    socket.removeListener('timeout', onTimeout);
  }
  if (!request.complete || (options.contentLength !== undefined && sink.bytesWritten !== options.contentLength)) {
    throw new HttpError(499, 'Client Disconnect', { code: 'ClientDisconnect' });
  }
}
