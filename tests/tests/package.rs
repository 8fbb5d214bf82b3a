//! The Debian package (`cargo xtask deb`), installed on this machine for real: its files,
//! user and modes, its systemd unit (verified by systemd-analyze), and the unit's command run
//! as the unit runs it (its user, its capabilities, no new privileges) in a test namespace,
//! with the configuration edited as an operator would: XDP attached, a change through the
//! API answered by XDP. Purged at the end, the store with it. Needs root (dpkg, XDP).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use dns_tests::{SERVER_V4, Side, Testbed, metric};

mod common;

use common::{BIN, temp_dir};

// The package builder of `cargo xtask deb`, the same file.
#[allow(dead_code)]
#[path = "../../xtask/src/deb.rs"]
mod deb;

const UNIT: &str = "/lib/systemd/system/dns-user.service";
const CONFIG: &str = "/etc/dns-user/config.toml";
const STATE: &str = "/var/lib/dns-user";
const SYSTEM_PIN_DIR: &str = "/sys/fs/bpf/dns-user";
const ANSWERED: &str = "dns_xdp_packets_total{action=\"tx\",reason=\"answered\"}";

/// The package, installed while this lives; purged when it drops (test failed or not).
struct Installed;

impl Installed {
    fn install(deb: &Path) -> Installed {
        purge(); // what an interrupted run left
        let out = Command::new("dpkg").arg("-i").arg(deb).output().unwrap();
        assert!(
            out.status.success(),
            "dpkg -i: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Installed
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        purge();
    }
}

/// Ends a daemon this test started indirectly (a detached takeover), by its PID, if it is
/// still there when the test ends (a failed assertion included).
struct Reap(u32);

impl Drop for Reap {
    fn drop(&mut self) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.0));
        let ours = std::fs::read(format!("/proc/{}/cmdline", self.0))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains("--takeover"));
        if ours && status.is_ok_and(|s| !s.contains("State:\tZ")) {
            // SAFETY: signalling, by its PID, the daemon this test's reload started.
            unsafe { libc::kill(self.0 as libc::pid_t, libc::SIGKILL) };
        }
    }
}

fn purge() {
    let _ = Command::new("dpkg")
        .args(["--purge", deb::PACKAGE])
        .output();
}

/// `Key=value` settings of a unit file (the last one wins, as in systemd for these keys).
fn unit_setting(unit: &str, key: &str) -> String {
    unit.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .next_back()
        .unwrap_or_else(|| panic!("{key}= in the unit"))
        .trim()
        .to_string()
}

/// A capability list of the unit (`CAP_BPF CAP_...`) as setpriv takes it: `-all,+bpf,...`.
fn setpriv_caps(unit: &str, key: &str) -> String {
    let mut out = String::from("-all");
    for cap in unit_setting(unit, key).split_whitespace() {
        out.push_str(",+");
        out.push_str(&cap.trim_start_matches("CAP_").to_ascii_lowercase());
    }
    out
}

fn id(flag: &str, user: &str) -> u32 {
    let out = Command::new("id").args([flag, user]).output().unwrap();
    assert!(out.status.success(), "no user {user}");
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn mode_owner(path: &str) -> (u32, u32, u32) {
    let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    (meta.mode() & 0o7777, meta.uid(), meta.gid())
}

#[test]
fn the_package_installs_and_its_service_answers_through_xdp_as_its_user() {
    let out = temp_dir("deb");
    let deb = deb::deb(&deb::Options {
        binary: PathBuf::from(BIN),
        workspace: Path::new(env!("CARGO_MANIFEST_DIR")).join(".."),
        out: out.clone(),
    })
    .unwrap();
    let installed = Installed::install(&deb);

    // The user, the private state directory, the configuration readable by the service only.
    let (uid, gid) = (id("-u", "dns-user"), id("-g", "dns-user"));
    assert_ne!(uid, 0);
    assert_eq!(mode_owner(STATE), (0o700, uid, gid));
    assert_eq!(mode_owner(CONFIG), (0o640, 0, gid));
    assert_eq!(mode_owner("/usr/bin/dns-user").0, 0o755);

    // The unit as systemd reads it, and its hardening as systemd scores it.
    let verify = Command::new("systemd-analyze")
        .args(["verify", UNIT])
        .output()
        .unwrap();
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=true", UNIT])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&security.stdout).into_owned();
    let exposure: f64 = report
        .lines()
        .find_map(|l| l.split("dns-user.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{report}"));
    assert!(
        exposure <= 2.5,
        "the unit's exposure level is {exposure} (systemd: 0 safest, 10 unsafe)"
    );

    // The operator's edit: serve the testbed's address, XDP on its interface; the pins on a
    // BPF filesystem of the test's own (`ip netns exec` mounts a /sys without /sys/fs/bpf).
    let mut bed = Testbed::create("dnspkg").unwrap();
    let bpffs = dns_tests::BpfFs::mount(&out.join("bpffs")).unwrap();
    let pin_dir = bpffs.path.join("dns-user").display().to_string();
    let config = std::fs::read_to_string(CONFIG).unwrap();
    let edited = config
        .replace(
            r#"listen = ["127.0.0.1:53", "[::1]:53"]"#,
            &format!(r#"listen = ["{SERVER_V4}:53"]"#),
        )
        .replace(
            "interfaces = []",
            &format!(r#"interfaces = ["{}"]"#, bed.server_if),
        )
        .replace(SYSTEM_PIN_DIR, &pin_dir);
    assert!(
        edited.matches(SERVER_V4.to_string().as_str()).count() == 1
            && edited.contains(&bed.server_if)
            && edited.contains(&format!(r#"pin_dir = "{pin_dir}""#))
    );
    std::fs::write(CONFIG, edited).unwrap();

    // Native XDP_TX on veth needs a program on the peer.
    let client_if = bed.client_if.clone();
    let pass = bed
        .spawn(
            Side::Client,
            BIN,
            &["xdp-pass", "--iface", &client_if, "--xdp-mode", "native"],
            false,
        )
        .unwrap();
    pass.wait_for(&mut bed, "pass program attached", Duration::from_secs(20))
        .unwrap();

    // The unit's command as systemd runs it: User=, Group=, AmbientCapabilities=,
    // CapabilityBoundingSet=, NoNewPrivileges=, and (Type=notify) a NOTIFY_SOCKET.
    let unit = std::fs::read_to_string(UNIT).unwrap();
    assert_eq!(unit_setting(&unit, "NoNewPrivileges"), "yes");
    assert_eq!(unit_setting(&unit, "Type"), "notify");
    let notify_path = out.join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    // As systemd's own notify socket: any service user may write to it.
    std::fs::set_permissions(&notify_path, std::fs::Permissions::from_mode(0o666)).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let next_notification = || {
        let mut buf = [0u8; 512];
        let n = notify.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let as_the_unit = |command: &str| {
        let mut args = vec![
            format!("NOTIFY_SOCKET={}", notify_path.display()),
            "setpriv".to_string(),
            format!("--reuid={}", unit_setting(&unit, "User")),
            format!("--regid={}", unit_setting(&unit, "Group")),
            "--init-groups".to_string(),
            format!("--inh-caps={}", setpriv_caps(&unit, "AmbientCapabilities")),
            format!(
                "--ambient-caps={}",
                setpriv_caps(&unit, "AmbientCapabilities")
            ),
            format!(
                "--bounding-set={}",
                setpriv_caps(&unit, "CapabilityBoundingSet")
            ),
            "--no-new-privs".to_string(),
            "--".to_string(),
        ];
        args.extend(
            unit_setting(&unit, command)
                .split_whitespace()
                .map(String::from),
        );
        args
    };
    // ExecStartPre=+ runs as root, unsandboxed: it makes the pin directory the service's.
    let start_pre = || {
        let command = unit_setting(&unit, "ExecStartPre");
        let command = command
            .strip_prefix('+')
            .expect("a privileged ExecStartPre");
        assert!(command.contains(SYSTEM_PIN_DIR), "{command}");
        let command = command.replace(SYSTEM_PIN_DIR, &pin_dir);
        let mut words = command.split_whitespace();
        let status = Command::new(words.next().unwrap())
            .args(words)
            .status()
            .unwrap();
        assert!(status.success(), "ExecStartPre: {status}");
        assert_eq!(mode_owner(&pin_dir), (0o700, uid, gid));
    };
    start_pre();
    let args = as_the_unit("ExecStart");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let daemon = bed.spawn(Side::Server, "env", &args, false).unwrap();
    daemon
        .wait_for(&mut bed, "ready:", Duration::from_secs(30))
        .unwrap();
    assert_eq!(next_notification(), "READY=1");
    let log = daemon.log().join("\n");
    assert!(
        log.contains("XDP attached to") && log.contains("link pinned at"),
        "{log}"
    );

    // The operator's first zone, through the API with the installed CLI.
    let cli = |args: &[&str]| bed.output(Side::Server, "/usr/bin/dns-user", args).unwrap();
    cli(&["zone", "create", "pkg.test"]);
    let batch = out.join("batch.json");
    std::fs::write(
        &batch,
        dns_tests::a_record_batch("CREATE", "www.pkg.test.", "192.0.2.80"),
    )
    .unwrap();
    cli(&["change", "apply", batch.to_str().unwrap(), "--wait"]);
    let before = metric(&bed.metrics_page().unwrap(), ANSWERED).unwrap();
    let dig = bed.dig("www.pkg.test", "A");
    assert_eq!(dig.trim(), "192.0.2.80");
    let after = metric(&bed.metrics_page().unwrap(), ANSWERED).unwrap();
    assert_eq!(after - before, 1, "answered by XDP");

    // Every thread runs as the package's user with the unit's capabilities, and the store it
    // made is private to that user.
    let status = std::fs::read_to_string(format!("/proc/{}/status", daemon.pid)).unwrap();
    let uids = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(
        uids.split_whitespace().skip(1).collect::<Vec<_>>(),
        [uid.to_string().as_str(); 4],
        "{uids}"
    );
    dns_tests::assert_kept_capabilities(daemon.pid);
    assert_eq!(
        mode_owner(&format!("{STATE}/store.redb")),
        (0o600, uid, gid)
    );

    // `systemctl reload`: the unit's ExecReload, as the unit runs it, takes over; it returns
    // once the new daemon serves, which reports itself the main process.
    // Its output goes to a file: the detached daemon keeps the descriptors it inherited (the
    // journal's, under systemd), so a pipe would never close.
    let reload_log = out.join("reload.log");
    let log_file = std::fs::File::create(&reload_log).unwrap();
    let status = bed
        .command(Side::Server, "env")
        .args(as_the_unit("ExecReload"))
        .stdin(std::process::Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .status()
        .unwrap();
    let reload_output = std::fs::read_to_string(&reload_log).unwrap_or_default();
    assert!(status.success(), "ExecReload: {status}\n{reload_output}");
    let first = next_notification();
    let new_pid: u32 = first
        .strip_prefix("MAINPID=")
        .and_then(|p| p.lines().next()?.parse().ok())
        .unwrap_or_else(|| panic!("{first:?}"));
    assert_ne!(new_pid, daemon.pid);
    let _reaper = Reap(new_pid);
    assert_eq!(next_notification(), format!("MAINPID={new_pid}\nREADY=1"));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = bed.exited(daemon.pid) {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "the old daemon exits");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        status.success(),
        "the old daemon handed over cleanly: {status}"
    );
    let before = metric(&bed.metrics_page().unwrap(), ANSWERED).unwrap();
    assert_eq!(bed.dig("www.pkg.test", "A").trim(), "192.0.2.80");
    let after = metric(&bed.metrics_page().unwrap(), ANSWERED).unwrap();
    assert_eq!(after - before, 1, "answered by the new daemon's XDP");
    let status = std::fs::read_to_string(format!("/proc/{new_pid}/status")).unwrap();
    assert!(status.contains(&format!("Uid:\t{uid}\t{uid}")), "{status}");
    dns_tests::assert_kept_capabilities(new_pid);
    // Gone, or a zombie its adoptive parent has yet to reap.
    let running = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .is_ok_and(|s| !s.contains("State:\tZ"))
    };
    let wait_gone = |pid: u32| {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while running(pid) {
            assert!(std::time::Instant::now() < deadline, "daemon {pid} ends");
            std::thread::sleep(Duration::from_millis(20));
        }
    };

    // A crash, and Restart=on-failure: ExecStartPre and ExecStart again, as the unit says.
    // The new daemon takes over the pinned link and maps, as the service's user.
    // SAFETY: signalling the daemon this test's reload started, by its PID.
    unsafe { libc::kill(new_pid as libc::pid_t, libc::SIGKILL) };
    wait_gone(new_pid);
    let restart_sec: f64 = unit_setting(&unit, "RestartSec")
        .trim_end_matches("ms")
        .parse()
        .unwrap();
    assert!(
        restart_sec <= 500.0,
        "RestartSec= well inside the heartbeat"
    );
    start_pre();
    let restarted = bed.spawn(Side::Server, "env", &args, false).unwrap();
    restarted
        .wait_for(&mut bed, "ready:", Duration::from_secs(30))
        .unwrap();
    assert_eq!(next_notification(), "READY=1");
    let log = restarted.log().join("\n");
    assert!(log.contains("took over the maps pinned"), "{log}");
    assert!(log.contains("took over the link pinned"), "{log}");
    let before = metric(&bed.metrics_page().unwrap(), ANSWERED).unwrap();
    assert_eq!(bed.dig("www.pkg.test", "A").trim(), "192.0.2.80");
    let after = metric(&bed.metrics_page().unwrap(), ANSWERED).unwrap();
    assert_eq!(after - before, 1, "answered by the restarted daemon's XDP");

    // systemctl stop: SIGTERM to the main process, which says it is stopping, and removes
    // its pins (the XDP program goes with them).
    // SAFETY: signalling the daemon this test started, by its PID.
    unsafe { libc::kill(restarted.pid as libc::pid_t, libc::SIGTERM) };
    assert_eq!(next_notification(), "STOPPING=1");
    wait_gone(restarted.pid);
    assert!(!Path::new(&pin_dir).exists(), "pins left after a stop");
    drop(bpffs);
    drop(bed);
    drop(installed);
    assert!(!Path::new(STATE).exists(), "purge removes the store");
    assert!(
        !Path::new(CONFIG).exists(),
        "purge removes the configuration"
    );
    std::fs::remove_dir_all(&out).unwrap();
}
