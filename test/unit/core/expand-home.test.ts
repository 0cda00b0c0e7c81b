import { test } from 'node:test';
import assert from 'node:assert/strict';
import { homedir } from 'node:os';
import { expandHome } from '../../../src/core/fs.js';
import { localPath } from '../../../src/image/resolve.js';

test('expandHome: ~ and ~/ are the home folder; ~user, a ~ inside a path and other paths stay as given', () => {
  assert.equal(expandHome('~', '/home/ann'), '/home/ann');
  assert.equal(expandHome('~/', '/home/ann'), '/home/ann/');
  assert.equal(expandHome('~/keys/id_ed25519', '/home/ann'), '/home/ann/keys/id_ed25519');
  assert.equal(expandHome('~bob/x', '/home/ann'), '~bob/x');
  assert.equal(expandHome('a/~/b', '/home/ann'), 'a/~/b');
  assert.equal(expandHome('/abs/~', '/home/ann'), '/abs/~');
  assert.equal(expandHome('~/site'), `${homedir()}/site`);
});

test('an image path with ~/ is under the home folder', () => {
  assert.equal(localPath('~/images/debian.qcow2'), `${homedir()}/images/debian.qcow2`);
});
