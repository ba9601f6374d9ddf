#pragma once
// A directory under /tmp that exists for one test and is removed, with all it
// holds, when the object goes away.

#include <filesystem>
#include <string>

namespace apikeyd::test {

class TempDir {
  public:
    // Created 0755 so that a child running as `nobody` can reach a bus socket in it.
    explicit TempDir(const std::string& tag = "apikeyd-it");
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

  private:
    std::filesystem::path path_;
};

// Whole-file helpers; they throw std::runtime_error naming the path on failure.
std::string read_file(const std::filesystem::path& path);
void write_file(const std::filesystem::path& path, const std::string& content);

}  // namespace apikeyd::test
