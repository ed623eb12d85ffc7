/**
 * Parsing and formatting of the quantities a benchmark is described in: byte sizes (`4KiB`,
 * `1MB`, `64MiB`, `1GiB`), size distributions (`4KiB:70,1MiB:25,64MiB:5`), op mixes
 * (`GET:70,PUT:30`) and durations (`30s`, `2m`). Pure functions; bad input throws
 * `BenchUsageError` so the CLI can print it and exit 2.
 */

export class BenchUsageError extends Error {
  readonly code = 'BenchUsageError';
}

const SIZE_UNITS: Readonly<Record<string, number>> = Object.freeze({
  '': 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
});

/** Bytes in a size such as `4096`, `4KiB`, `1.5MiB`, `10MB` (KB/MB/GB decimal, KiB/MiB/GiB binary). */
export function parseSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = SIZE_UNITS[(match?.[2] ?? '').toLowerCase()];
  if (match === null || unit === undefined) throw new BenchUsageError(`bad size ${JSON.stringify(text)}`);
  const bytes = Math.round(Number(match[1]) * unit);
  if (!Number.isSafeInteger(bytes) || bytes < 0) throw new BenchUsageError(`bad size ${JSON.stringify(text)}`);
  return bytes;
}

/** The shortest exact binary-unit name of a byte count (4096 -> `4KiB`), else decimal bytes. */
export function formatSize(bytes: number): string {
  const units: readonly [string, number][] = [
    ['GiB', 1024 ** 3],
    ['MiB', 1024 ** 2],
    ['KiB', 1024],
  ];
  for (const [name, factor] of units) {
    if (bytes >= factor && bytes % factor === 0) return `${bytes / factor}${name}`;
  }
  return `${bytes}B`;
}

export interface Weighted<T> {
  readonly value: T;
  readonly weight: number;
}

/** A discrete distribution over values, sampled by a uniform number in [0, 1). */
export class Distribution<T> {
  readonly entries: readonly Weighted<T>[];
  private readonly cumulative: readonly number[];

  constructor(entries: readonly Weighted<T>[]) {
    if (entries.length === 0) throw new BenchUsageError('empty distribution');
    let total = 0;
    for (const entry of entries) {
      if (!(entry.weight > 0) || !Number.isFinite(entry.weight)) {
        throw new BenchUsageError(`bad weight ${entry.weight} in distribution`);
      }
      total += entry.weight;
    }
    let running = 0;
    this.cumulative = entries.map((entry) => (running += entry.weight / total));
    this.entries = entries.map((entry) => ({ value: entry.value, weight: entry.weight / total }));
  }

  /** The value whose cumulative share first exceeds `uniform` (in [0, 1)). */
  pick(uniform: number): T {
    for (let index = 0; index < this.cumulative.length; index += 1) {
      if (uniform < (this.cumulative[index] ?? 1)) return (this.entries[index] as Weighted<T>).value;
    }
    return (this.entries[this.entries.length - 1] as Weighted<T>).value;
  }

  /** Expected value, for numeric distributions (mean object size). */
  mean(this: Distribution<number>): number {
    return this.entries.reduce((sum, entry) => sum + entry.value * entry.weight, 0);
  }
}

function parseWeighted<T>(text: string, parseValue: (value: string) => T, what: string): Distribution<T> {
  const parts = text
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '');
  if (parts.length === 0) throw new BenchUsageError(`empty ${what} ${JSON.stringify(text)}`);
  const entries = parts.map((part) => {
    const colon = part.lastIndexOf(':');
    // A single value with no weight stands for the whole distribution (`--size 4KiB`).
    if (colon < 0) {
      if (parts.length > 1) throw new BenchUsageError(`${what} ${JSON.stringify(text)}: every part needs :weight`);
      return { value: parseValue(part), weight: 1 };
    }
    const weight = Number(part.slice(colon + 1));
    if (!(weight > 0)) throw new BenchUsageError(`bad weight in ${what} ${JSON.stringify(part)}`);
    return { value: parseValue(part.slice(0, colon)), weight };
  });
  return new Distribution(entries);
}

/** `4KiB` (fixed) or `4KiB:70,1MiB:25,64MiB:5` (weights, any positive numbers). */
export function parseSizeDistribution(text: string): Distribution<number> {
  return parseWeighted(text, parseSize, 'size distribution');
}

export const OPERATIONS = ['PUT', 'GET', 'HEAD', 'DELETE', 'LIST'] as const;
export type Operation = (typeof OPERATIONS)[number];

export function parseOperation(text: string): Operation {
  const upper = text.trim().toUpperCase();
  const found = OPERATIONS.find((op) => op === upper);
  if (found === undefined) throw new BenchUsageError(`unknown operation ${JSON.stringify(text)}`);
  return found;
}

/** `GET:70,PUT:20,DELETE:10` (LIST is not part of a mix: it needs its own prepared container). */
export function parseMix(text: string): Distribution<Operation> {
  const mix = parseWeighted(text, parseOperation, 'mix');
  if (mix.entries.some((entry) => entry.value === 'LIST')) throw new BenchUsageError('LIST cannot be in a mix');
  return mix;
}

/** Seconds in `30`, `30s`, `1.5m`, `500ms`, `1h`. */
export function parseDurationS(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(text);
  if (match === null) throw new BenchUsageError(`bad duration ${JSON.stringify(text)}`);
  const factor = { ms: 0.001, s: 1, m: 60, h: 3600 }[(match[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  return Number(match[1]) * factor;
}

/** A positive integer option (`--concurrency 16`). */
export function parsePositiveInt(text: string, what: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value <= 0) throw new BenchUsageError(`${what} must be a positive integer`);
  return value;
}

/** Fixed-width human figures for the progress line and tables. */
export function formatNumber(value: number, digits = 1): string {
  if (!Number.isFinite(value)) return '-';
  if (Math.abs(value) >= 100) return Math.round(value).toLocaleString('en-US');
  return value.toFixed(digits);
}
