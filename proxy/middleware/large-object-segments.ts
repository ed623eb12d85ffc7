/**
 * What SLO and DLO share: a large object is a list of pieces (byte ranges of segment objects, or
 * inline data), served as one body. This module answers a GET/HEAD of such an object the way
 * Swift's SegmentedIterable and swob do: conditional headers against the large object's own ETag
 * and Last-Modified, one Range (206) or several (multipart/byteranges), 416 when none fits, and
 * a body that fetches each segment in order through the pipeline (a subrequest with the client's
 * identity), checking each segment's ETag and length. The first segment is opened before the
 * status is sent so that a missing segment is a 409, as Swift answers; later failures can only
 * cut the connection.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Context } from 'koa';
import { HttpError } from '../../common/errors.js';
import { swiftState, type SubResponse } from '../state.js';

export interface Piece {
  /** `/v1/<account>/<container>/<object>` %-encoded (absent for inline data). */
  path?: string;
  /** Inline data (SLO `data` segments). */
  data?: Buffer;
  /** First and last byte (inclusive) of the segment object that this piece covers. */
  start: number;
  end: number;
  /** The segment object's ETag, checked against every response (SLO). */
  etag?: string;
}

export interface ByteRange {
  start: number;
  end: number;
}

/** Swift ignores a Range header with more ranges than this. */
const RANGES_MAX = 50;
/** A large object never has more pieces than this (SLO: 1000 per manifest, 10 levels; DLO: listing pages). */
export const PIECES_MAX = 100_000;

export function pieceLength(piece: Piece): number {
  return piece.end - piece.start + 1;
}

/**
 * The ranges of a `Range` header satisfiable within `length` (swob's ranges_for_length):
 * undefined when the header is absent or malformed (ignored), [] when none is satisfiable.
 */
export function parseRanges(header: string, length: number): ByteRange[] | undefined {
  const match = /^\s*bytes\s*=\s*(.+)$/i.exec(header);
  if (match === null) return undefined;
  const specs = (match[1] ?? '').split(',').map((spec) => spec.trim());
  if (specs.length > RANGES_MAX) return undefined;
  const ranges: ByteRange[] = [];
  for (const spec of specs) {
    const parts = /^(\d*)-(\d*)$/.exec(spec);
    if (parts === null) return undefined;
    const [, first = '', last = ''] = parts;
    if (first === '' && last === '') return undefined;
    if (first === '') {
      const suffix = Number(last);
      if (suffix > 0 && length > 0) ranges.push({ start: Math.max(0, length - suffix), end: length - 1 });
      continue;
    }
    const start = Number(first);
    const end = last === '' ? length - 1 : Number(last);
    if (last !== '' && end < start) return undefined;
    if (start >= length) continue;
    ranges.push({ start, end: Math.min(end, length - 1) });
  }
  return ranges;
}

/** The pieces covering bytes [start, end] of the concatenation, cut at the edges. */
export function slicePieces(pieces: readonly Piece[], start: number, end: number): Piece[] {
  const out: Piece[] = [];
  let offset = 0;
  for (const piece of pieces) {
    const length = pieceLength(piece);
    const pieceFirst = offset;
    const pieceLast = offset + length - 1;
    offset += length;
    if (pieceLast < start) continue;
    if (pieceFirst > end) break;
    const cutStart = Math.max(start, pieceFirst) - pieceFirst;
    const cutEnd = Math.min(end, pieceLast) - pieceFirst;
    out.push({ ...piece, start: piece.start + cutStart, end: piece.start + cutEnd });
  }
  return out;
}

export class SegmentError extends Error {
  readonly code = 'SegmentError';
}

/** Releases a subresponse body we will not read (its backend connection goes back to the pool). */
export function discardBody(response: SubResponse): void {
  if (response.body instanceof Readable) response.body.destroy();
}

function unquote(etag: string | undefined): string {
  return (etag ?? '').trim().replace(/^"(.*)"$/, '$1');
}

async function openPiece(ctx: Context, piece: Piece, source: string): Promise<SubResponse | Buffer> {
  if (piece.data !== undefined) return piece.data.subarray(piece.start, piece.end + 1);
  const path = piece.path ?? '';
  const response = await swiftState(ctx).subrequest({
    method: 'GET',
    path: `${path}?multipart-manifest=get`,
    headers: { range: `bytes=${piece.start}-${piece.end}` },
    source,
  });
  const ok = response.status === 200 || response.status === 206;
  const etagOk = piece.etag === undefined || piece.etag === '' || unquote(response.headers.etag) === piece.etag;
  if (!ok || !etagOk) {
    discardBody(response);
    const reason = ok ? 'etag mismatch' : `status ${response.status}`;
    throw new SegmentError(`While processing manifest, got ${reason} fetching ${path}`);
  }
  return response;
}

/** Yields a piece's bytes (exactly its length: a 200 for the whole object is cut to the range). */
async function* pieceChunks(opened: SubResponse | Buffer, piece: Piece): AsyncGenerator<Buffer> {
  if (Buffer.isBuffer(opened)) {
    yield opened;
    return;
  }
  const wanted = pieceLength(piece);
  let skip = opened.status === 200 ? piece.start : 0;
  let sent = 0;
  const body = opened.body;
  const source: AsyncIterable<Buffer | string> =
    body instanceof Readable
      ? body
      : Readable.from(body === null ? [] : [Buffer.isBuffer(body) ? body : Buffer.from(body)]);
  try {
    for await (const raw of source) {
      let chunk = typeof raw === 'string' ? Buffer.from(raw) : raw;
      if (skip > 0) {
        const dropped = Math.min(skip, chunk.length);
        chunk = chunk.subarray(dropped);
        skip -= dropped;
      }
      if (sent + chunk.length > wanted) chunk = chunk.subarray(0, wanted - sent);
      if (chunk.length > 0) {
        sent += chunk.length;
        yield chunk;
      }
      if (sent >= wanted) break;
    }
  } finally {
    if (body instanceof Readable) body.destroy();
  }
  if (sent < wanted) throw new SegmentError(`segment ${piece.path ?? '(data)'} ended after ${sent} of ${wanted} bytes`);
}

/** The body: each piece in order; `first` is the already-opened first piece. */
async function* piecesBody(
  ctx: Context,
  pieces: readonly Piece[],
  source: string,
  first: SubResponse | Buffer | undefined,
): AsyncGenerator<Buffer> {
  for (const [index, piece] of pieces.entries()) {
    const opened = index === 0 && first !== undefined ? first : await openPiece(ctx, piece, source);
    yield* pieceChunks(opened, piece);
  }
}

export interface LargeObjectResponse {
  pieces: readonly Piece[];
  /** Unquoted; sent quoted, as Swift does for large objects. */
  etag: string;
  lastModified?: string;
  contentType: string;
  /** The other headers to send (the manifest's metadata), lower-case names. */
  headers: Record<string, string>;
  /** Swift source name for the subrequests' logs (`SLO`, `DLO`). */
  source: string;
}

function etagListMatches(header: string, etag: string): boolean {
  return header
    .split(',')
    .map((tag) =>
      tag
        .trim()
        .replace(/^W\//, '')
        .replace(/^"(.*)"$/, '$1'),
    )
    .some((tag) => tag === '*' || tag === etag);
}

function httpDateSeconds(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : Math.floor(ms / 1000);
}

/** Swift's conditional response rules, against the large object's ETag and Last-Modified. */
function conditionalStatus(ctx: Context, etag: string, lastModified: string | undefined): 200 | 304 | 412 {
  const ifMatch = ctx.get('if-match');
  const ifNoneMatch = ctx.get('if-none-match');
  const modified = httpDateSeconds(lastModified);
  if (ifMatch !== '' && !etagListMatches(ifMatch, etag)) return 412;
  if (ifNoneMatch !== '') {
    if (etagListMatches(ifNoneMatch, etag)) return 304;
  } else {
    const since = httpDateSeconds(ctx.get('if-modified-since'));
    if (since !== undefined && modified !== undefined && modified <= since) return 304;
  }
  if (ifMatch === '') {
    const since = httpDateSeconds(ctx.get('if-unmodified-since'));
    if (since !== undefined && modified !== undefined && modified > since) return 412;
  }
  return 200;
}

/** Clears whatever the inner pipeline put in the response before we write the large object's. */
export function resetResponse(ctx: Context): void {
  const body: unknown = ctx.body;
  if (body instanceof Readable) body.destroy();
  for (const name of Object.keys(ctx.response.headers)) ctx.remove(name);
}

/**
 * Answers the client's GET or HEAD of a large object. Throws HttpError for 304/412/416/409 so the
 * error stage renders Swift's bodies.
 */
export async function respondLargeObject(ctx: Context, object: LargeObjectResponse): Promise<void> {
  resetResponse(ctx);
  const total = object.pieces.reduce((sum, piece) => sum + pieceLength(piece), 0);
  const quotedEtag = `"${object.etag}"`;
  const common: Record<string, string> = { ...object.headers, etag: quotedEtag, 'accept-ranges': 'bytes' };
  if (object.lastModified !== undefined) common['last-modified'] = object.lastModified;
  const conditional = conditionalStatus(ctx, object.etag, object.lastModified);
  if (conditional === 304) throw new HttpError(304, undefined, { code: 'NotModified', headers: common });
  if (conditional === 412) throw new HttpError(412, undefined, { code: 'PreconditionFailed', headers: common });
  let ranges = ctx.get('range') === '' ? undefined : parseRanges(ctx.get('range'), total);
  // If-Range: the range applies only to the same version (ETag or date).
  const ifRange = ctx.get('if-range');
  if (ranges !== undefined && ifRange !== '') {
    const sameVersion = ifRange.startsWith('"')
      ? ifRange.replace(/"/g, '') === object.etag
      : ifRange === object.lastModified;
    if (!sameVersion) ranges = undefined;
  }
  if (ranges !== undefined && ranges.length === 0) {
    throw new HttpError(416, undefined, {
      code: 'RangeNotSatisfiable',
      headers: { ...common, 'content-range': `bytes */${total}` },
    });
  }
  for (const [name, value] of Object.entries(common)) ctx.set(name, value);
  ctx.set('content-type', object.contentType);
  if (ranges === undefined || ranges.length === 1) {
    const range = ranges?.[0] ?? { start: 0, end: total - 1 };
    const pieces = total === 0 ? [] : slicePieces(object.pieces, range.start, range.end);
    const length = total === 0 ? 0 : range.end - range.start + 1;
    if (ranges !== undefined) ctx.set('content-range', `bytes ${range.start}-${range.end}/${total}`);
    await sendPieces(ctx, ranges === undefined ? 200 : 206, pieces, length, object.source);
    return;
  }
  // Several ranges: multipart/byteranges with each part's own Content-Range.
  const boundary = randomBytes(16).toString('hex');
  const partHead = (range: ByteRange): Buffer =>
    Buffer.from(
      `--${boundary}\r\nContent-Type: ${object.contentType}\r\nContent-Range: bytes ${range.start}-${range.end}/${total}\r\n\r\n`,
    );
  const parts: Piece[] = [];
  let length = 0;
  for (const [index, range] of ranges.entries()) {
    const head = partHead(range);
    const lead = index === 0 ? head : Buffer.concat([Buffer.from('\r\n'), head]);
    parts.push({ data: lead, start: 0, end: lead.length - 1 });
    parts.push(...slicePieces(object.pieces, range.start, range.end));
    length += lead.length + range.end - range.start + 1;
  }
  const closing = Buffer.from(`\r\n--${boundary}--`);
  parts.push({ data: closing, start: 0, end: closing.length - 1 });
  length += closing.length;
  ctx.set('content-type', `multipart/byteranges;boundary=${boundary}`);
  await sendPieces(ctx, 206, parts, length, object.source);
}

async function sendPieces(
  ctx: Context,
  status: number,
  pieces: readonly Piece[],
  length: number,
  source: string,
): Promise<void> {
  if (ctx.method === 'HEAD') {
    ctx.status = status;
    ctx.set('content-length', String(length));
    return;
  }
  let first: SubResponse | Buffer | undefined;
  const head = pieces[0];
  if (head !== undefined) {
    try {
      first = await openPiece(ctx, head, source);
    } catch (error) {
      if (error instanceof SegmentError) {
        swiftState(ctx).log.warn({ err: error }, 'large object: first segment unavailable');
        throw new HttpError(409, undefined, { code: 'SegmentUnavailable', cause: error });
      }
      throw error;
    }
  }
  const contentType = ctx.response.get('content-type');
  const body = Readable.from(piecesBody(ctx, pieces, source, first), { objectMode: false });
  body.once('error', (error) => {
    swiftState(ctx).log.warn({ err: error }, 'large object: segment failed mid-body; cutting the connection');
    ctx.res.destroy();
  });
  ctx.status = status;
  ctx.body = body;
  ctx.set('content-type', contentType);
  ctx.length = length;
}
