/**
 * Content-Type guessing for object PUTs that carry none (or carry `X-Detect-Content-Type: true`),
 * as Swift does with Python's `mimetypes.guess_type` on the object name: the extension decides,
 * anything unknown is `application/octet-stream`. A small table of the common types is enough;
 * clients that care send their own Content-Type.
 */

const TYPES: Readonly<Record<string, string>> = Object.freeze({
  txt: 'text/plain',
  text: 'text/plain',
  log: 'text/plain',
  conf: 'text/plain',
  md: 'text/markdown',
  csv: 'text/csv',
  html: 'text/html',
  htm: 'text/html',
  css: 'text/css',
  js: 'text/javascript',
  mjs: 'text/javascript',
  xml: 'application/xml',
  json: 'application/json',
  pdf: 'application/pdf',
  zip: 'application/zip',
  gz: 'application/gzip',
  tgz: 'application/gzip',
  tar: 'application/x-tar',
  bz2: 'application/x-bzip2',
  xz: 'application/x-xz',
  iso: 'application/x-iso9660-image',
  img: 'application/octet-stream',
  qcow2: 'application/octet-stream',
  bin: 'application/octet-stream',
  sh: 'application/x-sh',
  py: 'text/x-python',
  c: 'text/x-c',
  h: 'text/x-c',
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  svg: 'image/svg+xml',
  webp: 'image/webp',
  ico: 'image/vnd.microsoft.icon',
  bmp: 'image/bmp',
  tif: 'image/tiff',
  tiff: 'image/tiff',
  mp3: 'audio/mpeg',
  wav: 'audio/x-wav',
  ogg: 'audio/ogg',
  mp4: 'video/mp4',
  mpeg: 'video/mpeg',
  webm: 'video/webm',
  mov: 'video/quicktime',
  avi: 'video/x-msvideo',
  wasm: 'application/wasm',
  doc: 'application/msword',
  xls: 'application/vnd.ms-excel',
  ppt: 'application/vnd.ms-powerpoint',
  docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  pptx: 'application/vnd.openxmlformats-officedocument.presentationml.presentation',
  rtf: 'application/rtf',
  yaml: 'application/yaml',
  yml: 'application/yaml',
});

export const DEFAULT_CONTENT_TYPE = 'application/octet-stream';

/** The Content-Type Swift would give an object of this name. */
export function guessContentType(objectName: string): string {
  const base = objectName.slice(objectName.lastIndexOf('/') + 1);
  const dot = base.lastIndexOf('.');
  if (dot <= 0 || dot === base.length - 1) return DEFAULT_CONTENT_TYPE;
  return TYPES[base.slice(dot + 1).toLowerCase()] ?? DEFAULT_CONTENT_TYPE;
}
