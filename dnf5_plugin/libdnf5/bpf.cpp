// rpm-bpf libdnf5 plugin "bpf": the BPF object policy on DNF 5 transactions.
//
// A shim with no rule logic: every hook describes the transaction as JSON,
// hands it to `rpm-bpf transaction-check` (or runs `rpm-bpf verify` after the
// transaction), through one `rpm-bpf serve` process started before depsolving,
// and acts on the exit code: 0 accept (its output are warnings),
// 1 refuse, anything else is an internal error of this check.
// Configured by /etc/dnf/libdnf5-plugins/bpf.conf ([main]: mode, fail_on_error,
// verify_after, policy, command, timeout).

#include <libdnf5/base/base.hpp>
#include <libdnf5/base/transaction.hpp>
#include <libdnf5/base/transaction_package.hpp>
#include <libdnf5/common/exception.hpp>
#include <libdnf5/conf/config_parser.hpp>
#include <libdnf5/plugin/iplugin.hpp>
#include <libdnf5/rpm/package.hpp>
#include <libdnf5/rpm/reldep_list.hpp>
#include <libdnf5/transaction/transaction_item_action.hpp>
#include <libdnf5/utils/bgettext/bgettext-mark-domain.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <set>
#include <string>
#include <vector>

extern char ** environ;

using namespace libdnf5;

namespace {

constexpr const char * PLUGIN_NAME = "bpf";
constexpr plugin::Version PLUGIN_VERSION{0, 1, 0};
// 2.1 is the first API with goal_resolved (the before-download check); asking
// for no more keeps the plugin loadable by every libdnf5 that has that hook.
constexpr PluginAPIVersion REQUIRED_PLUGIN_API_VERSION{.major = 2, .minor = 1};

constexpr const char * attrs[]{"author.name", "description", nullptr};
constexpr const char * attrs_value[]{"rpm-bpf", "BPF object policy on transactions (runs rpm-bpf)."};

constexpr const char * MSG_INTERNAL = "rpm-bpf: internal error of the BPF plugin: ";
constexpr const char * MSG_GOES_ON = "rpm-bpf: the transaction goes on without the BPF policy check (fail_on_error=0)";

// A refusal is the policy speaking, not a failure of the plugin: StopRequest is
// libdnf5's marker for that (libdnf5 5.4 does not act on it yet). dnf5 prints
// what() and exits 1.
class BpfPolicyRefusal final : public libdnf5::Error, public libdnf5::plugin::StopRequest {
public:
    using Error::Error;
    const char * get_domain_name() const noexcept override { return "rpm-bpf"; }
    const char * get_name() const noexcept override { return "BpfPolicyRefusal"; }
};

// An internal error of the check when fail_on_error=1 stops the transaction too.
class BpfInternalError final : public libdnf5::Error {
public:
    using Error::Error;
    const char * get_domain_name() const noexcept override { return "rpm-bpf"; }
    const char * get_name() const noexcept override { return "BpfInternalError"; }
};

// --- running rpm-bpf -------------------------------------------------------

struct Outcome {
    bool exited{false};  // false: did not start, was killed, or timed out (see `problem`)
    int status{-1};
    std::string out, err, problem;
};

// Keep the descriptors we hand to the child away from 0-2: if dnf5 runs with a
// closed stdin/stdout, a new descriptor could be 0-2 and the dup2 sequence
// would overwrite one end with another.
int above_stdio(int fd) {
    if (fd < 0 || fd > 2) {
        return fd;
    }
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    close(fd);
    return moved;
}

// Runs argv (no shell) with `input` on its stdin; collects stdout and stderr.
// stdin is a socket, not a pipe, so that send(MSG_NOSIGNAL) can report a child
// that stopped reading without a SIGPIPE killing dnf5. All three streams are
// served by one poll loop, so a child writing a lot before reading its whole
// request cannot deadlock us.
Outcome run_tool(const std::vector<std::string> & argv, const std::string & input, int timeout_s) {
    Outcome res;
    int in[2]{-1, -1}, out[2]{-1, -1}, err[2]{-1, -1};
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0 || pipe2(out, O_CLOEXEC) != 0 ||
        pipe2(err, O_CLOEXEC) != 0) {
        res.problem = std::string("cannot create pipes: ") + std::strerror(errno);
        for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) {
            if (fd >= 0) close(fd);
        }
        return res;
    }
    for (int * fd : {&in[0], &in[1], &out[0], &out[1], &err[0], &err[1]}) {
        *fd = above_stdio(*fd);
    }

    std::vector<char *> cargv;
    for (const auto & a : argv) {
        cargv.push_back(const_cast<char *>(a.c_str()));
    }
    cargv.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[1], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err[1], 2);
    pid_t pid = -1;
    // glibc's posix_spawn reports a failed exec (ENOENT, EACCES) as its return value.
    int rc = posix_spawnp(&pid, cargv[0], &actions, nullptr, cargv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(in[1]);
    close(out[1]);
    close(err[1]);
    if (rc != 0) {
        res.problem = "cannot run " + argv[0] + ": " + std::strerror(rc);
        close(in[0]);
        close(out[0]);
        close(err[0]);
        return res;
    }

    using clock = std::chrono::steady_clock;
    const auto deadline = clock::now() + std::chrono::seconds(timeout_s);
    size_t sent = 0;
    int in_fd = in[0], out_fd = out[0], err_fd = err[0];
    if (input.empty()) {
        close(in_fd);
        in_fd = -1;
    }
    bool timed_out = false;
    while (in_fd >= 0 || out_fd >= 0 || err_fd >= 0) {
        int wait_ms = -1;
        if (timeout_s > 0) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
            if (left <= 0) {
                timed_out = true;
                break;
            }
            wait_ms = static_cast<int>(std::min<long long>(left, 60'000));
        }
        // A negative fd is ignored by poll(): closed streams simply drop out.
        pollfd fds[3]{{in_fd, POLLOUT, 0}, {out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
        if (poll(fds, 3, wait_ms) < 0) {
            if (errno == EINTR) continue;
            res.problem = std::string("poll: ") + std::strerror(errno);
            timed_out = true;  // same handling: stop the child
            break;
        }
        if (in_fd >= 0 && fds[0].revents) {
            ssize_t n = send(in_fd, input.data() + sent, input.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) sent += static_cast<size_t>(n);
            // Done, or the child closed its stdin (EPIPE): its exit status will tell.
            if (sent == input.size() || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                close(in_fd);
                in_fd = -1;
            }
        }
        for (int i : {1, 2}) {
            int & fd = i == 1 ? out_fd : err_fd;
            if (fd >= 0 && fds[i].revents) {
                char buf[65536];
                ssize_t n = read(fd, buf, sizeof buf);
                if (n > 0) {
                    (i == 1 ? res.out : res.err).append(buf, static_cast<size_t>(n));
                } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
                    close(fd);
                    fd = -1;
                }
            }
        }
    }
    for (int fd : {in_fd, out_fd, err_fd}) {
        if (fd >= 0) close(fd);
    }
    if (timed_out) {
        kill(pid, SIGKILL);
        if (res.problem.empty()) {
            res.problem = argv[0] + " did not finish within " + std::to_string(timeout_s) + " s (timeout), killed";
        }
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            res.problem = std::string("waitpid: ") + std::strerror(errno);
            return res;
        }
    }
    if (timed_out) {
        return res;
    }
    if (WIFEXITED(status)) {
        res.exited = true;
        res.status = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        res.problem = argv[0] + " was killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
                      strsignal(WTERMSIG(status)) + ")";
    }
    return res;
}

// --- JSON (only what a request needs: objects, arrays, strings, integers) ---

// Package data comes from repository metadata: quote everything that could
// break the string. Bytes >= 0x80 pass as they are; rpm-bpf decodes the request
// with surrogateescape, so a non-UTF-8 file name still names its file.
std::string json_str(const std::string & s) {
    std::string r = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            r += '\\';
            r += static_cast<char>(c);
        } else if (c < 0x20 || c == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            r += buf;
        } else {
            r += static_cast<char>(c);
        }
    }
    return r + "\"";
}

std::string trimmed(const std::string & s) {
    auto b = s.find_first_not_of(" \t\r\n");
    if (b == std::string::npos) return "";
    return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

bool truthy(std::string v) {
    std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
    return v == "1" || v == "yes" || v == "true" || v == "on";
}

// --- one rpm-bpf process for the whole transaction (`rpm-bpf serve`) ---------

// Started before depsolving (repos_configured), so that the interpreter's
// start-up and the engine's imports overlap with dnf5 loading repositories;
// each hook then costs only its check. Protocol (rpm_bpf/cli/serve.py): a request
// is one JSON line {"argv": [...], "input": "..."}, the answer "STATUS LENGTH\n"
// and LENGTH bytes of the command's stdout. Its stderr is dnf5's. A server that
// cannot start or dies before answering is replaced by one-shot runs.
class Server {
public:
    Server() = default;
    Server(const Server &) = delete;
    Server & operator=(const Server &) = delete;
    ~Server() { stop(); }

    bool running() const { return pid > 0; }

    void start(const std::string & command) {
        if (pid > 0 || failed) return;
        int in[2]{-1, -1}, out[2]{-1, -1};
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0 || pipe2(out, O_CLOEXEC) != 0) {
            for (int fd : {in[0], in[1], out[0], out[1]}) {
                if (fd >= 0) close(fd);
            }
            failed = true;
            return;
        }
        for (int * fd : {&in[0], &in[1], &out[0], &out[1]}) {
            *fd = above_stdio(*fd);
        }
        std::string serve = "serve";
        char * argv[]{const_cast<char *>(command.c_str()), serve.data(), nullptr};
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, in[1], 0);
        posix_spawn_file_actions_adddup2(&actions, out[1], 1);
        int rc = posix_spawnp(&pid, argv[0], &actions, nullptr, argv, environ);
        posix_spawn_file_actions_destroy(&actions);
        close(in[1]);
        close(out[1]);
        if (rc != 0) {
            pid = -1;
            failed = true;
            close(in[0]);
            close(out[0]);
            return;
        }
        to = in[0];
        from = out[0];
    }

    // The answer to `rpm-bpf ARGV` with `input` on stdin. `served` is false when
    // the server was not there to take the request (the caller runs it once
    // by itself); a timeout is an answer (res.problem), not a reason to rerun.
    Outcome call(const std::vector<std::string> & argv, const std::string & input, int timeout_s, bool & served) {
        Outcome res;
        served = false;
        if (pid <= 0) return res;
        std::string line = "{\"argv\": [";
        for (size_t i = 1; i < argv.size(); ++i) {  // argv[0] is the command the server runs as
            line += (i > 1 ? ", " : "") + json_str(argv[i]);
        }
        line += "], \"input\": " + json_str(input) + "}\n";
        using clock = std::chrono::steady_clock;
        const auto deadline = clock::now() + std::chrono::seconds(timeout_s);
        auto wait = [&](int fd, short events) -> int {  // 1 ready, 0 timed out, -1 error
            for (;;) {
                int wait_ms = -1;
                if (timeout_s > 0) {
                    auto left =
                        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
                    if (left <= 0) return 0;
                    wait_ms = static_cast<int>(std::min<long long>(left, 60'000));
                }
                pollfd pfd{fd, events, 0};
                int n = poll(&pfd, 1, wait_ms);
                if (n > 0) return 1;
                if (n < 0 && errno != EINTR) return -1;
            }
        };
        size_t sent = 0;
        while (sent < line.size()) {
            int ready = wait(to, POLLOUT);
            if (ready == 0) return timed_out(argv, timeout_s, served);
            ssize_t n = ready < 0 ? -1 : send(to, line.data() + sent, line.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            if (n <= 0) {
                stop();  // gone before it took the request
                return res;
            }
            sent += static_cast<size_t>(n);
        }
        std::string got;
        size_t header_end = std::string::npos;
        size_t want = 0;
        int status = -1;
        for (;;) {
            if (header_end == std::string::npos) {
                header_end = got.find('\n');
                if (header_end != std::string::npos) {
                    unsigned long long length = 0;
                    if (std::sscanf(got.c_str(), "%d %llu", &status, &length) != 2 || status < 0 ||
                        length > (1ULL << 30)) {
                        stop();
                        served = true;
                        res.problem = argv[0] + " serve answered something that is not its protocol";
                        return res;
                    }
                    want = header_end + 1 + static_cast<size_t>(length);
                }
            }
            if (header_end != std::string::npos && got.size() >= want) break;
            int ready = wait(from, POLLIN);
            if (ready == 0) return timed_out(argv, timeout_s, served);
            char buf[65536];
            ssize_t n = ready < 0 ? -1 : read(from, buf, sizeof buf);
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            if (n <= 0) {
                // Died on this request (a crash in librpm on a hostile package, killed):
                // the one-shot run the caller makes reports how it ends.
                stop();
                return res;
            }
            got.append(buf, static_cast<size_t>(n));
        }
        served = true;
        res.exited = true;
        res.status = status;
        res.out = got.substr(header_end + 1, want - header_end - 1);
        return res;
    }

    // The server holds nothing worth a goodbye: killing it costs dnf5 no wait
    // for the interpreter's shutdown.
    void stop() {
        if (to >= 0) close(to);
        if (from >= 0) close(from);
        to = from = -1;
        if (pid > 0) {
            kill(pid, SIGKILL);
            while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
            }
        }
        pid = -1;
    }

private:
    pid_t pid{-1};
    int to{-1}, from{-1};
    bool failed{false};

    Outcome timed_out(const std::vector<std::string> & argv, int timeout_s, bool & served) {
        stop();
        served = true;
        Outcome res;
        res.problem = argv[0] + " did not finish within " + std::to_string(timeout_s) + " s (timeout), killed";
        return res;
    }
};

// --- the plugin --------------------------------------------------------------

class BpfPlugin final : public plugin::IPlugin2_1 {
public:
    BpfPlugin(plugin::IPluginData & data, ConfigParser & parser) : IPlugin2_1(data) {
        auto get = [&parser](const char * key, const char * fallback) -> std::string {
            return parser.has_option("main", key) ? trimmed(parser.get_value("main", key)) : std::string(fallback);
        };
        mode = get("mode", "enforce");
        std::transform(mode.begin(), mode.end(), mode.begin(), [](unsigned char c) { return std::tolower(c); });
        if (mode != "enforce" && mode != "warn" && mode != "off") {
            std::cerr << "rpm-bpf: bpf.conf: mode '" << mode << "' is not one of enforce, warn, off; using enforce"
                      << std::endl;
            mode = "enforce";
        }
        fail_on_error = truthy(get("fail_on_error", "0"));
        verify_after = truthy(get("verify_after", "1"));
        policy_files = words(get("policy", ""));
        trusted_keys = words(get("trusted_keys", ""));
        trusted_certs = words(get("trusted_certs", ""));
        // The environment wins so that tests can point an installed plugin elsewhere.
        const char * env = std::getenv("RPM_BPF_COMMAND");
        command = env && *env ? env : get("command", "/usr/bin/rpm-bpf");
        timeout_s = std::atoi(get("timeout", "600").c_str());
    }

    PluginAPIVersion get_api_version() const noexcept override { return REQUIRED_PLUGIN_API_VERSION; }
    const char * get_name() const noexcept override { return PLUGIN_NAME; }
    plugin::Version get_version() const noexcept override { return PLUGIN_VERSION; }
    const char * const * get_attributes() const noexcept override { return attrs; }
    const char * get_attribute(const char * name) const noexcept override {
        for (size_t i = 0; attrs[i]; ++i) {
            if (std::strcmp(name, attrs[i]) == 0) return attrs_value[i];
        }
        return nullptr;
    }

    // Before the repositories load: start the rpm-bpf server now, so that its
    // start-up runs beside dnf5's own work rather than inside a later hook.
    void repos_configured() override {
        if (mode == "off") return;
        auto started = std::chrono::steady_clock::now();
        server.start(command);
        log_time("repos_configured", started);
    }

    void finish() noexcept override { server.stop(); }

    // Before download: depsolving chose packages; their bpf(NAME) (and bpf-cache/bpf-runtime) provides
    // (primary metadata, always loaded) are enough to see name clashes early.
    void goal_resolved(const base::Transaction & transaction) override {
        if (mode == "off") return;
        guarded("goal_resolved", [&] {
            std::string candidates;
            for (const auto & item : transaction.get_transaction_packages()) {
                if (!transaction::transaction_item_action_is_inbound(item.get_action())) continue;
                auto pkg = item.get_package();
                std::string provides;
                for (const auto & dep : pkg.get_provides()) {
                    // get_name() points into the pool: the common no-BPF case allocates nothing.
                    const char * name = dep.get_name();
                    // bpf(NAME), bpf-cache(APP), bpf-runtime(APP): what the rpm-bpf macros provide
                    if (std::strncmp(name, "bpf(", 4) == 0 || std::strncmp(name, "bpf-cache(", 10) == 0 ||
                        std::strncmp(name, "bpf-runtime(", 12) == 0) {
                        provides += (provides.empty() ? "" : ", ") + json_str(dep.to_string());
                    }
                }
                if (provides.empty()) continue;
                std::string epoch = pkg.get_epoch();
                bool numeric = !epoch.empty() && epoch.find_first_not_of("0123456789") == std::string::npos;
                candidates += (candidates.empty() ? "" : ", ");
                candidates += "{\"name\": " + json_str(pkg.get_name()) + ", \"epoch\": " + (numeric ? epoch : "null") +
                              ", \"version\": " + json_str(pkg.get_version()) +
                              ", \"release\": " + json_str(pkg.get_release()) +
                              ", \"arch\": " + json_str(pkg.get_arch()) + ", \"provides\": [" + provides + "]}";
            }
            if (candidates.empty()) return;  // nothing BPF-related: rpm-bpf is not even started
            check("goal_resolved",
                  "{\"candidates\": [" + candidates + "], \"leaving\": [" + leaving(transaction) + "]}");
        });
    }

    // After download: the package files themselves.
    void pre_transaction(const base::Transaction & transaction) override {
        if (mode == "off") return;
        guarded("pre_transaction", [&] {
            std::string incoming;
            for (const auto & item : transaction.get_transaction_packages()) {
                if (!transaction::transaction_item_action_is_inbound(item.get_action())) continue;
                auto pkg = item.get_package();
                std::string action = transaction::transaction_item_action_to_string(item.get_action());
                std::transform(action.begin(), action.end(), action.begin(), [](unsigned char c) {
                    return std::tolower(c);
                });
                incoming += (incoming.empty() ? "" : ", ");
                incoming += "{\"path\": " + json_str(pkg.get_package_path()) +
                            ", \"nevra\": " + json_str(pkg.get_nevra()) + ", \"action\": " + json_str(action) + "}";
            }
            if (incoming.empty()) return;  // removals only: nothing comes in to judge
            check("pre_transaction",
                  "{\"incoming\": [" + incoming + "], \"leaving\": [" + leaving(transaction) + "]}", &bpf_names);
        });
    }

    // The transaction is done: nothing can be stopped any more, so findings and
    // failures alike are only reported, whatever fail_on_error says.
    void post_transaction(const base::Transaction & transaction) override {
        if (mode == "off" || !verify_after) return;
        try {
            auto started = std::chrono::steady_clock::now();
            verify_after_transaction(transaction);
            log_time("post_transaction", started);
        } catch (const std::exception & ex) {
            std::cerr << MSG_INTERNAL << "verify after the transaction: " << ex.what() << std::endl;
        }
    }

private:
    std::string mode;
    bool fail_on_error{false};
    bool verify_after{true};
    std::vector<std::string> policy_files;
    std::vector<std::string> trusted_keys;   // trust anchors of the signature checks after the transaction
    std::vector<std::string> trusted_certs;

    static std::vector<std::string> words(const std::string & text) {
        std::vector<std::string> found;
        for (size_t pos = 0; (pos = text.find_first_not_of(" \t", pos)) != std::string::npos;) {
            size_t end = text.find_first_of(" \t", pos);
            found.push_back(text.substr(pos, end - pos));
            pos = end;
        }
        return found;
    }
    std::string command;
    int timeout_s{600};
    Server server;
    std::set<std::string> bpf_names;  // incoming packages with BPF content, as pre_transaction's check said
    bool bpf_checked{false};

    static void read_lines(int fd, std::set<std::string> & out) {
        std::string text;
        char buf[4096];
        ssize_t got;
        while ((got = pread(fd, buf, sizeof buf, static_cast<off_t>(text.size()))) > 0) {
            text.append(buf, static_cast<size_t>(got));
        }
        for (size_t pos = 0, end; pos < text.size(); pos = end + 1) {
            end = text.find('\n', pos);
            if (end == std::string::npos) end = text.size();
            if (end > pos) out.insert(text.substr(pos, end - pos));
        }
    }

    // `rpm-bpf ARGV`, answered by the server when it is there, else run once.
    Outcome run(const std::vector<std::string> & argv, const std::string & input) {
        bool served = false;
        Outcome res = server.call(argv, input, timeout_s, served);
        return served ? res : run_tool(argv, input, timeout_s);
    }

    std::string installroot() { return get_base().get_config().get_installroot_option().get_value(); }

    static std::string leaving(const base::Transaction & transaction) {
        std::string out;
        for (const auto & item : transaction.get_transaction_packages()) {
            if (!transaction::transaction_item_action_is_outbound(item.get_action())) continue;
            auto pkg = item.get_package();
            out += (out.empty() ? "" : ", ");
            out += "{\"name\": " + json_str(pkg.get_name()) + ", \"evr\": " + json_str(pkg.get_evr()) +
                   ", \"arch\": " + json_str(pkg.get_arch()) + "}";
        }
        return out;
    }

    std::string why(const Outcome & res) const {
        if (!res.exited) return res.problem;
        return command + " exited with status " + std::to_string(res.status) +
               (res.status == 1 ? " without a message" : "");
    }

    void log_time(const char * hook, std::chrono::steady_clock::time_point started) {
        std::chrono::duration<double> took = std::chrono::steady_clock::now() - started;
        get_base().get_logger()->debug("rpm-bpf: {} took {:.4f} s", hook, took.count());
    }

    // Runs a hook's work so that nothing but a policy refusal, or an internal
    // error with fail_on_error=1, can stop the transaction: a libdnf5 call
    // that throws while the request is built is the plugin's own failure.
    template <typename Work>
    void guarded(const char * hook, Work work) {
        auto started = std::chrono::steady_clock::now();
        try {
            work();
        } catch (const BpfPolicyRefusal &) {
            throw;
        } catch (const BpfInternalError &) {
            throw;
        } catch (const std::exception & ex) {
            internal_error(hook, ex.what());
        }
        log_time(hook, started);
    }

    void internal_error(const char * hook, const std::string & why) {
        std::string error = std::string(MSG_INTERNAL) + hook + ": " + why;
        get_base().get_logger()->error("{}", error);
        if (fail_on_error) {
            throw BpfInternalError(M_("{}"), error);  // dnf5 prints it
        }
        std::cerr << error << '\n' << MSG_GOES_ON << std::endl;
    }

    // Runs `rpm-bpf transaction-check` and acts on its answer. With ``names``,
    // rpm-bpf also lists the incoming packages with BPF content there (what
    // post_transaction verifies: nothing at all in most transactions).
    void check(const char * hook, const std::string & request, std::set<std::string> * names = nullptr) {
        std::vector<std::string> argv{command, "transaction-check", "--root", installroot(), "--mode", mode};
        for (const auto & p : policy_files) {
            argv.insert(argv.end(), {"--policy", p});
        }
        char list[] = "/tmp/rpm-bpf-packages-XXXXXX";
        int list_fd = names ? mkstemp(list) : -1;
        if (list_fd >= 0) {
            argv.insert(argv.end(), {"--bpf-packages", list});
        }
        Outcome res = run(argv, request);
        if (list_fd >= 0) {
            if (res.exited && (res.status == 0 || res.status == 1)) {
                read_lines(list_fd, *names);
                bpf_checked = true;
            }
            close(list_fd);
            unlink(list);
        }
        std::cerr << res.err << std::flush;  // rpm-bpf's own diagnostics, whatever the verdict
        std::string message = trimmed(res.out);
        if (res.exited && res.status == 0) {
            if (!message.empty()) {
                std::cerr << message << std::endl;
                get_base().get_logger()->warning("{}", message);
            }
            return;
        }
        // A refusal always says why; a bare exit 1 is what a Python traceback
        // (or the wrong program) gives, so it counts as an internal error.
        if (res.exited && res.status == 1 && !message.empty()) {
            get_base().get_logger()->error("{}", message);
            throw BpfPolicyRefusal(M_("{}"), message);
        }
        if (!message.empty()) std::cerr << message << std::endl;
        internal_error(hook, why(res));
    }

    void verify_after_transaction(const base::Transaction & transaction) {
        // What rpm-bpf said has BPF content; every inbound package if it could not say.
        std::set<std::string> names = bpf_names;
        if (!bpf_checked) {
            for (const auto & item : transaction.get_transaction_packages()) {
                if (transaction::transaction_item_action_is_inbound(item.get_action())) {
                    names.insert(item.get_package().get_name());
                }
            }
        }
        // Without names rpm-bpf verify would check every installed package.
        if (names.empty()) return;
        // dnf5 has just written this database itself: no private copy of it is needed.
        // --quiet: a note that signatures were not checked (no trusted key) after every transaction is noise.
        std::vector<std::string> argv{command, "verify", "--root", installroot(), "--db-in-place", "--quiet"};
        for (const auto & p : policy_files) {
            argv.insert(argv.end(), {"--policy", p});
        }
        for (const auto & k : trusted_keys) {
            argv.insert(argv.end(), {"--trusted-keys", k});
        }
        for (const auto & c : trusted_certs) {
            argv.insert(argv.end(), {"--trusted-cert", c});
        }
        argv.push_back("--");
        argv.insert(argv.end(), names.begin(), names.end());
        Outcome res = run(argv, "");
        std::cerr << res.err;
        if (res.exited && res.status == 0) return;
        // libdnf5 calls this hook after a failed rpm transaction too, and its
        // TransactionPackage states are not updated: packages that did not get
        // installed make rpm-bpf verify exit 2 ("not installed"). Either way
        // its report is the warning to show.
        if (res.exited && !trimmed(res.out).empty()) {
            std::cerr << "rpm-bpf: after the transaction, rpm-bpf verify exited with status " << res.status << ":\n"
                      << res.out << std::flush;
            return;
        }
        std::cerr << MSG_INTERNAL << "verify after the transaction: " << why(res) << std::endl;
    }
};

std::exception_ptr last_exception;

}  // namespace

PluginAPIVersion libdnf_plugin_get_api_version(void) {
    return REQUIRED_PLUGIN_API_VERSION;
}

const char * libdnf_plugin_get_name(void) {
    return PLUGIN_NAME;
}

plugin::Version libdnf_plugin_get_version(void) {
    return PLUGIN_VERSION;
}

plugin::IPlugin * libdnf_plugin_new_instance(
    [[maybe_unused]] LibraryVersion library_version, plugin::IPluginData & data, ConfigParser & parser) try {
    return new BpfPlugin(data, parser);
} catch (...) {
    last_exception = std::current_exception();
    return nullptr;
}

void libdnf_plugin_delete_instance(plugin::IPlugin * plugin_object) {
    delete plugin_object;
}

std::exception_ptr * libdnf_plugin_get_last_exception(void) {
    return &last_exception;
}
