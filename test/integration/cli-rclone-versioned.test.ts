/**
 * rclone's swift backend against a container with X-Versions-Enabled: `rclone copy` of a folder,
 * an overwrite, `rclone ls` showing one copy of each file, `rclone delete`, and the Swift API's
 * `?versions` listing showing the whole history (the two versions and the delete marker).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { startCluster } from '../helpers/cluster.js';
import { md5, swiftRequest } from '../helpers/swift-http.js';

const run = promisify(execFile);
const DELETE_MARKER = 'application/x-deleted;swift_versions_deleted=1';

interface VersionRow {
  name: string;
  hash: string;
  content_type: string;
  version_id: string;
  is_latest: boolean;
}

test('rclone copy, overwrite, ls and delete in a versioned container', async (t) => {
  const cluster = await startCluster({ storageNodes: 3 });
  const work = await mkdtemp(join(tmpdir(), 'nebula-rclone-versioned-'));
  try {
    const auth = await cluster.auth();
    const rclone = (args: string[]): Promise<{ stdout: string; stderr: string }> =>
      run('rclone', ['--config', '/dev/null', ...args], {
        env: {
          ...process.env,
          RCLONE_CONFIG_NEB_TYPE: 'swift',
          RCLONE_CONFIG_NEB_AUTH: cluster.authUrl,
          RCLONE_CONFIG_NEB_USER: 'test:tester',
          RCLONE_CONFIG_NEB_KEY: 'testing',
        },
        timeout: 45_000,
      });
    t.is((await swiftRequest(auth, 'PUT', '/backup', { 'X-Versions-Enabled': 'true' })).status, 201);

    await writeFile(join(work, 'notes.txt'), 'first draft\n');
    await writeFile(join(work, 'keep.txt'), 'unchanged\n');
    await rclone(['copy', work, 'neb:backup']);
    await writeFile(join(work, 'notes.txt'), 'second draft, longer\n');
    await rclone(['copy', work, 'neb:backup']);

    const listed = (await rclone(['ls', 'neb:backup'])).stdout
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => line.trim().split(/\s+/));
    t.deepEqual(
      listed.map(([size, name]) => [name, Number(size)]).sort(),
      [
        ['keep.txt', 10],
        ['notes.txt', 21],
      ],
      'one copy of each file, the newest',
    );
    const cat = await rclone(['cat', 'neb:backup/notes.txt']);
    t.is(cat.stdout, 'second draft, longer\n');

    await rclone(['delete', 'neb:backup', '--include', 'notes.txt']);
    t.deepEqual((await rclone(['lsf', 'neb:backup'])).stdout.split('\n').filter(Boolean), ['keep.txt']);

    const reply = await swiftRequest(auth, 'GET', '/backup?versions&format=json&prefix=notes.txt');
    t.is(reply.status, 200);
    const history = JSON.parse(reply.body.toString('utf8')) as VersionRow[];
    t.deepEqual(
      history.map((row) => [row.name, row.content_type === DELETE_MARKER ? 'marker' : row.hash, row.is_latest]),
      [
        ['notes.txt', 'marker', true],
        ['notes.txt', md5('second draft, longer\n'), false],
        ['notes.txt', md5('first draft\n'), false],
      ],
    );
    const oldest = history[2]?.version_id ?? '';
    const first = await swiftRequest(auth, 'GET', `/backup/notes.txt?version-id=${oldest}`);
    t.is(first.body.toString(), 'first draft\n');
    // rclone's own metadata (its modification time) went along with the version.
    t.truthy(first.headers.get('x-object-meta-mtime'));
  } finally {
    await cluster.stop();
    await rm(work, { recursive: true, force: true });
  }
});
