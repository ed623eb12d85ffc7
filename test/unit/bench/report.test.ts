import test from 'ava';
import { renderChart, timeAxis } from '../../../bench/chart.js';
import { figuresOf, ratio, toJson, toMarkdown, type RunReport } from '../../../bench/report.js';
import { emptyMeasure, type PhaseMeasure } from '../../../bench/runner.js';
import { parsePhase, parseScenario } from '../../../bench/scenario.js';
import { type TimelinePoint } from '../../../bench/stats.js';
import { BenchUsageError } from '../../../bench/units.js';

const phase = parsePhase({ name: 'GET 4KiB c16', op: 'GET', size: '4KiB', concurrency: 16, duration: '10s' }, 'test');

function measureOf(ops: number, latencyMs: number, seconds: number, serverCpuS?: number): PhaseMeasure {
  const measure = emptyMeasure();
  measure.ops = ops;
  measure.bytes = ops * 4096;
  measure.elapsedS = seconds;
  measure.clientCpuS = seconds * 0.25;
  if (serverCpuS !== undefined) measure.serverCpuS = serverCpuS;
  for (let i = 0; i < ops; i += 1) measure.latency.record(latencyMs * 1000);
  measure.byOp.set('GET', measure.latency);
  measure.roundOpsPerS.push(ops / seconds / 1.1, (ops / seconds) * 1.1);
  measure.timelines.push([
    { atS: 0, opsPerS: ops / seconds, mbPerS: 1, errors: 0, p50Ms: latencyMs, p99Ms: latencyMs * 2 },
    { atS: 1, opsPerS: ops / seconds, mbPerS: 1, errors: 0, p50Ms: latencyMs, p99Ms: latencyMs * 2 },
  ]);
  return measure;
}

function reportOf(endpoints: number): RunReport {
  const a = measureOf(1000, 4, 10, 5);
  const b = measureOf(2000, 2, 10);
  b.errors.set('md5_mismatch', 3);
  b.errorSamples.push('GET: GET obj-1: body MD5 differs');
  const labels = ['swift', 'nebula'].slice(0, endpoints);
  return {
    tool: 'nebula-bench',
    startedAt: '2026-11-25T16:00:00.000Z',
    finishedAt: '2026-11-25T16:05:00.000Z',
    scenario: 'unit',
    description: 'a test',
    rounds: 2,
    machine: {
      cpuModel: 'Test CPU',
      cores: 2,
      memoryGiB: 4,
      kernel: '6.0',
      disk: '/tmp on /dev/x',
      node: 'v20',
      loadAverage: [3, 2, 1],
    },
    endpoints: labels.map((label) => ({
      label,
      api: 'swift' as const,
      url: `http://127.0.0.1/${label}`,
      serverCpu: 'pids 1',
      serverIdleCores: label === 'swift' ? 0.25 : undefined,
    })),
    probe: {
      folder: '/tmp',
      diskWriteMBPerS: 500,
      diskReadMBPerS: 900,
      diskReadMode: 'direct',
      syncedCreatesPerS: 300,
      loopbackMBPerS: 3000,
      md5MBPerS: 700,
      bytesPerProbe: 256 * 1024 * 1024,
    },
    phases: [[a, b].slice(0, endpoints).map((m, i) => figuresOf(phase, labels[i] ?? '', m))],
    cleanupFailures: {},
  };
}

test('figures: rates, CPU per op, latency in ms', (t) => {
  const figures = figuresOf(phase, 'swift', measureOf(1000, 4, 10, 5));
  t.is(figures.opsPerS, 100);
  t.is(figures.mbPerS, 0.4096);
  t.is(figures.clientCpuPct, 25);
  t.is(figures.serverCpuPct, 50);
  t.is(figures.serverCpuMsPerOp, 5);
  t.true(Math.abs(figures.latency.p50Ms - 4) < 0.04);
  t.is(figures.rowsPerS, undefined);
  t.is(figures.errors, 0);
});

test('ratio is B/A with two decimals, dash when undefined', (t) => {
  t.is(ratio(100, 150), '1.50×');
  t.is(ratio(4, 2), '0.50×');
  t.is(ratio(0, 2), '-');
  t.is(ratio(undefined, 2), '-');
  t.is(ratio(Number.NaN, 2), '-');
});

test('single-endpoint Markdown: one row per phase with every figure', (t) => {
  const markdown = toMarkdown(reportOf(1), 'chart.svg');
  t.true(markdown.startsWith('# nebula-bench: unit\n'));
  t.true(markdown.includes('2 cores (Test CPU), 4.0 GiB memory, kernel 6.0'));
  t.true(markdown.includes('Load average at start (1/5/15 min): 3.00 / 2.00 / 1.00 (busy machine: figures are noisy)'));
  t.true(markdown.includes("| disk sequential write, fsync'd (256 MiB in /tmp) | 500 MB/s |"));
  t.regex(
    markdown,
    /\| GET 4KiB c16 \| 1000 \| 100 \| 0\.4 \| 4\.0\d \| 4\.0\d \| 4\.0\d \| 4\.00 \| 0 \| 25\.0 \| 50\.0 \| 5\.00 \|/,
  );
  t.true(markdown.includes('![throughput and latency over time](chart.svg)'));
});

test('compare Markdown: A, B and B/A per figure, errors by kind, rounds', (t) => {
  const markdown = toMarkdown(reportOf(2));
  t.true(markdown.includes('| phase | figure | A: swift | B: nebula | B/A |'));
  t.true(markdown.includes('| GET 4KiB c16 | ops/s | 100 | 200 | 2.00× |'));
  t.true(markdown.includes('| GET 4KiB c16 | MB/s | 0.4 | 0.8 | 2.00× |'));
  t.regex(markdown, /\| GET 4KiB c16 \| p50 ms \| 4\.0\d \| 2\.0\d \| 0\.50× \|/);
  t.true(markdown.includes('| GET 4KiB c16 | errors | 0 | 3 (md5_mismatch: 3) | |'));
  t.true(markdown.includes('| GET 4KiB c16 | server CPU ms/op | 5.00 | - | - |'));
  // 50% of a core over 10 s, less 0.25 cores at idle, over 1000 ops
  t.true(markdown.includes('| GET 4KiB c16 | server CPU ms/op net of idle | 2.50 | - | - |'));
  t.true(markdown.includes('server CPU from pids 1; at idle they used 0.25 cores'));
  t.true(markdown.includes('| GET 4KiB c16 | ops/s by round | 90.9 / 110 | 182 / 220 | |'));
  t.true(markdown.includes('nebula / GET 4KiB c16: `GET: GET obj-1: body MD5 differs`'));
});

test("compare Markdown without --isolate: what each store did during the other one's slices", (t) => {
  const report = reportOf(2);
  const a = measureOf(1000, 4, 10, 5);
  a.otherSlicesCpuS = 6; // Swift's updaters catching up for 12 s of Nebula's slices
  a.otherSlicesElapsedS = 12;
  const b = measureOf(2000, 2, 10, 2);
  b.otherSlicesCpuS = 0.6;
  b.otherSlicesElapsedS = 12;
  const markdown = toMarkdown({
    ...report,
    phases: [[figuresOf(phase, 'swift', a), figuresOf(phase, 'nebula', b)]],
  });
  t.true(markdown.includes('| GET 4KiB c16 | server cores used while the other ran | 0.50 | 0.05 | 0.10× |'));
  // (5 + 6) s over 1000 ops; (2 + 0.6) s over 2000 ops
  t.true(markdown.includes('| GET 4KiB c16 | server CPU ms/op incl. while the other ran | 11.00 | 1.30 | 0.12× |'));
  t.false(toMarkdown(report).includes('while the other ran'));
});

test('JSON has no NaN (null instead) and round-trips', (t) => {
  const report = reportOf(1);
  const parsed = JSON.parse(toJson(report)) as { phases: { serverCpuMsPerOp: number | null }[][]; probe: unknown };
  t.is(parsed.phases[0]?.[0]?.serverCpuMsPerOp, 5);
  t.deepEqual(parsed.probe, report.probe);
  const empty = { ...report, phases: [[figuresOf(phase, 'swift', emptyMeasure())]] };
  t.notRegex(toJson(empty), /NaN/);
});

test('chart is one SVG with a polyline per endpoint and panel', (t) => {
  const svg = renderChart(reportOf(2));
  t.true(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  t.true(svg.trimEnd().endsWith('</svg>'));
  // 2 endpoints x (ops/s, MB/s, p50, p99) = 8 lines
  t.is(svg.match(/<polyline /g)?.length, 8);
  t.true(svg.includes('A: swift'));
  t.true(svg.includes('GET 4KiB c16'));
  t.notRegex(svg, /NaN/);
});

test('scenarios: validated, with defaults', (t) => {
  const scenario = parseScenario(
    {
      name: 's',
      phases: [
        { op: 'PUT', size: '4KiB:50,1MiB:50', duration: '5s' },
        { op: 'mixed', mix: 'GET:90,PUT:10', count: 100, concurrency: 4 },
        { op: 'LIST', duration: 3 },
      ],
    },
    'inline',
  );
  t.is(scenario.containers, 4);
  t.is(scenario.rounds, 2);
  t.true(scenario.cleanup);
  t.is(scenario.phases[0]?.name, 'PUT 4KiB:50,1MiB:50 c16');
  t.is(scenario.phases[0]?.durationS, 5);
  t.is(scenario.phases[1]?.op, 'MIXED');
  t.is(scenario.phases[1]?.count, 100);
  t.is(scenario.phases[2]?.objects, 10_000);
  const bad: unknown[] = [
    { phases: [] },
    { phases: [{ op: 'PUT' }] },
    { phases: [{ op: 'MIXED', duration: 1 }] },
    { phases: [{ op: 'GET', mix: 'GET:1', duration: 1 }] },
    { phases: [{ op: 'PUT', duration: 1, sise: '4KiB' }] },
    { phases: [{ op: 'PUT', duration: 1, concurrency: 0 }] },
    { phases: [{ op: 'POST', duration: 1 }] },
    { phases: [{ op: 'PUT', duration: 1 }], extra: true },
  ];
  for (const raw of bad)
    t.throws(() => parseScenario(raw, 'inline'), { instanceOf: BenchUsageError }, JSON.stringify(raw));
});

test('the chart time axis skips long stretches without measurements', (t) => {
  const point = (atS: number): TimelinePoint => ({ atS, opsPerS: 1, mbPerS: 1, errors: 0, p50Ms: 1, p99Ms: 1 });
  // 0..10 s, then nothing until 500 s (a listing container being filled), then 500..510 s.
  const axis = timeAxis([
    [point(0), point(9)],
    [point(500), point(509)],
  ]);
  t.deepEqual(axis.segments, [
    { startS: 0, endS: 10 },
    { startS: 500, endS: 510 },
  ]);
  t.is(axis.timedS, 21);
  t.is(axis.position(0), 0);
  t.is(axis.position(510), 1);
  t.is(axis.position(10), 10 / 21);
  t.is(axis.position(500), 11 / 21);
  t.is(axis.position(250), 11 / 21); // inside the gap: drawn where measurements resume
  t.deepEqual(axis.gaps, [10.5 / 21]);
  // Short pauses (between phases) are not skipped.
  t.is(timeAxis([[point(0)], [point(3)]]).segments.length, 1);
});
