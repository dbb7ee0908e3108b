/**
 * Access to the shared SIPREC samples (never copied into the repository): raw bytes, and
 * each INVITE split into its Content-Type and body the way the SIP layer hands them over.
 */
import { readFileSync, readdirSync } from 'node:fs';

export const SAMPLES_DIR = new URL('../../../../shared/siprec-samples/', import.meta.url);

/** Boundaries of the `.body` files, from SOURCES.md. */
export const BODY_BOUNDARIES: Readonly<Record<string, string>> = {
  'drachtio-acme-oracle-sbc.body': 'unique-boundary-1',
  'drachtio-avaya-sbce-style.body': 'foobar',
  'drachtio-broadworks-mangled.body': 'UniqueBroadWorksBoundary',
  'drachtio-cisco-cube.body': 'uniqueBoundary',
  'drachtio-cisco-inactive.body': 'uniqueBoundary',
  'drachtio-opensips-connectel.body': 'OSS-unique-boundary-42',
  'drachtio-procomm-sems.body': '2CD2A2E9',
};

export function sampleNames(ext: '.sip' | '.body' | '.xml'): string[] {
  return readdirSync(SAMPLES_DIR).filter((f) => f.endsWith(ext)).sort();
}

export function readSample(name: string): Buffer {
  return readFileSync(new URL(name, SAMPLES_DIR));
}

export interface SampleInvite {
  /** Header names lower-case, folded lines joined. */
  headers: Record<string, string>;
  contentType: string;
  body: Buffer;
}

/** A `.sip` sample split at the blank line, or a `.body` sample with its boundary. */
export function sampleInvite(name: string): SampleInvite {
  const raw = readSample(name);
  if (name.endsWith('.body')) {
    const boundary = BODY_BOUNDARIES[name];
    if (boundary === undefined) throw new Error(`no boundary known for ${name}`);
    const contentType = `multipart/mixed;boundary=${boundary}`;
    return { headers: { 'content-type': contentType }, contentType, body: raw };
  }
  const split = raw.indexOf('\r\n\r\n');
  if (split < 0) throw new Error(`${name}: no blank line after the headers`);
  const head = raw.toString('utf8', 0, split).replace(/\r\n[ \t]+/g, ' ');
  const headers: Record<string, string> = {};
  for (const line of head.split('\r\n').slice(1)) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { headers, contentType: headers['content-type'] ?? '', body: raw.subarray(split + 4) };
}
