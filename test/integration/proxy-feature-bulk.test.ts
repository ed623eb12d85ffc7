/**
 * Bulk operations over a real cluster, from Swift's bulk documentation: extract-archive of tar,
 * tar.gz and tar.bz2 archives made by GNU tar (into the account, a container and a prefix;
 * containers created; long and UTF-8 names; corrupt bzip2 data answered as Swift 2.30 answers it),
 * bulk-delete with text/JSON/XML answers, the 10,000-name limit, and the swift CLI's delete
 * (which uses bulk-delete when /info has it). Expected bodies were read from Swift 2.30.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { startCluster } from '../helpers/cluster.js';

const run = promisify(execFile);

interface Reply {
  status: number;
  headers: Headers;
  body: string;
}

async function callerFor(
  token: string,
  storageUrl: string,
): Promise<(method: string, path: string, headers?: Record<string, string>, body?: string | Buffer) => Promise<Reply>> {
  return Promise.resolve(async (method, path, headers = {}, body) => {
    const response = await fetch(`${storageUrl}${path}`, {
      method,
      headers: { 'X-Auth-Token': token, ...headers },
      body,
      signal: AbortSignal.timeout(60_000),
    });
    return { status: response.status, headers: response.headers, body: await response.text() };
  });
}

test.serial('extract-archive and bulk-delete', async (t) => {
  const cluster = await startCluster({ storageNodes: 3 });
  const dir = await mkdtemp(join(tmpdir(), 'nebula-bulk-'));
  try {
    const { token, storageUrl } = await cluster.auth();
    const call = await callerFor(token, storageUrl);
    const info = (await (await fetch(new URL('/info', storageUrl))).json()) as Record<string, unknown>;
    t.truthy(info.bulk_upload);
    t.truthy(info.bulk_delete);

    const tree = join(dir, 'tree');
    const longName = `${'d'.repeat(120)}/file-with-a-long-path.txt`;
    await mkdir(join(tree, 'photos', 'sub'), { recursive: true });
    await mkdir(join(tree, 'docs', 'd'.repeat(120)), { recursive: true });
    await writeFile(join(tree, 'photos', 'a.txt'), 'alpha');
    await writeFile(join(tree, 'photos', 'sub', 'snow ☃.txt'), 'snowman');
    await writeFile(join(tree, 'docs', longName), 'long');
    await writeFile(join(tree, 'docs', 'big.bin'), Buffer.alloc(200_000, 7));
    await writeFile(join(tree, 'top-level-file'), 'ignored at the account level');
    await run('tar', ['-C', tree, '-cf', join(dir, 'a.tar'), '.'], { timeout: 30_000 });
    await run('tar', ['-C', tree, '-czf', join(dir, 'a.tar.gz'), 'photos'], { timeout: 30_000 });

    // Into the account: the first path segment is the container.
    const tarBody = await readFile(join(dir, 'a.tar'));
    const extracted = await call('PUT', '?extract-archive=tar', { Accept: 'application/json' }, tarBody);
    t.is(extracted.status, 200);
    const summary = JSON.parse(extracted.body) as Record<string, unknown>;
    t.is(summary['Number Files Created'], 4);
    t.is(summary['Response Status'], '201 Created');
    t.deepEqual(summary.Errors, []);
    t.is((await call('GET', '/photos/sub/snow%20%E2%98%83.txt')).body, 'snowman');
    t.is((await call('GET', `/docs/${longName}`)).body, 'long');
    t.is((await call('HEAD', '/docs/big.bin')).headers.get('content-length'), '200000');

    // Into a container and a prefix, gzip-compressed; the text answer.
    t.is((await call('PUT', '/gz')).status, 201);
    const gz = await call('PUT', '/gz/pre?extract-archive=tar.gz', {}, await readFile(join(dir, 'a.tar.gz')));
    t.is(gz.status, 200);
    t.regex(gz.body, /Number Files Created: 2\n/);
    t.regex(gz.body, /Response Status: 201 Created\n/);
    t.is((await call('GET', '/gz/pre/photos/a.txt')).body, 'alpha');

    t.is((await call('PUT', '/gz?extract-archive=zip', {}, 'x')).status, 400);
    const broken = await call('PUT', '/gz?extract-archive=tar', { Accept: 'application/json' }, Buffer.alloc(1024, 1));
    t.regex((JSON.parse(broken.body) as Record<string, string>)['Response Body'] ?? '', /^Invalid Tar File/);

    // Bulk delete: objects, a missing one, a container that is not empty.
    const names = ['/photos/a.txt', '/photos/sub/snow%20%E2%98%83.txt', '/photos/missing', '/docs'].join('\n');
    const deleted = await call(
      'POST',
      '?bulk-delete',
      { Accept: 'application/json', 'Content-Type': 'text/plain' },
      names,
    );
    const result = JSON.parse(deleted.body) as Record<string, unknown>;
    t.is(result['Number Deleted'], 2);
    t.is(result['Number Not Found'], 1);
    t.is(result['Response Status'], '400 Bad Request');
    t.deepEqual(result.Errors, [['/docs', '409 Conflict']]);
    const xml = await call('DELETE', '?bulk-delete', { Accept: 'application/xml' }, '/photos\n');
    t.regex(xml.body, /<number_deleted>1<\/number_deleted>/);
    t.is((await call('HEAD', '/photos')).status, 404);
    const tooMany = Array.from({ length: 10_001 }, (_, i) => `/c/${i}`).join('\n');
    const refused = await call('POST', '?bulk-delete', {}, tooMany);
    t.regex(refused.body, /Response Status: 413 Request Entity Too Large/);
    t.regex(refused.body, /Maximum Bulk Deletes: 10000 per request/);

    // The swift CLI deletes a container's objects with bulk-delete.
    const env = { ...process.env, ...cluster.swiftEnv() };
    await run('swift', ['delete', 'docs'], { env, timeout: 60_000 });
    t.is((await call('HEAD', '/docs')).status, 404);
  } finally {
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test.serial('extract-archive=tar.bz2 streams through bzip2; bad data is a 400 inside the answer', async (t) => {
  const cluster = await startCluster({ storageNodes: 3 });
  const dir = await mkdtemp(join(tmpdir(), 'nebula-bulk-bz2-'));
  try {
    const { token, storageUrl } = await cluster.auth();
    const call = await callerFor(token, storageUrl);
    const tree = join(dir, 'tree');
    await mkdir(join(tree, 'bz', 'été'), { recursive: true });
    await writeFile(join(tree, 'bz', 'été', '中文 😀.txt'), 'utf-8 names');
    await writeFile(join(tree, 'bz', 'a.txt'), 'alpha');
    // Larger than the pipes' buffers, so the child's back-pressure is exercised.
    const big = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((i * 2654435761) >>> 0, i);
    await writeFile(join(tree, 'bz', 'big.bin'), big);
    await run('tar', ['-C', tree, '-cjf', join(dir, 'a.tar.bz2'), 'bz'], { timeout: 60_000 });
    const archive = await readFile(join(dir, 'a.tar.bz2'));

    const extracted = await call('PUT', '?extract-archive=tar.bz2', { Accept: 'application/json' }, archive);
    t.is(extracted.status, 200);
    t.is(
      extracted.body,
      '{"Response Status": "201 Created", "Response Body": "", "Number Files Created": 3, "Errors": []}',
    );
    t.is(
      (await call('GET', `/bz/${encodeURIComponent('été')}/${encodeURIComponent('中文 😀.txt')}`)).body,
      'utf-8 names',
    );
    const bigCopy = await fetch(`${storageUrl}/bz/big.bin`, { headers: { 'X-Auth-Token': token } });
    t.true(Buffer.from(await bigCopy.arrayBuffer()).equals(big));

    // Into a container and prefix, with the text answer (Swift's sorted lines).
    const text = await call('PUT', '/bz/pre?extract-archive=.tar.bz2.', {}, archive);
    t.is(text.body, 'Number Files Created: 3\nResponse Body: \nResponse Status: 201 Created\nErrors:\n');
    t.is((await call('GET', '/bz/pre/bz/a.txt')).body, 'alpha');

    // A flipped run of bytes in the compressed data: bzip2 refuses it.
    const corrupt = Buffer.from(archive);
    for (let i = 200; i < 260; i++) corrupt[i] = (corrupt[i] ?? 0) ^ 0xff;
    const bad = await call('PUT', '/bad?extract-archive=tar.bz2', { Accept: 'application/xml' }, corrupt);
    t.is(bad.status, 200);
    t.regex(bad.body, /^<extract>\n/);
    t.regex(bad.body, /<response_status>400 Bad Request<\/response_status>\n/);
    t.regex(bad.body, /<response_body>Invalid Tar File: invalid compressed data<\/response_body>\n/);
    // Not bzip2 at all (a plain tar), and an empty body.
    await run('tar', ['-C', tree, '-cf', join(dir, 'plain.tar'), 'bz'], { timeout: 60_000 });
    const plain = await call('PUT', '/bad?extract-archive=tar.bz2', {}, await readFile(join(dir, 'plain.tar')));
    t.regex(plain.body, /Response Body: Invalid Tar File: invalid compressed data\nResponse Status: 400 Bad Request\n/);
    const empty = await call('PUT', '/bad?extract-archive=tar.bz2', {}, '');
    t.regex(empty.body, /Response Body: Invalid Tar File: empty file\n/);
    t.is((await call('HEAD', '/bad/bz/a.txt')).status, 404);

    // Bulk-delete lines that are not UTF-8 fail alone with 412, as Swift's check_utf8.
    const deleted = await call('POST', '?bulk-delete', { Accept: 'application/json' }, '/bz/a.txt\n/bz/%FF\n');
    t.is(
      deleted.body,
      '{"Response Status": "400 Bad Request", "Response Body": "", "Number Deleted": 1, "Number Not Found": 0, ' +
        '"Errors": [["/bz/%FF", "412 Precondition Failed"]]}',
    );
  } finally {
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
