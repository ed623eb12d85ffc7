/**
 * COPY against max_file_size: a cluster whose swift.conf sets `[swift-constraints]
 * max_file_size = 1000` accepts a 1200-byte SLO made of small segments, but refuses to copy it
 * flattened (413, as Swift), while copying the manifest itself (multipart-manifest=get) works.
 */
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { startLocalCluster } from '../../proxy/local-cluster.js';
import { freePort } from '../helpers/storage-node.js';

test('a copy past max_file_size is 413', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'nebula-copy-limits-'));
  await mkdir(join(dir, 'etc'), { recursive: true });
  await writeFile(
    join(dir, 'etc', 'swift.conf'),
    '[swift-hash]\nswift_hash_path_prefix =\nswift_hash_path_suffix = copylimits\n\n[swift-constraints]\nmax_file_size = 1000\n',
  );
  const ports: number[] = [];
  while (ports.length < 3) {
    const port = await freePort();
    if (!ports.includes(port)) ports.push(port);
  }
  const cluster = await startLocalCluster({
    dataDir: dir,
    proxyPort: 0,
    storagePorts: ports,
    replicas: 3,
    partPower: 6,
    workers: 0,
    storageOptions: { fsync: 'false' },
    logLevel: 'silent',
  });
  try {
    const auth = await fetch(cluster.authUrl, { headers: { 'X-Auth-User': 'test:tester', 'X-Auth-Key': 'testing' } });
    const token = auth.headers.get('x-auth-token') ?? '';
    const url = auth.headers.get('x-storage-url') ?? '';
    const call = async (method: string, path: string, headers: Record<string, string> = {}, body?: string) => {
      const response = await fetch(`${url}${path}`, {
        method,
        headers: { 'X-Auth-Token': token, ...headers },
        body,
        signal: AbortSignal.timeout(20_000),
      });
      await response.arrayBuffer();
      return response.status;
    };
    t.is(await call('PUT', '/c'), 201);
    t.is(await call('PUT', '/c/too-big', {}, 'x'.repeat(1001)), 413, 'the limit is in force');
    for (const name of ['a', 'b', 'c']) t.is(await call('PUT', `/c/${name}`, {}, name.repeat(400)), 201);
    const manifest = JSON.stringify(['a', 'b', 'c'].map((name) => ({ path: `/c/${name}` })));
    t.is(await call('PUT', '/c/slo?multipart-manifest=put', {}, manifest), 201);
    t.is(await call('COPY', '/c/slo', { Destination: 'c/flat' }), 413);
    t.is(await call('PUT', '/c/flat2', { 'X-Copy-From': 'c/slo' }), 413);
    t.is(await call('COPY', '/c/slo?multipart-manifest=get', { Destination: 'c/manifest-copy' }), 201);
    t.is(await call('HEAD', '/c/manifest-copy'), 200);
  } finally {
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
