/**
 * The object-store clients the benchmark drives: Swift API v1 with tempauth v1.0, and S3 with
 * SigV4 (path-style). Both have the same shape (`StoreClient`) so a workload never knows which it
 * talks to. Every answer is checked: a PUT's ETag must equal the body's MD5, a GET's body must
 * hash to what was written and have its length, a HEAD must announce the right length; anything
 * else rejects with an `OperationError` and counts as an error, never a success.
 */
import type * as http from 'node:http';
import {
  createAgent,
  expectStatus,
  httpRequest,
  OperationError,
  STALE_SOCKET,
  type BodyMode,
  type HttpResult,
} from './http.js';
import { type PayloadPool } from './payload.js';
import { signS3Headers, uriEncode, EMPTY_SHA256 } from './sigv4.js';

export interface ObjectRef {
  readonly container: string;
  readonly name: string;
  readonly size: number;
  readonly variant: number;
}

export interface ListPage {
  readonly rows: number;
  readonly lastName: string | undefined;
  readonly truncated: boolean;
}

export interface StoreClient {
  readonly api: 'swift' | 's3';
  /** Authenticates (Swift) or checks the endpoint answers (S3). */
  connect(): Promise<void>;
  createContainer(container: string): Promise<void>;
  deleteContainer(container: string): Promise<void>;
  /** Each returns the payload bytes moved (for MB/s). */
  put(ref: ObjectRef): Promise<number>;
  get(ref: ObjectRef): Promise<number>;
  head(ref: ObjectRef): Promise<number>;
  delete(ref: ObjectRef): Promise<number>;
  list(container: string, marker: string | undefined, limit: number): Promise<ListPage>;
  /** Objects in a container (0 if it does not exist); bounded by `atMost` for stores without a count. */
  countObjects(container: string, atMost: number): Promise<number>;
  close(): void;
}

export interface SwiftEndpoint {
  readonly api: 'swift';
  readonly authUrl: string;
  readonly user: string;
  readonly key: string;
}

export interface S3Endpoint {
  readonly api: 's3';
  readonly endpoint: string;
  readonly accessKey: string;
  readonly secretKey: string;
  readonly region: string;
}

export type EndpointSpec = SwiftEndpoint | S3Endpoint;

export interface ClientOptions {
  readonly socketsMax: number;
  readonly idleTimeoutMs: number;
  readonly deadlineMs: number;
}

function unquote(etag: string | string[] | undefined): string {
  return (Array.isArray(etag) ? (etag[0] ?? '') : (etag ?? '')).replace(/^"|"$/g, '').toLowerCase();
}

function checkBody(ref: ObjectRef, result: HttpResult, expectedMd5: string): void {
  if (result.bodyBytes !== ref.size) {
    throw new OperationError('length_mismatch', `GET ${ref.name}: ${result.bodyBytes} bytes, wrote ${ref.size}`);
  }
  if (result.md5Hex !== expectedMd5) throw new OperationError('md5_mismatch', `GET ${ref.name}: body MD5 differs`);
}

function checkHead(ref: ObjectRef, result: HttpResult, expectedMd5: string): void {
  if (Number(result.headers['content-length']) !== ref.size) {
    throw new OperationError('length_mismatch', `HEAD ${ref.name}: Content-Length ${result.headers['content-length']}`);
  }
  if (unquote(result.headers.etag) !== expectedMd5) {
    throw new OperationError('etag_mismatch', `HEAD ${ref.name}: ETag ${String(result.headers.etag)}`);
  }
}

abstract class BaseClient {
  protected readonly agent: http.Agent;

  constructor(
    baseUrl: URL,
    protected readonly pool: PayloadPool,
    protected readonly options: ClientOptions,
  ) {
    this.agent = createAgent(baseUrl, options.socketsMax);
  }

  protected async send(
    method: string,
    url: URL,
    headers: Record<string, string>,
    bodyMode: BodyMode,
    body?: ObjectRef,
  ): Promise<HttpResult> {
    try {
      return await this.sendOnce(method, url, headers, bodyMode, body, this.agent);
    } catch (error) {
      // Once, as browsers and the AWS SDKs do: a stale keep-alive socket is the client's
      // problem, not the server's, and must not count as a server error. On a new connection:
      // a server resumed after a pause closes all its idle sockets at once, so the pool's next
      // socket is likely stale too.
      if (!(error instanceof OperationError && error.kind === STALE_SOCKET)) throw error;
      return this.sendOnce(method, url, headers, bodyMode, body, false);
    }
  }

  private sendOnce(
    method: string,
    url: URL,
    headers: Record<string, string>,
    bodyMode: BodyMode,
    body: ObjectRef | undefined,
    agent: http.Agent | false,
  ): Promise<HttpResult> {
    const pool = this.pool;
    return httpRequest({
      url,
      method,
      headers,
      agent,
      idleTimeoutMs: this.options.idleTimeoutMs,
      deadlineMs: this.options.deadlineMs,
      bodyMode,
      ...(body === undefined ? {} : { writeBody: (request) => pool.writeBody(request, body.size, body.variant) }),
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

export class SwiftClient extends BaseClient implements StoreClient {
  readonly api = 'swift' as const;
  private storageUrl = '';
  private token = '';
  private reauthInFlight: Promise<void> | undefined;

  constructor(
    private readonly endpoint: SwiftEndpoint,
    pool: PayloadPool,
    options: ClientOptions,
  ) {
    super(new URL(endpoint.authUrl), pool, options);
  }

  async connect(): Promise<void> {
    const result = await this.send(
      'GET',
      new URL(this.endpoint.authUrl),
      { 'x-auth-user': this.endpoint.user, 'x-auth-key': this.endpoint.key },
      'text',
    );
    expectStatus(result, 'auth', [200, 204]);
    const storageUrl = result.headers['x-storage-url'];
    const token = result.headers['x-auth-token'];
    if (typeof storageUrl !== 'string' || typeof token !== 'string') {
      throw new OperationError('auth', 'auth answered without X-Storage-Url / X-Auth-Token');
    }
    this.storageUrl = storageUrl.replace(/\/$/, '');
    this.token = token;
  }

  /** Runs `attempt`; on a 401 (expired token) authenticates once more and retries once. */
  private async authed<T>(attempt: () => Promise<T>): Promise<T> {
    try {
      return await attempt();
    } catch (error) {
      if (!(error instanceof OperationError) || error.kind !== 'http_401') throw error;
      this.reauthInFlight ??= this.connect().finally(() => (this.reauthInFlight = undefined));
      await this.reauthInFlight;
      return attempt();
    }
  }

  private url(container: string, name?: string, query?: Record<string, string>): URL {
    const url = new URL(this.storageUrl);
    const base = url.pathname.replace(/\/$/, '');
    // Already percent-encoded here: URL keeps %XX escapes as they are.
    url.pathname =
      name === undefined
        ? `${base}/${uriEncode(container)}`
        : `${base}/${uriEncode(container)}/${uriEncode(name, true)}`;
    if (query !== undefined) for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value);
    return url;
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { 'x-auth-token': this.token, ...extra };
  }

  createContainer(container: string): Promise<void> {
    return this.authed(async () => {
      const result = await this.send('PUT', this.url(container), this.headers({ 'content-length': '0' }), 'text');
      expectStatus(result, `PUT container ${container}`, [201, 202, 204]);
    });
  }

  deleteContainer(container: string): Promise<void> {
    return this.authed(async () => {
      const result = await this.send('DELETE', this.url(container), this.headers(), 'text');
      expectStatus(result, `DELETE container ${container}`, [204, 404]);
    });
  }

  put(ref: ObjectRef): Promise<number> {
    const digest = this.pool.digest(ref.size, ref.variant);
    return this.authed(async () => {
      const result = await this.send(
        'PUT',
        this.url(ref.container, ref.name),
        this.headers({
          'content-length': String(ref.size),
          etag: digest.md5Hex,
          'content-type': 'application/octet-stream',
        }),
        'text',
        ref,
      );
      expectStatus(result, `PUT ${ref.name}`, [201]);
      if (unquote(result.headers.etag) !== digest.md5Hex) {
        throw new OperationError('etag_mismatch', `PUT ${ref.name}: ETag ${String(result.headers.etag)}`);
      }
      return ref.size;
    });
  }

  get(ref: ObjectRef): Promise<number> {
    const digest = this.pool.digest(ref.size, ref.variant);
    return this.authed(async () => {
      const result = await this.send('GET', this.url(ref.container, ref.name), this.headers(), 'md5');
      expectStatus(result, `GET ${ref.name}`, [200]);
      checkBody(ref, result, digest.md5Hex);
      return result.bodyBytes;
    });
  }

  head(ref: ObjectRef): Promise<number> {
    const digest = this.pool.digest(ref.size, ref.variant);
    return this.authed(async () => {
      const result = await this.send('HEAD', this.url(ref.container, ref.name), this.headers(), 'drain');
      expectStatus(result, `HEAD ${ref.name}`, [200]);
      checkHead(ref, result, digest.md5Hex);
      return 0;
    });
  }

  delete(ref: ObjectRef): Promise<number> {
    return this.authed(async () => {
      const result = await this.send('DELETE', this.url(ref.container, ref.name), this.headers(), 'text');
      expectStatus(result, `DELETE ${ref.name}`, [204]);
      return 0;
    });
  }

  countObjects(container: string, _atMost: number): Promise<number> {
    return this.authed(async () => {
      const result = await this.send('HEAD', this.url(container), this.headers(), 'drain');
      if (result.status === 404) return 0;
      expectStatus(result, `HEAD container ${container}`, [200, 204]);
      return Number(result.headers['x-container-object-count'] ?? 0);
    });
  }

  list(container: string, marker: string | undefined, limit: number): Promise<ListPage> {
    return this.authed(async () => {
      const query: Record<string, string> = { format: 'json', limit: String(limit) };
      if (marker !== undefined) query.marker = marker;
      const result = await this.send('GET', this.url(container, undefined, query), this.headers(), 'text');
      expectStatus(result, `GET container ${container}`, [200, 204]);
      let rows: unknown;
      try {
        rows = result.status === 204 ? [] : JSON.parse(result.text ?? '');
      } catch (error) {
        throw new OperationError('bad_listing', `listing of ${container} is not JSON`, { cause: error });
      }
      if (!Array.isArray(rows)) throw new OperationError('bad_listing', `listing of ${container} is not an array`);
      const last = rows[rows.length - 1] as { name?: unknown } | undefined;
      return {
        rows: rows.length,
        lastName: typeof last?.name === 'string' ? last.name : undefined,
        truncated: rows.length >= limit,
      };
    });
  }
}

export class S3Client extends BaseClient implements StoreClient {
  readonly api = 's3' as const;
  private readonly base: URL;

  constructor(
    private readonly endpoint: S3Endpoint,
    pool: PayloadPool,
    options: ClientOptions,
  ) {
    const base = new URL(endpoint.endpoint);
    super(base, pool, options);
    this.base = base;
  }

  private request(
    method: string,
    bucket: string,
    key: string | undefined,
    query: Record<string, string> | undefined,
    headers: Record<string, string>,
    payloadHash: string,
    bodyMode: BodyMode,
    body?: ObjectRef,
  ): Promise<HttpResult> {
    const basePath = this.base.pathname.replace(/\/$/, '');
    const path = `${basePath}/${uriEncode(bucket)}${key === undefined ? '' : `/${uriEncode(key, true)}`}`;
    const url = new URL(this.base.origin);
    url.pathname = path;
    if (query !== undefined) {
      url.search = Object.entries(query)
        .map(([name, value]) => `${uriEncode(name)}=${uriEncode(value)}`)
        .join('&');
    }
    const signed = signS3Headers(
      { accessKeyId: this.endpoint.accessKey, secretAccessKey: this.endpoint.secretKey },
      this.endpoint.region,
      { method, path, ...(query === undefined ? {} : { query }), headers: { host: url.host, ...headers }, payloadHash },
    );
    return this.send(method, url, signed, bodyMode, body);
  }

  async connect(): Promise<void> {
    // ListBuckets proves both reachability and the credentials.
    const url = new URL(this.base.href);
    const signed = signS3Headers(
      { accessKeyId: this.endpoint.accessKey, secretAccessKey: this.endpoint.secretKey },
      this.endpoint.region,
      { method: 'GET', path: url.pathname, headers: { host: url.host }, payloadHash: EMPTY_SHA256 },
    );
    const result = await this.send('GET', url, signed, 'text');
    expectStatus(result, 'ListBuckets', [200]);
  }

  async createContainer(bucket: string): Promise<void> {
    const result = await this.request(
      'PUT',
      bucket,
      undefined,
      undefined,
      { 'content-length': '0' },
      EMPTY_SHA256,
      'text',
    );
    if (result.status === 409 && (result.text ?? '').includes('BucketAlreadyOwnedByYou')) return;
    expectStatus(result, `CreateBucket ${bucket}`, [200]);
  }

  async deleteContainer(bucket: string): Promise<void> {
    const result = await this.request('DELETE', bucket, undefined, undefined, {}, EMPTY_SHA256, 'text');
    expectStatus(result, `DeleteBucket ${bucket}`, [204, 404]);
  }

  async put(ref: ObjectRef): Promise<number> {
    const digest = this.pool.digest(ref.size, ref.variant);
    // What the AWS CLI (botocore) and SDK v3 send for a PutObject of a file or buffer over http: the
    // payload's SHA-256 signed, and a CRC-32 header (their default checksum), no Content-MD5.
    const checksum: Record<string, string> =
      digest.crc32Base64 === undefined
        ? { 'content-md5': digest.md5Base64 }
        : { 'x-amz-checksum-crc32': digest.crc32Base64, 'x-amz-sdk-checksum-algorithm': 'CRC32' };
    const result = await this.request(
      'PUT',
      ref.container,
      ref.name,
      undefined,
      {
        'content-length': String(ref.size),
        ...checksum,
        'content-type': 'application/octet-stream',
      },
      digest.sha256Hex,
      'text',
      ref,
    );
    expectStatus(result, `PutObject ${ref.name}`, [200]);
    if (unquote(result.headers.etag) !== digest.md5Hex) {
      throw new OperationError('etag_mismatch', `PutObject ${ref.name}: ETag ${String(result.headers.etag)}`);
    }
    return ref.size;
  }

  async get(ref: ObjectRef): Promise<number> {
    const digest = this.pool.digest(ref.size, ref.variant);
    const result = await this.request('GET', ref.container, ref.name, undefined, {}, EMPTY_SHA256, 'md5');
    expectStatus(result, `GetObject ${ref.name}`, [200]);
    checkBody(ref, result, digest.md5Hex);
    return result.bodyBytes;
  }

  async head(ref: ObjectRef): Promise<number> {
    const digest = this.pool.digest(ref.size, ref.variant);
    const result = await this.request('HEAD', ref.container, ref.name, undefined, {}, EMPTY_SHA256, 'drain');
    expectStatus(result, `HeadObject ${ref.name}`, [200]);
    checkHead(ref, result, digest.md5Hex);
    return 0;
  }

  async delete(ref: ObjectRef): Promise<number> {
    const result = await this.request('DELETE', ref.container, ref.name, undefined, {}, EMPTY_SHA256, 'text');
    expectStatus(result, `DeleteObject ${ref.name}`, [204, 200]);
    return 0;
  }

  async countObjects(bucket: string, atMost: number): Promise<number> {
    // S3 has no count header: walk the listing (bounded by `atMost`).
    let total = 0;
    let marker: string | undefined;
    for (let page = 0; page < 100_000 && total < atMost; page += 1) {
      let result: ListPage;
      try {
        result = await this.list(bucket, marker, 1000);
      } catch (error) {
        if (error instanceof OperationError && error.kind === 'http_404') return 0;
        throw error;
      }
      total += result.rows;
      if (!result.truncated || result.lastName === undefined) break;
      marker = result.lastName;
    }
    return total;
  }

  async list(bucket: string, marker: string | undefined, limit: number): Promise<ListPage> {
    // S3 pages hold at most 1,000 keys; start-after plays Swift's marker.
    const query: Record<string, string> = { 'list-type': '2', 'max-keys': String(Math.min(limit, 1000)) };
    if (marker !== undefined) query['start-after'] = marker;
    const result = await this.request('GET', bucket, undefined, query, {}, EMPTY_SHA256, 'text');
    expectStatus(result, `ListObjectsV2 ${bucket}`, [200]);
    const text = result.text ?? '';
    const keys = [...text.matchAll(/<Key>([^<]*)<\/Key>/g)].map((match) => match[1] ?? '');
    const lastKey = keys[keys.length - 1];
    return {
      rows: keys.length,
      lastName: lastKey === undefined ? undefined : decodeXml(lastKey),
      truncated: /<IsTruncated>true<\/IsTruncated>/.test(text),
    };
  }
}

function decodeXml(text: string): string {
  return text
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');
}

export function createClient(spec: EndpointSpec, pool: PayloadPool, options: ClientOptions): StoreClient {
  return spec.api === 'swift' ? new SwiftClient(spec, pool, options) : new S3Client(spec, pool, options);
}
