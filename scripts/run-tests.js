#!/usr/bin/env node
// Runs ava over the compiled tests with the TAP reporter, passes its output through, and ends with
// the one plain line CI reads: `N passed, N failed`. Exit status is ava's (non-zero on any failure).
// Extra arguments go to ava (e.g. a glob of test files to run only those).
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

const child = spawn(process.execPath, ['node_modules/ava/entrypoints/cli.mjs', '--tap', ...process.argv.slice(2)], {
  stdio: ['ignore', 'pipe', 'inherit'],
  env: { NEBULA_LOG_LEVEL: 'silent', ...process.env },
});
let passed = 0;
let failed = 0;
let skipped = 0;
const lines = createInterface({ input: child.stdout });
lines.on('line', (line) => {
  process.stdout.write(`${line}\n`);
  if (/^not ok \d+/.test(line)) failed += 1;
  else if (/^ok \d+.*# SKIP/i.test(line)) skipped += 1;
  else if (/^ok \d+/.test(line)) passed += 1;
});
child.on('close', (code) => {
  lines.close();
  // An ava crash with no TAP line for a failure still counts as one failure.
  if (code !== 0 && failed === 0) failed = 1;
  process.stdout.write(`${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}\n`);
  process.exit(code ?? 1);
});
