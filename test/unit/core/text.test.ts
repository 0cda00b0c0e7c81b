import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sanitizeTerminal, terminalSanitizer } from '../../../src/core/text.js';

test('terminal sanitiser: escapes and other controls are shown, never sent; text, tabs and line ends stay', () => {
  assert.equal(sanitizeTerminal('[  OK  ] Started ssh.service\r\n\tnext line\n'), '[  OK  ] Started ssh.service\r\n\tnext line\n');
  assert.equal(sanitizeTerminal('\x1b[31mred\x1b[0m'), '^[[31mred^[[0m');
  // Window title, OSC 52 clipboard write, bell.
  assert.equal(sanitizeTerminal('\x1b]0;pwned\x07\x1b]52;c;ZWNobyBoaQ==\x07'), '^[]0;pwned^G^[]52;c;ZWNobyBoaQ==^G');
  // C1 CSI (U+009B), DEL, NUL, backspace.
  assert.equal(sanitizeTerminal('a\u009b2Jb\x7fc\x00d\x08'), 'a\\x9b2Jb^?c^@d^H');
  assert.equal(sanitizeTerminal('héllo ✓ 日本'), 'héllo ✓ 日本');
  assert.doesNotMatch(sanitizeTerminal(String.fromCharCode(...Array.from({ length: 256 }, (_, i) => i))), /[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f-\x9f]/);
});

test('terminal sanitiser over a stream: a UTF-8 character cut between chunks is kept whole', () => {
  const clean = terminalSanitizer();
  const bytes = Buffer.from('ok ✓\x1b[2J', 'utf8');
  const cut = bytes.indexOf(0xe2) + 1; // inside the 3 bytes of ✓
  assert.equal(clean(bytes.subarray(0, cut)) + clean(bytes.subarray(cut)), 'ok ✓^[[2J');
});
