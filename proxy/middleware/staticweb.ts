/**
 * Static web (Swift 2.30's staticweb, reduced), a stage after authentication, for anonymous GET
 * and HEAD requests (or any with `X-Web-Mode: true`) on containers that set
 * `X-Container-Meta-Web-Index`, `-Web-Listings` or `-Web-Error`:
 * - `/c` redirects (301) to `/c/`; `/c/` and `/c/dir/` answer with the index object there, or
 *   an HTML listing when listings are on, or 404;
 * - a 404 is answered with the `404<web-error>` object's body when Web-Error is set.
 * The container must be publicly readable (`.r:*`) for anonymous use, as in Swift.
 * Not copied: Web-Listings-CSS, Web-Directory-Type and the 401 error page.
 */
import type { Context, Middleware, Next } from 'koa';
import { HttpError } from '../../common/errors.js';
import type { ProxyDeps } from '../controllers/base.js';
import { getContainerInfo } from '../controllers/info.js';
import { swiftPathOrUndefined, quoteName } from '../request-path.js';
import { swiftState, type SubResponse } from '../state.js';
import { discardBody } from './large-object-segments.js';

export interface StaticWebOptions {
  validVersions: readonly string[];
  deps: ProxyDeps;
}

function one(value: string | string[] | undefined): string {
  return (Array.isArray(value) ? value[0] : value) ?? '';
}

function html(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function serve(ctx: Context, response: SubResponse, status?: number): void {
  ctx.body = response.body ?? '';
  ctx.status = status ?? response.status;
  for (const [name, value] of Object.entries(response.headers)) {
    if (['transfer-encoding', 'connection', 'x-trans-id', 'x-openstack-request-id'].includes(name)) continue;
    ctx.set(name, value);
  }
}

export function staticWebMiddleware(options: StaticWebOptions): Middleware {
  return async (ctx: Context, next: Next): Promise<void> => {
    const state = swiftState(ctx);
    const webMode = ctx.get('x-web-mode').toLowerCase() === 'true';
    const anonymous = (state.remoteUser ?? '') === '';
    if (state.depth > 0 || (ctx.method !== 'GET' && ctx.method !== 'HEAD') || (!anonymous && !webMode)) {
      await next();
      return;
    }
    const path = swiftPathOrUndefined(ctx.path, options.validVersions);
    if (path?.container === undefined) {
      await next();
      return;
    }
    const info = await getContainerInfo(ctx, options.deps, path.account, path.container);
    const index = one(info.headers['x-container-meta-web-index']);
    const listings = /^(true|yes|on|1)$/i.test(one(info.headers['x-container-meta-web-listings']));
    const error = one(info.headers['x-container-meta-web-error']);
    if (info.status < 200 || info.status >= 300 || (index === '' && !listings && error === '')) {
      await next();
      return;
    }
    const base = `/${path.version}/${quoteName(path.account)}/${quoteName(path.container)}`;
    if (path.object === undefined && !ctx.path.endsWith('/')) {
      if (index === '' && !listings) {
        await next();
        return;
      }
      ctx.status = 301;
      ctx.redirect(`${ctx.path}/`);
      return;
    }
    const dir = path.object === undefined ? '' : path.object;
    if (dir === '' || dir.endsWith('/')) {
      if (index !== '') {
        const page = await state.subrequest({
          method: ctx.method,
          path: `${base}/${quoteName(dir + index)}`,
          source: 'SW',
        });
        if (page.status >= 200 && page.status < 400) {
          serve(ctx, page);
          return;
        }
        discardBody(page);
      }
      if (listings) {
        await listing(ctx, base, dir);
        return;
      }
      await notFound(ctx, base, error);
      return;
    }
    try {
      await next();
    } catch (thrown) {
      // The controllers throw their 404s: answer them with the error page.
      if (!(thrown instanceof HttpError) || thrown.status !== 404 || error === '') throw thrown;
      await notFound(ctx, base, error);
      return;
    }
    if (ctx.status === 404 && error !== '') await notFound(ctx, base, error);
  };
}

async function notFound(ctx: Context, base: string, error: string): Promise<void> {
  if (error !== '') {
    const page = await swiftState(ctx).subrequest({
      method: 'GET',
      path: `${base}/${quoteName(`404${error}`)}`,
      source: 'SW',
    });
    if (page.status >= 200 && page.status < 300) {
      serve(ctx, page, 404);
      return;
    }
    discardBody(page);
  }
  ctx.status = 404;
  ctx.type = 'text/html';
  ctx.body = '<html><body><h1>Not Found</h1></body></html>\n';
}

async function listing(ctx: Context, base: string, dir: string): Promise<void> {
  const response = await swiftState(ctx).subrequest({
    method: 'GET',
    path: `${base}?format=json&delimiter=/&limit=10000&prefix=${encodeURIComponent(dir)}`,
    source: 'SW',
  });
  if (response.status === 204 || response.status === 200) {
    const entries = JSON.parse((await response.buffer(32 * 1024 * 1024)).toString('utf8') || '[]') as {
      name?: string;
      subdir?: string;
      bytes?: number;
      last_modified?: string;
    }[];
    const rows = entries.map((entry) => {
      const full = entry.subdir ?? entry.name ?? '';
      const label = full.slice(dir.length);
      const kind = entry.subdir === undefined ? 'item' : 'subdir';
      return `<tr class="${kind}"><td class="colname"><a href="${html(quoteName(label))}">${html(label)}</a></td><td class="colsize">${entry.bytes ?? '&nbsp;'}</td><td class="coldate">${html(entry.last_modified ?? '')}</td></tr>`;
    });
    const title = html(`Listing of ${decodeURIComponent(ctx.path)}`);
    const parent = dir === '' ? '' : '<tr class="parent"><td class="colname"><a href="../">../</a></td></tr>';
    ctx.status = 200;
    ctx.type = 'text/html; charset=UTF-8';
    ctx.body = `<!DOCTYPE html>\n<html><head><title>${title}</title></head><body><h1 id="title">${title}</h1><table id="listing"><tr id="heading"><th class="colname">Name</th><th class="colsize">Size</th><th class="coldate">Date</th></tr>${parent}${rows.join('')}</table></body></html>\n`;
    return;
  }
  discardBody(response);
  ctx.status = response.status;
  ctx.body = '';
}
