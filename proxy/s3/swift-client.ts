/**
 * How the S3 layer reaches the Swift API: through the proxy pipeline's subrequest hook
 * (`swiftState(ctx).subrequest`, see proxy/state.ts), typed here structurally so this folder
 * depends only on the shape of that contract. `SwiftClient` binds the hook to one account and
 * builds %-encoded `/v1/<account>/<container>/<object>?query` paths.
 */
import { Readable } from 'node:stream';

export interface SwiftSubrequest {
  method: string;
  path: string;
  headers?: Readonly<Record<string, string>>;
  body?: Buffer | string | Readable;
  preAuthed?: boolean;
  source?: string;
  /**
   * Answer as to the account's owner (Swift's swift_owner), keeping owner-only headers such as
   * X-Container-Read/-Write: for middleware-internal reads of what the store holds.
   */
  asOwner?: boolean;
  /** Object PUT only: sysmeta known after the body's last byte (proxy/state.ts FooterSource). */
  footers?: () => Readonly<Record<string, string>>;
}

export interface SwiftSubresponse {
  status: number;
  /** Lower-case header names. */
  headers: Record<string, string>;
  body: Readable | Buffer | string | null;
  buffer(maxBytes?: number): Promise<Buffer>;
}

export type SwiftCall = (options: SwiftSubrequest) => Promise<SwiftSubresponse>;

export interface SwiftRequestOptions {
  query?: Readonly<Record<string, string | undefined>>;
  headers?: Readonly<Record<string, string>>;
  body?: Buffer | string | Readable;
  footers?: () => Readonly<Record<string, string>>;
  /** SwiftSubrequest.asOwner: the answer keeps owner-only headers (authorization still applies). */
  asOwner?: boolean;
}

/** Swift paths are %-encoded per segment; `/` inside an object name stays a separator. */
export function quoteSwiftName(name: string, keepSlash: boolean): string {
  const quoted = encodeURIComponent(name);
  return keepSlash ? quoted.replace(/%2F/g, '/') : quoted;
}

export function buildQuery(query: Readonly<Record<string, string | undefined>> = {}): string {
  const parts: string[] = [];
  for (const [name, value] of Object.entries(query)) {
    if (value === undefined) continue;
    parts.push(value === '' ? encodeURIComponent(name) : `${encodeURIComponent(name)}=${encodeURIComponent(value)}`);
  }
  return parts.length === 0 ? '' : `?${parts.join('&')}`;
}

export class SwiftClient {
  constructor(
    private readonly call: SwiftCall,
    /** The account name, e.g. `AUTH_test`. */
    readonly account: string,
  ) {}

  path(container?: string, object?: string, query?: Readonly<Record<string, string | undefined>>): string {
    let path = `/v1/${quoteSwiftName(this.account, false)}`;
    if (container !== undefined) path += `/${quoteSwiftName(container, false)}`;
    if (object !== undefined) path += `/${quoteSwiftName(object, true)}`;
    return path + buildQuery(query);
  }

  async request(
    method: string,
    container: string | undefined,
    object: string | undefined,
    options: SwiftRequestOptions = {},
  ): Promise<SwiftSubresponse> {
    const response = await this.call({
      method,
      path: this.path(container, object, options.query),
      headers: options.headers,
      body: options.body,
      footers: options.footers,
      asOwner: options.asOwner,
      source: 'S3',
    });
    return response;
  }

  /** A request whose body is only read for its JSON (listings, manifests); bounded. */
  async json<T>(
    method: string,
    container: string | undefined,
    object: string | undefined,
    options: SwiftRequestOptions = {},
    maxBytes = 8 * 1024 * 1024,
  ): Promise<{ status: number; headers: Record<string, string>; value?: T }> {
    const response = await this.request(method, container, object, options);
    if (response.status < 200 || response.status >= 300 || response.status === 204) {
      discard(response);
      return { status: response.status, headers: response.headers };
    }
    const text = (await response.buffer(maxBytes)).toString('utf8');
    return { status: response.status, headers: response.headers, value: JSON.parse(text) as T };
  }
}

/** The body as a stream, whatever form the pipeline left it in. */
export function bodyStream(response: SwiftSubresponse): Readable {
  const body = response.body;
  if (body === null) return Readable.from([]);
  if (typeof body === 'string' || Buffer.isBuffer(body)) return Readable.from([Buffer.from(body)]);
  return body;
}

/** Drops a response body we will not read, releasing its backend connection. */
export function discard(response: SwiftSubresponse): void {
  const body = response.body;
  if (body instanceof Readable && !body.destroyed) {
    body.resume();
    body.destroy();
  }
}
