# The few commands a contributor needs; each is a thin wrapper over scripts/.
.PHONY: serve test lint bench bench-passthrough docker-smoke

serve:          ## set up .venv if needed and run the gateway on 127.0.0.1:8000
	./scripts/serve.sh

test:           ## set up .venv if needed; ruff, mypy and every test (what CI runs)
	./scripts/test.sh

lint:           ## ruff and mypy only
	./scripts/bootstrap.sh
	.venv/bin/ruff check src tests bench
	.venv/bin/ruff format --check src tests bench
	.venv/bin/mypy

bench:          ## gateway overhead around the embedded engine, and time to ready
	./scripts/bootstrap.sh
	.venv/bin/python bench/overhead.py

bench-passthrough: ## imagegate vs a floor proxy vs direct, megabyte image edits (needs wrk)
	./scripts/bootstrap.sh
	.venv/bin/python bench/passthrough.py

docker-smoke:   ## build the image and the compose stack, send an edit through nginx
	./scripts/docker-smoke.sh
