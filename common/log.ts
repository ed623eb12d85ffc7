/**
 * Structured logging: one JSON line per event (pino), each request's lines carrying its
 * transaction id (`txId`), the same id on every server the request touches (X-Trans-Id).
 * `NEBULA_LOG_LEVEL=silent` silences a process (tests run silent).
 */
import { randomBytes } from 'node:crypto';
import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

/** Log lines are written in batches of this many bytes, and at least this often. */
const LOG_BATCH_BYTES = 8192;
const LOG_FLUSH_MS = 500;

export function createLogger(service: string, level?: string): Logger {
  // A server logs one line per request: one write(2) each would cost more than the request's own
  // work. The lines are batched instead; pino flushes what is left when the process exits.
  const destination = pino.destination({ dest: 1, sync: false, minLength: LOG_BATCH_BYTES });
  setInterval(() => destination.flush(), LOG_FLUSH_MS).unref();
  return pino(
    {
      name: service,
      level: level ?? process.env.NEBULA_LOG_LEVEL ?? 'info',
      base: { service, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
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
