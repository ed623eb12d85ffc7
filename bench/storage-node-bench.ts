/**
 * Storage node benchmark: small-object PUT and GET straight to one storage node (no proxy),
 * Nebula's against Debian's `swift-object-server` configured the same way, in one run.
 *
 *     npm run build && node dist/bench/storage-node-bench.js [--seconds 8] [--concurrency 32]
 *         [--rounds 3] [--size 4096] [--swift-workers 1] [--no-swift] [--profile DIR] [--log-level info]
 *         [--phases put,get] [--container-updates] [--client raw|node]
 *
 * Both servers: one device (a plain folder on the same disk, under one temp dir), mount_check off,
 * fsync on (Swift always fsyncs; Nebula's `fsync = true`), one worker process, request logging on.
 * Each phase runs `--seconds`: first PUTs of new objects (names unique over the whole run, spread
 * over partitions), then GETs of random objects among those written. `--container-updates` makes
 * every PUT name a container server (X-Container-Host/-Partition/-Device): the Nebula node's own,
 * for both servers, so each object server pays for sending its updates and the Nebula node also
 * for applying them (its CPU figure then covers the object write plus the container row). The two servers run side by side and take
 * turns, round after round, so a busy host weighs on both alike; the medians are reported. Prints requests/s and latency percentiles per phase
 * and the Nebula/Swift ratios. `--profile DIR` runs the Nebula node under `node --cpu-prof`.
 * The load comes from one kept-alive connection per concurrent request, each request written
 * whole and its response parsed just enough to find its end (raw-http-connection.ts): node:http's
 * client cost as much CPU per small request as the faster server, and on a shared host took the
 * CPU that server needed (`--client node` uses node:http, as before). Each phase also prints the
 * client's own CPU per request, to see when the client nears what it measures.
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
import { RawHttpConnection } from './raw-http-connection.js';
import { freePort, startStorageNode } from '../test/helpers/storage-node.js';

const RUN_WITH_CONF = '/work/shared/anchors/swift/run_with_conf.py';
/** The container every PUT names with --container-updates (made on the Nebula node at start). */
const BENCH_CONTAINER = { partition: '0', account: 'bench', container: 'c' };
/** Object names are unique over the run, so every PUT phase writes new objects. */
let putCounter = 0;
const REQUEST_TIMEOUT_MS = 30_000;
const PUT_WARM_UP_SECONDS = 3;

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
  /** This load generator's own CPU per request, in ms: when it nears the server's share, the client is what is measured. */
  clientCpuMsPerRequest: number;
}

function percentile(sorted: number[], fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] ?? Number.NaN;
}

/** Headers of an object PUT, as the proxy sends them. */
function putHeadersFor(body: Buffer, extraHeaders: Record<string, string>): Record<string, string> {
  return {
    'X-Timestamp': Timestamp.now().internal,
    'Content-Type': 'application/octet-stream',
    'Content-Length': String(body.length),
    'X-Backend-Storage-Policy-Index': '0',
    ...extraHeaders,
  };
}

function once(
  agent: Agent,
  target: Target,
  method: 'PUT' | 'GET',
  path: string,
  body?: Buffer,
  extraHeaders: Record<string, string> = {},
): Promise<number> {
  return new Promise((resolve, reject) => {
    const headers = method === 'PUT' ? putHeadersFor(body ?? Buffer.alloc(0), extraHeaders) : {};
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

type ClientKind = 'raw' | 'node';
/** Sends one request of a worker and resolves with the status. */
type Send = (
  method: 'PUT' | 'GET',
  path: string,
  body: Buffer | undefined,
  extraHeaders: Record<string, string>,
) => Promise<number>;

/** One worker's way to send: its own kept-alive raw connection (remade after an error), or node:http's agent. */
function senderFor(kind: ClientKind, agent: Agent, target: Target): { send: Send; close: () => void } {
  if (kind === 'node') {
    return {
      send: (method, path, body, extra) => once(agent, target, method, path, body, extra),
      close: () => undefined,
    };
  }
  const hostHeader = `Host: ${target.host}:${target.port}\r\nConnection: keep-alive`;
  let connection: RawHttpConnection | undefined;
  return {
    send: async (method, path, body, extra) => {
      connection ??= new RawHttpConnection(target.host, target.port, REQUEST_TIMEOUT_MS);
      let head = `${method} ${path} HTTP/1.1\r\n${hostHeader}`;
      if (method === 'PUT') {
        for (const [name, value] of Object.entries(putHeadersFor(body ?? Buffer.alloc(0), extra))) {
          head += `\r\n${name}: ${value}`;
        }
      }
      try {
        return await connection.request(head, body);
      } catch (error) {
        connection.close();
        connection = undefined;
        throw error;
      }
    },
    close: () => connection?.close(),
  };
}

async function runPhase(
  target: Target,
  method: 'PUT' | 'GET',
  seconds: number,
  concurrency: number,
  body: Buffer,
  written: string[],
  putHeaders: Record<string, string>,
  client: ClientKind,
): Promise<PhaseResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const latencies: number[] = [];
  let errors = 0;
  const cpuBefore = cpuSecondsOfGroup(target.processGroup);
  const clientCpuBefore = process.cpuUsage();
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const worker = async (): Promise<void> => {
    const { send, close } = senderFor(client, agent, target);
    // Bounded by the deadline.
    while (performance.now() < deadline) {
      let path: string;
      if (method === 'PUT') {
        putCounter += 1;
        path = `/${target.device}/${putCounter % 1024}/${BENCH_CONTAINER.account}/${BENCH_CONTAINER.container}/o-${putCounter}`;
      } else {
        path = written[Math.floor(Math.random() * written.length)] ?? '/';
      }
      const begin = performance.now();
      try {
        const status = await send(method, path, method === 'PUT' ? body : undefined, putHeaders);
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
    close();
  };
  await Promise.all(Array.from({ length: concurrency }, () => worker()));
  const elapsed = (performance.now() - started) / 1000;
  const cpuSeconds = cpuSecondsOfGroup(target.processGroup) - cpuBefore;
  const clientCpu = process.cpuUsage(clientCpuBefore);
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
    clientCpuMsPerRequest: (clientCpu.user + clientCpu.system) / 1000 / Math.max(1, latencies.length + errors),
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
    )} ms  cpu ${result.cpuMsPerRequest.toFixed(2).padStart(5)} ms/req  client cpu ${result.clientCpuMsPerRequest.toFixed(2)} ms/req  (${result.requests} ok, ${result.errors} errors, ${result.seconds.toFixed(1)} s)`;
}

type Phase = 'PUT' | 'GET';

/** Makes the bench container on the Nebula node; returns the headers that name it in object PUTs. */
async function benchContainer(node: Target): Promise<Record<string, string>> {
  const { partition, account, container } = BENCH_CONTAINER;
  const status = await new Promise<number>((resolve, reject) => {
    const outgoing = request(
      {
        host: node.host,
        port: node.port,
        method: 'PUT',
        path: `/${node.device}/${partition}/${account}/${container}`,
        headers: { 'X-Timestamp': Timestamp.now().internal, 'Content-Length': '0' },
      },
      (response) => {
        response.resume();
        response.once('end', () => resolve(response.statusCode ?? 0));
      },
    );
    outgoing.once('error', reject);
    outgoing.end();
  });
  if (status !== 201 && status !== 202) throw new Error(`cannot create the bench container: ${status}`);
  return {
    'X-Container-Host': `${node.host}:${node.port}`,
    'X-Container-Partition': partition,
    'X-Container-Device': node.device,
  };
}

/**
 * One server's turn: a 3 s PUT warm-up, then the phases asked for (a GET-only turn fills objects
 * first, unreported), each GET phase after a 1 s GET warm-up.
 */
async function benchmark(
  target: Target,
  seconds: number,
  concurrency: number,
  body: Buffer,
  phases: ReadonlySet<Phase>,
  putHeaders: Record<string, string>,
  client: ClientKind,
): Promise<Partial<Record<Phase, PhaseResult>>> {
  const written: string[] = [];
  const results: Partial<Record<Phase, PhaseResult>> = {};
  // Warm-up: JIT, connection setup, first folders. 3 s: after 1 s a Node server was still
  // compiling its PUT path (perf: TurboFan 13% of its CPU samples, 0.90-0.95 ms CPU per PUT in
  // round 1 against 0.55-0.65 ms in later rounds of the same process).
  await runPhase(target, 'PUT', PUT_WARM_UP_SECONDS, concurrency, body, [], putHeaders, client);
  const put = await runPhase(
    target,
    'PUT',
    phases.has('PUT') ? seconds : 2,
    concurrency,
    body,
    written,
    putHeaders,
    client,
  );
  if (phases.has('PUT')) {
    process.stdout.write(`${target.name.padEnd(36)} PUT ${format(put)}\n`);
    results.PUT = put;
  }
  if (phases.has('GET')) {
    // The read path's warm-up: without it a JIT-compiled server's first GET phase runs cold code
    // (measured: 250-850 req/s at 0.35-0.6 ms CPU per GET in round 1, ~4500 at 0.15 ms after).
    await runPhase(target, 'GET', 1, concurrency, body, written, {}, client);
    const get = await runPhase(target, 'GET', seconds, concurrency, body, written, {}, client);
    process.stdout.write(`${target.name.padEnd(36)} GET ${format(get)}\n`);
    results.GET = get;
  }
  return results;
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
      phases: { type: 'string', default: 'put,get' },
      'container-updates': { type: 'boolean', default: false },
      client: { type: 'string', default: 'raw' },
    },
  });
  if (values.client !== 'raw' && values.client !== 'node') throw new Error('--client is raw or node');
  const client: ClientKind = values.client;
  const phases = new Set(
    values.phases
      .toUpperCase()
      .split(',')
      .filter((phase): phase is Phase => phase === 'PUT' || phase === 'GET'),
  );
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
    const putHeaders = values['container-updates'] ? await benchContainer(nebulaTarget) : {};
    const ratios: Record<'PUT' | 'GET', number[]> = { PUT: [], GET: [] };
    const totals: Record<string, Record<'PUT' | 'GET', number[]>> = {};
    const cpu: Record<string, Record<'PUT' | 'GET', number[]>> = {};
    for (let round = 1; round <= rounds; round += 1) {
      process.stdout.write(`round ${round}\n`);
      const nebula = await benchmark(nebulaTarget, seconds, concurrency, body, phases, putHeaders, client);
      const reference =
        swift === undefined
          ? undefined
          : await benchmark(swift.target, seconds, concurrency, body, phases, putHeaders, client);
      for (const phase of phases) {
        const mine = nebula[phase];
        const theirs = reference?.[phase];
        if (mine !== undefined) {
          (totals.nebula ??= { PUT: [], GET: [] })[phase].push(mine.perSecond);
          (cpu.nebula ??= { PUT: [], GET: [] })[phase].push(mine.cpuMsPerRequest);
        }
        if (theirs !== undefined) {
          (totals.swift ??= { PUT: [], GET: [] })[phase].push(theirs.perSecond);
          (cpu.swift ??= { PUT: [], GET: [] })[phase].push(theirs.cpuMsPerRequest);
          if (mine !== undefined) ratios[phase].push(mine.perSecond / theirs.perSecond);
        }
      }
    }
    for (const [name, perPhase] of Object.entries(totals)) {
      process.stdout.write(
        `median ${name.padEnd(7)} PUT ${median(perPhase.PUT).toFixed(0)} req/s, GET ${median(perPhase.GET).toFixed(0)} req/s; ` +
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
