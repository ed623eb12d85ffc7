/**
 * The Swift API features where users meet them: through python-swiftclient's `swift` CLI
 * (Debian's python3-swiftclient) and curl, against a cluster of this test's own (so that
 * `swift delete --all` may empty its account). Upload under another object name, a container
 * quota that refuses an upload, legacy versioning set with `swift post -H`, a public container read
 * anonymously, a TempURL made by `swift tempurl`, an SLO upload and a prefix listing with UTF-8
 * names, the quota and ACL headers in `swift stat`, and `swift delete --all`.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { clusterSuite, type ClusterSuiteContext } from '../helpers/cluster-suite.js';

const run = promisify(execFile);

const test = clusterSuite({ storageNodes: 3 }, 'nebula-cli-');

async function swift(t: { context: ClusterSuiteContext }, args: string[]): Promise<string> {
  const { stdout } = await run('swift', args, {
    cwd: t.context.work,
    env: { ...process.env, ...t.context.cluster.swiftEnv() },
    timeout: 60_000,
  });
  return stdout;
}

/** Runs `swift` expecting it to fail; answers what it printed. */
async function swiftFails(t: { context: ClusterSuiteContext }, args: string[]): Promise<string> {
  try {
    await swift(t, args);
  } catch (error) {
    const failure = error as { stdout?: string; stderr?: string };
    return `${failure.stdout ?? ''}${failure.stderr ?? ''}`;
  }
  throw new Error(`swift ${args.join(' ')} succeeded`);
}

/** curl, which sends the path as given: status and body. */
async function curl(url: string, args: string[] = []): Promise<{ status: number; body: string }> {
  const { stdout } = await run('curl', ['-s', '-g', '-m', '30', '-w', '\n%{http_code}', ...args, url], {
    timeout: 40_000,
  });
  const cut = stdout.lastIndexOf('\n');
  return { status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) };
}

function lines(text: string): string[] {
  return text.split('\n').filter((line) => line !== '');
}

test('swift upload --object-name stores a local file under another name', async (t) => {
  await writeFile(join(t.context.work, 'local.txt'), 'renamed on upload');
  await swift(t, ['upload', '--object-name', 'new/name.txt', 'docs', 'local.txt']);
  t.deepEqual(lines(await swift(t, ['list', 'docs'])), ['new/name.txt']);
  const { storageUrl, token } = await t.context.cluster.auth();
  const got = await curl(`${storageUrl}/docs/new/name.txt`, ['-H', `X-Auth-Token: ${token}`]);
  t.is(got.body, 'renamed on upload');
});

test('swift post -H X-Container-Meta-Quota-Bytes: an upload past the quota fails, stat shows it', async (t) => {
  await swift(t, ['post', '-H', 'X-Container-Meta-Quota-Bytes: 100', 'quota']);
  await writeFile(join(t.context.work, 'small.bin'), randomBytes(60));
  await writeFile(join(t.context.work, 'large.bin'), randomBytes(200));
  await swift(t, ['upload', 'quota', 'small.bin']);
  const refused = await swiftFails(t, ['upload', 'quota', 'large.bin']);
  t.regex(refused, /413/);
  // 60 + 60 > 100: the second small one goes past the quota too.
  await swiftFails(t, ['upload', '--object-name', 'again.bin', 'quota', 'small.bin']);
  t.deepEqual(lines(await swift(t, ['list', 'quota'])), ['small.bin']);
  const stat = await swift(t, ['stat', 'quota']);
  t.regex(stat, /Meta Quota-Bytes: 100/);
  t.regex(stat, /Bytes: 60/);
});

test('swift post -H X-Versions-Location keeps the overwritten version', async (t) => {
  await swift(t, ['post', 'archive']);
  await swift(t, ['post', '-H', 'X-Versions-Location: archive', 'current']);
  const file = join(t.context.work, 'report.txt');
  await writeFile(file, 'first draft');
  await swift(t, ['upload', '--object-name', 'report.txt', 'current', file]);
  await writeFile(file, 'second draft');
  await swift(t, ['upload', '--object-name', 'report.txt', 'current', file]);
  t.regex(await swift(t, ['stat', 'current']), /Versions-Location: archive|X-Versions-Location: archive/i);
  const versions = lines(await swift(t, ['list', 'archive']));
  t.is(versions.length, 1);
  // Swift's stack mode names a version `<3 hex digits of the name's length><name>/<timestamp>`.
  t.regex(versions[0] ?? '', /^00areport\.txt\/\d{10}\.\d{5}$/);
  const old = await swift(t, ['download', 'archive', versions[0] ?? '', '-o', '-']);
  t.is(old, 'first draft');
  t.is(await swift(t, ['download', 'current', 'report.txt', '-o', '-']), 'second draft');
  // Deleting the current object brings the previous one back.
  await swift(t, ['delete', 'current', 'report.txt']);
  t.is(await swift(t, ['download', 'current', 'report.txt', '-o', '-']), 'first draft');
});

test("swift post -r '.r:*' makes a container readable by anyone (curl, no token)", async (t) => {
  await writeFile(join(t.context.work, 'index.html'), '<h1>public</h1>');
  await swift(t, ['upload', 'site', 'index.html']);
  const { storageUrl } = await t.context.cluster.auth();
  t.is((await curl(`${storageUrl}/site/index.html`)).status, 401);
  await swift(t, ['post', '-r', '.r:*', 'site']);
  const anonymous = await curl(`${storageUrl}/site/index.html`);
  t.is(anonymous.status, 200);
  t.is(anonymous.body, '<h1>public</h1>');
  // .r:* alone does not allow listing (that takes .rlistings): 401 to anonymous, as Swift 2.30.
  t.is((await curl(`${storageUrl}/site`)).status, 401);
  t.regex(await swift(t, ['stat', 'site']), /Read ACL: \.r:\*/);
});

test('swift tempurl makes a URL that curl can GET without a token, until it expires', async (t) => {
  await writeFile(join(t.context.work, 'shared.txt'), 'shared by a temporary URL');
  await swift(t, ['upload', 'temp', 'shared.txt']);
  await swift(t, ['post', '-m', 'Temp-URL-Key:secret-key']);
  const { storageUrl } = await t.context.cluster.auth();
  const origin = new URL(storageUrl).origin;
  const path = '/v1/AUTH_test/temp/shared.txt';
  const signed = (await swift(t, ['tempurl', 'GET', '3600', path, 'secret-key'])).trim();
  t.regex(signed, /^\/v1\/AUTH_test\/temp\/shared\.txt\?temp_url_sig=[0-9a-f]{40,}&temp_url_expires=\d+$/);
  const got = await curl(`${origin}${signed}`);
  t.is(got.status, 200);
  t.is(got.body, 'shared by a temporary URL');
  // Signed for GET only; and a wrong key signs nothing.
  t.is((await curl(`${origin}${signed}`, ['-X', 'DELETE'])).status, 401);
  const forged = (await swift(t, ['tempurl', 'GET', '3600', path, 'other-key'])).trim();
  t.is((await curl(`${origin}${forged}`)).status, 401);
  // An absolute expiry in the past.
  const expired = (await swift(t, ['tempurl', '--absolute', 'GET', '1000000000', path, 'secret-key'])).trim();
  t.is((await curl(`${origin}${expired}`)).status, 401);
});

test('swift upload --use-slo --segment-size with a UTF-8 name, and swift list --prefix in UTF-8', async (t) => {
  const name = 'photos/été 😀 中文.bin';
  const data = randomBytes(5000);
  await writeFile(join(t.context.work, 'slo-source.bin'), data);
  await swift(t, ['upload', '--use-slo', '--segment-size', '1024', '--object-name', name, 'media', 'slo-source.bin']);
  const segments = lines(await swift(t, ['list', 'media_segments']));
  t.is(segments.length, 5);
  t.true(segments.every((segment) => segment.startsWith(`${name}/slo/`)));
  const stat = await swift(t, ['stat', 'media', name]);
  t.regex(stat, /X-Static-Large-Object: True/);
  t.regex(stat, /Content Length: 5000/);
  const copy = join(t.context.work, 'slo-copy.bin');
  await swift(t, ['download', 'media', name, '-o', copy]);
  t.is(
    createHash('md5')
      .update(await readFile(copy))
      .digest('hex'),
    createHash('md5').update(data).digest('hex'),
  );

  await writeFile(join(t.context.work, 'other.txt'), 'x');
  await swift(t, ['upload', '--object-name', 'photos/étage.txt', 'media', 'other.txt']);
  await swift(t, ['upload', '--object-name', 'photos/ete.txt', 'media', 'other.txt']);
  t.deepEqual(lines(await swift(t, ['list', 'media', '--prefix', 'photos/ét'])), ['photos/étage.txt', name]);
  t.deepEqual(lines(await swift(t, ['list', 'media', '--prefix', 'photos/été'])), [name]);
  t.deepEqual(lines(await swift(t, ['list', 'media_segments', '--prefix', 'photos/été 😀', '--delimiter', '/'])), [
    `${name}/`,
  ]);
});

test('swift stat shows the account quota and ACL headers; swift delete --all empties the account', async (t) => {
  // An account quota is set by a reseller admin (Swift's account_quotas), then shown to the owner.
  const admin = await t.context.cluster.auth('admin:admin', 'admin');
  const { storageUrl } = await t.context.cluster.auth();
  const quota = ['-X', 'POST', '-H', `X-Auth-Token: ${admin.token}`, '-H', 'X-Account-Meta-Quota-Bytes: 123456'];
  t.is((await curl(storageUrl, quota)).status, 204);
  t.regex(await swift(t, ['stat']), /Meta Quota-Bytes: 123456/);
  await swift(t, ['post', '-w', 'test:tester3', '-r', 'test:tester3,.rlistings', 'docs']);
  const stat = await swift(t, ['stat', 'docs']);
  t.regex(stat, /Read ACL: test:tester3,\.rlistings/);
  t.regex(stat, /Write ACL: test:tester3/);

  await swift(t, ['delete', '--all']);
  t.deepEqual(lines(await swift(t, ['list'])), []);
  t.regex(await swift(t, ['stat']), /Containers: 0/);
});
