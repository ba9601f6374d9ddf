// The tpm2 keyslot against a real (software) TPM: swtpm, one per test, in a
// temp dir. No mocks: what the TPM refuses here it refuses on a machine.
#include "daemon/keyslots/tpm2_keyslot.hpp"

#include <gtest/gtest.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "daemon/crypto.hpp"
#include "tests/support/swtpm.hpp"
#include "tests/support/temp_dir.hpp"

namespace apikeyd {
namespace {

using test::Swtpm;

std::string rc_text(TSS2_RC rc) {
    char code[16];
    std::snprintf(code, sizeof code, "0x%x ", rc);
    return code + std::string(Tss2_RC_Decode(rc));
}

TSS2_RC tpm_rc_base(TSS2_RC rc) {
    rc &= ~TSS2_RC_LAYER_MASK;
    return (rc & TPM2_RC_FMT1) != 0 ? rc & (TPM2_RC_FMT1 | 0x3F) : rc;
}

void check(TSS2_RC rc, const char* what) {
    if (rc != TSS2_RC_SUCCESS) {
        throw std::runtime_error(std::string(what) + ": " + rc_text(rc));
    }
}

// The test's own look at the TPM, from outside the keyslot. swtpm serves one
// connection at a time, so a probe lives only as long as one question.
class TpmProbe {
  public:
    explicit TpmProbe(const std::string& tcti) {
        check(Tss2_TctiLdr_Initialize(tcti.c_str(), &tcti_), "Tss2_TctiLdr_Initialize");
        if (const TSS2_RC rc = Esys_Initialize(&esys_, tcti_, nullptr); rc != TSS2_RC_SUCCESS) {
            Tss2_TctiLdr_Finalize(&tcti_);
            check(rc, "Esys_Initialize");
        }
    }
    ~TpmProbe() {
        Esys_Finalize(&esys_);
        Tss2_TctiLdr_Finalize(&tcti_);
    }
    TpmProbe(const TpmProbe&) = delete;
    TpmProbe& operator=(const TpmProbe&) = delete;
    ESYS_CONTEXT* esys() const { return esys_; }

  private:
    TSS2_TCTI_CONTEXT* tcti_ = nullptr;
    ESYS_CONTEXT* esys_ = nullptr;
};

std::vector<TPM2_HANDLE> handles_from(const std::string& tcti, TPM2_HANDLE first) {
    TpmProbe probe(tcti);
    TPMI_YES_NO more = TPM2_NO;
    TPMS_CAPABILITY_DATA* data = nullptr;
    check(Esys_GetCapability(probe.esys(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                             TPM2_CAP_HANDLES, first, TPM2_MAX_CAP_HANDLES, &more, &data),
          "GetCapability(HANDLES)");
    std::vector<TPM2_HANDLE> found;
    // The capability lists from `first` on; keep only its range. Sessions
    // are the exception: asking for loaded (0x02) sessions lists policy
    // sessions too, under their own 0x03 handles.
    const auto type_of = [](TPM2_HANDLE h) { return h >> TPM2_HR_SHIFT; };
    const bool sessions =
        type_of(first) == TPM2_HT_LOADED_SESSION || type_of(first) == TPM2_HT_SAVED_SESSION;
    for (UINT32 i = 0; i < data->data.handles.count; ++i) {
        const TPM2_HANDLE h = data->data.handles.handle[i];
        if (type_of(h) == type_of(first) || (sessions && (type_of(h) == TPM2_HT_LOADED_SESSION ||
                                                          type_of(h) == TPM2_HT_SAVED_SESSION))) {
            found.push_back(h);
        }
    }
    Esys_Free(data);
    return found;
}

// Everything a keyslot operation could leave behind on a TPM without a
// resource manager: transient objects, loaded and saved sessions.
std::vector<TPM2_HANDLE> leftover_handles(const std::string& tcti) {
    std::vector<TPM2_HANDLE> all;
    for (TPM2_HANDLE first : {TPM2_TRANSIENT_FIRST, TPM2_LOADED_SESSION_FIRST,
                              static_cast<TPM2_HANDLE>(TPM2_ACTIVE_SESSION_FIRST)}) {
        auto some = handles_from(tcti, first);
        all.insert(all.end(), some.begin(), some.end());
    }
    std::sort(all.begin(), all.end());
    all.erase(std::unique(all.begin(), all.end()), all.end());
    return all;
}

uint32_t tpm_property(const std::string& tcti, TPM2_PT property) {
    TpmProbe probe(tcti);
    TPMI_YES_NO more = TPM2_NO;
    TPMS_CAPABILITY_DATA* data = nullptr;
    check(Esys_GetCapability(probe.esys(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                             TPM2_CAP_TPM_PROPERTIES, property, 1, &more, &data),
          "GetCapability(TPM_PROPERTIES)");
    const auto& props = data->data.tpmProperties;
    const uint32_t value = props.count > 0 && props.tpmProperty[0].property == property
                               ? props.tpmProperty[0].value
                               : UINT32_MAX;
    Esys_Free(data);
    return value;
}

uint32_t lockout_counter(const std::string& tcti) {
    return tpm_property(tcti, TPM2_PT_LOCKOUT_COUNTER);
}

void extend_pcr(const std::string& tcti, ESYS_TR pcr) {
    TpmProbe probe(tcti);
    TPML_DIGEST_VALUES digests{};
    digests.count = 1;
    digests.digests[0].hashAlg = TPM2_ALG_SHA256;
    std::fill_n(digests.digests[0].digest.sha256, TPM2_SHA256_DIGEST_SIZE, uint8_t{0x5a});
    check(
        Esys_PCR_Extend(probe.esys(), pcr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &digests),
        "PCR_Extend");
}

// The SRK template the keyslot documents (TCG ECC P-256 storage key, noDA);
// `unique` makes a key of the same shape but another Name.
TPM2B_PUBLIC srk_template(std::string_view unique = {}) {
    TPM2B_PUBLIC pub{};
    auto& area = pub.publicArea;
    area.type = TPM2_ALG_ECC;
    area.nameAlg = TPM2_ALG_SHA256;
    area.objectAttributes = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT | TPMA_OBJECT_FIXEDTPM |
                            TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                            TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_NODA;
    area.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
    area.parameters.eccDetail.symmetric.keyBits.aes = 128;
    area.parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
    area.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
    area.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    area.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    area.unique.ecc.x.size = static_cast<UINT16>(unique.size());
    std::copy(unique.begin(), unique.end(), area.unique.ecc.x.buffer);
    return pub;
}

std::string hex(const uint8_t* data, size_t size) {
    std::string text;
    char byte[3];
    for (size_t i = 0; i < size; ++i) {
        std::snprintf(byte, sizeof byte, "%02x", data[i]);
        text += byte;
    }
    return text;
}

ESYS_TR create_primary(ESYS_CONTEXT* esys, const TPM2B_PUBLIC& in_public) {
    const TPM2B_SENSITIVE_CREATE sensitive{};
    const TPM2B_DATA outside{};
    const TPML_PCR_SELECTION creation{};
    ESYS_TR primary = ESYS_TR_NONE;
    check(Esys_CreatePrimary(esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                             &sensitive, &in_public, &outside, &creation, &primary, nullptr,
                             nullptr, nullptr, nullptr),
          "CreatePrimary");
    return primary;
}

// Makes a persistent key at 0x81000001, as a provisioning tool would; returns its Name (hex).
std::string make_persistent_srk(const std::string& tcti, const TPM2B_PUBLIC& in_public) {
    TpmProbe probe(tcti);
    const ESYS_TR primary = create_primary(probe.esys(), in_public);
    ESYS_TR persistent = ESYS_TR_NONE;
    const TSS2_RC rc =
        Esys_EvictControl(probe.esys(), ESYS_TR_RH_OWNER, primary, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                          ESYS_TR_NONE, Tpm2Keyslot::kPersistentSrkHandle, &persistent);
    Esys_FlushContext(probe.esys(), primary);
    check(rc, "EvictControl");
    TPM2B_NAME* name = nullptr;
    check(Esys_TR_GetName(probe.esys(), persistent, &name), "TR_GetName");
    const std::string text = hex(name->name, name->size);
    Esys_Free(name);
    Esys_TR_Close(probe.esys(), &persistent);
    return text;
}

void remove_persistent_srk(const std::string& tcti) {
    TpmProbe probe(tcti);
    ESYS_TR persistent = ESYS_TR_NONE;
    check(Esys_TR_FromTPMPublic(probe.esys(), Tpm2Keyslot::kPersistentSrkHandle, ESYS_TR_NONE,
                                ESYS_TR_NONE, ESYS_TR_NONE, &persistent),
          "TR_FromTPMPublic");
    ESYS_TR gone = ESYS_TR_NONE;
    check(Esys_EvictControl(probe.esys(), ESYS_TR_RH_OWNER, persistent, ESYS_TR_PASSWORD,
                            ESYS_TR_NONE, ESYS_TR_NONE, Tpm2Keyslot::kPersistentSrkHandle, &gone),
          "EvictControl (remove)");
}

std::string transient_srk_name(const std::string& tcti) {
    TpmProbe probe(tcti);
    const ESYS_TR primary = create_primary(probe.esys(), srk_template());
    TPM2B_NAME* name = nullptr;
    check(Esys_TR_GetName(probe.esys(), primary, &name), "TR_GetName");
    const std::string text = hex(name->name, name->size);
    Esys_Free(name);
    Esys_FlushContext(probe.esys(), primary);
    return text;
}

struct Blobs {
    TPM2B_PUBLIC pub{};
    TPM2B_PRIVATE priv{};
};

Blobs split(const std::vector<uint8_t>& sealed) {
    Blobs blobs;
    size_t offset = 0;
    check(Tss2_MU_TPM2B_PUBLIC_Unmarshal(sealed.data(), sealed.size(), &offset, &blobs.pub),
          "unmarshal public");
    check(Tss2_MU_TPM2B_PRIVATE_Unmarshal(sealed.data(), sealed.size(), &offset, &blobs.priv),
          "unmarshal private");
    EXPECT_EQ(offset, sealed.size());
    return blobs;
}

// The authValue the keyslot documents: HMAC-SHA256(PIN, label || SRK Name).
TPM2B_AUTH documented_pin_auth(std::string_view pin, const std::string& srk_name_hex) {
    std::vector<uint8_t> data;
    for (char c : std::string_view("apikeyd tpm2 pin v1")) {
        data.push_back(static_cast<uint8_t>(c));
    }
    for (size_t i = 0; i < srk_name_hex.size(); i += 2) {
        data.push_back(static_cast<uint8_t>(std::stoul(srk_name_hex.substr(i, 2), nullptr, 16)));
    }
    auto mac = crypto::hmac_sha256(crypto::bytes_of(pin), data);
    if (!mac) {
        throw std::runtime_error("hmac");
    }
    TPM2B_AUTH auth{};
    auth.size = static_cast<UINT16>(mac->size());
    std::copy(mac->begin(), mac->end(), auth.buffer);
    return auth;
}

// Loads the sealed object ourselves and asks for TPM2_Unseal the way an
// attacker with the blob, the TPM and perhaps the PIN would, skipping the
// policy: a password session, or a plain HMAC session. Returns the TPM's rc.
TSS2_RC unseal_bypassing_policy(const std::string& tcti, const KeyslotRecord& record,
                                const TPM2B_AUTH& auth, bool hmac_session,
                                std::vector<uint8_t>* out = nullptr) {
    TpmProbe probe(tcti);
    ESYS_CONTEXT* esys = probe.esys();
    const Blobs blobs = split(record.sealed);
    const ESYS_TR srk = create_primary(esys, srk_template());
    ESYS_TR object = ESYS_TR_NONE;
    const TSS2_RC load_rc = Esys_Load(esys, srk, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                                      &blobs.priv, &blobs.pub, &object);
    Esys_FlushContext(esys, srk);
    check(load_rc, "Load");
    check(Esys_TR_SetAuth(esys, object, &auth), "TR_SetAuth");
    ESYS_TR session = ESYS_TR_PASSWORD;
    if (hmac_session) {
        const TPMT_SYM_DEF none{.algorithm = TPM2_ALG_NULL, .keyBits = {}, .mode = {}};
        check(Esys_StartAuthSession(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                    ESYS_TR_NONE, nullptr, TPM2_SE_HMAC, &none, TPM2_ALG_SHA256,
                                    &session),
              "StartAuthSession");
    }
    TPM2B_SENSITIVE_DATA* data = nullptr;
    const TSS2_RC rc = Esys_Unseal(esys, object, session, ESYS_TR_NONE, ESYS_TR_NONE, &data);
    if (data != nullptr && out != nullptr) {
        out->assign(data->buffer, data->buffer + data->size);
    }
    Esys_Free(data);
    if (hmac_session) {
        Esys_FlushContext(esys, session);
    }
    Esys_FlushContext(esys, object);
    return rc;
}

bool contains(const std::string& haystack, std::span<const uint8_t> needle) {
    return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(),
                       [](char a, uint8_t b) { return static_cast<uint8_t>(a) == b; }) !=
           haystack.end();
}

// Sets an environment variable for one scope (the pcap TCTI reads its file
// name from the environment).
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

  private:
    const char* name_;
    std::optional<std::string> old_;
};

class Tpm2KeyslotTest : public ::testing::Test {
  protected:
    void SetUp() override {
        auto secret = crypto::random_secret(32);
        ASSERT_TRUE(secret);
        master = std::move(*secret);
    }

    // Every test ends with a TPM as empty as it found it: swtpm has three
    // object and three session slots, and nothing frees what we leak.
    void TearDown() override {
        if (tpm.running()) {
            expect_no_leftover_handles();
        }
    }

    void expect_no_leftover_handles() {
        const auto left = leftover_handles(tpm.tcti());
        std::string listed;
        for (auto h : left) {
            listed += hex(reinterpret_cast<const uint8_t*>(&h), sizeof h) + " ";
        }
        EXPECT_TRUE(left.empty()) << "handles left in the TPM: " << listed;
    }

    Tpm2EnrollOptions options(std::vector<uint32_t> pcrs = {}, std::string_view pin = {}) {
        return Tpm2EnrollOptions{tpm.tcti(), std::move(pcrs), SecretBuffer::from_string(pin)};
    }

    KeyslotRecord enroll(Tpm2EnrollOptions opts) {
        Tpm2Keyslot slot(std::move(opts));
        KeyslotRecord record;
        record.id = "ks_test";
        auto done = slot.enroll(master, record);
        EXPECT_TRUE(done) << (done ? "" : done.error().message);
        expect_no_leftover_handles();
        return record;
    }

    Result<SecretBuffer> unseal(const KeyslotRecord& record, std::string_view pin = {}) {
        UnlockCredentials credentials;
        credentials.pin = SecretBuffer::from_string(pin);
        auto result = Tpm2Keyslot().unseal(record, credentials);
        if (tpm.running()) {
            expect_no_leftover_handles();
        }
        return result;
    }

    void expect_master(const Result<SecretBuffer>& result) {
        ASSERT_TRUE(result) << result.error().message;
        EXPECT_TRUE(crypto::equal_ct(result->span(), master.span()));
    }

    void expect_denied(const Result<SecretBuffer>& result, const std::string& words) {
        ASSERT_FALSE(result);
        EXPECT_EQ(result.error().code, ErrorCode::AccessDenied) << result.error().message;
        EXPECT_NE(result.error().message.find(words), std::string::npos) << result.error().message;
    }

    Swtpm tpm;
    SecretBuffer master;
};

TEST_F(Tpm2KeyslotTest, EnrolledSlotUnsealsTheSameMasterKey) {
    const auto record = enroll(options());
    EXPECT_EQ(record.type, "tpm2");
    EXPECT_EQ(record.params["tcti"], tpm.tcti());
    EXPECT_EQ(record.params["pcrs"], nlohmann::json::array());
    EXPECT_EQ(record.params["pin"], false);
    EXPECT_EQ(record.params["pcr_bank"], "sha256");
    EXPECT_EQ(record.params["srk_name"], transient_srk_name(tpm.tcti()));
    const Blobs blobs = split(record.sealed);
    EXPECT_EQ(blobs.pub.publicArea.type, TPM2_ALG_KEYEDHASH);
    EXPECT_EQ(blobs.pub.publicArea.objectAttributes & TPMA_OBJECT_SENSITIVEDATAORIGIN, 0u);
    // The master key is inside the TPM-encrypted private area, not beside it.
    EXPECT_FALSE(contains(std::string(record.sealed.begin(), record.sealed.end()), master.span()));

    expect_master(unseal(record));
    expect_master(unseal(record));
}

TEST_F(Tpm2KeyslotTest, UnsealSurvivesASwtpmRestart) {
    const auto record = enroll(options({16}, "2468"));
    tpm.restart();
    expect_master(unseal(record, "2468"));
}

TEST_F(Tpm2KeyslotTest, PcrBoundSlotStopsUnsealingAfterAnExtend) {
    const auto record = enroll(options({16}));
    EXPECT_EQ(record.params["pcrs"], nlohmann::json::array({16}));
    expect_master(unseal(record));

    extend_pcr(tpm.tcti(), ESYS_TR_PCR16);
    expect_denied(unseal(record), "PCR values changed since enrolment");
    // A PCR the slot is not bound to changes nothing.
    const auto other = enroll(options({23}));
    extend_pcr(tpm.tcti(), ESYS_TR_PCR16);
    expect_master(unseal(other));
}

TEST_F(Tpm2KeyslotTest, PolicySlotHasNoWayInButItsPolicy) {
    const auto pcr_only = enroll(options({16}));
    const auto pcr_and_pin = enroll(options({16}, "9753"));
    for (const auto* record : {&pcr_only, &pcr_and_pin}) {
        EXPECT_EQ(split(record->sealed).pub.publicArea.objectAttributes & TPMA_OBJECT_USERWITHAUTH,
                  0u);
    }
    const TPM2B_AUTH no_auth{};
    const TPM2B_AUTH pin_auth =
        documented_pin_auth("9753", pcr_only.params["srk_name"].get<std::string>());
    for (bool hmac : {false, true}) {
        SCOPED_TRACE(hmac ? "HMAC session" : "password session");
        std::vector<uint8_t> leaked;
        EXPECT_EQ(
            tpm_rc_base(unseal_bypassing_policy(tpm.tcti(), pcr_only, no_auth, hmac, &leaked)),
            TPM2_RC_AUTH_UNAVAILABLE);
        // Even the right PIN does not replace the PCR policy.
        EXPECT_EQ(
            tpm_rc_base(unseal_bypassing_policy(tpm.tcti(), pcr_and_pin, pin_auth, hmac, &leaked)),
            TPM2_RC_AUTH_UNAVAILABLE);
        EXPECT_TRUE(leaked.empty());
    }
    // Still true after the PCR changed (with userWithAuth set it would open).
    extend_pcr(tpm.tcti(), ESYS_TR_PCR16);
    EXPECT_NE(unseal_bypassing_policy(tpm.tcti(), pcr_only, no_auth, false), TSS2_RC_SUCCESS);
    EXPECT_EQ(lockout_counter(tpm.tcti()), 0u);
    expect_no_leftover_handles();
}

TEST_F(Tpm2KeyslotTest, PinSlotUnsealsWithTheRightPin) {
    const auto record = enroll(options({}, "correct horse"));
    EXPECT_EQ(record.params["pin"], true);
    const auto& attributes = split(record.sealed).pub.publicArea.objectAttributes;
    EXPECT_EQ(attributes & TPMA_OBJECT_NODA, 0u) << "a PIN must be DA-protected";
    EXPECT_EQ(attributes & TPMA_OBJECT_USERWITHAUTH, 0u);
    expect_master(unseal(record, "correct horse"));
    EXPECT_EQ(lockout_counter(tpm.tcti()), 0u);
}

TEST_F(Tpm2KeyslotTest, WrongPinIsRefusedAndCountedByTheTpm) {
    const auto record = enroll(options({}, "1357"));
    const uint32_t before = lockout_counter(tpm.tcti());
    expect_denied(unseal(record, "1358"), "wrong PIN for tpm2 keyslot");
    EXPECT_EQ(lockout_counter(tpm.tcti()), before + 1);
    expect_master(unseal(record, "1357"));
}

TEST_F(Tpm2KeyslotTest, PinSlotWithoutAPinIsRefusedBeforeTheTpmCounts) {
    const auto record = enroll(options({16}, "1357"));
    expect_denied(unseal(record), "this tpm2 keyslot needs a PIN");
    EXPECT_EQ(lockout_counter(tpm.tcti()), 0u);
}

TEST_F(Tpm2KeyslotTest, RepeatedWrongPinsLockTheTpmOut) {
    const auto record = enroll(options({}, "1357"));
    const uint32_t max_tries = tpm_property(tpm.tcti(), TPM2_PT_MAX_AUTH_FAIL);
    ASSERT_LE(max_tries, 10u);
    for (uint32_t i = 0; i < max_tries; ++i) {
        auto result = unseal(record, "0000");
        ASSERT_FALSE(result);
        EXPECT_EQ(result.error().code, ErrorCode::AccessDenied);
    }
    expect_denied(unseal(record, "1357"), "dictionary-attack lockout");
}

TEST_F(Tpm2KeyslotTest, OrderlyRestartCountsNoDictionaryAttackFailure) {
    const auto record = enroll(options({}, "1357"));
    expect_master(unseal(record, "1357"));
    tpm.restart();
    EXPECT_EQ(lockout_counter(tpm.tcti()), 0u);
    // Shows the restart above was the orderly kind: power loss does count.
    expect_master(unseal(record, "1357"));
    tpm.kill9();
    tpm.start();
    EXPECT_EQ(lockout_counter(tpm.tcti()), 1u);
}

TEST_F(Tpm2KeyslotTest, ClearedTpmSaysSealedByAnotherTpm) {
    const auto record = enroll(options());
    tpm.wipe_state();
    expect_denied(unseal(record), "sealed by another TPM, or this TPM was cleared");
}

TEST_F(Tpm2KeyslotTest, UnreachableTpmIsAnInternalErrorNotACrash) {
    auto record = enroll(options());
    const uint16_t closed = test::find_free_port_pair();
    record.params["tcti"] = "swtpm:host=127.0.0.1,port=" + std::to_string(closed);
    auto result = unseal(record);
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code, ErrorCode::Internal);
    EXPECT_NE(result.error().message.find("TPM not reachable at swtpm:host=127.0.0.1,port=" +
                                          std::to_string(closed)),
              std::string::npos)
        << result.error().message;

    Tpm2Keyslot slot(Tpm2EnrollOptions{record.params["tcti"].get<std::string>(), {}, {}});
    KeyslotRecord untouched;
    auto enrolled = slot.enroll(master, untouched);
    ASSERT_FALSE(enrolled);
    EXPECT_EQ(enrolled.error().code, ErrorCode::Internal);
    EXPECT_TRUE(untouched.sealed.empty());
}

TEST_F(Tpm2KeyslotTest, TctiStringsThatCouldLoadOrWriteAnythingAreRefused) {
    for (std::string tcti : {"/tmp/evil.so:x", "libtss2-tcti-evil.so.0", "device:/etc/passwd",
                             "device:/dev/tpm0/../../etc/shadow", "pcap:pcap:device:/dev/tpm0",
                             "swtpm:host=a;b", ""}) {
        SCOPED_TRACE(tcti);
        // "" means the default TCTI, which may exist on the host.
        if (tcti.empty()) {
            continue;
        }
        Tpm2Keyslot slot(Tpm2EnrollOptions{tcti, {}, {}});
        KeyslotRecord record;
        auto result = slot.enroll(master, record);
        ASSERT_FALSE(result);
        EXPECT_EQ(result.error().code, ErrorCode::InvalidArgument) << result.error().message;
    }
}

TEST_F(Tpm2KeyslotTest, OutOfRangePcrIsRefused) {
    Tpm2Keyslot slot(options({7, 24}));
    KeyslotRecord record;
    auto result = slot.enroll(master, record);
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code, ErrorCode::InvalidArgument);
    EXPECT_NE(result.error().message.find("24"), std::string::npos);
}

TEST_F(Tpm2KeyslotTest, DamagedRecordsAreRefused) {
    const auto record = enroll(options({16}));
    {
        auto longer = record;
        longer.sealed.push_back(0);
        auto result = unseal(longer);
        ASSERT_FALSE(result);
        EXPECT_NE(result.error().message.find("trailing"), std::string::npos);
    }
    {
        auto flipped = record;
        flipped.sealed.back() ^= 0x01;  // in the private area's integrity-protected part
        auto result = unseal(flipped);
        ASSERT_FALSE(result);
        EXPECT_EQ(result.error().code, ErrorCode::AccessDenied) << result.error().message;
    }
    {
        // Claiming no PCR binding for a PCR-bound object is caught before the TPM.
        auto lying = record;
        lying.params["pcrs"] = nlohmann::json::array();
        auto result = unseal(lying);
        ASSERT_FALSE(result);
        EXPECT_NE(result.error().message.find("malformed"), std::string::npos);
    }
    {
        auto other_srk = record;
        other_srk.params["srk_name"] = "000b" + std::string(64, '0');
        expect_denied(unseal(other_srk), "another TPM");
    }
}

TEST_F(Tpm2KeyslotTest, PinWhoseAuthValueEndsInAZeroByteStillUnseals) {
    // The TPM strips trailing zero bytes from an authValue; the client must
    // too, or one PIN in 256 would never work.
    const std::string srk_name = transient_srk_name(tpm.tcti());
    std::string pin;
    for (int i = 0; i < 100000; ++i) {
        const std::string candidate = "pin" + std::to_string(i);
        const auto auth = documented_pin_auth(candidate, srk_name);
        if (auth.buffer[auth.size - 1] == 0) {
            pin = candidate;
            break;
        }
    }
    ASSERT_FALSE(pin.empty());
    const auto record = enroll(options({}, pin));
    expect_master(unseal(record, pin));
    EXPECT_EQ(lockout_counter(tpm.tcti()), 0u);
}

TEST_F(Tpm2KeyslotTest, PersistentSrkOfTheStandardShapeIsUsed) {
    // A `unique` of our own gives the persistent key another Name than a
    // transient primary would have, so the record shows which one sealed.
    const std::string persistent_name = make_persistent_srk(tpm.tcti(), srk_template("apikeyd"));
    ASSERT_NE(persistent_name, transient_srk_name(tpm.tcti()));
    const auto record = enroll(options({16}, "4321"));
    EXPECT_EQ(record.params["srk_name"], persistent_name);
    expect_master(unseal(record, "4321"));

    remove_persistent_srk(tpm.tcti());
    expect_denied(unseal(record, "4321"), "another TPM");
    EXPECT_EQ(lockout_counter(tpm.tcti()), 0u);
}

TEST_F(Tpm2KeyslotTest, PersistentKeyOfAnotherShapeIsIgnored) {
    TPM2B_PUBLIC with_da = srk_template("apikeyd");
    with_da.publicArea.objectAttributes &= ~TPMA_OBJECT_NODA;
    make_persistent_srk(tpm.tcti(), with_da);
    const auto record = enroll(options());
    EXPECT_EQ(record.params["srk_name"], transient_srk_name(tpm.tcti()));
    expect_master(unseal(record));
}

TEST_F(Tpm2KeyslotTest, TpmTrafficNeverCarriesTheMasterKeyOrThePin) {
    test::TempDir dir("apikeyd-pcap");
    const std::string pcap_tcti = "pcap:" + tpm.tcti();
    const std::string pin = "traffic-pin-8642";
    {
        ScopedEnv env("TCTI_PCAP_FILE", (dir / "keyslot.pcap").string());
        Tpm2Keyslot slot(Tpm2EnrollOptions{pcap_tcti, {16}, SecretBuffer::from_string(pin)});
        KeyslotRecord record;
        ASSERT_TRUE(slot.enroll(master, record));
        EXPECT_EQ(record.params["tcti"], pcap_tcti);
        expect_master(unseal(record, pin));

        auto plain = Tpm2Keyslot(Tpm2EnrollOptions{pcap_tcti, {}, {}});
        KeyslotRecord plain_record;
        ASSERT_TRUE(plain.enroll(master, plain_record));
        expect_master(unseal(plain_record));
    }
    const std::string capture = test::read_file(dir / "keyslot.pcap");
    ASSERT_GT(capture.size(), 1000u) << "the pcap TCTI recorded nothing";
    EXPECT_FALSE(contains(capture, master.span()));
    EXPECT_FALSE(contains(capture, crypto::bytes_of(pin)));

    // The control: the same capture does show the master key when it is
    // unsealed without parameter encryption. Otherwise the check above could
    // pass on a capture that misses the responses.
    {
        ScopedEnv env("TCTI_PCAP_FILE", (dir / "control.pcap").string());
        const auto record = enroll(options());
        std::vector<uint8_t> clear;
        ASSERT_EQ(unseal_bypassing_policy(pcap_tcti, record, TPM2B_AUTH{}, false, &clear),
                  TSS2_RC_SUCCESS);
        EXPECT_TRUE(crypto::equal_ct(clear, master.span()));
    }
    EXPECT_TRUE(contains(test::read_file(dir / "control.pcap"), master.span()));
}

TEST_F(Tpm2KeyslotTest, LeakCheckSeesAForgottenSessionAndObject) {
    // The no-leak assertions everywhere else mean something only if what a
    // careless caller forgets shows up: leave a policy session and a key behind.
    {
        TpmProbe probe(tpm.tcti());
        create_primary(probe.esys(), srk_template());
        const TPMT_SYM_DEF none{.algorithm = TPM2_ALG_NULL, .keyBits = {}, .mode = {}};
        ESYS_TR session = ESYS_TR_NONE;
        check(Esys_StartAuthSession(probe.esys(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                    ESYS_TR_NONE, ESYS_TR_NONE, nullptr, TPM2_SE_POLICY, &none,
                                    TPM2_ALG_SHA256, &session),
              "StartAuthSession");
    }
    EXPECT_EQ(leftover_handles(tpm.tcti()).size(), 2u);
    tpm.wipe_state();  // the only way to get rid of it from here
}

// Not a timed assertion: prints medians for the report.
TEST_F(Tpm2KeyslotTest, MeasuresEnrollAndUnsealTimes) {
    constexpr int kRuns = 11;
    auto median_ms = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    };
    struct Case {
        const char* name;
        std::vector<uint32_t> pcrs;
        std::string pin;
    };
    for (const Case& c : {Case{"no policy", {}, ""}, Case{"PCR 16 + PIN", {16}, "1357"}}) {
        std::vector<double> enroll_ms;
        std::vector<double> unseal_ms;
        KeyslotRecord record;
        for (int i = 0; i < kRuns; ++i) {
            Tpm2Keyslot slot(options(c.pcrs, c.pin));
            record = KeyslotRecord{};
            const auto t0 = std::chrono::steady_clock::now();
            ASSERT_TRUE(slot.enroll(master, record));
            const auto t1 = std::chrono::steady_clock::now();
            UnlockCredentials credentials;
            credentials.pin = SecretBuffer::from_string(c.pin);
            auto opened = Tpm2Keyslot().unseal(record, credentials);
            const auto t2 = std::chrono::steady_clock::now();
            ASSERT_TRUE(opened) << opened.error().message;
            enroll_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
            unseal_ms.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
        }
        std::printf("[ timing   ] %s: enroll median %.2f ms, unseal median %.2f ms (%d runs)\n",
                    c.name, median_ms(enroll_ms), median_ms(unseal_ms), kRuns);
        RecordProperty(std::string(c.name) + " enroll ms", std::to_string(median_ms(enroll_ms)));
        RecordProperty(std::string(c.name) + " unseal ms", std::to_string(median_ms(unseal_ms)));
    }
}

}  // namespace
}  // namespace apikeyd
