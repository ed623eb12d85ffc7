import test from 'ava';
import {
  accountPrefix,
  containerPrefix,
  databasePrefixOf,
  decodeKey,
  infoKey,
  partitionRange,
  pendingKey,
  rowKey,
  rowName,
  rowsPrefix,
  SPACE_CONTAINER,
} from '../../../storage-node/db/keys.js';

test('the key layout is pinned byte for byte', (t) => {
  const container = containerPrefix(258, 'AUTH_a', 'c');
  t.is(
    infoKey(container).toString('hex'),
    Buffer.from('c\x00\x00\x01\x02AUTH_a\x00c\x00\x01', 'latin1').toString('hex'),
  );
  t.is(
    rowKey(rowsPrefix(container), 'é').toString('hex'),
    Buffer.concat([Buffer.from('c\x00\x00\x01\x02AUTH_a\x00c\x00\x02', 'latin1'), Buffer.from('é')]).toString('hex'),
  );
  t.is(infoKey(accountPrefix(1, 'AUTH_a')).toString('latin1'), 'a\x00\x00\x00\x01AUTH_a\x00\x01');
  t.is(pendingKey(1, 'AUTH_a', 'c').toString('latin1'), 'u\x00\x00\x00\x01AUTH_a\x00c');
});

test('row keys sort in UTF-8 byte order, and names never leak into a neighbour', (t) => {
  const names = ['a', 'a/b', 'a0', 'ab', 'b', 'é', '😀', '\uffff'];
  const rows = rowsPrefix(containerPrefix(0, 'acc', 'con'));
  const keys = names.map((name) => rowKey(rows, name));
  const sorted = [...keys].sort((x, y) => Buffer.compare(x, y));
  t.deepEqual(
    sorted.map((key) => rowName(rows, key)),
    [...names].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))),
  );
  // Account 'a' with container 'bc' and account 'ab' with container 'c' stay apart and ordered.
  t.true(Buffer.compare(containerPrefix(0, 'a', 'bc'), containerPrefix(0, 'ab', 'c')) < 0);
  // A container's rows all sort before the next container's info record.
  const next = infoKey(containerPrefix(0, 'acc', 'con0'));
  for (const key of keys) t.true(Buffer.compare(key, next) < 0);
});

test('keys decode back into their parts; partition ranges bound a partition', (t) => {
  const key = rowKey(rowsPrefix(containerPrefix(77, 'AUTH_x', 'photos')), 'a/b.jpg');
  t.deepEqual(decodeKey(key), {
    space: SPACE_CONTAINER,
    partition: 77,
    account: 'AUTH_x',
    container: 'photos',
    kind: 'row',
    name: 'a/b.jpg',
  });
  t.deepEqual(databasePrefixOf(key), containerPrefix(77, 'AUTH_x', 'photos'));
  t.is(decodeKey(infoKey(accountPrefix(3, 'A'))).kind, 'info');
  t.deepEqual(decodeKey(pendingKey(9, 'A', 'c')), {
    space: 0x75,
    partition: 9,
    account: 'A',
    container: 'c',
    kind: 'pending',
  });
  const range = partitionRange(SPACE_CONTAINER, 77);
  t.true(Buffer.compare(key, range.gte) >= 0 && Buffer.compare(key, range.lt) < 0);
  t.false(Buffer.compare(infoKey(containerPrefix(78, 'A', 'c')), range.lt) < 0);
  t.throws(() => containerPrefix(0, 'a\u0000', 'c'));
});
