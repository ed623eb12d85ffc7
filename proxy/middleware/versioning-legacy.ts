/**
 * Swift's older object versioning (versioned_writes, legacy mode), a stage after symlinks:
 * - A container PUT/POST with `X-Versions-Location: <container>` (stack mode) or
 *   `X-History-Location: <container>` (history mode) keeps the location in container sysmeta;
 *   both at once is 400; an empty value or `X-Remove-Versions-Location` /
 *   `X-Remove-History-Location` turns versioning off. Container GET/HEAD show the header back.
 * - An object PUT over an existing object first copies the old one into the versions container
 *   as `<3 hex digits of the name's UTF-8 length><name>/<old X-Timestamp>` (the client's own
 *   requests: it needs read access here and write access there).
 * - DELETE in stack mode restores the newest archived version over the object (and removes it
 *   from the archive); with none, it is a plain delete. In history mode the current object is
 *   archived, then a delete marker (`application/x-deleted;swift_versions_deleted=1`) is
 *   archived, then the object is deleted.
 * Not copied from Swift: large objects are archived flattened (Swift keeps the manifest).
 */
import type { Context, Middleware, Next } from 'koa';
import { HttpError } from '../../common/errors.js';
import { Timestamp } from '../../common/timestamp.js';
import type { ProxyDeps } from '../controllers/base.js';
import { getContainerInfo } from '../controllers/info.js';
import { decodePathStrict, swiftPathOrUndefined, quoteName, type SwiftPath } from '../request-path.js';
import { swiftState, type SubResponse } from '../state.js';
import { discardBody } from './large-object-segments.js';

export interface LegacyVersioningOptions {
  validVersions: readonly string[];
  deps: ProxyDeps;
}

const SYSMETA_LOCATION = 'x-container-sysmeta-versions-location';
const SYSMETA_MODE = 'x-container-sysmeta-versions-mode';
/** Set on our own restore PUTs so they are not archived again. */
const SKIP = 'x-backend-versioning-skip';
export const DELETE_MARKER_TYPE = 'application/x-deleted;swift_versions_deleted=1';

export function legacyVersioningInfo(): Record<string, unknown> {
  return { allowed_flags: ['x-versions-location', 'x-history-location'] };
}

/** Swift's archive prefix: `%03x` of the name's length (UTF-8 bytes) then the name and `/`. */
export function versionsPrefix(object: string): string {
  return `${Buffer.byteLength(object, 'utf8').toString(16).padStart(3, '0')}${object}/`;
}

function checkLocation(value: string): string {
  const decoded = decodePathStrict(value) ?? value;
  if (decoded.includes('/')) {
    throw new HttpError(412, 'Container name cannot contain slashes', { code: 'BadVersionsLocation' });
  }
  return decoded;
}

function containerHeaders(ctx: Context): void {
  const headers = ctx.req.headers;
  const versions = headers['x-versions-location'];
  const history = headers['x-history-location'];
  if (typeof versions === 'string' && typeof history === 'string' && versions !== '' && history !== '') {
    throw new HttpError(400, 'Only one of X-Versions-Location or X-History-Location may be specified', {
      code: 'BothVersionModes',
    });
  }
  let location: string | undefined;
  let mode = '';
  if (typeof versions === 'string') {
    location = versions;
    mode = 'stack';
  } else if (typeof history === 'string') {
    location = history;
    mode = 'history';
  }
  if (location === undefined && (headers['x-remove-versions-location'] ?? headers['x-remove-history-location'])) {
    location = '';
  }
  delete headers['x-versions-location'];
  delete headers['x-history-location'];
  delete headers['x-remove-versions-location'];
  delete headers['x-remove-history-location'];
  if (location === undefined) return;
  if (location === '') {
    headers[SYSMETA_LOCATION] = '';
    headers[SYSMETA_MODE] = '';
    return;
  }
  headers[SYSMETA_LOCATION] = quoteName(checkLocation(location));
  headers[SYSMETA_MODE] = mode;
}

function exposeLocation(ctx: Context): void {
  const location = ctx.response.headers[SYSMETA_LOCATION];
  if (typeof location !== 'string' || location === '') return;
  const mode = ctx.response.headers[SYSMETA_MODE];
  ctx.set(mode === 'history' ? 'X-History-Location' : 'X-Versions-Location', location);
}

function objectPath(version: string, account: string, container: string, object: string): string {
  return `/${version}/${quoteName(account)}/${quoteName(container)}/${quoteName(object)}`;
}

/** Archives the current object (if any) under its old timestamp; throws the error to answer with. */
async function archiveCurrent(ctx: Context, path: SwiftPath, location: string): Promise<void> {
  const state = swiftState(ctx);
  const current = await state.subrequest({
    method: 'GET',
    path: objectPath(path.version, path.account, path.container ?? '', path.object ?? ''),
    headers: { 'x-backend-symlink-no-follow': 'true' },
    source: 'VW',
  });
  if (current.status === 404) {
    discardBody(current);
    return;
  }
  if (current.status < 200 || current.status >= 300) {
    discardBody(current);
    throw new HttpError(current.status, undefined, { code: 'VersionSourceFailed' });
  }
  const timestamp = Timestamp.parse(current.headers['x-timestamp'] ?? Timestamp.now().normal).internal;
  await putVersion(ctx, path, location, timestamp, current);
}

async function putVersion(
  ctx: Context,
  path: SwiftPath,
  location: string,
  timestamp: string,
  source: SubResponse,
): Promise<void> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(source.headers)) {
    if (
      name.startsWith('x-object-meta-') ||
      name.startsWith('x-object-sysmeta-') ||
      ['content-type', 'content-encoding', 'content-disposition', 'content-language', 'etag'].includes(name)
    ) {
      headers[name] = value;
    }
  }
  if (headers.etag !== undefined) headers.etag = headers.etag.replace(/^"(.*)"$/, '$1');
  if (source.headers['content-length'] !== undefined) headers['content-length'] = source.headers['content-length'];
  headers[SKIP] = 'true';
  const put = await swiftState(ctx).subrequest({
    method: 'PUT',
    path: objectPath(path.version, path.account, location, `${versionsPrefix(path.object ?? '')}${timestamp}`),
    headers,
    body: source.body ?? '',
    source: 'VW',
  });
  discardBody(put);
  if (put.status < 200 || put.status >= 300) {
    throw new HttpError(put.status === 404 ? 412 : put.status, undefined, { code: 'VersionArchiveFailed' });
  }
}

/** Stack mode: the newest archived version goes back in place; answers whether one did. */
async function restoreLatest(ctx: Context, path: SwiftPath, location: string): Promise<boolean> {
  const state = swiftState(ctx);
  const prefix = versionsPrefix(path.object ?? '');
  const listing = await state.subrequest({
    method: 'GET',
    path: `/${path.version}/${quoteName(path.account)}/${quoteName(location)}?format=json&reverse=on&limit=10&prefix=${encodeURIComponent(prefix)}`,
    source: 'VW',
  });
  if (listing.status === 404) {
    discardBody(listing);
    return false;
  }
  if (listing.status < 200 || listing.status >= 300) {
    discardBody(listing);
    throw new HttpError(listing.status, undefined, { code: 'VersionListFailed' });
  }
  const entries = JSON.parse((await listing.buffer(1024 * 1024)).toString('utf8')) as {
    name: string;
    content_type?: string;
  }[];
  // Bounded: at most the 10 newest; markers left by history mode are skipped over.
  for (const entry of entries) {
    const versionPath = objectPath(path.version, path.account, location, entry.name);
    const version = await state.subrequest({ method: 'GET', path: versionPath, source: 'VW' });
    if (version.status === 404) {
      discardBody(version);
      continue;
    }
    if (version.status < 200 || version.status >= 300) {
      discardBody(version);
      throw new HttpError(version.status, undefined, { code: 'VersionRestoreFailed' });
    }
    const headers: Record<string, string> = { [SKIP]: 'true' };
    for (const [name, value] of Object.entries(version.headers)) {
      if (
        name.startsWith('x-object-meta-') ||
        ['content-type', 'content-encoding', 'content-disposition', 'content-language', 'content-length'].includes(name)
      ) {
        headers[name] = value;
      }
    }
    const put = await state.subrequest({
      method: 'PUT',
      path: objectPath(path.version, path.account, path.container ?? '', path.object ?? ''),
      headers,
      body: version.body ?? '',
      source: 'VW',
    });
    discardBody(put);
    if (put.status < 200 || put.status >= 300)
      throw new HttpError(put.status, undefined, { code: 'VersionRestoreFailed' });
    const removed = await state.subrequest({ method: 'DELETE', path: versionPath, source: 'VW' });
    discardBody(removed);
    return true;
  }
  return false;
}

export function legacyVersioningMiddleware(options: LegacyVersioningOptions): Middleware {
  return async (ctx: Context, next: Next): Promise<void> => {
    const path = swiftPathOrUndefined(ctx.path, options.validVersions);
    if (path?.container === undefined) {
      await next();
      return;
    }
    if (path.object === undefined) {
      if (ctx.method === 'PUT' || ctx.method === 'POST') containerHeaders(ctx);
      await next();
      if (ctx.method === 'GET' || ctx.method === 'HEAD') exposeLocation(ctx);
      return;
    }
    if ((ctx.method !== 'PUT' && ctx.method !== 'DELETE') || ctx.get(SKIP) !== '') {
      await next();
      return;
    }
    const info = await getContainerInfo(ctx, options.deps, path.account, path.container);
    const rawLocation = info.headers[SYSMETA_LOCATION];
    const location = typeof rawLocation === 'string' && rawLocation !== '' ? decodePathStrict(rawLocation) : undefined;
    if (location === undefined || info.status < 200 || info.status >= 300) {
      await next();
      return;
    }
    const mode = info.headers[SYSMETA_MODE] === 'history' ? 'history' : 'stack';
    // The client must be allowed to write here before anything is archived.
    const denied = swiftState(ctx).authorize?.(ctx, info.writeAcl);
    if (denied !== undefined) throw denied;
    if (ctx.method === 'PUT') {
      await archiveCurrent(ctx, path, location);
      await next();
      return;
    }
    if (mode === 'history') {
      await archiveCurrent(ctx, path, location);
      const marker: SubResponse = {
        status: 200,
        headers: { 'content-type': DELETE_MARKER_TYPE, 'content-length': '0' },
        body: '',
        buffer: () => Promise.resolve(Buffer.alloc(0)),
      };
      await putVersion(ctx, path, location, Timestamp.now().internal, marker);
      await next();
      return;
    }
    if (await restoreLatest(ctx, path, location)) {
      ctx.status = 204;
      ctx.body = null;
      return;
    }
    await next();
  };
}
