import test from 'ava';
import { STORAGE_NODE_THREAD_POOL_SIZE, storageNodeThreadPoolEnv } from '../../../common/thread-pool.js';

test('a storage node child gets the larger pool unless the operator chose a size', (t) => {
  t.deepEqual(storageNodeThreadPoolEnv({}), { UV_THREADPOOL_SIZE: String(STORAGE_NODE_THREAD_POOL_SIZE) });
  t.deepEqual(storageNodeThreadPoolEnv({ UV_THREADPOOL_SIZE: '16' }), { UV_THREADPOOL_SIZE: '16' });
});
