/**
 * The user part of an address of record, as recording clients actually write it.
 *
 * SIPREC metadata and SIP headers carry the same party in many shapes: `sip:` and `sips:`
 * URIs with `;user=phone`, `tel:` numbers with visual separators, bare numbers, `user@host`
 * without a scheme, name-addr with a display name, and BroadWorks' `sip:8638254725` where
 * the "host" is really a number. The result is the clear number or extension; callers keep
 * it in memory only (it is personal data: never log it, never store it unmasked).
 */

const MAX_AOR_CHARS = 1024;

/** Separators RFC 3966 allows inside a phone number for readability. */
const VISUAL_SEPARATORS = /[-.()\s]/g;
const DIALLABLE = /^\+?[0-9*#]+$/;
/** A host part that is in fact a number: digits with an optional + and separators, no dots. */
const NUMERIC_HOST = /^\+?[0-9][0-9\-()]*$/;

export function userOfAor(aor: string): string | undefined {
  if (aor.length > MAX_AOR_CHARS) return undefined;
  let s = aor.trim();
  // name-addr: `"Display" <sip:user@host>;tag=x` -- only what is inside the brackets counts.
  const lt = s.indexOf('<');
  if (lt >= 0) {
    const gt = s.indexOf('>', lt + 1);
    if (gt < 0) return undefined;
    s = s.slice(lt + 1, gt).trim();
  }
  if (s === '') return undefined;

  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(s);
  let user: string;
  if (scheme && /^(sip|sips|tel)$/i.test(scheme[1]!)) {
    const rest = s.slice(scheme[0].length);
    if (scheme[1]!.toLowerCase() === 'tel') {
      user = cutParams(rest);
    } else {
      const at = rest.lastIndexOf('@');
      if (at >= 0) {
        user = cutParams(rest.slice(0, at));
      } else {
        // `sip:8638254725` (BroadWorks) names a number, `sip:10.0.0.20:5060` names a host.
        const host = cutParams(rest);
        if (!NUMERIC_HOST.test(host)) return undefined;
        user = host;
      }
    }
  } else if (scheme && !/^\+?[0-9]/.test(s) && !s.includes('@')) {
    // Some other URI scheme (urn:, mailto: without @...): nothing we can call a user.
    return undefined;
  } else {
    // No scheme: `Extension-016190619@speechpath.ie` or a bare `7602922410`.
    const at = s.lastIndexOf('@');
    user = cutParams(at >= 0 ? s.slice(0, at) : s);
  }

  user = percentDecode(user).trim();
  if (user === '') return undefined;
  const compact = user.replace(VISUAL_SEPARATORS, '');
  return DIALLABLE.test(compact) ? compact : user;
}

/** Drops `;params` and `?headers` from a URI user or host part. */
function cutParams(s: string): string {
  let end = s.length;
  const semi = s.indexOf(';');
  if (semi >= 0) end = semi;
  const q = s.indexOf('?');
  if (q >= 0 && q < end) end = q;
  return s.slice(0, end);
}

function percentDecode(s: string): string {
  if (!s.includes('%')) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
