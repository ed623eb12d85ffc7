/**
 * Object versioning with X-Versions-Enabled over a real cluster, from the examples of Swift's
 * object_versioning documentation and functional tests: enabling and disabling, version ids on
 * PUT/DELETE/GET, `?versions` listings (JSON as Swift writes it, XML, plain; paging with marker + version_marker,
 * prefix, delimiter, reverse), `?version-id` reads and deletes, delete markers, `null` versions,
 * a hidden versions container that account listings do not show, and a versioned SLO manifest.
 */
import anyTest, { type TestFn } from 'ava';
import { startCluster, type AuthResult, type TestCluster } from '../helpers/cluster.js';
import { md5, swiftRequest, type Reply } from '../helpers/swift-http.js';

interface Context {
  cluster: TestCluster;
  auth: AuthResult;
}

interface VersionRow {
  name: string;
  bytes: number;
  hash: string;
  content_type: string;
  last_modified: string;
  version_id: string;
  is_latest: boolean;
  subdir?: string;
}

const test = anyTest.serial as TestFn<Context>;
const DELETE_MARKER = 'application/x-deleted;swift_versions_deleted=1';

test.before(async (t) => {
  const cluster = await startCluster({ storageNodes: 3 });
  t.context = { cluster, auth: await cluster.auth() };
});

test.after.always(async (t) => {
  await t.context.cluster?.stop();
});

function call(t: { context: Context }, method: string, path: string, headers?: Record<string, string>, body?: string) {
  return swiftRequest(t.context.auth, method, path, headers, body);
}

async function versions(t: { context: Context }, container: string, query = ''): Promise<VersionRow[]> {
  const reply = await call(t, 'GET', `/${container}?versions&format=json${query}`);
  if (reply.status !== 200) throw new Error(`versions listing answered ${reply.status}: ${reply.body.toString()}`);
  return JSON.parse(reply.body.toString('utf8')) as VersionRow[];
}

function versionId(reply: Reply): string {
  const id = reply.headers.get('x-object-version-id');
  if (id === null) throw new Error(`no X-Object-Version-Id (status ${reply.status})`);
  return id;
}

test('/info announces object_versioning; enabling, disabling and refused combinations', async (t) => {
  const info = (await (await fetch(new URL('/info', t.context.auth.storageUrl))).json()) as Record<string, unknown>;
  t.truthy(info.object_versioning);

  t.is((await call(t, 'PUT', '/plain')).status, 201);
  t.is((await call(t, 'HEAD', '/plain')).headers.get('x-versions-enabled'), null);

  t.is((await call(t, 'PUT', '/docs', { 'X-Versions-Enabled': 'true' })).status, 201);
  t.is((await call(t, 'HEAD', '/docs')).headers.get('x-versions-enabled'), 'True');
  t.is((await call(t, 'POST', '/docs', { 'X-Versions-Enabled': 'false' })).status, 204);
  t.is((await call(t, 'GET', '/docs')).headers.get('x-versions-enabled'), 'False');
  t.is((await call(t, 'POST', '/docs', { 'X-Versions-Enabled': 'true' })).status, 204);
  t.is((await call(t, 'HEAD', '/docs')).headers.get('x-versions-enabled'), 'True');

  // Not together with the legacy modes, nor on a container that uses them.
  t.is((await call(t, 'PUT', '/both', { 'X-Versions-Enabled': 'true', 'X-Versions-Location': 'x' })).status, 400);
  t.is((await call(t, 'PUT', '/both', { 'X-Versions-Enabled': 'true', 'X-History-Location': 'x' })).status, 400);
  t.is((await call(t, 'PUT', '/legacy', { 'X-History-Location': 'plain' })).status, 201);
  t.is((await call(t, 'POST', '/legacy', { 'X-Versions-Enabled': 'true' })).status, 400);
  t.is((await call(t, 'POST', '/docs', { 'X-Versions-Location': 'plain' })).status, 400);
  t.is((await call(t, 'HEAD', '/docs')).headers.get('x-versions-location'), null);

  // A non-owner may not switch it (test2 has no rights on this account).
  const other = await t.context.cluster.auth('test2:tester2', 'testing2');
  const denied = await swiftRequest({ token: other.token, storageUrl: t.context.auth.storageUrl }, 'POST', '/docs', {
    'X-Versions-Enabled': 'false',
  });
  t.is(denied.status, 403);
  t.is((await call(t, 'HEAD', '/docs')).headers.get('x-versions-enabled'), 'True');
});

test('overwrites keep versions: ids, ?versions listing, ?version-id reads', async (t) => {
  const put1 = await call(
    t,
    'PUT',
    '/docs/obj',
    { 'Content-Type': 'text/jibberish01', 'X-Object-Meta-N': '1' },
    'aaaaa',
  );
  t.is(put1.status, 201);
  const v1 = versionId(put1);
  t.regex(v1, /^\d{10}\.\d{5}$/);
  const put2 = await call(
    t,
    'PUT',
    '/docs/obj',
    { 'Content-Type': 'text/jibberish02', 'X-Object-Meta-Foo': 'Bar' },
    'bbbbbb',
  );
  const v2 = versionId(put2);
  t.not(v1, v2);
  const put3 = await call(t, 'PUT', '/docs/obj', { 'Content-Type': 'text/jibberish03' }, 'ccccccc');
  const v3 = versionId(put3);

  const current = await call(t, 'GET', '/docs/obj');
  t.is(current.body.toString(), 'ccccccc');
  t.is(current.headers.get('x-object-version-id'), v3);
  t.is(current.headers.get('content-location'), `/v1/AUTH_test/docs/obj?version-id=${v3}`);

  const listing = await versions(t, 'docs');
  t.deepEqual(
    listing.map(({ name, version_id, is_latest, content_type, bytes, hash }) => ({
      name,
      version_id,
      is_latest,
      content_type,
      bytes,
      hash,
    })),
    [
      {
        name: 'obj',
        version_id: v3,
        is_latest: true,
        content_type: 'text/jibberish03',
        bytes: 7,
        hash: md5('ccccccc'),
      },
      {
        name: 'obj',
        version_id: v2,
        is_latest: false,
        content_type: 'text/jibberish02',
        bytes: 6,
        hash: md5('bbbbbb'),
      },
      { name: 'obj', version_id: v1, is_latest: false, content_type: 'text/jibberish01', bytes: 5, hash: md5('aaaaa') },
    ],
  );
  // A plain listing shows the current object only; the container counts only it.
  t.is((await call(t, 'GET', '/docs')).body.toString(), 'obj\n');
  t.is((await call(t, 'HEAD', '/docs')).headers.get('x-container-object-count'), '1');

  const old = await call(t, 'GET', `/docs/obj?version-id=${v1}`);
  t.is(old.status, 200);
  t.is(old.body.toString(), 'aaaaa');
  t.is(old.headers.get('content-type'), 'text/jibberish01');
  t.is(old.headers.get('x-object-meta-n'), '1');
  t.is(old.headers.get('x-object-meta-foo'), null, "the newer version's metadata did not leak");
  t.is(old.headers.get('x-object-version-id'), v1);
  const head = await call(t, 'HEAD', `/docs/obj?version-id=${v2}`);
  t.is(head.status, 200);
  t.is(head.headers.get('content-length'), '6');
  t.is((await call(t, 'GET', `/docs/obj?version-id=${v3}`)).body.toString(), 'ccccccc', 'the current version by id');
  t.is((await call(t, 'GET', '/docs/obj?version-id=1000000000.00000')).status, 404);
  t.is((await call(t, 'GET', '/docs/obj?version-id=nonsense')).status, 400);
  t.is((await call(t, 'PUT', `/docs/obj?version-id=${v1}`, {}, 'x')).status, 400);
  t.is((await call(t, 'POST', `/docs/obj?version-id=${v1}`)).status, 400);

  // POST changes metadata without making a version.
  t.is((await call(t, 'POST', '/docs/obj', { 'X-Object-Meta-Fu': 'baz' })).status, 202);
  t.is((await versions(t, 'docs')).length, 3);
  const posted = await call(t, 'HEAD', '/docs/obj');
  t.is(posted.headers.get('x-object-meta-fu'), 'baz');
  t.is(posted.headers.get('x-object-version-id'), v3);

  // Swift lists versions in JSON only: any other format, named or preferred, is 406 (Swift 2.30's body).
  for (const [query, headers] of [
    ['&format=xml', {}],
    ['&format=plain', {}],
    ['&format=txt', {}],
    ['', { Accept: 'text/plain' }],
    ['', { Accept: 'application/xml' }],
  ] as const) {
    const refused = await call(t, 'GET', `/docs?versions${query}`, headers);
    t.is(refused.status, 406, `${query} ${JSON.stringify(headers)}`);
    t.is(
      refused.body.toString(),
      '<html><h1>Not Acceptable</h1><p>The resource is not available in a format acceptable to your browser.</p></html>',
    );
  }
  // The account and container servers' X-Put-Timestamp stays in the proxy, as in Swift 2.30.
  for (const path of ['', '/docs', '/docs?versions']) {
    const read = await call(t, 'GET', path);
    t.is(read.headers.get('x-put-timestamp'), null, `GET ${path}`);
    t.truthy(read.headers.get('x-timestamp'), `GET ${path}`);
  }
  t.is((await call(t, 'HEAD', '/docs')).headers.get('x-put-timestamp'), null);
  // With no format asked for, Swift answers JSON (it lists versions in JSON only).
  const unnamed = await call(t, 'GET', '/docs?versions');
  t.is(unnamed.headers.get('content-type'), 'application/json; charset=utf-8');
  t.is((JSON.parse(unnamed.body.toString()) as VersionRow[]).length, 3);

  // Version-aware requests are for owners: a read ACL does not reach them.
  t.is((await call(t, 'POST', '/docs', { 'X-Container-Read': 'test2:tester2' })).status, 204);
  const other = await t.context.cluster.auth('test2:tester2', 'testing2');
  const asOther = { token: other.token, storageUrl: t.context.auth.storageUrl };
  t.is((await swiftRequest(asOther, 'GET', '/docs/obj')).status, 200);
  t.is((await swiftRequest(asOther, 'GET', `/docs/obj?version-id=${v1}`)).status, 403);
  t.is((await call(t, 'POST', '/docs', { 'X-Container-Read': '' })).status, 204);
});

test('DELETE writes delete markers; version deletes; null versions', async (t) => {
  const v1 = versionId(await call(t, 'PUT', '/docs/del', {}, 'one'));
  const deleted = await call(t, 'DELETE', '/docs/del');
  t.is(deleted.status, 204);
  const marker = versionId(deleted);
  t.not(marker, v1);
  t.is((await call(t, 'GET', '/docs/del')).status, 404);
  t.is((await call(t, 'GET', '/docs')).body.toString().split('\n').includes('del'), false);

  // Deleting again answers 404 and still leaves a marker (Swift).
  const again = await call(t, 'DELETE', '/docs/del');
  t.is(again.status, 404);
  const marker2 = versionId(again);

  let rows = await versions(t, 'docs', '&prefix=del');
  t.deepEqual(
    rows.map((row) => [row.version_id, row.content_type, row.is_latest]),
    [
      [marker2, DELETE_MARKER, true],
      [marker, DELETE_MARKER, false],
      [v1, 'text/plain;charset=UTF-8', false],
    ],
  );
  const readMarker = await call(t, 'GET', `/docs/del?version-id=${marker}`);
  t.is(readMarker.status, 404);
  t.is(readMarker.headers.get('x-object-version-id'), marker);
  t.is((await call(t, 'GET', `/docs/del?version-id=${v1}`)).body.toString(), 'one');

  // Deleting markers by id removes them only.
  t.is((await call(t, 'DELETE', `/docs/del?version-id=${marker2}`)).status, 204);
  t.is((await call(t, 'DELETE', `/docs/del?version-id=${marker}`)).status, 204);
  rows = await versions(t, 'docs', '&prefix=del');
  t.deepEqual(
    rows.map((row) => [row.version_id, row.is_latest]),
    [[v1, false]],
  );

  // Deleting the current version by id removes it without a marker; nothing is current then (Swift).
  const w1 = versionId(await call(t, 'PUT', '/docs/cur', {}, 'first'));
  const w2 = versionId(await call(t, 'PUT', '/docs/cur', {}, 'second'));
  const removed = await call(t, 'DELETE', `/docs/cur?version-id=${w2}`);
  t.is(removed.status, 204);
  t.is(removed.headers.get('x-object-version-id'), w2);
  t.is((await call(t, 'GET', '/docs/cur')).status, 404);
  rows = await versions(t, 'docs', '&prefix=cur');
  t.deepEqual(
    rows.map((row) => row.version_id),
    [w1],
  );
  t.is((await call(t, 'DELETE', `/docs/cur?version-id=${w1}`)).status, 204);
  t.deepEqual(await versions(t, 'docs', '&prefix=cur'), []);

  // An object written before versioning was enabled is the null version; overwriting keeps it.
  t.is((await call(t, 'PUT', '/later')).status, 201);
  t.is((await call(t, 'PUT', '/later/o', {}, 'before')).status, 201);
  t.is((await call(t, 'POST', '/later', { 'X-Versions-Enabled': 'true' })).status, 204);
  t.is((await call(t, 'HEAD', '/later/o')).headers.get('x-object-version-id'), 'null');
  t.deepEqual(
    (await versions(t, 'later')).map((row) => row.version_id),
    ['null'],
  );
  t.is((await call(t, 'GET', '/later/o?version-id=null')).body.toString(), 'before');
  const after = versionId(await call(t, 'PUT', '/later/o', {}, 'after'));
  t.is((await call(t, 'GET', '/later/o?version-id=null')).status, 404, 'the current one has a real id now');
  rows = await versions(t, 'later');
  t.is(rows.length, 2);
  t.is(rows[0]?.version_id, after);
  const archivedNull = rows[1]?.version_id ?? '';
  t.regex(archivedNull, /^\d{10}\.\d{5}$/, 'the null version was archived under its timestamp');
  t.is((await call(t, 'GET', `/later/o?version-id=${archivedNull}`)).body.toString(), 'before');

  // Disabling keeps versions; new writes are null versions, the versioned one is kept.
  t.is((await call(t, 'POST', '/later', { 'X-Versions-Enabled': 'false' })).status, 204);
  const plainPut = await call(t, 'PUT', '/later/o', {}, 'unversioned');
  t.is(plainPut.status, 201);
  t.is(plainPut.headers.get('x-object-version-id'), null);
  rows = await versions(t, 'later');
  t.deepEqual(
    rows.map((row) => [row.version_id, row.is_latest]),
    [
      ['null', true],
      [after, false],
      [archivedNull, false],
    ],
  );
  t.is((await call(t, 'GET', `/later/o?version-id=${after}`)).body.toString(), 'after');
});

test('?versions paging: limit, marker + version_marker, prefix, delimiter, reverse', async (t) => {
  t.is((await call(t, 'PUT', '/paged', { 'X-Versions-Enabled': 'true' })).status, 201);
  const ids: Record<string, string[]> = { a: [], 'dir/b': [], 'dir/c': [] };
  for (const name of Object.keys(ids)) {
    for (const body of ['1', '22', '333'])
      ids[name]?.unshift(versionId(await call(t, 'PUT', `/paged/${name}`, {}, body)));
  }
  const all = await versions(t, 'paged');
  t.deepEqual(
    all.map((row) => `${row.name}@${row.version_id}`),
    Object.entries(ids).flatMap(([name, list]) => list.map((id) => `${name}@${id}`)),
  );
  // Page through two rows at a time with marker + version_marker.
  const paged: string[] = [];
  let query = '&limit=2';
  for (let page = 0; page < 10; page += 1) {
    const rows = await versions(t, 'paged', query);
    if (rows.length === 0) break;
    paged.push(...rows.map((row) => `${row.name}@${row.version_id}`));
    const last = rows[rows.length - 1];
    query = `&limit=2&marker=${encodeURIComponent(last?.name ?? '')}&version_marker=${last?.version_id ?? ''}`;
  }
  t.deepEqual(
    paged,
    all.map((row) => `${row.name}@${row.version_id}`),
  );
  // marker alone skips every version of that name.
  t.deepEqual(
    (await versions(t, 'paged', '&marker=a')).map((row) => row.name),
    ['dir/b', 'dir/b', 'dir/b', 'dir/c', 'dir/c', 'dir/c'],
  );
  t.is((await call(t, 'GET', '/paged?versions&version_marker=1')).status, 400);
  t.is((await call(t, 'GET', '/paged?versions&delimiter=.')).status, 400);
  t.deepEqual(
    (await versions(t, 'paged', '&prefix=dir/c')).map((row) => row.version_id),
    ids['dir/c'],
  );
  t.deepEqual(
    (await versions(t, 'paged', '&delimiter=/')).map((row) => row.subdir ?? row.name),
    ['a', 'a', 'a', 'dir/'],
  );
  t.deepEqual(
    (await versions(t, 'paged', '&reverse=on')).map((row) => `${row.name}@${row.version_id}`),
    all.map((row) => `${row.name}@${row.version_id}`).reverse(),
  );
});

test('the hidden container: not in account listings or counts; deleting the container', async (t) => {
  const before = await call(t, 'GET', '?format=json');
  const names = (JSON.parse(before.body.toString()) as { name: string }[]).map((row) => row.name);
  t.deepEqual(names, ['docs', 'later', 'legacy', 'paged', 'plain']);
  const head = await call(t, 'HEAD', '');
  t.is(head.headers.get('x-account-container-count'), '5');
  t.deepEqual((await call(t, 'GET', '?reverse=on')).body.toString().split('\n').filter(Boolean), [
    'plain',
    'paged',
    'legacy',
    'later',
    'docs',
  ]);
  // Clients cannot reach reserved names.
  t.is((await call(t, 'GET', `/${encodeURIComponent('\u0001versions\u0001docs')}`)).status, 412);
  t.is((await call(t, 'PUT', `/${encodeURIComponent('\u0001mine')}`)).status, 412);
  // Bytes used count the versions too (Swift).
  const paged = await call(t, 'HEAD', '/paged');
  t.is(paged.headers.get('x-container-bytes-used'), String(3 * (1 + 2 + 3)));

  // Not while versions remain; once they are gone, the hidden container goes too.
  for (const name of ['a', 'dir/b', 'dir/c']) t.is((await call(t, 'DELETE', `/paged/${name}`)).status, 204);
  t.is((await call(t, 'DELETE', '/paged')).status, 409);
  for (const row of await versions(t, 'paged')) {
    t.is((await call(t, 'DELETE', `/paged/${row.name}?version-id=${row.version_id}`)).status, 204);
  }
  t.is((await call(t, 'DELETE', '/paged')).status, 204);
  t.is((await call(t, 'HEAD', '')).headers.get('x-account-container-count'), '4');
  // Re-creating it starts with no versions.
  t.is((await call(t, 'PUT', '/paged', { 'X-Versions-Enabled': 'true' })).status, 201);
  t.deepEqual(await versions(t, 'paged'), []);
});

test('a versioned SLO keeps its manifest as the old version', async (t) => {
  t.is((await call(t, 'PUT', '/segments')).status, 201);
  const one = 'a'.repeat(1024 * 1024);
  const two = 'b'.repeat(10);
  t.is((await call(t, 'PUT', '/segments/1', {}, one)).status, 201);
  t.is((await call(t, 'PUT', '/segments/2', {}, two)).status, 201);
  const manifest = JSON.stringify([{ path: '/segments/1' }, { path: '/segments/2' }]);
  const put = await call(t, 'PUT', '/docs/big?multipart-manifest=put', {}, manifest);
  t.is(put.status, 201);
  const sloVersion = versionId(put);
  t.is((await call(t, 'GET', '/docs/big')).body.length, one.length + two.length);
  versionId(await call(t, 'PUT', '/docs/big', {}, 'small now'));
  const old = await call(t, 'GET', `/docs/big?version-id=${sloVersion}`);
  t.is(old.status, 200);
  t.is(old.body.toString(), one + two, 'the old version is still the large object');
  t.is(old.headers.get('x-static-large-object'), 'True');
  const raw = await call(t, 'GET', `/docs/big?version-id=${sloVersion}&multipart-manifest=get`);
  t.is((JSON.parse(raw.body.toString()) as unknown[]).length, 2, 'kept as a manifest, not flattened');
  const row = (await versions(t, 'docs', '&prefix=big')).find((entry) => entry.version_id === sloVersion);
  t.is(row?.bytes, one.length + two.length);
});

test('COPY makes a version; an overwritten symlink is kept as the link', async (t) => {
  t.is((await call(t, 'PUT', '/docs/target', { 'Content-Type': 'text/jibberish01' }, 'target data')).status, 201);
  const link = await call(t, 'PUT', '/docs/link', { 'X-Symlink-Target': 'docs/target' }, '');
  t.is(link.status, 201);
  const linkVersion = versionId(link);
  t.is((await call(t, 'GET', '/docs/link')).body.toString(), 'target data');
  versionId(await call(t, 'PUT', '/docs/link', {}, 'this is not a symlink'));
  const old = await call(t, 'GET', `/docs/link?version-id=${linkVersion}`);
  t.is(old.body.toString(), 'target data', 'the old version still links to its target');
  t.is(old.headers.get('content-type'), 'text/jibberish01');

  t.is((await call(t, 'PUT', '/src')).status, 201);
  t.is((await call(t, 'PUT', '/src/a', {}, 'copied')).status, 201);
  const copied = await call(t, 'COPY', '/src/a', { Destination: 'docs/link' });
  t.is(copied.status, 201);
  t.truthy(copied.headers.get('x-object-version-id'));
  t.is((await call(t, 'GET', '/docs/link')).body.toString(), 'copied');
  t.deepEqual(
    (await versions(t, 'docs', '&prefix=link')).map((row) => row.bytes),
    [6, 21, 0],
  );
  // Failed writes leave the history as it was.
  t.is((await call(t, 'PUT', '/docs/link', { ETag: md5('other') }, 'mismatch')).status, 422);
  t.is((await call(t, 'PUT', '/docs/link', { 'If-None-Match': '*' }, 'exists')).status, 412);
  t.deepEqual(
    (await versions(t, 'docs', '&prefix=link')).map((row) => row.bytes),
    [6, 21, 0],
  );
  t.is((await call(t, 'GET', '/docs/link')).body.toString(), 'copied');
});

test("?versions JSON has Swift's bytes: json.dumps spacing, \\u escapes, is_latest before version_id", async (t) => {
  t.is((await call(t, 'PUT', '/spacing', { 'X-Versions-Enabled': 'true' })).status, 201);
  const first = versionId(await call(t, 'PUT', '/spacing/o%C3%A9', { 'Content-Type': 'text/plain' }, 'v1'));
  const marker = versionId(await call(t, 'DELETE', '/spacing/o%C3%A9'));
  const body = (await call(t, 'GET', '/spacing?versions&format=json')).body.toString();
  const modified = (JSON.parse(body) as VersionRow[]).map((row) => row.last_modified);
  t.is(
    body,
    `[{"bytes": 0, "hash": "d41d8cd98f00b204e9800998ecf8427e", "name": "o\\u00e9", "content_type": "${DELETE_MARKER}", ` +
      `"last_modified": "${modified[0]}", "is_latest": true, "version_id": "${marker}"}, ` +
      `{"bytes": 2, "hash": "${md5('v1')}", "name": "o\\u00e9", "content_type": "text/plain", ` +
      `"last_modified": "${modified[1]}", "is_latest": false, "version_id": "${first}"}]`,
  );
  // A null version (written before versioning) is the container's row with version_id first, as Swift's.
  t.is((await call(t, 'PUT', '/spacing-null')).status, 201);
  t.is((await call(t, 'PUT', '/spacing-null/n', {}, 'x')).status, 201);
  t.is((await call(t, 'POST', '/spacing-null', { 'X-Versions-Enabled': 'true' })).status, 204);
  const nullBody = (await call(t, 'GET', '/spacing-null?versions')).body.toString();
  t.regex(
    nullBody,
    /^\[\{"bytes": 1, "hash": "[0-9a-f]{32}", "name": "n", .*, "version_id": "null", "is_latest": true\}\]$/,
  );
});
