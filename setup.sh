#!/usr/bin/env bash
# One-command set-up for a fresh Debian 12 machine (run as root, or with sudo available):
#   1. system packages through apt (rpm, rpmbuild, python3-rpm, clang/llvm, bpftool, libbpf,
#      createrepo-c, dnf, rpmlint, ...) -- only those that are missing;
#   2. a .venv at the repository root, made from Debian's python3 with the system site
#      packages visible: rpm, dnf/libdnf and createrepo_c bindings exist only as Debian
#      packages (and importing rpm directly avoids the PyPI shim's start-up cost);
#      rpm-bpf installed editable, with the test tools (pytest, rpmlint from PyPI);
#   3. the rpm-bpf macros, file attribute generator and strip wrapper made active for this
#      machine's rpm, where the rpm-bpf-macros package would put them, with %__rpm_bpf
#      pointing at this checkout's .venv (/etc/rpm/macros.rpm-bpf-local);
#   4. man pages (/usr/local/share/man) and bash/zsh completion, generated from the sources;
#   5. unless --no-demo: `rpm-bpf demo`, which builds sample packages and scans them.
# Idempotent: running it again installs nothing new.
set -euo pipefail
cd "$(dirname "$0")"

APT_PACKAGES=(
  rpm python3-rpm python3-venv python3-pip
  clang llvm gcc libc6-dev bpftool libbpf-dev linux-libc-dev
  createrepo-c python3-createrepo-c dnf python3-dnf python3-libdnf python3-hawkey
  rpmlint python3-pyelftools python3-jinja2
  file cpio zstd xz-utils bzip2 debootstrap git util-linux strace
  man-db groff-base bash-completion zsh chromium rsync
  gpg openssl python3-cryptography fsverity ima-evm-utils
)

run_demo=1
for arg in "$@"; do
  case "$arg" in
    --no-demo) run_demo=0 ;;
    *) echo "usage: $0 [--no-demo]" >&2; exit 2 ;;
  esac
done

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ] || ! grep -q "include-system-site-packages = true" .venv/pyvenv.cfg; then
  echo "setup: creating .venv with /usr/bin/python3 (system site packages visible)"
  rm -rf .venv
  /usr/bin/python3 -m venv --system-site-packages .venv
fi
stamp=.venv/.rpm-bpf-installed-compat
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ setup.py -nt "$stamp" ]; then
  echo "setup: installing rpm-bpf (editable) into .venv"
  # compat mode: a plain path entry instead of an import hook, which would cost
  # every rpm-bpf command ~20 ms of start-up.
  .venv/bin/pip install -q --disable-pip-version-check -e '.[test,docs,sbom]' --config-settings editable_mode=compat
  touch "$stamp"
fi
# Byte-compiled like an installed package (PYTHONDONTWRITEBYTECODE may be set).
.venv/bin/python -m compileall -q rpm_bpf rpmlint_checks dnf_plugin >/dev/null

rpmconfigdir=$(rpm --eval '%{_rpmconfigdir}')
install_file() {  # install_file MODE SRC DEST: copy only when different
  if ! cmp -s "$2" "$3"; then
    $SUDO install -D -m "$1" "$2" "$3"
  fi
}
install_file 0644 macros/macros.bpf "$rpmconfigdir/macros.d/macros.bpf"
install_file 0644 macros/bpf.attr "$rpmconfigdir/fileattrs/bpf.attr"
install_file 0644 macros/bpfapp.attr "$rpmconfigdir/fileattrs/bpfapp.attr"
install_file 0755 macros/strip-bpf "$rpmconfigdir/rpm-bpf/strip-bpf"
install_file 0755 macros/pkgcheck-chain "$rpmconfigdir/rpm-bpf/pkgcheck-chain"
local_macros=$(mktemp)
cat > "$local_macros" <<MACROS
# Written by $(pwd)/setup.sh: the rpm-bpf command of this checkout's .venv.
%__rpm_bpf $(pwd)/.venv/bin/rpm-bpf
MACROS
install_file 0644 "$local_macros" /etc/rpm/macros.rpm-bpf-local
rm -f "$local_macros"

# The rpmlint check: into every rpmlint's own checks package (rpmlint loads checks only
# from there), plus the drop-in that enables it; rpm_bpf importable by Debian's python3
# (Debian's rpmlint and dnf run there), as the python3-rpm-bpf package would make it.
syspy_site=$(/usr/bin/python3 -c 'import sysconfig; print(sysconfig.get_path("purelib", "deb_system"))' 2>/dev/null \
             || echo /usr/lib/python3/dist-packages)
if [ "$(readlink -f "$syspy_site/rpm_bpf" 2>/dev/null)" != "$(pwd)/rpm_bpf" ]; then
  $SUDO rm -rf "$syspy_site/rpm_bpf"
  $SUDO ln -s "$(pwd)/rpm_bpf" "$syspy_site/rpm_bpf"
fi
for checks_dir in .venv/lib/python3*/site-packages/rpmlint/checks "$syspy_site/rpmlint/checks"; do
  [ -d "$checks_dir" ] && install_file 0644 rpmlint_checks/BPFCheck.py "$checks_dir/BPFCheck.py"
done
install_file 0644 rpmlint_checks/bpf.toml /etc/xdg/rpmlint/bpf.toml

# The DNF 4 plugin, where dnf looks for plugins, with its configuration.
dnf_plugin_dir=$(/usr/bin/python3 -c 'import dnf.const; print(dnf.const.PLUGINPATH)' 2>/dev/null || true)
if [ -n "$dnf_plugin_dir" ]; then
  install_file 0644 dnf_plugin/bpf.py "$dnf_plugin_dir/bpf.py"
  [ -f /etc/dnf/plugins/bpf.conf ] || install_file 0644 dnf_plugin/bpf.conf /etc/dnf/plugins/bpf.conf
fi

# Man pages and shell completion, generated from the argparse definitions, the rule
# registry, the default policy and the macro file (where the spec puts them, under
# /usr/local for man pages on this machine).
generated=$(mktemp -d)
.venv/bin/python -m tools.manpages "$generated/man"
for page in "$generated"/man/*.[0-9]; do
  install_file 0644 "$page" "/usr/local/share/man/man${page##*.}/$(basename "$page")"
done
.venv/bin/python -m tools.completion bash > "$generated/rpm-bpf.bash"
.venv/bin/python -m tools.completion zsh > "$generated/_rpm-bpf"
install_file 0644 "$generated/rpm-bpf.bash" /usr/share/bash-completion/completions/rpm-bpf
install_file 0644 "$generated/_rpm-bpf" /usr/share/zsh/vendor-completions/_rpm-bpf
rm -rf "$generated"

if [ "$run_demo" -eq 1 ]; then
  echo "setup: done. Running the demo: .venv/bin/rpm-bpf demo"
  exec .venv/bin/rpm-bpf demo
fi
