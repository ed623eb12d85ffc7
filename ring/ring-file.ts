/**
 * OpenStack Swift's ring file (`*.ring.gz`), read and written exactly as Swift 2.30's `RingData`
 * does it, so Nebula and Swift can load each other's rings.
 *
 * Layout inside the gzip stream: `R1NG`, a big-endian uint16 format version (1), a big-endian
 * uint32 length, that many bytes of JSON (`json.dumps(sort_keys=True, ensure_ascii=True)`: devs,
 * part_shift, replica_count, byteorder, optional version and next_part_power), then one uint16
 * array per replica (`replica2part2dev`, in the JSON's `byteorder`), each `2 ** part_power` long
 * except possibly a shorter last one (fractional replica counts).
 *
 * The uncompressed payload Nebula writes is byte-identical to Swift's for the same ring; the gzip
 * header is Swift's too (file name without `.gz`, the fixed mtime 1300507380, level 9), but the
 * deflate bytes come from Node's bundled zlib and so differ from CPython's. Writes are atomic
 * (temp file in the same folder, fsync, rename, fsync of the folder). Anything malformed is
 * refused with a `RingFileError` that says what is wrong.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, unlinkSync, writeSync, fchmodSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { crc32, deflateRawSync, gunzip, gunzipSync } from 'node:zlib';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { pythonJsonString } from '../common/python-json.js';
import { RingFileError } from './errors.js';

/** Swift marks an unassigned slot in the builder with the top uint16; a ring file never holds it. */
export const NONE_DEVICE = 0xffff;
/** Part powers Nebula accepts: a 2^24 x 3 table is already 96 MiB of uint16. */
export const PART_POWER_MAX = 24;
/** More replicas than this is a typo, not a policy. */
export const REPLICA_ARRAYS_MAX = 32;
/** Swift's fixed gzip mtime: the same ring data always makes the same bytes. */
const GZIP_MTIME_SECONDS = 1300507380;
const MAGIC = 'R1NG';
const HOST_BYTE_ORDER: 'little' | 'big' = endianness() === 'LE' ? 'little' : 'big';

export type JsonValue = string | number | boolean | null | JsonValue[] | { readonly [key: string]: JsonValue };

/** One device as a ring file stores it: Swift's field names, plus any extra keys kept as they are. */
export type RingDeviceRecord = { readonly [key: string]: JsonValue };

export interface RingData {
  /** Indexed by device id; removed devices leave `null` holes, as in Swift. */
  devs: readonly (RingDeviceRecord | null)[];
  /** 32 - part_power. */
  partShift: number;
  /** One array per replica, each mapping partition -> device id. */
  replica2part2dev: readonly Uint16Array[];
  version?: number;
  nextPartPower?: number;
}

export function partPowerOf(data: Pick<RingData, 'partShift'>): number {
  return 32 - data.partShift;
}

// ---------------------------------------------------------------------------------------------
// Python-compatible JSON (json.dumps(obj, sort_keys=True, ensure_ascii=True))

/** Keys Swift always stores as Python floats (so `100` is written `100.0`). */
const FLOAT_KEYS: ReadonlySet<string> = new Set(['weight']);

/** Python's `repr(float)`: shortest round-trip digits, fixed between 1e-4 and 1e16, else `1e+16`. */
export function pythonFloatRepr(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return 'Infinity';
  if (value === -Infinity) return '-Infinity';
  if (value === 0) return Object.is(value, -0) ? '-0.0' : '0.0';
  const sign = value < 0 ? '-' : '';
  const [mantissa = '0', exponentText = '0'] = Math.abs(value).toExponential().split('e');
  const digits = mantissa.replace('.', '');
  const exponent = Number(exponentText);
  if (exponent >= -4 && exponent < 16) {
    if (exponent >= 0) {
      if (digits.length <= exponent + 1) return `${sign}${digits}${'0'.repeat(exponent + 1 - digits.length)}.0`;
      return `${sign}${digits.slice(0, exponent + 1)}.${digits.slice(exponent + 1)}`;
    }
    return `${sign}0.${'0'.repeat(-exponent - 1)}${digits}`;
  }
  const head = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
  const absExponent = Math.abs(exponent);
  return `${sign}${head}e${exponent < 0 ? '-' : '+'}${absExponent < 10 ? '0' : ''}${absExponent}`;
}

function pythonNumber(value: number, asFloat: boolean): string {
  if (!asFloat && Number.isSafeInteger(value)) return String(value);
  return pythonFloatRepr(value);
}

export function pythonJsonDumps(value: JsonValue, key?: string): string {
  if (value === null) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') return pythonNumber(value, key !== undefined && FLOAT_KEYS.has(key));
  if (typeof value === 'string') return pythonJsonString(value);
  if (Array.isArray(value)) return `[${value.map((item) => pythonJsonDumps(item)).join(', ')}]`;
  const record = value;
  const keys = Object.keys(record).sort();
  const parts: string[] = [];
  for (const name of keys) {
    const item = record[name];
    if (item === undefined) continue;
    parts.push(`${pythonJsonString(name)}: ${pythonJsonDumps(item, name)}`);
  }
  return `{${parts.join(', ')}}`;
}

// ---------------------------------------------------------------------------------------------
// Serialization

/** The uncompressed `R1NG` payload, byte-identical to Swift's `RingData.serialize_v1`. */
export function serializeRingData(data: RingData): Buffer {
  assertRingData(data, '<in memory>');
  const header: Record<string, JsonValue> = {
    devs: data.devs.map((dev) => dev),
    part_shift: data.partShift,
    replica_count: data.replica2part2dev.length,
    byteorder: HOST_BYTE_ORDER,
  };
  if (data.version !== undefined) header.version = data.version;
  if (data.nextPartPower !== undefined) header.next_part_power = data.nextPartPower;
  const json = Buffer.from(pythonJsonDumps(header), 'ascii');
  let tableBytes = 0;
  for (const part2dev of data.replica2part2dev) tableBytes += part2dev.byteLength;
  const out = Buffer.allocUnsafe(4 + 2 + 4 + json.length + tableBytes);
  out.write(MAGIC, 0, 'ascii');
  out.writeUInt16BE(1, 4);
  out.writeUInt32BE(json.length, 6);
  json.copy(out, 10);
  let offset = 10 + json.length;
  for (const part2dev of data.replica2part2dev) {
    // Native order, as Python's array.tofile writes it; the header names that order.
    Buffer.from(part2dev.buffer, part2dev.byteOffset, part2dev.byteLength).copy(out, offset);
    offset += part2dev.byteLength;
  }
  return out;
}

/** Gzip as CPython's `GzipFile(filename, 'wb', mtime=1300507380)` frames it (level 9, FNAME). */
export function gzipLikeSwift(payload: Buffer, fileName: string): Buffer {
  let name = basename(fileName);
  if (name.endsWith('.gz')) name = name.slice(0, -3);
  const nameBytes = /^[\u0000-\u00ff]*$/.test(name) ? Buffer.from(name, 'latin1') : Buffer.alloc(0);
  const header = Buffer.alloc(10);
  header[0] = 0x1f;
  header[1] = 0x8b;
  header[2] = 8; // deflate
  header[3] = nameBytes.length > 0 ? 0x08 : 0; // FNAME
  header.writeUInt32LE(GZIP_MTIME_SECONDS, 4);
  header[8] = 2; // XFL: maximum compression
  header[9] = 255; // OS: unknown, as CPython writes
  const body = deflateRawSync(payload, { level: 9, memLevel: 8, windowBits: 15 });
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc32(payload) >>> 0, 0);
  trailer.writeUInt32LE(payload.length >>> 0, 4);
  const parts = [header];
  if (nameBytes.length > 0) parts.push(nameBytes, Buffer.from([0]));
  parts.push(body, trailer);
  return Buffer.concat(parts);
}

/** Writes `path` atomically: a reader sees the old ring or the new one, never half of one. */
export function writeRingFile(path: string, data: RingData): void {
  const bytes = gzipLikeSwift(serializeRingData(data), path);
  writeFileAtomicSync(path, bytes, 0o644);
}

/** Temp file beside the target, fsync, rename over it, fsync the folder. */
export function writeFileAtomicSync(path: string, bytes: Uint8Array, mode: number): void {
  const folder = dirname(path);
  const temp = join(folder, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fd = openSync(temp, 'wx', mode);
  let renamed = false;
  try {
    let offset = 0;
    // A bounded loop: each write makes progress or throws.
    while (offset < bytes.length) offset += writeSync(fd, bytes, offset, bytes.length - offset);
    fchmodSync(fd, mode);
    fsyncSync(fd);
    closeSync(fd);
    renameSync(temp, path);
    renamed = true;
  } finally {
    if (!renamed) {
      try {
        closeSync(fd);
      } catch {
        // already closed
      }
      try {
        unlinkSync(temp);
      } catch {
        // nothing to clean
      }
    }
  }
  try {
    const dirFd = openSync(folder, 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  } catch {
    // Some filesystems refuse fsync on a directory; the rename itself is already atomic.
  }
}

// ---------------------------------------------------------------------------------------------
// Deserialization

export function readRingFile(path: string): RingData {
  let compressed: Buffer;
  try {
    compressed = readFileSync(path);
  } catch (error) {
    throw new RingFileError(`cannot read ring file ${path}: ${(error as Error).message}`, { cause: error });
  }
  return parseRingFile(compressed, path);
}

const gunzipAsync = promisify(gunzip);

/** The same as `readRingFile`, off the event loop for the large parts (read and inflate). */
export async function readRingFileAsync(path: string): Promise<RingData> {
  let compressed: Buffer;
  try {
    compressed = await readFile(path);
  } catch (error) {
    throw new RingFileError(`cannot read ring file ${path}: ${(error as Error).message}`, { cause: error });
  }
  let payload: Buffer;
  try {
    payload = await gunzipAsync(compressed);
  } catch (error) {
    throw new RingFileError(`ring file ${path} is not a valid gzip stream: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return parseRingPayload(payload, path);
}

export function parseRingFile(compressed: Buffer, source: string): RingData {
  let payload: Buffer;
  try {
    payload = gunzipSync(compressed);
  } catch (error) {
    throw new RingFileError(`ring file ${source} is not a valid gzip stream: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return parseRingPayload(payload, source);
}

function isRecord(value: unknown): value is Record<string, JsonValue> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Parses the uncompressed payload and checks every field and every table entry. */
export function parseRingPayload(payload: Buffer, source: string): RingData {
  const fail = (why: string): never => {
    throw new RingFileError(`ring file ${source} is corrupt: ${why}`);
  };
  if (payload.length < 10) fail(`only ${payload.length} bytes after decompression`);
  const magic = payload.toString('latin1', 0, 4);
  if (magic !== MAGIC) {
    if (payload[0] === 0x80) fail('it is an old pickled ring (pre-R1NG format), which Nebula does not read');
    fail(`bad magic ${JSON.stringify(magic)}, expected "R1NG"`);
  }
  const formatVersion = payload.readUInt16BE(4);
  if (formatVersion !== 1) fail(`unknown ring format version ${formatVersion}`);
  const jsonLength = payload.readUInt32BE(6);
  if (10 + jsonLength > payload.length) fail(`header length ${jsonLength} runs past the end of the file`);
  let header: unknown;
  try {
    header = JSON.parse(payload.toString('utf8', 10, 10 + jsonLength));
  } catch (error) {
    return fail(`header is not JSON (${(error as Error).message})`);
  }
  if (!isRecord(header)) return fail('header is not a JSON object');
  const partShift = header.part_shift;
  if (typeof partShift !== 'number' || !Number.isInteger(partShift)) return fail('part_shift is not an integer');
  const partPower = 32 - partShift;
  if (partPower < 0 || partPower > PART_POWER_MAX) {
    fail(`part_shift ${partShift} gives part power ${partPower}, outside 0..${PART_POWER_MAX}`);
  }
  const replicaCount = header.replica_count;
  if (typeof replicaCount !== 'number' || !Number.isInteger(replicaCount)) fail('replica_count is not an integer');
  const replicaArrays = replicaCount as number;
  if (replicaArrays < 1 || replicaArrays > REPLICA_ARRAYS_MAX) {
    fail(`replica_count ${replicaArrays} is outside 1..${REPLICA_ARRAYS_MAX}`);
  }
  const byteOrder = header.byteorder ?? HOST_BYTE_ORDER;
  if (byteOrder !== 'little' && byteOrder !== 'big') fail(`byteorder ${JSON.stringify(byteOrder)} is unknown`);
  const rawDevs = header.devs;
  if (!Array.isArray(rawDevs)) return fail('devs is not a list');
  const devs: (RingDeviceRecord | null)[] = [];
  for (let index = 0; index < rawDevs.length; index += 1) {
    const dev = rawDevs[index];
    if (dev === null || dev === undefined) {
      devs.push(null);
      continue;
    }
    if (!isRecord(dev)) return fail(`device ${index} is not an object`);
    checkDeviceRecord(dev, index, fail);
    devs.push(dev);
  }
  if (devs.length > NONE_DEVICE) fail(`${devs.length} devices is more than a uint16 table can address`);

  const partitionCount = 2 ** partPower;
  const fullBytes = partitionCount * 2;
  const tableBytes = payload.length - 10 - jsonLength;
  const expectedMin = (replicaArrays - 1) * fullBytes + 2; // the last array may be partial
  const expectedMax = replicaArrays * fullBytes;
  if (tableBytes < expectedMin || tableBytes > expectedMax || tableBytes % 2 !== 0) {
    fail(
      `partition table is ${tableBytes} bytes; ${replicaArrays} replicas of 2^${partPower} partitions need ` +
        `${expectedMax} (a fractional last replica: at least ${expectedMin})`,
    );
  }
  const replica2part2dev: Uint16Array[] = [];
  let offset = 10 + jsonLength;
  const swap = byteOrder !== HOST_BYTE_ORDER;
  for (let replica = 0; replica < replicaArrays; replica += 1) {
    const length = Math.min(fullBytes, payload.length - offset);
    // Copy into a fresh, aligned buffer: the payload slice may sit at an odd offset.
    const part2dev = new Uint16Array(length / 2);
    Buffer.from(part2dev.buffer).set(payload.subarray(offset, offset + length));
    if (swap) Buffer.from(part2dev.buffer).swap16();
    offset += length;
    for (let partition = 0; partition < part2dev.length; partition += 1) {
      const id = part2dev[partition] ?? NONE_DEVICE;
      if (id >= devs.length || devs[id] === null) {
        fail(`partition ${partition} replica ${replica} points at device ${id}, which is not in the ring`);
      }
    }
    replica2part2dev.push(part2dev);
  }
  const data: RingData = { devs, partShift, replica2part2dev };
  if (header.version !== undefined && header.version !== null) {
    if (typeof header.version !== 'number') fail('version is not a number');
    data.version = header.version as number;
  }
  if (header.next_part_power !== undefined && header.next_part_power !== null) {
    if (typeof header.next_part_power !== 'number') fail('next_part_power is not a number');
    data.nextPartPower = header.next_part_power as number;
  }
  return data;
}

function checkDeviceRecord(dev: Record<string, JsonValue>, index: number, fail: (why: string) => never): void {
  if (dev.id !== index) fail(`device at position ${index} has id ${JSON.stringify(dev.id)}`);
  for (const key of ['zone', 'port'] as const) {
    if (typeof dev[key] !== 'number' || !Number.isInteger(dev[key])) fail(`device ${index} has no integer ${key}`);
  }
  if (dev.region !== undefined && (typeof dev.region !== 'number' || !Number.isInteger(dev.region))) {
    fail(`device ${index} has a non-integer region`);
  }
  for (const key of ['ip', 'device'] as const) {
    if (typeof dev[key] !== 'string') fail(`device ${index} has no ${key} string`);
  }
  if (dev.weight !== undefined && typeof dev.weight !== 'number') fail(`device ${index} has a non-numeric weight`);
}

/** Checks data about to be written: the same rules the reader applies, so we never write a bad file. */
function assertRingData(data: RingData, source: string): void {
  const fail = (why: string): never => {
    throw new RingFileError(`refusing to write ring ${source}: ${why}`);
  };
  const partPower = 32 - data.partShift;
  if (!Number.isInteger(partPower) || partPower < 0 || partPower > PART_POWER_MAX) {
    fail(`part power ${partPower} is outside 0..${PART_POWER_MAX}`);
  }
  const count = data.replica2part2dev.length;
  if (count < 1 || count > REPLICA_ARRAYS_MAX) fail(`${count} replica arrays`);
  const partitionCount = 2 ** partPower;
  data.replica2part2dev.forEach((part2dev, replica) => {
    const last = replica === count - 1;
    if (part2dev.length > partitionCount || (!last && part2dev.length !== partitionCount) || part2dev.length === 0) {
      fail(`replica ${replica} has ${part2dev.length} partitions, expected ${partitionCount}`);
    }
    for (let partition = 0; partition < part2dev.length; partition += 1) {
      const id = part2dev[partition] ?? NONE_DEVICE;
      const dev = data.devs[id];
      if (dev === null || dev === undefined) fail(`partition ${partition} replica ${replica} has no device (${id})`);
    }
  });
  data.devs.forEach((dev, index) => {
    if (dev !== null && dev.id !== index) fail(`device at position ${index} has id ${JSON.stringify(dev.id)}`);
  });
}
