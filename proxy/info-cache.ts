/**
 * Account and container info (Swift's get_account_info / get_container_info): existence, ACLs,
 * counts and metadata, from one HEAD to the first good replica, cached in this process for
 * recheck_*_existence. Only positive answers are cached: a container created through another
 * worker must be usable at once. Writes through this process invalidate their entry.
 */
import type { IncomingHttpHeaders } from 'node:http';

export interface AccountInfo {
  /** 2xx when it exists, 404 when not, 503 when no replica answered. */
  status: number;
  containerCount: number;
  objectCount: number;
  bytesUsed: number;
  headers: IncomingHttpHeaders;
}

export interface ContainerInfo {
  status: number;
  readAcl?: string;
  writeAcl?: string;
  objectCount: number;
  bytesUsed: number;
  headers: IncomingHttpHeaders;
}

interface Entry<T> {
  value: T;
  expiresMs: number;
}

const CACHE_ENTRIES_MAX = 10_000;

function headerString(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

function headerInt(headers: IncomingHttpHeaders, name: string): number {
  const value = Number(headerString(headers, name) ?? '0');
  return Number.isFinite(value) ? value : 0;
}

export function accountInfoFrom(status: number, headers: IncomingHttpHeaders): AccountInfo {
  return {
    status,
    containerCount: headerInt(headers, 'x-account-container-count'),
    objectCount: headerInt(headers, 'x-account-object-count'),
    bytesUsed: headerInt(headers, 'x-account-bytes-used'),
    headers,
  };
}

export function containerInfoFrom(status: number, headers: IncomingHttpHeaders): ContainerInfo {
  return {
    status,
    readAcl: headerString(headers, 'x-container-read'),
    writeAcl: headerString(headers, 'x-container-write'),
    objectCount: headerInt(headers, 'x-container-object-count'),
    bytesUsed: headerInt(headers, 'x-container-bytes-used'),
    headers,
  };
}

class TtlCache<T> {
  private readonly entries = new Map<string, Entry<T>>();
  constructor(private readonly ttlMs: number) {}

  get(key: string): T | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresMs <= Date.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  set(key: string, value: T): void {
    if (this.ttlMs <= 0) return;
    if (this.entries.size >= CACHE_ENTRIES_MAX) {
      // Maps iterate in insertion order: drop the oldest entry.
      const oldest = this.entries.keys().next();
      if (oldest.done !== true) this.entries.delete(oldest.value);
    }
    this.entries.set(key, { value, expiresMs: Date.now() + this.ttlMs });
  }

  delete(key: string): void {
    this.entries.delete(key);
  }
}

export class InfoCache {
  private readonly accounts: TtlCache<AccountInfo>;
  private readonly containers: TtlCache<ContainerInfo>;

  constructor(accountTtlMs: number, containerTtlMs: number) {
    this.accounts = new TtlCache(accountTtlMs);
    this.containers = new TtlCache(containerTtlMs);
  }

  getAccount(account: string): AccountInfo | undefined {
    return this.accounts.get(account);
  }

  setAccount(account: string, info: AccountInfo): void {
    if (info.status >= 200 && info.status < 300) this.accounts.set(account, info);
  }

  clearAccount(account: string): void {
    this.accounts.delete(account);
  }

  getContainer(account: string, container: string): ContainerInfo | undefined {
    return this.containers.get(`${account}/${container}`);
  }

  setContainer(account: string, container: string, info: ContainerInfo): void {
    if (info.status >= 200 && info.status < 300) this.containers.set(`${account}/${container}`, info);
  }

  clearContainer(account: string, container: string): void {
    this.containers.delete(`${account}/${container}`);
  }
}
