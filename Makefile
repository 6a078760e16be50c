# Everyday commands. The work is done by scripts/, so each also runs without make.
#   make run     set up and start vault with a demo company, served by gunicorn (embedded defaults: SQLite,
#                local folder; this computer is a trusted place, so every grade opens)
#   make test    the whole suite, lint and coverage floor (scripts/test.sh); pytest options in ARGS="..."
#   make test-fast  the everyday lane, under 5 minutes: SQLite only, no browser, nothing marked slow
#   make lint    ruff
#   make bench   every benchmark in bench/ but the peer's, each printing its table
#   make peer-bench  vault beside Mayan EDMS (installs Mayan with apt and pip; about half an hour)
#   make clean   remove test artefacts and caches (distclean also removes .venv)

VENV := .venv
ARGS ?=

.PHONY: run test test-fast lint bench peer-bench clean distclean

run:
	bash scripts/bootstrap.sh
	$(VENV)/bin/vault demo

test:
	bash scripts/test.sh $(ARGS)

test-fast:
	bash scripts/test.sh --fast $(ARGS)

lint:
	@test -x $(VENV)/bin/ruff || bash scripts/bootstrap.sh --test
	$(VENV)/bin/ruff check .

# Benches start the same real services as the tests, so they need the test set-up; the repository
# root goes on the path so they can use the test fixtures' server helpers.
bench:
	bash scripts/bootstrap.sh --test
	@set -e; for bench in bench/[!_]*.py; do \
		[ -e "$$bench" ] || { echo "no benchmarks in bench/"; exit 1; }; \
		[ "$$bench" = bench/peer_bench.py ] && continue; \
		echo "===== $$bench ====="; \
		PYTHONPATH="$(CURDIR)" $(VENV)/bin/python "$$bench"; \
	done

peer-bench:
	bash scripts/bootstrap.sh --test
	PYTHONPATH="$(CURDIR)" $(VENV)/bin/python bench/peer_bench.py

clean:
	rm -rf test-artifacts htmlcov .coverage .coverage.* .pytest_cache .ruff_cache .hypothesis .import_linter_cache build dist
	find . -path ./$(VENV) -prune -o \( -name __pycache__ -o -name '*.egg-info' \) -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
