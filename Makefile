# The two commands of the README: `make demo` and `make test`. Both set everything up first.
.PHONY: setup demo test test-fast lint bench lock clean-reports

PYTHON := .venv/bin/python
DEMO_REPO := var/demo-reference

setup:
	bash scripts/setup.sh

demo: setup
	@rm -rf $(DEMO_REPO) && mkdir -p var && cp -r assignments/flask-notes/solutions/reference $(DEMO_REPO)
	@cd $(DEMO_REPO) && git init -q && git add -A && git -c user.name=demo -c user.email=demo@localhost commit -qm reference
	.venv/bin/grader grade $(DEMO_REPO) --assignment flask-notes

test: setup
	$(PYTHON) -m pytest tests -q
	.venv/bin/grader assignments check flask-notes --jobs 2
	.venv/bin/grader assignments check flask-jobs --jobs 3

test-fast: setup
	$(PYTHON) -m pytest tests/unit -q

lint:
	.venv/bin/ruff check grader harness tests
	.venv/bin/mypy grader harness

bench: setup
	$(PYTHON) bench/run.py $(BENCH_ARGS)

# The grader's own dependencies, pinned with hashes: pyproject.toml's ranges resolved to what .venv has.
lock:
	.venv/bin/pip freeze --exclude-editable | grep -v '^flask-grader' > .venv/freeze.txt
	.venv/bin/uv pip compile pyproject.toml --constraint .venv/freeze.txt --generate-hashes --python-version 3.11 \
		--quiet --custom-compile-command "make lock" -o requirements.lock
