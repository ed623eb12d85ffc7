/**
 * The Swift API v1 through a real cluster (four storage nodes, proxy with two workers): auth,
 * accounts, containers, objects, metadata, listings, limits and error bodies, as Swift answers.
 */
import { createHash } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import anyTest, { type TestFn } from 'ava';
import { startCluster, type TestCluster } from '../helpers/cluster.js';

interface Context {
  cluster: TestCluster;
  token: string;
  url: string;
}

const test = anyTest as TestFn<Context>;

test.before(async (t) => {
  const cluster = await startCluster({ workers: 2 });
  const { token, storageUrl } = await cluster.auth();
  t.context = { cluster, token, url: storageUrl };
});

test.after.always(async (t) => {
  await t.context.cluster?.stop();
});

async function call(
  t: { context: Context },
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string | Buffer,
): Promise<{ status: number; headers: Headers; text: string }> {
  const url = path.startsWith('http') ? path : `${t.context.url}${path}`;
  const response = await fetch(url, {
    method,
    headers: { 'X-Auth-Token': t.context.token, ...headers },
    body,
    signal: AbortSignal.timeout(15_000),
  });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

test('healthcheck and info', async (t) => {
  const health = await fetch(`${t.context.cluster.proxyUrl}/healthcheck`);
  t.is(health.status, 200);
  t.is(await health.text(), 'OK');
  t.is(health.headers.get('content-type'), 'text/plain');
  t.truthy(health.headers.get('x-trans-id')?.startsWith('tx'));
  const info = (await (await fetch(`${t.context.cluster.proxyUrl}/info`)).json()) as Record<
    string,
    Record<string, unknown>
  >;
  t.is(info.swift?.max_file_size, 5_368_709_122);
  t.is(info.swift?.container_listing_limit, 10_000);
  t.truthy(info.tempauth);
});

test('tempauth: tokens for good credentials, 401 for bad ones', async (t) => {
  const { authUrl } = t.context.cluster;
  const good = await fetch(authUrl, { headers: { 'X-Storage-User': 'test:tester', 'X-Storage-Pass': 'testing' } });
  t.is(good.status, 200);
  t.regex(good.headers.get('x-auth-token') ?? '', /^AUTH_tk/);
  t.is(good.headers.get('x-storage-token'), good.headers.get('x-auth-token'));
  t.regex(good.headers.get('x-storage-url') ?? '', /^http:\/\/127\.0\.0\.1:\d+\/v1\/AUTH_test$/);
  t.truthy(Number(good.headers.get('x-auth-token-expires')) > 0);
  const bad = await fetch(authUrl, { headers: { 'X-Auth-User': 'test:tester', 'X-Auth-Key': 'wrong' } });
  t.is(bad.status, 401);
  const unknown = await fetch(authUrl, { headers: { 'X-Auth-User': 'nobody:x', 'X-Auth-Key': 'y' } });
  t.is(unknown.status, 401);
  const invalidToken = await call(t, 'HEAD', '', { 'X-Auth-Token': 'AUTH_tkdeadbeef' });
  t.is(invalidToken.status, 401);
  t.is(invalidToken.headers.get('www-authenticate'), 'Swift realm="AUTH_test"');
  const anonymous = await fetch(t.context.url, { method: 'HEAD' });
  t.is(anonymous.status, 401);
});

test('account: autocreated on first write, metadata, listing formats', async (t) => {
  const second = await t.context.cluster.auth('test2:tester2', 'testing2');
  const head = await fetch(second.storageUrl, { method: 'HEAD', headers: { 'X-Auth-Token': second.token } });
  t.is(head.status, 204); // not created yet: an empty account, as Swift with account_autocreate
  t.is(head.headers.get('x-account-container-count'), '0');
  const put = await fetch(`${second.storageUrl}/first`, { method: 'PUT', headers: { 'X-Auth-Token': second.token } });
  t.is(put.status, 201);
  const post = await call(t, 'POST', '', { 'X-Account-Meta-Color': 'green' });
  t.is(post.status, 204);
  await call(t, 'PUT', '/acct-list');
  const account = await call(t, 'GET', '?format=json');
  t.is(account.status, 200);
  t.is(account.headers.get('x-account-meta-color'), 'green');
  // Swift's answer headers: ranges, the format chosen by Accept, usage per storage policy.
  t.is(account.headers.get('accept-ranges'), 'bytes');
  t.is(account.headers.get('vary'), 'Accept');
  const containers = account.headers.get('x-account-container-count');
  t.truthy(Number(containers) > 0);
  t.is(account.headers.get('x-account-storage-policy-policy-0-container-count'), containers);
  t.is(
    account.headers.get('x-account-storage-policy-policy-0-bytes-used'),
    account.headers.get('x-account-bytes-used'),
  );
  const names = (JSON.parse(account.text) as { name: string }[]).map((row) => row.name);
  t.true(names.includes('acct-list'));
  const plain = await call(t, 'GET', '');
  t.true(plain.text.split('\n').includes('acct-list'));
  const xml = await call(t, 'GET', '?format=xml');
  t.regex(xml.text, /<name>acct-list<\/name>/);
});

test('containers: create, metadata, delete only when empty', async (t) => {
  t.is((await call(t, 'PUT', '/box', { 'X-Container-Meta-Owner': 'me' })).status, 201);
  t.is((await call(t, 'PUT', '/box')).status, 202);
  const head = await call(t, 'HEAD', '/box');
  t.is(head.status, 204);
  t.is(head.headers.get('x-container-meta-owner'), 'me');
  t.is(head.headers.get('x-container-object-count'), '0');
  t.is(head.headers.get('x-storage-policy'), 'Policy-0');
  t.is(head.headers.get('accept-ranges'), 'bytes');
  t.is(head.headers.get('vary'), 'Accept');
  t.is((await call(t, 'POST', '/box', { 'X-Container-Meta-Owner': 'you' })).status, 204);
  t.is((await call(t, 'HEAD', '/box')).headers.get('x-container-meta-owner'), 'you');
  t.is((await call(t, 'PUT', '/box/o', {}, 'x')).status, 201);
  const conflict = await call(t, 'DELETE', '/box');
  t.is(conflict.status, 409);
  t.is((await call(t, 'DELETE', '/box/o')).status, 204);
  t.is((await call(t, 'DELETE', '/box')).status, 204);
  t.is((await call(t, 'HEAD', '/box')).status, 404);
  t.is((await call(t, 'DELETE', '/box')).status, 404);
  t.is((await call(t, 'PUT', '/nobox/o', {}, 'x')).status, 404);
});

test('objects: PUT streams to replicas, GET/HEAD/POST/DELETE, metadata and content type', async (t) => {
  await call(t, 'PUT', '/objs');
  const body = Buffer.alloc(300_000, 7);
  const md5 = createHash('md5').update(body).digest('hex');
  const put = await call(
    t,
    'PUT',
    '/objs/data/file.json',
    { 'X-Object-Meta-Kind': 'test', 'Content-Disposition': 'inline' },
    body,
  );
  t.is(put.status, 201);
  t.is(put.headers.get('etag'), md5);
  t.truthy(put.headers.get('last-modified'));
  const get = await fetch(`${t.context.url}/objs/data/file.json`, { headers: { 'X-Auth-Token': t.context.token } });
  t.is(get.status, 200);
  t.is(
    createHash('md5')
      .update(Buffer.from(await get.arrayBuffer()))
      .digest('hex'),
    md5,
  );
  t.is(get.headers.get('content-type'), 'application/json'); // guessed from the name
  t.is(get.headers.get('x-object-meta-kind'), 'test');
  t.is(get.headers.get('content-disposition'), 'inline');
  t.is(get.headers.get('accept-ranges'), 'bytes');
  t.is((await call(t, 'POST', '/objs/data/file.json', { 'X-Object-Meta-Kind': 'changed' })).status, 202);
  const head = await call(t, 'HEAD', '/objs/data/file.json');
  t.is(head.status, 200);
  t.is(head.headers.get('x-object-meta-kind'), 'changed');
  t.is(head.headers.get('content-length'), String(body.length));
  t.is((await call(t, 'DELETE', '/objs/data/file.json')).status, 204);
  t.is((await call(t, 'GET', '/objs/data/file.json')).status, 404);
  t.is((await call(t, 'DELETE', '/objs/data/file.json')).status, 404);
  t.is((await call(t, 'PUT', '/objs/newest', {}, 'first')).status, 201);
  t.is((await call(t, 'PUT', '/objs/newest', {}, 'second')).status, 201);
  const newest = await call(t, 'GET', '/objs/newest', { 'X-Newest': 'true' });
  t.is(newest.status, 200);
  t.is(newest.text, 'second');
  t.is((await call(t, 'HEAD', '/objs', { 'X-Newest': 'true' })).status, 204);
  t.is((await call(t, 'GET', '/objs/none-such', { 'X-Newest': 'true' })).status, 404);
  const typed = await call(t, 'PUT', '/objs/x.txt', { 'Content-Type': 'application/x-mine' }, 'hi');
  t.is(typed.status, 201);
  t.is((await call(t, 'HEAD', '/objs/x.txt')).headers.get('content-type'), 'application/x-mine');
  const wrongEtag = await call(t, 'PUT', '/objs/bad', { ETag: '00000000000000000000000000000000' }, 'data');
  t.is(wrongEtag.status, 422);
});

test('objects: chunked upload, Range and conditional requests', async (t) => {
  await call(t, 'PUT', '/cond');
  const status = await new Promise<number>((resolve, reject) => {
    const url = new URL(`${t.context.url}/cond/chunked`);
    const req = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'PUT',
        headers: { 'X-Auth-Token': t.context.token, 'Transfer-Encoding': 'chunked' },
      },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.write('0123456789');
    req.write('abcdefghij');
    req.end();
  });
  t.is(status, 201);
  const range = await call(t, 'GET', '/cond/chunked', { Range: 'bytes=5-12' });
  t.is(range.status, 206);
  t.is(range.text, '56789abc');
  t.is(range.headers.get('content-range'), 'bytes 5-12/20');
  const etag = (await call(t, 'HEAD', '/cond/chunked')).headers.get('etag') ?? '';
  t.is((await call(t, 'GET', '/cond/chunked', { 'If-None-Match': etag })).status, 304);
  const notMatched = await call(t, 'GET', '/cond/chunked', { 'If-Match': '"nope"' });
  t.is(notMatched.status, 412);
  t.is(notMatched.text, '', "swob's conditional answer has no body");
  t.truthy(notMatched.headers.get('etag'));
  t.is((await call(t, 'PUT', '/cond/chunked', { 'If-None-Match': '*' }, 'again')).status, 412);
  t.is((await call(t, 'GET', '/cond/chunked', { Range: 'bytes=100-200' })).status, 416);
});

test('listings: prefix, delimiter, marker, end_marker, limit, reverse', async (t) => {
  await call(t, 'PUT', '/list');
  for (const name of ['a/1', 'a/2', 'b/1', 'c', 'd'])
    t.is((await call(t, 'PUT', `/list/${name}`, {}, name)).status, 201);
  const lines = async (query: string): Promise<string[]> =>
    (await call(t, 'GET', `/list?${query}`)).text.split('\n').filter((line) => line !== '');
  t.deepEqual(await lines(''), ['a/1', 'a/2', 'b/1', 'c', 'd']);
  t.deepEqual(await lines('prefix=a/'), ['a/1', 'a/2']);
  t.deepEqual(await lines('delimiter=/'), ['a/', 'b/', 'c', 'd']);
  t.deepEqual(await lines('marker=a/2&end_marker=d'), ['b/1', 'c']);
  t.deepEqual(await lines('limit=2'), ['a/1', 'a/2']);
  t.deepEqual(await lines('reverse=true&limit=2'), ['d', 'c']);
  const json = JSON.parse((await call(t, 'GET', '/list?format=json&prefix=c')).text) as {
    name: string;
    bytes: number;
  }[];
  t.deepEqual(
    json.map((row) => [row.name, row.bytes]),
    [['c', 1]],
  );
  const xml = await call(t, 'GET', '/list?format=xml&prefix=d');
  t.regex(xml.text, /<container name="list"><object><name>d<\/name>/);
  const tooMany = await call(t, 'GET', '/list?limit=10001');
  t.is(tooMany.status, 412);
  t.is(tooMany.text, 'Maximum limit is 10000');
});

test("limits and errors: Swift's statuses and messages", async (t) => {
  await call(t, 'PUT', '/lim');
  const longName = 'x'.repeat(1025);
  const tooLong = await call(t, 'PUT', `/lim/${longName}`, {}, 'x');
  t.is(tooLong.status, 400);
  t.is(tooLong.text, 'Object name length of 1025 longer than 1024');
  const longContainer = await call(t, 'PUT', `/${'c'.repeat(257)}`);
  t.is(longContainer.status, 400);
  t.is(longContainer.text, 'Container name length of 257 longer than 256');
  // swob's default type; Swift's constraints checks (metadata, object creation) answer text/plain.
  t.is(longContainer.headers.get('content-type'), 'text/html; charset=UTF-8');
  const metaValue = await call(t, 'PUT', '/lim/m', { 'x-object-meta-big-one': 'v'.repeat(257) }, 'x');
  t.is(metaValue.status, 400);
  t.is(metaValue.text, 'Metadata value longer than 256: x-object-meta-Big-One', 'the name as WSGI spells it');
  t.is(metaValue.headers.get('content-type'), 'text/plain');
  // fetch will not send a Content-Length it did not compute: announce a huge body by hand.
  const tooBig = await new Promise<string>((resolve, reject) => {
    const url = new URL(`${t.context.url}/lim/huge`);
    const req = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'PUT',
        headers: { 'X-Auth-Token': t.context.token, 'Content-Length': '5368709123' },
      },
      (res) => {
        res.resume();
        resolve(`${res.statusCode} ${res.statusMessage}`);
        req.destroy();
      },
    );
    req.on('error', reject);
    req.flushHeaders();
  });
  t.is(tooBig, '413 Request Entity Too Large'); // Swift's reason phrase, not Node's
  const deleteAt = await call(t, 'PUT', '/lim/old', { 'X-Delete-At': '1000' }, 'x');
  t.is(deleteAt.status, 400);
  t.is(deleteAt.text, 'X-Delete-At in past');
  const badAfter = await call(t, 'PUT', '/lim/old', { 'X-Delete-After': 'soon' }, 'x');
  t.is(badAfter.text, 'Non-integer X-Delete-After');
  const expiring = await call(t, 'PUT', '/lim/later', { 'X-Delete-After': '3600' }, 'x');
  t.is(expiring.status, 201);
  const deleteAtValue = Number((await call(t, 'HEAD', '/lim/later')).headers.get('x-delete-at'));
  t.true(Math.abs(deleteAtValue - (Date.now() / 1000 + 3600)) < 60);
  const notFound = await call(t, 'GET', '/lim/none');
  t.is(notFound.status, 404);
  t.is(notFound.text, '<html><h1>Not Found</h1><p>The resource could not be found.</p></html>');
  const method = await call(t, 'PATCH', '/lim/m');
  t.is(method.status, 405);
  const badPath = await fetch(`${t.context.cluster.proxyUrl}/v2/AUTH_test`, {
    headers: { 'X-Auth-Token': t.context.token },
  });
  t.is(badPath.status, 404);
});

test('every response carries the transaction id', async (t) => {
  const response = await call(t, 'GET', '/none-such/x');
  const txId = response.headers.get('x-trans-id') ?? '';
  t.regex(txId, /^tx[0-9a-f]{21}-[0-9a-f]{10}$/);
  t.is(response.headers.get('x-openstack-request-id'), txId);
  const extra = await call(t, 'HEAD', '', { 'X-Trans-Id-Extra': 'mine' });
  t.regex(extra.headers.get('x-trans-id') ?? '', /-mine$/);
});
