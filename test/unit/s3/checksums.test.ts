// Checksums against their published check values ("123456789"), and the body check transform.
import test from 'ava';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BodyCheckTransform, checksumOf, createChecksum } from '../../../proxy/s3/checksums.js';

const CHECK = Buffer.from('123456789');
const hex = (b64: string): string => Buffer.from(b64, 'base64').toString('hex');

test('CRC-32 and CRC-32C check values', (t) => {
  t.is(hex(checksumOf('crc32', CHECK)), 'cbf43926');
  t.is(hex(checksumOf('crc32c', CHECK)), 'e3069283');
  t.is(checksumOf('crc32', Buffer.alloc(0)), 'AAAAAA==');
});

test('SHA-1 and SHA-256 are base64 digests', (t) => {
  t.is(checksumOf('sha1', CHECK), createHash('sha1').update(CHECK).digest('base64'));
  t.is(checksumOf('sha256', CHECK), createHash('sha256').update(CHECK).digest('base64'));
});

test('incremental equals one-shot', (t) => {
  const data = Buffer.from(Array.from({ length: 100_000 }, (_, i) => (i * 31) & 0xff));
  for (const algorithm of ['crc32', 'crc32c', 'sha1', 'sha256'] as const) {
    const checksum = createChecksum(algorithm);
    for (let i = 0; i < data.length; i += 4099) checksum.update(data.subarray(i, i + 4099));
    t.is(checksum.digest(), checksumOf(algorithm, data), algorithm);
  }
});

test('body check: SHA-256 mismatch is XAmzContentSHA256Mismatch and releases nothing', async (t) => {
  const data = Buffer.from('payload');
  const ok = new BodyCheckTransform({
    expectedSha256Hex: createHash('sha256').update(data).digest('hex'),
    checksums: ['crc32c'],
  });
  ok.resume();
  await pipeline(Readable.from([data]), ok);
  t.is(ok.results.crc32c, checksumOf('crc32c', data));
  t.is(ok.md5Hex, createHash('md5').update(data).digest('hex'));
  const bad = new BodyCheckTransform({ expectedSha256Hex: '0'.repeat(64) });
  let released = 0;
  bad.on('data', (chunk: Buffer) => (released += chunk.length));
  await t.throwsAsync(pipeline(Readable.from([data]), bad), { code: 'XAmzContentSHA256Mismatch' } as never);
  t.is(released, 0);
});

test('body check: Content-MD5 and checksum header mismatches', async (t) => {
  const data = Buffer.from('payload');
  const badMd5 = new BodyCheckTransform({ expectedMd5Base64: createHash('md5').update('other').digest('base64') });
  badMd5.resume();
  await t.throwsAsync(pipeline(Readable.from([data]), badMd5), { code: 'BadDigest' } as never);
  const badSum = new BodyCheckTransform({ expected: { sha1: checksumOf('sha1', Buffer.from('x')) } });
  badSum.resume();
  await t.throwsAsync(pipeline(Readable.from([data]), badSum), { code: 'BadDigest' } as never);
});

test('body check: Content-MD5 left to the store is not hashed here, other checks still run', async (t) => {
  const data = Buffer.from('payload');
  const otherMd5 = createHash('md5').update('other').digest('base64');
  const passed = new BodyCheckTransform({ expectedMd5Base64: otherMd5, md5: false, md5CheckedByStore: true });
  passed.resume();
  await pipeline(Readable.from([data]), passed);
  t.is(passed.md5Hex, '');
  const badSum = new BodyCheckTransform({
    expectedMd5Base64: otherMd5,
    md5: false,
    md5CheckedByStore: true,
    expected: { crc32: checksumOf('crc32', Buffer.from('x')) },
  });
  badSum.resume();
  await t.throwsAsync(pipeline(Readable.from([data]), badSum), { code: 'BadDigest' } as never);
});
