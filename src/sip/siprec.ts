/**
 * How a request marks itself as coming from a SIPREC recording client (RFC 7866 §6.1.1):
 * `Require: siprec`, or the `+sip.src` feature tag (some clients write `;src`) on the
 * Contact. A `recording-session` body part is the other mark; the call handler reports
 * that one, as it is the one that reads bodies.
 */
import { allHeaders, parseNameAddr, splitList, tokenList, type SipHeader } from './message.js';

const SRC_TAGS: ReadonlySet<string> = new Set(['+sip.src', 'src']);

export function requestMarksSiprec(headers: readonly SipHeader[]): boolean {
  if (tokenList(headers, 'require').includes('siprec')) return true;
  return allHeaders(headers, 'contact').flatMap(splitList).some(contactMarksSrc);
}

function contactMarksSrc(value: string): boolean {
  let addr;
  try {
    addr = parseNameAddr(value);
  } catch {
    return false;
  }
  if (Object.keys(addr.params).some((p) => SRC_TAGS.has(p))) return true;
  // Some clients put the tag inside the angle brackets, as a URI parameter.
  const uriParams = addr.uri.split('?')[0]!.split(';').slice(1);
  return uriParams.some((p) => SRC_TAGS.has(p.split('=')[0]!.trim().toLowerCase()));
}
