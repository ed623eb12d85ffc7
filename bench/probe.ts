/**
 * The machine's own limits, measured in the same run so the store's figures can be read against
 * them: the disk's sequential write (fsync'd) and read in a given folder, small synced file
 * creates per second (what a small-object PUT costs the disk at least), loopback TCP throughput,
 * and one core's MD5 throughput (what every GET verification and Swift's ETag cost).
 * Each probe is bounded in bytes and time and cleans up its files.
 */
import { createHash } from 'node:crypto';
import { closeSync, constants, fsyncSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { createConnection, createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

export interface ProbeResult {
  readonly folder: string;
  readonly diskWriteMBPerS: number;
  readonly diskReadMBPerS: number;
  /** `direct` (O_DIRECT: the disk) or `cached` (the page cache: O_DIRECT refused, e.g. tmpfs). */
  readonly diskReadMode: 'direct' | 'cached';
  readonly syncedCreatesPerS: number;
  readonly loopbackMBPerS: number;
  readonly md5MBPerS: number;
  readonly bytesPerProbe: number;
}

const CHUNK_BYTES = 4 * 1024 * 1024;

function diskWrite(path: string, bytes: number, chunk: Buffer): number {
  const begun = performance.now();
  const fd = openSync(path, 'w');
  try {
    for (let written = 0; written < bytes; written += chunk.length) writeSync(fd, chunk);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return bytes / 1e6 / ((performance.now() - begun) / 1000);
}

/**
 * Reads the file back with O_DIRECT so the page cache (which just took the whole file) does not
 * answer. O_DIRECT wants an aligned buffer and JavaScript cannot see addresses, so it tries the
 * 16-byte steps into a larger buffer (allocations are 16-byte aligned) until the kernel accepts
 * one: at most 256 tries, each a cheap EINVAL.
 */
function diskRead(path: string, bytes: number): { mbPerS: number; mode: 'direct' | 'cached' } {
  const raw = Buffer.allocUnsafeSlow(CHUNK_BYTES + 4096);
  let fd: number | undefined;
  let view: Buffer | undefined;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_DIRECT);
    for (let offset = 0; offset < 4096 && view === undefined; offset += 16) {
      try {
        readSync(fd, raw, offset, CHUNK_BYTES, 0);
        view = raw.subarray(offset, offset + CHUNK_BYTES);
      } catch {
        // EINVAL: misaligned, try the next offset
      }
    }
  } catch {
    // O_DIRECT not supported by this filesystem
  }
  const mode = view === undefined ? 'cached' : 'direct';
  let readFd: number;
  if (view === undefined || fd === undefined) {
    if (fd !== undefined) closeSync(fd);
    readFd = openSync(path, 'r');
    view = raw.subarray(0, CHUNK_BYTES);
  } else readFd = fd;
  const begun = performance.now();
  try {
    let read = 0;
    for (let position = 0; position < bytes; position += CHUNK_BYTES) {
      const got = readSync(readFd, view, 0, CHUNK_BYTES, position);
      if (got <= 0) break;
      read += got;
    }
    return { mbPerS: read / 1e6 / ((performance.now() - begun) / 1000), mode };
  } finally {
    closeSync(readFd);
  }
}

/** 4 KiB files created, written, fsync'd and closed, one after another, for `seconds`. */
function syncedCreates(folder: string, seconds: number, chunk: Buffer): number {
  const small = chunk.subarray(0, 4096);
  const begun = performance.now();
  let count = 0;
  for (; count < 100_000 && performance.now() - begun < seconds * 1000; count += 1) {
    const fd = openSync(join(folder, `small-${count}`), 'w');
    writeSync(fd, small);
    fsyncSync(fd);
    closeSync(fd);
  }
  return count / ((performance.now() - begun) / 1000);
}

function md5Throughput(chunk: Buffer, seconds: number): number {
  const begun = performance.now();
  let bytes = 0;
  const hash = createHash('md5');
  for (let rounds = 0; rounds < 10_000 && performance.now() - begun < seconds * 1000; rounds += 1) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  hash.digest();
  return bytes / 1e6 / ((performance.now() - begun) / 1000);
}

/** Streams `bytes` over a loopback TCP connection and times it at the receiver. */
async function loopbackThroughput(bytes: number, chunk: Buffer, timeoutMs: number): Promise<number> {
  const server = createServer();
  try {
    const received = new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('loopback probe timed out')), timeoutMs);
      server.on('connection', (socket) => {
        let got = 0;
        let begun = 0;
        socket.on('data', (data: Buffer) => {
          if (begun === 0) begun = performance.now();
          got += data.length;
        });
        socket.on('end', () => {
          clearTimeout(timer);
          resolve(got / 1e6 / ((performance.now() - begun) / 1000));
        });
        socket.on('error', (error) => {
          clearTimeout(timer);
          reject(error);
        });
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const client = createConnection({ host: '127.0.0.1', port });
    client.on('error', () => undefined); // the receiver's promise reports failures
    let sent = 0;
    const pump = (): void => {
      while (sent < bytes) {
        sent += chunk.length;
        if (!client.write(chunk)) {
          client.once('drain', pump);
          return;
        }
      }
      client.end();
    };
    client.once('connect', pump);
    return await received;
  } finally {
    server.close();
  }
}

export async function runProbe(
  parentFolder: string,
  bytesPerProbe = 256 * 1024 * 1024,
  log: (line: string) => void = () => undefined,
): Promise<ProbeResult> {
  const folder = mkdtempSync(join(parentFolder, 'nebula-bench-probe-'));
  const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
  // Random-ish, incompressible content (a filesystem that compresses must not flatter the disk).
  for (let index = 0; index < chunk.length; index += 4) chunk.writeUInt32LE((Math.random() * 0x100000000) >>> 0, index);
  try {
    const file = join(folder, 'sequential');
    log(`probe: disk write ${bytesPerProbe / 1024 / 1024} MiB with fsync in ${parentFolder}`);
    const diskWriteMBPerS = diskWrite(file, bytesPerProbe, chunk);
    log('probe: disk read');
    const read = diskRead(file, bytesPerProbe);
    rmSync(file);
    log('probe: synced 4 KiB creates');
    const syncedCreatesPerS = syncedCreates(folder, 2, chunk);
    log('probe: loopback TCP');
    const loopbackMBPerS = await loopbackThroughput(bytesPerProbe * 4, chunk, 60_000);
    log('probe: MD5, one core');
    const md5MBPerS = md5Throughput(chunk, 1.5);
    return {
      folder: parentFolder,
      diskWriteMBPerS,
      diskReadMBPerS: read.mbPerS,
      diskReadMode: read.mode,
      syncedCreatesPerS,
      loopbackMBPerS,
      md5MBPerS,
      bytesPerProbe,
    };
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}
