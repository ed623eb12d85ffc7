/**
 * The HTTP error model shared by every service.
 *
 * Domain code throws `HttpError` (or a subclass) with the status Swift would answer; each app's
 * error middleware renders it in its protocol's format (Swift's short HTML/text bodies, S3 XML,
 * Glance/Nova JSON). `expose` says whether the message is safe to show a client: 5xx messages are
 * logged, not sent.
 */

/** Swift's reason phrases (swob's), on the status line and in the default body (`<html><h1>Not Found</h1>...`). */
export const STATUS_TEXT: Readonly<Record<number, string>> = Object.freeze({
  200: 'OK',
  201: 'Created',
  202: 'Accepted',
  204: 'No Content',
  206: 'Partial Content',
  304: 'Not Modified',
  400: 'Bad Request',
  401: 'Unauthorized',
  402: 'Payment Required',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  408: 'Request Timeout',
  409: 'Conflict',
  410: 'Gone',
  411: 'Length Required',
  412: 'Precondition Failed',
  413: 'Request Entity Too Large',
  414: 'Request URI Too Long',
  415: 'Unsupported Media Type',
  416: 'Requested Range Not Satisfiable',
  417: 'Expectation Failed',
  422: 'Unprocessable Entity',
  431: 'Request Header Fields Too Large',
  499: 'Client Disconnect',
  500: 'Internal Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
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
  /**
   * Rendered as `text/plain` (no charset) rather than Swift's default `text/html; charset=UTF-8`:
   * what Swift's constraints checks answer (metadata, object creation, X-Delete-At/-After).
   */
  plainText?: boolean;
}

export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly expose: boolean;
  readonly headers: Record<string, string>;
  readonly plainText: boolean;

  constructor(status: number, message?: string, options: HttpErrorOptions = {}) {
    super(message ?? STATUS_TEXT[status] ?? `HTTP ${status}`, { cause: options.cause });
    this.name = 'HttpError';
    this.status = status;
    this.code = options.code ?? (STATUS_TEXT[status] ?? 'Error').replace(/ /g, '');
    this.expose = status < 500;
    this.headers = options.headers ?? {};
    this.plainText = options.plainText === true;
  }
}

/** An error of one of Swift's constraints checks (constraints.py): its message as text/plain. */
export const constraintError = (status: number, message: string, code: string): HttpError =>
  new HttpError(status, message, { code, plainText: true });

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

/** The explanation line of Swift's default error page per status (swob's RESPONSE_REASONS). */
const EXPLANATIONS: Readonly<Record<number, string>> = Object.freeze({
  202: 'The request is accepted for processing.',
  400: 'The server could not comply with the request since it is either malformed or otherwise incorrect.',
  401: 'This server could not verify that you are authorized to access the document you requested.',
  402: 'Access was denied for financial reasons.',
  403: 'Access was denied to this resource.',
  404: 'The resource could not be found.',
  405: 'The method is not allowed for this resource.',
  406: 'The resource is not available in a format acceptable to your browser.',
  408: 'The server has waited too long for the request to be sent by the client.',
  409: 'There was a conflict when trying to complete your request.',
  410: 'This resource is no longer available.',
  411: 'Content-Length header required.',
  412: 'A precondition for this request was not met.',
  413: 'The body of your request was too large for this server.',
  414: 'The request URI was too long for this server.',
  415: 'The request media type is not supported by this server.',
  416: 'The Range requested is not available.',
  417: 'Expectation failed.',
  422: 'Unable to process the contained instructions',
  499: 'The client was disconnected during request.',
  500: 'The server has either erred or is incapable of performing the requested operation.',
  501: 'The requested method is not implemented by this server.',
  502: 'Bad gateway.',
  503: 'The server is currently unavailable. Please try again at a later time.',
  504: 'A timeout has occurred speaking to a backend server.',
  507: 'There was not enough space to save the resource. Drive: unknown',
});

/**
 * The body swob gives a response its server set none for: the default page where the status has
 * an explanation (202 Accepted), else nothing (201, 204).
 */
export function swiftDefaultBody(status: number): string {
  return EXPLANATIONS[status] === undefined ? '' : swiftErrorBody(status, undefined);
}

function swiftErrorExplanation(status: number): string {
  return EXPLANATIONS[status] ?? STATUS_TEXT[status] ?? '';
}
