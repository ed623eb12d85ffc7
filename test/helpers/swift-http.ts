/**
 * One Swift API request from a test, as a client would make it: the token of an `AuthResult`
 * (test/helpers/cluster.ts), a path under its storage URL (or a whole URL), a bounded wait, and
 * the whole body read into a Buffer (tests send and read small bodies).
 */
import { createHash } from 'node:crypto';
import type { AuthResult } from './cluster.js';

export interface Reply {
  status: number;
  headers: Headers;
  body: Buffer;
}

export const md5 = (data: string | Buffer): string => createHash('md5').update(data).digest('hex');

export async function swiftRequest(
  auth: AuthResult,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string | Buffer,
): Promise<Reply> {
  const url = path.startsWith('http') ? path : `${auth.storageUrl}${path}`;
  const response = await fetch(url, {
    method,
    headers: { 'X-Auth-Token': auth.token, ...headers },
    body,
    signal: AbortSignal.timeout(20_000),
  });
  return { status: response.status, headers: response.headers, body: Buffer.from(await response.arrayBuffer()) };
}
