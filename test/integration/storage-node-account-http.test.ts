/**
 * The account server over real HTTP (through a tiny router in this process): account PUT/HEAD/
 * GET/POST/DELETE and container reports, with Swift's statuses and headers.
 */
import test from 'ava';
import { startDbServersApp, type DbServersApp } from '../unit/storage-node/helpers/db-servers-app.js';

const T = (seconds: number): string => (1_700_000_000 + seconds).toFixed(5);
const ZERO = '0000000000.00000';

async function request(
  app: DbServersApp,
  method: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; body: string }> {
  const response = await fetch(`${app.url}${path}`, { method, headers });
  return { status: response.status, headers: response.headers, body: await response.text() };
}

const report = (put: number, del: number | undefined, objects: number, bytes: number): Record<string, string> => ({
  'X-Backend-Server-Type': 'account',
  'X-Put-Timestamp': T(put),
  'X-Delete-Timestamp': del === undefined ? ZERO : T(del),
  'X-Object-Count': String(objects),
  'X-Bytes-Used': String(bytes),
});

test('account lifecycle, stats, listings and metadata as Swift', async (t) => {
  const app = await startDbServersApp();
  try {
    t.is((await request(app, 'HEAD', '/sda/1/AUTH_t')).status, 404);
    t.is((await request(app, 'PUT', '/sda/1/AUTH_t/c1', report(1, undefined, 0, 0))).status, 404, 'no account yet');
    let r = await request(app, 'PUT', '/sda/1/AUTH_t', { 'X-Timestamp': T(0), 'X-Account-Meta-Quota': '10' });
    t.is(r.status, 201);
    t.is((await request(app, 'PUT', '/sda/1/AUTH_t', { 'X-Timestamp': T(1) })).status, 202);
    t.is((await request(app, 'PUT', '/sda/1/AUTH_t/c1', report(1, undefined, 2, 20))).status, 201);
    t.is((await request(app, 'PUT', '/sda/1/AUTH_t/c2', report(2, undefined, 1, 5))).status, 201);
    t.is((await request(app, 'PUT', '/sda/1/AUTH_t/d/x', { ...report(3, undefined, 0, 0) })).status, 400);
    t.is((await request(app, 'PUT', '/sda/1/AUTH_t/docs%2F2024', report(3, undefined, 0, 0))).status, 201);
    r = await request(app, 'HEAD', '/sda/1/AUTH_t');
    t.is(r.status, 204);
    t.is(r.headers.get('x-account-container-count'), '3');
    t.is(r.headers.get('x-account-object-count'), '3');
    t.is(r.headers.get('x-account-bytes-used'), '25');
    t.is(r.headers.get('x-account-meta-quota'), '10');
    t.true(Math.abs(Number(r.headers.get('x-timestamp')) - Date.now() / 1000) < 600, 'created_at: the local clock');
    t.is(r.headers.get('x-put-timestamp'), T(1));

    r = await request(app, 'GET', '/sda/1/AUTH_t');
    t.is(r.status, 200);
    t.is(r.body, 'c1\nc2\ndocs/2024\n');
    r = await request(app, 'GET', '/sda/1/AUTH_t?delimiter=/&format=json');
    t.deepEqual(JSON.parse(r.body), [
      { name: 'c1', count: 2, bytes: 20, last_modified: '2023-11-14T22:13:21.000000' },
      { name: 'c2', count: 1, bytes: 5, last_modified: '2023-11-14T22:13:22.000000' },
      { subdir: 'docs/' },
    ]);
    r = await request(app, 'GET', '/sda/1/AUTH_t?limit=1&reverse=yes', { Accept: 'application/xml' });
    t.is(
      r.body,
      '<?xml version="1.0" encoding="UTF-8"?>\n<account name="AUTH_t">\n<container><name>docs/2024</name>' +
        '<count>0</count><bytes>0</bytes><last_modified>2023-11-14T22:13:23.000000</last_modified></container>\n</account>',
    );
    t.is((await request(app, 'GET', '/sda/1/AUTH_t?prefix=zzz')).status, 204);
    t.is((await request(app, 'GET', '/sda/1/AUTH_t?limit=10001')).status, 412);

    // A report of a deleted container: 204, and the totals drop it.
    t.is((await request(app, 'PUT', '/sda/1/AUTH_t/c2', report(2, 4, 0, 0))).status, 204);
    r = await request(app, 'HEAD', '/sda/1/AUTH_t');
    t.is(r.headers.get('x-account-container-count'), '2');
    t.is(r.headers.get('x-account-object-count'), '2');
    t.is((await request(app, 'GET', '/sda/1/AUTH_t')).body, 'c1\ndocs/2024\n');

    // POST metadata; bad input refused with nothing written.
    t.is(
      (await request(app, 'POST', '/sda/1/AUTH_t', { 'X-Timestamp': T(5), 'X-Account-Meta-Quota': '' })).status,
      204,
    );
    r = await request(app, 'POST', '/sda/1/AUTH_t', { 'X-Timestamp': T(6), 'X-Account-Meta-Big': 'v'.repeat(257) });
    t.is(r.status, 400);
    t.is(r.body, 'Metadata value longer than 256: x-account-meta-Big');
    r = await request(app, 'HEAD', '/sda/1/AUTH_t');
    t.is(r.headers.get('x-account-meta-quota'), null);
    t.is(r.headers.get('x-account-meta-big'), null);
    r = await request(app, 'PUT', '/sda/1/AUTH_t/c3', { ...report(1, undefined, 0, 0), 'X-Put-Timestamp': 'soon' });
    t.is(r.status, 400);
    t.is(r.body, 'Invalid X-Put-Timestamp header');
    t.is((await request(app, 'POST', '/sda/1/AUTH_t')).status, 400);

    // DELETE marks it deleted: 404 with X-Account-Status, PUT refused as recently deleted.
    t.is((await request(app, 'DELETE', '/sda/1/AUTH_t', { 'X-Timestamp': T(7) })).status, 204);
    r = await request(app, 'HEAD', '/sda/1/AUTH_t');
    t.is(r.status, 404);
    t.is(r.headers.get('x-account-status'), 'Deleted');
    r = await request(app, 'PUT', '/sda/1/AUTH_t', { 'X-Timestamp': T(8) });
    t.is(r.status, 403);
    t.is(r.body, 'Recently deleted');
    t.is((await request(app, 'DELETE', '/sda/1/AUTH_t', { 'X-Timestamp': T(9) })).status, 404);
    t.is((await request(app, 'PUT', '/sda/1/AUTH_t/c4', report(9, undefined, 0, 0))).status, 404);
    const override = { ...report(9, 10, 0, 0), 'X-Account-Override-Deleted': 'yes' };
    t.is((await request(app, 'PUT', '/sda/1/AUTH_t/c1', override)).status, 204, 'the reaper may still report');
    t.is((await request(app, 'GET', `/sda/1/${'a'.repeat(257)}`)).status, 400);
  } finally {
    await app.close();
  }
});
