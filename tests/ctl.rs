//! `socktune ctl`: live changes to running servers, on free loopback ports (the packet counts
//! come from each client connection's own TCP_INFO, so other traffic on loopback cannot touch
//! them). A server started under `socktune run --cork` gives ~2 packets per keep-alive
//! request; `ctl set cork=off` gives the next connection the untuned ~5, `set cork=on` ~2
//! again; prefork workers follow; another user cannot change it; a symbolic link planted where
//! the control file goes is refused; `show` names the rules file's top level and its rules.
mod common;
use common::*;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(60);
const REQUESTS: &str = "20";

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The control files' directory: /run/socktune for root, else a private runtime directory
/// that this test binary's servers share.
fn runtime() -> (PathBuf, Vec<(String, String)>) {
    if is_root() {
        return (PathBuf::from("/run/socktune"), vec![]);
    }
    let xdg = std::env::temp_dir().join(format!("socktune-ctl-xdg-{}", std::process::id()));
    std::fs::create_dir_all(&xdg).unwrap();
    let env = vec![("XDG_RUNTIME_DIR".into(), xdg.display().to_string())];
    (xdg.join("socktune"), env)
}

struct Server {
    child: Child,
    port: u16,
    env: Vec<(String, String)>,
    runtime_dir: PathBuf,
    stderr: PathBuf,
}

impl Drop for Server {
    /// Kills the server's process group (prefork workers too), and removes the control file
    /// its killed tree could not.
    fn drop(&mut self) {
        // SAFETY: a signal to the group the server leads.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
        let _ = std::fs::remove_file(self.runtime_dir.join(format!("{}.ctl", self.child.id())));
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Server {
    /// `sh -c SCRIPT` with {launcher}, {progs}, {port} and {www} filled in, in a clean
    /// environment plus `env`, once it listens.
    fn start(name: &str, script: &str) -> Server {
        let dir = scratch(name);
        let (runtime_dir, env) = runtime();
        let www = dir.join("www");
        std::fs::create_dir_all(&www).unwrap();
        std::fs::write(www.join("f100"), [b'0'; 100]).unwrap();
        let port = free_port();
        let script = script
            .replace("{launcher}", &launcher().display().to_string())
            .replace("{progs}", &repo().join("tests/progs").display().to_string())
            .replace("{port}", &port.to_string())
            .replace("{www}", &www.display().to_string())
            .replace("{python}", python());
        let stderr = dir.join("server.err");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &script])
            .process_group(0)
            .env_remove("LD_PRELOAD")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap());
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("SOCKTUNE_")) {
            cmd.env_remove(k);
        }
        let server = Server {
            child: cmd.spawn().expect("sh starts"),
            port,
            env,
            runtime_dir,
            stderr,
        };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < LIMIT,
                "the server never listened on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Packets per request of `conns` keep-alive connections of 20 GETs.
    fn packets_per_request(&self, conns: u32) -> f64 {
        let mut cmd = Command::new(python());
        cmd.arg(repo().join("tests/progs/ka_client.py"))
            .args(["127.0.0.1", &self.port.to_string(), REQUESTS, "/f100"])
            .arg(conns.to_string())
            .env_remove("LD_PRELOAD");
        let out = run_bounded(&mut cmd, LIMIT);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "ka_client failed: {text}");
        text.split_whitespace()
            .find_map(|kv| kv.strip_prefix("packets_per_request="))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no packet count in {text:?}"))
    }

    /// `socktune ctl PID ARGS...` as this user (or, with `user`, as that uid and gid).
    fn ctl(&self, user: Option<u32>, args: &[&str]) -> Output {
        let pid = self.pid().to_string();
        let mut cmd = match user {
            Some(user) => {
                let mut c = Command::new("setpriv");
                c.args([
                    &format!("--reuid={user}"),
                    &format!("--regid={user}"),
                    "--clear-groups",
                ])
                .arg(launcher());
                c
            }
            None => Command::new(launcher()),
        };
        cmd.arg("ctl")
            .arg(&pid)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        run_bounded(&mut cmd, LIMIT)
    }

    fn show(&self) -> String {
        let out = self.ctl(None, &["show"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "ctl show failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }

    fn set(&self, change: &str) {
        let out = self.ctl(None, &["set", change]);
        assert!(
            out.status.success(),
            "ctl set {change} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

const HTTP_SERVER: &str = "exec {launcher} run --cork -- {python} -m http.server -p HTTP/1.1 \
                           {port} --bind 127.0.0.1 -d {www}";

#[track_caller]
fn corked(ppr: f64, what: &str) {
    assert!(
        ppr <= 2.3,
        "{what}: {ppr} packets per request, corked is ~2"
    );
}

#[track_caller]
fn untuned(ppr: f64, what: &str) {
    assert!(
        ppr >= 4.5,
        "{what}: {ppr} packets per request, untuned is ~5"
    );
}

/// The on/off/on transcript: each step's packets per request and `show`'s cork line.
#[test]
fn a_live_change_reaches_new_connections_and_show_follows_it() {
    let server = Server::start("ctl-cork", HTTP_SERVER);
    let cork_line = |show: &str| {
        show.lines()
            .find(|l| l.trim_start().starts_with("cork "))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let start = server.packets_per_request(1);
    corked(start, "under socktune run --cork");
    let show = server.show();
    assert!(
        show.contains("SOCKTUNE_CORK             environment \"1\""),
        "{show}"
    );
    assert!(
        cork_line(&show).starts_with("cork              on"),
        "{show}"
    );
    eprintln!("start: {start:.2} packets/request; {}", cork_line(&show));

    server.set("cork=off");
    let off = server.packets_per_request(1);
    untuned(off, "after ctl set cork=off");
    let show = server.show();
    assert!(
        show.contains("live change \"off\" (environment \"1\")"),
        "{show}"
    );
    assert!(
        cork_line(&show).starts_with("cork              off"),
        "{show}"
    );
    eprintln!(
        "set cork=off: {off:.2} packets/request; {}",
        cork_line(&show)
    );

    // A bad value is refused with the library's message and changes nothing.
    let bad = server.ctl(None, &["set", "cork=maybe"]);
    assert_eq!(bad.status.code(), Some(2));
    let said = String::from_utf8_lossy(&bad.stderr);
    assert!(
        said.contains("SOCKTUNE_CORK=\"maybe\" is not valid (accepted: 1/0, true/false"),
        "{said}"
    );
    assert!(cork_line(&server.show()).starts_with("cork              off"));

    server.set("cork=on");
    let on = server.packets_per_request(1);
    corked(on, "after ctl set cork=on");
    let show = server.show();
    assert!(
        cork_line(&show).starts_with("cork              on"),
        "{show}"
    );
    eprintln!("set cork=on: {on:.2} packets/request; {}", cork_line(&show));

    server.set("cork=off");
    let out = server.ctl(None, &["reset"]);
    assert!(out.status.success());
    corked(server.packets_per_request(1), "after ctl reset");
    assert!(!server.show().contains("live change \""));
}

/// Workers forked before the change follow it: they share the control file.
#[test]
fn prefork_workers_follow_a_live_change() {
    let server = Server::start(
        "ctl-prefork",
        "exec {launcher} run --cork -- {python} {progs}/prefork_server.py 127.0.0.1 {port} 3",
    );
    corked(server.packets_per_request(3), "3 workers, corked");
    let show = server.show();
    let line = show.lines().next().unwrap_or_default();
    let processes = line
        .split("(processes ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .unwrap_or_default();
    assert!(
        processes.split_whitespace().count() >= 4,
        "the parent and its 3 workers share the control file: {line}"
    );
    server.set("cork=off");
    untuned(server.packets_per_request(3), "3 workers, after cork=off");
    server.set("cork=on");
    corked(server.packets_per_request(3), "3 workers, after cork=on");
}

/// Another user can neither change the process nor read its control file.
#[test]
fn another_user_cannot_change_it() {
    needs_root!("runs socktune ctl as nobody");
    let server = Server::start("ctl-user", HTTP_SERVER);
    corked(server.packets_per_request(1), "corked");
    const NOBODY: u32 = 65534;
    let out = server.ctl(Some(NOBODY), &["set", "cork=off"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("not yours") || said.contains("owner"),
        "{said}"
    );
    corked(
        server.packets_per_request(1),
        "still corked after nobody's attempt",
    );
    assert!(!server.show().contains("live change \""));
}

/// A symbolic link where the control file would go is not followed: the program runs on,
/// tuned, with one warning and no control file, and the link's target stays untouched.
#[test]
fn a_symlinked_control_path_is_refused() {
    let dir = scratch("ctl-link-target");
    let target = dir.join("target");
    let (runtime_dir, _) = runtime();
    let script = format!(
        "mkdir -p {d} && chmod 700 {d} && ln -sf {t} {d}/$$.ctl && {HTTP_SERVER}",
        d = runtime_dir.display(),
        t = target.display()
    );
    let server = Server::start("ctl-link", &script);
    corked(server.packets_per_request(1), "tuned as asked");
    let out = server.ctl(None, &["show"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has no socktune control file"),
        "{out:?}"
    );
    let err = server.stderr();
    assert_eq!(err.matches("socktune: no live control").count(), 1, "{err}");
    assert!(err.contains("not our file (a symbolic link?)"), "{err}");
    assert!(!target.exists(), "the link was followed");
    let link = runtime_dir.join(format!("{}.ctl", server.pid()));
    assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
    let _ = std::fs::remove_file(link);
}

/// nginx (master and 2 workers, which it forks with its environment cleared), set up as it
/// stalls untuned (header by writev, body by sendfile, Nagle on): the workers follow a change
/// made through the master's pid.
#[test]
fn nginx_workers_follow_a_live_change() {
    needs_root!("runs nginx as root in a scratch prefix");
    let work = scratch("ctl-nginx-prefix");
    // The conf is written by the script, once `start` filled in the port and the files.
    let script = "cat > {work}/nginx.conf <<'END'
user root;
worker_processes 2;
daemon off;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events { worker_connections 64; }
http {
    access_log off;
    sendfile on;
    tcp_nopush off;
    tcp_nodelay off;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    server { listen 127.0.0.1:{port}; root {www}; }
}
END
exec {launcher} run --cork -- nginx -p {work} -c {work}/nginx.conf -e {work}/error.log"
        .replace("{work}", &work.display().to_string());
    let server = Server::start("ctl-nginx", &script);
    let show = server.show();
    let line = show.lines().next().unwrap_or_default().to_string();
    assert!(
        line.contains(&format!("of the tree of {} (processes ", server.pid())),
        "{line}"
    );
    let start = server.packets_per_request(2);
    corked(start, "nginx under socktune run --cork");
    server.set("cork=off");
    let off = server.packets_per_request(2);
    untuned(off, "nginx after ctl set cork=off");
    server.set("cork=on");
    let on = server.packets_per_request(2);
    corked(on, "nginx after ctl set cork=on");
    eprintln!("nginx packets/request: start {start:.2}, cork=off {off:.2}, cork=on {on:.2}");
}

/// `ctl set ab=...` starts an experiment live: with ab=0 every new connection is in arm A
/// (untouched) and recorded so; a reset ends it.
#[test]
fn an_ab_experiment_starts_and_stops_live() {
    let stats = scratch("ctl-ab-stats").join("conns.jsonl");
    let script = format!(
        "exec {{launcher}} run --cork --stats {} -- {{python}} -m http.server -p HTTP/1.1 \
         {{port}} --bind 127.0.0.1 -d {{www}}",
        stats.display()
    );
    let server = Server::start("ctl-ab", &script);
    corked(server.packets_per_request(1), "before the experiment");
    server.set("ab=0");
    untuned(server.packets_per_request(1), "arm A, untouched");
    server.ctl(None, &["reset"]);
    corked(server.packets_per_request(1), "after the experiment");
    // The last connection's record may still be on its way (the library writes within ~10 ms).
    let start = Instant::now();
    let arms = loop {
        let text = std::fs::read_to_string(&stats).unwrap_or_default();
        let arms: Vec<String> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            // Not the readiness probe's connection, which asked for nothing.
            .filter(|v| v["type"] == "conn" && v["responses"] != 0)
            .map(|v| v["arm"].as_str().unwrap_or("-").to_string())
            .collect();
        if arms.len() == 3 || start.elapsed() > LIMIT {
            break arms;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(arms, ["-", "A", "-"], "the records' arms, in order");
}

/// A tree killed by a signal cannot remove its control file; the next process to make its own
/// removes it, since no member of that tree is alive.
#[test]
fn a_killed_trees_control_file_is_removed_by_the_next_process() {
    let mut killed = Server::start("ctl-killed", HTTP_SERVER);
    let left = killed.runtime_dir.join(format!("{}.ctl", killed.pid()));
    assert!(left.exists(), "{} while it runs", left.display());
    // SAFETY: a signal to the group the server leads.
    unsafe { libc::kill(-(killed.pid() as i32), libc::SIGKILL) };
    let _ = killed.child.wait();
    assert!(left.exists(), "a killed process cannot remove its file");
    let next = Server::start("ctl-next", HTTP_SERVER);
    assert!(!left.exists(), "{} outlived its tree", left.display());
    corked(next.packets_per_request(1), "the next server is tuned");
}

/// `show` names each setting's source, the rules file's top level among them, and the file's
/// rules; a live change of a key a rule leaves out reaches the rule's sockets.
#[test]
fn show_names_the_rules_file_and_a_live_change_reaches_a_rule_that_leaves_its_key_out() {
    let file = scratch("ctl-rules-file").join("rules.toml");
    std::fs::write(
        &file,
        "cork = true\n\n[[rule]]\nrole = \"server\"\nkeepalive = \"60\"\n",
    )
    .unwrap();
    let f = file.display().to_string();
    let server = Server::start(
        "ctl-rules",
        &format!(
            "exec {{launcher}} run --config {f} -- {{python}} -m http.server -p HTTP/1.1 \
             {{port}} --bind 127.0.0.1 -d {{www}}"
        ),
    );
    // The rule's sockets take cork from the top level.
    let start = server.packets_per_request(1);
    corked(start, "cork from the file's top level");
    let show = server.show();
    for want in [
        format!("SOCKTUNE_CONFIG           environment \"{f}\""),
        format!("SOCKTUNE_CORK             config file {f}:1 \"true\""),
        format!("rules of {f} for python"),
        "  line 3: role server -> keepalive 60 (role server)\n".into(),
    ] {
        assert!(show.contains(&want), "no {want:?} in:\n{show}");
    }
    eprintln!("{show}");

    // A live change of a key the rule leaves out reaches its sockets; one it sets does not.
    server.set("cork=off");
    let off = server.packets_per_request(1);
    untuned(off, "after ctl set cork=off, which the rule leaves out");
    eprintln!("file's cork: {start:.2} packets/request; live cork=off: {off:.2}");
    server.set("keepalive=30");
    let show = server.show();
    for want in [
        format!("SOCKTUNE_CORK             live change \"off\" (config file {f}:1 \"true\")"),
        "SOCKTUNE_KEEPALIVE        live change \"30\"\n".into(),
        "  line 3: role server -> keepalive 60 (role server)\n    keeps its own keepalive: the live \
         change does not reach this rule\n"
            .into(),
    ] {
        assert!(show.contains(&want), "no {want:?} in:\n{show}");
    }
    eprintln!("{show}");
}

/// Whether process `pid` maps the control file `path`.
fn maps(pid: u32, path: &std::path::Path) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .is_ok_and(|m| m.contains(&path.display().to_string()))
}

/// Waits, for [`LIMIT`] at most, until `cond` holds.
#[track_caller]
fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < LIMIT, "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A process under the shim that has made no socket and not forked has nothing to control: it
/// has no control file (the loader's work is all it pays). Its first fork makes the file, so
/// that the child shares it, and the file is the process's own, named by its pid.
#[test]
fn the_control_file_is_made_at_the_first_fork_or_socket_not_at_load() {
    let dir = scratch("ctl-lazy");
    let (go, child_pid, tmp) = (dir.join("go"), dir.join("child.pid"), dir.join("pid.tmp"));
    let (runtime_dir, env) = runtime();
    let script = format!(
        "import os, time\n\
         while not os.path.exists({go:?}): time.sleep(0.02)\n\
         pid = os.fork()\n\
         if pid == 0: time.sleep(60); os._exit(0)\n\
         open({tmp:?}, 'w').write(str(pid)); os.rename({tmp:?}, {child_pid:?})\n\
         os.waitpid(pid, 0)\n"
    );
    let mut child = Command::new(launcher())
        .args(["run", "--cork", "--", python(), "-c", &script])
        .process_group(0)
        .env_remove("LD_PRELOAD")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("the launcher starts");
    let pid = child.id();
    let file = runtime_dir.join(format!("{pid}.ctl"));
    let kill = || {
        // SAFETY: a signal to the group the test's process leads.
        unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
    };
    wait_for("python runs under the shim", || {
        std::fs::read_to_string(format!("/proc/{pid}/maps"))
            .is_ok_and(|m| m.contains("libsocktune") && m.contains("python"))
    });
    std::thread::sleep(Duration::from_millis(300));
    let before = (file.exists(), maps(pid, &file));
    std::fs::write(&go, "").unwrap();
    wait_for("the child's pid", || child_pid.exists());
    let forked: u32 = std::fs::read_to_string(&child_pid)
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or(0);
    let after = (file.exists(), maps(pid, &file), maps(forked, &file));
    kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&file);
    assert_eq!(
        before,
        (false, false),
        "{}: no control file before any socket or fork",
        file.display()
    );
    assert_eq!(
        after,
        (true, true, true),
        "{}: made before the fork, mapped by the parent and its child {forked}",
        file.display()
    );
}
