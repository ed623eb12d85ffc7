/**
 * Test helper: a whole Nebula cluster (four storage nodes with one device each, three replicas,
 * and a proxy) as real processes on free loopback ports in a temp dir, built with the same code
 * as `npm start` (proxy/local-cluster.ts).
 *
 *     const cluster = await startCluster();
 *     try {
 *       const { token, storageUrl } = await cluster.auth();            // test:tester / testing
 *       await fetch(`${storageUrl}/c`, { method: 'PUT', headers: { 'X-Auth-Token': token } });
 *     } finally {
 *       await cluster.stop();                                          // kills everything, removes the dir
 *     }
 *
 * `stopStorageNode(i)` / `startStorageNode(i)` take one node down and bring it back (quorum and
 * fault tests). Users are Swift's SAIO users (see DEFAULT_USERS). Run `npm run build` first.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalCluster, type LocalClusterOptions, type RunningLocalCluster } from '../../proxy/local-cluster.js';
import { freePort } from './storage-node.js';

export { DEFAULT_USERS } from '../../proxy/local-cluster.js';

export interface ClusterOptions {
  /** Proxy worker processes (default 0: the proxy serves from one process). */
  workers?: number;
  /** Number of storage nodes (default 4). */
  storageNodes?: number;
  replicas?: number;
  /** Default 8 in tests: small rings build fast and place the same way. */
  partPower?: number;
  proxyOptions?: LocalClusterOptions['proxyOptions'];
  storageOptions?: LocalClusterOptions['storageOptions'];
  /** Keep the temp dir after stop (for debugging; also when $NEBULA_CLUSTER_KEEP is set). */
  keepDir?: boolean;
  /** Log level of the processes (default $NEBULA_CLUSTER_LOG_LEVEL or silent); logs are in `<dir>/log/`. */
  logLevel?: string;
}

export interface AuthResult {
  token: string;
  storageUrl: string;
}

export interface TestCluster extends RunningLocalCluster {
  dir: string;
  /** Gets a token from tempauth (default test:tester / testing). */
  auth(user?: string, key?: string): Promise<AuthResult>;
  /** Env for python-swiftclient's `swift` (ST_AUTH, ST_USER, ST_KEY). */
  swiftEnv(user?: string, key?: string): Record<string, string>;
}

export async function startCluster(options: ClusterOptions = {}): Promise<TestCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'nebula-cluster-'));
  const count = options.storageNodes ?? 4;
  const storagePorts: number[] = [];
  // Ring devices need their ports before the nodes start: reserve distinct free ports.
  while (storagePorts.length < count) {
    const port = await freePort();
    if (!storagePorts.includes(port)) storagePorts.push(port);
  }
  let running: RunningLocalCluster;
  try {
    running = await startLocalCluster({
      dataDir: dir,
      proxyPort: 0,
      storagePorts,
      replicas: options.replicas ?? 3,
      partPower: options.partPower ?? 8,
      workers: options.workers ?? 0,
      proxyOptions: options.proxyOptions,
      storageOptions: { fsync: 'false', ...(options.storageOptions ?? {}) },
      logLevel: options.logLevel ?? process.env.NEBULA_CLUSTER_LOG_LEVEL ?? 'silent',
    });
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const stopAll = running.stop.bind(running);
  const cluster: TestCluster = Object.assign(running, {
    dir,
    async auth(user = 'test:tester', key = 'testing'): Promise<AuthResult> {
      const response = await fetch(running.authUrl, {
        headers: { 'X-Auth-User': user, 'X-Auth-Key': key },
        signal: AbortSignal.timeout(10_000),
      });
      await response.arrayBuffer();
      const token = response.headers.get('x-auth-token');
      const storageUrl = response.headers.get('x-storage-url');
      if (response.status !== 200 || token === null || storageUrl === null) {
        throw new Error(`auth as ${user} failed: ${response.status}`);
      }
      return { token, storageUrl };
    },
    swiftEnv(user = 'test:tester', key = 'testing'): Record<string, string> {
      return { ST_AUTH: running.authUrl, ST_USER: user, ST_KEY: key };
    },
    async stop(): Promise<void> {
      try {
        await stopAll();
      } finally {
        if (options.keepDir !== true && process.env.NEBULA_CLUSTER_KEEP === undefined) {
          await rm(dir, { recursive: true, force: true });
        }
      }
    },
  });
  return cluster;
}
