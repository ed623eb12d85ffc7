/**
 * Swift timestamps: the `X-Timestamp` every write carries and that decides which replica wins.
 *
 * Normal form is 10 integer digits, a dot and 5 decimals (`1700000000.12345`): that string sorts
 * the same way as the time it stands for, so it doubles as a file name and a LevelDB key part.
 * The internal form adds `_` and 16 hex digits of offset (`1700000000.12345_000000000000000a`),
 * which lets a server order two events of the same client time (e.g. a POST's metadata update
 * after the PUT it rewrites) without inventing a later wall-clock time.
 */

const NORMAL_RE = /^\d{1,10}(?:\.\d{1,5})?$/;
const INTERNAL_RE = /^(\d{1,10}(?:\.\d{1,5})?)(?:_([0-9a-f]{1,16}))?$/;
/** Swift stores timestamps with 10 µs precision: 5 decimal places. */
const TICKS_PER_SECOND = 100_000;

export class InvalidTimestampError extends Error {
  readonly code = 'InvalidTimestamp';
  constructor(value: string) {
    super(`X-Timestamp should be a UNIX timestamp float value; was ${JSON.stringify(value)}`);
  }
}

let lastNowTicks = 0;

export class Timestamp {
  /** Whole ticks of 10 µs since the epoch: an integer, exact in a double up to year 2255. */
  readonly ticks: number;
  readonly offset: number;

  constructor(ticks: number, offset = 0) {
    if (!Number.isSafeInteger(ticks) || ticks < 0 || ticks >= 10_000_000_000 * TICKS_PER_SECOND) {
      throw new InvalidTimestampError(String(ticks));
    }
    if (!Number.isSafeInteger(offset) || offset < 0) throw new InvalidTimestampError(`offset ${offset}`);
    this.ticks = ticks;
    this.offset = offset;
  }

  /**
   * The current time. Date.now() counts whole milliseconds, so the sub-millisecond digits come
   * from the monotonic clock, and no call in this process returns a tick at or before the last
   * one: two writes of one proxy to the same name never share a timestamp (the later must win).
   */
  static now(): Timestamp {
    const clock = Math.floor((Date.now() + (performance.now() % 1)) * (TICKS_PER_SECOND / 1000));
    lastNowTicks = Math.max(clock, lastNowTicks + 1);
    return new Timestamp(lastNowTicks);
  }

  static fromSeconds(seconds: number): Timestamp {
    return new Timestamp(Math.round(seconds * TICKS_PER_SECOND));
  }

  /** Parses `1700000000.12345`, `1700000000`, `1700000000.1` and the internal `_offset` form. */
  static parse(value: string): Timestamp {
    const match = INTERNAL_RE.exec(value.trim());
    if (match === null) {
      // Swift also accepts floats in exponent-free forms like "1700000000.123456" (rounded).
      const number = Number(value);
      if (value.trim() !== '' && Number.isFinite(number) && number >= 0 && !value.includes('_')) {
        return Timestamp.fromSeconds(number);
      }
      throw new InvalidTimestampError(value);
    }
    const [whole = '0', fraction = ''] = (match[1] ?? '').split('.');
    const ticks = Number(whole) * TICKS_PER_SECOND + Number(fraction.padEnd(5, '0'));
    const offset = match[2] === undefined ? 0 : Number.parseInt(match[2], 16);
    return new Timestamp(ticks, offset);
  }

  static isNormal(value: string): boolean {
    return NORMAL_RE.test(value);
  }

  get seconds(): number {
    return this.ticks / TICKS_PER_SECOND;
  }

  get ms(): number {
    return this.ticks / (TICKS_PER_SECOND / 1000);
  }

  /** `1700000000.12345`: the form clients see in X-Timestamp and Swift writes in listings. */
  get normal(): string {
    const whole = Math.floor(this.ticks / TICKS_PER_SECOND);
    const fraction = this.ticks % TICKS_PER_SECOND;
    return `${String(whole).padStart(10, '0')}.${String(fraction).padStart(5, '0')}`;
  }

  /** The normal form, plus `_<16 hex>` when there is an offset: the form used in file names. */
  get internal(): string {
    return this.offset === 0 ? this.normal : `${this.normal}_${this.offset.toString(16).padStart(16, '0')}`;
  }

  /** ISO 8601 with microseconds, as Swift's JSON listings give `last_modified`. */
  get isoformat(): string {
    const iso = new Date(Math.floor(this.ticks / 100)).toISOString(); // ms precision
    const micros = String((this.ticks % TICKS_PER_SECOND) * 10).padStart(6, '0');
    return `${iso.slice(0, 19)}.${micros}`;
  }

  /** RFC 1123 date, rounded up to the second as Swift's Last-Modified is. */
  get httpDate(): string {
    return new Date(Math.ceil(this.ticks / TICKS_PER_SECOND) * 1000).toUTCString();
  }

  withOffset(offset: number): Timestamp {
    return new Timestamp(this.ticks, offset);
  }

  compare(other: Timestamp): number {
    return this.ticks - other.ticks || this.offset - other.offset;
  }

  isNewerThan(other: Timestamp): boolean {
    return this.compare(other) > 0;
  }

  toString(): string {
    return this.internal;
  }
}

/** Compares two timestamp strings in internal form without parsing (same-width strings sort). */
export function compareTimestampStrings(a: string, b: string): number {
  return Timestamp.parse(a).compare(Timestamp.parse(b));
}
