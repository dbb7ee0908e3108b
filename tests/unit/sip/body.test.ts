import { describe, it, expect } from 'vitest';
import { parseInviteBody, parseSessionBody } from '../../../src/sip/body.js';
import { ProtocolError } from '../../../src/errors.js';
import { sampleInvite, sampleNames } from './samples.js';

const crlf = (s: string) => Buffer.from(s.replace(/\n/g, '\r\n'));
const SDP = 'v=0\no=- 1 1 IN IP4 10.0.0.10\ns=-\nc=IN IP4 10.0.0.10\nt=0 0\nm=audio 16384 RTP/AVP 0\na=label:1\na=sendonly\n';
const META = '<recording xmlns="urn:ietf:params:xml:ns:recording:1"><datamode>complete</datamode>' +
  '<participant participant_id="p1"><nameID aor="sip:1001@pbx"/></participant>' +
  '<stream stream_id="s1" session_id="x"><label>1</label></stream>' +
  '<participantstreamassoc participant_id="p1"><send>s1</send></participantstreamassoc></recording>\n';

function failure(fn: () => unknown): ProtocolError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ProtocolError);
    return e as ProtocolError;
  }
  throw new Error('expected a ProtocolError');
}

/** What each sample must give: m-line labels, whether metadata is present, skipped parts. */
const EXPECTED: Record<string, { labels: (string | undefined)[]; metadata: boolean; participants?: number; ignored?: string[] }> = {
  'drachtio-acme-oracle-sbc.body': { labels: ['16777227', '16777228'], metadata: true, participants: 2 },
  'drachtio-avaya-sbce-style.body': { labels: ['10', '20'], metadata: true, participants: 2 },
  'drachtio-cisco-cube.body': { labels: ['1', '2'], metadata: true, participants: 2, ignored: ['application/gtd'] },
  'drachtio-cisco-inactive.body': { labels: ['1', '2'], metadata: true, participants: 2 },
  'drachtio-opensips-connectel.body': { labels: ['1', '2'], metadata: true, participants: 2 },
  'drachtio-procomm-sems.body': { labels: ['a_leg', 'b_leg'], metadata: true, participants: 2 },
  'miarec-avaya-sbce-invite.sip': { labels: ['10'], metadata: true, participants: 2 },
  'miarec-broadworks-invite.sip': { labels: ['1'], metadata: true, participants: 2 },
  'miarec-broadworks-reinvite-pause.sip': { labels: ['1'], metadata: false },
  'miarec-metaswitch-invite.sip': { labels: ['1'], metadata: true, participants: 2 },
  'miarec-oracle-sbc-invite.sip': { labels: ['16777227'], metadata: true, participants: 2 },
  'rfc7866-invite-example.sip': { labels: ['96', '97', '98', '99'], metadata: true, participants: 2 },
  'rfc7866-reinvite-hold-partial.sip': { labels: ['96', '97', '98', '99'], metadata: true, participants: 2 },
};

describe('parseInviteBody on every sample', () => {
  const names = [...sampleNames('.sip'), ...sampleNames('.body')].filter((n) => n !== 'drachtio-broadworks-mangled.body');

  it('covers every INVITE sample in the shared folder', () => {
    expect(names.sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  it.each(names)('%s', (name) => {
    const inv = sampleInvite(name);
    const body = parseInviteBody(inv.contentType, inv.body);
    const want = EXPECTED[name]!;
    expect(body.sdp.media.map((m) => m.label)).toEqual(want.labels);
    expect(body.metadata !== undefined).toBe(want.metadata);
    if (want.participants !== undefined) expect(body.metadata!.participants).toHaveLength(want.participants);
    expect(body.ignoredParts).toEqual(want.ignored ?? []);
  });

  it('keeps the Cisco GUID from the GTD part as an opaque id', () => {
    const inv = sampleInvite('drachtio-cisco-cube.body');
    expect(parseInviteBody(inv.contentType, inv.body).metadata!.extensions).toEqual({ 'cisco.guid': '91036128574411e789f9d0ff56c3c658' });
  });

  it('rejects the damaged BroadWorks body with a clean 400, not a crash or a silent recording', () => {
    const inv = sampleInvite('drachtio-broadworks-mangled.body');
    const e = failure(() => parseInviteBody(inv.contentType, inv.body));
    expect(e.status).toBe(400);
    expect(e.code).toBe('TALLENNE_SIP_MALFORMED');
    expect(e.message).toMatch(/application\/ \+xml/);
  });

  it('rejects the same body when only the Content-Type is repaired: the XML has no tags left', () => {
    const inv = sampleInvite('drachtio-broadworks-mangled.body');
    const repaired = Buffer.from(inv.body.toString('latin1').replace('application/ +xml', 'application/rs-metadata+xml'), 'latin1');
    const e = failure(() => parseInviteBody(inv.contentType, repaired));
    expect(e.status).toBe(400);
    expect(e.code).toBe('TALLENNE_METADATA_MALFORMED');
  });
});

describe('parseInviteBody shapes', () => {
  it('metadata before the SDP, rs-metadata without +xml, upper-case SDP type', () => {
    const body = crlf(`--b\nContent-Type: application/rs-metadata\n\n${META}--b\nContent-Type: Application/SDP\n\n${SDP}--b--\n`);
    const out = parseInviteBody('multipart/mixed; boundary="b"', body);
    expect(out.sdp.media[0]!.label).toBe('1');
    expect(out.metadata!.participants[0]!.aor).toBe('sip:1001@pbx');
  });

  it('SDP alone', () => {
    const out = parseInviteBody('application/sdp', crlf(SDP));
    expect(out.metadata).toBeUndefined();
    expect(out.sdp.media).toHaveLength(1);
  });

  it('an INVITE whose multipart has no SDP is a 400: no offer', () => {
    const e = failure(() => parseInviteBody('multipart/mixed;boundary=b', crlf(`--b\nContent-Type: application/rs-metadata+xml\n\n${META}--b--\n`)));
    expect([e.status, e.code]).toEqual([400, 'TALLENNE_NO_OFFER']);
    expect(e.message).toMatch(/no application\/sdp/);
    const alone = failure(() => parseInviteBody('application/rs-metadata+xml', crlf(META)));
    expect([alone.status, alone.code]).toEqual([400, 'TALLENNE_NO_OFFER']);
  });

  it('two SDP parts or two metadata parts are a 400', () => {
    const two = crlf(`--b\nContent-Type: application/sdp\n\n${SDP}--b\nContent-Type: application/sdp\n\n${SDP}--b--\n`);
    expect(failure(() => parseInviteBody('multipart/mixed;boundary=b', two)).status).toBe(400);
    const twoMd = crlf(`--b\nContent-Type: application/sdp\n\n${SDP}--b\nContent-Type: application/rs-metadata\n\n${META}--b\nContent-Type: application/rs-metadata\n\n${META}--b--\n`);
    expect(failure(() => parseInviteBody('multipart/mixed;boundary=b', twoMd)).status).toBe(400);
  });

  it('a recording-session part of an unknown type is refused', () => {
    const body = crlf(`--b\nContent-Type: application/sdp\n\n${SDP}--b\nContent-Type: application/xml\nContent-Disposition: recording-session\n\n${META}--b--\n`);
    const e = failure(() => parseInviteBody('multipart/mixed;boundary=b', body));
    expect([e.status, e.code]).toEqual([400, 'TALLENNE_METADATA_MALFORMED']);
  });

  it('other body types are 415, an empty body or missing Content-Type 400', () => {
    const e = failure(() => parseInviteBody('text/plain', crlf('hi')));
    expect([e.status, e.code]).toEqual([415, 'TALLENNE_UNSUPPORTED_MEDIA_TYPE']);
    expect(failure(() => parseInviteBody('application/sdp', Buffer.alloc(0))).status).toBe(400);
    expect(failure(() => parseInviteBody(undefined, crlf(SDP))).status).toBe(400);
  });
});

describe('parseSessionBody (in-dialog requests)', () => {
  it.each(['application/rs-metadata', 'application/rs-metadata+xml', 'Application/RS-Metadata+XML; charset=utf-8'])('metadata alone as %s', (type) => {
    const out = parseSessionBody(type, crlf(META));
    expect(out.sdp).toBeUndefined();
    expect(out.metadata!.participants.map((p) => p.id)).toEqual(['p1']);
  });

  it('the BroadWorks root alone', () => {
    const bw = '<recording_metadata xmlns="urn:ietf:params:xml:ns:siprec"><dataMode>partial</dataMode>'
      + '<participant id="u1"><aor>sip:1001@pbx</aor><send><id>s1</id></send></participant></recording_metadata>';
    const out = parseSessionBody('application/rs-metadata+xml', Buffer.from(bw));
    expect([out.metadata!.dialect, out.metadata!.dataMode]).toEqual(['broadworks', 'partial']);
  });

  it('a multipart with metadata and no SDP, or SDP and metadata', () => {
    expect(parseSessionBody('multipart/mixed;boundary=b', crlf(`--b\nContent-Type: application/rs-metadata+xml\nContent-Disposition: recording-session\n\n${META}--b--\n`)).sdp).toBeUndefined();
    const both = parseSessionBody('multipart/mixed;boundary=b', crlf(`--b\nContent-Type: application/sdp\n\n${SDP}--b\nContent-Type: application/rs-metadata\n\n${META}--b--\n`));
    expect([both.sdp!.media.length, both.metadata!.participants.length]).toEqual([1, 1]);
  });

  it('refuses other types with 415, a multipart with neither part or damaged metadata with 400', () => {
    const e = failure(() => parseSessionBody('application/xml', crlf(META)));
    expect([e.status, e.code]).toEqual([415, 'TALLENNE_UNSUPPORTED_MEDIA_TYPE']);
    const none = failure(() => parseSessionBody('multipart/mixed;boundary=b', crlf('--b\nContent-Type: text/plain\n\nhi\n--b--\n')));
    expect(none.status).toBe(400);
    const bad = failure(() => parseSessionBody('application/rs-metadata+xml', crlf('<recording xmlns="urn:ietf:params:xml:ns:recording:1"><participant')));
    expect([bad.status, bad.code]).toEqual([400, 'TALLENNE_METADATA_MALFORMED']);
  });
});
