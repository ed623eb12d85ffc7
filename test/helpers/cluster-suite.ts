/**
 * Test helper: a serial ava suite whose tests share one cluster and one scratch folder, started
 * before the first test and removed after the last (the CLI tests use it: one cluster start is
 * the slowest step of a test file).
 *
 *     const test = clusterSuite({ storageNodes: 3 }, 'nebula-rclone-');
 *     test('...', async (t) => { const { cluster, work } = t.context; ... });
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import anyTest, { type TestFn } from 'ava';
import { startCluster, type ClusterOptions, type TestCluster } from './cluster.js';

export interface ClusterSuiteContext {
  cluster: TestCluster;
  /** A scratch folder for the suite's files. */
  work: string;
}

export function clusterSuite(options: ClusterOptions, workPrefix: string): TestFn<ClusterSuiteContext> {
  const test = anyTest.serial as TestFn<ClusterSuiteContext>;
  test.before(async (t) => {
    t.context = { cluster: await startCluster(options), work: await mkdtemp(join(tmpdir(), workPrefix)) };
  });
  test.after.always(async (t) => {
    await t.context.cluster?.stop();
    if (t.context.work !== undefined) await rm(t.context.work, { recursive: true, force: true });
  });
  return test;
}
