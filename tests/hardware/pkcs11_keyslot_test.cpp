// The pkcs11 keyslot against a real (software) token: SoftHSM2 with its
// store in a temp dir, keys made by pkcs11-tool, calls counted by OpenSC's
// pkcs11-spy. No mocks: what SoftHSM refuses here a token refuses too.
#include "daemon/keyslots/pkcs11_keyslot.hpp"

#include <dlfcn.h>
#include <gtest/gtest.h>
#include <libp11.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <regex>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/c_handle.hpp"
#include "daemon/crypto.hpp"
#include "daemon/keyslots/pkcs11_uri.hpp"
#include "tests/support/softhsm.hpp"
#include "tests/support/temp_dir.hpp"

namespace apikeyd {
namespace {

using test::SoftHsm;
using test::TempDir;

constexpr char kToken[] = "apikeyd-test";
constexpr char kPin[] = "sesame-4711";
constexpr char kWrongPin[] = "wrong-4712";

// ------------------------------------------------------------- helpers ---

std::string real_path_of(const std::filesystem::path& path) {
    return std::filesystem::canonical(path).string();
}

bool contains_bytes(std::string_view haystack, std::span<const uint8_t> needle) {
    return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(),
                       [](char a, uint8_t b) { return static_cast<uint8_t>(a) == b; }) !=
           haystack.end();
}

std::string hex(std::span<const uint8_t> bytes) {
    std::string text;
    char byte[3];
    for (uint8_t b : bytes) {
        std::snprintf(byte, sizeof byte, "%02x", b);
        text += byte;
    }
    return text;
}

template <class T>
void expect_error(const Result<T>& result, ErrorCode code, std::string_view words) {
    ASSERT_FALSE(result) << "expected an error with: " << words;
    EXPECT_EQ(result.error().code, code) << result.error().message;
    EXPECT_NE(result.error().message.find(words), std::string::npos)
        << "'" << words << "' not in: " << result.error().message;
}

// Sets an environment variable for one scope (pkcs11-spy reads its target
// and its log file from the environment).
class ScopedEnv {
  public:
    ScopedEnv(const char* name, const std::string& value) : name_(name) {
        if (const char* old = std::getenv(name)) {
            old_ = old;
        }
        setenv(name, value.c_str(), 1);
    }
    ~ScopedEnv() {
        if (old_) {
            setenv(name_, old_->c_str(), 1);
        } else {
            unsetenv(name_);
        }
    }
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;

  private:
    const char* name_;
    std::optional<std::string> old_;
};

// Routes a record through pkcs11-spy for one scope and reads back which
// PKCS#11 calls reached the token.
class Spy {
  public:
    Spy()
        : target_("PKCS11SPY", SoftHsm::module_path().string()),
          output_("PKCS11SPY_OUTPUT", (dir_ / "spy.log").string()) {
        if (SoftHsm::spy_module_path().empty()) {
            throw std::runtime_error("OpenSC's pkcs11-spy.so is not installed (opensc-pkcs11)");
        }
        // The spy never frees what it allocates when loaded. Kept mapped,
        // LeakSanitizer can name it (and the suppression below skip it);
        // once unloaded its frames would be anonymous.
        static void* const pinned =
            dlopen(SoftHsm::spy_module_path().c_str(), RTLD_NOW | RTLD_NODELETE);
        (void)pinned;
    }
    static std::string module() { return SoftHsm::spy_module_path().string(); }

    // Lines like "12: C_Login" open each logged call.
    int count(const std::string& function) const {
        if (!std::filesystem::exists(dir_ / "spy.log")) {
            return 0;
        }
        const std::string log = test::read_file(dir_ / "spy.log");
        const std::regex call("^[0-9]+: " + function + "\\b", std::regex::multiline);
        return static_cast<int>(
            std::distance(std::sregex_iterator(log.begin(), log.end(), call), {}));
    }

  private:
    TempDir dir_{"apikeyd-spy"};
    ScopedEnv target_;
    ScopedEnv output_;
};

using EvpPkeyPtr = CHandle<EVP_PKEY, EVP_PKEY_free>;
using EvpPkeyCtxPtr = CHandle<EVP_PKEY_CTX, EVP_PKEY_CTX_free>;

// The test's own look at the token through libp11, without logging in.
// SoftHSM is one instance per process: a probe must be gone before the
// keyslot loads the module again.
class TokenProbe {
  public:
    TokenProbe() : ctx_(PKCS11_CTX_new()) {
        if (PKCS11_CTX_load(ctx_, SoftHsm::module_path().c_str()) != 0) {
            PKCS11_CTX_free(ctx_);
            throw std::runtime_error("cannot load SoftHSM");
        }
        if (PKCS11_enumerate_slots(ctx_, &slots_, &count_) != 0) {
            PKCS11_CTX_unload(ctx_);
            PKCS11_CTX_free(ctx_);
            throw std::runtime_error("cannot list SoftHSM's slots");
        }
    }
    ~TokenProbe() {
        if (logged_in_ != nullptr) {
            PKCS11_logout(logged_in_);
        }
        PKCS11_release_all_slots(ctx_, slots_, count_);
        PKCS11_CTX_unload(ctx_);
        PKCS11_CTX_free(ctx_);
    }
    TokenProbe(const TokenProbe&) = delete;
    TokenProbe& operator=(const TokenProbe&) = delete;

    PKCS11_TOKEN* token(const std::string& label) const {
        for (unsigned i = 0; i < count_; ++i) {
            PKCS11_TOKEN* token = slots_[i].token;
            if (token != nullptr && token->initialized && token->label == label) {
                return token;
            }
        }
        throw std::runtime_error("no token " + label);
    }

    // The public half of the key pair with CKA_ID `id`, as a plain software
    // key. Read off the private key: libp11 0.4.12 leaks the EVP_PKEY of a
    // public key object (and ASan builds would fail on it).
    EvpPkeyPtr public_key(const std::string& label, uint8_t id, const std::string& pin) {
        PKCS11_TOKEN* found = token(label);
        if (PKCS11_open_session(found->slot, 0) != 0 ||
            PKCS11_login(found->slot, 0, pin.c_str()) != 0) {
            throw std::runtime_error("cannot log in to " + label);
        }
        logged_in_ = found->slot;
        PKCS11_KEY* keys = nullptr;
        unsigned count = 0;
        if (PKCS11_enumerate_keys(found, &keys, &count) != 0) {
            throw std::runtime_error("cannot list keys");
        }
        for (unsigned i = 0; i < count; ++i) {
            if (keys[i].id_len == 1 && keys[i].id[0] == id) {
                EvpPkeyPtr key(PKCS11_get_private_key(&keys[i]));
                unsigned char* der = nullptr;
                const int size = i2d_PUBKEY(key.get(), &der);
                const unsigned char* cursor = der;
                EvpPkeyPtr copy(d2i_PUBKEY(nullptr, &cursor, size));
                OPENSSL_free(der);
                return copy;
            }
        }
        throw std::runtime_error("no key with that id");
    }

  private:
    PKCS11_CTX* ctx_;
    PKCS11_SLOT* slots_ = nullptr;
    unsigned count_ = 0;
    PKCS11_SLOT* logged_in_ = nullptr;
};

std::vector<uint8_t> rsa_encrypt(EVP_PKEY* key, std::span<const uint8_t> message, int padding,
                                 const char* digest) {
    EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
    size_t size = 0;
    if (!ctx || EVP_PKEY_encrypt_init(ctx.get()) <= 0 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx.get(), padding) <= 0 ||
        (digest != nullptr &&
         (EVP_PKEY_CTX_set_rsa_oaep_md_name(ctx.get(), digest, nullptr) <= 0 ||
          EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx.get(), digest, nullptr) <= 0)) ||
        EVP_PKEY_encrypt(ctx.get(), nullptr, &size, message.data(), message.size()) <= 0) {
        throw std::runtime_error("RSA encrypt setup");
    }
    std::vector<uint8_t> out(size);
    if (EVP_PKEY_encrypt(ctx.get(), out.data(), &size, message.data(), message.size()) <= 0) {
        throw std::runtime_error("RSA encrypt");
    }
    out.resize(size);
    return out;
}

// ------------------------------------------------------------ URI tables ---

struct ValidUri {
    std::string text;
    Pkcs11Uri expected;
};

Pkcs11Uri with(void (*fill)(Pkcs11Uri&)) {
    Pkcs11Uri uri;
    fill(uri);
    return uri;
}

TEST(Pkcs11Uri, ParsesTheFormsTokensAndToolsWrite) {
    const std::vector<ValidUri> table = {
        {"pkcs11:", {}},
        {"PKCS11:token=T", with([](Pkcs11Uri& u) { u.token = "T"; })},
        {"pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;serial=00f32df730cde306;"
         "token=My%20Token",
         with([](Pkcs11Uri& u) {
             u.model = "SoftHSM v2";
             u.manufacturer = "SoftHSM project";
             u.serial = "00f32df730cde306";
             u.token = "My Token";
         })},
        {"pkcs11:id=%01", with([](Pkcs11Uri& u) { u.id = std::vector<uint8_t>{0x01}; })},
        {"pkcs11:token=PIV_II;id=%03;object=KEY%20MAN%20key;type=private", with([](Pkcs11Uri& u) {
             u.token = "PIV_II";
             u.id = std::vector<uint8_t>{0x03};
             u.object = "KEY MAN key";
             u.type = "private";
         })},
        {"pkcs11:id=%00%aB%FF", with([](Pkcs11Uri& u) {
             u.id = std::vector<uint8_t>{0, 0xab, 0xff};
         })},
        {"pkcs11:id=ab", with([](Pkcs11Uri& u) {
             u.id = std::vector<uint8_t>{'a', 'b'};
         })},
        {"pkcs11:token=a&b:[]@!$'()*+,=c",
         with([](Pkcs11Uri& u) { u.token = "a&b:[]@!$'()*+,=c"; })},
        {"pkcs11:object=%E2%82%AC", with([](Pkcs11Uri& u) { u.object = "\xe2\x82\xac"; })},
        {"pkcs11:token=T?module-path=/usr/lib/softhsm/libsofthsm2.so", with([](Pkcs11Uri& u) {
             u.token = "T";
             u.module_path = "/usr/lib/softhsm/libsofthsm2.so";
         })},
        {"pkcs11:?module-path=%2Fopt%2Fmy%20module.so",
         with([](Pkcs11Uri& u) { u.module_path = "/opt/my module.so"; })},
        {"pkcs11:type=public", with([](Pkcs11Uri& u) { u.type = "public"; })},
        {"pkcs11:token=" + std::string(Pkcs11Uri::kMaxValueSize, 'x'),
         with([](Pkcs11Uri& u) { u.token = std::string(Pkcs11Uri::kMaxValueSize, 'x'); })},
    };
    for (const auto& row : table) {
        SCOPED_TRACE(row.text);
        auto parsed = Pkcs11Uri::parse(row.text);
        ASSERT_TRUE(parsed) << parsed.error().message;
        EXPECT_EQ(*parsed, row.expected);
        // The canonical form, which the keyslot stores, reads back the same.
        auto again = Pkcs11Uri::parse(parsed->to_string());
        ASSERT_TRUE(again) << parsed->to_string() << ": " << again.error().message;
        EXPECT_EQ(*again, *parsed);
    }
}

TEST(Pkcs11Uri, CanonicalFormEncodesEverythingButUnreservedCharacters) {
    Pkcs11Uri uri;
    uri.token = "My Token;x";
    uri.id = std::vector<uint8_t>{0x01, 0x41};
    uri.module_path = "/usr/lib/softhsm/libsofthsm2.so";
    EXPECT_EQ(uri.to_string(),
              "pkcs11:token=My%20Token%3Bx;id=%01%41?module-path=/usr/lib/softhsm/libsofthsm2.so");
}

struct RefusedUri {
    std::string text;
    std::string words;
};

TEST(Pkcs11Uri, RefusesWhatItCannotActOnAndNamesIt) {
    const std::vector<RefusedUri> table = {
        {"", "pkcs11:"},
        {"pkcs11", "pkcs11:"},
        {"pkcs12:token=x", "pkcs11:"},
        {"pkcs11:token=x?pin-value=123456", "'pin-value' is refused"},
        {"pkcs11:token=x?pin-source=file:/etc/token-pin", "'pin-source' is refused"},
        {"pkcs11:pin-value=123456", "'pin-value' is refused"},
        {"pkcs11:token=x;colour=blue", "unknown attribute 'colour'"},
        {"pkcs11:x-vendor=1", "unknown attribute 'x-vendor'"},
        {"pkcs11:slot-id=3", "'slot-id' is not supported"},
        {"pkcs11:library-description=x", "'library-description' is not supported"},
        {"pkcs11:?module-name=opensc-pkcs11", "'module-name' is not supported"},
        {"pkcs11:token=a;token=b", "'token' appears more than once"},
        {"pkcs11:token=", "'token' has an empty value"},
        {"pkcs11:id=", "'id' has an empty value"},
        {"pkcs11:token=My Token", "%20"},
        {"pkcs11:token=a/b", "'/' is not allowed"},
        {"pkcs11:token=a?module-path=/x&y", "no '='"},
        {"pkcs11:id=%0", "two hex digits"},
        {"pkcs11:id=%zz", "two hex digits"},
        {"pkcs11:id=%", "two hex digits"},
        {"pkcs11:token=x;", "empty path attribute"},
        {"pkcs11:;token=x", "empty path attribute"},
        {"pkcs11:token=x?", "empty query attribute"},
        {"pkcs11:token=x?module-path=/a.so&", "empty query attribute"},
        {"pkcs11:token", "'token' has no '='"},
        {"pkcs11:type=secret", "'type' must be"},
        {"pkcs11:module-path=/usr/lib/x.so", "'module-path' is a query attribute"},
        {"pkcs11:?token=x", "'token' is a path attribute"},
        {"pkcs11:?module-path=relative.so", "absolute path"},
        {"pkcs11:token=a%00b", "NUL"},
        {"pkcs11:?module-path=/a%00.so", "NUL"},
        {"pkcs11:token=" + std::string(Pkcs11Uri::kMaxUriSize, 'a'), "longer than"},
        {"pkcs11:object=" + std::string(Pkcs11Uri::kMaxValueSize + 1, 'a'), "longer than 256"},
        {std::string("pkcs11:token=a\x01", 15), "byte 0x01"},
        {"pkcs11:\xff\xfe=1", "unknown attribute"},
    };
    for (const auto& row : table) {
        SCOPED_TRACE(row.text.substr(0, 80));
        auto parsed = Pkcs11Uri::parse(row.text);
        expect_error(parsed, ErrorCode::InvalidArgument, row.words);
    }
}

TEST(Pkcs11Uri, NeverRepeatsAPinItRefuses) {
    for (const std::string text : {"pkcs11:token=x?pin-value=918273", "pkcs11:token=x?918273",
                                   "pkcs11:pin-value=918273", "pkcs11:token=x?pin-source=918273",
                                   "pkcs11:token=x?module-path=/y.so&pin-value=918273"}) {
        auto parsed = Pkcs11Uri::parse(text);
        ASSERT_FALSE(parsed) << text;
        EXPECT_EQ(parsed.error().message.find("918273"), std::string::npos)
            << parsed.error().message;
    }
}

// Not a fuzzer, but the same promise checked on every run: arbitrary bytes
// and mutations of valid URIs neither crash the parser (run it under ASan)
// nor parse into something whose canonical form reads differently.
TEST(Pkcs11Uri, SurvivesArbitraryInput) {
    const std::vector<std::string> seeds = {
        "pkcs11:token=My%20Token;id=%01;object=k;type=private?module-path=/usr/lib/a.so",
        "pkcs11:serial=00f3;model=m;manufacturer=x%25y",
        "pkcs11:?module-path=/x",
    };
    const std::string alphabet = "%;?&=/:@!$'()*+,-._~aZ09 \x00\xff\x7f";
    std::mt19937 random(7512);
    auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(random); };
    size_t accepted = 0;
    for (int round = 0; round < 20000; ++round) {
        std::string text;
        if (round % 4 == 0) {
            text = "pkcs11:";
            for (size_t i = pick(40); i > 0; --i) {
                text.push_back(static_cast<char>(pick(256)));
            }
        } else {
            text = seeds[pick(seeds.size())];
            for (size_t edits = 1 + pick(4); edits > 0; --edits) {
                const size_t at = pick(text.size() + 1);
                const char c = alphabet[pick(alphabet.size())];
                switch (pick(3)) {
                    case 0:
                        text.insert(text.begin() + static_cast<std::ptrdiff_t>(at), c);
                        break;
                    case 1:
                        if (at < text.size()) {
                            text.erase(at, 1);
                        }
                        break;
                    default:
                        if (at < text.size()) {
                            text[at] = c;
                        }
                }
            }
        }
        auto parsed = Pkcs11Uri::parse(text);
        if (parsed) {
            ++accepted;
            auto again = Pkcs11Uri::parse(parsed->to_string());
            ASSERT_TRUE(again) << parsed->to_string();
            ASSERT_EQ(*again, *parsed) << text;
        } else {
            ASSERT_FALSE(parsed.error().message.empty());
        }
    }
    EXPECT_GT(accepted, 100u);  // the mutations did reach the accepting paths
}

// ------------------------------------------------------------ allowlist ---

TEST(Pkcs11ModuleAllowlist, DefaultsToWhereDebianInstallsModules) {
    const auto dirs = Pkcs11ModuleAllowlist::default_directories();
#if defined(__x86_64__) && !defined(__ILP32__)
    EXPECT_EQ(dirs, (std::vector<std::string>{"/usr/lib/x86_64-linux-gnu/pkcs11",
                                              "/usr/lib/x86_64-linux-gnu/softhsm",
                                              "/usr/lib/softhsm", "/usr/lib/x86_64-linux-gnu"}));
#endif
    const Pkcs11ModuleAllowlist allowlist;
    for (const auto& module : {SoftHsm::module_path(), SoftHsm::spy_module_path()}) {
        ASSERT_FALSE(module.empty());
        auto resolved = allowlist.resolve(module.string());
        ASSERT_TRUE(resolved) << resolved.error().message;
        EXPECT_EQ(*resolved, real_path_of(module));
    }
}

TEST(Pkcs11ModuleAllowlist, WithoutModulePathPicksOpenSc) {
    const Pkcs11ModuleAllowlist allowlist;
    auto resolved = allowlist.resolve_module(Pkcs11Uri{});
    std::optional<std::string> installed;
    for (const auto& candidate : Pkcs11ModuleAllowlist::default_module_candidates()) {
        if (!installed && std::filesystem::exists(candidate)) {
            installed = real_path_of(candidate);
        }
    }
    if (installed) {
        ASSERT_TRUE(resolved) << resolved.error().message;
        EXPECT_EQ(*resolved, *installed);
    } else {
        expect_error(resolved, ErrorCode::InvalidArgument, "opensc-pkcs11");
    }
}

TEST(Pkcs11ModuleAllowlist, RefusesModulesOutsideTheAllowedDirectories) {
    TempDir dir("apikeyd-p11-module");
    const auto copy = dir / "libsofthsm2.so";
    std::filesystem::copy_file(SoftHsm::module_path(), copy);
    std::filesystem::permissions(copy, std::filesystem::perms(0644));

    expect_error(Pkcs11ModuleAllowlist().resolve(copy.string()), ErrorCode::InvalidArgument,
                 copy.string() + "' lies outside");
    // A symlink from elsewhere into an allowed directory is judged by its target.
    const auto link = dir / "link.so";
    std::filesystem::create_symlink(SoftHsm::module_path(), link);
    auto via_link = Pkcs11ModuleAllowlist().resolve(link.string());
    ASSERT_TRUE(via_link) << via_link.error().message;
    EXPECT_EQ(*via_link, real_path_of(SoftHsm::module_path()));
    // And the other way round: a link in an allowed directory is not enough.
    const Pkcs11ModuleAllowlist only_tmp({dir.path().string()});
    const auto outward = dir / "outward.so";
    std::filesystem::create_symlink(copy, outward);
    EXPECT_TRUE(only_tmp.resolve(outward.string()));
    expect_error(only_tmp.resolve(SoftHsm::module_path().string()), ErrorCode::InvalidArgument,
                 "lies outside");

    // Allowed directory, but anyone may swap the code in it.
    std::filesystem::permissions(copy, std::filesystem::perms(0666));
    expect_error(only_tmp.resolve(copy.string()), ErrorCode::InvalidArgument,
                 "writable by group or others");

    expect_error(Pkcs11ModuleAllowlist().resolve("/usr/lib/softhsm/no-such-module.so"),
                 ErrorCode::InvalidArgument,
                 "'/usr/lib/softhsm/no-such-module.so' cannot be found");
    expect_error(Pkcs11ModuleAllowlist().resolve("libsofthsm2.so"), ErrorCode::InvalidArgument,
                 "not an absolute path");
    // SoftHSM's own directory lies inside the broad multiarch one.
    expect_error(Pkcs11ModuleAllowlist().resolve(
                     std::filesystem::canonical(SoftHsm::module_path()).parent_path().string()),
                 ErrorCode::InvalidArgument, "not a regular file");
}

// -------------------------------------------------------------- keyslot ---

class Pkcs11KeyslotTest : public ::testing::Test {
  protected:
    void SetUp() override {
        auto secret = crypto::random_secret(32);
        ASSERT_TRUE(secret);
        master = std::move(*secret);
    }

    // A fresh token `label` holding one key pair of `type` with CKA_ID 01.
    void make_token(SoftHsm::KeyType type, const std::string& label = kToken) {
        hsm.init_token(label, kPin);
        hsm.generate_key(label, kPin, type, "01", "apikeyd");
    }

    static std::string uri(const std::string& label = kToken) {
        return "pkcs11:token=" + label + ";id=%01?module-path=" + SoftHsm::module_path().string();
    }

    Result<KeyslotRecord> try_enroll(const std::string& text, std::string_view pin = kPin) {
        Pkcs11Keyslot slot(Pkcs11EnrollOptions{text, SecretBuffer::from_string(pin)});
        KeyslotRecord record;
        record.id = "ks_test";
        if (auto done = slot.enroll(master, record); !done) {
            return done.error();
        }
        return record;
    }

    KeyslotRecord enroll(const std::string& text) {
        auto record = try_enroll(text);
        EXPECT_TRUE(record) << record.error().message;
        return record ? std::move(*record) : KeyslotRecord{};
    }

    // Always through a new object, as after a restart: nothing but the
    // record carries over.
    Result<SecretBuffer> unseal(const KeyslotRecord& record, std::string_view pin = kPin,
                                Pkcs11ModuleAllowlist allowlist = {}) {
        UnlockCredentials credentials;
        credentials.pin = SecretBuffer::from_string(pin);
        return Pkcs11Keyslot(std::move(allowlist)).unseal(record, credentials);
    }

    void expect_master(const Result<SecretBuffer>& result) {
        ASSERT_TRUE(result) << result.error().message;
        EXPECT_TRUE(crypto::equal_ct(result->span(), master.span()));
    }

    // The record as the store keeps it holds the master key in no form a
    // reader of the database could use.
    void expect_master_not_in_clear(const KeyslotRecord& record) {
        const std::string params = record.params.dump();
        EXPECT_FALSE(contains_bytes(params, master.span()));
        EXPECT_EQ(params.find(hex(master.span())), std::string::npos);
        const std::string sealed(record.sealed.begin(), record.sealed.end());
        EXPECT_FALSE(contains_bytes(sealed, master.span()));
        EXPECT_EQ(params.find(kPin), std::string::npos);
    }

    SoftHsm hsm;
    SecretBuffer master;
};

TEST_F(Pkcs11KeyslotTest, RsaKeyWrapsWithOaepSha256AndUnwrapsOnTheToken) {
    make_token(SoftHsm::KeyType::Rsa2048);
    const auto record = enroll(uri());
    EXPECT_EQ(record.type, "pkcs11");
    // libp11 0.4.12 asks the token for raw RSA and decodes OAEP here, so
    // SoftHSM (whose own OAEP takes SHA-1 only) gets the SHA-256 form.
    EXPECT_EQ(record.params["mechanism"], Pkcs11Keyslot::kRsaOaepSha256);
    RecordProperty("rsa_mechanism", record.params.value("mechanism", ""));
    EXPECT_EQ(record.params["key_id"], "01");
    EXPECT_EQ(record.params["module"], real_path_of(SoftHsm::module_path()));
    EXPECT_EQ(record.params["uri"],
              "pkcs11:token=apikeyd-test;id=%01?module-path=" + SoftHsm::module_path().string());
    EXPECT_FALSE(record.params.contains("ephemeral_public"));
    EXPECT_EQ(record.sealed.size(), 256u);
    expect_master_not_in_clear(record);
    expect_master(unseal(record));
}

TEST_F(Pkcs11KeyslotTest, EcP256KeyWrapsThroughEcdhDerivedOnTheToken) {
    make_token(SoftHsm::KeyType::EcP256);
    const auto record = enroll(uri());
    EXPECT_EQ(record.params["mechanism"], Pkcs11Keyslot::kEcdhP256);
    EXPECT_EQ(record.params["key_id"], "01");
    const std::string ephemeral = record.params.value("ephemeral_public", "");
    EXPECT_EQ(ephemeral.size(), 130u);
    EXPECT_TRUE(ephemeral.starts_with("04"));
    EXPECT_EQ(record.sealed.size(), crypto::kGcmNonceSize + 32 + crypto::kGcmTagSize);
    expect_master_not_in_clear(record);
    expect_master(unseal(record));
}

TEST_F(Pkcs11KeyslotTest, RecordFromTheStoreUnsealsAgainAndAgain) {
    make_token(SoftHsm::KeyType::EcP256);
    // What a restarted daemon has: the params as JSON text and the blob,
    // the enrolling object long gone.
    KeyslotRecord reloaded;
    {
        const auto record = enroll(uri());
        reloaded.id = record.id;
        reloaded.type = record.type;
        reloaded.params = nlohmann::json::parse(record.params.dump());
        reloaded.sealed = record.sealed;
    }
    // Key handles do not outlive a login: each unseal finds the key anew.
    for (int i = 0; i < 3; ++i) {
        expect_master(unseal(reloaded));
    }
}

TEST_F(Pkcs11KeyslotTest, ReadsRecordsWrappedWithOaepSha1OrPkcs1) {
    make_token(SoftHsm::KeyType::Rsa2048);
    const auto record = enroll(uri());
    EvpPkeyPtr public_key;
    {
        TokenProbe probe;
        public_key = probe.public_key(kToken, 0x01, kPin);
    }
    struct Form {
        std::string_view mechanism;
        int padding;
        const char* digest;
    };
    for (const Form form :
         {Form{Pkcs11Keyslot::kRsaOaepSha1, RSA_PKCS1_OAEP_PADDING, "SHA1"},
          Form{Pkcs11Keyslot::kRsaPkcs1, RSA_PKCS1_PADDING, nullptr},
          Form{Pkcs11Keyslot::kRsaOaepSha256, RSA_PKCS1_OAEP_PADDING, "SHA256"}}) {
        SCOPED_TRACE(form.mechanism);
        KeyslotRecord other = record;
        other.params["mechanism"] = form.mechanism;
        other.sealed = rsa_encrypt(public_key.get(), master.span(), form.padding, form.digest);
        expect_master(unseal(other));
    }
    // A blob wrapped one way and labelled another does not open.
    KeyslotRecord mislabelled = record;
    mislabelled.params["mechanism"] = Pkcs11Keyslot::kRsaOaepSha1;
    expect_error(unseal(mislabelled), ErrorCode::Internal, "did not unwrap");
}

TEST_F(Pkcs11KeyslotTest, WrongPinIsDeniedAfterExactlyOneLogin) {
    make_token(SoftHsm::KeyType::EcP256);
    auto record = enroll(uri());
    {
        TokenProbe probe;
        ASSERT_FALSE(probe.token(kToken)->userPinCountLow);
    }
    const Spy spy;
    record.params["module"] = Spy::module();

    auto denied = unseal(record, kWrongPin);
    expect_error(denied, ErrorCode::AccessDenied, "wrong PIN for the pkcs11 token");
    EXPECT_NE(denied.error().message.find("pkcs11:token=apikeyd-test"), std::string::npos);
    EXPECT_EQ(spy.count("C_Login"), 1);
    {
        // SoftHSM keeps no retry counter, but flags a failed login.
        TokenProbe probe;
        EXPECT_TRUE(probe.token(kToken)->userPinCountLow);
    }
    // Nothing was burnt beyond that one try: the right PIN still opens it.
    expect_master(unseal(record, kPin));
    EXPECT_EQ(spy.count("C_Login"), 2);
}

TEST_F(Pkcs11KeyslotTest, MissingPinIsDeniedWithoutTouchingTheToken) {
    make_token(SoftHsm::KeyType::EcP256);
    auto record = enroll(uri());
    const Spy spy;
    record.params["module"] = Spy::module();
    expect_error(unseal(record, ""), ErrorCode::AccessDenied, "needs its PIN");
    // A PIN file with its line break left in is refused before the token
    // sees it, too.
    expect_error(unseal(record, std::string(kPin) + "\n"), ErrorCode::InvalidArgument,
                 "control character");
    EXPECT_EQ(spy.count("C_Initialize"), 0);
    EXPECT_EQ(spy.count("C_Login"), 0);
}

TEST_F(Pkcs11KeyslotTest, DeletedTokenIsReportedByItsUri) {
    make_token(SoftHsm::KeyType::EcP256);
    const auto record = enroll(uri());
    hsm.delete_token(kToken);
    auto gone = unseal(record);
    expect_error(gone, ErrorCode::NotFound,
                 "no token matches " + record.params["uri"].get<std::string>());
    // Another token in the same module does not stand in for it.
    make_token(SoftHsm::KeyType::EcP256, "apikeyd-other");
    expect_error(unseal(record), ErrorCode::NotFound, "tokens present: pkcs11:token=apikeyd-other");
}

TEST_F(Pkcs11KeyslotTest, ModulesOutsideTheAllowlistAreRefused) {
    make_token(SoftHsm::KeyType::EcP256);
    TempDir dir("apikeyd-p11-module");
    const auto copy = dir / "libsofthsm2.so";
    std::filesystem::copy_file(SoftHsm::module_path(), copy);
    std::filesystem::permissions(copy, std::filesystem::perms(0755));

    expect_error(try_enroll("pkcs11:token=apikeyd-test?module-path=" + copy.string()),
                 ErrorCode::InvalidArgument, copy.string());

    const auto record = enroll(uri());
    KeyslotRecord moved = record;
    moved.params["module"] = copy.string();
    expect_error(unseal(moved), ErrorCode::Internal, copy.string() + "' lies outside");
    moved.params["module"] = "/usr/lib/softhsm/gone.so";
    expect_error(unseal(moved), ErrorCode::Internal, "'/usr/lib/softhsm/gone.so' cannot be found");
    // The allowlist is the unsealing object's, not the record's: narrowing
    // it shuts out a module that was fine at enrolment.
    expect_error(unseal(record, kPin, Pkcs11ModuleAllowlist({"/usr/lib/x86_64-linux-gnu/pkcs11"})),
                 ErrorCode::Internal, "lies outside");
}

TEST_F(Pkcs11KeyslotTest, EnrolmentRefusesWhatCannotWork) {
    hsm.init_token(kToken, kPin);
    hsm.generate_key(kToken, kPin, SoftHsm::KeyType::EcP256, "01", "one");
    hsm.generate_key(kToken, kPin, SoftHsm::KeyType::EcP256, "02", "two");
    const std::string module = "?module-path=" + SoftHsm::module_path().string();

    expect_error(try_enroll("pkcs11:token=apikeyd-test" + module), ErrorCode::InvalidArgument,
                 "2 private keys on the pkcs11 token match");
    expect_error(try_enroll("pkcs11:token=apikeyd-test;id=%09" + module),
                 ErrorCode::InvalidArgument, "no private key on the pkcs11 token matches");
    expect_error(try_enroll("pkcs11:token=nope;id=%01" + module), ErrorCode::NotFound,
                 "no token matches pkcs11:token=nope;id=%01");
    expect_error(try_enroll("pkcs11:token=apikeyd-test;type=cert" + module),
                 ErrorCode::InvalidArgument, "type=cert");
    expect_error(try_enroll("pkcs11:token=apikeyd-test;id=%01" + module, ""),
                 ErrorCode::InvalidArgument, "needs the token's PIN");
    expect_error(try_enroll("pkcs11:token=apikeyd-test;id=%01" + module, kWrongPin),
                 ErrorCode::AccessDenied, "wrong PIN for the pkcs11 token");
    expect_error(try_enroll("pkcs11:token=apikeyd-test;id=%01?pin-value=314159"),
                 ErrorCode::InvalidArgument, "'pin-value' is refused");

    // The object label picks one as well as the id does.
    auto by_label = try_enroll("pkcs11:token=apikeyd-test;object=two" + module);
    ASSERT_TRUE(by_label) << by_label.error().message;
    EXPECT_EQ(by_label->params["key_id"], "02");
    expect_master(unseal(*by_label));
}

TEST_F(Pkcs11KeyslotTest, DamagedRecordsFailCleanly) {
    make_token(SoftHsm::KeyType::EcP256);
    const auto record = enroll(uri());

    KeyslotRecord flipped = record;
    flipped.sealed[20] ^= 0x01;
    expect_error(unseal(flipped), ErrorCode::Internal, "did not unwrap");

    KeyslotRecord off_curve = record;
    std::string point = record.params["ephemeral_public"];
    point[point.size() - 1] = point.back() == '0' ? '1' : '0';
    off_curve.params["ephemeral_public"] = point;
    auto result = unseal(off_curve);
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code, ErrorCode::Internal) << result.error().message;

    KeyslotRecord other_id = record;
    other_id.params["key_id"] = "02";
    expect_error(unseal(other_id), ErrorCode::Internal,
                 "no private key on the pkcs11 token matches pkcs11:token=apikeyd-test;id=%01");

    KeyslotRecord called_rsa = record;
    called_rsa.params["mechanism"] = Pkcs11Keyslot::kRsaOaepSha256;
    called_rsa.params.erase("ephemeral_public");
    expect_error(unseal(called_rsa), ErrorCode::Internal, "no longer an RSA key");

    for (const char* field : {"uri", "mechanism", "key_id", "module", "ephemeral_public"}) {
        KeyslotRecord missing = record;
        missing.params.erase(field);
        expect_error(unseal(missing), ErrorCode::Internal, "record is malformed");
    }
    KeyslotRecord with_pin = record;
    with_pin.params["uri"] = "pkcs11:token=apikeyd-test?pin-value=314159";
    auto refused = unseal(with_pin);
    expect_error(refused, ErrorCode::Internal, "record is malformed");
}

TEST_F(Pkcs11KeyslotTest, NoPinAppearsInAnyMessage) {
    make_token(SoftHsm::KeyType::EcP256);
    const auto record = enroll(uri());
    std::vector<std::string> messages;
    auto collect = [&](const auto& result) {
        ASSERT_FALSE(result);
        messages.push_back(result.error().message);
    };
    collect(unseal(record, kWrongPin));
    collect(unseal(record, std::string(kWrongPin) + "\r"));
    collect(unseal(record, std::string(300, '7')));
    collect(try_enroll(uri(), kWrongPin));
    collect(try_enroll(uri() + "&pin-value=" + kPin));
    collect(try_enroll("pkcs11:token=apikeyd-test?" + std::string(kPin)));
    KeyslotRecord gone = record;
    gone.params["uri"] = "pkcs11:token=gone";
    collect(unseal(gone));
    for (const auto& message : messages) {
        EXPECT_EQ(message.find(kPin), std::string::npos) << message;
        EXPECT_EQ(message.find(kWrongPin), std::string::npos) << message;
        EXPECT_EQ(message.find("777777"), std::string::npos) << message;
    }
}

}  // namespace
}  // namespace apikeyd

// pkcs11-spy (OpenSC's, test-only) leaks a few bytes per load; nothing of
// ours. Read by LeakSanitizer in sanitizer builds, ignored otherwise. If
// another test file of this binary needs suppressions too, merge them here.
extern "C" __attribute__((used)) const char* __lsan_default_suppressions() {
    return "leak:pkcs11-spy.so\n";
}
