// Asio's SSL layer compiled once (BOOST_ASIO_SEPARATE_COMPILATION): tern-bench's client uses
// asio::ssl::stream; the broker's TLS transport drives OpenSSL directly
// (net/src/tls_transport.cpp).
#include <boost/asio/ssl/impl/src.hpp>
