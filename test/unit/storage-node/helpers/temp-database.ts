/** A real LevelDB device database in a temp dir, for unit tests; `cleanup()` closes and removes it. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../../../common/log.js';
import { DatabaseRegistry, type DeviceDatabase } from '../../../../storage-node/db/registry.js';

export interface TempDatabase {
  database: DeviceDatabase;
  registry: DatabaseRegistry;
  devicePath: string;
  cleanup(): Promise<void>;
}

export async function openTempDatabase(): Promise<TempDatabase> {
  const devicePath = await mkdtemp(join(tmpdir(), 'nebula-leveldb-'));
  const registry = new DatabaseRegistry({ logger: createLogger('test', 'silent') });
  const database = await registry.get(devicePath);
  return {
    database,
    registry,
    devicePath,
    async cleanup() {
      await registry.close();
      await rm(devicePath, { recursive: true, force: true });
    },
  };
}
