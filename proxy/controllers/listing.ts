/**
 * Listing request checks the proxy makes itself (the storage servers render the listings): the
 * requested format (`format=` or the Accept header, as Swift's listing_formats) and the limit;
 * and the answer to an account or container GET/HEAD, passed on from the storage server.
 */
import type { IncomingMessage } from 'node:http';
import type { Context } from 'koa';
import { HttpError } from '../../common/errors.js';
import { copyResponseHeaders } from './base.js';
import { stripOwnerHeadersFromResponse } from './info.js';

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

/**
 * Passes a storage server's account or container GET/HEAD answer on, with the headers Swift's
 * proxy adds to it: Accept-Ranges and Vary: Accept (the format follows the Accept header). Swift's
 * 204 also carries `Content-Type: text/plain; charset=utf-8` and `Content-Length: 0`; Koa drops
 * both from every 204, and no client we know reads them there.
 */
export function respondWithListing(ctx: Context, response: IncomingMessage, nodeTimeoutMs: number): void {
  ctx.status = response.statusCode ?? 500;
  copyResponseHeaders(ctx, response.headers);
  stripOwnerHeadersFromResponse(ctx);
  if (ctx.status >= 200 && ctx.status < 300) {
    ctx.set('Accept-Ranges', 'bytes');
    ctx.set('Vary', 'Accept');
  }
  if (ctx.method === 'HEAD' || ctx.status === 204) {
    response.resume();
    return;
  }
  // A listing that stalls mid-body for node_timeout is cut off rather than held open forever.
  response.setTimeout(nodeTimeoutMs, () => response.destroy(new Error('listing body stalled')));
  response.once('error', () => ctx.res.destroy());
  ctx.body = response;
}
