"""SBOMs of BPF objects: CycloneDX 1.6 JSON and SPDX 2.3 JSON, through their own maintained libraries.

One component (CycloneDX) or package element (SPDX) per BPF object: its
name (the path, ``PATH@OFFSET`` for an object embedded in an ELF file), the
version of the RPM it came from, that RPM's purl (``pkg:rpm/...``), the
SHA-256 of the object's bytes where they were read (``list``; repository
metadata carries no file digests, so ``repo-report``'s objects have none), and
its programs and predicted kernel tags. The package relation: in CycloneDX
each object is a nested component of its RPM's component (an assembly); in
SPDX the RPM's package element CONTAINS each object's.

Names, versions and paths come from packages, so they may be hostile: the
libraries escape them as JSON strings, nothing here builds JSON by hand.
cyclonedx-python-lib and spdx-tools are optional dependencies (the ``sbom``
extra): without them these formats say so, as a clear error.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import uuid
from collections import namedtuple
from collections.abc import Iterable
from typing import Any

from rpm_bpf import __version__
from rpm_bpf.errors import RpmBpfError
from rpm_bpf.model import PackageRef

FORMATS = ("cyclonedx", "spdx")
_PROP = "rpm-bpf"
_SAFE_ID = re.compile(r"[^A-Za-z0-9.-]")


class SbomUnavailable(RpmBpfError):
    """The library of a requested SBOM format is not installed."""


class Item(
    namedtuple(
        "Item",
        ("package", "path", "offset", "size", "sha256", "programs", "license", "bpf_name", "member"),
        defaults=(None,),
    )
):
    """One BPF object for an SBOM; ``programs``: dicts with name, section, type and (when predicted) tag, tag_sha1;
    ``member``: its name in the ar archive ``path``."""

    __slots__ = ()
    package: PackageRef
    path: str
    offset: int | None
    size: int | None
    sha256: str | None
    programs: tuple[dict[str, Any], ...]
    license: str | None
    bpf_name: str | None
    member: str | None

    @property
    def name(self) -> str:
        """The path; ``ARCHIVE(MEMBER)`` as binutils writes an archive member; ``PATH@OFFSET`` when embedded."""
        if self.member is not None:
            return f"{self.path}({self.member})"
        return self.path if self.offset is None else f"{self.path}@{self.offset}"


class Distro(namedtuple("Distro", ("id", "version_id"))):
    """The purl namespace and ``distro`` qualifier: the root's os-release ID and VERSION_ID ("" when unknown)."""

    __slots__ = ()
    id: str
    version_id: str


def _text(value: str) -> str:
    """A name as UTF-8 can carry it: a byte that was not UTF-8 (kept by surrogateescape) written as ``\\xNN``."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _clean(item: Item) -> Item:
    return item._replace(
        package=PackageRef(*(_text(v) if isinstance(v, str) else v for v in item.package)),
        path=_text(item.path),
        programs=tuple({k: _text(v) if isinstance(v, str) else v for k, v in p.items()} for p in item.programs),
        license=None if item.license is None else _text(item.license),
        bpf_name=None if item.bpf_name is None else _text(item.bpf_name),
        member=None if item.member is None else _text(item.member),
    )


def purl(ref: PackageRef, distro: Distro | None = None) -> Any:
    """The purl of an RPM, as the purl specification writes rpm ones (version-release, arch and epoch qualifiers)."""
    from packageurl import PackageURL

    qualifiers = {"arch": ref.arch}
    if ref.epoch:
        qualifiers["epoch"] = str(ref.epoch)
    if distro and distro.id and distro.version_id:
        qualifiers["distro"] = f"{distro.id}-{distro.version_id}"
    return PackageURL(
        type="rpm",
        namespace=distro.id if distro and distro.id else None,
        name=ref.name,
        version=f"{ref.version}-{ref.release}",
        qualifiers=qualifiers,
    )


def _grouped(items: Iterable[Item]) -> dict[PackageRef, list[Item]]:
    groups: dict[PackageRef, list[Item]] = {}
    for item in map(_clean, items):
        groups.setdefault(item.package, []).append(item)
    return dict(sorted(groups.items(), key=lambda kv: kv[0].nevra))


def _program_text(p: dict[str, Any]) -> str:
    text = f"{p['name']} (section {p['section']}, type {p.get('type') or 'unknown'}"
    if p.get("tag"):
        text += f", tag {p['tag']}, SHA-1 tag {p['tag_sha1']}"
    return text + ")"


def cyclonedx(items: Iterable[Item], subject: str, distro: Distro | None = None, system: bool = True) -> str:
    """A CycloneDX 1.6 JSON document of ``items``; ``subject`` names what was inventoried: an installed system
    (``system``), or repositories. It is the BOM's own component (metadata.component)."""
    try:
        from cyclonedx.model import HashAlgorithm, HashType, Property
        from cyclonedx.model.bom import Bom
        from cyclonedx.model.component import Component, ComponentType
        from cyclonedx.model.license import DisjunctiveLicense
        from cyclonedx.output.json import JsonV1Dot6
    except ImportError as exc:
        raise SbomUnavailable(f"CycloneDX output needs cyclonedx-python-lib (not installed: {exc.name})") from None
    bom = Bom()
    bom.metadata.component = Component(
        name=_text(subject), type=ComponentType.OPERATING_SYSTEM if system else ComponentType.DATA, bom_ref="subject"
    )
    bom.metadata.properties.add(Property(name=f"{_PROP}:version", value=__version__))
    packages: list[Component] = []
    for ref, objects in _grouped(items).items():
        package_purl = purl(ref, distro)
        parent = Component(
            name=ref.name,
            version=ref.evr,
            type=ComponentType.LIBRARY,
            purl=package_purl,
            bom_ref=f"rpm:{ref.nevra}",
            properties=[Property(name=f"{_PROP}:nevra", value=ref.nevra)],
        )
        for index, item in enumerate(objects):
            props = [Property(name=f"{_PROP}:path", value=item.path)]
            if item.offset is not None:
                props.append(Property(name=f"{_PROP}:offset", value=str(item.offset)))
            if item.member is not None:
                props.append(Property(name=f"{_PROP}:archive-member", value=item.member))
            if item.bpf_name is not None:
                props.append(Property(name=f"{_PROP}:bpf-name", value=item.bpf_name))
            props += [Property(name=f"{_PROP}:program", value=_program_text(p)) for p in item.programs]
            parent.components.add(
                Component(
                    name=item.name,
                    version=ref.evr,
                    type=ComponentType.FILE,
                    purl=package_purl,
                    bom_ref=f"bpf:{ref.nevra}:{index}:{item.name}",
                    hashes=[HashType(alg=HashAlgorithm.SHA_256, content=item.sha256)] if item.sha256 else [],
                    licenses=[DisjunctiveLicense(name=item.license)] if item.license else [],
                    properties=props,
                )
            )
        bom.components.add(parent)
        packages.append(parent)
    bom.register_dependency(bom.metadata.component, packages)  # what the system (or repositories) holds
    return str(JsonV1Dot6(bom).output_as_string(indent=2)) + "\n"


def _spdx_id(kind: str, index: int, text: str) -> str:
    return f"SPDXRef-{kind}-{index}-{_SAFE_ID.sub('-', text)[:60]}"


def spdx(items: Iterable[Item], subject: str, distro: Distro | None = None, system: bool = True) -> str:
    """An SPDX 2.3 JSON document of ``items`` (validated by spdx-tools as it is written). The document DESCRIBES
    ``subject`` (an installed system, or repositories), which CONTAINS each RPM."""
    try:
        from spdx_tools.spdx.model import (
            Actor,
            ActorType,
            Checksum,
            ChecksumAlgorithm,
            CreationInfo,
            Document,
            ExternalPackageRef,
            ExternalPackageRefCategory,
            Package,
            PackagePurpose,
            Relationship,
            RelationshipType,
            SpdxNoAssertion,
        )
        from spdx_tools.spdx.writer.json.json_writer import write_document_to_stream
    except ImportError as exc:
        raise SbomUnavailable(f"SPDX output needs spdx-tools (not installed: {exc.name})") from None
    info = CreationInfo(
        spdx_version="SPDX-2.3",
        spdx_id="SPDXRef-DOCUMENT",
        name=f"BPF objects of {_text(subject)}",
        # A URI unique to this document, as SPDX asks; ".invalid" is reserved: it names no host.
        document_namespace=f"https://rpm-bpf.invalid/spdxdocs/{uuid.uuid4()}",
        creators=[Actor(ActorType.TOOL, f"rpm-bpf-{__version__}")],
        created=dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None),
    )
    packages = [
        Package(
            spdx_id="SPDXRef-Subject",
            name=_text(subject),
            download_location=SpdxNoAssertion(),
            files_analyzed=False,
            primary_package_purpose=PackagePurpose.OPERATING_SYSTEM if system else PackagePurpose.OTHER,
        )
    ]
    relationships = [Relationship("SPDXRef-DOCUMENT", RelationshipType.DESCRIBES, "SPDXRef-Subject")]
    for p_index, (ref, objects) in enumerate(_grouped(items).items()):
        rpm_id = _spdx_id("RPM", p_index, ref.nevra)
        # the RPM's purl, on its element and on each of its objects'
        rpm_purl = ExternalPackageRef(ExternalPackageRefCategory.PACKAGE_MANAGER, "purl", purl(ref, distro).to_string())
        packages.append(
            Package(
                spdx_id=rpm_id,
                name=ref.name,
                download_location=SpdxNoAssertion(),
                version=ref.evr,
                files_analyzed=False,
                primary_package_purpose=PackagePurpose.INSTALL,
                external_references=[rpm_purl],
            )
        )
        relationships.append(Relationship("SPDXRef-Subject", RelationshipType.CONTAINS, rpm_id))
        for o_index, item in enumerate(objects):
            obj_id = _spdx_id("BPF", p_index * 100000 + o_index, item.name)
            where = "" if item.offset is None else f" embedded at offset {item.offset} ({item.size} bytes)"
            comment = f"BPF object {item.path}{where}" + "".join(f"; program {_program_text(p)}" for p in item.programs)
            packages.append(
                Package(
                    spdx_id=obj_id,
                    name=item.name,
                    download_location=SpdxNoAssertion(),
                    version=ref.evr,
                    file_name=item.path,
                    files_analyzed=False,
                    primary_package_purpose=PackagePurpose.FILE if item.offset is None else PackagePurpose.OTHER,
                    checksums=[Checksum(ChecksumAlgorithm.SHA256, item.sha256)] if item.sha256 else [],
                    external_references=[rpm_purl],
                    license_comment=f"the object's license string: {item.license}" if item.license else None,
                    comment=comment,
                )
            )
            relationships.append(Relationship(rpm_id, RelationshipType.CONTAINS, obj_id))
    document = Document(creation_info=info, packages=packages, relationships=relationships)
    stream = io.StringIO()
    write_document_to_stream(document, stream, validate=True)
    return stream.getvalue() + "\n"


def render(fmt: str, items: Iterable[Item], subject: str, distro: Distro | None = None, system: bool = True) -> str:
    return (cyclonedx if fmt == "cyclonedx" else spdx)(items, subject, distro, system)
