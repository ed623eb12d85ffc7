/**
 * The real python-swiftclient `swift` CLI against a Nebula cluster, DLO half: a 50 MiB file
 * uploaded with `--segment-size 10M` (a DLO), downloaded and compared byte for byte, and
 * `swift tempurl` producing URLs (sha1, sha256, sha512) that fetch can GET without a token, the
 * DLO's first MiB too. The SLO half is in cli-segments-slo.test.ts.
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

test('a 50 MiB DLO upload with --segment-size 10M round-trips byte for byte', async (t) => {
  const downloaded = await roundTrip(t, 'big-dlo', false);
  t.is(downloaded.length, SIZE);
  t.is(createHash('md5').update(downloaded).digest('hex'), t.context.sourceMd5);
  t.true(downloaded.equals(await readFile(t.context.source)));
  const head = await fetch(`${t.context.auth.storageUrl}/c/big-dlo`, {
    method: 'HEAD',
    headers: { 'X-Auth-Token': t.context.auth.token },
  });
  t.is(head.headers.get('content-length'), String(SIZE));
  t.regex(head.headers.get('x-object-manifest') ?? '', /^c_segments\/big-dlo\//);
});

test('swift tempurl gives a URL that fetch can GET', async (t) => {
  await swift(t, 'post', '-m', 'Temp-URL-Key:cli-secret');
  await writeFile(join(t.context.dir, 'small.txt'), 'hello from a temp url');
  await swift(t, 'upload', '--object-name', 'small.txt', 'c', join(t.context.dir, 'small.txt'));
  const path = new URL(t.context.auth.storageUrl).pathname;
  for (const digest of ['sha1', 'sha256', 'sha512']) {
    const args = [
      'tempurl',
      ...(digest === 'sha1' ? [] : ['--digest', digest]),
      'GET',
      '600',
      `${path}/c/small.txt`,
      'cli-secret',
    ];
    let signed: string;
    try {
      signed = (await swift(t, ...args)).trim();
    } catch {
      // Older swiftclients have no --digest option: sha256 is their default.
      if (digest !== 'sha1') continue;
      throw new Error('swift tempurl failed');
    }
    const response = await fetch(`${t.context.cluster.proxyUrl}${signed}`, { signal: AbortSignal.timeout(20_000) });
    t.is(response.status, 200, `${digest}: ${signed}`);
    t.is(await response.text(), 'hello from a temp url');
  }
  // A large object through a temp URL: the first MiB of the DLO, by Range.
  const big = (await swift(t, 'tempurl', 'GET', '600', `${path}/c/big-dlo`, 'cli-secret')).trim();
  const response = await fetch(`${t.context.cluster.proxyUrl}${big}`, {
    headers: { Range: 'bytes=0-1048575' },
    signal: AbortSignal.timeout(60_000),
  });
  t.is(response.status, 206);
  const body = Buffer.from(await response.arrayBuffer());
  t.true(body.equals((await readFile(t.context.source)).subarray(0, 1048576)), 'a DLO through a temp URL');
});
