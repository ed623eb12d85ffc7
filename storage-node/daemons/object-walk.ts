/**
 * Walks every hash folder of the object partitions on the local devices, in a bounded way (one
 * folder listing at a time, nothing held but the current path), for the auditor and the expirer.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { resolveOnDiskFiles, type OnDiskState } from '../diskfile/diskfile.js';
import { isHash, isSuffix } from './partition-hashes.js';
import type { LocalDevice } from './ring-view.js';

export interface WalkedHashDir {
  device: LocalDevice;
  partition: number;
  suffix: string;
  hash: string;
  hashDir: string;
  state: OnDiskState;
}

async function list(path: string): Promise<string[]> {
  try {
    return await readdir(path);
  } catch {
    return []; // gone meanwhile (removed handoff, quarantined): nothing to walk
  }
}

export async function* walkHashDirs(
  devices: readonly LocalDevice[],
  signal?: AbortSignal,
): AsyncGenerator<WalkedHashDir> {
  for (const device of devices) {
    const objectsDir = join(device.devicePath, 'objects');
    for (const partitionName of await list(objectsDir)) {
      if (!/^\d+$/.test(partitionName)) continue;
      const partitionDir = join(objectsDir, partitionName);
      for (const suffix of await list(partitionDir)) {
        if (!isSuffix(suffix)) continue;
        for (const hash of await list(join(partitionDir, suffix))) {
          if (signal?.aborted === true) return;
          if (!isHash(hash)) continue;
          const hashDir = join(partitionDir, suffix, hash);
          const state = resolveOnDiskFiles(await list(hashDir));
          yield { device, partition: Number(partitionName), suffix, hash, hashDir, state };
        }
      }
    }
  }
}
