#!/usr/bin/env node
// The berth command. The TypeScript is compiled by `npm install` (npm's prepare step).
import('../dist/src/cli/main.js').catch((error) => {
  if (error && error.code === 'ERR_MODULE_NOT_FOUND') {
    console.error('berth: the build output is missing. Run `npm install` (or `npm run build`) in the project folder first.');
    process.exit(1);
  }
  throw error;
});
