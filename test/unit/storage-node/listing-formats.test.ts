import test from 'ava';
import {
  accountListingJson,
  accountListingXml,
  listingText,
  objectListingJson,
  objectListingXml,
  type AccountListingEntry,
  type ObjectListingEntry,
} from '../../../storage-node/listing/formats.js';
import { bestListingType, parseListingQuery } from '../../../storage-node/listing/query.js';
import { SWIFT_LISTING_FIXTURES as FIXTURES } from './swift-listing-fixtures.js';

const objects = FIXTURES.objects as unknown as ObjectListingEntry[];
const accounts = FIXTURES.accounts as unknown as AccountListingEntry[];

test('object listings are byte-identical to Swift’s JSON, XML and text', (t) => {
  t.is(objectListingJson(objects), FIXTURES.objectJson);
  t.is(objectListingXml('c"é\n', objects), FIXTURES.objectXml);
  t.is(objectListingXml('c', []), FIXTURES.objectXmlEmpty);
  t.is(listingText(objects), FIXTURES.objectText);
  t.is(objectListingJson([]), '[]');
});

test('account listings are byte-identical to Swift’s JSON and XML', (t) => {
  t.is(accountListingJson(accounts), FIXTURES.accountJson);
  t.is(accountListingXml('AUTH_a', accounts), FIXTURES.accountXml);
  t.is(accountListingXml('AUTH_a', []), FIXTURES.accountXmlEmpty);
});

test('listing query: limits, format, Accept, reverse and UTF-8', (t) => {
  const q = parseListingQuery('limit=5&marker=a%2Fb&prefix=&delimiter=%2F&reverse=on&format=JSON', undefined, 10000);
  t.is(q.limit, 5);
  t.is(q.marker, 'a/b');
  t.is(q.prefix, undefined);
  t.is(q.delimiter, '/');
  t.true(q.reverse);
  t.is(q.contentType, 'application/json');
  t.is(parseListingQuery('limit=-3', undefined, 10000).limit, 10000);
  t.is(parseListingQuery('limit=abc', undefined, 10000).limit, 10000);
  t.is(parseListingQuery('limit=0', undefined, 10000).limit, 0);
  t.is(parseListingQuery('format=yaml', undefined, 10000).contentType, 'text/plain');
  t.is(parseListingQuery('prefix=caf%C3%A9+x', undefined, 10000).prefix, 'café x');
  t.throws(() => parseListingQuery('limit=10001', undefined, 10000), { message: 'Maximum limit is 10000' });
  t.throws(() => parseListingQuery('prefix=%FF', undefined, 10000), { message: '"prefix" parameter not valid UTF-8' });
  t.is(bestListingType('application/json'), 'application/json');
  t.is(bestListingType('text/xml'), 'text/xml');
  t.is(bestListingType('application/*'), 'application/json');
  t.is(bestListingType('*/*'), 'text/plain');
  t.is(bestListingType('text/plain;q=0.5, application/xml'), 'application/xml');
  t.is(bestListingType('image/png'), undefined);
  t.is(bestListingType(undefined), 'text/plain');
});
