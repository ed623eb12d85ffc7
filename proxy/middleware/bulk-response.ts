/**
 * The response bodies of Swift's bulk operations (bulk.py's get_response_body), shared by SLO's
 * manifest PUT errors and `multipart-manifest=delete`, byte for byte as Swift 2.30 writes them:
 * text/plain (sorted `Key: value` lines, then `Errors:` and one `name, reason` line each), JSON as
 * Python's json.dumps (`, ` and `: ` separators, non-ASCII as \uXXXX, the fields in the caller's
 * order), or XML without a declaration, one element a line. The format is chosen from the client's
 * Accept header among Swift's ACCEPTABLE_FORMATS (text/plain first).
 */
import { STATUS_CODES } from 'node:http';
import type { Context } from 'koa';
import { STATUS_TEXT } from '../../common/errors.js';
import { pythonJsonString } from '../../common/python-json.js';

export type BulkFormat = 'text/plain' | 'application/json' | 'application/xml' | 'text/xml';

const ACCEPTABLE_FORMATS: readonly BulkFormat[] = ['text/plain', 'application/json', 'application/xml', 'text/xml'];

/** swob's Accept.best_match over ACCEPTABLE_FORMATS (q-values honoured; ties keep our order). */
export function bulkFormat(ctx: Context): BulkFormat {
  const header = ctx.get('accept');
  if (header === '') return 'text/plain';
  let best: BulkFormat | undefined;
  let bestQ = 0;
  for (const part of header.split(',')) {
    const [rawType = '', ...params] = part.split(';').map((item) => item.trim().toLowerCase());
    const qParam = params.find((param) => param.startsWith('q='));
    const q = qParam === undefined ? 1 : Number(qParam.slice(2));
    if (!Number.isFinite(q) || q <= 0) continue;
    const [type = '', subtype = ''] = rawType.split('/');
    for (const format of ACCEPTABLE_FORMATS) {
      const [fType, fSubtype] = format.split('/');
      const matches = (type === '*' || type === fType) && (subtype === '*' || subtype === fSubtype);
      if (matches && q > bestQ) {
        best = format;
        bestQ = q;
        break;
      }
    }
  }
  return best ?? 'text/plain';
}

/** Swift's reason phrases first; node's for the statuses that list lacks (406 Not Acceptable). */
export function statusLine(status: number): string {
  return `${status} ${STATUS_TEXT[status] ?? STATUS_CODES[status] ?? ''}`.trim();
}

/** Python's urllib.parse.quote(name, safe='/') of the UTF-8 bytes, as Swift names failed files. */
export function swiftQuote(name: string): string {
  return encodeURIComponent(name)
    .replace(/%2F/g, '/')
    .replace(/[!'()*]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`);
}

function pythonJsonValue(value: string | number): string {
  return typeof value === 'number' ? String(value) : pythonJsonString(value);
}

/** xml.sax.saxutils.escape. */
function xmlEscape(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function xmlTag(key: string): string {
  return key.toLowerCase().replace(/ /g, '_');
}

/**
 * `fields` in Swift's insertion order (it matters for JSON only): 'Response Status',
 * 'Response Body', then the counts.
 */
export function bulkResponseBody(
  format: BulkFormat,
  fields: Record<string, string | number>,
  errors: readonly (readonly [string, string])[],
  rootTag: string,
): string {
  if (format === 'application/json') {
    const members = Object.entries(fields).map(([key, value]) => `${pythonJsonString(key)}: ${pythonJsonValue(value)}`);
    const errorItems = errors.map(([name, status]) => `[${pythonJsonString(name)}, ${pythonJsonString(status)}]`);
    members.push(`"Errors": [${errorItems.join(', ')}]`);
    return `{${members.join(', ')}}`;
  }
  if (format.endsWith('/xml')) {
    const lines = [`<${rootTag}>\n`];
    for (const key of Object.keys(fields).sort()) {
      lines.push(`<${xmlTag(key)}>${xmlEscape(String(fields[key]))}</${xmlTag(key)}>\n`);
    }
    lines.push('<errors>\n');
    for (const [name, status] of errors) {
      lines.push(`<object><name>${xmlEscape(name)}</name><status>${xmlEscape(status)}</status></object>\n`);
    }
    lines.push(`</errors>\n</${rootTag}>\n`);
    return lines.join('');
  }
  const lines = Object.keys(fields)
    .sort()
    .map((key) => `${key}: ${fields[key]}\n`);
  lines.push('Errors:\n');
  for (const [name, status] of errors) lines.push(`${name}, ${status}\n`);
  return lines.join('');
}
