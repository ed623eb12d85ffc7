/**
 * The storage node's typed config, read once from its INI file (Swift's `object-server.conf`
 * layout: `[DEFAULT]` plus `[app:object-server]`, `[app:container-server]`, `[app:account-server]`)
 * and from swift.conf (hash secrets, constraints). Frozen; nothing else reads options or env.
 */
import { resolve } from 'node:path';
import { ConfigError, ConfigSection, loadIniFile, type Ini } from '../common/config.js';
import { loadSwiftConf, type SwiftConf } from '../common/swift-conf.js';

/** `fallocate_reserve`: free bytes (or a percentage of the device) a write must leave. */
export interface FallocateReserve {
  value: number;
  isPercent: boolean;
}

export interface StorageNodeConfig {
  bindIp: string;
  /** Ignored when `serversPerPort` > 0: each child listens on its devices' port from the rings. */
  bindPort: number;
  /**
   * `servers_per_port` (Swift's object-server option, here for the whole node): 0 serves every
   * device from this process on `bind_port`; N > 0 makes this process a parent that starts one
   * child per port found in the rings for this host's addresses (servers-per-port.ts).
   */
  serversPerPort: number;
  /** `ring_check_interval`: how often a servers_per_port parent looks for changed rings. */
  ringCheckIntervalMs: number;
  /**
   * The only devices this process serves (a servers_per_port child); undefined serves every
   * folder under `devices`. Set by main.ts from the parent's assignment, never read from the file.
   */
  servedDevices?: ReadonlySet<string>;
  /** Absolute path of the folder holding swift.conf and the rings. */
  swiftDir: string;
  /** Absolute path of the folder holding one folder (or mount point) per device. */
  devices: string;
  mountCheck: boolean;
  fallocateReserve: FallocateReserve;
  logLevel: string;
  swift: SwiftConf;
  object: ObjectServerConfig;
  /** The raw sections, for the container and account servers' own options. */
  ini: Ini;
}

export interface ObjectServerConfig {
  /** fsync data and folders before answering a write (Swift always does; off only for tests). */
  fsync: boolean;
  /** Objects up to this size are read whole and checked against their ETag before any byte goes out. */
  verifyBeforeSendBytesMax: number;
  /** Bytes per read of a large object (1 MiB: per-chunk costs dominate at Swift's 64 KiB). */
  diskChunkSize: number;
  /** `keep_cache_size`: objects this size or larger leave the page cache as a GET reads them. */
  keepCacheSize: number;
  /** Per-call timeouts of a container update: connect and response. */
  connTimeoutMs: number;
  nodeTimeoutMs: number;
  /** How long a write waits for its container updates before answering (the rest go on in the background). */
  containerUpdateTimeoutMs: number;
  /** Tombstones older than this are removed when their hash folder is next cleaned. */
  reclaimAgeSeconds: number;
  /** How long a client may stay silent in the middle of a PUT body. */
  clientTimeoutMs: number;
}

export function parseFallocateReserve(raw: string): FallocateReserve {
  const text = raw.trim();
  const isPercent = text.endsWith('%');
  const value = Number(isPercent ? text.slice(0, -1) : text);
  if (!Number.isFinite(value) || value < 0 || (isPercent && value > 100)) {
    throw new ConfigError(`fallocate_reserve must be bytes or a percentage, got ${JSON.stringify(raw)}`);
  }
  return { value, isPercent };
}

function seconds(section: ConfigSection, option: string, fallbackSeconds: number): number {
  const value = section.float(option, fallbackSeconds);
  if (value <= 0) throw new ConfigError(`[${section.name}] ${option} must be positive`);
  return Math.round(value * 1000);
}

export function storageNodeConfigFromIni(ini: Ini, swift: SwiftConf, configDir = process.cwd()): StorageNodeConfig {
  const defaults = ConfigSection.of(ini, 'DEFAULT');
  const objectSection = ConfigSection.of(ini, 'app:object-server');
  const devicesRaw = defaults.string('devices', '/srv/node');
  const bindPort = defaults.int('bind_port', 6200);
  if (bindPort < 0 || bindPort > 65535) throw new ConfigError(`bind_port out of range: ${bindPort}`);
  const serversPerPort = defaults.int('servers_per_port', 0);
  if (serversPerPort < 0) throw new ConfigError(`servers_per_port must not be negative, got ${serversPerPort}`);
  const config: StorageNodeConfig = {
    bindIp: defaults.string('bind_ip', '127.0.0.1'),
    bindPort,
    serversPerPort,
    ringCheckIntervalMs: seconds(defaults, 'ring_check_interval', 15),
    // Normalized (resolve drops `//`, `.` and a trailing `/`): the router appends device names to it.
    devices: resolve(configDir, devicesRaw),
    swiftDir: resolve(configDir, defaults.string('swift_dir', '/etc/nebula')),
    mountCheck: defaults.bool('mount_check', true),
    fallocateReserve: parseFallocateReserve(defaults.string('fallocate_reserve', '1%')),
    logLevel: defaults.string('log_level', 'info').toLowerCase(),
    swift,
    object: Object.freeze({
      fsync: objectSection.bool('fsync', true),
      verifyBeforeSendBytesMax: objectSection.int('verify_before_send_bytes_max', 1024 * 1024),
      diskChunkSize: objectSection.int('disk_chunk_size', 1024 * 1024),
      keepCacheSize: objectSection.int('keep_cache_size', 5 * 1024 * 1024),
      connTimeoutMs: seconds(objectSection, 'conn_timeout', 0.5),
      nodeTimeoutMs: seconds(objectSection, 'node_timeout', 3),
      containerUpdateTimeoutMs: seconds(objectSection, 'container_update_timeout', 1),
      reclaimAgeSeconds: objectSection.int('reclaim_age', 604800),
      clientTimeoutMs: seconds(objectSection, 'client_timeout', 60),
    }),
    ini,
  };
  return Object.freeze(config);
}

/** Reads the node's INI file; swift.conf is `swift_dir/swift.conf` unless $NEBULA_SWIFT_CONF names one. */
export function loadStorageNodeConfig(path: string, env: NodeJS.ProcessEnv = process.env): StorageNodeConfig {
  const ini = loadIniFile(path, env);
  const configDir = resolve(path, '..');
  const swiftDir = ConfigSection.of(ini, 'DEFAULT', env).string('swift_dir', '/etc/nebula');
  const swiftConfPath = env.NEBULA_SWIFT_CONF ?? resolve(configDir, swiftDir, 'swift.conf');
  return storageNodeConfigFromIni(ini, loadSwiftConf(swiftConfPath), configDir);
}
