# Thin wrapper over the CMake presets: the two quick-start commands and a few helpers.
#   make run    install what is missing, build (release), start the broker on 127.0.0.1:1883
#   make test   install what is missing, build, and run the whole test suite
PRESET ?= release
FUZZ_SECONDS ?= 60
JOBS ?= $(shell nproc)

.PHONY: all deps build run test bench fuzz format clean

all: build

deps:
	@bash tools/install-deps.sh

build: deps
	@cmake --preset $(PRESET) >/dev/null
	@cmake --build --preset $(PRESET) -j $(JOBS)

# Only the broker: the quick start should not wait for the test suites to compile.
run: deps
	@cmake --preset $(PRESET) >/dev/null
	@cmake --build --preset $(PRESET) -j $(JOBS) --target tern
	./build/$(PRESET)/broker/tern

test: deps
	@bash tools/run-tests.sh

bench: deps
	@bash tools/run-bench.sh

fuzz: deps
	@bash tools/run-fuzz.sh $(FUZZ_SECONDS)

format:
	@git ls-files '*.cpp' '*.hpp' | xargs clang-format -i

clean:
	rm -rf build
