#!/usr/bin/env node
// Builds the storage node's page_cache addon (storage-node/native/) with node-gyp, as the first step
// of `npm run build` (so of `npm test` and `npm start`). Skipped when the addon is newer than its
// sources. Never fails the build: without a compiler the storage node runs and only warns that it
// cannot drop objects from the page cache (storage-node/diskfile/page-cache.ts).
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const nativeDir = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'storage-node', 'native');
const addon = join(nativeDir, 'build', 'Release', 'page_cache.node');
const sources = ['binding.gyp', 'page-cache.c'].map((name) => join(nativeDir, name));

const mtimeMs = (path) => statSync(path).mtimeMs;
if (existsSync(addon) && sources.every((source) => mtimeMs(source) <= mtimeMs(addon))) process.exit(0);

// npm passes its own node-gyp to the scripts it runs; otherwise take the one bundled with npm.
const prefix = resolve(dirname(process.execPath), '..');
const nodeGyp =
  process.env.npm_config_node_gyp ??
  join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
// Node's own headers when installed beside it (Debian, nodesource, the official tarballs): no download.
const nodedir = existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? [`--nodedir=${prefix}`] : [];
const result = existsSync(nodeGyp)
  ? spawnSync(process.execPath, [nodeGyp, 'rebuild', ...nodedir], { cwd: nativeDir, encoding: 'utf8' })
  : { status: null, error: new Error(`node-gyp not found at ${nodeGyp}`), stdout: '', stderr: '' };
if (result.status !== 0) {
  const lines = `${result.stdout}\n${result.stderr}`.split('\n').filter((line) => line.trim() !== '');
  const reason =
    result.error?.message ?? lines.find((line) => /error|not found|no such file/i.test(line)) ?? lines.at(-1);
  console.warn(
    `warning: page cache addon not built (${reason}); storage nodes will run without dropping objects from the page cache`,
  );
}
