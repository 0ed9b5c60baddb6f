#!/usr/bin/env bash
# Packs a release of the hello example:
#
#   make-artifact.sh VERSION OUT.tar.gz --bin PATH_TO_BUILT_HELLO
#                    [--healthz-status N] [--greeting TEXT] [--error-share X]
#
# The tarball holds bin/hello (copy of PATH), bin/restart, VERSION and
# hello.conf. --error-share X (0..1) makes that share of GET / answer 500
# while /healthz stays healthy; without it hello.conf has no such line.
# It is reproducible: sorted entries, fixed mtime, owner and modes, no gzip
# timestamp, so the same inputs give the same sha256 (the controller stores
# artifacts by sha256).
set -euo pipefail

usage() {
  echo "usage: $0 VERSION OUT.tar.gz --bin PATH_TO_BUILT_HELLO [--healthz-status N] [--greeting TEXT] [--error-share X]" >&2
  exit 2
}

die() {
  echo "make-artifact: $*" >&2
  exit 1
}

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

positional=()
bin=""
healthz_status=200
greeting="hello"
error_share=""
while (($# > 0)); do
  case "$1" in
    --bin | --healthz-status | --greeting | --error-share)
      (($# >= 2)) || usage
      case "$1" in
        --bin) bin="$2" ;;
        --healthz-status) healthz_status="$2" ;;
        --greeting) greeting="$2" ;;
        --error-share) error_share="$2" ;;
      esac
      shift 2
      ;;
    -h | --help) usage ;;
    -*) echo "make-artifact: unknown option $1" >&2; usage ;;
    *) positional+=("$1"); shift ;;
  esac
done
((${#positional[@]} == 2)) || usage
version="${positional[0]}"
out="${positional[1]}"

[[ -n "$bin" ]] || die "--bin PATH_TO_BUILT_HELLO is required"
[[ -f "$bin" && -x "$bin" ]] || die "--bin $bin is not an executable file"
# The version becomes part of paths and ids downstream; keep it plain.
[[ "$version" =~ ^[A-Za-z0-9][A-Za-z0-9._+-]*$ ]] ||
  die "version '$version' must match [A-Za-z0-9][A-Za-z0-9._+-]*"
[[ "$healthz_status" =~ ^[1-5][0-9][0-9]$ ]] ||
  die "--healthz-status must be an HTTP status 100..599, got '$healthz_status'"
[[ "$greeting" != *$'\n'* ]] || die "--greeting must be a single line"
[[ -z "$error_share" || "$error_share" =~ ^(0(\.[0-9]+)?|1(\.0+)?|\.[0-9]+)$ ]] ||
  die "--error-share must be a number in 0..1, got '$error_share'"
[[ -f "$script_dir/restart" ]] || die "$script_dir/restart is missing"

staging="$(mktemp -d)"
tmp_out=""
cleanup() {
  rm -rf "$staging"
  if [[ -n "$tmp_out" ]]; then rm -f "$tmp_out"; fi
}
trap cleanup EXIT

mkdir "$staging/bin"
cp "$bin" "$staging/bin/hello"
cp "$script_dir/restart" "$staging/bin/restart"
printf '%s\n' "$version" >"$staging/VERSION"
printf 'healthz_status=%s\ngreeting=%s\n' "$healthz_status" "$greeting" \
  >"$staging/hello.conf"
if [[ -n "$error_share" ]]; then
  printf 'error_share=%s\n' "$error_share" >>"$staging/hello.conf"
fi
chmod 0755 "$staging/bin" "$staging/bin/hello" "$staging/bin/restart"
chmod 0644 "$staging/VERSION" "$staging/hello.conf"

# gnu format rather than pax: pax headers carry atime and the tar pid.
tmp_out="$(mktemp "$out.XXXXXX")"
LC_ALL=C tar --create --file=- --directory="$staging" \
  --format=gnu --sort=name --mtime=@0 \
  --owner=0 --group=0 --numeric-owner \
  VERSION bin hello.conf |
  gzip -n -9 >"$tmp_out"
chmod 0644 "$tmp_out"
mv -f "$tmp_out" "$out"
tmp_out=""

sha256="$(sha256sum "$out" | cut -d' ' -f1)"
echo "make-artifact: wrote $out (hello $version, sha256 $sha256)"
