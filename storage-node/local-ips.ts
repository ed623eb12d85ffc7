/**
 * Which addresses are this host's, as Swift's whataremyips answers for a `bind_ip`: that address
 * alone, or every address of every interface (loopback included) when it is a wildcard. Ring
 * device addresses are compared in one spelling per address (`0:0:0:0:0:0:0:1` is `::1`).
 */
import { isIPv6 } from 'node:net';
import { networkInterfaces } from 'node:os';

const WILDCARD_IPS = new Set(['', '0.0.0.0', '::', '[::]']);

export function isWildcardIp(ip: string): boolean {
  return WILDCARD_IPS.has(ip);
}

/** One spelling per address, so `0:0:0:0:0:0:0:1` in a ring matches `::1` from the interfaces. */
function canonicalIp(ip: string): string {
  const bare = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip;
  if (!isIPv6(bare)) return bare.toLowerCase();
  return new URL(`http://[${bare}]/`).hostname.slice(1, -1);
}

/** This host's addresses as Swift's whataremyips sees them for `bind_ip`. */
export function localIps(bindIp: string): Set<string> {
  if (!isWildcardIp(bindIp)) return new Set([canonicalIp(bindIp)]);
  const ips = new Set<string>();
  for (const addresses of Object.values(networkInterfaces())) {
    for (const address of addresses ?? []) ips.add(canonicalIp(address.address));
  }
  return ips;
}

/** Whether a ring device's `ip` is one of `ips` (from localIps). */
export function isLocalIp(ip: string, ips: ReadonlySet<string>): boolean {
  return ips.has(canonicalIp(ip));
}
