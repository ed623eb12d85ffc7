/**
 * The XML S3 speaks: a tiny builder for response documents (escaped text, S3's namespace on the
 * root) and a small, bounded parser for the few request documents S3 accepts (CreateBucket
 * configuration, CompleteMultipartUpload, Delete, AccessControlPolicy). The parser keeps
 * elements and text only; it rejects DOCTYPE (no entity expansion) and documents over a size cap.
 */

export const S3_NAMESPACE = 'http://s3.amazonaws.com/doc/2006-03-01/';

export interface XmlElementNode {
  name: string;
  attributes: Record<string, string>;
  children: XmlElementNode[];
  text: string;
}

export type XmlChild = string | XmlElementNode;

export class XmlParseError extends Error {
  readonly code = 'MalformedXML';
}

export function xmlEscape(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** An element; `content` is its text, or its children (undefined children are skipped). */
export function xmlElement(
  name: string,
  content: string | number | boolean | readonly (XmlElementNode | undefined)[] = '',
  attributes: Record<string, string> = {},
): XmlElementNode {
  if (typeof content === 'object') {
    const children = content.filter((c): c is XmlElementNode => c !== undefined);
    return { name, attributes, children, text: '' };
  }
  return { name, attributes, children: [], text: String(content) };
}

function render(node: XmlElementNode, parts: string[]): void {
  let attrs = '';
  for (const [key, value] of Object.entries(node.attributes)) attrs += ` ${key}="${xmlEscape(value)}"`;
  if (node.children.length === 0) {
    parts.push(
      node.text === '' ? `<${node.name}${attrs}/>` : `<${node.name}${attrs}>${xmlEscape(node.text)}</${node.name}>`,
    );
    return;
  }
  parts.push(`<${node.name}${attrs}>`);
  for (const child of node.children) render(child, parts);
  parts.push(`</${node.name}>`);
}

/** The document with its XML declaration; `namespaced` adds S3's xmlns on the root. */
export function xmlDocument(root: XmlElementNode, namespaced = true): string {
  const top = namespaced ? { ...root, attributes: { xmlns: S3_NAMESPACE, ...root.attributes } } : root;
  const parts = ['<?xml version="1.0" encoding="UTF-8"?>\n'];
  render(top, parts);
  return parts.join('');
}

const ENTITIES: Readonly<Record<string, string>> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);/g, (whole, entity: string) => {
    if (entity.startsWith('#x')) return String.fromCodePoint(Number.parseInt(entity.slice(2), 16));
    if (entity.startsWith('#')) return String.fromCodePoint(Number.parseInt(entity.slice(1), 10));
    const decoded = ENTITIES[entity];
    if (decoded === undefined) throw new XmlParseError(`unknown entity ${whole}`);
    return decoded;
  });
}

/** Parses a document into its root element. Namespace prefixes are dropped from names. */
export function parseXml(text: string, maxBytes = 1_048_576): XmlElementNode {
  if (Buffer.byteLength(text) > maxBytes) throw new XmlParseError('document too large');
  const stack: XmlElementNode[] = [];
  let root: XmlElementNode | undefined;
  let index = 0;
  const localName = (name: string): string => name.slice(name.indexOf(':') + 1);
  // Each pass consumes at least one character, so the loop is bounded by the text length.
  while (index < text.length) {
    const open = text.indexOf('<', index);
    const top = stack[stack.length - 1];
    if (open === -1) {
      if (text.slice(index).trim() !== '') throw new XmlParseError('text outside the root element');
      break;
    }
    if (open > index) {
      const raw = text.slice(index, open);
      if (top !== undefined) top.text += decodeEntities(raw);
      else if (raw.trim() !== '') throw new XmlParseError('text outside the root element');
    }
    if (text.startsWith('<?', open)) {
      const end = text.indexOf('?>', open);
      if (end === -1) throw new XmlParseError('unterminated declaration');
      index = end + 2;
    } else if (text.startsWith('<!--', open)) {
      const end = text.indexOf('-->', open);
      if (end === -1) throw new XmlParseError('unterminated comment');
      index = end + 3;
    } else if (text.startsWith('<![CDATA[', open)) {
      const end = text.indexOf(']]>', open);
      if (end === -1 || top === undefined) throw new XmlParseError('bad CDATA');
      top.text += text.slice(open + 9, end);
      index = end + 3;
    } else if (text.startsWith('<!', open)) {
      throw new XmlParseError('DOCTYPE is not allowed');
    } else if (text.startsWith('</', open)) {
      const end = text.indexOf('>', open);
      if (end === -1) throw new XmlParseError('unterminated end tag');
      const name = localName(text.slice(open + 2, end).trim());
      const closing = stack.pop();
      if (closing?.name !== name) throw new XmlParseError(`mismatched end tag ${name}`);
      index = end + 1;
    } else {
      const end = text.indexOf('>', open);
      if (end === -1) throw new XmlParseError('unterminated tag');
      let body = text.slice(open + 1, end);
      const selfClosing = body.endsWith('/');
      if (selfClosing) body = body.slice(0, -1);
      const nameMatch = /^\s*([^\s/>]+)/.exec(body);
      if (nameMatch === null) throw new XmlParseError('bad tag');
      const attributes: Record<string, string> = {};
      const attrRe = /([^\s=]+)\s*=\s*("([^"]*)"|'([^']*)')/g;
      const rest = body.slice(nameMatch[0].length);
      for (let match = attrRe.exec(rest); match !== null; match = attrRe.exec(rest)) {
        attributes[match[1] ?? ''] = decodeEntities(match[3] ?? match[4] ?? '');
      }
      const node: XmlElementNode = { name: localName(nameMatch[1] ?? ''), attributes, children: [], text: '' };
      if (top !== undefined) top.children.push(node);
      else if (root === undefined) root = node;
      else throw new XmlParseError('more than one root element');
      if (!selfClosing) stack.push(node);
      index = end + 1;
    }
  }
  if (root === undefined || stack.length > 0) throw new XmlParseError('incomplete document');
  return root;
}

export function childElements(node: XmlElementNode, name: string): XmlElementNode[] {
  return node.children.filter((child) => child.name === name);
}

export function childText(node: XmlElementNode, name: string): string | undefined {
  return node.children.find((child) => child.name === name)?.text;
}
