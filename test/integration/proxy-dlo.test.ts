/**
 * Dynamic Large Objects through a real cluster: a manifest object with X-Object-Manifest serves
 * the objects under its prefix in listing order, with the quoted md5 of their ETags, Range,
 * conditionals, `multipart-manifest=get`, new segments showing up at once, and 400 for a
 * malformed X-Object-Manifest.
 */
import anyTest, { type TestFn } from 'ava';
import { startCluster, type AuthResult, type TestCluster } from '../helpers/cluster.js';
import { md5, swiftRequest, type Reply } from '../helpers/swift-http.js';

interface Context {
  cluster: TestCluster;
  auth: AuthResult;
}

const test = anyTest.serial as TestFn<Context>;

const request = (
  t: { context: Context },
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string | Buffer,
  auth: AuthResult = t.context.auth,
): Promise<Reply> => swiftRequest(auth, method, path, headers, body);

const PARTS = ['first-', 'second-', 'third'];

test.before(async (t) => {
  const cluster = await startCluster();
  t.context = { cluster, auth: await cluster.auth() };
  await request(t, 'PUT', '/segs');
  await request(t, 'PUT', '/c');
  for (const [index, data] of PARTS.entries()) await request(t, 'PUT', `/segs/part/${index}`, {}, data);
  await request(t, 'PUT', '/segs/other', {}, 'not in the prefix');
});

test.after.always(async (t) => {
  await t.context.cluster?.stop();
});

test('GET and HEAD concatenate the prefix listing; ETag is the quoted md5 of the ETags', async (t) => {
  const put = await request(
    t,
    'PUT',
    '/c/dlo',
    { 'X-Object-Manifest': 'segs/part/', 'Content-Type': 'text/x-dlo' },
    '',
  );
  t.is(put.status, 201);
  const etag = `"${md5(PARTS.map((data) => md5(data)).join(''))}"`;
  const get = await request(t, 'GET', '/c/dlo');
  t.is(get.status, 200);
  t.is(get.body.toString(), PARTS.join(''));
  t.is(get.headers.get('etag'), etag);
  t.is(get.headers.get('x-object-manifest'), 'segs/part/');
  t.is(get.headers.get('content-type'), 'text/x-dlo');
  const head = await request(t, 'HEAD', '/c/dlo');
  t.is(head.headers.get('content-length'), String(PARTS.join('').length));
  t.is(head.headers.get('etag'), etag);
});

test('Range and conditionals apply to the whole', async (t) => {
  const whole = PARTS.join('');
  const ranged = await request(t, 'GET', '/c/dlo', { Range: 'bytes=4-9' });
  t.is(ranged.status, 206);
  t.is(ranged.body.toString(), whole.slice(4, 10));
  t.is(ranged.headers.get('content-range'), `bytes 4-9/${whole.length}`);
  t.is((await request(t, 'GET', '/c/dlo', { Range: 'bytes=500-' })).status, 416);
  const etag = (await request(t, 'HEAD', '/c/dlo')).headers.get('etag') ?? '';
  t.is((await request(t, 'GET', '/c/dlo', { 'If-None-Match': etag })).status, 304);
  t.is((await request(t, 'GET', '/c/dlo', { 'If-Match': '"other"' })).status, 412);
});

test('new segments show up at once; multipart-manifest=get returns the manifest itself', async (t) => {
  await request(t, 'PUT', '/segs/part/3', {}, '-fourth');
  const get = await request(t, 'GET', '/c/dlo');
  t.is(get.body.toString(), `${PARTS.join('')}-fourth`);
  const manifest = await request(t, 'GET', '/c/dlo?multipart-manifest=get');
  t.is(manifest.status, 200);
  t.is(manifest.body.length, 0);
  t.is(manifest.headers.get('x-object-manifest'), 'segs/part/');
});

test('an empty prefix is an empty object; a bad X-Object-Manifest is 400', async (t) => {
  await request(t, 'PUT', '/c/empty', { 'X-Object-Manifest': 'segs/nothing-here' }, '');
  const get = await request(t, 'GET', '/c/empty');
  t.is(get.status, 200);
  t.is(get.body.length, 0);
  t.is(get.headers.get('etag'), `"${md5('')}"`);
  const bad = await request(t, 'PUT', '/c/bad', { 'X-Object-Manifest': 'no-slash' }, '');
  t.is(bad.status, 400);
  t.is(bad.body.toString(), 'X-Object-Manifest must be in the format container/prefix');
});
