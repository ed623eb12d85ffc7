/**
 * Disk file errors, Swift's hierarchy: `DiskFileError` > `DiskFileNotExist` > `DiskFileDeleted` /
 * `DiskFileExpired`, plus quarantine and device errors. They know nothing of HTTP: the object
 * server maps them to statuses at its edge.
 */

export class DiskFileError extends Error {
  readonly code: string = 'DiskFileError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** No data file (nor tombstone) for this name. */
export class DiskFileNotExistError extends DiskFileError {
  override readonly code: string = 'DiskFileNotExist';
  /** The newest timestamp found on disk (a tombstone's), when there is one. */
  constructor(
    message = 'no such object',
    readonly timestamp?: string,
  ) {
    super(message);
  }
}

/** The newest file is a tombstone. */
export class DiskFileDeletedError extends DiskFileNotExistError {
  override readonly code: string = 'DiskFileDeleted';
  constructor(timestamp: string) {
    super('object deleted', timestamp);
  }
}

/** The object's X-Delete-At has passed. */
export class DiskFileExpiredError extends DiskFileNotExistError {
  override readonly code: string = 'DiskFileExpired';
  constructor(timestamp: string) {
    super('object expired', timestamp);
  }
}

/** The file did not match its metadata (ETag, length, or unreadable trailer); it has been moved aside. */
export class DiskFileQuarantinedError extends DiskFileNotExistError {
  override readonly code: string = 'DiskFileQuarantined';
  constructor(reason: string) {
    super(`quarantined: ${reason}`);
  }
}

/** A write that found a newer (or equal) timestamp on disk. */
export class DiskFileConflictError extends DiskFileError {
  override readonly code: string = 'DiskFileConflict';
  constructor(readonly timestamp: string) {
    super(`a newer timestamp is on disk: ${timestamp}`);
  }
}

/** The device is missing, unmounted, or too full. */
export class DiskFileDeviceUnavailableError extends DiskFileError {
  override readonly code: string = 'DiskFileDeviceUnavailable';
}

/** The body did not arrive whole (client disconnect, short body). */
export class DiskFileClientDisconnectError extends DiskFileError {
  override readonly code: string = 'DiskFileClientDisconnect';
}

/** The body's MD5 is not the ETag the client sent. */
export class DiskFileEtagMismatchError extends DiskFileError {
  override readonly code: string = 'DiskFileEtagMismatch';
}
