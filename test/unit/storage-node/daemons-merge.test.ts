/**
 * The daemons' pure rules: which files a peer needs (newest wins, .meta only over the same data),
 * database row and info merges (newest wins, stats recounted), the rate limiter, and the config.
 */
import test from 'ava';
import { filesToPush } from '../../../storage-node/daemons/object-replicator.js';
import { mergeInfo, mergeRowValue } from '../../../storage-node/daemons/db-replication.js';
import { RateLimiter } from '../../../storage-node/daemons/daemon.js';
import { daemonsConfigFrom } from '../../../storage-node/daemons/config.js';
import { storageNodeConfigFromIni } from '../../../storage-node/config.js';
import { parseIni, resolveIni } from '../../../common/config.js';
import { swiftConfFromIni } from '../../../common/swift-conf.js';

const data = (ts: string) => ({ timestamp: ts, file: `${ts}.data`, kind: 'data' as const });
const tomb = (ts: string) => ({ timestamp: ts, file: `${ts}.ts`, kind: 'ts' as const });
const meta = (ts: string) => ({ timestamp: ts, file: `${ts}.meta` });

test('filesToPush: what the peer lacks or holds older', (t) => {
  const A = '1700000000.00000';
  const B = '1700000001.00000';
  const C = '1700000002.00000';
  t.deepEqual(filesToPush({ winner: data(B) }, undefined), [`${B}.data`]);
  t.deepEqual(filesToPush({ winner: data(B) }, { winner: data(A) }), [`${B}.data`]);
  t.deepEqual(filesToPush({ winner: data(A) }, { winner: data(B) }), []);
  t.deepEqual(filesToPush({ winner: data(B) }, { winner: data(B) }), []);
  t.deepEqual(filesToPush({ winner: tomb(C) }, { winner: data(B) }), [`${C}.ts`]);
  t.deepEqual(filesToPush({ winner: data(A), meta: meta(C) }, { winner: data(A) }), [`${C}.meta`]);
  t.deepEqual(filesToPush({ winner: data(A), meta: meta(C) }, { winner: data(A), meta: meta(C) }), []);
  t.deepEqual(filesToPush({ winner: data(B), meta: meta(C) }, undefined), [`${B}.data`, `${C}.meta`]);
  // The peer has newer data: our .meta belongs to an older version and is not pushed.
  t.deepEqual(filesToPush({ winner: data(A), meta: meta(B) }, { winner: data(C) }), []);
});

test('container rows: newest timestamp wins', (t) => {
  const older = JSON.stringify({ t: '1700000000.00000', s: 1, c: 'a', e: 'x' });
  const newer = JSON.stringify({ t: '1700000001.00000', s: 0, c: 'application/deleted', e: 'noetag', d: 1 });
  t.is(mergeRowValue('container', older, newer), newer);
  t.is(mergeRowValue('container', newer, older), newer);
  t.is(mergeRowValue('container', undefined, older), older);
});

test("container rows: a POST's content type and metadata timestamp merge with the PUT's data, in either order", (t) => {
  const put = JSON.stringify({ t: '1700000000.00000', s: 5, c: 'text/plain', e: 'x' });
  const posted = JSON.stringify({ t: '1700000000.00000', s: 5, c: 'text/csv', e: 'x', ct: '1700000002.00000' });
  const overwritten = JSON.stringify({ t: '1700000001.00000', s: 7, c: 'image/png', e: 'y' });
  // A replica that saw the POST but not a newer PUT made before it: newer data, the POST's type.
  const merged = { t: '1700000001.00000', s: 7, c: 'text/csv', e: 'y', ct: '1700000002.00000' };
  t.deepEqual(JSON.parse(mergeRowValue('container', posted, overwritten)), merged);
  t.deepEqual(JSON.parse(mergeRowValue('container', overwritten, posted)), merged);
  t.is(mergeRowValue('container', put, posted), posted);
  t.is(mergeRowValue('container', posted, put), posted);
});

test('account rows: put and delete timestamps each the newest, stats of the newer report', (t) => {
  const a = JSON.stringify({ p: '1700000000.00000', x: '0000000000.00000', o: 5, b: 50, i: 0 });
  const b = JSON.stringify({ p: '1700000000.00000', x: '1700000002.00000', o: 0, b: 0, i: 0 });
  const merged = JSON.parse(mergeRowValue('account', a, b)) as Record<string, unknown>;
  t.deepEqual(merged, { p: '1700000000.00000', x: '1700000002.00000', o: 0, b: 0, i: 0, d: 1 });
});

test('info merge: timestamps max, created_at min, metadata per item, stats from rows', (t) => {
  const mine = JSON.stringify({
    account: 'a',
    container: 'c',
    created_at: '1700000005.00000',
    put_timestamp: '1700000005.00000',
    delete_timestamp: '0000000000.00000',
    status_changed_at: '1700000005.00000',
    object_count: 9,
    bytes_used: 9,
    storage_policy_index: 0,
    metadata: { 'X-Container-Meta-A': ['1', '1700000005.00000'] },
  });
  const theirs = JSON.stringify({
    account: 'a',
    container: 'c',
    created_at: '1700000001.00000',
    put_timestamp: '1700000007.00000',
    delete_timestamp: '0000000000.00000',
    status_changed_at: '1700000001.00000',
    object_count: 0,
    bytes_used: 0,
    storage_policy_index: 0,
    metadata: { 'X-Container-Meta-A': ['2', '1700000006.00000'], 'X-Container-Meta-B': ['b', '1700000001.00000'] },
  });
  const rows = [
    JSON.stringify({ t: '1700000001.00000', s: 10, c: 'x', e: 'e' }),
    JSON.stringify({ t: '1700000001.00000', s: 0, c: 'application/deleted', e: 'noetag', d: 1 }),
    JSON.stringify({ t: '1700000001.00000', s: 5, c: 'x', e: 'e' }),
  ];
  const merged = JSON.parse(mergeInfo('container', mine, theirs, rows) ?? '{}') as Record<string, unknown>;
  t.is(merged.created_at, '1700000001.00000');
  t.is(merged.put_timestamp, '1700000007.00000');
  t.is(merged.object_count, 2);
  t.is(merged.bytes_used, 15);
  t.deepEqual(merged.metadata, {
    'X-Container-Meta-A': ['2', '1700000006.00000'],
    'X-Container-Meta-B': ['b', '1700000001.00000'],
  });
  t.is(mergeInfo('container', undefined, undefined, []), undefined);
});

test('rate limiter: about N per second after the first second of burst', async (t) => {
  const limiter = new RateLimiter(200);
  const started = Date.now();
  for (let i = 0; i < 300; i += 1) await limiter.wait(1);
  const elapsedMs = Date.now() - started;
  t.true(elapsedMs >= 400 && elapsedMs < 2000, `${elapsedMs} ms`);
  const unlimited = new RateLimiter(0);
  const quick = Date.now();
  for (let i = 0; i < 10_000; i += 1) await unlimited.wait(1);
  t.true(Date.now() - quick < 500);
});

test('config: sections, [DEFAULT] interval and daemons list', (t) => {
  const ini = resolveIni(
    parseIni(
      '[DEFAULT]\ndevices = /srv/node\nbind_port = 6210\ndaemons = all\ninterval = 10\n[object-replicator]\nconcurrency = 3\n[object-auditor]\nbytes_per_second = 1000\n',
    ),
    {},
  );
  const swift = swiftConfFromIni(resolveIni(parseIni('[swift-hash]\nswift_hash_path_suffix = x\n'), {}));
  const config = daemonsConfigFrom(storageNodeConfigFromIni(ini, swift, '/'));
  t.is(config.inProcess.length, 6);
  t.is(config.objectReplicator.intervalMs, 10_000);
  t.is(config.objectReplicator.concurrency, 3);
  t.is(config.auditor.bytesPerSecond, 1000);
  t.is(config.expirer.intervalMs, 10_000);
  t.is(config.reconCachePath, '/srv/recon-cache/6210');
  // A relative swift_dir is the config file's folder's, for the daemons as for the servers.
  const relative = resolveIni(parseIni('[DEFAULT]\ndevices = /srv/node\nswift_dir = rings\n'), {});
  t.is(daemonsConfigFrom(storageNodeConfigFromIni(relative, swift, '/etc/nebula')).swiftDir, '/etc/nebula/rings');
  const none = daemonsConfigFrom(storageNodeConfigFromIni(resolveIni(parseIni('[DEFAULT]\n'), {}), swift, '/'));
  t.deepEqual(none.inProcess, []);
  t.is(none.objectReplicator.intervalMs, 30_000);
  // Swift's defaults: the updater and the expirer every 5 minutes; the safety nets hourly and daily.
  t.is(none.updater.intervalMs, 300_000);
  t.is(none.expirer.intervalMs, 300_000);
  t.is(none.objectReplicator.rehashIntervalMs, 3_600_000);
  t.is(none.expirer.fullScanIntervalMs, 86_400_000);
});
