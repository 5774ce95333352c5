// Fails when the JavaScript a first load of the experiment results page downloads is over
// budget (gzip). It follows Vite's manifest: the entry chunk, the results page's chunk, and
// every chunk they import statically (what the browser fetches before the page can render).
//
//   node scripts/budget.mjs [--max-kb 300] [--dist dist]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const maxKB = Number(opt('max-kb', '300'));
const dist = opt('dist', 'dist');
const manifest = JSON.parse(readFileSync(join(dist, '.vite/manifest.json'), 'utf8'));

const entry = Object.values(manifest).find((c) => c.isEntry);
const results = manifest['src/pages/ExperimentResults.tsx'];
if (!entry || !results) {
  console.error('budget: the manifest has no entry chunk or no src/pages/ExperimentResults.tsx chunk; was the app built?');
  process.exit(1);
}
const files = new Set();
const visit = (key) => {
  const chunk = manifest[key] ?? Object.values(manifest).find((c) => c.file === key);
  if (!chunk || files.has(chunk.file)) return;
  files.add(chunk.file);
  for (const dep of chunk.imports ?? []) visit(dep);
};
visit(Object.keys(manifest).find((k) => manifest[k] === entry));
visit('src/pages/ExperimentResults.tsx');

let total = 0;
const rows = [];
for (const f of files) {
  if (!f.endsWith('.js')) continue;
  const gz = gzipSync(readFileSync(join(dist, f)), { level: 9 }).length;
  total += gz;
  rows.push([f, gz]);
}
rows.sort((a, b) => b[1] - a[1]);
for (const [f, gz] of rows) console.log(`  ${(gz / 1024).toFixed(1).padStart(7)} KB  ${f}`);
const kb = total / 1024;
console.log(`results page first-load JavaScript: ${kb.toFixed(1)} KB gzip (budget ${maxKB} KB)`);
if (kb > maxKB) {
  console.error(`budget: over by ${(kb - maxKB).toFixed(1)} KB`);
  process.exit(1);
}
