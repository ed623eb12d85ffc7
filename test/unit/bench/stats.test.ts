import test from 'ava';
import { bucketIndex, bucketRange, LatencyHistogram, percentile, summarize, Timeline } from '../../../bench/stats.js';

test('exact nearest-rank percentiles', (t) => {
  const sorted = Array.from({ length: 100 }, (_, i) => i + 1);
  t.is(percentile(sorted, 50), 50);
  t.is(percentile(sorted, 90), 90);
  t.is(percentile(sorted, 99), 99);
  t.is(percentile(sorted, 100), 100);
  t.is(percentile(sorted, 0), 1);
  t.is(percentile([7], 99), 7);
  t.true(Number.isNaN(percentile([], 50)));
});

test('every value falls in the bucket whose range holds it', (t) => {
  for (const value of [0, 1, 127, 128, 129, 255, 256, 1000, 65_535, 1e6, 3.6e9, 2 ** 39]) {
    const [low, high] = bucketRange(bucketIndex(value));
    t.true(low <= value && value < high, `${value} in [${low}, ${high})`);
  }
  // Buckets are contiguous and ordered.
  for (let index = 1; index < 3000; index += 1) t.is(bucketRange(index - 1)[1], bucketRange(index)[0]);
});

test('histogram percentiles stay within 1% of the exact ones', (t) => {
  const histogram = new LatencyHistogram();
  const values: number[] = [];
  let seed = 12345;
  for (let i = 0; i < 50_000; i += 1) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    // Log-uniform from 50 µs to 5 s: the spread of a real run.
    const value = 50 * 10 ** ((seed / 2 ** 31) * 5);
    values.push(value);
    histogram.record(value);
  }
  values.sort((a, b) => a - b);
  for (const p of [1, 50, 90, 99, 99.9]) {
    const exact = percentile(values, p);
    const approx = histogram.percentile(p);
    t.true(Math.abs(approx - exact) / exact < 0.01, `p${p}: ${approx} vs ${exact}`);
  }
  t.is(histogram.percentile(100), values[values.length - 1] ?? Number.NaN);
  t.is(histogram.count, 50_000);
});

test('merging histograms equals recording into one', (t) => {
  const a = new LatencyHistogram();
  const b = new LatencyHistogram();
  const both = new LatencyHistogram();
  for (let i = 1; i <= 1000; i += 1) {
    (i % 2 === 0 ? a : b).record(i * 37);
    both.record(i * 37);
  }
  a.merge(b);
  for (const p of [50, 90, 99]) t.is(a.percentile(p), both.percentile(p));
  t.is(a.maxMicros, both.maxMicros);
  t.is(a.minMicros, both.minMicros);
});

test('summaries are in milliseconds; empty histograms give NaN', (t) => {
  const histogram = new LatencyHistogram();
  t.true(Number.isNaN(summarize(histogram).p50Ms));
  histogram.record(2000);
  const summary = summarize(histogram);
  t.is(summary.count, 1);
  t.is(summary.p99Ms, 2);
  t.is(summary.maxMs, 2);
});

test('timeline rates divide the last partial second by its width', (t) => {
  const timeline = new Timeline(1_000_000, 1_010_000);
  for (let i = 0; i < 10; i += 1) timeline.record(1_010_100 + i * 10, 1000, 100, true);
  for (let i = 0; i < 5; i += 1) timeline.record(1_011_100 + i * 10, 3000, 100, true);
  timeline.record(1_011_200, 5000, 0, false);
  const points = timeline.points(1_011_500);
  t.is(points.length, 2);
  t.is(points[0]?.atS, 10);
  t.is(points[0]?.opsPerS, 10);
  t.is(points[1]?.atS, 11);
  t.is(points[1]?.opsPerS, 10); // 5 ops in half a second
  t.is(points[1]?.errors, 1);
  t.is(points[1]?.p50Ms, 3);
});
