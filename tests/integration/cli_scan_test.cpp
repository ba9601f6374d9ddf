// `apikeyctl scan` on a tree made for the test: it reports every apikeyd key
// text with a valid checksum (live, revoked, rotated, unknown) by file and
// line, never the text itself; it ignores typos, look-alikes, binary files
// and .git; and with --revoke --yes it revokes exactly the live keys.

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/cli_fixture.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/values.hpp"

namespace apikeyd::test {
namespace {

using nlohmann::json;

class CliScan : public CliTest {
  protected:
    void SetUp() override {
        CliTest::SetUp();
        if (IsSkipped()) {
            return;
        }
        live_ = root().create_key("live", "", {"read"}, {});
        revoked_ = root().create_key("revoked", "", {}, {});
        root().revoke_key(revoked_.id, "earlier");
        typo_source_ = root().create_key("typo-source", "", {}, {});
        elsewhere_ = root().create_key("not-in-the-tree", "", {}, {});
        unknown_ = unissued_key("svc");

        std::filesystem::create_directories(dir_ / "config");
        std::filesystem::create_directories(dir_ / "src");
        std::filesystem::create_directories(dir_ / ".git" / "objects");
        write_file(dir_ / "config" / ".env",
                   "# settings\nDEBUG=1\nAPI_KEY=" + live_.key + "\nAGAIN=\"" + live_.key + "\"\n");
        write_file(dir_ / "notes.md", "old key:\n  " + revoked_.key + " (revoked)\n");
        std::string app;
        app += "KEY = '" + with_typo(typo_source_.key) + "'\n";
        // Looks like key text, but the checksum is not its own.
        app += "OTHER = 'ak_" + random_part(unissued_key()) + "AAAAAA'\n";
        // A key's text inside a longer token is not a key.
        app += "TOKEN = 'Z" + elsewhere_.key + "'\n";
        app += "LONGER = '" + elsewhere_.key + "9'\n";
        app += "FOREIGN = '" + unknown_ + "'\n";
        write_file(dir_ / "src" / "app.py", app);
        write_file(dir_ / ".git" / "objects" / "packed", "leak " + elsewhere_.key + "\n");
        write_file(dir_ / "image.bin", std::string("\x89PNG\0\0", 6) + elsewhere_.key + "\n");
    }

    ProcessResult scan(std::vector<std::string> args) {
        args.insert(args.begin(), "scan");
        args.push_back(dir_.path().string());
        return cli(args);
    }

    std::string path(const std::string& relative) const { return (dir_ / relative).string(); }

    // No key's text may be printed, only its prefix and last 4 characters.
    void expect_no_key_text(const ProcessResult& r) const {
        for (const auto& key :
             {live_.key, revoked_.key, typo_source_.key, elsewhere_.key, unknown_}) {
            EXPECT_EQ(r.out.find(random_part(key)), std::string::npos) << r.describe();
            EXPECT_EQ(r.err.find(random_part(key)), std::string::npos) << r.describe();
        }
    }

    TempDir dir_;
    client::CreatedKey live_;
    client::CreatedKey revoked_;
    client::CreatedKey typo_source_;
    client::CreatedKey elsewhere_;
    std::string unknown_;
};

TEST_F(CliScan, ReportsEachKeyWithItsPlaceIdAndStateButNotItsText) {
    const auto r = scan({});
    EXPECT_EQ(r.exit_code, 1) << "a live key was found\n" << r.describe();
    expect_no_key_text(r);
    for (const std::string& expected : std::vector<std::string>{
             path("config/.env") + ":3", path("config/.env") + ":4", live_.id,
             path("notes.md") + ":2", revoked_.id, "revoked", path("src/app.py") + ":5",
             "unknown to apikeyd", "svc_\u2026" + unknown_.substr(unknown_.size() - 4),
             "ak_\u2026" + live_.key.substr(live_.key.size() - 4)}) {
        EXPECT_NE(r.out.find(expected), std::string::npos) << expected << "\n" << r.describe();
    }
    for (const std::string& unexpected : std::vector<std::string>{
             typo_source_.id, elsewhere_.id, path("src/app.py") + ":1", path("src/app.py") + ":2",
             path("src/app.py") + ":3", path("src/app.py") + ":4", ".git", "image.bin"}) {
        EXPECT_EQ(r.out.find(unexpected), std::string::npos) << unexpected << "\n" << r.describe();
    }

    const auto report = cli_json({"scan", "--json", dir_.path().string()}, "", 1);
    ASSERT_EQ(report["findings"].size(), 4u) << report.dump(2);
    EXPECT_EQ(report["live_keys"], json::array({live_.id})) << report.dump(2);
    for (const auto& finding : report["findings"]) {
        if (finding["file"] == path("config/.env")) {
            EXPECT_EQ(finding["id"], live_.id) << finding.dump();
            EXPECT_EQ(finding["state"], "active") << finding.dump();
            EXPECT_EQ(finding["live"], true) << finding.dump();
        } else if (finding["file"] == path("notes.md")) {
            EXPECT_EQ(finding["id"], revoked_.id) << finding.dump();
            EXPECT_EQ(finding["line"], 2) << finding.dump();
            EXPECT_EQ(finding["live"], false) << finding.dump();
        } else {
            EXPECT_EQ(finding["file"], path("src/app.py")) << finding.dump();
            EXPECT_EQ(finding["known"], false) << finding.dump();
        }
    }
    EXPECT_EQ(report.dump().find(random_part(live_.key)), std::string::npos);
}

TEST_F(CliScan, RevokeWithYesRevokesOnlyTheLiveKey) {
    const auto r = scan({"--revoke", "--yes"});
    EXPECT_EQ(r.exit_code, 1) << r.describe();
    EXPECT_NE(r.out.find("Revoked key " + live_.id), std::string::npos) << r.describe();
    expect_no_key_text(r);

    const auto live = root().get_key(live_.id);
    EXPECT_EQ(field<std::string>(live, "state"), "revoked");
    EXPECT_EQ(field<std::string>(live, "revoke_reason"),
              "found by apikeyctl scan in " + path("config/.env"));
    EXPECT_EQ(field<std::string>(root().get_key(revoked_.id), "revoke_reason"), "earlier");
    for (const auto& untouched : {typo_source_.id, elsewhere_.id}) {
        EXPECT_EQ(field<std::string>(root().get_key(untouched), "state"), "active") << untouched;
    }

    const auto again = scan({});
    EXPECT_EQ(again.exit_code, 0) << "nothing live any more\n" << again.describe();
}

TEST_F(CliScan, RevokeWithoutATerminalNeedsYes) {
    const auto r = scan({"--revoke"});
    EXPECT_EQ(r.exit_code, 2) << r.describe();
    EXPECT_NE(r.err.find("--yes"), std::string::npos) << r.describe();
    EXPECT_EQ(field<std::string>(root().get_key(live_.id), "state"), "active");
}

TEST_F(CliScan, ThePreviousTextOfARotationIsNotLiveOnceItsGraceIsOver) {
    const auto rotated = cli({"rotate", live_.id});
    ASSERT_EQ(rotated.exit_code, 0) << rotated.describe();
    const auto r = scan({});
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    EXPECT_NE(r.out.find("previous text"), std::string::npos) << r.describe();
    EXPECT_NE(r.out.find(live_.id), std::string::npos) << r.describe();
}

TEST_F(CliScan, FindsNothingInCleanFilesAndRefusesAMissingPath) {
    TempDir clean;
    write_file(clean / "readme", "no keys here, only ak_short and k_" + std::string(12, 'a'));
    const auto r = cli({"scan", clean.path().string()});
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    EXPECT_NE(r.out.find("No apikeyd key text found"), std::string::npos) << r.describe();

    // A mistyped path must not pass for a clean one.
    const auto missing = cli({"scan", clean.path().string(), (clean / "missing").string()});
    EXPECT_EQ(missing.exit_code, 2) << missing.describe();
    EXPECT_NE(missing.err.find("missing"), std::string::npos) << missing.describe();

    EXPECT_EQ(cli({"scan"}).exit_code, 2);
}

}  // namespace
}  // namespace apikeyd::test
