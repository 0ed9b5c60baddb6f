#include "controller/analysis.h"

#include <curl/curl.h>

#include <cmath>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/curl.h"
#include "common/logging.h"

namespace fleet::controller {
namespace {

using json = nlohmann::json;

// An answer of one sample is small; a larger one is a query that selects
// far too many series, which is inconclusive anyway.
constexpr size_t kMaxAnswer = 4 << 20;


struct Answer {
  std::string body;
  bool too_big = false;
};

size_t KeepAnswer(char* data, size_t size, size_t nmemb, void* userdata) {
  Answer* answer = static_cast<Answer*>(userdata);
  size_t n = size * nmemb;
  if (answer->body.size() + n > kMaxAnswer) {
    answer->too_big = true;
    return 0;  // CURLE_WRITE_ERROR
  }
  answer->body.append(data, n);
  return n;
}

int AbortWhenCancelled(void* clientp, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  // Non-zero aborts the transfer (CURLE_ABORTED_BY_CALLBACK).
  return static_cast<std::atomic<bool>*>(clientp)->load() ? 1 : 0;
}

// The number of a sample `[<unix time>, "<value>"]`.
absl::StatusOr<double> SampleValue(const json& sample) {
  if (!sample.is_array() || sample.size() != 2 || !sample[1].is_string()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the answer holds a malformed sample: ", sample.dump()));
  }
  const std::string text = sample[1].get<std::string>();
  double value = 0;
  if (text == "NaN" || (absl::SimpleAtod(text, &value) && std::isnan(value))) {
    return absl::FailedPreconditionError(
        "the query returned NaN (0/0 is NaN: is there traffic to measure?)");
  }
  if (!absl::SimpleAtod(text, &value)) {
    return absl::FailedPreconditionError(
        absl::StrCat("the query returned \"", text, "\", not a number"));
  }
  if (!std::isfinite(value)) {
    return absl::FailedPreconditionError(absl::StrCat("the query returned ", text));
  }
  return value;
}

}  // namespace

absl::StatusOr<double> ParsePrometheusAnswer(absl::string_view body) {
  json doc = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return absl::UnavailableError("the body is not JSON");
  if (!doc.is_object() || !doc.contains("status") || !doc["status"].is_string()) {
    return absl::UnavailableError("the body is not a Prometheus answer (no \"status\")");
  }
  if (doc["status"] != "success") {
    auto text = [&doc](const char* key) {
      return doc.contains(key) && doc[key].is_string() ? doc[key].get<std::string>() : "";
    };
    const std::string type = text("errorType");
    const std::string error = text("error");
    return absl::FailedPreconditionError(absl::StrCat("the query failed",
                                                      type.empty() ? "" : " (" + type + ")",
                                                      error.empty() ? "" : ": " + error));
  }
  if (!doc.contains("data") || !doc["data"].is_object()) {
    return absl::UnavailableError("the body is not a Prometheus answer (no \"data\")");
  }
  const json& data = doc["data"];
  const std::string type = data.contains("resultType") && data["resultType"].is_string()
                               ? data["resultType"].get<std::string>()
                               : "";
  const json result = data.contains("result") ? data["result"] : json();
  if (type == "scalar") return SampleValue(result);
  if (type != "vector") {
    return absl::FailedPreconditionError(
        absl::StrCat("the query returned a ", type.empty() ? "result of no type" : type,
                     "; it must return one sample (an instant vector or a scalar)"));
  }
  if (!result.is_array()) {
    return absl::FailedPreconditionError("the answer's vector is not a list");
  }
  if (result.empty()) {
    return absl::FailedPreconditionError(
        "no data: the query returned an empty vector (no series matched)");
  }
  if (result.size() > 1) {
    return absl::FailedPreconditionError(
        absl::StrCat(result.size(), " series; aggregate to one, e.g. with sum(...)"));
  }
  if (!result[0].is_object() || !result[0].contains("value")) {
    return absl::FailedPreconditionError("the answer's sample has no value");
  }
  return SampleValue(result[0]["value"]);
}

bool MeetsFailIf(double value, absl::string_view op, double threshold) {
  if (op == ">") return value > threshold;
  if (op == ">=") return value >= threshold;
  if (op == "<") return value < threshold;
  if (op == "<=") return value <= threshold;
  if (op == "==") return value == threshold;
  if (op == "!=") return value != threshold;
  return true;
}

std::string FormatAnalysisValue(double value) { return absl::StrCat(value); }

std::string RedactUrl(absl::string_view url) {
  const size_t scheme = url.find("://");
  if (scheme == absl::string_view::npos) return std::string(url);
  const size_t start = scheme + 3;
  const size_t end = std::min(url.find_first_of("/?#", start), url.size());
  const size_t at = url.substr(start, end - start).rfind('@');
  if (at == absl::string_view::npos) return std::string(url);
  return absl::StrCat(url.substr(0, start), url.substr(start + at + 1));
}

CurlPrometheusClient::CurlPrometheusClient(absl::Duration timeout) : timeout_(timeout) {
  InitCurlOnce();
}

absl::StatusOr<double> CurlPrometheusClient::Query(const std::string& url,
                                                   const std::string& query) {
  const std::string shown = RedactUrl(url);
  if (cancelled_) return absl::CancelledError("the controller is stopping");
  CurlHandle curl = NewHttpHandle(timeout_, "fleet-controller/" FLEET_VERSION);
  if (curl == nullptr) return absl::UnavailableError("cannot create a curl handle");
  CURL* h = curl.get();
  char* escaped = curl_easy_escape(h, query.data(), static_cast<int>(query.size()));
  if (escaped == nullptr) return absl::UnavailableError("cannot URL-encode the query");
  const std::string target =
      absl::StrCat(absl::StripSuffix(url, "/"), "/api/v1/query?query=", escaped);
  curl_free(escaped);

  CurlHeaders headers(curl_slist_append(nullptr, "Accept: application/json"));
  Answer answer;
  curl_easy_setopt(h, CURLOPT_URL, target.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, KeepAnswer);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &answer);
  // Lets Cancel() cut a hanging query short (curl calls it at least once a
  // second).
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, AbortWhenCancelled);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, &cancelled_);

  const CURLcode code = curl_easy_perform(h);
  if (cancelled_) return absl::CancelledError("the controller is stopping");
  if (answer.too_big) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the answer is larger than ", kMaxAnswer >> 20, " MiB; aggregate the query to one series"));
  }
  if (code != CURLE_OK) {
    return absl::UnavailableError(
        absl::StrCat("Prometheus at ", shown, " did not answer: ", curl_easy_strerror(code)));
  }
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  absl::StatusOr<double> value = ParsePrometheusAnswer(answer.body);
  // Prometheus answers a bad query with 400 and its error JSON: that error
  // says more than the status line.
  if (absl::IsUnavailable(value.status())) {
    return absl::UnavailableError(absl::StrCat("Prometheus at ", shown, " answered HTTP ", status,
                                               ": ", value.status().message()));
  }
  return value;
}

Analyzer::Analyzer(RolloutEngine* engine, std::unique_ptr<PrometheusClient> client,
                   AnalyzerOptions options)
    : engine_(engine), client_(std::move(client)), options_(options) {}

Analyzer::~Analyzer() { Stop(); }

void Analyzer::Start() {
  thread_ = std::thread([this] {
    while (!stop_.WaitForNotificationWithTimeout(options_.poll)) RunOnce();
  });
}

void Analyzer::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  client_->Cancel();
  if (thread_.joinable()) thread_.join();
}

int Analyzer::RunOnce() {
  int evaluated = 0;
  for (const AnalysisEvaluation& due : engine_->AnalysisDue()) {
    if (stop_.HasBeenNotified()) break;
    absl::StatusOr<double> value =
        due.prometheus_url.empty()
            ? absl::FailedPreconditionError(
                  "no Prometheus to ask: the app spec has no prometheus_url and the controller "
                  "no --prometheus-url")
            : client_->Query(due.prometheus_url, due.check.query());
    // A query cut short by shutdown says nothing about the release.
    if (stop_.HasBeenNotified()) break;
    engine_->OnAnalysisResult(due, value);
    ++evaluated;
  }
  return evaluated;
}

}  // namespace fleet::controller
