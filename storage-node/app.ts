/**
 * The storage node's router: one Koa app serving the object, container and account backend APIs
 * for every device under `devices`, as Swift's three WSGI servers do.
 *
 * It parses `/<device>/<partition>/<account>[/<container>[/<object>]]` (percent-decoded UTF-8;
 * invalid UTF-8, NUL or a `.`/`..` segment -> 400), validates device and partition, checks the
 * device (`mount_check`: 507 unless a mount point; missing: 507; `fallocate_reserve`: 507 on writes
 * when free space is below it), and dispatches by depth or `X-Backend-Server-Type`. One middleware
 * renders errors (HttpError -> Swift status and body, anything else -> 500, logged with its stack)
 * and writes one JSON access line per request with the X-Trans-Id received.
 */
import { lstatSync, statfsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Koa, { type Context } from 'koa';
import { HttpError, insufficientStorage, isHttpError, swiftErrorBody } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { isValidUtf8Name } from '../common/constraints.js';
import type { StorageNodeConfig } from './config.js';
import { sendContinue } from './expect-continue.js';
import { SERVER_TYPE_HEADER, type RequestTarget, type ServerType, type StorageServer } from './server-types.js';

export interface StorageNodeDeps {
  logger: Logger;
  /** Read at each request, so a wrapper installed later (the daemons' REPLICATE hook) applies. */
  servers: Readonly<Record<ServerType, StorageServer>>;
  /** Middleware run after logging/error handling and before path parsing (e.g. `/recon/*`). */
  preRouting?: readonly Koa.Middleware[];
}

/** Partitions are 32-bit: the top `part_power` bits of a 32-bit hash prefix. */
const PARTITION_MAX = 2 ** 32 - 1;
const WRITE_METHODS = new Set(['PUT', 'POST', 'DELETE']);

/** A server for a type whose code has not landed yet. */
export function notImplementedServer(type: ServerType): StorageServer {
  return {
    handle(_ctx: Context): Promise<void> {
      return Promise.reject(new HttpError(501, `${type} server not implemented`, { code: 'NotImplemented' }));
    },
    close: () => Promise.resolve(),
  };
}

function deviceUnavailable(device: string): HttpError {
  return insufficientStorage(
    `<html><h1>Insufficient Storage</h1><p>There was not enough space to save the resource. Drive: ${device}</p></html>`,
  );
}

function decodeSegment(raw: string, what: string): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    throw new HttpError(400, `Invalid UTF8 or contains NULL`, { code: 'BadPath' });
  }
  if (!isValidUtf8Name(decoded)) throw new HttpError(400, 'Invalid UTF8 or contains NULL', { code: 'BadPath' });
  if (decoded.split('/').some((part) => part === '..')) {
    throw new HttpError(400, `Invalid ${what}: path traversal`, { code: 'BadPath' });
  }
  return decoded;
}

/** Parses and validates the request path; throws HttpError 400 on anything malformed. */
export function parseTargetPath(rawUrl: string, devices: string): RequestTarget {
  const question = rawUrl.indexOf('?');
  const path = question === -1 ? rawUrl : rawUrl.slice(0, question);
  if (!path.startsWith('/')) throw new HttpError(400, 'Invalid path', { code: 'BadPath' });
  const segments = path.slice(1).split('/');
  const [rawDevice = '', rawPartition = '', rawAccount = '', rawContainer, ...rawObject] = segments;
  if (segments.length < 3 || rawAccount === '') throw new HttpError(400, 'Invalid path', { code: 'BadPath' });
  const device = decodeSegment(rawDevice, 'device');
  if (device === '' || device === '.' || device === '..' || device.includes('/')) {
    throw new HttpError(400, `Invalid device: ${device}`, { code: 'BadDevice' });
  }
  const partitionText = decodeSegment(rawPartition, 'partition');
  const partition = /^\d{1,10}$/.test(partitionText) ? Number(partitionText) : Number.NaN;
  if (!Number.isSafeInteger(partition) || partition > PARTITION_MAX) {
    throw new HttpError(400, `Invalid partition: ${partitionText}`, { code: 'BadPartition' });
  }
  const account = decodeSegment(rawAccount, 'account');
  if (account === '.' || account.includes('/')) throw new HttpError(400, 'Invalid path', { code: 'BadPath' });
  // `devices` is absolute and clean (config.ts) and the device name has no `/`: no join() needed.
  const devicePath = devices.endsWith('/') ? `${devices}${device}` : `${devices}/${device}`;
  const target: RequestTarget = { device, devicePath, partition, account };
  const objectRaw = rawObject.join('/');
  if (rawContainer !== undefined && (rawContainer !== '' || objectRaw !== '')) {
    const container = decodeSegment(rawContainer, 'container');
    if (container === '' || container === '.' || container.includes('/')) {
      throw new HttpError(400, 'Invalid path', { code: 'BadPath' });
    }
    target.container = container;
    if (objectRaw !== '') target.object = decodeSegment(objectRaw, 'object');
  }
  return target;
}

function serverTypeOf(ctx: Context, target: RequestTarget): ServerType {
  const depthType: ServerType =
    target.object !== undefined ? 'object' : target.container !== undefined ? 'container' : 'account';
  const requested = ctx.get(SERVER_TYPE_HEADER).toLowerCase();
  if (requested === '') return depthType;
  const depth = { account: 0, container: 1, object: 2 } as const;
  if (
    (requested === 'object' || requested === 'container' || requested === 'account') &&
    depth[requested] <= depth[depthType]
  ) {
    return requested;
  }
  throw new HttpError(400, `Invalid X-Backend-Server-Type: ${requested}`, { code: 'BadServerType' });
}

/** `os.path.ismount`: a folder whose device differs from its parent's (or that is its own parent). */
function isMountPoint(path: string): boolean {
  const self = lstatSync(path);
  if (!self.isDirectory()) return false; // a symlink is never a mount point, as in Swift
  const parent = statSync(join(path, '..'));
  return self.dev !== parent.dev || self.ino === parent.ino;
}

/**
 * 507 unless the device is there (and mounted, with mount_check) and, for writes, has more free
 * space than fallocate_reserve. Synchronous stat/statfs: a few microseconds on a mounted disk,
 * cheaper than a hop through the libuv pool on every request (as Swift makes them).
 */
function checkDevice(config: StorageNodeConfig, ctx: Context, target: RequestTarget): void {
  // A servers_per_port child serves only its port's devices; another process holds the others'
  // LevelDB lock. 507, as for a missing drive: the proxy then goes to a handoff.
  if (config.servedDevices !== undefined && !config.servedDevices.has(target.device)) {
    throw deviceUnavailable(target.device);
  }
  try {
    if (config.mountCheck) {
      if (!isMountPoint(target.devicePath)) throw deviceUnavailable(target.device);
    } else if (!statSync(target.devicePath).isDirectory()) {
      throw deviceUnavailable(target.device);
    }
  } catch (error) {
    if (isHttpError(error)) throw error;
    throw deviceUnavailable(target.device);
  }
  const reserve = config.fallocateReserve;
  if (reserve.value > 0 && WRITE_METHODS.has(ctx.method)) {
    const fs = statfsSync(target.devicePath);
    const incoming = ctx.method === 'PUT' ? Number(ctx.get('content-length')) || 0 : 0;
    const freeBytes = fs.bavail * fs.bsize - incoming;
    const tooFull = reserve.isPercent
      ? (freeBytes * 100) / Math.max(1, fs.blocks * fs.bsize) < reserve.value
      : freeBytes < reserve.value;
    if (tooFull) throw deviceUnavailable(target.device);
  }
}

function checkHeaderLines(ctx: Context, maxHeaderSize: number): void {
  const raw = ctx.req.rawHeaders;
  for (let index = 0; index + 1 < raw.length; index += 2) {
    // Swift (eventlet) refuses a header line longer than max_header_size.
    if ((raw[index] ?? '').length + 2 + (raw[index + 1] ?? '').length > maxHeaderSize) {
      throw new HttpError(400, 'Header Line Too Long', { code: 'HeaderLineTooLong' });
    }
  }
}

function renderError(ctx: Context, error: unknown, logger: Logger): void {
  const httpError = isHttpError(error)
    ? error
    : new HttpError(500, 'An error occurred', { code: 'InternalError', cause: error });
  if (httpError.status >= 500) {
    logger.error({ err: error, txId: ctx.get('x-trans-id'), path: ctx.url }, 'request failed');
  }
  if (ctx.headerSent || !ctx.writable) {
    // The status line is gone: the only honest signal left is a cut connection.
    ctx.req.socket.destroy();
    return;
  }
  ctx.status = httpError.status;
  for (const [name, value] of Object.entries(httpError.headers)) ctx.set(name, value);
  ctx.type = 'text/html; charset=UTF-8';
  // A 507 names the drive, as Swift's does; other 5xx messages stay in the log.
  const showMessage = httpError.expose || httpError.code === 'InsufficientStorage';
  ctx.body = swiftErrorBody(httpError.status, showMessage ? httpError.message : undefined);
}

export function createApp(config: StorageNodeConfig, deps: StorageNodeDeps): Koa {
  const app = new Koa();
  const { logger } = deps;
  const maxHeaderSize = config.swift.constraints.max_header_size;
  // Stream errors after the headers went out reach Koa's own handler; they are logged here once.
  app.on('error', (error: unknown) => logger.debug({ err: error }, 'late response error'));

  app.use(async (ctx, next) => {
    const startedMs = performance.now();
    ctx.res.once('close', () => {
      logger.info(
        {
          method: ctx.method,
          path: ctx.url,
          status: ctx.res.headersSent ? ctx.res.statusCode : 499,
          bytes: ctx.res.writableEnded ? (ctx.response.length ?? 0) : ctx.req.socket.bytesWritten,
          durationMs: Math.round((performance.now() - startedMs) * 1000) / 1000,
          txId: ctx.get('x-trans-id') || undefined,
          server: ctx.state.serverType as string | undefined,
        },
        'access',
      );
    });
    try {
      await next();
    } catch (error) {
      renderError(ctx, error, logger);
    }
    // A body left unread (a refused PUT) would be read as the next request on a kept-alive socket.
    if (!ctx.req.complete && !ctx.headerSent) ctx.set('Connection', 'close');
  });

  for (const middleware of deps.preRouting ?? []) app.use(middleware);

  app.use(async (ctx) => {
    checkHeaderLines(ctx, maxHeaderSize);
    const target = parseTargetPath(ctx.req.url ?? '/', config.devices);
    const type = serverTypeOf(ctx, target);
    ctx.state.serverType = type;
    checkDevice(config, ctx, target);
    // The container and account servers read small bodies (if any) without asking.
    if (type !== 'object') sendContinue(ctx.req, ctx.res);
    await deps.servers[type].handle(ctx, target);
  });

  return app;
}
