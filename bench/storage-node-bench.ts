/**
 * Storage node benchmark: small-object PUT and GET straight to one storage node (no proxy),
 * Nebula's against Debian's `swift-object-server` configured the same way, in one run.
 *
 *     npm run build && node dist/bench/storage-node-bench.js [--seconds 8] [--concurrency 32]
 *         [--rounds 3] [--size 4096] [--swift-workers 1] [--no-swift] [--profile DIR] [--log-level info]
 *
 * Both servers: one device (a plain folder on the same disk, under one temp dir), mount_check off,
 * fsync on (Swift always fsyncs; Nebula's `fsync = true`), one worker process, request logging on.
 * Each phase runs `--seconds`: first PUTs of new objects (unique names, spread over partitions),
 * then GETs of random objects among those written. The two servers run side by side and take
 * turns, round after round, so a busy host weighs on both alike; the medians are reported. Prints requests/s and latency percentiles per phase
 * and the Nebula/Swift ratios. `--profile DIR` runs the Nebula node under `node --cpu-prof`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Timestamp } from '../common/timestamp.js';
import { freePort, startStorageNode } from '../test/helpers/storage-node.js';

const RUN_WITH_CONF = '/work/shared/anchors/swift/run_with_conf.py';
const REQUEST_TIMEOUT_MS = 30_000;

interface Target {
  name: string;
  host: string;
  port: number;
  device: string;
  /** The server process (or the leader of its process group): its CPU time is read from /proc around each phase. */
  processGroup: number;
}

/** Clock ticks per second of /proc's utime/stime (USER_HZ: 100 on Linux). */
const TICKS_PER_SECOND = 100;

/** CPU seconds (user + system) used so far by every process of a group (a server and its workers). */
function cpuSecondsOfGroup(processGroup: number): number {
  let ticks = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // Fields after the command name, which may hold spaces: state ppid pgrp ... utime(14) stime(15).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(entry) !== processGroup && Number(fields[2]) !== processGroup) continue;
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / TICKS_PER_SECOND;
}

interface PhaseResult {
  requests: number;
  errors: number;
  seconds: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Server CPU (user + system) per request, in ms: what a request costs, whatever the host load. */
  cpuMsPerRequest: number;
}

function percentile(sorted: number[], fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] ?? Number.NaN;
}

function once(agent: Agent, target: Target, method: 'PUT' | 'GET', path: string, body?: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> =
      method === 'PUT'
        ? {
            'X-Timestamp': Timestamp.now().internal,
            'Content-Type': 'application/octet-stream',
            'Content-Length': String(body?.length ?? 0),
            'X-Backend-Storage-Policy-Index': '0',
          }
        : {};
    const outgoing = request({ host: target.host, port: target.port, method, path, headers, agent }, (response) => {
      response.resume();
      response.once('end', () => resolve(response.statusCode ?? 0));
      response.once('error', reject);
    });
    outgoing.setTimeout(REQUEST_TIMEOUT_MS, () => outgoing.destroy(new Error('request timeout')));
    outgoing.once('error', reject);
    outgoing.end(body);
  });
}

async function runPhase(
  target: Target,
  method: 'PUT' | 'GET',
  seconds: number,
  concurrency: number,
  body: Buffer,
  written: string[],
): Promise<PhaseResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const latencies: number[] = [];
  let errors = 0;
  let counter = 0;
  const cpuBefore = cpuSecondsOfGroup(target.processGroup);
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const worker = async (): Promise<void> => {
    // Bounded by the deadline.
    while (performance.now() < deadline) {
      let path: string;
      if (method === 'PUT') {
        counter += 1;
        path = `/${target.device}/${counter % 1024}/bench/c/o-${counter}`;
      } else {
        path = written[Math.floor(Math.random() * written.length)] ?? '/';
      }
      const begin = performance.now();
      try {
        const status = await once(agent, target, method, path, method === 'PUT' ? body : undefined);
        if ((method === 'PUT' && status === 201) || (method === 'GET' && status === 200)) {
          latencies.push(performance.now() - begin);
          if (method === 'PUT') written.push(path);
        } else {
          errors += 1;
        }
      } catch {
        errors += 1;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, () => worker()));
  const elapsed = (performance.now() - started) / 1000;
  const cpuSeconds = cpuSecondsOfGroup(target.processGroup) - cpuBefore;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return {
    requests: latencies.length,
    errors,
    seconds: elapsed,
    perSecond: latencies.length / elapsed,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    cpuMsPerRequest: (cpuSeconds * 1000) / Math.max(1, latencies.length + errors),
  };
}

async function waitUntilAnswers(target: Target, timeoutMs: number): Promise<void> {
  const agent = new Agent({ keepAlive: false });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await once(agent, target, 'GET', `/${target.device}/0/a/c/probe`);
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

async function startSwift(dir: string, workers: number): Promise<{ target: Target; child: ChildProcess }> {
  const port = await freePort();
  const devices = join(dir, 'devices');
  await mkdir(join(devices, 'sdb1'), { recursive: true });
  await writeFile(
    join(dir, 'swift.conf'),
    `[swift-hash]\nswift_hash_path_prefix = bench\nswift_hash_path_suffix = bench\n\n[storage-policy:0]\nname = gold\ndefault = yes\n`,
  );
  await writeFile(
    join(dir, 'object-server.conf'),
    [
      '[DEFAULT]',
      `devices = ${devices}`,
      'mount_check = false',
      'disable_fallocate = true',
      'bind_ip = 127.0.0.1',
      `bind_port = ${port}`,
      `workers = ${workers}`,
      `swift_dir = ${dir}`,
      'user = root',
      `log_address = ${join(dir, 'no-syslog')}`,
      `recon_cache_path = ${dir}`,
      '',
      '[pipeline:main]',
      'pipeline = object-server',
      '',
      '[app:object-server]',
      'use = egg:swift#object',
      '',
    ].join('\n'),
  );
  const child = spawn(
    '/usr/bin/python3',
    [RUN_WITH_CONF, '/usr/bin/swift-object-server', join(dir, 'object-server.conf')],
    { env: { ...process.env, SWIFT_CONF_FILE: join(dir, 'swift.conf') }, stdio: 'ignore', detached: true },
  );
  const target = {
    name: `swift-object-server (workers=${workers})`,
    host: '127.0.0.1',
    port,
    device: 'sdb1',
    processGroup: child.pid ?? 0,
  };
  await waitUntilAnswers(target, 30_000);
  return { target, child };
}

function format(result: PhaseResult): string {
  return `${result.perSecond.toFixed(0).padStart(7)} req/s  p50 ${result.p50Ms.toFixed(1).padStart(6)} ms  p99 ${result.p99Ms
    .toFixed(1)
    .padStart(
      6,
    )} ms  cpu ${result.cpuMsPerRequest.toFixed(2).padStart(5)} ms/req  (${result.requests} ok, ${result.errors} errors, ${result.seconds.toFixed(1)} s)`;
}

async function benchmark(
  target: Target,
  seconds: number,
  concurrency: number,
  body: Buffer,
): Promise<Record<'PUT' | 'GET', PhaseResult>> {
  const written: string[] = [];
  // A short warm-up: JIT, connection setup, first folders.
  await runPhase(target, 'PUT', 1, concurrency, body, []);
  const put = await runPhase(target, 'PUT', seconds, concurrency, body, written);
  process.stdout.write(`${target.name.padEnd(36)} PUT ${format(put)}\n`);
  const get = await runPhase(target, 'GET', seconds, concurrency, body, written);
  process.stdout.write(`${target.name.padEnd(36)} GET ${format(get)}\n`);
  return { PUT: put, GET: get };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? Number.NaN)
    : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '5' },
      rounds: { type: 'string', default: '3' },
      concurrency: { type: 'string', default: '32' },
      size: { type: 'string', default: '4096' },
      'swift-workers': { type: 'string', default: '1' },
      'no-swift': { type: 'boolean', default: false },
      profile: { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
    },
  });
  const seconds = Number(values.seconds);
  const rounds = Math.max(1, Math.min(20, Number(values.rounds)));
  const concurrency = Number(values.concurrency);
  const body = randomBytes(Number(values.size));
  const dir = await mkdtemp(join(tmpdir(), 'nebula-sn-bench-'));
  process.stdout.write(
    `storage node bench: ${body.length} B objects, ${concurrency} concurrent, ${seconds} s per phase, ${rounds} rounds ` +
      `(servers alternate, so both see the same host load), fsync on, data in ${dir}\n`,
  );
  const env: Record<string, string> = { NEBULA_LOG_LEVEL: values['log-level'] };
  const nodeArgs = values.profile === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${values.profile}`];
  const node = await startStorageNode({
    dir: join(dir, 'nebula'),
    config: { 'app:object-server': { fsync: 'true' } },
    env,
    nodeArgs,
  });
  let swift: { target: Target; child: ChildProcess } | undefined;
  try {
    const nebulaTarget: Target = {
      name: 'nebula storage-node',
      host: node.host,
      port: node.port,
      device: 'sda1',
      processGroup: node.process.pid ?? 0,
    };
    if (!values['no-swift']) swift = await startSwift(join(dir, 'swift'), Number(values['swift-workers']));
    const ratios: Record<'PUT' | 'GET', number[]> = { PUT: [], GET: [] };
    const totals: Record<string, Record<'PUT' | 'GET', number[]>> = {};
    const cpu: Record<string, Record<'PUT' | 'GET', number[]>> = {};
    for (let round = 1; round <= rounds; round += 1) {
      process.stdout.write(`round ${round}\n`);
      const nebula = await benchmark(nebulaTarget, seconds, concurrency, body);
      (totals.nebula ??= { PUT: [], GET: [] }).PUT.push(nebula.PUT.perSecond);
      totals.nebula.GET.push(nebula.GET.perSecond);
      (cpu.nebula ??= { PUT: [], GET: [] }).PUT.push(nebula.PUT.cpuMsPerRequest);
      cpu.nebula.GET.push(nebula.GET.cpuMsPerRequest);
      if (swift !== undefined) {
        const reference = await benchmark(swift.target, seconds, concurrency, body);
        (totals.swift ??= { PUT: [], GET: [] }).PUT.push(reference.PUT.perSecond);
        totals.swift.GET.push(reference.GET.perSecond);
        (cpu.swift ??= { PUT: [], GET: [] }).PUT.push(reference.PUT.cpuMsPerRequest);
        cpu.swift.GET.push(reference.GET.cpuMsPerRequest);
        ratios.PUT.push(nebula.PUT.perSecond / reference.PUT.perSecond);
        ratios.GET.push(nebula.GET.perSecond / reference.GET.perSecond);
      }
    }
    for (const [name, phases] of Object.entries(totals)) {
      process.stdout.write(
        `median ${name.padEnd(7)} PUT ${median(phases.PUT).toFixed(0)} req/s, GET ${median(phases.GET).toFixed(0)} req/s; ` +
          `server CPU per request: PUT ${median(cpu[name]?.PUT ?? []).toFixed(2)} ms, GET ${median(cpu[name]?.GET ?? []).toFixed(2)} ms\n`,
      );
    }
    if (swift !== undefined) {
      process.stdout.write(
        `ratio nebula/swift per round: PUT ${ratios.PUT.map((r) => r.toFixed(2)).join(' ')}, GET ${ratios.GET.map((r) => r.toFixed(2)).join(' ')}; ` +
          `median PUT ${median(ratios.PUT).toFixed(2)}x, GET ${median(ratios.GET).toFixed(2)}x\n`,
      );
    }
  } finally {
    await node.stop();
    if (swift !== undefined && swift.child.pid !== undefined) {
      // The Swift server forks workers: end its whole process group (it was started detached).
      try {
        process.kill(-swift.child.pid, 'SIGTERM');
      } catch {
        // already gone
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
      try {
        process.kill(-swift.child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
