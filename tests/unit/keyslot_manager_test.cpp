#include "daemon/keyslot_manager.hpp"

#include <gtest/gtest.h>

#include <memory>

#include "daemon/keyslot_admin.hpp"
#include "daemon/keyslots/recovery_keyslot.hpp"
#include "daemon/keyslots/software_keyslot.hpp"
#include "daemon/log_throttle.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/unit/fake_clock.hpp"

namespace apikeyd {
namespace {

const Caller kRoot{0, 1};
const Caller kAlice{1000, 2};

// Cheap scrypt parameters: these tests are about the slot logic, not the
// work factor (RecoveryKeyslot's default is checked separately).
constexpr crypto::ScryptParams kFastScrypt{1024, 8, 1};

UnlockCredentials with_recovery_key(std::string_view key) {
    return UnlockCredentials{SecretBuffer(), SecretBuffer::from_string(key)};
}

UnlockRequest recovery_unlock(std::string_view key) {
    UnlockRequest request;
    request.type = "recovery";
    request.credentials = with_recovery_key(key);
    return request;
}

class KeyslotManagerTest : public ::testing::Test {
  protected:
    void SetUp() override {
        reopen();
        SoftwareKeyslot software(dir.path());
        ASSERT_TRUE(manager->initialize(software));
    }

    void reopen() {
        manager.reset();
        store.reset();
        auto opened = Store::open(dir / "apikeyd.db");
        ASSERT_TRUE(opened);
        store = std::move(*opened);
        manager = std::make_unique<KeyslotManager>(*store, dir.path(), clock);
        ASSERT_TRUE(manager->initialized());
    }

    // Starts again with the software slot gone: locked until the recovery
    // slot is opened.
    void lose_the_software_slot() {
        std::filesystem::remove(dir / std::string(SoftwareKeyslot::kFileName));
        reopen();
        manager->unlock();
        ASSERT_TRUE(manager->locked());
    }

    // Adds a recovery slot and returns the recovery key as shown to the user.
    std::string add_recovery() {
        RecoveryKeyslot recovery(kFastScrypt);
        auto id = manager->add(recovery);
        EXPECT_TRUE(id) << id.error().message;
        recovery_id = *id;
        return std::string(recovery.recovery_key().view());
    }

    test::TempDir dir{"apikeyd-keyslots"};
    test::FakeClock clock;
    std::unique_ptr<Store> store;
    std::unique_ptr<KeyslotManager> manager;
    std::string recovery_id;
};

TEST_F(KeyslotManagerTest, RecoveryKeysAre160BitsInGroupsOfFour) {
    const std::string key = add_recovery();
    ASSERT_EQ(key.size(), 39u);
    for (size_t i = 0; i < key.size(); ++i) {
        if (i % 5 == 4) {
            EXPECT_EQ(key[i], '-') << key;
        } else {
            EXPECT_NE(std::string_view("abcdefghijklmnopqrstuvwxyz234567").find(key[i]),
                      std::string_view::npos)
                << key;
        }
    }
    EXPECT_NE(add_recovery(), key) << "every recovery key is new";
}

TEST_F(KeyslotManagerTest, RecoveryKeyUnlocksWhenTheOtherSlotIsGone) {
    const std::string key = add_recovery();
    lose_the_software_slot();
    EXPECT_NE(manager->lock_reason().find("needs the recovery key"), std::string::npos);

    const auto wrong = manager->unlock_with(
        "recovery", with_recovery_key("aaaa-aaaa-aaaa-aaaa-aaaa-aaaa-aaaa-aaaa"));
    ASSERT_FALSE(wrong);
    EXPECT_EQ(wrong.error().code, ErrorCode::AccessDenied);
    EXPECT_TRUE(manager->locked());

    // Typed in upper case and without dashes, as people do.
    std::string typed;
    for (char c : key) {
        if (c != '-') {
            typed += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        }
    }
    ASSERT_TRUE(manager->unlock_with("recovery", with_recovery_key(typed)));
    EXPECT_FALSE(manager->locked());
    EXPECT_NE(manager->master_key(), nullptr);
}

TEST_F(KeyslotManagerTest, MalformedRecoveryKeysAreRefusedBeforeAnyWork) {
    add_recovery();
    std::filesystem::remove(dir / std::string(SoftwareKeyslot::kFileName));
    reopen();
    manager->unlock();
    for (const std::string bad : {"", "too-short", "aaaa-aaaa-aaaa-aaaa-aaaa-aaaa-aaaa-aaa1",
                                  "aaaa-aaaa-aaaa-aaaa-aaaa-aaaa-aaaa-aaaa-a"}) {
        const auto result = manager->unlock_with("recovery", with_recovery_key(bad));
        ASSERT_FALSE(result) << bad;
        EXPECT_NE(result.error().code, ErrorCode::Internal) << bad;
    }
}

TEST_F(KeyslotManagerTest, UnlockIsRefusedWhenNotLockedOrWithoutSuchASlot) {
    EXPECT_EQ(manager->unlock_with("recovery", with_recovery_key("x")).error().code,
              ErrorCode::InvalidArgument);
    std::filesystem::remove(dir / std::string(SoftwareKeyslot::kFileName));
    reopen();
    manager->unlock();
    EXPECT_EQ(manager->unlock_with("recovery", with_recovery_key("x")).error().code,
              ErrorCode::NotFound);
}

TEST_F(KeyslotManagerTest, RemovesAnyButTheLastSlot) {
    ASSERT_EQ(manager->keyslots().size(), 1u);
    const std::string software_id = manager->keyslots()[0].id;
    const auto last = manager->remove(software_id);
    ASSERT_FALSE(last);
    EXPECT_NE(last.error().message.find("last"), std::string::npos);

    const std::string key = add_recovery();
    ASSERT_TRUE(manager->remove(software_id));
    EXPECT_FALSE(std::filesystem::exists(dir / std::string(SoftwareKeyslot::kFileName)))
        << "removing the software slot removes its key file";
    EXPECT_FALSE(manager->remove(recovery_id));

    reopen();
    ASSERT_EQ(manager->keyslots().size(), 1u);
    EXPECT_EQ(manager->keyslots()[0].type, "recovery");
    manager->unlock();
    ASSERT_TRUE(manager->locked());
    EXPECT_TRUE(manager->unlock_with("recovery", with_recovery_key(key)));
}

TEST_F(KeyslotManagerTest, NoSlotIsRemovedWhileLocked) {
    add_recovery();
    std::filesystem::remove(dir / std::string(SoftwareKeyslot::kFileName));
    reopen();
    manager->unlock();
    ASSERT_TRUE(manager->locked());
    const auto refused = manager->remove(recovery_id);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, ErrorCode::Locked);
    EXPECT_EQ(manager->keyslots().size(), 2u);
}

TEST_F(KeyslotManagerTest, RemoveNamesAMissingOrMalformedId) {
    EXPECT_EQ(manager->remove("ks_aaaaaaaa").error().code, ErrorCode::NotFound);
    EXPECT_EQ(manager->remove("ak_not_an_id").error().code, ErrorCode::InvalidArgument);
}

TEST_F(KeyslotManagerTest, OnlyRootManagesKeyslots) {
    KeyslotAdmin admin(*manager);
    AddKeyslotRequest request;
    request.type = "recovery";
    EXPECT_EQ(admin.add(kAlice, std::move(request)).error().code, ErrorCode::AccessDenied);
    EXPECT_EQ(admin.remove(kAlice, manager->keyslots()[0].id).error().code,
              ErrorCode::AccessDenied);
    EXPECT_EQ(admin.unlock(kAlice, recovery_unlock("x")).error().code, ErrorCode::AccessDenied);
}

TEST_F(KeyslotManagerTest, AdminSummarisesRefusalsOfAUserWhoNeverComesBack) {
    KeyslotAdmin admin(*manager);
    const uint32_t refusals = LogThrottle::kLinesPerWindow + 10;
    testing::internal::CaptureStderr();
    for (uint32_t i = 0; i < refusals; ++i) {
        EXPECT_FALSE(admin.unlock(kAlice, recovery_unlock("x")));
    }
    clock.advance_sec(LogThrottle::kWindowUsec / kUsecPerSec);
    admin.write_log_summaries();
    const std::string log = testing::internal::GetCapturedStderr();
    EXPECT_NE(log.find("10 more refusals of uid 1000"), std::string::npos) << log;
}

TEST_F(KeyslotManagerTest, AdminRefusesAnEmptyPinRatherThanMakeASlotWithout) {
    KeyslotAdmin admin(*manager);
    AddKeyslotRequest request;
    request.type = "tpm2";
    request.pin = SecretBuffer();
    const auto added = admin.add(kRoot, std::move(request));
    ASSERT_FALSE(added);
    EXPECT_EQ(added.error().code, ErrorCode::InvalidArgument);
    EXPECT_NE(added.error().message.find("'pin': it is empty"), std::string::npos)
        << added.error().message;
    EXPECT_EQ(manager->keyslots().size(), 1u);
}

TEST_F(KeyslotManagerTest, AdminTellsItsListenerOfEveryUnlockThatWorked) {
    const std::string key = add_recovery();
    lose_the_software_slot();
    KeyslotAdmin admin(*manager);
    int unlocked = 0;
    admin.on_unlocked([&] { ++unlocked; });

    EXPECT_FALSE(admin.unlock(kRoot, recovery_unlock("x")));
    EXPECT_FALSE(admin.unlock(kAlice, recovery_unlock(key)));
    EXPECT_EQ(unlocked, 0);
    ASSERT_TRUE(admin.unlock(kRoot, recovery_unlock(key)));
    EXPECT_EQ(unlocked, 1);
}

TEST_F(KeyslotManagerTest, AdminRefusesUnknownTypesAndStrayOptions) {
    KeyslotAdmin admin(*manager);
    AddKeyslotRequest software;
    software.type = "software";
    EXPECT_EQ(admin.add(kRoot, std::move(software)).error().code, ErrorCode::InvalidArgument);
    AddKeyslotRequest recovery;
    recovery.type = "recovery";
    recovery.pcrs = {7};
    EXPECT_EQ(admin.add(kRoot, std::move(recovery)).error().code, ErrorCode::InvalidArgument);
    AddKeyslotRequest tpm2;
    tpm2.type = "tpm2";
    tpm2.pcrs = {24};
    const auto bad_pcr = admin.add(kRoot, std::move(tpm2));
    ASSERT_FALSE(bad_pcr);
    EXPECT_NE(bad_pcr.error().message.find("PCR 24"), std::string::npos);
}

TEST_F(KeyslotManagerTest, AdminReturnsTheRecoveryKeyOnce) {
    KeyslotAdmin admin(*manager);
    AddKeyslotRequest request;
    request.type = "recovery";
    auto added = admin.add(kRoot, std::move(request));
    ASSERT_TRUE(added) << added.error().message;
    EXPECT_EQ(added->recovery_key.size(), 39u);
    EXPECT_TRUE(added->id.starts_with("ks_"));
    EXPECT_EQ(manager->keyslots().size(), 2u);
}

TEST(RecoveryKeyslot, DefaultWorkFactorIsAtLeastScryptN32768) {
    const crypto::ScryptParams defaults;
    EXPECT_GE(defaults.n, 32768u);
    EXPECT_GE(defaults.r, 8u);
}

}  // namespace
}  // namespace apikeyd
