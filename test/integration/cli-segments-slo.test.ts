/**
 * The real python-swiftclient `swift` CLI against a Nebula cluster, SLO half: a 50 MiB file
 * uploaded with `--use-slo --segment-size 10M`, downloaded and compared byte for byte, `swift stat`
 * reporting the SLO, and `swift delete` removing the manifest and its segments
 * (multipart-manifest=delete). The DLO half and `swift tempurl` are in cli-segments-dlo.test.ts.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import anyTest, { type TestFn } from 'ava';
import { startCluster, type AuthResult, type TestCluster } from '../helpers/cluster.js';

const run = promisify(execFile);
const SWIFT = '/usr/bin/swift';
const SIZE = 50 * 1024 * 1024;

interface Context {
  cluster: TestCluster;
  auth: AuthResult;
  dir: string;
  source: string;
  sourceMd5: string;
}

const test = anyTest.serial as TestFn<Context>;

async function swift(t: { context: Context }, ...args: string[]): Promise<string> {
  const { stdout } = await run(SWIFT, args, {
    env: { ...process.env, ...t.context.cluster.swiftEnv() },
    cwd: t.context.dir,
    timeout: 120_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  return stdout;
}

async function listing(t: { context: Context }, container: string): Promise<string[]> {
  const response = await fetch(`${t.context.auth.storageUrl}/${container}?format=json`, {
    headers: { 'X-Auth-Token': t.context.auth.token },
    signal: AbortSignal.timeout(20_000),
  });
  if (response.status === 404) return [];
  return ((await response.json()) as { name: string }[]).map((row) => row.name);
}

test.before(async (t) => {
  const cluster = await startCluster();
  const dir = await mkdtemp(join(tmpdir(), 'nebula-cli-segments-'));
  const source = join(dir, 'big.bin');
  const data = randomBytes(SIZE);
  await writeFile(source, data);
  t.context = {
    cluster,
    auth: await cluster.auth(),
    dir,
    source,
    sourceMd5: createHash('md5').update(data).digest('hex'),
  };
});

test.after.always(async (t) => {
  await t.context.cluster?.stop();
  if (t.context.dir !== undefined) await rm(t.context.dir, { recursive: true, force: true });
});

async function roundTrip(
  t: { context: Context } & { log: (...values: unknown[]) => void },
  object: string,
  slo: boolean,
): Promise<Buffer> {
  const startMs = Date.now();
  await swift(
    t,
    'upload',
    ...(slo ? ['--use-slo'] : []),
    '--segment-size',
    '10M',
    '--object-name',
    object,
    'c',
    t.context.source,
  );
  const uploadedMs = Date.now();
  const out = join(t.context.dir, `${object}.out`);
  await swift(t, 'download', 'c', object, '-o', out);
  t.log(`${object}: upload ${uploadedMs - startMs} ms, download ${Date.now() - uploadedMs} ms`);
  return readFile(out);
}

test('a 50 MiB SLO upload with --segment-size 10M round-trips byte for byte', async (t) => {
  const downloaded = await roundTrip(t, 'big-slo', true);
  t.is(downloaded.length, SIZE);
  t.true(downloaded.equals(await readFile(t.context.source)));
  const stat = await swift(t, 'stat', 'c', 'big-slo');
  t.regex(stat, /X-Static-Large-Object: True/);
  t.regex(stat, new RegExp(`Content Length: ${SIZE}`));
  t.is((await listing(t, 'c_segments')).length, 5);
  const deleted = await swift(t, 'delete', 'c', 'big-slo');
  t.regex(deleted, /big-slo/);
  t.deepEqual(await listing(t, 'c_segments'), [], 'the SLO delete took the segments too');
});
