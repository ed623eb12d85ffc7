/**
 * Legacy object versioning over a real cluster, from Swift's versioned_writes documentation:
 * X-Versions-Location (stack: DELETE restores the previous version), X-History-Location
 * (history: DELETE archives and leaves a delete marker), header validation, and rclone writing
 * into a versioned container.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { clusterSuite } from '../helpers/cluster-suite.js';
import { swiftCaller } from '../helpers/swift-http.js';

const test = clusterSuite({ storageNodes: 3 }, 'nebula-versioning-');

const run = promisify(execFile);

test('X-Versions-Location and X-History-Location', async (t) => {
  const { cluster, work: dir } = t.context;
  const user = await cluster.auth();
  const { storageUrl } = user;
  const call = swiftCaller(user);
  const names = async (container: string): Promise<string[]> =>
    (await call('GET', `/${container}`)).body.split('\n').filter((line) => line !== '');

  const info = (await (await fetch(new URL('/info', storageUrl))).json()) as Record<string, unknown>;
  t.truthy(info.versioned_writes);

  // Stack mode.
  t.is((await call('PUT', '/archive')).status, 201);
  t.is((await call('PUT', '/c', { 'X-Versions-Location': 'archive', 'X-History-Location': 'archive' })).status, 400);
  t.is((await call('PUT', '/c', { 'X-Versions-Location': 'archive' })).status, 201);
  t.is((await call('HEAD', '/c')).headers.get('x-versions-location'), 'archive');
  t.is((await call('PUT', '/c/obj', { 'X-Object-Meta-N': '1' }, 'v1')).status, 201);
  t.deepEqual(await names('archive'), [], 'the first write archives nothing');
  t.is((await call('PUT', '/c/obj', { 'X-Object-Meta-N': '2' }, 'v2')).status, 201);
  t.is((await call('PUT', '/c/obj', {}, 'v3')).status, 201);
  const archived = await names('archive');
  t.is(archived.length, 2);
  t.true(archived.every((name) => name.startsWith('003obj/')));
  t.is((await call('GET', `/archive/${archived[0] ?? ''}`)).body, 'v1');
  t.is((await call('GET', '/c/obj')).body, 'v3');
  t.is((await call('DELETE', '/c/obj')).status, 204);
  const restored = await call('GET', '/c/obj');
  t.is(restored.body, 'v2', 'DELETE restores the previous version');
  t.is(restored.headers.get('x-object-meta-n'), '2');
  t.is((await call('DELETE', '/c/obj')).status, 204);
  t.is((await call('GET', '/c/obj')).body, 'v1');
  t.is((await call('DELETE', '/c/obj')).status, 204);
  t.is((await call('GET', '/c/obj')).status, 404, 'no version left');
  t.deepEqual(await names('archive'), []);

  // History mode.
  t.is((await call('PUT', '/history')).status, 201);
  t.is((await call('POST', '/c', { 'X-History-Location': 'history' })).status, 204);
  const head = await call('HEAD', '/c');
  t.is(head.headers.get('x-history-location'), 'history');
  t.is(head.headers.get('x-versions-location'), null);
  t.is((await call('PUT', '/c/doc', {}, 'one')).status, 201);
  t.is((await call('PUT', '/c/doc', {}, 'two')).status, 201);
  t.is((await call('DELETE', '/c/doc')).status, 204);
  t.is((await call('GET', '/c/doc')).status, 404, 'history mode deletes');
  const history = await call('GET', '/history?format=json');
  const entries = JSON.parse(history.body) as { name: string; content_type: string }[];
  t.is(entries.length, 3);
  t.is(entries[2]?.content_type, 'application/x-deleted;swift_versions_deleted=1');
  t.is((await call('GET', `/history/${entries[1]?.name ?? ''}`)).body, 'two');

  // Turning versioning off.
  t.is((await call('POST', '/c', { 'X-Remove-History-Location': 'x' })).status, 204);
  t.is((await call('HEAD', '/c')).headers.get('x-history-location'), null);
  t.is((await call('PUT', '/c/doc', {}, 'three')).status, 201);
  t.is((await call('PUT', '/c/doc', {}, 'four')).status, 201);
  t.is((await names('history')).length, 3, 'nothing archived any more');

  // rclone writing into a versioned container: each overwrite is archived.
  t.is((await call('PUT', '/rc', { 'X-Versions-Location': 'archive' })).status, 201);
  const file = join(dir, 'file.txt');
  const env = {
    ...process.env,
    RCLONE_CONFIG_NEB_TYPE: 'swift',
    RCLONE_CONFIG_NEB_AUTH: cluster.authUrl,
    RCLONE_CONFIG_NEB_USER: 'test:tester',
    RCLONE_CONFIG_NEB_KEY: 'testing',
  };
  for (const content of ['first', 'second version', 'third']) {
    await writeFile(file, content);
    await run('rclone', ['--config', '/dev/null', 'copyto', file, 'neb:rc/file.txt'], { env, timeout: 30_000 });
  }
  t.is((await call('GET', '/rc/file.txt')).body, 'third');
  const rcArchive = (await names('archive')).filter((name) => name.startsWith('008file.txt/'));
  t.is(rcArchive.length, 2);
});
