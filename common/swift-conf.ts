/**
 * The cluster-wide settings every server shares, from `swift.conf` as Swift lays it out:
 * `[swift-hash]` (swift_hash_path_prefix / swift_hash_path_suffix: set once, never changed) and
 * `[swift-constraints]`. The file is `$NEBULA_SWIFT_CONF`, else `/etc/nebula/swift.conf`.
 */
import { ConfigError, loadIniFile, type Ini } from './config.js';
import { constraintsFrom, type Constraints } from './constraints.js';
import type { HashPathSecrets } from './hash-path.js';

export interface SwiftConf {
  hashSecrets: Readonly<HashPathSecrets>;
  constraints: Readonly<Constraints>;
}

export function swiftConfFromIni(ini: Ini): SwiftConf {
  const hash = ini['swift-hash'] ?? {};
  const prefix = hash.swift_hash_path_prefix ?? '';
  const suffix = hash.swift_hash_path_suffix ?? '';
  if (prefix === '' && suffix === '') {
    throw new ConfigError(
      '[swift-hash] needs swift_hash_path_suffix or swift_hash_path_prefix (set once, never changed)',
    );
  }
  return Object.freeze({
    hashSecrets: Object.freeze({ prefix, suffix }),
    constraints: constraintsFrom(ini['swift-constraints']),
  });
}

export function loadSwiftConf(path = process.env.NEBULA_SWIFT_CONF ?? '/etc/nebula/swift.conf'): SwiftConf {
  return swiftConfFromIni(loadIniFile(path));
}
