/**
 * What the fault tests assert on disk: the object files of each primary (byte for byte), and
 * partitions left on devices that are not their primaries (handoffs not yet emptied).
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hashPath } from '../../../common/hash-path.js';
import type { FaultCluster } from './cluster.js';

const SECRETS = { prefix: '', suffix: 'nebula-fault' };

/** The newest .data file's bytes of an object on one node's device, or undefined. */
export async function dataFileOn(
  cluster: FaultCluster,
  nodeIndex: number,
  account: string,
  container: string,
  object: string,
): Promise<Buffer | undefined> {
  const node = cluster.nodes[nodeIndex];
  if (node === undefined) return undefined;
  const hash = hashPath(SECRETS, account, container, object);
  const partition = cluster.objectRing.getPartition(account, container, object);
  const hashDir = join(node.devicePath, 'objects', String(partition), hash.slice(-3), hash);
  const names = await readdir(hashDir).catch(() => [] as string[]);
  const newest = names
    .filter((name) => name.endsWith('.data') || name.endsWith('.ts'))
    .sort()
    .pop();
  if (newest === undefined || !newest.endsWith('.data')) return undefined;
  return readFile(join(hashDir, newest));
}

/** `node<i>/<partition>` for every object partition on a device that is not one of its primaries. */
export async function handoffPartitions(cluster: FaultCluster): Promise<string[]> {
  const found: string[] = [];
  for (const node of cluster.nodes) {
    const partitions = await readdir(join(node.devicePath, 'objects')).catch(() => [] as string[]);
    for (const name of partitions) {
      if (!/^\d+$/.test(name)) continue;
      const primaries = cluster.objectRing.getNodes(Number(name));
      if (!primaries.some((device) => device.port === node.port)) {
        const content = await readdir(join(node.devicePath, 'objects', name)).catch(() => [] as string[]);
        if (content.some((entry) => /^[0-9a-f]{3}$/.test(entry))) found.push(`node${node.index + 1}/${name}`);
      }
    }
  }
  return found;
}

/** Runs `work` over items, `concurrency` at a time. */
export async function inParallel<T>(
  items: readonly T[],
  concurrency: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) {
        const item = items[next] as T;
        next += 1;
        await work(item);
      }
    }),
  );
}
