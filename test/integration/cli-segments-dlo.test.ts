/**
 * The real python-swiftclient `swift` CLI against a Nebula cluster, DLO half: a 50 MiB file
 * uploaded with `--segment-size 10M` (a DLO), downloaded and compared byte for byte, and
 * `swift tempurl` producing URLs (sha1, sha256, sha512) that fetch can GET without a token, the
 * DLO's first MiB too. The SLO half is in cli-segments-slo.test.ts.
 */
import anyTest, { type TestFn } from 'ava';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { roundTrip, SIZE, swift, useSegmentsCluster, type Context } from '../helpers/segments-cli.js';

const test = anyTest.serial as TestFn<Context>;
useSegmentsCluster(test);

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
