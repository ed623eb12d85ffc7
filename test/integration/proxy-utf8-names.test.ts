/**
 * Object and container names in any valid UTF-8 through the Swift API, compared byte for byte
 * with OpenStack Swift 2.30: multi-byte and 4-byte characters, spaces, `%`, `+`, `?`, `#`, `&`,
 * `<`, `>`, quotes, control characters, U+FFFD itself, and names whose UTF-8 byte order differs
 * from JS's UTF-16 order (U+FF5E sorts before U+1F600 in Swift). PUT, GET, HEAD and DELETE of each;
 * container listings (plain, JSON, XML; prefix, delimiter, marker, end_marker, reverse, path on
 * multi-byte names) and account listings. The expected bodies are Swift's answers to the same
 * requests (captured from Debian's swift 2.30 proxy; last_modified blanked, as timestamps differ).
 * Names that are not UTF-8, or hold a NUL, are refused with 412 as Swift refuses them, and with
 * 400 InvalidURI through the S3 API (as Swift's s3api), which stores and lists UTF-8 keys too.
 */
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { canonicalRequest, formatAmzDate, parseQuery, sign, signingKey, stringToSign } from '../../proxy/s3/sigv4.js';
import { clusterSuite } from '../helpers/cluster-suite.js';
import { swiftCaller } from '../helpers/swift-http.js';

const test = clusterSuite({ storageNodes: 3 }, 'nebula-utf8-names-');

const NAMES = [
  'a b',
  '100%',
  'a+b',
  'q?x',
  'h#x',
  'a&b',
  '<tag>',
  'quote"s',
  "apos'",
  'new\nline',
  'tab\tx',
  '\u0001ctrl',
  '\u007fdel',
  'back\\slash',
  'é',
  'ÿ',
  '中文/文件',
  '中文/b',
  '\uff5e',
  '\ufffd',
  '😀emoji',
  'dir/é/x',
  'dir/😀/y',
  'dir/z',
];
const CONTAINER = 'names-☃';
/** Empty, so that their counts are those of Swift, whose account counts lag (container-updater). */
const CONTAINERS = ['utf8-☃', 'utf8-<&>"\'', 'utf8-😀', 'utf8-\uff5e', 'utf8-é'];

/** Swift 2.30's answers to `GET /v1/AUTH_test/names-☃?<query>`, cut into lines for reading. */
const SWIFT_CONTAINER_LISTINGS: [string, string[]][] = [
  [
    'format=txt',
    [
      '\u0001ctrl\n',
      '100%\n',
      '<tag>\n',
      'a b\n',
      'a&b\n',
      'a+b\n',
      "apos'\n",
      'back\\slash\n',
      'dir/z\n',
      'dir/é/x\n',
      'dir/😀/y\n',
      'h#x\n',
      'new\n',
      'line\n',
      'q?x\n',
      'quote"s\n',
      'tab\tx\n',
      '\u007fdel\n',
      'é\n',
      'ÿ\n',
      '中文/b\n',
      '中文/文件\n',
      '\uff5e\n',
      '\ufffd\n',
      '😀emoji\n',
    ],
  ],
  [
    'format=json',
    [
      '[{"bytes": 5, "hash": "462dad7d7409940cb68342cd0267a2c0", "name": "\\u0001ctrl", "content_type": "text/plain", "last_modified": ""}, ',
      '{"bytes": 4, "hash": "30bd7ce7de206924302499f197c7a966", "name": "100%", "content_type": "text/plain", "last_modified": ""}, ',
      '{"bytes": 5, "hash": "48e04d12f0f44333e6e80e00aec360ee", "name": "<tag>", "content_type": "text/plain", "last_modified": ""}, ',
      '{"bytes": 3, "hash": "0cc9cd4dd26c5137b675a0d819cb9ab0", "name": "a b", "content_type": "text/plain", "last_modified": ""}, ',
      '{"bytes": 3, "hash": "b96e7bda9c9feee3259b177bd456b0a5", "name": "a&b", "content_type": "text/plain", "last_modified": ""}, ',
      '{"bytes": 3, "hash": "65c884f742c8591808a121a828bc09f8", "name": "a+b", "content_type": "text/plain", "last_modified": ""}, ',
      '{"bytes": 5, "hash": "6ba6a42441090f1e9686d09f512ef715", "name": "apos\'", "content_type": "text/plain", "last_modified": ""}, ',
      '{"bytes": 10, "hash": "7ac22aa81ddb0dd4f82a9f0b547b92f4", "name": "back\\\\slash", "content_type": "text/plain", "last_modified": ""}, ',
      '{"bytes": 5, "hash": "318db86d13c84b66d379eb938aee3fbd", "name": "dir/z", "content_type": "text/plain", "last_modified": ""}, ',
      '{"bytes": 8, "hash": "cda95d13abaff4f3fa71eb5a6da53dee", "name": "dir/\\u00e9/x", "content_type": "text/plain", "last_modified": ""}, ',
      '{"bytes": 10, "hash": "9296940ead73ad786f7f8cfe7ba37549", "name": "dir/\\ud83d\\ude00/y", "content_type": "text/plain", "last_modified": ""}, ',
      '{"bytes": 3, "hash": "8854f3828f9bd58e8c4b9574d29643a6", "name": "h#x", "content_type": "text/plain", "last_modified": ""}, ',
      '{"bytes": 8, "hash": "50b5bf99eabd236f3cbe7c345ada4ec6", "name": "new\\nline", "content_type": "text/plain", "last_modified": ""}, ',
      '{"bytes": 3, "hash": "f14d525caa3375f2027eab74419face6", "name": "q?x", "content_type": "text/plain", "last_modified": ""}, ',
      '{"bytes": 7, "hash": "5a6b59feedb80a42fd44279e72966860", "name": "quote\\"s", "content_type": "text/plain", "last_modified": ""}, ',
      '{"bytes": 5, "hash": "4d9f3411efd40dc40e8b3485cd3f39e4", "name": "tab\\tx", "content_type": "text/plain", "last_modified": ""}, ',
      '{"bytes": 4, "hash": "c9f71acb4c524152f07a9838e9ad1ed6", "name": "\\u007fdel", "content_type": "text/plain", "last_modified": ""}, ',
      '{"bytes": 2, "hash": "66ddcd97cfdeabb2f6fb8a999b4bc76f", "name": "\\u00e9", "content_type": "text/plain", "last_modified": ""}, ',
      '{"bytes": 2, "hash": "f3f7437e8c1f303fc6742d9368b36cf6", "name": "\\u00ff", "content_type": "text/plain", "last_modified": ""}, ',
      '{"bytes": 8, "hash": "c0d2be31e7b296c5627597fc1bccf21c", "name": "\\u4e2d\\u6587/b", "content_type": "text/plain", "last_modified": ""}, ',
      '{"bytes": 13, "hash": "4dee37b05d1c7840c343a7594f402d44", "name": "\\u4e2d\\u6587/\\u6587\\u4ef6", "content_type": "text/plain", "last_modified": ""}, ',
      '{"bytes": 3, "hash": "53a154b310bb3073c0ce30ca145bed59", "name": "\\uff5e", "content_type": "text/plain", "last_modified": ""}, ',
      '{"bytes": 3, "hash": "9b759040321a408a5c7768b4511287a6", "name": "\\ufffd", "content_type": "text/plain", "last_modified": ""}, ',
      '{"bytes": 9, "hash": "e04beb52eb664882198dcab6d67eb289", "name": "\\ud83d\\ude00emoji", "content_type": "text/plain", "last_modified": ""}]',
    ],
  ],
  [
    'format=xml',
    [
      '<?xml version="1.0" encoding="UTF-8"?>\n',
      '<container name="names-☃"><object><name>\u0001ctrl</name><hash>462dad7d7409940cb68342cd0267a2c0</hash><bytes>5</bytes><content_type>text/plain</content_type><last_modified></last_modified></object>',
      '<object><name>100%</name><hash>30bd7ce7de206924302499f197c7a966</hash><bytes>4</bytes><content_type>text/plain</content_type><last_modified></last_modified></object>',
      '<object><name>&lt;tag&gt;</name><hash>48e04d12f0f44333e6e80e00aec360ee</hash><bytes>5</bytes><content_type>text/plain</content_type><last_modified></last_modified></object>',
      '<object><name>a b</name><hash>0cc9cd4dd26c5137b675a0d819cb9ab0</hash><bytes>3</bytes><content_type>text/plain</content_type><last_modified></last_modified></object>',
      '<object><name>a&amp;b</name><hash>b96e7bda9c9feee3259b177bd456b0a5</hash><bytes>3</bytes><content_type>text/plain</content_type><last_modified></last_modified></object>',
      '<object><name>a+b</name><hash>65c884f742c8591808a121a828bc09f8</hash><bytes>3</bytes><content_type>text/plain</content_type><last_modified></last_modified></object>',
      "<object><name>apos'</name><hash>6ba6a42441090f1e9686d09f512ef715</hash><bytes>5</bytes><content_type>text/plain</content_type><last_modified></last_modified></object>",
      '<object><name>back\\slash</name><hash>7ac22aa81ddb0dd4f82a9f0b547b92f4</hash><bytes>10</bytes><content_type>text/plain</content_type><last_modified></last_modified></object>',
      '<object><name>dir/z</name><hash>318db86d13c84b66d379eb938aee3fbd</hash><bytes>5</bytes><content_type>text/plain</content_type><last_modified></last_modified></object>',
      '<object><name>dir/é/x</name><hash>cda95d13abaff4f3fa71eb5a6da53dee</hash><bytes>8</bytes><content_type>text/plain</content_type><last_modified></last_modified></object>',
      '<object><name>dir/😀/y</name><hash>9296940ead73ad786f7f8cfe7ba37549</hash><bytes>10</bytes><content_type>text/plain</content_type><last_modified></last_modified></object>',
      '<object><name>h#x</name><hash>8854f3828f9bd58e8c4b9574d29643a6</hash><bytes>3</bytes><content_type>text/plain</content_type><last_modified></last_modified></object>',
      '<object><name>new\n',
      'line</name><hash>50b5bf99eabd236f3cbe7c345ada4ec6</hash><bytes>8</bytes><content_type>text/plain</content_type><last_modified></last_modified></object>',
      '<object><name>q?x</name><hash>f14d525caa3375f2027eab74419face6</hash><bytes>3</bytes><content_type>text/plain</content_type><last_modified></last_modified></object>',
      '<object><name>quote"s</name><hash>5a6b59feedb80a42fd44279e72966860</hash><bytes>7</bytes><content_type>text/plain</content_type><last_modified></last_modified></object>',
      '<object><name>tab\tx</name><hash>4d9f3411efd40dc40e8b3485cd3f39e4</hash><bytes>5</bytes><content_type>text/plain</content_type><last_modified></last_modified></object>',
      '<object><name>\u007fdel</name><hash>c9f71acb4c524152f07a9838e9ad1ed6</hash><bytes>4</bytes><content_type>text/plain</content_type><last_modified></last_modified></object>',
      '<object><name>é</name><hash>66ddcd97cfdeabb2f6fb8a999b4bc76f</hash><bytes>2</bytes><content_type>text/plain</content_type><last_modified></last_modified></object>',
      '<object><name>ÿ</name><hash>f3f7437e8c1f303fc6742d9368b36cf6</hash><bytes>2</bytes><content_type>text/plain</content_type><last_modified></last_modified></object>',
      '<object><name>中文/b</name><hash>c0d2be31e7b296c5627597fc1bccf21c</hash><bytes>8</bytes><content_type>text/plain</content_type><last_modified></last_modified></object>',
      '<object><name>中文/文件</name><hash>4dee37b05d1c7840c343a7594f402d44</hash><bytes>13</bytes><content_type>text/plain</content_type><last_modified></last_modified></object>',
      '<object><name>\uff5e</name><hash>53a154b310bb3073c0ce30ca145bed59</hash><bytes>3</bytes><content_type>text/plain</content_type><last_modified></last_modified></object>',
      '<object><name>\ufffd</name><hash>9b759040321a408a5c7768b4511287a6</hash><bytes>3</bytes><content_type>text/plain</content_type><last_modified></last_modified></object>',
      '<object><name>😀emoji</name><hash>e04beb52eb664882198dcab6d67eb289</hash><bytes>9</bytes><content_type>text/plain</content_type><last_modified></last_modified></object>',
      '</container>',
    ],
  ],
  [
    'delimiter=/',
    [
      '\u0001ctrl\n',
      '100%\n',
      '<tag>\n',
      'a b\n',
      'a&b\n',
      'a+b\n',
      "apos'\n",
      'back\\slash\n',
      'dir/\n',
      'h#x\n',
      'new\n',
      'line\n',
      'q?x\n',
      'quote"s\n',
      'tab\tx\n',
      '\u007fdel\n',
      'é\n',
      'ÿ\n',
      '中文/\n',
      '\uff5e\n',
      '\ufffd\n',
      '😀emoji\n',
    ],
  ],
  [
    'delimiter=/&format=json',
    [
      '[{"bytes": 5, "hash": "462dad7d7409940cb68342cd0267a2c0", "name": "\\u0001ctrl", "content_type": "text/plain", "last_modified": ""}, ',
      '{"bytes": 4, "hash": "30bd7ce7de206924302499f197c7a966", "name": "100%", "content_type": "text/plain", "last_modified": ""}, ',
      '{"bytes": 5, "hash": "48e04d12f0f44333e6e80e00aec360ee", "name": "<tag>", "content_type": "text/plain", "last_modified": ""}, ',
      '{"bytes": 3, "hash": "0cc9cd4dd26c5137b675a0d819cb9ab0", "name": "a b", "content_type": "text/plain", "last_modified": ""}, ',
      '{"bytes": 3, "hash": "b96e7bda9c9feee3259b177bd456b0a5", "name": "a&b", "content_type": "text/plain", "last_modified": ""}, ',
      '{"bytes": 3, "hash": "65c884f742c8591808a121a828bc09f8", "name": "a+b", "content_type": "text/plain", "last_modified": ""}, ',
      '{"bytes": 5, "hash": "6ba6a42441090f1e9686d09f512ef715", "name": "apos\'", "content_type": "text/plain", "last_modified": ""}, ',
      '{"bytes": 10, "hash": "7ac22aa81ddb0dd4f82a9f0b547b92f4", "name": "back\\\\slash", "content_type": "text/plain", "last_modified": ""}, ',
      '{"subdir": "dir/"}, ',
      '{"bytes": 3, "hash": "8854f3828f9bd58e8c4b9574d29643a6", "name": "h#x", "content_type": "text/plain", "last_modified": ""}, ',
      '{"bytes": 8, "hash": "50b5bf99eabd236f3cbe7c345ada4ec6", "name": "new\\nline", "content_type": "text/plain", "last_modified": ""}, ',
      '{"bytes": 3, "hash": "f14d525caa3375f2027eab74419face6", "name": "q?x", "content_type": "text/plain", "last_modified": ""}, ',
      '{"bytes": 7, "hash": "5a6b59feedb80a42fd44279e72966860", "name": "quote\\"s", "content_type": "text/plain", "last_modified": ""}, ',
      '{"bytes": 5, "hash": "4d9f3411efd40dc40e8b3485cd3f39e4", "name": "tab\\tx", "content_type": "text/plain", "last_modified": ""}, ',
      '{"bytes": 4, "hash": "c9f71acb4c524152f07a9838e9ad1ed6", "name": "\\u007fdel", "content_type": "text/plain", "last_modified": ""}, ',
      '{"bytes": 2, "hash": "66ddcd97cfdeabb2f6fb8a999b4bc76f", "name": "\\u00e9", "content_type": "text/plain", "last_modified": ""}, ',
      '{"bytes": 2, "hash": "f3f7437e8c1f303fc6742d9368b36cf6", "name": "\\u00ff", "content_type": "text/plain", "last_modified": ""}, ',
      '{"subdir": "\\u4e2d\\u6587/"}, ',
      '{"bytes": 3, "hash": "53a154b310bb3073c0ce30ca145bed59", "name": "\\uff5e", "content_type": "text/plain", "last_modified": ""}, ',
      '{"bytes": 3, "hash": "9b759040321a408a5c7768b4511287a6", "name": "\\ufffd", "content_type": "text/plain", "last_modified": ""}, ',
      '{"bytes": 9, "hash": "e04beb52eb664882198dcab6d67eb289", "name": "\\ud83d\\ude00emoji", "content_type": "text/plain", "last_modified": ""}]',
    ],
  ],
  [
    'prefix=dir/&delimiter=/&format=xml',
    [
      '<?xml version="1.0" encoding="UTF-8"?>\n',
      '<container name="names-☃"><object><name>dir/z</name><hash>318db86d13c84b66d379eb938aee3fbd</hash><bytes>5</bytes><content_type>text/plain</content_type><last_modified></last_modified></object>',
      '<subdir name="dir/é/"><name>dir/é/</name></subdir>',
      '<subdir name="dir/😀/"><name>dir/😀/</name></subdir>',
      '</container>',
    ],
  ],
  ['marker=%C3%A9', ['ÿ\n', '中文/b\n', '中文/文件\n', '\uff5e\n', '\ufffd\n', '😀emoji\n']],
  [
    'end_marker=%F0%9F%98%80',
    [
      '\u0001ctrl\n',
      '100%\n',
      '<tag>\n',
      'a b\n',
      'a&b\n',
      'a+b\n',
      "apos'\n",
      'back\\slash\n',
      'dir/z\n',
      'dir/é/x\n',
      'dir/😀/y\n',
      'h#x\n',
      'new\n',
      'line\n',
      'q?x\n',
      'quote"s\n',
      'tab\tx\n',
      '\u007fdel\n',
      'é\n',
      'ÿ\n',
      '中文/b\n',
      '中文/文件\n',
      '\uff5e\n',
      '\ufffd\n',
    ],
  ],
  ['marker=%EF%BD%9E', ['\ufffd\n', '😀emoji\n']],
  [
    'reverse=on',
    [
      '😀emoji\n',
      '\ufffd\n',
      '\uff5e\n',
      '中文/文件\n',
      '中文/b\n',
      'ÿ\n',
      'é\n',
      '\u007fdel\n',
      'tab\tx\n',
      'quote"s\n',
      'q?x\n',
      'new\n',
      'line\n',
      'h#x\n',
      'dir/😀/y\n',
      'dir/é/x\n',
      'dir/z\n',
      'back\\slash\n',
      "apos'\n",
      'a+b\n',
      'a&b\n',
      'a b\n',
      '<tag>\n',
      '100%\n',
      '\u0001ctrl\n',
    ],
  ],
  [
    'reverse=on&marker=%E4%B8%AD',
    [
      'ÿ\n',
      'é\n',
      '\u007fdel\n',
      'tab\tx\n',
      'quote"s\n',
      'q?x\n',
      'new\n',
      'line\n',
      'h#x\n',
      'dir/😀/y\n',
      'dir/é/x\n',
      'dir/z\n',
      'back\\slash\n',
      "apos'\n",
      'a+b\n',
      'a&b\n',
      'a b\n',
      '<tag>\n',
      '100%\n',
      '\u0001ctrl\n',
    ],
  ],
  ['prefix=%E4%B8%AD', ['中文/b\n', '中文/文件\n']],
  [
    'delimiter=%E6%96%87',
    [
      '\u0001ctrl\n',
      '100%\n',
      '<tag>\n',
      'a b\n',
      'a&b\n',
      'a+b\n',
      "apos'\n",
      'back\\slash\n',
      'dir/z\n',
      'dir/é/x\n',
      'dir/😀/y\n',
      'h#x\n',
      'new\n',
      'line\n',
      'q?x\n',
      'quote"s\n',
      'tab\tx\n',
      '\u007fdel\n',
      'é\n',
      'ÿ\n',
      '中文\n',
      '\uff5e\n',
      '\ufffd\n',
      '😀emoji\n',
    ],
  ],
  ['path=dir', ['dir/z\n']],
  [
    'prefix=%F0%9F%98%80&format=json',
    [
      '[{"bytes": 9, "hash": "e04beb52eb664882198dcab6d67eb289", "name": "\\ud83d\\ude00emoji", "content_type": "text/plain", "last_modified": ""}]',
    ],
  ],
  [
    'limit=2&marker=%C3%BF&format=json',
    [
      '[{"bytes": 8, "hash": "c0d2be31e7b296c5627597fc1bccf21c", "name": "\\u4e2d\\u6587/b", "content_type": "text/plain", "last_modified": ""}, ',
      '{"bytes": 13, "hash": "4dee37b05d1c7840c343a7594f402d44", "name": "\\u4e2d\\u6587/\\u6587\\u4ef6", "content_type": "text/plain", "last_modified": ""}]',
    ],
  ],
  [
    'format=json&limit=3&prefix=%3C',
    [
      '[{"bytes": 5, "hash": "48e04d12f0f44333e6e80e00aec360ee", "name": "<tag>", "content_type": "text/plain", "last_modified": ""}]',
    ],
  ],
];

/** Swift 2.30's answers to `GET /v1/AUTH_test?prefix=utf8-&format=<format>`. */
const SWIFT_ACCOUNT_LISTINGS: [string, string[]][] = [
  ['plain', ['utf8-<&>"\'\n', 'utf8-é\n', 'utf8-☃\n', 'utf8-\uff5e\n', 'utf8-😀\n']],
  [
    'json',
    [
      '[{"name": "utf8-<&>\\"\'", "count": 0, "bytes": 0, "last_modified": ""}, ',
      '{"name": "utf8-\\u00e9", "count": 0, "bytes": 0, "last_modified": ""}, ',
      '{"name": "utf8-\\u2603", "count": 0, "bytes": 0, "last_modified": ""}, ',
      '{"name": "utf8-\\uff5e", "count": 0, "bytes": 0, "last_modified": ""}, ',
      '{"name": "utf8-\\ud83d\\ude00", "count": 0, "bytes": 0, "last_modified": ""}]',
    ],
  ],
  [
    'xml',
    [
      '<?xml version="1.0" encoding="UTF-8"?>\n',
      '<account name="AUTH_test">\n',
      '<container><name>utf8-&lt;&amp;&gt;"\'</name><count>0</count><bytes>0</bytes><last_modified></last_modified></container>\n',
      '<container><name>utf8-é</name><count>0</count><bytes>0</bytes><last_modified></last_modified></container>\n',
      '<container><name>utf8-☃</name><count>0</count><bytes>0</bytes><last_modified></last_modified></container>\n',
      '<container><name>utf8-\uff5e</name><count>0</count><bytes>0</bytes><last_modified></last_modified></container>\n',
      '<container><name>utf8-😀</name><count>0</count><bytes>0</bytes><last_modified></last_modified></container>\n',
      '</account>',
    ],
  ],
];

/** Python's quote(name, safe=''): every byte but the unreserved ones %-encoded. */
function quote(name: string): string {
  return encodeURIComponent(name).replace(/[!'()*]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** A SigV4-signed S3 request with the path sent exactly as given (test:tester / testing). */
function signedS3(proxyUrl: string, method: string, path: string): Promise<{ status: number; body: string }> {
  const url = new URL(proxyUrl);
  const amzDate = formatAmzDate(Date.now());
  const payloadHash = createHash('sha256').update('').digest('hex');
  const headers: Record<string, string> = {
    host: url.host,
    'x-amz-date': amzDate,
    'x-amz-content-sha256': payloadHash,
  };
  const scope = `${amzDate.slice(0, 8)}/us-east-1/s3/aws4_request`;
  const signedHeaders = Object.keys(headers).sort();
  const canonical = canonicalRequest(
    { method, rawPath: path, query: parseQuery(''), headers },
    signedHeaders,
    payloadHash,
  );
  const key = signingKey('testing', amzDate.slice(0, 8), 'us-east-1', 's3');
  headers.authorization =
    `AWS4-HMAC-SHA256 Credential=test:tester/${scope}, SignedHeaders=${signedHeaders.join(';')}, ` +
    `Signature=${sign(key, stringToSign(amzDate, scope, canonical))}`;
  return new Promise((resolve, reject) => {
    const sent = request({ host: url.hostname, port: url.port, method, path, headers, timeout: 30_000 }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      response.on('error', reject);
    });
    sent.on('timeout', () => sent.destroy(new Error('timeout')));
    sent.on('error', reject);
    sent.end();
  });
}

function blankLastModified(body: string): string {
  return body.replace(/("last_modified": ")[^"]*"/g, '$1"').replace(/<last_modified>[^<]*</g, '<last_modified><');
}

test('UTF-8 names: object verbs and listings as Swift 2.30 answers them', async (t) => {
  const { cluster } = t.context;
  const user = await cluster.auth();
  const call = swiftCaller(user, { timeoutMs: 30_000 });
  const container = `/${quote(CONTAINER)}`;
  t.is((await call('PUT', container)).status, 201);
  for (const name of CONTAINERS) t.is((await call('PUT', `/${quote(name)}`)).status, 201, name);
  for (const name of NAMES) {
    const put = await call('PUT', `${container}/${quote(name)}`, { 'Content-Type': 'text/plain' }, name);
    t.is(put.status, 201, JSON.stringify(name));
  }
  for (const name of NAMES) {
    const get = await call('GET', `${container}/${quote(name)}`);
    t.is(get.status, 200, JSON.stringify(name));
    t.is(get.body, name);
    const head = await call('HEAD', `${container}/${quote(name)}`);
    t.is(head.headers.get('content-length'), String(Buffer.byteLength(name)));
  }

  for (const [query, lines] of SWIFT_CONTAINER_LISTINGS) {
    const listing = await call('GET', `${container}?${query}`);
    t.is(listing.status, 200, query);
    t.is(blankLastModified(listing.body), lines.join(''), query);
  }
  for (const [format, lines] of SWIFT_ACCOUNT_LISTINGS) {
    const listing = await call('GET', `?prefix=utf8-&format=${format}`);
    t.is(blankLastModified(listing.body), lines.join(''), format);
  }

  // Not UTF-8 (a lone byte, a cut sequence, an encoded surrogate, an overlong form) or a NUL.
  for (const bad of ['%FF', '%C3%28', '%ED%A0%80', '%C0%AF', 'a%00b']) {
    for (const path of [`${container}/${bad}`, `/${bad}`, `/${bad}/o`]) {
      for (const method of ['PUT', 'GET', 'HEAD', 'POST', 'DELETE']) {
        const refused = await call(method, path, method === 'PUT' ? { 'Content-Length': '0' } : {});
        t.is(refused.status, 412, `${method} ${path}`);
        if (method !== 'HEAD') t.is(refused.body, 'Invalid UTF8 or contains NULL');
      }
    }
  }
  const badMarker = await call('GET', `${container}?marker=%FF`);
  t.is(badMarker.status, 400);
  t.is(badMarker.body, '"marker" parameter not valid UTF-8');
  t.is((await call('GET', `?prefix=%C3`)).body, '"prefix" parameter not valid UTF-8');

  // The same names through the S3 API (the same listing rows); names that are not UTF-8 refused.
  const s3 = new S3Client({
    endpoint: cluster.proxyUrl,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'test:tester', secretAccessKey: 'testing' },
    maxAttempts: 1,
  });
  try {
    const keys = ['été/中文 😀.txt', 'été/a+b&c<d>"\'.txt', 'été/\uff5e', 'été/\ufffd'];
    t.is((await call('PUT', '/s3-utf8')).status, 201);
    for (const key of keys) await s3.send(new PutObjectCommand({ Bucket: 's3-utf8', Key: key, Body: key }));
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: 's3-utf8', Prefix: 'été/' }));
    // UTF-8 byte order after 'été/': 'a' < '中' (E4) < U+FF5E (EF BD) < U+FFFD (EF BF).
    t.deepEqual(
      (listed.Contents ?? []).map((entry) => entry.Key),
      ['été/a+b&c<d>"\'.txt', 'été/中文 😀.txt', 'été/\uff5e', 'été/\ufffd'],
    );
    const got = await s3.send(new GetObjectCommand({ Bucket: 's3-utf8', Key: 'été/中文 😀.txt' }));
    t.is(await got.Body?.transformToString(), 'été/中文 😀.txt');
    for (const bad of ['/s3-utf8/%FF', '/s3-utf8/a%00b', '/s3-utf8/%ED%A0%80']) {
      for (const method of ['PUT', 'GET']) {
        const refused = await signedS3(cluster.proxyUrl, method, bad);
        t.is(refused.status, 400, `${method} ${bad}`);
        t.regex(refused.body, /<Code>InvalidURI<\/Code>/);
      }
    }
    for (const key of keys) t.is((await call('DELETE', `/s3-utf8/${quote(key)}`)).status, 204);
    t.is((await call('DELETE', '/s3-utf8')).status, 204);
  } finally {
    s3.destroy();
  }

  for (const name of NAMES)
    t.is((await call('DELETE', `${container}/${quote(name)}`)).status, 204, JSON.stringify(name));
  t.is((await call('GET', container)).status, 204);
  t.is((await call('DELETE', container)).status, 204);
});
