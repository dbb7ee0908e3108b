import { describe, it, expect } from 'vitest';
import { labelsSentBy, mergeMetadata, parseRecordingMetadata, type RecordingMetadata } from '../../../src/sip/metadata.js';
import { parseMultipart } from '../../../src/sip/multipart.js';
import { ProtocolError } from '../../../src/errors.js';
import { readSample, sampleInvite } from './samples.js';

/** The rs-metadata part of a sample INVITE, as text. */
function metadataText(name: string): string {
  const inv = sampleInvite(name);
  const part = parseMultipart(inv.contentType, inv.body).find((p) => p.contentType.startsWith('application/rs-metadata'));
  if (part === undefined) throw new Error(`${name} has no metadata part`);
  return part.body.toString('utf8');
}
const md = (name: string): RecordingMetadata =>
  name.endsWith('.xml') ? parseRecordingMetadata(readSample(name).toString('utf8')) : parseRecordingMetadata(metadataText(name));

function rejected(xml: string): ProtocolError {
  try {
    parseRecordingMetadata(xml);
  } catch (e) {
    expect(e).toBeInstanceOf(ProtocolError);
    expect((e as ProtocolError).code).toBe('TALLENNE_METADATA_MALFORMED');
    expect((e as ProtocolError).status).toBe(400);
    return e as ProtocolError;
  }
  throw new Error('expected a ProtocolError');
}

const aors = (m: RecordingMetadata) => m.participants.map((p) => p.aor);
const BOB = 'srfBElmCRp2QB23b7Mpk0w==';
const PAUL = 'zSfPoSvdSDCmU3A3TRDxAw==';

describe('parseRecordingMetadata: RFC 7865', () => {
  it('reads the §8.1 complete snapshot', () => {
    const m = md('rfc7865-8.1-complete.xml');
    expect(m.dataMode).toBe('complete');
    expect(m.dialect).toBe('rfc7865');
    expect(m.sessionId).toBe('hVpd7YQgRW2nD22h7q60JQ==');
    expect(m.groupId).toBe('7+OTCyoxTmqmqyA/1weDAg==');
    expect(m.sipSessionIds).toEqual(['ab30317f1a784dc48ff824d0d3715d86;remote=47755a9de7794ba387653f2099600ef2']);
    expect(m.participants.map((p) => [p.id, p.aor, p.name])).toEqual([
      [BOB, 'sip:bob@biloxi.com', 'Bob'],
      [PAUL, 'sip:Paul@biloxi.com', 'Paul'],
    ]);
    expect(m.streams.map((s) => s.label)).toEqual(['96', '97', '98', '99']);
    expect(labelsSentBy(m, BOB)).toEqual(['97', '96']);
    expect(labelsSentBy(m, PAUL)).toEqual(['98', '99']);
    expect(m.participants[0]!.receives).toEqual(['8zc6e0lYTlWIINA6GR+3ag==', 'EiXGlc+4TruqqoDaNE76ag==']);
    expect(m.participants[0]!.associatedAt).toBe('2010-12-16T23:41:07Z');
    // The foreign call-center/mydata extensions carry a person's URI: not kept.
    expect(m.extensions).toEqual({});
  });

  it('reads the same document inside the RFC 7866 INVITE', () => {
    expect(md('rfc7866-invite-example.sip')).toEqual(md('rfc7865-8.1-complete.xml'));
  });

  it('reads the §8.2 partial update: a participant leaves', () => {
    const m = md('rfc7865-8.2-partial.xml');
    expect(m.dataMode).toBe('partial');
    expect(m.participants).toEqual([{ id: BOB, aor: 'sip:bob@biloxi.com', name: 'Bob', sends: [], receives: [], disassociatedAt: '2010-12-16T23:41:07Z' }]);
    expect(m.sessionId).toBeUndefined();
  });

  it('reads the hold re-INVITE: partial, Bob no longer sends', () => {
    const m = md('rfc7866-reinvite-hold-partial.sip');
    expect(m.dataMode).toBe('partial');
    expect(m.participants.map((p) => [p.id, p.sends.length, p.receives.length, p.streamsDeclared])).toEqual([
      [BOB, 0, 2, true],
      [PAUL, 2, 0, true],
    ]);
  });

  it('accepts any namespace prefix', () => {
    const plain = readSample('rfc7865-8.1-complete.xml').toString('utf8');
    const prefixed = plain
      .replace('<recording xmlns="urn:ietf:params:xml:ns:recording:1">', '<tns:recording xmlns:tns="urn:ietf:params:xml:ns:recording:1">')
      .replace(/<(\/?)(datamode|group|session|participant|stream|sessionrecordingassoc|participantsessionassoc|participantstreamassoc|nameID|name|label|send|recv|sipSessionID|group-ref|associate-time|recording)\b/g, '<$1tns:$2')
      .replace(/ (participant_id|session_id|stream_id|group_id)=/g, ' tns:$1=');
    expect(prefixed).toContain('<tns:participantstreamassoc');
    const m = parseRecordingMetadata(prefixed);
    expect(m.dialect).toBe('rfc7865');
    expect(aors(m)).toEqual(['sip:bob@biloxi.com', 'sip:Paul@biloxi.com']);
    expect(labelsSentBy(m, PAUL)).toEqual(['98', '99']);
  });
});

describe('parseRecordingMetadata: vendor dialects', () => {
  it('Acme/Oracle: draft namespace, id/session attributes, <send> inside participant, callingParty', () => {
    const m = md('drachtio-acme-oracle-sbc.body');
    expect(m.dialect).toBe('draft');
    expect(m.sessionId).toBe('AavRXwIIQj1Q39eJulTipQ==');
    expect(aors(m)).toEqual(['sip:9000@192.168.50.102', 'sip:1002@192.168.50.10']);
    expect(m.participants.map((p) => p.callingParty)).toEqual([true, false]);
    expect(labelsSentBy(m, 'fSD3PFErSjNTHLDiXCELjw==')).toEqual(['16777227']);
    expect(labelsSentBy(m, 'EbccNyypRlFYXTm4iw8hxw==')).toEqual(['16777228']);
    expect(m.streams.map((s) => [s.label, s.mode, s.sessionId])).toEqual([
      ['16777227', 'separate', 'AavRXwIIQj1Q39eJulTipQ=='],
      ['16777228', 'separate', 'AavRXwIIQj1Q39eJulTipQ=='],
    ]);
  });

  it('Oracle replay: entities decoded, realm kept, numbers in request-uri/PAI not kept', () => {
    const m = md('miarec-oracle-sbc-invite.sip');
    expect(m.participants.map((p) => p.name)).toEqual(['2001', '3105551234']);
    expect(m.streams).toHaveLength(1);
    expect(m.extensions).toEqual({ 'oracle.realm': 'peer-clients' });
    expect(JSON.stringify(m.extensions)).not.toMatch(/3105551234|2001/);
  });

  it('Cisco CUBE: interleaved streams, send+recv per participant', () => {
    const m = md('drachtio-cisco-cube.body');
    expect(m.dialect).toBe('rfc7865');
    expect(m.sipSessionIds).toEqual(['e9fffff2020a598b86962867715db0cf;remote=cd0f7093d62c5f0697098fd69a4aa57b']);
    expect(aors(m)).toEqual(['sip:7301@35.162.237.204', 'sip:7300@35.162.237.204']);
    expect(labelsSentBy(m, 'kQNhKFdEEeeJ99D/VsPGWA==')).toEqual(['1']);
    expect(labelsSentBy(m, 'kQNhKFdEEeeJ+ND/VsPGWA==')).toEqual(['2']);
    expect(m.participants[1]!.name).toBe('7300');
  });

  it('Cisco inactive: empty participantstreamassoc', () => {
    const m = md('drachtio-cisco-inactive.body');
    expect(aors(m)).toEqual(['sip:0733165805@192.168.40.34', 'sip:+972546136443@192.168.10.140']);
    expect(m.participants.every((p) => p.sends.length === 0)).toBe(true);
    expect(m.streams.map((s) => s.label)).toEqual(['1', '2']);
  });

  it('Avaya SBCE: dataMode camel-case, hex UCID session, empty stream_id', () => {
    const style = md('drachtio-avaya-sbce-style.body');
    expect(style.dataMode).toBe('complete');
    expect(style.sessionId).toBe('00FA0800705D4C5DCAAC41');
    expect(aors(style)).toEqual(['sip:9878942259@212.188.68.145', 'sip:ASBCE@asbce.com']);
    expect(labelsSentBy(style, '9a2de728ba0bc348db1e')).toEqual(['10']);
    expect(labelsSentBy(style, 'abcdef12345678901234')).toEqual(['20']);
    const replay = md('miarec-avaya-sbce-invite.sip');
    expect(replay.streams).toEqual([
      { id: '0ccc2d78b71d8a1ea1c7', label: '10', sessionId: '00FA080001000758A20EFA' },
      { id: '', label: '20', sessionId: '00FA080001000758A20EFA' },
    ]);
    expect(labelsSentBy(replay, 'abcdef12345678901234')).toEqual([]);
  });

  it('BroadWorks: recording_metadata root, <aor>, <send><id>, vendor ids, caller from the calling number', () => {
    const m = md('miarec-broadworks-invite.sip');
    expect(m.dialect).toBe('broadworks');
    expect(m.dataMode).toBe('complete');
    expect(m.sessionId).toBe('urn:uuid:139ff134-7094-4ea9-a4a4-73f0c45e6a23');
    expect(m.groupId).toBe('urn:uuid:6219893c-d072-43d3-ba6c-8828cf7be472');
    expect(aors(m)).toEqual(['sip:8638254725', 'sip:+19015783200@broadcore.com;user=phone']);
    expect(m.participants[0]!.sends).toEqual(['urn:uuid:dc51a81b-aebc-4a09-8f8b-75c13ec5a4fb']);
    expect(labelsSentBy(m, 'urn:uuid:c703d8c4-ac5b-4000-a8ad-a3342ff26072')).toEqual(['1']);
    expect(m.streams[0]!.mode).toBe('mixed');
    expect(m.participants.map((p) => p.callingParty)).toEqual([undefined, true]);
    expect(m.callDirection).toBe('inbound');
    expect(m.extensions).toEqual({
      'broadworks.extTrackingId': 'tracking-id-1-4242@10.0.0.10',
      'broadworks.serviceProviderId': '434279',
      'broadworks.groupId': '434279-1',
      'broadworks.callId': 'callhalf-1-4242@10.0.0.10:0',
      'broadworks.callType': 'termCall',
      'broadworks.recordingType': 'on',
    });
  });

  it('Metaswitch: bare-number AORs, one stream sent by both, unqualified extension', () => {
    const m = md('miarec-metaswitch-invite.sip');
    expect(m.dialect).toBe('draft');
    expect(m.sessionId).toBe('SKPuvuHTEeahvOyezQV3BA==');
    expect(aors(m)).toEqual(['7602922410', '9703060298']);
    expect(m.participants.map((p) => p.sends)).toEqual([['SKPvBOHTEeahvOyezQV3BA=='], ['SKPvBOHTEeahvOyezQV3BA==']]);
    expect(m.streams).toEqual([{ id: 'SKPvBOHTEeahvOyezQV3BA==', label: '1', sessionId: 'SKPuvuHTEeahvOyezQV3BA==' }]);
    expect(m.participants.map((p) => p.callingParty)).toEqual([true, undefined]);
    expect(m.callDirection).toBe('outbound');
    expect(m.extensions).toEqual({ 'metaswitch.callType': 'originating', 'metaswitch.systemName': 'mammoth' });
  });

  it('SEMS: text labels, attributes wrapped over lines, scheme-less AOR', () => {
    const m = md('drachtio-procomm-sems.body');
    expect(aors(m)).toEqual(['sip:016190200@87.252.209.116', 'Extension-016190619@speechpath.ie']);
    expect(labelsSentBy(m, 'Ye5S5pU+SAG2JY4oG7M4Cw==')).toEqual(['a_leg']);
    expect(labelsSentBy(m, 'QDhKextjTa+F1TzXuvHZHw==')).toEqual(['b_leg']);
  });

  it('OpenSIPS: self-closing nameID, no stream associations', () => {
    const m = md('drachtio-opensips-connectel.body');
    expect(aors(m)).toEqual(['sip:0771121212@52.57.92.239', 'sip:0760516936@sip-cust1.connectel.io']);
    expect(m.participants[0]!.name).toBe('test_user;lang=en-US;id=22');
    expect(m.participants.map((p) => p.streamsDeclared)).toEqual([undefined, undefined]);
    expect(m.sipSessionIds).toEqual(['2d8abbf0769c66e15bb349f509693d60@52.57.92.239']);
  });
});

describe('parseRecordingMetadata: refusals', () => {
  it('refuses the BroadWorks capture whose tags were stripped', () => {
    const raw = readSample('drachtio-broadworks-mangled.body').toString('utf8');
    const xml = raw.slice(raw.indexOf('<recording_metadata'), raw.indexOf('</recording_metadata>') + '</recording_metadata>'.length);
    expect(rejected(xml).message).toMatch(/text instead of elements/);
  });

  it('refuses entity expansion (billion laughs) quickly', () => {
    const bomb = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">${Array.from({ length: 9 }, (_, i) =>
      `<!ENTITY lol${i + 1} "${`&lol${i === 0 ? '' : i};`.repeat(10)}">`).join('')}]><recording xmlns="urn:ietf:params:xml:ns:recording:1"><datamode>&lol9;</datamode></recording>`;
    expect(rejected(bomb).message).toMatch(/DOCTYPE|ENTITY/);
    expect(rejected('<recording xmlns="urn:ietf:params:xml:ns:recording:1"><!ENTITY x "y"></recording>').message).toMatch(/ENTITY/);
  });

  it('refuses 10k-deep nesting and huge documents before parsing', () => {
    const deep = '<recording xmlns="urn:ietf:params:xml:ns:recording:1">' + '<a>'.repeat(10_000) + '</a>'.repeat(10_000) + '</recording>';
    expect(rejected(deep).message).toMatch(/nested too deeply/);
    const huge = '<recording xmlns="urn:ietf:params:xml:ns:recording:1"><datamode>complete</datamode>' + '<!-- x -->'.repeat(30_000) + '</recording>';
    expect(rejected(huge).message).toMatch(/too large/);
    const wide = '<recording xmlns="urn:ietf:params:xml:ns:recording:1">' + '<x/>'.repeat(5000) + '</recording>';
    expect(rejected(wide).message).toMatch(/too many elements/);
  });

  it('refuses what is not well-formed or not recording metadata', () => {
    expect(rejected('<recording xmlns="urn:ietf:params:xml:ns:recording:1"><datamode>complete</recording>').message).toMatch(/well-formed/);
    expect(rejected('<html><body/></html>').message).toMatch(/not recording metadata/);
    expect(rejected('<recording xmlns="http://example.com/other"><datamode>complete</datamode></recording>').message).toMatch(/namespace/);
    expect(rejected('<recording xmlns="urn:ietf:params:xml:ns:recording:1"><foo/></recording>').message).toMatch(/no recording elements/);
    expect(rejected('<recording xmlns="urn:ietf:params:xml:ns:recording:1"><datamode>sometimes</datamode></recording>').message).toMatch(/dataMode/);
    expect(rejected('<recording xmlns="urn:ietf:params:xml:ns:recording:1"><participant><nameID aor="sip:a@b"/></participant></recording>').message).toMatch(/participant without an id/);
    rejected('');
    rejected('just text');
    rejected('<a/><b/>');
  });
});

describe('mergeMetadata', () => {
  const full = md('rfc7866-invite-example.sip');

  it('applies the hold update: Bob stops sending, Paul keeps both streams', () => {
    const merged = mergeMetadata(full, md('rfc7866-reinvite-hold-partial.sip'));
    expect(merged.dataMode).toBe('complete');
    expect(labelsSentBy(merged, BOB)).toEqual([]);
    expect(labelsSentBy(merged, PAUL)).toEqual(['98', '99']);
    expect(merged.participants.find((p) => p.id === BOB)!.aor).toBe('sip:bob@biloxi.com');
    expect(merged.sessionId).toBe(full.sessionId);
    expect(merged.streams).toHaveLength(4);
    // Inputs are not changed.
    expect(labelsSentBy(full, BOB)).toEqual(['97', '96']);
  });

  it('applies a departure without losing the participant streams', () => {
    const merged = mergeMetadata(full, md('rfc7865-8.2-partial.xml'));
    const bob = merged.participants.find((p) => p.id === BOB)!;
    expect(bob.disassociatedAt).toBe('2010-12-16T23:41:07Z');
    expect(labelsSentBy(merged, BOB)).toEqual(['97', '96']);
    expect(merged.participants).toHaveLength(2);
  });

  it('adds new participants and streams from a partial update, merges streams by id', () => {
    const update = parseRecordingMetadata(`<recording xmlns="urn:ietf:params:xml:ns:recording:1"><datamode>partial</datamode>
      <participant participant_id="new1"><nameID aor="sip:carol@example.com"/></participant>
      <stream stream_id="s-new" session_id="hVpd7YQgRW2nD22h7q60JQ=="><label>100</label></stream>
      <stream stream_id="UAAMm5GRQKSCMVvLyl4rFw==" session_id="hVpd7YQgRW2nD22h7q60JQ=="><label>196</label></stream>
      <participantstreamassoc participant_id="new1"><send>s-new</send></participantstreamassoc></recording>`);
    const merged = mergeMetadata(full, update);
    expect(merged.participants.map((p) => p.id)).toEqual([BOB, PAUL, 'new1']);
    expect(labelsSentBy(merged, 'new1')).toEqual(['100']);
    expect(labelsSentBy(merged, BOB)).toEqual(['97', '196']);
  });

  it('a complete update replaces the snapshot but keeps vendor ids', () => {
    const prev = { ...full, extensions: { 'cisco.guid': 'abc' } };
    const next = md('drachtio-cisco-cube.body');
    const merged = mergeMetadata(prev, next);
    expect(merged.participants.map((p) => p.aor)).toEqual(['sip:7301@35.162.237.204', 'sip:7300@35.162.237.204']);
    expect(merged.sessionId).toBe('kQNhKFdEEeeJ9tD/VsPGWA==');
    expect(merged.extensions).toEqual({ 'cisco.guid': 'abc' });
  });

  it('a complete snapshot that does not restate the call keeps its session, group, direction and caller', () => {
    const start = md('miarec-broadworks-invite.sip');
    const caller = start.participants.find((p) => p.callingParty)!;
    const snapshot = parseRecordingMetadata(`<recording_metadata xmlns="urn:ietf:params:xml:ns:siprec"><dataMode>complete</dataMode>
      <participant id="${caller.id}"><aor>${caller.aor}</aor></participant>
      <participant id="urn:uuid:new"><aor>sip:2001</aor></participant></recording_metadata>`);
    const merged = mergeMetadata(start, snapshot);
    expect(merged.participants.map((p) => [p.id, p.callingParty])).toEqual([[caller.id, true], ['urn:uuid:new', undefined]]);
    expect([merged.sessionId, merged.groupId, merged.callDirection]).toEqual([start.sessionId, start.groupId, 'inbound']);
    expect(merged.dataMode).toBe('complete');
  });
});
