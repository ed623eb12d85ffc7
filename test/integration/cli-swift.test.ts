/**
 * python-swiftclient's `swift` CLI (Debian's python3-swiftclient) against a real cluster whose
 * proxy runs two workers: stat, post, upload, list (prefix, delimiter), download, delete.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { clusterSuite, type ClusterSuiteContext } from '../helpers/cluster-suite.js';

const run = promisify(execFile);

const test = clusterSuite({ workers: 2 }, 'nebula-swift-cli-');

async function swift(t: { context: ClusterSuiteContext }, args: string[], cwd?: string): Promise<string> {
  const { stdout } = await run('swift', args, {
    cwd: cwd ?? t.context.work,
    env: { ...process.env, ...t.context.cluster.swiftEnv() },
    timeout: 30_000,
  });
  return stdout;
}

function md5(data: Buffer): string {
  return createHash('md5').update(data).digest('hex');
}

test('swift stat, post and stat of a container', async (t) => {
  const account = await swift(t, ['stat']);
  t.regex(account, /Account: AUTH_test/);
  t.regex(account, /Containers: 0/);
  await swift(t, ['post', '-m', 'color:blue', '-r', 'test:tester3', 'photos']);
  const container = await swift(t, ['stat', 'photos']);
  t.regex(container, /Container: photos/);
  t.regex(container, /Meta Color: blue/);
  t.regex(container, /Read ACL: test:tester3/);
});

test('swift upload, list with prefix and delimiter, download, delete', async (t) => {
  const source = join(t.context.work, 'src');
  await mkdir(join(source, 'docs', 'deep'), { recursive: true });
  const files: Record<string, Buffer> = {
    'readme.txt': Buffer.from('hello swift\n'),
    'docs/a.json': Buffer.from('{"a":1}'),
    'docs/deep/blob.bin': randomBytes(2 * 1024 * 1024 + 17),
  };
  for (const [name, data] of Object.entries(files)) await writeFile(join(source, name), data);
  await swift(t, ['upload', 'photos', 'readme.txt', 'docs'], source);

  const all = (await swift(t, ['list', 'photos'])).split('\n').filter(Boolean);
  t.deepEqual(all, ['docs/a.json', 'docs/deep/blob.bin', 'readme.txt']);
  const prefixed = (await swift(t, ['list', 'photos', '--prefix', 'docs/'])).split('\n').filter(Boolean);
  t.deepEqual(prefixed, ['docs/a.json', 'docs/deep/blob.bin']);
  const top = (await swift(t, ['list', 'photos', '--delimiter', '/'])).split('\n').filter(Boolean);
  t.deepEqual(top, ['docs/', 'readme.txt']);
  const containers = (await swift(t, ['list'])).split('\n').filter(Boolean);
  t.deepEqual(containers, ['photos']);
  const objectStat = await swift(t, ['stat', 'photos', 'docs/deep/blob.bin']);
  t.regex(objectStat, new RegExp(`ETag: ${md5(files['docs/deep/blob.bin'] ?? Buffer.alloc(0))}`));

  const target = join(t.context.work, 'dst');
  await mkdir(target, { recursive: true });
  await swift(t, ['download', 'photos'], target);
  for (const [name, data] of Object.entries(files)) {
    t.is(md5(await readFile(join(target, name))), md5(data), name);
  }

  await swift(t, ['delete', 'photos', 'readme.txt']);
  const after = (await swift(t, ['list', 'photos'])).split('\n').filter(Boolean);
  t.deepEqual(after, ['docs/a.json', 'docs/deep/blob.bin']);
  await swift(t, ['delete', 'photos']);
  t.deepEqual((await swift(t, ['list'])).split('\n').filter(Boolean), []);
});
