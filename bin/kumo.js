#!/usr/bin/env node
// The kumo command. Built code lives in dist/ (npm run build).
import { main } from '../dist/src/cli/main.js';

process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(0); // `kumo list | head` is fine
  throw e;
});
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`kumo: internal error: ${e?.stack ?? String(e)}\n`);
    process.exitCode = 70;
  },
);
