/** `GET /healthcheck`: "OK" while the process serves (Swift's healthcheck middleware). */
import type { Context, Middleware, Next } from 'koa';

export function healthcheck(): Middleware {
  return async (ctx: Context, next: Next): Promise<void> => {
    if (ctx.path !== '/healthcheck') {
      await next();
      return;
    }
    ctx.status = 200;
    ctx.body = 'OK';
    ctx.set('Content-Type', 'text/plain'); // as Swift's, without the charset ctx.type would add
  };
}
