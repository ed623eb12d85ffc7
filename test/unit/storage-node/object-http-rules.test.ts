/** Unit tests of Range parsing and the conditional headers, as Swift's swob applies them. */
import test from 'ava';
import { evaluateConditionals, parseRange } from '../../../storage-node/object/http-rules.js';

test('Range: forms, clamping, unsatisfiable and malformed', (t) => {
  t.is(parseRange(undefined, 10), undefined);
  t.deepEqual(parseRange('bytes=0-4', 10), [{ start: 0, end: 4 }]);
  t.deepEqual(parseRange('bytes=5-', 10), [{ start: 5, end: 9 }]);
  t.deepEqual(parseRange('bytes=-3', 10), [{ start: 7, end: 9 }]);
  t.deepEqual(parseRange('bytes=-30', 10), [{ start: 0, end: 9 }]);
  t.deepEqual(parseRange('bytes=8-100', 10), [{ start: 8, end: 9 }]);
  t.deepEqual(parseRange('bytes=0-0,2-3', 10), [
    { start: 0, end: 0 },
    { start: 2, end: 3 },
  ]);
  t.deepEqual(parseRange('bytes=10-20', 10), []);
  t.deepEqual(parseRange('bytes=-0', 10), []);
  t.is(parseRange('bytes=4-2', 10), undefined);
  t.is(parseRange('items=0-1', 10), undefined);
  t.is(parseRange('bytes=a-b', 10), undefined);
  t.is(parseRange(`bytes=${Array.from({ length: 51 }, () => '0-1').join(',')}`, 10), undefined);
});

test('conditionals: precedence and outcomes', (t) => {
  const lastModified = 1_700_000_000;
  const at = (seconds: number): string => new Date(seconds * 1000).toUTCString();
  t.is(evaluateConditionals({ ifMatch: '"abc"' }, 'abc', lastModified, true), 'proceed');
  t.is(evaluateConditionals({ ifMatch: 'zzz, "abc"' }, 'abc', lastModified, true), 'proceed');
  t.is(evaluateConditionals({ ifMatch: 'zzz' }, 'abc', lastModified, true), 'precondition-failed');
  t.is(evaluateConditionals({ ifNoneMatch: '*' }, 'abc', lastModified, true), 'not-modified');
  t.is(evaluateConditionals({ ifNoneMatch: 'abc' }, 'abc', lastModified, false), 'precondition-failed');
  t.is(evaluateConditionals({ ifModifiedSince: at(lastModified) }, 'abc', lastModified, true), 'not-modified');
  t.is(evaluateConditionals({ ifModifiedSince: at(lastModified - 1) }, 'abc', lastModified, true), 'proceed');
  // If-None-Match takes precedence over If-Modified-Since.
  t.is(
    evaluateConditionals({ ifNoneMatch: 'other', ifModifiedSince: at(lastModified) }, 'abc', lastModified, true),
    'proceed',
  );
  t.is(
    evaluateConditionals({ ifUnmodifiedSince: at(lastModified - 1) }, 'abc', lastModified, true),
    'precondition-failed',
  );
  t.is(evaluateConditionals({ ifUnmodifiedSince: 'not a date' }, 'abc', lastModified, true), 'proceed');
});
