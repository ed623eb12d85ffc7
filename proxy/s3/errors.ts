/**
 * S3's error model: one class per S3 error code, each with its HTTP status, rendered as S3's XML
 * error body (Code, Message, Resource, RequestId). Code is the stable wire code clients switch on
 * (botocore and the JS SDK map it to exception classes), so it is spelled exactly as AWS does.
 * These errors know nothing of Koa; the S3 middleware renders them at its edge.
 */
import { xmlDocument, xmlElement, type XmlElementNode } from './xml.js';

export class S3Error extends Error {
  readonly code: string;
  readonly status: number;
  /** Extra elements after Message (e.g. MaxAllowedSkewMilliseconds, StringToSign). */
  readonly details: Readonly<Record<string, string>>;
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    code: string,
    status: number,
    message: string,
    options: { details?: Record<string, string>; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'S3Error';
    this.code = code;
    this.status = status;
    this.details = options.details ?? {};
    this.headers = options.headers ?? {};
  }
}

export function isS3Error(error: unknown): error is S3Error {
  return error instanceof S3Error;
}

type Details = Record<string, string>;

// One factory per code: the message texts follow AWS's documented ones, so tools that grep them work.
export const S3Errors = {
  accessDenied: (message = 'Access Denied.'): S3Error => new S3Error('AccessDenied', 403, message),
  signatureDoesNotMatch: (details?: Details): S3Error =>
    new S3Error(
      'SignatureDoesNotMatch',
      403,
      'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
      { details },
    ),
  invalidAccessKeyId: (accessKey: string): S3Error =>
    new S3Error('InvalidAccessKeyId', 403, 'The AWS Access Key Id you provided does not exist in our records.', {
      details: { AWSAccessKeyId: accessKey },
    }),
  requestTimeTooSkewed: (requestTime: string, serverTime: string): S3Error =>
    new S3Error(
      'RequestTimeTooSkewed',
      403,
      'The difference between the request time and the current time is too large.',
      {
        details: { RequestTime: requestTime, ServerTime: serverTime, MaxAllowedSkewMilliseconds: '900000' },
      },
    ),
  authorizationHeaderMalformed: (message: string): S3Error => new S3Error('AuthorizationHeaderMalformed', 400, message),
  authorizationQueryParametersError: (message: string): S3Error =>
    new S3Error('AuthorizationQueryParametersError', 400, message),
  missingSecurityHeader: (header: string): S3Error =>
    new S3Error('MissingSecurityHeader', 400, 'Your request was missing a required header.', {
      details: { MissingHeaderName: header },
    }),
  invalidArgument: (name: string, value: string, message: string): S3Error =>
    new S3Error('InvalidArgument', 400, message, { details: { ArgumentName: name, ArgumentValue: value } }),
  invalidRequest: (message: string): S3Error => new S3Error('InvalidRequest', 400, message),
  invalidDigest: (): S3Error => new S3Error('InvalidDigest', 400, 'The Content-MD5 you specified was invalid.'),
  badDigest: (): S3Error =>
    new S3Error('BadDigest', 400, 'The Content-MD5 you specified did not match what we received.'),
  contentSha256Mismatch: (client: string, computed: string): S3Error =>
    new S3Error(
      'XAmzContentSHA256Mismatch',
      400,
      "The provided 'x-amz-content-sha256' header does not match what was computed.",
      {
        details: { ClientComputedContentSHA256: client, S3ComputedContentSHA256: computed },
      },
    ),
  badChecksum: (algorithm: string): S3Error =>
    new S3Error(
      'BadDigest',
      400,
      `The ${algorithm.toUpperCase()} you specified did not match the calculated checksum.`,
    ),
  incompleteBody: (): S3Error =>
    new S3Error(
      'IncompleteBody',
      400,
      'You did not provide the number of bytes specified by the Content-Length HTTP header.',
    ),
  malformedXml: (): S3Error =>
    new S3Error(
      'MalformedXML',
      400,
      'The XML you provided was not well-formed or did not validate against our published schema.',
    ),
  invalidBucketName: (bucket: string): S3Error =>
    new S3Error('InvalidBucketName', 400, 'The specified bucket is not valid.', { details: { BucketName: bucket } }),
  noSuchBucket: (bucket: string): S3Error =>
    new S3Error('NoSuchBucket', 404, 'The specified bucket does not exist.', { details: { BucketName: bucket } }),
  noSuchKey: (key: string): S3Error =>
    new S3Error('NoSuchKey', 404, 'The specified key does not exist.', { details: { Key: key } }),
  noSuchUpload: (uploadId: string): S3Error =>
    new S3Error(
      'NoSuchUpload',
      404,
      'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.',
      { details: { UploadId: uploadId } },
    ),
  bucketAlreadyOwnedByYou: (bucket: string): S3Error =>
    new S3Error(
      'BucketAlreadyOwnedByYou',
      409,
      'Your previous request to create the named bucket succeeded and you already own it.',
      { details: { BucketName: bucket } },
    ),
  bucketAlreadyExists: (bucket: string): S3Error =>
    new S3Error('BucketAlreadyExists', 409, 'The requested bucket name is not available.', {
      details: { BucketName: bucket },
    }),
  bucketNotEmpty: (bucket: string): S3Error =>
    new S3Error('BucketNotEmpty', 409, 'The bucket you tried to delete is not empty', {
      details: { BucketName: bucket },
    }),
  entityTooSmall: (): S3Error =>
    new S3Error('EntityTooSmall', 400, 'Your proposed upload is smaller than the minimum allowed object size.'),
  entityTooLarge: (): S3Error =>
    new S3Error('EntityTooLarge', 400, 'Your proposed upload exceeds the maximum allowed object size.'),
  invalidPart: (): S3Error =>
    new S3Error(
      'InvalidPart',
      400,
      "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag.",
    ),
  invalidPartOrder: (): S3Error =>
    new S3Error(
      'InvalidPartOrder',
      400,
      'The list of parts was not in ascending order. The parts list must be specified in order by part number.',
    ),
  invalidRange: (): S3Error => new S3Error('InvalidRange', 416, 'The requested range is not satisfiable'),
  invalidPartNumber: (): S3Error =>
    new S3Error('InvalidPartNumber', 416, 'The requested partnumber is not satisfiable'),
  preconditionFailed: (condition: string): S3Error =>
    new S3Error('PreconditionFailed', 412, 'At least one of the pre-conditions you specified did not hold', {
      details: { Condition: condition },
    }),
  methodNotAllowed: (method: string, resource: string): S3Error =>
    new S3Error('MethodNotAllowed', 405, 'The specified method is not allowed against this resource.', {
      details: { Method: method, ResourceType: resource },
    }),
  notImplemented: (message = 'A header you provided implies functionality that is not implemented.'): S3Error =>
    new S3Error('NotImplemented', 501, message),
  keyTooLong: (): S3Error => new S3Error('KeyTooLongError', 400, 'Your key is too long.'),
  metadataTooLarge: (): S3Error =>
    new S3Error('MetadataTooLarge', 400, 'Your metadata headers exceed the maximum allowed metadata size.'),
  missingContentLength: (): S3Error =>
    new S3Error('MissingContentLength', 411, 'You must provide the Content-Length HTTP header.'),
  invalidStorageClass: (): S3Error =>
    new S3Error('InvalidStorageClass', 400, 'The storage class you specified is not valid.'),
  serviceUnavailable: (): S3Error => new S3Error('ServiceUnavailable', 503, 'Please reduce your request rate.'),
  slowDown: (): S3Error => new S3Error('SlowDown', 503, 'Please reduce your request rate.'),
  internalError: (): S3Error =>
    new S3Error('InternalError', 500, 'We encountered an internal error. Please try again.'),
  requestTimeout: (): S3Error =>
    new S3Error(
      'RequestTimeout',
      400,
      'Your socket connection to the server was not read from or written to within the timeout period.',
    ),
  noSuchBucketPolicy: (bucket: string): S3Error =>
    new S3Error('NoSuchBucketPolicy', 404, 'The bucket policy does not exist', { details: { BucketName: bucket } }),
  noSuchLifecycleConfiguration: (): S3Error =>
    new S3Error('NoSuchLifecycleConfiguration', 404, 'The lifecycle configuration does not exist'),
  noSuchCORSConfiguration: (): S3Error =>
    new S3Error('NoSuchCORSConfiguration', 404, 'The CORS configuration does not exist'),
  noSuchTagSet: (): S3Error => new S3Error('NoSuchTagSet', 404, 'The TagSet does not exist'),
} as const;

/** S3's XML error document. HEAD responses carry no body (the caller drops it). */
export function s3ErrorXml(error: S3Error, resource: string, requestId: string): string {
  const children: XmlElementNode[] = [xmlElement('Code', error.code), xmlElement('Message', error.message)];
  for (const [name, value] of Object.entries(error.details)) children.push(xmlElement(name, value));
  children.push(xmlElement('Resource', resource), xmlElement('RequestId', requestId));
  return xmlDocument(xmlElement('Error', children), false);
}
