#!/usr/bin/env bash
# hack/step.sh NAME VERSION LOG -- COMMAND...
#
# Builds one component of the local cluster (make cluster-bins, stack-bins,
# images) and prints one line when it starts and one when it ends, with its
# name, version, time taken and where its full log is, instead of Go's
# hundreds of "go: downloading" lines. On failure it prints the log's last
# lines and exits with the command's code.
set -uo pipefail
name=$1 version=$2 log=$3
shift 3
[ "${1:-}" = "--" ] && shift
mkdir -p "$(dirname "$log")"
elapsed() { local s=$(( $(date +%s) - start )); if (( s >= 60 )); then echo "$((s / 60))m$((s % 60))s"; else echo "${s}s"; fi; }
start=$(date +%s)
printf '  building %-24s %-9s log: %s\n' "$name" "$version" "$log"
if "$@" >"$log" 2>&1; then
  printf '  done     %-24s %-9s in %s\n' "$name" "$version" "$(elapsed)"
else
  rc=$?
  printf '  FAILED   %-24s %-9s after %s (exit %d); the end of %s:\n' "$name" "$version" "$(elapsed)" "$rc" "$log"
  tail -n 25 "$log" | sed 's/^/    /'
  exit "$rc"
fi
