/**
 * Container and account quotas over a real cluster, from Swift's container_quotas and
 * account_quotas documentation: integer checks on the quota headers, 413 "Upload exceeds quota."
 * past bytes or count (copies included), account quotas settable only by a reseller admin, and
 * both announced in /info.
 */
import test from 'ava';
import { startCluster } from '../helpers/cluster.js';

interface Reply {
  status: number;
  headers: Headers;
  body: string;
}

test('container and account quotas', async (t) => {
  const cluster = await startCluster({ storageNodes: 3 });
  try {
    const { token, storageUrl } = await cluster.auth();
    const admin = await cluster.auth('admin:admin', 'admin');
    const call = async (
      method: string,
      path: string,
      headers: Record<string, string> = {},
      body?: string,
      auth = token,
    ): Promise<Reply> => {
      const response = await fetch(`${storageUrl}${path}`, {
        method,
        headers: { 'X-Auth-Token': auth, ...headers },
        body,
        signal: AbortSignal.timeout(20_000),
      });
      return { status: response.status, headers: response.headers, body: await response.text() };
    };

    const info = (await (await fetch(new URL('/info', storageUrl))).json()) as Record<string, unknown>;
    t.truthy(info.container_quotas);
    t.truthy(info.account_quotas);

    // Container quotas.
    t.is((await call('PUT', '/q', { 'X-Container-Meta-Quota-Bytes': 'ten' })).status, 400);
    t.is((await call('PUT', '/q', { 'X-Container-Meta-Quota-Count': '-1' })).status, 400);
    t.is(
      (await call('PUT', '/q', { 'X-Container-Meta-Quota-Bytes': '10', 'X-Container-Meta-Quota-Count': '2' })).status,
      201,
    );
    t.is((await call('PUT', '/q/a', {}, '12345')).status, 201, 'line 48');
    const over = await call('PUT', '/q/b', {}, '123456');
    t.is(over.status, 413, 'line 50');
    t.is(over.body, 'Upload exceeds quota.', 'line 51');
    t.is((await call('PUT', '/q/b', {}, '12345')).status, 201, 'exactly at the byte quota');
    t.is((await call('PUT', '/q/c', {}, '')).status, 413, 'count quota: a third object');
    t.is((await call('COPY', '/q/a', { Destination: 'q/d' })).status, 413, 'copy past the quota');
    t.is((await call('PUT', '/q/e', { 'X-Copy-From': 'q/a' })).status, 413);
    t.is(
      (await call('POST', '/q', { 'X-Container-Meta-Quota-Bytes': '100', 'X-Container-Meta-Quota-Count': '10' }))
        .status,
      204,
    );
    t.is((await call('COPY', '/q/a', { Destination: 'q/d' })).status, 201, 'copy within the raised quota');
    // An SLO manifest's segments are PUTs of their own: the one past the quota is refused.
    t.is((await call('PUT', '/q/seg1', {}, 'x'.repeat(60))).status, 201, 'line 63');
    t.is((await call('PUT', '/q/seg2', {}, 'y'.repeat(60))).status, 413);
    t.is((await call('POST', '/q', { 'X-Remove-Container-Meta-Quota-Bytes': 'x' })).status, 204, 'line 65');
    t.is((await call('PUT', '/q/seg2', {}, 'y'.repeat(60))).status, 201, 'line 66');
    const manifest = JSON.stringify([{ path: '/q/seg1' }, { path: '/q/seg2' }]);
    t.is((await call('PUT', '/q/slo?multipart-manifest=put', {}, manifest)).status, 201, 'line 68');
    t.is((await call('PUT', '/q2')).status, 201, 'line 69');
    t.is((await call('POST', '/q2', { 'X-Container-Meta-Quota-Bytes': '100' })).status, 204);
    t.is(
      (await call('PUT', '/q2/flat', { 'X-Copy-From': 'q/slo' })).status,
      413,
      'a flattened SLO copy counts its full size',
    );

    // Account quotas: only a reseller admin may set them.
    t.is((await call('POST', '', { 'X-Account-Meta-Quota-Bytes': '1000' })).status, 403);
    t.is(
      (await call('POST', '', { 'X-Account-Meta-Quota-Bytes': 'lots' }, undefined, admin.token)).status,
      400,
      'line 79',
    );
    const used = Number((await call('HEAD', '')).headers.get('x-account-bytes-used'));
    // A wide margin: replicas' byte counts may lag a little behind under load.
    const quota = used + 1000;
    t.is(
      (await call('POST', '', { 'X-Account-Quota-Bytes': String(quota) }, undefined, admin.token)).status,
      204,
      'line 82',
    );
    t.is((await call('HEAD', '')).headers.get('x-account-meta-quota-bytes'), String(quota), 'line 83');
    t.is((await call('PUT', '/q2/big', {}, 'z'.repeat(1001))).status, 413);
    t.is((await call('PUT', '/q2/small', {}, 'z'.repeat(10))).status, 201, 'line 85');
    t.is((await call('DELETE', '/q2/small')).status, 204, 'deletes are always allowed');
    t.is((await call('POST', '', { 'X-Remove-Account-Meta-Quota-Bytes': 'x' })).status, 403, 'line 87');
    t.is(
      (await call('POST', '', { 'X-Remove-Account-Meta-Quota-Bytes': 'x' }, undefined, admin.token)).status,
      204,
      'line 88',
    );
    t.is((await call('PUT', '/q2/big', {}, 'z'.repeat(51))).status, 201, 'line 89');
  } finally {
    await cluster.stop();
  }
});
