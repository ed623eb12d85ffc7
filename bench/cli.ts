#!/usr/bin/env node
/**
 * nebula-bench: benchmarks any Swift API (tempauth v1.0) or S3 (SigV4, path-style) endpoint, or
 * two of them interleaved (compare mode), through a scenario file or one ad-hoc phase list, and
 * writes results.json, report.md and chart.svg. Usage: `nebula-bench --help` and bench/README.md.
 * Exit status: 0 when the run completed (even with operation errors: they are in the report),
 * 1 when it could not run (auth failed, unreachable), 2 on bad usage.
 */
import { existsSync, mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { renderChart } from './chart.js';
import { createClient, type EndpointSpec } from './clients.js';
import { cpuBetween, PausedServers, ServerCpuMeter, type ServerSet } from './cpu.js';
import { describeMachine } from './machine.js';
import { PayloadPool } from './payload.js';
import { runProbe, type ProbeResult } from './probe.js';
import { figuresOf, toJson, toMarkdown, type EndpointInfo, type PhaseFigures, type RunReport } from './report.js';
import { emptyMeasure, EndpointRunner, type PhaseMeasure, type Progress, type ProgressSink } from './runner.js';
import { loadScenario, parsePhase, type Phase, type Scenario } from './scenario.js';
import { LatencyHistogram } from './stats.js';
import { BenchUsageError, formatNumber, parseDurationS, parsePositiveInt } from './units.js';

const ENDPOINT_OPTIONS = {
  api: { type: 'string' },
  'auth-url': { type: 'string' },
  user: { type: 'string' },
  key: { type: 'string' },
  endpoint: { type: 'string' },
  'access-key': { type: 'string' },
  'secret-key': { type: 'string' },
  region: { type: 'string' },
  name: { type: 'string' },
  'server-pids': { type: 'string' },
  'server-pgrep': { type: 'string' },
} as const;

const OPTIONS = {
  ...ENDPOINT_OPTIONS,
  ...Object.fromEntries(Object.entries(ENDPOINT_OPTIONS).map(([name, spec]) => [`b-${name}`, spec])),
  scenario: { type: 'string' },
  op: { type: 'string' },
  size: { type: 'string' },
  mix: { type: 'string' },
  concurrency: { type: 'string' },
  duration: { type: 'string' },
  count: { type: 'string' },
  objects: { type: 'string' },
  'list-limit': { type: 'string' },
  warmup: { type: 'string' },
  containers: { type: 'string' },
  rounds: { type: 'string' },
  'no-cleanup': { type: 'boolean' },
  'cleanup-list': { type: 'boolean' },
  out: { type: 'string' },
  'probe-dir': { type: 'string' },
  'probe-mib': { type: 'string' },
  'no-probe': { type: 'boolean' },
  timeout: { type: 'string' },
  deadline: { type: 'string' },
  quiet: { type: 'boolean' },
  idle: { type: 'string' },
  isolate: { type: 'boolean' },
  sequential: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const USAGE = `nebula-bench: benchmark a Swift or S3 endpoint (or compare two)

Endpoint A (B: the same options prefixed with --b-, e.g. --b-auth-url; giving B turns on compare mode)
  --api swift|s3            default: swift with --auth-url, s3 with --endpoint
  --auth-url URL --user U --key K                 Swift tempauth v1.0
  --endpoint URL --access-key AK --secret-key SK [--region us-east-1]   S3 (SigV4, path-style)
  --name LABEL              name in the report (default: api@host:port)
  --server-pids 1,2,3       server processes whose CPU is measured (their children too)
  --server-pgrep PATTERN    the same, found with pgrep -f PATTERN

Workload: a scenario file, or phases from options
  --scenario FILE|NAME      JSON suite (NAME: bench/scenarios/NAME.json, e.g. default)
  --op PUT,GET,DELETE       phases in order (PUT GET HEAD DELETE LIST MIXED)
  --size 4KiB | 4KiB:70,1MiB:25,64MiB:5   object sizes (fixed or weighted)
  --mix GET:70,PUT:20,DELETE:10           for --op MIXED
  --concurrency N           requests in flight (default 16)
  --duration 30s            per phase and endpoint (default 10s if no --count)
  --count N                 operations per phase and endpoint (whichever limit comes first)
  --objects N               LIST: objects in the listed container (default 10000);
                            GET/HEAD/DELETE/MIXED: objects to have before timing
  --list-limit N            LIST page size (default 10000; S3 pages hold at most 1000)
  --warmup S                every phase: S seconds of its workload on each endpoint, unmeasured,
                            before its first slice (default: the scenario's; 0 for none)
  --containers N            containers (buckets) objects are spread over (default 4)
  --rounds N                compare mode: A,B slices per phase (default: scenario's, else 2)
  --no-cleanup              leave the objects and containers written
  --cleanup-list            also delete the LIST containers (nebula-bench-list-N), which are
                            otherwise kept so the next run need not fill them again

Run
  --out DIR                 where results.json, report.md, chart.svg go (default ./nebula-bench-<time>)
  --probe-dir DIR           folder for the disk probe (default ${tmpdir()}); put it on the store's disk
  --probe-mib N             bytes per probe (default 256)    --no-probe   skip the limits probe
  --timeout S               idle timeout per request (default 30)
  --deadline S              longest time for one request (default 600)
  --idle S                  seconds to measure the servers' CPU at idle before the phases
                            (default 5; 0 skips it); compare tables then add a net-of-idle row
  --isolate                 compare mode: stop (SIGSTOP) the other endpoint's server processes
                            during each slice, so one store's background work (updaters, replicators)
                            runs in its own slices, not in the other's; needs both server sets
  --sequential              compare mode: all of A's phases, then all of B's (not interleaved), the
                            other endpoint's servers stopped throughout when both sets are given:
                            each store as if alone on the machine, its daemons on their own timing
  --quiet                   no progress line
`;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: false }>>['values'];

function str(values: Values, name: string): string | undefined {
  const value = (values as Record<string, unknown>)[name];
  return typeof value === 'string' ? value : undefined;
}

function endpointFrom(
  values: Values,
  prefix: '' | 'b-',
): { spec: EndpointSpec; label: string; servers: ServerSet } | undefined {
  const get = (name: string): string | undefined => str(values, `${prefix}${name}`);
  const authUrl = get('auth-url');
  const endpoint = get('endpoint');
  const api = get('api') ?? (authUrl !== undefined ? 'swift' : endpoint !== undefined ? 's3' : undefined);
  if (api === undefined) return undefined;
  const need = (name: string): string => {
    const value = get(name);
    if (value === undefined) throw new BenchUsageError(`--${prefix}${name} is required for --${prefix}api ${api}`);
    return value;
  };
  let spec: EndpointSpec;
  if (api === 'swift') spec = { api, authUrl: need('auth-url'), user: need('user'), key: need('key') };
  else if (api === 's3') {
    spec = {
      api,
      endpoint: need('endpoint'),
      accessKey: need('access-key'),
      secretKey: need('secret-key'),
      region: get('region') ?? 'us-east-1',
    };
  } else throw new BenchUsageError(`--${prefix}api must be swift or s3`);
  const url = new URL(spec.api === 'swift' ? spec.authUrl : spec.endpoint);
  const pids = (get('server-pids') ?? '')
    .split(',')
    .filter((p) => p.trim() !== '')
    .map((p) => parsePositiveInt(p.trim(), `--${prefix}server-pids`));
  return {
    spec,
    label: get('name') ?? `${spec.api}@${url.host}`,
    servers: { pids, pgrep: get('server-pgrep') },
  };
}

function scenarioFrom(values: Values): Scenario {
  const opText = str(values, 'op');
  const scenarioText = str(values, 'scenario');
  let scenario: Scenario;
  if (opText !== undefined) {
    const durationText = str(values, 'duration');
    const countText = str(values, 'count');
    const phases = opText.split(',').map((op, index) =>
      parsePhase(
        {
          op: op.trim(),
          ...(str(values, 'size') !== undefined ? { size: str(values, 'size') } : {}),
          ...(op.trim().toUpperCase() === 'MIXED' && str(values, 'mix') !== undefined
            ? { mix: str(values, 'mix') }
            : {}),
          concurrency: parsePositiveInt(str(values, 'concurrency') ?? '16', '--concurrency'),
          ...(durationText !== undefined || countText === undefined ? { duration: durationText ?? '10s' } : {}),
          ...(countText !== undefined ? { count: parsePositiveInt(countText, '--count') } : {}),
          ...(str(values, 'objects') !== undefined
            ? { objects: parsePositiveInt(str(values, 'objects') ?? '', '--objects') }
            : {}),
          ...(str(values, 'list-limit') !== undefined
            ? { listLimit: parsePositiveInt(str(values, 'list-limit') ?? '', '--list-limit') }
            : {}),
        },
        `--op ${op} (phase ${index + 1})`,
      ),
    );
    scenario = { name: `ad hoc: ${opText}`, description: '', containers: 4, rounds: 2, cleanup: true, phases };
  } else {
    const name = scenarioText ?? 'default';
    const here = dirname(fileURLToPath(import.meta.url));
    // Names resolve to the source tree's scenarios (dist/bench/cli.js -> bench/scenarios).
    const candidates = [
      name,
      join(here, '..', '..', 'bench', 'scenarios', `${name}.json`),
      join(here, 'scenarios', `${name}.json`),
    ];
    const path = candidates.find((candidate) => existsSync(candidate) && candidate.endsWith('.json'));
    if (path === undefined) throw new BenchUsageError(`no scenario ${JSON.stringify(name)}`);
    scenario = loadScenario(path);
  }
  const containers = str(values, 'containers');
  const rounds = str(values, 'rounds');
  const warmup = str(values, 'warmup');
  return {
    ...scenario,
    ...(warmup !== undefined
      ? { phases: scenario.phases.map((phase) => ({ ...phase, warmupS: parseDurationS(warmup) })) }
      : {}),
    ...(containers !== undefined ? { containers: parsePositiveInt(containers, '--containers') } : {}),
    ...(rounds !== undefined ? { rounds: parsePositiveInt(rounds, '--rounds') } : {}),
    ...(values['no-cleanup'] === true ? { cleanup: false } : {}),
  };
}

/** The live progress line: rewritten in place on a terminal, a line every 5 s otherwise. */
function progressPrinter(quiet: boolean): ProgressSink {
  const tty = process.stderr.isTTY;
  const intervalMs = tty ? 250 : 5000;
  let lastMs = 0;
  let shown = false;
  return (progress: Progress | undefined) => {
    if (quiet) return;
    if (progress === undefined) {
      if (shown && tty) process.stderr.write('\n');
      shown = false;
      lastMs = 0;
      return;
    }
    const now = performance.now();
    if (now - lastMs < intervalMs) return;
    const first = lastMs === 0;
    lastMs = now;
    if (first && !tty) return; // the first sample of a phase says nothing yet
    const elapsedS = (now - progress.startMs) / 1000;
    const recent = progress.recent;
    const line =
      `[${progress.endpoint}] ${progress.phase}  ${elapsedS.toFixed(1)}s  ${progress.ops} ops  ` +
      `${formatNumber(progress.ops / Math.max(elapsedS, 0.001))} op/s  ${formatNumber(progress.bytes / 1e6 / Math.max(elapsedS, 0.001))} MB/s  ` +
      `p50 ${(recent.percentile(50) / 1000).toFixed(1)}ms p99 ${(recent.percentile(99) / 1000).toFixed(1)}ms  errors ${progress.errors}`;
    progress.recent = new LatencyHistogram(); // the next line shows the latest interval's latency
    process.stderr.write(tty ? `\r\x1b[K${line}` : `${line}\n`);
    shown = true;
  };
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

function splitLimit(total: number | undefined, rounds: number, round: number): number | undefined {
  if (total === undefined) return undefined;
  const base = Math.floor(total / rounds);
  return Math.max(1, base + (round < total % rounds ? 1 : 0));
}

export async function main(argv: readonly string[]): Promise<number> {
  let values: Values;
  try {
    values = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: false, strict: true }).values;
  } catch (error) {
    log(`${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`);
    return 2;
  }
  if (values.help === true) {
    process.stdout.write(USAGE);
    return 0;
  }
  const a = endpointFrom(values, '');
  const b = endpointFrom(values, 'b-');
  if (a === undefined)
    throw new BenchUsageError('give endpoint A: --auth-url/--user/--key or --endpoint/--access-key/--secret-key');
  const scenario = scenarioFrom(values);
  const compare = b !== undefined;
  const sequential = values.sequential === true;
  if (sequential && b === undefined) throw new BenchUsageError('--sequential compares two endpoints: give B too');
  const hasServers = (set: ServerSet): boolean => set.pids.length > 0 || set.pgrep !== undefined;
  // Two APIs of one store: the same servers on both sides.
  const sameServers =
    b !== undefined &&
    a.servers.pgrep === b.servers.pgrep &&
    a.servers.pids.length === b.servers.pids.length &&
    a.servers.pids.every((pid, index) => b.servers.pids[index] === pid);
  if (values.isolate === true && (b === undefined || !hasServers(a.servers) || !hasServers(b.servers) || sameServers))
    throw new BenchUsageError('--isolate needs two endpoints, each with its own --server-pids or --server-pgrep');
  // --sequential stops the endpoint not being measured whenever both server sets are known.
  const isolate =
    values.isolate === true ||
    (sequential && b !== undefined && hasServers(a.servers) && hasServers(b.servers) && !sameServers);
  const rounds = compare ? scenario.rounds : 1;
  const idleTimeoutMs = parseDurationS(str(values, 'timeout') ?? '30') * 1000;
  const deadlineMs = parseDurationS(str(values, 'deadline') ?? '600') * 1000;
  const probeDir = resolve(str(values, 'probe-dir') ?? tmpdir());
  const startedAt = new Date();
  const outDir = resolve(str(values, 'out') ?? `nebula-bench-${startedAt.toISOString().replace(/[:.]/g, '-')}`);
  const maxConcurrency = Math.max(...scenario.phases.map((phase) => phase.concurrency));
  const machine = describeMachine(probeDir); // now: its load average is the one the run starts under

  let probe: ProbeResult | undefined;
  if (values['no-probe'] !== true) {
    const mib = parsePositiveInt(str(values, 'probe-mib') ?? '256', '--probe-mib');
    probe = await runProbe(probeDir, mib * 1024 * 1024, values.quiet === true ? undefined : log);
  }

  const endpoints = [a, ...(b === undefined ? [] : [b])];
  const payload = new PayloadPool(
    32 * 1024 * 1024,
    endpoints.some((endpoint) => endpoint.spec.api === 's3'),
  );
  if (compare && a.label === b.label) throw new BenchUsageError('give the endpoints different --name / --b-name');
  const runners = endpoints.map(
    (endpoint) =>
      new EndpointRunner(
        endpoint.label,
        createClient(endpoint.spec, payload, { socketsMax: maxConcurrency + 4, idleTimeoutMs, deadlineMs }),
        payload,
        new ServerCpuMeter(endpoint.servers),
        scenario.containers,
      ),
  );
  let interrupted = 0;
  // The other endpoint's servers, stopped while one endpoint's slice runs (--isolate).
  let paused: PausedServers[] = [];
  const resumePaused = (): void => {
    for (const set of paused) set.resume();
    paused = [];
  };
  const onSigint = (): void => {
    interrupted += 1;
    if (interrupted > 1) {
      resumePaused();
      process.exit(130);
    }
    log('\ninterrupted: finishing the current operations, then cleaning up (Ctrl-C again to quit now)');
    for (const runner of runners) runner.stopped = true;
  };
  process.on('SIGINT', onSigint);
  const progress = progressPrinter(values.quiet === true);
  const runStartMs = Date.now();
  const measures: PhaseMeasure[][] = scenario.phases.map(() => runners.map(() => emptyMeasure()));
  const cleanupFailures: Record<string, number> = {};
  const idleCores: (number | undefined)[] = runners.map(() => undefined);
  try {
    for (const runner of runners) {
      log(`connecting to ${runner.label}`);
      await runner.setup();
    }
    // The servers' CPU with no load (updaters, replicators, housekeeping), so per-op figures can
    // be read net of it.
    const idleS = parseDurationS(str(values, 'idle') ?? '5');
    if (runners.some((runner) => runner.meter.enabled) && idleS > 0) {
      log(`measuring the servers' CPU at idle for ${idleS} s`);
      const before = runners.map((runner) => runner.meter.sample());
      await new Promise((resolve) => setTimeout(resolve, idleS * 1000));
      runners.forEach((runner, index) => {
        const first = before[index];
        const last = runner.meter.sample();
        if (first !== undefined && last !== undefined) idleCores[index] = cpuBetween(first, last) / idleS;
      });
    }
    // Slices in the order they run: interleaved A, B, A, B per phase, or (--sequential) all of
    // A's phases, then all of B's.
    const slices: { phaseIndex: number; round: number; runnerIndex: number }[] = [];
    const slice = (phaseIndex: number, round: number, runnerIndex: number): number =>
      slices.push({ phaseIndex, round, runnerIndex });
    if (sequential) {
      runners.forEach((_, runnerIndex) =>
        scenario.phases.forEach((_phase, phaseIndex) => {
          for (let round = 0; round < rounds; round += 1) slice(phaseIndex, round, runnerIndex);
        }),
      );
    } else {
      scenario.phases.forEach((_phase, phaseIndex) => {
        for (let round = 0; round < rounds; round += 1)
          runners.forEach((_, runnerIndex) => slice(phaseIndex, round, runnerIndex));
      });
    }
    let pausedFor: EndpointRunner | undefined;
    const warmedUp = new Set<string>();
    for (const [sliceIndex, { phaseIndex, round, runnerIndex }] of slices.entries()) {
      if (interrupted > 0) break; // the slices not begun are left out of the report
      const phase = scenario.phases[phaseIndex] as Phase;
      const runner = runners[runnerIndex] as EndpointRunner;
      const limits = {
        durationS: phase.durationS === undefined ? undefined : phase.durationS / rounds,
        count: splitLimit(phase.count, rounds, round),
      };
      const measure = measures[phaseIndex]?.[runnerIndex] as PhaseMeasure;
      const others = runners.filter((other) => other !== runner);
      try {
        // The others stay stopped over a run of this runner's slices: each SIGCONT lets their
        // wall-clock timers fire at once, which would crowd their daemons' sweeps.
        if (isolate && pausedFor !== runner) {
          resumePaused();
          paused = others.map((other) => other.meter.pause());
          pausedFor = runner;
        }
        const warmupKey = `${phaseIndex}/${runnerIndex}`;
        if (phase.warmupS > 0 && !warmedUp.has(warmupKey)) {
          warmedUp.add(warmupKey);
          const warmupPhase = { ...phase, name: `${phase.name} (warm-up)` };
          const warmupLimits = { durationS: phase.warmupS, count: undefined };
          await runner.runSlice(warmupPhase, warmupLimits, emptyMeasure(), runStartMs, progress);
        }
        // Not when both endpoints are one store (two APIs of it): its CPU is all in its own slices.
        const othersBefore = isolate || sameServers ? [] : others.map((other) => other.meter.sample());
        const sliceStartMs = performance.now();
        await runner.runSlice(phase, limits, measure, runStartMs, progress);
        others.forEach((other, index) => {
          const before = othersBefore[index];
          const after = before === undefined ? undefined : other.meter.sample();
          if (before === undefined || after === undefined) return;
          const otherMeasure = measures[phaseIndex]?.[runners.indexOf(other)] as PhaseMeasure;
          otherMeasure.otherSlicesCpuS = (otherMeasure.otherSlicesCpuS ?? 0) + cpuBetween(before, after);
          otherMeasure.otherSlicesElapsedS += (performance.now() - sliceStartMs) / 1000;
        });
      } catch (error) {
        // A slice that cannot run (its prefill failed, the endpoint went away) is an error of
        // this phase; the other phases still run.
        progress(undefined);
        const message = error instanceof Error ? error.message : String(error);
        log(`${runner.label} / ${phase.name}: ${message}`);
        measure.errors.set('phase_failed', (measure.errors.get('phase_failed') ?? 0) + 1);
        if (measure.errorSamples.length < 5) measure.errorSamples.push(`phase: ${message}`);
      }
      if (
        slices.slice(sliceIndex + 1).some((next) => next.phaseIndex === phaseIndex && next.runnerIndex === runnerIndex)
      )
        continue;
      const figures = figuresOf(phase, runner.label, measure);
      log(
        `${phase.name}: ${runner.label}: ${formatNumber(figures.opsPerS)} ops/s, p99 ${figures.latency.p99Ms.toFixed(1)} ms, ${figures.errors} errors`,
      );
    }
  } finally {
    resumePaused();
    if (scenario.cleanup) {
      for (const runner of runners) {
        runner.stopped = false;
        log(`cleaning up ${runner.label}`);
        cleanupFailures[runner.label] = await runner.cleanup(
          Math.max(16, maxConcurrency),
          progress,
          values['cleanup-list'] === true,
        );
      }
    }
    for (const runner of runners) runner.client.close();
    process.off('SIGINT', onSigint);
  }

  const phases: PhaseFigures[][] = scenario.phases
    .map((phase, phaseIndex) =>
      runners.map((runner, runnerIndex) =>
        figuresOf(phase, runner.label, measures[phaseIndex]?.[runnerIndex] as PhaseMeasure),
      ),
    )
    .filter((pair) => pair.some((figures) => figures.elapsedS > 0 || figures.errors > 0)); // not begun (Ctrl-C)
  const endpointInfo: EndpointInfo[] = endpoints.map((endpoint, index) => ({
    serverIdleCores: idleCores[index],
    label: endpoint.label,
    api: endpoint.spec.api,
    url: endpoint.spec.api === 'swift' ? endpoint.spec.authUrl : endpoint.spec.endpoint,
    serverCpu:
      endpoint.servers.pgrep !== undefined
        ? `pgrep -f ${endpoint.servers.pgrep}${endpoint.servers.pids.length > 0 ? ` + pids ${endpoint.servers.pids.join(',')}` : ''}`
        : endpoint.servers.pids.length > 0
          ? `pids ${endpoint.servers.pids.join(',')}`
          : 'not measured (no --server-pids / --server-pgrep)',
  }));
  const report: RunReport = {
    tool: 'nebula-bench',
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    scenario: scenario.name,
    description: scenario.description,
    rounds,
    isolated: isolate,
    sequential,
    machine,
    endpoints: endpointInfo,
    probe,
    phases,
    cleanupFailures,
  };
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'results.json'), toJson(report));
  writeFileSync(join(outDir, 'chart.svg'), renderChart(report));
  const markdown = toMarkdown(report, 'chart.svg');
  writeFileSync(join(outDir, 'report.md'), markdown);
  process.stdout.write(markdown);
  log(`wrote ${join(outDir, 'results.json')}, report.md, chart.svg`);
  return 0;
}

// Run only as the program, not when a test imports USAGE or main.
if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      if (error instanceof BenchUsageError) {
        log(`nebula-bench: ${error.message} (see --help)`);
        process.exitCode = 2;
      } else {
        log(`nebula-bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
        process.exitCode = 1;
      }
    },
  );
}
