# Thin wrapper over the CMake presets: the two quick-start commands and a few helpers.
#   make run    install what is missing, build (release), start the broker on 127.0.0.1:1883
#   make test   install what is missing, build, and run the whole test suite
PRESET ?= release
FUZZ_SECONDS ?= 60
JOBS ?= $(shell nproc)

.PHONY: all deps build run test bench fuzz format clean install
PREFIX ?= /usr/local

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

# The binary, /etc/tern/tern.conf (kept when it exists), the systemd unit and the docs under
# PREFIX (/usr for a Debian-style layout: /usr/bin, /etc/tern, /usr/lib/systemd/system);
# DESTDIR stages it elsewhere. Run as root without DESTDIR, it also creates the `tern` system
# user the unit runs as (docs/operations.md).
install: deps
	@cmake --preset $(PRESET) >/dev/null
	@cmake --build --preset $(PRESET) -j $(JOBS) --target tern
	@cmake --install build/$(PRESET) --prefix $(PREFIX)
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && ! getent passwd tern >/dev/null; then \
		useradd --system --user-group --no-create-home --home-dir /var/lib/tern \
			--shell /usr/sbin/nologin tern && echo "tern: created the system user 'tern'"; \
	fi

format:
	@git ls-files '*.cpp' '*.hpp' | xargs clang-format -i

clean:
	rm -rf build
