/**
 * The daemons' typed config, read from the storage node's own INI file (as Swift reads
 * `[object-replicator]`, `[object-auditor]`, ... from object-server.conf), frozen.
 *
 * Every section takes `interval` (seconds between pass starts; Swift's defaults: 30, and 300 for
 * the updater and the expirer), `conn_timeout` (0.5 s) and `node_timeout` (10 s). `[DEFAULT] daemons` lists the daemons a storage node runs
 * inside its own process (`all`, or names; default none: run them with daemons/main.js instead).
 * `recon_cache_path` (default `<devices>/../recon-cache/<bind_port>`: several nodes may share a
 * host) is where passes leave their JSON reports. An `interval` in `[DEFAULT]` applies to every
 * daemon (tests set 1 there).
 */
import { join } from 'node:path';
import { ConfigError, ConfigSection, type Ini } from '../../common/config.js';
import type { StorageNodeConfig } from '../config.js';

export const DAEMON_NAMES = [
  'object-replicator',
  'object-auditor',
  'object-updater',
  'object-expirer',
  'container-replicator',
  'account-replicator',
] as const;
export type DaemonName = (typeof DAEMON_NAMES)[number];

export function isDaemonName(value: string): value is DaemonName {
  return (DAEMON_NAMES as readonly string[]).includes(value);
}

export interface CommonDaemonConfig {
  intervalMs: number;
  connTimeoutMs: number;
  nodeTimeoutMs: number;
}

export interface ReplicatorConfig extends CommonDaemonConfig {
  /** Partitions worked on at once. */
  concurrency: number;
  /** Files (data, tombstones, metadata) pushed per second; 0 = unlimited. */
  filesPerSecond: number;
  reclaimAgeSeconds: number;
  /** Whether a handoff partition is removed once every primary has it (Swift's default). */
  deleteHandoffs: boolean;
  /** `suffix_rehash_interval`: how often each partition is listed and hashed in full (partition-hashes.ts). */
  rehashIntervalMs: number;
}

export interface AuditorConfig extends CommonDaemonConfig {
  bytesPerSecond: number;
  filesPerSecond: number;
  zeroByteFilesPerSecond: number;
}

export interface UpdaterConfig extends CommonDaemonConfig {
  concurrency: number;
  updatesPerSecond: number;
}

export interface ExpirerConfig extends CommonDaemonConfig {
  /** Expired objects deleted per second; 0 = unlimited. */
  deletesPerSecond: number;
  /** `full_scan_interval`: how often the expirer reads every object's trailer besides its index. */
  fullScanIntervalMs: number;
}

export interface DaemonsConfig {
  node: StorageNodeConfig;
  swiftDir: string;
  reconCachePath: string;
  /** Daemons this storage node process runs itself. */
  inProcess: readonly DaemonName[];
  objectReplicator: ReplicatorConfig;
  containerReplicator: ReplicatorConfig;
  accountReplicator: ReplicatorConfig;
  auditor: AuditorConfig;
  updater: UpdaterConfig;
  expirer: ExpirerConfig;
}

function positiveMs(section: ConfigSection, option: string, fallbackSeconds: number): number {
  const value = section.float(option, fallbackSeconds);
  if (!(value > 0)) throw new ConfigError(`[${section.name}] ${option} must be positive`);
  return Math.round(value * 1000);
}

function nonNegative(section: ConfigSection, option: string, fallback: number): number {
  const value = section.float(option, fallback);
  if (value < 0) throw new ConfigError(`[${section.name}] ${option} must not be negative`);
  return value;
}

function common(section: ConfigSection, intervalSeconds = 30): CommonDaemonConfig {
  return {
    intervalMs: positiveMs(section, 'interval', intervalSeconds),
    connTimeoutMs: positiveMs(section, 'conn_timeout', 0.5),
    nodeTimeoutMs: positiveMs(section, 'node_timeout', 10),
  };
}

function replicator(ini: Ini, name: string, reclaimAgeSeconds: number): ReplicatorConfig {
  const section = ConfigSection.of(ini, name);
  return Object.freeze({
    ...common(section),
    concurrency: Math.max(1, section.int('concurrency', 2)),
    filesPerSecond: nonNegative(section, 'files_per_second', 0),
    reclaimAgeSeconds: section.int('reclaim_age', reclaimAgeSeconds),
    deleteHandoffs: section.bool('handoff_delete', true),
    rehashIntervalMs: positiveMs(section, 'suffix_rehash_interval', 3600),
  });
}

export function daemonsConfigFrom(node: StorageNodeConfig): DaemonsConfig {
  const { ini } = node;
  const defaults = ConfigSection.of(ini, 'DEFAULT');
  const listed = defaults.list('daemons');
  const inProcess = listed.includes('all') ? [...DAEMON_NAMES] : listed.filter(isDaemonName);
  const unknown = listed.filter((name) => name !== 'all' && !isDaemonName(name));
  if (unknown.length > 0) throw new ConfigError(`[DEFAULT] daemons: unknown ${unknown.join(', ')}`);
  const auditor = ConfigSection.of(ini, 'object-auditor');
  const updater = ConfigSection.of(ini, 'object-updater');
  const expirer = ConfigSection.of(ini, 'object-expirer');
  return Object.freeze({
    node,
    // The node's, resolved against the config file's folder: the daemons read the rings the servers read.
    swiftDir: node.swiftDir,
    reconCachePath: defaults.string('recon_cache_path', join(node.devices, '..', 'recon-cache', String(node.bindPort))),
    inProcess: Object.freeze(inProcess),
    objectReplicator: replicator(ini, 'object-replicator', node.object.reclaimAgeSeconds),
    containerReplicator: replicator(ini, 'container-replicator', node.object.reclaimAgeSeconds),
    accountReplicator: replicator(ini, 'account-replicator', node.object.reclaimAgeSeconds),
    auditor: Object.freeze({
      ...common(auditor),
      bytesPerSecond: nonNegative(auditor, 'bytes_per_second', 10_000_000),
      filesPerSecond: nonNegative(auditor, 'files_per_second', 20),
      zeroByteFilesPerSecond: nonNegative(auditor, 'zero_byte_files_per_second', 50),
    }),
    updater: Object.freeze({
      ...common(updater, 300),
      concurrency: Math.max(1, updater.int('concurrency', 8)),
      updatesPerSecond: nonNegative(updater, 'objects_per_second', 50),
    }),
    expirer: Object.freeze({
      ...common(expirer, 300),
      deletesPerSecond: nonNegative(expirer, 'deletes_per_second', 0),
      fullScanIntervalMs: positiveMs(expirer, 'full_scan_interval', 86_400),
    }),
  });
}
