/**
 * Turns measurements into the figures users compare (`PhaseFigures`), and renders a run as JSON
 * and as a Markdown report: the machine, the limits probe, one table per run (single endpoint)
 * or figure-by-figure A, B and B/A (compare mode), then errors. Pure functions of their input.
 */
import { type ProbeResult } from './probe.js';
import { type PhaseMeasure } from './runner.js';
import { type Phase, type PhaseOp } from './scenario.js';
import { summarize, type LatencySummary, type TimelinePoint } from './stats.js';
import { formatNumber } from './units.js';

export interface PhaseFigures {
  readonly phase: string;
  readonly op: PhaseOp;
  readonly size: string;
  readonly mix: string | undefined;
  readonly concurrency: number;
  /** Unmeasured seconds of the phase's workload before its first slice on this endpoint. */
  readonly warmupS: number;
  readonly endpoint: string;
  readonly ops: number;
  readonly errors: number;
  readonly errorKinds: Readonly<Record<string, number>>;
  readonly errorSamples: readonly string[];
  readonly elapsedS: number;
  readonly opsPerS: number;
  /** Payload MB (10^6 bytes) per second moved by successful ops. */
  readonly mbPerS: number;
  /** LIST only: listing rows per second. */
  readonly rowsPerS: number | undefined;
  readonly latency: LatencySummary;
  /** MIXED: latency per operation kind. */
  readonly byOp: Readonly<Record<string, LatencySummary>>;
  /** The benchmark client's CPU as a share of one core (100 = one core busy). */
  readonly clientCpuPct: number;
  readonly clientCpuMsPerOp: number;
  readonly serverCpuPct: number | undefined;
  readonly serverCpuMsPerOp: number | undefined;
  /** Compare mode without --isolate: cores the servers used while the other endpoint was measured. */
  readonly otherSlicesCores: number | undefined;
  /** Server CPU per op counting also what the servers did while the other endpoint was measured. */
  readonly serverCpuMsPerOpAllSlices: number | undefined;
  readonly roundOpsPerS: readonly number[];
  readonly timelines: readonly (readonly TimelinePoint[])[];
}

export function figuresOf(phase: Phase, endpoint: string, measure: PhaseMeasure): PhaseFigures {
  const errors = [...measure.errors.values()].reduce((a, b) => a + b, 0);
  const elapsedS = measure.elapsedS > 0 ? measure.elapsedS : Number.NaN;
  const perOp = (seconds: number): number => (measure.ops > 0 ? (seconds * 1000) / measure.ops : Number.NaN);
  return {
    phase: phase.name,
    op: phase.op,
    size: phase.sizeText,
    mix: phase.mixText,
    concurrency: phase.concurrency,
    warmupS: phase.warmupS,
    endpoint,
    ops: measure.ops,
    errors,
    errorKinds: Object.fromEntries(measure.errors),
    errorSamples: measure.errorSamples,
    elapsedS: measure.elapsedS,
    opsPerS: measure.ops / elapsedS,
    mbPerS: measure.bytes / 1e6 / elapsedS,
    rowsPerS: phase.op === 'LIST' ? measure.rows / elapsedS : undefined,
    latency: summarize(measure.latency),
    byOp: Object.fromEntries([...measure.byOp].map(([op, histogram]) => [op, summarize(histogram)])),
    clientCpuPct: (measure.clientCpuS / elapsedS) * 100,
    clientCpuMsPerOp: perOp(measure.clientCpuS),
    serverCpuPct: measure.serverCpuS === undefined ? undefined : (measure.serverCpuS / elapsedS) * 100,
    serverCpuMsPerOp: measure.serverCpuS === undefined ? undefined : perOp(measure.serverCpuS),
    otherSlicesCores:
      measure.otherSlicesCpuS === undefined || measure.otherSlicesElapsedS === 0
        ? undefined
        : measure.otherSlicesCpuS / measure.otherSlicesElapsedS,
    serverCpuMsPerOpAllSlices:
      measure.serverCpuS === undefined || measure.otherSlicesCpuS === undefined
        ? undefined
        : perOp(measure.serverCpuS + measure.otherSlicesCpuS),
    roundOpsPerS: measure.roundOpsPerS,
    timelines: measure.timelines,
  };
}

export interface MachineInfo {
  readonly cpuModel: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly kernel: string;
  readonly disk: string;
  readonly node: string;
  /** 1, 5 and 15 minute load averages when the run started: other work on the machine skews figures. */
  readonly loadAverage: readonly number[];
}

export interface EndpointInfo {
  readonly label: string;
  readonly api: 'swift' | 's3';
  /** Auth URL (Swift) or endpoint (S3); never credentials. */
  readonly url: string;
  readonly serverCpu: string;
  /** Cores the servers used with no load, measured before the phases (background daemons). */
  readonly serverIdleCores: number | undefined;
}

export interface RunReport {
  readonly tool: 'nebula-bench';
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly scenario: string;
  readonly description: string;
  readonly rounds: number;
  /** Compare mode with --isolate: the endpoint not being measured was stopped (SIGSTOP). */
  readonly isolated?: boolean;
  /** Compare mode with --sequential: all of A's phases, then all of B's. */
  readonly sequential?: boolean;
  readonly machine: MachineInfo;
  readonly endpoints: readonly EndpointInfo[];
  readonly probe: ProbeResult | undefined;
  /** Phases in order; each with one entry per endpoint (same order as `endpoints`). */
  readonly phases: readonly (readonly PhaseFigures[])[];
  readonly cleanupFailures: Readonly<Record<string, number>>;
}

export function toJson(report: RunReport): string {
  return `${JSON.stringify(report, (_key, value: unknown) => (typeof value === 'number' && !Number.isFinite(value) ? null : value), 2)}\n`;
}

const fmt = (value: number | undefined, digits = 1): string =>
  value === undefined ? '-' : formatNumber(value, digits);
const ms = (value: number): string =>
  Number.isFinite(value) ? (value < 10 ? value.toFixed(2) : formatNumber(value, 1)) : '-';

/** B/A as `1.23×`; `-` when either side is missing or A is zero. */
export function ratio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || a === 0) return '-';
  return `${(b / a).toFixed(2)}×`;
}

/** Server CPU per op less what the servers burn with no load (updaters and other daemons). */
export function netOfIdle(figures: PhaseFigures, idleCores: number | undefined): number | undefined {
  if (figures.serverCpuPct === undefined || idleCores === undefined || figures.ops === 0) return undefined;
  const busyS = Math.max(0, (figures.serverCpuPct / 100 - idleCores) * figures.elapsedS);
  return (busyS * 1000) / figures.ops;
}

function errorsCell(figures: PhaseFigures): string {
  if (figures.errors === 0) return '0';
  const kinds = Object.entries(figures.errorKinds)
    .map(([kind, count]) => `${kind}: ${count}`)
    .join(', ');
  return `${figures.errors} (${kinds})`;
}

function throughputCell(figures: PhaseFigures): string {
  return figures.rowsPerS !== undefined ? `${fmt(figures.rowsPerS)} rows/s` : fmt(figures.mbPerS);
}

function warmupLine(report: RunReport): string[] {
  const warmed = report.phases
    .map((pair) => pair[0])
    .filter((figures): figures is PhaseFigures => figures !== undefined && figures.warmupS > 0);
  if (warmed.length === 0) return [];
  const list = warmed.map((figures) => `${figures.phase} ${fmt(figures.warmupS)} s`).join(', ');
  return [`- Warm-ups (the phase's workload, unmeasured, on each endpoint before its first slice): ${list}`];
}

function machineSection(report: RunReport): string[] {
  const m = report.machine;
  return [
    `- Machine: ${m.cores} cores (${m.cpuModel}), ${m.memoryGiB.toFixed(1)} GiB memory, kernel ${m.kernel}, Node ${m.node}`,
    `- Disk: ${m.disk}`,
    `- Load average at start (1/5/15 min): ${m.loadAverage.map((v) => v.toFixed(2)).join(' / ')}` +
      (m.loadAverage[0] !== undefined && m.loadAverage[0] > m.cores ? ' (busy machine: figures are noisy)' : ''),
    ...report.endpoints.map(
      (e, index) =>
        `- ${index === 0 ? 'A' : 'B'} = **${e.label}**: ${e.api} at ${e.url}; server CPU from ${e.serverCpu}` +
        (e.serverIdleCores === undefined ? '' : `; at idle they used ${e.serverIdleCores.toFixed(2)} cores`),
    ),
    `- Scenario: ${report.scenario}${report.description === '' ? '' : ` (${report.description})`}; ` +
      `${report.endpoints.length === 1 ? 'one endpoint' : report.sequential === true ? `${report.rounds} rounds per phase, all of A's phases, then all of B's (--sequential)` : `${report.rounds} rounds per phase, interleaved A, B, A, B`}` +
      (report.isolated === true ? "; each endpoint ran with the other endpoint's servers stopped" : ''),
    ...warmupLine(report),
    `- Started ${report.startedAt}, finished ${report.finishedAt}`,
  ];
}

function probeSection(probe: ProbeResult | undefined): string[] {
  if (probe === undefined) return [];
  return [
    '',
    '## Machine limits (probe)',
    '',
    '| limit | figure |',
    '| --- | --- |',
    `| disk sequential write, fsync'd (${probe.bytesPerProbe / 1024 / 1024} MiB in ${probe.folder}) | ${fmt(probe.diskWriteMBPerS)} MB/s |`,
    `| disk sequential read (${probe.diskReadMode === 'direct' ? 'O_DIRECT' : 'page cache: O_DIRECT refused'}) | ${fmt(probe.diskReadMBPerS)} MB/s |`,
    `| 4 KiB file create + fsync, one at a time | ${fmt(probe.syncedCreatesPerS)} /s |`,
    `| loopback TCP, one connection | ${fmt(probe.loopbackMBPerS)} MB/s |`,
    `| MD5, one core | ${fmt(probe.md5MBPerS)} MB/s |`,
  ];
}

function singleTable(report: RunReport): string[] {
  const lines = [
    '| phase | ops | ops/s | MB/s | p50 ms | p90 ms | p99 ms | max ms | errors | client CPU % | server CPU % | server CPU ms/op |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |',
  ];
  for (const [figures] of report.phases) {
    if (figures === undefined) continue;
    const l = figures.latency;
    lines.push(
      `| ${figures.phase} | ${figures.ops} | ${fmt(figures.opsPerS)} | ${throughputCell(figures)} | ${ms(l.p50Ms)} | ${ms(l.p90Ms)} | ` +
        `${ms(l.p99Ms)} | ${ms(l.maxMs)} | ${errorsCell(figures)} | ${fmt(figures.clientCpuPct)} | ${fmt(figures.serverCpuPct)} | ` +
        `${fmt(figures.serverCpuMsPerOp, 2)} |`,
    );
    for (const [op, summary] of Object.entries(figures.byOp)) {
      if (Object.keys(figures.byOp).length < 2) break;
      lines.push(
        `| ↳ ${op} | ${summary.count} | | | ${ms(summary.p50Ms)} | ${ms(summary.p90Ms)} | ${ms(summary.p99Ms)} | ${ms(summary.maxMs)} | | | | |`,
      );
    }
  }
  return lines;
}

function compareTable(report: RunReport): string[] {
  const [a, b] = report.endpoints;
  const lines = [
    `| phase | figure | A: ${a?.label ?? 'A'} | B: ${b?.label ?? 'B'} | B/A |`,
    '| --- | --- | ---: | ---: | ---: |',
  ];
  for (const pair of report.phases) {
    const [fa, fb] = pair;
    if (fa === undefined || fb === undefined) continue;
    const row = (
      name: string,
      va: number | undefined,
      vb: number | undefined,
      format: (v: number | undefined) => string,
    ): void => {
      lines.push(`| ${fa.phase} | ${name} | ${format(va)} | ${format(vb)} | ${ratio(va, vb)} |`);
    };
    const msOrDash = (v: number | undefined): string => (v === undefined ? '-' : ms(v));
    row('ops/s', fa.opsPerS, fb.opsPerS, fmt);
    if (fa.rowsPerS !== undefined) row('rows/s', fa.rowsPerS, fb.rowsPerS, fmt);
    else if (fa.mbPerS > 0 || fb.mbPerS > 0) row('MB/s', fa.mbPerS, fb.mbPerS, fmt);
    row('p50 ms', fa.latency.p50Ms, fb.latency.p50Ms, msOrDash);
    row('p90 ms', fa.latency.p90Ms, fb.latency.p90Ms, msOrDash);
    row('p99 ms', fa.latency.p99Ms, fb.latency.p99Ms, msOrDash);
    row('max ms', fa.latency.maxMs, fb.latency.maxMs, msOrDash);
    if (Object.keys(fa.byOp).length > 1) {
      for (const op of Object.keys(fa.byOp)) {
        row(`${op} p50 ms`, fa.byOp[op]?.p50Ms, fb.byOp[op]?.p50Ms, msOrDash);
        row(`${op} p99 ms`, fa.byOp[op]?.p99Ms, fb.byOp[op]?.p99Ms, msOrDash);
      }
    }
    lines.push(`| ${fa.phase} | errors | ${errorsCell(fa)} | ${errorsCell(fb)} | |`);
    if (fa.serverCpuMsPerOp !== undefined || fb.serverCpuMsPerOp !== undefined) {
      row('server CPU ms/op', fa.serverCpuMsPerOp, fb.serverCpuMsPerOp, (v) => fmt(v, 2));
      const idleA = report.endpoints[0]?.serverIdleCores;
      const idleB = report.endpoints[1]?.serverIdleCores;
      if ((idleA ?? 0) > 0.02 || (idleB ?? 0) > 0.02) {
        row('server CPU ms/op net of idle', netOfIdle(fa, idleA), netOfIdle(fb, idleB), (v) => fmt(v, 2));
      }
    }
    if (fa.otherSlicesCores !== undefined || fb.otherSlicesCores !== undefined) {
      // Work one store defers (updaters, replicators) runs in the other's slices and slows it there.
      row('server cores used while the other ran', fa.otherSlicesCores, fb.otherSlicesCores, (v) => fmt(v, 2));
      row(
        'server CPU ms/op incl. while the other ran',
        fa.serverCpuMsPerOpAllSlices,
        fb.serverCpuMsPerOpAllSlices,
        (v) => fmt(v, 2),
      );
    }
    row('client CPU ms/op', fa.clientCpuMsPerOp, fb.clientCpuMsPerOp, (v) => fmt(v, 3));
    lines.push(
      `| ${fa.phase} | ops/s by round | ${fa.roundOpsPerS.map((v) => fmt(v)).join(' / ')} | ` +
        `${fb.roundOpsPerS.map((v) => fmt(v)).join(' / ')} | |`,
    );
  }
  return lines;
}

function errorSection(report: RunReport): string[] {
  const lines: string[] = [];
  for (const pair of report.phases) {
    for (const figures of pair) {
      if (figures.errorSamples.length === 0) continue;
      lines.push(
        `- ${figures.endpoint} / ${figures.phase}: ${figures.errorSamples.map((s) => `\`${s.replace(/`/g, "'")}\``).join('; ')}`,
      );
    }
  }
  for (const [endpoint, failures] of Object.entries(report.cleanupFailures)) {
    if (failures > 0) lines.push(`- ${endpoint}: ${failures} objects or containers could not be deleted at cleanup`);
  }
  return lines.length === 0 ? [] : ['', '## Errors (first few of each phase)', '', ...lines];
}

export function toMarkdown(report: RunReport, chartFile?: string): string {
  const compare = report.endpoints.length > 1;
  const lines = [
    `# nebula-bench: ${report.scenario}`,
    '',
    ...machineSection(report),
    ...probeSection(report.probe),
    '',
    '## Results',
    '',
    ...(compare ? compareTable(report) : singleTable(report)),
    ...errorSection(report),
    '',
    'How to read: ops/s and MB/s count only successful, verified operations (every GET body is MD5-checked ' +
      'against what was written; a mismatch is an error). MB = 10^6 bytes. Latency is per request, first byte ' +
      'sent to last byte received; LIST rows are per page request. CPU % is of one core; server CPU is the ' +
      "listed processes' user+system time (with their children) over the phase, per successful op." +
      (compare ? ' B/A > 1 means B is higher (better for ops/s and MB/s, worse for latency and CPU).' : ''),
  ];
  if (chartFile !== undefined) lines.push('', `![throughput and latency over time](${chartFile})`);
  return `${lines.join('\n')}\n`;
}
