#!/bin/bash
# The BPF object gate for one build: tmt test (plans/gate.fmf) and CI job script alike.
#
#   BPF_GATE_NEW        the build's RPMs: files or directories (default: ./rpms, or the Koji build below)
#   BPF_GATE_KOJI_BUILD a Koji build (NVR or id) to download first: koji download-build --arch=ARCH --arch=noarch
#   BPF_GATE_REPOS      repositories to compare with, space separated (paths or http(s) URLs with repodata/)
#   BPF_GATE_BASELINE   the previous build's RPMs (optional): its findings are reported as existing
#   BPF_GATE_POLICY     a policy file with waivers (optional)
#   RPM_BPF             the rpm-bpf command (default: rpm-bpf)
# Exit status: rpm-bpf's (0 pass, 1 the gate fails, 2 an input could not be read).
# Reports: rpm-bpf.junit.xml, rpm-bpf.sarif, rpm-bpf.json in $TMT_TEST_DATA (or $BPF_GATE_OUT, or .).
set -u
rpm_bpf=${RPM_BPF:-rpm-bpf}
out=${BPF_GATE_OUT:-${TMT_TEST_DATA:-.}}
mkdir -p "$out"

new=()
if [ -n "${BPF_GATE_KOJI_BUILD:-}" ]; then
  mkdir -p "$out/build" || exit 2
  (cd "$out/build" && koji download-build --arch="$(uname -m)" --arch=noarch "$BPF_GATE_KOJI_BUILD") || {
    echo "bpf-gate: koji download-build $BPF_GATE_KOJI_BUILD failed" >&2; exit 2; }
  new+=("$out/build")
fi
read -r -a given <<< "${BPF_GATE_NEW:-}"
new+=("${given[@]}")
[ ${#new[@]} -gt 0 ] || new=(./rpms)

args=(scan --quiet)
read -r -a repos <<< "${BPF_GATE_REPOS:-}"
for repo in "${repos[@]}"; do args+=(--against "$repo"); done
read -r -a baseline <<< "${BPF_GATE_BASELINE:-}"
for old in "${baseline[@]}"; do args+=(--baseline "$old"); done
[ -n "${BPF_GATE_POLICY:-}" ] && args+=(--policy "$BPF_GATE_POLICY")

"$rpm_bpf" "${args[@]}" --format junit -o "$out/rpm-bpf.junit.xml" "${new[@]}" 2>/dev/null
"$rpm_bpf" "${args[@]}" --format sarif -o "$out/rpm-bpf.sarif" "${new[@]}" 2>/dev/null
"$rpm_bpf" "${args[@]}" --format json -o "$out/rpm-bpf.json" "${new[@]}" 2>/dev/null
# The text report, with its verdict, is the log a person reads; its exit status is the test's.
"$rpm_bpf" "${args[@]}" "${new[@]}"
