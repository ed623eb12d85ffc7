import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { BatchedLogDestination } from '../../../common/log.js';

const logModuleUrl = new URL('../../../common/log.js', import.meta.url).href;

function withLogFile(run: (fd: number, path: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const folder = mkdtempSync(join(tmpdir(), 'nebula-log-'));
    const path = join(folder, 'log');
    const fd = openSync(path, 'w');
    try {
      await run(fd, path);
    } finally {
      // The flush timer armed by the last line must not find the file closed.
      await sleep(700);
      closeSync(fd);
      rmSync(folder, { recursive: true, force: true });
    }
  };
}

test('a partial batch reaches the file soon after its first line, and an idle destination writes nothing', async (t) => {
  await withLogFile(async (fd, path) => {
    const destination = new BatchedLogDestination(fd);
    destination.write('{"msg":"one"}\n');
    destination.write('{"msg":"two"}\n');
    t.is(readFileSync(path, 'utf8'), '', 'lines wait for their batch');
    await sleep(900);
    t.is(readFileSync(path, 'utf8'), '{"msg":"one"}\n{"msg":"two"}\n');
    t.is(destination.writes, 1, 'one write(2) for the two lines');
    await sleep(1200);
    t.is(destination.writes, 1, 'no empty writes while idle');
  })();
});

test('a full batch is written at once', async (t) => {
  await withLogFile(async (fd, path) => {
    const destination = new BatchedLogDestination(fd, 64);
    destination.write(`${'x'.repeat(70)}\n`);
    await sleep(50);
    t.is(readFileSync(path, 'utf8').length, 71);
  })();
});

// The exit hook lives in the process that logs: run one that logs and dies at once.
for (const ending of ['process.exit(0)', 'throw new Error("crash")']) {
  test(`lines waiting in a batch are written when the process ends by ${ending}`, async (t) => {
    const script = `
      const { createLogger } = await import(${JSON.stringify(logModuleUrl)});
      const log = createLogger('log-test', 'info');
      log.info('last words');
      ${ending};
    `;
    const child = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
      cwd: fileURLToPath(new URL('.', import.meta.url)),
      timeout: 10_000,
    }).catch((error: { stdout: string }) => error);
    t.regex(child.stdout, /"msg":"last words"/);
  });
}

// `npm start | head -3`: the reader of stdout goes away while lines wait in a batch. pino's own
// destination retried the failed write forever in its exit flush, and the process never ended.
test('a process whose stdout reader has gone still exits at once, with its own exit code', async (t) => {
  const script = `
    const { createLogger } = await import(${JSON.stringify(logModuleUrl)});
    const log = createLogger('log-test', 'info');
    process.stdin.once('data', () => {
      log.info('nobody reads this');
      process.exit(3);
    });
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  // The reader goes away first (the pipe's read end closes), then the child logs and exits.
  child.stdout.destroy();
  await sleep(200);
  child.stdin.end('go\n');
  const startMs = Date.now();
  const timeout = sleep(10_000).then(() => 'still running' as const);
  const outcome = await Promise.race([exited, timeout]);
  if (outcome === 'still running') child.kill('SIGKILL');
  t.is(outcome, 3);
  t.true(Date.now() - startMs < 5_000, `exited after ${Date.now() - startMs} ms`);
});

test('a broken descriptor drops the waiting lines and stops writing, and flush still answers', async (t) => {
  const folder = mkdtempSync(join(tmpdir(), 'nebula-log-'));
  try {
    closeSync(openSync(join(folder, 'log'), 'w'));
    const fd = openSync(join(folder, 'log'), 'r'); // writes to a read-only descriptor fail with EBADF
    const destination = new BatchedLogDestination(fd, 16);
    destination.write(`${'x'.repeat(20)}\n`);
    const error: NodeJS.ErrnoException | undefined = await new Promise((resolve) => destination.flush(resolve));
    t.is(error?.code, 'EBADF');
    const writes = destination.writes;
    destination.write('more\n');
    destination.flushSync();
    t.is(destination.writes, writes, 'nothing more is tried');
    closeSync(fd);
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});
