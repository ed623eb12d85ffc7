/**
 * Static Large Objects (Swift's slo middleware), a stage after authentication:
 * - `PUT ?multipart-manifest=put` with a JSON list of `{path, etag, size_bytes, range}` (or
 *   `{data}`) segments: every segment is checked with a HEAD (as the client), problems answer 400
 *   with Swift's bulk-style body; the stored manifest is Swift's format (`name, hash, bytes,
 *   content_type, last_modified[, range][, sub_slo]`) with X-Static-Large-Object: True and the
 *   sysmeta X-Object-Sysmeta-Slo-Etag / -Size; the response ETag is the quoted md5 of the
 *   segment ETags (`hash:range;` for ranged segments).
 * - GET/HEAD of a manifest serve the concatenated segments (nested manifests too, 10 levels),
 *   with Range and conditionals against the SLO ETag, and the manifest's own ETag in
 *   X-Manifest-Etag; `?multipart-manifest=get` returns the stored JSON (`&format=raw` in the PUT
 *   format, keys sorted, with the manifest's Content-Type).
 * - `DELETE ?multipart-manifest=delete` deletes the segments and then the manifest, answering
 *   Swift's bulk-delete body.
 * - Clients may not set X-Static-Large-Object themselves (400). Subrequests from other
 *   middlewares may: they write manifests on purpose (s3 multipart completion).
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Context, Middleware, Next } from 'koa';
import { HttpError } from '../../common/errors.js';
import { pythonJson } from '../../common/python-json.js';
import { parseSwiftPath, quoteName, type SwiftPath } from '../request-path.js';
import { swiftState, type SubResponse } from '../state.js';
import { bufferBody } from '../subrequest.js';
import { bulkFormat, bulkResponseBody, statusLine } from './bulk-response.js';
import {
  PIECES_MAX,
  discardBody,
  parseRanges,
  respondLargeObject,
  slicePieces,
  type Piece,
} from './large-object-segments.js';

export const DEFAULT_MAX_MANIFEST_SEGMENTS = 1000;
export const DEFAULT_MAX_MANIFEST_SIZE = 8 * 1024 * 1024;
const MAX_RECURSION_DEPTH = 10;
const HEAD_CONCURRENCY = 4;
const DELETE_CONCURRENCY = 2;

export const SYSMETA_SLO_ETAG = 'x-object-sysmeta-slo-etag';
export const SYSMETA_SLO_SIZE = 'x-object-sysmeta-slo-size';

export interface SloOptions {
  validVersions: readonly string[];
  maxManifestSegments?: number;
  maxManifestSize?: number;
}

/** What /info announces under `slo`. */
export function sloInfo(options: SloOptions): Record<string, unknown> {
  return {
    max_manifest_segments: options.maxManifestSegments ?? DEFAULT_MAX_MANIFEST_SEGMENTS,
    max_manifest_size: options.maxManifestSize ?? DEFAULT_MAX_MANIFEST_SIZE,
    yield_frequency: 10,
    min_segment_size: 1,
    allow_async_delete: false,
  };
}

/** One entry of a stored manifest (Swift's format). */
export interface StoredSegment {
  name?: string;
  hash?: string;
  bytes?: number;
  content_type?: string;
  last_modified?: string;
  range?: string;
  sub_slo?: boolean;
  data?: string;
}

export function isTrue(value: string | undefined): boolean {
  return ['true', '1', 'yes', 'on', 't', 'y'].includes((value ?? '').trim().toLowerCase());
}

export function isSloResponse(headers: Readonly<Record<string, string>>): boolean {
  return isTrue(headers['x-static-large-object']);
}

export function responseHeaders(ctx: Context): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(ctx.response.headers)) {
    if (value === undefined) continue;
    out[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  return out;
}

function queryParam(ctx: Context, name: string): string | undefined {
  const value = ctx.query[name];
  return Array.isArray(value) ? value[0] : value;
}

export function objectPath(version: string, account: string, name: string): string {
  return `/${version}/${quoteName(account)}/${quoteName(name.replace(/^\/+/, ''))}`;
}

function safeParsePath(ctx: Context, validVersions: readonly string[]): SwiftPath | undefined {
  try {
    return parseSwiftPath(ctx.path, validVersions);
  } catch {
    return undefined;
  }
}

/** Runs `work` over `items` with at most `limit` at once, keeping the order of results. */
export async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next;
      next += 1;
      results[index] = await work(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, () => worker()));
  return results;
}

export function sloMiddleware(options: SloOptions): Middleware {
  const maxSegments = options.maxManifestSegments ?? DEFAULT_MAX_MANIFEST_SEGMENTS;
  const maxSize = options.maxManifestSize ?? DEFAULT_MAX_MANIFEST_SIZE;
  return async (ctx: Context, next: Next): Promise<void> => {
    const path = safeParsePath(ctx, options.validVersions);
    if (path?.container !== undefined && path.object === undefined && ctx.method === 'GET') {
      await next();
      await rewriteListing(ctx);
      return;
    }
    if (path?.object === undefined || path.container === undefined) {
      await next();
      return;
    }
    const manifestParam = queryParam(ctx, 'multipart-manifest');
    if (ctx.method === 'PUT' && manifestParam === 'put') {
      await putManifest(ctx, next, path, maxSegments, maxSize);
      return;
    }
    if (ctx.method === 'DELETE' && manifestParam === 'delete') {
      await deleteManifest(ctx, path, maxSize);
      return;
    }
    if (ctx.method === 'GET' || ctx.method === 'HEAD') {
      await getOrHead(ctx, next, path, manifestParam, maxSize);
      return;
    }
    if (ctx.get('x-static-large-object') !== '' && swiftState(ctx).depth === 0) {
      throw new HttpError(
        400,
        'X-Static-Large-Object is a reserved header. To create a static large object add query param multipart-manifest=put.',
        { code: 'ReservedHeader' },
      );
    }
    await next();
  };
}

// ---------------------------------------------------------------------------------------------
// Container listings

const LISTING_BYTES_MAX = 16 * 1024 * 1024;

/** `<md5>; slo_etag=<etag>[; other=params]` -> the hash without slo_etag, and the SLO ETag. */
function splitListedHash(hash: string): { hash: string; sloEtag: string | undefined } {
  const [etag = '', ...params] = hash.split(';').map((part) => part.trim());
  let sloEtag: string | undefined;
  const rest: string[] = [];
  for (const param of params) {
    const [key = '', value = ''] = param.split('=', 2);
    if (key.trim() === 'slo_etag') sloEtag = value.trim();
    else rest.push(`; ${key.trim()}=${value.trim()}`);
  }
  return { hash: etag + rest.join(''), sloEtag };
}

/**
 * Listings show an SLO's ETag apart (Swift's handle_container_listing): in JSON a row whose hash
 * is `<md5>; slo_etag=<etag>[; other=params]` gets `slo_etag: "<etag>"` and keeps the rest as
 * hash (written as Swift's json.dumps writes it); XML, which has no field for it, shows the hash
 * without it, as Swift's listing_formats renders the JSON.
 */
async function rewriteListing(ctx: Context): Promise<void> {
  const type = ctx.response.headers['content-type'];
  const isJson = typeof type === 'string' && type.startsWith('application/json');
  const isXml = typeof type === 'string' && type.startsWith('application/xml');
  if (ctx.status !== 200 || typeof type !== 'string' || !(isJson || isXml)) return;
  const length = Number(ctx.response.headers['content-length'] ?? NaN);
  if (Number.isFinite(length) && length > LISTING_BYTES_MAX) return;
  const body = await bufferBody(ctx.body as SubResponse['body'], LISTING_BYTES_MAX);
  if (isXml) {
    const text = body.toString('utf8');
    const rewritten = text.replace(/<hash>([^<]*slo_etag=[^<]*)<\/hash>/g, (_, hash: string) => {
      return `<hash>${splitListedHash(hash).hash}</hash>`;
    });
    ctx.body = rewritten === text ? body : Buffer.from(rewritten);
    ctx.type = type;
    return;
  }
  let rows: unknown;
  try {
    rows = JSON.parse(body.toString('utf8'));
  } catch {
    rows = undefined;
  }
  if (!Array.isArray(rows)) {
    ctx.body = body;
    return;
  }
  let changed = false;
  for (const row of rows as { hash?: unknown; slo_etag?: string }[]) {
    if (typeof row.hash !== 'string' || !row.hash.includes('slo_etag=')) continue;
    const split = splitListedHash(row.hash);
    row.hash = split.hash;
    if (split.sloEtag !== undefined) row.slo_etag = `"${split.sloEtag}"`;
    changed = true;
  }
  ctx.body = changed ? Buffer.from(pythonJson(rows)) : body;
  ctx.type = type;
}

// ---------------------------------------------------------------------------------------------
// GET / HEAD

async function getOrHead(
  ctx: Context,
  next: Next,
  path: SwiftPath,
  manifestParam: string | undefined,
  maxSize: number,
): Promise<void> {
  await next();
  const headers = responseHeaders(ctx);
  if (!isSloResponse(headers)) return;
  if (manifestParam === 'get') {
    if (ctx.status !== 200) return;
    if (ctx.method === 'GET' && queryParam(ctx, 'format') === 'raw') {
      // As Swift: the manifest's own Content-Type, the PUT format with sorted keys.
      const stored = parseStoredManifest(await bufferBody(ctx.body as SubResponse['body'], maxSize));
      const raw = Buffer.from(pythonJson(stored.map(toPutFormat), { sortKeys: true }));
      ctx.body = raw;
      ctx.set('content-type', stripSwiftBytes(headers['content-type'] ?? 'application/octet-stream'));
      ctx.set('etag', createHash('md5').update(raw).digest('hex'));
    } else {
      ctx.set('content-type', 'application/json; charset=utf-8');
    }
    return;
  }
  if (ctx.status < 200 || (ctx.status >= 300 && ![304, 412, 416].includes(ctx.status))) return;
  const account = path.account;
  let manifestHeaders = headers;
  let pieces: Piece[];
  const sloSize = Number(headers[SYSMETA_SLO_SIZE]);
  const knownEtag = headers[SYSMETA_SLO_ETAG];
  if (ctx.method === 'HEAD' && knownEtag !== undefined && Number.isSafeInteger(sloSize)) {
    // Only the length matters for a HEAD: one stand-in piece, never fetched.
    pieces = sloSize > 0 ? [{ path: '', start: 0, end: sloSize - 1 }] : [];
  } else {
    let manifestBody: Buffer;
    if (ctx.method === 'GET' && ctx.status === 200) {
      manifestBody = await bufferBody(ctx.body as SubResponse['body'], maxSize);
    } else {
      // The Range or conditionals applied to the manifest itself: read it whole.
      const body: unknown = ctx.body;
      if (body instanceof Readable) body.destroy();
      const fetched = await swiftState(ctx).subrequest({
        method: 'GET',
        path: `${objectPath(path.version, account, `${path.container}/${path.object}`)}?multipart-manifest=get`,
        source: 'SLO',
      });
      if (fetched.status !== 200 || !isSloResponse(fetched.headers)) {
        discardBody(fetched);
        throw new HttpError(fetched.status >= 400 ? fetched.status : 503);
      }
      manifestHeaders = fetched.headers;
      manifestBody = await fetched.buffer(maxSize);
    }
    const stored = parseStoredManifest(manifestBody);
    pieces = await expandManifest(ctx, path.version, account, stored, 0);
  }
  const etag = manifestHeaders[SYSMETA_SLO_ETAG] ?? (await computeEtagFromHeaders(ctx, path, maxSize));
  const keep: Record<string, string> = {};
  for (const [name, value] of Object.entries(manifestHeaders)) {
    if (['content-length', 'content-range', 'etag', 'content-type', 'accept-ranges', 'last-modified'].includes(name))
      continue;
    keep[name] = value;
  }
  // The manifest's own ETag, beside the SLO's (a client can tell which manifest it read).
  const manifestEtag = manifestHeaders.etag?.replace(/^"(.*)"$/, '$1');
  if (manifestEtag !== undefined) keep['x-manifest-etag'] = manifestEtag;
  await respondLargeObject(ctx, {
    pieces,
    etag,
    lastModified: manifestHeaders['last-modified'],
    // Not the refetched manifest's: this middleware answers ?multipart-manifest=get as JSON.
    contentType: stripSwiftBytes(
      headers['content-type'] ?? manifestHeaders['content-type'] ?? 'application/octet-stream',
    ),
    headers: keep,
    source: 'SLO',
  });
}

function stripSwiftBytes(contentType: string): string {
  return contentType.replace(/;\s*swift_bytes=\d+/, '');
}

/** Manifests written without the sysmeta ETag (old Swift): the md5 of the segment ETags. */
async function computeEtagFromHeaders(ctx: Context, path: SwiftPath, maxSize: number): Promise<string> {
  const fetched = await swiftState(ctx).subrequest({
    method: 'GET',
    path: `${objectPath(path.version, path.account, `${path.container}/${path.object}`)}?multipart-manifest=get`,
    source: 'SLO',
  });
  const stored = parseStoredManifest(await fetched.buffer(maxSize));
  return sloEtagOf(stored);
}

export function sloEtagOf(stored: readonly StoredSegment[]): string {
  const md5 = createHash('md5');
  for (const segment of stored) {
    if (segment.data !== undefined) {
      md5.update(createHash('md5').update(Buffer.from(segment.data, 'base64')).digest('hex'));
    } else if (segment.range !== undefined && segment.range !== '') {
      md5.update(`${segment.hash ?? ''}:${segment.range};`);
    } else {
      md5.update(segment.hash ?? '');
    }
  }
  return md5.digest('hex');
}

export function parseStoredManifest(body: Buffer): StoredSegment[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw new HttpError(500, 'Unable to load SLO manifest', { code: 'BadManifest', cause: error });
  }
  if (!Array.isArray(parsed)) throw new HttpError(500, 'Unable to load SLO manifest', { code: 'BadManifest' });
  return parsed as StoredSegment[];
}

/** A stored entry in the PUT format (Swift's convert_segment_listing: renamed, the rest kept). */
function toPutFormat(segment: StoredSegment): Record<string, unknown> {
  if (segment.data !== undefined) return { ...segment };
  const { name, bytes, hash, content_type: _type, last_modified: _modified, sub_slo: _subSlo, ...rest } = segment;
  return { ...rest, path: name ?? null, size_bytes: bytes ?? null, etag: hash ?? null };
}

/** The pieces a stored manifest stands for, nested manifests expanded (bounded depth and count). */
async function expandManifest(
  ctx: Context,
  version: string,
  account: string,
  stored: readonly StoredSegment[],
  depth: number,
): Promise<Piece[]> {
  if (depth >= MAX_RECURSION_DEPTH) {
    throw new HttpError(409, `Max recursion depth exceeded on GET`, { code: 'SloRecursion' });
  }
  const pieces: Piece[] = [];
  for (const segment of stored) {
    if (pieces.length > PIECES_MAX) throw new HttpError(409, 'Too many segments', { code: 'SloTooManySegments' });
    if (segment.data !== undefined) {
      const data = Buffer.from(segment.data, 'base64');
      if (data.length > 0) pieces.push({ data, start: 0, end: data.length - 1 });
      continue;
    }
    const name = segment.name ?? '';
    const bytes = Number(segment.bytes ?? 0);
    const range =
      segment.range !== undefined && segment.range !== ''
        ? parseRanges(`bytes=${segment.range}`, bytes)?.[0]
        : undefined;
    const path = objectPath(version, account, name);
    if (segment.sub_slo === true) {
      const fetched = await swiftState(ctx).subrequest({
        method: 'GET',
        path: `${path}?multipart-manifest=get`,
        source: 'SLO',
      });
      if (fetched.status !== 200 || !isSloResponse(fetched.headers)) {
        discardBody(fetched);
        throw new HttpError(409, `Unable to load SLO manifest or segment ${name}`, { code: 'SloSubManifest' });
      }
      const inner = await expandManifest(
        ctx,
        version,
        account,
        parseStoredManifest(await fetched.buffer(DEFAULT_MAX_MANIFEST_SIZE)),
        depth + 1,
      );
      const innerTotal = inner.reduce((sum, piece) => sum + piece.end - piece.start + 1, 0);
      pieces.push(
        ...(range === undefined ? inner : slicePieces(inner, range.start, Math.min(range.end, innerTotal - 1))),
      );
      continue;
    }
    const start = range?.start ?? 0;
    const end = range?.end ?? bytes - 1;
    if (end >= start) pieces.push({ path, start, end, etag: segment.hash });
  }
  return pieces;
}

// ---------------------------------------------------------------------------------------------
// PUT ?multipart-manifest=put

interface InputSegment {
  path?: string;
  etag?: string | null;
  size_bytes?: number | null;
  range?: string;
  data?: string;
}

const PATH_KEYS = new Set(['path', 'etag', 'size_bytes', 'range']);

function strictBase64(value: unknown): Buffer | undefined {
  if (typeof value !== 'string') return undefined;
  const stripped = value.replace(/\s/g, '');
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(stripped)) return undefined;
  return Buffer.from(stripped.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}

/** Swift's parse_and_validate_input: 400 with one line per problem. */
function parseInput(body: Buffer, requestPath: string, version: string, account: string): InputSegment[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw new HttpError(400, 'Manifest must be valid JSON.\n', { code: 'BadManifest' });
  }
  if (!Array.isArray(parsed)) throw new HttpError(400, 'Manifest must be a list.\n', { code: 'BadManifest' });
  const errors: string[] = [];
  const segments: InputSegment[] = [];
  parsed.forEach((item: unknown, index) => {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      errors.push(`Index ${index}: not a JSON object`);
      return;
    }
    const record = item as Record<string, unknown>;
    if ('path' in record) {
      const extraneous = Object.keys(record)
        .filter((key) => !PATH_KEYS.has(key))
        .sort();
      if (extraneous.length > 0) {
        errors.push(`Index ${index}: extraneous keys ${extraneous.map((key) => JSON.stringify(key)).join(', ')}`);
        return;
      }
      if (typeof record.path !== 'string') {
        errors.push(`Index ${index}: "path" must be a string`);
        return;
      }
      if (!(record.etag === undefined || record.etag === null || typeof record.etag === 'string')) {
        errors.push(`Index ${index}: "etag" must be a string or null (if provided)`);
        return;
      }
      if (!record.path.replace(/^\/+|\/+$/g, '').includes('/')) {
        errors.push(`Index ${index}: path does not refer to an object. Path must be of the form /container/object.`);
        return;
      }
      let size: number | undefined;
      if (record.size_bytes !== undefined && record.size_bytes !== null) {
        const raw = record.size_bytes;
        size =
          typeof raw === 'number'
            ? Math.trunc(raw)
            : typeof raw === 'string' && /^\s*-?\d+\s*$/.test(raw)
              ? Number(raw)
              : NaN;
        if (!Number.isSafeInteger(size)) {
          errors.push(`Index ${index}: invalid size_bytes`);
          return;
        }
        if (size < 1 && index !== parsed.length - 1) {
          errors.push(`Index ${index}: too small; each segment must be at least 1 byte.`);
          return;
        }
      }
      if (objectPath(version, account, record.path) === requestPath) {
        errors.push(`Index ${index}: manifest must not include itself as a segment`);
        return;
      }
      let range: string | undefined;
      if (record.range !== undefined && record.range !== null && record.range !== '') {
        if (
          typeof record.range !== 'string' ||
          parseRanges(`bytes=${record.range}`, Number.MAX_SAFE_INTEGER) === undefined
        ) {
          errors.push(`Index ${index}: invalid range`);
          return;
        }
        if (record.range.includes(',')) {
          errors.push(`Index ${index}: multiple ranges (only one allowed)`);
          return;
        }
        if (size !== undefined && parseRanges(`bytes=${record.range}`, size)?.length !== 1) {
          errors.push(`Index ${index}: unsatisfiable range`);
          return;
        }
        range = record.range;
      }
      segments.push({ path: record.path, etag: record.etag, size_bytes: size, range });
    } else if ('data' in record) {
      const extraneous = Object.keys(record)
        .filter((key) => key !== 'data')
        .sort();
      if (extraneous.length > 0) {
        errors.push(`Index ${index}: extraneous keys ${extraneous.map((key) => JSON.stringify(key)).join(', ')}`);
        return;
      }
      const data = strictBase64(record.data);
      if (data === undefined) {
        errors.push(`Index ${index}: data must be valid base64`);
        return;
      }
      if (data.length < 1) {
        errors.push(`Index ${index}: too small; each segment must be at least 1 byte.`);
        return;
      }
      segments.push({ data: data.toString('base64') });
    } else {
      errors.push(`Index ${index}: expected keys to include one of 'path' or 'data'`);
    }
  });
  if (segments.length > 0 && errors.length === 0 && segments.every((segment) => segment.data !== undefined)) {
    errors.push('Inline data segments require at least one object-backed segment.');
  }
  if (errors.length > 0) {
    throw new HttpError(400, errors.map((line) => `${line}\n`).join(''), { code: 'BadManifest' });
  }
  return segments;
}

/** `%Y-%m-%dT%H:%M:%S.%f` of an HTTP date, as Swift stores segment dates. */
function manifestDate(httpDate: string | undefined): string {
  const ms = httpDate === undefined ? Date.now() : Date.parse(httpDate);
  const iso = new Date(Number.isNaN(ms) ? Date.now() : ms).toISOString();
  return `${iso.slice(0, 19)}.${iso.slice(20, 23)}000`;
}

async function readRequestBody(ctx: Context, maxBytes: number): Promise<Buffer> {
  const body = swiftState(ctx).body;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer | string>) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    size += buffer.length;
    if (size > maxBytes) {
      throw new HttpError(413, `Manifest File > ${maxBytes} bytes`, { code: 'ManifestTooLarge' });
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

async function putManifest(
  ctx: Context,
  next: Next,
  path: SwiftPath,
  maxSegments: number,
  maxSize: number,
): Promise<void> {
  if (ctx.get('x-copy-from') !== '') {
    throw new HttpError(405, 'Multipart Manifest PUTs cannot be COPY requests', { code: 'MethodNotAllowed' });
  }
  const contentLength = ctx.get('content-length');
  if (contentLength === '') {
    if (ctx.get('transfer-encoding').toLowerCase() !== 'chunked')
      throw new HttpError(411, undefined, { code: 'LengthRequired' });
  } else if (Number(contentLength) > maxSize) {
    throw new HttpError(413, `Manifest File > ${maxSize} bytes`, { code: 'ManifestTooLarge' });
  }
  const { version, account } = path;
  const requestPath = objectPath(version, account, `${path.container ?? ''}/${path.object ?? ''}`);
  const input = parseInput(await readRequestBody(ctx, maxSize), requestPath, version, account);
  const objectBacked = input.filter((segment) => segment.path !== undefined);
  if (objectBacked.length > maxSegments) {
    throw new HttpError(413, `Number of object-backed segments must be <= ${maxSegments}`, {
      code: 'TooManySegments',
    });
  }
  const format = bulkFormat(ctx);
  const uniquePaths = [...new Set(objectBacked.map((segment) => segment.path ?? ''))];
  const heads = await mapLimited(uniquePaths, HEAD_CONCURRENCY, async (name) => {
    const response = await swiftState(ctx).subrequest({
      method: 'HEAD',
      path: objectPath(version, account, name),
      source: 'SLO',
    });
    discardBody(response);
    return response;
  });
  const headOf = new Map(uniquePaths.map((name, index) => [name, heads[index]]));
  const problems: [string, string][] = [];
  const stored: StoredSegment[] = [];
  let totalSize = 0;
  input.forEach((segment, index) => {
    if (segment.data !== undefined) {
      stored.push({ data: segment.data });
      totalSize += Buffer.from(segment.data, 'base64').length;
      return;
    }
    const name = segment.path ?? '';
    const quoted = quoteName(name);
    const head = headOf.get(name);
    if (head === undefined || head.status < 200 || head.status >= 300) {
      problems.push([quoted, statusLine(head?.status ?? 503)]);
      return;
    }
    const length = Number(head.headers['content-length'] ?? '0');
    let segmentLength = length;
    let range = segment.range;
    if (range !== undefined) {
      const ranges = parseRanges(`bytes=${range}`, length) ?? [];
      const first = ranges[0];
      if (first === undefined) {
        problems.push([quoted, 'Unsatisfiable Range']);
      } else if (first.start === 0 && first.end === length - 1) {
        range = undefined;
      } else {
        range = `${first.start}-${first.end}`;
        segmentLength = first.end - first.start + 1;
      }
    }
    if (segmentLength < 1 && index !== input.length - 1) {
      problems.push([quoted, 'Too small; each segment must be at least 1 byte.']);
    }
    if (segment.size_bytes !== undefined && segment.size_bytes !== null && segment.size_bytes !== length) {
      problems.push([quoted, 'Size Mismatch']);
    }
    const etag = (head.headers.etag ?? '').replace(/^"(.*)"$/, '$1');
    if (segment.etag !== undefined && segment.etag !== null && segment.etag !== etag) {
      problems.push([quoted, 'Etag Mismatch']);
    }
    const entry: StoredSegment = {
      name: `/${name.replace(/^\/+/, '')}`,
      bytes: length,
      hash: etag,
      content_type: head.headers['content-type'] ?? 'application/octet-stream',
      last_modified: manifestDate(head.headers['last-modified']),
    };
    if (range !== undefined) entry.range = range;
    if (isSloResponse(head.headers)) entry.sub_slo = true;
    stored.push(entry);
    totalSize += segmentLength;
  });
  if (problems.length > 0) {
    ctx.status = 400;
    ctx.body = bulkResponseBody(format, {}, problems, 'upload');
    ctx.type = format;
    return;
  }
  const sloEtag = sloEtagOf(stored);
  const clientEtag = ctx.get('etag').replace(/^"(.*)"$/, '$1');
  if (clientEtag !== '' && clientEtag !== sloEtag) throw new HttpError(422, undefined, { code: 'UnprocessableEntity' });
  // Swift's bytes exactly: the manifest's ETag (listings, X-Manifest-Etag) is their md5.
  const json = Buffer.from(pythonJson(stored));
  const manifestEtag = createHash('md5').update(json).digest('hex');
  const headers = ctx.req.headers;
  headers['content-length'] = String(json.length);
  delete headers['transfer-encoding'];
  headers.etag = manifestEtag;
  headers[SYSMETA_SLO_ETAG] = sloEtag;
  headers[SYSMETA_SLO_SIZE] = String(totalSize);
  headers['x-static-large-object'] = 'True';
  // Container listings show the whole object's size and both ETags (Swift's override headers).
  const override = `${manifestEtag}; slo_etag=${sloEtag}`;
  headers['x-object-sysmeta-container-update-override-etag'] = override;
  headers['x-object-sysmeta-container-update-override-size'] = String(totalSize);
  headers['x-backend-container-update-override-etag'] = override;
  headers['x-backend-container-update-override-size'] = String(totalSize);
  swiftState(ctx).body = Readable.from([json]);
  await next();
  if (ctx.status >= 200 && ctx.status < 300) ctx.set('etag', `"${sloEtag}"`);
}

// ---------------------------------------------------------------------------------------------
// DELETE ?multipart-manifest=delete

/** The segment names to delete for a manifest (nested manifests' segments first, then them). */
async function segmentsToDelete(
  ctx: Context,
  version: string,
  account: string,
  name: string,
  maxSize: number,
  depth: number,
): Promise<{ names: string[]; error?: [string, string]; notFound?: boolean }> {
  const response = await swiftState(ctx).subrequest({
    method: 'GET',
    path: `${objectPath(version, account, name)}?multipart-manifest=get`,
    source: 'SLO',
  });
  if (response.status === 404) {
    discardBody(response);
    return { names: [], notFound: true };
  }
  if (response.status < 200 || response.status >= 300) {
    discardBody(response);
    return { names: [], error: [quoteName(`/${name.replace(/^\/+/, '')}`), statusLine(response.status)] };
  }
  if (!isSloResponse(response.headers)) {
    discardBody(response);
    return { names: [], error: [quoteName(`/${name.replace(/^\/+/, '')}`), 'Not an SLO manifest'] };
  }
  const stored = parseStoredManifest(await response.buffer(maxSize));
  const names: string[] = [];
  for (const segment of stored) {
    if (segment.data !== undefined || segment.name === undefined) continue;
    if (segment.sub_slo === true && depth < MAX_RECURSION_DEPTH) {
      const inner = await segmentsToDelete(ctx, version, account, segment.name, maxSize, depth + 1);
      names.push(...inner.names);
      continue;
    }
    names.push(segment.name);
  }
  names.push(`/${name.replace(/^\/+/, '')}`);
  return { names };
}

async function deleteManifest(ctx: Context, path: SwiftPath, maxSize: number): Promise<void> {
  const format = bulkFormat(ctx);
  const fields: Record<string, string | number> = {
    'Response Status': '200 OK',
    'Response Body': '',
    'Number Deleted': 0,
    'Number Not Found': 0,
  };
  const errors: [string, string][] = [];
  const manifestName = `${path.container ?? ''}/${path.object ?? ''}`;
  const found = await segmentsToDelete(ctx, path.version, path.account, manifestName, maxSize, 0);
  let errorStatus = 400;
  if (found.notFound === true) fields['Number Not Found'] = 1;
  if (found.error !== undefined) errors.push(found.error);
  const results = await mapLimited(found.names, DELETE_CONCURRENCY, async (name) => {
    const response = await swiftState(ctx).subrequest({
      method: 'DELETE',
      path: objectPath(path.version, path.account, name),
      source: 'SLO',
    });
    discardBody(response);
    return { name, status: response.status };
  });
  for (const { name, status } of results) {
    if (status >= 200 && status < 300) fields['Number Deleted'] = Number(fields['Number Deleted']) + 1;
    else if (status === 404) fields['Number Not Found'] = Number(fields['Number Not Found']) + 1;
    else {
      if (status === 401) errorStatus = 401;
      errors.push([quoteName(name), statusLine(status)]);
    }
  }
  if (errors.length > 0) fields['Response Status'] = statusLine(errorStatus);
  else if (fields['Number Deleted'] === 0 && fields['Number Not Found'] === 0) {
    fields['Response Status'] = statusLine(400);
    fields['Response Body'] = 'Invalid bulk delete.';
  }
  ctx.status = 200;
  ctx.body = bulkResponseBody(format, fields, errors, 'delete');
  ctx.type = format;
}
