/**
 * Static web over a real cluster, from Swift's staticweb documentation: a public container with
 * Web-Index, Web-Listings and Web-Error, read anonymously.
 */
import { clusterSuite } from '../helpers/cluster-suite.js';
import { swiftCaller } from '../helpers/swift-http.js';

const test = clusterSuite({ storageNodes: 3 }, 'nebula-staticweb-');

test('static web on a public container', async (t) => {
  const { cluster } = t.context;
  const user = await cluster.auth();
  const { token } = user;
  const call = swiftCaller(user, { anonymous: true, redirect: 'manual' });
  const auth = { 'X-Auth-Token': token };
  t.is(
    (
      await call('PUT', '/site', {
        ...auth,
        'X-Container-Read': '.r:*,.rlistings',
        'X-Container-Meta-Web-Index': 'index.html',
        'X-Container-Meta-Web-Error': 'error.html',
      })
    ).status,
    201,
  );
  for (const [name, body] of [
    ['index.html', '<h1>home</h1>'],
    ['404error.html', '<h1>missing</h1>'],
    ['docs/index.html', '<h1>docs</h1>'],
    ['files/a.txt', 'a'],
    ['files/sub/b.txt', 'b'],
  ] as const) {
    t.is((await call('PUT', `/site/${name}`, { ...auth, 'Content-Type': 'text/html' }, body)).status, 201);
  }
  const redirect = await call('GET', '/site');
  t.is(redirect.status, 301);
  t.regex(redirect.headers.get('location') ?? '', /\/site\/$/);
  t.is((await call('GET', '/site/')).body, '<h1>home</h1>');
  t.is((await call('GET', '/site/docs/')).body, '<h1>docs</h1>');
  const missing = await call('GET', '/site/nothing.html');
  t.is(missing.status, 404);
  t.is(missing.body, '<h1>missing</h1>');
  t.is((await call('GET', '/site/files/')).status, 404, 'no index, no listings');
  t.is((await call('POST', '/site', { ...auth, 'X-Container-Meta-Web-Listings': 'true' })).status, 204);
  const list = await call('GET', '/site/files/');
  t.is(list.status, 200);
  t.regex(list.body, /Listing of .*files\//);
  t.regex(list.body, /href="a.txt"/);
  t.regex(list.body, /href="sub\/"/);
  // Authenticated requests see the plain API unless they ask for web mode.
  t.is((await call('GET', '/site/', auth)).status, 200);
  t.regex((await call('GET', '/site/', auth)).body, /index.html/);
  t.is((await call('GET', '/site/', { ...auth, 'X-Web-Mode': 'true' })).body, '<h1>home</h1>');
});
