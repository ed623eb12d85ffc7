/**
 * Server-side copy (Swift's copy middleware), a stage after authentication and before SLO/DLO:
 * - `COPY /v1/a/c/o` with `Destination: <container>/<object>` (and `Destination-Account`)
 *   becomes a PUT of the destination with X-Copy-From.
 * - `PUT` with `X-Copy-From: <container>/<object>` (and `X-Copy-From-Account`) GETs the source as
 *   the client (so read ACLs apply and large objects are flattened), then PUTs its body to the
 *   destination as the client, streaming. Metadata: the source's, overlaid with the request's;
 *   with `X-Fresh-Metadata: true` only the request's. `?multipart-manifest=get` copies a manifest
 *   itself (an SLO manifest is re-PUT with `multipart-manifest=put`, a DLO keeps its
 *   X-Object-Manifest). A source larger than max_file_size (or of unknown length) is 413.
 * The response carries X-Copied-From, X-Copied-From-Account and X-Copied-From-Last-Modified.
 */
import { Readable } from 'node:stream';
import type { Context, Middleware, Next } from 'koa';
import { HttpError } from '../../common/errors.js';
import { decodePathStrict, swiftPathOrUndefined, quoteName, type SwiftPath } from '../request-path.js';
import { swiftState } from '../state.js';
import { discardBody } from './large-object-segments.js';
import { isTrue } from './slo.js';

export interface CopyOptions {
  validVersions: readonly string[];
  maxFileSize: number;
}

/** Source headers that describe the object and go with it unless X-Fresh-Metadata. */
const COPIED_HEADERS = new Set([
  'content-encoding',
  'content-disposition',
  'content-language',
  'cache-control',
  'expires',
  'x-delete-at',
  'x-robots-tag',
]);

function isMetadata(name: string): boolean {
  return (
    name.startsWith('x-object-meta-') ||
    name.startsWith('x-object-sysmeta-') ||
    name.startsWith('x-object-transient-sysmeta-')
  );
}

/** Swift's check_path_header: `<container>/<object>` (leading slash optional), %-decoded. */
function checkPathHeader(value: string, header: string): { container: string; object: string } {
  const decoded = decodePathStrict(value) ?? value;
  const trimmed = decoded.replace(/^\/+/, '');
  const slash = trimmed.indexOf('/');
  if (slash <= 0 || slash === trimmed.length - 1) {
    throw new HttpError(412, `${header} header must be of the form <container name>/<object name>`, {
      code: 'BadCopyPath',
    });
  }
  return { container: trimmed.slice(0, slash), object: trimmed.slice(slash + 1) };
}

function checkAccount(value: string): string {
  const decoded = decodePathStrict(value) ?? value;
  if (decoded === '' || decoded.includes('/')) {
    throw new HttpError(412, `Account name cannot contain slashes`, { code: 'BadAccount' });
  }
  return decoded;
}

export function copyMiddleware(options: CopyOptions): Middleware {
  return async (ctx: Context, next: Next): Promise<void> => {
    let path = swiftPathOrUndefined(ctx.path, options.validVersions);
    if (path?.object === undefined || path.container === undefined) {
      await next();
      return;
    }
    if (ctx.method === 'COPY') {
      const destination = ctx.get('destination');
      if (destination === '') throw new HttpError(412, 'Destination header required', { code: 'NoDestination' });
      const headers = ctx.req.headers;
      let account = path.account;
      if (ctx.get('destination-account') !== '') {
        account = checkAccount(ctx.get('destination-account'));
        headers['x-copy-from-account'] = quoteName(path.account);
        delete headers['destination-account'];
      }
      const target = checkPathHeader(destination, 'Destination');
      headers['x-copy-from'] = quoteName(`/${path.container}/${path.object}`);
      headers['content-length'] = '0';
      delete headers.destination;
      ctx.method = 'PUT';
      ctx.path = `/${path.version}/${quoteName(account)}/${quoteName(target.container)}/${quoteName(target.object)}`;
      path = { version: path.version, account, container: target.container, object: target.object };
      await copyPut(ctx, path, options);
      return;
    }
    if (ctx.method === 'PUT' && ctx.get('x-copy-from') !== '') {
      await copyPut(ctx, path, options);
      return;
    }
    await next();
  };
}

async function copyPut(ctx: Context, path: SwiftPath, options: CopyOptions): Promise<void> {
  const length = ctx.get('content-length');
  if (length !== '' && length !== '0') {
    throw new HttpError(400, 'Copy requests require a zero byte body', { code: 'CopyWithBody' });
  }
  const sourceAccount =
    ctx.get('x-copy-from-account') !== '' ? checkAccount(ctx.get('x-copy-from-account')) : path.account;
  const source = checkPathHeader(ctx.get('x-copy-from'), 'X-Copy-From');
  const manifestGet = ctx.query['multipart-manifest'] === 'get';
  const sourcePath = `/${path.version}/${quoteName(sourceAccount)}/${quoteName(source.container)}/${quoteName(source.object)}`;
  const sourceHeaders: Record<string, string> = {};
  for (const name of ['if-match', 'if-none-match', 'if-modified-since', 'if-unmodified-since']) {
    if (ctx.get(name) !== '') sourceHeaders[name] = ctx.get(name);
  }
  const state = swiftState(ctx);
  const sourceResponse = await state.subrequest({
    method: 'GET',
    path: manifestGet ? `${sourcePath}?multipart-manifest=get&format=raw` : sourcePath,
    headers: sourceHeaders,
    source: 'SSC',
  });
  if (sourceResponse.status >= 300) {
    // The source's answer is the copy's answer (404, 412, 401/403, ...).
    discardBody(sourceResponse);
    throw new HttpError(sourceResponse.status, undefined, { code: 'CopySourceFailed' });
  }
  const sourceLength = Number(sourceResponse.headers['content-length']);
  if (
    sourceResponse.headers['content-length'] === undefined ||
    !Number.isSafeInteger(sourceLength) ||
    sourceLength > options.maxFileSize
  ) {
    discardBody(sourceResponse);
    throw new HttpError(413, undefined, { code: 'TooLarge' });
  }
  const sink: Record<string, string> = {};
  const fresh = isTrue(ctx.get('x-fresh-metadata'));
  for (const [name, value] of Object.entries(sourceResponse.headers)) {
    if (name.startsWith('x-object-sysmeta-') || (!fresh && (isMetadata(name) || COPIED_HEADERS.has(name)))) {
      sink[name] = value;
    }
  }
  for (const [name, raw] of Object.entries(ctx.req.headers)) {
    if (raw === undefined) continue;
    if (
      [
        'x-copy-from',
        'x-copy-from-account',
        'x-fresh-metadata',
        'content-length',
        'transfer-encoding',
        'host',
        'x-trans-id',
      ].includes(name)
    )
      continue;
    if (name.startsWith('if-')) continue;
    sink[name] = Array.isArray(raw) ? raw.join(',') : raw;
  }
  const isSlo = isTrue(sourceResponse.headers['x-static-large-object']);
  const dloManifest = sourceResponse.headers['x-object-manifest'];
  let query = '';
  if (manifestGet && isSlo) query = '?multipart-manifest=put';
  if (manifestGet && dloManifest !== undefined) sink['x-object-manifest'] = dloManifest;
  if (sourceResponse.status === 200 && !isSlo && (dloManifest === undefined || manifestGet)) {
    const etag = sourceResponse.headers.etag;
    if (etag !== undefined) sink.etag = etag.replace(/^"(.*)"$/, '$1');
  } else {
    for (const name of Object.keys(sink)) {
      if (name.startsWith('x-object-sysmeta-container-update-override-')) delete sink[name];
    }
  }
  if (isSlo && manifestGet) {
    // The SLO PUT recomputes these from the segments.
    for (const name of Object.keys(sink)) if (name.startsWith('x-object-sysmeta-slo-')) delete sink[name];
  }
  delete sink['x-static-large-object'];
  if (ctx.get('content-type') === '')
    sink['content-type'] = sourceResponse.headers['content-type'] ?? 'application/octet-stream';
  sink['content-length'] = String(sourceLength);
  const body =
    sourceResponse.body instanceof Readable
      ? sourceResponse.body
      : Readable.from([Buffer.from(sourceResponse.body ?? '')]);
  const put = await state.subrequest({
    method: 'PUT',
    path: `/${path.version}/${quoteName(path.account)}/${quoteName(path.container ?? '')}/${quoteName(path.object ?? '')}${query}`,
    headers: sink,
    body,
    source: 'SSC',
  });
  if (!body.destroyed) body.destroy();
  ctx.status = put.status;
  for (const [name, value] of Object.entries(put.headers)) {
    if (['content-length', 'transfer-encoding', 'connection'].includes(name)) continue;
    ctx.set(name, value);
  }
  ctx.body = put.body ?? '';
  if (put.status >= 200 && put.status < 300) {
    ctx.set('X-Copied-From-Account', quoteName(sourceAccount));
    ctx.set('X-Copied-From', quoteName(`${source.container}/${source.object}`));
    const lastModified = sourceResponse.headers['last-modified'];
    if (lastModified !== undefined) ctx.set('X-Copied-From-Last-Modified', lastModified);
    for (const [name, value] of Object.entries(sink)) {
      if (isMetadata(name) || COPIED_HEADERS.has(name)) ctx.set(name, value);
    }
  }
}
