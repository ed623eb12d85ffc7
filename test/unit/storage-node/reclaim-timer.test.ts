import test from 'ava';
import { createLogger } from '../../../common/log.js';
import { startReclaimTimer } from '../../../storage-node/db/reclaim-timer.js';
import { ContainerBroker } from '../../../storage-node/container/broker.js';
import { DEFAULT_CONSTRAINTS } from '../../../common/constraints.js';
import { Timestamp } from '../../../common/timestamp.js';
import { reclaimContainers } from '../../../storage-node/container/broker.js';
import { openTempDatabase } from './helpers/temp-database.js';

test('the background pass reclaims open devices in bounded steps, resuming, and stops cleanly', async (t) => {
  const temp = await openTempDatabase();
  try {
    const broker = new ContainerBroker(temp.database, 0, 'a', 'c');
    const old = (seconds: number): string => Timestamp.fromSeconds(1_600_000_000 + seconds).internal;
    await broker.put({ timestamp: old(0), defaultPolicyIndex: 0, metadata: {} }, DEFAULT_CONSTRAINTS);
    for (let index = 0; index < 25; index += 1) await broker.deleteObject(`o${index}`, old(1 + index));
    const calls: (string | undefined)[] = [];
    let reclaimed = 0;
    const timer = startReclaimTimer({
      intervalMs: 10,
      databases: temp.registry,
      logger: createLogger('test', 'silent'),
      maxKeysPerPass: 10,
      async reclaim(devicePath, bounds) {
        calls.push(bounds.after?.toString('latin1'));
        const result = await reclaimContainers(temp.database, Timestamp.now().internal, bounds);
        reclaimed += result.rowsReclaimed;
        t.is(devicePath, temp.devicePath);
        return result;
      },
    });
    for (let wait = 0; wait < 200 && reclaimed < 25; wait += 1) await new Promise((resolve) => setTimeout(resolve, 10));
    await timer.stop();
    t.is(reclaimed, 25);
    t.true(calls.length >= 3, 'several bounded passes');
    t.is(calls[0], undefined);
    t.truthy(calls[1], 'the second pass resumed where the first stopped');
    t.is((await broker.getInfo())?.object_count, 0);
  } finally {
    await temp.cleanup();
  }
});
