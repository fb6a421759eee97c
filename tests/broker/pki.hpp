#pragma once
// A test PKI for the TLS tests, made with the `openssl` command line (EC P-256 keys, `openssl
// ca` for validity dates, revocation and the CRL) into a temporary directory, once per test
// process, and removed at exit. Every file is world-readable: Mosquitto started as root drops
// to the `mosquitto` user before it loads certificates.
//
// Thread contract: test thread only.

#include <string>

namespace tern::test {

/// A certificate and its private key (PEM files).
struct cert_pair {
    std::string cert;
    std::string key;
};

struct test_pki {
    std::string dir;

    /// Operator CAs A and B (two roots), and a CA nobody trusts. CA certificates (PEM).
    std::string ca_a;
    std::string ca_b;
    std::string ca_untrusted;
    /// CA A's private key and its `openssl ca` database (for `openssl ocsp -index` as the
    /// responder of CA A).
    std::string ca_a_key;
    std::string ca_a_index;
    /// CA A and CA B concatenated (one cafile trusting both).
    std::string ca_bundle;
    /// A directory with CA A and CA B as .pem files and their `openssl rehash` links (capath).
    std::string capath;
    /// CA A's CRL, listing `revoked`.
    std::string crl_a;

    /// Server certificate for CN `localhost`, SAN DNS:localhost and IP:127.0.0.1, by CA A.
    cert_pair server;
    /// Server certificates for SNI: CN and SAN DNS `a.example.test` / `b.example.test`, by CA A.
    cert_pair server_sni_a;
    cert_pair server_sni_b;

    /// Client certificates (extendedKeyUsage clientAuth), CN = the name.
    cert_pair device_a; ///< CA A
    cert_pair device_b; ///< CA B
    cert_pair expired;  ///< CA A, valid from 2000-01-01 to 2001-01-01 only
    cert_pair revoked;  ///< CA A, revoked (in crl_a)
    cert_pair stranger; ///< the untrusted CA
    /// CA A, subject C=DE, O=Tern Fleet, OU="Sensors, North", CN=sensor-1 in that order (several
    /// attributes, a space and a comma inside a value: for use_subject_as_username).
    cert_pair fleet_sensor;
    /// CA A, valid and not in crl_a; write_crl_revoking_revocable() writes a CRL that lists it.
    cert_pair revocable;
};

/// The PKI, generated on the first call (a few hundred milliseconds). Throws with openssl's
/// output when a step fails.
const test_pki& pki();

/// Writes to `path` (world-readable) a new CRL of CA A listing `revoked` and `revocable`: the
/// first call revokes `revocable` in CA A's database (`openssl ca -revoke`), every call runs
/// `openssl ca -gencrl`. crl_a stays as it was.
void write_crl_revoking_revocable(const std::string& path);

} // namespace tern::test
