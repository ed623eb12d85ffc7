/**
 * The container and account servers inside a real storage node process (node
 * dist/storage-node/main.js, started by test/helpers/storage-node.ts): an object PUT through the
 * object server lands as a row in the container listing, the container reports to the account,
 * and everything survives a kill -9 and restart (LevelDB's log is written before a reply).
 */
import test from 'ava';
import { createHash } from 'node:crypto';
import { startStorageNode, type RunningStorageNode } from '../helpers/storage-node.js';

const T = (seconds: number): string => (Math.floor(Date.now() / 1000) - 1000 + seconds).toFixed(5);

async function call(
  node: RunningStorageNode,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<{ status: number; headers: Headers; body: string }> {
  const response = await fetch(`${node.url}${path}`, { method, headers, body, signal: AbortSignal.timeout(10_000) });
  return { status: response.status, headers: response.headers, body: await response.text() };
}

/** Polls until `check` holds (bounded: about 5 s), for the asynchronous account report. */
async function eventually(check: () => Promise<boolean>): Promise<boolean> {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

test('object PUT/DELETE through the object server update the container and the account, across a crash', async (t) => {
  let node = await startStorageNode({ devices: ['sda1', 'sdb1'] });
  try {
    t.is((await call(node, 'PUT', '/sda1/3/AUTH_p', { 'X-Timestamp': T(0) })).status, 201);
    const accountHeaders = { 'X-Account-Host': node.hostPort, 'X-Account-Device': 'sda1', 'X-Account-Partition': '3' };
    t.is((await call(node, 'PUT', '/sdb1/5/AUTH_p/c', { 'X-Timestamp': T(1), ...accountHeaders })).status, 201);
    const account = await call(node, 'GET', '/sda1/3/AUTH_p?format=json');
    t.is((JSON.parse(account.body) as { name: string }[])[0]?.name, 'c', 'the container PUT reported at once');

    const body = 'hello, nebula';
    const etag = createHash('md5').update(body).digest('hex');
    const put = await call(
      node,
      'PUT',
      '/sda1/9/AUTH_p/c/greeting.txt',
      {
        'X-Timestamp': T(2),
        'Content-Type': 'text/plain',
        'Content-Length': String(body.length),
        'X-Container-Host': node.hostPort,
        'X-Container-Partition': '5',
        'X-Container-Device': 'sdb1',
      },
      body,
    );
    t.is(put.status, 201);
    t.true(
      await eventually(async () => (await call(node, 'GET', '/sdb1/5/AUTH_p/c')).body === 'greeting.txt\n'),
      'the object server updated the container',
    );
    const listing = JSON.parse((await call(node, 'GET', '/sdb1/5/AUTH_p/c?format=json')).body) as Record<
      string,
      unknown
    >[];
    t.is(listing[0]?.hash, etag);
    t.is(listing[0]?.bytes, body.length);
    t.is(listing[0]?.content_type, 'text/plain');
    t.true(
      await eventually(async () => {
        const head = await call(node, 'HEAD', '/sda1/3/AUTH_p');
        return head.headers.get('x-account-object-count') === '1' && head.headers.get('x-account-bytes-used') === '13';
      }),
      'the container reported the new object to the account',
    );

    await node.kill();
    node = await node.restart();
    const after = await call(node, 'HEAD', '/sdb1/5/AUTH_p/c');
    t.is(after.status, 204);
    t.is(after.headers.get('x-container-object-count'), '1');
    t.is((await call(node, 'GET', '/sdb1/5/AUTH_p/c')).body, 'greeting.txt\n');

    const deleted = await call(node, 'DELETE', '/sda1/9/AUTH_p/c/greeting.txt', {
      'X-Timestamp': T(3),
      'X-Container-Host': node.hostPort,
      'X-Container-Partition': '5',
      'X-Container-Device': 'sdb1',
    });
    t.is(deleted.status, 204);
    t.true(await eventually(async () => (await call(node, 'GET', '/sdb1/5/AUTH_p/c')).status === 204));
    t.true(
      await eventually(
        async () => (await call(node, 'HEAD', '/sda1/3/AUTH_p')).headers.get('x-account-object-count') === '0',
      ),
    );
    t.is((await call(node, 'DELETE', '/sdb1/5/AUTH_p/c', { 'X-Timestamp': T(4), ...accountHeaders })).status, 204);
    t.true(
      await eventually(
        async () => (await call(node, 'HEAD', '/sda1/3/AUTH_p')).headers.get('x-account-container-count') === '0',
      ),
    );
  } finally {
    await node.stop();
  }
});
