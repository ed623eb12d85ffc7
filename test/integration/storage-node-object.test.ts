/**
 * The object server over real HTTP: one storage node process (two devices) shared by the tests of
 * this file, each test on its own object names. Covers the write/read rules, timestamps, metadata,
 * ranges, conditionals, bad input, expiry, small-object quarantine, chunked bodies, ETag checks,
 * Expect: 100-continue and client disconnects.
 */
import test from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { hashPath } from '../../common/hash-path.js';
import { Timestamp } from '../../common/timestamp.js';
import { callStorageNode, startStorageNode, type NodeReply, type RunningStorageNode } from '../helpers/storage-node.js';

let node: RunningStorageNode;

test.before(async () => {
  node = await startStorageNode({ devices: ['sda1', 'sdb1'] });
});

test.after.always(async () => {
  await node?.stop();
});

const call = (
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: Buffer | string | Buffer[],
): Promise<NodeReply> => callStorageNode(node, method, path, headers, body);

let tick = 0;
/** Increasing timestamps near now, unique per call. */
function ts(): string {
  tick += 1;
  return Timestamp.fromSeconds(Math.floor(Date.now() / 1000) + tick / 1000).internal;
}

const md5 = (data: Buffer | string): string => createHash('md5').update(data).digest('hex');

function put(path: string, body: Buffer | string, headers: Record<string, string> = {}): Promise<NodeReply> {
  return call(
    'PUT',
    path,
    {
      'x-timestamp': ts(),
      'content-type': 'application/octet-stream',
      'content-length': String(Buffer.byteLength(body)),
      ...headers,
    },
    body,
  );
}

function hashDirOf(device: string, partition: number, account: string, container: string, object: string): string {
  const hash = hashPath({ prefix: '', suffix: 'nebula-test' }, account, container, object);
  return join(node.devicesPath, device, 'objects', String(partition), hash.slice(-3), hash);
}

test.serial('PUT then GET and HEAD return body, ETag and metadata', async (t) => {
  const body = 'hello object';
  const created = await put('/sda1/1/a/c/o1', body, {
    'content-type': 'text/plain',
    'x-object-meta-color': 'blue',
    'content-encoding': 'gzip',
  });
  t.is(created.status, 201);
  t.is(created.headers.etag, md5(body));
  const got = await call('GET', '/sda1/1/a/c/o1');
  t.is(got.status, 200);
  t.is(got.body.toString(), body);
  t.is(got.headers['content-type'], 'text/plain');
  t.is(got.headers['x-object-meta-color'], 'blue');
  t.is(got.headers['content-encoding'], 'gzip');
  t.is(got.headers['content-length'], String(body.length));
  const head = await call('HEAD', '/sda1/1/a/c/o1');
  t.is(head.status, 200);
  t.is(head.headers['content-length'], String(body.length));
  t.is(head.body.length, 0);
  // The file is where Swift would put it, with one .data.
  const files = await readdir(hashDirOf('sda1', 1, 'a', 'c', 'o1'));
  t.is(files.length, 1);
  t.regex(files[0] ?? '', /^\d{10}\.\d{5}\.data$/);
});

test.serial('newest timestamp wins: older PUT after newer PUT or DELETE is 409, older files are removed', async (t) => {
  const first = ts();
  const second = ts();
  const third = ts();
  t.is((await put('/sda1/1/a/c/o2', 'two', { 'x-timestamp': second })).status, 201);
  const older = await put('/sda1/1/a/c/o2', 'one', { 'x-timestamp': first });
  t.is(older.status, 409);
  t.is(older.headers['x-backend-timestamp'], second);
  const same = await put('/sda1/1/a/c/o2', 'one', { 'x-timestamp': second });
  t.is(same.status, 409);
  const deleted = await call('DELETE', '/sda1/1/a/c/o2', { 'x-timestamp': third });
  t.is(deleted.status, 204);
  const afterDelete = await put('/sda1/1/a/c/o2', 'late', { 'x-timestamp': first });
  t.is(afterDelete.status, 409);
  t.is(afterDelete.headers['x-backend-timestamp'], third);
  const gone = await call('GET', '/sda1/1/a/c/o2');
  t.is(gone.status, 404);
  t.is(gone.headers['x-backend-timestamp'], third);
  const files = await readdir(hashDirOf('sda1', 1, 'a', 'c', 'o2'));
  t.deepEqual(files, [`${third}.ts`]);
  // A DELETE of something absent writes its tombstone and answers 404.
  const absent = await call('DELETE', '/sda1/1/a/c/never', { 'x-timestamp': ts() });
  t.is(absent.status, 404);
  // An older DELETE after a newer PUT is a conflict.
  const stamp = ts();
  await put('/sda1/1/a/c/o2b', 'x', { 'x-timestamp': stamp });
  const oldDelete = await call('DELETE', '/sda1/1/a/c/o2b', { 'x-timestamp': first });
  t.is(oldDelete.status, 409);
  t.is(oldDelete.headers['x-backend-timestamp'], stamp);
});

test.serial('POST replaces user metadata and keeps the body; older POST is 409; POST to missing is 404', async (t) => {
  await put('/sda1/1/a/c/o3', 'data', { 'x-object-meta-a': '1', 'x-object-meta-b': '2', 'x-object-sysmeta-x': 'kept' });
  const posted = await call('POST', '/sda1/1/a/c/o3', {
    'x-timestamp': ts(),
    'x-object-meta-c': '3',
    'content-type': 'text/new',
  });
  t.is(posted.status, 202);
  const head = await call('HEAD', '/sda1/1/a/c/o3');
  t.is(head.headers['x-object-meta-a'], undefined);
  t.is(head.headers['x-object-meta-c'], '3');
  t.is(head.headers['x-object-sysmeta-x'], 'kept');
  t.is(head.headers['content-type'], 'text/new');
  t.is(head.headers.etag, md5('data'));
  const old = await call('POST', '/sda1/1/a/c/o3', { 'x-timestamp': '1600000000.00000', 'x-object-meta-d': '4' });
  t.is(old.status, 409);
  const missing = await call('POST', '/sda1/1/a/c/nothing-here', { 'x-timestamp': ts() });
  t.is(missing.status, 404);
  const got = await call('GET', '/sda1/1/a/c/o3');
  t.is(got.body.toString(), 'data');
});

test.serial(
  'Range: single, suffix, open-ended, multiple (multipart/byteranges), unsatisfiable 416, malformed ignored',
  async (t) => {
    const body = '0123456789abcdefghij';
    await put('/sda1/2/a/c/range', body, { 'content-type': 'text/plain' });
    const single = await call('GET', '/sda1/2/a/c/range', { range: 'bytes=2-5' });
    t.is(single.status, 206);
    t.is(single.body.toString(), '2345');
    t.is(single.headers['content-range'], 'bytes 2-5/20');
    t.is((await call('GET', '/sda1/2/a/c/range', { range: 'bytes=-3' })).body.toString(), 'hij');
    t.is((await call('GET', '/sda1/2/a/c/range', { range: 'bytes=17-' })).body.toString(), 'hij');
    t.is((await call('GET', '/sda1/2/a/c/range', { range: 'bytes=15-100' })).body.toString(), 'fghij');
    const multi = await call('GET', '/sda1/2/a/c/range', { range: 'bytes=0-1,-2' });
    t.is(multi.status, 206);
    const boundary = /boundary=(\w+)/.exec(multi.headers['content-type'] ?? '')?.[1] ?? '';
    t.true(boundary.length > 0);
    t.is(Number(multi.headers['content-length']), multi.body.length);
    const text = multi.body.toString();
    t.true(text.includes('Content-Range: bytes 0-1/20\r\n\r\n01\r\n'));
    t.true(text.includes('Content-Range: bytes 18-19/20\r\n\r\nij\r\n'));
    t.true(text.endsWith(`--${boundary}--`));
    const unsatisfiable = await call('GET', '/sda1/2/a/c/range', { range: 'bytes=50-60' });
    t.is(unsatisfiable.status, 416);
    t.is(unsatisfiable.headers['content-range'], 'bytes */20');
    const malformed = await call('GET', '/sda1/2/a/c/range', { range: 'bytes=5-2' });
    t.is(malformed.status, 200);
    t.is(malformed.body.toString(), body);
  },
);

test.serial('conditional GET: If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since', async (t) => {
  const stamp = ts();
  await put('/sda1/2/a/c/cond', 'conditional', { 'x-timestamp': stamp });
  const etag = md5('conditional');
  const path = '/sda1/2/a/c/cond';
  t.is((await call('GET', path, { 'if-match': `"${etag}"` })).status, 200);
  t.is((await call('GET', path, { 'if-match': '"nope"' })).status, 412);
  t.is((await call('GET', path, { 'if-match': '*' })).status, 200);
  const notModified = await call('GET', path, { 'if-none-match': etag });
  t.is(notModified.status, 304);
  t.is(notModified.headers.etag, etag);
  t.is((await call('GET', path, { 'if-none-match': '"other"' })).status, 200);
  const later = new Date(Date.now() + 3_600_000).toUTCString();
  const earlier = new Date(Date.now() - 3_600_000).toUTCString();
  t.is((await call('GET', path, { 'if-modified-since': later })).status, 304);
  t.is((await call('GET', path, { 'if-modified-since': earlier })).status, 200);
  t.is((await call('GET', path, { 'if-unmodified-since': earlier })).status, 412);
  t.is((await call('HEAD', path, { 'if-unmodified-since': later })).status, 200);
  // If-None-Match: * on PUT refuses to overwrite.
  t.is((await put(path, 'again', { 'if-none-match': '*' })).status, 412);
});

test.serial('X-Delete-At: in the past is 400; once passed the object is 404', async (t) => {
  const past = await put('/sda1/3/a/c/exp', 'x', { 'x-delete-at': String(Math.floor(Date.now() / 1000) - 100) });
  t.is(past.status, 400);
  t.is(past.body.toString(), 'X-Delete-At in past');
  t.is((await put('/sda1/3/a/c/exp', 'x', { 'x-delete-at': 'soon' })).status, 400);
  const deleteAt = Math.floor(Date.now() / 1000) + 2;
  t.is((await put('/sda1/3/a/c/exp', 'x', { 'x-delete-at': String(deleteAt) })).status, 201);
  t.is((await call('GET', '/sda1/3/a/c/exp')).headers['x-delete-at'], String(deleteAt));
  await new Promise((resolve) => setTimeout(resolve, (deleteAt + 1) * 1000 - Date.now()));
  t.is((await call('GET', '/sda1/3/a/c/exp')).status, 404);
  t.is((await call('HEAD', '/sda1/3/a/c/exp')).status, 404);
});

test.serial('bad input: names, metadata, timestamps, lengths, device, partition, paths; nothing written', async (t) => {
  const long = 'o'.repeat(1025);
  const name = await put(`/sda1/4/a/c/${long}`, 'x');
  t.is(name.status, 400);
  t.is(name.body.toString(), 'Object name length of 1025 longer than 1024');
  const metaName = await put('/sda1/4/a/c/m', 'x', { [`x-object-meta-${'n'.repeat(129)}`]: 'v' });
  t.is(metaName.status, 400);
  t.regex(metaName.body.toString(), /Metadata name too long/);
  const metaValue = await put('/sda1/4/a/c/m', 'x', { 'x-object-meta-big': 'v'.repeat(257) });
  t.is(metaValue.status, 400);
  const many: Record<string, string> = {};
  for (let index = 0; index < 91; index += 1) many[`x-object-meta-k${index}`] = 'v';
  t.regex((await put('/sda1/4/a/c/m', 'x', many)).body.toString(), /Too many metadata items/);
  const bigTotal: Record<string, string> = {};
  for (let index = 0; index < 20; index += 1) bigTotal[`x-object-meta-k${index}`] = 'v'.repeat(250);
  t.regex((await put('/sda1/4/a/c/m', 'x', bigTotal)).body.toString(), /Total metadata too large/);
  const badTs = await put('/sda1/4/a/c/m', 'x', { 'x-timestamp': 'yesterday' });
  t.is(badTs.status, 400);
  t.regex(badTs.body.toString(), /X-Timestamp should be a UNIX timestamp/);
  const noTs = await call('PUT', '/sda1/4/a/c/m', { 'content-type': 'a/b', 'content-length': '1' }, 'x');
  t.is(noTs.status, 400);
  t.is(noTs.body.toString(), 'Missing timestamp');
  const noType = await call('PUT', '/sda1/4/a/c/m', { 'x-timestamp': ts(), 'content-length': '1' }, 'x');
  t.is(noType.status, 400);
  t.is(noType.body.toString(), 'No content type');
  const tooBig = await call('PUT', '/sda1/4/a/c/m', {
    'x-timestamp': ts(),
    'content-type': 'a/b',
    'content-length': '5368709123',
  });
  t.is(tooBig.status, 413);
  t.is((await call('GET', '/sdz9/4/a/c/m')).status, 507);
  t.is((await call('GET', '/sda1/abc/a/c/m')).status, 400);
  t.is((await call('GET', '/sda1/-1/a/c/m')).status, 400);
  t.is((await call('GET', '/sda1/4294967296/a/c/m')).status, 400);
  t.is((await call('GET', '/sda1/4/a/c/bad%ffutf8')).status, 400);
  t.is((await call('GET', '/sda1/4/a/c/nul%00byte')).status, 400);
  t.is((await call('GET', '/../4/a/c/m')).status, 400);
  t.is((await call('GET', '/sda1/4/../c/m')).status, 400);
  t.is((await call('GET', '/sda1/4/a/c/x/../../../etc')).status, 400);
  t.is((await call('GET', '/sda1/4')).status, 400);
  t.is((await call('PATCH', '/sda1/4/a/c/m')).status, 405);
  const longHeader = await call('GET', '/sda1/4/a/c/m', { 'x-long': 'h'.repeat(9000) });
  t.is(longHeader.status, 400);
  // None of the refused writes left anything.
  await t.throwsAsync(readdir(join(node.devicesPath, 'sda1', 'objects', '4')), { code: 'ENOENT' });
});

test.serial('PUT with a wrong ETag is 422 and keeps nothing; a right quoted ETag is accepted', async (t) => {
  const bad = await put('/sda1/5/a/c/etag', 'content', { etag: md5('other') });
  t.is(bad.status, 422);
  t.is((await call('GET', '/sda1/5/a/c/etag')).status, 404);
  t.deepEqual(
    await readdir(join(node.devicesPath, 'sda1', 'tmp')).then((names) => names.filter((n) => n.startsWith('object-'))),
    [],
  );
  const good = await put('/sda1/5/a/c/etag', 'content', { etag: `"${md5('content')}"` });
  t.is(good.status, 201);
});

test.serial('chunked transfer encoding PUT streams a body of unknown length', async (t) => {
  const parts = [randomBytes(70_000), randomBytes(1), randomBytes(200_000)];
  const whole = Buffer.concat(parts);
  const reply = await call(
    'PUT',
    '/sda1/5/a/c/chunked',
    { 'x-timestamp': ts(), 'content-type': 'a/b', 'transfer-encoding': 'chunked' },
    parts,
  );
  t.is(reply.status, 201);
  t.is(reply.headers.etag, md5(whole));
  const got = await call('GET', '/sda1/5/a/c/chunked');
  t.is(got.headers['content-length'], String(whole.length));
  t.true(got.body.equals(whole));
});

/** Sends raw bytes on a socket and collects what comes back until the server closes or `untilText` shows. */
function rawExchange(
  steps: (socket: import('node:net').Socket, received: () => string) => Promise<void>,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(node.port, node.host);
    let received = '';
    socket.setEncoding('latin1');
    socket.on('data', (text: string) => {
      received += text;
    });
    socket.on('error', reject);
    socket.on('connect', () => {
      steps(socket, () => received).then(() => {
        socket.destroy();
        resolve(received);
      }, reject);
    });
  });
}

async function waitFor(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

test.serial(
  'a chunked PUT stores sysmeta sent as trailers (metadata footers), and nothing else from them',
  async (t) => {
    const body = randomBytes(1000);
    const request = [
      'PUT /sda1/5/a/c/footers HTTP/1.1',
      `Host: ${node.hostPort}`,
      `X-Timestamp: ${ts()}`,
      'Content-Type: a/b',
      'Transfer-Encoding: chunked',
      'Connection: close',
      '',
      body.length.toString(16),
      '',
    ].join('\r\n');
    const trailer = [
      '',
      '0',
      'X-Object-Sysmeta-S3api-Checksum-Crc32c: yZRlqg==',
      'X-Object-Meta-Sneaky: not from a trailer',
      'Content-Type: not/this',
      '',
      '',
    ].join('\r\n');
    const answer = await rawExchange(async (socket, received) => {
      socket.write(request);
      socket.write(body);
      socket.write(trailer);
      await waitFor(() => received().includes('\r\n\r\n'), 10_000);
    });
    t.regex(answer, /^HTTP\/1\.1 201 /);
    const head = await call('HEAD', '/sda1/5/a/c/footers');
    t.is(head.status, 200);
    t.is(head.headers['x-object-sysmeta-s3api-checksum-crc32c'], 'yZRlqg==');
    t.is(head.headers['x-object-meta-sneaky'], undefined);
    t.is(head.headers['content-type'], 'a/b');
    t.is(head.headers.etag, md5(body));
  },
);

test.serial(
  'Expect: 100-continue: continue only for an acceptable request, refusal without reading the body',
  async (t) => {
    const accepted = await rawExchange(async (socket, received) => {
      socket.write(
        `PUT /sda1/6/a/c/continue HTTP/1.1\r\nHost: x\r\nX-Timestamp: ${ts()}\r\nContent-Type: a/b\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n`,
      );
      await waitFor(() => received().includes('100 Continue'), 5000);
      socket.write('hello');
      await waitFor(() => received().includes('201 Created'), 5000);
    });
    t.regex(accepted, /^HTTP\/1\.1 100 Continue/);
    const refused = await rawExchange(async (socket, received) => {
      socket.write(
        `PUT /sda1/6/a/c/continue HTTP/1.1\r\nHost: x\r\nX-Timestamp: 1500000000.00000\r\nContent-Type: a/b\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n`,
      );
      await waitFor(() => received().includes('409'), 5000);
    });
    t.false(refused.includes('100 Continue'));
    t.regex(refused, /^HTTP\/1\.1 409 Conflict/);
  },
);

test.serial('client disconnect mid-body: 499, nothing kept, temp file removed', async (t) => {
  await rawExchange(async (socket) => {
    socket.write(
      `PUT /sda1/6/a/c/cut HTTP/1.1\r\nHost: x\r\nX-Timestamp: ${ts()}\r\nContent-Type: a/b\r\nContent-Length: 100000\r\n\r\n`,
    );
    socket.write(randomBytes(30_000));
    await new Promise((resolve) => setTimeout(resolve, 200));
  });
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.is((await call('GET', '/sda1/6/a/c/cut')).status, 404);
  const temps = (await readdir(join(node.devicesPath, 'sda1', 'tmp'))).filter((n) => n.startsWith('object-'));
  t.deepEqual(temps, []);
});

test.serial(
  'a small object whose data no longer matches its ETag is quarantined before any byte is sent',
  async (t) => {
    await put('/sdb1/7/a/c/rot', 'original content');
    const hashDir = hashDirOf('sdb1', 7, 'a', 'c', 'rot');
    const [dataFile = ''] = await readdir(hashDir);
    const path = join(hashDir, dataFile);
    const bytes = await readFile(path);
    bytes[0] = 'X'.charCodeAt(0); // flip the body, keep the trailer
    await writeFile(path, bytes);
    const got = await call('GET', '/sdb1/7/a/c/rot');
    t.is(got.status, 404);
    t.false(got.body.toString().includes('riginal'));
    const quarantined = await readdir(join(node.devicesPath, 'sdb1', 'quarantined', 'objects'));
    t.is(quarantined.length, 1);
    await t.throwsAsync(readdir(hashDir), { code: 'ENOENT' });
    // A replica can be written again afterwards.
    t.is((await put('/sdb1/7/a/c/rot', 'fresh')).status, 201);
  },
);

test.serial('X-Backend-Server-Type routes an object-depth path to the container server', async (t) => {
  const reply = await call('PUT', '/sda1/8/a/c/o', { 'x-backend-server-type': 'container', 'x-timestamp': ts() });
  t.not(reply.status, 201); // not stored as an object
  t.is((await call('GET', '/sda1/8/a/c/o')).status, 404);
  t.is((await call('GET', '/sda1/8/a/c/o', { 'x-backend-server-type': 'bogus' })).status, 400);
});

test.serial(
  'container updates reach the real container server of the same node: the listing shows the row',
  async (t) => {
    t.is((await call('PUT', '/sda1/9/acct/cont', { 'x-timestamp': ts() })).status, 201);
    const where = { 'x-container-host': node.hostPort, 'x-container-partition': '9', 'x-container-device': 'sda1' };
    t.is((await put('/sda1/9/acct/cont/listed', 'row body', { 'content-type': 'text/x-row', ...where })).status, 201);
    const listing = await call('GET', '/sda1/9/acct/cont?format=json');
    t.is(listing.status, 200);
    const rows = JSON.parse(listing.body.toString()) as {
      name: string;
      bytes: number;
      hash: string;
      content_type: string;
    }[];
    t.deepEqual(
      rows.map((row) => [row.name, row.bytes, row.hash, row.content_type]),
      [['listed', 8, md5('row body'), 'text/x-row']],
    );
    t.is((await call('DELETE', '/sda1/9/acct/cont/listed', { 'x-timestamp': ts(), ...where })).status, 204);
    const after = await call('GET', '/sda1/9/acct/cont?format=json');
    t.deepEqual(JSON.parse(after.body.toString()), []);
  },
);
