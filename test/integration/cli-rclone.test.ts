/**
 * rclone's swift backend (configured only through RCLONE_CONFIG_NEB_* environment variables)
 * against a real cluster: sync a folder of mixed files up and back, and `rclone check` is clean.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { clusterSuite, type ClusterSuiteContext } from '../helpers/cluster-suite.js';

const run = promisify(execFile);

const test = clusterSuite({}, 'nebula-rclone-');

async function rclone(
  t: { context: ClusterSuiteContext },
  args: string[],
): Promise<{ stdout: string; stderr: string }> {
  return run('rclone', ['--config', '/dev/null', ...args], {
    env: {
      ...process.env,
      RCLONE_CONFIG_NEB_TYPE: 'swift',
      RCLONE_CONFIG_NEB_AUTH: t.context.cluster.authUrl,
      RCLONE_CONFIG_NEB_USER: 'test:tester',
      RCLONE_CONFIG_NEB_KEY: 'testing',
    },
    timeout: 45_000,
  });
}

async function listFiles(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    out.set(
      relative(root, path),
      createHash('md5')
        .update(await readFile(path))
        .digest('hex'),
    );
  }
  return out;
}

test('rclone sync up and back, then check finds no differences', async (t) => {
  const source = join(t.context.work, 'src');
  await mkdir(join(source, 'nested', 'deeper'), { recursive: true });
  await writeFile(join(source, 'empty'), '');
  await writeFile(join(source, 'notes.md'), '# notes\n');
  await writeFile(join(source, 'nested', 'data.bin'), randomBytes(1024 * 1024 + 3));
  await writeFile(join(source, 'nested', 'deeper', 'unicode ünï €.txt'), 'utf-8 name\n');
  await writeFile(join(source, 'nested', 'deeper', 'small.json'), '{"k": [1, 2, 3]}');
  for (let index = 0; index < 8; index += 1) {
    await writeFile(join(source, `many-${index}.dat`), randomBytes(index * 7919));
  }

  await rclone(t, ['sync', source, 'neb:synced']);
  const check = await rclone(t, ['check', source, 'neb:synced']);
  t.regex(check.stderr, /0 differences found/);

  const back = join(t.context.work, 'back');
  await rclone(t, ['sync', 'neb:synced', back]);
  t.deepEqual(await listFiles(back), await listFiles(source));

  // A change and a deletion propagate on the next sync.
  await writeFile(join(source, 'notes.md'), '# notes, edited\n');
  await rm(join(source, 'many-3.dat'));
  await rclone(t, ['sync', source, 'neb:synced']);
  const again = await rclone(t, ['check', source, 'neb:synced']);
  t.regex(again.stderr, /0 differences found/);
  const listing = await rclone(t, ['lsf', '-R', 'neb:synced']);
  t.false(listing.stdout.includes('many-3.dat'));
});
