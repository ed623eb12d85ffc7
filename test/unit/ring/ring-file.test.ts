import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { RingFileError } from '../../../ring/errors.js';
import {
  pythonFloatRepr,
  pythonJsonDumps,
  readRingFile,
  serializeRingData,
  writeRingFile,
  type RingData,
} from '../../../ring/ring-file.js';
import { builderWith, randomDevices } from './fixtures.js';

function tempFolder(t: { teardown: (fn: () => void) => void }): string {
  const folder = mkdtempSync(join(tmpdir(), 'nebula-ring-file-'));
  t.teardown(() => rmSync(folder, { recursive: true, force: true }));
  return folder;
}

function sampleRing(): RingData {
  const builder = builderWith(
    randomDevices(7, { zones: 4, hostsPerZoneMax: 2, devicesPerHostMax: 2, weightMin: 50, weightMax: 150 }),
    6,
  );
  builder.rebalance(1);
  return builder.getRingData();
}

/** A payload with a custom header and table, for the corruption cases. */
function payload(header: Record<string, unknown>, table: Buffer): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const head = Buffer.alloc(10);
  head.write('R1NG', 0, 'latin1');
  head.writeUInt16BE(1, 4);
  head.writeUInt32BE(json.length, 6);
  return Buffer.concat([head, json, table]);
}

const DEV = { id: 0, region: 1, zone: 1, ip: '10.0.0.1', port: 6200, device: 'sda', weight: 1.0, meta: '' };

test('Python float repr, as Swift writes weights', (t) => {
  t.is(pythonFloatRepr(100), '100.0');
  t.is(pythonFloatRepr(0.5), '0.5');
  t.is(pythonFloatRepr(33.333333333333336), '33.333333333333336');
  t.is(pythonFloatRepr(0.0001), '0.0001');
  t.is(pythonFloatRepr(0.00001), '1e-05');
  t.is(pythonFloatRepr(1.5e-7), '1.5e-07');
  t.is(pythonFloatRepr(1e16), '1e+16');
  t.is(pythonFloatRepr(123456789012345680), '1.2345678901234568e+17');
  t.is(pythonFloatRepr(9999999999999998), '9999999999999998.0');
  t.is(pythonFloatRepr(-2.5), '-2.5');
});

test('Python json.dumps(sort_keys=True, ensure_ascii=True)', (t) => {
  t.is(
    pythonJsonDumps({ z: 1, a: [1, 'x', null, true], weight: 3, meta: 'caf\u00e9 \u{1f600}\n"' }),
    '{"a": [1, "x", null, true], "meta": "caf\\u00e9 \\ud83d\\ude00\\n\\"", "weight": 3.0, "z": 1}',
  );
  t.is(pythonJsonDumps({}), '{}');
  t.is(pythonJsonDumps([]), '[]');
});

test('write, read, write again: bit for bit the same file', (t) => {
  const folder = tempFolder(t);
  const data = sampleRing();
  const first = join(folder, 'object.ring.gz');
  const second = join(folder, 'again.ring.gz');
  writeRingFile(first, data);
  const loaded = readRingFile(first);
  t.deepEqual(loaded.devs, data.devs);
  t.is(loaded.partShift, data.partShift);
  t.is(loaded.version, data.version);
  t.deepEqual(loaded.replica2part2dev, data.replica2part2dev);
  writeRingFile(second, loaded);
  // The gzip header names the file (as CPython's GzipFile does), so compare like with like.
  writeRingFile(join(folder, 'x', '..', 'object.ring.gz'), loaded);
  t.true(readFileSync(first).equals(readFileSync(join(folder, 'object.ring.gz'))));
  t.true(gunzipSync(readFileSync(first)).equals(gunzipSync(readFileSync(second))));
  t.true(serializeRingData(loaded).equals(gunzipSync(readFileSync(first))));
});

test('gzip header as Swift writes it: file name without .gz, fixed mtime, level 9', (t) => {
  const folder = tempFolder(t);
  const path = join(folder, 'object.ring.gz');
  writeRingFile(path, sampleRing());
  const bytes = readFileSync(path);
  t.deepEqual([...bytes.subarray(0, 4)], [0x1f, 0x8b, 8, 8]);
  t.is(bytes.readUInt32LE(4), 1300507380);
  t.is(bytes[8], 2);
  t.is(bytes[9], 255);
  t.is(bytes.toString('latin1', 10, 10 + 'object.ring'.length + 1), 'object.ring\u0000');
});

test('a big-endian ring file reads the same', (t) => {
  const folder = tempFolder(t);
  const table = Buffer.alloc(4 * 2 * 2);
  const ids = [0, 1, 1, 0, 1, 0, 0, 1];
  ids.forEach((id, index) => table.writeUInt16BE(id, index * 2));
  const devs = [DEV, { ...DEV, id: 1, ip: '10.0.0.2' }];
  const path = join(folder, 'big.ring.gz');
  writeFileSync(path, gzipSync(payload({ devs, part_shift: 30, replica_count: 2, byteorder: 'big' }, table)));
  const data = readRingFile(path);
  t.deepEqual([...(data.replica2part2dev[0] ?? [])], [0, 1, 1, 0]);
  t.deepEqual([...(data.replica2part2dev[1] ?? [])], [1, 0, 0, 1]);
});

test('a fractional last replica (shorter array) is accepted', (t) => {
  const folder = tempFolder(t);
  const table = Buffer.alloc(4 * 2 + 2 * 2); // one full replica of 4 partitions, half of another
  const path = join(folder, 'frac.ring.gz');
  writeFileSync(path, gzipSync(payload({ devs: [DEV], part_shift: 30, replica_count: 2, byteorder: 'little' }, table)));
  const data = readRingFile(path);
  t.is(data.replica2part2dev[1]?.length, 2);
});

test('corrupt ring files are refused with a clear message', (t) => {
  const folder = tempFolder(t);
  const cases: [string, Buffer, RegExp][] = [
    ['not-gzip', Buffer.from('hello'), /not a valid gzip stream/],
    ['truncated-gzip', gzipSync(Buffer.alloc(1000)).subarray(0, 20), /not a valid gzip stream/],
    ['bad-magic', gzipSync(Buffer.from('XXXX\u0000\u0001\u0000\u0000\u0000\u0002{}')), /bad magic "XXXX"/],
    ['pickle', gzipSync(Buffer.from([0x80, 2, 0x7d, 0x71, 0, 0x28, 0x55, 4, 0, 0, 0, 0])), /old pickled ring/],
    [
      'bad-version',
      (() => {
        const body = payload({ devs: [], part_shift: 30, replica_count: 1 }, Buffer.alloc(8));
        body.writeUInt16BE(2, 4);
        return gzipSync(body);
      })(),
      /unknown ring format version 2/,
    ],
    [
      'not-json',
      gzipSync(Buffer.concat([Buffer.from('R1NG\u0000\u0001\u0000\u0000\u0000\u0003{x}', 'latin1')])),
      /header is not JSON/,
    ],
    [
      'short-table',
      gzipSync(payload({ devs: [DEV], part_shift: 30, replica_count: 3, byteorder: 'little' }, Buffer.alloc(10))),
      /partition table is 10 bytes/,
    ],
    [
      'long-table',
      gzipSync(payload({ devs: [DEV], part_shift: 30, replica_count: 1, byteorder: 'little' }, Buffer.alloc(10))),
      /partition table is 10 bytes/,
    ],
    [
      'missing-device',
      gzipSync(
        payload(
          { devs: [DEV], part_shift: 30, replica_count: 1, byteorder: 'little' },
          Buffer.from([0, 0, 1, 0, 0, 0, 0, 0]),
        ),
      ),
      /partition 1 replica 0 points at device 1, which is not in the ring/,
    ],
    [
      'bad-power',
      gzipSync(payload({ devs: [DEV], part_shift: 2, replica_count: 1 }, Buffer.alloc(2))),
      /part power 30, outside 0\.\.24/,
    ],
    [
      'bad-device',
      gzipSync(payload({ devs: [{ ...DEV, zone: 'x' }], part_shift: 31, replica_count: 1 }, Buffer.alloc(4))),
      /device 0 has no integer zone/,
    ],
  ];
  for (const [name, bytes, message] of cases) {
    const path = join(folder, `${name}.ring.gz`);
    writeFileSync(path, bytes);
    const error = t.throws(() => readRingFile(path), { instanceOf: RingFileError, message }, name);
    t.is(error?.code, 'RingFileCorrupt');
  }
  t.throws(() => readRingFile(join(folder, 'absent.ring.gz')), {
    instanceOf: RingFileError,
    message: /cannot read ring file/,
  });
});
