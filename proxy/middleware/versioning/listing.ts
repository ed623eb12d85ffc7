/**
 * `GET <container>?versions`: every version of every object, as Swift's object_versioning lists
 * them. It merges two name-ordered listings, the user container's (the current objects, each
 * `is_latest`) and the hidden container's (older versions and delete markers, newest first per
 * name), taking at most `limit` rows, with `prefix`, `delimiter`, `reverse` and paging by
 * `marker` + `version_marker`. Rows carry `version_id` and `is_latest`; a delete marker is the
 * latest when it is the newest entry of a name that has no current object. Rendered as JSON with
 * Python's json.dumps spacing (Swift's bytes), XML or plain text (one name per row).
 */
import type { Context } from 'koa';
import { HttpError } from '../../../common/errors.js';
import { pythonJson } from '../../../common/python-json.js';
import { Timestamp } from '../../../common/timestamp.js';
import { checkListingLimit, listingFormat } from '../../controllers/listing.js';
import { quoteName } from '../../request-path.js';
import { swiftState } from '../../state.js';
import { DELETE_MARKER_TYPE } from '../versioning-legacy.js';
import {
  ALLOW_RESERVED,
  LISTING_DATA_TIMESTAMP,
  RESERVED_CHAR,
  currentVersionId,
  splitVersionObjectName,
  timestampFromLastModified,
  versionObjectName,
  versionObjectPrefix,
} from './names.js';

interface ObjectRow {
  name: string;
  hash: string;
  bytes: number;
  content_type: string;
  last_modified: string;
}

interface SubdirRow {
  subdir: string;
}

type Row = ObjectRow | SubdirRow;

export interface VersionRow extends ObjectRow {
  version_id: string;
  is_latest: boolean;
}

type OutRow = VersionRow | SubdirRow;

export interface VersionsListingTarget {
  version: string;
  account: string;
  container: string;
  versionsContainer: string | undefined;
  toggles: readonly Timestamp[];
  listingLimitMax: number;
}

const LISTING_BYTES_MAX = 64 * 1024 * 1024;

function queryString(ctx: Context, name: string): string | undefined {
  const value = ctx.query[name];
  return typeof value === 'string' ? value : undefined;
}

async function fetchRows(
  ctx: Context,
  path: string,
  params: Record<string, string>,
  reserved: boolean,
): Promise<{ status: number; headers: Record<string, string>; rows: Row[] }> {
  const query = new URLSearchParams({ format: 'json', ...params }).toString().replace(/\+/g, '%20');
  const response = await swiftState(ctx).subrequest({
    method: 'GET',
    path: `${path}?${query}`,
    // The current objects' version ids are their data timestamps, which a POST does not move.
    headers: reserved ? { [ALLOW_RESERVED]: 'true' } : { [LISTING_DATA_TIMESTAMP]: 'true' },
    preAuthed: reserved,
    source: 'OV',
  });
  const body = await response.buffer(LISTING_BYTES_MAX);
  if (response.status === 204 || response.status === 404) {
    return { status: response.status, headers: response.headers, rows: [] };
  }
  if (response.status < 200 || response.status >= 300) {
    throw new HttpError(response.status, body.toString('utf8') || undefined, { code: 'VersionsListingFailed' });
  }
  const parsed: unknown = JSON.parse(body.toString('utf8'));
  if (!Array.isArray(parsed)) throw new HttpError(500, undefined, { code: 'VersionsListingInvalid' });
  return { status: response.status, headers: response.headers, rows: parsed as Row[] };
}

function nameOf(row: Row | OutRow): string {
  return 'subdir' in row ? row.subdir : row.name;
}

function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** The two listings' query parameters for this page (Swift's marker/version_marker mapping). */
function pageParams(ctx: Context, limit: number): { primary: Record<string, string>; hidden: Record<string, string> } {
  const prefix = queryString(ctx, 'prefix');
  const marker = queryString(ctx, 'marker');
  const versionMarker = queryString(ctx, 'version_marker');
  const delimiter = queryString(ctx, 'delimiter');
  const reverse = queryString(ctx, 'reverse');
  if (versionMarker !== undefined && (marker === undefined || marker === '')) {
    throw new HttpError(400, 'version_marker param requires marker', { code: 'BadVersionMarker' });
  }
  // Version ids are digits and dots, and U+0001 separates them from the name.
  if (delimiter !== undefined && /[0-9.\u0001]/.test(delimiter)) {
    throw new HttpError(400, 'invalid delimiter param', { code: 'BadDelimiter' });
  }
  const primary: Record<string, string> = { limit: String(limit) };
  const hidden: Record<string, string> = { limit: String(limit) };
  for (const params of [primary, hidden]) {
    if (prefix !== undefined) params.prefix = prefix;
    if (delimiter !== undefined) params.delimiter = delimiter;
    if (reverse !== undefined) params.reverse = reverse;
  }
  if (marker !== undefined && marker !== '') {
    primary.marker = marker;
    if (versionMarker === undefined) {
      // Past every version of the marker's object (':' sorts after the digits and the dot).
      hidden.marker = `${versionObjectPrefix(marker)}:`;
    } else if (versionMarker === 'null') {
      hidden.marker = versionObjectPrefix(marker);
    } else {
      let id: string;
      try {
        id = Timestamp.parse(versionMarker).normal;
      } catch {
        throw new HttpError(400, 'invalid version_marker param', { code: 'BadVersionMarker' });
      }
      hidden.marker = versionObjectName(marker, id);
    }
  }
  return { primary, hidden };
}

function versionsFromHidden(rows: readonly Row[]): (VersionRow | SubdirRow)[] {
  const out: (VersionRow | SubdirRow)[] = [];
  for (const row of rows) {
    if ('subdir' in row) {
      // A delimiter inside the reserved suffix cannot happen (refused above); keep the user part.
      out.push({ subdir: row.subdir.split(RESERVED_CHAR)[0] ?? row.subdir });
      continue;
    }
    const split = splitVersionObjectName(row.name);
    if (split === undefined) continue;
    out.push({ ...row, name: split.object, is_latest: false, version_id: split.versionId });
  }
  return out;
}

function currentFromPrimary(rows: readonly Row[], toggles: readonly Timestamp[]): (VersionRow | SubdirRow)[] {
  return rows.map((row) => {
    if ('subdir' in row) return row;
    const timestamp = timestampFromLastModified(row.last_modified);
    const versionId = timestamp === undefined ? 'null' : currentVersionId(toggles, timestamp);
    // Swift's field order: a null version is the container's own row plus these two, a
    // versioned one the hidden container's row (its current version's symlink) plus is_latest first.
    return versionId === 'null'
      ? { ...row, version_id: versionId, is_latest: true }
      : { ...row, is_latest: true, version_id: versionId };
  });
}

/**
 * Merges the two ordered lists: by name (UTF-8 byte order, the servers' order), the current
 * object before its older versions (after them when reversed), subdirs once.
 */
function merge(primary: readonly OutRow[], hidden: readonly OutRow[], reverse: boolean): OutRow[] {
  const out: OutRow[] = [];
  const seenSubdirs = new Set<string>();
  let p = 0;
  let h = 0;
  const push = (row: OutRow): void => {
    if ('subdir' in row) {
      if (seenSubdirs.has(row.subdir)) return;
      seenSubdirs.add(row.subdir);
    }
    out.push(row);
  };
  while (p < primary.length || h < hidden.length) {
    const a = primary[p];
    const b = hidden[h];
    if (b === undefined || (a !== undefined && takePrimaryFirst(a, b, reverse))) {
      if (a !== undefined) push(a);
      p += 1;
    } else {
      push(b);
      h += 1;
    }
  }
  return out;
}

function takePrimaryFirst(a: OutRow, b: OutRow, reverse: boolean): boolean {
  const order = compareNames(nameOf(a), nameOf(b));
  if (order === 0) return !reverse;
  return reverse ? order > 0 : order < 0;
}

/** A delete marker is the latest version when no current object and no newer version precede it. */
function markLatestDeleteMarkers(rows: OutRow[], reverse: boolean, pagedName: string | undefined): void {
  const ordered = reverse ? [...rows].reverse() : rows;
  const decided = new Set<string>();
  if (pagedName !== undefined) decided.add(pagedName); // its newest entry was on an earlier page
  for (const row of ordered) {
    if ('subdir' in row) continue;
    if (decided.has(row.name)) continue;
    decided.add(row.name);
    if (!row.is_latest && row.content_type === DELETE_MARKER_TYPE) row.is_latest = true;
  }
}

/**
 * Swift lists versions in JSON only: a request that names another format, or whose Accept header
 * prefers one, is 406 Not Acceptable; one that names none (or accepts anything) gets JSON.
 */
function checkVersionsListingFormat(ctx: Context): void {
  const named = typeof ctx.query.format === 'string' && ctx.query.format !== '';
  const format = named
    ? listingFormat(ctx)
    : ctx.accepts(['application/json', 'application/xml', 'text/xml', 'text/plain']) === 'application/json'
      ? 'json'
      : 'other';
  if (format !== 'json') throw new HttpError(406);
}

export async function respondVersionsListing(ctx: Context, target: VersionsListingTarget): Promise<void> {
  checkVersionsListingFormat(ctx);
  checkListingLimit(ctx, target.listingLimitMax);
  const rawLimit = queryString(ctx, 'limit');
  const limit = rawLimit === undefined || rawLimit === '' ? target.listingLimitMax : Number(rawLimit);
  const reverse = ['true', '1', 'yes', 'on', 't', 'y'].includes((queryString(ctx, 'reverse') ?? '').toLowerCase());
  const { primary, hidden } = pageParams(ctx, limit);
  const base = `/${target.version}/${quoteName(target.account)}`;
  const current = await fetchRows(ctx, `${base}/${quoteName(target.container)}`, primary, false);
  if (current.status === 404) throw new HttpError(404, undefined, { code: 'ContainerNotFound' });
  const older =
    target.versionsContainer === undefined
      ? []
      : (await fetchRows(ctx, `${base}/${quoteName(target.versionsContainer)}`, hidden, true)).rows;
  const currentRows = currentFromPrimary(current.rows, target.toggles);
  // A PUT that failed after archiving leaves a copy of the still-current version: list it once.
  const currentIds = new Set(currentRows.map((row) => ('subdir' in row ? '' : `${row.name}\u0000${row.version_id}`)));
  const olderRows = versionsFromHidden(older).filter(
    (row) => 'subdir' in row || !currentIds.has(`${row.name}\u0000${row.version_id}`),
  );
  const rows = merge(currentRows, olderRows, reverse).slice(0, limit);
  const versionMarker = queryString(ctx, 'version_marker');
  markLatestDeleteMarkers(rows, reverse, versionMarker === undefined ? undefined : queryString(ctx, 'marker'));

  for (const [name, value] of Object.entries(current.headers)) {
    if (name.startsWith('x-container-') || name === 'x-timestamp') ctx.set(name, value);
  }
  ctx.status = 200;
  ctx.body = pythonJson(rows);
  ctx.type = 'application/json; charset=utf-8';
}
