/**
 * FormPOST through a real cluster, from Swift's formpost documentation: forms built by Node's
 * FormData and posted by fetch (and one by `curl -F`), signed with the account's and the
 * container's TempURL keys in sha1/sha256/sha512, hex and `<digest>:<base64>`; files land as
 * `<prefix><filename>` with their part's Content-Type (or the form's), x_delete_after applies;
 * the answers are Swift's: 303 to `redirect?status=201&message=`, `201 Created` without a
 * redirect, 401 `FormPost: Invalid Signature` / `Form Expired`, 400 `FormPost: max_file_size
 * exceeded` with nothing stored, `Max File Count Exceeded`, `No Files To Process`, a bad
 * boundary, non-integer fields; a large file streams through whole; /info announces formpost.
 */
import { execFile } from 'node:child_process';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import anyTest, { type TestFn } from 'ava';
import { startCluster, type AuthResult, type TestCluster } from '../helpers/cluster.js';
import { md5, swiftRequest } from '../helpers/swift-http.js';

const run = promisify(execFile);

interface Context {
  cluster: TestCluster;
  auth: AuthResult;
  /** `/v1/AUTH_test` */
  accountPath: string;
  /** `http://127.0.0.1:port` */
  origin: string;
}

const test = anyTest.serial as TestFn<Context>;

const ACCOUNT_KEY = 'account-form-key';
const CONTAINER_KEY = 'container-form-key-2';

type Digest = 'sha1' | 'sha256' | 'sha512';

interface FormSpec {
  /** Path after the account: `/uploads/prefix-`. */
  path: string;
  redirect?: string;
  maxFileSize?: number | string;
  maxFileCount?: number | string;
  expires?: number | string;
  key?: string;
  digest?: Digest;
  encoding?: 'hex' | 'base64';
  /** Fields sent before the files, after the signed ones. */
  extra?: Record<string, string>;
  files: { name: string; content: string | Buffer; type?: string }[];
}

const future = (): number => Math.floor(Date.now() / 1000) + 600;

function signature(t: { context: Context }, spec: FormSpec): string {
  const body = [
    `${t.context.accountPath}${spec.path}`,
    spec.redirect ?? '',
    String(spec.maxFileSize ?? 1024),
    String(spec.maxFileCount ?? 10),
    String(spec.expires ?? future()),
  ].join('\n');
  const digest = spec.digest ?? 'sha1';
  const mac = createHmac(digest, spec.key ?? ACCOUNT_KEY).update(body);
  return spec.encoding === 'base64' ? `${digest}:${mac.digest('base64')}` : mac.digest('hex');
}

function buildForm(t: { context: Context }, spec: FormSpec): FormData {
  const expires = spec.expires ?? future();
  const form = new FormData();
  if (spec.redirect !== undefined) form.append('redirect', spec.redirect);
  form.append('max_file_size', String(spec.maxFileSize ?? 1024));
  form.append('max_file_count', String(spec.maxFileCount ?? 10));
  form.append('expires', String(expires));
  form.append('signature', signature(t, { ...spec, expires }));
  for (const [name, value] of Object.entries(spec.extra ?? {})) form.append(name, value);
  spec.files.forEach((file, index) => {
    form.append(`file${index + 1}`, new Blob([file.content], { type: file.type ?? '' }), file.name);
  });
  return form;
}

interface Answer {
  status: number;
  headers: Headers;
  body: string;
}

async function post(t: { context: Context }, path: string, body: FormData | string, headers = {}): Promise<Answer> {
  const response = await fetch(`${t.context.origin}${t.context.accountPath}${path}`, {
    method: 'POST',
    body,
    headers,
    redirect: 'manual',
    signal: AbortSignal.timeout(60_000),
  });
  return { status: response.status, headers: response.headers, body: await response.text() };
}

async function submit(t: { context: Context }, spec: FormSpec): Promise<Answer> {
  return post(t, spec.path, buildForm(t, spec));
}

async function objectStatus(t: { context: Context }, path: string): Promise<number> {
  return (await swiftRequest(t.context.auth, 'HEAD', path)).status;
}

test.before(async (t) => {
  const cluster = await startCluster();
  const auth = await cluster.auth();
  const storage = new URL(auth.storageUrl);
  t.context = { cluster, auth, accountPath: storage.pathname, origin: storage.origin };
  t.is((await swiftRequest(auth, 'POST', '', { 'X-Account-Meta-Temp-URL-Key': ACCOUNT_KEY })).status, 204);
  t.is((await swiftRequest(auth, 'PUT', '/uploads')).status, 201);
  t.is((await swiftRequest(auth, 'PUT', '/scoped', { 'X-Container-Meta-Temp-URL-Key-2': CONTAINER_KEY })).status, 201);
});

test.after.always(async (t) => {
  await t.context.cluster?.stop();
});

test('/info announces formpost and its digests', async (t) => {
  const info = (await (await fetch(`${t.context.origin}/info`)).json()) as Record<string, unknown>;
  t.deepEqual(info.formpost, { allowed_digests: ['sha1', 'sha256', 'sha512'], deprecated_digests: ['sha1'] });
});

test('two files under a prefix with a redirect: 303 to status=201&message=, objects and types stored', async (t) => {
  const answer = await submit(t, {
    path: '/uploads/batch-',
    redirect: 'https://example.com/done',
    files: [
      { name: 'a.txt', content: 'first file', type: 'text/plain' },
      { name: 'b.json', content: '{"b":2}', type: 'application/json' },
    ],
  });
  t.is(answer.status, 303);
  t.is(answer.headers.get('location'), 'https://example.com/done?status=201&message=');
  t.is(
    answer.body,
    '<html><body><p><a href="https://example.com/done?status=201&message=">Click to continue...</a></p></body></html>',
  );
  const first = await swiftRequest(t.context.auth, 'GET', '/uploads/batch-a.txt');
  t.is(first.status, 200);
  t.is(first.body.toString(), 'first file');
  t.is(first.headers.get('content-type'), 'text/plain');
  const second = await swiftRequest(t.context.auth, 'GET', '/uploads/batch-b.json');
  t.is(second.body.toString(), '{"b":2}');
  t.is(second.headers.get('content-type'), 'application/json');
});

test('no redirect: 201 with Swift text; a container path gets a slash; a redirect with a query gets &', async (t) => {
  const answer = await submit(t, { path: '/uploads', files: [{ name: 'root.txt', content: 'at the root' }] });
  t.is(answer.status, 201);
  t.is(answer.body, '201 Created');
  t.regex(answer.headers.get('content-type') ?? '', /^text\/plain/);
  t.is((await swiftRequest(t.context.auth, 'GET', '/uploads/root.txt')).body.toString(), 'at the root');
  const queried = await submit(t, {
    path: '/uploads/',
    redirect: 'https://example.com/back?from=form',
    files: [{ name: 'q.txt', content: 'q' }],
  });
  t.is(queried.headers.get('location'), 'https://example.com/back?from=form&status=201&message=');
});

test('signatures: sha256 base64 with the container key, sha512 hex and sha1 with the account key', async (t) => {
  const container = await submit(t, {
    path: '/scoped/',
    key: CONTAINER_KEY,
    digest: 'sha256',
    encoding: 'base64',
    files: [{ name: 'c.txt', content: 'container key' }],
  });
  t.is(container.status, 201);
  const sha512 = await submit(t, {
    path: '/scoped/',
    digest: 'sha512',
    files: [{ name: 'd.txt', content: 'account key' }],
  });
  t.is(sha512.status, 201);
  t.is(await objectStatus(t, '/scoped/c.txt'), 200);
  t.is(await objectStatus(t, '/scoped/d.txt'), 200);
  // The container key signs only for its own container.
  const elsewhere = await submit(t, {
    path: '/uploads/',
    key: CONTAINER_KEY,
    files: [{ name: 'x.txt', content: 'x' }],
  });
  t.is(elsewhere.status, 401);
});

test('401: a bad signature and an expired form, in Swift words; nothing stored', async (t) => {
  const bad = await submit(t, { path: '/uploads/', key: 'wrong', files: [{ name: 'bad.txt', content: 'no' }] });
  t.is(bad.status, 401);
  t.is(bad.body, 'FormPost: Invalid Signature');
  t.is(bad.headers.get('www-authenticate'), 'Swift realm="AUTH_test"');
  const past = Math.floor(Date.now() / 1000) - 5;
  const expired = await submit(t, { path: '/uploads/', expires: past, files: [{ name: 'old.txt', content: 'no' }] });
  t.is(expired.status, 401);
  t.is(expired.body, 'FormPost: Form Expired');
  // A signature over another path (the prefix is signed) is invalid too.
  const form = buildForm(t, { path: '/uploads/p1-', files: [{ name: 'moved.txt', content: 'no' }] });
  t.is((await post(t, '/uploads/p2-', form)).status, 401);
  t.is(await objectStatus(t, '/uploads/bad.txt'), 404);
  t.is(await objectStatus(t, '/uploads/old.txt'), 404);
  t.is(await objectStatus(t, '/uploads/p2-moved.txt'), 404);
});

test('max_file_size exceeded: 400 and the file is not stored (even with a redirect)', async (t) => {
  const answer = await submit(t, {
    path: '/uploads/',
    redirect: 'https://example.com/done',
    maxFileSize: 1024,
    files: [
      { name: 'small.txt', content: 'fits' },
      { name: 'big.bin', content: randomBytes(64 * 1024) },
      { name: 'after.txt', content: 'never reached' },
    ],
  });
  t.is(answer.status, 400);
  t.is(answer.body, 'FormPost: max_file_size exceeded');
  t.is(await objectStatus(t, '/uploads/small.txt'), 200);
  t.is(await objectStatus(t, '/uploads/big.bin'), 404);
  t.is(await objectStatus(t, '/uploads/after.txt'), 404);
});

test('max_file_count exceeded: the files before it are stored; Swift text or redirect message', async (t) => {
  const files = [
    { name: 'one.txt', content: '1' },
    { name: 'two.txt', content: '2' },
  ];
  const plain = await submit(t, { path: '/uploads/count-', maxFileCount: 1, files });
  t.is(plain.status, 400);
  t.is(plain.body, '400 Bad Request\r\nFormPost: Max File Count Exceeded');
  t.is(await objectStatus(t, '/uploads/count-one.txt'), 200);
  t.is(await objectStatus(t, '/uploads/count-two.txt'), 404);
  const redirected = await submit(t, {
    path: '/uploads/count2-',
    redirect: 'https://example.com/r',
    maxFileCount: 1,
    files,
  });
  t.is(redirected.status, 303);
  t.is(redirected.headers.get('location'), 'https://example.com/r?status=400&message=max%20file%20count%20exceeded');
});

test('bad forms: no files, a wrong boundary, non-integer fields', async (t) => {
  const empty = await submit(t, { path: '/uploads/', files: [] });
  t.is(empty.status, 400);
  t.is(empty.body, '400 Bad Request\r\nFormPost: No Files To Process');
  const wrongBoundary = await post(t, '/uploads/', '--other\r\n\r\nx\r\n--other--\r\n', {
    'Content-Type': 'multipart/form-data; boundary=expected',
  });
  t.is(wrongBoundary.status, 400);
  t.is(wrongBoundary.body, 'FormPost: invalid starting boundary');
  const size = await submit(t, { path: '/uploads/', maxFileSize: 'big', files: [{ name: 'n.txt', content: 'n' }] });
  t.is(size.status, 400);
  t.is(size.body, 'FormPost: max_file_size not an integer');
  const deleteAfter = await submit(t, {
    path: '/uploads/',
    extra: { x_delete_after: 'soon' },
    files: [{ name: 'n.txt', content: 'n' }],
  });
  t.is(deleteAfter.body, 'FormPost: x_delete_after not an integer: Number of seconds required.');
});

test('x_delete_after and the form content-type apply to the files; fields after a file do not', async (t) => {
  const expires = future();
  const spec: FormSpec = { path: '/uploads/meta-', expires, files: [] };
  const form = buildForm(t, spec);
  form.append('x_delete_after', '3600');
  form.append('content-type', 'text/csv');
  form.append('file1', new Blob(['a,b\n'], { type: 'text/plain' }), 'first.csv');
  form.append('x_delete_at', 'not-even-read');
  form.append('file2', new Blob(['c,d\n']), 'second.csv');
  const answer = await post(t, spec.path, form);
  // x_delete_at came after file1 but before file2: it applies to file2 only, which it refuses.
  t.is(answer.status, 400);
  t.is(answer.body, 'FormPost: x_delete_at not an integer: Unix timestamp required.');
  const head = await swiftRequest(t.context.auth, 'HEAD', '/uploads/meta-first.csv');
  t.is(head.headers.get('content-type'), 'text/csv');
  const deleteAt = Number(head.headers.get('x-delete-at'));
  t.true(Math.abs(deleteAt - (Date.now() / 1000 + 3600)) < 60, String(deleteAt));
  t.is(await objectStatus(t, '/uploads/meta-second.csv'), 404);
});

test('a 12 MiB file streams through whole (ETag matches)', async (t) => {
  const content = randomBytes(12 * 1024 * 1024);
  const answer = await submit(t, {
    path: '/uploads/',
    maxFileSize: 16 * 1024 * 1024,
    files: [{ name: 'large.bin', content, type: 'application/octet-stream' }],
  });
  t.is(answer.status, 201);
  const head = await swiftRequest(t.context.auth, 'HEAD', '/uploads/large.bin');
  t.is(head.headers.get('etag'), createHash('md5').update(content).digest('hex'));
  t.is(head.headers.get('content-length'), String(content.length));
});

test('curl -F uploads a file and follows nothing: 303 to the redirect', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'formpost-'));
  try {
    const file = join(dir, 'photo.jpg');
    const content = randomBytes(3000);
    await writeFile(file, content);
    const expires = future();
    const spec: FormSpec = {
      path: '/uploads/curl/',
      redirect: 'https://example.com/ok',
      maxFileSize: 10_000,
      maxFileCount: 1,
      expires,
      files: [],
    };
    const { stdout } = await run(
      'curl',
      [
        '-s',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code} %{redirect_url}',
        '-F',
        `redirect=${spec.redirect ?? ''}`,
        '-F',
        'max_file_size=10000',
        '-F',
        'max_file_count=1',
        '-F',
        `expires=${expires}`,
        '-F',
        `signature=${signature(t, spec)}`,
        '-F',
        `file=@${file};type=image/jpeg`,
        `${t.context.origin}${t.context.accountPath}/uploads/curl/`,
      ],
      { timeout: 30_000 },
    );
    t.is(stdout, '303 https://example.com/ok?status=201&message=');
    const stored = await swiftRequest(t.context.auth, 'GET', '/uploads/curl/photo.jpg');
    t.is(stored.status, 200);
    t.is(md5(stored.body), md5(content));
    t.is(stored.headers.get('content-type'), 'image/jpeg');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('other POSTs pass through: object metadata with a token, a form to a missing container', async (t) => {
  const meta = await swiftRequest(t.context.auth, 'POST', '/uploads/root.txt', { 'X-Object-Meta-Color': 'red' });
  t.is(meta.status, 202);
  const missing = await submit(t, { path: '/nowhere/', files: [{ name: 'm.txt', content: 'm' }] });
  t.is(missing.status, 404);
  t.is(missing.body, '404 Not Found');
});
