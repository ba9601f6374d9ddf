// read_pin_file: what a PIN file or systemd credential may hold, and that
// messages name the file but never its content.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <string>

#include "daemon/pin_file.hpp"
#include "tests/support/temp_dir.hpp"

namespace apikeyd {
namespace {

using test::TempDir;
using test::write_file;

constexpr size_t kMax = 8;

class PinFileTest : public ::testing::Test {
  protected:
    Result<SecretBuffer> read(const std::string& content) {
        write_file(dir_ / "pin", content);
        return read_pin_file(dir_ / "pin", kMax);
    }
    void expect_refused(const std::string& content, const std::string& words) {
        const auto pin = read(content);
        ASSERT_FALSE(pin) << "accepted " << content.size() << " bytes";
        EXPECT_EQ(pin.error().code, ErrorCode::InvalidArgument);
        EXPECT_NE(pin.error().message.find(words), std::string::npos) << pin.error().message;
        EXPECT_NE(pin.error().message.find((dir_ / "pin").string()), std::string::npos);
        if (!content.empty()) {
            EXPECT_EQ(pin.error().message.find(content), std::string::npos) << "content leaked";
        }
    }

    TempDir dir_{"apikeyd-pin-file"};
};

TEST_F(PinFileTest, OneTrailingLineBreakIsNotPartOfThePin) {
    for (const char* content : {"123456", "123456\n", "123456\r\n"}) {
        const auto pin = read(content);
        ASSERT_TRUE(pin) << pin.error().message;
        EXPECT_EQ(pin->view(), "123456") << content;
    }
    // Only one: a second line break is the PIN's own.
    const auto two = read("1234\n\n");
    ASSERT_TRUE(two);
    EXPECT_EQ(two->view(), "1234\n");
}

TEST_F(PinFileTest, ThePinMayUseTheWholeLimit) {
    const auto pin = read(std::string(kMax, '7') + "\n");
    ASSERT_TRUE(pin);
    EXPECT_EQ(pin->size(), kMax);
}

TEST_F(PinFileTest, RefusesEmptyAndOverlongPins) {
    expect_refused("", "it is empty");
    expect_refused("\n", "it is empty");
    expect_refused(std::string(kMax + 1, '9'), "longer than 8 bytes");
    expect_refused(std::string(kMax + 1, '9') + "\r\n", "longer than 8 bytes");
    expect_refused(std::string(4096, '9'), "longer than 8 bytes");
}

TEST_F(PinFileTest, RefusesWhatIsNotAReadableRegularFile) {
    const auto missing = read_pin_file(dir_ / "missing", kMax);
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().message.find("No such file"), std::string::npos);
    const auto directory = read_pin_file(dir_.path(), kMax);
    ASSERT_FALSE(directory);
    EXPECT_NE(directory.error().message.find("not a regular file"), std::string::npos);
}

TEST_F(PinFileTest, TheCredentialIsUsedOnlyWhenSystemdHandsOneIn) {
    unsetenv("CREDENTIALS_DIRECTORY");
    EXPECT_FALSE(pkcs11_pin_credential());
    setenv("CREDENTIALS_DIRECTORY", dir_.path().c_str(), 1);
    EXPECT_FALSE(pkcs11_pin_credential());
    write_file(dir_ / "pkcs11-pin", "1234\n");
    EXPECT_EQ(pkcs11_pin_credential(), dir_ / "pkcs11-pin");
    unsetenv("CREDENTIALS_DIRECTORY");
}

}  // namespace
}  // namespace apikeyd
