/**
 * The Swift API features beyond plain objects (quotas, and later symlinks, versioning, bulk,
 * CORS, FormPOST, static web), placed into the pipeline in Swift's order relative to the stages
 * already there, each announced in /info only when it is in the pipeline.
 */
import type { Context, Middleware, Next } from 'koa';
import type { Stage, StageContext } from '../app.js';
import { bulkInfo, bulkMiddleware } from './bulk.js';
import { corsMiddleware } from './cors.js';
import { formpostInfo, formpostStage } from './formpost.js';
import { staticWebMiddleware } from './staticweb.js';
import { quotasMiddleware } from './quotas.js';
import { symlinkInfo, symlinkMiddleware } from './symlink.js';
import { legacyVersioningInfo, legacyVersioningMiddleware } from './versioning-legacy.js';
import { objectVersioningInfo, objectVersioningMiddleware } from './versioning/middleware.js';

function insertAfter(stages: Stage[], name: string, stage: Stage): Stage[] {
  const index = stages.findIndex((existing) => existing.name === name);
  if (index < 0) throw new Error(`no pipeline stage named ${name}`);
  return [...stages.slice(0, index + 1), stage, ...stages.slice(index + 1)];
}

/**
 * Swift's `X-Remove-<Type>-Meta-<Name>: anything` on account/container POST and PUT means
 * `X-<Type>-Meta-<Name>:` (empty, which deletes the item); the quota headers rely on it.
 */
export function removeMetadataHeaders(): Middleware {
  return async (ctx: Context, next: Next): Promise<void> => {
    if (ctx.method === 'POST' || ctx.method === 'PUT') {
      const headers = ctx.req.headers;
      for (const name of Object.keys(headers)) {
        const match =
          /^x-remove-(account|container)-(meta-.+|read|write|sync-to|sync-key|versions-location|history-location)$/.exec(
            name,
          );
        if (match === null) continue;
        const target = `x-${match[1] ?? ''}-${match[2] ?? ''}`;
        if (headers[target] === undefined) headers[target] = '';
        delete headers[name];
      }
    }
    await next();
  };
}

export function apiFeatureStages(stages: Stage[], context: StageContext): Stage[] {
  const validVersions = context.config.swift.constraints.valid_api_versions;
  let list = insertAfter(stages, 'tempauth', { name: 'remove-metadata', middleware: removeMetadataHeaders() });
  // Swift: `... copy container-quotas account-quotas slo dlo ...`: after copy, before SLO.
  const anchor = list.some((stage) => stage.name === 'copy') ? 'copy' : 'tempauth';
  list = insertAfter(list, anchor, {
    name: 'quotas',
    middleware: quotasMiddleware({ validVersions, deps: context.deps }),
  });
  // Swift puts bulk before auth; here it follows tempauth so its subrequests carry the identity.
  const bulk = {
    validVersions,
    maxFileSize: context.config.swift.constraints.max_file_size,
    maxDeletesPerRequest: 10_000,
    maxContainersPerExtraction: 10_000,
    maxFailedExtractions: 1_000,
  };
  list = insertAfter(list, 'remove-metadata', { name: 'bulk', middleware: bulkMiddleware(bulk) });
  for (const [name, data] of Object.entries(bulkInfo(bulk))) context.info.register(name, data);
  const symlink = { validVersions, symloopMax: 2 };
  list = insertAfter(list, 'quotas', { name: 'symlink', middleware: symlinkMiddleware(symlink) });
  context.info.register('symlink', symlinkInfo(symlink));
  // Swift: `... slo dlo versioned_writes symlink proxy-server`; here versioning's own reads of the
  // current object ask symlinks not to follow, so it can sit after them.
  list = insertAfter(list, 'symlink', {
    name: 'versioned_writes',
    middleware: legacyVersioningMiddleware({ validVersions, deps: context.deps }),
  });
  context.info.register('versioned_writes', legacyVersioningInfo());
  // Swift's object_versioning lives in the same versioned_writes filter: just before the legacy modes.
  list = insertAfter(list, 'symlink', {
    name: 'object_versioning',
    middleware: objectVersioningMiddleware({ validVersions, deps: context.deps }),
  });
  context.info.register('object_versioning', objectVersioningInfo());
  // CORS wraps every client response after auth (Swift does it in its controllers; /info has no entry).
  list = insertAfter(list, 'tempauth', {
    name: 'cors',
    middleware: corsMiddleware({ validVersions, deps: context.deps }),
  });
  list = insertAfter(list, 'cors', {
    name: 'staticweb',
    middleware: staticWebMiddleware({ validVersions, deps: context.deps }),
  });
  // Swift: `... tempurl formpost ... tempauth`: FormPOST authorizes its own uploads, before auth.
  const authIndex = list.findIndex((stage) => stage.name === 'tempauth');
  list = [...list.slice(0, authIndex), formpostStage(context), ...list.slice(authIndex)];
  context.info.register('formpost', formpostInfo());
  context.info.register('staticweb', {});
  context.info.register('container_quotas', {});
  context.info.register('account_quotas', {});
  return list;
}
