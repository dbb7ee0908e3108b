import { describe, it, expect } from 'vitest';
import { assignRoles, type RoleInput, type RoleRules } from '../../../src/calls/roles.js';
import { parseInviteBody, type InviteBody } from '../../../src/sip/body.js';
import { mergeMetadata, parseRecordingMetadata } from '../../../src/sip/metadata.js';
import { parseSdp } from '../../../src/sip/sdp.js';
import type { AgentConfig } from '../../../src/config/schema.js';
import { readSample, sampleInvite } from '../sip/samples.js';

const agent = (id: string, name: string, extensions: string[], team?: string): AgentConfig => ({
  id, name, extensions, supervisor_of: [], ...(team === undefined ? {} : { team }),
});
const rules = (r: Partial<RoleRules> = {}): RoleRules => ({ serviceNumbers: [], internalPattern: /^\d{3,5}$/, agents: [], ...r });
const body = (name: string): InviteBody => {
  const inv = sampleInvite(name);
  return parseInviteBody(inv.contentType, inv.body);
};
/** SIPREC: From/To are the recording client and the recorder, not the call's parties. */
const siprec = (b: InviteBody): RoleInput => ({
  ...(b.metadata === undefined ? {} : { metadata: b.metadata }),
  from: { uri: 'sip:src@10.0.0.10' },
  to: { uri: 'sip:rec@10.0.0.20' },
  requestUser: 'rec',
  media: b.sdp.media,
});
const legsOf = (r: ReturnType<typeof assignRoles>) => r.legs.map((l) => [l.index, l.label, l.role, l.channel]);
const twoLines = (...labels: string[]) => parseSdp(['v=0', 'o=- 1 1 IN IP4 10.0.0.10', 'c=IN IP4 10.0.0.10',
  ...labels.flatMap((l, i) => [`m=audio ${16384 + 2 * i} RTP/AVP 0`, ...(l === '' ? [] : [`a=label:${l}`])])].join('\r\n')).media;

describe('assignRoles on the SIPREC samples', () => {
  it('RFC 7866: an agents directory makes Paul the agent; Bob (customer) left, Paul right; video ignored', () => {
    const r = assignRoles(siprec(body('rfc7866-invite-example.sip')), rules({ agents: [agent('paul', 'Paul P.', ['Paul'], 'blue')] }));
    expect(r.direction).toBe('inbound');
    expect(legsOf(r)).toEqual([[0, '96', 'customer', 0], [2, '98', 'agent', 1]]);
    expect(r.customer).toEqual({ participantId: 'srfBElmCRp2QB23b7Mpk0w==', user: 'bob' });
    expect(r.agent).toEqual({ participantId: 'zSfPoSvdSDCmU3A3TRDxAw==', extension: 'Paul', agentId: 'paul', agentName: 'Paul P.', team: 'blue' });
    expect(r.participants.map((p) => [p.role, p.sendsLabels])).toEqual([['customer', ['97', '96']], ['agent', ['98', '99']]]);
  });

  it('RFC 7866 without any rule: the first participant is the customer, direction unknown', () => {
    const r = assignRoles(siprec(body('rfc7866-invite-example.sip')), rules());
    expect(r.direction).toBe('unknown');
    expect(legsOf(r)).toEqual([[0, '96', 'customer', 0], [2, '98', 'agent', 1]]);
  });

  it('RFC 7866 hold: after the partial update Bob sends nothing, but his m-line keeps his channel', () => {
    const full = body('rfc7866-invite-example.sip').metadata!;
    const hold = body('rfc7866-reinvite-hold-partial.sip');
    const r = assignRoles({ ...siprec(hold), metadata: mergeMetadata(full, hold.metadata!) }, rules({ agents: [agent('paul', 'Paul', ['Paul'])] }));
    expect(legsOf(r)).toEqual([[0, '96', 'customer', 0], [2, '98', 'agent', 1]]);
    expect(r.legs[0]!.participantId).toBe('srfBElmCRp2QB23b7Mpk0w==');
  });

  it('a participant that left is marked so and keeps its role: the one who stays does not become the customer', () => {
    const full = body('rfc7866-invite-example.sip').metadata!;
    const left = mergeMetadata(full, parseRecordingMetadata(readSample('rfc7865-8.2-partial.xml').toString()));
    const r = assignRoles({ ...siprec(body('rfc7866-invite-example.sip')), metadata: left }, rules());
    expect(r.participants.map((p) => [p.id, p.role, p.left ?? false])).toEqual([
      ['srfBElmCRp2QB23b7Mpk0w==', 'customer', true],
      ['zSfPoSvdSDCmU3A3TRDxAw==', 'agent', false],
    ]);
    expect(r.customer?.participantId).toBe('srfBElmCRp2QB23b7Mpk0w==');
    expect(r.agent?.participantId).toBe('zSfPoSvdSDCmU3A3TRDxAw==');
  });

  it('after a transfer the agent still in the call represents the organisation, and takes the stream', () => {
    const md = (parts: string) => parseRecordingMetadata(`<recording xmlns="urn:ietf:params:xml:ns:recording:1"><datamode>complete</datamode>${parts}`
      + '<stream stream_id="s1" session_id="x"><label>1</label></stream><stream stream_id="s2" session_id="x"><label>2</label></stream></recording>');
    const metadata = md('<participant participant_id="c"><nameID aor="sip:+358401234567@x"/></participant>'
      + '<participant participant_id="a"><nameID aor="sip:1001@x"/></participant>'
      + '<participantsessionassoc participant_id="a" session_id="x"><disassociate-time>2026-01-01T10:00:00Z</disassociate-time></participantsessionassoc>'
      + '<participant participant_id="b"><nameID aor="sip:1002@x"/></participant>'
      + '<participantstreamassoc participant_id="c"><send>s1</send></participantstreamassoc>'
      + '<participantstreamassoc participant_id="a"><send>s2</send></participantstreamassoc>'
      + '<participantstreamassoc participant_id="b"><send>s2</send></participantstreamassoc>');
    const r = assignRoles({ ...siprec(body('rfc7866-invite-example.sip')), metadata }, rules());
    expect(r.agent?.participantId).toBe('b');
    expect(r.customer?.participantId).toBe('c');
    expect(r.participants.find((p) => p.id === 'b')!.sendsLabels).toEqual(['2']);
  });

  it('Acme: callingParty marks the caller; the channel follows the role, not the m-line order', () => {
    const b = body('drachtio-acme-oracle-sbc.body');
    const inbound = assignRoles(siprec(b), rules({ internalPattern: /^1\d{3}$/ }));
    expect(inbound.direction).toBe('inbound');
    expect(legsOf(inbound)).toEqual([[0, '16777227', 'customer', 0], [1, '16777228', 'agent', 1]]);
    expect(inbound.agent?.extension).toBe('1002');
    // Now 9000 (the caller, first m-line) is the organisation: its leg goes right.
    const outbound = assignRoles(siprec(b), rules({ internalPattern: /^9\d{3}$/ }));
    expect(outbound.direction).toBe('outbound');
    expect(legsOf(outbound)).toEqual([[0, '16777227', 'agent', 1], [1, '16777228', 'customer', 0]]);
    expect(outbound.customer).toEqual({ participantId: 'EbccNyypRlFYXTm4iw8hxw==', user: '1002' });
  });

  it('Oracle replay: one m-line, sent by the calling extension 2001: outbound, agent right', () => {
    const r = assignRoles(siprec(body('miarec-oracle-sbc-invite.sip')), rules());
    expect(r.direction).toBe('outbound');
    expect(legsOf(r)).toEqual([[0, '16777227', 'agent', 1]]);
    expect(r.customer?.user).toBe('3105551234');
    expect(r.agent?.extension).toBe('2001');
  });

  it('Cisco CUBE: two extensions make an internal call, caller left; the directory picks the agent', () => {
    const r = assignRoles(siprec(body('drachtio-cisco-cube.body')), rules({ agents: [agent('a7301', 'Aino', ['7301'], 'support')] }));
    expect(r.direction).toBe('internal');
    expect(r.customer).toBeUndefined();
    expect(legsOf(r)).toEqual([[0, '1', 'agent', 0], [1, '2', 'agent', 1]]);
    expect(r.agent).toEqual({ participantId: 'kQNhKFdEEeeJ99D/VsPGWA==', extension: '7301', agentId: 'a7301', agentName: 'Aino', team: 'support' });
    expect(r.participants.map((p) => p.agentId)).toEqual(['a7301', undefined]);
  });

  it('Cisco inactive: no stream associations, so m-lines are caller then callee; service number stored', () => {
    const r = assignRoles(siprec(body('drachtio-cisco-inactive.body')), rules({ serviceNumbers: ['+972 54 613 6443'] }));
    expect(r.direction).toBe('inbound');
    expect(r.serviceNumber).toBe('+972546136443');
    expect(r.customer).toEqual({ participantId: 'GZBIusaXEeuxxa1dFIaIyA==', user: '0733165805' });
    expect(legsOf(r)).toEqual([[0, '1', 'customer', 0], [1, '2', 'agent', 1]]);
    expect(r.agent).toEqual({ participantId: 'GZBIusaXEeuxxq1dFIaIyA==' });
  });

  it('Avaya SBCE: the offered stream is the caller’s; the declared-but-not-offered label 20 is ignored', () => {
    const r = assignRoles(siprec(body('miarec-avaya-sbce-invite.sip')), rules());
    expect(legsOf(r)).toEqual([[0, '10', 'customer', 0]]);
    expect(r.customer).toEqual({ participantId: 'b536ff63b7f3643d4d7b', user: '13035381001' });
    const style = assignRoles(siprec(body('drachtio-avaya-sbce-style.body')), rules());
    expect(legsOf(style)).toEqual([[0, '10', 'customer', 0], [1, '20', 'agent', 1]]);
  });

  it('BroadWorks: termCall makes the calling number the customer; the one mixed stream is a mixed leg', () => {
    const r = assignRoles(siprec(body('miarec-broadworks-invite.sip')), rules());
    expect(r.direction).toBe('inbound');
    expect(r.customer).toEqual({ participantId: 'urn:uuid:c649af2e-0c0f-4015-8230-2734d538fc22', user: '+19015783200' });
    expect(r.agent?.participantId).toBe('urn:uuid:c703d8c4-ac5b-4000-a8ad-a3342ff26072');
    expect(r.legs).toEqual([{ index: 0, label: '1', role: 'other', channel: 0, mixed: true }]);
  });

  it('BroadWorks: a directory match wins over the vendor direction', () => {
    const r = assignRoles(siprec(body('miarec-broadworks-invite.sip')), rules({ agents: [agent('u1', 'User One', ['8638254725'])] }));
    expect(r.direction).toBe('inbound');
    expect(r.agent).toMatchObject({ agentId: 'u1', extension: '8638254725' });
  });

  it('Metaswitch: originating call by the recorded user: the called number is the customer', () => {
    const r = assignRoles(siprec(body('miarec-metaswitch-invite.sip')), rules());
    expect(r.direction).toBe('outbound');
    expect(r.customer).toEqual({ participantId: 'SKPzbuHTEeahvOyezQV3BA==', user: '9703060298' });
    expect(r.agent?.participantId).toBe('SKPyJOHTEeahvOyezQV3BA==');
    expect(r.legs).toEqual([{ index: 0, label: '1', role: 'other', channel: 0, mixed: true }]);
  });

  it('SEMS: text labels; an internal pattern on non-numeric users', () => {
    const r = assignRoles(siprec(body('drachtio-procomm-sems.body')), rules({ internalPattern: /^Extension-\d+$/ }));
    expect(r.direction).toBe('inbound');
    expect(legsOf(r)).toEqual([[0, 'a_leg', 'customer', 0], [1, 'b_leg', 'agent', 1]]);
    expect(r.agent?.extension).toBe('Extension-016190619');
  });

  it('OpenSIPS: no associations, service number on the callee', () => {
    const r = assignRoles(siprec(body('drachtio-opensips-connectel.body')), rules({ serviceNumbers: ['0760516936'] }));
    expect(r.direction).toBe('inbound');
    expect(r.serviceNumber).toBe('0760516936');
    expect(legsOf(r)).toEqual([[0, '1', 'customer', 0], [1, '2', 'agent', 1]]);
    expect(r.participants.map((p) => [p.role, p.sendsLabels])).toEqual([['customer', ['1']], ['agent', ['2']]]);
  });
});

describe('assignRoles without metadata (plain SIP)', () => {
  it('inbound to a service number: From is the customer, the first m-line theirs', () => {
    const r = assignRoles(
      { from: { uri: '"Caller" <sip:+358401234567@carrier.example;user=phone>' }, to: { uri: 'sip:0200100@pbx' }, requestUser: '0200100', media: twoLines('', '') },
      rules({ serviceNumbers: ['0200 100'] }),
    );
    expect(r.direction).toBe('inbound');
    expect(r.serviceNumber).toBe('0200100');
    expect(r.customer).toEqual({ user: '+358401234567' });
    expect(legsOf(r)).toEqual([[0, undefined, 'customer', 0], [1, undefined, 'agent', 1]]);
  });

  it('outbound from a directory agent: the caller’s (first) m-line goes right', () => {
    const r = assignRoles(
      { from: { user: '1001' }, to: { uri: 'tel:+358-40-123-4567' }, media: twoLines('', '') },
      rules({ agents: [agent('a1', 'Aino', ['1001'], 'sales')] }),
    );
    expect(r.direction).toBe('outbound');
    expect(r.agent).toEqual({ extension: '1001', agentId: 'a1', agentName: 'Aino', team: 'sales' });
    expect(r.customer).toEqual({ user: '+358401234567' });
    expect(legsOf(r)).toEqual([[0, undefined, 'agent', 1], [1, undefined, 'customer', 0]]);
    expect(r.participants.map((p) => [p.id, p.role, p.sendsLabels])).toEqual([['from', 'agent', []], ['to', 'customer', []]]);
  });

  it('one m-line is one leg on channel 0, of unknown content', () => {
    const r = assignRoles({ from: { uri: 'sip:+358401234567@x' }, to: { uri: 'sip:0200100@pbx' }, media: twoLines('') }, rules({ serviceNumbers: ['0200100'] }));
    expect(r.legs).toEqual([{ index: 0, role: 'other', channel: 0 }]);
    expect(r.direction).toBe('inbound');
  });

  it('compares national and E.164 forms with a default country', () => {
    const input: RoleInput = { from: { uri: 'sip:+358401234567@x' }, to: { uri: 'sip:0201234567@pbx' }, media: twoLines('', '') };
    expect(assignRoles(input, rules({ serviceNumbers: ['+358201234567'] })).direction).toBe('unknown');
    const r = assignRoles(input, rules({ serviceNumbers: ['+358201234567'], defaultCountry: '358' }));
    expect(r.direction).toBe('inbound');
    expect(r.serviceNumber).toBe('0201234567');
  });

  it('uses the Request-URI user when To has none, and a global-flag pattern gives the same answer twice', () => {
    const input: RoleInput = { from: { uri: 'sip:+358401234567@x' }, to: {}, requestUser: '2345', media: twoLines('', '') };
    const rr = rules({ internalPattern: /^\d{4}$/g });
    expect(assignRoles(input, rr).agent).toEqual({ extension: '2345' });
    expect(assignRoles(input, rr).agent).toEqual({ extension: '2345' });
  });
});

describe('assignRoles stream edge cases', () => {
  const meta = (extra = '') => parseRecordingMetadata(`<recording xmlns="urn:ietf:params:xml:ns:recording:1"><datamode>complete</datamode>
    <participant participant_id="c"><nameID aor="sip:+358401234567@carrier"/></participant>
    <participant participant_id="a"><nameID aor="sip:1001@pbx"/></participant>
    <stream stream_id="s1" session_id="x"><label>1</label></stream>
    <stream stream_id="s9" session_id="x"><label>9</label></stream>
    <participantstreamassoc participant_id="c"><send>s1</send></participantstreamassoc>
    <participantstreamassoc participant_id="a"><send>s9</send></participantstreamassoc>${extra}</recording>`);

  it('an m-line without a metadata stream gets the remaining channel and the party without a leg', () => {
    const r = assignRoles({ metadata: meta(), from: {}, to: {}, media: twoLines('7', '1') }, rules());
    expect(r.legs).toEqual([
      { index: 0, label: '7', role: 'agent', channel: 1, participantId: 'a' },
      { index: 1, label: '1', role: 'customer', channel: 0, participantId: 'c' },
    ]);
  });

  it('a third participant from outside the organisation is "other" and heard on the customer side', () => {
    const md = meta(`<participant participant_id="z"><nameID aor="sip:+358409999999@carrier"/></participant>
      <stream stream_id="s3" session_id="x"><label>3</label></stream>
      <participantstreamassoc participant_id="z"><send>s3</send></participantstreamassoc>`);
    const media = parseSdp(['v=0', 'o=- 1 1 IN IP4 1.1.1.1', 'c=IN IP4 1.1.1.1',
      'm=audio 1 RTP/AVP 0', 'a=label:3', 'm=audio 3 RTP/AVP 0', 'a=label:1', 'm=audio 5 RTP/AVP 0', 'a=label:9'].join('\r\n')).media;
    const r = assignRoles({ metadata: md, from: {}, to: {}, media }, rules());
    expect(legsOf(r)).toEqual([[0, '3', 'other', 0], [1, '1', 'customer', 0], [2, '9', 'agent', 1]]);
    expect(r.participants.map((p) => [p.id, p.role])).toEqual([['c', 'customer'], ['a', 'agent'], ['z', 'other']]);
    // Only the agent is the organisation's: the two outside numbers are to be masked.
    expect(r.participants.map((p) => p.organisation)).toEqual([false, true, false]);
  });
});
