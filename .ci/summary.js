// Prints the closing line "N passed, N failed" over vitest JSON reports. A report that is
// missing (the type check or the linter failed before vitest ran) or that ran no test counts as
// one failure, so such a run can never look green.
const fs = require("node:fs");
let passed = 0;
let failed = 0;
for (const file of process.argv.slice(2)) {
  if (!fs.existsSync(file)) {
    failed += 1;
    continue;
  }
  const r = JSON.parse(fs.readFileSync(file, "utf8"));
  passed += r.numPassedTests;
  failed += r.numFailedTests;
  if (r.numTotalTests === 0) failed += 1;
}
console.log(`${passed} passed, ${failed} failed`);
