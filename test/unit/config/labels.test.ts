// Labels (rules, KEY=VALUE parsing, selectors and matching), ttl durations, and the spec fields
// `labels` and `ttl` (config/labels.ts, config/spec.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatRemaining,
  labelsIssues,
  matchesLabels,
  parseDuration,
  parseLabel,
  parseLabels,
  parseLabelSelector,
  ttlProblem,
} from '../../../src/config/labels.js';
import { validateSpec } from '../../../src/config/spec.js';
import { ValidationError, type KumoError } from '../../../src/core/errors.js';

test('KEY=VALUE labels: keys with letters, digits and .-_/, values may be empty or hold = after the first', () => {
  assert.deepEqual(parseLabel('team=ci'), ['team', 'ci']);
  assert.deepEqual(parseLabel('app.kubernetes.io/name=web-1'), ['app.kubernetes.io/name', 'web-1']);
  assert.deepEqual(parseLabel('empty='), ['empty', '']);
  assert.deepEqual(parseLabel('url=host:8080/x@y+z'), ['url', 'host:8080/x@y+z']);
  assert.deepEqual(parseLabels(['a=1', 'b=2', 'a=1']), { a: '1', b: '2' });
});

test('a bad label is a BAD_LABEL error that names the label and states the rule', () => {
  const bad: [string, RegExp][] = [
    ['team', /there is no '='/],
    ['=ci', /the key is empty/],
    ['-team=ci', /does not start and end with a letter or digit/],
    ['te am=ci', /character that is not allowed/],
    ['team=c i', /the value "c i" has a character that is not allowed/],
    ['team=a\nb', /not allowed/],
    [`${'k'.repeat(129)}=v`, /129 characters long \(at most 128\)/],
    [`k=${'v'.repeat(257)}`, /257 characters long \(at most 256\)/],
  ];
  for (const [text, why] of bad) {
    assert.throws(() => parseLabel(text), (e: KumoError) => {
      assert.equal(e.code, 'BAD_LABEL');
      assert.ok(e.message.includes(JSON.stringify(text)), `the message names ${JSON.stringify(text)}: ${e.message}`);
      assert.match(e.message, why);
      assert.match(e.hint ?? '', /a key is 1-128 letters, digits/);
      return true;
    });
  }
  assert.throws(() => parseLabels(['a=1', 'a=2']), (e: KumoError) => e.code === 'BAD_LABEL' && /given twice/.test(e.message));
});

test('selectors: KEY=VALUE matches that value, KEY the presence; all must match; none matches everything', () => {
  const labels = { team: 'ci', owner: 'ana', empty: '' };
  const m = (...s: string[]) => matchesLabels(labels, s.map(parseLabelSelector));
  assert.equal(m('team=ci'), true);
  assert.equal(m('team=qa'), false);
  assert.equal(m('owner'), true);
  assert.equal(m('nope'), false);
  assert.equal(m('empty'), true);
  assert.equal(m('empty='), true);
  assert.equal(m('team=ci', 'owner=ana'), true);
  assert.equal(m('team=ci', 'owner=bob'), false);
  assert.equal(m(), true);
  assert.equal(matchesLabels(undefined, [parseLabelSelector('team')]), false);
  assert.equal(matchesLabels({}, [parseLabelSelector('toString')]), false, 'no key is found through the prototype');
  assert.throws(() => parseLabelSelector('bad key'), (e: KumoError) => e.code === 'BAD_LABEL' && /selector "bad key"/.test(e.message));
});

test('labels in a spec: every bad one reported with its path; a non-string value too', () => {
  assert.deepEqual(labelsIssues({ ok: 'x' }), []);
  assert.deepEqual(labelsIssues(['a=b']).map((i) => i.path), ['labels']);
  const issues = labelsIssues({ 'bad key': 'x', n: 5, good: 'y', v: 'a b' });
  assert.deepEqual(issues.map((i) => i.path), ['labels.bad key', 'labels.n', 'labels.v']);
  assert.match(issues[1]!.message, /a number, not a string/);
  const spec = validateSpec({ name: 'a', labels: { team: 'ci' }, ttl: '1h30m' });
  assert.deepEqual(spec.labels, { team: 'ci' });
  assert.equal(spec.ttlSec, 5400);
  assert.equal(validateSpec({ name: 'a' }).labels, undefined);
  assert.throws(() => validateSpec({ name: 'a', labels: { 'x y': '1' }, ttl: 'soon' }), (e: ValidationError) => {
    assert.ok(e instanceof ValidationError);
    const paths = e.issues.map((i) => i.path);
    assert.deepEqual(paths.sort(), ['labels.x y', 'ttl']);
    assert.match(e.issues.find((i) => i.path === 'ttl')!.hint ?? '', /90s, 10m, 1h30m/);
    return true;
  });
});

test('durations: bare seconds, one unit or several in order d h m s; anything else is not one', () => {
  assert.equal(parseDuration('90'), 90);
  assert.equal(parseDuration('90s'), 90);
  assert.equal(parseDuration('10m'), 600);
  assert.equal(parseDuration('1h30m'), 5400);
  assert.equal(parseDuration('2d12h'), 2.5 * 86400);
  assert.equal(parseDuration('1h0m5s'), 3605);
  assert.equal(parseDuration(' 3s '), 3);
  assert.equal(parseDuration(45), 45);
  for (const bad of ['', 'm', '10x', '30m1h', '-5m', '1 h', '1h 30m', 'soon', '1e3']) assert.equal(parseDuration(bad), undefined, bad);
});

test('ttl: not a duration, zero, negative or over a year is a problem naming the value', () => {
  assert.equal(ttlProblem('10m'), undefined);
  assert.match(ttlProblem('0')!, /"0" is not more than zero/);
  assert.match(ttlProblem(0)!, /not more than zero/);
  assert.match(ttlProblem(-30)!, /not more than zero/);
  assert.match(ttlProblem('-30s')!, /"-30s" is negative/);
  assert.match(ttlProblem('-1h30m')!, /is negative/);
  assert.match(ttlProblem('10 minutes')!, /"10 minutes" is not a duration/);
  assert.match(ttlProblem('400d')!, /longer than 365 days/);
});

test('the time left, as list and info show it', () => {
  assert.equal(formatRemaining(-1), 'expired');
  assert.equal(formatRemaining(0), 'expired');
  assert.equal(formatRemaining(400), '1s');
  assert.equal(formatRemaining(42_000), '42s');
  assert.equal(formatRemaining(90_000), '1m 30s');
  assert.equal(formatRemaining(5_400_000), '1h 30m');
  assert.equal(formatRemaining(3_600_000), '1h');
  assert.equal(formatRemaining(2 * 86_400_000 + 3_600_000), '2d 1h');
});
