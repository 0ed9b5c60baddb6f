# Fleet: `make demo` and `make test` on a fresh Debian 12 machine.
BUILD_DIR ?= build
CMAKE_FLAGS ?=
JOBS ?= $(shell nproc)

.PHONY: all deps configure build test unit e2e chaos demo bench sanitize fuzz format clean

all: build

deps:
	@bash deploy/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD_DIR) -G Ninja $(CMAKE_FLAGS) > /dev/null

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

# Every test: unit tests on every core, end-to-end tests two at a time
# (tests/e2e/lanes.cmake; they share the CPU with real controllers, agents
# and services).
test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 600

unit: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) -E '^E2E'

e2e: build
	cd $(BUILD_DIR) && ctest --output-on-failure -R '^E2E'

# The chaos loop (tests/chaos): random kill -9s of agents and the controller
# during random rollouts and rollbacks, and the invariants after each round.
# CHAOS_SECONDS bounds it; CI runs it after `make test`.
CHAOS_SECONDS ?= 120
chaos: build
	FLEET_CHAOS_SECONDS=$(CHAOS_SECONDS) $(BUILD_DIR)/tests/chaos_tests

demo: build
	bash deploy/demo.sh $(BUILD_DIR)

# Benchmarks print figures; they are not tests. SCALE_HOSTS=200 for a
# quick run of the fleet-scale one.
SCALE_HOSTS ?= 10000
bench: build
	$(BUILD_DIR)/tests/bench/rollback_bench 5 3 10
	$(BUILD_DIR)/tests/bench/store_rollback_bench 5 10
	$(BUILD_DIR)/tests/bench/rollout_bench 100 1000
	$(BUILD_DIR)/tests/bench/fleet_scale_bench $(SCALE_HOSTS)
	$(BUILD_DIR)/tests/bench/dashboard_bench 10 1000

# ASan + UBSan build of everything, with every test. tests/lsan.supp names
# leaks of system libraries that no Fleet code can free.
sanitize:
	LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	  $(MAKE) test BUILD_DIR=build-asan CMAKE_FLAGS="-DFLEET_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug"

# libFuzzer targets (clang, ASan + UBSan) for the archive unpacker and the
# app-spec parser, FUZZ_SECONDS each. CI runs it after `make test`.
FUZZ_DIR ?= build-fuzz
FUZZ_SECONDS ?= 60
fuzz: deps
	@cmake -S . -B $(FUZZ_DIR) -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DFLEET_FUZZ=ON \
	  -DFLEET_BUILD_TESTS=OFF > /dev/null
	cmake --build $(FUZZ_DIR) -j $(JOBS) --target unpack_fuzz app_spec_fuzz
	bash tests/fuzz/run.sh $(FUZZ_DIR) $(FUZZ_SECONDS)

format:
	git ls-files '*.cc' '*.h' | xargs clang-format -i

clean:
	rm -rf build build-asan build-fuzz
