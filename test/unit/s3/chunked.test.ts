// aws-chunked decoding: AWS's documented signed example (seed and chunk signatures), the
// unsigned-trailer form the JS SDK sends by default, and refusals (bad chunk signature, bad
// trailer checksum, truncation) that must fail the stream before its last byte is released.
import test from 'ava';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AwsChunkedDecoder, type AwsChunkedOptions } from '../../../proxy/s3/chunked.js';
import { BodyCheckTransform, checksumOf } from '../../../proxy/s3/checksums.js';
import { signingKey } from '../../../proxy/s3/sigv4.js';

const SEED = '4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9';
const SIGS = [
  'ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648',
  '0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497',
  'b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9',
];
const signing = {
  key: signingKey('wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', '20130524', 'us-east-1', 's3'),
  amzDate: '20130524T000000Z',
  scope: '20130524/us-east-1/s3/aws4_request',
  seedSignature: SEED,
};

function signedBody(signatures: string[]): Buffer {
  const a64 = Buffer.alloc(65536, 'a');
  const a1 = Buffer.alloc(1024, 'a');
  return Buffer.concat([
    Buffer.from(`10000;chunk-signature=${signatures[0]}\r\n`),
    a64,
    Buffer.from(`\r\n400;chunk-signature=${signatures[1]}\r\n`),
    a1,
    Buffer.from(`\r\n0;chunk-signature=${signatures[2]}\r\n\r\n`),
  ]);
}

/** Feeds the body in pieces of `pieceSize` and collects what comes out, or the error. */
async function decode(
  body: Buffer,
  options: AwsChunkedOptions,
  pieceSize = 7,
): Promise<{ out: Buffer; decoder: AwsChunkedDecoder }> {
  const pieces: Buffer[] = [];
  for (let i = 0; i < body.length; i += pieceSize) pieces.push(body.subarray(i, i + pieceSize));
  const decoder = new AwsChunkedDecoder(options);
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(pieces),
    decoder,
    new Writable({
      write(chunk: Buffer, _e, cb) {
        out.push(chunk);
        cb();
      },
    }),
  );
  return { out: Buffer.concat(out), decoder };
}

test('signed chunks: AWS example decodes, any piece size', async (t) => {
  for (const pieceSize of [1, 7, 8192, 1 << 20]) {
    const { out } = await decode(signedBody(SIGS), { signing, decodedLength: 66560 }, pieceSize);
    t.is(out.length, 66560);
    t.true(out.every((b) => b === 0x61));
  }
});

test('signed chunks: a wrong chunk signature fails before the final bytes', async (t) => {
  const bad = [...SIGS];
  bad[1] = bad[1]!.replace(/^0/, '1');
  const received: Buffer[] = [];
  const decoder = new AwsChunkedDecoder({ signing, decodedLength: 66560 });
  decoder.on('data', (chunk: Buffer) => received.push(chunk));
  const error = await t.throwsAsync(pipeline(Readable.from([signedBody(bad)]), decoder));
  t.is((error as Error & { code: string }).code, 'SignatureDoesNotMatch');
  t.true(Buffer.concat(received).length < 66560);
  // The final (zero) chunk's signature is checked too.
  const badFinal = [...SIGS];
  badFinal[2] = '0'.repeat(64);
  await t.throwsAsync(decode(signedBody(badFinal), { signing }), { code: 'SignatureDoesNotMatch' } as never);
});

test('unsigned payload with trailer: data and x-amz-checksum-crc32 trailer', async (t) => {
  const data = Buffer.from('Hello, S3 trailers!'.repeat(1000));
  const crc = checksumOf('crc32', data);
  const body = Buffer.concat([
    Buffer.from(`${(10000).toString(16)}\r\n`),
    data.subarray(0, 10000),
    Buffer.from(`\r\n${(data.length - 10000).toString(16)}\r\n`),
    data.subarray(10000),
    Buffer.from(`\r\n0\r\nx-amz-checksum-crc32:${crc}\r\n\r\n`),
  ]);
  const { out, decoder } = await decode(body, { decodedLength: data.length }, 333);
  t.deepEqual(out, data);
  t.is(decoder.trailers.get('x-amz-checksum-crc32'), crc);
});

test('unsigned trailer: a wrong trailing checksum fails the checked stream', async (t) => {
  const data = Buffer.from('some object bytes');
  const body = Buffer.concat([
    Buffer.from(`${data.length.toString(16)}\r\n`),
    data,
    Buffer.from(`\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n`),
  ]);
  const decoder = new AwsChunkedDecoder({});
  const check = new BodyCheckTransform({
    checksums: ['crc32'],
    lateExpected: () => ({ crc32: decoder.trailers.get('x-amz-checksum-crc32') }),
  });
  const received: Buffer[] = [];
  check.on('data', (chunk: Buffer) => received.push(chunk));
  await t.throwsAsync(pipeline(Readable.from([body]), decoder, check), { code: 'BadDigest' } as never);
  t.is(Buffer.concat(received).length, 0, 'the held-back last piece is never released');
});

test('truncated body and wrong decoded length are refused', async (t) => {
  const full = signedBody(SIGS);
  await t.throwsAsync(decode(full.subarray(0, 60000), { signing }), { code: 'IncompleteBody' } as never);
  await t.throwsAsync(decode(full, { signing, decodedLength: 66561 }), { code: 'IncompleteBody' } as never);
  await t.throwsAsync(decode(Buffer.from('zz\r\n'), {}), { code: 'IncompleteBody' } as never);
});
