// Credentials never leave the controller through its public API: every
// response (and error message) passes through here before it is sent.
//
// What is redacted, in every string of a message (found by walking its
// descriptor, so fields added later are covered without a change here):
//  - in any URL (scheme://...) inside the text: the userinfo
//    ("https://***@host/"), every query value ("?access_token=***&a=***")
//    and, for hosts known to carry a token in the path (Slack, Discord,
//    Microsoft Teams, Telegram, Feishu/Lark, ...), the whole path
//    ("https://hooks.slack.com/***");
//  - values of "secret:", "password:" (and "=") pairs in free text such as
//    YAML;
//  - the whole value of every string field named `secret`.
// Bytes fields are left alone. Redacted parts become "***". Pure functions;
// any thread.
#ifndef FLEET_CONTROLLER_REDACTION_H_
#define FLEET_CONTROLLER_REDACTION_H_

#include <google/protobuf/message.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace fleet::controller {

inline constexpr char kRedacted[] = "***";

// `text` with the credentials of every URL in it and of every secret/password
// pair redacted.
std::string RedactText(absl::string_view text);

// Redacts every string field of `message` and of the messages it holds, as
// the top of this file says.
void RedactMessage(google::protobuf::Message* message);

// The longest error message the API sends, in bytes. Messages may quote
// what the caller sent (a name, an id); the answer must fit the caller's
// metadata limit (8 KiB by default) and stay one readable line.
inline constexpr size_t kMaxApiErrorBytes = 1024;

// `status` with its message redacted (RedactText) and, when longer than
// kMaxApiErrorBytes, cut to end with "... (N bytes cut)"; the code is kept.
absl::Status RedactStatus(const absl::Status& status);

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_REDACTION_H_
