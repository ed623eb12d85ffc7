/**
 * The response bodies of Swift's bulk operations (bulk.py's get_response_body), shared by SLO's
 * manifest PUT errors and `multipart-manifest=delete`: text/plain (sorted `Key: value` lines, then
 * `Errors:` and one `name, reason` line each), or JSON with an `Errors` list, chosen from the
 * client's Accept header among Swift's ACCEPTABLE_FORMATS (text/plain first).
 */
import type { Context } from 'koa';
import { STATUS_TEXT } from '../../common/errors.js';

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

export function statusLine(status: number): string {
  return `${status} ${STATUS_TEXT[status] ?? ''}`.trim();
}

function xmlEscape(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function xmlTag(key: string): string {
  return key.toLowerCase().replace(/ /g, '_');
}

export function bulkResponseBody(
  format: BulkFormat,
  fields: Record<string, string | number>,
  errors: readonly (readonly [string, string])[],
  rootTag: string,
): string {
  if (format === 'application/json') return JSON.stringify({ ...fields, Errors: errors });
  if (format.endsWith('/xml')) {
    const items = Object.keys(fields)
      .sort()
      .map((key) => `<${xmlTag(key)}>${xmlEscape(String(fields[key]))}</${xmlTag(key)}>`)
      .join('');
    const errorItems = errors
      .map(([name, status]) => `<object><name>${xmlEscape(name)}</name><status>${xmlEscape(status)}</status></object>`)
      .join('');
    return `<?xml version="1.0" encoding="UTF-8"?>\n<${rootTag}>${items}<errors>${errorItems}</errors></${rootTag}>\n`;
  }
  const lines = Object.keys(fields)
    .sort()
    .map((key) => `${key}: ${fields[key]}\n`);
  lines.push('Errors:\n');
  for (const [name, status] of errors) lines.push(`${name}, ${status}\n`);
  return lines.join('');
}
