/**
 * Dynamic Large Objects (Swift's dlo middleware), a stage after authentication. An object with
 * `X-Object-Manifest: <container>/<prefix>` is, on GET/HEAD, the concatenation of the objects
 * listed under that prefix, in listing order: its Content-Length is their total, its ETag the
 * quoted md5 of their ETags, and Range and conditionals apply to that whole, as Swift does.
 * `?multipart-manifest=get` returns the manifest object itself. A PUT with a malformed
 * X-Object-Manifest is a 400.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Context, Middleware, Next } from 'koa';
import { HttpError } from '../../common/errors.js';
import { decodePathStrict, swiftPathOrUndefined, quoteName, type SwiftPath } from '../request-path.js';
import { swiftState } from '../state.js';
import { PIECES_MAX, discardBody, respondLargeObject, type Piece } from './large-object-segments.js';
import { objectPath, responseHeaders } from './slo.js';

/** A listing page (container_listing_limit) and the number of pages we read at most. */
const LISTING_PAGE_LIMIT = 10_000;
const LISTING_PAGES_MAX = Math.ceil(PIECES_MAX / LISTING_PAGE_LIMIT);

export interface DloOptions {
  validVersions: readonly string[];
}

interface ListingRow {
  name?: string;
  hash?: string;
  bytes?: number;
  subdir?: string;
}

function queryParam(ctx: Context, name: string): string | undefined {
  const value = ctx.query[name];
  return Array.isArray(value) ? value[0] : value;
}

/** `container/prefix`, %-decoded, as Swift reads X-Object-Manifest. */
export function parseManifestValue(value: string): { container: string; prefix: string } | undefined {
  const decoded = decodePathStrict(value.trim()) ?? value.trim();
  const slash = decoded.indexOf('/');
  if (decoded.startsWith('/') || slash <= 0) return undefined;
  return { container: decoded.slice(0, slash), prefix: decoded.slice(slash + 1) };
}

/** Swift's validate_x_object_manifest_header: `container/prefix`, both non-empty, no `?` or `&`. */
function validManifestHeader(value: string): boolean {
  const slash = value.indexOf('/');
  if (slash <= 0) return false;
  const prefix = value.slice(slash + 1);
  return prefix !== '' && !prefix.startsWith('/') && !value.includes('?') && !value.includes('&');
}

export function dloMiddleware(options: DloOptions): Middleware {
  return async (ctx: Context, next: Next): Promise<void> => {
    const path = swiftPathOrUndefined(ctx.path, options.validVersions);
    if (path?.object === undefined) {
      await next();
      return;
    }
    if (ctx.method === 'PUT' || ctx.method === 'POST') {
      const manifest = ctx.req.headers['x-object-manifest'];
      if (manifest !== undefined && !validManifestHeader(String(manifest))) {
        throw new HttpError(400, 'X-Object-Manifest must be in the format container/prefix', {
          code: 'BadObjectManifest',
        });
      }
    }
    if ((ctx.method !== 'GET' && ctx.method !== 'HEAD') || queryParam(ctx, 'multipart-manifest') === 'get') {
      await next();
      return;
    }
    await next();
    const headers = responseHeaders(ctx);
    const manifestValue = headers['x-object-manifest'];
    if (manifestValue === undefined || ctx.status < 200) return;
    if (ctx.status >= 300 && ![304, 412, 416].includes(ctx.status)) return;
    const manifest = parseManifestValue(manifestValue);
    if (manifest === undefined) return;
    let manifestHeaders = headers;
    if (ctx.status !== 200) {
      // The client's Range or conditionals applied to the manifest object: read its headers alone.
      const body: unknown = ctx.body;
      if (body instanceof Readable) body.destroy();
      const fetched = await swiftState(ctx).subrequest({
        method: 'HEAD',
        path: `${objectPath(path.version, path.account, `${path.container ?? ''}/${path.object}`)}?multipart-manifest=get`,
        source: 'DLO',
      });
      discardBody(fetched);
      if (fetched.status !== 200) throw new HttpError(fetched.status >= 400 ? fetched.status : 503);
      manifestHeaders = fetched.headers;
    }
    const rows = await listSegments(ctx, path, manifest.container, manifest.prefix);
    const md5 = createHash('md5');
    const pieces: Piece[] = [];
    for (const row of rows) {
      md5.update((row.hash ?? '').replace(/^"(.*)"$/, '$1'));
      const bytes = Number(row.bytes ?? 0);
      if (bytes > 0) {
        pieces.push({
          path: objectPath(path.version, path.account, `${manifest.container}/${row.name ?? ''}`),
          start: 0,
          end: bytes - 1,
        });
      }
    }
    const keep: Record<string, string> = {};
    for (const [name, value] of Object.entries(manifestHeaders)) {
      if (['content-length', 'content-range', 'etag', 'content-type', 'accept-ranges', 'last-modified'].includes(name))
        continue;
      keep[name] = value;
    }
    await respondLargeObject(ctx, {
      pieces,
      etag: md5.digest('hex'),
      lastModified: manifestHeaders['last-modified'],
      contentType: manifestHeaders['content-type'] ?? 'application/octet-stream',
      headers: keep,
      source: 'DLO',
    });
  };
}

/** Every object under the prefix, in listing order (paged by marker, bounded). */
async function listSegments(ctx: Context, path: SwiftPath, container: string, prefix: string): Promise<ListingRow[]> {
  const rows: ListingRow[] = [];
  let marker = '';
  for (let page = 0; page < LISTING_PAGES_MAX; page += 1) {
    const query = new URLSearchParams({ format: 'json', prefix });
    if (marker !== '') query.set('marker', marker);
    const response = await swiftState(ctx).subrequest({
      method: 'GET',
      path: `/${path.version}/${quoteName(path.account)}/${quoteName(container)}?${query.toString()}`,
      source: 'DLO',
    });
    if (response.status === 404 || response.status === 204) {
      discardBody(response);
      return rows;
    }
    if (response.status < 200 || response.status >= 300) {
      discardBody(response);
      throw new HttpError(response.status === 401 || response.status === 403 ? response.status : 503, undefined, {
        code: 'DloListingFailed',
      });
    }
    const parsed = JSON.parse((await response.buffer(64 * 1024 * 1024)).toString('utf8')) as ListingRow[];
    const objects = parsed.filter((row) => row.subdir === undefined && row.name !== undefined);
    rows.push(...objects);
    const last = objects.at(-1);
    if (last?.name === undefined || parsed.length < LISTING_PAGE_LIMIT) return rows;
    marker = last.name;
  }
  return rows;
}
