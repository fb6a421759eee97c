#include <tern/net/ocsp.hpp>
#include <tern/net/tcp_transport.hpp>
#include <tern/net/tls_transport.hpp>

#include <boost/asio/post.hpp>
#include <fmt/format.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <vector>

namespace tern::net {

namespace asio = boost::asio;

namespace {

std::string bio_text(BIO* bio) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

std::string name_text(const X509_NAME* name) {
    BIO* bio = BIO_new(BIO_s_mem());
    if (bio == nullptr) {
        return {};
    }
    X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253);
    auto text = bio_text(bio);
    BIO_free(bio);
    return text;
}

std::string asn1_string_text(const ASN1_STRING* s) {
    return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                       static_cast<std::size_t>(ASN1_STRING_length(s)));
}

std::string time_text(const ASN1_TIME* t) {
    std::tm tm{};
    if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) {
        return {};
    }
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y%m%d%H%M%SZ", &tm);
    return buf;
}

std::string ip_text(const ASN1_OCTET_STRING* ip) {
    const auto* d = ASN1_STRING_get0_data(ip);
    const int n = ASN1_STRING_length(ip);
    if (n == 4) {
        return fmt::format("{}.{}.{}.{}", d[0], d[1], d[2], d[3]);
    }
    std::string out;
    for (int i = 0; i + 1 < n; i += 2) {
        out += fmt::format("{}{:x}", i == 0 ? "" : ":", (d[i] << 8) | d[i + 1]);
    }
    return out;
}

peer_certificate describe_certificate(X509* cert) {
    peer_certificate c;
    const X509_NAME* subject = X509_get_subject_name(cert);
    c.subject = name_text(subject);
    c.issuer = name_text(X509_get_issuer_name(cert));
    const int cn = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (cn >= 0) {
        c.common_name =
            asn1_string_text(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, cn)));
    }
    if (auto* names = static_cast<GENERAL_NAMES*>(
            X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr))) {
        for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
            const GENERAL_NAME* g = sk_GENERAL_NAME_value(names, i);
            switch (g->type) {
            case GEN_DNS:
                c.subject_alt_names.push_back("DNS:" + asn1_string_text(g->d.dNSName));
                break;
            case GEN_URI:
                c.subject_alt_names.push_back("URI:" +
                                              asn1_string_text(g->d.uniformResourceIdentifier));
                break;
            case GEN_EMAIL:
                c.subject_alt_names.push_back("email:" + asn1_string_text(g->d.rfc822Name));
                break;
            case GEN_IPADD:
                c.subject_alt_names.push_back("IP:" + ip_text(g->d.iPAddress));
                break;
            default:
                break;
            }
        }
        GENERAL_NAMES_free(names);
    }
    if (const ASN1_INTEGER* serial = X509_get0_serialNumber(cert)) {
        if (BIGNUM* bn = ASN1_INTEGER_to_BN(serial, nullptr)) {
            if (char* hex = BN_bn2hex(bn)) {
                c.serial = hex;
                OPENSSL_free(hex);
            }
            BN_free(bn);
        }
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (X509_digest(cert, EVP_sha256(), md, &md_len) == 1) {
        c.sha256_fingerprint.reserve(md_len * 2);
        for (unsigned int i = 0; i < md_len; ++i) {
            c.sha256_fingerprint += fmt::format("{:02x}", md[i]);
        }
    }
    c.not_before = time_text(X509_get0_notBefore(cert));
    c.not_after = time_text(X509_get0_notAfter(cert));
    return c;
}

} // namespace

tls_transport::tls_transport(asio::ip::tcp::socket socket,
                             std::shared_ptr<const tls_server_context> context)
    : tls_stream(std::move(socket), "client"), context_(std::move(context)) {
    if (adopt(context_ ? context_->new_session() : nullptr)) {
        SSL_set_accept_state(ssl_);
    }
}

void tls_transport::on_handshake_done() {
    if (const char* name = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name)) {
        peer_.server_name = name;
    }
    peer_.psk_identity = tls_server_context::psk_identity(ssl_);
    // With SSL_VERIFY_PEER a certificate that is here has been verified (chain, dates, CRL):
    // the handshake would have failed otherwise.
    if (X509* cert = SSL_get1_peer_certificate(ssl_)) {
        if (SSL_get_verify_result(ssl_) == X509_V_OK) {
            peer_.certificate = describe_certificate(cert);
            // The verified chain starts with the peer's certificate; its issuer, when the chain
            // has one, is next. The OCSP CertID needs both (the issuer's name and key hashes).
            if (STACK_OF(X509)* chain = SSL_get0_verified_chain(ssl_);
                chain != nullptr && sk_X509_num(chain) >= 2) {
                peer_.certificate->ocsp_cert_id =
                    ocsp_cert_id_der(sk_X509_value(chain, 0), sk_X509_value(chain, 1));
            }
        }
        X509_free(cert);
    }
}

} // namespace tern::net
