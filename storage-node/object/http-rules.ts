/**
 * HTTP rules of object reads, as Swift's swob applies them: `Range` (single, multiple, suffix;
 * syntax errors ignore the header, nothing satisfiable is 416) and the conditional headers
 * (If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since). Pure functions.
 */

export interface ByteRange {
  start: number;
  /** Inclusive. */
  end: number;
}

/** Swift ignores a Range header with more ranges than this. */
export const RANGES_MAX = 50;

/**
 * The ranges of `header` satisfiable within `length`: undefined when the header is absent or
 * malformed (serve the whole object), [] when none is satisfiable (416).
 */
export function parseRange(header: string | undefined, length: number): ByteRange[] | undefined {
  if (header === undefined || header === '') return undefined;
  const match = /^\s*bytes\s*=\s*(.+)$/i.exec(header);
  if (match === null) return undefined;
  const specs = (match[1] ?? '').split(',');
  if (specs.length > RANGES_MAX) return undefined;
  const ranges: ByteRange[] = [];
  for (const rawSpec of specs) {
    const spec = rawSpec.trim();
    const parts = /^(\d*)-(\d*)$/.exec(spec);
    if (parts === null) return undefined;
    const [, first = '', last = ''] = parts;
    if (first === '' && last === '') return undefined;
    if (first === '') {
      const suffix = Number(last);
      if (suffix === 0 || length === 0) continue;
      ranges.push({ start: Math.max(0, length - suffix), end: length - 1 });
      continue;
    }
    const start = Number(first);
    const end = last === '' ? length - 1 : Number(last);
    if (last !== '' && end < start) return undefined; // "5-3": malformed, ignore the header
    if (start >= length) continue;
    ranges.push({ start, end: Math.min(end, length - 1) });
  }
  return ranges;
}

function etagList(header: string): string[] {
  return header
    .split(',')
    .map((tag) =>
      tag
        .trim()
        .replace(/^W\//, '')
        .replace(/^"(.*)"$/, '$1'),
    )
    .filter((tag) => tag !== '');
}

export function etagMatches(header: string, etag: string): boolean {
  const tags = etagList(header);
  return tags.includes('*') || tags.includes(etag);
}

function parseHttpDateSeconds(value: string): number | undefined {
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : Math.floor(ms / 1000);
}

export type ConditionalOutcome = 'proceed' | 'not-modified' | 'precondition-failed';

/** Applies the conditional headers to an existing object (etag, last modified in whole seconds). */
export function evaluateConditionals(
  headers: { ifMatch?: string; ifNoneMatch?: string; ifModifiedSince?: string; ifUnmodifiedSince?: string },
  etag: string,
  lastModifiedSeconds: number,
  isRead: boolean,
): ConditionalOutcome {
  if (headers.ifMatch !== undefined && headers.ifMatch !== '' && !etagMatches(headers.ifMatch, etag)) {
    return 'precondition-failed';
  }
  if (headers.ifNoneMatch !== undefined && headers.ifNoneMatch !== '') {
    if (etagMatches(headers.ifNoneMatch, etag)) return isRead ? 'not-modified' : 'precondition-failed';
  } else if (isRead && headers.ifModifiedSince !== undefined) {
    const since = parseHttpDateSeconds(headers.ifModifiedSince);
    if (since !== undefined && lastModifiedSeconds <= since) return 'not-modified';
  }
  if ((headers.ifMatch === undefined || headers.ifMatch === '') && headers.ifUnmodifiedSince !== undefined) {
    const since = parseHttpDateSeconds(headers.ifUnmodifiedSince);
    if (since !== undefined && lastModifiedSeconds > since) return 'precondition-failed';
  }
  return 'proceed';
}
