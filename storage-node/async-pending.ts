/**
 * async_pending files: container updates that could not be delivered, left for the updater.
 *
 * Path: `<device>/async_pending/<suffix>/<hash>-<timestamp>` (hash of /a/c/o, suffix its last three
 * hex digits, as Swift). Content: one JSON object (Swift pickles; Nebula writes JSON):
 *   { op, account, container, object, headers, container_host, container_partition,
 *     container_device }
 * where the three container_* fields are comma-separated lists of the servers that missed the
 * update (the same form as the X-Container-* headers). Written to `<device>/tmp/` and renamed, so
 * the updater never reads half a file.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';

export const ASYNC_TEMP_PREFIX = 'async-';

export interface AsyncPendingUpdate {
  op: 'PUT' | 'DELETE';
  account: string;
  container: string;
  object: string;
  headers: Record<string, string>;
  container_host: string;
  container_partition: string;
  container_device: string;
}

export function asyncPendingPath(devicePath: string, hash: string, timestamp: string): string {
  return join(devicePath, 'async_pending', hash.slice(-3), `${hash}-${timestamp}`);
}

export async function writeAsyncPending(
  devicePath: string,
  hash: string,
  timestamp: string,
  update: AsyncPendingUpdate,
  fsync: boolean,
): Promise<string> {
  const tmpDir = join(devicePath, 'tmp');
  await mkdir(tmpDir, { recursive: true });
  const tempPath = join(tmpDir, `${ASYNC_TEMP_PREFIX}${randomBytes(12).toString('hex')}`);
  const finalPath = asyncPendingPath(devicePath, hash, timestamp);
  const handle = await open(tempPath, 'wx');
  try {
    await handle.writeFile(JSON.stringify(update));
    if (fsync) await handle.datasync();
  } finally {
    await handle.close();
  }
  try {
    await mkdir(join(finalPath, '..'), { recursive: true });
    await rename(tempPath, finalPath);
  } catch (error) {
    await unlink(tempPath).catch(() => undefined);
    throw error;
  }
  return finalPath;
}
