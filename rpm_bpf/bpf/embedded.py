"""The embedded-object search every reader uses: BPF ELF objects inside a file (elf.py), then light
skeletons (lightskel.py), in file order."""

from __future__ import annotations

from rpm_bpf.bpf import elf, lightskel
from rpm_bpf.bpf.elf import EmbeddedObject

LIGHT_SKELETON = "light skeleton"  # the elf_type of a light skeleton's BpfObject


def find_all(data: bytes, limit: int = 64) -> list[EmbeddedObject]:
    """Every BPF object ``data`` embeds: ELF images (libbpf skeletons, Go, Rust) and light skeletons, whose
    ``offset``/``object.size`` are the loader program's bytes."""
    found = elf.find_embedded(data, limit)
    found += [EmbeddedObject(s.offset, s.object) for s in lightskel.find(data)[: max(0, limit - len(found))]]
    return sorted(found, key=lambda e: e.offset)


def is_light_skeleton(found: EmbeddedObject) -> bool:
    return found.object.elf_type == LIGHT_SKELETON
