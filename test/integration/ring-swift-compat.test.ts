/**
 * Nebula's ring against OpenStack Swift 2.30's own code (Debian's python3-swift and
 * swift-ring-builder): a ring Swift built gives the same partitions, primaries and handoffs in
 * Nebula as in Swift's Python `Ring`, and a ring Nebula built loads in Swift with the same
 * answers. Skips when Debian's swift is not installed.
 */
import test, { type ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { Ring } from '../../ring/ring.js';
import { readRingFile, serializeRingData } from '../../ring/ring-file.js';

const run = promisify(execFile);
const PYTHON = '/usr/bin/python3';
const SWIFT_RING_BUILDER = '/usr/bin/swift-ring-builder';
const CLI = join(process.cwd(), 'dist', 'ring', 'cli.js');
const SECRETS = { prefix: 'nebula-prefix', suffix: 'nebula-suffix' };
const HANDOFFS = 8;
const haveSwift = existsSync(SWIFT_RING_BUILDER) && existsSync(PYTHON);

/** Reads JSON lines [account, container|null, object|null]; prints Swift's answers as JSON. */
const PYTHON_LOOKUP = `
import json, sys, itertools
import swift.common.utils as utils
utils.HASH_PATH_PREFIX = sys.argv[2].encode()
utils.HASH_PATH_SUFFIX = sys.argv[3].encode()
from swift.common.ring import Ring
ring = Ring(sys.argv[1])
answers = []
for line in sys.stdin:
    account, container, obj = json.loads(line)
    part, nodes = ring.get_nodes(account, container, obj)
    handoffs = [node['id'] for node in itertools.islice(ring.get_more_nodes(part), int(sys.argv[4]))]
    answers.append([part, [[node['id'], node['index']] for node in nodes], handoffs])
print(json.dumps(answers))
`;

/** Loads a ring with Swift's RingData and saves it again (Swift's own serializer). */
const PYTHON_RESAVE = `
import sys
from swift.common.ring import RingData
RingData.load(sys.argv[1]).save(sys.argv[2])
`;

type Name = [string, string | null, string | null];

function names(count: number): Name[] {
  const result: Name[] = [];
  for (let index = 0; index < count; index += 1) {
    if (index % 10 === 0) result.push([`AUTH_acct${index}`, null, null]);
    else if (index % 10 === 1) result.push([`AUTH_acct${index % 7}`, `container-${index}`, null]);
    else result.push([`AUTH_acct${index % 7}`, `c${index % 13}`, `photos/2026/\u00e9t\u00e9-${index}.jpg`]);
  }
  return result;
}

async function swiftAnswers(ringPath: string, lookups: Name[]): Promise<[number, [number, number][], number[]][]> {
  const child = execFile(PYTHON, ['-c', PYTHON_LOOKUP, ringPath, SECRETS.prefix, SECRETS.suffix, String(HANDOFFS)], {
    timeout: 30_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  child.stdin?.end(lookups.map((name) => JSON.stringify(name)).join('\n') + '\n');
  const code = await exited;
  if (code !== 0) throw new Error(`python lookup failed (${code}): ${stderr}`);
  return JSON.parse(stdout) as [number, [number, number][], number[]][];
}

function nebulaAnswers(ring: Ring, lookups: Name[]): [number, [number, number][], number[]][] {
  return lookups.map(([account, container, object]) => {
    const { partition, nodes } = ring.getPartitionAndNodes(account, container ?? undefined, object ?? undefined);
    const handoffs: number[] = [];
    for (const node of ring.getMoreNodes(partition)) {
      if (handoffs.length >= HANDOFFS) break;
      handoffs.push(node.id);
    }
    return [partition, nodes.map((node) => [node.id, node.index]), handoffs];
  });
}

function tempFolder(t: { teardown: (fn: () => void) => void }): string {
  const folder = mkdtempSync(join(tmpdir(), 'nebula-ring-compat-'));
  t.teardown(() => rmSync(folder, { recursive: true, force: true }));
  return folder;
}

/** Two regions, seven zones, uneven weights, several devices per host. */
function addArgs(): string[] {
  const args: string[] = [];
  for (let zone = 1; zone <= 7; zone += 1) {
    for (let disk = 0; disk < 1 + (zone % 3); disk += 1) {
      args.push(
        `r${1 + (zone % 2)}z${zone}-10.0.${zone}.${1 + (disk % 2)}:${6200 + disk}/sd${String.fromCharCode(98 + disk)}`,
      );
      args.push(String(50 + ((zone * 37 + disk * 11) % 150)));
    }
  }
  return args;
}

// scripts/test.sh installs Debian's swift: without it these fail, never skip.
const compat = (title: string, body: (t: ExecutionContext) => Promise<void>): void => {
  test(title, async (t) => {
    t.true(haveSwift, 'needs Debian swift (swift-ring-builder) and /usr/bin/python3 with python3-swift');
    await body(t);
  });
};

compat("a ring built by Swift's swift-ring-builder: Nebula agrees with Swift's Ring on every lookup", async (t) => {
  const folder = tempFolder(t);
  const builder = join(folder, 'object.builder');
  await run(SWIFT_RING_BUILDER, [builder, 'create', '10', '3', '1'], { timeout: 30_000 });
  await run(SWIFT_RING_BUILDER, [builder, 'add', ...addArgs()], { timeout: 30_000 });
  await run(SWIFT_RING_BUILDER, [builder, 'rebalance', '--seed', '7'], { timeout: 60_000 }).catch(
    (error: { code?: number }) => {
      if (error.code !== 1) throw error; // 1 is a balance warning: the ring was written
    },
  );
  const ringPath = join(folder, 'object.ring.gz');
  const ring = Ring.load(ringPath, SECRETS, { reloadIntervalMs: 0 });
  const lookups = names(600);
  t.deepEqual(nebulaAnswers(ring, lookups), await swiftAnswers(ringPath, lookups));
  // Every device field as Swift wrote it, and the payload re-serialized bit for bit.
  t.true(serializeRingData(readRingFile(ringPath)).equals(gunzipSync(readFileSync(ringPath))));
});

compat("a ring built by nebula-ring loads in Swift's Ring with the same nodes and handoffs", async (t) => {
  const folder = tempFolder(t);
  const builder = join(folder, 'object.builder');
  await run(process.execPath, [CLI, builder, 'create', '10', '3', '1'], { timeout: 30_000 });
  await run(process.execPath, [CLI, builder, 'add', ...addArgs()], { timeout: 30_000 });
  await run(process.execPath, [CLI, builder, 'rebalance', '--seed', '7'], { timeout: 60_000 }).catch(
    (error: { code?: number }) => {
      if (error.code !== 1) throw error;
    },
  );
  const ringPath = join(folder, 'object.ring.gz');
  const ring = Ring.load(ringPath, SECRETS, { reloadIntervalMs: 0 });
  const lookups = names(600);
  t.deepEqual(await swiftAnswers(ringPath, lookups), nebulaAnswers(ring, lookups));
  // Swift's own serializer, given the ring Nebula wrote, produces the same payload bytes.
  const resaved = join(folder, 'resaved.ring.gz');
  await run(PYTHON, ['-c', PYTHON_RESAVE, ringPath, resaved], { timeout: 30_000, cwd: folder });
  t.true(gunzipSync(readFileSync(resaved)).equals(gunzipSync(readFileSync(ringPath))));
});
