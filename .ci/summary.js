// Prints the closing line "N passed, N failed" over vitest JSON reports. A report that is
// missing (the type check or the linter failed before vitest ran), a report that ran no test, and
// a test file that failed outside its tests (in beforeAll, or on import: its tests are skipped)
// each count as one failure, so such a run can never look green. A skipped test counts as failed
// too: under CI nothing may skip (a missing tool fails and names its package, test/tools.ts).
const fs = require("node:fs");
const path = require("node:path");
const firstLine = (text) =>
  String(text ?? "")
    .split("\n")
    .find((l) => l.trim() !== "") ?? "";
let passed = 0;
let failed = 0;
for (const file of process.argv.slice(2)) {
  const suite = path.basename(file, ".json");
  if (!fs.existsSync(file)) {
    console.log(`${suite}: no report (the run stopped before vitest)`);
    failed += 1;
    continue;
  }
  const r = JSON.parse(fs.readFileSync(file, "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`${suite}: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
  passed += r.numPassedTests;
  failed += r.numFailedTests + skipped;
  if (r.numTotalTests === 0) failed += 1;
  for (const s of r.testResults ?? []) {
    const testFailed = (s.assertionResults ?? []).some((a) => a.status === "failed");
    if (s.status === "failed" && !testFailed) failed += 1;
    if (s.status === "failed" && !testFailed) console.log(`  failed outside its tests: ${path.relative(process.cwd(), s.name)}: ${firstLine(s.message)}`);
    for (const a of s.assertionResults ?? []) {
      if (a.status === "pending" || a.status === "skipped" || a.status === "todo") console.log(`  skipped: ${a.fullName}`);
      // named here, at the end, because CI keeps only the tail of the log
      if (a.status === "failed")
        console.log(`  failed: ${path.relative(process.cwd(), s.name)} > ${a.fullName}: ${firstLine((a.failureMessages ?? []).join("\n"))}`);
    }
  }
}
console.log(`${passed} passed, ${failed} failed`);
