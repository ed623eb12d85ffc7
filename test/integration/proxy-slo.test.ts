/**
 * Static Large Objects through a real cluster (four storage nodes and a proxy): manifest PUT and
 * its validation errors, GET/HEAD with Range (one and several), conditionals on the SLO ETag,
 * nested manifests, inline data segments, `multipart-manifest=get` (stored and raw formats),
 * `multipart-manifest=delete` with Swift's bulk-delete body, and the reserved header.
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

const SEGMENTS = ['aaaaa', 'bbbbbbbbbb', 'ccc'];

test.before(async (t) => {
  const cluster = await startCluster();
  t.context = { cluster, auth: await cluster.auth() };
  await request(t, 'PUT', '/segs');
  await request(t, 'PUT', '/c');
  for (const [index, data] of SEGMENTS.entries()) {
    const put = await request(t, 'PUT', `/segs/s${index}`, {}, data);
    if (put.status !== 201) throw new Error(`segment PUT ${put.status}`);
  }
});

test.after.always(async (t) => {
  await t.context.cluster?.stop();
});

function manifest(): string {
  return JSON.stringify(
    SEGMENTS.map((data, index) => ({ path: `/segs/s${index}`, etag: md5(data), size_bytes: data.length })),
  );
}

test('manifest PUT stores an SLO; GET streams the segments; ETag is the md5 of the segment ETags', async (t) => {
  const put = await request(t, 'PUT', '/c/big?multipart-manifest=put', { 'Content-Type': 'text/plain' }, manifest());
  t.is(put.status, 201, put.body.toString());
  const sloEtag = md5(SEGMENTS.map((data) => md5(data)).join(''));
  t.is(put.headers.get('etag'), `"${sloEtag}"`);
  const get = await request(t, 'GET', '/c/big');
  t.is(get.status, 200);
  t.is(get.body.toString(), SEGMENTS.join(''));
  t.is(get.headers.get('etag'), `"${sloEtag}"`);
  t.is(get.headers.get('content-length'), String(SEGMENTS.join('').length));
  t.is(get.headers.get('x-static-large-object'), 'True');
  t.is(get.headers.get('content-type'), 'text/plain');
  t.is(get.headers.get('x-object-sysmeta-slo-etag'), null, 'sysmeta never reaches clients');
  const head = await request(t, 'HEAD', '/c/big');
  t.is(head.status, 200);
  t.is(head.headers.get('content-length'), String(SEGMENTS.join('').length));
  t.is(head.headers.get('etag'), `"${sloEtag}"`);
  // The listing shows the whole object's size.
  const listing = await request(t, 'GET', '/c?format=json');
  const row = (
    JSON.parse(listing.body.toString()) as { name: string; bytes: number; hash: string; slo_etag?: string }[]
  ).find((item) => item.name === 'big');
  t.is(row?.bytes, SEGMENTS.join('').length);
  t.is(row?.slo_etag, `"${sloEtag}"`, 'the listing shows the SLO ETag apart, as Swift');
  t.regex(row?.hash ?? '', /^[0-9a-f]{32}$/);
});

interface ListingRow {
  name: string;
  bytes: number;
  hash: string;
  content_type: string;
  last_modified: string;
  slo_etag?: string;
}

async function listingRow(t: { context: Context }, name: string): Promise<ListingRow | undefined> {
  const listing = await request(t, 'GET', '/c?format=json');
  return (JSON.parse(listing.body.toString()) as ListingRow[]).find((item) => item.name === name);
}

/** A listing's last_modified for an X-Timestamp (`1795641480.85287` -> `...T21:18:00.852870`). */
function listedTime(xTimestamp: string | null): string {
  const [seconds = '0', fraction = ''] = (xTimestamp ?? '').split('.');
  return `${new Date(Number(seconds) * 1000).toISOString().slice(0, 19)}.${fraction.padEnd(6, '0')}`;
}

test('a POST (new Content-Type, then metadata only) keeps the SLO and its listing size and ETags', async (t) => {
  const put = await request(t, 'PUT', '/c/posted?multipart-manifest=put', {}, manifest());
  t.is(put.status, 201, put.body.toString());
  const sloEtag = md5(SEGMENTS.map((data) => md5(data)).join(''));
  const size = SEGMENTS.join('').length;
  const before = await listingRow(t, 'posted');
  t.is(before?.slo_etag, `"${sloEtag}"`);

  const typed = await request(t, 'POST', '/c/posted', { 'Content-Type': 'text/csv' });
  t.is(typed.status, 202);
  const head = await request(t, 'HEAD', '/c/posted');
  t.is(head.headers.get('x-static-large-object'), 'True', 'still a large object');
  t.is(head.headers.get('etag'), `"${sloEtag}"`);
  t.is(head.headers.get('content-length'), String(size));
  t.is(head.headers.get('content-type'), 'text/csv');
  const afterType = await listingRow(t, 'posted');
  t.is(afterType?.content_type, 'text/csv');
  t.is(afterType?.bytes, size, 'the whole size, not the manifest');
  t.is(afterType?.hash, before?.hash, "the manifest's own MD5, as Swift");
  t.is(afterType?.slo_etag, `"${sloEtag}"`);
  t.is(afterType?.last_modified, listedTime(head.headers.get('x-timestamp')), 'the POST is the last modification');

  const meta = await request(t, 'POST', '/c/posted', { 'X-Object-Meta-Color': 'blue' });
  t.is(meta.status, 202);
  const afterMeta = await listingRow(t, 'posted');
  const headAfterMeta = await request(t, 'HEAD', '/c/posted');
  t.is(afterMeta?.content_type, 'text/csv', 'a POST without a type keeps the one set before');
  t.is(afterMeta?.bytes, size);
  t.is(afterMeta?.slo_etag, `"${sloEtag}"`);
  t.is(afterMeta?.last_modified, listedTime(headAfterMeta.headers.get('x-timestamp')));
  t.true((afterMeta?.last_modified ?? '') > (afterType?.last_modified ?? ''));
  // Written as Swift writes it: Python's JSON spacing, and XML with the hash alone.
  const json = (await request(t, 'GET', '/c?format=json&prefix=posted')).body.toString();
  t.true(json.includes(`"bytes": ${size}, "hash": "${before?.hash ?? ''}", "name": "posted"`), json);
  const xml = (await request(t, 'GET', '/c?format=xml&prefix=posted')).body.toString();
  t.true(xml.includes(`<name>posted</name><hash>${before?.hash ?? ''}</hash><bytes>${size}</bytes>`), xml);
});

test('Range across segments, suffix ranges, several ranges, and 416', async (t) => {
  const whole = SEGMENTS.join('');
  const one = await request(t, 'GET', '/c/big', { Range: 'bytes=3-8' });
  t.is(one.status, 206);
  t.is(one.body.toString(), whole.slice(3, 9));
  t.is(one.headers.get('content-range'), `bytes 3-8/${whole.length}`);
  const suffix = await request(t, 'GET', '/c/big', { Range: 'bytes=-4' });
  t.is(suffix.status, 206);
  t.is(suffix.body.toString(), whole.slice(-4));
  const multi = await request(t, 'GET', '/c/big', { Range: 'bytes=0-1,14-17' });
  t.is(multi.status, 206);
  const type = multi.headers.get('content-type') ?? '';
  t.true(type.startsWith('multipart/byteranges;boundary='));
  const text = multi.body.toString();
  t.true(text.includes(`Content-Range: bytes 0-1/${whole.length}\r\n\r\naa\r\n`));
  t.true(text.includes(`Content-Range: bytes 14-17/${whole.length}\r\n\r\nbccc\r\n`));
  t.is(Number(multi.headers.get('content-length')), multi.body.length);
  const bad = await request(t, 'GET', '/c/big', { Range: 'bytes=100-200' });
  t.is(bad.status, 416);
  t.is(bad.headers.get('content-range'), `bytes */${whole.length}`);
});

test('conditional GETs use the SLO ETag', async (t) => {
  const head = await request(t, 'HEAD', '/c/big');
  const etag = head.headers.get('etag') ?? '';
  t.is((await request(t, 'GET', '/c/big', { 'If-None-Match': etag })).status, 304);
  t.is((await request(t, 'GET', '/c/big', { 'If-Match': etag })).status, 200);
  t.is((await request(t, 'GET', '/c/big', { 'If-Match': '"nope"' })).status, 412);
  t.is((await request(t, 'HEAD', '/c/big', { 'If-Match': '"nope"' })).status, 412);
  const ranged = await request(t, 'GET', '/c/big', { 'If-Match': etag, Range: 'bytes=5-6' });
  t.is(ranged.status, 206);
  t.is(ranged.body.toString(), 'bb');
});

test('multipart-manifest=get returns the stored manifest; format=raw the PUT format', async (t) => {
  const get = await request(t, 'GET', '/c/big?multipart-manifest=get');
  t.is(get.status, 200);
  t.is(get.headers.get('content-type'), 'application/json; charset=utf-8');
  const stored = JSON.parse(get.body.toString()) as { name: string; hash: string; bytes: number }[];
  t.deepEqual(
    stored.map((item) => [item.name, item.hash, item.bytes]),
    SEGMENTS.map((data, index) => [`/segs/s${index}`, md5(data), data.length]),
  );
  const raw = await request(t, 'GET', '/c/big?multipart-manifest=get&format=raw');
  t.deepEqual(
    JSON.parse(raw.body.toString()),
    SEGMENTS.map((data, index) => ({ path: `/segs/s${index}`, etag: md5(data), size_bytes: data.length })),
  );
});

test('manifests are stored as Swift writes them; X-Manifest-Etag names the manifest on GET, HEAD, Range and 304', async (t) => {
  const get = await request(t, 'GET', '/c/big?multipart-manifest=get');
  const manifestEtag = md5(get.body);
  t.is(get.headers.get('etag'), manifestEtag);
  // Python's json.dumps of Swift's fields in Swift's order: the same bytes, so the same ETag.
  const expected = SEGMENTS.map((data, index) => {
    const row = JSON.parse(get.body.toString()) as { content_type: string; last_modified: string }[];
    return (
      `{"name": "/segs/s${index}", "bytes": ${data.length}, "hash": "${md5(data)}", ` +
      `"content_type": "${row[index]?.content_type}", "last_modified": "${row[index]?.last_modified}"}`
    );
  });
  t.is(get.body.toString(), `[${expected.join(', ')}]`);
  t.regex(get.body.toString(), /"last_modified": "\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000000"/);
  const sloEtag = `"${md5(SEGMENTS.map((data) => md5(data)).join(''))}"`;
  for (const [method, headers] of [
    ['GET', {}],
    ['HEAD', {}],
    ['GET', { Range: 'bytes=1-7' }],
    ['GET', { 'If-None-Match': sloEtag }],
  ] as const) {
    const reply = await request(t, method, '/c/big', headers);
    t.is(reply.headers.get('x-manifest-etag'), manifestEtag, `${method} ${JSON.stringify(headers)}`);
    t.is(reply.headers.get('etag'), sloEtag);
    t.is(reply.headers.get('x-static-large-object'), 'True');
    if (reply.status !== 304) t.is(reply.headers.get('content-type'), 'text/plain', "the manifest's own type");
  }
  t.is(get.headers.get('x-manifest-etag'), null, 'not on the manifest itself');
  const listing = JSON.parse((await request(t, 'GET', '/c?format=json&prefix=big')).body.toString()) as {
    hash: string;
  }[];
  t.is(listing[0]?.hash, manifestEtag, "the listing shows the manifest's ETag");
});

test("format=raw: sorted keys with json.dumps spacing, the manifest's Content-Type and the md5 of these bytes", async (t) => {
  const body = JSON.stringify([{ path: '/segs/s1', range: '2-4' }, { data: Buffer.from('XY').toString('base64') }]);
  t.is((await request(t, 'PUT', '/c/raw?multipart-manifest=put', { 'Content-Type': 'text/x-raw' }, body)).status, 201);
  const raw = await request(t, 'GET', '/c/raw?multipart-manifest=get&format=raw');
  t.is(raw.status, 200);
  t.is(
    raw.body.toString(),
    `[{"etag": "${md5(SEGMENTS[1] ?? '')}", "path": "/segs/s1", "range": "2-4", "size_bytes": 10}, {"data": "WFk="}]`,
  );
  t.is(raw.headers.get('content-type'), 'text/x-raw');
  t.is(raw.headers.get('etag'), md5(raw.body));
  t.is(raw.headers.get('content-length'), String(raw.body.length));
});

test('ranged segments, inline data and nested manifests', async (t) => {
  const body = JSON.stringify([
    { path: 'segs/s1', range: '2-4' },
    { data: Buffer.from('XY').toString('base64') },
    { path: '/c/big', range: '-3' },
  ]);
  const put = await request(t, 'PUT', '/c/nested?multipart-manifest=put', {}, body);
  t.is(put.status, 201, put.body.toString());
  const get = await request(t, 'GET', '/c/nested');
  t.is(get.body.toString(), 'bbbXYccc');
  const head = await request(t, 'HEAD', '/c/nested');
  t.is(head.headers.get('content-length'), '8');
  const ranged = await request(t, 'GET', '/c/nested', { Range: 'bytes=2-5' });
  t.is(ranged.body.toString(), 'bXYc');
  const stored = JSON.parse((await request(t, 'GET', '/c/nested?multipart-manifest=get')).body.toString()) as {
    sub_slo?: boolean;
    range?: string;
  }[];
  t.is(stored[0]?.range, '2-4');
  t.is(stored[2]?.sub_slo, true);
});

test('bad manifests: 400 with Swift bodies', async (t) => {
  const notJson = await request(t, 'PUT', '/c/x?multipart-manifest=put', {}, 'nope');
  t.is(notJson.status, 400);
  t.is(notJson.body.toString(), 'Manifest must be valid JSON.\n');
  const structural = await request(
    t,
    'PUT',
    '/c/x?multipart-manifest=put',
    {},
    JSON.stringify([{ path: 'nocontainer' }, { path: '/segs/s0', foo: 1 }, 3]),
  );
  t.is(structural.status, 400);
  t.is(
    structural.body.toString(),
    'Index 0: path does not refer to an object. Path must be of the form /container/object.\n' +
      'Index 1: extraneous keys "foo"\n' +
      'Index 2: not a JSON object\n',
  );
  const problems = await request(
    t,
    'PUT',
    '/c/x?multipart-manifest=put',
    {},
    JSON.stringify([
      { path: '/segs/missing' },
      { path: '/segs/s0', etag: 'wrong' },
      { path: '/segs/s1', size_bytes: 3 },
    ]),
  );
  t.is(problems.status, 400);
  t.is(
    problems.body.toString(),
    'Errors:\n/segs/missing, 404 Not Found\n/segs/s0, Etag Mismatch\n/segs/s1, Size Mismatch\n',
  );
  const json = await request(
    t,
    'PUT',
    '/c/x?multipart-manifest=put',
    { Accept: 'application/json' },
    JSON.stringify([{ path: '/segs/missing' }]),
  );
  t.deepEqual(JSON.parse(json.body.toString()), { Errors: [['/segs/missing', '404 Not Found']] });
  t.is((await request(t, 'GET', '/c/x')).status, 404, 'nothing stored');
  const reserved = await request(t, 'PUT', '/c/x', { 'X-Static-Large-Object': 'true' }, 'data');
  t.is(reserved.status, 400);
  t.regex(reserved.body.toString(), /X-Static-Large-Object is a reserved header/);
  const wrongEtag = await request(t, 'PUT', '/c/x?multipart-manifest=put', { Etag: 'abc' }, manifest());
  t.is(wrongEtag.status, 422);
});

test('a missing first segment is a 409', async (t) => {
  await request(t, 'PUT', '/segs/temp', {}, 'temp!');
  t.is(
    (await request(t, 'PUT', '/c/fragile?multipart-manifest=put', {}, JSON.stringify([{ path: '/segs/temp' }]))).status,
    201,
  );
  t.is((await request(t, 'DELETE', '/segs/temp')).status, 204);
  t.is((await request(t, 'GET', '/c/fragile')).status, 409);
});

test('multipart-manifest=delete removes segments and manifest', async (t) => {
  await request(t, 'PUT', '/segs/d1', {}, 'one');
  await request(t, 'PUT', '/segs/d2', {}, 'two');
  const body = JSON.stringify([{ path: '/segs/d1' }, { path: '/segs/d2' }]);
  t.is((await request(t, 'PUT', '/c/todelete?multipart-manifest=put', {}, body)).status, 201);
  const deleted = await request(t, 'DELETE', '/c/todelete?multipart-manifest=delete');
  t.is(deleted.status, 200);
  t.is(
    deleted.body.toString(),
    'Number Deleted: 3\nNumber Not Found: 0\nResponse Body: \nResponse Status: 200 OK\nErrors:\n',
  );
  t.is((await request(t, 'HEAD', '/segs/d1')).status, 404);
  t.is((await request(t, 'HEAD', '/c/todelete')).status, 404);
  const notSlo = await request(t, 'DELETE', '/segs/s0?multipart-manifest=delete', { Accept: 'application/json' });
  t.deepEqual(JSON.parse(notSlo.body.toString()), {
    'Response Status': '400 Bad Request',
    'Response Body': '',
    'Number Deleted': 0,
    'Number Not Found': 0,
    Errors: [['/segs/s0', 'Not an SLO manifest']],
  });
  t.is((await request(t, 'HEAD', '/segs/s0')).status, 200);
});

test('/info announces slo', async (t) => {
  const response = await fetch(`${t.context.cluster.proxyUrl}/info`);
  const info = (await response.json()) as { slo?: { max_manifest_segments: number } };
  t.is(info.slo?.max_manifest_segments, 1000);
});
