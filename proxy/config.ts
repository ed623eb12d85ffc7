/**
 * The proxy's typed, frozen configuration, read once from a Swift-style proxy-server.conf:
 * `[DEFAULT]` (bind_ip, bind_port, workers, swift_dir), `[app:proxy-server]` (timeouts, quorum and
 * autocreate options, named as Swift names them) and `[filter:tempauth]` (users, token life).
 * The cluster secrets and constraints come from `<swift_dir>/swift.conf`.
 */
import { join } from 'node:path';
import { ConfigError, ConfigSection, loadIniFile, type Ini } from '../common/config.js';
import { swiftConfFromIni, type SwiftConf } from '../common/swift-conf.js';

export interface TempAuthUser {
  /** `account:user`. */
  accountUser: string;
  account: string;
  user: string;
  key: string;
  /** Storage URL template; `$HOST` is replaced by the request's scheme and host. */
  url: string;
  /** Extra groups from the config line, e.g. `.admin`, `.reseller_admin`, `service`. */
  groups: readonly string[];
}

export interface TempAuthConfig {
  /** The first of `resellerPrefixes`: tokens and users' storage URLs use it. */
  resellerPrefix: string;
  /** Every prefix of the accounts this auth serves (`reseller_prefix = AUTH, SERVICE`), `_` appended. */
  resellerPrefixes: readonly string[];
  /** `<prefix>require_group` (or `require_group` for all): the group an owner also needs, by prefix. */
  requireGroups: ReadonlyMap<string, string>;
  /** Where token requests go, e.g. `/auth/`. */
  authPrefix: string;
  tokenLifeS: number;
  /** HMAC key for the stateless tokens every worker and proxy can check. */
  tokenSecret: string;
  storageUrlScheme: string;
  users: ReadonlyMap<string, TempAuthUser>;
}

export interface ProxyConfig {
  bindIp: string;
  bindPort: number;
  workers: number;
  swiftDir: string;
  logLevel: string;
  connTimeoutMs: number;
  nodeTimeoutMs: number;
  recoverableNodeTimeoutMs: number;
  /** After a write has its quorum, how long the answer waits for the remaining replicas. */
  postQuorumTimeoutMs: number;
  clientTimeoutMs: number;
  /** Nodes a read may try: Swift's request_node_count (default 2 * replicas). */
  requestNodeCountPerReplica: number;
  accountAutocreate: boolean;
  allowAccountManagement: boolean;
  recheckAccountExistenceMs: number;
  recheckContainerExistenceMs: number;
  /** Ring files are re-read when changed, at most this often. */
  ringCheckIntervalMs: number;
  tempauth: TempAuthConfig;
  swift: SwiftConf;
}

const DEFAULT_TOKEN_LIFE_S = 86_400;

export function parseTempAuthUsers(section: ConfigSection, resellerPrefix: string): Map<string, TempAuthUser> {
  const users = new Map<string, TempAuthUser>();
  for (const [option, value] of Object.entries(section.values)) {
    let encoded = false;
    let rest: string;
    if (option.startsWith('user64_')) {
      encoded = true;
      rest = option.slice('user64_'.length);
    } else if (option.startsWith('user_')) {
      rest = option.slice('user_'.length);
    } else {
      continue;
    }
    const parts = rest.split('_');
    if (parts.length !== 2) throw new ConfigError(`[filter:tempauth] key ${option} was provided in an invalid format`);
    let [account = '', user = ''] = parts;
    if (encoded) {
      account = Buffer.from(account, 'base64').toString('utf8');
      user = Buffer.from(user, 'base64').toString('utf8');
    }
    const values = value.split(/\s+/).filter(Boolean);
    const key = values.shift();
    if (key === undefined) throw new ConfigError(`[filter:tempauth] ${option} has no key set`);
    const last = values.at(-1);
    let url = `$HOST/v1/${resellerPrefix}${encodeURIComponent(account)}`;
    if (last !== undefined && (last.includes('://') || last.includes('$HOST'))) {
      url = last;
      values.pop();
    }
    users.set(`${account}:${user}`, { accountUser: `${account}:${user}`, account, user, key, url, groups: values });
  }
  return users;
}

/** Swift's config_read_reseller_options: `AUTH, SERVICE` -> `AUTH_`, `SERVICE_`; `''` is the empty prefix. */
export function parseResellerPrefixes(value: string): string[] {
  const prefixes: string[] = [];
  for (const item of value.split(',')) {
    let prefix = item.trim();
    if (prefix === '') continue;
    if (prefix === "''") prefix = '';
    if (prefix !== '' && !prefix.endsWith('_')) prefix += '_';
    if (!prefixes.includes(prefix)) prefixes.push(prefix);
  }
  if (prefixes.length === 0) prefixes.push('');
  return prefixes;
}

/** `require_group` applies to every prefix; `<prefix>require_group` (`''require_group` for '') overrides it. */
function parseRequireGroups(section: ConfigSection, prefixes: readonly string[]): Map<string, string> {
  const groups = new Map<string, string>();
  const common = section.string('require_group', '').trim();
  for (const prefix of prefixes) {
    // The INI reader lowercases option names: `SERVICE_require_group` arrives as `service_require_group`.
    const option = `${prefix === '' ? "''" : prefix.toLowerCase()}require_group`;
    const group = section.optionalString(option)?.trim() ?? common;
    if (group !== '') groups.set(prefix, group);
  }
  return groups;
}

export function proxyConfigFromIni(ini: Ini, env: NodeJS.ProcessEnv = process.env): ProxyConfig {
  const app = ConfigSection.of(ini, 'app:proxy-server', env);
  const auth = ConfigSection.of(ini, 'filter:tempauth', env);
  const swiftDir = app.string('swift_dir', '/etc/nebula');
  const swift = swiftConfFromIni(loadIniFile(join(swiftDir, 'swift.conf'), env));
  const seconds = (option: string, fallback: number): number => {
    const value = app.float(option, fallback);
    if (value < 0) throw new ConfigError(`[app:proxy-server] ${option} must not be negative`);
    return Math.round(value * 1000);
  };
  const nodeTimeoutMs = seconds('node_timeout', 10);
  const resellerPrefixes = parseResellerPrefixes(auth.string('reseller_prefix', 'AUTH'));
  const resellerPrefix = resellerPrefixes[0] ?? '';
  let authPrefix = auth.string('auth_prefix', '/auth/');
  if (authPrefix.replace(/\//g, '') === '') authPrefix = '/auth/';
  if (!authPrefix.startsWith('/')) authPrefix = `/${authPrefix}`;
  if (!authPrefix.endsWith('/')) authPrefix += '/';
  const workers = app.int('workers', 1);
  if (workers < 0 || workers > 64) throw new ConfigError('workers must be between 0 and 64');
  const config: ProxyConfig = {
    bindIp: app.string('bind_ip', '0.0.0.0'),
    bindPort: app.int('bind_port', 8080),
    workers,
    swiftDir,
    logLevel: app.string('log_level', process.env.NEBULA_LOG_LEVEL ?? 'info').toLowerCase(),
    connTimeoutMs: seconds('conn_timeout', 0.5),
    nodeTimeoutMs,
    recoverableNodeTimeoutMs: seconds('recoverable_node_timeout', nodeTimeoutMs / 1000),
    postQuorumTimeoutMs: seconds('post_quorum_timeout', 0.5),
    clientTimeoutMs: seconds('client_timeout', 60),
    requestNodeCountPerReplica: 2,
    accountAutocreate: app.bool('account_autocreate', false),
    allowAccountManagement: app.bool('allow_account_management', false),
    recheckAccountExistenceMs: seconds('recheck_account_existence', 60),
    recheckContainerExistenceMs: seconds('recheck_container_existence', 60),
    ringCheckIntervalMs: seconds('ring_check_interval', 15),
    tempauth: {
      resellerPrefix,
      resellerPrefixes,
      requireGroups: parseRequireGroups(auth, resellerPrefixes),
      authPrefix,
      tokenLifeS: auth.int('token_life', DEFAULT_TOKEN_LIFE_S),
      tokenSecret:
        auth.optionalString('token_secret') ??
        `${swift.hashSecrets.prefix}\u0000${swift.hashSecrets.suffix}\u0000tempauth`,
      storageUrlScheme: auth.string('storage_url_scheme', 'default'),
      users: parseTempAuthUsers(auth, resellerPrefix),
    },
    swift,
  };
  const requestNodeCount = app.optionalString('request_node_count');
  if (requestNodeCount !== undefined) {
    const match = /^\s*(\d+)\s*\*\s*replicas\s*$/.exec(requestNodeCount);
    if (match === null) throw new ConfigError('request_node_count must be "<n> * replicas"');
    config.requestNodeCountPerReplica = Number(match[1]);
  }
  return Object.freeze(config);
}

export function loadProxyConfig(path: string, env: NodeJS.ProcessEnv = process.env): ProxyConfig {
  return proxyConfigFromIni(loadIniFile(path, env), env);
}
