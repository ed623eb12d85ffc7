/**
 * The real python-swiftclient `swift` CLI against a Nebula cluster, SLO half: a 50 MiB file
 * uploaded with `--use-slo --segment-size 10M`, downloaded and compared byte for byte, `swift stat`
 * reporting the SLO, and `swift delete` removing the manifest and its segments
 * (multipart-manifest=delete). The DLO half and `swift tempurl` are in cli-segments-dlo.test.ts.
 */
import anyTest, { type TestFn } from 'ava';
import { readFile } from 'node:fs/promises';
import { roundTrip, SIZE, swift, useSegmentsCluster, type Context } from '../helpers/segments-cli.js';

const test = anyTest.serial as TestFn<Context>;
useSegmentsCluster(test);

async function listing(t: { context: Context }, container: string): Promise<string[]> {
  const response = await fetch(`${t.context.auth.storageUrl}/${container}?format=json`, {
    headers: { 'X-Auth-Token': t.context.auth.token },
    signal: AbortSignal.timeout(20_000),
  });
  if (response.status === 404) return [];
  return ((await response.json()) as { name: string }[]).map((row) => row.name);
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
