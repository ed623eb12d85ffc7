/**
 * A streaming reader of `multipart/form-data` bodies, read the way Swift's
 * iter_multipart_mime_documents and parse_mime_headers read them (FormPOST uses it): the body
 * must open with `--<boundary>` (blank lines before it are skipped, anything else is
 * MimeInvalidError); each part is its header block and then its body, handed out chunk by chunk
 * as it arrives, so a file part can be streamed on without ever being held whole. A part must be
 * read to its end (or skipped) before the next one is asked for. Memory stays within one source
 * chunk plus a delimiter's length; a header block is bounded by `headerBytesMax`.
 *
 * The source is pulled with next() only, never return(): abandoning a form half-read leaves the
 * client's request open, so the caller can still drain it and answer.
 */

export class MimeInvalidError extends Error {
  readonly code = 'MimeInvalid';
}

/** The body ended inside a part (a client that went away, or a form cut short). */
export class MultipartTruncatedError extends Error {
  readonly code = 'MultipartTruncated';
}

export interface FormPart {
  /** Lower-case header names, values trimmed. */
  headers: ReadonlyMap<string, string>;
  /** The part's body; ends at the part's closing delimiter. */
  body: AsyncIterable<Buffer>;
}

export interface HeaderValue {
  value: string;
  attributes: ReadonlyMap<string, string>;
}

const ATTRIBUTES_MAX = 64;
const BLANK_LINES_MAX = 64;
const CRLF = Buffer.from('\r\n');
const HEADER_END = Buffer.from('\r\n\r\n');

/**
 * Swift's parse_content_disposition (also used for Content-Type): the value before the first `;`
 * and its `name=value` / `name="value"` attributes (quotes stripped, nothing unescaped).
 */
export function parseHeaderAttributes(header: string): HeaderValue {
  const attributes = new Map<string, string>();
  const semicolon = header.indexOf(';');
  if (semicolon < 0) return { value: header.trim(), attributes };
  let rest = header.slice(semicolon + 1).trim();
  const pattern = /^(\w+)=(".*?"|[^";]+)(; ?|$)/;
  for (let count = 0; count < ATTRIBUTES_MAX; count += 1) {
    const match = pattern.exec(rest);
    if (match === null) break;
    rest = rest.slice(match[0].length);
    attributes.set(match[1] ?? '', (match[2] ?? '').replace(/^"+|"+$/g, ''));
  }
  return { value: header.slice(0, semicolon).trim(), attributes };
}

export interface MultipartReaderOptions {
  /** Largest header block of one part (default 16 KiB): past it the form is MimeInvalidError. */
  headerBytesMax?: number;
}

export class MultipartReader {
  private readonly source: AsyncIterator<Buffer | string>;
  private readonly boundary: string;
  /** `\r\n--<boundary>`: what ends every part. */
  private readonly delimiter: Buffer;
  private readonly headerBytesMax: number;
  private buffer: Buffer = Buffer.alloc(0);
  private sourceDone = false;
  /** The closing `--<boundary>--` was read. */
  private finished = false;
  /** A part's body is being read. */
  private partOpen = false;
  /** Bytes pulled from the source, for the caller's accounting. */
  bytesRead = 0;

  constructor(source: AsyncIterable<Buffer | string>, boundary: string, options: MultipartReaderOptions = {}) {
    this.source = source[Symbol.asyncIterator]();
    this.boundary = boundary;
    this.delimiter = Buffer.from(`\r\n--${boundary}`);
    this.headerBytesMax = options.headerBytesMax ?? 16 * 1024;
  }

  /** Appends the next source chunk to the buffer; false once the source is exhausted. */
  private async fill(): Promise<boolean> {
    if (this.sourceDone) return false;
    let next: IteratorResult<Buffer | string>;
    try {
      next = await this.source.next();
    } catch (error) {
      throw new MultipartTruncatedError('the client went away', { cause: error });
    }
    if (next.done === true) {
      this.sourceDone = true;
      return false;
    }
    const chunk = typeof next.value === 'string' ? Buffer.from(next.value) : next.value;
    this.bytesRead += chunk.length;
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    return true;
  }

  /** The opening boundary line, after any blank lines (Swift reads lines of at most boundary + 2 bytes). */
  private async readStart(): Promise<void> {
    const expected = `--${this.boundary}`;
    const lineMax = expected.length + 2;
    for (let blank = 0; blank <= BLANK_LINES_MAX; blank += 1) {
      let end = this.buffer.indexOf(CRLF);
      while (end < 0 && this.buffer.length < lineMax && (await this.fill())) end = this.buffer.indexOf(CRLF);
      if (end < 0 || end + 2 > lineMax) throw new MimeInvalidError('invalid starting boundary');
      const line = this.buffer.subarray(0, end).toString('latin1');
      this.buffer = this.buffer.subarray(end + 2);
      if (line === '') continue;
      if (line.trim() !== expected) throw new MimeInvalidError('invalid starting boundary');
      return;
    }
    throw new MimeInvalidError('invalid starting boundary');
  }

  private async readHeaders(): Promise<Map<string, string>> {
    const headers = new Map<string, string>();
    while (this.buffer.length < 2 && (await this.fill()));
    if (this.buffer.subarray(0, 2).equals(CRLF)) {
      this.buffer = this.buffer.subarray(2);
      return headers;
    }
    let end = this.buffer.indexOf(HEADER_END);
    while (end < 0) {
      if (this.buffer.length > this.headerBytesMax) throw new MimeInvalidError('part headers too long');
      if (!(await this.fill())) throw new MultipartTruncatedError('the form ended inside part headers');
      end = this.buffer.indexOf(HEADER_END);
    }
    if (end > this.headerBytesMax) throw new MimeInvalidError('part headers too long');
    const block = this.buffer.subarray(0, end).toString('utf8');
    this.buffer = this.buffer.subarray(end + HEADER_END.length);
    for (const line of block.split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    return headers;
  }

  /** The next piece of the open part's body, or undefined at its end (the delimiter is consumed). */
  private async readPartChunk(): Promise<Buffer | undefined> {
    if (!this.partOpen) return undefined;
    for (;;) {
      const at = this.buffer.indexOf(this.delimiter);
      if (at > 0) {
        const chunk = this.buffer.subarray(0, at);
        this.buffer = this.buffer.subarray(at);
        return chunk;
      }
      if (at === 0) {
        const after = this.delimiter.length + 2;
        while (this.buffer.length < after) {
          if (!(await this.fill())) throw new MultipartTruncatedError('the form ended after a boundary');
        }
        // `--` closes the form; otherwise Swift skips two bytes (the CRLF) and a part follows.
        this.finished = this.buffer.subarray(this.delimiter.length, after).toString('latin1') === '--';
        this.buffer = this.buffer.subarray(after);
        this.partOpen = false;
        return undefined;
      }
      // Keep a tail that could be the start of the delimiter; hand out the rest.
      const safe = this.buffer.length - (this.delimiter.length - 1);
      if (safe > 0) {
        const chunk = this.buffer.subarray(0, safe);
        this.buffer = this.buffer.subarray(safe);
        return chunk;
      }
      if (!(await this.fill())) throw new MultipartTruncatedError('the form ended inside a part');
    }
  }

  /** Reads and drops what is left of the open part. */
  private async skipPart(): Promise<void> {
    while ((await this.readPartChunk()) !== undefined);
  }

  /** The parts in order; each must be read to its end, or it is skipped when the next is asked for. */
  async *parts(): AsyncGenerator<FormPart> {
    await this.readStart();
    while (!this.finished) {
      const headers = await this.readHeaders();
      this.partOpen = true;
      const body: AsyncIterable<Buffer> = {
        [Symbol.asyncIterator]: () => ({
          next: async (): Promise<IteratorResult<Buffer>> => {
            const chunk = await this.readPartChunk();
            return chunk === undefined ? { done: true, value: undefined } : { done: false, value: chunk };
          },
        }),
      };
      yield { headers, body };
      await this.skipPart();
    }
  }

  /**
   * Reads and drops the rest of the source, up to `bytesMax`; true when it ended within the bound.
   * A client sends its whole body before it reads the answer, so an early answer must drain it.
   */
  async drain(bytesMax: number): Promise<boolean> {
    this.buffer = Buffer.alloc(0);
    let drained = 0;
    while (drained <= bytesMax) {
      const before = this.bytesRead;
      if (!(await this.fill())) return true;
      drained += this.bytesRead - before;
      this.buffer = Buffer.alloc(0);
    }
    return false;
  }
}

/** Reads a part's body as text, keeping at most `bytesMax` bytes and dropping the rest (Swift's MAX_VALUE_LENGTH). */
export async function readPartText(body: AsyncIterable<Buffer>, bytesMax: number): Promise<string> {
  const kept: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    if (size < bytesMax) {
      const take = chunk.subarray(0, bytesMax - size);
      kept.push(take);
      size += take.length;
    }
  }
  return Buffer.concat(kept).toString('utf8');
}
