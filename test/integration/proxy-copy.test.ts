/**
 * Server-side copy through a real cluster: COPY with Destination (and Destination-Account), PUT
 * with X-Copy-From (and X-Copy-From-Account), metadata kept, overridden or replaced
 * (X-Fresh-Metadata), the X-Copied-From* response headers, copies of large objects (flattened,
 * or the manifest itself with multipart-manifest=get), and Swift's errors.
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

test.before(async (t) => {
  const cluster = await startCluster();
  t.context = { cluster, auth: await cluster.auth() };
  await request(t, 'PUT', '/src');
  await request(t, 'PUT', '/dst');
  const put = await request(
    t,
    'PUT',
    '/src/obj',
    {
      'Content-Type': 'text/x-source',
      'X-Object-Meta-Color': 'blue',
      'X-Object-Meta-Size': 'small',
      'Content-Language': 'en',
    },
    'source body',
  );
  if (put.status !== 201) throw new Error(`PUT ${put.status}`);
});

test.after.always(async (t) => {
  await t.context.cluster?.stop();
});

test('COPY with Destination keeps the data and metadata and says where it came from', async (t) => {
  const source = await request(t, 'HEAD', '/src/obj');
  const copy = await request(t, 'COPY', '/src/obj', { Destination: '/dst/copy1', 'X-Object-Meta-Size': 'large' });
  t.is(copy.status, 201, copy.body.toString());
  t.is(copy.headers.get('x-copied-from'), 'src/obj');
  t.is(copy.headers.get('x-copied-from-account'), 'AUTH_test');
  t.is(copy.headers.get('x-copied-from-last-modified'), source.headers.get('last-modified'));
  t.is(copy.headers.get('etag'), md5('source body'));
  const get = await request(t, 'GET', '/dst/copy1');
  t.is(get.body.toString(), 'source body');
  t.is(get.headers.get('content-type'), 'text/x-source');
  t.is(get.headers.get('x-object-meta-color'), 'blue');
  t.is(get.headers.get('x-object-meta-size'), 'large', 'the request overrides the source');
  t.is(get.headers.get('content-language'), 'en');
});

test('PUT with X-Copy-From, a new Content-Type, and X-Fresh-Metadata', async (t) => {
  const put = await request(t, 'PUT', '/dst/copy2', {
    'X-Copy-From': 'src/obj',
    'Content-Type': 'text/plain',
    'Content-Length': '0',
  });
  t.is(put.status, 201);
  const get = await request(t, 'GET', '/dst/copy2');
  t.is(get.headers.get('content-type'), 'text/plain');
  t.is(get.headers.get('x-object-meta-color'), 'blue');
  const fresh = await request(t, 'PUT', '/dst/copy3', {
    'X-Copy-From': '/src/obj',
    'X-Fresh-Metadata': 'true',
    'X-Object-Meta-Only': 'me',
  });
  t.is(fresh.status, 201);
  const freshGet = await request(t, 'HEAD', '/dst/copy3');
  t.is(freshGet.headers.get('x-object-meta-color'), null);
  t.is(freshGet.headers.get('x-object-meta-only'), 'me');
  t.is(freshGet.headers.get('content-type'), 'text/x-source');
});

test('copies across accounts with Destination-Account and X-Copy-From-Account', async (t) => {
  const other = await t.context.cluster.auth('test2:tester2', 'testing2');
  // test2's user may write its own account and read ours once the container allows it.
  await request(t, 'POST', '/src', { 'X-Container-Read': 'test2:tester2' });
  await request(t, 'PUT', '/incoming', {}, undefined, other);
  const put = await request(
    t,
    'PUT',
    '/incoming/from-test',
    { 'X-Copy-From': 'src/obj', 'X-Copy-From-Account': 'AUTH_test' },
    '',
    other,
  );
  t.is(put.status, 201, put.body.toString());
  t.is(put.headers.get('x-copied-from-account'), 'AUTH_test');
  t.is((await request(t, 'GET', '/incoming/from-test', {}, undefined, other)).body.toString(), 'source body');
  // The owner of AUTH_test cannot write into test2's account: 403 from the destination PUT.
  const denied = await request(t, 'COPY', '/src/obj', {
    Destination: 'incoming/nope',
    'Destination-Account': 'AUTH_test2',
  });
  t.is(denied.status, 403);
});

test('large objects are copied flattened, or as manifests with multipart-manifest=get', async (t) => {
  await request(t, 'PUT', '/src/seg1', {}, 'hello ');
  await request(t, 'PUT', '/src/seg2', {}, 'world');
  const manifest = JSON.stringify([{ path: '/src/seg1' }, { path: '/src/seg2' }]);
  t.is((await request(t, 'PUT', '/src/slo?multipart-manifest=put', {}, manifest)).status, 201);
  const flat = await request(t, 'COPY', '/src/slo', { Destination: 'dst/flat' });
  t.is(flat.status, 201);
  const flatGet = await request(t, 'GET', '/dst/flat');
  t.is(flatGet.body.toString(), 'hello world');
  t.is(flatGet.headers.get('x-static-large-object'), null);
  t.is(flatGet.headers.get('etag'), md5('hello world'));
  const asManifest = await request(t, 'COPY', '/src/slo?multipart-manifest=get', { Destination: 'dst/slo' });
  t.is(asManifest.status, 201, asManifest.body.toString());
  const sloGet = await request(t, 'GET', '/dst/slo');
  t.is(sloGet.body.toString(), 'hello world');
  t.is(sloGet.headers.get('x-static-large-object'), 'True');
  await request(t, 'PUT', '/src/dlo', { 'X-Object-Manifest': 'src/seg' }, '');
  const dloFlat = await request(t, 'PUT', '/dst/dloflat', { 'X-Copy-From': 'src/dlo' });
  t.is(dloFlat.status, 201);
  t.is((await request(t, 'GET', '/dst/dloflat')).body.toString(), 'hello world');
  const dloManifest = await request(t, 'PUT', '/dst/dlo?multipart-manifest=get', { 'X-Copy-From': 'src/dlo' });
  t.is(dloManifest.status, 201);
  const dloHead = await request(t, 'HEAD', '/dst/dlo?multipart-manifest=get');
  t.is(dloHead.headers.get('x-object-manifest'), 'src/seg');
  t.is((await request(t, 'GET', '/dst/dlo')).body.toString(), 'hello world');
});

test("Swift's errors", async (t) => {
  const noDestination = await request(t, 'COPY', '/src/obj');
  t.is(noDestination.status, 412);
  t.is(noDestination.body.toString(), 'Destination header required');
  const badDestination = await request(t, 'COPY', '/src/obj', { Destination: 'just-a-container' });
  t.is(badDestination.status, 412);
  t.is(badDestination.body.toString(), 'Destination header must be of the form <container name>/<object name>');
  const badFrom = await request(t, 'PUT', '/dst/x', { 'X-Copy-From': 'nothing' });
  t.is(badFrom.status, 412);
  t.is(badFrom.body.toString(), 'X-Copy-From header must be of the form <container name>/<object name>');
  const withBody = await request(t, 'PUT', '/dst/x', { 'X-Copy-From': 'src/obj' }, 'body');
  t.is(withBody.status, 400);
  t.is(withBody.body.toString(), 'Copy requests require a zero byte body');
  t.is((await request(t, 'COPY', '/src/missing', { Destination: 'dst/x' })).status, 404);
  t.is((await request(t, 'PUT', '/dst/x', { 'X-Copy-From': 'src/obj', 'If-Match': '"nope"' })).status, 412);
});
