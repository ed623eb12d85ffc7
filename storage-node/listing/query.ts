/**
 * The query of a container or account listing, read as Swift's servers read it
 * (swift/common/request_helpers.py: get_param, constrain_req_limit; listing_formats.py:
 * get_listing_content_type): every parameter must be valid UTF-8 (400), `limit` counts only when
 * all digits and may not exceed the listing limit (412 "Maximum limit is N"), `reverse` takes
 * Swift's true values, and the body format comes from `format=` or else the Accept header.
 */
import { isTruthy } from '../../common/config.js';
import { HttpError, badRequest, preconditionFailed } from '../../common/errors.js';
import type { ListingContentType } from './formats.js';

export interface ListingQuery {
  limit: number;
  /** Empty string when absent, as Swift's default. */
  marker: string;
  endMarker: string;
  prefix: string | undefined;
  delimiter: string | undefined;
  /** Container listings only. */
  path: string | undefined;
  reverse: boolean;
  contentType: ListingContentType;
}

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Percent-decodes a query component (`+` is a space) into bytes, then requires valid UTF-8. */
function decodeComponent(raw: string, name: string): string {
  const bytes = Buffer.from(raw.replace(/\+/g, ' '), 'latin1');
  const out = Buffer.allocUnsafe(bytes.length);
  let length = 0;
  for (let index = 0; index < bytes.length; index += 1) {
    const byte = bytes[index] ?? 0;
    if (byte === 0x25 && index + 2 < bytes.length && /^[0-9a-fA-F]{2}$/.test(raw.slice(index + 1, index + 3))) {
      out[length] = Number.parseInt(raw.slice(index + 1, index + 3), 16);
      index += 2;
    } else {
      out[length] = byte;
    }
    length += 1;
  }
  try {
    return STRICT_UTF8.decode(out.subarray(0, length));
  } catch {
    throw badRequest(`"${name}" parameter not valid UTF-8`, 'InvalidUtf8');
  }
}

/** The query's parameters, the last value winning when one repeats (as swob's params). */
export function parseQueryString(querystring: string): Map<string, string> {
  const params = new Map<string, string>();
  if (querystring === '') return params;
  for (const part of querystring.split('&')) {
    if (part === '') continue;
    const equals = part.indexOf('=');
    const rawName = equals < 0 ? part : part.slice(0, equals);
    const rawValue = equals < 0 ? '' : part.slice(equals + 1);
    const name = decodeComponent(rawName, rawName);
    params.set(name, decodeComponent(rawValue, name));
  }
  return params;
}

const OFFERED: readonly ListingContentType[] = ['text/plain', 'application/json', 'application/xml', 'text/xml'];
const FORMATS: Readonly<Record<string, ListingContentType>> = {
  plain: 'text/plain',
  json: 'application/json',
  xml: 'application/xml',
};

/** Picks the listing type from an Accept header: highest q, then the most specific range, then our order. */
export function bestListingType(accept: string | undefined): ListingContentType | undefined {
  if (accept === undefined || accept.trim() === '') return 'text/plain';
  const ranges: { type: string; subtype: string; q: number }[] = [];
  for (const item of accept.split(',').slice(0, 64)) {
    const [range = '', ...params] = item.split(';');
    const [type = '', subtype = ''] = range.trim().toLowerCase().split('/');
    if (type === '' || subtype === '') continue;
    let q = 1;
    for (const param of params) {
      const [key = '', value = ''] = param.split('=').map((s) => s.trim());
      if (key.toLowerCase() === 'q') q = Number.isFinite(Number(value)) ? Number(value) : 0;
    }
    ranges.push({ type, subtype, q });
  }
  if (ranges.length === 0) return 'text/plain';
  let best: ListingContentType | undefined;
  let bestQ = 0;
  for (const offered of OFFERED) {
    const [type, subtype] = offered.split('/');
    let quality = -1;
    let specificity = -1;
    for (const range of ranges) {
      const rangeSpecificity =
        range.type === type && range.subtype === subtype ? 2 : range.type === type && range.subtype === '*' ? 1 : 0;
      const matches = rangeSpecificity > 0 || (range.type === '*' && range.subtype === '*');
      if (matches && rangeSpecificity > specificity) {
        specificity = rangeSpecificity;
        quality = range.q;
      }
    }
    if (quality > bestQ) {
      best = offered;
      bestQ = quality;
    }
  }
  return best;
}

export function parseListingQuery(
  querystring: string,
  acceptHeader: string | undefined,
  listingLimitMax: number,
): ListingQuery {
  const params = parseQueryString(querystring);
  let limit = listingLimitMax;
  const givenLimit = params.get('limit');
  if (givenLimit !== undefined && /^\d+$/.test(givenLimit)) {
    limit = Number(givenLimit);
    if (limit > listingLimitMax) throw preconditionFailed(`Maximum limit is ${listingLimitMax}`);
  }
  const format = params.get('format');
  let contentType: ListingContentType | undefined;
  if (format !== undefined && format !== '') {
    contentType = FORMATS[format.toLowerCase()] ?? 'text/plain';
  } else {
    contentType = bestListingType(acceptHeader);
    if (contentType === undefined) throw new HttpError(406, 'Not Acceptable', { code: 'NotAcceptable' });
  }
  const nonEmpty = (name: string): string | undefined => {
    const value = params.get(name);
    return value === undefined || value === '' ? undefined : value;
  };
  return {
    limit,
    marker: params.get('marker') ?? '',
    endMarker: params.get('end_marker') ?? '',
    prefix: nonEmpty('prefix'),
    delimiter: nonEmpty('delimiter'),
    path: params.get('path'),
    reverse: isTruthy(params.get('reverse')),
    contentType,
  };
}
