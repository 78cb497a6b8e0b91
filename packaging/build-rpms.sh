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
rpmbuild -ba --nodeps --define "_topdir $top" packaging/rpm-bpf.spec
find "$top/RPMS" "$top/SRPMS" -name '*.rpm' -print
