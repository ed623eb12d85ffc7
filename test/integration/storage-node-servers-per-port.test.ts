/**
 * servers_per_port on a real storage node process: rings give one host (127.0.0.1) a device per
 * port, and `node dist/storage-node/main.js` with `servers_per_port` starts one child per port,
 * each serving (and holding the LevelDB lock of) only its own device; a killed child comes back,
 * a ring that moves a device to another port moves its child, and SIGTERM ends every process.
 */
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { buildRing } from '../../ring/build-ring.js';
import { STORAGE_NODE_THREAD_POOL_SIZE } from '../../common/thread-pool.js';
import { freePort, STORAGE_NODE_MAIN, threadCountOf } from '../helpers/storage-node.js';

interface Layout {
  /** Ring kinds -> devices on this host: [device, port]. */
  object: readonly (readonly [string, number])[];
  container: readonly (readonly [string, number])[];
  account: readonly (readonly [string, number])[];
}

interface ParentNode {
  process: ChildProcess;
  /** Every `listening <ip>:<port>` line printed so far, as ports. */
  listening: number[];
  stderr: () => string;
}

const T = (seconds: number): string => (Math.floor(Date.now() / 1000) - 1000 + seconds).toFixed(5);

async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  for (let attempt = 0; ports.size < count && attempt < 100; attempt += 1) ports.add(await freePort());
  return [...ports];
}

function writeRings(etc: string, layout: Layout): void {
  for (const kind of ['object', 'container', 'account'] as const) {
    buildRing(join(etc, `${kind}.builder`), {
      partPower: 4,
      replicas: 1,
      minPartHours: 0,
      devices: layout[kind].map(([device, port], index) => ({
        region: 1,
        zone: index + 1,
        ip: '127.0.0.1',
        port,
        device,
        weight: 1,
      })),
    });
  }
}

async function setUp(
  layout: Layout,
  options: Record<string, string>,
): Promise<{ dir: string; etc: string; confPath: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'nebula-spp-'));
  const etc = join(dir, 'etc');
  await mkdir(etc);
  const devices = new Set([...layout.object, ...layout.container, ...layout.account].map(([device]) => device));
  for (const device of devices) await mkdir(join(dir, 'devices', device), { recursive: true });
  writeRings(etc, layout);
  await writeFile(join(etc, 'swift.conf'), '[swift-hash]\nswift_hash_path_suffix = nebula-test\n');
  const defaults = {
    bind_ip: '127.0.0.1',
    devices: join(dir, 'devices'),
    mount_check: 'false',
    fallocate_reserve: '0',
    swift_dir: etc,
    ...options,
  };
  const confPath = join(etc, 'storage-node.conf');
  const lines = Object.entries(defaults).map(([option, value]) => `${option} = ${value}`);
  await writeFile(confPath, `[DEFAULT]\n${lines.join('\n')}\n\n[app:object-server]\nfsync = false\n`);
  return { dir, etc, confPath };
}

function startParent(confPath: string): ParentNode {
  const child = spawn(process.execPath, [STORAGE_NODE_MAIN, confPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NEBULA_LOG_LEVEL: process.env.NEBULA_LOG_LEVEL ?? 'silent' },
  });
  const node: ParentNode = { process: child, listening: [], stderr: () => stderr };
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  createInterface({ input: child.stdout }).on('line', (line) => {
    const match = /^listening (\S+):(\d+)$/.exec(line);
    if (match !== null) node.listening.push(Number(match[2]));
  });
  return node;
}

/** Polls `check` every 50 ms until it holds or `timeoutMs` passes. */
async function until(check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return check();
}

async function call(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: string) {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    headers,
    body,
    signal: AbortSignal.timeout(5_000),
  });
  return { status: response.status, body: await response.text() };
}

/** The processes that hold `path` open, as lsof would find them. */
async function holdersOf(path: string): Promise<number[]> {
  const holders: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fds = await readdir(`/proc/${entry}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      if ((await readlink(`/proc/${entry}/fd/${fd}`).catch(() => '')) === path) {
        holders.push(Number(entry));
        break;
      }
    }
  }
  return holders;
}

async function parentPidOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function exitOf(child: ChildProcess, timeoutMs: number): Promise<number | string | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode ?? child.signalCode;
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('timeout'), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(code ?? signal);
    });
  });
}

async function refused(port: number): Promise<boolean> {
  try {
    await call(port, 'GET', '/healthcheck');
    return false;
  } catch {
    return true;
  }
}

test.serial(
  'servers_per_port = 1: a child per ring port, each owning its device; a killed child comes back; SIGTERM ends all',
  async (t) => {
    const [portB = 0, portC = 0, bindPort = 0] = await distinctFreePorts(3);
    const layout: Layout = {
      object: [
        ['sdb', portB],
        ['sdc', portC],
      ],
      container: [
        ['sdb', portB],
        ['sdc', portC],
      ],
      account: [
        ['sdb', portB],
        ['sdc', portC],
      ],
    };
    const { dir, confPath } = await setUp(layout, { bind_port: String(bindPort), servers_per_port: '1' });
    const node = startParent(confPath);
    const parentPid = node.process.pid ?? 0;
    try {
      t.true(await until(() => node.listening.length >= 2), `two children listening; stderr: ${node.stderr()}`);
      t.deepEqual([...node.listening].sort(), [portB, portC].sort());
      t.true(await refused(bindPort), 'bind_port is ignored');

      for (const [device, port] of [
        ['sdb', portB],
        ['sdc', portC],
      ] as const) {
        t.is((await call(port, 'PUT', `/${device}/1/AUTH_a/c`, { 'X-Timestamp': T(1) })).status, 201, device);
        t.is((await call(port, 'GET', `/${device}/1/AUTH_a/c`)).status, 204, device);
      }
      const refusedHere = await call(portB, 'PUT', '/sdc/1/AUTH_a/other', { 'X-Timestamp': T(2) });
      t.is(refusedHere.status, 507, 'a device of another port is not served here');
      t.regex(refusedHere.body, /Drive: sdc/);

      const body = 'one process per device';
      const put = await call(
        portC,
        'PUT',
        '/sdc/2/AUTH_a/c/greeting',
        { 'X-Timestamp': T(3), 'Content-Type': 'text/plain', 'Content-Length': String(body.length) },
        body,
      );
      t.is(put.status, 201);
      t.is((await call(portC, 'GET', '/sdc/2/AUTH_a/c/greeting')).body, body);
      t.is((await call(portB, 'GET', '/sdc/2/AUTH_a/c/greeting')).status, 507);

      const lockB = join(dir, 'devices', 'sdb', 'db', 'LOCK');
      const lockC = join(dir, 'devices', 'sdc', 'db', 'LOCK');
      const [holderB] = await holdersOf(lockB);
      const holdersC = await holdersOf(lockC);
      t.deepEqual((await holdersOf(lockB)).length, 1, 'one process holds sdb');
      t.is(holdersC.length, 1, 'one process holds sdc');
      t.not(holderB, holdersC[0], 'each device in its own process');
      for (const holder of [holderB ?? 0, holdersC[0] ?? 0]) {
        t.not(holder, parentPid);
        t.is(await parentPidOf(holder), parentPid, 'held by a child of the node');
        // The parent gives each child a pool for concurrent fsyncs (common/thread-pool.ts).
        t.true((await threadCountOf(holder)) >= STORAGE_NODE_THREAD_POOL_SIZE, 'a child has the larger libuv pool');
      }

      process.kill(holderB ?? 0, 'SIGKILL');
      t.true(await until(() => node.listening.length >= 3), 'the killed child came back');
      t.is(node.listening[2], portB);
      t.is((await call(portB, 'GET', '/sdb/1/AUTH_a/c')).status, 204, 'its data is served again');
      const [newHolderB] = await holdersOf(lockB);
      t.true(newHolderB !== undefined && newHolderB !== holderB);

      const children = [newHolderB ?? 0, holdersC[0] ?? 0];
      node.process.kill('SIGTERM');
      t.is(await exitOf(node.process, 15_000), 0, 'the parent exits 0');
      t.true(await until(() => children.every((pid) => !isAlive(pid)), 5_000), 'every child is gone');
    } finally {
      if (node.process.exitCode === null) node.process.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    }
  },
);

test.serial(
  'servers_per_port = 2: object-only ports get two children, database ports one; a ring that moves a port moves its child',
  async (t) => {
    const [portObjects = 0, portDatabases = 0, portMoved = 0] = await distinctFreePorts(3);
    const layout: Layout = {
      object: [
        ['sdd', portObjects],
        ['sdb', portDatabases],
      ],
      container: [['sdb', portDatabases]],
      account: [['sdb', portDatabases]],
    };
    const { dir, etc, confPath } = await setUp(layout, {
      bind_port: '0',
      servers_per_port: '2',
      ring_check_interval: '0.2',
    });
    const node = startParent(confPath);
    try {
      t.true(await until(() => node.listening.length >= 3), `three children listening; stderr: ${node.stderr()}`);
      await new Promise((resolve) => setTimeout(resolve, 300));
      t.deepEqual([...node.listening].sort(), [portObjects, portObjects, portDatabases].sort());
      for (let round = 0; round < 4; round += 1) {
        t.is(
          (await call(portObjects, 'PUT', `/sdd/1/AUTH_a/c/o${round}`, { 'X-Timestamp': T(round) }, 'x')).status,
          201,
        );
      }
      t.is((await call(portDatabases, 'PUT', '/sdb/1/AUTH_a/c', { 'X-Timestamp': T(5) })).status, 201);

      writeRings(etc, {
        ...layout,
        container: [['sdb', portMoved]],
        account: [['sdb', portMoved]],
        object: [
          ['sdd', portObjects],
          ['sdb', portMoved],
        ],
      });
      t.true(await until(() => node.listening.includes(portMoved)), 'a child on the new port');
      t.true(await until(() => refused(portDatabases)), 'the old port is closed');
      t.is((await call(portMoved, 'GET', '/sdb/1/AUTH_a/c')).status, 204, 'the device is served on its new port');

      node.process.kill('SIGTERM');
      t.is(await exitOf(node.process, 15_000), 0);
    } finally {
      if (node.process.exitCode === null) node.process.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    }
  },
);
