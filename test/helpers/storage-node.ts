/**
 * Test helper: a real storage node process in a temp dir.
 *
 *     const node = await startStorageNode({ devices: ['sda1', 'sdb1'] });
 *     try {
 *       await fetch(`${node.url}/sda1/0/a/c/o`, { method: 'PUT', ... });
 *     } finally {
 *       await node.stop();          // SIGTERM (SIGKILL after 5 s), removes the temp dir
 *     }
 *
 * It writes `swift.conf` and `storage-node.conf` into a fresh temp dir (or `dir`), creates one
 * folder per device under `<dir>/devices` (mount_check = false), starts
 * `node dist/storage-node/main.js <conf>` on 127.0.0.1 (port 0 unless `port` is given), and resolves
 * once the process prints `listening ...` (it then answers HTTP). `kill()` sends SIGKILL (for crash
 * tests); `restart()` starts a new process on the same dir and port. Tests run the compiled code,
 * so build first (`npm run build`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request, type IncomingHttpHeaders } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { storageNodeThreadPoolEnv } from '../../common/thread-pool.js';

export const STORAGE_NODE_MAIN = fileURLToPath(new URL('../../storage-node/main.js', import.meta.url));

export interface StorageNodeOptions {
  /** Device folder names (default ['sda1']), or a count (sda1, sdb1, ...). */
  devices?: readonly string[] | number;
  /** Port to bind (default 0: a free one, read back from the process). */
  port?: number;
  /** Reuse this dir (and its data) instead of a fresh temp dir; it is not removed by stop(). */
  dir?: string;
  /** swift.conf secrets (default prefix '' and suffix 'nebula-test'). */
  hashPathPrefix?: string;
  hashPathSuffix?: string;
  /** Extra options: section name -> option -> value (e.g. `{ DEFAULT: { fallocate_reserve: '0' } }`). */
  config?: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** Extra environment for the process (NEBULA_LOG_LEVEL defaults to 'silent'). */
  env?: Readonly<Record<string, string>>;
  /** Extra node flags before the script (e.g. `['--cpu-prof', '--cpu-prof-dir=/tmp/prof']`). */
  nodeArgs?: readonly string[];
  /** How long to wait for `listening` (default 30 s). */
  startTimeoutMs?: number;
}

export interface RunningStorageNode {
  /** `http://127.0.0.1:<port>` */
  url: string;
  host: string;
  port: number;
  /** `127.0.0.1:<port>`, the form of X-Container-Host. */
  hostPort: string;
  dir: string;
  devicesPath: string;
  deviceNames: string[];
  confPath: string;
  swiftConfPath: string;
  process: ChildProcess;
  /** Everything the process wrote to stderr so far. */
  stderr(): string;
  /** SIGTERM, then SIGKILL after 5 s; removes the temp dir unless `dir` was given or keepDir. */
  stop(options?: { keepDir?: boolean }): Promise<void>;
  /** SIGKILL now and wait for the exit; keeps the dir. */
  kill(): Promise<void>;
  /** A new process on the same dir, config and port (after stop({ keepDir: true }) or kill()). */
  restart(): Promise<RunningStorageNode>;
}

/** Threads of a live process (Linux): a storage node has its libuv pool's plus about 7 of Node's own. */
export async function threadCountOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^Threads:\s+(\d+)$/m.exec(status)?.[1] ?? Number.NaN);
}

/** A free TCP port on 127.0.0.1 (for configs that must name a port before the server starts). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function deviceNamesOf(devices: StorageNodeOptions['devices']): string[] {
  if (devices === undefined) return ['sda1'];
  if (typeof devices === 'number') {
    return Array.from({ length: devices }, (_, index) => `sd${String.fromCharCode(97 + index)}1`);
  }
  return [...devices];
}

function iniText(sections: Record<string, Record<string, string>>): string {
  return Object.entries(sections)
    .map(
      ([name, options]) =>
        `[${name}]\n${Object.entries(options)
          .map(([k, v]) => `${k} = ${v}`)
          .join('\n')}\n`,
    )
    .join('\n');
}

async function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return true;
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

async function launch(
  nodeArgs: readonly string[],
  confPath: string,
  env: Readonly<Record<string, string>>,
  startTimeoutMs: number,
): Promise<{ child: ChildProcess; port: number; stderr: () => string }> {
  const child = spawn(process.execPath, [...nodeArgs, STORAGE_NODE_MAIN, confPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NEBULA_LOG_LEVEL: 'silent', ...storageNodeThreadPoolEnv(process.env), ...env },
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (text: string) => {
    stderr = (stderr + text).slice(-65536);
  });
  let stdout = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`storage node did not start within ${startTimeoutMs} ms: ${stderr}`));
    }, startTimeoutMs);
    child.stdout?.setEncoding('utf8');
    let listening = false;
    child.stdout?.on('data', (text: string) => {
      if (listening) return; // later output (access logs at a verbose level) is drained, not kept
      stdout = (stdout + text).slice(-4096);
      const match = /listening [^\s]+:(\d+)/.exec(stdout);
      if (match !== null) {
        listening = true;
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`storage node exited (${code ?? signal}) before listening: ${stderr}`));
    });
  });
  return { child, port, stderr: () => stderr };
}

export async function startStorageNode(options: StorageNodeOptions = {}): Promise<RunningStorageNode> {
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'nebula-sn-')));
  const devicesPath = join(dir, 'devices');
  const deviceNames = deviceNamesOf(options.devices);
  for (const device of deviceNames) await mkdir(join(devicesPath, device), { recursive: true });
  const swiftConfPath = join(dir, 'swift.conf');
  await writeFile(
    swiftConfPath,
    iniText({
      'swift-hash': {
        swift_hash_path_prefix: options.hashPathPrefix ?? '',
        swift_hash_path_suffix: options.hashPathSuffix ?? 'nebula-test',
      },
    }),
  );
  const sections: Record<string, Record<string, string>> = {
    DEFAULT: {
      bind_ip: '127.0.0.1',
      bind_port: String(options.port ?? 0),
      devices: devicesPath,
      mount_check: 'false',
      fallocate_reserve: '0',
      swift_dir: dir,
    },
    'app:object-server': {},
  };
  for (const [name, values] of Object.entries(options.config ?? {})) {
    sections[name] = { ...(sections[name] ?? {}), ...values };
  }
  const confPath = join(dir, 'storage-node.conf');
  await writeFile(confPath, iniText(sections));
  const env = { NEBULA_SWIFT_CONF: swiftConfPath, ...(options.env ?? {}) };
  const startTimeoutMs = options.startTimeoutMs ?? 30_000;

  const make = async (fixedPort: number | undefined): Promise<RunningStorageNode> => {
    const launchEnv = fixedPort === undefined ? env : { ...env, NEBULA_DEFAULT__BIND_PORT: String(fixedPort) };
    const { child, port, stderr } = await launch(options.nodeArgs ?? [], confPath, launchEnv, startTimeoutMs);
    const node: RunningStorageNode = {
      url: `http://127.0.0.1:${port}`,
      host: '127.0.0.1',
      port,
      hostPort: `127.0.0.1:${port}`,
      dir,
      devicesPath,
      deviceNames,
      confPath,
      swiftConfPath,
      process: child,
      stderr,
      async stop(stopOptions = {}) {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          if (!(await waitForExit(child, 5000))) {
            child.kill('SIGKILL');
            await waitForExit(child, 5000);
          }
        }
        if (ownDir && stopOptions.keepDir !== true) await rm(dir, { recursive: true, force: true });
      },
      async kill() {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGKILL');
          await waitForExit(child, 5000);
        }
      },
      restart: () => make(port),
    };
    return node;
  };
  return make(options.port);
}

export interface NodeReply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** False when the server cut the connection before the whole body arrived. */
  complete: boolean;
}

/**
 * One request straight to a storage node over its own connection: the body whole, or in pieces
 * each sent after the socket took the previous one (backpressure, as a real client streams).
 * Resolves with what arrived even when the server cuts the answer short (`complete` says so).
 */
export function callStorageNode(
  node: { host: string; port: number },
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: Buffer | string | Buffer[],
  timeoutMs = 10_000,
): Promise<NodeReply> {
  return new Promise((resolve, reject) => {
    const outgoing = request(
      { host: node.host, port: node.port, method, path, headers, timeout: timeoutMs, agent: false },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        const done = (): void =>
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            body: Buffer.concat(chunks),
            complete: response.complete,
          });
        response.on('end', done);
        response.on('error', done);
        response.on('aborted', done);
      },
    );
    outgoing.on('timeout', () => outgoing.destroy(new Error('timeout')));
    outgoing.on('error', reject);
    if (!Array.isArray(body)) {
      outgoing.end(body);
      return;
    }
    const send = async (): Promise<void> => {
      for (const piece of body) {
        if (!outgoing.write(piece)) await new Promise((resume) => outgoing.once('drain', resume));
      }
      outgoing.end();
    };
    send().catch(reject);
  });
}
