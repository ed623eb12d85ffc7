import test from 'ava';
import {
  BenchUsageError,
  formatSize,
  parseDurationS,
  parseMix,
  parseSize,
  parseSizeDistribution,
} from '../../../bench/units.js';

test('sizes: binary and decimal units', (t) => {
  t.is(parseSize('0'), 0);
  t.is(parseSize('4096'), 4096);
  t.is(parseSize('4KiB'), 4096);
  t.is(parseSize('4kib'), 4096);
  t.is(parseSize('1MiB'), 1_048_576);
  t.is(parseSize('1.5MiB'), 1_572_864);
  t.is(parseSize('64MiB'), 67_108_864);
  t.is(parseSize('2GiB'), 2_147_483_648);
  t.is(parseSize('10MB'), 10_000_000);
  t.is(parseSize('1k'), 1024);
  for (const bad of ['', 'abc', '-1KiB', '4XB', '1e3'])
    t.throws(() => parseSize(bad), { instanceOf: BenchUsageError }, bad);
});

test('formatSize gives the shortest exact binary name', (t) => {
  t.is(formatSize(4096), '4KiB');
  t.is(formatSize(67_108_864), '64MiB');
  t.is(formatSize(1_073_741_824), '1GiB');
  t.is(formatSize(1000), '1000B');
});

test('a fixed size is a distribution of one value', (t) => {
  const fixed = parseSizeDistribution('1MiB');
  t.is(fixed.entries.length, 1);
  t.is(fixed.pick(0), 1_048_576);
  t.is(fixed.pick(0.999), 1_048_576);
  t.is(fixed.mean(), 1_048_576);
});

test('weighted size distribution picks by cumulative share', (t) => {
  const dist = parseSizeDistribution('4KiB:70,1MiB:25,64MiB:5');
  t.is(dist.pick(0), 4096);
  t.is(dist.pick(0.69), 4096);
  t.is(dist.pick(0.7), 1_048_576);
  t.is(dist.pick(0.94), 1_048_576);
  t.is(dist.pick(0.95), 67_108_864);
  t.is(dist.pick(0.9999), 67_108_864);
  t.is(Math.round(dist.mean()), Math.round(0.7 * 4096 + 0.25 * 1_048_576 + 0.05 * 67_108_864));
  // Weights need not add up to 100.
  const halves = parseSizeDistribution('1KiB:1, 2KiB:1');
  t.is(halves.pick(0.49), 1024);
  t.is(halves.pick(0.5), 2048);
});

test('sampling follows the weights', (t) => {
  const dist = parseSizeDistribution('1:70,2:25,3:5');
  const counts = new Map<number, number>();
  for (let i = 0; i < 10_000; i += 1) {
    const value = dist.pick((i + 0.5) / 10_000);
    counts.set(value, (counts.get(value) ?? 0) + 1);
  }
  t.deepEqual([counts.get(1), counts.get(2), counts.get(3)], [7000, 2500, 500]);
});

test('bad distributions and mixes are refused', (t) => {
  for (const bad of ['', '4KiB:0', '4KiB:-1', '4KiB,1MiB', '4KiB:x']) {
    t.throws(() => parseSizeDistribution(bad), { instanceOf: BenchUsageError }, bad);
  }
  t.throws(() => parseMix('GET:50,LIST:50'), { instanceOf: BenchUsageError });
  t.throws(() => parseMix('GET:50,POST:50'), { instanceOf: BenchUsageError });
  const mix = parseMix('get:70,PUT:30');
  t.is(mix.pick(0.1), 'GET');
  t.is(mix.pick(0.8), 'PUT');
});

test('durations', (t) => {
  t.is(parseDurationS('30'), 30);
  t.is(parseDurationS('30s'), 30);
  t.is(parseDurationS('1.5m'), 90);
  t.is(parseDurationS('500ms'), 0.5);
  t.is(parseDurationS('1h'), 3600);
  t.throws(() => parseDurationS('soon'), { instanceOf: BenchUsageError });
});
