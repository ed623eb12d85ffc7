/**
 * The last stage (Swift's proxy-server app): routes a Swift API path to the account, container
 * or object controller; anything else is 404. Paths are validated here (UTF-8, names).
 */
import type { Context, Middleware } from 'koa';
import { HttpError } from '../../common/errors.js';
import { handleAccount } from '../controllers/account.js';
import type { ProxyDeps } from '../controllers/base.js';
import { handleContainer } from '../controllers/container.js';
import { handleObject } from '../controllers/object.js';
import { parseSwiftPath } from '../request-path.js';

export function proxyServer(deps: ProxyDeps): Middleware {
  return async (ctx: Context): Promise<void> => {
    const path = parseSwiftPath(ctx.path, deps.config.swift.constraints.valid_api_versions);
    if (path === undefined) throw new HttpError(404, undefined, { code: 'NotFound' });
    if (path.object !== undefined) return handleObject(ctx, deps, path);
    if (path.container !== undefined) return handleContainer(ctx, deps, path);
    return handleAccount(ctx, deps, path);
  };
}
