/**
 * Decodes `Content-Encoding: aws-chunked` bodies as a stream: the chunk framing
 * (`<hex-size>[;chunk-signature=<sig>]\r\n<data>\r\n` ... a zero-size chunk, then optional
 * trailer lines and a blank line), in the three forms the AWS SDKs send:
 *   - STREAMING-AWS4-HMAC-SHA256-PAYLOAD: every chunk signed, chained from the seed signature;
 *   - STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER: the same plus a signed trailer;
 *   - STREAMING-UNSIGNED-PAYLOAD-TRAILER: no chunk signatures, trailers (x-amz-checksum-*).
 * Only the current header line is buffered (bounded), never a chunk's data. The most recent
 * data piece is held back until the body is complete and every signature checked, so a consumer
 * that commits on its last byte cannot commit a body whose final signature is wrong.
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { S3Error, S3Errors } from './errors.js';
import { chunkStringToSign, EMPTY_SHA256, sha256Hex, sign, signaturesEqual, trailerStringToSign } from './sigv4.js';

export interface ChunkSigning {
  key: Buffer;
  amzDate: string;
  scope: string;
  seedSignature: string;
}

export interface AwsChunkedOptions {
  /** Present for the signed forms: each chunk's signature is checked. */
  signing?: ChunkSigning;
  /** Whether a signed trailer is expected (`...-PAYLOAD-TRAILER`). */
  signedTrailer?: boolean;
  /** x-amz-decoded-content-length, checked at the end when given. */
  decodedLength?: number;
}

const HEADER_LINE_MAX = 4096;
const TRAILER_BYTES_MAX = 16_384;

type State = 'header' | 'data' | 'data-crlf' | 'trailer' | 'done';

const malformed = (detail: string): S3Error =>
  new S3Error('IncompleteBody', 400, `The request body is not valid aws-chunked encoding: ${detail}`);

export class AwsChunkedDecoder extends Transform {
  private state: State = 'header';
  private line: Buffer[] = [];
  private lineLength = 0;
  private remaining = 0;
  private chunkSignature = '';
  private chunkHash?: Hash;
  private previousSignature: string;
  private held?: Buffer;
  private trailerBytes = 0;
  private readonly trailerLines: string[] = [];
  /** Trailing headers (lower-case names), e.g. `x-amz-checksum-crc32`. */
  readonly trailers = new Map<string, string>();
  decodedLength = 0;

  constructor(private readonly options: AwsChunkedOptions = {}) {
    super();
    this.previousSignature = options.signing?.seedSignature ?? '';
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.consume(chunk);
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      if (this.state === 'trailer' && this.lineLength === 0) this.finishTrailer(); // tolerate a missing final CRLF
      if (this.state !== 'done') throw malformed('the body ended inside a chunk');
      const expected = this.options.decodedLength;
      if (expected !== undefined && expected !== this.decodedLength) throw S3Errors.incompleteBody();
    } catch (error) {
      callback(error as Error);
      return;
    }
    if (this.held !== undefined) this.push(this.held);
    this.held = undefined;
    callback();
  }

  private emit_(data: Buffer): void {
    const previous = this.held;
    this.held = data;
    if (previous !== undefined) this.push(previous);
  }

  /** Each pass advances `offset` or changes state, so the loop is bounded by the input. */
  private consume(input: Buffer): void {
    let offset = 0;
    while (offset < input.length) {
      switch (this.state) {
        case 'header':
        case 'trailer': {
          const newline = input.indexOf(0x0a, offset);
          const end = newline === -1 ? input.length : newline + 1;
          this.line.push(input.subarray(offset, end));
          this.lineLength += end - offset;
          offset = end;
          if (this.lineLength > HEADER_LINE_MAX) throw malformed('a chunk header line is too long');
          if (newline !== -1) {
            const text = Buffer.concat(this.line)
              .toString('latin1')
              .replace(/\r?\n$/, '');
            this.line = [];
            this.lineLength = 0;
            if (this.state === 'header') this.startChunk(text);
            else this.trailerLine(text);
          }
          break;
        }
        case 'data': {
          const take = Math.min(this.remaining, input.length - offset);
          const piece = input.subarray(offset, offset + take);
          this.chunkHash?.update(piece);
          this.remaining -= take;
          this.decodedLength += take;
          offset += take;
          if (piece.length > 0) this.emit_(piece);
          if (this.remaining === 0) {
            this.endChunk();
            this.state = 'data-crlf';
          }
          break;
        }
        case 'data-crlf': {
          const byte = input[offset];
          offset += 1;
          if (byte === 0x0a) this.state = 'header';
          else if (byte !== 0x0d) throw malformed('a chunk is longer than its declared size');
          break;
        }
        case 'done': {
          const rest = input.subarray(offset).toString('latin1');
          if (rest.trim() !== '') throw malformed('data after the final chunk');
          offset = input.length;
          break;
        }
      }
    }
  }

  private startChunk(text: string): void {
    if (text === '') return; // tolerate a stray blank line between chunks
    const [sizeText = '', ...extensions] = text.split(';');
    if (!/^[0-9a-fA-F]{1,16}$/.test(sizeText.trim())) throw malformed(`bad chunk size ${JSON.stringify(sizeText)}`);
    const size = Number.parseInt(sizeText.trim(), 16);
    if (!Number.isSafeInteger(size)) throw malformed('chunk size too large');
    this.chunkSignature = '';
    for (const extension of extensions) {
      const eq = extension.indexOf('=');
      if (eq !== -1 && extension.slice(0, eq).trim() === 'chunk-signature')
        this.chunkSignature = extension.slice(eq + 1).trim();
    }
    if (this.options.signing !== undefined && this.chunkSignature === '') throw S3Errors.signatureDoesNotMatch();
    if (size === 0) {
      if (this.options.signing !== undefined) this.checkChunkSignature(EMPTY_SHA256);
      this.state = 'trailer';
      return;
    }
    this.remaining = size;
    this.chunkHash = this.options.signing !== undefined ? createHash('sha256') : undefined;
    this.state = 'data';
  }

  private endChunk(): void {
    if (this.chunkHash !== undefined) this.checkChunkSignature(this.chunkHash.digest('hex'));
    this.chunkHash = undefined;
  }

  private checkChunkSignature(dataHashHex: string): void {
    const signing = this.options.signing;
    if (signing === undefined) return;
    const text = chunkStringToSign(signing.amzDate, signing.scope, this.previousSignature, dataHashHex);
    const expected = sign(signing.key, text);
    if (!signaturesEqual(expected, this.chunkSignature.toLowerCase())) throw S3Errors.signatureDoesNotMatch();
    this.previousSignature = expected;
  }

  private trailerLine(text: string): void {
    if (text === '') {
      this.finishTrailer();
      return;
    }
    this.trailerBytes += text.length;
    if (this.trailerBytes > TRAILER_BYTES_MAX) throw malformed('trailers too large');
    const colon = text.indexOf(':');
    if (colon === -1) throw malformed('bad trailer line');
    const name = text.slice(0, colon).trim().toLowerCase();
    const value = text.slice(colon + 1).trim();
    this.trailers.set(name, value);
    if (name !== 'x-amz-trailer-signature') this.trailerLines.push(`${name}:${value}\n`);
  }

  private finishTrailer(): void {
    const signing = this.options.signing;
    if (signing !== undefined && this.options.signedTrailer === true) {
      const provided = this.trailers.get('x-amz-trailer-signature') ?? '';
      const text = trailerStringToSign(
        signing.amzDate,
        signing.scope,
        this.previousSignature,
        sha256Hex(this.trailerLines.join('')),
      );
      if (!signaturesEqual(sign(signing.key, text), provided.toLowerCase())) throw S3Errors.signatureDoesNotMatch();
    }
    this.state = 'done';
  }
}
