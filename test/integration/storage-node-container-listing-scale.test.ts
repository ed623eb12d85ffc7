/**
 * A listing page costs the same in a container of 100,000 rows as in one of ten: measured here
 * in-process (the broker's range scan) and over HTTP (the container server's GET), with the
 * figures printed (`t.log`) for the report: wall time and this process's CPU time (LevelDB's
 * reads run on libuv threads, counted too). Bounds are loose: a shared 2-core machine is slow.
 */
import test from 'ava';
import { performance } from 'node:perf_hooks';
import { DEFAULT_CONSTRAINTS } from '../../common/constraints.js';
import { Timestamp } from '../../common/timestamp.js';
import { ContainerBroker, MERGE_ROWS_MAX } from '../../storage-node/container/broker.js';
import type { ScanQuery } from '../../storage-node/listing/scan.js';
import { startDbServersApp } from '../unit/storage-node/helpers/db-servers-app.js';

const ROWS = 100_000;
const nameOf = (index: number): string => `d${String(index % 100).padStart(2, '0')}/o${String(index).padStart(6, '0')}`;

test('a listing page from a container of 100,000 rows is as fast as from a small one', async (t) => {
  const app = await startDbServersApp({ devices: ['sda'] });
  try {
    const database = await app.databases.get(`${app.devicesPath}/sda`);
    const big = new ContainerBroker(database, 7, 'AUTH_perf', 'big');
    const small = new ContainerBroker(database, 7, 'AUTH_perf', 'small');
    const timestamp = Timestamp.fromSeconds(1_700_000_000).internal;
    await big.put({ timestamp, defaultPolicyIndex: 0, metadata: {} }, DEFAULT_CONSTRAINTS);
    await small.put({ timestamp, defaultPolicyIndex: 0, metadata: {} }, DEFAULT_CONSTRAINTS);
    const loadStart = performance.now();
    for (let start = 0; start < ROWS; start += MERGE_ROWS_MAX) {
      const batch = Array.from({ length: MERGE_ROWS_MAX }, (_, offset) => ({
        name: nameOf(start + offset),
        timestamp,
        size: 1024,
        contentType: 'application/octet-stream',
        etag: 'd41d8cd98f00b204e9800998ecf8427e',
      }));
      t.is(await big.mergeObjectRows(batch), MERGE_ROWS_MAX);
    }
    const loadMs = performance.now() - loadStart;
    t.log(
      `loaded ${ROWS} rows in ${loadMs.toFixed(0)} ms (${Math.round(ROWS / (loadMs / 1000))} rows/s, batches of ${MERGE_ROWS_MAX})`,
    );
    await small.mergeObjectRows(
      Array.from({ length: 10 }, (_, index) => ({
        name: nameOf(index),
        timestamp,
        size: 1,
        contentType: 'a/b',
        etag: 'e',
      })),
    );
    const info = await big.getInfo();
    t.is(info?.object_count, ROWS);
    t.is(info?.bytes_used, ROWS * 1024);

    const query: ScanQuery = {
      limit: 10_000,
      marker: '',
      endMarker: '',
      prefix: undefined,
      delimiter: undefined,
      reverse: false,
    };
    const timed = async (label: string, broker: ContainerBroker, q: ScanQuery, expected: number): Promise<number> => {
      await broker.listObjects(q); // warm the block cache once, as a live server's would be
      const start = performance.now();
      const cpuStart = process.cpuUsage();
      const entries = await broker.listObjects(q);
      const ms = performance.now() - start;
      const cpu = process.cpuUsage(cpuStart);
      const cpuMs = (cpu.user + cpu.system) / 1000;
      t.is(entries.length, expected, label);
      t.log(
        `${label}: ${entries.length} entries in ${ms.toFixed(1)} ms wall, ${cpuMs.toFixed(1)} ms CPU ` +
          `(${Math.round(entries.length / (ms / 1000))} rows/s wall)`,
      );
      return ms;
    };
    const fullPageMs = await timed('first page of 10000 (100k container)', big, query, 10_000);
    await timed('page of 10000 from the middle (marker)', big, { ...query, marker: nameOf(50_042) }, 10_000);
    await timed('reverse page of 10000', big, { ...query, reverse: true }, 10_000);
    const bigSmallPageMs = await timed(
      'page of 10 (100k container)',
      big,
      { ...query, limit: 10, marker: nameOf(77_777) },
      10,
    );
    const smallPageMs = await timed('page of 10 (10-row container)', small, { ...query, limit: 10 }, 10);
    await timed('delimiter "/": 100 subdirs over 100k rows (one seek each)', big, { ...query, delimiter: '/' }, 100);
    await timed('prefix d42/ with limit 1000', big, { ...query, prefix: 'd42/', limit: 1000 }, 1000);
    t.true(fullPageMs < 3000, `a 10000-row page took ${fullPageMs} ms`);
    t.true(bigSmallPageMs < 50 + smallPageMs * 20, `page of 10: ${bigSmallPageMs} ms vs ${smallPageMs} ms`);

    // The same over HTTP: the container server's GET, JSON.
    const url = `${app.url}/sda/7/AUTH_perf/big?format=json`;
    await (await fetch(url)).arrayBuffer();
    const httpStart = performance.now();
    const response = await fetch(url);
    const body = (await response.json()) as unknown[];
    const httpMs = performance.now() - httpStart;
    t.is(response.status, 200);
    t.is(body.length, 10_000);
    t.is(response.headers.get('x-container-object-count'), String(ROWS));
    t.log(
      `HTTP GET ?format=json, 10000 of 100k rows: ${httpMs.toFixed(1)} ms (${Math.round(10_000 / (httpMs / 1000))} rows/s)`,
    );
    const smallStart = performance.now();
    const smallResponse = await fetch(
      `${app.url}/sda/7/AUTH_perf/big?limit=10&marker=${encodeURIComponent(nameOf(77_777))}`,
    );
    await smallResponse.text();
    t.log(`HTTP GET limit=10 from the 100k container: ${(performance.now() - smallStart).toFixed(1)} ms`);
  } finally {
    await app.close();
  }
});
