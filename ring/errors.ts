/**
 * The ring's domain errors. Each has a stable `code` and knows nothing of HTTP; the CLI maps them
 * to swift-ring-builder's exit status 2 and servers refuse to start on them.
 */

export class RingError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RingError';
    this.code = code;
  }
}

/** A ring file that cannot be read: not gzip, bad magic, truncated, inconsistent header or table. */
export class RingFileError extends RingError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('RingFileCorrupt', message, options);
    this.name = 'RingFileError';
  }
}

/** Bad input to the builder: a malformed device, an out-of-range part power, an unknown device. */
export class RingBuilderError extends RingError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('RingBuilderInvalid', message, options);
    this.name = 'RingBuilderError';
  }
}

/** A device that clashes with one already in the builder (same id, or same ip:port/device). */
export class DuplicateDeviceError extends RingError {
  constructor(message: string) {
    super('DuplicateDevice', message);
    this.name = 'DuplicateDeviceError';
  }
}

/** A builder that cannot produce a valid ring: no weighted devices, fewer devices than replicas. */
export class RingValidationError extends RingError {
  constructor(message: string) {
    super('RingValidation', message);
    this.name = 'RingValidationError';
  }
}
