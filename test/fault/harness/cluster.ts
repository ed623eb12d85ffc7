/**
 * Fault-test cluster: four storage node processes (one device each, zones 1-4) on fixed loopback
 * ports, sharing object/container/account rings (part power 6, 3 replicas), in one temp dir, and
 * a small client that writes the way the proxy does (X-Timestamp from the client, the body to
 * the three primaries, a handoff in place of a primary that does not answer, success on a quorum
 * of 2, container updates named in X-Container-*), so that each test knows exactly what was
 * acknowledged. Daemon passes run as separate processes (`daemons/main.js <conf> <name> --once`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { storageNodeThreadPoolEnv } from '../../../common/thread-pool.js';
import { Timestamp } from '../../../common/timestamp.js';
import { buildRing } from '../../../ring/build-ring.js';
import { Ring, type RingDevice } from '../../../ring/ring.js';
import { freePort } from '../../helpers/storage-node.js';

/** The real storage node process (its main.ts wires the daemons' hook and /recon). */
export const NODE_MAIN = fileURLToPath(new URL('../../../storage-node/main.js', import.meta.url));
export const DAEMONS_MAIN = fileURLToPath(new URL('../../../storage-node/daemons/main.js', import.meta.url));
const SECRETS = { prefix: '', suffix: 'nebula-fault' };
const START_TIMEOUT_MS = 30_000;

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export function call(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body: Buffer = Buffer.alloc(0),
  timeoutMs = 5000,
): Promise<Reply> {
  return new Promise((resolve) => {
    const outgoing = request({
      host: '127.0.0.1',
      port,
      method,
      path,
      headers: { ...headers, 'Content-Length': String(body.length) },
      agent: false,
    });
    const timer = setTimeout(() => outgoing.destroy(new Error('timeout')), timeoutMs);
    outgoing.once('error', () => {
      clearTimeout(timer);
      resolve({ status: 0, headers: {}, body: Buffer.alloc(0) });
    });
    outgoing.once('response', (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.once('error', () => resolve({ status: 0, headers: {}, body: Buffer.alloc(0) }));
      response.once('end', () => {
        clearTimeout(timer);
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) });
      });
    });
    outgoing.end(body);
  });
}

export function quote(...segments: readonly (string | number)[]): string {
  return segments.map((segment) => `/${encodeURIComponent(String(segment))}`).join('');
}

export interface FaultNode {
  index: number;
  port: number;
  dir: string;
  confPath: string;
  devicePath: string;
  device: string;
  running(): boolean;
  /** The running process's id (undefined while stopped). */
  pid(): number | undefined;
  start(): Promise<void>;
  /** SIGKILL (a crash). */
  kill(): Promise<void>;
}

export interface FaultCluster {
  base: string;
  nodes: FaultNode[];
  objectRing: Ring;
  containerRing: Ring;
  accountRing: Ring;
  nodeOf(device: RingDevice): FaultNode;
  /** Runs one daemon pass on one node (a separate process, `env` added); resolves with its JSON summary. */
  runDaemon(node: FaultNode, daemon: string, env?: Readonly<Record<string, string>>): Promise<Record<string, unknown>>;
  createContainer(account: string, container: string): Promise<void>;
  putObject(
    account: string,
    container: string,
    object: string,
    body: Buffer,
    headers?: Record<string, string>,
    timestamp?: Timestamp,
  ): Promise<{ acknowledged: boolean; timestamp: Timestamp; handoffs: number }>;
  deleteObject(account: string, container: string, object: string): Promise<boolean>;
  getObject(account: string, container: string, object: string): Promise<Reply>;
  /** The names each container replica lists. */
  listings(account: string, container: string): Promise<string[][]>;
  stop(): Promise<void>;
}

async function waitForExit(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

export async function startFaultCluster(
  options: { nodeCount?: number; extraConfig?: string } = {},
): Promise<FaultCluster> {
  const nodeCount = options.nodeCount ?? 4;
  const base = await mkdtemp(join(tmpdir(), 'nebula-fault-'));
  const ports: number[] = [];
  for (let index = 0; index < nodeCount; index += 1) ports.push(await freePort());
  const ringDir = join(base, 'rings');
  await mkdir(ringDir, { recursive: true });
  for (const kind of ['object', 'container', 'account']) {
    buildRing(join(ringDir, `${kind}.builder`), {
      partPower: 6,
      replicas: 3,
      minPartHours: 0,
      devices: ports.map((port, index) => ({ zone: index + 1, ip: '127.0.0.1', port, device: 'sda1', weight: 100 })),
    });
  }
  const children = new Map<number, ChildProcess>();
  const nodes: FaultNode[] = [];
  for (let index = 0; index < nodeCount; index += 1) {
    const dir = join(base, `node${index + 1}`);
    const devicePath = join(dir, 'devices', 'sda1');
    await mkdir(devicePath, { recursive: true });
    for (const kind of ['object', 'container', 'account']) {
      await copyFile(join(ringDir, `${kind}.ring.gz`), join(dir, `${kind}.ring.gz`));
    }
    await writeFile(
      join(dir, 'swift.conf'),
      `[swift-hash]\nswift_hash_path_prefix = ${SECRETS.prefix}\nswift_hash_path_suffix = ${SECRETS.suffix}\n`,
    );
    const confPath = join(dir, 'storage-node.conf');
    await writeFile(
      confPath,
      [
        '[DEFAULT]',
        'bind_ip = 127.0.0.1',
        `bind_port = ${ports[index]}`,
        `devices = ${join(dir, 'devices')}`,
        'mount_check = false',
        'fallocate_reserve = 0',
        `swift_dir = ${dir}`,
        '[app:object-server]',
        'fsync = false',
        'container_update_timeout = 0.5',
        '[object-replicator]',
        'concurrency = 4',
        '[object-auditor]',
        'files_per_second = 0',
        'zero_byte_files_per_second = 0',
        'bytes_per_second = 0',
        '[object-updater]',
        'objects_per_second = 0',
        options.extraConfig ?? '',
        '',
      ].join('\n'),
    );
    const port = ports[index] ?? 0;
    const node: FaultNode = {
      index,
      port,
      dir,
      confPath,
      devicePath,
      device: 'sda1',
      running: () => children.has(index),
      pid: () => children.get(index)?.pid,
      async start() {
        const child = spawn(process.execPath, [NODE_MAIN, confPath], {
          stdio: ['ignore', 'pipe', 'pipe'],
          env: {
            ...process.env,
            NEBULA_LOG_LEVEL: process.env.NEBULA_LOG_LEVEL ?? 'silent',
            NEBULA_SWIFT_CONF: join(dir, 'swift.conf'),
            // The pool a storage node gets from whoever starts it (common/thread-pool.ts).
            ...storageNodeThreadPoolEnv(process.env),
          },
        });
        // Registered at once, so that a failed start is still killed by stop().
        children.set(index, child);
        child.once('exit', () => {
          if (children.get(index) === child) children.delete(index);
        });
        let stderr = '';
        child.stderr?.setEncoding('utf8');
        child.stderr?.on('data', (text: string) => {
          stderr = (stderr + text).slice(-8192);
        });
        await new Promise<void>((resolve, reject) => {
          // Generous: the machine may be loaded by other test suites.
          const timer = setTimeout(() => {
            child.kill('SIGKILL');
            reject(new Error(`node ${index + 1} did not start: ${stderr}`));
          }, START_TIMEOUT_MS);
          let out = '';
          child.stdout?.setEncoding('utf8');
          child.stdout?.on('data', (text: string) => {
            out += text;
            if (out.includes('listening')) {
              clearTimeout(timer);
              resolve();
            }
          });
          child.once('exit', (code) => {
            clearTimeout(timer);
            reject(new Error(`node ${index + 1} exited ${code}: ${stderr}`));
          });
        });
      },
      async kill() {
        const child = children.get(index);
        if (child === undefined) return;
        child.kill('SIGKILL');
        await waitForExit(child, 5000);
        children.delete(index);
      },
    };
    nodes.push(node);
  }
  const objectRing = Ring.fromData(
    (await import('../../../ring/ring-file.js')).readRingFile(join(ringDir, 'object.ring.gz')),
    SECRETS,
  );
  const containerRing = Ring.fromData(
    (await import('../../../ring/ring-file.js')).readRingFile(join(ringDir, 'container.ring.gz')),
    SECRETS,
  );
  const accountRing = Ring.fromData(
    (await import('../../../ring/ring-file.js')).readRingFile(join(ringDir, 'account.ring.gz')),
    SECRETS,
  );
  const nodeOf = (device: RingDevice): FaultNode => {
    const node = nodes.find((candidate) => candidate.port === device.port);
    if (node === undefined) throw new Error(`no node on port ${device.port}`);
    return node;
  };
  const started = await Promise.allSettled(nodes.map((node) => node.start()));
  const failure = started.find((result) => result.status === 'rejected');
  if (failure !== undefined) {
    for (const node of nodes) await node.kill();
    await rm(base, { recursive: true, force: true });
    throw failure.reason;
  }

  const cluster: FaultCluster = {
    base,
    nodes,
    objectRing,
    containerRing,
    accountRing,
    nodeOf,
    runDaemon(node, daemon, env = {}) {
      return new Promise((resolve, reject) => {
        const child = spawn(process.execPath, [DAEMONS_MAIN, node.confPath, daemon, '--once'], {
          stdio: ['ignore', 'pipe', 'pipe'],
          env: {
            ...process.env,
            NEBULA_LOG_LEVEL: 'silent',
            NEBULA_SWIFT_CONF: join(node.dir, 'swift.conf'),
            // The daemons read, hash and sync files as the node does: the same pool.
            ...storageNodeThreadPoolEnv(process.env),
            ...env,
          },
        });
        let out = '';
        let err = '';
        child.stdout?.setEncoding('utf8').on('data', (text: string) => (out += text));
        child.stderr?.setEncoding('utf8').on('data', (text: string) => (err += text));
        const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
        child.once('exit', (code) => {
          clearTimeout(timer);
          if (code !== 0) {
            reject(new Error(`${daemon} on node ${node.index + 1} exited ${code}: ${err}`));
            return;
          }
          try {
            resolve(JSON.parse(out.trim().split('\n').pop() ?? '{}') as Record<string, unknown>);
          } catch {
            reject(new Error(`${daemon}: no summary: ${out} ${err}`));
          }
        });
      });
    },
    async createContainer(account, container) {
      const timestamp = Timestamp.now().internal;
      const accountPartition = accountRing.getPartition(account);
      for (const device of accountRing.getNodes(accountPartition)) {
        await call(nodeOf(device).port, 'PUT', quote(device.device, accountPartition, account), {
          'X-Timestamp': timestamp,
        });
      }
      const partition = containerRing.getPartition(account, container);
      const accounts = accountRing.getNodes(accountPartition);
      for (const [index, device] of containerRing.getNodes(partition).entries()) {
        const accountNode = accounts[index];
        await call(nodeOf(device).port, 'PUT', quote(device.device, partition, account, container), {
          'X-Timestamp': timestamp,
          ...(accountNode === undefined
            ? {}
            : {
                'X-Account-Host': `127.0.0.1:${accountNode.port}`,
                'X-Account-Partition': String(accountPartition),
                'X-Account-Device': accountNode.device,
              }),
        });
      }
    },
    async putObject(account, container, object, body, headers = {}, timestamp = Timestamp.now()) {
      const partition = objectRing.getPartition(account, container, object);
      const containerPartition = containerRing.getPartition(account, container);
      const containers = containerRing.getNodes(containerPartition);
      const handoffs = objectRing.getMoreNodes(partition);
      let acknowledged = 0;
      let usedHandoffs = 0;
      const put = async (device: RingDevice, index: number): Promise<boolean> => {
        const containerNode = containers[index % containers.length];
        const reply = await call(
          nodeOf(device).port,
          'PUT',
          quote(device.device, partition, account, container, object),
          {
            'X-Timestamp': timestamp.internal,
            'Content-Type': 'application/octet-stream',
            ...(containerNode === undefined
              ? {}
              : {
                  'X-Container-Host': `127.0.0.1:${containerNode.port}`,
                  'X-Container-Partition': String(containerPartition),
                  'X-Container-Device': containerNode.device,
                }),
            ...headers,
          },
          body,
        );
        return reply.status === 201;
      };
      // The three primaries at once, as the proxy streams to them; a failed one is retried on handoffs in turn.
      const failedIndexes: number[] = [];
      await Promise.all(
        objectRing.getNodes(partition).map(async (device, index) => {
          if (await put(device, index)) acknowledged += 1;
          else failedIndexes.push(index);
        }),
      );
      for (const index of failedIndexes) {
        for (let tries = 0; tries < 3; tries += 1) {
          const next = handoffs.next();
          if (next.done === true) break;
          if (await put(next.value, index)) {
            acknowledged += 1;
            usedHandoffs += 1;
            break;
          }
        }
      }
      return { acknowledged: acknowledged >= 2, timestamp, handoffs: usedHandoffs };
    },
    async deleteObject(account, container, object) {
      const timestamp = Timestamp.now().internal;
      const partition = objectRing.getPartition(account, container, object);
      const containerPartition = containerRing.getPartition(account, container);
      const containers = containerRing.getNodes(containerPartition);
      let ok = 0;
      for (const [index, device] of objectRing.getNodes(partition).entries()) {
        const containerNode = containers[index];
        const reply = await call(
          nodeOf(device).port,
          'DELETE',
          quote(device.device, partition, account, container, object),
          {
            'X-Timestamp': timestamp,
            'X-Container-Host': `127.0.0.1:${containerNode?.port ?? 0}`,
            'X-Container-Partition': String(containerPartition),
            'X-Container-Device': containerNode?.device ?? 'sda1',
          },
        );
        if (reply.status === 204 || reply.status === 404) ok += 1;
      }
      return ok >= 2;
    },
    async getObject(account, container, object) {
      const partition = objectRing.getPartition(account, container, object);
      const candidates = [...objectRing.getNodes(partition), ...objectRing.getMoreNodes(partition)];
      let last: Reply = { status: 0, headers: {}, body: Buffer.alloc(0) };
      for (const device of candidates) {
        last = await call(nodeOf(device).port, 'GET', quote(device.device, partition, account, container, object));
        if (last.status === 200) return last;
      }
      return last;
    },
    async listings(account, container) {
      const partition = containerRing.getPartition(account, container);
      const result: string[][] = [];
      for (const device of containerRing.getNodes(partition)) {
        const reply = await call(
          nodeOf(device).port,
          'GET',
          `${quote(device.device, partition, account, container)}?format=json&limit=10000`,
        );
        const rows = reply.status === 200 ? (JSON.parse(reply.body.toString('utf8')) as { name: string }[]) : [];
        result.push(rows.map((row) => row.name));
      }
      return result;
    },
    async stop() {
      for (const node of nodes) {
        const child = children.get(node.index);
        if (child === undefined) continue;
        child.kill('SIGTERM');
        await waitForExit(child, 5000);
        if (children.has(node.index)) child.kill('SIGKILL');
      }
      await rm(base, { recursive: true, force: true });
    },
  };
  return cluster;
}
