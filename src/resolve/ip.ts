/**
 * Client-address normalisation for the fallback entry: parse an IPv4 or IPv6 address, apply a
 * prefix mask, and print one canonical form, so every spelling of one client (or of one /64)
 * lands on one counter.
 *
 * Contract of {@link maskAddress}:
 * - IPv4 (dotted quad, no leading zeros) with prefix 32 is returned as is; a shorter prefix gives
 *   the network in CIDR form (`198.51.100.0/24`).
 * - IPv6 is printed as RFC 5952 (lower case, longest zero run as `::`); a prefix shorter than
 *   128 gives `network/prefix` (`2001:db8:1:2::/64`). A zone (`%eth0`) is dropped.
 * - IPv4-mapped IPv6 (`::ffff:192.0.2.1`) is treated as the IPv4 address it maps, so a dual-stack
 *   listener does not give one client two counters.
 * - Anything else (not an address) is returned unchanged: the value is still a counter key, just
 *   not a normalised one. Envoy's `remote_address` action always sends a bare address.
 */

export function maskAddress(value: string, ipv4Prefix: number, ipv6Prefix: number): string {
  if (value.length > 64) return value;
  const v4 = parseIPv4(value);
  if (v4 !== undefined) return formatV4(v4, ipv4Prefix, value);
  const v6 = parseIPv6(value);
  if (v6 === undefined) return value;
  if (isV4Mapped(v6)) {
    const n = ((v6[6]! << 16) | v6[7]!) >>> 0;
    return formatV4(n, ipv4Prefix, undefined);
  }
  return formatV6(v6, ipv6Prefix);
}

function formatV4(n: number, prefix: number, original: string | undefined): string {
  if (prefix >= 32) return original ?? v4String(n);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return `${v4String((n & mask) >>> 0)}/${prefix}`;
}

const v4String = (n: number): string => `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;

/** Dotted quad to a uint32, or undefined. Rejects leading zeros (ambiguous octal in some parsers). */
export function parseIPv4(s: string): number | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
    const octet = Number(p);
    if (octet > 255) return undefined;
    n = n * 256 + octet;
  }
  return n;
}

/** IPv6 text to eight 16-bit groups, or undefined. Accepts `::`, an IPv4 tail and a `%zone`. */
export function parseIPv6(input: string): number[] | undefined {
  let s = input;
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  if (!s.includes(':')) return undefined;
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const parseHalf = (h: string, allowV4Tail: boolean): number[] | undefined => {
    if (h === '') return [];
    const groups = h.split(':');
    const out: number[] = [];
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i]!;
      if (allowV4Tail && i === groups.length - 1 && g.includes('.')) {
        const v4 = parseIPv4(g);
        if (v4 === undefined) return undefined;
        out.push(v4 >>> 16, v4 & 0xffff);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(g)) out.push(parseInt(g, 16));
      else return undefined;
    }
    return out;
  };
  if (halves.length === 1) {
    const all = parseHalf(halves[0]!, true);
    return all !== undefined && all.length === 8 ? all : undefined;
  }
  const head = parseHalf(halves[0]!, false);
  const tail = parseHalf(halves[1]!, true);
  if (head === undefined || tail === undefined || head.length + tail.length > 7) return undefined;
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}

function isV4Mapped(g: readonly number[]): boolean {
  return g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff;
}

function formatV6(groups: readonly number[], prefix: number): string {
  const g = [...groups];
  if (prefix < 128) {
    for (let i = 0; i < 8; i++) {
      const bits = Math.min(16, Math.max(0, prefix - i * 16));
      g[i] = bits === 0 ? 0 : g[i]! & ((0xffff << (16 - bits)) & 0xffff);
    }
  }
  // RFC 5952: compress the longest run (>= 2) of zero groups, the first one on a tie.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  const text = bestStart < 0 ? hex.join(':') : `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
  return prefix < 128 ? `${text}/${prefix}` : text;
}
