/**
 * Structured logging: one JSON line per event (pino), each request's lines carrying its
 * transaction id (`txId`), the same id on every server the request touches (X-Trans-Id).
 * `NEBULA_LOG_LEVEL=silent` silences a process (tests run silent).
 */
import { randomBytes } from 'node:crypto';
import { write, writeSync } from 'node:fs';
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

/** Log lines are written in batches of this many bytes, and at most this long after a line. */
const LOG_BATCH_BYTES = 8192;
const LOG_FLUSH_MS = 500;
/** A full pipe (EAGAIN) is tried again after this long, at most this many times for one batch. */
const FULL_PIPE_RETRY_MS = 10;
const FULL_PIPE_RETRIES_MAX = 100;

/** Destinations with lines still waiting, written out synchronously when the process exits. */
const liveDestinations = new Set<BatchedLogDestination>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' runs for process.exit(), the end of the event loop and an uncaught error alike.
  process.once('exit', () => {
    for (const destination of liveDestinations) destination.flushSync();
  });
}

function isFullPipe(error: NodeJS.ErrnoException): boolean {
  return error.code === 'EAGAIN' || error.code === 'EBUSY';
}

/**
 * A pino destination that batches lines into few write(2) calls on one file descriptor. A
 * partial batch is written LOG_FLUSH_MS after the line that started it; the timer exists only
 * while lines wait, so an idle process is never woken. Lines still waiting when the process
 * exits are written synchronously by an exit hook.
 *
 * When the descriptor breaks (EPIPE: the reader of a pipe went away, as in `npm start | head`),
 * logging stops: the waiting lines are dropped, later lines too, and exit is not delayed. (pino's
 * own SonicBoom destination retries a failed write forever in its exit flush, so a process whose
 * log reader had gone spun at exit instead of ending.) A full pipe (EAGAIN) is retried, boundedly.
 */
export class BatchedLogDestination implements DestinationStream {
  /** write(2) calls made so far; tests count them. */
  writes = 0;
  /** Set once the descriptor failed for good: nothing more is written. */
  broken: NodeJS.ErrnoException | undefined;
  private waiting: string[] = [];
  private waitingBytes = 0;
  /** The batch being written by an asynchronous write(2), and its bytes not yet written. */
  private inFlight: Buffer | undefined;
  private fullPipeRetries = 0;
  /** Set while a batch waits to be tried again after EAGAIN (no write(2) of it is running). */
  private retryTimer: NodeJS.Timeout | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private flushCallbacks: ((error?: Error) => void)[] = [];

  constructor(
    private readonly fd: number,
    private readonly batchBytes = LOG_BATCH_BYTES,
  ) {
    installExitHook();
  }

  write(line: string): void {
    if (this.broken !== undefined) return;
    this.waiting.push(line);
    this.waitingBytes += line.length;
    liveDestinations.add(this);
    if (this.waitingBytes >= this.batchBytes) this.startWrite();
    else this.flushTimer ??= setTimeout(() => this.startWrite(), LOG_FLUSH_MS).unref();
  }

  /** pino's `logger.flush(cb)` lands here: `callback` runs once every waiting line is written. */
  flush(callback?: (error?: Error) => void): void {
    if (callback !== undefined) this.flushCallbacks.push(callback);
    this.startWrite();
  }

  /** Writes what waits, synchronously (at exit); gives up on a broken descriptor or a pipe that stays full. */
  flushSync(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    // An asynchronous write still running owns its bytes (writing them again could double them);
    // one only waiting to be retried does not.
    let pending = this.takeWaiting();
    if (this.retryTimer !== undefined && this.inFlight !== undefined) {
      clearTimeout(this.retryTimer);
      pending = Buffer.concat([this.inFlight, pending]);
      this.inFlight = undefined;
    }
    for (let tries = 0; pending.length > 0 && this.broken === undefined && tries <= FULL_PIPE_RETRIES_MAX;) {
      try {
        this.writes += 1;
        pending = pending.subarray(writeSync(this.fd, pending));
      } catch (error) {
        const errno = error as NodeJS.ErrnoException;
        if (!isFullPipe(errno)) this.breakDown(errno);
        tries += 1;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, FULL_PIPE_RETRY_MS);
      }
    }
    liveDestinations.delete(this);
  }

  private takeWaiting(): Buffer {
    const batch = Buffer.from(this.waiting.join(''));
    this.waiting = [];
    this.waitingBytes = 0;
    return batch;
  }

  private startWrite(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.inFlight !== undefined) return; // the running write continues with what waits
    if (this.broken !== undefined || this.waiting.length === 0) {
      this.settleFlushes();
      return;
    }
    this.writeBatch(this.takeWaiting());
  }

  private writeBatch(batch: Buffer): void {
    this.inFlight = batch;
    this.writes += 1;
    write(this.fd, batch, 0, batch.length, null, (error, written) => {
      this.inFlight = undefined;
      if (error !== null) {
        if (isFullPipe(error) && this.fullPipeRetries < FULL_PIPE_RETRIES_MAX) {
          this.fullPipeRetries += 1;
          this.inFlight = batch;
          this.retryTimer = setTimeout(() => {
            this.retryTimer = undefined;
            this.writeBatch(batch);
          }, FULL_PIPE_RETRY_MS).unref();
          return;
        }
        this.breakDown(error);
        this.settleFlushes();
        return;
      }
      this.fullPipeRetries = 0;
      if (written < batch.length) {
        this.writeBatch(batch.subarray(written));
        return;
      }
      if (this.waiting.length === 0) liveDestinations.delete(this);
      // Lines that came in meanwhile: at once if a flush waits or a batch is full, else on the timer.
      if (this.flushCallbacks.length > 0 || this.waitingBytes >= this.batchBytes) this.startWrite();
      else if (this.waiting.length > 0) this.flushTimer ??= setTimeout(() => this.startWrite(), LOG_FLUSH_MS).unref();
    });
  }

  private breakDown(error: NodeJS.ErrnoException): void {
    this.broken = error;
    this.waiting = [];
    this.waitingBytes = 0;
    liveDestinations.delete(this);
  }

  private settleFlushes(): void {
    const callbacks = this.flushCallbacks;
    this.flushCallbacks = [];
    for (const callback of callbacks) callback(this.broken);
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
