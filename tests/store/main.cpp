// Catch2's main() for store_unit_tests, in its own translation unit so the test files rebuild
// quickly.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
