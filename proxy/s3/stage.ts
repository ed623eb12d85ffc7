/**
 * The `s3api` pipeline stage, built from the app's shared pieces: tempauth's users, groups and
 * authorize(). It goes before tempauth (app.ts defaultStages), like Swift's
 * `pipeline = ... s3api tempauth ... proxy-server`.
 */
import type { Stage, StageContext } from '../app.js';
import { s3api } from './middleware.js';

export const S3_STAGE = 's3api';

/** Virtual-hosted-style requests to `<bucket>.localhost` work out of the box on loopback. */
export const DEFAULT_STORAGE_DOMAINS: readonly string[] = ['localhost'];

export function s3apiStage(context: StageContext, storageDomains: readonly string[] = DEFAULT_STORAGE_DOMAINS): Stage {
  const { tempauth } = context;
  return {
    name: S3_STAGE,
    middleware: s3api({
      users: context.config.tempauth.users,
      userGroups: (user) => {
        const found = context.config.tempauth.users.get(user.accountUser);
        return found === undefined ? [] : tempauth.userGroups(found);
      },
      authorize: tempauth.authorize,
      storageDomains,
      pipeline: () => context.subrequests.pipeline,
      // tempauth's prefix (`/auth/`) and the API versions (`v1`, `v1.0`) are the Swift side's.
      swiftPathPrefixes: [
        context.config.tempauth.authPrefix.replace(/^\/+|\/+$/g, '').split('/')[0] ?? 'auth',
        ...context.config.swift.constraints.valid_api_versions,
      ],
    }),
  };
}
