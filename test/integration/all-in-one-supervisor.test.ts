/**
 * `npm start` (dist/proxy/all-in-one.js) as a user runs it: a storage node killed with SIGKILL
 * is reported and started again on its port, and the cluster serves reads and writes through
 * it; SIGTERM then stops every process. And `npm start | head -3`: with the reader of its
 * stdout gone, SIGTERM still stops everything at once, with exit status 0.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { STORAGE_NODE_THREAD_POOL_SIZE } from '../../common/thread-pool.js';
import { freePort, threadCountOf } from '../helpers/storage-node.js';

const ALL_IN_ONE = fileURLToPath(new URL('../../proxy/all-in-one.js', import.meta.url));

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A first storage port whose +10, +20 and +30 (the other three nodes) are free too. */
async function storagePortBase(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const base = await freePort();
    if (base + 30 > 65535) continue;
    const others = await Promise.all([10, 20, 30].map((offset) => portIsFree(base + offset)));
    if (others.every(Boolean)) return base;
  }
  throw new Error('no four free ports 10 apart');
}

async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await Promise.resolve()
      .then(check)
      .catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** The pid of the newest start of a storage node, from its log (every JSON line has `pid`). */
async function storageNodePid(dataDir: string, node: number): Promise<number | undefined> {
  const lines = (await readFile(join(dataDir, 'log', `storage-node-${node}.log`), 'utf8')).trim().split('\n');
  const match = /"pid":(\d+)/.exec(lines.at(-1) ?? '');
  return match === null ? undefined : Number(match[1]);
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

interface AllInOne {
  child: ChildProcess;
  dataDir: string;
  proxyPort: number;
  storageBase: number;
}

/** `npm start`'s program on free ports in a temp dir, its stdout and stderr piped to this test. */
async function spawnAllInOne(): Promise<AllInOne> {
  const dataDir = await mkdtemp(join(tmpdir(), 'nebula-all-in-one-'));
  const storageBase = await storagePortBase();
  const proxyPort = await freePort();
  const child = spawn(process.execPath, [ALL_IN_ONE], {
    env: {
      ...process.env,
      NEBULA_DATA: dataDir,
      NEBULA_PORT: String(proxyPort),
      NEBULA_STORAGE_PORT: String(storageBase),
      NEBULA_PROXY_WORKERS: '0',
      NEBULA_LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return { child, dataDir, proxyPort, storageBase };
}

async function stopAllInOne({ child, dataDir }: AllInOne): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM');
    await exited(child);
  }
  await rm(dataDir, { recursive: true, force: true });
}

test('a storage node killed with SIGKILL comes back and serves; SIGTERM stops everything', async (t) => {
  t.timeout(180_000);
  const allInOne = await spawnAllInOne();
  const { child, dataDir, proxyPort, storageBase } = allInOne;
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  try {
    await waitFor('the cluster to start', () => (stdout.includes('Nebula is running') ? true : undefined));
    const proxy = `http://127.0.0.1:${proxyPort}`;
    const auth = await fetch(`${proxy}/auth/v1.0`, {
      headers: { 'X-Auth-User': 'test:tester', 'X-Auth-Key': 'testing' },
    });
    const token = auth.headers.get('x-auth-token') ?? '';
    const storageUrl = auth.headers.get('x-storage-url') ?? '';
    const call = (method: string, path: string, body?: string): Promise<Response> =>
      fetch(`${storageUrl}${path}`, { method, headers: { 'X-Auth-Token': token }, body });
    t.is((await call('PUT', '/c')).status, 201);

    const node = 2;
    const nodePort = storageBase + 10;
    const before = await waitFor('storage node 2 to log', () => storageNodePid(dataDir, node));
    process.kill(before, 'SIGKILL');
    const line = await waitFor(
      'the restart line',
      () => /storage-node-2 restarted \(pid (\d+)\)/.exec(stderr) ?? undefined,
    );
    t.regex(stderr, /storage-node-2 exited \(SIGKILL\); restarting it in 1 s/);
    t.not(Number(line[1]), before, 'a new process');
    // The all-in-one gives its storage nodes a pool for concurrent fsyncs (common/thread-pool.ts).
    t.true((await threadCountOf(Number(line[1]))) >= STORAGE_NODE_THREAD_POOL_SIZE, 'the larger libuv pool');
    const recon = await fetch(`http://127.0.0.1:${nodePort}/recon/replication`);
    t.is(recon.status, 200, 'the node answers on its port again');

    // Writes and reads through the proxy, with the restarted node holding replicas of some names.
    for (let index = 0; index < 10; index += 1) {
      t.is((await call('PUT', `/c/o${index}`, `body ${index}`)).status, 201);
    }
    for (let index = 0; index < 10; index += 1) {
      t.is(await (await call('GET', `/c/o${index}`)).text(), `body ${index}`);
    }
    t.true(stdout.includes('Nebula is running'), 'still the first all-in-one process');
    t.is(child.exitCode, null);

    child.kill('SIGTERM');
    await exited(child);
    t.is(child.exitCode, 0);
    t.true(await portIsFree(proxyPort), 'the proxy stopped');
    t.true(await portIsFree(nodePort), 'the restarted storage node stopped');
  } finally {
    await stopAllInOne(allInOne);
  }
});

test('with the reader of its stdout gone (npm start | head -3), SIGTERM still stops everything cleanly', async (t) => {
  t.timeout(180_000);
  const allInOne = await spawnAllInOne();
  const { child, proxyPort, storageBase } = allInOne;
  let stdout = '';
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  try {
    await new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer): void => {
        stdout += chunk.toString();
        if (!stdout.includes('Nebula is running')) return;
        child.stdout?.off('data', onData);
        resolve();
      };
      child.stdout?.on('data', onData);
      child.once('exit', () => reject(new Error(`the all-in-one ended early: ${stderr}`)));
    });
    // As head does after its third line: the read end of the pipe closes.
    child.stdout?.destroy();
    const startMs = Date.now();
    child.kill('SIGTERM');
    await exited(child);
    t.is(child.exitCode, 0, stderr);
    t.true(Date.now() - startMs < 15_000, `stopped after ${Date.now() - startMs} ms`);
    t.notRegex(stderr, /EPIPE/);
    t.true(await portIsFree(proxyPort), 'the proxy stopped');
    for (const offset of [0, 10, 20, 30]) {
      t.true(await portIsFree(storageBase + offset), `the storage node on +${offset} stopped`);
    }
  } finally {
    await stopAllInOne(allInOne);
  }
});
