"""``rpm-bpf inspect``'s text: the description of flows/inspect.py for people; every name escaped."""

from __future__ import annotations

from typing import Any

from rpm_bpf.report.safetext import escape as e


def _signature(sig: dict[str, Any] | None) -> str:
    if sig is None:
        return "none (unsigned loader)"
    return (
        f"CMS, {e(sig['digest'])}, key {e(sig['key_id'] or '?')} ({e(sig['key_id_kind'])}), "
        f"{sig['size']} bytes at offset {sig['offset']}"
    )


def render_text(info: dict[str, Any]) -> str:
    """The human description; every name from the object is escaped (see safetext)."""

    def describe(obj: dict[str, Any], indent: str) -> list[str]:
        if obj.get("light_skeleton"):
            lines = [
                f"{indent}light skeleton (bpftool gen skeleton -L): a {obj['size']}-byte loader program and its data",
                f"{indent}license: {e(obj['license']) if obj['license'] is not None else '(none)'}",
                f"{indent}signature: {_signature(obj.get('signature'))}",
                f"{indent}programs ({len(obj['programs'])}, by type):",
            ]
        else:
            lines = [
                f"{indent}ELF{obj['elf_class']} {obj['endianness']}-endian {obj['elf_type']}, {obj['size']} bytes",
                f"{indent}license: {e(obj['license']) if obj['license'] is not None else '(none)'}",
                f"{indent}BTF: {'yes' if obj['btf'] else 'no'}, BTF.ext: {'yes' if obj['btf_ext'] else 'no'}, "
                f"debug info: {'yes' if obj['debug_info'] else 'no'}",
                f"{indent}programs ({len(obj['programs'])}):",
            ]
        lines += [f"{indent}  {e(p['section'])}  {e(p['name'])}" for p in obj["programs"]]
        lines.append(f"{indent}maps ({len(obj['maps'])}): {', '.join(map(e, obj['maps'])) or '-'}")
        for p in obj.get("kernel", []):
            note = f"; {'; '.join(map(e, p['caveats']))}" if p["caveats"] else ""
            lines.append(
                f"{indent}as loaded: {e(p['kernel_name'])} ({p['type']}), {p['insns']} insns, "
                f"tag {p['tag']} (SHA-1 tag {p['tag_sha1']}){note}"
            )
        return lines

    if info["kind"] == "object":
        return "\n".join([f"{e(info['path'])}: BPF object", *describe(info, "  ")]) + "\n"
    out = [f"{e(info['path'])}: ELF file with {len(info['embedded'])} embedded BPF object(s)"]
    for emb in info["embedded"]:
        out.append(f"  at offset {emb['offset']}:")
        out += describe(emb, "    ")
    return "\n".join(out) + "\n"
