/**
 * Structured logging: one JSON line per event (pino), each request's lines carrying its
 * transaction id (`txId`), the same id on every server the request touches (X-Trans-Id).
 * `NEBULA_LOG_LEVEL=silent` silences a process (tests run silent).
 */
import { randomBytes } from 'node:crypto';
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

/** Log lines are written in batches of this many bytes, and at most this long after a line. */
const LOG_BATCH_BYTES = 8192;
const LOG_FLUSH_MS = 500;

/**
 * A pino destination that batches lines into few write(2) calls. A partial batch is flushed
 * LOG_FLUSH_MS after the line that started it; the timer exists only while lines wait, so an
 * idle process is never woken (a periodic flush would write nothing every LOG_FLUSH_MS). Lines
 * still waiting when the process exits (exit, uncaught error) are written by pino's exit hook
 * on the SonicBoom itself.
 */
export class BatchedLogDestination implements DestinationStream {
  /** Where the batches go; exposed so that tests can count its writes. */
  readonly sink: ReturnType<typeof pino.destination>;
  private flushTimer: NodeJS.Timeout | undefined;

  constructor(fd: number, batchBytes = LOG_BATCH_BYTES) {
    this.sink = pino.destination({ dest: fd, sync: false, minLength: batchBytes });
  }

  write(line: string): void {
    this.sink.write(line);
    this.flushTimer ??= setTimeout(() => this.flushWaitingLines(), LOG_FLUSH_MS).unref();
  }

  /** pino's `logger.flush(cb)` lands here. */
  flush(callback?: (error?: Error) => void): void {
    this.flushWaitingLines(callback);
  }

  private flushWaitingLines(callback?: (error?: Error) => void): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.sink.flush(callback);
  }
}

export function createLogger(service: string, level?: string): Logger {
  // A server logs one line per request: one write(2) each would cost more than the request's own
  // work, so the lines are batched.
  return pino(
    {
      name: service,
      level: level ?? process.env.NEBULA_LOG_LEVEL ?? 'info',
      base: { service, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    new BatchedLogDestination(1),
  );
}

/** Swift's transaction id form: `tx` + 21 hex chars + `-` + hex epoch seconds (+ optional suffix). */
export function newTransactionId(suffix = ''): string {
  const random = randomBytes(11).toString('hex').slice(0, 21);
  const seconds = Math.floor(Date.now() / 1000)
    .toString(16)
    .padStart(10, '0');
  return `tx${random}-${seconds}${suffix}`;
}
