#!/usr/bin/env bash
# Run every check vault has: set-up, lint, the layer contract, the whole test suite, and the coverage floor
# of the security-critical packages (crypto/ and storage/ at 95% or more, by their own tests).
#
#   scripts/test.sh                 everything
#   scripts/test.sh -x -k loans     extra arguments go to pytest (not to the crypto/ and storage/ tests,
#                                   which always run whole, for the coverage floor)
#   scripts/test.sh --fast [...]    the everyday lane (under 5 minutes): SQLite only, no browser journeys,
#                                   no tests marked slow, no coverage; lint and the layer contract still run
#
# Tests run against real services, started by the test fixtures: PostgreSQL and SeaweedFS (S3) servers
# in temporary folders, and a headless Chromium. Screenshots, the JUnit report and the coverage report
# are written to test-artifacts/. Exits non-zero if any step fails; later steps still run, so one run
# shows every problem.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

ARTIFACTS=test-artifacts
COVERAGE_FLOOR=95
started=$SECONDS
steps=()
failed=0

banner() { printf '\n===== %s =====\n' "$*"; }

# Run one named step, remembering its outcome and time for the summary.
step() {
    local name=$1; shift
    local t0=$SECONDS status
    banner "$name"
    "$@"
    status=$?
    if [ "$status" -eq 0 ]; then
        steps+=("$(printf '%-32s ok      %4d s' "$name" $((SECONDS - t0)))")
    else
        steps+=("$(printf '%-32s FAILED  %4d s  (exit %d)' "$name" $((SECONDS - t0)) "$status")")
        failed=1
    fi
    return "$status"
}

summary() {
    banner "summary"
    printf '%s\n' "${steps[@]}"
    if [ "$failed" -eq 0 ]; then
        echo "ALL CHECKS PASSED in $((SECONDS - started)) s (artefacts in $ARTIFACTS/)"
    else
        echo "SOME CHECKS FAILED in $((SECONDS - started)) s (see above; artefacts in $ARTIFACTS/)"
    fi
    if [ -f "$ARTIFACTS/junit.xml" ]; then
        # Last, the counts as one plain "N passed, N failed" line, the form CI looks for.
        .venv/bin/python - "$ARTIFACTS"/junit*.xml <<'EOF' | tee "$ARTIFACTS/result.txt"
import sys
import xml.etree.ElementTree as ET

root = ET.Element("testsuites")
for path in sys.argv[1:]:
    tree = ET.parse(path).getroot()
    root.extend([tree] if tree.tag == "testsuite" else list(tree.iter("testsuite")))
suites = list(root.iter("testsuite"))
count = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
# Per-part counts: the same tests run once per database; browser journeys drive Chromium.
parts = {"on SQLite": 0, "on PostgreSQL": 0, "browser journeys": 0, "other (no database)": 0}
failed_parts = dict.fromkeys(parts, 0)
for case in root.iter("testcase"):
    name, klass = case.get("name", ""), case.get("classname", "")
    part = ("browser journeys" if klass.startswith("tests.browser") else
            "on PostgreSQL" if "postgresql" in name else "on SQLite" if "sqlite" in name else "other (no database)")
    if case.find("skipped") is not None:
        continue
    parts[part] += 1
    if case.find("failure") is not None or case.find("error") is not None:
        failed_parts[part] += 1
for part, total in parts.items():
    print(f"  {part:22} {total - failed_parts[part]:5} passed, {failed_parts[part]} failed")
bad = count["failures"] + count["errors"]
passed = count["tests"] - bad - count["skipped"]
print(f"tests: {passed} passed, {bad} failed, {count['skipped']} skipped")
EOF
    fi
}

fast=0
if [ "${1:-}" = "--fast" ]; then
    fast=1
    shift
fi

rm -rf "$ARTIFACTS" .coverage .coverage.*
mkdir -p "$ARTIFACTS"

step "set-up (bootstrap --test)" bash scripts/bootstrap.sh --test || { summary; exit 1; }

# The catalogues compiled with statistics: a language with an untranslated or fuzzy message fails here.
step "catalogues (compile --statistics)" .venv/bin/python scripts/catalogues.py compile

step "lint (ruff check)" .venv/bin/ruff check .

# The layer contract ([tool.importlinter] in pyproject.toml): a wrong-way import fails the build.
step "layers (lint-imports)" .venv/bin/lint-imports

if [ "$fast" -eq 1 ]; then
    step "tests, fast lane (pytest)" .venv/bin/pytest -n "${TEST_WORKERS:-2}" --dist loadgroup \
        -m "not slow and not browser and not postgres" -k "not postgresql" \
        --junitxml="$ARTIFACTS/junit.xml" \
        --durations=10 \
        "$@"
    summary
    exit "$failed"
fi

# Coverage is measured where the floor applies (crypto/ and storage/), by those packages' own tests
# (tests/crypto, tests/storage), which run in a step of their own: a tracer in the processes of the rest
# of the suite made its tests take a third longer or more (every Python call goes through it, measured
# or not), and the packages' own tests must cover them anyway.
# Two workers (`-n`): the tests mostly wait on PostgreSQL, SeaweedFS, LibreOffice and Chromium, so two
# processes keep both cores busy; each worker starts its own servers. Tests are handed out one by one, so
# one long file (the API fuzzing) does not hold up the run, except a group marked `xdist_group`
# (`loadgroup`): the fault tests share one scene whose counts carry over, so they run on one worker, in order.
step "tests (pytest)" .venv/bin/pytest -n "${TEST_WORKERS:-2}" --dist loadgroup \
    --ignore=tests/crypto --ignore=tests/storage \
    --junitxml="$ARTIFACTS/junit.xml" \
    --durations=15 \
    "$@"

step "crypto/, storage/ tests (coverage)" .venv/bin/pytest -n "${TEST_WORKERS:-2}" \
    --cov=crypto --cov=storage --cov-report=term \
    --cov-report="xml:$ARTIFACTS/coverage.xml" \
    --junitxml="$ARTIFACTS/junit-crypto-storage.xml" \
    tests/crypto tests/storage

if [ -f .coverage ]; then
    for package in crypto storage; do
        # Lines and branches together (branch coverage is on in pyproject.toml).
        step "coverage of $package/ >= $COVERAGE_FLOOR%" .venv/bin/coverage report \
            --include="$package/*" --fail-under="$COVERAGE_FLOOR" --skip-empty
    done
else
    steps+=("$(printf '%-32s FAILED  (pytest wrote no coverage data)' "coverage floor")")
    failed=1
fi

summary
exit "$failed"
