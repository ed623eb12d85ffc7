/**
 * The contract between the storage node's router (app.ts) and its three servers (object,
 * container, account). The router parses and validates `/<device>/<partition>/<account>
 * [/<container>[/<object>]]`, checks the device (507 when missing or unmounted), and hands the
 * request to the server that the path depth names, unless `X-Backend-Server-Type` names another:
 * container row updates from object servers are object-depth paths with
 * `X-Backend-Server-Type: container`, and account row updates from container servers are
 * container-depth paths with `X-Backend-Server-Type: account`.
 */
import type { Context } from 'koa';

/** The header that routes an update to the container or account server at a deeper path. */
export const SERVER_TYPE_HEADER = 'x-backend-server-type';

export type ServerType = 'object' | 'container' | 'account';

export interface RequestTarget {
  /** Device folder name (validated: no `/`, not `.` or `..`). */
  device: string;
  /** Absolute path of the device folder: `<devices>/<device>`. */
  devicePath: string;
  partition: number;
  account: string;
  container?: string;
  object?: string;
}

export interface StorageServer {
  handle(ctx: Context, target: RequestTarget): Promise<void>;
  /** Releases open databases and files; called on shutdown. */
  close(): Promise<void>;
}
