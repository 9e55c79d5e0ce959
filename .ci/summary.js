// Prints the closing line "N passed, N failed" over vitest JSON reports. A report that is
// missing (the type check or the linter failed before vitest ran), a report that ran no test, and
// a test file that failed outside its tests (in beforeAll, or on import: its tests are skipped)
// each count as one failure, so such a run can never look green.
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
  for (const suite of r.testResults ?? []) {
    const testFailed = (suite.assertionResults ?? []).some((a) => a.status === "failed");
    if (suite.status === "failed" && !testFailed) failed += 1;
  }
}
console.log(`${passed} passed, ${failed} failed`);
