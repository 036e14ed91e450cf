#!/usr/bin/env node
// Links this project's own `berth` command into node_modules/.bin, so `npx berth ...` in
// the project folder runs it directly. Without the link, npm exec copies the project into
// its npx cache and builds it there first; an interrupted first run leaves a broken cache
// entry, and every later `npx berth` then fails with ENOENT until ~/.npm/_npx is cleared.
import { existsSync, mkdirSync, readlinkSync, symlinkSync, unlinkSync, lstatSync, chmodSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const target = join(root, 'bin', 'berth.js');
const binDirectory = join(root, 'node_modules', '.bin');
const link = join(binDirectory, 'berth');
if (!existsSync(join(root, 'node_modules'))) process.exit(0); // installed as a dependency elsewhere: npm links the bin itself
mkdirSync(binDirectory, { recursive: true });
const wanted = relative(binDirectory, target);
let present = false;
try {
  present = lstatSync(link).isSymbolicLink() && readlinkSync(link) === wanted;
  if (!present) unlinkSync(link);
} catch {
  present = false;
}
if (!present) symlinkSync(wanted, link);
chmodSync(target, 0o755);
