/**
 * Temporary URLs (Swift's tempurl middleware). A request for an object with `temp_url_sig` and
 * `temp_url_expires` (optionally `temp_url_prefix`, `temp_url_ip_range`, `filename`, `inline`)
 * is allowed without a token when the signature is the HMAC of
 * `<METHOD>\n<expires>\n<path>` (`ip=<range>\n` first with an IP range; `prefix:<path prefix>`
 * for prefix URLs) under one of the account's or container's Temp-URL keys (X-Account-Meta-Temp-URL-Key,
 * -Key-2, X-Container-Meta-Temp-URL-Key, -Key-2). Digests: sha1, sha256 and sha512, hex or
 * `<digest>:<base64>`. A HEAD is allowed by a GET, PUT or POST signature. Otherwise 401
 * `Temp URL invalid`. Allowed requests may touch only that account (account key) or container
 * (container key), cannot set X-Object-Manifest, X-Symlink-Target or X-Copy-From, lose
 * X-Timestamp; their responses lose X-Object-Meta-* (but X-Object-Meta-Public-*) and GETs carry
 * Content-Disposition (attachment, or inline) and Expires.
 *
 * It sits right after tempauth: tempauth installs its authorize for every request, and this stage
 * replaces it for a valid temp URL (Swift's swift.authorize_override).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { Context, Middleware, Next } from 'koa';
import { HttpError } from '../../common/errors.js';
import type { ProxyDeps } from '../controllers/base.js';
import { getAccountInfo, getContainerInfo } from '../controllers/info.js';
import { parseSwiftPath, swiftPathOrUndefined, type SwiftPath } from '../request-path.js';
import { swiftState, type Authorize } from '../state.js';

export const TEMPURL_METHODS = ['GET', 'HEAD', 'PUT', 'POST', 'DELETE'] as const;
export const TEMPURL_DIGESTS = ['sha1', 'sha256', 'sha512'] as const;
type Digest = (typeof TEMPURL_DIGESTS)[number];

const DISALLOWED_INCOMING_HEADERS = ['x-object-manifest', 'x-symlink-target', 'x-copy-from'];
const INCOMING_REMOVE_HEADERS = ['x-timestamp'];
const OUTGOING_REMOVE_PREFIX = 'x-object-meta-';
const OUTGOING_ALLOW_PREFIX = 'x-object-meta-public-';

const HEX_LENGTHS: Readonly<Record<number, Digest>> = { 40: 'sha1', 64: 'sha256', 128: 'sha512' };

/** What /info announces under `tempurl`. */
export function tempurlInfo(): Record<string, unknown> {
  return {
    methods: [...TEMPURL_METHODS],
    incoming_remove_headers: [...INCOMING_REMOVE_HEADERS],
    incoming_allow_headers: [],
    outgoing_remove_headers: ['x-object-meta-*'],
    outgoing_allow_headers: ['x-object-meta-public-*'],
    allowed_digests: [...TEMPURL_DIGESTS],
    deprecated_digests: ['sha1'],
  };
}

/** Swift's extract_digest_and_algorithm: (digest, hex signature), or undefined. */
export function parseSignature(value: string): { digest: string; hex: string } | undefined {
  const colon = value.indexOf(':');
  if (colon >= 0) {
    let encoded = value.slice(colon + 1);
    if ((encoded.includes('-') || encoded.includes('_')) && !(encoded.includes('+') || encoded.includes('/'))) {
      encoded = encoded.replace(/-/g, '+').replace(/_/g, '/');
    }
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(encoded)) return undefined;
    return { digest: value.slice(0, colon), hex: Buffer.from(encoded, 'base64').toString('hex') };
  }
  if (!/^[0-9a-fA-F]*$/.test(value)) return undefined;
  const digest = HEX_LENGTHS[value.length];
  if (digest === undefined) return undefined;
  return { digest, hex: value.toLowerCase() };
}

export function tempurlHmac(
  digest: Digest,
  key: string,
  method: string,
  expires: number | string,
  path: string,
  ipRange?: string,
): string {
  const body =
    ipRange === undefined ? `${method}\n${expires}\n${path}` : `ip=${ipRange}\n${method}\n${expires}\n${path}`;
  return createHmac(digest, key).update(body).digest('hex');
}

function queryParam(ctx: Context, name: string): string | undefined {
  const value = ctx.query[name];
  return Array.isArray(value) ? value[0] : value;
}

/** temp_url_expires: integer seconds or `YYYY-MM-DDTHH:MM:SSZ`; 0 when invalid or past. */
function parseExpires(value: string): number {
  let seconds: number;
  if (/^-?\d+$/.test(value.trim())) seconds = Number(value.trim());
  else if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/.test(value)) seconds = Date.parse(value) / 1000;
  else return 0;
  if (!Number.isFinite(seconds) || seconds < Date.now() / 1000) return 0;
  return seconds;
}

function ipInRange(address: string, range: string): boolean {
  const [base = '', bitsText] = range.split('/');
  const version = isIP(base);
  const clientVersion = isIP(address.replace(/^::ffff:/, ''));
  if (version !== 4 || clientVersion !== 4) return version !== 0 && base === address;
  const toInt = (ip: string): number => ip.split('.').reduce((sum, part) => sum * 256 + Number(part), 0);
  const bits = bitsText === undefined ? 32 : Number(bitsText);
  if (!Number.isInteger(bits) || bits < 0 || bits > 32) throw new Error('bad range');
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return (toInt(address.replace(/^::ffff:/, '')) & mask) >>> 0 === (toInt(base) & mask) >>> 0;
}

function keysFrom(
  headers: Readonly<Record<string, string | string[] | undefined>>,
  kind: 'account' | 'container',
): string[] {
  const keys: string[] = [];
  for (const suffix of ['', '-2']) {
    const value = headers[`x-${kind}-meta-temp-url-key${suffix}`];
    const key = Array.isArray(value) ? value[0] : value;
    if (key !== undefined && key !== '') keys.push(key);
  }
  return keys;
}

export interface ScopedTempUrlKey {
  key: string;
  /** Which metadata it came from: an account key signs for the whole account. */
  scope: 'account' | 'container';
}

/** The Temp-URL keys that sign for a container: the account's (both slots), then the container's. */
export async function tempUrlKeys(
  ctx: Context,
  deps: ProxyDeps,
  account: string,
  container: string,
): Promise<ScopedTempUrlKey[]> {
  const accountInfo = await getAccountInfo(ctx, deps, account);
  const containerInfo = await getContainerInfo(ctx, deps, account, container);
  return [
    ...keysFrom(accountInfo.headers, 'account').map((key) => ({ key, scope: 'account' as const })),
    ...keysFrom(containerInfo.headers, 'container').map((key) => ({ key, scope: 'container' as const })),
  ];
}

function invalid(ctx: Context): HttpError {
  const body = ctx.method === 'HEAD' ? undefined : '401 Unauthorized: Temp URL invalid\n';
  return new HttpError(401, body, { code: 'TempUrlInvalid' });
}

function sameEnough(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** RFC 5987 Content-Disposition, as Swift's disposition_format. */
function dispositionFormat(type: string, filename: string): string {
  const quoted = encodeURIComponent(filename).replace(/%20/g, ' ').replace(/%2F/g, '/');
  return `${type}; filename="${quoted}"; filename*=UTF-8''${encodeURIComponent(filename)}`;
}

export interface TempUrlOptions {
  validVersions: readonly string[];
  deps: ProxyDeps;
}

export function tempurlMiddleware(options: TempUrlOptions): Middleware {
  return async (ctx: Context, next: Next): Promise<void> => {
    if (ctx.method === 'OPTIONS') {
      await next();
      return;
    }
    const sigParam = queryParam(ctx, 'temp_url_sig');
    const expiresParam = queryParam(ctx, 'temp_url_expires');
    if (sigParam === undefined && expiresParam === undefined) {
      await next();
      return;
    }
    const expires = expiresParam === undefined ? 0 : parseExpires(expiresParam);
    if (sigParam === undefined || sigParam === '' || expires === 0) throw invalid(ctx);
    const signature = parseSignature(sigParam);
    if (signature === undefined || !(TEMPURL_DIGESTS as readonly string[]).includes(signature.digest))
      throw invalid(ctx);
    const digest = signature.digest as Digest;
    const path = swiftPathOrUndefined(ctx.path, options.validVersions);
    const methods: readonly string[] = TEMPURL_METHODS;
    if (
      path === undefined ||
      path.version !== 'v1' ||
      path.container === undefined ||
      path.object === undefined ||
      !methods.includes(ctx.method)
    ) {
      throw invalid(ctx);
    }
    const ipRange = queryParam(ctx, 'temp_url_ip_range');
    if (ipRange !== undefined) {
      const client = ctx.req.socket.remoteAddress ?? '';
      try {
        if (!ipInRange(client, ipRange)) throw invalid(ctx);
      } catch (error) {
        if (error instanceof HttpError) throw error;
        throw invalid(ctx);
      }
    }
    const { account, container, object } = path;
    const scoped = await tempUrlKeys(ctx, options.deps, account, container);
    if (scoped.length === 0) throw invalid(ctx);
    const prefix = queryParam(ctx, 'temp_url_prefix');
    let signedPath: string;
    if (prefix === undefined) {
      signedPath = `/v1/${account}/${container}/${object}`;
    } else {
      if (!object.startsWith(prefix)) throw invalid(ctx);
      signedPath = `prefix:/v1/${account}/${container}/${prefix}`;
    }
    const tryMethods = ctx.method === 'HEAD' ? ['HEAD', 'GET', 'POST', 'PUT'] : [ctx.method];
    let scope: 'account' | 'container' | undefined;
    for (const method of tryMethods) {
      for (const candidate of scoped) {
        const expected = tempurlHmac(digest, candidate.key, method, expires, signedPath, ipRange);
        if (scope === undefined && sameEnough(signature.hex, expected)) scope = candidate.scope;
      }
    }
    if (scope === undefined) throw invalid(ctx);
    if (!['GET', 'HEAD', 'OPTIONS'].includes(ctx.method)) {
      for (const name of DISALLOWED_INCOMING_HEADERS) {
        if (ctx.get(name) !== '') {
          const title = name.replace(
            /(^|-)([a-z])/g,
            (_match, dash: string, letter: string) => dash + letter.toUpperCase(),
          );
          throw new HttpError(400, `The header '${title}' is not allowed in this tempurl`, { code: 'TempUrlHeader' });
        }
      }
    }
    for (const name of INCOMING_REMOVE_HEADERS) delete ctx.req.headers[name];
    const state = swiftState(ctx);
    const allowed: Authorize = (subCtx) => {
      let target: SwiftPath | undefined;
      try {
        target = parseSwiftPath(subCtx.path, options.validVersions);
      } catch {
        target = undefined;
      }
      if (target?.account === account && (scope === 'account' || target.container === container)) return undefined;
      return new HttpError(401, undefined, { code: 'Unauthorized' });
    };
    state.authorize = allowed;
    state.remoteUser = '.wsgi.tempurl';
    const filename = queryParam(ctx, 'filename');
    const inline = ctx.query.inline !== undefined;
    await next();
    for (const name of Object.keys(ctx.response.headers)) {
      const lower = name.toLowerCase();
      if (lower.startsWith(OUTGOING_REMOVE_PREFIX) && !lower.startsWith(OUTGOING_ALLOW_PREFIX)) ctx.remove(name);
    }
    if ((ctx.method === 'GET' || ctx.method === 'HEAD') && ctx.status >= 200 && ctx.status < 300) {
      const rawExisting = ctx.response.headers['content-disposition'];
      const existing = rawExisting === undefined ? '' : String(rawExisting);
      let disposition: string;
      if (inline)
        disposition = filename !== undefined && filename !== '' ? dispositionFormat('inline', filename) : 'inline';
      else if (filename !== undefined && filename !== '') disposition = dispositionFormat('attachment', filename);
      else if (existing !== '') disposition = existing;
      else disposition = dispositionFormat('attachment', object.replace(/\/+$/, '').split('/').at(-1) ?? '');
      ctx.set('Content-Disposition', disposition.replace(/\n/g, '%0A'));
      ctx.set('Expires', new Date(expires * 1000).toUTCString());
    }
  };
}
