/**
 * JSON as Python's json.dumps writes it with its defaults, as Swift does for what clients read
 * (listings, stored SLO manifests, bulk answers): `", "` and `": "` separators, everything
 * outside printable ASCII as \uXXXX (ensure_ascii), keys in insertion order or sorted
 * (sort_keys). A stored manifest's ETag is the md5 of these bytes, so they must be exact.
 * Numbers are written as JSON.stringify writes them: integers only (Python's float repr differs).
 */

/** A string as json.dumps writes it (ensure_ascii). */
export function pythonJsonString(text: string): string {
  // JSON.stringify already escapes quotes, backslashes and controls as Python does (\n, \u0001);
  // ensure_ascii also escapes everything outside printable ASCII, surrogate halves included.
  return JSON.stringify(text).replace(
    /[\u007f-\uffff]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** `json.dumps(value)`, or `json.dumps(value, sort_keys=True)`; undefined members are left out. */
export function pythonJson(value: unknown, options: { sortKeys?: boolean } = {}): string {
  if (typeof value === 'string') return pythonJsonString(value);
  if (Array.isArray(value)) return `[${value.map((item) => pythonJson(item, options)).join(', ')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).filter(([, item]) => item !== undefined);
    if (options.sortKeys === true) entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${pythonJsonString(key)}: ${pythonJson(item, options)}`).join(', ')}}`;
  }
  return JSON.stringify(value);
}
