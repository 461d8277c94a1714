import { describe, expect, it } from 'vitest';
import { maskAddress, parseIPv4, parseIPv6 } from '../../../src/resolve/ip.js';

describe('maskAddress', () => {
  it('IPv4 with prefix 32 is returned as is; shorter prefixes give the network in CIDR form', () => {
    expect(maskAddress('198.51.100.77', 32, 64)).toBe('198.51.100.77');
    expect(maskAddress('198.51.100.77', 24, 64)).toBe('198.51.100.0/24');
    expect(maskAddress('198.51.100.77', 20, 64)).toBe('198.51.96.0/20');
    expect(maskAddress('255.255.255.255', 1, 64)).toBe('128.0.0.0/1');
    expect(maskAddress('198.51.100.77', 0, 64)).toBe('0.0.0.0/0');
  });

  it('two clients of one /24 share a value; clients of different /24s do not', () => {
    expect(maskAddress('203.0.113.1', 24, 64)).toBe(maskAddress('203.0.113.254', 24, 64));
    expect(maskAddress('203.0.113.1', 24, 64)).not.toBe(maskAddress('203.0.114.1', 24, 64));
  });

  it('IPv6 is printed in RFC 5952 form, masked to the prefix', () => {
    expect(maskAddress('2001:DB8:0:0:1:2:3:4', 4, 128)).toBe('2001:db8::1:2:3:4');
    expect(maskAddress('2001:db8:aaaa:bbbb:1:2:3:4', 32, 64)).toBe('2001:db8:aaaa:bbbb::/64');
    expect(maskAddress('2001:db8:aaaa:bbbb:cccc:2:3:4', 32, 56)).toBe('2001:db8:aaaa:bb00::/56');
    expect(maskAddress('2001:0db8:0000:0000:0000:0000:0000:0001', 32, 128)).toBe('2001:db8::1');
    expect(maskAddress('::1', 32, 128)).toBe('::1');
    expect(maskAddress('::', 32, 128)).toBe('::');
    expect(maskAddress('fe80::1%eth0', 32, 128)).toBe('fe80::1');
    expect(maskAddress('2001:db8:0:0:1:0:0:1', 32, 128)).toBe('2001:db8::1:0:0:1'); // first of two equal runs
    expect(maskAddress('2001:db8:1:0:1:1:1:1', 32, 128)).toBe('2001:db8:1:0:1:1:1:1'); // a single zero group stays
  });

  it('every spelling of one /64 gives one value', () => {
    const a = maskAddress('2001:db8:1:2::5', 32, 64);
    expect(maskAddress('2001:0DB8:0001:0002:ffff:ffff:ffff:ffff', 32, 64)).toBe(a);
    expect(a).toBe('2001:db8:1:2::/64');
  });

  it('IPv4-mapped IPv6 is treated as the IPv4 address', () => {
    expect(maskAddress('::ffff:192.0.2.9', 32, 64)).toBe('192.0.2.9');
    expect(maskAddress('::ffff:192.0.2.9', 24, 64)).toBe('192.0.2.0/24');
    expect(maskAddress('::ffff:c000:0209', 32, 64)).toBe('192.0.2.9');
  });

  it('values that are not addresses are returned unchanged', () => {
    for (const v of [
      'unknown',
      '',
      '1.2.3',
      '1.2.3.4.5',
      '01.2.3.4',
      '256.1.1.1',
      '1:2:3',
      'a::b::c',
      '1:2:3:4:5:6:7:8:9',
      'x'.repeat(100),
    ]) {
      expect(maskAddress(v, 24, 64)).toBe(v);
    }
  });
});

describe('parsers', () => {
  it('parseIPv4 / parseIPv6', () => {
    expect(parseIPv4('10.0.0.1')).toBe(0x0a000001);
    expect(parseIPv4('1.2.3.04')).toBeUndefined();
    expect(parseIPv6('1::')).toEqual([1, 0, 0, 0, 0, 0, 0, 0]);
    expect(parseIPv6('::1.2.3.4')).toEqual([0, 0, 0, 0, 0, 0, 0x0102, 0x0304]);
    expect(parseIPv6('[2001:db8::1]')).toEqual([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]);
    expect(parseIPv6('1:2:3:4:5:6:7::8')).toBeUndefined();
    expect(parseIPv6('12345::')).toBeUndefined();
  });
});
