import test from 'ava';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuBetween, parseProcStat, processTree, sampleTree, ServerCpuMeter } from '../../../bench/cpu.js';
import { PayloadPool, variantsFor } from '../../../bench/payload.js';
import { listContainerName } from '../../../bench/runner.js';

const pool = new PayloadPool(1024 * 1024);

test('bodies are pool slices; digests match the streamed bytes, wrapping included', (t) => {
  for (const size of [0, 1, 4096, 1024 * 1024 + 17, 3 * 1024 * 1024]) {
    for (const variant of [0, 3]) {
      const body = pool.body(size, variant);
      t.is(body.length, size);
      const streamed = Buffer.concat([...pool.chunks(size, variant, 64 * 1024)]);
      t.true(streamed.equals(body));
      const digest = pool.digest(size, variant);
      t.is(digest.md5Hex, createHash('md5').update(body).digest('hex'));
      t.is(digest.sha256Hex, createHash('sha256').update(body).digest('hex'));
      t.is(Buffer.from(digest.md5Base64, 'base64').toString('hex'), digest.md5Hex);
    }
  }
  t.not(pool.digest(4096, 0).md5Hex, pool.digest(4096, 1).md5Hex);
  t.is(variantsFor(4096), 8);
  t.is(variantsFor(1024 ** 3), 2);
});

test('/proc/<pid>/stat parsing survives spaces and parentheses in the command', (t) => {
  const fields = [
    'S',
    '42',
    ...Array.from({ length: 9 }, () => '0'),
    '150',
    '50',
    '30',
    '20',
    ...Array.from({ length: 4 }, () => '0'),
    '777',
  ];
  const parsed = parseProcStat(`1234 (swift (object) server) ${fields.join(' ')} 0 0`);
  t.deepEqual(parsed, { pid: 1234, ppid: 42, cpuS: 2.5, startTicks: 777 });
  t.is(parseProcStat('garbage'), undefined);
});

test('cpuBetween counts deltas, all of a process that appeared, reaped children once', (t) => {
  const before = new Map([
    ['1@1', 10],
    ['2@5', 1],
  ]);
  const after = new Map([
    ['1@1', 12.5],
    ['3@9', 0.5],
  ]);
  // 2@5 vanished (reaped by 1@1, whose 2.5 s include its 1 s from before): counted once.
  t.is(cpuBetween(before, after), 2);
  t.is(cpuBetween(new Map([['1@1', 5]]), new Map([['1@1', 4]])), 0);
});

test('sampleTree finds this process tree on Linux', (t) => {
  const sample = sampleTree([process.ppid]);
  if (process.platform !== 'linux') {
    t.is(sample.size, 0);
    return;
  }
  t.true(sample.size >= 1);
  t.false([...sample.keys()].some((key) => key.startsWith(`${process.pid}@`)));
});

test('pause stops a server tree (children included) and resume lets it go on', async (t) => {
  if (process.platform !== 'linux') {
    t.pass();
    return;
  }
  // A parent with one child, both kept alive by a timer.
  const script = `const { spawn } = require('node:child_process');
    if (process.argv[2] !== 'child') spawn(process.execPath, [__filename, 'child'], { stdio: 'ignore' });
    setInterval(() => {}, 20);`;
  const dir = mkdtempSync(join(tmpdir(), 'bench-pause-'));
  const file = join(dir, 'server.cjs');
  writeFileSync(file, script);
  const parent = spawn(process.execPath, [file], { stdio: 'ignore' });
  try {
    const tree = async (): Promise<number[]> => {
      for (let attempt = 0; attempt < 100; attempt += 1) {
        const pids = processTree([parent.pid as number]).map((proc) => proc.pid);
        if (pids.length === 2) return pids;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      throw new Error('the child did not start');
    };
    const pids = await tree();
    const state = (pid: number): string => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] ?? '?';
    const meter = new ServerCpuMeter({ pids: [parent.pid as number], pgrep: undefined });
    const paused = meter.pause();
    await new Promise((resolve) => setTimeout(resolve, 50));
    t.deepEqual(pids.map(state), ['T', 'T']);
    paused.resume();
    paused.resume(); // idempotent
    await new Promise((resolve) => setTimeout(resolve, 50));
    t.false(pids.map(state).includes('T'));
  } finally {
    for (const proc of processTree([parent.pid as number])) process.kill(proc.pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('listing containers are per API', (t) => {
  t.is(listContainerName('swift', 10_000), 'nebula-bench-list-swift-10000');
  t.not(listContainerName('s3', 10), listContainerName('swift', 10));
});
