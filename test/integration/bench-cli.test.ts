/**
 * nebula-bench end to end: the real CLI process (dist/bench/cli.js) runs tiny workloads against a
 * test double started here on port 0 — an in-memory server speaking just enough of the Swift API
 * (tempauth, container and object PUT/GET/HEAD/DELETE, JSON listings with marker/limit) and of S3
 * (path-style, SigV4 checked by recomputing the signature, ListObjectsV2). The double can corrupt
 * GET bodies, to prove that a wrong answer counts as an error and never as a success.
 * (When Nebula's test/helpers/cluster.ts lands, the same runs can target a real cluster.)
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sign } from '../../bench/sigv4.js';

interface Double {
  readonly url: string;
  readonly server: Server;
  readonly containers: Map<string, Map<string, Buffer>>;
  corruptGets: boolean;
  requests: number;
  badSignatures: number;
  /** Every request's method, in arrival order, with the double's name (shared by doubles). */
  readonly log: string[];
}

function send(response: ServerResponse, status: number, headers: Record<string, string> = {}, body = ''): void {
  response.writeHead(status, { 'content-length': String(Buffer.byteLength(body)), ...headers });
  response.end(body);
}

async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const md5 = (body: Buffer): string => createHash('md5').update(body).digest('hex');

function listing(objects: Map<string, Buffer>, marker: string | undefined, limit: number): string[] {
  return [...objects.keys()]
    .sort()
    .filter((name) => marker === undefined || name > marker)
    .slice(0, limit);
}

async function handleSwift(
  double: Double,
  request: IncomingMessage,
  response: ServerResponse,
  url: URL,
): Promise<void> {
  if (url.pathname === '/auth/v1.0') {
    if (request.headers['x-auth-user'] !== 'test:tester' || request.headers['x-auth-key'] !== 'testing') {
      send(response, 401);
      return;
    }
    send(response, 200, { 'x-storage-url': `${double.url}/v1/AUTH_test`, 'x-auth-token': 'AUTH_tk1' });
    return;
  }
  if (request.headers['x-auth-token'] !== 'AUTH_tk1') {
    send(response, 401);
    return;
  }
  const [, , , containerName, ...rest] = url.pathname.split('/').map((part) => decodeURIComponent(part));
  const objectName = rest.length > 0 ? rest.join('/') : undefined;
  const container = double.containers.get(containerName ?? '');
  const body = await readBody(request);
  if (objectName === undefined) {
    if (request.method === 'PUT') {
      if (container === undefined) double.containers.set(containerName ?? '', new Map());
      send(response, container === undefined ? 201 : 202);
    } else if (container === undefined) send(response, 404);
    else if (request.method === 'DELETE') {
      if (container.size > 0) send(response, 409);
      else {
        double.containers.delete(containerName ?? '');
        send(response, 204);
      }
    } else if (request.method === 'HEAD') send(response, 204, { 'x-container-object-count': String(container.size) });
    else {
      const limit = Number(url.searchParams.get('limit') ?? 10_000);
      const names = listing(container, url.searchParams.get('marker') ?? undefined, limit);
      const rows = names.map((name) => {
        const data = container.get(name) as Buffer;
        return { name, bytes: data.length, hash: md5(data), content_type: 'application/octet-stream' };
      });
      send(response, 200, { 'content-type': 'application/json' }, JSON.stringify(rows));
    }
    return;
  }
  if (container === undefined) {
    send(response, 404);
    return;
  }
  const stored = container.get(objectName);
  if (request.method === 'PUT') {
    if (request.headers.etag !== undefined && request.headers.etag !== md5(body)) {
      send(response, 422);
      return;
    }
    container.set(objectName, body);
    send(response, 201, { etag: md5(body) });
  } else if (stored === undefined) send(response, 404);
  else if (request.method === 'DELETE') {
    container.delete(objectName);
    send(response, 204);
  } else if (request.method === 'HEAD') {
    response.writeHead(200, { 'content-length': String(stored.length), etag: md5(stored) });
    response.end();
  } else {
    const out = Buffer.from(stored);
    if (double.corruptGets && out.length > 0) out[out.length - 1] = (out[out.length - 1] ?? 0) ^ 0xff;
    response.writeHead(200, { 'content-length': String(out.length), etag: md5(stored) });
    response.end(out);
  }
}

/** Recomputes the SigV4 signature from what arrived on the wire. */
function signatureValid(request: IncomingMessage, url: URL): boolean {
  const authorization = request.headers.authorization ?? '';
  const match =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(
      authorization,
    );
  if (match === null || match[1] !== 'test:tester') return false;
  const headers: Record<string, string> = {};
  for (const name of (match[4] ?? '').split(';')) headers[name] = String(request.headers[name] ?? '');
  const query: Record<string, string> = {};
  for (const [key, value] of url.searchParams) query[key] = value;
  const { signature } = sign(
    { accessKeyId: 'test:tester', secretAccessKey: 'testing' },
    { region: match[3] ?? '', service: 's3', amzDate: String(request.headers['x-amz-date']) },
    {
      method: request.method ?? '',
      path: request.url?.split('?')[0] ?? '',
      query,
      headers,
      payloadHash: String(request.headers['x-amz-content-sha256']),
    },
  );
  return signature === match[5];
}

async function handleS3(double: Double, request: IncomingMessage, response: ServerResponse, url: URL): Promise<void> {
  const body = await readBody(request);
  if (!signatureValid(request, url)) {
    double.badSignatures += 1;
    send(response, 403, {}, '<Error><Code>SignatureDoesNotMatch</Code></Error>');
    return;
  }
  const [, bucketName, ...rest] = url.pathname.split('/').map((part) => decodeURIComponent(part));
  const key = rest.length > 0 ? rest.join('/') : undefined;
  if (bucketName === '' || bucketName === undefined) {
    send(response, 200, {}, '<ListAllMyBucketsResult></ListAllMyBucketsResult>');
    return;
  }
  const bucket = double.containers.get(bucketName);
  if (key === undefined) {
    if (request.method === 'PUT') {
      if (bucket === undefined) double.containers.set(bucketName, new Map());
      send(response, 200);
    } else if (bucket === undefined) send(response, 404, {}, '<Error><Code>NoSuchBucket</Code></Error>');
    else if (request.method === 'DELETE') {
      double.containers.delete(bucketName);
      send(response, 204);
    } else {
      const limit = Number(url.searchParams.get('max-keys') ?? 1000);
      const all = listing(bucket, url.searchParams.get('start-after') ?? undefined, Number.MAX_SAFE_INTEGER);
      const page = all.slice(0, limit);
      const xml =
        `<ListBucketResult><IsTruncated>${all.length > limit}</IsTruncated>` +
        page.map((name) => `<Contents><Key>${name}</Key></Contents>`).join('') +
        '</ListBucketResult>';
      send(response, 200, { 'content-type': 'application/xml' }, xml);
    }
    return;
  }
  if (bucket === undefined) {
    send(response, 404);
    return;
  }
  const stored = bucket.get(key);
  if (request.method === 'PUT') {
    const sha = createHash('sha256').update(body).digest('hex');
    if (request.headers['x-amz-content-sha256'] !== sha) {
      send(response, 400, {}, '<Error><Code>XAmzContentSHA256Mismatch</Code></Error>');
      return;
    }
    bucket.set(key, body);
    send(response, 200, { etag: `"${md5(body)}"` });
  } else if (stored === undefined) send(response, 404);
  else if (request.method === 'DELETE') {
    bucket.delete(key);
    send(response, 204);
  } else if (request.method === 'HEAD') {
    response.writeHead(200, { 'content-length': String(stored.length), etag: `"${md5(stored)}"` });
    response.end();
  } else {
    response.writeHead(200, { 'content-length': String(stored.length), etag: `"${md5(stored)}"` });
    response.end(stored);
  }
}

async function startDouble(name = 'double', log: string[] = []): Promise<Double> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const double: Double = {
    url: `http://127.0.0.1:${port}`,
    server,
    containers: new Map(),
    corruptGets: false,
    requests: 0,
    badSignatures: 0,
    log,
  };
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    double.requests += 1;
    log.push(`${name} ${request.method ?? ''}`);
    const url = new URL(request.url ?? '/', double.url);
    const handler = url.pathname.startsWith('/auth/') || url.pathname.startsWith('/v1/') ? handleSwift : handleS3;
    handler(double, request, response, url).catch(() => send(response, 500));
  });
  return double;
}

interface Figures {
  phase: string;
  endpoint: string;
  ops: number;
  errors: number;
  errorKinds: Record<string, number>;
  opsPerS: number;
  rowsPerS: number | null;
  byOp: Record<string, { count: number }>;
  latency: { p50Ms: number; p99Ms: number };
  serverCpuMsPerOp: number | null;
}

interface Results {
  endpoints: { label: string }[];
  phases: Figures[][];
  cleanupFailures: Record<string, number>;
}

function runCli(
  args: readonly string[],
  timeoutMs = 60_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['dist/bench/cli.js', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`nebula-bench did not finish in ${timeoutMs} ms:\n${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const SCENARIO = {
  name: 'tiny',
  containers: 3,
  rounds: 2,
  phases: [
    { name: 'PUT mix', op: 'PUT', size: '1KiB:50,200KiB:50', concurrency: 4, count: 40 },
    { name: 'GET mix', op: 'GET', size: '1KiB:50,200KiB:50', concurrency: 4, count: 40 },
    { name: 'HEAD', op: 'HEAD', size: '1KiB', concurrency: 2, count: 10 },
    { name: 'LIST 45', op: 'LIST', size: '0', objects: 45, listLimit: 20, concurrency: 2, count: 12 },
    { name: 'MIXED', op: 'MIXED', mix: 'GET:50,PUT:30,DELETE:20', size: '1KiB', concurrency: 4, count: 40 },
    { name: 'DELETE', op: 'DELETE', size: '1KiB:50,200KiB:50', concurrency: 4, duration: '3s' },
  ],
};

function setup(t: { teardown: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'nebula-bench-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'tiny.json'), JSON.stringify(SCENARIO));
  return dir;
}

const swiftArgs = (double: Double, prefix = ''): string[] => [
  `--${prefix}auth-url`,
  `${double.url}/auth/v1.0`,
  `--${prefix}user`,
  'test:tester',
  `--${prefix}key`,
  'testing',
];

test('a Swift run: every phase verified, limits honoured, results and reports written, cleanup done', async (t) => {
  const double = await startDouble();
  t.teardown(() => double.server.close());
  const dir = setup(t);
  const run = await runCli([
    ...swiftArgs(double),
    '--name',
    'double',
    '--server-pids',
    String(process.pid),
    '--scenario',
    join(dir, 'tiny.json'),
    '--out',
    join(dir, 'out'),
    '--probe-dir',
    dir,
    '--probe-mib',
    '4',
    '--idle',
    '1',
  ]);
  t.is(run.code, 0, run.stderr);
  const results = JSON.parse(readFileSync(join(dir, 'out', 'results.json'), 'utf8')) as Results;
  const byName = new Map(results.phases.map((pair) => [pair[0]?.phase ?? '', pair[0] as Figures]));
  for (const figures of byName.values())
    t.is(figures.errors, 0, `${figures.phase}: ${JSON.stringify(figures.errorKinds)}`);
  t.is(byName.get('PUT mix')?.ops, 40);
  t.is(byName.get('GET mix')?.ops, 40);
  t.is(byName.get('HEAD')?.ops, 10);
  // 45 objects in pages of 20: each walk is 3 requests, 45 rows.
  const list = byName.get('LIST 45') as Figures;
  t.true(list.ops >= 12 && list.ops <= 14, `LIST ops ${list.ops}`);
  t.true((list.rowsPerS ?? 0) > list.opsPerS * 10, `rows/s ${list.rowsPerS} vs ops/s ${list.opsPerS}`);
  const mixed = byName.get('MIXED') as Figures;
  t.is(mixed.ops, 40);
  t.true((mixed.byOp.GET?.count ?? 0) > 0 && (mixed.byOp.PUT?.count ?? 0) > 0, JSON.stringify(mixed.byOp));
  t.true((byName.get('DELETE')?.ops ?? 0) > 0, 'DELETE ops');
  t.true(typeof byName.get('GET mix')?.serverCpuMsPerOp === 'number', 'server CPU measured');
  // Cleanup removed the run's containers but kept the listing container for the next run.
  t.deepEqual([...(results.cleanupFailures.double ? ['failures'] : [])], []);
  t.deepEqual([...double.containers.keys()], ['nebula-bench-list-swift-45']);
  t.is(double.containers.get('nebula-bench-list-swift-45')?.size, 45);
  const markdown = readFileSync(join(dir, 'out', 'report.md'), 'utf8');
  t.true(markdown.includes('## Machine limits (probe)'), 'probe section');
  t.true(markdown.includes('| PUT mix | 40 |'), markdown);
  t.is(run.stdout, markdown);
  t.regex(readFileSync(join(dir, 'out', 'chart.svg'), 'utf8'), /<(polyline|circle) /);
});

test('compare mode: Swift vs S3 interleaved, SigV4 accepted, corrupted GET bodies count as errors', async (t) => {
  const double = await startDouble();
  const corrupt = await startDouble();
  corrupt.corruptGets = true;
  t.teardown(() => {
    double.server.close();
    corrupt.server.close();
  });
  const dir = setup(t);
  const run = await runCli([
    ...swiftArgs(corrupt),
    '--name',
    'corrupting',
    '--b-endpoint',
    double.url,
    '--b-access-key',
    'test:tester',
    '--b-secret-key',
    'testing',
    '--b-name',
    's3',
    '--op',
    'PUT,GET',
    '--size',
    '8KiB',
    '--count',
    '20',
    '--concurrency',
    '4',
    '--no-probe',
    '--quiet',
    '--out',
    join(dir, 'out'),
  ]);
  t.is(run.code, 0, run.stderr);
  t.is(double.badSignatures, 0);
  const results = JSON.parse(readFileSync(join(dir, 'out', 'results.json'), 'utf8')) as Results;
  t.deepEqual(
    results.endpoints.map((e) => e.label),
    ['corrupting', 's3'],
  );
  const [put, get] = results.phases as [Figures[], Figures[]];
  t.is(put[0]?.ops, 20);
  t.is(put[1]?.ops, 20);
  t.is(get[1]?.ops, 20);
  t.is(get[1]?.errors, 0);
  // Every corrupted body is refused: no successes, all md5 mismatches.
  t.is(get[0]?.ops, 0);
  t.deepEqual(get[0]?.errorKinds, { md5_mismatch: 20 });
  const markdown = readFileSync(join(dir, 'out', 'report.md'), 'utf8');
  t.true(markdown.includes('| phase | figure | A: corrupting | B: s3 | B/A |'));
  t.true(markdown.includes('20 (md5_mismatch: 20)'));
  t.is(double.containers.size, 0, 'S3 side cleaned up');
});

test('--sequential runs all of A, then all of B', async (t) => {
  const log: string[] = [];
  const a = await startDouble('A', log);
  const b = await startDouble('B', log);
  t.teardown(() => {
    a.server.close();
    b.server.close();
  });
  const dir = setup(t);
  const run = await runCli([
    ...swiftArgs(a),
    '--name',
    'a',
    ...swiftArgs(b, 'b-'),
    '--b-name',
    'b',
    '--sequential',
    '--op',
    'PUT,GET',
    '--size',
    '1KiB',
    '--count',
    '8',
    '--concurrency',
    '2',
    '--no-probe',
    '--quiet',
    '--out',
    join(dir, 'out'),
  ]);
  t.is(run.code, 0, run.stderr);
  // After both setups (each an auth GET and 4 container PUTs), all of A's objects, then B's.
  const objectOps = log.filter((line) => line.endsWith(' GET') || line.endsWith(' PUT')).slice(2 * (1 + 4));
  t.deepEqual(objectOps, [
    ...Array<string>(8).fill('A PUT'),
    ...Array<string>(8).fill('A GET'),
    ...Array<string>(8).fill('B PUT'),
    ...Array<string>(8).fill('B GET'),
  ]);
  const results = JSON.parse(readFileSync(join(dir, 'out', 'results.json'), 'utf8')) as Results;
  t.deepEqual(
    results.phases.map((pair) => pair.map((figures) => figures.ops)),
    [
      [8, 8],
      [8, 8],
    ],
  );
  t.true(readFileSync(join(dir, 'out', 'report.md'), 'utf8').includes("all of A's phases, then all of B's"));
});

test('bad usage exits 2 with a message', async (t) => {
  const run = await runCli([
    '--auth-url',
    'http://127.0.0.1:9/auth/v1.0',
    '--user',
    'u',
    '--key',
    'k',
    '--op',
    'PUT',
    '--size',
    '4XB',
  ]);
  t.is(run.code, 2);
  t.regex(run.stderr, /bad size "4XB"/);
});
