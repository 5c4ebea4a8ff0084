# Thin wrapper around CMake. `make run` and `make test` set up the machine first.
BUILD_RELEASE ?= build/release
BUILD_DEBUG   ?= build/debug
BUILD_FUZZ    ?= build/fuzz
JOBS          ?= $(shell nproc)
CONFIG        ?=

.PHONY: all setup build debug run test unit integration format format-check fuzz bench clean

all: build

setup:
	@scripts/setup

build: setup
	cmake -S . -B $(BUILD_RELEASE) -G Ninja -DCMAKE_BUILD_TYPE=Release -DHUREN_TESTS=OFF
	cmake --build $(BUILD_RELEASE) -j $(JOBS)

debug: setup
	cmake -S . -B $(BUILD_DEBUG) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DHUREN_SANITIZE=ON -DHUREN_WERROR=ON
	cmake --build $(BUILD_DEBUG) -j $(JOBS)

run: build
	$(BUILD_RELEASE)/huren serve $(if $(CONFIG),--config $(CONFIG),)

test: debug
	scripts/check-layers
	cd $(BUILD_DEBUG) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		ctest --output-on-failure -j 1

unit: debug
	cd $(BUILD_DEBUG) && ctest --output-on-failure -R '^unit/'

integration: debug
	cd $(BUILD_DEBUG) && ctest --output-on-failure -R '^integration/'

format:
	clang-format -i $$(git ls-files '*.c' '*.h' '*.cc')

format-check:
	clang-format --dry-run -Werror $$(git ls-files '*.c' '*.h' '*.cc')

fuzz: setup
	CC=clang CXX=clang++ cmake -S . -B $(BUILD_FUZZ) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DHUREN_FUZZ=ON -DHUREN_TESTS=OFF
	cmake --build $(BUILD_FUZZ) -j $(JOBS)

bench: build
	bench/ingest

clean:
	rm -rf build
