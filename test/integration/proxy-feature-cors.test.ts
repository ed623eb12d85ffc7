/**
 * CORS over a real cluster, from Swift's CORS documentation: preflight OPTIONS answered from the
 * container's X-Container-Meta-Access-Control-* metadata (401 for other origins), and
 * Access-Control-Allow-Origin / -Expose-Headers on actual requests.
 */
import { clusterSuite } from '../helpers/cluster-suite.js';
import { swiftCaller } from '../helpers/swift-http.js';

const test = clusterSuite({ storageNodes: 3 }, 'nebula-cors-');

test('CORS preflight and actual requests', async (t) => {
  const { cluster } = t.context;
  const user = await cluster.auth();
  const { token } = user;
  const call = swiftCaller(user, { anonymous: true });
  const auth = { 'X-Auth-Token': token };
  t.is(
    (
      await call('PUT', '/web', {
        ...auth,
        'X-Container-Meta-Access-Control-Allow-Origin': 'http://foo.example http://bar.example',
        'X-Container-Meta-Access-Control-Max-Age': '600',
        'X-Container-Meta-Access-Control-Expose-Headers': 'X-Custom-Thing',
        'X-Container-Read': '.r:*',
      })
    ).status,
    201,
  );
  t.is((await call('PUT', '/web/page', { ...auth, 'X-Object-Meta-Color': 'red' }, 'hi')).status, 201);

  const plain = await call('OPTIONS', '/web/page');
  t.is(plain.status, 200);
  t.regex(plain.headers.get('allow') ?? '', /GET/);

  const ok = await call('OPTIONS', '/web/page', {
    Origin: 'http://foo.example',
    'Access-Control-Request-Method': 'GET',
    'Access-Control-Request-Headers': 'x-auth-token, content-type',
  });
  t.is(ok.status, 200);
  t.is(ok.headers.get('access-control-allow-origin'), 'http://foo.example');
  t.is(ok.headers.get('access-control-max-age'), '600');
  t.regex(ok.headers.get('access-control-allow-methods') ?? '', /PUT/);
  t.is(ok.headers.get('access-control-allow-headers'), 'x-auth-token, content-type');

  const other = await call('OPTIONS', '/web/page', {
    Origin: 'http://evil.example',
    'Access-Control-Request-Method': 'GET',
  });
  t.is(other.status, 401);
  t.is(other.headers.get('access-control-allow-origin'), null);
  t.is((await call('OPTIONS', '/web/page', { Origin: 'http://foo.example' })).status, 401, 'no request method');
  t.is(
    (await call('OPTIONS', '/web/page', { Origin: 'http://foo.example', 'Access-Control-Request-Method': 'TRACE' }))
      .status,
    401,
  );

  const get = await call('GET', '/web/page', { Origin: 'http://bar.example' });
  t.is(get.status, 200);
  t.is(get.headers.get('access-control-allow-origin'), 'http://bar.example');
  const exposed = (get.headers.get('access-control-expose-headers') ?? '').split(', ');
  for (const name of ['etag', 'x-timestamp', 'x-object-meta-color', 'x-custom-thing'])
    t.true(exposed.includes(name), name);
  const evil = await call('GET', '/web/page', { Origin: 'http://evil.example' });
  t.is(evil.headers.get('access-control-allow-origin'), null);

  // `*` allows any origin; an anonymous request sees `*`, an authenticated one its origin.
  t.is((await call('POST', '/web', { ...auth, 'X-Container-Meta-Access-Control-Allow-Origin': '*' })).status, 204);
  await new Promise((resolve) => setTimeout(resolve, 100));
  const star = await call('OPTIONS', '/web/page', {
    Origin: 'http://any.example',
    'Access-Control-Request-Method': 'PUT',
  });
  t.is(star.status, 200);
  t.is(star.headers.get('access-control-allow-origin'), '*');
  t.is(
    (await call('GET', '/web/page', { Origin: 'http://any.example' })).headers.get('access-control-allow-origin'),
    '*',
  );
  t.is(
    (await call('GET', '/web/page', { ...auth, Origin: 'http://any.example' })).headers.get(
      'access-control-allow-origin',
    ),
    'http://any.example',
  );
});
