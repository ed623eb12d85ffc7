/**
 * Listing bodies exactly as Swift's container and account servers write them
 * (swift/common/middleware/listing_formats.py and Python's json.dumps): text/plain one name per
 * line, JSON with Python's `, ` / `: ` separators and ASCII-only escapes, and ElementTree's XML
 * (the container document on one line, the account document with a newline after each element).
 * Clients parse these, but byte-identical bodies keep ETags and tests comparable with Swift.
 */

export interface ObjectListingRecord {
  name: string;
  hash: string;
  bytes: number;
  content_type: string;
  last_modified: string;
}

export interface ContainerListingRecord {
  name: string;
  count: number;
  bytes: number;
  last_modified: string;
}

export interface SubdirRecord {
  subdir: string;
}

export type ObjectListingEntry = ObjectListingRecord | SubdirRecord;
export type AccountListingEntry = ContainerListingRecord | SubdirRecord;

export type ListingContentType = 'text/plain' | 'application/json' | 'application/xml' | 'text/xml';

function isSubdir(entry: ObjectListingEntry | AccountListingEntry): entry is SubdirRecord {
  return 'subdir' in entry;
}

const PLAIN_ASCII = /^[ !#-[\]-~]*$/;

/** A JSON string literal as Python's json.dumps writes it (ensure_ascii: only printable ASCII). */
export function pythonJsonString(value: string): string {
  // Most names are printable ASCII without quotes or backslashes: nothing to escape.
  if (PLAIN_ASCII.test(value)) return `"${value}"`;
  return JSON.stringify(value).replace(
    /[\u007f-\uffff]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

export function objectListingJson(entries: readonly ObjectListingEntry[]): string {
  const parts = entries.map((entry) =>
    isSubdir(entry)
      ? `{"subdir": ${pythonJsonString(entry.subdir)}}`
      : `{"bytes": ${entry.bytes}, "hash": ${pythonJsonString(entry.hash)}, "name": ${pythonJsonString(entry.name)}, ` +
        `"content_type": ${pythonJsonString(entry.content_type)}, "last_modified": ${pythonJsonString(entry.last_modified)}}`,
  );
  return `[${parts.join(', ')}]`;
}

export function accountListingJson(entries: readonly AccountListingEntry[]): string {
  const parts = entries.map((entry) =>
    isSubdir(entry)
      ? `{"subdir": ${pythonJsonString(entry.subdir)}}`
      : `{"name": ${pythonJsonString(entry.name)}, "count": ${entry.count}, "bytes": ${entry.bytes}, ` +
        `"last_modified": ${pythonJsonString(entry.last_modified)}}`,
  );
  return `[${parts.join(', ')}]`;
}

export function listingText(entries: readonly (ObjectListingEntry | AccountListingEntry)[]): string {
  let text = '';
  for (const entry of entries) text += `${isSubdir(entry) ? entry.subdir : entry.name}\n`;
  return text;
}

const XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n';

/** ElementTree's text escaping. */
export function xmlText(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** ElementTree's attribute escaping (Python 3.11). */
export function xmlAttribute(value: string): string {
  return xmlText(value).replace(/"/g, '&quot;').replace(/\r/g, '&#13;').replace(/\n/g, '&#10;').replace(/\t/g, '&#09;');
}

export function objectListingXml(container: string, entries: readonly ObjectListingEntry[]): string {
  const open = `<container name="${xmlAttribute(container)}"`;
  if (entries.length === 0) return `${XML_DECLARATION}${open} />`;
  let body = `${XML_DECLARATION}${open}>`;
  for (const entry of entries) {
    if (isSubdir(entry)) {
      body += `<subdir name="${xmlAttribute(entry.subdir)}"><name>${xmlText(entry.subdir)}</name></subdir>`;
    } else {
      body +=
        `<object><name>${xmlText(entry.name)}</name><hash>${xmlText(entry.hash)}</hash>` +
        `<bytes>${entry.bytes}</bytes><content_type>${xmlText(entry.content_type)}</content_type>` +
        `<last_modified>${xmlText(entry.last_modified)}</last_modified></object>`;
    }
  }
  return `${body}</container>`;
}

export function accountListingXml(account: string, entries: readonly AccountListingEntry[]): string {
  let body = `${XML_DECLARATION}<account name="${xmlAttribute(account)}">\n`;
  for (const entry of entries) {
    if (isSubdir(entry)) {
      body += `<subdir name="${xmlAttribute(entry.subdir)}" />\n`;
    } else {
      body +=
        `<container><name>${xmlText(entry.name)}</name><count>${entry.count}</count>` +
        `<bytes>${entry.bytes}</bytes><last_modified>${xmlText(entry.last_modified)}</last_modified></container>\n`;
    }
  }
  return `${body}</account>`;
}
