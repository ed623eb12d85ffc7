/**
 * Object requests in a container that has (or had) `X-Versions-Enabled` on, Swift's
 * object_versioning semantics over the layout described in names.ts:
 * - PUT (on): the current object, if any, is first copied into the hidden container under its
 *   own id (an SLO as its manifest, a symlink as the link), then the new object is written with
 *   its id as X-Timestamp; the answer carries `X-Object-Version-Id`.
 * - DELETE (on): the current object is archived likewise, a delete marker
 *   (`application/x-deleted;swift_versions_deleted=1`) is written as the newest version, and the
 *   current object is deleted; the answer (204, or 404 when there was nothing) carries the
 *   marker's id.
 * - PUT/DELETE (off, after having been on): a current object that has a version id is archived
 *   first (it is the only copy of that version); the write itself is plain (a `null` version).
 * - GET/HEAD answer `X-Object-Version-Id`. POST changes the current object's metadata only.
 * - `?version-id=<id>`: GET/HEAD/DELETE that version (the account's owners only, as Swift);
 *   a delete marker reads as 404; deleting the current object's id deletes it without a marker
 *   (Swift does not bring an older version back: nothing is current then); PUT and POST are 400.
 */
import type { Context, Next } from 'koa';
import { HttpError } from '../../../common/errors.js';
import { Timestamp } from '../../../common/timestamp.js';
import { authorize } from '../../controllers/info.js';
import { quoteName, type SwiftPath } from '../../request-path.js';
import { swiftState, type SubResponse } from '../../state.js';
import { discardBody } from '../large-object-segments.js';
import { DELETE_MARKER_TYPE } from '../versioning-legacy.js';
import { ALLOW_RESERVED, RESERVED_CHAR, parseVersionId, versionObjectName } from './names.js';

/** The object's version id, kept with the object (sysmeta survives POSTs, unlike X-Timestamp). */
export const SYSMETA_VERSION_ID = 'x-object-sysmeta-versions-id';
const NO_FOLLOW = 'x-backend-symlink-no-follow';
const VERSION_ID = 'X-Object-Version-Id';
/** Swift's reserved-name suffix is 17 bytes (separator and inverted timestamp). */
const VERSION_SUFFIX_BYTES = 17;
const FORWARDED_READ_HEADERS = ['range', 'if-match', 'if-none-match', 'if-modified-since', 'if-unmodified-since'];

export interface VersionedContainer {
  path: SwiftPath & { container: string; object: string };
  /** The hidden container's name (undefined: versioning was never on). */
  versionsContainer: string | undefined;
  enabled: boolean;
  writeAcl: string | undefined;
  maxObjectNameBytes: number;
}

function objectPath(path: SwiftPath, container: string, object: string): string {
  return `/${path.version}/${quoteName(path.account)}/${quoteName(container)}/${quoteName(object)}`;
}

function currentPath(target: VersionedContainer): string {
  return objectPath(target.path, target.path.container, target.path.object);
}

function hiddenPath(target: VersionedContainer, versionId: string): string {
  return objectPath(target.path, target.versionsContainer ?? '', versionObjectName(target.path.object, versionId));
}

function isSuccess(status: number): boolean {
  return status >= 200 && status < 300;
}

/** Swift's _check_response_error: 404 of a version write means the hidden container is gone. */
function failure(response: SubResponse, code: string): HttpError {
  discardBody(response);
  if (response.status === 404) {
    return new HttpError(500, 'The versions container does not exist. You may want to re-enable object versioning.', {
      code,
    });
  }
  if (response.status >= 400 && response.status < 500) return new HttpError(response.status, undefined, { code });
  return new HttpError(503, undefined, { code });
}

/** The current object as stored: an SLO's manifest, a symlink itself (not what they point to). */
async function readCurrent(ctx: Context, target: VersionedContainer, method: 'GET' | 'HEAD'): Promise<SubResponse> {
  return swiftState(ctx).subrequest({
    method,
    path: `${currentPath(target)}?multipart-manifest=get`,
    headers: { [NO_FOLLOW]: 'true' },
    preAuthed: true,
    source: 'OV',
  });
}

/** The id a stored object answers to: its sysmeta id, else `null` (written while versioning was off). */
function versionIdOf(headers: Record<string, string>): string {
  return headers[SYSMETA_VERSION_ID] ?? 'null';
}

/** Headers that make an archived copy the same object (metadata, sysmeta, manifest and link). */
function archiveHeaders(source: Record<string, string>, versionId: string): Record<string, string> {
  const headers: Record<string, string> = { [ALLOW_RESERVED]: 'true' };
  for (const [name, value] of Object.entries(source)) {
    if (
      name.startsWith('x-object-meta-') ||
      name.startsWith('x-object-sysmeta-') ||
      [
        'content-type',
        'content-encoding',
        'content-disposition',
        'content-language',
        'etag',
        'x-static-large-object',
        'x-object-manifest',
      ].includes(name)
    ) {
      headers[name] = value;
    }
  }
  if (headers.etag !== undefined) headers.etag = headers.etag.replace(/^"(.*)"$/, '$1');
  // An SLO's listing row shows the whole object's size and ETag, as the current one did.
  const overrideEtag = source['x-object-sysmeta-container-update-override-etag'];
  const overrideSize = source['x-object-sysmeta-container-update-override-size'];
  if (overrideEtag !== undefined) headers['x-backend-container-update-override-etag'] = overrideEtag;
  if (overrideSize !== undefined) headers['x-backend-container-update-override-size'] = overrideSize;
  if (source['content-length'] !== undefined) headers['content-length'] = source['content-length'];
  // The version keeps its own time, so its listing row's last_modified is the version's.
  headers['x-timestamp'] = versionId;
  return headers;
}

/**
 * Copies the current object into the hidden container under its version id; a current object
 * without an id is archived under its timestamp (Swift's _copy_current) only when `nullToo`.
 * Answers whether there was a current object.
 */
async function archiveCurrent(ctx: Context, target: VersionedContainer, nullToo: boolean): Promise<boolean> {
  const current = await readCurrent(ctx, target, 'GET');
  if (current.status === 404) {
    discardBody(current);
    return false;
  }
  if (!isSuccess(current.status)) throw failure(current, 'VersionSourceFailed');
  let versionId = versionIdOf(current.headers);
  if (versionId === 'null') {
    if (!nullToo) {
      discardBody(current);
      return true;
    }
    versionId = Timestamp.parse(current.headers['x-timestamp'] ?? Timestamp.now().normal).normal;
  }
  const headers = archiveHeaders(current.headers, versionId);
  headers[SYSMETA_VERSION_ID] = versionId;
  const put = await swiftState(ctx).subrequest({
    method: 'PUT',
    path: hiddenPath(target, versionId),
    headers,
    body: current.body ?? '',
    preAuthed: true,
    source: 'OV',
  });
  if (!isSuccess(put.status)) throw failure(put, 'VersionArchiveFailed');
  discardBody(put);
  return true;
}

async function writeDeleteMarker(ctx: Context, target: VersionedContainer, markerId: string): Promise<void> {
  const put = await swiftState(ctx).subrequest({
    method: 'PUT',
    path: hiddenPath(target, markerId),
    headers: {
      [ALLOW_RESERVED]: 'true',
      'content-type': DELETE_MARKER_TYPE,
      'content-length': '0',
      'x-timestamp': markerId,
      [SYSMETA_VERSION_ID]: markerId,
    },
    body: '',
    preAuthed: true,
    source: 'OV',
  });
  if (!isSuccess(put.status)) throw failure(put, 'DeleteMarkerFailed');
  discardBody(put);
}

function checkWritable(ctx: Context, target: VersionedContainer): void {
  const object = target.path.object;
  if (object.includes(RESERVED_CHAR)) {
    throw new HttpError(400, 'Object names in a versioned container may not contain U+0001', {
      code: 'ReservedObjectName',
    });
  }
  const bytes = Buffer.byteLength(object);
  if (bytes + VERSION_SUFFIX_BYTES > target.maxObjectNameBytes) {
    throw new HttpError(400, `Object name length of ${bytes} too long for a versioned container`, {
      code: 'NameTooLong',
    });
  }
  // Nothing is archived for a client that may not write here.
  const denied = swiftState(ctx).authorize?.(ctx, target.writeAcl);
  if (denied !== undefined) throw denied;
}

async function handlePut(ctx: Context, next: Next, target: VersionedContainer): Promise<void> {
  checkWritable(ctx, target);
  if (!target.enabled) {
    await archiveCurrent(ctx, target, false);
    delete ctx.req.headers[SYSMETA_VERSION_ID];
    await next();
    return;
  }
  // With If-None-Match: * an existing object makes the PUT fail: there is nothing to keep.
  if (ctx.get('if-none-match').trim() !== '*') await archiveCurrent(ctx, target, true);
  const versionId = Timestamp.now().normal;
  ctx.req.headers['x-timestamp'] = versionId;
  ctx.req.headers[SYSMETA_VERSION_ID] = versionId;
  await next();
  if (isSuccess(ctx.status)) ctx.set(VERSION_ID, versionId);
}

async function handleDelete(ctx: Context, next: Next, target: VersionedContainer): Promise<void> {
  checkWritable(ctx, target);
  if (!target.enabled) {
    await archiveCurrent(ctx, target, false);
    await next();
    return;
  }
  await archiveCurrent(ctx, target, true);
  const markerId = Timestamp.now().normal;
  await writeDeleteMarker(ctx, target, markerId);
  ctx.req.headers['x-timestamp'] = Timestamp.parse(markerId).withOffset(1).internal;
  try {
    await next();
  } catch (error) {
    if (!(error instanceof HttpError) || error.status !== 404) throw error;
    error.headers[VERSION_ID] = markerId;
    throw error;
  }
  // Swift answers a DELETE of nothing with 404, and with the marker it wrote all the same.
  if (isSuccess(ctx.status) || ctx.status === 404) ctx.set(VERSION_ID, markerId);
}

/** Answers a subrequest's response as this request's. */
function relay(ctx: Context, response: SubResponse): void {
  ctx.status = response.status;
  for (const [name, value] of Object.entries(response.headers)) {
    if (name === 'content-length' || name === 'transfer-encoding' || name === 'connection') continue;
    ctx.set(name, value);
  }
  // Koa turns a null body into 204: a HEAD keeps no body and the length it was given.
  if (ctx.method === 'HEAD') discardBody(response);
  else ctx.body = response.body;
  if (response.headers['content-length'] !== undefined) ctx.set('content-length', response.headers['content-length']);
}

async function handleVersionRequest(ctx: Context, next: Next, target: VersionedContainer, raw: string): Promise<void> {
  if (ctx.method === 'PUT' || ctx.method === 'POST') {
    throw new HttpError(400, `${ctx.method} to a specific version is not allowed`, { code: 'VersionWrite' });
  }
  const versionId = parseVersionId(raw);
  if (target.versionsContainer === undefined && versionId !== 'null') {
    throw new HttpError(400, 'version-aware operations require that the container is versioned', {
      code: 'NotVersioned',
    });
  }
  if (!['GET', 'HEAD', 'DELETE'].includes(ctx.method)) {
    ctx.set('Allow', 'HEAD, GET, DELETE');
    throw new HttpError(405, undefined, { code: 'MethodNotAllowed' });
  }
  // Version-aware requests are for the account's owners (container ACLs do not reach them).
  authorize(ctx);
  const state = swiftState(ctx);
  if (versionId !== 'null') {
    const headers: Record<string, string> = { [ALLOW_RESERVED]: 'true' };
    for (const name of FORWARDED_READ_HEADERS) if (ctx.get(name) !== '') headers[name] = ctx.get(name);
    const query = ctx.querystring.replace(/(^|&)version-id=[^&]*/g, '').replace(/^&/, '');
    const archived = await state.subrequest({
      method: ctx.method,
      path: `${hiddenPath(target, versionId)}${query === '' ? '' : `?${query}`}`,
      headers,
      preAuthed: true,
      source: 'OV',
    });
    if (archived.status !== 404) {
      if (ctx.method !== 'DELETE' && archived.headers['content-type'] === DELETE_MARKER_TYPE) {
        discardBody(archived);
        throw new HttpError(404, undefined, {
          code: 'DeleteMarker',
          headers: { [VERSION_ID]: versionId, 'Content-Type': DELETE_MARKER_TYPE },
        });
      }
      relay(ctx, archived);
      if (isSuccess(archived.status)) ctx.set(VERSION_ID, versionId);
      if (ctx.method === 'DELETE') ctx.set('X-Object-Current-Version-Id', await currentId(ctx, target));
      return;
    }
    discardBody(archived);
  }
  // Not archived: it may be the current object.
  const current = await readCurrent(ctx, target, 'HEAD');
  discardBody(current);
  if (!isSuccess(current.status) || versionIdOf(current.headers) !== versionId) {
    throw new HttpError(404, undefined, { code: 'NoSuchVersion' });
  }
  ctx.querystring = ctx.querystring.replace(/(^|&)version-id=[^&]*/g, '').replace(/^&/, '');
  await next();
  if (isSuccess(ctx.status)) {
    ctx.set(VERSION_ID, versionId);
    if (ctx.method === 'DELETE') ctx.set('X-Object-Current-Version-Id', 'null');
  }
}

async function currentId(ctx: Context, target: VersionedContainer): Promise<string> {
  const current = await readCurrent(ctx, target, 'HEAD');
  discardBody(current);
  return isSuccess(current.status) ? versionIdOf(current.headers) : 'null';
}

export async function handleVersionedObject(ctx: Context, next: Next, target: VersionedContainer): Promise<void> {
  const versionParam = ctx.query['version-id'];
  if (typeof versionParam === 'string') {
    await handleVersionRequest(ctx, next, target, versionParam);
    return;
  }
  if (ctx.method === 'PUT') return handlePut(ctx, next, target);
  if (ctx.method === 'DELETE') return handleDelete(ctx, next, target);
  await next();
}

/** A GET/HEAD answer of a current object in a versioned container names its version. */
export function annotateCurrent(ctx: Context, target: VersionedContainer): void {
  const stored = ctx.response.headers[SYSMETA_VERSION_ID];
  const versionId = typeof stored === 'string' ? stored : 'null';
  ctx.set(VERSION_ID, versionId);
  // Swift names the version served (a symlink's answer keeps its target's location).
  if (versionId !== 'null' && ctx.response.headers['content-location'] === undefined) {
    ctx.set('Content-Location', `${currentPath(target)}?version-id=${versionId}`);
  }
}
