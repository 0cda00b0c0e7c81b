/**
 * A small, strict-enough XML reader for what libvirt prints (`virsh dumpxml`, `vol-dumpxml`,
 * `net-dhcp-leases` is text): elements, attributes, text, comments, CDATA, the XML declaration.
 * No DTDs and no external entities (so nothing to resolve). Namespaced names are kept as written
 * (`kumo:instance`); `nsUri()` resolves a prefix through the in-scope xmlns declarations.
 */
import { InvalidInputError } from '../../core/errors.js';

export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  /** Concatenated text directly inside this element (not its children's). */
  text: string;
  parent?: XmlElement;
}

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decode(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);/g, (m, e: string) => {
    if (e.startsWith('#x')) return String.fromCodePoint(parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(parseInt(e.slice(1), 10));
    return ENTITIES[e] ?? m;
  });
}

function bad(msg: string, at: number): never {
  throw new InvalidInputError('XML_INVALID', `cannot read XML: ${msg} at offset ${at}`, { hint: 'this is XML that libvirt printed; run with --debug to see it' });
}

/** Parse a document and return its root element. */
export function parseXml(src: string): XmlElement {
  let i = 0;
  const root: XmlElement = { name: '#document', attrs: {}, children: [], text: '' };
  let cur = root;
  const nameRe = /[A-Za-z_:][-A-Za-z0-9_:.]*/y;
  while (i < src.length) {
    const lt = src.indexOf('<', i);
    if (lt < 0) {
      cur.text += decode(src.slice(i));
      break;
    }
    if (lt > i) cur.text += decode(src.slice(i, lt));
    i = lt;
    if (src.startsWith('<!--', i)) {
      const e = src.indexOf('-->', i + 4);
      if (e < 0) bad('unterminated comment', i);
      i = e + 3;
    } else if (src.startsWith('<![CDATA[', i)) {
      const e = src.indexOf(']]>', i + 9);
      if (e < 0) bad('unterminated CDATA', i);
      cur.text += src.slice(i + 9, e);
      i = e + 3;
    } else if (src.startsWith('<?', i)) {
      const e = src.indexOf('?>', i + 2);
      if (e < 0) bad('unterminated declaration', i);
      i = e + 2;
    } else if (src.startsWith('<!', i)) {
      bad('DTDs are not accepted', i);
    } else if (src.startsWith('</', i)) {
      nameRe.lastIndex = i + 2;
      const m = nameRe.exec(src);
      if (!m) bad('bad end tag', i);
      if (m[0] !== cur.name) bad(`end tag </${m[0]}> does not match <${cur.name}>`, i);
      const gt = src.indexOf('>', nameRe.lastIndex);
      if (gt < 0) bad('unterminated end tag', i);
      i = gt + 1;
      cur = cur.parent!;
    } else {
      nameRe.lastIndex = i + 1;
      const m = nameRe.exec(src);
      if (!m) bad('bad start tag', i);
      const el: XmlElement = { name: m[0], attrs: {}, children: [], text: '', parent: cur };
      i = nameRe.lastIndex;
      const attrRe = /\s*([A-Za-z_:][-A-Za-z0-9_:.]*)\s*=\s*("([^"]*)"|'([^']*)')/y;
      for (;;) {
        attrRe.lastIndex = i;
        const a = attrRe.exec(src);
        if (!a) break;
        el.attrs[a[1]!] = decode(a[3] ?? a[4] ?? '');
        i = attrRe.lastIndex;
      }
      while (/\s/.test(src[i] ?? '')) i++;
      cur.children.push(el);
      if (src.startsWith('/>', i)) i += 2;
      else if (src[i] === '>') {
        i += 1;
        cur = el;
      } else bad(`unexpected '${src[i] ?? 'end of input'}' in <${el.name}>`, i);
    }
  }
  if (cur !== root) bad(`<${cur.name}> is not closed`, src.length);
  const top = root.children[0];
  if (!top || root.children.length !== 1) bad('a document has exactly one root element', 0);
  top.parent = undefined;
  return top;
}

/** The first child named `name`. */
export function child(el: XmlElement | undefined, name: string): XmlElement | undefined {
  return el?.children.find((c) => c.name === name);
}

/** All children named `name`. */
export function childrenNamed(el: XmlElement | undefined, name: string): XmlElement[] {
  return el ? el.children.filter((c) => c.name === name) : [];
}

/** Follow a path of child names: `path(dom, 'os', 'type')`. */
export function path(el: XmlElement | undefined, ...names: string[]): XmlElement | undefined {
  let e = el;
  for (const n of names) e = child(e, n);
  return e;
}

/** The namespace URI an element's prefix resolves to (through xmlns declarations in scope). */
export function nsUri(el: XmlElement): string | undefined {
  const i = el.name.indexOf(':');
  const attr = i < 0 ? 'xmlns' : `xmlns:${el.name.slice(0, i)}`;
  for (let e: XmlElement | undefined = el; e; e = e.parent) if (attr in e.attrs) return e.attrs[attr];
  return undefined;
}

/** The local part of a (possibly prefixed) name. */
export function localName(el: XmlElement): string {
  const i = el.name.indexOf(':');
  return i < 0 ? el.name : el.name.slice(i + 1);
}
