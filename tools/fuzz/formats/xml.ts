/**
 * rs-metadata documents (RFC 7865 and the vendor dialects) mutated as XML: elements nested
 * deep or repeated many times, DOCTYPE and entity tricks, namespace prefixes bound, rebound
 * and unbound, broken attributes, CDATA, comments, processing instructions, character
 * references, and the fields the parser reads (ids, dataMode, send/recv, vendor extensions).
 */
import type { Rng } from '../rng.js';
import { mutateNumber } from '../mutate.js';

const ENTITY_TRICKS = [
  '<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>',
  '<!DOCTYPE r SYSTEM "file:///etc/passwd">',
  '<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/hostname">]>',
  '<!DOCTYPE r [<!ENTITY % p "<!ENTITY q \'z\'>"> %p;]>',
  '<!ENTITY y "y">',
  '<!DOCTYPE',
  '<![CDATA[ <participant> ]]>',
  '<![CDATA[ unterminated',
  '<!-- comment -- with -- dashes -->',
  '<!-- unterminated',
  '<?xml version="1.0" encoding="UTF-16"?>',
  '<?pi data?>',
  '<?unterminated',
  '\uFEFF',
];

const TEXT_TRICKS = ['&amp;', '&lt;', '&#0;', '&#x0;', '&#1114112;', '&#xD800;', '&#65;', '&unknown;', '&', '&#;', '&c;', '&x;', ']]>', '\u0000', '\uFFFE', '\uD800', 'é', '+358401234567', 'sip:+358401234567@carrier.example'];

const ELEMENTS = ['participant', 'stream', 'session', 'group', 'send', 'recv', 'nameID', 'aor', 'name', 'dataMode', 'label', 'participantstreamassoc', 'participantsessionassoc', 'sipSessionID', 'associate-time', 'extensiondata', 'callingParty', 'ucid', 'mode', 'id', 'callType', 'termCall', 'callingPartyNumber', 'BroadWorksRecordingMetadata', 'MetaswitchRecordingMetadata', 'x:participant', 'recording'];
const NAMESPACES = ['urn:ietf:params:xml:ns:recording:1', 'urn:ietf:params:xml:ns:recording', 'urn:ietf:params:xml:ns:siprec', 'http://acmepacket.com/siprec/extensiondata', '', 'urn:x'];

function element(rng: Rng, depth = 0): string {
  const name = rng.pick(ELEMENTS);
  const attrs = rng.chance(0.5)
    ? ` ${rng.pick(['participant_id', 'stream_id', 'session_id', 'id', 'aor', 'xmlns', 'xmlns:x', 'x:id', 'group_id'])}=${rng.pick(['"p1"', "'s1'", '""', 'unquoted', '"a"b"', `"${rng.pick(NAMESPACES)}"`, '"&amp;"'])}`
    : '';
  if (depth > 2 || rng.chance(0.4)) return rng.chance(0.2) ? `<${name}${attrs}/>` : `<${name}${attrs}>${rng.pick(TEXT_TRICKS)}</${name}>`;
  let inner = '';
  for (let i = rng.int(4); i > 0; i--) inner += element(rng, depth + 1);
  return `<${name}${attrs}>${inner}</${name}>`;
}

/** Positions just after each start tag, where content can go. */
function insertionPoints(xml: string): number[] {
  const out: number[] = [];
  for (const m of xml.matchAll(/<[A-Za-z][^<>]*>/g)) if (!m[0].endsWith('/>')) out.push(m.index! + m[0].length);
  return out;
}

function insertAt(rng: Rng, xml: string, text: string): string {
  const points = insertionPoints(xml);
  const at = points.length > 0 ? rng.pick(points) : rng.int(xml.length + 1);
  return xml.slice(0, at) + text + xml.slice(at);
}

export function mutateXml(rng: Rng, xml: string): string {
  let out = xml;
  for (let r = rng.range(1, 3); r > 0; r--) {
    switch (rng.int(10)) {
      case 0: { // nested deep
        const n = rng.pick([20, 31, 32, 33, 100, 100, 100, 3000]);
        const tag = rng.pick(['x', 'participant', 'a:b']);
        out = insertAt(rng, out, `<${tag}>`.repeat(n) + `</${tag}>`.repeat(rng.chance(0.9) ? n : n - 1));
        break;
      }
      case 1: { // many elements
        const n = rng.pick([64, 65, 100, 100, 100, 100, 4097]);
        out = insertAt(rng, out, rng.pick(['<participant participant_id="p"/>', '<stream stream_id="s"/>', '<x/>']).replace(/"p"|"s"/, () => `"${rng.int(1000)}"`).repeat(n));
        break;
      }
      case 2: { // many distinct participants or streams
        const kind = rng.pick(['participant participant_id', 'stream stream_id', 'participantstreamassoc participant_id']);
        out = insertAt(rng, out, Array.from({ length: rng.pick([63, 64, 65, 70]) }, (_, i) => `<${kind}="id${i}"/>`).join(''));
        break;
      }
      case 3: { // declarations and sections
        const trick = rng.pick(ENTITY_TRICKS);
        out = rng.chance(0.5) ? trick + out : insertAt(rng, out, trick);
        if (trick.includes('ENTITY')) out = insertAt(rng, out, rng.pick(['&a;', '&c;', '&x;', '%p;']));
        break;
      }
      case 4: // text tricks
        out = insertAt(rng, out, rng.pick(TEXT_TRICKS));
        break;
      case 5: // random well-formed subtree
        out = insertAt(rng, out, element(rng));
        break;
      case 6: { // namespaces: rebind or drop a prefix, change the default namespace
        out = rng.chance(0.5)
          ? out.replace(/xmlns(:\w+)?="[^"]*"/, (_m, p: string | undefined) => `xmlns${p ?? ''}="${rng.pick(NAMESPACES)}"`)
          : out.replace(/<(\/?)(\w+):/g, rng.chance(0.5) ? '<$1' : '<$1zz:');
        break;
      }
      case 7: { // cut or duplicate a tag
        const tags = [...out.matchAll(/<\/?[A-Za-z][^<>]*>/g)];
        if (tags.length === 0) break;
        const t = rng.pick(tags);
        out = rng.chance(0.5) ? out.slice(0, t.index) + out.slice(t.index! + t[0].length) : out.slice(0, t.index) + t[0] + out.slice(t.index);
        break;
      }
      case 8: // numbers (times, ids)
        out = mutateNumber(rng, out);
        break;
      default: { // a huge text node or attribute
        out = insertAt(rng, out, rng.pick(['x', '&amp;', ' ']).repeat(rng.pick([1000, 1000, 1000, 20_000, 20_000, 300_000])));
      }
    }
  }
  return out;
}
