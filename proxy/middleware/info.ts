/**
 * `GET /info` (Swift's discoverability): the version, the constraints clients must respect (from
 * common/constraints.ts via swift.conf) and one entry per enabled feature. Middlewares register
 * their own entry with `registerInfo(name, data)` when they are added to the pipeline.
 */
import type { Context, Middleware, Next } from 'koa';
import type { Constraints } from '../../common/constraints.js';
import { HttpError } from '../../common/errors.js';
import { DEFAULT_POLICY } from '../../common/storage-policy.js';

export const SWIFT_COMPAT_VERSION = '2.30.1';

export class InfoRegistry {
  private readonly entries = new Map<string, Record<string, unknown>>();

  constructor(constraints: Readonly<Constraints>) {
    const swift: Record<string, unknown> = { version: SWIFT_COMPAT_VERSION, ...constraints };
    swift.policies = [{ name: DEFAULT_POLICY.name, aliases: DEFAULT_POLICY.name, default: true }];
    swift.strict_cors_mode = true;
    this.entries.set('swift', swift);
  }

  register(name: string, data: Record<string, unknown> = {}): void {
    this.entries.set(name, { ...(this.entries.get(name) ?? {}), ...data });
  }

  toJSON(): Record<string, unknown> {
    return Object.fromEntries(this.entries);
  }
}

export function infoMiddleware(registry: InfoRegistry): Middleware {
  return async (ctx: Context, next: Next): Promise<void> => {
    if (ctx.path !== '/info') {
      await next();
      return;
    }
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
      ctx.set('Allow', 'GET, HEAD');
      throw new HttpError(405, undefined, { code: 'MethodNotAllowed' });
    }
    ctx.status = 200;
    ctx.type = 'application/json; charset=UTF-8';
    ctx.body = JSON.stringify(registry.toJSON());
  };
}
