#include "common/text.h"

#include <string>

#include "gtest/gtest.h"

namespace fleet {
namespace {

const std::string kReplacement = "\xEF\xBF\xBD";

TEST(ValidUtf8Test, KeepsValidTextOfEveryLength) {
  const std::string text = "ascii \xC3\xA9 \xE4\xB8\xAD \xF0\x9F\x9A\x80 end\n";
  EXPECT_EQ(ValidUtf8(text), text);
  EXPECT_EQ(ValidUtf8(""), "");
}

TEST(ValidUtf8Test, ReplacesStrayTruncatedOverlongAndSurrogateSequences) {
  EXPECT_EQ(ValidUtf8("a\x80" "b"), "a" + kReplacement + "b");           // stray continuation
  EXPECT_EQ(ValidUtf8("a\xC3"), "a" + kReplacement);                     // truncated at the end
  EXPECT_EQ(ValidUtf8("\xE4\xB8z"), kReplacement + "z");                 // truncated inside
  EXPECT_EQ(ValidUtf8("\xC0\xAF"), kReplacement);                        // overlong '/'
  EXPECT_EQ(ValidUtf8("\xED\xA0\x80"), kReplacement);                    // surrogate U+D800
  EXPECT_EQ(ValidUtf8("\xF4\x90\x80\x80"), kReplacement);                // beyond U+10FFFF
  EXPECT_EQ(ValidUtf8("\xFF\xFE ok"), kReplacement + kReplacement + " ok");
}

TEST(EscapeControlCharactersTest, EscapesControlsAndKeepsUtf8) {
  EXPECT_EQ(EscapeControlCharacters("a\tb\x7f\xC3\xA9"), "a\\x09b\\x7f\xC3\xA9");
}

}  // namespace
}  // namespace fleet
