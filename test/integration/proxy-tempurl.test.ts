/**
 * TempURL through a real cluster: signatures with account and container keys (both slots), in
 * sha1/sha256/sha512 hex and `<digest>:<base64>`, for GET, HEAD (by a GET/PUT signature), PUT,
 * POST and DELETE; expiry (seconds and ISO 8601), prefix URLs, IP ranges, `inline`/`filename`,
 * the header filters, 401 `Temp URL invalid` otherwise, and the /info entry.
 */
import { createHmac } from 'node:crypto';
import anyTest, { type TestFn } from 'ava';
import { startCluster, type AuthResult, type TestCluster } from '../helpers/cluster.js';

interface Context {
  cluster: TestCluster;
  auth: AuthResult;
  /** `/v1/AUTH_test` */
  accountPath: string;
  /** `http://127.0.0.1:port` */
  origin: string;
}

const test = anyTest.serial as TestFn<Context>;

const ACCOUNT_KEY = 'account-secret';
const CONTAINER_KEY = 'container-secret-2';

interface Reply {
  status: number;
  headers: Headers;
  body: string;
}

async function call(url: string, method = 'GET', headers: Record<string, string> = {}, body?: string): Promise<Reply> {
  const response = await fetch(url, { method, headers, body, signal: AbortSignal.timeout(20_000) });
  return { status: response.status, headers: response.headers, body: await response.text() };
}

function sign(
  digest: 'sha1' | 'sha256' | 'sha512',
  key: string,
  method: string,
  expires: number | string,
  path: string,
  encoding: 'hex' | 'base64' | 'base64url' = 'hex',
): string {
  const mac = createHmac(digest, key).update(`${method}\n${expires}\n${path}`);
  if (encoding === 'hex') return mac.digest('hex');
  return `${digest}:${mac.digest(encoding)}`;
}

function tempUrl(
  t: { context: Context },
  objectPath: string,
  sig: string,
  expires: number | string,
  extra = '',
): string {
  return `${t.context.origin}${t.context.accountPath}${objectPath}?temp_url_sig=${encodeURIComponent(sig)}&temp_url_expires=${encodeURIComponent(String(expires))}${extra}`;
}

const future = (): number => Math.floor(Date.now() / 1000) + 600;

test.before(async (t) => {
  const cluster = await startCluster();
  const auth = await cluster.auth();
  const storage = new URL(auth.storageUrl);
  t.context = { cluster, auth, accountPath: storage.pathname, origin: storage.origin };
  const headers = { 'X-Auth-Token': auth.token };
  await call(auth.storageUrl, 'POST', { ...headers, 'X-Account-Meta-Temp-URL-Key': ACCOUNT_KEY });
  await call(`${auth.storageUrl}/c`, 'PUT', headers);
  await call(`${auth.storageUrl}/scoped`, 'PUT', { ...headers, 'X-Container-Meta-Temp-URL-Key-2': CONTAINER_KEY });
  await call(
    `${auth.storageUrl}/c/file.txt`,
    'PUT',
    {
      ...headers,
      'Content-Type': 'text/plain',
      'X-Object-Meta-Secret': 'hidden',
      'X-Object-Meta-Public-Note': 'shown',
    },
    'temp url body',
  );
  await call(`${auth.storageUrl}/scoped/doc`, 'PUT', headers, 'scoped body');
  await call(`${auth.storageUrl}/c/dir/a`, 'PUT', headers, 'in dir');
});

test.after.always(async (t) => {
  await t.context.cluster?.stop();
});

test('GET with each digest and encoding; attachment disposition and Expires; meta filtered', async (t) => {
  const expires = future();
  const path = `${t.context.accountPath}/c/file.txt`;
  const signatures = [
    sign('sha1', ACCOUNT_KEY, 'GET', expires, path),
    sign('sha256', ACCOUNT_KEY, 'GET', expires, path),
    sign('sha512', ACCOUNT_KEY, 'GET', expires, path),
    sign('sha256', ACCOUNT_KEY, 'GET', expires, path, 'base64'),
    sign('sha512', ACCOUNT_KEY, 'GET', expires, path, 'base64url'),
  ];
  for (const sig of signatures) {
    const reply = await call(tempUrl(t, '/c/file.txt', sig, expires));
    t.is(reply.status, 200, sig);
    t.is(reply.body, 'temp url body');
  }
  const reply = await call(tempUrl(t, '/c/file.txt', signatures[1] ?? '', expires));
  t.is(reply.headers.get('content-disposition'), `attachment; filename="file.txt"; filename*=UTF-8''file.txt`);
  t.is(reply.headers.get('expires'), new Date(expires * 1000).toUTCString());
  t.is(reply.headers.get('x-object-meta-secret'), null);
  t.is(reply.headers.get('x-object-meta-public-note'), 'shown');
});

test('HEAD is allowed by a GET or PUT signature; inline and filename', async (t) => {
  const expires = future();
  const path = `${t.context.accountPath}/c/file.txt`;
  const head = await call(
    tempUrl(t, '/c/file.txt', sign('sha256', ACCOUNT_KEY, 'PUT', expires, path), expires),
    'HEAD',
  );
  t.is(head.status, 200);
  const getSig = sign('sha256', ACCOUNT_KEY, 'GET', expires, path);
  const inline = await call(tempUrl(t, '/c/file.txt', getSig, expires, '&inline'));
  t.is(inline.headers.get('content-disposition'), 'inline');
  const named = await call(tempUrl(t, '/c/file.txt', getSig, expires, '&inline&filename=My%20File.txt'));
  t.is(named.headers.get('content-disposition'), `inline; filename="My File.txt"; filename*=UTF-8''My%20File.txt`);
  const attachment = await call(tempUrl(t, '/c/file.txt', getSig, expires, '&filename=x.bin'));
  t.is(attachment.headers.get('content-disposition'), `attachment; filename="x.bin"; filename*=UTF-8''x.bin`);
});

test('401 Temp URL invalid: bad signature, wrong method, expired, missing half, unknown digest', async (t) => {
  const expires = future();
  const path = `${t.context.accountPath}/c/file.txt`;
  const bad = await call(tempUrl(t, '/c/file.txt', sign('sha256', 'wrong-key', 'GET', expires, path), expires));
  t.is(bad.status, 401);
  t.is(bad.body, '401 Unauthorized: Temp URL invalid\n');
  const wrongMethod = await call(
    tempUrl(t, '/c/file.txt', sign('sha256', ACCOUNT_KEY, 'GET', expires, path), expires),
    'DELETE',
  );
  t.is(wrongMethod.status, 401);
  const past = Math.floor(Date.now() / 1000) - 10;
  t.is((await call(tempUrl(t, '/c/file.txt', sign('sha256', ACCOUNT_KEY, 'GET', past, path), past))).status, 401);
  t.is((await call(`${t.context.origin}${path}?temp_url_sig=abc`)).status, 401);
  t.is((await call(`${t.context.origin}${path}?temp_url_expires=${expires}`)).status, 401);
  const md5Sig = `md5:${createHmac('md5', ACCOUNT_KEY).update(`GET\n${expires}\n${path}`).digest('base64')}`;
  t.is((await call(tempUrl(t, '/c/file.txt', md5Sig, expires))).status, 401);
  const otherObject = await call(tempUrl(t, '/c/dir/a', sign('sha256', ACCOUNT_KEY, 'GET', expires, path), expires));
  t.is(otherObject.status, 401);
  t.is((await call(`${t.context.origin}${path}`)).status, 401, 'no signature, no token');
});

test('ISO 8601 expiry, container keys, prefix URLs and IP ranges', async (t) => {
  // The URL carries the ISO 8601 form; the signature covers the integer seconds (as `swift tempurl --iso8601`).
  const isoSeconds = future() + 60;
  const iso = new Date(isoSeconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const path = `${t.context.accountPath}/c/file.txt`;
  t.is((await call(tempUrl(t, '/c/file.txt', sign('sha256', ACCOUNT_KEY, 'GET', isoSeconds, path), iso))).status, 200);
  const expires = future();
  const scopedPath = `${t.context.accountPath}/scoped/doc`;
  const scoped = await call(
    tempUrl(t, '/scoped/doc', sign('sha512', CONTAINER_KEY, 'GET', expires, scopedPath), expires),
  );
  t.is(scoped.status, 200);
  t.is(scoped.body, 'scoped body');
  const prefixSig = sign('sha256', ACCOUNT_KEY, 'GET', expires, `prefix:${t.context.accountPath}/c/dir/`);
  const prefixed = await call(tempUrl(t, '/c/dir/a', prefixSig, expires, '&temp_url_prefix=dir/'));
  t.is(prefixed.status, 200);
  t.is(prefixed.body, 'in dir');
  t.is((await call(tempUrl(t, '/c/file.txt', prefixSig, expires, '&temp_url_prefix=dir/'))).status, 401);
  const ipSig = (range: string): string =>
    createHmac('sha256', ACCOUNT_KEY).update(`ip=${range}\nGET\n${expires}\n${path}`).digest('hex');
  const local = await call(tempUrl(t, '/c/file.txt', ipSig('127.0.0.0/8'), expires, '&temp_url_ip_range=127.0.0.0/8'));
  t.is(local.status, 200);
  const remote = await call(tempUrl(t, '/c/file.txt', ipSig('10.0.0.0/8'), expires, '&temp_url_ip_range=10.0.0.0/8'));
  t.is(remote.status, 401);
});

test('PUT, POST and DELETE with their own signatures; disallowed headers', async (t) => {
  const expires = future();
  const path = `${t.context.accountPath}/c/uploaded`;
  const put = await call(
    tempUrl(t, '/c/uploaded', sign('sha256', ACCOUNT_KEY, 'PUT', expires, path), expires),
    'PUT',
    { 'X-Object-Meta-By': 'tempurl' },
    'uploaded via temp url',
  );
  t.is(put.status, 201);
  const got = await call(`${t.context.auth.storageUrl}/c/uploaded`, 'GET', { 'X-Auth-Token': t.context.auth.token });
  t.is(got.body, 'uploaded via temp url');
  t.is(got.headers.get('x-object-meta-by'), 'tempurl');
  const manifest = await call(
    tempUrl(t, '/c/uploaded', sign('sha256', ACCOUNT_KEY, 'PUT', expires, path), expires),
    'PUT',
    { 'X-Object-Manifest': 'c/dir' },
    '',
  );
  t.is(manifest.status, 400);
  t.is(manifest.body, "The header 'X-Object-Manifest' is not allowed in this tempurl");
  const post = await call(
    tempUrl(t, '/c/uploaded', sign('sha256', ACCOUNT_KEY, 'POST', expires, path), expires),
    'POST',
    { 'X-Object-Meta-By': 'post' },
  );
  t.is(post.status, 202);
  const deleted = await call(
    tempUrl(t, '/c/uploaded', sign('sha256', ACCOUNT_KEY, 'DELETE', expires, path), expires),
    'DELETE',
  );
  t.is(deleted.status, 204);
  t.is(
    (await call(`${t.context.auth.storageUrl}/c/uploaded`, 'HEAD', { 'X-Auth-Token': t.context.auth.token })).status,
    404,
  );
});

test('/info announces tempurl with its methods and digests', async (t) => {
  const info = (await (await fetch(`${t.context.cluster.proxyUrl}/info`)).json()) as {
    tempurl?: { methods: string[]; allowed_digests: string[] };
  };
  t.deepEqual(info.tempurl?.methods, ['GET', 'HEAD', 'PUT', 'POST', 'DELETE']);
  t.deepEqual(info.tempurl?.allowed_digests, ['sha1', 'sha256', 'sha512']);
});
