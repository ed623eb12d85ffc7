/**
 * A streamed bzip2 decompressor for `?extract-archive=tar.bz2`: the request body is piped
 * through Debian's `bzip2 -dc` (node has no bzip2, and a child process keeps the CPU-heavy
 * decoding off the proxy's event loop), and the archive is read from its stdout. Nothing is
 * written to disk and at most the pipes' buffers are held in memory.
 *
 * `outcome()` tells, once the child has exited, whether the compressed data was bad. A stream
 * that merely ends early is not an error here: Python's bz2 decompressor (which Swift's bulk
 * middleware reads through tarfile) stops quietly there too, and the tar reader decides.
 */
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';

/** What bzip2 said about the compressed data, the way Swift's tarfile words it. */
export type Bzip2Outcome = { ok: true } | { ok: false; message: string };

export interface Bzip2Decompressor {
  /** The decompressed bytes. */
  output: Readable;
  /** Resolves when the child has exited (read `output` to its end first, or call `stop`). */
  outcome(): Promise<Bzip2Outcome>;
  /** Ends the child if it still runs (the reader gave up early, or the client went away). */
  stop(): void;
}

/** Enough of bzip2's stderr to classify the failure; the rest is its advice to humans. */
const STDERR_BYTES_MAX = 4096;

export function decompressBzip2(source: Readable, command = 'bzip2'): Bzip2Decompressor {
  const child = spawn(command, ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    if (stderr.length < STDERR_BYTES_MAX) stderr += chunk.toString('utf8');
  });
  // bzip2 stops reading at the first bad block: the rest of the body goes nowhere (EPIPE).
  child.stdin.on('error', () => undefined);
  source.on('error', () => child.kill());
  source.pipe(child.stdin);

  const exited = new Promise<Bzip2Outcome>((resolve) => {
    child.on('error', (error) => resolve({ ok: false, message: `bzip2 could not run: ${error.message}` }));
    child.on('close', (code, signal) => {
      if (code === 0) resolve({ ok: true });
      // "Compressed file ends unexpectedly" (also for an empty body): a short stream, not bad data.
      else if (/ends unexpectedly/.test(stderr)) resolve({ ok: true });
      else if (signal !== null) resolve({ ok: false, message: `bzip2 ended by ${signal}` });
      else resolve({ ok: false, message: 'invalid compressed data' });
    });
  });

  return {
    output: child.stdout,
    outcome: () => exited,
    stop: () => {
      source.unpipe(child.stdin);
      if (child.exitCode === null && child.signalCode === null) child.kill();
    },
  };
}
