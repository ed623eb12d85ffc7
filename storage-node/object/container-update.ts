/**
 * Container updates: after an object PUT, POST or DELETE, the object
 * server tells each container server named by X-Container-Host / -Partition / -Device (comma-
 * separated lists, as Swift) with a PUT or DELETE of `/<dev>/<part>/<a>/<c>/<o>` and
 * `X-Backend-Server-Type: container`. Each call has a connect and a response timeout. The client's
 * answer waits at most `containerUpdateTimeoutMs`; calls still running finish in the background.
 * Whatever fails becomes one async_pending file for the updater.
 *
 * Connections are kept alive, one pool per container server (an Agent keys its pools by host and
 * port): a new TCP connection per update cost more than the update itself. A kept-alive socket the
 * server closed just as it was reused fails with ECONNRESET before any byte was answered; that
 * call is sent again, once, on a new connection (the update is idempotent: newest timestamp wins).
 */
import { Agent, request, type ClientRequest } from 'node:http';
import type { Logger } from '../../common/log.js';
import { writeAsyncPending, type AsyncPendingUpdate } from '../async-pending.js';

export interface ContainerTarget {
  host: string;
  partition: string;
  device: string;
}

export interface ContainerUpdateOptions {
  connTimeoutMs: number;
  nodeTimeoutMs: number;
  containerUpdateTimeoutMs: number;
  fsync: boolean;
  logger: Logger;
}

export interface ContainerUpdate {
  op: 'PUT' | 'DELETE';
  devicePath: string;
  hash: string;
  timestamp: string;
  account: string;
  container: string;
  object: string;
  headers: Record<string, string>;
}

/** Sysmeta a PUT stored to override its container row (Swift's container-update-override namespace). */
const STORED_OVERRIDE_PREFIX = 'x-object-sysmeta-container-update-override-';

/**
 * The container-row fields an object's PUT overrode (an SLO's or multipart upload's whole size and
 * its `<md5>; slo_etag=...` ETag), read back from the object's stored metadata as update headers
 * (`X-Size`, `X-Etag`, ...). A POST's container update sends them again, as Swift's object server
 * does: without them the row would fall back to the manifest's own size and MD5.
 */
export function storedContainerUpdateOverrides(metadata: Readonly<Record<string, string>>): Record<string, string> {
  const overrides: Record<string, string> = {};
  for (const [key, value] of Object.entries(metadata)) {
    const lower = key.toLowerCase();
    if (!lower.startsWith(STORED_OVERRIDE_PREFIX)) continue;
    const field = lower
      .slice(STORED_OVERRIDE_PREFIX.length)
      .split('-')
      .map((word) => word.charAt(0).toUpperCase() + word.slice(1))
      .join('-');
    overrides[`X-${field}`] = value;
  }
  return overrides;
}

function splitList(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

/** The container servers a request names; [] when it names none or the lists disagree in length. */
export function containerTargets(headers: Record<string, string | string[] | undefined>): ContainerTarget[] {
  const one = (name: string): string | undefined => {
    const value = headers[name];
    return Array.isArray(value) ? value.join(',') : value;
  };
  const hosts = splitList(one('x-container-host'));
  const partitions = splitList(one('x-container-partition'));
  const devices = splitList(one('x-container-device'));
  if (hosts.length === 0 || hosts.length !== devices.length) return [];
  return hosts.map((host, index) => ({
    host,
    partition: partitions[index] ?? partitions[0] ?? '',
    device: devices[index] ?? '',
  }));
}

function splitHostPort(host: string): { hostname: string; port: number } {
  const bracketed = /^\[([^\]]+)\]:(\d+)$/.exec(host);
  if (bracketed !== null) return { hostname: bracketed[1] ?? '', port: Number(bracketed[2]) };
  const colon = host.lastIndexOf(':');
  return { hostname: host.slice(0, colon), port: Number(host.slice(colon + 1)) };
}

function encodePathPart(value: string): string {
  return encodeURIComponent(value).replace(/%2F/gi, '/');
}

/** Sockets per container server: enough for every PUT of a busy node in flight at once. */
const SOCKETS_PER_SERVER_MAX = 64;
/** Idle sockets kept per container server. */
const FREE_SOCKETS_PER_SERVER_MAX = 16;

const keepAliveAgent = new Agent({
  keepAlive: true,
  maxSockets: SOCKETS_PER_SERVER_MAX,
  maxFreeSockets: FREE_SOCKETS_PER_SERVER_MAX,
  scheduling: 'lifo', // reuse the warmest socket; the rest time out (the server's Keep-Alive hint)
});

/** Closes idle kept-alive connections (on shutdown, so the process can exit at once). */
export function closeContainerUpdateConnections(): void {
  keepAliveAgent.destroy();
}

/** One update to one container server: resolves true on 2xx, false on any failure or timeout. */
export function sendOneUpdate(
  target: ContainerTarget,
  update: ContainerUpdate,
  options: ContainerUpdateOptions,
): Promise<boolean> {
  const { hostname, port } = splitHostPort(target.host);
  if (hostname === '' || !Number.isInteger(port) || port <= 0 || port > 65535) return Promise.resolve(false);
  const path = `/${encodePathPart(target.device)}/${target.partition}/${encodePathPart(update.account)}/${encodePathPart(
    update.container,
  )}/${encodePathPart(update.object)}`;
  const headers = { ...update.headers, 'X-Backend-Server-Type': 'container', 'Content-Length': '0' };
  return new Promise<boolean>((resolve) => {
    let settled = false;
    let outgoing: ClientRequest;
    let connectTimer: NodeJS.Timeout | undefined;
    const finish = (ok: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(connectTimer);
      clearTimeout(responseTimer);
      resolve(ok);
    };
    const responseTimer = setTimeout(() => outgoing.destroy(new Error('response timeout')), options.nodeTimeoutMs);
    // Bounded: a second attempt only after a reused socket was reset, and never a third.
    const attempt = (mayRetry: boolean): void => {
      outgoing = request({ hostname, port, method: update.op, path, headers, agent: keepAliveAgent });
      const current = outgoing;
      connectTimer = setTimeout(() => current.destroy(new Error('connect timeout')), options.connTimeoutMs);
      current.once('socket', (socket) => {
        // A kept-alive socket is connected already; a new one says so with 'connect'.
        if (!socket.connecting) clearTimeout(connectTimer);
        else socket.once('connect', () => clearTimeout(connectTimer));
      });
      current.once('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(connectTimer);
        if (mayRetry && current.reusedSocket && error.code === 'ECONNRESET' && !settled) {
          attempt(false);
          return;
        }
        options.logger.warn({ err: error, host: target.host, path }, 'container update failed');
        finish(false);
      });
      current.once('response', (response) => {
        response.resume();
        const status = response.statusCode ?? 500;
        const ok = status >= 200 && status < 300;
        if (!ok) options.logger.warn({ host: target.host, path, status }, 'container update refused');
        response.once('end', () => finish(ok));
        response.once('error', () => finish(false));
      });
      current.end();
    };
    attempt(true);
  });
}

/**
 * Sends the update to every target; resolves when all are done or `containerUpdateTimeoutMs` has
 * passed, whichever is first. Failures (even late ones) end in one async_pending file.
 */
export async function sendContainerUpdates(
  targets: readonly ContainerTarget[],
  update: ContainerUpdate,
  options: ContainerUpdateOptions,
): Promise<void> {
  if (targets.length === 0) return;
  const all = Promise.all(targets.map((target) => sendOneUpdate(target, update, options))).then(async (results) => {
    const failed = targets.filter((_, index) => results[index] !== true);
    if (failed.length === 0) return;
    const pending: AsyncPendingUpdate = {
      op: update.op,
      account: update.account,
      container: update.container,
      object: update.object,
      headers: update.headers,
      container_host: failed.map((t) => t.host).join(','),
      container_partition: failed.map((t) => t.partition).join(','),
      container_device: failed.map((t) => t.device).join(','),
    };
    await writeAsyncPending(update.devicePath, update.hash, update.timestamp, pending, options.fsync);
  });
  const guarded = all.catch((error: unknown) => options.logger.error({ err: error }, 'cannot write async_pending'));
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, options.containerUpdateTimeoutMs);
  });
  await Promise.race([guarded, timeout]);
  clearTimeout(timer);
}
