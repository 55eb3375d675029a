# Two commands for a newcomer (README.md): `make run` and `make test`.
# Both install what is missing first (Debian/Ubuntu packages, the .venv virtualenv).
BIN := .venv/bin

.PHONY: setup run test lint format

setup:
	@bash scripts/setup.sh

run: setup
	$(BIN)/titlemap db start
	$(BIN)/titlemap demo
	$(BIN)/titlemap serve

test: setup
	bash scripts/build-citus.sh  # before any cluster starts (vendor/citus/README.md)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
