#include "daemon/caller.hpp"

#include <gtest/gtest.h>

#include <string>

namespace apikeyd {
namespace {

TEST(CallerText, KeepsAShortTextAsItIs) {
    EXPECT_EQ(caller_text("/usr/bin/curl").view(), "/usr/bin/curl");
    const std::string at_limit(kMaxCallerTextBytes, 'x');
    EXPECT_EQ(caller_text(at_limit).view(), at_limit);
}

TEST(CallerText, CutsALongPathToItsTailBehindAMark) {
    const std::string path = "/" + std::string(3790, 'a') + "/bin/curl";
    const auto cut = caller_text(path);
    EXPECT_EQ(cut.view().size(), kMaxCallerTextBytes);
    EXPECT_TRUE(cut.view().starts_with("...")) << cut.view();
    EXPECT_TRUE(cut.view().ends_with("/bin/curl")) << cut.view();
}

TEST(CallerText, NeverCutsACharacterInTwo) {
    std::string path = "/";
    for (int i = 0; i < 300; ++i) {
        path += "\xC3\xA9";  // é, two bytes
    }
    const auto cut = caller_text(path);
    ASSERT_LE(cut.view().size(), kMaxCallerTextBytes);
    ASSERT_TRUE(cut.view().starts_with("..."));
    // What follows the mark is whole characters: a lead byte, never 10xxxxxx.
    EXPECT_EQ(static_cast<unsigned char>(cut.view()[3]), 0xC3u);
    EXPECT_EQ(cut.view().size() % 2, 1u) << "'...' and whole two-byte characters";
}

TEST(CallerText, WritesBytesThatAreNotUtf8AsEscapes) {
    EXPECT_EQ(caller_text("/tmp/ctl\xff\xfe \xC3\xA9").view(), "/tmp/ctl\\xFF\\xFE \xC3\xA9");
    const auto cut = caller_text("/" + std::string(300, '\xff'));
    EXPECT_EQ(cut.view().size(), kMaxCallerTextBytes);
    EXPECT_TRUE(cut.view().ends_with("\\xFF\\xFF")) << cut.view();
}

}  // namespace
}  // namespace apikeyd
