/**
 * Replication through the proxy with storage nodes down: writes still reach a quorum (a stopped
 * primary is replaced by a handoff) and reads fall back to another replica; a GET whose replica
 * dies mid-body resumes from another replica at the same offset and the client gets every byte.
 */
import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import anyTest, { type TestFn } from 'ava';
import { loadSwiftConf } from '../../common/swift-conf.js';
import { Ring } from '../../ring/ring.js';
import { startCluster, type AuthResult, type TestCluster } from '../helpers/cluster.js';

interface Context {
  cluster: TestCluster;
  auth: AuthResult;
}

const test = anyTest.serial as TestFn<Context>;

test.before(async (t) => {
  // Short timeouts so the hung-node test is quick; generous enough for a loaded machine.
  const cluster = await startCluster({ proxyOptions: { conn_timeout: '1', node_timeout: '3' } });
  const auth = await cluster.auth();
  t.context = { cluster, auth };
  const response = await fetch(`${auth.storageUrl}/q`, { method: 'PUT', headers: { 'X-Auth-Token': auth.token } });
  if (response.status !== 201) throw new Error(`container PUT: ${response.status}`);
});

test.after.always(async (t) => {
  await t.context.cluster?.stop();
});

/** The index (in cluster.storageNodes) of the storage node holding an object's first replica. */
function firstPrimary(cluster: TestCluster, object: string): number {
  const swift = loadSwiftConf(cluster.layout.swiftConfPath);
  const ring = Ring.load(join(cluster.dir, 'etc', 'object.ring.gz'), swift.hashSecrets, { reloadIntervalMs: 0 });
  const first = ring.getNodes(ring.getPartition('AUTH_test', 'q', object))[0];
  ring.close();
  return cluster.storageNodes.findIndex((node) => node.port === first?.port);
}

function md5(data: Buffer): string {
  return createHash('md5').update(data).digest('hex');
}

async function put(t: { context: Context }, name: string, body: Buffer): Promise<Response> {
  return fetch(`${t.context.auth.storageUrl}/q/${name}`, {
    method: 'PUT',
    headers: { 'X-Auth-Token': t.context.auth.token },
    body,
    signal: AbortSignal.timeout(30_000),
  });
}

async function get(t: { context: Context }, name: string): Promise<{ status: number; body: Buffer }> {
  const response = await fetch(`${t.context.auth.storageUrl}/q/${name}`, {
    headers: { 'X-Auth-Token': t.context.auth.token },
    signal: AbortSignal.timeout(30_000),
  });
  return { status: response.status, body: Buffer.from(await response.arrayBuffer()) };
}

test('a GET whose replica is killed mid-body resumes from another replica', async (t) => {
  const { cluster } = t.context;
  const body = randomBytes(24 * 1024 * 1024);
  t.is((await put(t, 'big', body)).status, 201);
  const serving = firstPrimary(cluster, 'big');
  t.true(serving >= 0);

  const url = new URL(`${t.context.auth.storageUrl}/q/big`);
  const response = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = httpRequest(
      { host: url.hostname, port: url.port, path: url.pathname, headers: { 'X-Auth-Token': t.context.auth.token } },
      resolve,
    );
    req.on('error', reject);
    req.end();
  });
  t.is(response.statusCode, 200);
  const chunks: Buffer[] = [];
  let killed = false;
  await new Promise<void>((resolve, reject) => {
    response.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (!killed) {
        killed = true;
        response.pause();
        // The replica dies with most of the body unsent; the proxy must fetch the rest elsewhere.
        cluster.storageNodes[serving]?.kill().then(() => response.resume(), reject);
      }
    });
    response.on('end', resolve);
    response.on('error', reject);
  });
  const received = Buffer.concat(chunks);
  t.is(received.length, body.length);
  t.is(md5(received), md5(body));
  await cluster.startStorageNode(serving);
});

test('with one storage node stopped, PUTs and GETs still succeed', async (t) => {
  const { cluster } = t.context;
  await cluster.stopStorageNode(1);
  const objects = new Map<string, Buffer>();
  for (let index = 0; index < 12; index += 1) {
    const body = randomBytes(1000 + index * 4096);
    const response = await put(t, `obj-${index}`, body);
    t.is(response.status, 201, `PUT obj-${index}`);
    t.is(response.headers.get('etag'), md5(body));
    objects.set(`obj-${index}`, body);
  }
  for (const [name, body] of objects) {
    const result = await get(t, name);
    t.is(result.status, 200, `GET ${name}`);
    t.is(md5(result.body), md5(body));
  }
  const listing = await fetch(`${t.context.auth.storageUrl}/q?prefix=obj-`, {
    headers: { 'X-Auth-Token': t.context.auth.token },
  });
  t.is(listing.status, 200);
  const names = (await listing.text()).split('\n').filter(Boolean);
  t.true(names.length >= 10, `listing has ${names.length} of 12 names`); // container updates may lag on a down node
  const deleted = await fetch(`${t.context.auth.storageUrl}/q/obj-0`, {
    method: 'DELETE',
    headers: { 'X-Auth-Token': t.context.auth.token },
  });
  t.is(deleted.status, 204);
  t.is((await get(t, 'obj-0')).status, 404);

  // Back up: objects written while it was down are still readable (some from handoffs).
  await cluster.startStorageNode(1);
  for (const [name, body] of objects) {
    if (name === 'obj-0') continue;
    const result = await get(t, name);
    t.is(result.status, 200, `GET ${name} after restart`);
    t.is(md5(result.body), md5(body));
  }
});

test('with two of four nodes stopped, writes still reach a quorum through handoffs', async (t) => {
  const { cluster } = t.context;
  await cluster.stopStorageNode(2);
  await cluster.stopStorageNode(3);
  try {
    for (let index = 0; index < 6; index += 1) {
      const body = randomBytes(2048);
      const response = await put(t, `two-down-${index}`, body);
      t.is(response.status, 201);
      const result = await get(t, `two-down-${index}`);
      t.is(result.status, 200);
      t.is(md5(result.body), md5(body));
    }
  } finally {
    await cluster.startStorageNode(2);
    await cluster.startStorageNode(3);
  }
});

test('a hung storage node (SIGSTOP) costs node_timeout, then its replicas come from elsewhere', async (t) => {
  const { cluster } = t.context;
  const body = randomBytes(64 * 1024);
  t.is((await put(t, 'before-hang', body)).status, 201);
  // The replica a GET tries first: the proxy must give up on it after node_timeout.
  const hung = cluster.storageNodes[firstPrimary(cluster, 'before-hang')];
  t.truthy(hung);
  hung?.child.kill('SIGSTOP');
  try {
    const startMs = Date.now();
    const read = await get(t, 'before-hang');
    t.is(read.status, 200);
    t.is(md5(read.body), md5(body));
    const written = randomBytes(32 * 1024);
    t.is((await put(t, 'during-hang', written)).status, 201);
    const back = await get(t, 'during-hang');
    t.is(md5(back.body), md5(written));
    // Each request waits at most node_timeout (3 s) per hung replica before moving on.
    t.true(Date.now() - startMs < 30_000);
  } finally {
    hung?.child.kill('SIGCONT');
  }
});
