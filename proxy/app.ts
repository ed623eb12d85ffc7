/**
 * The proxy's Koa app and its request pipeline: an ordered list of named stages, read top to
 * bottom like Swift's `[pipeline:main]`. `defaultStages` holds the core ones:
 *
 *   catch_errors  transaction id, error bodies, access log
 *   gatekeeper    strips internal headers from clients
 *   healthcheck   GET /healthcheck
 *   info          GET /info
 *   s3api         S3 requests, translated to Swift ones
 *   tempauth      tokens; installs authorize()          <- AUTH_STAGE
 *   proxy-server  account / container / object controllers
 *
 * and the feature stages go between them (middleware/object-features.ts, api-features.ts); the
 * whole list, each stage with one line, is in etc/proxy-server.conf's `[pipeline:main]`.
 *
 * Adding a middleware (in its own file): export a factory returning a Koa middleware and insert
 * it with `createApp(config, { stages: (list) => insertBefore(list, 'proxy-server', {...}) })`,
 * or edit `defaultStages`. Stages before AUTH_STAGE see raw client requests (S3 and TempURL go
 * there); stages after it run for client requests and for subrequests
 * (`swiftState(ctx).subrequest(...)`, see state.ts): SLO, DLO, COPY, versioning go there.
 * `createApp` returns the app without listening, so tests can drive it.
 */
import Koa from 'koa';
import type { Context, Middleware, Next } from 'koa';
import type { Logger } from '../common/log.js';
import { BackendClient } from './backend.js';
import type { ProxyConfig } from './config.js';
import type { ProxyDeps } from './controllers/base.js';
import { InfoCache } from './info-cache.js';
import { apiFeatureStages } from './middleware/api-features.js';
import { catchErrors } from './middleware/catch-errors.js';
import { gatekeeper } from './middleware/gatekeeper.js';
import { healthcheck } from './middleware/healthcheck.js';
import { InfoRegistry, infoMiddleware } from './middleware/info.js';
import { objectFeatureStages } from './middleware/object-features.js';
import { proxyServer } from './middleware/proxy-server.js';
import { TempAuth } from './middleware/tempauth.js';
import type { Rings } from './rings.js';
import { s3apiStage } from './s3/stage.js';
import { SubrequestRunner } from './subrequest.js';

export const AUTH_STAGE = 'tempauth';

export interface Stage {
  name: string;
  middleware: Middleware;
}

export interface AppDeps {
  rings: Rings;
  log: Logger;
  backend?: BackendClient;
  /** Rewrites the default stage list (add, remove or reorder stages). */
  stages?: (stages: Stage[], context: StageContext) => Stage[];
}

/** What a stage factory may need: the shared pieces of this app. */
export interface StageContext {
  config: ProxyConfig;
  deps: ProxyDeps;
  info: InfoRegistry;
  subrequests: SubrequestRunner;
  tempauth: TempAuth;
}

export interface ProxyApp {
  app: Koa;
  stages: readonly Stage[];
  deps: ProxyDeps;
  info: InfoRegistry;
  close(): void;
}

export function insertBefore(stages: Stage[], name: string, stage: Stage): Stage[] {
  const index = stages.findIndex((existing) => existing.name === name);
  if (index < 0) throw new Error(`no pipeline stage named ${name}`);
  return [...stages.slice(0, index), stage, ...stages.slice(index)];
}

export function insertAfter(stages: Stage[], name: string, stage: Stage): Stage[] {
  const index = stages.findIndex((existing) => existing.name === name);
  if (index < 0) throw new Error(`no pipeline stage named ${name}`);
  return [...stages.slice(0, index + 1), stage, ...stages.slice(index + 1)];
}

/** Koa's compose (koa depends on koa-compose, but this package does not declare it: keep it here). */
export function compose(middlewares: readonly Middleware[]): Middleware {
  return (ctx: Context, next: Next): Promise<void> => {
    let last = -1;
    const dispatch = async (index: number): Promise<void> => {
      if (index <= last) throw new Error('next() called multiple times');
      last = index;
      const middleware = middlewares[index];
      if (middleware === undefined) {
        await next();
        return;
      }
      await middleware(ctx, () => dispatch(index + 1));
    };
    return dispatch(0);
  };
}

export function defaultStages(context: StageContext): Stage[] {
  return [
    { name: 'catch_errors', middleware: catchErrors(context.deps.log, context.subrequests) },
    { name: 'gatekeeper', middleware: gatekeeper() },
    { name: 'healthcheck', middleware: healthcheck() },
    { name: 'info', middleware: infoMiddleware(context.info) },
    s3apiStage(context),
    { name: AUTH_STAGE, middleware: context.tempauth.middleware() },
    ...objectFeatureStages(context),
    { name: 'proxy-server', middleware: proxyServer(context.deps) },
  ];
}

export function createApp(config: ProxyConfig, appDeps: AppDeps): ProxyApp {
  const backend = appDeps.backend ?? new BackendClient();
  const deps: ProxyDeps = {
    config,
    rings: appDeps.rings,
    backend,
    info: new InfoCache(config.recheckAccountExistenceMs, config.recheckContainerExistenceMs),
    log: appDeps.log,
  };
  const info = new InfoRegistry(config.swift.constraints);
  info.register('tempauth', { account_acls: true });
  const subrequests = new SubrequestRunner();
  const tempauth = new TempAuth(config.tempauth, config.swift.constraints.valid_api_versions, deps);
  const context: StageContext = { config, deps, info, subrequests, tempauth };
  let stages = apiFeatureStages(defaultStages(context), context);
  if (appDeps.stages !== undefined) stages = appDeps.stages(stages, context);
  const authIndex = stages.findIndex((stage) => stage.name === AUTH_STAGE);
  const app = new Koa({ proxy: false });
  app.silent = true;
  app.on('error', (error: Error) => {
    // Errors after the response started (a body stream that failed): the connection was cut.
    appDeps.log.warn({ err: error }, 'response stream failed');
  });
  for (const stage of stages) app.use(stage.middleware);
  subrequests.attach(app, compose(stages.slice(authIndex + 1).map((stage) => stage.middleware)));
  return {
    app,
    stages,
    deps,
    info,
    close: () => backend.close(),
  };
}
