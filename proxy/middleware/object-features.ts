/**
 * The object-feature stages that go right after authentication, in Swift's pipeline order
 * (`tempauth tempurl copy slo dlo proxy-server`; tempurl follows tempauth here because tempauth
 * installs its authorize for every request and tempurl must replace it), and their /info entries.
 */
import type { Stage, StageContext } from '../app.js';
import { copyMiddleware } from './copy.js';
import { dloMiddleware } from './dlo.js';
import { sloInfo, sloMiddleware } from './slo.js';
import { tempurlInfo, tempurlMiddleware } from './tempurl.js';

export function objectFeatureStages(context: StageContext): Stage[] {
  const constraints = context.config.swift.constraints;
  const validVersions = constraints.valid_api_versions;
  const slo = { validVersions };
  context.info.register('tempurl', tempurlInfo());
  context.info.register('slo', sloInfo(slo));
  context.info.register('dlo', { max_segments: 10_000 });
  return [
    { name: 'tempurl', middleware: tempurlMiddleware({ validVersions, deps: context.deps }) },
    { name: 'copy', middleware: copyMiddleware({ validVersions, maxFileSize: constraints.max_file_size }) },
    { name: 'slo', middleware: sloMiddleware(slo) },
    { name: 'dlo', middleware: dloMiddleware({ validVersions }) },
  ];
}
