#include "cli/actor.h"

#include <pwd.h>
#include <stdlib.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"

namespace fleet::cli {

std::string CurrentActor() {
  if (const char* actor = getenv("FLEET_ACTOR"); actor != nullptr && *actor) return actor;
  std::string user;
  if (struct passwd* pw = getpwuid(getuid()); pw != nullptr) user = pw->pw_name;
  if (user.empty()) {
    const char* env_user = getenv("USER");
    user = env_user ? env_user : absl::StrCat("uid", getuid());
  }
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  return absl::StrCat(user, "@", host);
}

}  // namespace fleet::cli
