/**
 * Tempauth's authorization through a real cluster: owners, non-admin users, other accounts and
 * anonymous clients against container ACLs (X-Container-Read / -Write, `.r:*`, `.r:<host>`,
 * `.rlistings`, `account:user`), with 401 and 403 exactly where Swift gives them.
 */
import anyTest, { type TestFn } from 'ava';
import { startCluster, type AuthResult, type TestCluster } from '../helpers/cluster.js';

interface Context {
  cluster: TestCluster;
  admin: AuthResult;
  tester3: AuthResult;
  other: AuthResult;
}

const test = anyTest.serial as TestFn<Context>;

test.before(async (t) => {
  const cluster = await startCluster();
  t.context = {
    cluster,
    admin: await cluster.auth('test:tester', 'testing'),
    tester3: await cluster.auth('test:tester3', 'testing3'),
    other: await cluster.auth('test2:tester2', 'testing2'),
  };
  const url = t.context.admin.storageUrl;
  const headers = { 'X-Auth-Token': t.context.admin.token };
  for (const container of ['private', 'shared', 'public', 'listed', 'dropbox', 'referred']) {
    await fetch(`${url}/${container}`, { method: 'PUT', headers });
    await fetch(`${url}/${container}/obj`, { method: 'PUT', headers, body: `in ${container}` });
  }
});

test.after.always(async (t) => {
  await t.context.cluster?.stop();
});

async function status(
  t: { context: Context },
  who: AuthResult | undefined,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<number> {
  const response = await fetch(`${t.context.admin.storageUrl}${path}`, {
    method,
    headers: { ...(who === undefined ? {} : { 'X-Auth-Token': who.token }), ...headers },
    body,
    signal: AbortSignal.timeout(15_000),
  });
  await response.arrayBuffer();
  return response.status;
}

async function setAcl(t: { context: Context }, container: string, headers: Record<string, string>): Promise<void> {
  const code = await status(t, t.context.admin, 'POST', `/${container}`, headers);
  if (code !== 204) throw new Error(`ACL POST answered ${code}`);
}

test('without ACLs only the owner gets in: 403 for other users, 401 for anonymous', async (t) => {
  t.is(await status(t, t.context.admin, 'GET', '/private/obj'), 200);
  t.is(await status(t, t.context.tester3, 'GET', '/private/obj'), 403);
  t.is(await status(t, t.context.tester3, 'GET', '/private'), 403);
  t.is(await status(t, t.context.tester3, 'HEAD', ''), 403);
  t.is(await status(t, t.context.tester3, 'PUT', '/private/new', {}, 'x'), 403);
  t.is(await status(t, t.context.tester3, 'PUT', '/newcontainer'), 403);
  t.is(await status(t, t.context.other, 'GET', '/private/obj'), 403);
  t.is(await status(t, undefined, 'GET', '/private/obj'), 401);
  t.is(await status(t, undefined, 'GET', '/private'), 401);
  t.is(await status(t, undefined, 'GET', ''), 401);
  // Only a reseller admin may PUT or DELETE an account, and only with allow_account_management.
  t.is(await status(t, t.context.admin, 'DELETE', ''), 403);
});

test('X-Container-Read with account:user lets that user read and list, not write', async (t) => {
  await setAcl(t, 'shared', { 'X-Container-Read': 'test:tester3' });
  t.is(await status(t, t.context.tester3, 'GET', '/shared/obj'), 200);
  t.is(await status(t, t.context.tester3, 'GET', '/shared'), 200);
  t.is(await status(t, t.context.tester3, 'PUT', '/shared/new', {}, 'x'), 403);
  t.is(await status(t, t.context.tester3, 'DELETE', '/shared/obj'), 403);
  t.is(await status(t, t.context.other, 'GET', '/shared/obj'), 403);
  // Non-owners do not see the ACLs.
  const head = await fetch(`${t.context.admin.storageUrl}/shared`, {
    method: 'HEAD',
    headers: { 'X-Auth-Token': t.context.tester3.token },
  });
  t.is(head.headers.get('x-container-read'), null);
  const ownerHead = await fetch(`${t.context.admin.storageUrl}/shared`, {
    method: 'HEAD',
    headers: { 'X-Auth-Token': t.context.admin.token },
  });
  t.is(ownerHead.headers.get('x-container-read'), 'test:tester3');
});

test('.r:* admits anonymous object reads but not listings; .rlistings adds listings', async (t) => {
  await setAcl(t, 'public', { 'X-Container-Read': '.r:*' });
  t.is(await status(t, undefined, 'GET', '/public/obj'), 200);
  t.is(await status(t, undefined, 'GET', '/public'), 401);
  t.is(await status(t, t.context.other, 'GET', '/public/obj'), 200);
  t.is(await status(t, undefined, 'PUT', '/public/obj', {}, 'x'), 401);
  await setAcl(t, 'listed', { 'X-Container-Read': '.r:*,.rlistings' });
  t.is(await status(t, undefined, 'GET', '/listed'), 200);
  t.is(await status(t, undefined, 'GET', '/listed/obj'), 200);
});

test('referrer ACLs: allowed host, denied host, and ".ref" spelling cleaned', async (t) => {
  await setAcl(t, 'referred', { 'X-Container-Read': '.ref:*.example.com, .r:-bad.example.com' });
  const head = await fetch(`${t.context.admin.storageUrl}/referred`, {
    method: 'HEAD',
    headers: { 'X-Auth-Token': t.context.admin.token },
  });
  t.is(head.headers.get('x-container-read'), '.r:.example.com,.r:-bad.example.com');
  t.is(await status(t, undefined, 'GET', '/referred/obj', { Referer: 'http://www.example.com/page' }), 200);
  t.is(await status(t, undefined, 'GET', '/referred/obj', { Referer: 'http://bad.example.com/page' }), 401);
  t.is(await status(t, undefined, 'GET', '/referred/obj'), 401);
});

test('X-Container-Write lets a user upload and delete; bad ACLs are 400', async (t) => {
  await setAcl(t, 'dropbox', { 'X-Container-Write': 'test:tester3' });
  t.is(await status(t, t.context.tester3, 'PUT', '/dropbox/mine', {}, 'x'), 201);
  t.is(await status(t, t.context.tester3, 'DELETE', '/dropbox/mine'), 204);
  t.is(await status(t, t.context.tester3, 'GET', '/dropbox/obj'), 403);
  t.is(await status(t, t.context.tester3, 'POST', '/dropbox', { 'X-Container-Write': 'test:tester3' }), 403);
  t.is(await status(t, t.context.admin, 'POST', '/dropbox', { 'X-Container-Write': '.r:*' }), 400);
  t.is(await status(t, t.context.admin, 'POST', '/dropbox', { 'X-Container-Read': '.bogus:x' }), 400);
});

test('a reseller admin may act on any account', async (t) => {
  const reseller = await t.context.cluster.auth('admin:admin', 'admin');
  t.is(await status(t, reseller, 'GET', '/private/obj'), 200);
  t.is(await status(t, reseller, 'HEAD', ''), 204);
  t.is(await status(t, reseller, 'DELETE', ''), 405);
});
