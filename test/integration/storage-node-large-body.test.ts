/**
 * Large bodies through one storage node process (fsync on): written in batches from the socket's
 * chunks with backpressure and background fdatasyncs, read back in disk_chunk_size reads. A body
 * sent in odd-sized pieces, a chunked one, a ranged read across chunk borders, and a client that
 * goes away mid-body: what a client checks is the bytes and ETag it gets back, and that a body
 * cut short leaves no object and no temp file.
 */
import test from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { Timestamp } from '../../common/timestamp.js';
import { callStorageNode, startStorageNode, type NodeReply, type RunningStorageNode } from '../helpers/storage-node.js';

let node: RunningStorageNode;

test.before(async () => {
  // A small disk_chunk_size makes a GET of a few MiB cross many chunk borders.
  node = await startStorageNode({ config: { 'app:object-server': { fsync: 'true', disk_chunk_size: '300000' } } });
});

test.after.always(async () => {
  await node?.stop();
});

/** Sends the body in the given pieces, each after the previous one was taken by the socket. */
const call = (
  method: string,
  path: string,
  headers: Record<string, string>,
  pieces: Buffer[] = [],
): Promise<NodeReply> => callStorageNode(node, method, path, headers, pieces, 60_000);

const md5 = (data: Buffer): string => createHash('md5').update(data).digest('hex');

/** The body cut into pieces of varied sizes (1 B to ~700 KiB), so batches never line up with them. */
function piecesOf(body: Buffer): Buffer[] {
  const sizes = [1, 65_537, 700_001, 4_095, 333_333, 12];
  const pieces: Buffer[] = [];
  for (let offset = 0, index = 0; offset < body.length; index += 1) {
    const size = sizes[index % sizes.length] ?? 1;
    pieces.push(body.subarray(offset, offset + size));
    offset += size;
  }
  return pieces;
}

function putHeaders(length?: number): Record<string, string> {
  const headers: Record<string, string> = {
    'x-timestamp': Timestamp.now().internal,
    'content-type': 'application/octet-stream',
  };
  if (length === undefined) headers['transfer-encoding'] = 'chunked';
  else headers['content-length'] = String(length);
  return headers;
}

test('a 20 MiB body in odd-sized pieces reads back whole, with its MD5 as ETag', async (t) => {
  const body = randomBytes(20 * 1024 * 1024 + 123);
  const put = await call('PUT', '/sda1/1/a/c/big', putHeaders(body.length), piecesOf(body));
  t.is(put.status, 201);
  t.is(put.headers.etag, md5(body));
  const got = await call('GET', '/sda1/1/a/c/big', {});
  t.is(got.status, 200);
  t.is(got.headers.etag, md5(body));
  t.true(got.body.equals(body));
});

test('a chunked 5 MiB body of unknown length is stored whole', async (t) => {
  const body = randomBytes(5 * 1024 * 1024 - 7);
  const put = await call('PUT', '/sda1/2/a/c/chunked', putHeaders(), piecesOf(body));
  t.is(put.status, 201);
  t.is(put.headers.etag, md5(body));
  const got = await call('GET', '/sda1/2/a/c/chunked', {});
  t.true(got.body.equals(body));
});

test('a range across read chunk borders of a large object is exact', async (t) => {
  const body = randomBytes(3 * 1024 * 1024);
  t.is((await call('PUT', '/sda1/3/a/c/ranged', putHeaders(body.length), piecesOf(body))).status, 201);
  const got = await call('GET', '/sda1/3/a/c/ranged', { range: 'bytes=299990-2000009' });
  t.is(got.status, 206);
  t.true(got.body.equals(body.subarray(299_990, 2_000_010)));
});

test('a client that goes away mid-body leaves no object and no temp file', async (t) => {
  const socket = connect(node.port, node.host);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.on('error', () => undefined);
  socket.write(
    `PUT /sda1/4/a/c/gone HTTP/1.1\r\nHost: x\r\nX-Timestamp: ${Timestamp.now().internal}\r\n` +
      `Content-Type: a/b\r\nContent-Length: ${20 * 1024 * 1024}\r\n\r\n`,
  );
  for (const piece of piecesOf(randomBytes(10 * 1024 * 1024))) {
    if (!socket.write(piece)) await new Promise((resume) => socket.once('drain', resume));
  }
  socket.destroy();
  const tmp = join(node.devicesPath, 'sda1', 'tmp');
  // Bounded wait for the server to see the disconnect and remove its temp file.
  let left: string[] = [];
  for (let attempt = 0; attempt < 50; attempt += 1) {
    await new Promise((resume) => setTimeout(resume, 100));
    left = (await readdir(tmp).catch(() => [])).filter((name) => name.startsWith('object-'));
    if (left.length === 0) break;
  }
  t.deepEqual(left, []);
  t.is((await call('HEAD', '/sda1/4/a/c/gone', {})).status, 404);
});
