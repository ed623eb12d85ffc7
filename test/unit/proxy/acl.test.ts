import test from 'ava';
import { cleanAcl, InvalidAclError, parseAcl, referrerAllowed } from '../../../proxy/acl.js';

test('cleanAcl tidies values as Swift does', (t) => {
  t.is(cleanAcl('X-Container-Read', 'bob, sue'), 'bob,sue');
  t.is(cleanAcl('X-Container-Read', 'bob,,,sue'), 'bob,sue');
  t.is(cleanAcl('X-Container-Read', '.referrer : *'), '.r:*');
  t.is(cleanAcl('X-Container-Read', '.ref:*.example.com'), '.r:.example.com');
  t.is(cleanAcl('X-Container-Read', '.r:*, .rlistings'), '.r:*,.rlistings');
  t.is(cleanAcl('X-Container-Read', '.r:-thief.com'), '.r:-thief.com');
  t.is(cleanAcl('X-Container-Read', 'test:tester3'), 'test:tester3');
});

test('cleanAcl refuses what Swift refuses', (t) => {
  t.throws(() => cleanAcl('X-Container-Read', '.r:'), { instanceOf: InvalidAclError });
  t.throws(() => cleanAcl('X-Container-Read', '.r:-'), { instanceOf: InvalidAclError });
  t.throws(() => cleanAcl('X-Container-Write', '.r:*'), { message: /Referrers not allowed in write ACL/ });
  t.throws(() => cleanAcl('X-Container-Read', '.bogus:x'), { message: /Unknown designator/ });
});

test('parseAcl splits referrers and groups', (t) => {
  t.deepEqual(parseAcl('.r:*,.rlistings,test:tester3,acct'), {
    referrers: ['*'],
    groups: ['.rlistings', 'test:tester3', 'acct'],
  });
  t.deepEqual(parseAcl(undefined), { referrers: [], groups: [] });
});

test('referrerAllowed applies designations in order', (t) => {
  t.true(referrerAllowed(undefined, ['*']));
  t.false(referrerAllowed(undefined, ['.example.com']));
  t.true(referrerAllowed('http://www.example.com/x', ['.example.com']));
  t.false(referrerAllowed('http://thief.example.com/x', ['.example.com', '-thief.example.com']));
  t.true(referrerAllowed('http://host/x', ['host']));
  t.false(referrerAllowed('http://host/x', []));
});
