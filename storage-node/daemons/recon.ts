/**
 * The daemons' health reports, as Swift's recon: each pass writes its figures to
 * `<recon_cache_path>/<kind>-<report>.json` (e.g. `object-replication.json`, written by rename so
 * a reader never sees half of one), and the storage node serves them:
 *
 *   GET /recon/replication -> { "object": {...}, "container": {...}, "account": {...} }
 *   GET /recon/auditor | /recon/updater | /recon/expirer -> { "object": {...} }
 *
 * A daemon that never ran has no entry. Daemons running in their own process report the same way.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Context, Next } from 'koa';

export type ReconKind = 'object' | 'container' | 'account';
export type ReconReport = 'replication' | 'auditor' | 'updater' | 'expirer';
const REPORTS: readonly string[] = ['replication', 'auditor', 'updater', 'expirer'];
const FILE_RE = /^(object|container|account)-(replication|auditor|updater|expirer)\.json$/;

export function reconPath(reconCachePath: string, kind: ReconKind, report: ReconReport): string {
  return join(reconCachePath, `${kind}-${report}.json`);
}

export async function writeRecon(
  reconCachePath: string,
  kind: ReconKind,
  report: ReconReport,
  figures: Record<string, unknown>,
): Promise<void> {
  await mkdir(reconCachePath, { recursive: true });
  const path = reconPath(reconCachePath, kind, report);
  const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(temp, JSON.stringify(figures));
  await rename(temp, path);
}

export async function readRecon(reconCachePath: string, report: ReconReport): Promise<Record<string, unknown>> {
  const result: Record<string, unknown> = {};
  let names: string[];
  try {
    names = await readdir(reconCachePath);
  } catch {
    return result;
  }
  for (const name of names) {
    const match = FILE_RE.exec(name);
    if (match === null || match[2] !== report) continue;
    try {
      result[match[1] ?? ''] = JSON.parse(await readFile(join(reconCachePath, name), 'utf8')) as unknown;
    } catch {
      // Removed between readdir and read: leave it out.
    }
  }
  return result;
}

/**
 * Koa middleware for `GET /recon/<report>`; anything else goes on to the router. It sits in front
 * of every object request, so the common case is one string comparison and nothing else (a CPU
 * profile charges the whole request below it to this frame: that time is the request's).
 */
export function reconMiddleware(reconCachePath: string): (ctx: Context, next: Next) => Promise<void> {
  return (ctx, next) => (ctx.path.startsWith('/recon/') ? serveRecon(ctx, next, reconCachePath) : next());
}

async function serveRecon(ctx: Context, next: Next, reconCachePath: string): Promise<void> {
  const match = /^\/recon\/([a-z]+)$/.exec(ctx.path);
  if (match === null || (ctx.method !== 'GET' && ctx.method !== 'HEAD')) {
    await next();
    return;
  }
  const report = match[1] ?? '';
  if (!REPORTS.includes(report)) {
    ctx.status = 404;
    ctx.body = '';
    return;
  }
  ctx.status = 200;
  ctx.type = 'application/json';
  ctx.body = JSON.stringify(await readRecon(reconCachePath, report as ReconReport));
}
