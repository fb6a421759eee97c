// Catch2's main() for every test executable, compiled once (tests/CMakeLists.txt: at -O0,
// since Catch2's runner is the heaviest translation unit of the suite and its speed does not
// matter; under ASan at -O2 each of the eight copies took minutes of the CI build).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
