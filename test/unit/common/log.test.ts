import test from 'ava';
import { execFile } from 'node:child_process';
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
    let writes = 0;
    destination.sink.on('write', () => (writes += 1));
    destination.write('{"msg":"one"}\n');
    destination.write('{"msg":"two"}\n');
    t.is(readFileSync(path, 'utf8'), '', 'lines wait for their batch');
    await sleep(900);
    t.is(readFileSync(path, 'utf8'), '{"msg":"one"}\n{"msg":"two"}\n');
    t.is(writes, 1, 'one write(2) for the two lines');
    await sleep(1200);
    t.is(writes, 1, 'no empty writes while idle');
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
