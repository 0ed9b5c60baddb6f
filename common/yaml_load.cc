#include "common/yaml_load.h"

#include <yaml-cpp/eventhandler.h>

#include <cctype>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace fleet {
namespace {

// Counts documents and notes where the last two began; ignores content.
class DocumentStarts final : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override {
    previous_ = last_;
    last_ = mark;
    ++count_;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

  int count() const { return count_; }
  const YAML::Mark& last() const { return last_; }
  // The last document began where the one before it did: the parser did not
  // move past the token there.
  bool Stuck() const { return count_ > 1 && previous_.pos == last_.pos; }

 private:
  int count_ = 0;
  YAML::Mark previous_ = YAML::Mark::null_mark();
  YAML::Mark last_ = YAML::Mark::null_mark();
};

}  // namespace

YamlDocuments LoadYaml(const std::string& text) {
  std::istringstream input(text);
  YAML::Parser parser(input);
  DocumentStarts starts;
  while (parser.HandleNextDocument(starts)) {
    if (!starts.Stuck()) continue;
    const size_t pos = static_cast<size_t>(starts.last().pos);
    const char c = pos < text.size() ? text[pos] : '\0';
    throw YAML::ParserException(starts.last(),
                                std::ispunct(static_cast<unsigned char>(c))
                                    ? absl::StrCat("unexpected '", std::string(1, c), "'")
                                    : std::string("unexpected token"));
  }
  YamlDocuments documents;
  documents.count = starts.count();
  if (documents.count > 0) documents.first = YAML::Load(text);
  return documents;
}

}  // namespace fleet
