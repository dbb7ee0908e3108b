/**
 * Who may send SIP: `[sip] allowed_sources`, a list of CIDR ranges (IPv4 and IPv6). An
 * empty list lets every address in. IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`, as a
 * dual-stack socket reports IPv4 peers) are matched as the IPv4 address they carry.
 */
import { BlockList, isIP } from 'node:net';

/** Why `text` is not a CIDR range or a single address, or undefined when it is one. */
export function cidrProblem(text: string): string | undefined {
  const parsed = parseCidr(text);
  return typeof parsed === 'string' ? parsed : undefined;
}

interface Cidr {
  readonly address: string;
  readonly family: 'ipv4' | 'ipv6';
  readonly prefix: number;
}

function parseCidr(text: string): Cidr | string {
  const t = text.trim();
  const slash = t.indexOf('/');
  const address = slash < 0 ? t : t.slice(0, slash);
  const version = isIP(address);
  if (version === 0) return `"${text}" is not an address or CIDR range (e.g. "10.0.0.0/8", "2001:db8::/32")`;
  const max = version === 4 ? 32 : 128;
  if (slash < 0) return { address, family: version === 4 ? 'ipv4' : 'ipv6', prefix: max };
  const p = t.slice(slash + 1);
  if (!/^\d{1,3}$/.test(p) || Number(p) > max) return `"${text}": the prefix length must be 0 to ${max}`;
  return { address, family: version === 4 ? 'ipv4' : 'ipv6', prefix: Number(p) };
}

const MAPPED_V4 = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;

export class SourcePolicy {
  private readonly list = new BlockList();
  private readonly open: boolean;

  /** `ranges` as validated by the config schema; a bad one throws. */
  constructor(ranges: readonly string[]) {
    this.open = ranges.length === 0;
    for (const r of ranges) {
      const c = parseCidr(r);
      if (typeof c === 'string') throw new Error(c);
      this.list.addSubnet(c.address, c.prefix, c.family);
    }
  }

  allows(address: string): boolean {
    if (this.open) return true;
    const mapped = MAPPED_V4.exec(address);
    if (mapped) return this.list.check(mapped[1]!, 'ipv4');
    const version = isIP(address);
    if (version === 0) return false;
    return this.list.check(address, version === 4 ? 'ipv4' : 'ipv6');
  }
}
