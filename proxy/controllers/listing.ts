/**
 * Listing request checks the proxy makes itself (the storage servers render the listings): the
 * requested format (`format=` or the Accept header, as Swift's listing_formats) and the limit.
 */
import type { Context } from 'koa';
import { HttpError } from '../../common/errors.js';

export type ListingFormat = 'plain' | 'json' | 'xml';

export function listingFormat(ctx: Context): ListingFormat {
  const format = (typeof ctx.query.format === 'string' ? ctx.query.format : '').toLowerCase();
  if (format === 'json') return 'json';
  if (format === 'xml') return 'xml';
  if (format === 'plain' || format === 'txt' || format === 'text') return 'plain';
  const accepted = ctx.accepts(['text/plain', 'application/json', 'application/xml', 'text/xml']);
  if (accepted === 'application/json') return 'json';
  if (accepted === 'application/xml' || accepted === 'text/xml') return 'xml';
  return 'plain';
}

export function checkListingLimit(ctx: Context, limitMax: number): void {
  const raw = ctx.query.limit;
  if (typeof raw !== 'string' || raw === '') return;
  const limit = Number(raw);
  if (!Number.isInteger(limit) || limit < 0) {
    throw new HttpError(400, `Value of limit must be a positive integer`, { code: 'BadLimit' });
  }
  if (limit > limitMax) throw new HttpError(412, `Maximum limit is ${limitMax}`, { code: 'LimitTooLarge' });
}
