/**
 * Service tokens through a real cluster, as Swift's tempauth documents them with
 * `reseller_prefix = AUTH, SERVICE` and `SERVICE_require_group = service` (the all-in-one conf):
 * an account admin owns AUTH_test and SERVICE_test alike, but SERVICE_test also needs the
 * `X-Service-Token` of a user in the `service` group (test5:tester5). Either token alone is 403;
 * a service token without a user token is anonymous (401); an invalid service token adds nothing;
 * a service token does not make a non-owner an owner; AUTH_ accounts need no service token.
 */
import anyTest, { type TestFn } from 'ava';
import { startCluster, type AuthResult, type TestCluster } from '../helpers/cluster.js';
import { swiftRequest } from '../helpers/swift-http.js';

interface Context {
  cluster: TestCluster;
  /** test:tester, admin of `test`. */
  user: AuthResult;
  /** test5:tester5, in group `service`. */
  service: AuthResult;
  /** URL of SERVICE_test. */
  serviceAccountUrl: string;
}

const test = anyTest.serial as TestFn<Context>;

test.before(async (t) => {
  const cluster = await startCluster();
  const user = await cluster.auth('test:tester', 'testing');
  const service = await cluster.auth('test5:tester5', 'testing5');
  const serviceAccountUrl = user.storageUrl.replace(/\/AUTH_test$/, '/SERVICE_test');
  t.context = { cluster, user, service, serviceAccountUrl };
});

test.after.always(async (t) => {
  await t.context.cluster?.stop();
});

function at(url: string, token: string): AuthResult {
  return { token, storageUrl: url };
}

test('the user token plus a service token own SERVICE_test', async (t) => {
  const { user, service, serviceAccountUrl } = t.context;
  const both = { 'X-Service-Token': service.token };
  const owner = at(serviceAccountUrl, user.token);
  t.is((await swiftRequest(owner, 'PUT', '/images', both)).status, 201);
  t.is((await swiftRequest(owner, 'PUT', '/images/disk.img', both, 'image bytes')).status, 201);
  const read = await swiftRequest(owner, 'GET', '/images/disk.img', both);
  t.is(read.status, 200);
  t.is(read.body.toString(), 'image bytes');
  const listing = await swiftRequest(owner, 'GET', '', both);
  t.is(listing.status, 200);
  t.is(listing.body.toString(), 'images\n');
  // Owners see owner headers there too.
  t.is((await swiftRequest(owner, 'POST', '/images', { ...both, 'X-Container-Read': 'test:tester3' })).status, 204);
  const head = await swiftRequest(owner, 'HEAD', '/images', both);
  t.is(head.headers.get('x-container-read'), 'test:tester3');
});

test('either token alone is 403; a service token without a user token is anonymous (401)', async (t) => {
  const { user, service, serviceAccountUrl } = t.context;
  t.is((await swiftRequest(at(serviceAccountUrl, user.token), 'GET', '/images/disk.img')).status, 403);
  t.is((await swiftRequest(at(serviceAccountUrl, user.token), 'PUT', '/other')).status, 403);
  t.is((await swiftRequest(at(serviceAccountUrl, service.token), 'GET', '/images/disk.img')).status, 403);
  const serviceOnly = await fetch(`${serviceAccountUrl}/images/disk.img`, {
    headers: { 'X-Service-Token': service.token },
  });
  await serviceOnly.arrayBuffer();
  t.is(serviceOnly.status, 401);
  t.is(serviceOnly.headers.get('www-authenticate'), 'Swift realm="SERVICE_test"');
});

test('an invalid or expired-looking service token adds nothing; a user token still must be valid', async (t) => {
  const { user, service, serviceAccountUrl } = t.context;
  const forged = `${service.token.slice(0, -2)}00`;
  const reply = await swiftRequest(at(serviceAccountUrl, user.token), 'GET', '/images/disk.img', {
    'X-Service-Token': forged,
  });
  t.is(reply.status, 403);
  const badUser = await swiftRequest(at(serviceAccountUrl, `${user.token.slice(0, -2)}00`), 'GET', '/images', {
    'X-Service-Token': service.token,
  });
  t.is(badUser.status, 401);
});

test('a service token does not make a non-admin an owner; container ACLs still apply', async (t) => {
  const { cluster, service, serviceAccountUrl } = t.context;
  const tester3 = await cluster.auth('test:tester3', 'testing3');
  const headers = { 'X-Service-Token': service.token };
  t.is((await swiftRequest(at(serviceAccountUrl, tester3.token), 'PUT', '/mine', headers)).status, 403);
  // `images` has X-Container-Read: test:tester3 (set above): ACLs match the X-Auth-Token identity.
  const read = await swiftRequest(at(serviceAccountUrl, tester3.token), 'GET', '/images/disk.img');
  t.is(read.status, 200);
});

test('AUTH_ accounts need no service token, and one does no harm', async (t) => {
  const { user, service } = t.context;
  t.is((await swiftRequest(user, 'PUT', '/plain')).status, 201);
  t.is((await swiftRequest(user, 'HEAD', '/plain', { 'X-Service-Token': service.token })).status, 204);
  t.is((await swiftRequest(user, 'DELETE', '/plain')).status, 204);
});
