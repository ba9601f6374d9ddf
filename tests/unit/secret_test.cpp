#include "common/secret.hpp"

#include <gtest/gtest.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <cstdlib>
#include <type_traits>
#include <utility>

#include "daemon/secure_heap.hpp"

namespace apikeyd {
namespace {

static_assert(!std::is_copy_constructible_v<SecretBuffer>);
static_assert(!std::is_copy_assignable_v<SecretBuffer>);
static_assert(std::is_nothrow_move_constructible_v<SecretBuffer>);
static_assert(std::is_nothrow_move_assignable_v<SecretBuffer>);

bool all_zero(const uint8_t* data, size_t size) {
    return std::all_of(data, data + size, [](uint8_t b) { return b == 0; });
}

TEST(SecretBuffer, DefaultIsEmptyAndOwnsNothing) {
    const SecretBuffer buffer;
    EXPECT_TRUE(buffer.empty());
    EXPECT_EQ(buffer.size(), 0U);
    EXPECT_EQ(buffer.data(), nullptr);
}

TEST(SecretBuffer, ZeroSizeAllocatesNothing) {
    SecretBuffer buffer(0);
    EXPECT_TRUE(buffer.empty());
    EXPECT_EQ(buffer.data(), nullptr);
    EXPECT_TRUE(buffer.span().empty());
    EXPECT_TRUE(buffer.view().empty());
    buffer.truncate(0);
    EXPECT_TRUE(SecretBuffer::from_string("").empty());
}

TEST(SecretBuffer, StartsZeroedAtTheRequestedSize) {
    const SecretBuffer buffer(100);
    ASSERT_EQ(buffer.size(), 100U);
    ASSERT_NE(buffer.data(), nullptr);
    EXPECT_TRUE(all_zero(buffer.data(), buffer.size()));
}

TEST(SecretBuffer, CopiesBytesFromASpan) {
    const uint8_t bytes[] = {0x00, 0x01, 0xfe, 0xff};
    const SecretBuffer buffer(bytes);
    ASSERT_EQ(buffer.size(), 4U);
    EXPECT_TRUE(std::equal(buffer.data(), buffer.data() + 4, bytes));
}

TEST(SecretBuffer, FromStringKeepsEveryCharacter) {
    const std::string_view text("ak_\0secret", 10);
    const SecretBuffer buffer = SecretBuffer::from_string(text);
    EXPECT_EQ(buffer.view(), text);
}

TEST(SecretBuffer, MoveConstructionLeavesTheSourceEmpty) {
    SecretBuffer source = SecretBuffer::from_string("secret");
    const uint8_t* bytes = source.data();
    SecretBuffer target(std::move(source));
    EXPECT_EQ(target.view(), "secret");
    EXPECT_EQ(target.data(), bytes);
    // NOLINTNEXTLINE(bugprone-use-after-move): the moved-from state is the point.
    EXPECT_TRUE(source.empty());
    EXPECT_EQ(source.data(), nullptr);
}

TEST(SecretBuffer, MoveAssignmentLeavesTheSourceEmpty) {
    SecretBuffer source = SecretBuffer::from_string("new secret");
    SecretBuffer target = SecretBuffer::from_string("old secret");
    target = std::move(source);
    EXPECT_EQ(target.view(), "new secret");
    // NOLINTNEXTLINE(bugprone-use-after-move): the moved-from state is the point.
    EXPECT_TRUE(source.empty());
    EXPECT_EQ(source.data(), nullptr);
}

TEST(SecretBuffer, MoveAssignmentToItselfKeepsTheBytes) {
    SecretBuffer buffer = SecretBuffer::from_string("secret");
    SecretBuffer& alias = buffer;
    buffer = std::move(alias);
    EXPECT_EQ(buffer.view(), "secret");
}

TEST(SecretBuffer, TruncateShrinksAndWipesTheTail) {
    SecretBuffer buffer = SecretBuffer::from_string("ak_secret");
    const uint8_t* bytes = buffer.data();
    buffer.truncate(2);
    EXPECT_EQ(buffer.view(), "ak");
    EXPECT_EQ(buffer.data(), bytes);
    // Still inside the allocation, which lives until the buffer is destroyed.
    EXPECT_TRUE(all_zero(bytes + 2, 7));
}

TEST(SecretBuffer, TruncateToZeroLeavesAnEmptyBuffer) {
    SecretBuffer buffer = SecretBuffer::from_string("secret");
    buffer.truncate(0);
    EXPECT_TRUE(buffer.empty());
    EXPECT_TRUE(buffer.view().empty());
}

TEST(SecretBuffer, TruncateNeverGrows) {
    SecretBuffer buffer = SecretBuffer::from_string("secret");
    buffer.truncate(6);
    EXPECT_EQ(buffer.view(), "secret");
    buffer.truncate(100);
    EXPECT_EQ(buffer.view(), "secret");
}

TEST(Wipe, ZeroesEveryByte) {
    uint8_t bytes[32];
    std::fill(std::begin(bytes), std::end(bytes), uint8_t{0xa5});
    wipe(bytes, sizeof bytes);
    EXPECT_TRUE(all_zero(bytes, sizeof bytes));
    wipe(nullptr, 0);
}

// Exit codes name the check that failed, since the child cannot use EXPECT.
int exercise_secure_heap() {
    // Allocated before the heap exists and freed after: OpenSSL must still
    // recognise it as ordinary memory.
    SecretBuffer before = SecretBuffer::from_string("made before the heap");
    for (const size_t refused : {size_t{0}, size_t{64}, size_t{1000}, (size_t{1} << 16) + 1}) {
        if (init_secure_heap(refused)) {
            return 10;  // zero, too small for a bit table, or not a power of two
        }
    }
    if (!init_secure_heap(size_t{1} << 16)) {
        return 11;
    }
    if (CRYPTO_secure_malloc_initialized() != 1) {
        return 12;
    }
    {
        SecretBuffer inside = SecretBuffer::from_string("made inside the heap");
        if (CRYPTO_secure_allocated(inside.data()) != 1 ||
            inside.view() != "made inside the heap") {
            return 13;
        }
        if (CRYPTO_secure_allocated(before.data()) != 0) {
            return 14;
        }
        if (CRYPTO_secure_used() == 0 || SecretBuffer(0).data() != nullptr) {
            return 15;
        }
    }
    if (CRYPTO_secure_used() != 0) {
        return 16;  // the buffer went back to the secure heap
    }
    if (init_secure_heap(size_t{1} << 16)) {
        return 17;  // a second heap cannot replace the first
    }
    return 0;
}

// A death test only so that it runs in a forked child: the secure heap is
// process-wide and can be set up once, and no other test should run in it.
TEST(SecureHeapDeathTest, ServesSecretBuffersOnceInitialised) {
    EXPECT_EXIT(std::exit(exercise_secure_heap()), testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace apikeyd
