/**
 * A whole cluster on one machine, as real processes: four storage nodes (one device each) and
 * a proxy, all on loopback. Used by `npm start` (all-in-one.ts, fixed ports 6210-6240 and 8080)
 * and by test/helpers/cluster.ts (free ports, temp dirs).
 *
 * `prepareLocalCluster` lays out the data folder and is idempotent: swift.conf with a random
 * hash suffix is written once and then kept (changing it would lose every object), rings are
 * built (or brought up to date) with ring/'s buildRing, and the config files are rewritten each
 * time. `startLocalCluster` then spawns the compiled services and resolves once all listen.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, type WriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { storageNodeThreadPoolEnv } from '../common/thread-pool.js';
import { buildRing } from '../ring/build-ring.js';

export const STORAGE_NODE_MAIN = fileURLToPath(new URL('../storage-node/main.js', import.meta.url));
export const PROXY_MAIN = fileURLToPath(new URL('./main.js', import.meta.url));

/** Swift's SAIO users (test/sample.conf): account, user, key, groups. */
export const DEFAULT_USERS: readonly { account: string; user: string; key: string; groups: string }[] = [
  { account: 'admin', user: 'admin', key: 'admin', groups: '.admin .reseller_admin' },
  { account: 'test', user: 'tester', key: 'testing', groups: '.admin' },
  { account: 'test', user: 'tester2', key: 'testing2', groups: '.admin' },
  { account: 'test', user: 'tester3', key: 'testing3', groups: '' },
  { account: 'test2', user: 'tester2', key: 'testing2', groups: '.admin' },
  { account: 'test5', user: 'tester5', key: 'testing5', groups: 'service' },
];

export interface LocalClusterOptions {
  /** The data folder (created when missing). */
  dataDir: string;
  bindIp?: string;
  /** The proxy's port; 0 picks a free one. */
  proxyPort: number;
  /** One storage node per port (each with one device `d<index+1>` in its own zone); must be real ports. */
  storagePorts: readonly number[];
  replicas?: number;
  partPower?: number;
  /** Proxy worker processes (node:cluster); 0 serves from the proxy's main process. */
  workers?: number;
  /** Extra `[app:proxy-server]` options (e.g. `node_timeout`). */
  proxyOptions?: Readonly<Record<string, string>>;
  /** Extra `[DEFAULT]` options for the storage nodes. */
  storageOptions?: Readonly<Record<string, string>>;
  /** Extra sections of the storage nodes' config (e.g. `object-auditor`). */
  storageSections?: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** Log level for every process (default NEBULA_LOG_LEVEL or info). */
  logLevel?: string;
  /** Write each process's output to `<dataDir>/log/<name>.log` (default true); false discards it. */
  logToFiles?: boolean;
  startTimeoutMs?: number;
}

export interface LocalClusterLayout {
  dataDir: string;
  swiftConfPath: string;
  proxyConfPath: string;
  storageConfPaths: string[];
  devices: { name: string; port: number; path: string }[];
}

function iniText(sections: Record<string, Record<string, string>>): string {
  return Object.entries(sections)
    .map(
      ([name, options]) =>
        `[${name}]\n${Object.entries(options)
          .map(([key, value]) => `${key} = ${value}`)
          .join('\n')}\n`,
    )
    .join('\n');
}

export async function prepareLocalCluster(options: LocalClusterOptions): Promise<LocalClusterLayout> {
  const dataDir = resolve(options.dataDir);
  const bindIp = options.bindIp ?? '127.0.0.1';
  const etc = join(dataDir, 'etc');
  await mkdir(etc, { recursive: true });
  await mkdir(join(dataDir, 'log'), { recursive: true });
  const swiftConfPath = join(etc, 'swift.conf');
  if (!existsSync(swiftConfPath)) {
    // Set once, never changed: every object's place depends on it.
    await writeFile(
      swiftConfPath,
      iniText({
        'swift-hash': { swift_hash_path_prefix: '', swift_hash_path_suffix: randomBytes(16).toString('hex') },
      }),
      { flag: 'wx' },
    );
  }
  const devices = options.storagePorts.map((port, index) => ({
    name: `d${index + 1}`,
    port,
    path: join(dataDir, 'srv', `node${index + 1}`),
  }));
  for (const device of devices) await mkdir(join(device.path, device.name), { recursive: true });
  const replicas = options.replicas ?? 3;
  const partPower = options.partPower ?? 10;
  for (const kind of ['account', 'container', 'object']) {
    buildRing(join(etc, `${kind}.builder`), {
      partPower,
      replicas,
      minPartHours: 1,
      devices: devices.map((device, index) => ({
        region: 1,
        zone: index + 1,
        ip: bindIp,
        port: device.port,
        device: device.name,
        weight: 1,
      })),
    });
  }
  const storageConfPaths: string[] = [];
  for (const [index, device] of devices.entries()) {
    const confPath = join(etc, `storage-node-${index + 1}.conf`);
    await writeFile(
      confPath,
      iniText({
        DEFAULT: {
          bind_ip: bindIp,
          bind_port: String(device.port),
          devices: device.path,
          mount_check: 'false',
          swift_dir: etc,
          fallocate_reserve: '0',
          ...(options.storageOptions ?? {}),
        },
        'app:object-server': {},
        'app:container-server': {},
        'app:account-server': {},
        ...(options.storageSections ?? {}),
      }),
    );
    storageConfPaths.push(confPath);
  }
  const users: Record<string, string> = {};
  for (const user of DEFAULT_USERS) {
    users[`user_${user.account}_${user.user}`] = `${user.key} ${user.groups}`.trim();
  }
  const proxyConfPath = join(etc, 'proxy-server.conf');
  await writeFile(
    proxyConfPath,
    iniText({
      DEFAULT: { bind_ip: bindIp, bind_port: String(options.proxyPort), swift_dir: etc },
      'app:proxy-server': {
        bind_ip: bindIp,
        bind_port: String(options.proxyPort),
        swift_dir: etc,
        workers: String(options.workers ?? 1),
        account_autocreate: 'true',
        // Workers keep their own info caches: short rechecks keep ACL changes visible everywhere.
        recheck_account_existence: '5',
        recheck_container_existence: '5',
        ...(options.proxyOptions ?? {}),
      },
      // Swift's sample: SERVICE_ accounts need the user's token and a service user's X-Service-Token.
      'filter:tempauth': {
        reseller_prefix: 'AUTH, SERVICE',
        SERVICE_require_group: 'service',
        token_life: '86400',
        ...users,
      },
    }),
  );
  return { dataDir, swiftConfPath, proxyConfPath, storageConfPaths, devices };
}

export interface ManagedProcess {
  name: string;
  port: number;
  child: ChildProcess;
  /** The last 64 KiB of stderr. */
  stderr(): string;
  running(): boolean;
  /** SIGTERM, then SIGKILL after 5 s. */
  stop(): Promise<void>;
  /** SIGKILL now (crash tests). */
  kill(): Promise<void>;
  /** Starts the same process again (after stop or kill). */
  restart(): Promise<ManagedProcess>;
}

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolveExit) => {
    const timer = setTimeout(() => resolveExit(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolveExit(true);
    });
  });
}

interface SpawnSpec {
  name: string;
  main: string;
  confPath: string;
  env: Record<string, string>;
  logFile?: string;
  startTimeoutMs: number;
}

async function spawnService(spec: SpawnSpec): Promise<ManagedProcess> {
  const child = spawn(process.execPath, [spec.main, spec.confPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...spec.env },
  });
  let log: WriteStream | undefined;
  if (spec.logFile !== undefined) log = createWriteStream(spec.logFile, { flags: 'a' });
  let stderr = '';
  let stdout = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (text: string) => {
    stderr = (stderr + text).slice(-65536);
    log?.write(text);
  });
  child.once('exit', () => log?.end());
  const port = await new Promise<number>((resolvePort, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${spec.name} did not start within ${spec.startTimeoutMs} ms: ${stderr}`));
    }, spec.startTimeoutMs);
    child.stdout?.setEncoding('utf8');
    let matched = false;
    const onData = (text: string): void => {
      log?.write(text);
      if (matched) return;
      stdout += text;
      const match = /listening [^\s]+:(\d+)/.exec(stdout);
      if (match !== null) {
        matched = true;
        clearTimeout(timer);
        resolvePort(Number(match[1]));
      } else if (stdout.length > 65536) {
        stdout = stdout.slice(-1024);
      }
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${spec.name} exited (${code ?? signal}) before listening: ${stderr}`));
    });
  });
  const managed: ManagedProcess = {
    name: spec.name,
    port,
    child,
    stderr: () => stderr,
    running: () => child.exitCode === null && child.signalCode === null,
    async stop() {
      if (!managed.running()) return;
      child.kill('SIGTERM');
      if (!(await waitForExit(child, 5000))) {
        child.kill('SIGKILL');
        await waitForExit(child, 5000);
      }
    },
    async kill() {
      if (!managed.running()) return;
      child.kill('SIGKILL');
      await waitForExit(child, 5000);
    },
    restart: () => spawnService({ ...spec, env: { ...spec.env, NEBULA_DEFAULT__BIND_PORT: String(port) } }),
  };
  return managed;
}

export interface RunningLocalCluster {
  layout: LocalClusterLayout;
  proxy: ManagedProcess;
  storageNodes: ManagedProcess[];
  /** `http://<ip>:<port>` of the proxy. */
  proxyUrl: string;
  authUrl: string;
  /** Stops the proxy, then the storage nodes (SIGTERM, SIGKILL after 5 s). */
  stop(): Promise<void>;
  /** Stops storage node `index` (kept stopped until startStorageNode). */
  stopStorageNode(index: number): Promise<void>;
  startStorageNode(index: number): Promise<void>;
}

export async function startLocalCluster(options: LocalClusterOptions): Promise<RunningLocalCluster> {
  const layout = await prepareLocalCluster(options);
  const bindIp = options.bindIp ?? '127.0.0.1';
  const logLevel = options.logLevel ?? process.env.NEBULA_LOG_LEVEL ?? 'info';
  const toFiles = options.logToFiles ?? true;
  const startTimeoutMs = options.startTimeoutMs ?? 20_000;
  const env = { NEBULA_SWIFT_CONF: layout.swiftConfPath, NEBULA_LOG_LEVEL: logLevel };
  const started: ManagedProcess[] = [];
  try {
    const settled = await Promise.allSettled(
      layout.storageConfPaths.map((confPath, index) =>
        spawnService({
          name: `storage-node-${index + 1}`,
          main: STORAGE_NODE_MAIN,
          confPath,
          env: { ...env, ...storageNodeThreadPoolEnv(process.env) },
          logFile: toFiles ? join(layout.dataDir, 'log', `storage-node-${index + 1}.log`) : undefined,
          startTimeoutMs,
        }),
      ),
    );
    const storageNodes: ManagedProcess[] = [];
    for (const result of settled) {
      if (result.status === 'fulfilled') {
        started.push(result.value);
        storageNodes.push(result.value);
      }
    }
    const failed = settled.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    const proxy = await spawnService({
      name: 'proxy-server',
      main: PROXY_MAIN,
      confPath: layout.proxyConfPath,
      env,
      logFile: toFiles ? join(layout.dataDir, 'log', 'proxy-server.log') : undefined,
      startTimeoutMs,
    });
    started.push(proxy);
    const proxyUrl = `http://${bindIp}:${proxy.port}`;
    const cluster: RunningLocalCluster = {
      layout,
      proxy,
      storageNodes,
      proxyUrl,
      authUrl: `${proxyUrl}/auth/v1.0`,
      async stop() {
        await cluster.proxy.stop();
        await Promise.all(cluster.storageNodes.map((node) => node.stop()));
      },
      async stopStorageNode(index: number) {
        const node = cluster.storageNodes[index];
        if (node === undefined) throw new Error(`no storage node ${index}`);
        await node.stop();
      },
      async startStorageNode(index: number) {
        const node = cluster.storageNodes[index];
        if (node === undefined) throw new Error(`no storage node ${index}`);
        if (node.running()) return;
        cluster.storageNodes[index] = await node.restart();
      },
    };
    return cluster;
  } catch (error) {
    await Promise.all(started.map((process) => process.stop()));
    throw error;
  }
}

export interface SupervisorOptions {
  /** One line per event (a service that exited, its restart, a restart that failed). */
  log(line: string): void;
  /** Wait before the first restart of a service; doubled for each quick death in a row. */
  backoffMinMs?: number;
  backoffMaxMs?: number;
  /** A service that ran this long before dying starts over at backoffMinMs. */
  stableAfterMs?: number;
}

export interface Supervisor {
  /** Stops restarting (pending restarts are cancelled), then stops the whole cluster. */
  stop(): Promise<void>;
}

/**
 * Keeps every service of the cluster running: a storage node or proxy that exits on its own (a
 * crash, kill -9, the OOM killer) is logged and started again on its port after a backoff (1 s,
 * doubling up to 30 s while it keeps dying within a minute of its start), as an init system
 * would. Only `stop()` (Ctrl-C, SIGTERM) ends the services for good.
 */
export function superviseLocalCluster(cluster: RunningLocalCluster, options: SupervisorOptions): Supervisor {
  const backoffMinMs = options.backoffMinMs ?? 1_000;
  const backoffMaxMs = options.backoffMaxMs ?? 30_000;
  const stableAfterMs = options.stableAfterMs ?? 60_000;
  let stopping = false;
  const timers = new Set<NodeJS.Timeout>();
  const restarts = new Set<Promise<void>>();

  /** Where the service lives in the cluster, so stop() and the tests see its replacement. */
  type Slot = { get(): ManagedProcess; set(process: ManagedProcess): void };
  const slots: Slot[] = [
    { get: () => cluster.proxy, set: (process) => (cluster.proxy = process) },
    ...cluster.storageNodes.map((_, index) => ({
      get: () => cluster.storageNodes[index] as ManagedProcess,
      set: (process: ManagedProcess) => (cluster.storageNodes[index] = process),
    })),
  ];

  const watch = (slot: Slot, startedMs: number, delayMs: number): void => {
    const managed = slot.get();
    managed.child.once('exit', (code, signal) => {
      if (stopping || slot.get() !== managed) return;
      const next = Date.now() - startedMs >= stableAfterMs ? backoffMinMs : delayMs;
      options.log(`${managed.name} exited (${code ?? signal}); restarting it in ${next / 1000} s`);
      schedule(slot, managed, next);
    });
  };

  const schedule = (slot: Slot, dead: ManagedProcess, delayMs: number): void => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (stopping) return;
      const restart = dead.restart().then(
        async (started) => {
          if (stopping) {
            await started.stop();
            return;
          }
          slot.set(started);
          options.log(`${started.name} restarted (pid ${started.child.pid ?? '?'})`);
          watch(slot, Date.now(), Math.min(delayMs * 2, backoffMaxMs));
        },
        (error: unknown) => {
          if (stopping) return;
          const next = Math.min(delayMs * 2, backoffMaxMs);
          options.log(
            `${dead.name} did not restart (${String(error).split('\n')[0]}); trying again in ${next / 1000} s`,
          );
          schedule(slot, dead, next);
        },
      );
      restarts.add(restart);
      void restart.finally(() => restarts.delete(restart));
    }, delayMs);
    timers.add(timer);
  };

  for (const slot of slots) watch(slot, Date.now(), backoffMinMs);
  return {
    async stop() {
      stopping = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      await Promise.allSettled([...restarts]);
      await cluster.stop();
    },
  };
}
