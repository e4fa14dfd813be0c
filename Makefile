# The two commands of the README, and the builds behind them. Meson does the
# work; this file only names the steps.

.PHONY: all deps build run check fuzz bench install clean

all: build

deps:
	@sh scripts/install-deps.sh

build: deps
	@[ -f build/build.ninja ] || meson setup build --buildtype=release
	@ninja -C build

# The main job on the embedded default.
run: build
	@sh scripts/run.sh build/cairn

# Everything CI runs: release, sanitizer and clang builds with all tests, the
# install, and a short libFuzzer run per parser.
check: deps
	@sh scripts/check.sh

# A longer fuzzing run: FUZZ_SECONDS per target (default 300).
fuzz: deps
	@FUZZ_SECONDS=$${FUZZ_SECONDS:-300} sh scripts/fuzz.sh

# The benchmarks, each rewriting its section of docs/BENCHMARKS.md: the IPLD
# core, then the CAR toolkit. Bash scripts (dash has no pipefail).
bench: build
	@bash bench/run.sh
	@bash bench/car.sh

install: build
	@meson install -C build

clean:
	rm -rf build build-asan build-clang build-fuzz
