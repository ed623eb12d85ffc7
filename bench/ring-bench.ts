/**
 * Ring benchmark: Nebula's builder and ring against OpenStack Swift 2.30's (Debian python3-swift),
 * in one run, on the same device set.
 *
 *   node dist/bench/ring-bench.js [--part-power 20] [--zones 50] [--devices 1000] [--replicas 3]
 *                                 [--lookups 5000000] [--skip-swift] [--out bench/results/ring.md]
 *
 * 1. Rebalance from scratch: `RingBuilder.rebalance()` only (device adds and file writes are
 *    outside the timing), Nebula in this process, Swift in a python3 child; wall and CPU time
 *    (CPU is the fair number on a shared machine), balance and dispersion of each result.
 * 2. Lookups on the built ring, one core: `getNodes(partition)` over random partitions, and
 *    `getPartition + getNodes` over random names (md5 included); Swift's `get_part_nodes` for
 *    scale.
 * Prints a Markdown report (and writes it with --out). Swift at power 20 takes minutes: it runs once.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { RingBuilder, type AddDeviceInput } from '../ring/builder.js';
import { Ring } from '../ring/ring.js';
import { writeRingFile } from '../ring/ring-file.js';

interface Options {
  partPower: number;
  zones: number;
  devices: number;
  replicas: number;
  lookups: number;
  skipSwift: boolean;
  out?: string;
}

function parseOptions(argv: readonly string[]): Options {
  const options: Options = {
    partPower: 20,
    zones: 50,
    devices: 1000,
    replicas: 3,
    lookups: 5_000_000,
    skipSwift: false,
  };
  for (let index = 0; index < argv.length; index += 1) {
    const arg = argv[index];
    const value = (): number => {
      const text = argv[++index];
      const number = Number(text);
      if (text === undefined || !Number.isInteger(number) || number < 0) throw new Error(`${arg} needs a whole number`);
      return number;
    };
    if (arg === '--part-power') options.partPower = value();
    else if (arg === '--zones') options.zones = value();
    else if (arg === '--devices') options.devices = value();
    else if (arg === '--replicas') options.replicas = value();
    else if (arg === '--lookups') options.lookups = value();
    else if (arg === '--skip-swift') options.skipSwift = true;
    else if (arg === '--out') options.out = argv[++index];
    else throw new Error(`unknown option ${arg}`);
  }
  return options;
}

/**
 * The device set: `zones` zones of 4 hosts each, devices dealt round-robin over hosts, weights a
 * deterministic mix of 4, 8, 12 and 16 TB-class drives (uneven, as real clusters are).
 */
export function benchDevices(zones: number, devices: number): AddDeviceInput[] {
  const result: AddDeviceInput[] = [];
  const weights = [4000, 8000, 12000, 16000];
  for (let index = 0; index < devices; index += 1) {
    const zone = 1 + (index % zones);
    const host = Math.floor(index / zones) % 4;
    const disk = Math.floor(index / (zones * 4));
    result.push({
      region: 1,
      zone,
      ip: `10.${zone}.${host}.1`,
      port: 6200,
      device: `d${disk}`,
      weight: weights[(index * 7 + Math.floor(index / 3)) % weights.length] ?? 4000,
    });
  }
  return result;
}

interface BuildFigures {
  wallMs: number;
  cpuMs: number;
  balance: number;
  dispersion: number;
  partitionReplicas: number;
}

const SWIFT_BUILD = `
import json, sys, time, resource
from swift.common.ring.builder import RingBuilder
spec = json.load(sys.stdin)
builder = RingBuilder(spec['part_power'], spec['replicas'], 1)
for dev in spec['devices']:
    builder.add_dev(dev)
cpu0 = time.process_time(); wall0 = time.perf_counter()
builder.rebalance(seed=1)
wall = time.perf_counter() - wall0; cpu = time.process_time() - cpu0
builder.validate()
builder.get_ring().save(spec['ring'])
print(json.dumps({'wallMs': wall * 1000, 'cpuMs': cpu * 1000, 'balance': builder.get_balance(),
                  'dispersion': builder.dispersion, 'partitionReplicas': builder.parts * builder.replicas}))
`;

const SWIFT_LOOKUPS = `
import json, sys, time, random
import swift.common.utils as utils
utils.HASH_PATH_SUFFIX = b'bench'
from swift.common.ring import Ring
ring = Ring(sys.argv[1])
count = int(sys.argv[2])
parts = [random.randrange(ring.partition_count) for _ in range(count)]
cpu0 = time.process_time()
for part in parts:
    ring.get_part_nodes(part)
cpu = time.process_time() - cpu0
print(json.dumps({'perSecond': count / cpu}))
`;

function runPython(script: string, args: string[], input: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      '/usr/bin/python3',
      ['-c', script, ...args],
      { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error !== null) reject(new Error(`python3 failed: ${error.message}\n${stderr}`));
        else resolve(stdout);
      },
    );
    child.stdin?.end(input);
  });
}

interface IncrementalFigures {
  added: number;
  changedParts: number;
  minimalParts: number;
  cpuMs: number;
  balance: number;
}

function buildNebula(
  options: Options,
  devices: AddDeviceInput[],
  ringPath: string,
): BuildFigures & { incremental: IncrementalFigures } {
  const builder = new RingBuilder(options.partPower, options.replicas, 1);
  for (const device of devices) builder.addDevice(device);
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  const result = builder.rebalance(1);
  const wallMs = performance.now() - wall0;
  const cpu = process.cpuUsage(cpu0);
  builder.validate();
  writeRingFile(ringPath, builder.getRingData());
  // Then grow the cluster by 1% (one 8000-weight device in each of the first zones) and measure
  // how much moves against the minimal share the new weight calls for.
  const added = Math.max(1, Math.round(options.devices / 100));
  let totalWeight = 0;
  for (const device of devices) totalWeight += device.weight;
  for (let index = 0; index < added; index += 1) {
    const zone = 1 + (index % options.zones);
    builder.addDevice({ region: 1, zone, ip: `10.${zone}.9.1`, port: 6200, device: `new${index}`, weight: 8000 });
  }
  builder.pretendMinPartHoursPassed();
  const cpu1 = process.cpuUsage();
  const grown = builder.rebalance(2);
  const cpuGrown = process.cpuUsage(cpu1);
  builder.validate();
  return {
    wallMs,
    cpuMs: (cpu.user + cpu.system) / 1000,
    balance: result.balance,
    dispersion: result.dispersion,
    partitionReplicas: builder.partitionCount * options.replicas,
    incremental: {
      added,
      changedParts: grown.changedParts,
      minimalParts: ((added * 8000) / (totalWeight + added * 8000)) * builder.partitionCount * options.replicas,
      cpuMs: (cpuGrown.user + cpuGrown.system) / 1000,
      balance: grown.balance,
    },
  };
}

interface LookupFigures {
  getNodesPerSecond: number;
  getNodeIdsPerSecond: number;
  nameLookupsPerSecond: number;
  handoffWalksPerSecond: number;
}

function measureLookups(ringPath: string, lookups: number): LookupFigures {
  const ring = Ring.load(ringPath, { prefix: '', suffix: 'bench' }, { reloadIntervalMs: 0 });
  const partitions = new Uint32Array(lookups);
  for (let index = 0; index < lookups; index += 1) partitions[index] = Math.floor(Math.random() * ring.partitionCount);
  const timeCpu = (fn: () => number): number => {
    const cpu0 = process.cpuUsage();
    const sink = fn();
    const cpu = process.cpuUsage(cpu0);
    if (sink === -1) console.log('unreachable'); // keeps the work observable
    return (cpu.user + cpu.system) / 1e6;
  };
  // Warm up the JIT on a slice first, as a long-running server would be.
  timeCpu(() => {
    let sum = 0;
    for (let index = 0; index < 100_000; index += 1) sum += ring.getNodes(partitions[index % lookups] ?? 0).length;
    return sum;
  });
  const getNodesSeconds = timeCpu(() => {
    let sum = 0;
    for (let index = 0; index < lookups; index += 1) sum += ring.getNodes(partitions[index] ?? 0)[0]?.id ?? 0;
    return sum;
  });
  const ids = new Uint16Array(8);
  const idsSeconds = timeCpu(() => {
    let sum = 0;
    for (let index = 0; index < lookups; index += 1) sum += ring.getNodeIds(partitions[index] ?? 0, ids);
    return sum;
  });
  const nameCount = Math.min(lookups, 1_000_000);
  const names = Array.from({ length: nameCount }, (_, index) => `obj-${index}`);
  const nameSeconds = timeCpu(() => {
    let sum = 0;
    for (const name of names) sum += ring.getPartitionAndNodes('AUTH_bench', 'bench', name).nodes.length;
    return sum;
  });
  const walkCount = 20_000;
  const walkSeconds = timeCpu(() => {
    let sum = 0;
    for (let index = 0; index < walkCount; index += 1) {
      let taken = 0;
      for (const node of ring.getMoreNodes(partitions[index] ?? 0)) {
        sum += node.id;
        if (++taken >= 6) break;
      }
    }
    return sum;
  });
  return {
    getNodesPerSecond: lookups / getNodesSeconds,
    getNodeIdsPerSecond: lookups / idsSeconds,
    nameLookupsPerSecond: nameCount / nameSeconds,
    handoffWalksPerSecond: walkCount / walkSeconds,
  };
}

const fmt = (value: number, digits = 2): string => value.toFixed(digits);
const thousands = (value: number): string => Math.round(value).toLocaleString('en-US');

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const folder = mkdtempSync(join(tmpdir(), 'nebula-ring-bench-'));
  try {
    const devices = benchDevices(options.zones, options.devices);
    const loadBefore = loadavg()[0] ?? 0;
    const nebula = buildNebula(options, devices, join(folder, 'nebula.ring.gz'));
    console.error(
      `nebula: rebalance ${fmt(nebula.wallMs, 0)} ms wall, ${fmt(nebula.cpuMs, 0)} ms CPU, balance ${fmt(nebula.balance)}`,
    );
    let swift: BuildFigures | undefined;
    let swiftLookups: number | undefined;
    if (!options.skipSwift) {
      const spec = JSON.stringify({
        part_power: options.partPower,
        replicas: options.replicas,
        devices,
        ring: join(folder, 'swift.ring.gz'),
      });
      swift = JSON.parse(await runPython(SWIFT_BUILD, [], spec, 60 * 60_000)) as BuildFigures;
      console.error(
        `swift: rebalance ${fmt(swift.wallMs, 0)} ms wall, ${fmt(swift.cpuMs, 0)} ms CPU, balance ${fmt(swift.balance)}`,
      );
      const looked = JSON.parse(
        await runPython(SWIFT_LOOKUPS, [join(folder, 'swift.ring.gz'), '300000'], '', 10 * 60_000),
      ) as {
        perSecond: number;
      };
      swiftLookups = looked.perSecond;
    }
    const lookups = measureLookups(join(folder, 'nebula.ring.gz'), options.lookups);
    const loadAfter = loadavg()[0] ?? 0;

    const lines: string[] = [];
    lines.push('# Ring benchmark: Nebula vs OpenStack Swift 2.30 (Debian python3-swift)');
    lines.push('');
    lines.push(
      `Run: ${new Date().toISOString()}, node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), load average ${fmt(loadBefore)} before, ${fmt(loadAfter)} after.`,
    );
    lines.push(`Command: \`node dist/bench/ring-bench.js ${process.argv.slice(2).join(' ')}\``);
    lines.push('');
    lines.push(
      `Device set: ${options.devices} devices in ${options.zones} zones (4 hosts per zone, 1 region), weights a mix of 4000/8000/12000/16000; ` +
        `part power ${options.partPower}, ${options.replicas} replicas (${thousands(nebula.partitionReplicas)} partition-replicas), seed 1, ` +
        'initial rebalance (`RingBuilder.rebalance()` only; adding devices and writing files not timed).',
    );
    lines.push('');
    lines.push('| builder | rebalance wall | rebalance CPU | balance | dispersion |');
    lines.push('|---|---:|---:|---:|---:|');
    lines.push(
      `| Nebula | ${fmt(nebula.wallMs / 1000)} s | ${fmt(nebula.cpuMs / 1000)} s | ${fmt(nebula.balance)} | ${fmt(nebula.dispersion)} |`,
    );
    if (swift !== undefined) {
      lines.push(
        `| Swift 2.30 | ${fmt(swift.wallMs / 1000)} s | ${fmt(swift.cpuMs / 1000)} s | ${fmt(swift.balance)} | ${fmt(swift.dispersion)} |`,
      );
      lines.push('');
      lines.push(
        `Speed-up: ${fmt(swift.cpuMs / nebula.cpuMs, 1)}x by CPU time, ${fmt(swift.wallMs / nebula.wallMs, 1)}x by wall time ` +
          `(target: 10x). Balance: Nebula ${fmt(nebula.balance)} vs Swift ${fmt(swift.balance)} (lower is better; target: no worse).`,
      );
    }
    lines.push('');
    const grown = nebula.incremental;
    lines.push(
      `Growing by ${grown.added} devices (1%, weight 8000 each) then rebalancing (Nebula only; min_part_hours passed): ` +
        `${thousands(grown.changedParts)} partition-replicas moved, minimal share ${thousands(grown.minimalParts)} ` +
        `(${fmt((100 * grown.changedParts) / grown.minimalParts, 1)}% of minimal), ${fmt(grown.cpuMs / 1000)} s CPU, balance ${fmt(grown.balance)}.`,
    );
    lines.push('');
    lines.push(
      `Lookups on Nebula's ring (one core, CPU time, ${thousands(options.lookups)} random partitions after a JIT warm-up):`,
    );
    lines.push('');
    lines.push('| lookup | per second |');
    lines.push('|---|---:|');
    lines.push(
      `| \`getNodes(partition)\` (primaries with index, shared frozen objects) | ${thousands(lookups.getNodesPerSecond)} |`,
    );
    lines.push(
      `| \`getNodeIds(partition, out)\` (ids into a caller's Uint16Array) | ${thousands(lookups.getNodeIdsPerSecond)} |`,
    );
    lines.push(`| \`getPartitionAndNodes(a, c, o)\` (md5 included) | ${thousands(lookups.nameLookupsPerSecond)} |`);
    lines.push(`| \`getMoreNodes(partition)\`, first 6 handoffs | ${thousands(lookups.handoffWalksPerSecond)} |`);
    if (swiftLookups !== undefined)
      lines.push(`| Swift \`Ring.get_part_nodes(part)\` (for scale) | ${thousands(swiftLookups)} |`);
    lines.push('');
    const report = lines.join('\n');
    console.log(report);
    if (options.out !== undefined) writeFileSync(options.out, report);
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
