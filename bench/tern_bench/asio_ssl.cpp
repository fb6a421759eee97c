// Asio's SSL layer compiled once for tern-bench (BOOST_ASIO_SEPARATE_COMPILATION: tern::asio
// compiles only the core, see broker/src/asio.cpp).
#include <boost/asio/ssl/impl/src.hpp>
