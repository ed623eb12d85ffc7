/**
 * Object versioning with `X-Versions-Enabled` (Swift's object_versioning middleware), a stage
 * right before the legacy versioned_writes stage (after COPY and symlinks, before SLO):
 * - Container PUT/POST with `X-Versions-Enabled: true|false` (owners only): the first `true`
 *   creates the hidden versions container; the state, the hidden container's name and the
 *   history of switches go to container sysmeta. Refused (400) together with
 *   X-Versions-Location / X-History-Location, or on a container that uses them. HEAD/GET show
 *   `X-Versions-Enabled`, and `X-Container-Bytes-Used` counts the versions' bytes too (Swift).
 * - Container GET `?versions`: listing.ts. DELETE: 409 while versions remain, then the hidden
 *   container goes with the container.
 * - Objects: objects.ts. Names: names.ts (why the hidden container is `\x01versions\x01<c>`).
 * - Client requests for reserved names (U+0001 first) are refused; account listings start past
 *   them, and the account's container count leaves the hidden containers out.
 * Not copied from Swift, and why:
 * - Swift writes each new version into the hidden container and a static symlink in its place;
 *   here the current object stays a plain object (GETs, listings, S3 and rclone see it as
 *   ever) and an overwrite or DELETE copies it into the hidden container first, so versioned
 *   overwrites move the old data once more than Swift's do.
 * - `PUT ?version-id` (newer Swift's "make this version current") is 400, as Swift's API docs
 *   say; `COPY ?version-id` copies the current object (the COPY stage runs first).
 * - Account object and byte counts include the versions (stored data), as Swift's do.
 * - X-Versions-Enabled can be switched 64 times per container (the switch history is sysmeta).
 */
import type { Context, Middleware, Next } from 'koa';
import { HttpError } from '../../../common/errors.js';
import { Timestamp } from '../../../common/timestamp.js';
import type { ProxyDeps } from '../../controllers/base.js';
import { authorize, getContainerInfo } from '../../controllers/info.js';
import { decodePathStrict, swiftPathOrUndefined, quoteName, type SwiftPath } from '../../request-path.js';
import { swiftState, type SubResponse } from '../../state.js';
import { discardBody } from '../large-object-segments.js';
import { respondVersionsListing } from './listing.js';
import {
  ALLOW_RESERVED,
  RESERVED_CONTAINERS_UPPER_BOUND,
  SYSMETA_CONTAINER,
  SYSMETA_ENABLED,
  SYSMETA_TOGGLES,
  TOGGLES_MAX,
  isReservedName,
  isTrue,
  parseToggles,
  versionsContainerName,
} from './names.js';
import { annotateCurrent, handleVersionedObject, type VersionedContainer } from './objects.js';

export interface ObjectVersioningOptions {
  validVersions: readonly string[];
  deps: ProxyDeps;
}

const CLIENT_HEADER = 'x-versions-enabled';
const LEGACY_SYSMETA_LOCATION = 'x-container-sysmeta-versions-location';
/** Set on the account once it holds a hidden container: only then are its counts corrected. */
const ACCOUNT_SYSMETA_HIDDEN = 'x-account-sysmeta-versions-containers';
const HIDDEN_LISTING_LIMIT = 10_000;

export function objectVersioningInfo(): Record<string, unknown> {
  return {};
}

function header(headers: Record<string, unknown>, name: string): string | undefined {
  const value = headers[name];
  if (Array.isArray(value)) return value.join(',');
  return typeof value === 'string' ? value : undefined;
}

function hiddenName(headers: Record<string, unknown>): string | undefined {
  const raw = header(headers, SYSMETA_CONTAINER);
  if (raw === undefined || raw === '') return undefined;
  return decodePathStrict(raw);
}

function containerPath(path: SwiftPath, container: string): string {
  return `/${path.version}/${quoteName(path.account)}/${quoteName(container)}`;
}

async function enableOrDisable(
  ctx: Context,
  next: Next,
  options: ObjectVersioningOptions,
  path: SwiftPath,
): Promise<void> {
  const container = path.container ?? '';
  authorize(ctx);
  const requested = isTrue(ctx.get(CLIENT_HEADER));
  delete ctx.req.headers[CLIENT_HEADER];
  for (const legacy of ['x-versions-location', 'x-history-location']) {
    if (ctx.get(legacy) !== '') {
      throw new HttpError(400, 'Cannot enable object versioning with X-Versions-Location or X-History-Location', {
        code: 'VersioningModes',
      });
    }
  }
  const info = await getContainerInfo(ctx, options.deps, path.account, container);
  const exists = info.status >= 200 && info.status < 300;
  if (exists && (header(info.headers, LEGACY_SYSMETA_LOCATION) ?? '') !== '') {
    throw new HttpError(
      400,
      'Cannot enable object versioning on a container that is already using the legacy versioned writes feature.',
      { code: 'LegacyVersioning' },
    );
  }
  const toggles = exists ? parseToggles(header(info.headers, SYSMETA_TOGGLES)) : [];
  const wasEnabled = toggles.length % 2 === 1;
  if (requested !== wasEnabled) {
    if (toggles.length >= TOGGLES_MAX) {
      throw new HttpError(400, `X-Versions-Enabled was switched more than ${TOGGLES_MAX} times`, {
        code: 'TooManyToggles',
      });
    }
    toggles.push(Timestamp.now());
    ctx.req.headers[SYSMETA_TOGGLES] = toggles.map((toggle) => toggle.normal).join(' ');
  }
  ctx.req.headers[SYSMETA_ENABLED] = requested ? 'True' : 'False';
  let created: string | undefined;
  if (requested && (!exists || hiddenName(info.headers) === undefined)) {
    const hidden = versionsContainerName(container);
    if (Buffer.byteLength(hidden) > options.deps.config.swift.constraints.max_container_name_length) {
      throw new HttpError(400, 'Container name too long for object versioning', { code: 'NameTooLong' });
    }
    const state = swiftState(ctx);
    const put = await callHiddenContainer(ctx, 'PUT', path, hidden);
    if (put.status < 200 || put.status >= 300) {
      throw new HttpError(500, 'Error enabling object versioning', { code: 'VersionsContainerFailed' });
    }
    const mark = await state.subrequest({
      method: 'POST',
      path: `/${path.version}/${quoteName(path.account)}`,
      headers: { [ACCOUNT_SYSMETA_HIDDEN]: 'true' },
      preAuthed: true,
      source: 'OV',
    });
    discardBody(mark);
    created = hidden;
    ctx.req.headers[SYSMETA_CONTAINER] = quoteName(hidden);
  }
  await next();
  if (created !== undefined && (ctx.status < 200 || ctx.status >= 300)) {
    // The container write failed: take the hidden container back so a retry starts clean.
    await callHiddenContainer(ctx, 'DELETE', path, created);
  }
}

async function readContainer(
  ctx: Context,
  next: Next,
  options: ObjectVersioningOptions,
  path: SwiftPath,
): Promise<void> {
  const container = path.container ?? '';
  if (ctx.method === 'GET' && ctx.query.versions !== undefined) {
    const info = await getContainerInfo(ctx, options.deps, path.account, container);
    await respondVersionsListing(ctx, {
      version: path.version,
      account: path.account,
      container,
      versionsContainer: hiddenName(info.headers),
      toggles: parseToggles(header(info.headers, SYSMETA_TOGGLES)),
      listingLimitMax: options.deps.config.swift.constraints.container_listing_limit,
    });
    showEnabled(ctx, info.headers);
    return;
  }
  await next();
  const headers = ctx.response.headers as Record<string, unknown>;
  if (!showEnabled(ctx, headers)) return;
  const hidden = hiddenName(headers);
  const used = header(headers, 'x-container-bytes-used');
  if (hidden === undefined || used === undefined) return;
  const head = await callHiddenContainer(ctx, 'HEAD', path, hidden);
  const versionsBytes = Number(head.headers['x-container-bytes-used'] ?? '0');
  if (head.status >= 200 && head.status < 300 && Number.isFinite(versionsBytes)) {
    ctx.set('X-Container-Bytes-Used', String(Number(used) + versionsBytes));
  }
}

/** The legacy modes may not be switched on where object versioning has been (Swift: 400). */
async function refuseLegacyModes(ctx: Context, options: ObjectVersioningOptions, path: SwiftPath): Promise<void> {
  if (ctx.get('x-versions-location') === '' && ctx.get('x-history-location') === '') return;
  const info = await getContainerInfo(ctx, options.deps, path.account, path.container ?? '');
  if (info.status >= 200 && info.status < 300 && hiddenName(info.headers) !== undefined) {
    throw new HttpError(400, 'Cannot use the legacy versioned writes feature on a container with object versioning', {
      code: 'VersioningModes',
    });
  }
}

function showEnabled(ctx: Context, headers: Record<string, unknown>): boolean {
  const enabled = header(headers, SYSMETA_ENABLED);
  if (enabled === undefined || enabled === '') return false;
  ctx.set('X-Versions-Enabled', isTrue(enabled) ? 'True' : 'False');
  return true;
}

async function deleteContainer(
  ctx: Context,
  next: Next,
  options: ObjectVersioningOptions,
  path: SwiftPath,
): Promise<void> {
  const info = await getContainerInfo(ctx, options.deps, path.account, path.container ?? '');
  const hidden = hiddenName(info.headers);
  if (hidden === undefined) {
    await next();
    return;
  }
  authorize(ctx);
  const head = await callHiddenContainer(ctx, 'HEAD', path, hidden);
  if (head.status >= 200 && head.status < 300 && Number(head.headers['x-container-object-count'] ?? '0') > 0) {
    throw new HttpError(409, 'Delete all versions before deleting container.', { code: 'VersionsRemain' });
  }
  if (head.status !== 404 && (head.status < 200 || head.status >= 300)) {
    throw new HttpError(500, 'Error deleting versioned container', { code: 'VersionsContainerFailed' });
  }
  await next();
  if (ctx.status < 200 || ctx.status >= 300) return;
  await callHiddenContainer(ctx, 'DELETE', path, hidden);
}

/** The middleware's own request to a hidden container (reserved names allowed, pre-authorized); its body is drained. */
async function callHiddenContainer(
  ctx: Context,
  method: 'PUT' | 'HEAD' | 'DELETE',
  path: SwiftPath,
  hidden: string,
): Promise<SubResponse> {
  const response = await swiftState(ctx).subrequest({
    method,
    path: containerPath(path, hidden),
    headers: { [ALLOW_RESERVED]: 'true' },
    preAuthed: true,
    source: 'OV',
  });
  discardBody(response);
  return response;
}

/** UTF-8 byte order, the servers' listing order. */
function byteMax(a: string, b: string): string {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')) >= 0 ? a : b;
}

/** Account listings start past the reserved names (the lower bound is end_marker when reversed). */
function hideReservedContainers(ctx: Context): void {
  try {
    for (const part of ctx.querystring.split('&')) decodeURIComponent(part.replace(/\+/g, ' '));
  } catch {
    // Not UTF-8 (URLSearchParams would make it U+FFFD): left for the account server's 400, as Swift.
    return;
  }
  const query = new URLSearchParams(ctx.querystring);
  const reverse = isTrue(query.get('reverse') ?? '');
  const bound = reverse ? 'end_marker' : 'marker';
  query.set(bound, byteMax(query.get(bound) ?? '', RESERVED_CONTAINERS_UPPER_BOUND));
  ctx.querystring = query.toString().replace(/\+/g, '%20');
}

/** The account's counts without its hidden containers (only once it has had one). */
async function correctContainerCount(ctx: Context, path: SwiftPath): Promise<void> {
  const headers = ctx.response.headers as Record<string, unknown>;
  const count = header(headers, 'x-account-container-count');
  if (header(headers, ACCOUNT_SYSMETA_HIDDEN) === undefined || count === undefined) return;
  const listing = await swiftState(ctx).subrequest({
    method: 'GET',
    path: `/${path.version}/${quoteName(path.account)}?format=json&limit=${HIDDEN_LISTING_LIMIT}&prefix=%01`,
    headers: { [ALLOW_RESERVED]: 'true' },
    preAuthed: true,
    source: 'OV',
  });
  const body = await listing.buffer(16 * 1024 * 1024);
  if (listing.status !== 200) return;
  const hidden = JSON.parse(body.toString('utf8')) as unknown[];
  ctx.set('X-Account-Container-Count', String(Math.max(0, Number(count) - hidden.length)));
}

export function objectVersioningMiddleware(options: ObjectVersioningOptions): Middleware {
  return async (ctx: Context, next: Next): Promise<void> => {
    const path = swiftPathOrUndefined(ctx.path, options.validVersions);
    if (path === undefined) {
      await next();
      return;
    }
    const internal = ctx.get(ALLOW_RESERVED) === 'true';
    if (path.container === undefined) {
      if (internal) {
        await next();
        return;
      }
      if (ctx.method === 'GET') hideReservedContainers(ctx);
      await next();
      if (ctx.method === 'GET' || ctx.method === 'HEAD') await correctContainerCount(ctx, path);
      return;
    }
    if (isReservedName(path.container)) {
      if (!internal) throw new HttpError(412, 'Invalid UTF8 or contains NULL', { code: 'ReservedName' });
      await next();
      return;
    }
    if (path.object === undefined) {
      if ((ctx.method === 'PUT' || ctx.method === 'POST') && ctx.get(CLIENT_HEADER) !== '') {
        await enableOrDisable(ctx, next, options, path);
        return;
      }
      if (ctx.method === 'PUT' || ctx.method === 'POST') {
        await refuseLegacyModes(ctx, options, path);
        await next();
        return;
      }
      if (ctx.method === 'GET' || ctx.method === 'HEAD') return readContainer(ctx, next, options, path);
      if (ctx.method === 'DELETE') return deleteContainer(ctx, next, options, path);
      await next();
      return;
    }
    const objectPath = { ...path, container: path.container, object: path.object };
    const versionAware = typeof ctx.query['version-id'] === 'string';
    if (!versionAware && ctx.method !== 'PUT' && ctx.method !== 'DELETE') {
      // Reads need the container's state only once they succeeded (no lookup for a failed one).
      await next();
      if ((ctx.method === 'GET' || ctx.method === 'HEAD') && ctx.status >= 200 && ctx.status < 300) {
        const target = await versionedTarget(ctx, options, objectPath);
        if (target.versionsContainer !== undefined) annotateCurrent(ctx, target);
      }
      return;
    }
    const target = await versionedTarget(ctx, options, objectPath);
    if (target.versionsContainer === undefined && !versionAware) {
      await next();
      return;
    }
    await handleVersionedObject(ctx, next, target);
  };
}

async function versionedTarget(
  ctx: Context,
  options: ObjectVersioningOptions,
  path: VersionedContainer['path'],
): Promise<VersionedContainer> {
  const info = await getContainerInfo(ctx, options.deps, path.account, path.container);
  const exists = info.status >= 200 && info.status < 300;
  return {
    path,
    versionsContainer: exists ? hiddenName(info.headers) : undefined,
    enabled: exists && isTrue(header(info.headers, SYSMETA_ENABLED)),
    writeAcl: info.writeAcl,
    maxObjectNameBytes: options.deps.config.swift.constraints.max_object_name_length,
  };
}
