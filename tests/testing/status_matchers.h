// gMock matchers for absl::Status and absl::StatusOr (Debian's Abseil ships
// none): StatusIs(code), StatusIs(code, message or matcher), EXPECT_OK.
#ifndef FLEET_TESTS_TESTING_STATUS_MATCHERS_H_
#define FLEET_TESTS_TESTING_STATUS_MATCHERS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"

namespace fleet::testing {

inline absl::Status ToStatus(const absl::Status& status) { return status; }
template <typename T>
absl::Status ToStatus(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

MATCHER_P(StatusIs, code, absl::StrCat("has code ", absl::StatusCodeToString(code))) {
  absl::Status status = ToStatus(arg);
  *result_listener << "status is " << status;
  return status.code() == code;
}

// `message_matcher` is a matcher of std::string or a string, which must
// equal the message.
MATCHER_P2(StatusIs, code, message_matcher,
           absl::StrCat("has code ", absl::StatusCodeToString(code), " and a message that ",
                        ::testing::DescribeMatcher<std::string>(message_matcher))) {
  absl::Status status = ToStatus(arg);
  if (status.code() != code) {
    *result_listener << "has code " << absl::StatusCodeToString(status.code()) << ": "
                     << status.message();
    return false;
  }
  return ::testing::ExplainMatchResult(message_matcher, std::string(status.message()),
                                       result_listener);
}

}  // namespace fleet::testing

#define EXPECT_OK(expr) \
  EXPECT_THAT(::fleet::testing::ToStatus(expr), ::fleet::testing::StatusIs(absl::StatusCode::kOk))
#define ASSERT_OK(expr) \
  ASSERT_THAT(::fleet::testing::ToStatus(expr), ::fleet::testing::StatusIs(absl::StatusCode::kOk))

#endif  // FLEET_TESTS_TESTING_STATUS_MATCHERS_H_
