/**
 * The libuv thread pool size of a storage node, given through the environment of the process that
 * starts it.
 *
 * A storage node holds a pool thread through each fsync and fdatasync; with libuv's default of 4
 * threads, 4 slow syncs stall every other file operation, while with more threads the kernel folds
 * concurrent syncs into one journal commit. libuv reads `UV_THREADPOOL_SIZE` once, when the pool
 * starts, and an ES module program cannot set it for itself: Node's module loader reads the entry
 * module's files through the pool, so the pool runs before the first line of the program does.
 * Hence whoever spawns a storage node (the all-in-one, the servers_per_port parent, the test
 * helpers) puts it in the child's environment; an operator's own value wins.
 */

/** Threads for a storage node's pool: room for a sync per request at the usual concurrency. */
export const STORAGE_NODE_THREAD_POOL_SIZE = 64;

/** `UV_THREADPOOL_SIZE` for a storage node child: the operator's value if `env` holds one, else ours. */
export function storageNodeThreadPoolEnv(env: NodeJS.ProcessEnv): { UV_THREADPOOL_SIZE: string } {
  return { UV_THREADPOOL_SIZE: env.UV_THREADPOOL_SIZE ?? String(STORAGE_NODE_THREAD_POOL_SIZE) };
}
