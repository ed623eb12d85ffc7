/**
 * Account ACLs through a real cluster, from Swift's tempauth documentation: the owner of AUTH_test2
 * (test2:tester2) sets `X-Account-Access-Control` by POST; bad JSON, unknown keys and non-list
 * values are 400 with Swift's words; owners and admins see the ACL on HEAD, others do not;
 * `read-only` members read the account listing, containers and objects; `read-write` members also
 * write containers and objects but not account metadata; `admin` members act as the owner and may
 * change the ACL; an ACL entry may be a group (an account name); no token is 401; a cleared ACL
 * grants nothing.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import anyTest, { type TestFn } from 'ava';
import { startCluster, type AuthResult, type TestCluster } from '../helpers/cluster.js';
import { swiftRequest, type Reply } from '../helpers/swift-http.js';

interface Context {
  cluster: TestCluster;
  /** test2:tester2, the owner of AUTH_test2. */
  owner: AuthResult;
  /** URL of AUTH_test2, the account under test. */
  accountUrl: string;
  /** A token for each other user, aimed at AUTH_test2. */
  as: (user: string, key: string) => Promise<AuthResult>;
}

const test = anyTest.serial as TestFn<Context>;

const run = promisify(execFile);

/** python-swiftclient's `swift` as `user`, aimed at the account under test with --os-storage-url. */
async function swiftCli(t: { context: Context }, user: string, key: string, args: string[]): Promise<string> {
  const { stdout } = await run('swift', ['--os-storage-url', t.context.accountUrl, ...args], {
    env: { ...process.env, ...t.context.cluster.swiftEnv(user, key) },
    timeout: 60_000,
  });
  return stdout;
}

async function setAcl(t: { context: Context }, value: string, who: AuthResult = t.context.owner): Promise<Reply> {
  return swiftRequest(who, 'POST', '', { 'X-Account-Access-Control': value });
}

test.before(async (t) => {
  const cluster = await startCluster();
  const owner = await cluster.auth('test2:tester2', 'testing2');
  const accountUrl = owner.storageUrl;
  const as = async (user: string, key: string): Promise<AuthResult> => {
    const auth = await cluster.auth(user, key);
    return { token: auth.token, storageUrl: accountUrl };
  };
  t.context = { cluster, owner, accountUrl, as };
  t.is((await swiftRequest(owner, 'PUT', '/shared')).status, 201);
  t.is((await swiftRequest(owner, 'PUT', '/shared/doc.txt', {}, 'owner data')).status, 201);
});

test.after.always(async (t) => {
  await t.context.cluster?.stop();
});

test('invalid ACLs are 400 with Swift words, before any permission check', async (t) => {
  const bad = await setAcl(t, '{"admin": ["a"]');
  t.is(bad.status, 400);
  t.is(
    bad.body.toString(),
    `X-Account-Access-Control invalid: Syntax error in input ('{"admin": ["a"]')\n\nInput: {"admin": ["a"]\n`,
  );
  const unknown = await setAcl(t, '{"admin":[],"owner":["x"]}');
  t.is(unknown.status, 400);
  t.regex(unknown.body.toString(), /Key "owner" not recognized/);
  const notList = await setAcl(t, '{"read-only":"test:tester3"}');
  t.is(notList.status, 400);
  t.regex(notList.body.toString(), /Value for key "read-only" must be a list/);
  const notStrings = await setAcl(t, '{"read-write":[1]}');
  t.regex(notStrings.body.toString(), /Elements of "read-write" list must be strings/);
  t.is((await setAcl(t, '["admin"]')).status, 400);
  // Swift validates even for users who could not set it at all.
  const stranger = await t.context.as('test:tester3', 'testing3');
  t.is((await setAcl(t, 'nope', stranger)).status, 400);
});

test('without an ACL, other users get 403 and anonymous requests 401', async (t) => {
  const reader = await t.context.as('test:tester3', 'testing3');
  t.is((await swiftRequest(reader, 'GET', '')).status, 403);
  t.is((await swiftRequest(reader, 'GET', '/shared/doc.txt')).status, 403);
  const anonymous = await fetch(`${t.context.accountUrl}/shared/doc.txt`);
  await anonymous.arrayBuffer();
  t.is(anonymous.status, 401);
});

test('the owner sets the ACL, sees it on HEAD in canonical form; the sysmeta never shows', async (t) => {
  const acl = { 'read-only': ['test:tester3'], 'read-write': ['test5'], admin: ['test:tester'] };
  const set = await setAcl(t, JSON.stringify(acl));
  t.is(set.status, 204);
  const head = await swiftRequest(t.context.owner, 'HEAD', '');
  t.is(head.status, 204);
  t.is(
    head.headers.get('x-account-access-control'),
    '{"admin":["test:tester"],"read-only":["test:tester3"],"read-write":["test5"]}',
  );
  t.is(head.headers.get('x-account-sysmeta-core-access-control'), null);
  const get = await swiftRequest(t.context.owner, 'GET', '?format=json');
  t.is(get.headers.get('x-account-access-control'), head.headers.get('x-account-access-control'));
});

test('read-only: lists and reads, writes nothing, does not see the ACL', async (t) => {
  const reader = await t.context.as('test:tester3', 'testing3');
  const listing = await swiftRequest(reader, 'GET', '?format=json');
  t.is(listing.status, 200);
  t.deepEqual(
    (JSON.parse(listing.body.toString()) as { name: string }[]).map((row) => row.name),
    ['shared'],
  );
  const head = await swiftRequest(reader, 'HEAD', '');
  t.is(head.status, 204);
  t.is(head.headers.get('x-account-access-control'), null);
  t.is((await swiftRequest(reader, 'HEAD', '/shared')).status, 204);
  t.is((await swiftRequest(reader, 'GET', '/shared')).body.toString(), 'doc.txt\n');
  const object = await swiftRequest(reader, 'GET', '/shared/doc.txt');
  t.is(object.status, 200);
  t.is(object.body.toString(), 'owner data');
  t.is((await swiftRequest(reader, 'PUT', '/shared/new.txt', {}, 'x')).status, 403);
  t.is((await swiftRequest(reader, 'DELETE', '/shared/doc.txt')).status, 403);
  t.is((await swiftRequest(reader, 'PUT', '/another')).status, 403);
  t.is((await swiftRequest(reader, 'POST', '', { 'X-Account-Meta-Color': 'red' })).status, 403);
});

test('read-write (granted to the group test5): containers and objects, not account metadata', async (t) => {
  const writer = await t.context.as('test5:tester5', 'testing5');
  t.is((await swiftRequest(writer, 'PUT', '/made-by-writer')).status, 201);
  t.is((await swiftRequest(writer, 'PUT', '/made-by-writer/w.txt', {}, 'writer data')).status, 201);
  t.is((await swiftRequest(writer, 'POST', '/made-by-writer', { 'X-Container-Meta-Note': 'hi' })).status, 204);
  // Container ACLs are owners' headers: a read-write user's are dropped, as in Swift.
  t.is((await swiftRequest(writer, 'POST', '/made-by-writer', { 'X-Container-Read': '.r:*' })).status, 204);
  const container = await swiftRequest(t.context.owner, 'HEAD', '/made-by-writer');
  t.is(container.headers.get('x-container-meta-note'), 'hi');
  t.is(container.headers.get('x-container-read'), null);
  t.is((await swiftRequest(writer, 'GET', '/shared/doc.txt')).status, 200);
  t.is((await swiftRequest(writer, 'DELETE', '/made-by-writer/w.txt')).status, 204);
  t.is((await swiftRequest(writer, 'DELETE', '/made-by-writer')).status, 204);
  t.is((await swiftRequest(writer, 'POST', '', { 'X-Account-Meta-Color': 'red' })).status, 403);
  t.is((await setAcl(t, '{}', writer)).status, 403);
  const head = await swiftRequest(writer, 'HEAD', '');
  t.is(head.status, 204);
  t.is(head.headers.get('x-account-access-control'), null);
});

test('admin: acts as the owner, sees and changes the ACL; reseller admins may too', async (t) => {
  const admin = await t.context.as('test:tester', 'testing');
  t.is((await swiftRequest(admin, 'POST', '', { 'X-Account-Meta-Color': 'blue' })).status, 204);
  const head = await swiftRequest(admin, 'HEAD', '');
  t.is(head.headers.get('x-account-meta-color'), 'blue');
  t.truthy(head.headers.get('x-account-access-control'));
  t.is((await swiftRequest(admin, 'PUT', '/shared/by-admin.txt', {}, 'a')).status, 201);
  const changed = { admin: ['test:tester'], 'read-only': ['test5:tester5'] };
  t.is((await setAcl(t, JSON.stringify(changed), admin)).status, 204);
  const writer = await t.context.as('test5:tester5', 'testing5');
  t.is((await swiftRequest(writer, 'PUT', '/shared/w2.txt', {}, 'x')).status, 403);
  t.is((await swiftRequest(writer, 'GET', '/shared/by-admin.txt')).status, 200);
  const reader = await t.context.as('test:tester3', 'testing3');
  t.is((await swiftRequest(reader, 'GET', '/shared/doc.txt')).status, 403);
  const reseller = await t.context.as('admin:admin', 'admin');
  const restored = { 'read-only': ['test:tester3'], 'read-write': ['test5'], admin: ['test:tester'] };
  t.is((await setAcl(t, JSON.stringify(restored), reseller)).status, 204);
  t.is((await swiftRequest(reader, 'GET', '/shared/doc.txt')).status, 200);
});

test('the swift CLI: the owner posts the ACL with -H, a read-only member lists and downloads', async (t) => {
  await swiftCli(t, 'test2:tester2', 'testing2', [
    'post',
    '-H',
    'X-Account-Access-Control: {"read-only":["test:tester3"]}',
  ]);
  const stat = await swiftCli(t, 'test2:tester2', 'testing2', ['stat']);
  t.regex(stat, /X-Account-Access-Control: {"read-only":\["test:tester3"\]}/);
  t.is(await swiftCli(t, 'test:tester3', 'testing3', ['list', 'shared']), 'by-admin.txt\ndoc.txt\n');
  const copy = await swiftCli(t, 'test:tester3', 'testing3', ['download', 'shared', 'doc.txt', '-o', '-']);
  t.is(copy, 'owner data');
  await t.throwsAsync(
    swiftCli(t, 'test:tester3', 'testing3', ['upload', 'shared', '--object-name', 'x', '/etc/hostname']),
  );
});

test('an empty ACL clears it: the grants are gone and HEAD shows none', async (t) => {
  t.is((await setAcl(t, '')).status, 204);
  const head = await swiftRequest(t.context.owner, 'HEAD', '');
  t.is(head.headers.get('x-account-access-control'), null);
  const reader = await t.context.as('test:tester3', 'testing3');
  t.is((await swiftRequest(reader, 'GET', '/shared/doc.txt')).status, 403);
  const writer = await t.context.as('test5:tester5', 'testing5');
  t.is((await swiftRequest(writer, 'GET', '')).status, 403);
});

test('/info announces account ACLs under tempauth', async (t) => {
  const response = await fetch(`${new URL(t.context.accountUrl).origin}/info`);
  const info = (await response.json()) as { tempauth?: { account_acls?: boolean } };
  t.is(info.tempauth?.account_acls, true);
});
