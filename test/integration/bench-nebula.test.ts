/**
 * nebula-bench against a real Nebula cluster (test/helpers/cluster.ts: four storage nodes and a
 * proxy as processes on free loopback ports): a few seconds of every operation through the Swift
 * API, every answer verified, the servers' CPU read from their pids.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCluster } from '../helpers/cluster.js';

interface Figures {
  phase: string;
  ops: number;
  errors: number;
  errorKinds: Record<string, number>;
  errorSamples: string[];
  serverCpuMsPerOp: number | null;
  rowsPerS: number | null;
}

function runCli(args: readonly string[], timeoutMs: number): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['dist/bench/cli.js', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`nebula-bench did not finish in ${timeoutMs} ms:\n${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

test('a tiny suite against Nebula: no errors, every phase ran, warm-up unmeasured, server CPU measured', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nebula-bench-nebula-'));
  const cluster = await startCluster();
  try {
    writeFileSync(
      join(dir, 'tiny.json'),
      JSON.stringify({
        name: 'tiny',
        containers: 2,
        phases: [
          { name: 'PUT', op: 'PUT', size: '1KiB:50,300KiB:50', concurrency: 4, count: 16, warmup: '500ms' },
          { name: 'GET', op: 'GET', size: '1KiB:50,300KiB:50', concurrency: 4, count: 16 },
          { name: 'HEAD', op: 'HEAD', size: '1KiB', concurrency: 2, count: 6 },
          { name: 'LIST', op: 'LIST', size: '0', objects: 20, listLimit: 8, concurrency: 2, count: 6 },
          { name: 'MIXED', op: 'MIXED', mix: 'GET:60,PUT:30,DELETE:10', size: '1KiB', concurrency: 4, count: 12 },
          { name: 'DELETE', op: 'DELETE', size: '1KiB:50,300KiB:50', concurrency: 4, duration: '1s' },
        ],
      }),
    );
    const pids = [cluster.proxy, ...cluster.storageNodes].map((p) => p.child.pid).filter((pid) => pid !== undefined);
    const run = await runCli(
      [
        '--auth-url',
        cluster.authUrl,
        '--user',
        'test:tester',
        '--key',
        'testing',
        '--name',
        'nebula',
        '--server-pids',
        pids.join(','),
        '--scenario',
        join(dir, 'tiny.json'),
        '--cleanup-list',
        '--idle',
        '1',
        '--no-probe',
        '--quiet',
        '--out',
        join(dir, 'out'),
      ],
      45_000,
    );
    t.is(run.code, 0, run.stderr);
    const results = JSON.parse(readFileSync(join(dir, 'out', 'results.json'), 'utf8')) as {
      phases: Figures[][];
      cleanupFailures: Record<string, number>;
    };
    const figures = new Map(results.phases.map((pair) => [pair[0]?.phase, pair[0] as Figures]));
    for (const phase of figures.values()) {
      t.is(phase.errors, 0, `${phase.phase}: ${JSON.stringify(phase.errorKinds)} ${phase.errorSamples.join('; ')}`);
    }
    t.is(figures.get('PUT')?.ops, 16, "the warm-up's operations are not counted");
    t.regex(readFileSync(join(dir, 'out', 'report.md'), 'utf8'), /Warm-ups .*: PUT 0\.5 s/);
    t.is(figures.get('GET')?.ops, 16);
    t.is(figures.get('HEAD')?.ops, 6);
    t.true((figures.get('LIST')?.rowsPerS ?? 0) > 0);
    t.is(figures.get('MIXED')?.ops, 12);
    t.true((figures.get('DELETE')?.ops ?? 0) > 0);
    t.true((figures.get('PUT')?.serverCpuMsPerOp ?? 0) > 0, 'server CPU per op measured');
    t.is(results.cleanupFailures.nebula, 0);
  } finally {
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
