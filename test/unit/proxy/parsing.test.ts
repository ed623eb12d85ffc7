import test from 'ava';
import { HttpError } from '../../../common/errors.js';
import { resolveIni, parseIni } from '../../../common/config.js';
import { ConfigSection } from '../../../common/config.js';
import { parseTempAuthUsers } from '../../../proxy/config.js';
import { guessContentType } from '../../../proxy/mime.js';
import { backendPath, parseSwiftPath, quoteName } from '../../../proxy/request-path.js';
import { quorumSize } from '../../../proxy/rings.js';

const VERSIONS = ['v1', 'v1.0'];

test('parseSwiftPath splits at most three times and decodes once', (t) => {
  t.deepEqual(parseSwiftPath('/v1/AUTH_test', VERSIONS), { version: 'v1', account: 'AUTH_test' });
  t.deepEqual(parseSwiftPath('/v1/AUTH_test/', VERSIONS), { version: 'v1', account: 'AUTH_test' });
  t.deepEqual(parseSwiftPath('/v1/AUTH_test/c/', VERSIONS), { version: 'v1', account: 'AUTH_test', container: 'c' });
  t.deepEqual(parseSwiftPath('/v1/AUTH_test/c/a/b%2Fc%20d', VERSIONS), {
    version: 'v1',
    account: 'AUTH_test',
    container: 'c',
    object: 'a/b/c d',
  });
  t.deepEqual(parseSwiftPath('/v1/AUTH_test/c/%C3%A9', VERSIONS)?.object, 'é');
  t.is(parseSwiftPath('/v2/AUTH_test', VERSIONS), undefined);
  t.is(parseSwiftPath('/info', VERSIONS), undefined);
  const bad = t.throws(() => parseSwiftPath('/v1/AUTH_test/c/%FF', VERSIONS), { instanceOf: HttpError });
  t.is(bad?.status, 412);
  t.throws(() => parseSwiftPath('/v1/AUTH_test/c/a%00b', VERSIONS), { instanceOf: HttpError });
});

test('backend paths quote names but keep slashes', (t) => {
  t.is(quoteName('a b/c?d'), 'a%20b/c%3Fd');
  t.is(backendPath(17, 'AUTH_test', 'c', 'x/y z'), '/17/AUTH_test/c/x/y%20z');
  t.is(backendPath(3, 'AUTH_test'), '/3/AUTH_test');
});

test('content types are guessed from the name like Python mimetypes', (t) => {
  t.is(guessContentType('a/b/report.PDF'), 'application/pdf');
  t.is(guessContentType('notes.txt'), 'text/plain');
  t.is(guessContentType('archive.tar.gz'), 'application/gzip');
  t.is(guessContentType('.bashrc'), 'application/octet-stream');
  t.is(guessContentType('noext'), 'application/octet-stream');
  t.is(guessContentType('dir.json/file'), 'application/octet-stream');
});

test('quorum is a majority', (t) => {
  t.is(quorumSize(1), 1);
  t.is(quorumSize(2), 2);
  t.is(quorumSize(3), 2);
  t.is(quorumSize(4), 3);
  t.is(quorumSize(5), 3);
});

test('tempauth user lines parse as Swift reads them', (t) => {
  const ini = resolveIni(
    parseIni(
      [
        '[filter:tempauth]',
        'user_admin_admin = admin .admin .reseller_admin',
        'user_test_tester = testing .admin',
        'user_test_tester3 = testing3',
        'user_test5_tester5 = testing5 service',
        'user_other_u = k http://example.com/v1/AUTH_elsewhere',
      ].join('\n'),
    ),
    {},
  );
  const users = parseTempAuthUsers(ConfigSection.of(ini, 'filter:tempauth', {}), 'AUTH_');
  t.deepEqual(users.get('admin:admin')?.groups, ['.admin', '.reseller_admin']);
  t.is(users.get('test:tester')?.url, '$HOST/v1/AUTH_test');
  t.deepEqual(users.get('test:tester3')?.groups, []);
  t.deepEqual(users.get('test5:tester5')?.groups, ['service']);
  t.is(users.get('other:u')?.url, 'http://example.com/v1/AUTH_elsewhere');
});
