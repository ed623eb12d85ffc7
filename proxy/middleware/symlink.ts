/**
 * Symlinks (Swift 2.30's symlink middleware), a stage after COPY and quotas and before SLO:
 * - `PUT` with `X-Symlink-Target: <container>/<object>` (and `X-Symlink-Target-Account`) and an
 *   empty body stores a zero-byte object whose sysmeta names the target. With
 *   `X-Symlink-Target-Etag` the link is static: the target must exist (409 otherwise) and have
 *   that ETag (an SLO's manifest ETag for an SLO target), and its size is kept.
 * - `GET`/`HEAD` of a symlink answer with the target (as the client: its ACLs apply), following at
 *   most `symloop_max` (2) links, then 409 "Too many levels of symbolic links"; the answer carries
 *   `Content-Location` of the final target. A static link whose target changed is 409.
 *   `?symlink=get` answers with the link itself and its `X-Symlink-Target*` headers.
 * - `POST` to a symlink updates the link's own metadata and answers 307 with the target's
 *   Location (Swift's behaviour: POST never follows).
 * Targets are fetched with subrequests through the whole post-auth pipeline, so a link to an SLO
 * answers with the SLO's assembled content. Not done: `symlink_path` in container listings.
 */
import { Readable } from 'node:stream';
import type { Context, Middleware, Next } from 'koa';
import { HttpError } from '../../common/errors.js';
import { decodePathStrict, swiftPathOrUndefined, quoteName, type SwiftPath } from '../request-path.js';
import { swiftState, type SubResponse } from '../state.js';
import { discardBody } from './large-object-segments.js';

export interface SymlinkOptions {
  validVersions: readonly string[];
  symloopMax: number;
}

const SYSMETA_TARGET = 'x-object-sysmeta-symlink-target';
const SYSMETA_ACCOUNT = 'x-object-sysmeta-symlink-target-account';
const SYSMETA_ETAG = 'x-object-sysmeta-symlink-target-etag';
const SYSMETA_BYTES = 'x-object-sysmeta-symlink-target-bytes';
/** Set on our own target fetches: answer with the object itself, the caller follows. */
const NO_FOLLOW = 'x-backend-symlink-no-follow';
const FORWARDED_READ_HEADERS = ['range', 'if-match', 'if-none-match', 'if-modified-since', 'if-unmodified-since'];

export function symlinkInfo(options: SymlinkOptions): Record<string, unknown> {
  return { symloop_max: options.symloopMax, static_links: true };
}

/** A response header as a string ('' when absent: Koa's get() may answer undefined). */
function responseHeader(ctx: Context, name: string): string {
  const value = ctx.response.headers[name];
  if (value === undefined) return '';
  return Array.isArray(value) ? value.join(',') : String(value);
}

function normalizeEtag(value: string): string {
  return value.replace(/^"(.*)"$/, '$1');
}

function conflict(body: string, contentLocation?: string): HttpError {
  const headers: Record<string, string> = { 'Content-Type': 'text/plain' };
  if (contentLocation !== undefined) headers['Content-Location'] = contentLocation;
  return new HttpError(409, body, { code: 'SymlinkConflict', headers });
}

/** `<container>/<object>` from X-Symlink-Target, %-decoded. */
function parseTarget(raw: string): { container: string; object: string } {
  const decoded = decodePathStrict(raw) ?? raw;
  const slash = decoded.indexOf('/');
  if (decoded.startsWith('/') || slash <= 0 || slash === decoded.length - 1) {
    throw new HttpError(412, 'X-Symlink-Target header must be of the form <container name>/<object name>', {
      code: 'BadSymlinkTarget',
    });
  }
  return { container: decoded.slice(0, slash), object: decoded.slice(slash + 1) };
}

function targetPath(version: string, account: string, quotedTarget: string): string {
  return `/${version}/${account}/${quotedTarget}`;
}

export function symlinkMiddleware(options: SymlinkOptions): Middleware {
  return async (ctx: Context, next: Next): Promise<void> => {
    const path = swiftPathOrUndefined(ctx.path, options.validVersions);
    if (path?.object === undefined || path.container === undefined) {
      await next();
      return;
    }
    if (ctx.method === 'PUT' && ctx.get('x-symlink-target') !== '') {
      await handlePut(ctx, next, path);
      return;
    }
    if (ctx.method === 'POST') {
      await handlePost(ctx, next, path);
      return;
    }
    if (ctx.method === 'GET' || ctx.method === 'HEAD') {
      await handleGetHead(ctx, next, path, options);
      return;
    }
    await next();
  };
}

async function handlePut(ctx: Context, next: Next, path: SwiftPath): Promise<void> {
  const length = ctx.get('content-length');
  if (length !== '0' && !(length === '' && ctx.get('transfer-encoding') === '')) {
    throw new HttpError(400, 'Symlink requests require a zero byte body', { code: 'SymlinkWithBody' });
  }
  const target = parseTarget(ctx.get('x-symlink-target'));
  let account = path.account;
  const rawAccount = ctx.get('x-symlink-target-account');
  if (rawAccount !== '') {
    account = decodePathStrict(rawAccount) ?? rawAccount;
    if (account === '' || account.includes('/')) {
      throw new HttpError(412, 'Account name cannot contain slashes', { code: 'BadSymlinkAccount' });
    }
  }
  if (account === path.account && target.container === path.container && target.object === path.object) {
    throw new HttpError(400, 'Symlink cannot target itself', { code: 'SymlinkToSelf' });
  }
  const headers = ctx.req.headers;
  const quotedTarget = quoteName(`${target.container}/${target.object}`);
  headers[SYSMETA_TARGET] = quotedTarget;
  if (rawAccount !== '') headers[SYSMETA_ACCOUNT] = quoteName(account);
  delete headers['x-symlink-target'];
  delete headers['x-symlink-target-account'];
  const rawEtag = ctx.get('x-symlink-target-etag');
  delete headers['x-symlink-target-etag'];
  if (rawEtag !== '') {
    const etag = normalizeEtag(rawEtag);
    if (etag.includes('"') || etag.includes(';')) {
      throw new HttpError(400, 'Bad X-Symlink-Target-Etag format', { code: 'BadSymlinkEtag' });
    }
    const location = targetPath(path.version, quoteName(account), quotedTarget);
    const head = await swiftState(ctx).subrequest({
      method: 'HEAD',
      path: `${location}?multipart-manifest=get`,
      headers: { [NO_FOLLOW]: 'true' },
      source: 'SYM',
    });
    discardBody(head);
    if (head.status === 404) throw conflict('X-Symlink-Target does not exist', location);
    if (head.status < 200 || head.status >= 300) throw new HttpError(head.status, undefined, { code: 'SymlinkTarget' });
    const found = normalizeEtag(head.headers['x-object-sysmeta-symlink-target-etag'] ?? head.headers.etag ?? '');
    if (found !== etag) {
      throw conflict(`Object Etag '${found}' does not match X-Symlink-Target-Etag header '${etag}'`, location);
    }
    headers[SYSMETA_ETAG] = etag;
    headers[SYSMETA_BYTES] =
      head.headers['x-object-sysmeta-slo-size'] ?? head.headers[SYSMETA_BYTES] ?? head.headers['content-length'] ?? '0';
    if (ctx.get('content-type') === '' && head.headers['content-type'] !== undefined) {
      headers['content-type'] = head.headers['content-type'].replace(/;\s*swift_bytes=\d+/, '');
    }
  }
  headers['content-type'] ??= 'application/symlink';
  await next();
  if (ctx.status >= 200 && ctx.status < 300) {
    ctx.set('X-Symlink-Target', quotedTarget);
    if (rawAccount !== '') ctx.set('X-Symlink-Target-Account', quoteName(account));
  }
}

async function handlePost(ctx: Context, next: Next, path: SwiftPath): Promise<void> {
  if (ctx.get('x-symlink-target') !== '') {
    throw new HttpError(400, 'A PUT request is required to set a symlink target', { code: 'SymlinkPost' });
  }
  await next();
  if (ctx.status < 200 || ctx.status >= 300) return;
  // Our object POST answers without the object's sysmeta (Swift's object server sends it):
  // ask for the link itself, already authorized by the POST.
  const head = await swiftState(ctx).subrequest({
    method: 'HEAD',
    path: `/${path.version}/${quoteName(path.account)}/${quoteName(`${path.container ?? ''}/${path.object ?? ''}`)}`,
    headers: { [NO_FOLLOW]: 'true' },
    preAuthed: true,
    source: 'SYM',
  });
  discardBody(head);
  const target = head.headers[SYSMETA_TARGET] ?? '';
  if (target === '') return;
  const account = head.headers[SYSMETA_ACCOUNT] ?? quoteName(path.account);
  ctx.status = 307;
  ctx.set('Location', targetPath(path.version, account, target));
  const etag = head.headers[SYSMETA_ETAG] ?? '';
  if (etag !== '') ctx.set('X-Symlink-Target-Etag', etag);
  ctx.type = 'text/plain';
  ctx.body = 'The requested POST was applied to a symlink. POST directly to the target to apply requested metadata.';
}

/** The user-visible headers of a symlink's sysmeta (for ?symlink=get and PUT answers). */
function exposeSymlinkHeaders(ctx: Context): void {
  for (const [sysmeta, user] of [
    [SYSMETA_TARGET, 'X-Symlink-Target'],
    [SYSMETA_ACCOUNT, 'X-Symlink-Target-Account'],
    [SYSMETA_ETAG, 'X-Symlink-Target-Etag'],
    [SYSMETA_BYTES, 'X-Symlink-Target-Bytes'],
  ] as const) {
    const value = responseHeader(ctx, sysmeta);
    if (value !== '') ctx.set(user, value);
  }
}

async function handleGetHead(ctx: Context, next: Next, path: SwiftPath, options: SymlinkOptions): Promise<void> {
  const noFollow = ctx.get(NO_FOLLOW) !== '' || ctx.query.symlink === 'get';
  await next();
  if (noFollow) {
    exposeSymlinkHeaders(ctx);
    return;
  }
  let target = responseHeader(ctx, SYSMETA_TARGET);
  if (target === '') return;
  let account = responseHeader(ctx, SYSMETA_ACCOUNT) || quoteName(path.account);
  let expectedEtag = responseHeader(ctx, SYSMETA_ETAG) || undefined;
  if (ctx.body instanceof Readable) ctx.body.destroy();
  const forwarded: Record<string, string> = { [NO_FOLLOW]: 'true' };
  for (const name of FORWARDED_READ_HEADERS) if (ctx.get(name) !== '') forwarded[name] = ctx.get(name);
  let loops = 0;
  for (;;) {
    const location = targetPath(path.version, account, target);
    const response: SubResponse = await swiftState(ctx).subrequest({
      method: ctx.method,
      path: location,
      headers: forwarded,
      source: 'SYM',
    });
    const next = response.headers[SYSMETA_TARGET];
    const linkEtag = response.headers[SYSMETA_ETAG];
    if (next !== undefined && (response.status < 300 || response.status === 416 || response.status === 412)) {
      discardBody(response);
      if (expectedEtag !== undefined && expectedEtag !== normalizeEtag(linkEtag ?? response.headers.etag ?? '')) {
        throw conflict('X-Symlink-Target-Etag headers do not match', location);
      }
      loops += 1;
      if (loops >= options.symloopMax) {
        throw new HttpError(409, `Too many levels of symbolic links, maximum allowed is ${options.symloopMax}`, {
          code: 'SymlinkLoop',
        });
      }
      account = response.headers[SYSMETA_ACCOUNT] ?? account;
      target = next;
      expectedEtag = linkEtag;
      continue;
    }
    if (expectedEtag !== undefined && response.status >= 200 && response.status < 300) {
      const isSlo = /^true$/i.test(response.headers['x-static-large-object'] ?? '');
      const finalEtag = normalizeEtag(
        isSlo ? (response.headers['x-manifest-etag'] ?? '') : (response.headers.etag ?? ''),
      );
      if (finalEtag !== '' && finalEtag !== expectedEtag) {
        discardBody(response);
        throw conflict(
          `Object Etag '${finalEtag}' does not match X-Symlink-Target-Etag header '${expectedEtag}'`,
          location,
        );
      }
    }
    respondWith(ctx, response);
    ctx.set('Content-Location', location);
    return;
  }
}

function respondWith(ctx: Context, response: SubResponse): void {
  ctx.body = response.body ?? '';
  ctx.status = response.status;
  for (const name of Object.keys(ctx.response.headers)) {
    if (name !== 'x-trans-id' && name !== 'x-openstack-request-id') ctx.remove(name);
  }
  for (const [name, value] of Object.entries(response.headers)) {
    if (['transfer-encoding', 'connection'].includes(name)) continue;
    ctx.set(name, value);
  }
}
