#include "cli/pki_command.h"

#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cli/fleetctl.h"
#include "cli/session.h"
#include "common/fs.h"
#include "common/pki.h"
#include "common/tls.h"

namespace fleet::cli {
namespace {

constexpr int kMaxDays = 36500;

struct PkiArgs {
  std::string dir;  // `init DIR`, `issue --ca-dir DIR`
  std::string host;
  std::string controller;
  int ca_days = static_cast<int>(kDefaultCaValidity / absl::Hours(24));
  int leaf_days = static_cast<int>(kDefaultLeafValidity / absl::Hours(24));
  bool force = false;
};

absl::Duration Validity(int days) {
  if (days < 1 || days > kMaxDays) {
    Fail(absl::StrCat("--days ", days, " must be between 1 and ", kMaxDays));
  }
  return absl::Hours(24) * days;
}

std::string Day(absl::Time t) { return absl::FormatTime("%Y-%m-%d", t, absl::UTCTimeZone()); }

// The CN of DIR's CA certificate, for messages; "" when unreadable.
std::string CaName(const std::string& dir) {
  absl::StatusOr<std::string> pem = ReadFile(CaCertPath(dir));
  if (!pem.ok()) return "";
  absl::StatusOr<CertificateNames> names = NamesOfCertificate(*pem);
  return names.ok() ? names->common_name : "";
}

void PrintWritten(bool json, const std::string& cert, const std::string& key, const std::string& ca,
                  absl::Time not_after, const std::string& description) {
  if (json) {
    nlohmann::json out = {
        {"cert", cert},
        {"key", key},
        {"ca", ca},
        {"not_after", absl::FormatTime(absl::RFC3339_sec, not_after, absl::UTCTimeZone())}};
    std::cout << out.dump(2) << "\n";
    return;
  }
  std::cout << "wrote " << key << " (0600) and " << cert << ": " << description << ", valid until "
            << Day(not_after) << " UTC\n";
}

void RunInit(Session* session, const PkiArgs& args) {
  const absl::Duration validity = Validity(args.ca_days);
  const absl::Time not_after = absl::Now() + validity;
  if (absl::Status st = InitCertificateAuthorityDir(args.dir, validity); !st.ok()) {
    Fail(st.message());
  }
  const bool json = session->json();
  PrintWritten(json, CaCertPath(args.dir), CaKeyPath(args.dir), CaCertPath(args.dir), not_after,
               CaName(args.dir));
  if (!json) {
    std::cout << "keep " << CaKeyPath(args.dir) << " secret; give " << CaCertPath(args.dir)
              << " to the controller, every agent and fleetctl as --tls-ca\n";
  }
  Exit(kExitOk);
}

void RunIssue(Session* session, const PkiArgs& args) {
  if (args.host.empty() == args.controller.empty()) {
    Fail(
        "pki issue needs exactly one of --host ID (an agent's client certificate) or "
        "--controller NAME (the controller's server certificate)");
  }
  const bool host = !args.host.empty();
  const std::string& id = host ? args.host : args.controller;
  const absl::Duration validity = Validity(args.leaf_days);
  const absl::Time not_after = absl::Now() + validity;
  if (absl::Status st = IssueCertificateToDir(
          args.dir, id, host ? CertificateKind::kHost : CertificateKind::kController, validity,
          args.force);
      !st.ok()) {
    Fail(st.message());
  }
  const std::string description =
      host ? absl::StrCat("client certificate for host ", id)
           : absl::StrCat("server certificate for ", id == "localhost" ? "" : id + ", ",
                          "localhost and 127.0.0.1");
  PrintWritten(session->json(), IssuedCertPath(args.dir, id), IssuedKeyPath(args.dir, id),
               CaCertPath(args.dir), not_after,
               absl::StrCat(description, ", signed by ", CaName(args.dir)));
  Exit(kExitOk);
}

}  // namespace

void AddPkiCommands(CLI::App* app, Session* session) {
  // Owned by the callbacks, which `app` keeps for as long as it lives.
  auto args = std::make_shared<PkiArgs>();
  CLI::App* pki =
      app->add_subcommand("pki", "a small CA for mutual TLS: make one, issue certificates")
          ->require_subcommand(1);

  CLI::App* init = pki->add_subcommand("init", "make a CA in DIR: DIR/ca.crt and DIR/ca.key");
  init->add_option("dir", args->dir, "directory for the CA (created 0700)")->required();
  init->add_option("--days", args->ca_days, "validity in days")->capture_default_str();
  init->callback([session, args] { RunInit(session, *args); });

  CLI::App* issue =
      pki->add_subcommand("issue", "issue DIR/ID.crt and DIR/ID.key, signed by the CA in DIR");
  issue->add_option("--ca-dir", args->dir, "directory of `pki init`")->required();
  issue->add_option("--host", args->host,
                    "an agent's host id: client certificate, CN and DNS SAN = ID");
  issue->add_option(
      "--controller", args->controller,
      "the controller's name agents dial: server certificate for NAME, localhost, 127.0.0.1");
  issue->add_option("--days", args->leaf_days, "validity in days")->capture_default_str();
  issue->add_flag("--force", args->force, "replace an existing ID.crt and ID.key");
  issue->callback([session, args] { RunIssue(session, *args); });
}

}  // namespace fleet::cli
