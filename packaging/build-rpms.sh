#!/usr/bin/env bash
# Builds the rpm-bpf RPMs from this work tree: packaging/build-rpms.sh [OUTDIR]
# The tarball holds the files git tracks (committed or not), as they are on disk.
# --nodeps: on Debian the BuildRequires are dpkg packages the rpm database does not know.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-packaging/out}")
version=$(sed -n 's/^Version: *//p' packaging/rpm-bpf.spec)
top="$out/rpmbuild"
rm -rf "$top"
mkdir -p "$top/SOURCES"
git ls-files -z --cached --others --exclude-standard \
  | tar --null -T - --transform "s|^|rpm-bpf-$version/|" -czf "$top/SOURCES/rpm-bpf-$version.tar.gz"
# Man pages and completion are generated with this checkout's .venv (./setup.sh), which has
# a shtab new enough to complete sub-commands (Debian 12's python3-shtab 1.5 is not).
docs_python=()
[ -x .venv/bin/python ] && docs_python=(--define "__python3_docs $(pwd)/.venv/bin/python")
rpmbuild -ba --nodeps --define "_topdir $top" "${docs_python[@]}" packaging/rpm-bpf.spec
find "$top/RPMS" "$top/SRPMS" -name '*.rpm' -print
