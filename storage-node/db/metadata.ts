/**
 * Container and account metadata as Swift's database brokers keep it: a map from header name to
 * `[value, timestamp]`, each item with its own timestamp so that replicas merge item by item
 * (newest wins), and an empty value standing for a deleted item until reclaim_age has passed.
 */
import type { Constraints } from '../../common/constraints.js';

/** Header name (Title-Case, as Swift returns it) to [value, internal timestamp]. */
export type MetadataItems = Record<string, [string, string]>;

/** `x-container-meta-foo-bar` -> `X-Container-Meta-Foo-Bar` (Python's str.title()). */
export function titleCaseHeader(name: string): string {
  return name
    .toLowerCase()
    .replace(/(^|[^a-z])([a-z])/g, (_match, before: string, letter: string) => before + letter.toUpperCase());
}

/** The request headers `accept` keeps, as metadata items stamped with `timestamp`. */
export function metadataFromHeaders(
  headers: Readonly<Record<string, string | string[] | undefined>>,
  accept: (lowerName: string) => boolean,
  timestamp: string,
): MetadataItems {
  const items: MetadataItems = {};
  for (const [rawName, rawValue] of Object.entries(headers)) {
    if (rawValue === undefined) continue;
    const name = rawName.toLowerCase();
    if (!accept(name)) continue;
    items[titleCaseHeader(name)] = [Array.isArray(rawValue) ? rawValue.join(',') : rawValue.trim(), timestamp];
  }
  return items;
}

/** Merges updates into existing items, newest timestamp per item winning; says whether anything changed. */
export function mergeMetadata(
  existing: MetadataItems,
  updates: MetadataItems,
): { merged: MetadataItems; changed: boolean } {
  const merged: MetadataItems = { ...existing };
  let changed = false;
  for (const [name, item] of Object.entries(updates)) {
    const current = merged[name];
    if (current === undefined || item[1] > current[1]) {
      merged[name] = item;
      changed = true;
    }
  }
  return { merged, changed };
}

/**
 * Swift's DatabaseBroker.validate_metadata over the merged items: counts the non-empty user
 * metadata (`X-<Kind>-Meta-*`) against max_meta_count and max_meta_overall_size.
 */
export function checkMergedMetadata(items: MetadataItems, limits: Readonly<Constraints>): string | undefined {
  let count = 0;
  let size = 0;
  for (const [name, [value]] of Object.entries(items)) {
    const lower = name.toLowerCase();
    if (value === '') continue;
    const prefix = lower.startsWith('x-account-meta-')
      ? 'x-account-meta-'
      : lower.startsWith('x-container-meta-')
        ? 'x-container-meta-'
        : undefined;
    if (prefix === undefined) continue;
    count += 1;
    size += Buffer.byteLength(lower.slice(prefix.length)) + Buffer.byteLength(value);
  }
  if (count > limits.max_meta_count) return `Too many metadata items; max ${limits.max_meta_count}`;
  if (size > limits.max_meta_overall_size) return `Total metadata too large; max ${limits.max_meta_overall_size}`;
  return undefined;
}

/** The items to send as response headers: those with a value. */
export function visibleMetadata(items: MetadataItems): [string, string][] {
  return Object.entries(items)
    .filter(([, [value]]) => value !== '')
    .map(([name, [value]]) => [name, value]);
}

/** Every item set to '' at `timestamp` (what deleting a database does to its metadata). */
export function clearedMetadata(items: MetadataItems, timestamp: string): MetadataItems {
  const cleared: MetadataItems = {};
  for (const name of Object.keys(items)) cleared[name] = ['', timestamp];
  return cleared;
}

/** Drops deleted (empty) items older than `cutoff`; undefined when nothing was dropped. */
export function reclaimMetadata(items: MetadataItems, cutoff: string): MetadataItems | undefined {
  let dropped = false;
  const kept: MetadataItems = {};
  for (const [name, item] of Object.entries(items)) {
    if (item[0] === '' && item[1] < cutoff) dropped = true;
    else kept[name] = item;
  }
  return dropped ? kept : undefined;
}
