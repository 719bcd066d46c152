.PHONY: setup run lint test bench clean

setup:
	bash scripts/bootstrap.sh

run:
	bash scripts/bootstrap.sh --gate
	.venv/bin/kitchen render
	.venv/bin/kitchen check

lint:
	.venv/bin/ruff check .
	.venv/bin/mypy

test:
	.venv/bin/python -m pytest

bench:
	.venv/bin/python -m bench.check_bench --serial
	.venv/bin/python -m bench.cache_bench
	.venv/bin/python -m bench.pipeline_bench

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache .kitchen-cache
