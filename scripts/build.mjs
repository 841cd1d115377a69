#!/usr/bin/env node
// Compiles src/ to dist/ and makes the CLI executable: tsc writes plain files, and `npx mintgate`
// (what the quickstart tells a newcomer to type) runs dist/cli/main.js directly.
import { spawnSync } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { createRequire } from 'node:module';

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const result = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
if (result.status !== 0) process.exit(result.status ?? 1);
chmodSync('dist/cli/main.js', 0o755);
