/**
 * Swift's gatekeeper: clients may not send or see internal headers. System metadata
 * (`X-{Account,Container,Object}-Sysmeta-*`) and `X-Backend-*` are removed from client requests
 * before any other stage sees them and from responses on the way out; subrequests do not pass
 * through here, so middlewares can use them.
 */
import type { Context, Middleware, Next } from 'koa';

const INTERNAL_HEADER = /^x-(backend-|(account|container|object)-sysmeta-)/i;

export function gatekeeper(): Middleware {
  return async (ctx: Context, next: Next): Promise<void> => {
    for (const name of Object.keys(ctx.req.headers)) {
      if (INTERNAL_HEADER.test(name)) delete ctx.req.headers[name];
    }
    try {
      await next();
    } finally {
      for (const name of Object.keys(ctx.response.headers)) {
        if (INTERNAL_HEADER.test(name)) ctx.remove(name);
      }
    }
  };
}
