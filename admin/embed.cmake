# Writes OUT, a C++ file defining `std::string_view NAME()` that returns the text of IN (the
# dashboard page, kept as HTML in the source tree so it can be edited and linted as HTML).
file(READ "${IN}" content)
string(FIND "${content}" ")tern_embed\"" clash)
if(NOT clash EQUAL -1)
    message(FATAL_ERROR "${IN} contains the raw string delimiter )tern_embed\"")
endif()
file(WRITE "${OUT}" "// Generated from ${IN} by admin/embed.cmake: edit that file.\n#include <string_view>\n\nnamespace tern::admin {\n\nstd::string_view ${NAME}() {\n    return R\"tern_embed(${content})tern_embed\";\n}\n\n} // namespace tern::admin\n")
