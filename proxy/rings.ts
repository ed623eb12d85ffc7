/**
 * The three rings the proxy routes by (account, container, object), as read-only lookups:
 * `<swift_dir>/account.ring.gz`, `container.ring.gz`, `object.ring.gz`. The proxy needs only
 * partition, primaries and handoffs; ring/ owns the file format and placement.
 */
import { join } from 'node:path';
import type { HashPathSecrets } from '../common/hash-path.js';
import { Ring } from '../ring/ring.js';
import type { BackendNode } from './backend.js';

export interface RingNode extends BackendNode {
  id: number;
  /** The replica index for a primary; handoffs have none. */
  index?: number;
}

export interface ProxyRing {
  readonly replicaCount: number;
  getPartition(account: string, container?: string, object?: string): number;
  /** The primaries of a partition, in replica order. */
  getNodes(partition: number): readonly RingNode[];
  /** Handoffs of a partition, best first (possibly many: callers bound how far they go). */
  getMoreNodes(partition: number): Iterable<RingNode>;
}

export interface Rings {
  account: ProxyRing;
  container: ProxyRing;
  object: ProxyRing;
}

export type RingKind = keyof Rings;

/** Swift's quorum for replicated writes: a majority. */
export function quorumSize(replicas: number): number {
  return Math.floor(replicas / 2) + 1;
}

/** Primaries, then at most `handoffsMax` handoffs. */
export function* nodesFor(ring: ProxyRing, partition: number, handoffsMax: number): Generator<RingNode> {
  yield* ring.getNodes(partition);
  if (handoffsMax <= 0) return;
  let count = 0;
  for (const node of ring.getMoreNodes(partition)) {
    yield node;
    count += 1;
    if (count >= handoffsMax) return;
  }
}

/** Loads `<swiftDir>/{account,container,object}.ring.gz`; each reloads itself when its file changes. */
export function loadRings(
  swiftDir: string,
  secrets: HashPathSecrets,
  reloadIntervalMs: number,
  onReloadError: (error: Error) => void,
): Rings & { close(): void } {
  const load = (kind: RingKind): Ring =>
    Ring.load(join(swiftDir, `${kind}.ring.gz`), secrets, { reloadIntervalMs, onReloadError });
  const account = load('account');
  const container = load('container');
  const object = load('object');
  return {
    account,
    container,
    object,
    close: () => {
      account.close();
      container.close();
      object.close();
    },
  };
}
