/**
 * The HTTP edge shared by the container and account servers: reading X-Timestamp and names the
 * way Swift's servers do (400 with a one-line reason; nothing written), and rendering HttpErrors
 * in Swift's form right here, so a server answers the same whatever the router's middleware does.
 */
import type { Context } from 'koa';
import type { Constraints } from '../../common/constraints.js';
import { isValidUtf8Name } from '../../common/constraints.js';
import { HttpError, badRequest, isHttpError, swiftDefaultBody, swiftErrorBody } from '../../common/errors.js';
import { Timestamp } from '../../common/timestamp.js';
import type { RequestTarget } from '../server-types.js';
import { DatabaseUnavailableError } from './registry.js';

export function header(ctx: Context, name: string): string | undefined {
  const value = ctx.headers[name];
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.join(',') : value;
}

/** X-Timestamp in internal form, or Swift's 400. */
export function requireTimestamp(ctx: Context, name = 'x-timestamp'): string {
  const raw = header(ctx, name);
  if (raw === undefined) throw badRequest('Missing X-Timestamp header', 'MissingTimestamp');
  return parseTimestampHeader(raw, 'Invalid X-Timestamp header');
}

export function parseTimestampHeader(raw: string, message: string): string {
  try {
    return Timestamp.parse(raw).internal;
  } catch {
    throw badRequest(message, 'InvalidTimestamp');
  }
}

/** Names within Swift's limits and valid UTF-8 without NUL (the router decoded them). */
export function checkNames(target: RequestTarget, limits: Readonly<Constraints>): void {
  const names: [string, string | undefined, number][] = [
    ['Account', target.account, limits.max_account_name_length],
    ['Container', target.container, limits.max_container_name_length],
    ['Object', target.object, limits.max_object_name_length],
  ];
  for (const [kind, name, max] of names) {
    if (name === undefined) continue;
    if (name === '' || !isValidUtf8Name(name)) {
      throw new HttpError(412, 'Invalid UTF8 or contains NULL', { code: 'InvalidName' });
    }
    const length = Buffer.byteLength(name);
    if (length > max) throw badRequest(`${kind} name length of ${length} longer than ${max}`, 'NameTooLong');
  }
}

/** A non-negative integer header, or 400 naming it. */
export function integerHeader(ctx: Context, name: string, fallback?: number): number {
  const raw = header(ctx, name);
  if (raw === undefined || raw.trim() === '') {
    if (fallback !== undefined) return fallback;
    throw badRequest(`Missing ${name} header`, 'MissingHeader');
  }
  if (!/^\s*\d+\s*$/.test(raw)) throw badRequest(`Invalid ${name} header`, 'InvalidHeader');
  const value = Number(raw);
  if (!Number.isSafeInteger(value)) throw badRequest(`Invalid ${name} header`, 'InvalidHeader');
  return value;
}

/** Renders an HttpError as Swift's servers do; database open failures are 507 as a bad drive. */
export function respondError(ctx: Context, error: unknown): boolean {
  let httpError: HttpError | undefined;
  if (isHttpError(error)) httpError = error;
  else if (error instanceof DatabaseUnavailableError) {
    httpError = new HttpError(507, undefined, { code: 'InsufficientStorage', cause: error });
  }
  if (httpError === undefined) return false;
  ctx.status = httpError.status;
  for (const [name, value] of Object.entries(httpError.headers)) ctx.set(name, value);
  const body = swiftErrorBody(httpError.status, httpError.message);
  ctx.type = body.startsWith('<html>') ? 'text/html; charset=UTF-8' : 'text/plain; charset=UTF-8';
  ctx.body = ctx.method === 'HEAD' ? '' : body;
  return true;
}

/** Sets a status with no body of its own: swob's default page where the status has one (202), else empty (Koa would send the reason phrase). */
export function respondEmpty(ctx: Context, status: number, headers: Record<string, string | number> = {}): void {
  // An empty string, not null: Koa turns a null body into 204 whatever the status.
  ctx.body = swiftDefaultBody(status);
  if (ctx.body !== '') ctx.set('Content-Type', 'text/html; charset=UTF-8');
  ctx.status = status;
  for (const [name, value] of Object.entries(headers)) ctx.set(name, String(value));
}
