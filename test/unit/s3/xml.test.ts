// The XML builder escapes and namespaces; the parser reads S3's request documents and refuses DOCTYPE.
import test from 'ava';
import { S3Errors, s3ErrorXml } from '../../../proxy/s3/errors.js';
import { childElements, childText, parseXml, XmlParseError, xmlDocument, xmlElement } from '../../../proxy/s3/xml.js';

test('builder escapes text and sets the S3 namespace', (t) => {
  const doc = xmlDocument(
    xmlElement('ListBucketResult', [xmlElement('Name', 'a&b<c>'), undefined, xmlElement('MaxKeys', 1000)]),
  );
  t.is(
    doc,
    '<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>a&amp;b&lt;c&gt;</Name><MaxKeys>1000</MaxKeys></ListBucketResult>',
  );
});

test('error document has Code, Message, Resource, RequestId', (t) => {
  const xml = s3ErrorXml(S3Errors.noSuchKey('k'), '/b/k', 'tx1');
  const root = parseXml(xml);
  t.is(root.name, 'Error');
  t.is(childText(root, 'Code'), 'NoSuchKey');
  t.is(childText(root, 'Message'), 'The specified key does not exist.');
  t.is(childText(root, 'Resource'), '/b/k');
  t.is(childText(root, 'RequestId'), 'tx1');
});

test('parser reads CompleteMultipartUpload with namespace and entities', (t) => {
  const root = parseXml(
    '<?xml version="1.0" encoding="UTF-8"?>\n<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Part><PartNumber>1</PartNumber><ETag>&quot;abc&quot;</ETag></Part><Part><PartNumber>2</PartNumber><ETag>"def"</ETag></Part></CompleteMultipartUpload>',
  );
  const parts = childElements(root, 'Part');
  t.is(parts.length, 2);
  t.is(childText(parts[0]!, 'ETag'), '"abc"');
  t.is(childText(parts[1]!, 'PartNumber'), '2');
});

test('parser refuses DOCTYPE, mismatched tags and junk', (t) => {
  t.throws(() => parseXml('<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'), { instanceOf: XmlParseError });
  t.throws(() => parseXml('<a><b></a></b>'), { instanceOf: XmlParseError });
  t.throws(() => parseXml('not xml'), { instanceOf: XmlParseError });
  t.throws(() => parseXml('<a></a><b></b>'), { instanceOf: XmlParseError });
});
