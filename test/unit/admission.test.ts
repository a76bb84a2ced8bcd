/**
 * Per-IP admission without sockets: requests are plain objects carrying the peer address a
 * socket would report, and the clock is a variable, so IPv6 grouping and the bound on the
 * rate table are checked exactly (test/integration/admission.test.ts covers real sockets).
 */
import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { Admission, clientKey, type AdmissionSettings } from '../../src/gateway/admission.js';

function request(remoteAddress: string): IncomingMessage {
  return { headers: {}, socket: { remoteAddress } } as unknown as IncomingMessage;
}

const unlimited: AdmissionSettings = {
  allowedOrigins: undefined,
  maxConnectionsPerIp: 0,
  connectRatePerIp: 0,
};

describe('clientKey', () => {
  it('groups IPv6 addresses by /64, however they are written', () => {
    const key = '2001:db8:1:2::/64';
    for (const address of [
      '2001:db8:1:2::1',
      '2001:0db8:0001:0002:ffff:ffff:ffff:ffff',
      '2001:DB8:1:2:a:b:c:d',
      '2001:db8:1:2::1%eth0',
    ]) {
      expect(clientKey(address), address).toBe(key);
    }
    expect(clientKey('2001:db8:1:3::1')).toBe('2001:db8:1:3::/64');
    expect(clientKey('::1')).toBe('0:0:0:0::/64');
    expect(clientKey('fe80::1%lo0')).toBe('fe80:0:0:0::/64');
  });

  it('counts an IPv4-mapped IPv6 address as its IPv4 address', () => {
    expect(clientKey('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(clientKey('::FFFF:cb00:7107')).toBe('203.0.113.7');
    expect(clientKey('0:0:0:0:0:ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(clientKey('203.0.113.7')).toBe('203.0.113.7');
  });

  it('keeps anything else apart', () => {
    expect(clientKey(undefined)).toBe('unknown');
    expect(clientKey('not-an-address')).toBe('not-an-address');
  });
});

describe('Admission per-IP limits', () => {
  it('counts open connections per /64: another address of the same /64 gets no new allowance', () => {
    const admission = new Admission({ ...unlimited, maxConnectionsPerIp: 2 });
    for (const address of ['2001:db8:1:2::1', '2001:db8:1:2::2']) {
      const verdict = admission.check(request(address));
      expect(verdict.ok).toBe(true);
      if (verdict.ok) admission.opened(verdict.ip);
    }
    expect(admission.check(request('2001:db8:1:2:dead:beef:0:1'))).toMatchObject({ ok: false, status: 429 });
    expect(admission.check(request('2001:db8:1:3::1')).ok).toBe(true);
    admission.closed('2001:db8:1:2::/64');
    expect(admission.check(request('2001:db8:1:2::77')).ok).toBe(true);
  });

  it('counts an IPv4 peer the same way whether the socket reports it mapped or not', () => {
    const admission = new Admission({ ...unlimited, maxConnectionsPerIp: 1 });
    const first = admission.check(request('::ffff:198.51.100.1'));
    expect(first).toEqual({ ok: true, ip: '198.51.100.1' });
    if (first.ok) admission.opened(first.ip);
    expect(admission.check(request('198.51.100.1'))).toMatchObject({ ok: false, status: 429 });
  });

  it('limits the connection rate per /64', () => {
    let now = 0;
    const admission = new Admission({ ...unlimited, connectRatePerIp: 3 }, { now: () => now });
    const results = [1, 2, 3, 4].map((i) => admission.check(request(`2001:db8:9:9::${i}`)).ok);
    expect(results).toEqual([true, true, true, false]);
    expect(admission.check(request('2001:db8:9:a::1')).ok).toBe(true);
    now = 1000; // a new window
    expect(admission.check(request('2001:db8:9:9::5')).ok).toBe(true);
  });
});

describe('Admission rate table bound', () => {
  it('stays bounded by dropping expired windows, and keeps a limited client limited', () => {
    let now = 0;
    const admission = new Admission({ ...unlimited, connectRatePerIp: 3 }, { maxTracked: 4, now: () => now });
    for (const i of [1, 2, 3]) admission.check(request(`198.51.100.${i}`)); // windows that will expire
    now = 1500;
    const attacker = request('203.0.113.66');
    expect([1, 2, 3, 4].map(() => admission.check(attacker).ok)).toEqual([true, true, true, false]);
    expect(admission.tracked).toBe(1); // the expired windows are gone
    // New addresses fill the table to its bound: the old code cleared the whole table once past
    // it (and kept expired windows until then), which gave every limited client a fresh window.
    now = 1600;
    for (const i of [10, 11, 12]) expect(admission.check(request(`192.0.2.${i}`)).ok).toBe(true);
    expect(admission.tracked).toBe(4);
    now = 1700;
    expect(admission.check(attacker).ok).toBe(false);
  });

  it('never grows past maxTracked, forgetting the oldest windows first', () => {
    let now = 0;
    const admission = new Admission({ ...unlimited, connectRatePerIp: 1 }, { maxTracked: 5, now: () => now });
    for (let i = 0; i < 50; i++) {
      now = i; // all within one window: nothing has expired
      expect(admission.check(request(`2001:db8:${i.toString(16)}::1`)).ok).toBe(true);
      expect(admission.tracked).toBeLessThanOrEqual(5);
    }
    // The newest windows are kept: the last address is still counted, the first was forgotten.
    expect(admission.check(request('2001:db8:31::2')).ok).toBe(false);
    expect(admission.check(request('2001:db8:0::2')).ok).toBe(true);
  });

  it('renews a window in place of the old one, so a returning client does not grow the table', () => {
    let now = 0;
    const admission = new Admission(
      { ...unlimited, connectRatePerIp: 10 },
      { maxTracked: 2, now: () => now },
    );
    for (let i = 0; i < 10; i++) {
      now = i * 1000;
      admission.check(request('192.0.2.1'));
      expect(admission.tracked).toBe(1);
    }
  });
});
