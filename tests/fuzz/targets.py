"""Property-based fuzz targets (hypothesis) for the parsers rpm-bpf points at untrusted input.

Four targets, each run in a process of its own (``tests/fuzz/test_fuzz.py``
starts them), so that a crash inside librpm shows up as a test failure
naming the signal instead of taking pytest down with it:

``rpm``
    ``rpmfile.open_rpm`` (triaged and ``deep``) + ``checks.check_package``
    on an rpmbuild-built package damaged byte-wise (anywhere; in the main
    header or its index entries with the header digests recomputed; in the
    payload with PAYLOADDIGEST recomputed), re-tagged with rpm's own API
    (digests made to match, as a crafted package in a repository would be)
    or truncated.
``elf``
    ``elf.inspect`` and ``elf.find_embedded`` on a clang-built object
    overwritten, cut, spliced, re-fielded, and embedded in other bytes.
``policy``
    ``policy.Policy.load`` on generated TOML documents, raw text, valid
    policies with one wrongly typed value, and very deep nesting; then
    ``Policy.apply`` on real findings.
``archive``
    ``archive.members`` and ``archive.bpf_members`` on ar archives written by
    binutils' ar and llvm-ar (BSD format), overwritten and cut.
``lightskel``
    ``lightskel.find`` on a light-skeleton tool built by bpftool and gcc,
    overwritten (in its loader and data blob above all) and cut.
``lskelsig``
    ``lskelsig.find`` on a real loader, its SHA-256 and a CMS signature of
    bpftool's shape made by openssl, overwritten (there above all) and cut.
``core``
    ``progtag.predict`` with CO-RE relocations resolved against a target
    BTF, on a clang-built object using every relocation kind, overwritten
    (in its ``.BTF`` and ``.BTF.ext`` above all) and cut, against the
    kernel-like target BTF (clang-built) intact or overwritten.
``rootfs``
    ``rootfs.RootFS`` on generated trees of directories, files, FIFOs and
    symbolic links (some pointing out of the root) next to a sentinel file.

Fixtures are real artefacts built at start-up (clang, rpmbuild) in a
temporary folder, named on stderr, that is removed at exit. It is left
behind when a signal kills the process: the last case is still in it
(``case.rpm`` for the rpm target).

Run one target at length from the checkout (random cases; repeat the seed
to reproduce a run; 20000 cases take one to six minutes, rootfs the slowest)::

    cd rpm-bpf   # the checkout
    PYTHONPATH=. .venv/bin/python -m tests.fuzz.targets rpm --examples 20000 --seed $RANDOM
    PYTHONPATH=. .venv/bin/python -m tests.fuzz.targets elf --examples 50000 --seed $RANDOM
    PYTHONPATH=. .venv/bin/python -m tests.fuzz.targets policy --examples 50000 --seed $RANDOM
    PYTHONPATH=. .venv/bin/python -m tests.fuzz.targets rootfs --examples 20000 --seed $RANDOM

Without ``--seed`` the run is derandomized: the same cases every time, as
CI wants. The last line of a clean run is ``TARGET: N cases, 0 failures``
(exit status 0). A property violation makes hypothesis shrink the case and
print the falsifying example (exit status 1); a crash kills the process
with a signal, and faulthandler prints the Python stack on stderr.
stderr also gets a tally of how the cases ended (which check refused
them), to see whether the mutations still reach deep code.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import errno
import faulthandler
import hashlib
import os
import re
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path

import hypothesis
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

# A macro that leaves a trace if anything expands header data: must never exist.
MARKER = Path("/tmp/rpm-bpf-fuzz-marker")


class Cases:
    """How many cases reached their property check, and how they ended (both printed at the end).

    The outcomes show whether the mutations reach deep code or mostly stop
    at the first check (a digest, a magic number).
    """

    def __init__(self) -> None:
        self.count = 0
        self.outcomes: Counter[str] = Counter()

    def __call__(self) -> None:
        self.count += 1

    def outcome(self, what: str) -> None:
        self.outcomes[what] += 1

    def summary(self) -> str:
        return ", ".join(f"{n} {what}" for what, n in self.outcomes.most_common(12))


def kind_of(message: str) -> str:
    """A message without its particulars (numbers, quoted parts): an outcome to count."""
    message = re.sub(r"\(.*|'.*", "", message)
    return re.sub(r"\d+", "N", message).strip()[:60]


def fuzz_settings(examples: int, seed: int | None) -> hypothesis.settings:
    """Derandomized without a seed (CI); random but repeatable with one."""
    return hypothesis.settings(
        max_examples=examples,
        derandomize=seed is None,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )


def run_hypothesis(test: Callable[..., None], settings: hypothesis.settings, seed: int | None) -> None:
    """Run a ``@given`` test under ``settings`` (and ``seed``); a violation propagates."""
    test = settings(test)
    if seed is not None:
        test = hypothesis.seed(seed)(test)
    test()


# ---------------------------------------------------------------------------
# Shared strategies
# ---------------------------------------------------------------------------

INTERESTING_INTS = (
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    64,
    0x7F,
    0x80,
    0xFF,
    0x100,
    0xFFFF,
    0x10000,
    0x7FFFFFFF,
    0x80000000,
    0xFFFFFFFF,
    1 << 30,
    (1 << 30) + 1,
    (1 << 32) + 1,
    (1 << 63) - 1,
    1 << 63,
    (1 << 64) - 1,
    -1,
    -2,
    -(1 << 31),
    -(1 << 63),
)


def ints() -> st.SearchStrategy[int]:
    """Integers of any plausible width, negatives and boundaries included."""
    return st.one_of(
        st.sampled_from(INTERESTING_INTS),
        st.integers(-(1 << 31), 1 << 32),
        st.integers(-(1 << 63), (1 << 64) - 1),
        st.integers(0, 64),
    )


def patch_bytes() -> st.SearchStrategy[bytes]:
    """What a byte overwrite writes: random bytes or a big-endian boundary value."""
    boundaries = [struct.pack(">I", v & 0xFFFFFFFF) for v in INTERESTING_INTS]
    return st.one_of(st.binary(min_size=1, max_size=8), st.sampled_from(boundaries))


def overwrite(data: bytes, patches: tuple[tuple[int, bytes], ...], start: int = 0, end: int | None = None) -> bytes:
    """``data`` with each (offset, bytes) written inside ``data[start:end]`` (offsets wrap around)."""
    end = len(data) if end is None else end
    if end <= start:
        return data
    buf = bytearray(data)
    for offset, chunk in patches:
        at = start + offset % (end - start)
        buf[at : at + len(chunk)] = chunk[: len(buf) - at]  # never grows the file
    return bytes(buf)


# ---------------------------------------------------------------------------
# rpm: the RPM reader
# ---------------------------------------------------------------------------

# Tags by the kind of value rpm's header API takes for them: those rpm-bpf reads, and the
# per-file ones librpm's rpmfiles (the payload reader) reads without rpm-bpf checking them.
STRING_ARRAY_TAGS = (
    "BASENAMES",
    "DIRNAMES",
    "FILEUSERNAME",
    "FILEGROUPNAME",
    "FILEDIGESTS",
    "FILELINKTOS",
    "CLASSDICT",
    "REQUIRENAME",
    "OLDFILENAMES",
    "PAYLOADDIGEST",
    "FILELANGS",
)
INT_ARRAY_TAGS = (
    "DIRINDEXES",
    "FILEMODES",
    "FILESIZES",
    "LONGFILESIZES",
    "FILEFLAGS",
    "FILECLASS",
    "FILEINODES",
    "FILEDEVICES",
    "FILERDEVS",
    "FILEMTIMES",
    "FILEVERIFYFLAGS",
    "FILECOLORS",
    "FILEDEPENDSX",
    "FILEDEPENDSN",
    "DEPENDSDICT",
)
STRING_TAGS = ("ARCH", "NAME", "VERSION", "RELEASE", "SOURCERPM", "PAYLOADCOMPRESSOR", "PAYLOADFORMAT")
INT_TAGS = ("EPOCH", "SOURCEPACKAGE", "FILEDIGESTALGO", "PAYLOADDIGESTALGO")
TAG_NUMBERS = {"PAYLOADDIGEST": 5092, "PAYLOADDIGESTALGO": 5093}  # not named by rpm 4.18's bindings


def tag_number(name: str) -> int:
    import rpm

    return TAG_NUMBERS.get(name) or getattr(rpm, f"RPMTAG_{name}")


@dataclass(frozen=True)
class RawOverwrite:
    """(a) Bytes overwritten in one part of the file; no digest fixed."""

    region: str  # lead, signature, header, payload or file
    patches: tuple[tuple[int, bytes], ...]


@dataclass(frozen=True)
class HeaderOverwrite:
    """(a) Main header bytes overwritten, header digests recomputed: librpm parses them."""

    patches: tuple[tuple[int, bytes], ...]


@dataclass(frozen=True)
class PayloadOverwrite:
    """(a) Payload bytes overwritten, PAYLOADDIGEST recomputed: the decompressor and cpio reader see them."""

    patches: tuple[tuple[int, bytes], ...]


@dataclass(frozen=True)
class IndexEdits:
    """(a) Fields of index entries (0 tag, 1 type, 2 offset, 3 count) set: type confusion, duplicate tags,
    data pointers moved. In the main header digests are recomputed; the signature header has none."""

    header: str  # signature or main
    edits: tuple[tuple[int, int, int], ...]  # (entry, field, value)


@dataclass(frozen=True)
class TagEdits:
    """(b) Tags set or deleted (``None``) with rpm's own API; digests made to match."""

    edits: tuple[tuple[str, object], ...]


@dataclass(frozen=True)
class Truncation:
    """(c) The file cut at ``length`` bytes."""

    length: int


RpmMutation = RawOverwrite | HeaderOverwrite | PayloadOverwrite | IndexEdits | TagEdits | Truncation


@dataclass
class RpmFixture:
    """The pristine package and where its parts start."""

    path: Path
    data: bytes
    regions: dict[str, tuple[int, int]]
    header: object  # rpm.hdr of the main header
    index: dict[str, list[tuple[int, int, int, int]]]  # header -> its entries (tag, type, offset, count)
    work: Path


def build_rpm_fixture(work: Path) -> RpmFixture:
    """A real package: a BPF object in the BPF dir, an ELF executable, a loader-library dependency."""
    from rpm_bpf.samples import build as samples
    from rpm_bpf.samples.build import PkgFile, PkgSpec
    from rpm_bpf.sources import bpfdirs
    from tests.support.craft import LEAD, Parts

    obj = samples.compile_bpf(samples.XDP_COUNTER_C, work / "objects" / "counter.bpf.o")
    bpfdir = bpfdirs.for_arch(bpfdirs.host_arch()).arch_dir
    spec = PkgSpec(
        "fuzz-target",
        requires=["libbpf.so.1"],
        files=[
            PkgFile(f"{bpfdir}/fuzz-target", directory=True, mode=0o755),
            PkgFile(f"{bpfdir}/fuzz-target/counter.bpf.o", obj),
            PkgFile("/usr/bin/tool", Path("/usr/bin/true"), mode=0o755),
        ],
    )
    path = samples.build_rpm(spec, work / "rpmbuild")
    data = path.read_bytes()
    parts = Parts(data)
    header_end = parts.header_offset + len(parts.header_bytes)
    regions = {
        "lead": (0, LEAD),
        "signature": (LEAD, parts.header_offset),
        "header": (parts.header_offset, header_end),
        "payload": (header_end, len(data)),
        "file": (0, len(data)),
    }
    index = {"signature": header_index(data[LEAD:]), "main": header_index(parts.header_bytes)}
    return RpmFixture(path, data, regions, parts.header(), index, work)


def header_index(header: bytes) -> list[tuple[int, int, int, int]]:
    """The index entries of a header structure (``header`` starts at its magic)."""
    il = struct.unpack_from(">I", header, 8)[0]
    return list(struct.iter_unpack(">IIII", header[16 : 16 + 16 * il]))


def index_edits(fixture: RpmFixture, which: str) -> st.SearchStrategy[IndexEdits]:
    """Entries changed field by field, with values that mean something for that field."""
    entries = fixture.index[which]
    tags = sorted({e[0] for header in fixture.index.values() for e in header})  # both headers' tags
    values = {
        0: st.one_of(st.sampled_from(tags), ints()),
        1: st.one_of(st.integers(0, 10), ints()),
        2: st.one_of(st.sampled_from(sorted({e[2] for e in entries})), ints()),
        3: st.one_of(st.sampled_from(sorted({e[3] for e in entries})), ints()),
    }
    edit = st.integers(0, 3).flatmap(
        lambda field: st.tuples(st.integers(0, len(entries) - 1), st.just(field), values[field])
    )
    return st.builds(IndexEdits, st.just(which), st.lists(edit, min_size=1, max_size=3).map(tuple))


def header_offsets() -> st.SearchStrategy[int]:
    """Offsets inside a header structure: counts, index entry fields (tag, type, offset, count), anywhere."""
    index_field = st.builds(lambda entry, field: 16 + 16 * entry + 4 * field, st.integers(0, 70), st.integers(0, 3))
    return st.one_of(st.integers(8, 15), index_field, st.integers(0, 1 << 16))


def patches(offsets: st.SearchStrategy[int]) -> st.SearchStrategy[tuple[tuple[int, bytes], ...]]:
    return st.lists(st.tuples(offsets, patch_bytes()), min_size=1, max_size=6).map(tuple)


def macro_strings(work: Path) -> list[str]:
    """Text that does something if anyone hands header data to rpm's macro expander."""
    local = work / "marker"
    return [
        f"%(touch {MARKER})",
        f"%(touch {local})",
        f"%{{lua: io.open('{MARKER}', 'w')}}",
        f"%{{expand:%%(touch {MARKER})}}",
        "%{_libdir}",
        "%{?_bpfdir}",
        "%%",
        "%",
        "%{",
        "%(",
        "%{lua:",
    ]


def header_text(work: Path, plausible: tuple[str, ...] = ()) -> st.SearchStrategy[object]:
    """Strings for header tags: control characters, macros, non-UTF-8 bytes, plausible values."""
    chars = st.characters(exclude_categories=("Cs",), exclude_characters="\0")
    text = st.one_of(st.text(chars, max_size=40), st.text("\x01\x1b\n\r\t\x7f%(){}/.-_aZ09 ", max_size=20))
    macros = st.sampled_from(macro_strings(work))
    return st.one_of(
        text,
        macros,
        st.builds(lambda a, m, b: a + m + b, text, macros, text),
        st.binary(max_size=24).map(lambda b: b.replace(b"\0", b"\xff")),  # read back with surrogateescape
        *([st.sampled_from(plausible)] if plausible else []),
    )


PLAUSIBLE = {
    "BASENAMES": ("counter.bpf.o", "x.o", "tool", "", ".", "..", "a/b", "../../etc/passwd"),
    "DIRNAMES": (
        "/usr/lib64/bpf/",
        "/usr/lib/bpf/",
        "/usr/lib64/bpf/fuzz-target/",
        "/",
        "",
        "usr/",
        "/opt/",
        "/usr/lib64/bpf",
        "/usr/lib64/bpf/../../../",
    ),
    "CLASSDICT": (
        "ELF 64-bit LSB relocatable, eBPF, version 1 (SYSV)",
        "ELF 64-bit MSB relocatable, eBPF",
        "ELF 64-bit LSB relocatable, unknown arch 0xf7",
        "ELF 64-bit LSB pie executable",
        "directory",
        "",
    ),
    "REQUIRENAME": ("libbpf.so.1", "libxdp.so.1", "bpf-filesystem", "rpmlib(CompressedFileNames)", ""),
    "FILEDIGESTS": ("", "0" * 64, "zz", "0" * 1000),
    "FILELINKTOS": ("", "/etc/passwd", "../../../../usr/bin/tool", "counter.bpf.o"),
    "FILEUSERNAME": ("root", "nobody", ""),
    "FILEGROUPNAME": ("root", "wheel", ""),
    "OLDFILENAMES": ("/usr/lib64/bpf/x.o",),
    "PAYLOADDIGEST": ("", "0" * 64),
    "ARCH": (
        "x86_64",
        "noarch",
        "src",
        "nosrc",
        "aarch64",
        "s390x",
        "ppc64",
        "i686",
        "",
        "--eval=%{_libdir}",
        "x86_64 ",
        "x86_64\n",
        "-v",
    ),
    "NAME": ("fuzz-target", "", "-", "a" * 300),
    "VERSION": ("1.0", ""),
    "RELEASE": ("1", ""),
    "SOURCERPM": ("", "fuzz-target-1.0-1.src.rpm"),
    "PAYLOADCOMPRESSOR": (
        "zstd",
        "xz",
        "gzip",
        "bzip2",
        "lzma",
        "ufdio",
        "fdio",
        "",
        "zstd.r",
        "w.zstdio",
        "zstdio",
        "r",
    ),
    "PAYLOADFORMAT": ("cpio", "drpm", "", "ar"),
    "FILELANGS": ("", "de"),
}
PLAUSIBLE_INTS = {
    "FILEMODES": (0o100644, 0o100755, 0o040755, 0o120777, 0o010644, 0o020644, 0o060644, 0o140644, 0o104755, 0),
    "FILEFLAGS": (0, 1, 64, 65, 4096, 1 << 31),
    "DIRINDEXES": (0, 1, 5, 6, -1, 0x7FFFFFFF),
    "FILECLASS": (0, 1, 2, 3, 4, -1, 0x7FFFFFFF),
    "FILEINODES": (1, 2, 5, 6, 0),
    "FILEDEPENDSX": (0, 9, 10, 11, -1),
    "FILEDEPENDSN": (0, 1, 2, 11, 12, 0x7FFFFFFF),
    "FILEDIGESTALGO": (0, 1, 2, 8, 9, 10, 11, 12, 99),
    "PAYLOADDIGESTALGO": (0, 1, 2, 8, 9, 10, 11, 12, 99),
    "SOURCEPACKAGE": (0, 1),
    "EPOCH": (0, 1, -1),
}


def tag_values(name: str, original: object, work: Path) -> st.SearchStrategy[object]:
    """Values rpm's header API accepts for tag ``name``: mostly near the original, sometimes anything."""
    if name in STRING_TAGS:
        return header_text(work, PLAUSIBLE.get(name, ()))
    if name in INT_TAGS:
        return st.one_of(st.sampled_from(PLAUSIBLE_INTS[name]), ints())
    if name in STRING_ARRAY_TAGS:
        element = header_text(work, PLAUSIBLE.get(name, ()))
    else:
        element = st.one_of(st.sampled_from(PLAUSIBLE_INTS.get(name, INTERESTING_INTS)), ints())
    current = list(original) if isinstance(original, list) else []
    lengths = st.one_of(st.sampled_from([len(current), max(len(current) - 1, 1), len(current) + 1]), st.integers(1, 12))
    anything = lengths.flatmap(lambda n: st.lists(element, min_size=max(n, 1), max_size=max(n, 1)))
    if not current:
        return anything

    def replaced(index: int, value: object) -> list:
        out = list(current)
        out[index % len(out)] = value
        return out

    return st.one_of(
        st.builds(replaced, st.integers(0, 64), element),  # passes the count checks
        anything,
        st.builds(lambda v: [*current, v], element),
        st.just(current[:-1] or current),
    )


def rpm_mutations(fixture: RpmFixture) -> st.SearchStrategy[RpmMutation]:
    """The three kinds of damage: byte overwrites, tag edits with digests fixed, truncations."""
    size = len(fixture.data)
    boundaries = sorted({b for start, end in fixture.regions.values() for b in (start, end)})
    near_boundary = st.builds(
        lambda b, d: min(max(b + d, 0), size - 1), st.sampled_from(boundaries), st.integers(-24, 24)
    )
    import rpm

    all_tags = STRING_ARRAY_TAGS + INT_ARRAY_TAGS + STRING_TAGS + INT_TAGS

    def edit(name: str) -> st.SearchStrategy[tuple[str, object]]:
        original = fixture.header[tag_number(name)]
        if name == "FILECLASS":  # rpm gives the class strings; the tag holds indexes into CLASSDICT
            classdict = {c: i for i, c in enumerate(fixture.header[rpm.RPMTAG_CLASSDICT])}
            original = [classdict.get(c, 0) for c in original]
        return st.tuples(st.just(name), st.one_of(st.none(), tag_values(name, original, fixture.work)))

    return st.one_of(
        st.builds(
            RawOverwrite, st.sampled_from(["lead", "signature", "header", "payload", "file"]), patches(header_offsets())
        ),
        st.builds(HeaderOverwrite, patches(header_offsets())),
        index_edits(fixture, "signature"),
        index_edits(fixture, "main"),
        st.builds(PayloadOverwrite, patches(st.integers(0, 1 << 20))),
        st.builds(TagEdits, st.lists(st.sampled_from(all_tags).flatmap(edit), min_size=1, max_size=3).map(tuple)),
        st.builds(Truncation, st.one_of(st.integers(0, size - 1), near_boundary)),
    )


def apply_rpm_mutation(fixture: RpmFixture, mutation: RpmMutation, dest: Path) -> None:
    """Write the damaged package to ``dest`` (tags through rpm's API, see tests/support/craft.py)."""
    from tests.support.craft import LEAD, Parts, edit_header, set_tag

    if isinstance(mutation, RawOverwrite):
        dest.write_bytes(overwrite(fixture.data, mutation.patches, *fixture.regions[mutation.region]))
    elif isinstance(mutation, IndexEdits):
        chunks = tuple(
            (16 + 16 * entry + 4 * field, struct.pack(">I", value % (1 << 32)))
            for entry, field, value in mutation.edits
        )
        if mutation.header == "signature":
            dest.write_bytes(overwrite(fixture.data, tuple((LEAD + o, c) for o, c in chunks)))
        else:
            parts = Parts(fixture.data)
            parts.header_bytes = overwrite(parts.header_bytes, chunks)
            parts.fix_digests()
            dest.write_bytes(parts.bytes())
    elif isinstance(mutation, HeaderOverwrite):
        parts = Parts(fixture.data)
        parts.header_bytes = overwrite(parts.header_bytes, mutation.patches, 8)  # the magic kept
        parts.fix_digests()
        dest.write_bytes(parts.bytes())
    elif isinstance(mutation, PayloadOverwrite):
        parts = Parts(fixture.data)
        parts.payload = overwrite(parts.payload, mutation.patches)
        hdr = parts.header()
        set_tag(hdr, tag_number("PAYLOADDIGEST"), [hashlib.sha256(parts.payload).hexdigest()])
        parts.set_header(hdr)
        parts.fix_digests()
        dest.write_bytes(parts.bytes())
    elif isinstance(mutation, TagEdits):

        def edit(hdr) -> None:
            for name, value in mutation.edits:
                tag = tag_number(name)
                if value is None:
                    if tag in hdr:
                        del hdr[tag]
                else:
                    set_tag(hdr, tag, value)

        edit_header(fixture.path, dest, edit, fix_digests=True)
    else:
        dest.write_bytes(fixture.data[: mutation.length])


def fuzz_rpm(work: Path, settings: hypothesis.settings, seed: int | None) -> Cases:
    """open_rpm + check_package: a result or RpmFileError/ContentError, never another exception or a macro run."""
    import rpm

    from rpm_bpf.model import ContentError
    from rpm_bpf.rules import package as checks
    from rpm_bpf.rules import registry as rules
    from rpm_bpf.sources import bpfdirs, rpmfile

    rpm.setVerbosity(rpm.RPMLOG_CRIT)
    if MARKER.exists():
        print(f"removing {MARKER} left by an earlier run", file=sys.stderr)
        MARKER.unlink()
    fixture = build_rpm_fixture(work)
    case_path = work / "case.rpm"  # the last case stays here if a signal kills the process
    cases = Cases()

    # deep=True (rpm-bpf scan --deep) keeps and reads every file: all of the payload goes through librpm.
    @given(rpm_mutations(fixture), st.booleans())
    def rpm_reader_fails_cleanly(mutation: RpmMutation, deep: bool) -> None:
        try:
            apply_rpm_mutation(fixture, mutation, case_path)
        except (TypeError, ValueError, OverflowError, rpm.error):
            cases.outcome("rejected: rpm's API refused the value")
            hypothesis.reject()  # a value rpm's API refuses to store: not a package anyone can write
        cases()
        try:
            opened = rpmfile.open_rpm(str(case_path), bpfdirs.for_arch, deep=deep)
            result = checks.check_package(
                opened.package, bpfdirs.for_arch(opened.package.ref.arch), ("bpf-filesystem",), opened
            )
        except (rpmfile.RpmFileError, ContentError) as exc:
            cases.outcome(f"{type(mutation).__name__} -> {kind_of(getattr(exc, 'reason', str(exc)))}")
        else:
            cases.outcome(
                f"{type(mutation).__name__} -> checked"
                + (f", {kind_of(result.content_error.split(': ', 1)[-1])}" if result.content_error else "")
            )
            for finding in result.findings:
                rules.get(finding.rule)
                assert isinstance(finding.detail, str)
        for marker in (MARKER, work / "marker"):
            assert not marker.exists(), f"header data was expanded as a macro: {marker} was created"

    run_hypothesis(rpm_reader_fails_cleanly, settings, seed)
    return cases


# ---------------------------------------------------------------------------
# elf: BPF object inspection
# ---------------------------------------------------------------------------


@dataclass
class ElfBase:
    """A clang-built object and where its fields are (ELF64, either byte order)."""

    name: str
    data: bytes = dataclass_field(repr=False)  # a falsifying example names the base, not its 10 kB
    order: str  # struct prefix: "<" or ">"
    shoff: int
    shnum: int
    symtab: tuple[int, int]  # offset, count of 24-byte symbols


def elf_base(name: str, data: bytes) -> ElfBase:
    order = "<" if data[5] == 1 else ">"
    shoff = struct.unpack_from(order + "Q", data, 40)[0]
    shnum = struct.unpack_from(order + "H", data, 60)[0]
    symtab = (0, 0)
    for i in range(shnum):
        (sh_type,) = struct.unpack_from(order + "I", data, shoff + 64 * i + 4)
        if sh_type == 2:  # SHT_SYMTAB
            offset, size = struct.unpack_from(order + "QQ", data, shoff + 64 * i + 24)
            symtab = (offset, size // 24)
    return ElfBase(name, data, order, shoff, shnum, symtab)


# (offset, struct format) of the fields a crafted object would set.
EHDR_FIELDS = {
    "e_ident_class": (4, "B"),
    "e_ident_data": (5, "B"),
    "e_type": (16, "H"),
    "e_machine": (18, "H"),
    "e_shoff": (40, "Q"),
    "e_ehsize": (52, "H"),
    "e_shentsize": (58, "H"),
    "e_shnum": (60, "H"),
    "e_shstrndx": (62, "H"),
}
SHDR_FIELDS = {
    "sh_name": (0, "I"),
    "sh_type": (4, "I"),
    "sh_flags": (8, "Q"),
    "sh_offset": (24, "Q"),
    "sh_size": (32, "Q"),
    "sh_link": (40, "I"),
    "sh_info": (44, "I"),
    "sh_addralign": (48, "Q"),
    "sh_entsize": (56, "Q"),
}
SYM_FIELDS = {
    "st_name": (0, "I"),
    "st_info": (4, "B"),
    "st_other": (5, "B"),
    "st_shndx": (6, "H"),
    "st_value": (8, "Q"),
    "st_size": (16, "Q"),
}


@dataclass(frozen=True)
class ElfOverwrite:
    """(offset, bytes) written over the object (offsets wrap around)."""

    patches: tuple[tuple[int, bytes], ...]


@dataclass(frozen=True)
class ElfTruncation:
    """The object cut (``length`` wraps around its size)."""

    length: int


@dataclass(frozen=True)
class ElfSplice:
    """``data[dst:dst+dst_len]`` replaced by ``data[src:src+src_len]`` (a section moved, doubled or lost)."""

    src: int
    src_len: int
    dst: int
    dst_len: int


@dataclass(frozen=True)
class ElfField:
    """One header field set: ``where`` is ehdr, shdr N or sym N."""

    where: str
    index: int
    field: str
    value: int


@dataclass(frozen=True)
class Embedding:
    """The object placed inside ``host`` (random bytes or /usr/bin/true) at ``at``; ``cut`` bytes of tail lost."""

    host: str
    prefix: bytes
    at: int
    cut: int


ElfMutation = ElfOverwrite | ElfTruncation | ElfSplice | ElfField


def elf_mutations() -> st.SearchStrategy[ElfMutation]:
    fields = st.one_of(
        st.builds(ElfField, st.just("ehdr"), st.just(0), st.sampled_from(sorted(EHDR_FIELDS)), ints()),
        st.builds(ElfField, st.just("shdr"), st.integers(0, 40), st.sampled_from(sorted(SHDR_FIELDS)), ints()),
        st.builds(ElfField, st.just("sym"), st.integers(0, 60), st.sampled_from(sorted(SYM_FIELDS)), ints()),
    )
    offsets = st.one_of(st.integers(0, 63), st.integers(0, 1 << 16))
    return st.one_of(
        fields,
        st.builds(ElfOverwrite, st.lists(st.tuples(offsets, patch_bytes()), min_size=1, max_size=8).map(tuple)),
        st.builds(ElfTruncation, st.integers(0, 1 << 15)),
        st.builds(
            ElfSplice, st.integers(0, 1 << 15), st.integers(0, 4096), st.integers(0, 1 << 15), st.integers(0, 4096)
        ),
    )


def apply_elf_mutation(base: ElfBase, data: bytes, mutation: ElfMutation) -> bytes:
    if isinstance(mutation, ElfOverwrite):
        return overwrite(data, mutation.patches)
    if isinstance(mutation, ElfTruncation):
        return data[: mutation.length % (len(data) + 1)]
    if isinstance(mutation, ElfSplice):
        n = len(data) + 1
        src, dst = mutation.src % n, mutation.dst % n
        return data[:dst] + data[src : src + mutation.src_len] + data[dst + mutation.dst_len :]
    if mutation.where == "ehdr":
        at, fmt = EHDR_FIELDS[mutation.field]
        offset = at
    elif mutation.where == "shdr":
        at, fmt = SHDR_FIELDS[mutation.field]
        offset = base.shoff + 64 * (mutation.index % base.shnum) + at
    else:
        at, fmt = SYM_FIELDS[mutation.field]
        offset = base.symtab[0] + 24 * (mutation.index % max(base.symtab[1], 1)) + at
    width = struct.calcsize(fmt)
    if offset + width > len(data):
        return data
    buf = bytearray(data)
    struct.pack_into(base.order + fmt, buf, offset, mutation.value % (1 << (8 * width)))
    return bytes(buf)


def embed(obj: bytes, how: Embedding, true_bytes: bytes) -> tuple[bytes, int]:
    """The blob and the offset the object starts at (never 0: find_embedded looks past offset 0)."""
    host = true_bytes if how.host == "true" else how.prefix
    at = 1 + how.at % len(host)
    blob = host[:at] + obj + host[at:]
    return blob[: len(blob) - how.cut % (len(blob) + 1)], at


def fuzz_elf(work: Path, settings: hypothesis.settings, seed: int | None) -> Cases:
    """inspect raises only BpfElfError, the tag prediction only PredictionError; find_embedded never raises,
    and finds an intact embedded object."""
    from rpm_bpf.bpf import elf
    from rpm_bpf.bpf.progtag import PredictionError, predict
    from rpm_bpf.samples import build as samples

    bases = [
        elf_base(name, samples.compile_bpf(samples.XDP_COUNTER_C, work / f"{name}.o", **kwargs).read_bytes())
        for name, kwargs in (("bpf", {}), ("bpfeb", {"target": "bpfeb"}), ("nobtf", {"btf": False}))
    ]
    true_bytes = Path("/usr/bin/true").read_bytes()
    cases = Cases()
    embeddings = st.builds(
        Embedding,
        st.sampled_from(["random", "true"]),
        st.binary(min_size=1, max_size=512),
        st.integers(0, 1 << 20),
        st.one_of(st.just(0), st.integers(0, 1 << 16)),
    )

    @given(st.sampled_from(bases), st.lists(elf_mutations(), max_size=4), st.none() | embeddings)
    def elf_parsers_fail_cleanly(base: ElfBase, mutations: list[ElfMutation], embedding: Embedding | None) -> None:
        obj = base.data
        for mutation in mutations:
            obj = apply_elf_mutation(base, obj, mutation)
        cases()
        blobs = [(obj, None)]
        if embedding is not None:
            blobs.append(embed(obj, embedding, true_bytes))
        for blob, at in blobs:
            try:
                elf.inspect(blob, "fuzzed.o")
                cases.outcome("inspect: parsed")
            except elf.BpfElfError as exc:
                cases.outcome(f"inspect: {kind_of(str(exc).removeprefix('fuzzed.o: '))}")
            try:  # the tag prediction reads the same hostile bytes: PredictionError only, and it ends
                predicted = predict(blob)
                cases.outcome(f"predict: {len(predicted)} programs")
            except PredictionError as exc:
                cases.outcome(f"predict: {kind_of(str(exc))}")
            found = elf.find_embedded(blob)
            if found:
                cases.outcome("find_embedded: found")
            assert all(0 < f.offset < len(blob) for f in found)
            intact = at is not None and blob[at : at + len(base.data)] == base.data
            if intact and not mutations:
                assert at in {f.offset for f in found}, f"intact object at offset {at} not found"

    run_hypothesis(elf_parsers_fail_cleanly, settings, seed)
    return cases


# ---------------------------------------------------------------------------
# policy: TOML policy files
# ---------------------------------------------------------------------------

BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def toml_string(text: str) -> str:
    """A TOML basic string: every control character escaped."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_key(key: str) -> str:
    return key if BARE_KEY.fullmatch(key) else toml_string(key)


def toml_value(value: object) -> str:
    """An inline TOML value (arrays and inline tables for containers)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML for {type(value).__name__}")


def toml_document(doc: dict) -> str:
    """Tables as [headers], arrays of tables as [[headers]], the rest inline."""
    lines: list[str] = []

    def table(path: list[str], body: dict) -> None:
        nested = []
        for key, value in body.items():
            if isinstance(value, dict) or (
                isinstance(value, list) and value and all(isinstance(v, dict) for v in value)
            ):
                nested.append((key, value))
            else:
                lines.append(f"{toml_key(key)} = {toml_value(value)}")
        for key, value in nested:
            name = ".".join(toml_key(p) for p in [*path, key])
            if isinstance(value, dict):
                lines.append(f"\n[{name}]")
                table([*path, key], value)
            else:
                for element in value:
                    lines.append(f"\n[[{name}]]")
                    for k, v in element.items():  # nested tables inline: [a.b] after [[a]] is legal but fiddly
                        lines.append(f"{toml_key(k)} = {toml_value(v)}")

    table([], doc)
    return "\n".join(lines) + "\n"


RULE_WORDS = (
    "bpf-object-outside-bpfdir",
    "bpf-object-no-btf",
    "bpf-object-embedded",
    "bpfdir-unowned",
    "bpf-*",
    "*",
    "?",
    "[",
    "[!a]",
    "bpf-object-[",
    "no-such-rule",
    "",
    "**",
    "\\*",
)
POLICY_KEYS = ("severity", "waiver", "bpfdir", "owner-provides", "rule", "package", "path", "reason", "expires")


def policy_keys() -> st.SearchStrategy[str]:
    """Keys the loader knows (so that documents get past the first check), rule ids and globs, anything."""
    return st.one_of(st.sampled_from(POLICY_KEYS + RULE_WORDS), st.text(max_size=12))


def toml_scalars() -> st.SearchStrategy[object]:
    """Every TOML scalar type, dates with and without offsets included."""
    offsets = st.integers(-23 * 60, 23 * 60).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))
    return st.one_of(
        st.text(max_size=20),
        st.sampled_from(
            (*RULE_WORDS, "error", "warning", "info", "off", " OFF ", "2027-06-30", "2027-02-30", "tomorrow")
        ),
        st.integers(-(1 << 63), (1 << 63) - 1),
        st.floats(),
        st.booleans(),
        st.dates(),
        st.datetimes(timezones=st.none() | st.just(dt.UTC) | offsets),
        st.times(),
    )


def toml_values() -> st.SearchStrategy[object]:
    return st.recursive(
        toml_scalars(),
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(policy_keys(), inner, max_size=4)),
        max_leaves=12,
    )


def valid_policies() -> st.SearchStrategy[dict]:
    """Policies the loader accepts (as Python data)."""
    levels = st.sampled_from(["error", "warning", "info", "off", " Warning ", "OFF"])
    severity = st.dictionaries(st.sampled_from(RULE_WORDS[:5]), levels, max_size=3)
    waiver = st.fixed_dictionaries(
        {"rule": st.sampled_from(RULE_WORDS[:5]), "reason": st.text(min_size=1, max_size=20).filter(str.strip)},
        optional={
            "package": st.sampled_from(["*", "p", "p-1-1.x86_64", "[", ""]),
            "path": st.sampled_from(["*", "/opt/*", "/opt/x.o", ""]),
            "expires": st.one_of(st.dates(), st.dates().map(str), st.datetimes()),
        },
    )
    bpfdir = st.fixed_dictionaries({}, optional={"owner-provides": st.lists(st.text(max_size=10), max_size=3)})
    return st.fixed_dictionaries(
        {}, optional={"severity": severity, "waiver": st.lists(waiver, max_size=3), "bpfdir": bpfdir}
    )


def swap_one_value(doc: dict, choice: int, replacement: object) -> dict:
    """A copy of ``doc`` with the ``choice``-th value (in a walk of all values) replaced, of whatever type."""
    doc = copy.deepcopy(doc)
    slots: list[tuple[object, object]] = []

    def collect(container: object) -> None:
        keys = container.keys() if isinstance(container, dict) else range(len(container))
        for key in keys:
            slots.append((container, key))
            if isinstance(container[key], (dict, list)):
                collect(container[key])

    collect(doc)
    if slots:
        container, key = slots[choice % len(slots)]
        container[key] = replacement
    return doc


def deep_nesting(kind: str, depth: int) -> str:
    """Nesting ``depth`` levels deep: tomllib parses arrays and inline tables recursively."""
    if kind == "array":
        return "a = " + "[" * depth + "]" * depth + "\n"
    if kind == "inline":
        return "a = " + "{b = " * depth + "1" + "}" * depth + "\n"
    if kind == "unclosed":
        return "a = " + "[" * depth + "\n"
    if kind == "waiver":
        return "[[waiver]]\nrule = " + "[" * depth + "]" * depth + '\nreason = "x"\n'
    return "[" + ".".join(["a"] * depth) + "]\n"


def policy_texts() -> st.SearchStrategy[bytes]:
    """Policy files: generated TOML, raw text, valid ones with a wrong type, deep nesting, mangled text."""
    documents = st.dictionaries(policy_keys(), toml_values(), max_size=4)
    swapped = st.builds(swap_one_value, valid_policies(), st.integers(0, 50), toml_values())
    rendered = st.one_of(documents, valid_policies(), swapped).map(toml_document)
    mangled = st.builds(
        lambda text, at, junk: text[: at % (len(text) + 1)] + junk + text[at % (len(text) + 1) :],
        rendered,
        st.integers(0, 1000),
        st.text(max_size=5),
    )
    deep = st.builds(
        deep_nesting,
        st.sampled_from(["array", "inline", "unclosed", "waiver", "table"]),
        st.one_of(st.sampled_from([100, 500, 999, 1000, 2000, 3000]), st.integers(1, 3000)),
    )
    return st.one_of(
        rendered.map(str.encode),
        mangled.map(str.encode),
        deep.map(str.encode),
        st.text().map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.binary(max_size=200),
    )


def fuzz_policy(work: Path, settings: hypothesis.settings, seed: int | None) -> Cases:
    """Policy.load gives a Policy or PolicyError; apply() then never raises and waiver reasons are str."""
    from rpm_bpf.findings import Finding
    from rpm_bpf.model import PackageRef
    from rpm_bpf.rules.policy import Policy, PolicyError
    from rpm_bpf.rules.registry import Severity

    ref = PackageRef("p", None, "1", "1", "x86_64", "p.rpm")
    findings = [
        Finding.of("bpf-object-outside-bpfdir", ref, "/opt/x.o"),
        Finding.of("bpf-object-no-btf", ref, "/usr/lib64/bpf/p/x.o"),
        Finding.of("bpf-object-embedded", PackageRef("q", 3, "2", "1", "noarch", "q.rpm"), "/usr/bin/q"),
        Finding.of("bpfdir-unowned", ref, None, "1 file below it"),
        Finding.of("bpf-object-outside-bpfdir", None, None),
    ]
    policy_file = work / "policy.toml"
    cases = Cases()

    @given(policy_texts(), st.dates())
    def policy_loads_or_refuses(text: bytes, today: dt.date) -> None:
        policy_file.write_bytes(text)
        cases()
        try:
            policy = Policy.load([policy_file], system=None)
        except PolicyError as exc:
            cases.outcome(kind_of(str(exc).removeprefix(f"{policy_file}: ")))
            assert str(policy_file) in str(exc) or "built-in" in str(exc), f"message does not name the file: {exc}"
            return
        applied = policy.apply(findings, today=today)
        cases.outcome(f"loaded, {len(policy.waivers)} waivers")
        assert len(applied) <= len(findings)
        for finding in applied:
            assert finding.waiver is None or isinstance(finding.waiver, str), repr(finding.waiver)
            assert isinstance(finding.severity, Severity)

    run_hypothesis(policy_loads_or_refuses, settings, seed)
    return cases


# ---------------------------------------------------------------------------
# rootfs: reading below a hostile root
# ---------------------------------------------------------------------------


class Blocked(AssertionError):
    """A call that should never block did."""


@contextmanager
def must_not_block(what: str, seconds: int = 5) -> Iterator[None]:
    def on_alarm(signum, frame) -> None:
        raise Blocked(f"{what} blocked for {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@dataclass(frozen=True)
class Node:
    """One entry of a generated tree: ``parent`` indexes the directories made so far (0 is the root)."""

    parent: int
    name: str
    kind: str  # dir, file, symlink, fifo
    size: int = 0
    target: tuple[str, str] = ("", "")  # symlink: (how, text)


LINK_TARGETS = (
    "sentinel-abs",
    "fifo-abs",
    "sentinel-rel",
    "fifo-rel",
    "root-abs",
    "inside-abs",
    "text",
    "dotdots",
    "self",
)
NAMES = ("a", "b", "etc", "passwd", "lib64", "bpf", "x.o", "link", "fifo", "-", " ", "\udcff")


def node_names() -> st.SearchStrategy[str]:
    chars = st.characters(exclude_categories=("Cs",), exclude_characters="/\0")
    return st.one_of(st.sampled_from(NAMES), st.text(chars, min_size=1, max_size=12)).filter(
        lambda n: n not in (".", "..") and len(os.fsencode(n)) <= 200
    )


def nodes() -> st.SearchStrategy[Node]:
    return st.one_of(
        st.builds(Node, st.integers(0, 30), node_names(), st.just("dir")),
        st.builds(
            Node,
            st.integers(0, 30),
            node_names(),
            st.just("file"),
            st.one_of(st.sampled_from([0, 1, 4096, 4097]), st.integers(0, 6000)),
        ),
        st.builds(Node, st.integers(0, 30), node_names(), st.just("fifo")),
        st.builds(
            Node,
            st.integers(0, 30),
            node_names(),
            st.just("symlink"),
            st.just(0),
            st.tuples(st.sampled_from(LINK_TARGETS), st.text(max_size=20).filter(lambda t: "\0" not in t)),
        ),
    )


@dataclass
class Outside:
    """What lies outside every root: never to be read through one."""

    sentinel: Path
    content: bytes
    fifo: Path
    inode: tuple[int, int]


def link_text(node: Node, link_dir: Path, root: Path, dirs: list[Path], outside: Outside) -> str:
    how, text = node.target
    if how == "sentinel-abs":
        return str(outside.sentinel)
    if how == "fifo-abs":
        return str(outside.fifo)
    if how == "sentinel-rel":
        return os.path.relpath(outside.sentinel, link_dir)
    if how == "fifo-rel":
        return os.path.relpath(outside.fifo, link_dir)
    if how == "root-abs":
        return "/"
    if how == "inside-abs":  # right inside the root, wrong on the host
        return "/" + str(dirs[len(text) % len(dirs)].relative_to(root)) + "/" + (text or "x")
    if how == "dotdots":
        return "../" * (len(text) + 1) + str(outside.sentinel).lstrip("/")
    if how == "self":
        return node.name
    return text or "."


def make_tree(root: Path, tree: list[Node], outside: Outside) -> list[str]:
    """Create ``tree`` below ``root``; the paths made, inside the root (for drawing paths)."""
    dirs = [root]
    made = []
    for node in tree:
        parent = dirs[node.parent % len(dirs)]
        path = parent / node.name
        if os.path.lexists(path):
            continue
        made.append("/" + str(path.relative_to(root)))
        if node.kind == "dir":
            path.mkdir()
            dirs.append(path)
        elif node.kind == "file":
            path.write_bytes(b"f" * node.size)
        elif node.kind == "fifo":
            os.mkfifo(path)
        else:
            path.symlink_to(link_text(node, parent, root, dirs, outside))
    return made


def tree_inodes(root: Path) -> dict[str, set[tuple[int, int]]]:
    """Inodes of what lies inside ``root`` (links not followed), by kind."""
    found: dict[str, set[tuple[int, int]]] = {"all": set(), "dir": set(), "reg": set()}
    for dirpath, dirnames, filenames in os.walk(root):
        for path in [dirpath] + [os.path.join(dirpath, n) for n in dirnames + filenames]:
            st_ = os.lstat(path)
            key = (st_.st_dev, st_.st_ino)
            found["all"].add(key)
            if stat.S_ISDIR(st_.st_mode):
                found["dir"].add(key)
            elif stat.S_ISREG(st_.st_mode):
                found["reg"].add(key)
    return found


def fuzz_rootfs(work: Path, settings: hypothesis.settings, seed: int | None) -> Cases:
    """RootFS calls raise only OSError, never block, never reach outside the root."""
    from rpm_bpf.sources.rootfs import RootFS

    (work / "outside").mkdir()
    sentinel = work / "outside" / "sentinel"
    content = f"sentinel {os.getpid()} {os.urandom(8).hex()}\n".encode()
    sentinel.write_bytes(content)
    fifo = work / "outside" / "fifo"
    os.mkfifo(fifo)
    outside = Outside(sentinel, content, fifo, (sentinel.stat().st_dev, sentinel.stat().st_ino))
    cases_dir = work / "cases"
    cases_dir.mkdir()
    cases = Cases()

    def path_strategy(made: list[str]) -> st.SearchStrategy[str]:
        """Paths of what was made (some with more components after them), component salads, outside paths."""
        names = sorted({p.rsplit("/", 1)[-1] for p in made})
        component = st.sampled_from([*names, "..", ".", "", "missing"])
        joined = st.builds(
            lambda lead, parts: lead + "/".join(parts),
            st.sampled_from(["/", "", "//"]),
            st.lists(component, max_size=6),
        )
        outside_paths = st.sampled_from([str(sentinel), str(fifo), str(sentinel.parent), "/", ""])
        if not made:
            return st.one_of(joined, outside_paths)
        extended = st.builds(
            lambda base, more: "/".join([base, *more]), st.sampled_from(made), st.lists(component, max_size=2)
        )
        return st.one_of(extended, joined, outside_paths)

    @given(st.lists(nodes(), max_size=25), st.data())
    def rootfs_stays_inside(tree: list[Node], data: st.DataObject) -> None:
        root = Path(tempfile.mkdtemp(dir=cases_dir)) / "root"
        root.mkdir()
        try:
            made = make_tree(root, tree, outside)
            inside = tree_inodes(root)
            paths = data.draw(st.lists(path_strategy(made), min_size=1, max_size=6), label="paths")
            cases()
            with RootFS(str(root)) as fs:
                check_rootfs(fs, paths, inside, outside, cases)
        finally:
            shutil.rmtree(root.parent)

    run_hypothesis(rootfs_stays_inside, settings, seed)
    return cases


def call(what: str, fn: Callable, *args) -> object:
    """``fn(*args)``'s result or its OSError; anything else (a block included) fails the case."""
    with must_not_block(what):
        try:
            return fn(*args)
        except OSError as exc:
            return exc


def identity(st_: os.stat_result) -> tuple[int, int]:
    return (st_.st_dev, st_.st_ino)


def check_rootfs(fs, paths: list[str], inside: dict[str, set[tuple[int, int]]], outside: Outside, cases: Cases) -> None:
    for path in paths:
        st_ = call(f"lstat({path!r})", fs.lstat, path)
        assert isinstance(st_, OSError) or identity(st_) in inside["all"], f"lstat({path!r}) left the root"
        call(f"readlink({path!r})", fs.readlink, path)
        data = call(f"read({path!r})", fs.read, path, 4096)
        cases.outcome(f"read: {errno.errorcode.get(data.errno, data.errno) if isinstance(data, OSError) else 'ok'}")
        assert data != outside.content, f"read({path!r}) returned the sentinel outside the root"
        assert isinstance(data, (bytes, OSError))
        opened = call(f"open_regular({path!r})", fs.open_regular, path)
        if not isinstance(opened, OSError):
            fd, fst = opened
            try:
                assert identity(os.fstat(fd)) in inside["reg"], f"open_regular({path!r}) opened a file outside"
                assert stat.S_ISREG(fst.st_mode)
            finally:
                os.close(fd)
        fd = call(f"open_dir({path!r})", fs.open_dir, path)
        if not isinstance(fd, OSError):
            try:
                assert identity(os.fstat(fd)) in inside["dir"], f"open_dir({path!r}) opened a directory outside"
            finally:
                os.close(fd)
    for top in ["/", paths[0]]:
        errors: list[object] = []
        walked = call(f"walk({top!r})", lambda top=top, errors=errors: list(fs.walk(top, errors.append)))
        if isinstance(walked, OSError):
            continue
        cases.outcome(f"walk: {len(walked)} entries, {len(errors)} errors" if len(walked) < 3 else "walk: 3+ entries")
        assert all(isinstance(e, OSError) for e in errors), errors
        for path, st_ in walked:
            assert not stat.S_ISDIR(st_.st_mode), f"walk yielded the directory {path!r}"
            again = call(f"lstat({path!r}) of a walked path", fs.lstat, path)
            assert not isinstance(again, OSError), f"walk yielded {path!r}, whose lstat fails: {again!r}"
            assert identity(again) == identity(st_) and identity(st_) in inside["all"], path


# ---------------------------------------------------------------------------
# repodata: repository metadata read by the gate
# ---------------------------------------------------------------------------


def _write_metadata(repo: Path, primary_xml: bytes, filelists_xml: bytes) -> None:
    """repodata/ with these two documents (gzip) and a repomd.xml whose checksums match them."""
    import gzip

    import createrepo_c as cr

    repodata = repo / "repodata"
    shutil.rmtree(repodata, ignore_errors=True)
    repodata.mkdir(parents=True)
    repomd = cr.Repomd()
    for kind, data in (("primary", primary_xml), ("filelists", filelists_xml)):
        path = repodata / f"{kind}.xml.gz"
        path.write_bytes(gzip.compress(data, 1))
        record = cr.RepomdRecord(kind, str(path))
        record.location_href = f"repodata/{kind}.xml.gz"
        record.checksum_type = "sha256"
        record.checksum = hashlib.sha256(path.read_bytes()).hexdigest()
        repomd.set_record(record)
    (repodata / "repomd.xml").write_text(repomd.xml_dump())


def _seed_metadata(work: Path) -> tuple[bytes, bytes]:
    """Real primary and filelists documents (createrepo_c's writer) of three packages, BPF files included."""
    import gzip

    import createrepo_c as cr

    out = work / "seed" / "repodata"
    out.mkdir(parents=True)
    primary = cr.PrimaryXmlFile(str(out / "primary.xml.gz"), cr.GZ)
    filelists = cr.FilelistsXmlFile(str(out / "filelists.xml.gz"), cr.GZ)
    for index, (name, paths) in enumerate(
        [
            ("a", ["/usr/lib64/bpf/a/x.bpf.o", "/usr/bin/a"]),
            ("b", ["/usr/lib/bpf/b.o", "/usr/share/b/bpf/y.o"]),
            ("c", ["/usr/share/doc/c/README"]),
        ]
    ):
        pkg = cr.Package()
        pkg.name, pkg.epoch, pkg.version, pkg.release, pkg.arch = name, "0", "1", "1", "x86_64"
        pkg.pkgId, pkg.checksum_type = hashlib.sha256(name.encode()).hexdigest(), "sha256"
        pkg.location_href = f"{name}.rpm"
        pkg.provides = [(f"bpf({name}/x.bpf.o)", None, None, None, None, False)]
        pkg.requires = [("bpf-filesystem", None, None, None, None, False)] if index == 0 else []
        pkg.files = [(None, p.rsplit("/", 1)[0] + "/", p.rsplit("/", 1)[1]) for p in paths]
        primary.add_pkg(pkg)
        filelists.add_pkg(pkg)
    primary.close()
    filelists.close()
    return gzip.decompress((out / "primary.xml.gz").read_bytes()), gzip.decompress(
        (out / "filelists.xml.gz").read_bytes()
    )


def fuzz_repodata(work: Path, settings: hypothesis.settings, seed: int | None) -> Cases:
    """read_repository on damaged metadata (checksums made to match): RepoContents or RepoError, nothing else."""
    from rpm_bpf.sources.repodata import RepoContents, RepoError, read_repository

    primary_xml, filelists_xml = _seed_metadata(work)
    repo = work / "repo"
    cases = Cases()

    @given(
        st.sampled_from(["primary", "filelists"]),
        st.tuples(*[st.tuples(ints(), patch_bytes())] * 3),
        st.integers(min_value=0, max_value=4000),
        st.booleans(),
    )
    def metadata_reads_or_refuses(
        which: str, patches: tuple[tuple[int, bytes], ...], cut: int, inventory: bool
    ) -> None:
        cases()
        damaged = {"primary": primary_xml, "filelists": filelists_xml}
        data = overwrite(damaged[which], patches)
        damaged[which] = data[: max(1, len(data) - cut)] if cut % 3 == 0 else data
        _write_metadata(repo, damaged["primary"], damaged["filelists"])
        with must_not_block("read_repository", 20):
            try:
                contents = read_repository(str(repo), ["/usr/lib64/bpf", "/usr/lib/bpf"], inventory=inventory)
            except RepoError as exc:
                assert str(repo) in str(exc), f"message does not name the repository: {exc}"
                cases.outcome(kind_of(str(exc).removeprefix(f"{repo}: ")))
                return
        assert isinstance(contents, RepoContents)
        for paths in contents.files.values():
            assert all(p.startswith(("/usr/lib64/bpf/", "/usr/lib/bpf/")) for p in paths), paths
        cases.outcome(f"read, {len(contents.files)} packages with BPF files")

    run_hypothesis(metadata_reads_or_refuses, settings, seed)
    return cases


def _reference_snippets(data: bytes, needles: tuple[bytes, ...]) -> list[bytes]:
    """What the pre-filter must give, by the obvious (slow) method: every element around a hit, once."""
    found, end = [], 0
    while (stop := data.find(b"</package>", end)) >= 0:
        block = data[end : stop + len(b"</package>")]
        end = stop + len(b"</package>")
        start = block.rfind(b"<package ")
        if start >= 0 and any(n in block[start + len(b"<package ") : -len(b"</package>")] for n in needles):
            found.append(block[start:])
    return found


def fuzz_prefilter(work: Path, settings: hypothesis.settings, seed: int | None) -> Cases:
    """sources/repodata/prefilter.snippets on token soup cut into random chunks: the reference's elements
    (each once, in order), in time linear in the input (a hit far from any element is cheap); ``any_of``
    (one search for a common part) gives what one search per needle gives."""
    from rpm_bpf.sources.repodata.prefilter import any_of, snippets

    needle, other = b">/usr/lib64/bpf/", b">/var/cache/bpf/"
    tokens = [needle, other, b" " * 1000, b"<file", b"x", b"<", b">", b"/usr/lib64/bpf/", b"bpf/", b"/cache/bpf/"]
    inner = st.lists(st.sampled_from(tokens), max_size=8)
    element = inner.map(lambda parts: b"<package " + b"".join(parts) + b"</package>")
    junk = st.sampled_from([b"<package ", b"</package>", needle, b" " * 5000, b"<"])

    cases = Cases()

    @given(st.lists(st.one_of(element, junk), max_size=200), st.lists(st.integers(1, 5000), min_size=1, max_size=20))
    def elements_of_every_hit(parts: list[bytes], cuts: list[int]) -> None:
        cases()
        data = b"".join(parts)
        chunks, at = [], 0
        for cut in cuts * (len(data) // max(1, sum(cuts)) + 1):
            if at >= len(data):
                break
            chunks.append(data[at : at + cut])
            at += cut
        with must_not_block("snippets", 10):
            got = list(snippets(chunks, (needle,)))
            # one search for the common part finds what a search per needle finds
            both = list(snippets(chunks, (needle, other)))
            assert list(snippets(chunks, (), any_of((needle, other), b"bpf/"))) == both, both
        want = [e for e in _reference_snippets(data, (needle,)) if needle in e]
        # Nested openings (never in real metadata) may make an element start at an outer "<package ":
        # every element the reference finds lies inside one given, each given one holds a hit, in order.
        assert all(any(w in g for g in got) for w in want), (got, want)
        assert all(g.startswith(b"<package ") and g.endswith(b"</package>") and needle in g for g in got), got
        at = 0
        for g in got:  # in the order of the input, not overlapping
            at = data.find(g, at)
            assert at >= 0, (g, got)
            at += len(g)
        cases.outcome(f"{min(len(got), 3)}+ elements" if len(got) >= 3 else f"{len(got)} elements")

    run_hypothesis(elements_of_every_hit, settings, seed)
    return cases


def _seed_rpmdb(work: Path) -> Path:
    """A root whose rpm database (sqlite) holds the rpm target's real package, installed with rpm --justdb."""
    fixture = build_rpm_fixture(work)
    root = work / "db-seed"
    root.mkdir(parents=True, exist_ok=True)
    import subprocess

    for path in (fixture.path,):
        subprocess.run(
            ["rpm", "--root", str(root), "-i", "--justdb", "--nodeps", str(path)], check=True, capture_output=True
        )
    return root


def fuzz_rpmdb(work: Path, settings: hypothesis.settings, seed: int | None) -> Cases:
    """sources/rpmdb on a real database whose header blobs (or file bytes) were overwritten: every record
    is accounted for (a package, or an input error naming its record), or the database is refused
    (RpmdbError); nothing else, never a hang."""
    import sqlite3

    from rpm_bpf.findings import InputError
    from rpm_bpf.sources import rpmdb

    seed_root = _seed_rpmdb(work)
    dbdir = rpmdb.dbpath().lstrip("/")
    cases = Cases()

    @given(
        st.sampled_from(["blob", "file"]),
        st.tuples(*[st.tuples(ints(), patch_bytes())] * 3),
        st.integers(min_value=0, max_value=200),
    )
    def every_record_accounted(where: str, patches: tuple[tuple[int, bytes], ...], cut: int) -> None:
        cases()
        root = work / "db-case"
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(seed_root, root)
        db = root / dbdir / "rpmdb.sqlite"
        with sqlite3.connect(db) as conn:
            conn.execute("PRAGMA journal_mode=DELETE")
            records = [row[0] for row in conn.execute("SELECT hnum FROM Packages")]
            if where == "blob":
                for hnum, blob in conn.execute("SELECT hnum, blob FROM Packages").fetchall():
                    damaged = overwrite(bytes(blob), patches)
                    conn.execute(
                        "UPDATE Packages SET blob = ? WHERE hnum = ?", (damaged[: max(1, len(damaged) - cut)], hnum)
                    )
        for extra in ("rpmdb.sqlite-wal", "rpmdb.sqlite-shm"):
            (root / dbdir / extra).unlink(missing_ok=True)
        if where == "file":
            db.write_bytes(overwrite(db.read_bytes(), patches))
        errors: list[InputError] = []
        with must_not_block("rpmdb", 20):
            try:
                with rpmdb.snapshot(str(root)) as copy:
                    packages = list(rpmdb.installed(copy, (), errors))
            except rpmdb.RpmdbError as exc:
                cases.outcome(f"refused: {kind_of(str(exc).removeprefix(str(root) + ': '))}")
                return
        named = [e for e in errors if "rpm database" in e.input]
        assert len(packages) + len(named) >= len(records), (packages, errors, records)
        cases.outcome(f"{len(packages)} packages, {len(named)} records named")

    run_hypothesis(every_record_accounted, settings, seed)
    return cases


def fuzz_hdrsig(work: Path, settings: hypothesis.settings, seed: int | None) -> Cases:
    """sources/hdrsig on a real signed header as the rpm database stores it, overwritten here and there:
    the check always gives a verdict (never an exception, never a hang), and "verified" only when the
    signed region is byte for byte the signed one."""
    import subprocess

    import rpm

    from rpm_bpf.sources import bpfdirs, hdrsig
    from rpm_bpf.sources.rpmheader import HeaderError
    from rpm_bpf.sources.trust import load_keys
    from tests.support.signing import make_gpg_key, rpmsign

    fixture = build_rpm_fixture(work)
    _, key = make_gpg_key(work / "gpg", "fuzz")
    signed = Path(shutil.copy(fixture.path, work / "signed.rpm"))
    rpmsign(signed, work / "gpg", "fuzz")
    root = work / "sig-root"
    root.mkdir()
    subprocess.run(["rpm", "--root", str(root), "--import", str(key)], check=True, capture_output=True)
    subprocess.run(
        ["rpm", "--root", str(root), "-i", "--justdb", "--nodeps", str(signed)], check=True, capture_output=True
    )
    ts = rpm.TransactionSet(str(root))
    ts.setVSFlags(getattr(rpm, "_RPMVSF_NOSIGNATURES", 0))
    original = next(iter(ts.dbMatch("name", "fuzz-target"))).unload()
    ts.closeDB()
    region = hdrsig.signed_region(original)
    trust_keys = load_keys(str(key))
    ring = rpm.keyring()
    for k in trust_keys:
        ring.addKey(k.pubkey)
    checker = hdrsig.Checker(ring)
    assert checker.check(original, rpm.hdr(original)).verdict == hdrsig.VERIFIED
    cases = Cases()

    @given(
        st.lists(st.tuples(ints(), patch_bytes()), min_size=1, max_size=3).map(tuple),
        st.one_of(st.just(0), st.integers(min_value=1, max_value=64)),
    )
    def verdict_or_damage(patches: tuple[tuple[int, bytes], ...], cut: int) -> None:
        cases()
        blob = overwrite(original, patches)[: len(original) - cut]
        try:
            hdr = rpm.hdr(blob)
        except (rpm.error, TypeError, ValueError):
            cases.outcome("librpm refuses the header")
            return
        with must_not_block("hdrsig", 20):
            sig = checker.check(blob, hdr)
            if sig.verdict == hdrsig.VERIFIED:
                assert hdrsig.signed_region(blob) == region, patches
                with suppress(HeaderError):
                    hdrsig.signed_package(blob, bpfdirs.for_arch)
                hdrsig.file_signatures(hdr)
        cases.outcome(sig.verdict)

    try:
        run_hypothesis(verdict_or_damage, settings, seed)
    finally:
        checker.close()
    return cases


# ---------------------------------------------------------------------------
# lightskel: light skeletons (bpftool gen skeleton -L) in executables
# ---------------------------------------------------------------------------


def fuzz_lightskel(work: Path, settings: hypothesis.settings, seed: int | None) -> Cases:
    """lightskel.find never raises and names only byte ranges inside the file, on a real light-skeleton tool
    overwritten (in its loader and its data blob above all), cut and spliced; the intact tool is found."""
    from rpm_bpf.bpf import lightskel
    from rpm_bpf.samples import build as samples

    obj = samples.compile_bpf(samples.XDP_COUNTER_C, work / "counter.bpf.o")
    tool = samples.build_light_skeleton_loader(obj, work / "light" / "tool").read_bytes()
    (intact,) = lightskel.find(tool)
    assert {p.name for p in intact.object.programs} == {"xdp_count", "tc_pass"}
    hot = (intact.data_offset, intact.offset + intact.size)  # where mutations matter
    cases = Cases()

    @given(
        st.lists(st.tuples(st.integers(0, 1 << 20), patch_bytes()), max_size=6),
        st.booleans(),
        st.none() | st.integers(0, 1 << 20),
    )
    def finder_holds(patches: list[tuple[int, bytes]], in_hot: bool, cut: int | None) -> None:
        data = overwrite(tool, tuple(patches), *(hot if in_hot else (0, None)))
        if cut is not None:
            data = data[: cut % (len(data) + 1)]
        cases()
        found = lightskel.find(data)
        for skel in found:
            assert 0 <= skel.offset < skel.offset + skel.size <= len(data) and 0 <= skel.data_offset < len(data)
            assert all(p.section in lightskel.PROG_TYPES for p in skel.object.programs)
        cases.outcome(f"{len(found)} found, {sum(len(s.object.programs) for s in found)} programs")

    run_hypothesis(finder_holds, settings, seed)
    return cases


# ---------------------------------------------------------------------------
# core: CO-RE relocations (.BTF.ext) against a target BTF
# ---------------------------------------------------------------------------

# The kernel's types as a target BTF: laid out unlike the object's, so that every relocation changes.
CORE_TARGET_C = r"""
struct task_struct { int pad[5]; int pid; int tgid; unsigned int sched_remote_wakeup: 3;
                     unsigned int sched_reset_on_fork: 1; char comm[16]; };
enum pid_type { PIDTYPE_PID, PIDTYPE_TGID = 42, PIDTYPE_SID = 3 };
struct task_struct *keep_task;
enum pid_type keep_pid;
"""


class CoreTarget:
    """A target BTF for ``predict`` (what ``sources.kernelbtf.KernelBtf`` offers)."""

    modules = False

    def __init__(self, data: bytes) -> None:
        from rpm_bpf.bpf.btf import Btf, BtfError

        self.problem: str | None = None
        self.btf = None
        try:
            self.btf = Btf(data)
        except BtfError as exc:
            self.problem = str(exc)

    def types(self) -> object:
        return self.btf


def btf_section(obj: bytes) -> tuple[int, int]:
    """(offset, size) of an object's .BTF section in the file."""
    import io

    from elftools.elf.elffile import ELFFile

    sec = ELFFile(io.BytesIO(obj)).get_section_by_name(".BTF")
    return sec["sh_offset"], sec["sh_size"]


def fuzz_core(work: Path, settings: hypothesis.settings, seed: int | None) -> Cases:
    """predict with a target BTF raises nothing but PredictionError, on the CO-RE object and the target BTF
    overwritten and cut; a relocation it cannot compute is a caveat, never an exception; the intact pair
    relocates without one."""
    import io

    from elftools.elf.elffile import ELFFile

    from rpm_bpf.bpf.btf import Btf, BtfError
    from rpm_bpf.bpf.progtag import PredictionError, predict
    from rpm_bpf.samples import build as samples
    from tests.support.programs import CORE_RICH_C

    obj = samples.compile_bpf(CORE_RICH_C, work / "rich.bpf.o").read_bytes()
    target_obj = samples.compile_bpf(CORE_TARGET_C, work / "target.bpf.o").read_bytes()
    at, size = btf_section(target_obj)
    target = target_obj[at : at + size]
    intact = predict(obj, CoreTarget(target))
    assert len(intact) == 2 and not any(p.caveats for p in intact), intact
    ext = ELFFile(io.BytesIO(obj)).get_section_by_name(".BTF.ext")
    btf_at, btf_size = btf_section(obj)
    hot = (min(btf_at, ext["sh_offset"]), max(btf_at + btf_size, ext["sh_offset"] + ext["sh_size"]))
    cases = Cases()

    @given(
        st.lists(st.tuples(st.integers(0, 1 << 16), patch_bytes()), max_size=4),
        st.booleans(),
        st.lists(st.tuples(st.integers(0, 1 << 16), patch_bytes()), max_size=4),
        st.none() | st.integers(0, 1 << 16),
    )
    def relocation_holds(
        patches: list[tuple[int, bytes]], in_hot: bool, target_patches: list[tuple[int, bytes]], cut: int | None
    ) -> None:
        data = overwrite(obj, tuple(patches), *(hot if in_hot else (0, None)))
        blob = overwrite(target, tuple(target_patches)) if target_patches else target
        if cut is not None:
            blob = blob[: cut % (len(blob) + 1)]
        cases()
        with suppress(BtfError):
            parsed = Btf(blob)
            for tid in range(1, min(parsed.count, 64)):
                with suppress(BtfError):
                    parsed.resolve_size(tid)
            parsed.by_essential_name("task_struct")
        with must_not_block("core", 20):
            try:
                found = predict(data, CoreTarget(blob))
            except PredictionError as exc:
                cases.outcome(f"refused: {kind_of(str(exc))}")
                return
        caveats = [c for p in found for c in p.caveats]
        cases.outcome(f"{len(found)} programs, {'caveats' if caveats else 'exact'}")

    run_hypothesis(relocation_holds, settings, seed)
    return cases


# ---------------------------------------------------------------------------
# archive: ar archives (static libraries, .rlib) whose members may be BPF objects
# ---------------------------------------------------------------------------


def fuzz_archive(work: Path, settings: hypothesis.settings, seed: int | None) -> Cases:
    """archive.members never raises and names only byte ranges inside the archive; bpf_members never raises;
    on the archives binutils' ar wrote (GNU long names) and llvm-ar wrote in BSD format, every member ar t
    lists is found, and the BPF ones parse."""
    from rpm_bpf.bpf import archive
    from rpm_bpf.samples import build as samples

    obj = samples.compile_bpf(samples.XDP_COUNTER_C, work / "counter.bpf.o")
    long_name = work / "a_member_name_longer_than_sixteen_bytes.bpf.o"
    shutil.copy(obj, long_name)
    odd = work / "odd.txt"
    odd.write_bytes(b"x" * 7)  # an odd size: the next member starts after a padding byte
    bases = []
    for tool, fmt in (("ar", []), ("llvm-ar", ["--format=bsd"])):
        if shutil.which(tool) is None:
            continue
        out = work / f"{tool}.a"
        subprocess.run([tool, "rc", *fmt, str(out), str(obj), str(odd), str(long_name)], check=True)
        listed = subprocess.run([tool, "t", str(out)], capture_output=True, text=True, check=True).stdout.split()
        bases.append((out.read_bytes(), listed))
    assert bases, "neither ar nor llvm-ar is installed"
    for data, listed in bases:  # the archives as written: every member, by name, and the BPF ones parse
        assert [m.name for m in archive.members(data)] == listed, listed
        assert [m.name for m, _ in archive.bpf_members(data)] == [listed[0], listed[2]]
    cases = Cases()

    @given(
        st.sampled_from(bases),
        st.lists(st.tuples(st.integers(0, 1 << 20), patch_bytes()), max_size=4),
        st.none() | st.integers(0, 1 << 20),
    )
    def archive_reader_holds(base: tuple[bytes, list[str]], patches: list[tuple[int, bytes]], cut: int | None) -> None:
        data = overwrite(base[0], tuple(patches))
        if cut is not None:
            data = data[: cut % (len(data) + 1)]
        cases()
        found = list(archive.members(data))
        assert all(m.offset > 0 and m.size >= 0 and m.offset + m.size <= len(data) for m in found)
        bpf = archive.bpf_members(data)
        cases.outcome(f"{len(found)} members, {len(bpf)} BPF")

    run_hypothesis(archive_reader_holds, settings, seed)
    return cases


# ---------------------------------------------------------------------------
# lskelsig: the signature of a signed light skeleton (bpftool gen skeleton -S)
# ---------------------------------------------------------------------------


def fuzz_lskelsig(work: Path, settings: hypothesis.settings, seed: int | None) -> Cases:
    """lskelsig.find never raises and names only bytes inside the file, on a real loader with its hash and a
    CMS signature of bpftool's shape (made by openssl) overwritten, cut and spliced; the intact one is found."""
    import hashlib

    from rpm_bpf.bpf import lightskel, lskelsig
    from rpm_bpf.samples import build as samples
    from tests.support import cmssign

    obj = samples.compile_bpf(samples.XDP_COUNTER_C, work / "counter.bpf.o")
    tool = samples.build_light_skeleton_loader(obj, work / "light" / "tool").read_bytes()
    (skel,) = lightskel.find(tool)
    loader = tool[skel.offset : skel.offset + skel.size]
    signature, _skid, _cert = cmssign.sign(loader, work / "sign")
    pad = bytes(-(len(loader) + 1) % 8)
    data = loader + b"\0" + pad + hashlib.sha256(loader).digest() + b"\0" + bytes(7) + signature + b"\0"
    intact = lskelsig.find(data, 0, len(loader))
    assert intact is not None and intact.key_id
    hot = (len(loader), len(data))  # the hash and the signature
    cases = Cases()

    @given(
        st.lists(st.tuples(st.integers(0, 1 << 12), patch_bytes()), max_size=6),
        st.booleans(),
        st.none() | st.integers(0, 1 << 14),
    )
    def finder_holds(patches: list[tuple[int, bytes]], in_hot: bool, cut: int | None) -> None:
        mutated = overwrite(data, tuple(patches), *(hot if in_hot else (0, None)))
        if cut is not None:
            mutated = mutated[: cut % (len(mutated) + 1)]
        cases()
        found = lskelsig.find(mutated, 0, min(len(loader), len(mutated)))
        if found is not None:
            assert 0 <= found.offset < found.offset + found.size <= len(mutated)
            der = mutated[found.offset : found.offset + found.size]
            assert der[0] == 0x30 and der.find(bytes.fromhex("06092a864886f70d010702")) in (3, 4), der[:16].hex()
            assert hashlib.sha256(mutated[: min(len(loader), len(mutated))]).digest() in mutated  # bound to it
        cases.outcome("signed" if found is not None else "none")

    run_hypothesis(finder_holds, settings, seed)
    return cases


# ---------------------------------------------------------------------------

TARGETS: dict[str, Callable[[Path, hypothesis.settings, int | None], Cases]] = {
    "rpm": fuzz_rpm,
    "elf": fuzz_elf,
    "policy": fuzz_policy,
    "rootfs": fuzz_rootfs,
    "repodata": fuzz_repodata,
    "prefilter": fuzz_prefilter,
    "rpmdb": fuzz_rpmdb,
    "hdrsig": fuzz_hdrsig,
    "archive": fuzz_archive,
    "lightskel": fuzz_lightskel,
    "lskelsig": fuzz_lskelsig,
    "core": fuzz_core,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz.targets", description=__doc__.split("\n\n")[0])
    parser.add_argument("target", choices=sorted(TARGETS))
    parser.add_argument("--examples", type=int, default=100, help="hypothesis max_examples")
    parser.add_argument("--seed", type=int, help="random run reproducible with this seed (default: derandomized)")
    args = parser.parse_args(argv)
    faulthandler.enable()  # a segfault in librpm prints the Python stack before the signal kills us
    work = Path(tempfile.mkdtemp(prefix=f"rpm-bpf-fuzz-{args.target}-"))
    print(f"fuzz {args.target}: work dir {work} (kept if a signal kills the process)", file=sys.stderr)
    try:
        cases = TARGETS[args.target](work, fuzz_settings(args.examples, args.seed), args.seed)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"fuzz {args.target} outcomes: {cases.summary()}", file=sys.stderr)
    print(f"{args.target}: {cases.count} cases, 0 failures")
    return 0


if __name__ == "__main__":
    sys.exit(main())
