#include "pki.hpp"

#include "support.hpp"

#include <cstdlib>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <vector>

namespace tern::test {

namespace {

namespace fs = std::filesystem;

/// Bound for each openssl invocation (each takes a few milliseconds).
constexpr auto openssl_timeout = 20s;

void write_text(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::trunc);
    out << text;
    if (!out) {
        throw std::runtime_error("cannot write " + path);
    }
}

void openssl(std::vector<std::string> args) {
    args.insert(args.begin(), "openssl");
    const command_result r = run_command(args, openssl_timeout);
    if (r.exit_code != 0) {
        std::string line;
        for (const auto& a : args) {
            line += a + ' ';
        }
        throw std::runtime_error("test PKI: `" + line + "` failed (" +
                                 (r.timed_out ? "timeout" : std::to_string(r.exit_code)) + "):\n" +
                                 r.output);
    }
}

/// A directory managed by `openssl ca`: its key and self-signed certificate, index, serial,
/// CRL number and the minimal configuration `openssl ca` needs.
struct authority {
    std::string dir;
    std::string cert;
    std::string key;
    std::string config;
};

authority make_ca(const std::string& root, const std::string& name) {
    authority ca;
    ca.dir = root + "/ca-" + name;
    fs::create_directories(ca.dir + "/issued");
    ca.cert = ca.dir + "/ca.pem";
    ca.key = ca.dir + "/ca.key";
    ca.config = ca.dir + "/ca.cnf";
    write_text(ca.dir + "/index.txt", "");
    write_text(ca.dir + "/serial", "1000\n");
    write_text(ca.dir + "/crlnumber", "1000\n");
    write_text(ca.config, "[ ca ]\n"
                          "default_ca = ca_default\n"
                          "[ ca_default ]\n"
                          "dir = " +
                              ca.dir +
                              "\n"
                              "database = $dir/index.txt\n"
                              "new_certs_dir = $dir/issued\n"
                              "serial = $dir/serial\n"
                              "crlnumber = $dir/crlnumber\n"
                              "certificate = $dir/ca.pem\n"
                              "private_key = $dir/ca.key\n"
                              "default_md = sha256\n"
                              "default_days = 3650\n"
                              "default_crl_days = 3650\n"
                              "policy = policy_any\n"
                              "unique_subject = no\n"
                              "email_in_dn = no\n"
                              "[ policy_any ]\n"
                              "commonName = supplied\n");
    openssl({"req",
             "-x509",
             "-new",
             "-newkey",
             "ec",
             "-pkeyopt",
             "ec_paramgen_curve:P-256",
             "-nodes",
             "-keyout",
             ca.key,
             "-out",
             ca.cert,
             "-days",
             "3650",
             "-subj",
             "/CN=Tern test CA " + name,
             "-addext",
             "basicConstraints=critical,CA:TRUE",
             "-addext",
             "keyUsage=critical,keyCertSign,cRLSign"});
    return ca;
}

/// A key and a certificate for CN `name` issued by `ca`. `san` empty: a client certificate
/// (clientAuth); otherwise a server certificate (serverAuth) with that subjectAltName.
/// `start` / `end`: validity dates (YYYYMMDDHHMMSSZ) instead of now + 10 years.
cert_pair issue(const std::string& root, const authority& ca, const std::string& name,
                const std::string& san, const std::string& start = {},
                const std::string& end = {}) {
    const std::string base = root + "/" + name;
    cert_pair pair{base + ".pem", base + ".key"};
    const std::string csr = base + ".csr";
    const std::string ext = base + ".ext";
    openssl({"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", pair.key, "-out", csr, "-subj", "/CN=" + name});
    write_text(ext,
               "basicConstraints = critical,CA:FALSE\n"
               "keyUsage = critical,digitalSignature\n" +
                   (san.empty() ? std::string("extendedKeyUsage = clientAuth\n")
                                : "extendedKeyUsage = serverAuth\nsubjectAltName = " + san + "\n"));
    std::vector<std::string> args{"ca", "-batch", "-notext", "-config", ca.config, "-extfile",
                                  ext,  "-in",    csr,       "-out",    pair.cert};
    if (!start.empty()) {
        args.insert(args.end(), {"-startdate", start, "-enddate", end});
    }
    openssl(std::move(args));
    return pair;
}

/// A client certificate (clientAuth) with the subject `subject` ("/C=DE/O=.../CN=name") kept
/// as the request has it (`-preserveDN`: CA policy_any would keep only the CN), by `ca`.
cert_pair issue_with_subject(const std::string& root, const authority& ca, const std::string& name,
                             const std::string& subject) {
    const std::string base = root + "/" + name;
    cert_pair pair{base + ".pem", base + ".key"};
    const std::string csr = base + ".csr";
    const std::string ext = base + ".ext";
    openssl({"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", pair.key, "-out", csr, "-subj", subject});
    write_text(ext, "basicConstraints = critical,CA:FALSE\n"
                    "keyUsage = critical,digitalSignature\n"
                    "extendedKeyUsage = clientAuth\n");
    openssl({"ca", "-batch", "-notext", "-preserveDN", "-config", ca.config, "-extfile", ext, "-in",
             csr, "-out", pair.cert});
    return pair;
}

/// Everything readable by others (Mosquitto reads the files as user `mosquitto`).
void make_world_readable(const std::string& root) {
    fs::permissions(root, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                              fs::perms::others_read | fs::perms::others_exec);
    for (const auto& entry : fs::recursive_directory_iterator(root)) {
        if (entry.is_symlink()) {
            continue;
        }
        const auto extra = entry.is_directory()
                               ? fs::perms::group_read | fs::perms::group_exec |
                                     fs::perms::others_read | fs::perms::others_exec
                               : fs::perms::group_read | fs::perms::others_read;
        fs::permissions(entry.path(), extra, fs::perm_options::add);
    }
}

struct owned_pki {
    test_pki paths;
    ~owned_pki() {
        if (!paths.dir.empty()) {
            std::error_code ec;
            fs::remove_all(paths.dir, ec);
        }
    }
};

std::unique_ptr<owned_pki> generate() {
    auto out = std::make_unique<owned_pki>();
    char pattern[] = "/tmp/tern-test-pki-XXXXXX";
    if (::mkdtemp(pattern) == nullptr) {
        throw std::runtime_error("mkdtemp failed");
    }
    test_pki& p = out->paths;
    p.dir = pattern;
    const std::string& root = p.dir;

    const authority a = make_ca(root, "A");
    const authority b = make_ca(root, "B");
    const authority untrusted = make_ca(root, "untrusted");
    p.ca_a = a.cert;
    p.ca_a_key = a.key;
    p.ca_a_index = a.dir + "/index.txt";
    p.ca_b = b.cert;
    p.ca_untrusted = untrusted.cert;

    p.server = issue(root, a, "localhost", "DNS:localhost,IP:127.0.0.1");
    p.server_sni_a = issue(root, a, "a.example.test", "DNS:a.example.test");
    p.server_sni_b = issue(root, a, "b.example.test", "DNS:b.example.test");
    p.device_a = issue(root, a, "device-a", {});
    p.device_b = issue(root, b, "device-b", {});
    p.expired = issue(root, a, "expired", {}, "20000101000000Z", "20010101000000Z");
    p.revoked = issue(root, a, "revoked", {});
    p.stranger = issue(root, untrusted, "stranger", {});
    p.fleet_sensor = issue_with_subject(root, a, "fleet-sensor",
                                        "/C=DE/O=Tern Fleet/OU=Sensors, North/CN=sensor-1");
    p.revocable = issue(root, a, "revocable", {});

    openssl({"ca", "-batch", "-config", a.config, "-revoke", p.revoked.cert});
    p.crl_a = root + "/crl-a.pem";
    openssl({"ca", "-batch", "-config", a.config, "-gencrl", "-out", p.crl_a});

    p.ca_bundle = root + "/ca-bundle.pem";
    {
        std::ofstream bundle(p.ca_bundle, std::ios::trunc);
        bundle << std::ifstream(p.ca_a).rdbuf();
        bundle << std::ifstream(p.ca_b).rdbuf();
        if (!bundle) {
            throw std::runtime_error("cannot write " + p.ca_bundle);
        }
    }
    p.capath = root + "/capath";
    fs::create_directories(p.capath);
    fs::copy_file(p.ca_a, p.capath + "/ca-a.pem");
    fs::copy_file(p.ca_b, p.capath + "/ca-b.pem");
    openssl({"rehash", p.capath});

    make_world_readable(root);
    return out;
}

} // namespace

const test_pki& pki() {
    static const std::unique_ptr<owned_pki> instance = generate();
    return instance->paths;
}

void write_crl_revoking_revocable(const std::string& path) {
    const test_pki& p = pki();
    const std::string config = p.dir + "/ca-A/ca.cnf"; // make_ca(root, "A")
    static bool revoked = false;
    if (!revoked) {
        openssl({"ca", "-batch", "-config", config, "-revoke", p.revocable.cert});
        revoked = true;
    }
    openssl({"ca", "-batch", "-config", config, "-gencrl", "-out", path});
    fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                              fs::perms::others_read);
}

} // namespace tern::test
