#!/usr/bin/env node
// The peerlink command. Plain JavaScript: it loads the compiled CLI from dist/,
// which `npm ci` builds through the `prepare` script.
import { main } from '../dist/src/cli/main.js';

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => {
    process.stderr.write(`peerlink: ${err && err.message ? err.message : String(err)} (ERR_INTERNAL)\n`);
    process.exitCode = 1;
  },
);
