/** Builds SIPREC offers (RFC 7866 multipart: SDP + RFC 7865 metadata) for tests. */

export interface SiprecCall {
  readonly boundary?: string;
  readonly customer: string;
  readonly agent: string;
  /** RTP port of the SRC for each m-line (for the o=/c= lines; RTP flows to the answer's ports). */
  readonly codecs?: string;
  readonly direction?: 'sendonly' | 'inactive';
  readonly sessionVersion?: number;
}

export const CUSTOMER_LABEL = '1';
export const AGENT_LABEL = '2';

export function siprecSdp(c: { codecs?: string; direction?: string; version?: number } = {}): string {
  const fmt = c.codecs ?? '0 8 101';
  const lines = [
    'v=0',
    `o=SRC 2890844526 ${c.version ?? 1} IN IP4 127.0.0.1`,
    's=SIPREC test',
    'c=IN IP4 127.0.0.1',
    't=0 0',
  ];
  for (const [label, port] of [[CUSTOMER_LABEL, 40000], [AGENT_LABEL, 40002]] as const) {
    lines.push(
      `m=audio ${port} RTP/AVP ${fmt}`,
      'a=rtpmap:0 PCMU/8000',
      'a=rtpmap:8 PCMA/8000',
      'a=rtpmap:101 telephone-event/8000',
      'a=fmtp:101 0-15',
      `a=label:${label}`,
      `a=${c.direction ?? 'sendonly'}`,
    );
  }
  return lines.join('\r\n') + '\r\n';
}

export function rsMetadata(customer: string, agent: string, mode: 'complete' | 'partial' = 'complete'): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns="urn:ietf:params:xml:ns:recording:1">
  <datamode>${mode}</datamode>
  <session session_id="UAAMAAAABgAAAAAAAAAAAA==">
    <sipSessionID>ab30317f1a784dc48ff824d0d3715d86;remote=47755a9de7794ba387653f2099600ef2</sipSessionID>
  </session>
  <participant participant_id="cDgQ3pf0hEu0ysTSe5tOmQ==">
    <nameID aor="sip:${customer}@127.0.0.1"><name xml:lang="fi">Asiakas Testinen</name></nameID>
  </participant>
  <participant participant_id="zSfPoSvdSDCmU3A3TRDxAw==">
    <nameID aor="sip:${agent}@127.0.0.1"><name xml:lang="fi">Aino Agentti</name></nameID>
  </participant>
  <stream stream_id="UAAMAAAABgAAAAAAAAAAAQ==" session_id="UAAMAAAABgAAAAAAAAAAAA=="><label>${CUSTOMER_LABEL}</label></stream>
  <stream stream_id="UAAMAAAABgAAAAAAAAAAAg==" session_id="UAAMAAAABgAAAAAAAAAAAA=="><label>${AGENT_LABEL}</label></stream>
  <participantstreamassoc participant_id="cDgQ3pf0hEu0ysTSe5tOmQ==">
    <send>UAAMAAAABgAAAAAAAAAAAQ==</send><recv>UAAMAAAABgAAAAAAAAAAAg==</recv>
  </participantstreamassoc>
  <participantstreamassoc participant_id="zSfPoSvdSDCmU3A3TRDxAw==">
    <send>UAAMAAAABgAAAAAAAAAAAg==</send><recv>UAAMAAAABgAAAAAAAAAAAQ==</recv>
  </participantstreamassoc>
</recording>
`.replace(/\n/g, '\r\n');
}

export function siprecMultipart(sdp: string, metadata: string, boundary = 'tallenne-test-boundary'): { body: string; contentType: string } {
  const body = [
    `--${boundary}`,
    'Content-Type: application/sdp',
    '',
    sdp,
    `--${boundary}`,
    'Content-Type: application/rs-metadata+xml',
    'Content-Disposition: recording-session',
    '',
    metadata,
    `--${boundary}--`,
    '',
  ].join('\r\n');
  return { body, contentType: `multipart/mixed;boundary=${boundary}` };
}

/** `[[agents]]` naming the agent on extension 1001 (the agent of `rsMetadata(..., '1001')`). */
export const AINO_AGENT_TOML = `
[[agents]]
id = "aino"
name = "Aino Agentti"
extensions = ["1001"]
team = "helpdesk"
`;
