/**
 * The container server over real HTTP (through a tiny router in this process): Swift's statuses,
 * headers and bodies for container and object-row requests, and its reports to the account.
 */
import test from 'ava';
import { freePort } from '../helpers/storage-node.js';
import { startDbServersApp, type DbServersApp } from '../unit/storage-node/helpers/db-servers-app.js';

const T = (seconds: number): string => (1_700_000_000 + seconds).toFixed(5);

async function request(
  app: DbServersApp,
  method: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; body: string }> {
  const response = await fetch(`${app.url}${path}`, { method, headers });
  return { status: response.status, headers: response.headers, body: await response.text() };
}

const row = (seconds: number, size: number): Record<string, string> => ({
  'X-Backend-Server-Type': 'container',
  'X-Timestamp': T(seconds),
  'X-Size': String(size),
  'X-Content-Type': 'text/plain',
  'X-Etag': '0123456789abcdef0123456789abcdef',
});

test('bad input: Swift statuses with a one-line reason, nothing written', async (t) => {
  const app = await startDbServersApp();
  try {
    let r = await request(app, 'PUT', '/sda/0/a/c');
    t.is(r.status, 400);
    t.is(r.body, 'Missing X-Timestamp header');
    r = await request(app, 'PUT', '/sda/0/a/c', { 'X-Timestamp': 'yesterday' });
    t.is(r.status, 400);
    t.is(r.body, 'Invalid X-Timestamp header');
    r = await request(app, 'PUT', `/sda/0/a/${'c'.repeat(257)}`, { 'X-Timestamp': T(1) });
    t.is(r.status, 400);
    t.is(r.body, 'Container name length of 257 longer than 256');
    r = await request(app, 'PUT', '/sda/0/a/c', { 'X-Timestamp': T(1), 'X-Container-Meta-Big': 'v'.repeat(257) });
    t.is(r.status, 400);
    t.is(r.body, 'Metadata value longer than 256: x-container-meta-Big');
    r = await request(app, 'HEAD', '/sda/0/a/c');
    t.is(r.status, 404, 'nothing was written');
    t.is(r.headers.get('x-backend-timestamp'), '0000000000.00000');
    await request(app, 'PUT', '/sda/0/a/c', { 'X-Timestamp': T(1) });
    r = await request(app, 'GET', '/sda/0/a/c?limit=10001');
    t.is(r.status, 412);
    t.is(r.body, 'Maximum limit is 10000');
    r = await request(app, 'GET', '/sda/0/a/c?prefix=%FF');
    t.is(r.status, 400);
    r = await request(app, 'PUT', '/sda/0/a/c/o', { ...row(2, 1), 'X-Size': 'many' });
    t.is(r.status, 400);
    t.is(r.body, 'Invalid x-size header');
    r = await request(app, 'PUT', `/sda/0/a/c/${'o'.repeat(1025)}`, row(2, 1));
    t.is(r.status, 400);
    t.is(r.body, 'Object name length of 1025 longer than 1024');
    r = await request(app, 'PUT', '/sda/0/a/missing/o', row(2, 1));
    t.is(r.status, 404);
    r = await request(app, 'HEAD', '/sda/0/a/c');
    t.is(r.headers.get('x-container-object-count'), '0');
    r = await request(app, 'PATCH', '/sda/0/a/c');
    t.is(r.status, 405);
  } finally {
    await app.close();
  }
});

test('PUT, HEAD, listings in three formats, POST, DELETE as Swift', async (t) => {
  const app = await startDbServersApp();
  try {
    let r = await request(app, 'PUT', '/sda/0/a/c', {
      'X-Timestamp': T(1),
      'X-Container-Meta-Color': 'blue',
      'X-Container-Read': '.r:*',
      'X-Container-Sysmeta-Secret': 's',
      'X-Backend-Storage-Policy-Default': '0',
    });
    t.is(r.status, 201);
    t.is(r.headers.get('x-backend-storage-policy-index'), '0');
    t.is((await request(app, 'PUT', '/sda/0/a/c', { 'X-Timestamp': T(2) })).status, 202);
    r = await request(app, 'HEAD', '/sda/0/a/c');
    t.is(r.status, 204);
    t.is(r.headers.get('x-container-object-count'), '0');
    t.is(r.headers.get('x-container-bytes-used'), '0');
    const created = r.headers.get('x-timestamp') ?? '';
    t.true(Math.abs(Number(created) - Date.now() / 1000) < 600, 'created_at is the local clock, as Swift');
    t.is(r.headers.get('x-put-timestamp'), T(2));
    t.is(r.headers.get('x-backend-put-timestamp'), T(2));
    t.is(r.headers.get('x-container-meta-color'), 'blue');
    t.is(r.headers.get('x-container-read'), '.r:*');
    t.is(r.headers.get('x-container-sysmeta-secret'), 's');
    t.is(r.headers.get('last-modified'), 'Tue, 14 Nov 2023 22:13:22 GMT');

    r = await request(app, 'GET', '/sda/0/a/c');
    t.is(r.status, 204, 'an empty text listing is 204');
    r = await request(app, 'GET', '/sda/0/a/c', { Accept: 'application/json' });
    t.is(r.status, 200);
    t.is(r.body, '[]');
    r = await request(app, 'GET', '/sda/0/a/c?format=xml');
    t.is(r.body, '<?xml version="1.0" encoding="UTF-8"?>\n<container name="c" />');
    t.is(r.headers.get('content-type'), 'application/xml; charset=utf-8');

    for (const [index, name] of ['photos/2024/a.jpg', 'photos/b.jpg', 'readme', 'zé'].entries()) {
      t.is(
        (await request(app, 'PUT', `/sda/0/a/c/${encodeURIComponent(name)}`, row(10 + index, 10 + index))).status,
        201,
      );
    }
    r = await request(app, 'GET', '/sda/0/a/c');
    t.is(r.body, 'photos/2024/a.jpg\nphotos/b.jpg\nreadme\nzé\n');
    t.is(r.headers.get('x-container-object-count'), '4');
    t.is(r.headers.get('x-container-bytes-used'), String(10 + 11 + 12 + 13));
    r = await request(app, 'GET', '/sda/0/a/c?delimiter=/&format=json');
    t.deepEqual(JSON.parse(r.body), [
      { subdir: 'photos/' },
      {
        bytes: 12,
        hash: '0123456789abcdef0123456789abcdef',
        name: 'readme',
        content_type: 'text/plain',
        last_modified: '2023-11-14T22:13:32.000000',
      },
      {
        bytes: 13,
        hash: '0123456789abcdef0123456789abcdef',
        name: 'zé',
        content_type: 'text/plain',
        last_modified: '2023-11-14T22:13:33.000000',
      },
    ]);
    t.true(r.body.includes('"z\\u00e9"'), 'JSON escapes non-ASCII as Python does');
    r = await request(app, 'GET', '/sda/0/a/c?prefix=photos/&delimiter=/&reverse=true');
    t.is(r.body, 'photos/b.jpg\nphotos/2024/\n');
    r = await request(app, 'GET', '/sda/0/a/c?path=photos');
    t.is(r.body, 'photos/b.jpg\n');
    r = await request(app, 'GET', '/sda/0/a/c?marker=photos/b.jpg&end_marker=zé&limit=5');
    t.is(r.body, 'readme\n');

    // POST: metadata with its own timestamp; an empty value deletes; older values lose.
    t.is(
      (await request(app, 'POST', '/sda/0/a/c', { 'X-Timestamp': T(20), 'X-Container-Meta-Color': '' })).status,
      204,
    );
    t.is(
      (await request(app, 'POST', '/sda/0/a/c', { 'X-Timestamp': T(19), 'X-Container-Meta-Color': 'red' })).status,
      204,
    );
    t.is((await request(app, 'HEAD', '/sda/0/a/c')).headers.get('x-container-meta-color'), null);
    t.is((await request(app, 'POST', '/sda/0/a/nope', { 'X-Timestamp': T(20) })).status, 404);

    // DELETE: 409 while objects remain, 204 once empty, then 404 with the backend timestamps.
    t.is((await request(app, 'DELETE', '/sda/0/a/c', { 'X-Timestamp': T(30) })).status, 409);
    for (const name of ['photos/2024/a.jpg', 'photos/b.jpg', 'readme', 'zé']) {
      const deleted = await request(app, 'DELETE', `/sda/0/a/c/${encodeURIComponent(name)}`, {
        'X-Backend-Server-Type': 'container',
        'X-Timestamp': T(31),
      });
      t.is(deleted.status, 204);
    }
    t.is((await request(app, 'HEAD', '/sda/0/a/c')).headers.get('x-container-object-count'), '0');
    t.is((await request(app, 'DELETE', '/sda/0/a/c', { 'X-Timestamp': T(32) })).status, 204);
    r = await request(app, 'HEAD', '/sda/0/a/c');
    t.is(r.status, 404);
    t.is(r.headers.get('x-backend-delete-timestamp'), T(32));
    t.is(r.headers.get('x-backend-timestamp'), created);
    t.is(r.headers.get('x-container-object-count'), null);
    t.is((await request(app, 'GET', '/sda/0/a/c')).status, 404);
    t.is((await request(app, 'DELETE', '/sda/0/a/c', { 'X-Timestamp': T(33) })).status, 404);
    t.is((await request(app, 'PUT', '/sda/0/a/c', { 'X-Timestamp': T(31) })).status, 409, 'older than the delete');
    t.is((await request(app, 'PUT', '/sda/0/a/c', { 'X-Timestamp': T(40) })).status, 201, 're-created');
  } finally {
    await app.close();
  }
});

test('account reports: 202 when the account is missing, pending when unreachable, replayed later', async (t) => {
  const app = await startDbServersApp();
  const port = await freePort();
  let accountApp: DbServersApp | undefined;
  try {
    const toSelf = { 'X-Account-Host': `127.0.0.1:${app.port}`, 'X-Account-Device': 'sda', 'X-Account-Partition': '3' };
    let r = await request(app, 'PUT', '/sda/0/a/c', { 'X-Timestamp': T(1), ...toSelf });
    t.is(r.status, 202, 'the account does not exist');
    t.is((await request(app, 'PUT', '/sda/3/a', { 'X-Timestamp': T(0) })).status, 201);
    r = await request(app, 'PUT', '/sda/0/a/c', { 'X-Timestamp': T(2), ...toSelf });
    t.is(r.status, 202, 'the container existed');
    r = await request(app, 'GET', '/sda/3/a?format=json');
    t.deepEqual(JSON.parse(r.body), [{ name: 'c', count: 0, bytes: 0, last_modified: '2023-11-14T22:13:22.000000' }]);

    // An unreachable account server: the container is still created; the report waits.
    const elsewhere = { 'X-Account-Host': `127.0.0.1:${port}`, 'X-Account-Device': 'sda', 'X-Account-Partition': '5' };
    t.is((await request(app, 'PUT', '/sda/0/b/c2', { 'X-Timestamp': T(3), ...elsewhere })).status, 201);
    t.is((await request(app, 'PUT', '/sda/0/b/c2/o', row(4, 7))).status, 201);
    await new Promise((resolve) => setTimeout(resolve, 100));
    let retried = await app.container.retryPendingReports();
    t.deepEqual(retried, { sent: 0, failed: 1 });

    accountApp = await startDbServersApp({ port });
    t.is((await request(accountApp, 'PUT', '/sda/5/b', { 'X-Timestamp': T(0) })).status, 201);
    retried = await app.container.retryPendingReports();
    t.deepEqual(retried, { sent: 1, failed: 0 });
    r = await request(accountApp, 'HEAD', '/sda/5/b');
    t.is(r.headers.get('x-account-container-count'), '1');
    t.is(r.headers.get('x-account-object-count'), '1');
    t.is(r.headers.get('x-account-bytes-used'), '7');
    t.deepEqual(await app.container.retryPendingReports(), { sent: 0, failed: 0 }, 'nothing left pending');
  } finally {
    await accountApp?.close();
    await app.close();
  }
});
