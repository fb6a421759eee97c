// The one translation unit that compiles Asio and its SSL layer (BOOST_ASIO_SEPARATE_COMPILATION,
// STYLE.md §9).
#include <boost/asio/impl/src.hpp>
