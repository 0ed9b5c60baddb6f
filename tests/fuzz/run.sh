#!/usr/bin/env bash
# Runs each libFuzzer target for SECONDS, starting from seeds made here:
# real archives (tar) for the unpacker, the example specs for the parser.
# Exits non-zero when a target finds a crash or a broken promise; the input
# is kept in BUILD_DIR/fuzz-findings/.
set -euo pipefail
build_dir=${1:?usage: run.sh BUILD_DIR SECONDS}
seconds=${2:-60}
root=$(cd "$(dirname "$0")/../.." && pwd)
work="$build_dir/fuzz-work"
findings="$build_dir/fuzz-findings"
rm -rf "$work"
mkdir -p "$work/corpus/unpack_fuzz" "$work/corpus/app_spec_fuzz" "$findings"

# Unpacker seeds: a plain release, one with links, one in another format.
src="$work/src"
mkdir -p "$src/bin" "$src/etc/deep"
printf '#!/bin/sh\necho hi\n' > "$src/bin/start"
chmod 0755 "$src/bin/start"
printf 'key=value\n' > "$src/etc/deep/app.conf"
ln -s ../etc/deep/app.conf "$src/bin/conf"
tar -C "$src" -czf "$work/corpus/unpack_fuzz/release.tar.gz" .
tar -C "$src" -cf "$work/corpus/unpack_fuzz/release.tar" bin
tar -C "$src" --format=gnu -cf "$work/corpus/unpack_fuzz/gnu.tar" etc

# Parser seeds: every spec in the tree.
n=0
while IFS= read -r spec; do
  cp "$spec" "$work/corpus/app_spec_fuzz/seed-$n.yaml"
  n=$((n + 1))
done < <(find "$root/deploy" -name '*.yaml')

status=0
for target in unpack_fuzz app_spec_fuzz; do
  echo "fuzz: $target for ${seconds}s"
  if ! "$build_dir/tests/fuzz/$target" "$work/corpus/$target" \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$findings/$target-" 2> "$work/$target.log"; then
    echo "fuzz: $target FAILED; input in $findings, log:" >&2
    tail -n 40 "$work/$target.log" >&2
    status=1
  else
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)' \
      "$work/$target.log" | sed "s/^/fuzz: $target /" || true
  fi
done
exit $status
