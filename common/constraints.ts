/**
 * Swift's constraints, in one table (swift/common/constraints.py and the `[swift-constraints]`
 * section of swift.conf). Every limit the servers enforce and `/info` announces comes from here.
 */

export interface Constraints {
  max_file_size: number;
  max_meta_name_length: number;
  max_meta_value_length: number;
  max_meta_count: number;
  max_meta_overall_size: number;
  max_header_size: number;
  max_object_name_length: number;
  container_listing_limit: number;
  account_listing_limit: number;
  max_account_name_length: number;
  max_container_name_length: number;
  valid_api_versions: string[];
  extra_header_count: number;
}

export const DEFAULT_CONSTRAINTS: Readonly<Constraints> = Object.freeze({
  max_file_size: 5_368_709_122, // 5 GiB + 2 bytes, as Swift
  max_meta_name_length: 128,
  max_meta_value_length: 256,
  max_meta_count: 90,
  max_meta_overall_size: 4096,
  max_header_size: 8192,
  max_object_name_length: 1024,
  container_listing_limit: 10_000,
  account_listing_limit: 10_000,
  max_account_name_length: 256,
  max_container_name_length: 256,
  valid_api_versions: ['v1', 'v1.0'],
  extra_header_count: 0,
});

/** Applies a `[swift-constraints]` section's numeric overrides to the defaults. */
export function constraintsFrom(section: Readonly<Record<string, string>> | undefined): Readonly<Constraints> {
  const merged: Constraints = {
    ...DEFAULT_CONSTRAINTS,
    valid_api_versions: [...DEFAULT_CONSTRAINTS.valid_api_versions],
  };
  for (const [key, value] of Object.entries(section ?? {})) {
    if (key === 'valid_api_versions') {
      merged.valid_api_versions = value
        .split(',')
        .map((v) => v.trim())
        .filter(Boolean);
    } else if (key in merged) {
      const number = Number(value);
      if (!Number.isSafeInteger(number) || number < 0) {
        throw new Error(`[swift-constraints] ${key} must be a non-negative integer, got ${JSON.stringify(value)}`);
      }
      (merged as unknown as Record<string, number>)[key] = number;
    }
  }
  return Object.freeze(merged);
}

export type MetadataKind = 'object' | 'container' | 'account';

/** A header name as Swift's WSGI environ gives it (Python's str.title: `X-Object-Meta-Color`). */
function wsgiHeaderName(name: string): string {
  return name.replace(/[A-Za-z]+/g, (word) => word[0]?.toUpperCase() + word.slice(1).toLowerCase());
}

/**
 * Checks the X-<Kind>-Meta-* headers of a request against the limits, returning Swift's message
 * for the first violation, or undefined when they pass. Header names are lower case.
 */
export function checkMetadata(
  headers: Readonly<Record<string, string | string[] | undefined>>,
  kind: MetadataKind,
  limits: Readonly<Constraints> = DEFAULT_CONSTRAINTS,
): string | undefined {
  const prefix = `x-${kind}-meta-`;
  let count = 0;
  let size = 0;
  for (const [rawName, rawValue] of Object.entries(headers)) {
    const name = rawName.toLowerCase();
    if (!name.startsWith(prefix) || rawValue === undefined) continue;
    const value = Array.isArray(rawValue) ? rawValue.join(',') : rawValue;
    const key = name.slice(prefix.length);
    if (key === '') return 'Metadata name cannot be empty';
    count += 1;
    size += Buffer.byteLength(key) + Buffer.byteLength(value);
    // Swift names the header with the lower-case prefix and the rest as WSGI spelled it.
    const shown = (): string => prefix + wsgiHeaderName(name).slice(prefix.length);
    if (Buffer.byteLength(key) > limits.max_meta_name_length) {
      return `Metadata name too long: ${shown()}`;
    }
    if (Buffer.byteLength(value) > limits.max_meta_value_length) {
      return `Metadata value longer than ${limits.max_meta_value_length}: ${shown()}`;
    }
    if (count > limits.max_meta_count) return `Too many metadata items; max ${limits.max_meta_count}`;
    if (size > limits.max_meta_overall_size) {
      return `Total metadata too large; max ${limits.max_meta_overall_size}`;
    }
  }
  return undefined;
}

/**
 * Valid UTF-8 without NUL: Swift refuses other names with 412 (object) or 400. Callers decode
 * strictly (decodeURIComponent or a fatal TextDecoder), so invalid bytes never reach here as
 * U+FFFD; a U+FFFD in the name is the character itself, which Swift stores like any other.
 */
export function isValidUtf8Name(name: string): boolean {
  // A lone surrogate cannot be encoded as UTF-8.
  return !name.includes('\u0000') && name.isWellFormed();
}
