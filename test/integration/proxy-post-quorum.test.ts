/**
 * post_quorum_timeout: a streamed object PUT answers once a quorum of replicas stored the body,
 * without waiting node_timeout for a replica that hangs after receiving it; the hung replica is
 * not cut off, and stores the object once it runs again.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { loadSwiftConf } from '../../common/swift-conf.js';
import { Ring } from '../../ring/ring.js';
import { startCluster } from '../helpers/cluster.js';

const NODE_TIMEOUT_S = 60;

async function hasTempFile(devicesPath: string, device: string): Promise<boolean> {
  try {
    return (await readdir(join(devicesPath, device, 'tmp'))).some((name) => name.startsWith('object-'));
  } catch {
    return false;
  }
}

test('a PUT answers after its quorum while a hung replica finishes later', async (t) => {
  const cluster = await startCluster({
    proxyOptions: { node_timeout: String(NODE_TIMEOUT_S), post_quorum_timeout: '0.5' },
  });
  try {
    const auth = await cluster.auth();
    const container = await fetch(`${auth.storageUrl}/q`, { method: 'PUT', headers: { 'X-Auth-Token': auth.token } });
    t.is(container.status, 201);
    const swift = loadSwiftConf(cluster.layout.swiftConfPath);
    const ring = Ring.load(join(cluster.dir, 'etc', 'object.ring.gz'), swift.hashSecrets, { reloadIntervalMs: 0 });
    const partition = ring.getPartition('AUTH_test', 'q', 'slow');
    const primaries = ring.getNodes(partition);
    ring.close();
    const last = primaries.at(-1);
    const device = cluster.layout.devices.find((entry) => entry.port === last?.port && entry.name === last?.device);
    const hung = cluster.storageNodes.find((node) => node.port === last?.port);
    if (device === undefined || hung === undefined) throw new Error('no storage node for the last primary');

    const body = randomBytes(512 * 1024);
    const url = new URL(`${auth.storageUrl}/q/slow`);
    const request = httpRequest(url, {
      method: 'PUT',
      headers: { 'X-Auth-Token': auth.token, 'Content-Length': String(body.length) },
    });
    const response = new Promise<IncomingMessage>((resolve, reject) => {
      request.once('response', resolve);
      request.once('error', reject);
    });
    // Enough for every replica to open its temp file: then the last primary has said Continue.
    request.write(body.subarray(0, 256 * 1024));
    const waitStartMs = Date.now();
    while (!(await hasTempFile(device.path, device.name))) {
      if (Date.now() - waitStartMs > 30_000) throw new Error('the last primary never started writing');
      await sleep(50);
    }
    hung.child.kill('SIGSTOP');
    let answer: IncomingMessage;
    let elapsedMs: number;
    try {
      const endMs = Date.now();
      // The rest fits in the stopped node's socket buffers: the proxy sends it all.
      request.end(body.subarray(256 * 1024));
      answer = await response;
      answer.resume();
      elapsedMs = Date.now() - endMs;
    } finally {
      hung.child.kill('SIGCONT');
    }
    t.is(answer.statusCode, 201);
    t.is(answer.headers.etag, createHash('md5').update(body).digest('hex'));
    t.true(elapsedMs < (NODE_TIMEOUT_S * 1000) / 2, `answered after ${elapsedMs} ms`);

    // The late replica was left to finish: it holds the object once it runs again.
    const direct = `http://${last?.ip}:${last?.port}/${last?.device}/${partition}/AUTH_test/q/slow`;
    let status = 0;
    for (let attempt = 0; attempt < 100 && status !== 200; attempt += 1) {
      const head = await fetch(direct, { method: 'HEAD' });
      status = head.status;
      if (status !== 200) await sleep(100);
    }
    t.is(status, 200);
  } finally {
    await cluster.stop();
  }
});
