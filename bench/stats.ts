/**
 * Latency statistics. `LatencyHistogram` records microsecond latencies in log-linear buckets
 * (128 per power of two, so any percentile it reports is within 0.8% of the exact one) in
 * constant memory however long the run, and merges across rounds and endpoints' slices.
 * `percentile` is the exact nearest-rank percentile of a sorted array, the reference the
 * histogram is tested against. Pure code, no I/O.
 */

const SUB_BUCKETS = 128; // per power of two: relative error < 1/128
const SUB_BITS = 7;
// Buckets up to 2^40 µs (12.7 days): anything longer is clamped (a run never waits that long).
const MAX_EXPONENT = 40;
const BUCKET_COUNT = (MAX_EXPONENT - SUB_BITS + 2) * SUB_BUCKETS;

/** Index of the bucket holding `micros` (non-negative; fractions are truncated). */
export function bucketIndex(micros: number): number {
  const value = Math.max(0, Math.floor(micros));
  if (value < SUB_BUCKETS) return value;
  const exponent = Math.min(MAX_EXPONENT, Math.floor(Math.log2(value)));
  const shift = exponent - SUB_BITS;
  const mantissa = Math.min(SUB_BUCKETS * 2 - 1, Math.floor(value / 2 ** shift));
  return (shift + 1) * SUB_BUCKETS + (mantissa - SUB_BUCKETS);
}

/** The [low, high) range of values a bucket holds. */
export function bucketRange(index: number): [number, number] {
  if (index < SUB_BUCKETS) return [index, index + 1];
  const shift = Math.floor(index / SUB_BUCKETS) - 1;
  const mantissa = (index % SUB_BUCKETS) + SUB_BUCKETS;
  return [mantissa * 2 ** shift, (mantissa + 1) * 2 ** shift];
}

export class LatencyHistogram {
  private readonly counts = new Float64Array(BUCKET_COUNT);
  count = 0;
  sumMicros = 0;
  minMicros = Number.POSITIVE_INFINITY;
  maxMicros = 0;

  record(micros: number): void {
    const index = bucketIndex(micros);
    this.counts[index] = (this.counts[index] ?? 0) + 1;
    this.count += 1;
    this.sumMicros += micros;
    if (micros < this.minMicros) this.minMicros = micros;
    if (micros > this.maxMicros) this.maxMicros = micros;
  }

  merge(other: LatencyHistogram): void {
    for (let index = 0; index < BUCKET_COUNT; index += 1) {
      this.counts[index] = (this.counts[index] ?? 0) + (other.counts[index] ?? 0);
    }
    this.count += other.count;
    this.sumMicros += other.sumMicros;
    this.minMicros = Math.min(this.minMicros, other.minMicros);
    this.maxMicros = Math.max(this.maxMicros, other.maxMicros);
  }

  /**
   * The nearest-rank percentile (`p` in 0..100): the middle of the bucket holding the
   * ceil(p/100 * count)-th smallest value, clamped to the exact min and max seen.
   */
  percentile(p: number): number {
    if (this.count === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    if (rank >= this.count) return this.maxMicros; // the largest value is known exactly
    let seen = 0;
    for (let index = 0; index < BUCKET_COUNT; index += 1) {
      seen += this.counts[index] ?? 0;
      if (seen >= rank) {
        const [low, high] = bucketRange(index);
        const middle = index < SUB_BUCKETS ? low : (low + high) / 2;
        return Math.min(this.maxMicros, Math.max(this.minMicros, middle));
      }
    }
    return this.maxMicros;
  }

  get meanMicros(): number {
    return this.count === 0 ? Number.NaN : this.sumMicros / this.count;
  }
}

/** Exact nearest-rank percentile of an ascending array (`p` in 0..100); NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1] ?? Number.NaN;
}

export interface LatencySummary {
  readonly count: number;
  readonly meanMs: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

export function summarize(histogram: LatencyHistogram): LatencySummary {
  const ms = (micros: number): number => micros / 1000;
  return {
    count: histogram.count,
    meanMs: ms(histogram.meanMicros),
    p50Ms: ms(histogram.percentile(50)),
    p90Ms: ms(histogram.percentile(90)),
    p99Ms: ms(histogram.percentile(99)),
    maxMs: ms(histogram.count === 0 ? Number.NaN : histogram.maxMicros),
  };
}

/** One second of a phase slice, for the chart. */
export interface TimelinePoint {
  /** Seconds since the run started (the left edge of this second). */
  readonly atS: number;
  readonly opsPerS: number;
  readonly mbPerS: number;
  readonly errors: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

/**
 * Per-second buckets of one phase slice (ops completing in each second after the slice began,
 * their latencies). The last bucket is usually partial: its rates are divided by its real width.
 */
export class Timeline {
  private readonly seconds = new Map<number, { ops: number; bytes: number; errors: number; latency: number[] }>();

  constructor(
    private readonly runStartMs: number,
    private readonly sliceStartMs: number,
  ) {}

  record(nowMs: number, latencyMicros: number, bytes: number, ok: boolean): void {
    const second = Math.max(0, Math.floor((nowMs - this.sliceStartMs) / 1000));
    let bucket = this.seconds.get(second);
    if (bucket === undefined) {
      bucket = { ops: 0, bytes: 0, errors: 0, latency: [] };
      this.seconds.set(second, bucket);
    }
    if (ok) {
      bucket.ops += 1;
      bucket.bytes += bytes;
      // A per-second sample of latencies is enough for the chart; cap it so memory stays bounded.
      if (bucket.latency.length < 20_000) bucket.latency.push(latencyMicros);
    } else {
      bucket.errors += 1;
    }
  }

  points(sliceEndMs: number): TimelinePoint[] {
    const sliceS = (sliceEndMs - this.sliceStartMs) / 1000;
    const offsetS = (this.sliceStartMs - this.runStartMs) / 1000;
    return [...this.seconds.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([second, bucket]) => {
        const sorted = bucket.latency.sort((a, b) => a - b);
        // A sliver of a second (< 0.2 s) would make a wild rate; count it as 0.2 s.
        const widthS = Math.max(0.2, Math.min(1, sliceS - second));
        return {
          atS: offsetS + second,
          opsPerS: bucket.ops / widthS,
          mbPerS: bucket.bytes / 1e6 / widthS,
          errors: bucket.errors,
          p50Ms: percentile(sorted, 50) / 1000,
          p99Ms: percentile(sorted, 99) / 1000,
        };
      });
  }
}
