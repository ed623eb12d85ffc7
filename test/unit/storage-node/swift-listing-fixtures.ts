/**
 * Listing bodies written by Swift 2.30's own code (swift.common.middleware.listing_formats and
 * Python's json.dumps), generated once with Debian's python3-swift; the formats must match them
 * byte for byte.
 */
export const SWIFT_LISTING_FIXTURES = {
  objects: [
    {
      subdir: 'a/&<>"',
    },
    {
      bytes: 3,
      hash: 'h',
      name: 'o&<>"\'é😀\t',
      content_type: 't/p',
      last_modified: '2023-11-14T22:13:20.123450',
    },
  ],
  accounts: [
    {
      subdir: 'a/',
    },
    {
      name: 'c1é',
      count: 1,
      bytes: 2,
      last_modified: '2023-11-14T22:13:20.123450',
    },
  ],
  objectJson:
    '[{"subdir": "a/&<>\\""}, {"bytes": 3, "hash": "h", "name": "o&<>\\"\'\\u00e9\\ud83d\\ude00\\t\\u007f", "content_type": "t/p", "last_modified": "2023-11-14T22:13:20.123450"}]',
  objectXml:
    '<?xml version="1.0" encoding="UTF-8"?>\n<container name="c&quot;é&#10;"><subdir name="a/&amp;&lt;&gt;&quot;"><name>a/&amp;&lt;&gt;"</name></subdir><object><name>o&amp;&lt;&gt;"\'é😀\t</name><hash>h</hash><bytes>3</bytes><content_type>t/p</content_type><last_modified>2023-11-14T22:13:20.123450</last_modified></object></container>',
  objectXmlEmpty: '<?xml version="1.0" encoding="UTF-8"?>\n<container name="c" />',
  objectText: 'a/&<>"\no&<>"\'é😀\t\n',
  accountJson:
    '[{"subdir": "a/"}, {"name": "c1\\u00e9", "count": 1, "bytes": 2, "last_modified": "2023-11-14T22:13:20.123450"}]',
  accountXml:
    '<?xml version="1.0" encoding="UTF-8"?>\n<account name="AUTH_a">\n<subdir name="a/" />\n<container><name>c1é</name><count>1</count><bytes>2</bytes><last_modified>2023-11-14T22:13:20.123450</last_modified></container>\n</account>',
  accountXmlEmpty: '<?xml version="1.0" encoding="UTF-8"?>\n<account name="AUTH_a">\n</account>',
} as const;
