/**
 * The bench's SIPREC client: many concurrent calls over one UDP socket. It speaks the part
 * of RFC 3261 a session recording client needs against tallenne: INVITE (RFC 7866 multipart
 * offer: SDP with two labelled sendonly streams + rs-metadata), ACK, BYE, and answering a BYE
 * from the recorder. Requests are retransmitted on RFC 3261 Timer A/E (500 ms doubling) until
 * a response arrives, so a datagram lost under load costs time, not the call.
 *
 * The numbers in the metadata are made up per call index; they never reach a log of the
 * bench (and tallenne masks them).
 */
import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';

const T1 = 500;
const MAX_WAIT = 32_000;

function parseMessage(buf) {
  const text = buf.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const lines = text.slice(0, end).split('\r\n');
  const first = lines[0];
  const headers = new Map();
  for (const l of lines.slice(1)) {
    const c = l.indexOf(':');
    if (c < 0) continue;
    const name = l.slice(0, c).trim().toLowerCase();
    const compact = { i: 'call-id', f: 'from', t: 'to', v: 'via', l: 'content-length', c: 'content-type' }[name] ?? name;
    if (!headers.has(compact)) headers.set(compact, []);
    headers.get(compact).push(l.slice(c + 1).trim());
  }
  const h = (n) => headers.get(n)?.[0] ?? '';
  const body = text.slice(end + 4);
  const status = /^SIP\/2\.0 (\d{3})/.exec(first);
  if (status) return { kind: 'response', status: Number(status[1]), h, headers, body };
  const req = /^([A-Z]+) (\S+) SIP\/2\.0$/.exec(first);
  if (req) return { kind: 'request', method: req[1], h, headers, body, raw: text };
  return null;
}

/**
 * `keys`: one { suite, keySalt (base64) } per leg to offer RTP/SAVP with SDES, or null for plain RTP.
 * `realm`: an Acme Packet realm in the metadata's extension data (kept by tallenne as
 * `oracle.realm`, which a retention policy can match), or null.
 */
export function siprecOffer(codec, index, keys = null, realm = null) {
  const boundary = 'bench-boundary';
  const sdp = [
    'v=0', `o=SRC ${1000 + index} 1 IN IP4 127.0.0.1`, 's=bench', 'c=IN IP4 127.0.0.1', 't=0 0',
    ...[['1', 30000], ['2', 30002]].flatMap(([label, port], leg) => [
      `m=audio ${port} ${keys ? 'RTP/SAVP' : 'RTP/AVP'} ${codec.pt} 101`,
      ...(keys ? [`a=crypto:1 ${keys[leg].suite} inline:${keys[leg].keySalt}`] : []),
      `a=rtpmap:${codec.pt} ${codec.rtpmap}`,
      'a=rtpmap:101 telephone-event/8000',
      'a=fmtp:101 0-15',
      'a=ptime:20',
      `a=label:${label}`,
      'a=sendonly',
    ]),
  ].join('\r\n') + '\r\n';
  const customer = `+35840${String(1000000 + index).padStart(7, '0')}`;
  const agent = String(1000 + (index % 50));
  const sid = randomBytes(12).toString('base64');
  const s1 = randomBytes(12).toString('base64');
  const s2 = randomBytes(12).toString('base64');
  const p1 = randomBytes(12).toString('base64');
  const p2 = randomBytes(12).toString('base64');
  const meta = `<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns="urn:ietf:params:xml:ns:recording:1">
  <datamode>complete</datamode>
  <session session_id="${sid}"><sipSessionID>${randomBytes(16).toString('hex')}</sipSessionID></session>
  <participant participant_id="${p1}"><nameID aor="sip:${customer}@127.0.0.1"/></participant>
  <participant participant_id="${p2}"><nameID aor="sip:${agent}@127.0.0.1"/></participant>
  <stream stream_id="${s1}" session_id="${sid}"><label>1</label></stream>
  <stream stream_id="${s2}" session_id="${sid}"><label>2</label></stream>
  <participantstreamassoc participant_id="${p1}"><send>${s1}</send><recv>${s2}</recv></participantstreamassoc>
  <participantstreamassoc participant_id="${p2}"><send>${s2}</send><recv>${s1}</recv></participantstreamassoc>
${realm ? `  <extensiondata xmlns:apkt="http://acmepacket.com/siprec/extensiondata"><apkt:realm>${realm}</apkt:realm></extensiondata>\n` : ''}</recording>
`.replace(/\n/g, '\r\n');
  const body = [`--${boundary}`, 'Content-Type: application/sdp', '', sdp, `--${boundary}`,
    'Content-Type: application/rs-metadata+xml', 'Content-Disposition: recording-session', '', meta, `--${boundary}--`, ''].join('\r\n');
  return { body, contentType: `multipart/mixed;boundary=${boundary}` };
}

/** Ports of the audio m-lines of an SDP answer, in order. */
export function answerPorts(sdp) {
  const ports = [];
  for (const line of sdp.split(/\r?\n/)) {
    const m = /^m=audio (\d+) /.exec(line);
    if (m) ports.push(Number(m[1]));
  }
  return ports;
}

export class SiprecClient {
  constructor(serverPort) {
    this.serverPort = serverPort;
    this.sock = createSocket('udp4');
    this.sock.on('message', (m) => this.onMessage(m));
    this.sock.on('error', () => undefined);
    this.pending = new Map(); // branch → transaction
    this.dialogs = new Map(); // call-id → dialog
    this.retransmits = 0;
    this.byeFromServer = 0;
  }

  async open() {
    await new Promise((r) => this.sock.bind(0, '127.0.0.1', r));
    try {
      this.sock.setRecvBufferSize(4 * 1024 * 1024);
    } catch {
      // The kernel's rmem_max caps it; the default is enough for staggered set-up.
    }
    this.port = this.sock.address().port;
  }

  close() {
    for (const t of this.pending.values()) clearTimeout(t.timer);
    this.sock.close();
  }

  /** The server is gone (the chaos mode killed it): every waiting transaction fails now. */
  abort() {
    for (const t of [...this.pending.values()]) this.fail(t, 'aborted');
    this.sock.close();
  }

  onMessage(buf) {
    const m = parseMessage(buf);
    if (!m) return;
    if (m.kind === 'request') {
      if (m.method === 'BYE') {
        this.byeFromServer++;
        const d = this.dialogs.get(m.h('call-id'));
        if (d) d.endedByServer = true;
        this.send(this.response(m, 200, 'OK'));
      } else if (m.method !== 'ACK') this.send(this.response(m, 501, 'Not Implemented'));
      return;
    }
    const branch = /branch=([^;,\s]+)/.exec(m.h('via'))?.[1];
    const t = branch && this.pending.get(branch);
    if (!t) return;
    if (m.status < 200) {
      // Provisional: stop retransmitting, keep waiting for the final response.
      clearTimeout(t.timer);
      t.timer = setTimeout(() => this.fail(t, 'timeout'), MAX_WAIT);
      return;
    }
    clearTimeout(t.timer);
    this.pending.delete(branch);
    t.resolve(m);
  }

  response(req, status, reason) {
    const lines = [`SIP/2.0 ${status} ${reason}`];
    for (const name of ['via', 'from', 'to', 'call-id', 'cseq']) for (const v of req.headers.get(name) ?? []) lines.push(`${name === 'call-id' ? 'Call-ID' : name === 'cseq' ? 'CSeq' : name[0].toUpperCase() + name.slice(1)}: ${v}`);
    lines.push('Content-Length: 0', '', '');
    return lines.join('\r\n');
  }

  send(text) {
    this.sock.send(Buffer.from(text, 'latin1'), this.serverPort, '127.0.0.1');
  }

  fail(t, why) {
    clearTimeout(t.timer);
    this.pending.delete(t.branch);
    t.reject(new Error(`SIP ${t.method}: ${why}`));
  }

  transact(method, build) {
    const branch = `z9hG4bK${randomBytes(8).toString('hex')}`;
    const text = build(branch);
    return new Promise((resolve, reject) => {
      const t = { branch, method, resolve, reject, timer: null, started: Date.now(), interval: T1 };
      const again = () => {
        if (Date.now() - t.started > MAX_WAIT) return this.fail(t, 'no response');
        this.send(text);
        t.timer = setTimeout(() => {
          this.retransmits++;
          t.interval = Math.min(t.interval * 2, 4000);
          again();
        }, t.interval);
      };
      this.pending.set(branch, t);
      again();
    });
  }

  /** Places call `index`; resolves with { status, ports, dialog }. */
  async invite(index, offer) {
    const callId = `${randomBytes(8).toString('hex')}@bench`;
    const fromTag = randomBytes(4).toString('hex');
    const uri = `sip:rec@127.0.0.1:${this.serverPort}`;
    const d = { callId, fromTag, toTag: '', uri, cseq: 1, endedByServer: false };
    const res = await this.transact('INVITE', (branch) => [
      `INVITE ${uri} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${this.port};branch=${branch};rport`,
      'Max-Forwards: 70',
      `From: <sip:src@127.0.0.1>;tag=${fromTag}`,
      `To: <${uri}>`,
      `Call-ID: ${callId}`,
      'CSeq: 1 INVITE',
      `Contact: <sip:src@127.0.0.1:${this.port}>`,
      'Require: siprec',
      'Accept: application/sdp, application/rs-metadata',
      `Content-Type: ${offer.contentType}`,
      `Content-Length: ${Buffer.byteLength(offer.body, 'latin1')}`,
      '', offer.body,
    ].join('\r\n'));
    d.toTag = /;tag=([^;\s]+)/.exec(res.h('to'))?.[1] ?? '';
    const ackBranch = res.status >= 300 ? null : `z9hG4bK${randomBytes(8).toString('hex')}`;
    if (ackBranch) {
      this.send([
        `ACK ${uri} SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.1:${this.port};branch=${ackBranch};rport`, 'Max-Forwards: 70',
        `From: <sip:src@127.0.0.1>;tag=${fromTag}`, `To: <${uri}>;tag=${d.toTag}`, `Call-ID: ${callId}`, 'CSeq: 1 ACK', 'Content-Length: 0', '', '',
      ].join('\r\n'));
      this.dialogs.set(callId, d);
    }
    return { status: res.status, ports: res.status === 200 ? answerPorts(res.body) : [], dialog: d };
  }

  /** Sends BYE in the dialog; resolves with the final status. */
  async bye(d) {
    if (d.endedByServer) return 200;
    d.cseq++;
    const res = await this.transact('BYE', (branch) => [
      `BYE ${d.uri} SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.1:${this.port};branch=${branch};rport`, 'Max-Forwards: 70',
      `From: <sip:src@127.0.0.1>;tag=${d.fromTag}`, `To: <${d.uri}>;tag=${d.toTag}`, `Call-ID: ${d.callId}`, `CSeq: ${d.cseq} BYE`, 'Content-Length: 0', '', '',
    ].join('\r\n'));
    this.dialogs.delete(d.callId);
    return res.status;
  }
}
