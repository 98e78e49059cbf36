#!/usr/bin/env node
// Empties dist/ before a build, so a module that moved (src/core/amqp.ts ->
// src/core/amqp/index.ts) leaves no stale dist/core/amqp.js that Node would
// load instead of the new folder.
import { rmSync } from 'node:fs';

rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });
