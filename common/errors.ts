/**
 * The HTTP error model shared by every service.
 *
 * Domain code throws `HttpError` (or a subclass) with the status Swift would answer; each app's
 * error middleware renders it in its protocol's format (Swift's short HTML/text bodies, S3 XML,
 * Glance/Nova JSON). `expose` says whether the message is safe to show a client: 5xx messages are
 * logged, not sent.
 */

/** Swift's reason phrases, used for the default body (`<html><h1>Not Found</h1>...`). */
export const STATUS_TEXT: Readonly<Record<number, string>> = Object.freeze({
  200: 'OK',
  201: 'Created',
  202: 'Accepted',
  204: 'No Content',
  206: 'Partial Content',
  304: 'Not Modified',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  408: 'Request Timeout',
  409: 'Conflict',
  411: 'Length Required',
  412: 'Precondition Failed',
  413: 'Request Entity Too Large',
  414: 'Request URI Too Long',
  416: 'Requested Range Not Satisfiable',
  422: 'Unprocessable Entity',
  431: 'Request Header Fields Too Large',
  499: 'Client Disconnect',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  507: 'Insufficient Storage',
});

export interface HttpErrorOptions {
  /** A stable machine-readable code, e.g. `ObjectNotFound`, `BadTimestamp`. */
  code?: string;
  /** Extra response headers (e.g. X-Backend-Timestamp on a 404 of a tombstone). */
  headers?: Record<string, string>;
  cause?: unknown;
}

export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly expose: boolean;
  readonly headers: Record<string, string>;

  constructor(status: number, message?: string, options: HttpErrorOptions = {}) {
    super(message ?? STATUS_TEXT[status] ?? `HTTP ${status}`, { cause: options.cause });
    this.name = 'HttpError';
    this.status = status;
    this.code = options.code ?? (STATUS_TEXT[status] ?? 'Error').replace(/ /g, '');
    this.expose = status < 500;
    this.headers = options.headers ?? {};
  }
}

export const badRequest = (message: string, code?: string): HttpError =>
  new HttpError(400, message, { code: code ?? 'BadRequest' });
export const notFound = (message = 'Not Found', headers?: Record<string, string>): HttpError =>
  new HttpError(404, message, { code: 'NotFound', headers });
export const conflict = (message = 'Conflict', headers?: Record<string, string>): HttpError =>
  new HttpError(409, message, { code: 'Conflict', headers });
export const preconditionFailed = (message = 'Precondition Failed'): HttpError =>
  new HttpError(412, message, { code: 'PreconditionFailed' });
export const insufficientStorage = (message = 'Insufficient Storage'): HttpError =>
  new HttpError(507, message, { code: 'InsufficientStorage' });

export function isHttpError(error: unknown): error is HttpError {
  return error instanceof HttpError;
}

/**
 * The body Swift's WSGI servers send with an error status: a tiny HTML page for the generic
 * statuses, or the plain one-line reason when the server gave one (e.g. "Object name length of
 * 1025 longer than 1024"). Swift clients print this body as the error text.
 */
export function swiftErrorBody(status: number, message: string | undefined): string {
  const title = STATUS_TEXT[status] ?? `HTTP ${status}`;
  if (message === undefined || message === title) {
    return `<html><h1>${title}</h1><p>${swiftErrorExplanation(status)}</p></html>`;
  }
  return message;
}

function swiftErrorExplanation(status: number): string {
  switch (status) {
    case 401:
      return 'This server could not verify that you are authorized to access the document you requested.';
    case 403:
      return 'Access was denied to this resource.';
    case 404:
      return 'The resource could not be found.';
    case 406:
      return 'The resource is not available in a format acceptable to your browser.';
    case 409:
      return 'There was a conflict when trying to complete your request.';
    case 412:
      return 'A precondition for this request was not met.';
    case 416:
      return 'The Range requested is not available.';
    case 503:
      return 'The server is currently unavailable. Please try again at a later time.';
    case 507:
      return 'There was not enough space to save the resource. Drive: unknown';
    default:
      return STATUS_TEXT[status] ?? '';
  }
}
