/**
 * Standard output and error that may be pipes whose reader goes away (`npm start | head -3`, a
 * log shipper restarting). Node reports the broken pipe as an 'error' event on the stream, and
 * with no listener that event is an uncaught exception: a server that printed one line after its
 * reader left would crash, and a parent that crashes leaves its children running. Here a broken
 * pipe only ends that stream's output; the process goes on, and stops cleanly when told to.
 */

/** Error codes of a stream whose reader has gone: later writes are dropped. */
const GONE_READER_CODES = new Set(['EPIPE', 'ERR_STREAM_DESTROYED']);

export function tolerateClosedStdio(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== undefined && GONE_READER_CODES.has(error.code)) return;
      throw error;
    });
  }
}
