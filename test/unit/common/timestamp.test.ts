import test from 'ava';
import { InvalidTimestampError, Timestamp } from '../../../common/timestamp.js';

test('normalises X-Timestamp to 10.5 digits', (t) => {
  t.is(Timestamp.parse('1700000000.1').normal, '1700000000.10000');
  t.is(Timestamp.parse('1700000000').normal, '1700000000.00000');
  t.is(Timestamp.parse('12.5').normal, '0000000012.50000');
});

test('orders by time, then by offset', (t) => {
  const base = Timestamp.parse('1700000000.12345');
  const later = Timestamp.parse('1700000000.12346');
  const offset = base.withOffset(10);
  t.true(later.isNewerThan(base));
  t.true(offset.isNewerThan(base));
  t.true(later.isNewerThan(offset));
  t.is(offset.internal, '1700000000.12345_000000000000000a');
  t.is(Timestamp.parse(offset.internal).compare(offset), 0);
});

test('refuses malformed timestamps', (t) => {
  for (const bad of ['', 'abc', '-1', '1.2.3', '17_zz']) {
    t.throws(() => Timestamp.parse(bad), { instanceOf: InvalidTimestampError }, bad);
  }
});

test('formats dates as Swift does', (t) => {
  const ts = Timestamp.parse('1700000000.12345');
  t.is(ts.isoformat, '2023-11-14T22:13:20.123450');
  t.is(ts.httpDate, 'Tue, 14 Nov 2023 22:13:21 GMT');
});

test('now() is close to the wall clock and never repeats within a process', (t) => {
  const stamps = Array.from({ length: 1000 }, () => Timestamp.now());
  for (let i = 1; i < stamps.length; i += 1) t.true(stamps[i]!.compare(stamps[i - 1]!) > 0);
  const first = stamps[0]!.ticks / 100_000;
  t.true(Math.abs(first - Date.now() / 1000) < 1);
});
