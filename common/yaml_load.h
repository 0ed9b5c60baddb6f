// Loading YAML text with yaml-cpp, bounded.
//
// yaml-cpp 0.7's YAML::LoadAll never returns on a token that no document
// consumes (a ',' outside brackets, as in "x\n,"): each pass makes another
// empty document without moving on, until memory runs out. LoadYaml parses
// document by document and stops there with a ParserException instead.
#ifndef FLEET_COMMON_YAML_LOAD_H_
#define FLEET_COMMON_YAML_LOAD_H_

#include <yaml-cpp/yaml.h>

#include <string>

namespace fleet {

struct YamlDocuments {
  YAML::Node first;  // a null node when there is no document
  int count = 0;     // documents in the text
};

// The first document of `text` and how many there are. Throws
// YAML::ParserException (line in its mark) for invalid YAML, like
// YAML::Load; "unexpected ','" for a token that begins no document.
YamlDocuments LoadYaml(const std::string& text);

}  // namespace fleet

#endif  // FLEET_COMMON_YAML_LOAD_H_
