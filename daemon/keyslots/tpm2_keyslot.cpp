#include "daemon/keyslots/tpm2_keyslot.hpp"
#include "daemon/hex.hpp"

#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_sys.h>
#include <tss2/tss2_tctildr.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <span>

#include "common/c_handle.hpp"
#include "daemon/crypto.hpp"

namespace apikeyd {
namespace {

constexpr std::string_view kPinLabel = "apikeyd tpm2 pin v1";
constexpr size_t kSha256Size = 32;
constexpr size_t kNameSize = 2 + kSha256Size;  // TPMI_ALG_HASH || digest
constexpr size_t kMaxTctiSize = 256;
constexpr const char* kAnotherTpm = "sealed by another TPM, or this TPM was cleared";

constexpr TPMT_SYM_DEF kAes128Cfb = {
    .algorithm = TPM2_ALG_AES, .keyBits = {.aes = 128}, .mode = {.aes = TPM2_ALG_CFB}};
constexpr TPMT_SYM_DEF kNoSymmetric = {.algorithm = TPM2_ALG_NULL, .keyBits = {}, .mode = {}};

void quiet_tss2_log() {
    // The library would print every TPM refusal (a wrong PIN included) to
    // stderr; errors reach the caller as values instead. A user who set
    // TSS2_LOG to debug something keeps it.
    static std::once_flag once;
    std::call_once(once, [] { setenv("TSS2_LOG", "all+none", 0); });
}

// ---------------------------------------------------------------- errors ---

std::string describe_rc(TSS2_RC rc) {
    char code[16];
    std::snprintf(code, sizeof code, "0x%x", rc);
    return std::string(code) + " (" + Tss2_RC_Decode(rc) + ")";
}

// The TPM's own response code without the layer and the handle, session or
// parameter number, so 0x98e and 0x18e both read as TPM2_RC_AUTH_FAIL.
TSS2_RC tpm_rc_base(TSS2_RC rc) {
    const TSS2_RC layer = rc & TSS2_RC_LAYER_MASK;
    if (layer != TSS2_TPM_RC_LAYER && layer != TSS2_RESMGR_TPM_RC_LAYER) {
        return rc;
    }
    rc &= ~TSS2_RC_LAYER_MASK;
    if ((rc & TPM2_RC_FMT1) != 0) {
        return rc & (TPM2_RC_FMT1 | 0x3F);
    }
    return rc;
}

// Turns a failed call into an error the caller can act on. `has_pin` only
// matters for authorization failures: without a PIN there is nothing the
// caller typed wrong.
class Failure {
  public:
    Failure(std::string tcti, bool has_pin) : tcti_(std::move(tcti)), has_pin_(has_pin) {}

    Error operator()(std::string_view step, TSS2_RC rc) const {
        const std::string detail = std::string(step) + " failed with " + describe_rc(rc);
        if ((rc & TSS2_RC_LAYER_MASK) == TSS2_TCTI_RC_LAYER) {
            return make_error(ErrorCode::Internal, "TPM not reachable at " + tcti_ + ": " + detail);
        }
        switch (tpm_rc_base(rc)) {
            case TPM2_RC_AUTH_FAIL:
            case TPM2_RC_BAD_AUTH:
                return make_error(
                    ErrorCode::AccessDenied,
                    (has_pin_ ? "wrong PIN for tpm2 keyslot: "
                              : "the TPM refused the tpm2 keyslot's authorization: ") +
                        detail);
            case TPM2_RC_LOCKOUT:
                return make_error(ErrorCode::AccessDenied,
                                  "the TPM is in dictionary-attack lockout after too many wrong "
                                  "PINs; wait for it to recover or reset it with the lockout "
                                  "authorization: " +
                                      detail);
            case TPM2_RC_POLICY_FAIL:
            case TPM2_RC_PCR_CHANGED:
                return make_error(ErrorCode::AccessDenied,
                                  "PCR values changed since enrolment: " + detail);
            case TPM2_RC_INTEGRITY:
                return make_error(
                    ErrorCode::AccessDenied,
                    std::string(kAnotherTpm) + " (or the sealed data is damaged): " + detail);
            case TPM2_RC_OBJECT_MEMORY:
            case TPM2_RC_SESSION_MEMORY:
            case TPM2_RC_SESSION_HANDLES:
                // Without a resource manager (swtpm, /dev/tpm0) handles someone
                // did not flush stay loaded after their process is gone.
                return make_error(ErrorCode::Internal,
                                  "the TPM at " + tcti_ +
                                      " has no free object or session slots (handles leaked "
                                      "by another program?): " +
                                      detail);
            default:
                return make_error(ErrorCode::Internal, "TPM at " + tcti_ + ": " + detail);
        }
    }

  private:
    std::string tcti_;
    bool has_pin_;
};

// ------------------------------------------------------------------ RAII ---

template <class T>
using EsysPtr = CHandle<T, Esys_Free>;

// For outputs that carry a secret: ESAPI frees with plain free().
void wipe_and_esys_free(TPM2B_SENSITIVE_DATA* p) noexcept {
    wipe(p, sizeof *p);
    Esys_Free(p);
}
using SensitiveDataPtr = CHandle<TPM2B_SENSITIVE_DATA, wipe_and_esys_free>;

// A plain TPM structure that holds a secret while it lives.
template <class T>
struct Wiped {
    T value{};
    Wiped() = default;
    Wiped(const Wiped&) = delete;
    Wiped& operator=(const Wiped&) = delete;
    ~Wiped() { wipe(&value, sizeof value); }
};

// Finalizes ESAPI before the TCTI it talks through.
class Connection {
  public:
    static Result<std::unique_ptr<Connection>> open(const std::string& tcti) {
        auto connection = std::unique_ptr<Connection>(new Connection());
        TSS2_RC rc = Tss2_TctiLdr_Initialize(tcti.c_str(), &connection->tcti_);
        if (rc != TSS2_RC_SUCCESS) {
            connection->tcti_ = nullptr;
            return make_error(ErrorCode::Internal,
                              "TPM not reachable at " + tcti + ": " + describe_rc(rc));
        }
        rc = Esys_Initialize(&connection->esys_, connection->tcti_, nullptr);
        if (rc != TSS2_RC_SUCCESS) {
            connection->esys_ = nullptr;
            return make_error(ErrorCode::Internal,
                              "TPM not reachable at " + tcti + ": ESAPI: " + describe_rc(rc));
        }
        return connection;
    }
    ~Connection() {
        if (esys_ != nullptr) {
            Esys_Finalize(&esys_);
        }
        if (tcti_ != nullptr) {
            Tss2_TctiLdr_Finalize(&tcti_);
        }
    }
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    ESYS_CONTEXT* esys() const { return esys_; }

  private:
    Connection() = default;
    TSS2_TCTI_CONTEXT* tcti_ = nullptr;
    ESYS_CONTEXT* esys_ = nullptr;
};

// An ESYS_TR this code opened. Transient objects and sessions are flushed, as
// a TPM without a resource manager keeps them past our exit; persistent
// objects are only closed (flushing them is an error, 0x1c4). Must go before
// the Connection it belongs to.
class TpmHandle {
  public:
    enum class Kind { Flush, Close };
    TpmHandle(ESYS_CONTEXT* esys, Kind kind) : esys_(esys), kind_(kind) {}
    ~TpmHandle() { reset(); }
    TpmHandle(TpmHandle&& other) noexcept
        : esys_(other.esys_), kind_(other.kind_), tr_(std::exchange(other.tr_, ESYS_TR_NONE)) {}
    TpmHandle(const TpmHandle&) = delete;
    TpmHandle& operator=(const TpmHandle&) = delete;
    TpmHandle& operator=(TpmHandle&&) = delete;

    ESYS_TR get() const { return tr_; }
    ESYS_TR* out() {
        reset();
        return &tr_;
    }
    void reset() noexcept {
        if (tr_ == ESYS_TR_NONE) {
            return;
        }
        if (kind_ == Kind::Flush && Esys_FlushContext(esys_, tr_) == TSS2_RC_SUCCESS) {
            tr_ = ESYS_TR_NONE;  // FlushContext released ESAPI's record too
            return;
        }
        // A session the TPM already ended (or a persistent handle): release
        // ESAPI's record of it whatever the TPM says.
        Esys_TR_Close(esys_, &tr_);
        tr_ = ESYS_TR_NONE;
    }

  private:
    ESYS_CONTEXT* esys_;
    Kind kind_;
    ESYS_TR tr_ = ESYS_TR_NONE;
};

// After Unseal the clear secret is left in the SYS layer's response buffer,
// decrypted in place; nothing else would ever overwrite it.
void wipe_response_buffer(ESYS_CONTEXT* esys) {
    TSS2_SYS_CONTEXT* sys = nullptr;
    if (Esys_GetSysContext(esys, &sys) != TSS2_RC_SUCCESS || sys == nullptr) {
        return;
    }
    size_t size = 0;
    const uint8_t* buffer = nullptr;
    if (Tss2_Sys_GetRpBuffer(sys, &size, &buffer) == TSS2_RC_SUCCESS && buffer != nullptr) {
        wipe(const_cast<uint8_t*>(buffer), size);
    }
}

// ------------------------------------------------------------- encoding ---

// ------------------------------------------------------------ validation ---

bool tcti_conf_chars_ok(std::string_view conf) {
    return std::all_of(conf.begin(), conf.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '.' || c == ',' || c == '=' || c == ':' || c == '_' || c == '-' || c == '[' ||
               c == ']';
    });
}

bool is_tpm_device_path(std::string_view path) {
    for (std::string_view prefix : {"/dev/tpmrm", "/dev/tpm"}) {
        if (path.starts_with(prefix)) {
            const auto number = path.substr(prefix.size());
            return !number.empty() && number.size() <= 3 &&
                   std::all_of(number.begin(), number.end(),
                               [](char c) { return c >= '0' && c <= '9'; });
        }
    }
    return false;
}

// The TCTI loader dlopen()s whatever module the string names, and the device
// TCTI writes commands into whatever file it names: a TCTI string that comes
// over D-Bus must not reach either. Only known modules, and only TPM devices.
std::optional<std::string> tcti_problem(std::string_view tcti, bool nested = false) {
    if (tcti.empty() || tcti.size() > kMaxTctiSize) {
        return "empty or longer than " + std::to_string(kMaxTctiSize) + " characters";
    }
    const auto colon = tcti.find(':');
    const auto name = tcti.substr(0, colon);
    const auto conf = colon == std::string_view::npos ? std::string_view() : tcti.substr(colon + 1);
    if (name == "device") {
        return is_tpm_device_path(conf)
                   ? std::nullopt
                   : std::optional<std::string>("the device must be /dev/tpmrmN or /dev/tpmN");
    }
    if (name == "swtpm" || name == "mssim" || name == "tabrmd") {
        return tcti_conf_chars_ok(conf)
                   ? std::nullopt
                   : std::optional<std::string>("unexpected characters in its configuration");
    }
    if (name == "pcap" && !nested) {
        // Records the TPM traffic; the tests use it to show the traffic
        // carries no secret. Only when whoever started us named the file
        // (else it writes into the working directory). It wraps another
        // TCTI, checked the same way.
        if (std::getenv("TCTI_PCAP_FILE") == nullptr) {
            return std::string("the pcap TCTI needs TCTI_PCAP_FILE in the daemon's environment");
        }
        return tcti_problem(conf, true);
    }
    return "unknown TCTI module '" + std::string(name) +
           "' (known: device, swtpm, mssim, tabrmd, pcap)";
}

Result<std::vector<uint32_t>> normalise_pcrs(std::vector<uint32_t> pcrs) {
    for (uint32_t pcr : pcrs) {
        if (pcr >= Tpm2Keyslot::kPcrCount) {
            return make_error(
                ErrorCode::InvalidArgument,
                "Invalid PCR index " + std::to_string(pcr) + ": the sha256 bank has PCRs 0 to 23");
        }
    }
    std::sort(pcrs.begin(), pcrs.end());
    pcrs.erase(std::unique(pcrs.begin(), pcrs.end()), pcrs.end());
    return pcrs;
}

// ------------------------------------------------------------- templates ---

TPM2B_PUBLIC srk_template() {
    TPM2B_PUBLIC pub{};
    auto& area = pub.publicArea;
    area.type = TPM2_ALG_ECC;
    area.nameAlg = TPM2_ALG_SHA256;
    area.objectAttributes = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT | TPMA_OBJECT_FIXEDTPM |
                            TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                            TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_NODA;
    area.parameters.eccDetail.symmetric = TPMT_SYM_DEF_OBJECT{
        .algorithm = TPM2_ALG_AES, .keyBits = {.aes = 128}, .mode = {.aes = TPM2_ALG_CFB}};
    area.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
    area.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    area.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    return pub;
}

// Everything but `unique`, which only the TPM's own derivation can check. The
// attributes matter most: fixedTPM|fixedParent|sensitiveDataOrigin prove the
// TPM made the key itself, so nobody (even with owner rights) knows its
// private half and could read the salt of our sessions.
bool matches_srk_template(const TPMT_PUBLIC& area) {
    const TPMT_PUBLIC expected = srk_template().publicArea;
    const auto& e = expected.parameters.eccDetail;
    const auto& a = area.parameters.eccDetail;
    return area.type == expected.type && area.nameAlg == expected.nameAlg &&
           area.objectAttributes == expected.objectAttributes && area.authPolicy.size == 0 &&
           a.symmetric.algorithm == e.symmetric.algorithm &&
           a.symmetric.keyBits.aes == e.symmetric.keyBits.aes &&
           a.symmetric.mode.aes == e.symmetric.mode.aes && a.scheme.scheme == e.scheme.scheme &&
           a.curveID == e.curveID && a.kdf.scheme == e.kdf.scheme;
}

TPM2B_PUBLIC sealed_template(const TPM2B_DIGEST& policy, bool has_pin) {
    TPM2B_PUBLIC pub{};
    auto& area = pub.publicArea;
    area.type = TPM2_ALG_KEYEDHASH;
    area.nameAlg = TPM2_ALG_SHA256;
    // sensitiveDataOrigin stays clear: we supply the data (else 0x2c2).
    area.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT;
    if (policy.size == 0) {
        area.objectAttributes |= TPMA_OBJECT_USERWITHAUTH;
    }
    // With userWithAuth set, an HMAC or password session with the authValue
    // would open the object without ever evaluating the PCR policy. So a
    // policy object leaves it clear: the policy is the only way in.
    if (!has_pin) {
        // Nothing to guess, so no need to count. With a PIN noDA must stay
        // clear, or the PIN could be guessed without limit.
        area.objectAttributes |= TPMA_OBJECT_NODA;
    }
    area.authPolicy = policy;
    area.parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_NULL;
    return pub;
}

TPML_PCR_SELECTION pcr_selection(const std::vector<uint32_t>& pcrs) {
    TPML_PCR_SELECTION selection{};
    selection.count = 1;
    selection.pcrSelections[0].hash = TPM2_ALG_SHA256;
    selection.pcrSelections[0].sizeofSelect = 3;
    for (uint32_t pcr : pcrs) {
        selection.pcrSelections[0].pcrSelect[pcr / 8] |= static_cast<uint8_t>(1u << (pcr % 8));
    }
    return selection;
}

Result<void> pin_auth_value(const SecretBuffer& pin, std::span<const uint8_t> srk_name,
                            TPM2B_AUTH& auth) {
    std::vector<uint8_t> data(kPinLabel.begin(), kPinLabel.end());
    data.insert(data.end(), srk_name.begin(), srk_name.end());
    auto mac = crypto::hmac_sha256(pin.span(), data);
    if (!mac) {
        return mac.error();
    }
    static_assert(sizeof auth.buffer >= crypto::kMacSize);
    std::copy(mac->begin(), mac->end(), auth.buffer);
    auth.size = static_cast<UINT16>(mac->size());
    wipe(mac->data(), mac->size());
    return {};
}

// ------------------------------------------------------------- TPM steps ---

std::vector<uint8_t> name_bytes(const TPM2B_NAME& name) {
    return std::vector<uint8_t>(name.name, name.name + name.size);
}

Result<std::vector<uint8_t>> tr_name(ESYS_CONTEXT* esys, ESYS_TR tr, const Failure& fail) {
    TPM2B_NAME* raw = nullptr;
    const TSS2_RC rc = Esys_TR_GetName(esys, tr, &raw);
    EsysPtr<TPM2B_NAME> name(raw);
    if (rc != TSS2_RC_SUCCESS) {
        return fail("Esys_TR_GetName", rc);
    }
    return name_bytes(*name);
}

bool persistent_srk_exists(ESYS_CONTEXT* esys) {
    TPMI_YES_NO more = TPM2_NO;
    TPMS_CAPABILITY_DATA* raw = nullptr;
    const TSS2_RC rc =
        Esys_GetCapability(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_HANDLES,
                           Tpm2Keyslot::kPersistentSrkHandle, 1, &more, &raw);
    EsysPtr<TPMS_CAPABILITY_DATA> data(raw);
    return rc == TSS2_RC_SUCCESS && data->data.handles.count > 0 &&
           data->data.handles.handle[0] == Tpm2Keyslot::kPersistentSrkHandle;
}

struct Srk {
    TpmHandle handle;
    std::vector<uint8_t> name;
};

// The SRK: the persistent one at 0x81000001 when it fits (as systemd does: a
// provisioned machine keeps it, and it spares a key generation), else the same
// template created afresh and flushed after use. `expected_name`: at unseal,
// the Name stored at enrolment; a TPM that yields another is not the one
// that sealed (or it was cleared), and the blobs cannot load there.
Result<Srk> open_srk(ESYS_CONTEXT* esys, const std::optional<std::vector<uint8_t>>& expected_name,
                     const Failure& fail) {
    if (persistent_srk_exists(esys)) {
        TpmHandle persistent(esys, TpmHandle::Kind::Close);
        if (Esys_TR_FromTPMPublic(esys, Tpm2Keyslot::kPersistentSrkHandle, ESYS_TR_NONE,
                                  ESYS_TR_NONE, ESYS_TR_NONE,
                                  persistent.out()) == TSS2_RC_SUCCESS) {
            // TR_FromTPMPublic reads the public area without authentication:
            // only its Name (or its public area) decides whether we trust it.
            auto name = tr_name(esys, persistent.get(), fail);
            if (!name) {
                return name.error();
            }
            if (expected_name) {
                if (*name == *expected_name) {
                    return Srk{std::move(persistent), std::move(*name)};
                }
            } else {
                TPM2B_PUBLIC* raw = nullptr;
                const TSS2_RC rc =
                    Esys_ReadPublic(esys, persistent.get(), ESYS_TR_NONE, ESYS_TR_NONE,
                                    ESYS_TR_NONE, &raw, nullptr, nullptr);
                EsysPtr<TPM2B_PUBLIC> pub(raw);
                if (rc != TSS2_RC_SUCCESS) {
                    return fail("TPM2_ReadPublic of the persistent SRK", rc);
                }
                if (matches_srk_template(pub->publicArea)) {
                    return Srk{std::move(persistent), std::move(*name)};
                }
            }
        }
    }

    TpmHandle primary(esys, TpmHandle::Kind::Flush);
    const TPM2B_SENSITIVE_CREATE sensitive{};
    const TPM2B_PUBLIC in_public = srk_template();
    const TPM2B_DATA outside_info{};
    const TPML_PCR_SELECTION creation_pcr{};
    const TSS2_RC rc =
        Esys_CreatePrimary(esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                           &sensitive, &in_public, &outside_info, &creation_pcr, primary.out(),
                           nullptr, nullptr, nullptr, nullptr);
    if (rc != TSS2_RC_SUCCESS) {
        if (tpm_rc_base(rc) == TPM2_RC_BAD_AUTH || tpm_rc_base(rc) == TPM2_RC_AUTH_FAIL) {
            return make_error(ErrorCode::Internal,
                              "cannot create the storage root key: the owner hierarchy has a "
                              "password; provision a persistent SRK at 0x81000001 instead: " +
                                  describe_rc(rc));
        }
        return fail("TPM2_CreatePrimary (storage root key)", rc);
    }
    auto name = tr_name(esys, primary.get(), fail);
    if (!name) {
        return name.error();
    }
    if (expected_name && *name != *expected_name) {
        return make_error(ErrorCode::AccessDenied,
                          std::string(kAnotherTpm) +
                              ": the TPM's storage root key is not the one the keyslot was sealed "
                              "to (expected Name " +
                              hex::encode(*expected_name) + ", found " + hex::encode(*name) + ")");
    }
    return Srk{std::move(primary), std::move(*name)};
}

// Salted with the SRK: the session key derives from a random salt only the
// TPM can decrypt, so parameter encryption keeps secrets off the bus even
// though the object's authValue may be empty.
Result<TpmHandle> start_salted_session(ESYS_CONTEXT* esys, const Srk& srk, TPM2_SE type,
                                       TPMA_SESSION encryption, const Failure& fail) {
    TpmHandle session(esys, TpmHandle::Kind::Flush);
    TSS2_RC rc = Esys_StartAuthSession(esys, srk.handle.get(), ESYS_TR_NONE, ESYS_TR_NONE,
                                       ESYS_TR_NONE, ESYS_TR_NONE, nullptr, type, &kAes128Cfb,
                                       TPM2_ALG_SHA256, session.out());
    if (rc != TSS2_RC_SUCCESS) {
        return fail("TPM2_StartAuthSession (salted)", rc);
    }
    // Mask only the bit we set: a wider mask would clear continueSession and
    // the TPM would end the session after one command.
    rc = Esys_TRSess_SetAttributes(esys, session.get(), encryption, encryption);
    if (rc != TSS2_RC_SUCCESS) {
        return fail("Esys_TRSess_SetAttributes", rc);
    }
    return session;
}

// Order matters: the digest of PolicyPCR-then-PolicyAuthValue differs from
// the reverse, and enrolment and unseal must run the same sequence.
Result<void> apply_policy(ESYS_CONTEXT* esys, ESYS_TR session, const std::vector<uint32_t>& pcrs,
                          bool has_pin, const Failure& fail) {
    if (!pcrs.empty()) {
        // An empty digest means "the PCRs' current values": at enrolment
        // those are what we bind to; at unseal a change shows at TPM2_Unseal.
        const TPM2B_DIGEST current{};
        const TPML_PCR_SELECTION selection = pcr_selection(pcrs);
        const TSS2_RC rc = Esys_PolicyPCR(esys, session, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                          &current, &selection);
        if (rc != TSS2_RC_SUCCESS) {
            return fail("TPM2_PolicyPCR", rc);
        }
    }
    if (has_pin) {
        const TSS2_RC rc =
            Esys_PolicyAuthValue(esys, session, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE);
        if (rc != TSS2_RC_SUCCESS) {
            return fail("TPM2_PolicyAuthValue", rc);
        }
    }
    return {};
}

Result<TPM2B_DIGEST> trial_policy(ESYS_CONTEXT* esys, const std::vector<uint32_t>& pcrs,
                                  bool has_pin, const Failure& fail) {
    TpmHandle trial(esys, TpmHandle::Kind::Flush);
    TSS2_RC rc = Esys_StartAuthSession(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                       ESYS_TR_NONE, nullptr, TPM2_SE_TRIAL, &kNoSymmetric,
                                       TPM2_ALG_SHA256, trial.out());
    if (rc != TSS2_RC_SUCCESS) {
        return fail("TPM2_StartAuthSession (trial)", rc);
    }
    if (auto applied = apply_policy(esys, trial.get(), pcrs, has_pin, fail); !applied) {
        return applied.error();
    }
    TPM2B_DIGEST* raw = nullptr;
    rc = Esys_PolicyGetDigest(esys, trial.get(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &raw);
    EsysPtr<TPM2B_DIGEST> digest(raw);
    if (rc != TSS2_RC_SUCCESS) {
        return fail("TPM2_PolicyGetDigest", rc);
    }
    return *digest;
}

// PolicyPCR on a bank the TPM has not allocated fails obscurely, and a
// selection the TPM silently trims would bind to fewer PCRs than asked.
Result<void> check_pcr_bank(ESYS_CONTEXT* esys, const std::vector<uint32_t>& pcrs,
                            const Failure& fail) {
    TPMI_YES_NO more = TPM2_NO;
    TPMS_CAPABILITY_DATA* raw = nullptr;
    const TSS2_RC rc = Esys_GetCapability(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                          TPM2_CAP_PCRS, 0, 1, &more, &raw);
    EsysPtr<TPMS_CAPABILITY_DATA> data(raw);
    if (rc != TSS2_RC_SUCCESS) {
        return fail("TPM2_GetCapability (PCRS)", rc);
    }
    const auto& banks = data->data.assignedPCR;
    for (UINT32 i = 0; i < banks.count; ++i) {
        const auto& bank = banks.pcrSelections[i];
        if (bank.hash != TPM2_ALG_SHA256) {
            continue;
        }
        for (uint32_t pcr : pcrs) {
            if (pcr / 8 >= bank.sizeofSelect ||
                (bank.pcrSelect[pcr / 8] & (1u << (pcr % 8))) == 0) {
                return make_error(ErrorCode::InvalidArgument,
                                  "the TPM's sha256 bank has no PCR " + std::to_string(pcr));
            }
        }
        return {};
    }
    return make_error(ErrorCode::InvalidArgument, "the TPM has no active sha256 PCR bank");
}

// ---------------------------------------------------------------- record ---

struct SlotParams {
    std::string tcti;
    std::vector<uint32_t> pcrs;
    bool pin = false;
    std::vector<uint8_t> srk_name;
};

Error malformed(const std::string& what) {
    return make_error(ErrorCode::Internal, "the tpm2 keyslot record is malformed: " + what);
}

Result<SlotParams> parse_params(const nlohmann::json& params) {
    if (!params.is_object()) {
        return malformed("params is not an object");
    }
    SlotParams out;
    const auto tcti = params.find("tcti");
    if (tcti == params.end() || !tcti->is_string()) {
        return malformed("no tcti");
    }
    out.tcti = tcti->get<std::string>();
    if (auto problem = tcti_problem(out.tcti)) {
        return malformed("tcti '" + out.tcti + "': " + *problem);
    }
    const auto pcrs = params.find("pcrs");
    if (pcrs == params.end() || !pcrs->is_array() || pcrs->size() > Tpm2Keyslot::kPcrCount) {
        return malformed("no pcrs list");
    }
    for (const auto& pcr : *pcrs) {
        if (!pcr.is_number_unsigned() || pcr.get<uint64_t>() >= Tpm2Keyslot::kPcrCount) {
            return malformed("pcrs holds something that is not a PCR index");
        }
        out.pcrs.push_back(pcr.get<uint32_t>());
    }
    // Enrolment stored them sorted and unique; the policy digest depends on
    // the selection only, but a record that differs was not written by us.
    auto normalised = normalise_pcrs(out.pcrs);
    if (!normalised || *normalised != out.pcrs) {
        return malformed("pcrs are not sorted and unique");
    }
    const auto pin = params.find("pin");
    if (pin == params.end() || !pin->is_boolean()) {
        return malformed("no pin flag");
    }
    out.pin = pin->get<bool>();
    const auto bank = params.find("pcr_bank");
    if (bank == params.end() || !bank->is_string() || *bank != Tpm2Keyslot::kPcrBank) {
        return malformed("pcr_bank is not sha256");
    }
    const auto srk_name = params.find("srk_name");
    if (srk_name == params.end() || !srk_name->is_string()) {
        return malformed("no srk_name");
    }
    auto name = hex::decode(srk_name->get<std::string>());
    if (!name || name->size() != kNameSize) {
        return malformed("srk_name is not a hex SHA-256 Name");
    }
    out.srk_name = std::move(*name);
    return out;
}

struct SealedBlob {
    TPM2B_PUBLIC pub{};
    TPM2B_PRIVATE priv{};
};

std::vector<uint8_t> marshal_blob(const TPM2B_PUBLIC& pub, const TPM2B_PRIVATE& priv, TSS2_RC& rc) {
    std::vector<uint8_t> blob(sizeof(TPM2B_PUBLIC) + sizeof(TPM2B_PRIVATE));
    size_t offset = 0;
    rc = Tss2_MU_TPM2B_PUBLIC_Marshal(&pub, blob.data(), blob.size(), &offset);
    if (rc == TSS2_RC_SUCCESS) {
        rc = Tss2_MU_TPM2B_PRIVATE_Marshal(&priv, blob.data(), blob.size(), &offset);
    }
    blob.resize(offset);
    return blob;
}

Result<SealedBlob> parse_sealed(const std::vector<uint8_t>& sealed, const SlotParams& params) {
    SealedBlob blob;
    size_t offset = 0;
    TSS2_RC rc = Tss2_MU_TPM2B_PUBLIC_Unmarshal(sealed.data(), sealed.size(), &offset, &blob.pub);
    if (rc == TSS2_RC_SUCCESS) {
        rc = Tss2_MU_TPM2B_PRIVATE_Unmarshal(sealed.data(), sealed.size(), &offset, &blob.priv);
    }
    if (rc != TSS2_RC_SUCCESS) {
        return malformed("the sealed blob does not parse: " + describe_rc(rc));
    }
    if (offset != sealed.size()) {
        return malformed("the sealed blob has " + std::to_string(sealed.size() - offset) +
                         " trailing bytes");
    }
    // The TPM enforces what the public area says; check it says what the
    // params promise, so a slot listed as PCR-bound really is.
    const auto& area = blob.pub.publicArea;
    const bool has_policy = params.pin || !params.pcrs.empty();
    const bool user_with_auth = (area.objectAttributes & TPMA_OBJECT_USERWITHAUTH) != 0;
    const bool no_da = (area.objectAttributes & TPMA_OBJECT_NODA) != 0;
    if (area.type != TPM2_ALG_KEYEDHASH || area.nameAlg != TPM2_ALG_SHA256 ||
        user_with_auth == has_policy || (has_policy && area.authPolicy.size != kSha256Size) ||
        (params.pin && no_da)) {
        return malformed("the sealed object's attributes do not match the keyslot's params");
    }
    return blob;
}

}  // namespace

std::string Tpm2Keyslot::default_tcti() {
    return access("/dev/tpmrm0", F_OK) == 0 ? "device:/dev/tpmrm0" : "";
}

Result<void> Tpm2Keyslot::enroll(const SecretBuffer& master, KeyslotRecord& record) {
    quiet_tss2_log();
    if (master.empty() || master.size() > kMaxSecretSize) {
        return make_error(ErrorCode::InvalidArgument,
                          "a tpm2 keyslot seals 1 to " + std::to_string(kMaxSecretSize) +
                              " bytes, not " + std::to_string(master.size()));
    }
    auto pcrs = normalise_pcrs(options_.pcrs);
    if (!pcrs) {
        return pcrs.error();
    }
    if (options_.pin.size() > kMaxPinSize) {
        return make_error(ErrorCode::InvalidArgument,
                          "the PIN is longer than " + std::to_string(kMaxPinSize) + " bytes");
    }
    const bool has_pin = !options_.pin.empty();
    const std::string tcti = options_.tcti.empty() ? default_tcti() : options_.tcti;
    if (tcti.empty()) {
        return make_error(ErrorCode::Internal,
                          "no TPM found: /dev/tpmrm0 does not exist and no TCTI was given");
    }
    if (auto problem = tcti_problem(tcti)) {
        return make_error(ErrorCode::InvalidArgument, "Invalid TCTI '" + tcti + "': " + *problem);
    }
    // No step of enrolment checks the PIN: an authorization failure here is
    // about the SRK or the owner hierarchy, never "wrong PIN".
    const Failure fail(tcti, false);

    auto connection = Connection::open(tcti);
    if (!connection) {
        return connection.error();
    }
    ESYS_CONTEXT* esys = (*connection)->esys();

    std::vector<uint8_t> sealed;
    std::vector<uint8_t> srk_name;
    {
        auto srk = open_srk(esys, std::nullopt, fail);
        if (!srk) {
            return srk.error();
        }
        TPM2B_DIGEST policy{};
        if (!pcrs->empty() || has_pin) {
            if (!pcrs->empty()) {
                if (auto bank = check_pcr_bank(esys, *pcrs, fail); !bank) {
                    return bank.error();
                }
            }
            auto digest = trial_policy(esys, *pcrs, has_pin, fail);
            if (!digest) {
                return digest.error();
            }
            policy = *digest;
        }
        // DECRYPT: TPM2_Create's first parameter carries the master key and
        // the PIN's authValue; without it both cross the bus in clear.
        auto session = start_salted_session(esys, *srk, TPM2_SE_HMAC, TPMA_SESSION_DECRYPT, fail);
        if (!session) {
            return session.error();
        }
        Wiped<TPM2B_SENSITIVE_CREATE> sensitive;
        if (has_pin) {
            if (auto auth =
                    pin_auth_value(options_.pin, srk->name, sensitive.value.sensitive.userAuth);
                !auth) {
                return auth.error();
            }
        }
        std::copy(master.data(), master.data() + master.size(),
                  sensitive.value.sensitive.data.buffer);
        sensitive.value.sensitive.data.size = static_cast<UINT16>(master.size());

        const TPM2B_PUBLIC in_public = sealed_template(policy, has_pin);
        const TPM2B_DATA outside_info{};
        const TPML_PCR_SELECTION creation_pcr{};
        TPM2B_PRIVATE* raw_private = nullptr;
        TPM2B_PUBLIC* raw_public = nullptr;
        const TSS2_RC rc =
            Esys_Create(esys, srk->handle.get(), session->get(), ESYS_TR_NONE, ESYS_TR_NONE,
                        &sensitive.value, &in_public, &outside_info, &creation_pcr, &raw_private,
                        &raw_public, nullptr, nullptr, nullptr);
        EsysPtr<TPM2B_PRIVATE> out_private(raw_private);
        EsysPtr<TPM2B_PUBLIC> out_public(raw_public);
        if (rc != TSS2_RC_SUCCESS) {
            return fail("TPM2_Create (sealed object)", rc);
        }
        TSS2_RC marshal_rc = TSS2_RC_SUCCESS;
        sealed = marshal_blob(*out_public, *out_private, marshal_rc);
        if (marshal_rc != TSS2_RC_SUCCESS) {
            return make_error(ErrorCode::Internal,
                              "cannot marshal the sealed object: " + describe_rc(marshal_rc));
        }
        srk_name = srk->name;
    }

    // Out-parameters change only on success.
    record.type = std::string(kType);
    record.params = {
        {"tcti", tcti},
        {"pcrs", *pcrs},
        {"pin", has_pin},
        {"srk_name", hex::encode(srk_name)},
        {"pcr_bank", std::string(kPcrBank)},
    };
    record.sealed = std::move(sealed);
    return {};
}

Result<SecretBuffer> Tpm2Keyslot::unseal(const KeyslotRecord& record,
                                         const UnlockCredentials& credentials) {
    quiet_tss2_log();
    auto params = parse_params(record.params);
    if (!params) {
        return params.error();
    }
    // Before the TPM sees anything: an empty PIN would only cost a
    // dictionary-attack strike.
    if (params->pin && credentials.pin.empty()) {
        return make_error(ErrorCode::AccessDenied, "this tpm2 keyslot needs a PIN");
    }
    if (params->pin && credentials.pin.size() > kMaxPinSize) {
        return make_error(ErrorCode::InvalidArgument,
                          "the PIN is longer than " + std::to_string(kMaxPinSize) + " bytes");
    }
    auto blob = parse_sealed(record.sealed, *params);
    if (!blob) {
        return blob.error();
    }
    const bool has_policy = params->pin || !params->pcrs.empty();
    // Only TPM2_Unseal checks the PIN; an authorization failure anywhere
    // else (a persistent SRK with a password) must not read "wrong PIN".
    const Failure fail(params->tcti, false);
    const Failure fail_unseal(params->tcti, params->pin);

    auto connection = Connection::open(params->tcti);
    if (!connection) {
        return connection.error();
    }
    ESYS_CONTEXT* esys = (*connection)->esys();

    auto srk = open_srk(esys, params->srk_name, fail);
    if (!srk) {
        return srk.error();
    }
    // ENCRYPT: the response parameter is the master key.
    auto session = start_salted_session(esys, *srk, has_policy ? TPM2_SE_POLICY : TPM2_SE_HMAC,
                                        TPMA_SESSION_ENCRYPT, fail);
    if (!session) {
        return session.error();
    }
    TpmHandle object(esys, TpmHandle::Kind::Flush);
    TSS2_RC rc = Esys_Load(esys, srk->handle.get(), ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                           &blob->priv, &blob->pub, object.out());
    if (rc != TSS2_RC_SUCCESS) {
        return fail("TPM2_Load (sealed object)", rc);
    }
    // The SRK's part is done (the session's salt is agreed, the object is
    // loaded); free its slot: swtpm has three.
    srk->handle.reset();

    // Always, even with no PIN: ESAPI mixes the authValue into the session's
    // HMAC and encryption keys, and a stale one yields garbage, not an error.
    {
        Wiped<TPM2B_AUTH> auth;
        if (params->pin) {
            if (auto made = pin_auth_value(credentials.pin, params->srk_name, auth.value); !made) {
                return made.error();
            }
        }
        rc = Esys_TR_SetAuth(esys, object.get(), &auth.value);
        if (rc != TSS2_RC_SUCCESS) {
            return fail("Esys_TR_SetAuth", rc);
        }
    }
    if (has_policy) {
        if (auto applied = apply_policy(esys, session->get(), params->pcrs, params->pin, fail);
            !applied) {
            return applied.error();
        }
    }

    TPM2B_SENSITIVE_DATA* raw = nullptr;
    rc = Esys_Unseal(esys, object.get(), session->get(), ESYS_TR_NONE, ESYS_TR_NONE, &raw);
    SensitiveDataPtr data(raw);
    wipe_response_buffer(esys);
    // ESAPI keeps the authValue with the object's record until it is closed.
    const TPM2B_AUTH empty{};
    Esys_TR_SetAuth(esys, object.get(), &empty);
    if (rc != TSS2_RC_SUCCESS) {
        return fail_unseal("TPM2_Unseal", rc);
    }
    if (data->size == 0) {
        return make_error(ErrorCode::Internal, "TPM2_Unseal returned no data");
    }
    return SecretBuffer(std::span<const uint8_t>(data->buffer, data->size));
}

}  // namespace apikeyd
