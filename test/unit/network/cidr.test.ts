import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatIp, formatSubnet, hostRange, lowestFree, overlaps, parseIp, parseSubnet, pickDefaultSubnet, subnetSize } from '../../../src/network/cidr.js';

test('parseIp / formatIp round-trip; junk and leading zeros are refused', () => {
  for (const s of ['0.0.0.0', '10.99.0.1', '255.255.255.255', '192.168.77.254']) assert.equal(formatIp(parseIp(s)!), s);
  for (const s of ['10.99.0', '10.99.0.256', '10.099.0.1', 'a.b.c.d', '10.99.0.1 ', '']) assert.equal(parseIp(s), undefined, s);
});

test('parseSubnet: CIDR form, host bits zero, prefix /16../30, no loopback or multicast', () => {
  assert.deepEqual(parseSubnet('10.99.7.0/24'), { base: parseIp('10.99.7.0'), prefix: 24 });
  assert.equal(formatSubnet(parseSubnet('192.168.0.0/16')), '192.168.0.0/16');
  assert.equal(subnetSize(parseSubnet('10.1.2.4/30')), 4);
  const bad: [string, RegExp][] = [
    ['10.99.7.5/24', /host bits are set \(the network is 10\.99\.7\.0\/24\)/],
    ['10.0.0.0/8', /prefix \/8 is outside/],
    ['10.1.2.0/31', /prefix \/31 is outside/],
    ['10.1.2.0', /not of the form/],
    ['10.1.2.300/24', /not an IPv4 address/],
    ['127.0.0.0/24', /loopback/],
    ['224.0.0.0/24', /multicast/],
  ];
  for (const [s, why] of bad)
    assert.throws(() => parseSubnet(s), (e: Error & { code?: string; hint?: string }) => e.code === 'BAD_SUBNET' && why.test(e.message) && /CIDR/.test(e.hint ?? ''), s);
});

test('overlaps: nested, adjacent and disjoint subnets', () => {
  const s = parseSubnet;
  assert.equal(overlaps(s('10.99.0.0/24'), s('10.99.0.128/25')), true);
  assert.equal(overlaps(s('10.99.0.128/25'), s('10.99.0.0/16')), true);
  assert.equal(overlaps(s('10.99.0.0/24'), s('10.99.1.0/24')), false);
  assert.equal(overlaps(s('10.0.0.0/16'), s('10.0.2.0/24')), true);
  assert.equal(overlaps(s('10.0.3.0/24'), s('10.0.2.0/24')), false);
});

test('pickDefaultSubnet: the first free /24 of 10.99.0.0/16, skipping overlaps; none when all are taken', () => {
  assert.equal(formatSubnet(pickDefaultSubnet([])!), '10.99.0.0/24');
  assert.equal(formatSubnet(pickDefaultSubnet([parseSubnet('10.99.0.0/24'), parseSubnet('10.99.1.0/25')])!), '10.99.2.0/24');
  assert.equal(formatSubnet(pickDefaultSubnet([parseSubnet('10.99.0.0/23')])!), '10.99.2.0/24');
  assert.equal(pickDefaultSubnet([parseSubnet('10.99.0.0/16')]), undefined);
});

test('lowestFree: network and broadcast addresses are never given; holes are filled first; exhausted = undefined', () => {
  const s = parseSubnet('10.99.3.0/29'); // hosts .1 .. .6
  assert.deepEqual(hostRange(s), { first: parseIp('10.99.3.1'), last: parseIp('10.99.3.6') });
  assert.equal(lowestFree(s, []), '10.99.3.1');
  assert.equal(lowestFree(s, ['10.99.3.1', '10.99.3.3']), '10.99.3.2');
  assert.equal(lowestFree(s, ['10.99.3.1', '10.99.3.2', '10.99.3.3', '10.99.3.4', '10.99.3.5', '10.99.3.6']), undefined);
  assert.equal(lowestFree(parseSubnet('10.1.2.4/30'), ['10.1.2.5']), '10.1.2.6');
});
