// rpm-bpf dnf5 command plugin:
// `dnf5 bpf-verify [--json] [--loaded] [--trusted-keys FILE]... [--trusted-cert FILE]... [PACKAGE...]`.
//
// A shim with no logic of its own: it runs `rpm-bpf verify` on dnf5's
// installroot, lets it write straight to the terminal, and makes dnf5 exit
// with rpm-bpf's exit code (0 clean, 1 problems found, 2 input errors).

#include <dnf5/context.hpp>
#include <dnf5/iplugin.hpp>
#include <libdnf5-cli/exception.hpp>
#include <libdnf5-cli/session.hpp>
#include <libdnf5/utils/bgettext/bgettext-mark-domain.h>

#include <spawn.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

extern char ** environ;

using namespace dnf5;

namespace {

constexpr const char * PLUGIN_NAME{"bpf_verify"};
constexpr PluginVersion PLUGIN_VERSION{.major = 0, .minor = 1, .micro = 0};
constexpr PluginAPIVersion REQUIRED_PLUGIN_API_VERSION{.major = 2, .minor = 0};

constexpr const char * attrs[]{"author.name", "description", nullptr};
constexpr const char * attrs_value[]{"rpm-bpf", "bpf-verify command (runs rpm-bpf verify)."};

class BpfVerifyCommand : public Command {
public:
    explicit BpfVerifyCommand(Context & context) : Command(context, "bpf-verify") {}

    void set_parent_command() override {
        auto * root = get_session().get_argument_parser().get_root_command();
        root->register_command(get_argument_parser_command());
    }

    void set_argument_parser() override {
        get_argument_parser_command()->set_description("verify installed BPF objects against the rpm database");
        json = std::make_unique<libdnf5::cli::session::BoolOption>(
            *this, "json", '\0', "print the rpm-bpf JSON report", false);
        loaded = std::make_unique<libdnf5::cli::session::BoolOption>(
            *this, "loaded", '\0', "also check the loaded BPF programs (one no installed package ships is reported)",
            false);
        trusted_keys = std::make_unique<libdnf5::cli::session::AppendStringListOption>(
            *this, "trusted-keys", '\0',
            "armored OpenPGP key file: packages with BPF code must be signed by one of these keys", "FILE");
        trusted_certs = std::make_unique<libdnf5::cli::session::AppendStringListOption>(
            *this, "trusted-cert", '\0', "PEM certificate file for the BPF objects' fs-verity and IMA signatures",
            "FILE");
        packages = std::make_unique<libdnf5::cli::session::StringArgumentList>(
            *this, "PACKAGE", "installed package names to verify (default: all)");
    }

    // rpm-bpf reads the rpm database itself: dnf5 need not load any repository
    // (not even the system one), so the command is fast and works offline.
    void configure() override {
        get_context().set_load_system_repo(false);
        get_context().set_load_available_repos(Context::LoadAvailableRepos::NONE);
    }

    void run() override {
        const char * env = std::getenv("RPM_BPF_COMMAND");
        std::string command = env && *env ? env : "/usr/bin/rpm-bpf";
        std::vector<std::string> argv{
            command, "verify", "--root", get_context().get_base().get_config().get_installroot_option().get_value()};
        if (loaded->get_value()) {
            argv.push_back("--loaded");
        }
        if (json->get_value()) {
            argv.insert(argv.end(), {"--format", "json"});
        }
        for (const auto & key : trusted_keys->get_value()) {
            argv.insert(argv.end(), {"--trusted-keys", key});
        }
        for (const auto & cert : trusted_certs->get_value()) {
            argv.insert(argv.end(), {"--trusted-cert", cert});
        }
        // "--": a package name can never be taken for an rpm-bpf option.
        argv.push_back("--");
        for (const auto & name : packages->get_value()) {
            argv.push_back(name);
        }
        int code = run_inheriting(argv);
        if (code != 0) {
            // rpm-bpf has said everything already; only the exit code is left to pass on.
            throw libdnf5::cli::SilentCommandExitError(code);
        }
    }

private:
    std::unique_ptr<libdnf5::cli::session::BoolOption> json;
    std::unique_ptr<libdnf5::cli::session::BoolOption> loaded;
    std::unique_ptr<libdnf5::cli::session::AppendStringListOption> trusted_keys;
    std::unique_ptr<libdnf5::cli::session::AppendStringListOption> trusted_certs;
    std::unique_ptr<libdnf5::cli::session::StringArgumentList> packages;

    // Runs argv (no shell) on dnf5's own stdin/stdout/stderr; returns its exit
    // code, or throws when it could not run or did not exit normally.
    static int run_inheriting(const std::vector<std::string> & argv) {
        std::vector<char *> cargv;
        for (const auto & a : argv) {
            cargv.push_back(const_cast<char *>(a.c_str()));
        }
        cargv.push_back(nullptr);
        std::cout.flush();  // what dnf5 printed so far comes before rpm-bpf's output
        pid_t pid = -1;
        int rc = posix_spawnp(&pid, cargv[0], nullptr, nullptr, cargv.data(), environ);
        if (rc != 0) {
            throw libdnf5::cli::CommandExitError(
                2, M_("rpm-bpf: cannot run {}: {}"), argv[0], std::string(std::strerror(rc)));
        }
        int status = 0;
        while (waitpid(pid, &status, 0) < 0) {
            if (errno != EINTR) {
                throw libdnf5::cli::CommandExitError(
                    2, M_("rpm-bpf: waitpid: {}"), std::string(std::strerror(errno)));
            }
        }
        if (WIFSIGNALED(status)) {
            throw libdnf5::cli::CommandExitError(
                2, M_("rpm-bpf: {} was killed by signal {}"), argv[0], std::to_string(WTERMSIG(status)));
        }
        return WEXITSTATUS(status);
    }
};

class BpfVerifyCmdPlugin : public IPlugin {
public:
    using IPlugin::IPlugin;

    PluginAPIVersion get_api_version() const noexcept override { return REQUIRED_PLUGIN_API_VERSION; }
    const char * get_name() const noexcept override { return PLUGIN_NAME; }
    PluginVersion get_version() const noexcept override { return PLUGIN_VERSION; }
    const char * const * get_attributes() const noexcept override { return attrs; }
    const char * get_attribute(const char * name) const noexcept override {
        for (size_t i = 0; attrs[i]; ++i) {
            if (std::strcmp(name, attrs[i]) == 0) return attrs_value[i];
        }
        return nullptr;
    }

    std::vector<std::unique_ptr<Command>> create_commands() override {
        std::vector<std::unique_ptr<Command>> commands;
        commands.push_back(std::make_unique<BpfVerifyCommand>(get_context()));
        return commands;
    }

    void finish() noexcept override {}
};

std::exception_ptr last_exception;

}  // namespace

PluginAPIVersion dnf5_plugin_get_api_version(void) {
    return REQUIRED_PLUGIN_API_VERSION;
}

const char * dnf5_plugin_get_name(void) {
    return PLUGIN_NAME;
}

PluginVersion dnf5_plugin_get_version(void) {
    return PLUGIN_VERSION;
}

IPlugin * dnf5_plugin_new_instance([[maybe_unused]] ApplicationVersion application_version, Context & context) try {
    return new BpfVerifyCmdPlugin(context);
} catch (...) {
    last_exception = std::current_exception();
    return nullptr;
}

void dnf5_plugin_delete_instance(IPlugin * plugin_object) {
    delete plugin_object;
}

std::exception_ptr * dnf5_plugin_get_last_exception(void) {
    return &last_exception;
}
