/**
 * FormPOST (Swift's formpost middleware): a browser form posted as `multipart/form-data` to
 * `/v1/<account>/<container>[/<prefix>]` uploads each file field as the object
 * `<prefix><filename>`, without a token. The form's fields before the files say what is allowed:
 * `redirect`, `max_file_size`, `max_file_count`, `expires` and `signature`, the HMAC of
 * `<path>\n<redirect>\n<max_file_size>\n<max_file_count>\n<expires>` under one of the TempURL keys
 * of the account or the container (sha1, sha256 or sha512; hex or `<digest>:<base64>`).
 * `x_delete_at`, `x_delete_after`, `content-type` and `content-encoding` fields (or a file part's
 * own Content-Type / Content-Encoding) go on the object PUTs. Fields after a file do not apply to
 * it: the form is read as it arrives, and each file part is streamed straight into its PUT
 * subrequest (never held whole), capped at max_file_size.
 *
 * Answers, in Swift's words: with `redirect`, 303 to `<redirect>?status=<code>&message=<text>`;
 * without, the status of the last PUT (`201 Created`) as text. `400 FormPost: max_file_size
 * exceeded` (the PUT is aborted: nothing is stored), `401 FormPost: Invalid Signature` /
 * `Form Expired`, `400 FormPost: <field> not an integer`, and `max file count exceeded` /
 * `no files to process` as a 400 status in the usual answer. Files stored before an error stay.
 *
 * It goes before tempauth (it authorizes each PUT itself, as Swift's pre-authed subrequests), and
 * only takes multipart POSTs to Swift API paths: everything else passes through.
 *
 * Not copied from Swift: the redirect link in the 303 body has `"`, `<` and `>` escaped.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Context, Middleware, Next } from 'koa';
import { STATUS_TEXT } from '../../common/errors.js';
import type { Stage, StageContext } from '../app.js';
import type { ProxyDeps } from '../controllers/base.js';
import {
  MimeInvalidError,
  MultipartReader,
  MultipartTruncatedError,
  parseHeaderAttributes,
  readPartText,
  type FormPart,
} from '../multipart-form.js';
import { decodePathStrict } from '../request-path.js';
import { swiftState } from '../state.js';
import { parseSignature, tempUrlKeys } from './tempurl.js';

export const FORMPOST_DIGESTS = ['sha1', 'sha256', 'sha512'] as const;

/** Swift's MAX_VALUE_LENGTH: a field's value beyond this is dropped. */
const VALUE_BYTES_MAX = 4096;
/** What is left of a client's form after an early answer is read and dropped up to this; past it the connection closes. */
const DRAIN_BYTES_MAX = 16 * 1024 * 1024;

/** What /info announces under `formpost`. */
export function formpostInfo(): Record<string, unknown> {
  return { allowed_digests: [...FORMPOST_DIGESTS], deprecated_digests: ['sha1'] };
}

/** A form Swift answers 400 `FormPost: <message>`. */
class FormInvalidError extends Error {
  readonly code = 'FormInvalid';
}

/** A form Swift answers 401 `FormPost: <Message Titled>`. */
class FormUnauthorizedError extends Error {
  readonly code = 'FormUnauthorized';
}

export interface FormPostOptions {
  validVersions: readonly string[];
  deps: ProxyDeps;
}

/** Python's str.title(), which Swift applies to its messages. */
function titleCase(text: string): string {
  return text.replace(/[A-Za-z]+/g, (word) => word.charAt(0).toUpperCase() + word.slice(1).toLowerCase());
}

/** Python's urllib quote (safe '/'). */
function pythonQuote(text: string): string {
  return encodeURIComponent(text)
    .replace(/[!'()*]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%2F/g, '/');
}

/** Python's int() on a form value: optional sign and spaces around digits. */
function parseInteger(value: string, message: string): number {
  if (!/^\s*[+-]?\d+\s*$/.test(value)) throw new FormInvalidError(message);
  return Number(value.trim());
}

function statusLine(status: number): string {
  return `${status} ${STATUS_TEXT[status] ?? 'Unknown'}`;
}

function sameEnough(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The decoded path's parts as Swift's `split('/', 4)`: ['', version, account, container, rest]. */
function splitPath(path: string): string[] {
  const parts = path.split('/');
  return parts.length <= 5 ? parts : [...parts.slice(0, 4), parts.slice(4).join('/')];
}

interface FormOutcome {
  status?: number;
  message: string;
  attributes: Map<string, string>;
  /** The last PUT's response headers (its Access-Control-* go back to the browser). */
  subHeaders: Record<string, string>;
}

class FormPost {
  constructor(
    private readonly options: FormPostOptions,
    private readonly ctx: Context,
    /** The percent-decoded request path (what Swift signs). */
    private readonly path: string,
  ) {}

  /** The TempURL keys that may sign this form: none unless the path names a container. */
  private async keys(): Promise<string[]> {
    const [root, version = '', account = '', container = ''] = splitPath(this.path);
    if (root !== '' || !this.options.validVersions.includes(version) || account === '' || container === '') return [];
    const scoped = await tempUrlKeys(this.ctx, this.options.deps, account, container);
    return scoped.map((entry) => entry.key);
  }

  async translate(reader: MultipartReader): Promise<FormOutcome> {
    const keys = await this.keys();
    const outcome: FormOutcome = { message: '', attributes: new Map(), subHeaders: {} };
    const { attributes } = outcome;
    let fileCount = 0;
    for await (const part of reader.parts()) {
      const disposition = parseHeaderAttributes(part.headers.get('content-disposition') ?? '');
      const filename = disposition.attributes.get('filename') ?? '';
      if (disposition.value === 'form-data' && filename !== '') {
        fileCount += 1;
        const maxFileCount = parseInteger(attributes.get('max_file_count') || '0', 'max_file_count not an integer');
        if (fileCount > maxFileCount) {
          outcome.status = 400;
          outcome.message = 'max file count exceeded';
          break;
        }
        const fileAttributes = new Map(attributes);
        fileAttributes.set('filename', filename);
        for (const name of ['content-type', 'content-encoding']) {
          const own = part.headers.get(name);
          if (!attributes.has(name) && own !== undefined) {
            fileAttributes.set(name, name === 'content-type' ? own || 'application/octet-stream' : own);
          }
        }
        const result = await this.upload(fileAttributes, part, keys);
        outcome.status = result.status;
        outcome.subHeaders = result.headers;
        if (result.status < 200 || result.status >= 300) break;
      } else {
        const value = await readPartText(part.body, VALUE_BYTES_MAX);
        const name = disposition.attributes.get('name');
        // Swift strips trailing CR, LF and '-' from every value.
        if (name !== undefined) attributes.set(name.toLowerCase(), value.replace(/[\r\n-]+$/, ''));
      }
    }
    return outcome;
  }

  /** Checks the form's signature for this file and streams the file into its object PUT. */
  private async upload(
    attributes: ReadonlyMap<string, string>,
    part: FormPart,
    keys: readonly string[],
  ): Promise<{ status: number; headers: Record<string, string> }> {
    if (keys.length === 0) throw new FormUnauthorizedError('invalid signature');
    const maxFileSize = parseInteger(attributes.get('max_file_size') || '0', 'max_file_size not an integer');
    let objectPath = this.path;
    if (!objectPath.endsWith('/') && objectPath.split('/').length - 1 < 4) objectPath += '/';
    objectPath += attributes.get('filename') || 'filename';
    const headers: Record<string, string> = {
      'transfer-encoding': 'chunked',
      'user-agent': this.ctx.get('user-agent'),
    };
    // The browser's Origin, so the CORS stage answers with the container's Access-Control-* headers.
    const origin = this.ctx.get('origin');
    if (origin !== '') headers.origin = origin;
    const deleteAt = attributes.get('x_delete_at');
    if (deleteAt !== undefined) {
      headers['x-delete-at'] = String(parseInteger(deleteAt, 'x_delete_at not an integer: Unix timestamp required.'));
    }
    const deleteAfter = attributes.get('x_delete_after');
    if (deleteAfter !== undefined) {
      headers['x-delete-after'] = String(
        parseInteger(deleteAfter, 'x_delete_after not an integer: Number of seconds required.'),
      );
    }
    const contentType = attributes.get('content-type');
    if (contentType !== undefined) headers['content-type'] = contentType || 'application/octet-stream';
    const contentEncoding = attributes.get('content-encoding');
    if (contentEncoding !== undefined) headers['content-encoding'] = contentEncoding;
    if (parseInteger(attributes.get('expires') || '0', 'expired not an integer') < Date.now() / 1000) {
      throw new FormUnauthorizedError('form expired');
    }
    this.checkSignature(attributes, keys);

    let exceeded = false;
    async function* capped(): AsyncGenerator<Buffer> {
      let size = 0;
      for await (const chunk of part.body) {
        size += chunk.length;
        if (size > maxFileSize) {
          exceeded = true;
          throw new Error('max_file_size exceeded');
        }
        yield chunk;
      }
    }
    const response = await swiftState(this.ctx).subrequest({
      method: 'PUT',
      path: objectPath
        .split('/')
        .map((segment) => encodeURIComponent(segment))
        .join('/'),
      headers,
      body: Readable.from(capped(), { objectMode: false }),
      preAuthed: true,
      source: 'FP',
    });
    if (response.body instanceof Readable) response.body.resume();
    // The PUT was aborted mid-body: nothing was stored, and Swift answers this one 400 whatever the redirect.
    if (exceeded) throw new FormInvalidError('max_file_size exceeded');
    return { status: response.status, headers: response.headers };
  }

  private checkSignature(attributes: ReadonlyMap<string, string>, keys: readonly string[]): void {
    const hmacBody = [
      this.path,
      attributes.get('redirect') || '',
      attributes.get('max_file_size') || '0',
      attributes.get('max_file_count') || '0',
      attributes.get('expires') || '0',
    ].join('\n');
    const signature = parseSignature(attributes.get('signature') ?? '');
    const digests: readonly string[] = FORMPOST_DIGESTS;
    if (signature === undefined || !digests.includes(signature.digest)) {
      throw new FormUnauthorizedError('invalid signature');
    }
    let valid = false;
    for (const key of keys) {
      const expected = createHmac(signature.digest, key).update(hmacBody).digest('hex');
      if (sameEnough(signature.hex, expected)) valid = true;
    }
    if (!valid) throw new FormUnauthorizedError('invalid signature');
  }
}

function respondWithOutcome(ctx: Context, outcome: FormOutcome): void {
  const status = outcome.status ?? 400;
  const message = outcome.status === undefined ? 'no files to process' : outcome.message;
  for (const [name, value] of Object.entries(outcome.subHeaders)) {
    if (name.startsWith('access-control')) ctx.set(name, value);
  }
  const redirect = outcome.attributes.get('redirect') ?? '';
  if (redirect === '') {
    ctx.status = status;
    ctx.type = 'text/plain';
    ctx.body = message === '' ? statusLine(status) : `${statusLine(status)}\r\nFormPost: ${titleCase(message)}`;
    return;
  }
  const location = `${redirect}${redirect.includes('?') ? '&' : '?'}status=${pythonQuote(String(status))}&message=${pythonQuote(message)}`;
  ctx.status = 303;
  // Header values must be Latin-1 printable: anything else is percent-encoded.
  ctx.set(
    'Location',
    location.replace(/[^\x20-\x7e]+/g, (text) => encodeURIComponent(text)),
  );
  ctx.type = 'text/html; charset=UTF-8';
  const href = location.replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  ctx.body = `<html><body><p><a href="${href}">Click to continue...</a></p></body></html>`;
}

function respondWithError(ctx: Context, path: string, error: unknown): void {
  if (error instanceof FormUnauthorizedError) {
    const account = splitPath(path)[2] ?? '';
    ctx.status = 401;
    ctx.set('Www-Authenticate', `Swift realm="${account === '' ? 'unknown' : encodeURIComponent(account)}"`);
    ctx.type = 'text/html; charset=UTF-8';
    ctx.body = `FormPost: ${titleCase(error.message)}`;
    return;
  }
  let message: string;
  if (error instanceof MimeInvalidError) message = 'invalid starting boundary';
  else if (error instanceof FormInvalidError) message = error.message;
  else throw error;
  ctx.status = 400;
  ctx.type = 'text/plain';
  ctx.body = `FormPost: ${message}`;
}

export function formpostMiddleware(options: FormPostOptions): Middleware {
  return async (ctx: Context, next: Next): Promise<void> => {
    if (ctx.method !== 'POST') {
      await next();
      return;
    }
    const contentType = parseHeaderAttributes(ctx.get('content-type'));
    const boundary = contentType.attributes.get('boundary');
    const path = decodePathStrict(ctx.path);
    if (
      contentType.value.toLowerCase() !== 'multipart/form-data' ||
      boundary === undefined ||
      boundary === '' ||
      path === undefined ||
      !options.validVersions.includes(splitPath(path)[1] ?? '')
    ) {
      await next();
      return;
    }
    ctx.req.headers['user-agent'] = `${ctx.get('user-agent')} FormPost`.trim();
    const reader = new MultipartReader(swiftState(ctx).body, boundary);
    try {
      respondWithOutcome(ctx, await new FormPost(options, ctx, path).translate(reader));
    } catch (error) {
      if (error instanceof MultipartTruncatedError) {
        ctx.status = 499;
        ctx.body = 'Client Disconnect';
        return;
      }
      respondWithError(ctx, path, error);
    }
    // The browser sends its whole form before it reads the answer: read what is left of it.
    try {
      if (!(await reader.drain(DRAIN_BYTES_MAX))) ctx.set('Connection', 'close');
    } catch {
      ctx.set('Connection', 'close');
    }
  };
}

/** The `formpost` stage for the pipeline, built from the app's shared pieces. */
export function formpostStage(context: StageContext): Stage {
  const validVersions = context.config.swift.constraints.valid_api_versions;
  return { name: 'formpost', middleware: formpostMiddleware({ validVersions, deps: context.deps }) };
}
