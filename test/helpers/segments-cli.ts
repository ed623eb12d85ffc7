/**
 * The shared half of the `swift` CLI large-object tests (cli-segments-slo and -dlo): a cluster,
 * a 50 MiB random source file, the real python-swiftclient `swift` run against the cluster, and an
 * upload-then-download round trip with `--segment-size 10M`.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { TestFn } from 'ava';
import { startCluster, type AuthResult, type TestCluster } from './cluster.js';

const run = promisify(execFile);
const SWIFT = '/usr/bin/swift';
export const SIZE = 50 * 1024 * 1024;

export interface Context {
  cluster: TestCluster;
  auth: AuthResult;
  dir: string;
  source: string;
  sourceMd5: string;
}

export async function swift(t: { context: Context }, ...args: string[]): Promise<string> {
  const { stdout } = await run(SWIFT, args, {
    env: { ...process.env, ...t.context.cluster.swiftEnv() },
    cwd: t.context.dir,
    timeout: 120_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  return stdout;
}

/** Starts the cluster and writes the SIZE-byte source file before the file's tests; stops and removes them after. */
export function useSegmentsCluster(test: TestFn<Context>): void {
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
}

export async function roundTrip(
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
  if (!slo) await waitForSegmentListing(t, object, Math.ceil(SIZE / 10_000_000));
  const out = join(t.context.dir, `${object}.out`);
  await swift(t, 'download', 'c', object, '-o', out);
  t.log(`${object}: upload ${uploadedMs - startMs} ms, download ${Date.now() - uploadedMs} ms`);
  return readFile(out);
}

/**
 * A DLO is its segments' container listing, which is eventually consistent (Swift documents it):
 * an object server answers a segment's PUT after at most container_update_timeout (1 s) and
 * finishes a slower container update in the background. On a loaded machine the manifest can be
 * read before the last update lands, so, as a DLO user must, wait until the listing holds every
 * segment (at most 30 s) before the download.
 */
async function waitForSegmentListing(t: { context: Context }, object: string, segments: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const listed = (await swift(t, 'list', 'c_segments', '--prefix', `${object}/`)).split('\n').filter(Boolean);
    if (listed.length >= segments || Date.now() > deadline) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
