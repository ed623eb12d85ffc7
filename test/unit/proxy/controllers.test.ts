import test from 'ava';
import { bestResult, bestResultWithOverrides, type NodeResult } from '../../../proxy/controllers/base.js';
import { accountUpdateHeaders } from '../../../proxy/controllers/container.js';
import { agreeOnEtag, containerUpdateHeaders, quorumDecided } from '../../../proxy/controllers/object.js';
import type { RingNode } from '../../../proxy/rings.js';

const node = (id: number): RingNode => ({ id, ip: '127.0.0.1', port: 6010 + id, device: `d${id}` });
const result = (status: number): NodeResult => ({ node: node(0), status, headers: {}, body: Buffer.alloc(0) });

test("bestResult is Swift's best_response: the top status of a class with a quorum", (t) => {
  t.is(bestResult([result(201), result(201), result(503)], 3)?.status, 201);
  t.is(bestResult([result(201), result(202), result(404)], 3)?.status, 202);
  t.is(bestResult([result(204), result(404), result(404)], 3)?.status, 404);
  t.is(bestResult([result(201), result(503), result(503)], 3), undefined);
  t.is(bestResult([result(409), result(204), result(409)], 3)?.status, 409);
});

test('each container replica is named by exactly one object replica', (t) => {
  const three = containerUpdateHeaders([node(1), node(2), node(3)], 7, 3);
  t.deepEqual(
    three.map((headers) => headers['x-container-device']),
    ['d1', 'd2', 'd3'],
  );
  t.is(three[0]?.['x-container-host'], '127.0.0.1:6011');
  t.is(three[0]?.['x-container-partition'], '7');
  const fewerObjects = containerUpdateHeaders([node(1), node(2), node(3)], 7, 2);
  t.deepEqual(
    fewerObjects.map((headers) => headers['x-container-device']),
    ['d1,d3', 'd2'],
  );
  const moreObjects = containerUpdateHeaders([node(1)], 7, 3);
  t.deepEqual(moreObjects[1], {});
});

test('container replicas are told their account replicas the same way', (t) => {
  const headers = accountUpdateHeaders([node(4), node(5), node(6)], 9, 3);
  t.deepEqual(
    headers.map((entry) => entry['x-account-host']),
    ['127.0.0.1:6014', '127.0.0.1:6015', '127.0.0.1:6016'],
  );
  t.is(headers[2]?.['x-account-partition'], '9');
});

test("a DELETE without a quorum counts 404 as 204, as Swift's overrides do", (t) => {
  const deleteOverrides = { 404: 204 };
  // A quorum without overrides stands: 404 from two replicas is a 404.
  t.is(bestResultWithOverrides([result(204), result(404), result(404)], 3, deleteOverrides)?.status, 404);
  t.is(bestResultWithOverrides([result(204), result(204), result(404)], 3, deleteOverrides)?.status, 204);
  // No quorum: one 204, one 404, one unreachable replica is a 204, answered from the real 204.
  const real = { ...result(204), headers: { 'x-from': 'real' } };
  const best = bestResultWithOverrides([result(404), real, result(503)], 3, deleteOverrides);
  t.is(best?.status, 204);
  t.is(best?.headers['x-from'], 'real');
  t.is(bestResultWithOverrides([result(404), result(503), result(503)], 3, deleteOverrides), undefined);
  t.is(bestResultWithOverrides([result(404), result(503), result(503)], 3, {}), undefined);
});

test('a PUT answers the ETag most stored replicas agree on; a replica with other bytes counts as failed', (t) => {
  const stored = (etag: string): NodeResult => ({ ...result(201), headers: { etag } });
  const agreed = agreeOnEtag([stored('aaa'), stored('"aaa"'), stored('bbb')]);
  t.is(agreed.etag, 'aaa');
  t.deepEqual(agreed.etags.sort(), ['aaa', 'bbb']);
  t.deepEqual(
    agreed.results.map((entry) => entry.status),
    [201, 201, 503],
  );
  const clean = agreeOnEtag([stored('ccc'), result(503), stored('ccc')]);
  t.is(clean.etag, 'ccc');
  t.deepEqual(clean.etags, ['ccc']);
  t.deepEqual(
    clean.results.map((entry) => entry.status),
    [201, 503, 201],
  );
});

test("a PUT's outcome is decided once a quorum of answers agree (Swift's have_quorum, ETag included)", (t) => {
  const stored = (etag: string): NodeResult => ({ ...result(201), headers: { etag } });
  t.false(quorumDecided([stored('aaa'), undefined, undefined], 2));
  t.true(quorumDecided([stored('aaa'), undefined, stored('"aaa"')], 2));
  t.false(quorumDecided([stored('aaa'), stored('bbb'), undefined], 2), 'two successes that stored different bytes');
  t.true(quorumDecided([result(503), result(500), undefined], 2), 'two server errors decide a failure');
  t.false(quorumDecided([stored('aaa'), result(503), undefined], 2));
  t.true(quorumDecided([result(404), undefined, result(412)], 2));
});
