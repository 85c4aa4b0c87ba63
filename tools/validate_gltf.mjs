// Run the Khronos glTF validator on GLB/glTF files and print one JSON report per file.
//
// Usage: node tools/validate_gltf.mjs [--ignore CODE[,CODE...]] FILE...
// Prints a JSON array: [{file, numErrors, numWarnings, numInfos, numHints, messages, info}].
// Exit status: 0 when no file has an error, 1 when one has, 2 on bad usage or unreadable input.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import validator from 'gltf-validator';

const args = process.argv.slice(2);
let ignored = [];
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--ignore') {
    ignored = ignored.concat((args[++i] || '').split(',').filter(Boolean));
  } else {
    files.push(args[i]);
  }
}
if (files.length === 0) {
  console.error('usage: node tools/validate_gltf.mjs [--ignore CODE,...] FILE...');
  process.exit(2);
}

const reports = [];
let failed = false;
for (const file of files) {
  let bytes;
  try {
    bytes = new Uint8Array(await readFile(file));
  } catch (err) {
    console.error(`cannot read ${file}: ${err.message}`);
    process.exit(2);
  }
  const dir = path.dirname(file);
  const report = await validator.validateBytes(bytes, {
    uri: path.basename(file),
    maxIssues: 1000,
    ignoredIssues: ignored,
    externalResourceFunction: (uri) =>
      readFile(path.resolve(dir, decodeURIComponent(uri))).then((b) => new Uint8Array(b)),
  });
  const issues = report.issues;
  failed = failed || issues.numErrors > 0;
  reports.push({
    file,
    numErrors: issues.numErrors,
    numWarnings: issues.numWarnings,
    numInfos: issues.numInfos,
    numHints: issues.numHints,
    messages: issues.messages,
    info: report.info || {},
  });
}
console.log(JSON.stringify(reports));
process.exit(failed ? 1 : 0);
