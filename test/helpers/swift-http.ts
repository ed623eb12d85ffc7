/**
 * One Swift API request from a test, as a client would make it: the token of an `AuthResult`
 * (test/helpers/cluster.ts), a path under its storage URL (or a whole URL), a bounded wait, and
 * the whole body read into a Buffer (tests send and read small bodies); `swiftCaller` makes a
 * `call(method, path, headers, body)` of one user whose replies are read as text.
 */
import { createHash } from 'node:crypto';
import type { AuthResult } from './cluster.js';

export interface Reply {
  status: number;
  headers: Headers;
  body: Buffer;
}

export const md5 = (data: string | Buffer): string => createHash('md5').update(data).digest('hex');

export interface CallOptions {
  /** Send no token: the caller adds its own headers (anonymous readers, CORS preflights). */
  anonymous?: boolean;
  /** `manual` to see a redirect (static web, symlinks) instead of following it. */
  redirect?: 'follow' | 'manual';
  timeoutMs?: number;
}

function send(
  auth: AuthResult,
  method: string,
  path: string,
  headers: Record<string, string>,
  body: string | Buffer | undefined,
  options: CallOptions,
): Promise<Response> {
  const url = path.startsWith('http') ? path : `${auth.storageUrl}${path}`;
  return fetch(url, {
    method,
    headers: options.anonymous === true ? headers : { 'X-Auth-Token': auth.token, ...headers },
    body,
    redirect: options.redirect ?? 'follow',
    signal: AbortSignal.timeout(options.timeoutMs ?? 20_000),
  });
}

export async function swiftRequest(
  auth: AuthResult,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string | Buffer,
): Promise<Reply> {
  const response = await send(auth, method, path, headers, body, {});
  return { status: response.status, headers: response.headers, body: Buffer.from(await response.arrayBuffer()) };
}

/** A reply whose body was read as text. */
export interface TextReply {
  status: number;
  headers: Headers;
  body: string;
}

export type SwiftCall = (
  method: string,
  path: string,
  headers?: Record<string, string>,
  body?: string,
) => Promise<TextReply>;

/** `call(method, path, headers, body)` as one user (or no one: `anonymous`), replies read as text. */
export function swiftCaller(auth: AuthResult, options: CallOptions = {}): SwiftCall {
  return async (method, path, headers = {}, body) => {
    const response = await send(auth, method, path, headers, body, options);
    return { status: response.status, headers: response.headers, body: await response.text() };
  };
}
