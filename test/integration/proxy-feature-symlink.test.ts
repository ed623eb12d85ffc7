/**
 * Symlinks over a real cluster, from Swift's symlink documentation: dynamic links (GET/HEAD
 * follow, Content-Location), ?symlink=get, cross-account targets, static links
 * (X-Symlink-Target-Etag checked at PUT and at GET), the loop bound (409), POST answering 307,
 * links to SLOs, and the swift CLI reading through a link.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { clusterSuite } from '../helpers/cluster-suite.js';
import { swiftCaller } from '../helpers/swift-http.js';

const test = clusterSuite({ storageNodes: 3 }, 'nebula-symlink-');

const run = promisify(execFile);

test('symlinks', async (t) => {
  const { cluster } = t.context;
  const user = await cluster.auth();
  const { storageUrl } = user;
  const call = swiftCaller(user, { redirect: 'manual' });
  const info = (await (await fetch(new URL('/info', storageUrl))).json()) as Record<string, { symloop_max?: number }>;
  t.is(info.symlink?.symloop_max, 2);

  t.is((await call('PUT', '/c')).status, 201);
  const put = await call('PUT', '/c/target', { 'Content-Type': 'text/x-demo', 'X-Object-Meta-Color': 'blue' }, 'hello');
  t.is(put.status, 201);
  const etag = put.headers.get('etag') ?? '';

  // Dynamic link.
  t.is((await call('PUT', '/c/link', { 'X-Symlink-Target': 'c/target' }, 'body')).status, 400, 'body refused');
  t.is((await call('PUT', '/c/link', { 'X-Symlink-Target': '/c/target' })).status, 412, 'leading slash refused');
  t.is((await call('PUT', '/c/link', { 'X-Symlink-Target': 'c/link' })).status, 400, 'itself');
  t.is((await call('PUT', '/c/link', { 'X-Symlink-Target': 'c/target' })).status, 201);
  const got = await call('GET', '/c/link');
  t.is(got.status, 200);
  t.is(got.body, 'hello');
  t.is(got.headers.get('content-location'), `/v1/AUTH_test/c/target`);
  t.is(got.headers.get('x-object-meta-color'), 'blue');
  t.is(got.headers.get('content-type'), 'text/x-demo');
  const ranged = await call('GET', '/c/link', { Range: 'bytes=1-2' });
  t.is(ranged.status, 206);
  t.is(ranged.body, 'el');
  const head = await call('HEAD', '/c/link');
  t.is(head.status, 200);
  t.is(head.headers.get('content-length'), '5');
  const raw = await call('GET', '/c/link?symlink=get');
  t.is(raw.status, 200);
  t.is(raw.body, '');
  t.is(raw.headers.get('x-symlink-target'), 'c/target');
  t.is(raw.headers.get('content-type'), 'application/symlink');
  t.is((await call('GET', '/c/dangling-target-missing')).status, 404);
  t.is(
    (await call('PUT', '/c/dangling', { 'X-Symlink-Target': 'c/nothing-here' })).status,
    201,
    'dangling links are allowed',
  );
  t.is((await call('GET', '/c/dangling')).status, 404);

  // POST applies to the link and answers 307 to the target.
  const post = await call('POST', '/c/link', { 'X-Object-Meta-Note': 'on-link' });
  t.is(post.status, 307);
  t.is(post.headers.get('location'), '/v1/AUTH_test/c/target');
  t.is((await call('POST', '/c/link', { 'X-Symlink-Target': 'c/other' })).status, 400);

  // Chains: two links are followed, the third is a loop.
  t.is((await call('PUT', '/c/link2', { 'X-Symlink-Target': 'c/link' })).status, 201);
  t.is((await call('GET', '/c/link2')).body, 'hello');
  t.is((await call('PUT', '/c/link3', { 'X-Symlink-Target': 'c/link2' })).status, 201);
  const loop = await call('GET', '/c/link3');
  t.is(loop.status, 409);
  t.is(loop.body, 'Too many levels of symbolic links, maximum allowed is 2');
  t.is((await call('PUT', '/c/self-a', { 'X-Symlink-Target': 'c/self-b' })).status, 201);
  t.is((await call('PUT', '/c/self-b', { 'X-Symlink-Target': 'c/self-a' })).status, 201);
  t.is((await call('GET', '/c/self-a')).status, 409);

  // Static links.
  const wrong = await call('PUT', '/c/static', { 'X-Symlink-Target': 'c/target', 'X-Symlink-Target-Etag': 'abc' });
  t.is(wrong.status, 409);
  t.regex(wrong.body, /does not match X-Symlink-Target-Etag/);
  t.is((await call('PUT', '/c/static', { 'X-Symlink-Target': 'c/none', 'X-Symlink-Target-Etag': etag })).status, 409);
  const fixed = await call('PUT', '/c/static', { 'X-Symlink-Target': 'c/target', 'X-Symlink-Target-Etag': etag });
  t.is(fixed.status, 201);
  t.is((await call('GET', '/c/static')).body, 'hello');
  const staticRaw = await call('HEAD', '/c/static?symlink=get');
  t.is(staticRaw.headers.get('x-symlink-target-etag'), etag);
  t.is(staticRaw.headers.get('x-symlink-target-bytes'), '5');
  t.is((await call('PUT', '/c/target', {}, 'changed')).status, 201);
  t.is((await call('GET', '/c/static')).status, 409, 'the static target changed');
  t.is((await call('GET', '/c/link')).body, 'changed', 'the dynamic link follows');

  // Cross-account targets need the client's access there.
  t.is(
    (await call('PUT', '/c/other-acct', { 'X-Symlink-Target': 'c/o', 'X-Symlink-Target-Account': 'AUTH_test2' }))
      .status,
    201,
  );
  t.is((await call('GET', '/c/other-acct')).status, 403);

  // A link to an SLO answers with the assembled object.
  t.is((await call('PUT', '/c/seg1', {}, 'a'.repeat(10))).status, 201);
  t.is((await call('PUT', '/c/seg2', {}, 'b'.repeat(10))).status, 201);
  const manifest = JSON.stringify([{ path: '/c/seg1' }, { path: '/c/seg2' }]);
  t.is((await call('PUT', '/c/slo?multipart-manifest=put', {}, manifest)).status, 201);
  t.is((await call('PUT', '/c/slo-link', { 'X-Symlink-Target': 'c/slo' })).status, 201);
  const slo = await call('GET', '/c/slo-link');
  t.is(slo.status, 200);
  t.is(slo.body, 'a'.repeat(10) + 'b'.repeat(10));
  const manifestEtag = (await call('HEAD', '/c/slo?multipart-manifest=get')).headers.get('etag') ?? '';
  t.is(
    (await call('PUT', '/c/slo-static', { 'X-Symlink-Target': 'c/slo', 'X-Symlink-Target-Etag': manifestEtag })).status,
    201,
  );
  t.is((await call('HEAD', '/c/slo-static?symlink=get')).headers.get('x-symlink-target-bytes'), '20');
  t.is((await call('GET', '/c/slo-static')).body, 'a'.repeat(10) + 'b'.repeat(10));

  // A copy of a link copies the target's content.
  t.is((await call('COPY', '/c/link', { Destination: 'c/copied' })).status, 201);
  t.is((await call('GET', '/c/copied?symlink=get')).body, 'changed');

  // The swift CLI reads through a link.
  const env = { ...process.env, ...cluster.swiftEnv() };
  const { stdout } = await run('swift', ['download', 'c', 'link', '-o', '-'], { env, timeout: 30_000 });
  t.is(stdout, 'changed');
});
