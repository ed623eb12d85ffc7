/**
 * Structured logging: one JSON line per event (pino), each request's lines carrying its
 * transaction id (`txId`), the same id on every server the request touches (X-Trans-Id).
 * `NEBULA_LOG_LEVEL=silent` silences a process (tests run silent).
 */
import { randomBytes } from 'node:crypto';
import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

export function createLogger(service: string, level?: string): Logger {
  return pino({
    name: service,
    level: level ?? process.env.NEBULA_LOG_LEVEL ?? 'info',
    base: { service, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}

/** Swift's transaction id form: `tx` + 21 hex chars + `-` + hex epoch seconds (+ optional suffix). */
export function newTransactionId(suffix = ''): string {
  const random = randomBytes(11).toString('hex').slice(0, 21);
  const seconds = Math.floor(Date.now() / 1000).toString(16).padStart(10, '0');
  return `tx${random}-${seconds}${suffix}`;
}
