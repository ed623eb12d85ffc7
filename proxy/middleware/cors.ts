/**
 * CORS as Swift's proxy controllers do it (base.py's OPTIONS and cors_validation), per container:
 * `X-Container-Meta-Access-Control-Allow-Origin` (space-separated origins, or `*`),
 * `-Max-Age` and `-Expose-Headers`. A stage right after authentication, for client requests only:
 * - `OPTIONS` without Origin answers 200 with `Allow`; a preflight (Origin and
 *   Access-Control-Request-Method) answers 200 with the Access-Control-* headers when the
 *   container allows the origin and the method, 401 otherwise (Swift's answer).
 * - Any other request with an allowed Origin gets Access-Control-Allow-Origin (the origin, or `*`
 *   when the container says `*` and the request has no token) and Access-Control-Expose-Headers
 *   (Swift's base list, the response's meta headers, and the container's own list).
 * Strict mode as Swift's default: a disallowed origin gets no CORS headers.
 */
import type { Context, Middleware, Next } from 'koa';
import { HttpError } from '../../common/errors.js';
import type { ProxyDeps } from '../controllers/base.js';
import { getContainerInfo } from '../controllers/info.js';
import { swiftPathOrUndefined, type SwiftPath } from '../request-path.js';
import { swiftState } from '../state.js';

export interface CorsOptions {
  validVersions: readonly string[];
  deps: ProxyDeps;
}

const ALLOWED_METHODS = ['HEAD', 'GET', 'PUT', 'POST', 'COPY', 'OPTIONS', 'DELETE'];
const BASE_EXPOSE = [
  'cache-control',
  'content-language',
  'content-type',
  'expires',
  'last-modified',
  'pragma',
  'etag',
  'x-timestamp',
  'x-trans-id',
  'x-openstack-request-id',
];

interface CorsInfo {
  allowOrigin?: string;
  maxAge?: string;
  exposeHeaders?: string;
}

function one(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

async function corsInfo(ctx: Context, deps: ProxyDeps, path: SwiftPath): Promise<CorsInfo> {
  if (path.container === undefined) return {};
  const info = await getContainerInfo(ctx, deps, path.account, path.container);
  if (info.status < 200 || info.status >= 300) return {};
  return {
    allowOrigin: one(info.headers['x-container-meta-access-control-allow-origin']),
    maxAge: one(info.headers['x-container-meta-access-control-max-age']),
    exposeHeaders: one(info.headers['x-container-meta-access-control-expose-headers']),
  };
}

function originAllowed(cors: CorsInfo, origin: string): boolean {
  const allowed = (cors.allowOrigin ?? '').split(' ').filter((item) => item !== '');
  return allowed.includes('*') || allowed.includes(origin);
}

export function corsMiddleware(options: CorsOptions): Middleware {
  return async (ctx: Context, next: Next): Promise<void> => {
    const state = swiftState(ctx);
    if (state.depth > 0) {
      await next();
      return;
    }
    const path = swiftPathOrUndefined(ctx.path, options.validVersions);
    if (path === undefined) {
      await next();
      return;
    }
    const origin = ctx.get('origin');
    if (ctx.method === 'OPTIONS') {
      await preflight(ctx, options.deps, path, origin);
      return;
    }
    if (origin === '') {
      await next();
      return;
    }
    await next();
    const cors = await corsInfo(ctx, options.deps, path);
    if (!originAllowed(cors, origin)) return;
    const star = (cors.allowOrigin ?? '').trim() === '*' && ctx.get('x-auth-token') === '';
    ctx.set('Access-Control-Allow-Origin', star ? '*' : origin);
    const expose = new Set(BASE_EXPOSE);
    for (const name of Object.keys(ctx.response.headers)) {
      if (name.startsWith('x-container-meta-') || name.startsWith('x-object-meta-')) expose.add(name);
    }
    for (const name of (cors.exposeHeaders ?? '').split(' '))
      if (name.trim() !== '') expose.add(name.trim().toLowerCase());
    ctx.set('Access-Control-Expose-Headers', [...expose].join(', '));
  };
}

async function preflight(ctx: Context, deps: ProxyDeps, path: SwiftPath, origin: string): Promise<void> {
  const allow = ALLOWED_METHODS.join(', ');
  const requested = ctx.get('access-control-request-method');
  if (origin === '') {
    ctx.status = 200;
    ctx.set('Allow', allow);
    ctx.body = '';
    return;
  }
  if (requested === '') throw new HttpError(401, undefined, { code: 'CorsRefused' });
  const cors = await corsInfo(ctx, deps, path);
  if (!originAllowed(cors, origin) || !ALLOWED_METHODS.includes(requested.toUpperCase())) {
    throw new HttpError(401, undefined, { code: 'CorsRefused' });
  }
  ctx.status = 200;
  ctx.set('Allow', allow);
  ctx.set('Access-Control-Allow-Origin', (cors.allowOrigin ?? '').trim() === '*' ? '*' : origin);
  if (cors.maxAge !== undefined && cors.maxAge !== '') ctx.set('Access-Control-Max-Age', cors.maxAge);
  ctx.set('Access-Control-Allow-Methods', allow);
  const requestedHeaders = ctx.get('access-control-request-headers');
  if (requestedHeaders !== '') ctx.set('Access-Control-Allow-Headers', requestedHeaders);
  ctx.body = '';
}
