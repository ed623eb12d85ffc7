/**
 * A hand-written SVG chart of a run over time (no dependency): three stacked panels sharing the
 * time axis (ops/s, MB/s, latency p50 and p99), log-scaled because one suite spans 4 KiB and
 * 64 MiB objects. Each endpoint has its colour; each slice is its own polyline (slices of A and
 * B alternate in compare mode, so lines never join across a gap). Phases are shaded and named.
 */
import { type RunReport } from './report.js';
import { type TimelinePoint } from './stats.js';

const WIDTH = 1100;
const PANEL_HEIGHT = 190;
const MARGIN_LEFT = 70;
const MARGIN_RIGHT = 20;
const MARGIN_TOP = 40;
const PANEL_GAP = 36;
const COLOURS = ['#1f6fd1', '#e0661b'];

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Decades covering [low, high] for a log axis. */
export function logRange(values: readonly number[]): [number, number] {
  const positive = values.filter((v) => Number.isFinite(v) && v > 0);
  if (positive.length === 0) return [0, 1];
  const low = Math.floor(Math.log10(Math.min(...positive)));
  const high = Math.ceil(Math.log10(Math.max(...positive)));
  return [low, high === low ? low + 1 : high];
}

function tickLabel(exponent: number): string {
  const value = 10 ** exponent;
  if (value >= 1e6) return `${value / 1e6}M`;
  if (value >= 1e3) return `${value / 1e3}k`;
  return String(Number(value.toPrecision(3)));
}

interface Series {
  readonly colour: string;
  readonly dashed: boolean;
  readonly slices: readonly (readonly { x: number; y: number }[])[];
}

function panel(
  top: number,
  title: string,
  series: readonly Series[],
  x: (seconds: number) => number,
  out: string[],
): void {
  const values = series.flatMap((s) => s.slices.flatMap((slice) => slice.map((p) => p.y)));
  const [low, high] = logRange(values);
  const y = (value: number): number =>
    top + PANEL_HEIGHT - ((Math.log10(Math.max(value, 10 ** low)) - low) / (high - low)) * PANEL_HEIGHT;
  out.push(`<text x="${MARGIN_LEFT}" y="${top - 8}" class="title">${escapeXml(title)}</text>`);
  out.push(
    `<rect x="${MARGIN_LEFT}" y="${top}" width="${WIDTH - MARGIN_LEFT - MARGIN_RIGHT}" height="${PANEL_HEIGHT}" class="frame"/>`,
  );
  for (let exponent = low; exponent <= high; exponent += 1) {
    const lineY = y(10 ** exponent).toFixed(1);
    out.push(`<line x1="${MARGIN_LEFT}" x2="${WIDTH - MARGIN_RIGHT}" y1="${lineY}" y2="${lineY}" class="grid"/>`);
    out.push(
      `<text x="${MARGIN_LEFT - 6}" y="${lineY}" class="tick" text-anchor="end" dominant-baseline="middle">${tickLabel(exponent)}</text>`,
    );
  }
  for (const s of series) {
    for (const slice of s.slices) {
      const points = slice.filter((p) => Number.isFinite(p.y) && p.y > 0);
      if (points.length === 0) continue;
      const path = points.map((p) => `${x(p.x).toFixed(1)},${y(p.y).toFixed(1)}`).join(' ');
      const dash = s.dashed ? ' stroke-dasharray="4 3"' : '';
      if (points.length === 1) {
        const [p] = points as [{ x: number; y: number }];
        out.push(`<circle cx="${x(p.x).toFixed(1)}" cy="${y(p.y).toFixed(1)}" r="2.5" fill="${s.colour}"/>`);
      } else out.push(`<polyline points="${path}" fill="none" stroke="${s.colour}" stroke-width="1.5"${dash}/>`);
    }
  }
}

export interface TimeAxis {
  /** Runs of time with measurements: [startS, endS], in order, no overlaps. */
  readonly segments: readonly { startS: number; endS: number }[];
  /** Where each skipped stretch is drawn, as a fraction of the width. */
  readonly gaps: readonly number[];
  /** Seconds drawn (measured time plus a sliver per gap). */
  readonly timedS: number;
  /** Seconds since the run started -> fraction of the width (0..1). */
  position(seconds: number): number;
}

/** Drawn width of a skipped stretch, in seconds of the axis. */
const GAP_DRAWN_S = 1;
/** Stretches without measurements longer than this are skipped (untimed prefill, cleanup). */
const GAP_SKIPPED_S = 5;

/**
 * A time axis that skips long stretches without measurements (filling a listing container can take
 * minutes and would squeeze every phase into a corner).
 */
export function timeAxis(slices: readonly (readonly TimelinePoint[])[]): TimeAxis {
  const ranges = slices
    .filter((slice) => slice.length > 0)
    .map((slice) => ({ startS: Math.min(...slice.map((p) => p.atS)), endS: Math.max(...slice.map((p) => p.atS + 1)) }))
    .sort((a, b) => a.startS - b.startS);
  const segments: { startS: number; endS: number }[] = [];
  for (const range of ranges) {
    const last = segments[segments.length - 1];
    if (last !== undefined && range.startS - last.endS <= GAP_SKIPPED_S) last.endS = Math.max(last.endS, range.endS);
    else segments.push({ ...range });
  }
  if (segments.length === 0) segments.push({ startS: 0, endS: 1 });
  const offsets: number[] = [];
  let total = 0;
  for (const segment of segments) {
    offsets.push(total);
    total += segment.endS - segment.startS + GAP_DRAWN_S;
  }
  total -= GAP_DRAWN_S;
  const position = (seconds: number): number => {
    let index = segments.findIndex((segment) => seconds <= segment.endS);
    if (index < 0) index = segments.length - 1;
    const segment = segments[index] as { startS: number; endS: number };
    const within = Math.min(Math.max(seconds - segment.startS, 0), segment.endS - segment.startS);
    return ((offsets[index] ?? 0) + within) / total;
  };
  const gaps = segments.slice(1).map((_, index) => ((offsets[index + 1] ?? 0) - GAP_DRAWN_S / 2) / total);
  return { segments, gaps, timedS: total, position };
}

export function renderChart(report: RunReport): string {
  const plotWidth = WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
  const axis = timeAxis(report.phases.flatMap((pair) => pair.flatMap((f) => f.timelines)));
  const x = (seconds: number): number => MARGIN_LEFT + axis.position(seconds) * plotWidth;
  const height = MARGIN_TOP + 3 * (PANEL_HEIGHT + PANEL_GAP) + 30;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif">`,
    '<style>.title{font-size:13px;font-weight:bold}.tick{font-size:10px;fill:#555}.phase{font-size:9px;fill:#333}' +
      '.frame{fill:none;stroke:#999}.grid{stroke:#e4e4e4}.band{fill:#f3f3f3}</style>',
    `<rect width="${WIDTH}" height="${height}" fill="white"/>`,
    `<text x="${MARGIN_LEFT}" y="18" class="title">${escapeXml(`nebula-bench: ${report.scenario} (${report.startedAt})`)}</text>`,
  ];
  // Legend
  report.endpoints.forEach((endpoint, index) => {
    const lx = WIDTH - MARGIN_RIGHT - 360 + index * 180;
    out.push(`<rect x="${lx}" y="9" width="14" height="4" fill="${COLOURS[index % 2] ?? '#000'}"/>`);
    out.push(
      `<text x="${lx + 18}" y="15" class="tick">${escapeXml(`${index === 0 ? 'A' : 'B'}: ${endpoint.label}`)}</text>`,
    );
  });
  // Phase bands (alternate shading), named at the top of the first panel.
  report.phases.forEach((pair, index) => {
    const points = pair.flatMap((f) => f.timelines.flat());
    if (points.length === 0) return;
    const start = Math.min(...points.map((p) => p.atS));
    const end = Math.max(...points.map((p) => p.atS + 1));
    const bandHeight = 3 * (PANEL_HEIGHT + PANEL_GAP) - PANEL_GAP;
    if (index % 2 === 1) {
      out.push(
        `<rect x="${x(start).toFixed(1)}" y="${MARGIN_TOP}" width="${(x(end) - x(start)).toFixed(1)}" height="${bandHeight}" class="band"/>`,
      );
    }
    const name = pair[0]?.phase ?? '';
    out.push(
      `<text x="${(x(start) + 2).toFixed(1)}" y="${MARGIN_TOP + 10 + (index % 3) * 10}" class="phase">${escapeXml(name)}</text>`,
    );
  });
  const seriesOf = (pick: (p: TimelinePoint) => number, dashed = false): Series[] =>
    report.endpoints.map((_endpoint, index) => ({
      colour: COLOURS[index % 2] ?? '#000',
      dashed,
      slices: report.phases.flatMap((pair) =>
        (pair[index]?.timelines ?? []).map((slice) => slice.map((p) => ({ x: p.atS + 0.5, y: pick(p) }))),
      ),
    }));
  panel(
    MARGIN_TOP + 30,
    'operations per second (log)',
    seriesOf((p) => p.opsPerS),
    x,
    out,
  );
  panel(
    MARGIN_TOP + 30 + PANEL_HEIGHT + PANEL_GAP,
    'MB per second (log)',
    seriesOf((p) => p.mbPerS),
    x,
    out,
  );
  panel(
    MARGIN_TOP + 30 + 2 * (PANEL_HEIGHT + PANEL_GAP),
    'latency ms (log): p50 solid, p99 dashed',
    [...seriesOf((p) => p.p50Ms), ...seriesOf((p) => p.p99Ms, true)],
    x,
    out,
  );
  // Time axis: real seconds since the start; a skipped stretch (untimed filling) is marked.
  const axisY = MARGIN_TOP + 30 + 3 * PANEL_HEIGHT + 2 * PANEL_GAP + 14;
  let lastTickX = Number.NEGATIVE_INFINITY;
  for (const segment of axis.segments) {
    const stepS = [1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600].find((step) => axis.timedS / step <= 12) ?? 7200;
    const first = Math.ceil(segment.startS / stepS) * stepS;
    const ticks = [segment.startS, ...Array.from({ length: 60 }, (_, i) => first + i * stepS)].filter(
      (seconds) => seconds <= segment.endS,
    );
    for (const seconds of ticks) {
      const tickX = x(seconds);
      if (tickX - lastTickX < 40) continue;
      lastTickX = tickX;
      out.push(
        `<text x="${tickX.toFixed(1)}" y="${axisY}" class="tick" text-anchor="middle">${Math.round(seconds)}s</text>`,
      );
    }
  }
  for (const gap of axis.gaps) {
    const gapX = (MARGIN_LEFT + gap * plotWidth).toFixed(1);
    out.push(
      `<line x1="${gapX}" x2="${gapX}" y1="${MARGIN_TOP + 24}" y2="${axisY - 10}" stroke="#999" stroke-dasharray="2 4"/>`,
      `<text x="${gapX}" y="${axisY}" class="tick" text-anchor="middle">≈</text>`,
    );
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
