// "did you mean ...?" for mistyped commands, flags and names.
#ifndef FLEET_CLI_SUGGEST_H_
#define FLEET_CLI_SUGGEST_H_

#include <string>
#include <vector>

namespace fleet::cli {

// The candidate closest to `word` by edit distance (insertions, deletions,
// substitutions and swaps of neighbours each count 1), when it is close
// enough to be a typo: at most 1 edit for words up to 4 characters, 2 up to
// 8, else 3; a candidate that starts with `word` (3 characters or more) also
// counts. "" when none is. Ties go to the earlier candidate.
std::string ClosestMatch(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace fleet::cli

#endif  // FLEET_CLI_SUGGEST_H_
