/**
 * Multipart uploads as Swift's s3api keeps them: in the `<bucket>+segments` container an upload
 * marker `<key>/<uploadId>` (holding the content type and metadata of the final object) and one
 * segment per part, `<key>/<uploadId>/<partNumber>`. Completing writes an SLO-style manifest at
 * `<bucket>/<key>` whose S3 ETag (md5 of the part md5s + `-N`) is object sysmeta; the listing
 * row gets the full size and that ETag through the container-update override headers.
 */
import { createHash, randomBytes } from 'node:crypto';
import { checkMetadata } from '../../common/constraints.js';
import { pythonJson } from '../../common/python-json.js';
import { forEachLimited, ownerElement, readXmlBody } from './bucket.js';
import {
  checkObjectCannedAcl,
  listingDate,
  MAX_PARTS,
  MIN_PART_SIZE,
  objectHeadersFromRequest,
  quoteEtag,
  s3Date,
  SEGMENTS_SUFFIX,
  swiftFailure,
  SYSMETA,
  unquoteEtag,
  xmlResponse,
  type S3Context,
  type S3Response,
} from './context.js';
import { S3Errors } from './errors.js';
import { openCopySource, storeBody, type ManifestSegment } from './object.js';
import { discard } from './swift-client.js';
import { childElements, childText, xmlElement, type XmlElementNode } from './xml.js';
import { checksumOf, isChecksumAlgorithm } from './checksums.js';

const LISTING_PAGE = 10_000;
const LISTING_PAGES_MAX = 20;
const DELETE_CONCURRENCY = 4;
const UPLOAD_ID_RE = /^[A-Za-z0-9_-]{22}$/;

interface ListingRow {
  name?: string;
  bytes?: number;
  hash?: string;
  last_modified?: string;
  content_type?: string;
}

/**
 * A part's `last_modified` in the manifest: its Last-Modified header as the SLO middleware reads
 * it from a HEAD (whole seconds, rounded up), in listing format.
 */
function manifestLastModified(listed: string | undefined): string {
  return `${listingDate(listed).slice(0, 19)}.000000`;
}

function segmentsContainer(bucket: string): string {
  return `${bucket}${SEGMENTS_SUFFIX}`;
}

function checkUploadId(uploadId: string): void {
  if (!UPLOAD_ID_RE.test(uploadId)) throw S3Errors.noSuchUpload(uploadId);
}

/** Lists a container under `prefix`, page by page (bounded). */
async function listAll(ctx: S3Context, container: string, prefix: string, marker = ''): Promise<ListingRow[]> {
  const rows: ListingRow[] = [];
  let next = marker;
  for (let page = 0; page < LISTING_PAGES_MAX; page += 1) {
    const listing = await ctx.swift.json<ListingRow[]>('GET', container, undefined, {
      query: { format: 'json', prefix, limit: String(LISTING_PAGE), marker: next === '' ? undefined : next },
    });
    if (listing.status === 404) return rows;
    const value = listing.value ?? [];
    rows.push(...value);
    const last = value[value.length - 1]?.name;
    if (value.length < LISTING_PAGE || last === undefined) break;
    next = last;
  }
  return rows;
}

/** The upload's marker object, or NoSuchUpload. */
async function uploadMarker(
  ctx: S3Context,
  bucket: string,
  key: string,
  uploadId: string,
): Promise<Record<string, string>> {
  checkUploadId(uploadId);
  const response = await ctx.swift.request('HEAD', segmentsContainer(bucket), `${key}/${uploadId}`);
  discard(response);
  if (response.status === 404) throw S3Errors.noSuchUpload(uploadId);
  if (response.status < 200 || response.status >= 300) throw swiftFailure(response, { bucket, key, uploadId });
  return response.headers;
}

function parsePartNumber(ctx: S3Context): number {
  const text = ctx.query.get('partNumber') ?? '';
  const number = Number(text);
  if (!Number.isInteger(number) || number < 1 || number > MAX_PARTS) {
    throw S3Errors.invalidArgument(
      'partNumber',
      text,
      `Part number must be an integer between 1 and ${MAX_PARTS}, inclusive`,
    );
  }
  return number;
}

export async function createMultipartUpload(ctx: S3Context, bucket: string, key: string): Promise<S3Response> {
  if (Buffer.byteLength(key) > 1024) throw S3Errors.keyTooLong();
  checkObjectCannedAcl(ctx.header('x-amz-acl'));
  const head = await ctx.swift.request('HEAD', bucket, undefined);
  discard(head);
  if (head.status < 200 || head.status >= 300) throw swiftFailure(head, { bucket });
  const create = await ctx.swift.request('PUT', segmentsContainer(bucket), undefined);
  discard(create);
  if (create.status !== 201 && create.status !== 202) throw swiftFailure(create, { bucket });
  const uploadId = randomBytes(16).toString('base64url');
  const headers = objectHeadersFromRequest(ctx);
  if (checkMetadata(headers, 'object') !== undefined) throw S3Errors.metadataTooLarge();
  // The marker's own content type is fixed; the final object's is kept as sysmeta.
  const contentType = headers['content-type'];
  delete headers['content-type'];
  headers['content-type'] = 'application/directory';
  headers[`${SYSMETA}has-content-type`] = contentType === undefined ? 'no' : 'yes';
  if (contentType !== undefined) headers[`${SYSMETA}content-type`] = contentType;
  const algorithm = ctx.header('x-amz-checksum-algorithm')?.toLowerCase();
  if (algorithm !== undefined) {
    if (!isChecksumAlgorithm(algorithm)) throw S3Errors.invalidRequest('Checksum algorithm provided is unsupported.');
    headers[`${SYSMETA}checksum-algorithm`] = algorithm;
  }
  headers['content-length'] = '0';
  const marker = await ctx.swift.request('PUT', segmentsContainer(bucket), `${key}/${uploadId}`, {
    headers,
    body: Buffer.alloc(0),
  });
  discard(marker);
  if (marker.status !== 201) throw swiftFailure(marker, { bucket, key });
  const responseHeaders: Record<string, string> = {};
  if (algorithm !== undefined) responseHeaders['x-amz-checksum-algorithm'] = algorithm.toUpperCase();
  return xmlResponse(
    xmlElement('InitiateMultipartUploadResult', [
      xmlElement('Bucket', bucket),
      xmlElement('Key', key),
      xmlElement('UploadId', uploadId),
    ]),
    200,
    responseHeaders,
  );
}

export async function uploadPart(ctx: S3Context, bucket: string, key: string, uploadId: string): Promise<S3Response> {
  const partNumber = parsePartNumber(ctx);
  await uploadMarker(ctx, bucket, key, uploadId);
  const segment = `${key}/${uploadId}/${partNumber}`;
  if (ctx.header('x-amz-copy-source') !== undefined) return uploadPartCopy(ctx, bucket, segment);
  const stored = await storeBody(ctx, segmentsContainer(bucket), segment, {});
  const headers: Record<string, string> = { etag: quoteEtag(stored.etag) };
  for (const [algorithm, value] of Object.entries(stored.checksums))
    if (value !== undefined) headers[`x-amz-checksum-${algorithm}`] = value;
  return { status: 200, headers };
}

async function uploadPartCopy(ctx: S3Context, bucket: string, segment: string): Promise<S3Response> {
  const rangeText = ctx.header('x-amz-copy-source-range');
  if (rangeText !== undefined && !/^bytes=\d+-\d+$/.test(rangeText)) {
    throw S3Errors.invalidArgument(
      'x-amz-copy-source-range',
      rangeText,
      'The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy',
    );
  }
  const { source } = await openCopySource(ctx, rangeText);
  if (rangeText !== undefined && source.range === undefined && source.size > 0) {
    source.close();
    throw S3Errors.invalidRange();
  }
  const length = source.range === undefined ? source.size : source.range.end - source.range.start + 1;
  const response = await ctx.swift.request('PUT', segmentsContainer(bucket), segment, {
    headers: { 'content-length': String(length) },
    body: source.stream(),
  });
  discard(response);
  if (response.status !== 201) throw swiftFailure(response, { bucket });
  const lastModifiedMs = Date.parse(response.headers['last-modified'] ?? '') || ctx.nowMs;
  return xmlResponse(
    xmlElement('CopyPartResult', [
      xmlElement('LastModified', s3Date(lastModifiedMs)),
      xmlElement('ETag', quoteEtag(unquoteEtag(response.headers.etag ?? ''))),
    ]),
  );
}

interface Part {
  number: number;
  row: ListingRow;
}

async function listParts_(ctx: S3Context, bucket: string, key: string, uploadId: string): Promise<Part[]> {
  const prefix = `${key}/${uploadId}/`;
  const rows = await listAll(ctx, segmentsContainer(bucket), prefix);
  const parts: Part[] = [];
  for (const row of rows) {
    const suffix = (row.name ?? '').slice(prefix.length);
    if (!/^\d{1,5}$/.test(suffix)) continue;
    parts.push({ number: Number(suffix), row });
  }
  parts.sort((a, b) => a.number - b.number);
  return parts;
}

export async function completeMultipartUpload(
  ctx: S3Context,
  bucket: string,
  key: string,
  uploadId: string,
): Promise<S3Response> {
  const marker = await uploadMarker(ctx, bucket, key, uploadId);
  const document = await readXmlBody(ctx, 4 * 1024 * 1024);
  if (document?.name !== 'CompleteMultipartUpload') throw S3Errors.malformedXml();
  const requested = childElements(document, 'Part').map((part) => ({
    number: Number(childText(part, 'PartNumber') ?? ''),
    etag: unquoteEtag(childText(part, 'ETag') ?? ''),
    checksums: part.children.filter((child) => child.name.startsWith('Checksum')),
  }));
  if (requested.length === 0) throw S3Errors.malformedXml();
  if (requested.length > MAX_PARTS) throw S3Errors.invalidArgument('Part', String(requested.length), 'Too many parts');
  const stored = new Map((await listParts_(ctx, bucket, key, uploadId)).map((part) => [part.number, part.row]));
  let previous = 0;
  for (const part of requested) {
    if (!Number.isInteger(part.number) || part.number <= previous) throw S3Errors.invalidPartOrder();
    previous = part.number;
  }
  const segments: ManifestSegment[] = [];
  const partRows: ListingRow[] = [];
  const md5s: Buffer[] = [];
  for (const [index, part] of requested.entries()) {
    const row = stored.get(part.number);
    if (row === undefined || (row.hash ?? '') !== part.etag || !/^[0-9a-f]{32}$/.test(part.etag))
      throw S3Errors.invalidPart();
    const bytes = row.bytes ?? 0;
    if (bytes < MIN_PART_SIZE && index < requested.length - 1) throw S3Errors.entityTooSmall();
    segments.push({ name: `/${segmentsContainer(bucket)}/${key}/${uploadId}/${part.number}`, hash: part.etag, bytes });
    partRows.push(row);
    md5s.push(Buffer.from(part.etag, 'hex'));
  }
  const s3Etag = `${createHash('md5').update(Buffer.concat(md5s)).digest('hex')}-${segments.length}`;
  const totalBytes = segments.reduce((sum, segment) => sum + segment.bytes, 0);
  const sloEtag = createHash('md5')
    .update(segments.map((segment) => segment.hash).join(''))
    .digest('hex');
  // Swift's s3api completes an upload with an SLO manifest PUT, so the stored manifest is the SLO
  // middleware's: each part's name, bytes, hash, content type and Last-Modified, in Python's JSON.
  const manifest = Buffer.from(
    pythonJson(
      segments.map((segment, index) => ({
        name: segment.name,
        bytes: segment.bytes,
        hash: segment.hash,
        content_type: partRows[index]?.content_type ?? 'application/octet-stream',
        last_modified: manifestLastModified(partRows[index]?.last_modified),
      })),
    ),
  );
  const headers: Record<string, string> = {
    'content-length': String(manifest.length),
    'x-static-large-object': 'True',
    [`${SYSMETA}etag`]: s3Etag,
    [`${SYSMETA}upload-id`]: uploadId,
    'x-object-sysmeta-slo-etag': sloEtag,
    'x-object-sysmeta-slo-size': String(totalBytes),
    // The listing row shows the whole object, as an SLO's does, with the S3 ETag for s3api listings.
    'x-object-sysmeta-container-update-override-size': String(totalBytes),
    'x-object-sysmeta-container-update-override-etag': `${sloEtag}; s3_etag=${s3Etag}; slo_etag=${sloEtag}`,
    'x-backend-container-update-override-size': String(totalBytes),
    'x-backend-container-update-override-etag': `${sloEtag}; s3_etag=${s3Etag}; slo_etag=${sloEtag}`,
  };
  // A manifest read with multipart-manifest=get comes back as JSON: the object's own type is kept as sysmeta too.
  const markerType = marker[`${SYSMETA}content-type`];
  const contentType =
    marker[`${SYSMETA}has-content-type`] === 'yes' && markerType !== undefined
      ? markerType
      : 'application/octet-stream';
  headers['content-type'] = contentType;
  headers[`${SYSMETA}content-type`] = contentType;
  for (const [name, value] of Object.entries(marker)) {
    if (
      name.startsWith('x-object-meta-') ||
      ['content-disposition', 'content-encoding', 'content-language', 'cache-control', 'expires'].includes(name)
    ) {
      headers[name] = value;
    }
  }
  // A composite checksum (checksum of the part checksums, "-N"), when every part gave one.
  const algorithm = marker[`${SYSMETA}checksum-algorithm`];
  const responseChecksum: (XmlElementNode | undefined)[] = [];
  if (algorithm !== undefined && isChecksumAlgorithm(algorithm)) {
    const element = `Checksum${algorithm.toUpperCase()}`;
    const values = requested.map((part) => part.checksums.find((child) => child.name === element)?.text);
    if (values.every((value): value is string => value !== undefined)) {
      const composite = `${checksumOf(algorithm, Buffer.concat(values.map((value) => Buffer.from(value, 'base64'))))}-${values.length}`;
      headers[`${SYSMETA}checksum-${algorithm}`] = composite;
      responseChecksum.push(xmlElement(element, composite));
    }
  }
  const put = await ctx.swift.request('PUT', bucket, key, { headers, body: manifest });
  discard(put);
  if (put.status !== 201) throw swiftFailure(put, { bucket, key });
  // The upload is done: drop its marker and any parts the client uploaded but did not use.
  discard(await ctx.swift.request('DELETE', segmentsContainer(bucket), `${key}/${uploadId}`));
  const used = new Set(requested.map((part) => part.number));
  const unused = [...stored.keys()].filter((number) => !used.has(number));
  await forEachLimited(unused, DELETE_CONCURRENCY, async (number) => {
    discard(await ctx.swift.request('DELETE', segmentsContainer(bucket), `${key}/${uploadId}/${number}`));
  });
  return xmlResponse(
    xmlElement('CompleteMultipartUploadResult', [
      xmlElement('Location', `/${bucket}/${key}`),
      xmlElement('Bucket', bucket),
      xmlElement('Key', key),
      xmlElement('ETag', quoteEtag(s3Etag)),
      ...responseChecksum,
    ]),
  );
}

export async function abortMultipartUpload(
  ctx: S3Context,
  bucket: string,
  key: string,
  uploadId: string,
): Promise<S3Response> {
  await uploadMarker(ctx, bucket, key, uploadId);
  const parts = await listParts_(ctx, bucket, key, uploadId);
  await forEachLimited(parts, DELETE_CONCURRENCY, async (part) => {
    discard(await ctx.swift.request('DELETE', segmentsContainer(bucket), `${key}/${uploadId}/${part.number}`));
  });
  discard(await ctx.swift.request('DELETE', segmentsContainer(bucket), `${key}/${uploadId}`));
  return { status: 204 };
}

function initiatorElement(ctx: S3Context): XmlElementNode {
  return xmlElement('Initiator', [xmlElement('ID', ctx.owner.id), xmlElement('DisplayName', ctx.owner.displayName)]);
}

function boundedInt(ctx: S3Context, name: string, fallback: number, max: number): number {
  const text = ctx.query.get(name);
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0)
    throw S3Errors.invalidArgument(name, text, `Argument ${name} must be an integer between 0 and 2147483647`);
  return Math.min(value, max);
}

export async function listParts(ctx: S3Context, bucket: string, key: string, uploadId: string): Promise<S3Response> {
  await uploadMarker(ctx, bucket, key, uploadId);
  const maxParts = boundedInt(ctx, 'max-parts', 1000, 1000);
  const partNumberMarker = boundedInt(ctx, 'part-number-marker', 0, MAX_PARTS);
  const parts = (await listParts_(ctx, bucket, key, uploadId)).filter((part) => part.number > partNumberMarker);
  const shown = parts.slice(0, maxParts);
  const truncated = parts.length > shown.length;
  const last = shown[shown.length - 1];
  return xmlResponse(
    xmlElement('ListPartsResult', [
      xmlElement('Bucket', bucket),
      xmlElement('Key', key),
      xmlElement('UploadId', uploadId),
      initiatorElement(ctx),
      ownerElement(ctx),
      xmlElement('StorageClass', 'STANDARD'),
      xmlElement('PartNumberMarker', partNumberMarker),
      xmlElement('NextPartNumberMarker', last?.number ?? partNumberMarker),
      xmlElement('MaxParts', maxParts),
      xmlElement('IsTruncated', truncated ? 'true' : 'false'),
      ...shown.map((part) =>
        xmlElement('Part', [
          xmlElement('PartNumber', part.number),
          xmlElement('LastModified', listingDate(part.row.last_modified)),
          xmlElement('ETag', quoteEtag(part.row.hash ?? '')),
          xmlElement('Size', part.row.bytes ?? 0),
        ]),
      ),
    ]),
  );
}

export async function listMultipartUploads(ctx: S3Context, bucket: string): Promise<S3Response> {
  const head = await ctx.swift.request('HEAD', bucket, undefined);
  discard(head);
  if (head.status < 200 || head.status >= 300) throw swiftFailure(head, { bucket });
  const maxUploads = boundedInt(ctx, 'max-uploads', 1000, 1000);
  const prefix = ctx.query.get('prefix') ?? '';
  const delimiter = ctx.query.get('delimiter') ?? '';
  const keyMarker = ctx.query.get('key-marker') ?? '';
  const uploadIdMarker = ctx.query.get('upload-id-marker') ?? '';
  const rows = await listAll(ctx, segmentsContainer(bucket), prefix);
  const uploads: { key: string; uploadId: string; initiated: string }[] = [];
  const commonPrefixes = new Set<string>();
  for (const row of rows) {
    const name = row.name ?? '';
    const slash = name.lastIndexOf('/');
    const uploadId = name.slice(slash + 1);
    if (slash <= 0 || !UPLOAD_ID_RE.test(uploadId)) continue;
    const key = name.slice(0, slash);
    if (
      keyMarker !== '' &&
      (key < keyMarker || (key === keyMarker && (uploadIdMarker === '' || uploadId <= uploadIdMarker)))
    )
      continue;
    if (delimiter !== '') {
      const at = key.indexOf(delimiter, prefix.length);
      if (at !== -1) {
        commonPrefixes.add(key.slice(0, at + delimiter.length));
        continue;
      }
    }
    uploads.push({ key, uploadId, initiated: listingDate(row.last_modified) });
  }
  const shown = uploads.slice(0, maxUploads);
  const truncated = uploads.length > shown.length;
  const last = shown[shown.length - 1];
  return xmlResponse(
    xmlElement('ListMultipartUploadsResult', [
      xmlElement('Bucket', bucket),
      xmlElement('KeyMarker', keyMarker),
      xmlElement('UploadIdMarker', uploadIdMarker),
      xmlElement('NextKeyMarker', last?.key ?? ''),
      xmlElement('NextUploadIdMarker', last?.uploadId ?? ''),
      delimiter === '' ? undefined : xmlElement('Delimiter', delimiter),
      xmlElement('Prefix', prefix),
      xmlElement('MaxUploads', maxUploads),
      xmlElement('IsTruncated', truncated ? 'true' : 'false'),
      ...shown.map((upload) =>
        xmlElement('Upload', [
          xmlElement('Key', upload.key),
          xmlElement('UploadId', upload.uploadId),
          initiatorElement(ctx),
          ownerElement(ctx),
          xmlElement('StorageClass', 'STANDARD'),
          xmlElement('Initiated', upload.initiated),
        ]),
      ),
      ...[...commonPrefixes].map((value) => xmlElement('CommonPrefixes', [xmlElement('Prefix', value)])),
    ]),
  );
}
