#include "controller/agent_spec.h"

namespace fleet::controller {

fleet::v1::AppSpec SpecForAgent(const fleet::v1::AppSpec& spec) {
  fleet::v1::AppSpec out;
  out.set_name(spec.name());
  out.set_keep_releases(spec.keep_releases());
  *out.mutable_shared_dirs() = spec.shared_dirs();
  out.set_reload(spec.reload());
  out.set_reload_timeout_ms(spec.reload_timeout_ms());
  *out.mutable_health() = spec.health();
  out.set_bake_ms(spec.bake_ms());
  if (spec.has_hooks()) *out.mutable_hooks() = spec.hooks();
  if (spec.has_config()) *out.mutable_config() = spec.config();
  *out.mutable_trusted_keys() = spec.trusted_keys();
  out.set_user(spec.user());
  return out;
}

}  // namespace fleet::controller
