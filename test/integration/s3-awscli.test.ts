// The S3 API through Debian's aws CLI (v2): s3 mb / cp (multipart up, ranged-parallel down) /
// sync / ls / rm and s3api head-object, with the round trip compared byte for byte. Each
// CLI start costs seconds on a loaded machine, so the calls are few.
import test from 'ava';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ACCESS_KEY, SECRET_KEY, startS3Cluster, type S3TestCluster } from './s3-cluster.js';

const run = promisify(execFile);
let s3: S3TestCluster;
let dir: string;

test.before(async () => {
  s3 = await startS3Cluster();
  dir = await mkdtemp(join(tmpdir(), 'nebula-s3-awscli-'));
});

test.after.always(async () => {
  await s3?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

async function aws(...args: string[]): Promise<string> {
  const env = {
    PATH: process.env.PATH,
    HOME: dir,
    AWS_ACCESS_KEY_ID: ACCESS_KEY,
    AWS_SECRET_ACCESS_KEY: SECRET_KEY,
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_CONFIG_FILE: join(dir, 'aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(dir, 'aws-credentials'),
    AWS_PAGER: '',
  };
  try {
    const { stdout } = await run('/usr/bin/aws', ['--endpoint-url', s3.endpoint, ...args], {
      env,
      timeout: 45_000,
      maxBuffer: 4 * 1024 * 1024,
    });
    return stdout;
  } catch (error) {
    const failure = error as { stderr?: string; message?: string };
    throw new Error(`aws ${args.join(' ')} failed: ${(failure.stderr ?? failure.message ?? '').slice(0, 2000)}`, {
      cause: error,
    });
  }
}

test.serial('aws CLI: mb, cp up and down (multipart), sync, ls, s3api head-object, rm', async (t) => {
  const large = join(dir, 'large.bin');
  await writeFile(large, randomBytes(20 * 1024 * 1024)); // above the CLI's 8 MiB multipart threshold
  await aws('s3', 'mb', 's3://awscli');
  await aws('s3', 'cp', '--no-progress', large, 's3://awscli/dir/large.bin');
  await aws('s3', 'cp', '--no-progress', 's3://awscli/dir/large.bin', join(dir, 'large.back'));
  t.true((await readFile(join(dir, 'large.back'))).equals(await readFile(large)), 'downloaded bytes differ');
  const tree = join(dir, 'tree');
  await mkdir(join(tree, 'sub'), { recursive: true });
  await writeFile(join(tree, 'a.txt'), 'alpha');
  await writeFile(join(tree, 'sub', 'b.bin'), randomBytes(70_000));
  await aws('s3', 'sync', '--no-progress', tree, 's3://awscli/tree');
  const listing = await aws('s3', 'ls', '--recursive', 's3://awscli');
  for (const key of ['dir/large.bin', 'tree/a.txt', 'tree/sub/b.bin']) t.true(listing.includes(key), key);
  const head = JSON.parse(await aws('s3api', 'head-object', '--bucket', 'awscli', '--key', 'dir/large.bin')) as {
    ContentLength: number;
    ETag: string;
  };
  t.is(head.ContentLength, 20 * 1024 * 1024);
  t.regex(head.ETag, /-\d+"$/);
  await aws('s3', 'rm', '--recursive', 's3://awscli');
});
