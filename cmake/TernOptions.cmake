# Warning and sanitizer settings as INTERFACE targets, linked by each module (STYLE.md §9).

add_library(tern_warnings INTERFACE)
add_library(tern::warnings ALIAS tern_warnings)
target_compile_options(tern_warnings INTERFACE
    -Wall -Wextra -Wconversion -Wsign-conversion -Wshadow -pedantic
    # Clang checks the TERN_GUARDED_BY / TERN_REQUIRES annotations (core/thread_annotations.hpp).
    $<$<CXX_COMPILER_ID:Clang>:-Wthread-safety>
    $<$<BOOL:${TERN_WERROR}>:-Werror>)

# Sanitizers are chosen by the preset and reach every target through tern::sanitize, which each
# module links PUBLIC so executables pick up the link flags too.
add_library(tern_sanitize INTERFACE)
add_library(tern::sanitize ALIAS tern_sanitize)
if(TERN_SANITIZE)
    list(JOIN TERN_SANITIZE "," _tern_san)
    target_compile_options(tern_sanitize INTERFACE
        -fsanitize=${_tern_san} -fno-omit-frame-pointer -fno-sanitize-recover=all)
    target_link_options(tern_sanitize INTERFACE -fsanitize=${_tern_san})
endif()

# libFuzzer instrumentation for the library code under test; the fuzz targets add
# -fsanitize=fuzzer themselves (it brings main()).
add_library(tern_fuzz_instrument INTERFACE)
add_library(tern::fuzz_instrument ALIAS tern_fuzz_instrument)
if(TERN_BUILD_FUZZERS)
    target_compile_options(tern_fuzz_instrument INTERFACE -fsanitize=fuzzer-no-link)
endif()

# Every public header compiles on its own (STYLE.md §2): one generated translation unit per
# header of `target`, gathered in the `tern_check_headers` target, which is part of ALL.
if(NOT TARGET tern_check_headers)
    add_custom_target(tern_check_headers ALL)
endif()
function(tern_check_headers target include_dir)
    file(GLOB_RECURSE headers RELATIVE ${include_dir} CONFIGURE_DEPENDS ${include_dir}/*.hpp)
    set(sources)
    foreach(header IN LISTS headers)
        string(MAKE_C_IDENTIFIER ${header} id)
        set(source ${CMAKE_CURRENT_BINARY_DIR}/check_headers/${id}.cpp)
        file(CONFIGURE OUTPUT ${source} CONTENT "#include <${header}>\n")
        list(APPEND sources ${source})
    endforeach()
    add_library(${target}_check_headers OBJECT EXCLUDE_FROM_ALL ${sources})
    target_link_libraries(${target}_check_headers PRIVATE ${target} tern::warnings)
    add_dependencies(tern_check_headers ${target}_check_headers)
endfunction()
