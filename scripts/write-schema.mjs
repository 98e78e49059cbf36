#!/usr/bin/env node
// Writes schema/category.schema.json from CATEGORY_SCHEMA in src/core/category.ts
// (via dist/), so the file shipped in the package is the schema the API uses.
// `npm run schema` builds and runs it; test/integration/validator.test.ts fails when they differ.
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const root = new URL('..', import.meta.url).pathname;
const { CATEGORY_SCHEMA } = require(`${root}dist/core/category.js`);
writeFileSync(`${root}schema/category.schema.json`, `${JSON.stringify(CATEGORY_SCHEMA, null, 2)}\n`);
console.log('wrote schema/category.schema.json');
