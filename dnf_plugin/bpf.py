# rpm-bpf DNF 4 plugin: BPF object policy at install time, and `dnf bpf-verify`.
#
# A thin adapter: every rule, the conflict detection and the verification
# come from the rpm_bpf engine. Configured by /etc/dnf/plugins/bpf.conf.

"""DNF plugin enforcing the BPF object convention on transactions."""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback

import dnf
import dnf.cli
import dnf.exceptions

# Not `from typing import TYPE_CHECKING`: dnf loads this module on every command, and typing costs it
# a millisecond or two; mypy treats a constant of this name the same way.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from rpm_bpf.flows.transaction import TransactionResult
    from rpm_bpf.rules.policy import Policy

logger = logging.getLogger("dnf.plugin.bpf")

MODES = ("enforce", "warn", "off")
MSG_INTERNAL = "rpm-bpf: internal error of the BPF plugin: {error}"
MSG_INTERNAL_IGNORED = "rpm-bpf: the transaction goes on without the BPF policy check (fail_on_error=0)"
MSG_AFTER = "rpm-bpf: after the transaction: {line}"
MSG_BAD_MODE = "rpm-bpf: bpf.conf: mode {mode!r} is not one of enforce, warn, off; using enforce"
MSG_TIMING = "rpm-bpf: {hook} took {seconds:.4f} s"
MSG_POKED = "rpm-bpf: asked rpm-bpf admission (pid {pid}) to rebuild its allowlist"
CMD_SUMMARY = "verify installed BPF objects against the rpm database"
CMD_FAILED = "rpm-bpf: {count} BPF object problem(s) found"
# Test hook: makes the plugin fail on purpose, to check that a crash cannot break a transaction.
CRASH_ENV = "RPM_BPF_DNF_TEST_CRASH"


class _Settings:
    """The [main] section of bpf.conf."""

    def __init__(self, parser: Any) -> None:
        def get(option: str, default: str) -> str:
            if parser.has_section("main") and parser.has_option("main", option):
                return str(parser.getValue("main", option)).strip()
            return default

        self.mode = get("mode", "enforce").lower()
        if self.mode not in MODES:
            logger.warning(MSG_BAD_MODE.format(mode=self.mode))
            self.mode = "enforce"
        self.fail_on_error = get("fail_on_error", "0").lower() in ("1", "yes", "true", "on")
        self.verify_after = get("verify_after", "1").lower() in ("1", "yes", "true", "on")
        self.policy_files = [p for p in get("policy", "").split() if p]
        # Trust anchors for the signature checks (with the policy's [trust]; none: the host's repository keys).
        self.trusted_keys = [p for p in get("trusted_keys", "").split() if p]
        self.trusted_certs = [p for p in get("trusted_certs", "").split() if p]
        # After a transaction, a running rpm-bpf admission rebuilds its allowlist (empty: never poked).
        self.admission_pid_file = get("admission_pid_file", "/run/rpm-bpf/admission.pid")


class BPF(dnf.Plugin):  # type: ignore[misc]  # dnf ships no type information
    name = "bpf"

    def __init__(self, base: Any, cli: Any) -> None:
        super().__init__(base, cli)
        self.settings: _Settings | None = None
        self._policy: Policy | None = None
        self._bpf_names: set[str] | None = None  # incoming packages with BPF files (None: not checked)
        if cli is not None:
            cli.register_command(BpfVerifyCommand)

    def config(self) -> None:
        self.settings = _Settings(self.read_config(self.base.conf))

    # --- helpers -----------------------------------------------------------

    def _root(self) -> str:
        return self.base.conf.installroot or "/"

    def _conf(self) -> _Settings:
        assert self.settings is not None  # config() ran: dnf calls it before any hook
        return self.settings

    def policy(self) -> Policy:
        if self._policy is None:
            from rpm_bpf.rules.policy import SYSTEM_POLICY, Policy

            self._policy = Policy.load(self._conf().policy_files, system=SYSTEM_POLICY)
        return self._policy

    def _guarded(self, work: Callable[[], None]) -> None:
        """Run ``work``; an internal error is loud and, by default, not fatal."""
        started = time.perf_counter()
        try:
            if os.environ.get(CRASH_ENV):
                raise RuntimeError(f"crash requested through {CRASH_ENV}")
            work()
        except dnf.exceptions.Error:
            raise
        except Exception as exc:  # the plugin's own failure, not a policy finding
            logger.critical(MSG_INTERNAL.format(error=exc))
            logger.debug("".join(traceback.format_exception(*sys.exc_info())))
            if self._conf().fail_on_error:
                raise dnf.exceptions.Error(MSG_INTERNAL.format(error=exc)) from None
            logger.critical(MSG_INTERNAL_IGNORED)
        finally:
            # In dnf.log (debug level): what the plugin costs a transaction.
            logger.debug(MSG_TIMING.format(hook=work.__name__.lstrip("_"), seconds=time.perf_counter() - started))

    # --- hooks -------------------------------------------------------------

    def resolved(self) -> None:
        """Before download: clashes of bpf(NAME) provides, from repository metadata alone."""
        if self.settings is None or self.settings.mode == "off" or not self.base.transaction:
            return
        self._guarded(self._check_provides)

    def pre_transaction(self) -> None:
        if self.settings is None or self.settings.mode == "off" or not self.base.transaction:
            return
        self._guarded(self._check_incoming)

    def transaction(self) -> None:
        if self.settings is None:
            return
        if self.settings.admission_pid_file:
            self._guarded(self._poke_admission)  # whatever the mode: the allowlist follows the database
        if self.settings.mode == "off" or not self.settings.verify_after:
            return
        self._guarded(self._verify_installed)

    def _poke_admission(self) -> None:
        from rpm_bpf.flows.admission import poke

        assert self.settings is not None
        pid = poke(self.settings.admission_pid_file)
        if pid is not None:
            logger.debug(MSG_POKED.format(pid=pid))

    def _check_provides(self) -> None:
        from rpm_bpf.model import BPF_CAPABILITY_PREFIXES

        install_set = self.base.transaction.install_set
        # The cheap test first: most transactions carry no bpf(), bpf-cache() or bpf-runtime() provides at all.
        offered = [
            (p, provides)
            for p in install_set
            if (provides := tuple(s for s in map(str, p.provides) if s.startswith(BPF_CAPABILITY_PREFIXES)))
        ]
        if not offered:
            return
        from rpm_bpf.flows.transaction import check_provides
        from rpm_bpf.model import PackageRef
        from rpm_bpf.sources.request import Candidate

        candidates = [
            Candidate(PackageRef(p.name, p.epoch or None, p.version, p.release, p.arch, p.reponame), provides)
            for p, provides in offered
        ]
        leaving = {(p.name, p.evr, p.arch) for p in self.base.transaction.remove_set}
        self._act(check_provides(self._root(), candidates, leaving, self.policy), notes=False)

    def _act(self, result: TransactionResult, notes: bool = True) -> None:
        """Refuse (enforce) or warn as the engine's answer says."""
        from rpm_bpf.report.transaction import response

        answer = response(result, self._conf().mode)
        if notes:
            for line in answer["notes"]:
                logger.info(line)
        if answer["verdict"] == "refuse":
            raise dnf.exceptions.Error(answer["message"])
        if answer["verdict"] == "warn":
            logger.warning(answer["message"])

    def _check_incoming(self) -> None:
        from rpm_bpf.flows.transaction import check_transaction
        from rpm_bpf.sources.request import Incoming

        incoming = [Incoming(p.localPkg(), str(p)) for p in self.base.transaction.install_set if p.localPkg()]
        leaving = {(p.name, p.evr, p.arch) for p in self.base.transaction.remove_set}
        result = check_transaction(self._root(), incoming, leaving, self.policy)
        self._bpf_names = result.bpf_names
        self._act(result)

    def _verify_installed(self) -> None:
        names = sorted(
            self._bpf_names if self._bpf_names is not None else {p.name for p in self.base.transaction.install_set}
        )
        if not names:
            return  # no package of this transaction ships anything BPF-related
        from rpm_bpf.flows.verify import verify
        from rpm_bpf.report.formats import finding_line, input_error_line

        # The database dnf has just written: read in place (a private copy is for verify proper).
        conf = self._conf()
        result = verify(
            self._root(),
            self.policy(),
            names,
            private_db=False,
            trusted_keys=conf.trusted_keys,
            trusted_certs=conf.trusted_certs,
        )
        for note in result.notes:
            logger.debug(MSG_AFTER.format(line=f"rpm-bpf: {note}"))
        for finding in result.findings:
            if not finding.waived:
                logger.warning(MSG_AFTER.format(line=finding_line(finding)))
        for err in result.errors:
            logger.warning(MSG_AFTER.format(line=input_error_line(err)))


class BpfVerifyCommand(dnf.cli.Command):  # type: ignore[misc]
    """dnf bpf-verify [--json] [--loaded] [PACKAGE...]"""

    aliases = ("bpf-verify",)
    summary = CMD_SUMMARY

    @staticmethod
    def set_argparser(parser: Any) -> None:
        parser.add_argument("--json", action="store_true", help="print the rpm-bpf JSON report")
        parser.add_argument(
            "--loaded",
            action="store_true",
            help="also check the loaded BPF programs (one no installed package ships is reported)",
        )
        parser.add_argument(
            "--trusted-keys",
            action="append",
            metavar="FILE",
            help="armored OpenPGP key file (repeatable): packages with BPF code must be signed by one of these keys",
        )
        parser.add_argument(
            "--trusted-cert",
            action="append",
            metavar="FILE",
            help="PEM certificate file (repeatable) for the BPF objects' fs-verity and IMA file signatures",
        )
        parser.add_argument("package", nargs="*", metavar="PACKAGE", help="package names (default: all)")

    def configure(self) -> None:
        self.cli.demands.sack_activation = False
        self.cli.demands.available_repos = False

    def run(self) -> None:
        from rpm_bpf.errors import RpmBpfError
        from rpm_bpf.flows.verify import verify
        from rpm_bpf.report.formats import Report, input_error_line, render_json, render_text
        from rpm_bpf.report.safetext import escape
        from rpm_bpf.rules.policy import SYSTEM_POLICY, Policy

        root = self.base.conf.installroot or "/"
        try:
            policy = Policy.load(system=SYSTEM_POLICY)
            result = verify(
                root,
                policy,
                self.opts.package,
                loaded=self.opts.loaded,
                trusted_keys=self.opts.trusted_keys or [],
                trusted_certs=self.opts.trusted_cert or [],
            )
        except RpmBpfError as exc:
            raise dnf.exceptions.Error(escape(str(exc))) from None
        for note in result.notes:
            print(f"rpm-bpf: {escape(note)}", file=sys.stderr)
        report = Report("verify", result.packages, result.findings, result.errors, result.signatures)
        if self.opts.json:
            sys.stdout.write(render_json(report))
        else:
            for err in report.errors:
                print(input_error_line(err), file=sys.stderr)
            sys.stdout.write(render_text(report))
        if report.exit_code != 0:
            problems = len([f for f in report.findings if not f.waived and f.severity.label == "error"])
            raise dnf.exceptions.Error(CMD_FAILED.format(count=problems + len(report.errors)))
