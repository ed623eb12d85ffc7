import test from 'ava';
import { hashPath, hashPathDigest, partitionOfDigest } from '../../../common/hash-path.js';
import { checkMetadata, DEFAULT_CONSTRAINTS, isValidUtf8Name } from '../../../common/constraints.js';

const secrets = { prefix: 'pfx', suffix: 'sfx' };

// Fixtures computed with Swift 2.30's swift.common.utils.hash_path (Debian python3-swift) under the same
// prefix and suffix: Nebula must place every name exactly where Swift does.
test('hash path matches Swift for accounts and objects with UTF-8 names', (t) => {
  t.is(hashPath(secrets, 'AUTH_test', 'c', 'o/é'), '71a44a6335378c4cd4638a0ef8c1f509');
  t.is(hashPath(secrets, 'AUTH_test'), '71455133c93e9d03544e69376066a754');
});

test('partition is the top part_power bits', (t) => {
  const digest = hashPathDigest(secrets, 'AUTH_test', 'c', 'o/é');
  t.is(partitionOfDigest(digest, 32 - 10), 0x71a44a63 >>> 22);
  t.throws(() => hashPathDigest(secrets, 'a', undefined, 'o'));
});

test('metadata limits follow Swift constraints', (t) => {
  t.is(checkMetadata({ 'x-object-meta-color': 'blue' }, 'object'), undefined);
  t.regex(checkMetadata({ 'x-object-meta-': 'v' }, 'object') ?? '', /name cannot be empty/);
  t.regex(checkMetadata({ [`x-object-meta-${'k'.repeat(129)}`]: 'v' }, 'object') ?? '', /name too long/);
  t.regex(checkMetadata({ 'x-container-meta-k': 'v'.repeat(257) }, 'container') ?? '', /value longer than 256/);
  const many: Record<string, string> = {};
  for (let i = 0; i <= DEFAULT_CONSTRAINTS.max_meta_count; i += 1) many[`x-account-meta-k${i}`] = 'v';
  t.regex(checkMetadata(many, 'account') ?? '', /Too many metadata items/);
});

test('names must be valid UTF-8 without NUL', (t) => {
  t.true(isValidUtf8Name('photos/été/🌋.jpg'));
  t.false(isValidUtf8Name('a\u0000b'));
  t.false(isValidUtf8Name(decodeURIComponent('%C3%A9') + '\uD800'));
});
