/**
 * Where object versioning (`X-Versions-Enabled`) keeps things, and what a version id is.
 *
 * Layout. Swift keeps versions in a container named `\x00versions\x00<container>`, a name no
 * client can send (NUL is refused at the edge). Nebula's proxy and storage nodes refuse NUL in
 * every name, and letting it through would touch every stage's path parsing and the servers, so
 * the hidden container here is `\x01versions\x01<container>`: U+0001 is valid UTF-8 that the
 * servers store like any other character, and the versioning stage reserves every container
 * name that starts with it (client requests for such names get 412, as a NUL name does), so no
 * user container can collide with a hidden one. As the lowest character a name may hold, it
 * also puts every hidden container before all user containers in an account listing, which
 * hides them by moving the listing's lower bound (no body rewriting).
 *
 * Inside it a version of object `o` is `o\x01<inverted timestamp>`, the inverse of the version's
 * X-Timestamp (9999999999.99999 - t, normal form), so one object's versions sort newest first
 * and right after each other, and a name listing of the hidden container is already in
 * `?versions` order. Object names with U+0001 are refused in versioned containers for that.
 *
 * Version ids are the X-Timestamp of the write in Swift's normal form (`1614112381.78901`). The
 * current object stays in the user container (no symlink indirection, so plain GETs, listings
 * and rclone see ordinary objects); its id is its data timestamp, or `null` when it was written
 * while versioning was off. Whether it was on at a time is read from the container's toggle
 * history (sysmeta: the timestamps at which versioning was switched on, off, on, ...), so a
 * listing row's last_modified is enough to name its version.
 */
import { HttpError } from '../../../common/errors.js';
import { Timestamp } from '../../../common/timestamp.js';

export const RESERVED_CHAR = '\u0001';
const VERSIONS_CONTAINER_PREFIX = `${RESERVED_CHAR}versions${RESERVED_CHAR}`;
/** Every reserved container name sorts below this (U+0001 then the highest code point). */
export const RESERVED_CONTAINERS_UPPER_BOUND = `${RESERVED_CHAR}\u{10FFFF}`;

export const SYSMETA_ENABLED = 'x-container-sysmeta-versions-enabled';
export const SYSMETA_CONTAINER = 'x-container-sysmeta-versions-container';
export const SYSMETA_TOGGLES = 'x-container-sysmeta-versions-toggles';
/** Internal requests to reserved names carry this (clients cannot: gatekeeper strips x-backend-*). */
export const ALLOW_RESERVED = 'x-backend-allow-reserved-names';
/** Container listings then give each row's data timestamp as last_modified (storage-node/container/server.ts). */
export const LISTING_DATA_TIMESTAMP = 'x-backend-listing-data-timestamp';
/** At most this many switches of X-Versions-Enabled are remembered (about 1.2 KB of sysmeta). */
export const TOGGLES_MAX = 64;

const TICKS_MAX = 999_999_999_999_999; // 9999999999.99999

export function isReservedName(name: string): boolean {
  return name.startsWith(RESERVED_CHAR);
}

export function versionsContainerName(container: string): string {
  return `${VERSIONS_CONTAINER_PREFIX}${container}`;
}

function invert(timestamp: Timestamp): string {
  return new Timestamp(TICKS_MAX - timestamp.ticks).normal;
}

export function versionObjectName(object: string, versionId: string): string {
  return `${object}${RESERVED_CHAR}${invert(Timestamp.parse(versionId))}`;
}

/** The prefix shared by all versions of `object` (and by nothing else). */
export function versionObjectPrefix(object: string): string {
  return `${object}${RESERVED_CHAR}`;
}

/** `o\x01<inverted>` back to the object name and its version id; undefined for other names. */
export function splitVersionObjectName(name: string): { object: string; versionId: string } | undefined {
  const index = name.lastIndexOf(RESERVED_CHAR);
  if (index < 0) return undefined;
  const inverted = name.slice(index + 1);
  if (!Timestamp.isNormal(inverted)) return undefined;
  return { object: name.slice(0, index), versionId: invert(Timestamp.parse(inverted)) };
}

/** `?version-id=`: `null` or a timestamp, answered in normal form; 400 otherwise (as Swift). */
export function parseVersionId(raw: string): string {
  if (raw === 'null') return raw;
  try {
    return Timestamp.parse(raw).normal;
  } catch {
    throw new HttpError(400, 'Invalid version parameter', { code: 'BadVersionId' });
  }
}

/** Swift's config_true_value. */
export function isTrue(value: string | undefined): boolean {
  return ['true', '1', 'yes', 'on', 't', 'y'].includes((value ?? '').trim().toLowerCase());
}

export function parseToggles(raw: string | undefined): Timestamp[] {
  if (raw === undefined || raw.trim() === '') return [];
  const toggles: Timestamp[] = [];
  for (const part of raw.trim().split(/\s+/)) {
    try {
      toggles.push(Timestamp.parse(part));
    } catch {
      // A damaged entry is skipped: ids may then read as null, nothing is lost.
    }
  }
  return toggles;
}

/** Whether versioning was on at `timestamp`: the last switch at or before it turned it on. */
export function wasEnabledAt(toggles: readonly Timestamp[], timestamp: Timestamp): boolean {
  let enabled = false;
  for (const [index, toggle] of toggles.entries()) {
    if (toggle.ticks > timestamp.ticks) break;
    enabled = index % 2 === 0;
  }
  return enabled;
}

/** The version id of a current object written at `timestamp`. */
export function currentVersionId(toggles: readonly Timestamp[], timestamp: Timestamp): string {
  return wasEnabledAt(toggles, timestamp) ? timestamp.normal : 'null';
}

/** A listing row's `last_modified` (ISO 8601 with microseconds, UTC) as a Timestamp. */
export function timestampFromLastModified(lastModified: string): Timestamp | undefined {
  const match = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?$/.exec(lastModified);
  if (match === null) return undefined;
  const seconds = Date.parse(`${match[1] ?? ''}Z`) / 1000;
  if (!Number.isFinite(seconds)) return undefined;
  const micros = Number((match[2] ?? '').padEnd(6, '0'));
  return new Timestamp(seconds * 100_000 + Math.floor(micros / 10));
}
