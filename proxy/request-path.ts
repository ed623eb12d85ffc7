/**
 * Swift API paths: `/<version>/<account>[/<container>[/<object>]]`, percent-decoded first and then
 * split at most three times (an object name keeps its slashes), as Swift's split_path does on the
 * unquoted PATH_INFO; and the reverse, quoting names for backend paths.
 */
import { HttpError } from '../common/errors.js';

export interface SwiftPath {
  version: string;
  account: string;
  container?: string;
  object?: string;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Percent-decodes to bytes and then UTF-8, so bad encodings are refused rather than replaced. */
export function decodePathStrict(raw: string): string | undefined {
  if (!raw.includes('%')) return raw;
  const bytes: number[] = [];
  for (let index = 0; index < raw.length; index += 1) {
    const char = raw.charCodeAt(index);
    if (raw[index] === '%' && /^[0-9a-fA-F]{2}$/.test(raw.slice(index + 1, index + 3))) {
      bytes.push(Number.parseInt(raw.slice(index + 1, index + 3), 16));
      index += 2;
    } else if (char < 0x80) {
      bytes.push(char);
    } else {
      bytes.push(...Buffer.from(raw[index] ?? ''));
    }
  }
  try {
    return UTF8.decode(Uint8Array.from(bytes));
  } catch {
    return undefined;
  }
}

/**
 * The last path parsed. A request's path is parsed by a dozen stages one after another (each
 * middleware decides on its own whether the request is its business): the first one pays.
 */
let lastParsed: { rawPath: string; validVersions: readonly string[]; path: SwiftPath | undefined } | undefined;

/**
 * Parses a request path. Returns undefined for paths that are not Swift API paths at all (so
 * other middlewares or a 404 can answer); throws 412 for bad UTF-8 or NUL, as Swift does.
 * Each call returns its own object: callers may change it.
 */
export function parseSwiftPath(rawPath: string, validVersions: readonly string[]): SwiftPath | undefined {
  const last = lastParsed;
  if (last !== undefined && last.rawPath === rawPath && last.validVersions === validVersions) {
    return last.path === undefined ? undefined : { ...last.path };
  }
  const path = parseSwiftPathUncached(rawPath, validVersions);
  lastParsed = { rawPath, validVersions, path: path === undefined ? undefined : { ...path } };
  return path;
}

function parseSwiftPathUncached(rawPath: string, validVersions: readonly string[]): SwiftPath | undefined {
  const decoded = decodePathStrict(rawPath);
  if (decoded === undefined || decoded.includes('\u0000')) {
    throw new HttpError(412, 'Invalid UTF8 or contains NULL', { code: 'InvalidUtf8' });
  }
  if (!decoded.startsWith('/')) return undefined;
  const parts = decoded.slice(1).split('/');
  const version = parts[0] ?? '';
  if (!validVersions.includes(version)) return undefined;
  const account = parts[1] ?? '';
  if (account === '') return undefined;
  if (parts.length === 2) return { version, account };
  const container = parts[2] ?? '';
  if (parts.length === 3) {
    // `/v1/a/` is the account; `/v1/a/c/` is the container.
    return container === '' ? { version, account } : { version, account, container };
  }
  const object = parts.slice(3).join('/');
  if (container === '') throw new HttpError(412, 'Invalid path', { code: 'BadPath' }); // `/v1/a//o`
  if (object === '') return { version, account, container };
  return { version, account, container, object };
}

/**
 * parseSwiftPath for the middlewares that act only on well-formed Swift paths: a path that is
 * not one, or that the proxy will refuse later (412), passes them by.
 */
export function swiftPathOrUndefined(rawPath: string, validVersions: readonly string[]): SwiftPath | undefined {
  try {
    return parseSwiftPath(rawPath, validVersions);
  } catch {
    return undefined;
  }
}

/** Quotes a name for a URL path, keeping `/` (Swift's quote(..., safe='/')). */
export function quoteName(name: string): string {
  return encodeURIComponent(name).replace(/%2F/g, '/');
}

/** The backend path after the device: `/<partition>/<account>[/<container>[/<object>]]`. */
export function backendPath(partition: number, account: string, container?: string, object?: string): string {
  let path = `/${partition}/${quoteName(account)}`;
  if (container !== undefined) path += `/${quoteName(container)}`;
  if (object !== undefined) path += `/${quoteName(object)}`;
  return path;
}

/** The client-visible path: `/v1/<account>[/<container>[/<object>]]`. */
export function swiftPathString(path: SwiftPath): string {
  let out = `/${path.version}/${quoteName(path.account)}`;
  if (path.container !== undefined) out += `/${quoteName(path.container)}`;
  if (path.object !== undefined) out += `/${quoteName(path.object)}`;
  return out;
}
