/**
 * The object server under faults, each test with its own storage node process: kill -9 during a
 * large PUT, a large object that rots on disk (cut off and quarantined), a full disk
 * (fallocate_reserve), mount_check, and container updates to servers that answer, refuse, hang or
 * are down (async_pending). A small recording HTTP server stands in for a container server where
 * a test checks the exact update it receives.
 */
import test from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { hashPath } from '../../common/hash-path.js';
import { Timestamp } from '../../common/timestamp.js';
import {
  callStorageNode,
  freePort,
  startStorageNode,
  type NodeReply,
  type RunningStorageNode,
} from '../helpers/storage-node.js';

const call = (
  node: RunningStorageNode,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: Buffer | string,
): Promise<NodeReply> => callStorageNode(node, method, path, headers, body, 15_000);

let tick = 0;
function ts(): string {
  tick += 1;
  return Timestamp.fromSeconds(Math.floor(Date.now() / 1000) + tick / 1000).internal;
}

function put(
  node: RunningStorageNode,
  path: string,
  body: Buffer | string,
  headers: Record<string, string> = {},
): Promise<NodeReply> {
  return call(
    node,
    'PUT',
    path,
    {
      'x-timestamp': ts(),
      'content-type': 'application/octet-stream',
      'content-length': String(Buffer.byteLength(body)),
      ...headers,
    },
    body,
  );
}

function hashDirOf(
  node: RunningStorageNode,
  device: string,
  partition: number,
  a: string,
  c: string,
  o: string,
): string {
  const hash = hashPath({ prefix: '', suffix: 'nebula-test' }, a, c, o);
  return join(node.devicesPath, device, 'objects', String(partition), hash.slice(-3), hash);
}

async function objectTemps(node: RunningStorageNode, device: string): Promise<string[]> {
  const names = await readdir(join(node.devicesPath, device, 'tmp')).catch(() => [] as string[]);
  return names.filter((name) => name.startsWith('object-'));
}

async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test.serial(
  'kill -9 during a large PUT leaves no visible object, and the temp file is removed at restart',
  async (t) => {
    const node = await startStorageNode();
    let restarted: RunningStorageNode | undefined;
    try {
      const socket = connect(node.port, node.host);
      socket.on('error', () => undefined);
      await new Promise((resolve) => socket.once('connect', resolve));
      socket.write(
        `PUT /sda1/9/a/c/big HTTP/1.1\r\nHost: x\r\nX-Timestamp: ${ts()}\r\nContent-Type: a/b\r\nContent-Length: ${64 * 1024 * 1024}\r\n\r\n`,
      );
      for (let index = 0; index < 8; index += 1) socket.write(randomBytes(1024 * 1024));
      // Wait until the body is landing in <device>/tmp, then crash the server.
      await waitFor(async () => ((await objectTemps(node, 'sda1')).length > 0 ? true : undefined), 5000);
      await node.kill();
      socket.destroy();
      t.is((await objectTemps(node, 'sda1')).length, 1, 'the crash left its temp file');
      await t.throwsAsync(readdir(hashDirOf(node, 'sda1', 9, 'a', 'c', 'big')), { code: 'ENOENT' });
      restarted = await node.restart();
      t.deepEqual(await objectTemps(restarted, 'sda1'), []);
      t.is((await call(restarted, 'GET', '/sda1/9/a/c/big')).status, 404);
      t.is((await call(restarted, 'HEAD', '/sda1/9/a/c/big')).status, 404);
    } finally {
      await node.kill();
      await (restarted ?? node).stop();
    }
  },
);

test.serial(
  'a large object that rotted on disk is cut off mid-GET (never a whole wrong body) and quarantined',
  async (t) => {
    const node = await startStorageNode();
    try {
      const body = randomBytes(3 * 1024 * 1024);
      t.is((await put(node, '/sda1/10/a/c/large', body)).status, 201);
      // A whole, verified read first.
      const good = await call(node, 'GET', '/sda1/10/a/c/large');
      t.true(good.complete);
      t.true(good.body.equals(body));
      const hashDir = hashDirOf(node, 'sda1', 10, 'a', 'c', 'large');
      const [dataFile = ''] = await readdir(hashDir);
      const bytes = await readFile(join(hashDir, dataFile));
      bytes[2 * 1024 * 1024] = (bytes[2 * 1024 * 1024] ?? 0) ^ 0xff;
      await writeFile(join(hashDir, dataFile), bytes);
      const bad = await call(node, 'GET', '/sda1/10/a/c/large').catch(() => undefined);
      if (bad !== undefined) {
        t.is(bad.status, 200);
        t.false(bad.complete);
        t.true(bad.body.length < body.length);
      }
      const quarantined = await waitFor(async () => {
        const names = await readdir(join(node.devicesPath, 'sda1', 'quarantined', 'objects')).catch(
          () => [] as string[],
        );
        return names.length > 0 ? names : undefined;
      }, 5000);
      t.is(quarantined.length, 1);
      t.is((await call(node, 'GET', '/sda1/10/a/c/large')).status, 404);
    } finally {
      await node.stop();
    }
  },
);

test.serial('fallocate_reserve: writes get 507 when free space is below it, reads still work', async (t) => {
  const node = await startStorageNode({ config: { DEFAULT: { fallocate_reserve: '100%' } } });
  try {
    const refused = await put(node, '/sda1/11/a/c/o', 'x');
    t.is(refused.status, 507);
    t.regex(refused.body.toString(), /Drive: sda1/);
    t.is((await call(node, 'DELETE', '/sda1/11/a/c/o', { 'x-timestamp': ts() })).status, 507);
    t.is((await call(node, 'GET', '/sda1/11/a/c/o')).status, 404);
  } finally {
    await node.stop();
  }
  const bytes = await startStorageNode({ config: { DEFAULT: { fallocate_reserve: String(2 ** 60) } } });
  try {
    t.is((await put(bytes, '/sda1/11/a/c/o', 'x')).status, 507);
  } finally {
    await bytes.stop();
  }
});

test.serial('mount_check: a plain folder is not a mount point (507); a real mount point passes', async (t) => {
  const node = await startStorageNode({ config: { DEFAULT: { mount_check: 'true' } } });
  try {
    t.is((await call(node, 'GET', '/sda1/12/a/c/o')).status, 507);
    t.is((await put(node, '/sda1/12/a/c/o', 'x')).status, 507);
  } finally {
    await node.stop();
  }
  // /dev/shm is a tmpfs mount on Linux: a read through it (nothing written) passes the check.
  const mounted = await startStorageNode({ config: { DEFAULT: { mount_check: 'true', devices: '/dev' } } });
  try {
    t.is((await call(mounted, 'GET', '/shm/12/nebula-test-account/c/o')).status, 404);
  } finally {
    await mounted.stop();
  }
});

interface Recorded {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

async function recordingServer(
  behaviour: 'ok' | 'hang' | 'refuse',
): Promise<{ server: Server; hostPort: string; seen: Recorded[] }> {
  const seen: Recorded[] = [];
  const server = createServer((incoming, response) => {
    seen.push({ method: incoming.method ?? '', url: incoming.url ?? '', headers: incoming.headers });
    incoming.resume();
    if (behaviour === 'hang') return;
    response.statusCode = behaviour === 'ok' ? 201 : 500;
    response.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, hostPort: `127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

test.serial(
  'container updates: each named container server gets the row; failures become one async_pending',
  async (t) => {
    const node = await startStorageNode({
      config: { 'app:object-server': { conn_timeout: '0.2', node_timeout: '0.5', container_update_timeout: '0.3' } },
    });
    const ok = await recordingServer('ok');
    const hang = await recordingServer('hang');
    const down = await freePort(); // nothing listens there
    try {
      const body = 'row';
      const stamp = ts();
      const started = Date.now();
      const created = await put(node, '/sda1/13/a/c/o%20x', body, {
        'x-timestamp': stamp,
        'content-type': 'text/plain',
        'x-trans-id': 'tx-test-1',
        'x-container-host': `${ok.hostPort},${hang.hostPort},127.0.0.1:${down}`,
        'x-container-partition': '7',
        'x-container-device': 'sdc1,sdd1,sde1',
      });
      t.is(created.status, 201);
      t.true(Date.now() - started < 2000, 'the answer does not wait for the hanging server');
      t.is(ok.seen.length, 1);
      const row = ok.seen[0];
      t.is(row?.method, 'PUT');
      t.is(row?.url, '/sdc1/7/a/c/o%20x');
      t.is(row?.headers['x-backend-server-type'], 'container');
      t.is(row?.headers['x-timestamp'], stamp);
      t.is(row?.headers['x-size'], '3');
      t.is(row?.headers['x-content-type'], 'text/plain');
      t.is(row?.headers['x-etag'], createHash('md5').update(body).digest('hex'));
      t.is(row?.headers['x-trans-id'], 'tx-test-1');
      // The hanging and the down server end in one async_pending file, after node_timeout.
      const hash = hashPath({ prefix: '', suffix: 'nebula-test' }, 'a', 'c', 'o x');
      const pendingPath = join(node.devicesPath, 'sda1', 'async_pending', hash.slice(-3), `${hash}-${stamp}`);
      const pending = await waitFor(async () => readFile(pendingPath, 'utf8').catch(() => undefined), 5000);
      const parsed = JSON.parse(pending) as Record<string, unknown>;
      t.is(parsed.op, 'PUT');
      t.is(parsed.account, 'a');
      t.is(parsed.container, 'c');
      t.is(parsed.object, 'o x');
      t.is(parsed.container_host, `${hang.hostPort},127.0.0.1:${down}`);
      t.is(parsed.container_device, 'sdd1,sde1');
      t.is(parsed.container_partition, '7,7');
      t.is((parsed.headers as Record<string, string>)['X-Size'], '3');

      // DELETE sends a DELETE row.
      const deleteStamp = ts();
      const deleted = await call(node, 'DELETE', '/sda1/13/a/c/o%20x', {
        'x-timestamp': deleteStamp,
        'x-container-host': ok.hostPort,
        'x-container-partition': '7',
        'x-container-device': 'sdc1',
      });
      t.is(deleted.status, 204);
      t.is(ok.seen[1]?.method, 'DELETE');
      t.is(ok.seen[1]?.headers['x-timestamp'], deleteStamp);

      // A refusing server (500) also leaves an async_pending.
      const refuse = await recordingServer('refuse');
      try {
        const refusedStamp = ts();
        await put(node, '/sda1/13/a/c/o2', 'x', {
          'x-timestamp': refusedStamp,
          'x-container-host': refuse.hostPort,
          'x-container-partition': '7',
          'x-container-device': 'sdc1',
        });
        const hash2 = hashPath({ prefix: '', suffix: 'nebula-test' }, 'a', 'c', 'o2');
        const path2 = join(node.devicesPath, 'sda1', 'async_pending', hash2.slice(-3), `${hash2}-${refusedStamp}`);
        t.truthy(await waitFor(async () => readFile(path2, 'utf8').catch(() => undefined), 3000));
      } finally {
        refuse.server.close();
      }
    } finally {
      ok.server.close();
      hang.server.closeAllConnections();
      hang.server.close();
      await node.stop();
    }
  },
);
