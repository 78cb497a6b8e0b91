"""``rpm-bpf repo-report``: the BPF inventory of whole repositories."""

from __future__ import annotations

import argparse

import rpm_bpf.cli.options as options


def cmd_repo_report(args: argparse.Namespace) -> int:
    from rpm_bpf.flows import inventory, repositories
    from rpm_bpf.report import inventory as formats
    from rpm_bpf.report import sbom
    from rpm_bpf.report.formats import finding_dict

    policy = options.load_policy(args)
    repos, errors = repositories.read_all(args.repos, inventory=True)
    for problem in errors:
        options.error(f"{problem.input}: {problem.message}")
    doc, findings = inventory.build(repos, policy)
    doc["findings"] = [finding_dict(f) for f in findings]
    doc["input_errors"] = [{"input": e.input, "message": e.message} for e in errors]
    if args.format in sbom.FORMATS:
        subject = "the repositories " + ", ".join(r.label for r in repos)
        try:
            text = sbom.render(args.format, formats.sbom_items(repos), subject, system=False)
        except sbom.SbomUnavailable as exc:
            options.error(str(exc))
            return options.EXIT_USAGE
    else:
        render = {"text": formats.render_text, "json": formats.render_json, "html": formats.render_html}
        text = render[args.format](doc)
    options.emit(text, args.output)
    return options.EXIT_USAGE if errors else options.EXIT_OK


def configure(report: argparse.ArgumentParser) -> None:
    report.description = (
        "An inventory of whole repositories or a compose, from their metadata only: which packages ship BPF "
        "objects and where, which provide bpf(NAME), name clashes, files that look like BPF objects outside the "
        "BPF directories (by name: metadata has no file types), and packages using a BPF directory without "
        "owning or requiring it. Exit 0, or 2 when a repository cannot be read (the others are still reported)."
    )
    report.add_argument("repos", nargs="+", metavar="REPO", help="a path or an http(s) URL with repodata/")
    options.add_format(
        report, ("text", "json", "html", "cyclonedx", "spdx"), "report format; cyclonedx and spdx are SBOMs (JSON)"
    )
    options.add_output(report)
    options.add_policy(report, "policy file for [bpfdir] owner-provides, severities and waivers")
    report.set_defaults(func=cmd_repo_report)
