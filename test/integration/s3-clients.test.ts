// The S3 API through s3cmd and rclone's s3 backend (Debian's), each with a round trip compared
// byte for byte. The aws CLI has its own file (s3-awscli.test.ts): it is slow to start.
import test from 'ava';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ACCESS_KEY, SECRET_KEY, startS3Cluster, type S3TestCluster, writeS3cmdConfig } from './s3-cluster.js';

const run = promisify(execFile);
let s3: S3TestCluster;
let dir: string;

test.before(async () => {
  s3 = await startS3Cluster();
  dir = await mkdtemp(join(tmpdir(), 'nebula-s3-clients-'));
});

test.after.always(async () => {
  await s3?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

test.serial('s3cmd: mb, put, get, ls, del', async (t) => {
  const config = await writeS3cmdConfig(dir, s3.endpoint, 'v4');
  const s3cmd = async (...args: string[]): Promise<string> =>
    (await run('s3cmd', ['-c', config, ...args], { env: { PATH: process.env.PATH, HOME: dir }, timeout: 60_000 }))
      .stdout;
  const file = join(dir, 's3cmd.bin');
  await writeFile(file, randomBytes(300_000));
  await s3cmd('mb', 's3://s3cmd-bucket');
  await s3cmd('put', file, 's3://s3cmd-bucket/obj.bin');
  await s3cmd('get', '--force', 's3://s3cmd-bucket/obj.bin', join(dir, 's3cmd.back'));
  t.deepEqual(await readFile(join(dir, 's3cmd.back')), await readFile(file));
  t.true((await s3cmd('ls', 's3://s3cmd-bucket')).includes('obj.bin'));
  await s3cmd('del', 's3://s3cmd-bucket/obj.bin');
  await s3cmd('rb', 's3://s3cmd-bucket');
  t.pass();
});

test.serial('rclone s3 backend: copy up, copy down, ls, delete', async (t) => {
  const env = {
    PATH: process.env.PATH,
    HOME: dir,
    RCLONE_CONFIG: join(dir, 'rclone.conf'),
    RCLONE_CONFIG_NEB_TYPE: 's3',
    RCLONE_CONFIG_NEB_PROVIDER: 'Other',
    RCLONE_CONFIG_NEB_ACCESS_KEY_ID: ACCESS_KEY,
    RCLONE_CONFIG_NEB_SECRET_ACCESS_KEY: SECRET_KEY,
    RCLONE_CONFIG_NEB_ENDPOINT: s3.endpoint,
    RCLONE_CONFIG_NEB_FORCE_PATH_STYLE: 'true',
    RCLONE_CONFIG_NEB_REGION: 'us-east-1',
  };
  const rclone = async (...args: string[]): Promise<string> =>
    (await run('rclone', args, { env, timeout: 60_000 })).stdout;
  const source = join(dir, 'rclone-src');
  await mkdir(source, { recursive: true });
  await writeFile(join(source, 'one.bin'), randomBytes(123_456));
  await writeFile(join(source, 'two.txt'), 'two');
  await rclone('mkdir', 'neb:rclone-bucket');
  await rclone('copy', source, 'neb:rclone-bucket/up');
  const listing = await rclone('ls', 'neb:rclone-bucket');
  t.true(listing.includes('up/one.bin'));
  const back = join(dir, 'rclone-back');
  await rclone('copy', 'neb:rclone-bucket/up', back);
  t.deepEqual(await readFile(join(back, 'one.bin')), await readFile(join(source, 'one.bin')));
  t.is(await readFile(join(back, 'two.txt'), 'utf8'), 'two');
  await rclone('check', source, 'neb:rclone-bucket/up');
  await rclone('purge', 'neb:rclone-bucket');
  t.false((await rclone('lsd', 'neb:')).includes('rclone-bucket'));
});
