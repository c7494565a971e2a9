# Edo — the two commands a newcomer needs are `make run` and `make test`.
# Everything builds with CMake under build/ (examples in build/examples/).

BUILD        ?= build
BUILD_TYPE   ?= RelWithDebInfo
PREFIX       ?= /usr/local
JOBS         ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE        ?= cmake
CTEST        ?= ctest
CMAKE_FLAGS  ?=
# Stress loops run at full size in the plain build and scaled under sanitizers.
ASAN_SCALE   ?= 0.25
TSAN_SCALE   ?= 0.1

.PHONY: all build run test test-asan test-tsan test-valgrind bench bench-quick install format lint clean

all: build

$(BUILD)/CMakeCache.txt:
	$(CMAKE) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DCMAKE_INSTALL_PREFIX=$(PREFIX) \
		-DCMAKE_EXPORT_COMPILE_COMMANDS=ON $(CMAKE_FLAGS)

build: $(BUILD)/CMakeCache.txt
	$(CMAKE) --build $(BUILD) -j $(JOBS)

# The main example: the hello-world HTTP server on http://127.0.0.1:8080/
# (Ctrl-C stops it).  The first-steps demo is ./$(BUILD)/examples/demo.
run: build
	./$(BUILD)/examples/hello_server --port 8080

test: build
	$(CTEST) --test-dir $(BUILD) --output-on-failure -j $(JOBS)

# ASan + UBSan, and TSan: separate build trees so each keeps its objects.
test-asan:
	$(MAKE) test BUILD=build-asan BUILD_TYPE=Debug CMAKE_FLAGS="-DEDO_SANITIZE=address -DEDO_BUILD_BENCH=OFF $(CMAKE_FLAGS)" \
		EDO_STRESS_SCALE=$(ASAN_SCALE)

test-tsan:
	$(MAKE) test BUILD=build-tsan BUILD_TYPE=RelWithDebInfo CMAKE_FLAGS="-DEDO_SANITIZE=thread -DEDO_BUILD_BENCH=OFF $(CMAKE_FLAGS)" \
		EDO_STRESS_SCALE=$(TSAN_SCALE)

export EDO_STRESS_SCALE

# The fiber tests under valgrind, gcc and clang builds (tests/valgrind.sh).
test-valgrind:
	bash tests/valgrind.sh

# Benchmarks: Release build, then the side-by-side runner (bench/run.sh).
# `make bench BENCH=name` runs one workload; `make bench-quick` a reduced set.
bench:
	$(MAKE) build BUILD=build-release BUILD_TYPE=Release CMAKE_FLAGS="-DEDO_BUILD_TESTS=OFF $(CMAKE_FLAGS)"
	EDO_BUILD=build-release BENCH=$(BENCH) bash bench/run.sh

bench-quick:
	$(MAKE) bench QUICK=1

export QUICK

install: build
	$(CMAKE) --install $(BUILD) --prefix $(PREFIX)

# clang-format -i over the tracked C files (those tools/lint.sh checks).
format:
	bash tools/lint.sh --fix

lint:
	bash tools/lint.sh

clean:
	rm -rf build build-asan build-tsan build-release build-clang build-valgrind build-valgrind-clang
