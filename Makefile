# A thin wrapper around CMake. The README's two commands are `make run` and `make test`.
#
#   make run      install what is missing, build, start alogd, the Kafka-protocol
#                 server, on 127.0.0.1:9092 (see scripts/run.sh)
#   make test     everything CI runs: the suite in a release build, again under
#                 ASan+UBSan, the concurrent tests under TSan (the engine's threaded
#                 tests and alogd's socket-level tests, tests/cli/test_alogd_*.sh,
#                 which run the TSan-built alogd), each fuzz target briefly, and a
#                 compile of everything at -O3 (gcc warns differently there)
#   make bench    the benchmarks (not part of make test)
#   make test-long  the long crash-consistency runs (not part of make test)
#   make install  library, header, CLI, alogd and alog.pc (PREFIX=/usr/local by default)

JOBS    ?= $(shell nproc)
PREFIX  ?= /usr/local
CMAKE_Q  = cmake -S . -Wno-dev --log-level=WARNING
BUILD    = build

.PHONY: all setup build build-asan build-tsan build-fuzz build-o3 test test-release \
        test-asan test-tsan test-fuzz test-long run bench install clean

all: build

setup:
	@bash scripts/setup.sh

build: setup
	@$(CMAKE_Q) -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=$(PREFIX)
	@cmake --build $(BUILD) -j$(JOBS)

build-asan: setup
	@$(CMAKE_Q) -B build-asan -DCMAKE_BUILD_TYPE=Debug -DALOG_SANITIZE=ON -DALOG_BENCH=OFF \
	  -DCMAKE_C_COMPILER=clang
	@cmake --build build-asan -j$(JOBS)

build-tsan: setup
	@$(CMAKE_Q) -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DALOG_TSAN=ON -DALOG_BENCH=OFF \
	  -DCMAKE_C_COMPILER=clang
	@cmake --build build-tsan -j$(JOBS)

build-fuzz: setup
	@$(CMAKE_Q) -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DALOG_FUZZ=ON -DALOG_BENCH=OFF \
	  -DCMAKE_C_COMPILER=clang
	@cmake --build build-fuzz -j$(JOBS)

# CMAKE_BUILD_TYPE=Release (-O3) is a build users choose; gcc's flow analysis there
# (-Wmaybe-uninitialized, -Wformat-truncation) finds what -O2 does not. Compiled only.
build-o3: setup
	@echo "== everything compiles at -O3 with -Werror =="
	@$(CMAKE_Q) -B build-o3 -DCMAKE_BUILD_TYPE=Release
	@cmake --build build-o3 -j$(JOBS)

test-release: build
	@echo "== tests (release build) =="
	@cd $(BUILD) && ctest --output-on-failure -j$(JOBS) --timeout 600
	@echo "== counts from the crash, kill -9, fault and concurrency tests =="
	@grep -h -E "^(crash explorer|kill -9 torture|  (kills|acknowledged records|recoveries)|group commit|stress|pwrite [A-Z]+|fdatasync [A-Z]+|EINTR|short writes):" \
	  $(BUILD)/Testing/Temporary/LastTest.log || true

test-asan: build-asan
	@echo "== tests under AddressSanitizer + UndefinedBehaviorSanitizer =="
	@cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j$(JOBS) --timeout 900 -LE slow

# halt_on_error: a race makes the TSan-built program (alogd too) exit at once, so the
# test that ran it fails.
test-tsan: build-tsan
	@echo "== concurrent tests under ThreadSanitizer (alogd included) =="
	@cd build-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	  ctest --output-on-failure -j$(JOBS) --timeout 900 -L concurrent --no-tests=ignore

test-fuzz: build-fuzz
	@echo "== fuzz targets (briefly each) =="
	@cd build-fuzz && ctest --output-on-failure -j$(JOBS) --timeout 600 -L fuzz

test: build-o3 test-release test-asan test-tsan test-fuzz
	@echo "make test: all suites passed"

# The long crash-consistency runs: 100,000 crash states and 10,000 kill -9 rounds.
test-long: build
	@cd $(BUILD) && ALOG_LONG=1 ctest --output-on-failure --timeout 7200 -R "crash_explorer|test_kill9"

run: build
	@bash scripts/run.sh

bench: build
	@bash bench/run.sh $(ARGS)

install: build
	@cmake --install $(BUILD)

clean:
	rm -rf build build-asan build-tsan build-fuzz build-o3
