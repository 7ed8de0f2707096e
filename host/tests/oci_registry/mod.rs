//! Debian's `docker-registry` (the CNCF distribution registry) on 127.0.0.1 for the artifact tests: installed
//! with apt-get when missing, started on a free port with a temporary storage folder, killed on drop.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's docker-registry on 127.0.0.1, killed on drop.
pub struct Registry {
    child: Child,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

fn install_registry() {
    if Path::new(REGISTRY_BIN).exists() {
        return;
    }
    let install = || {
        Command::new("apt-get")
            // Waits for the dpkg lock rather than failing when another apt-get runs (parallel test runners).
            .args(["-o", "DPkg::Lock::Timeout=300", "install", "-y", "--no-install-recommends", "docker-registry"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    if !install() {
        let updated = Command::new("apt-get")
            .args(["-o", "DPkg::Lock::Timeout=300", "update"])
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success());
        assert_eq!(updated.ok(), Some(true), "apt-get update failed");
        assert!(install(), "apt-get install docker-registry failed");
    }
    assert!(Path::new(REGISTRY_BIN).exists(), "{REGISTRY_BIN} missing after installing docker-registry");
}

impl Registry {
    pub fn start() -> Registry {
        install_registry();
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    \
                 enabled: true\nhttp:\n  addr: {addr}\n",
                dir.path().join("storage").display()
            ),
        )
        .unwrap();
        let child = Command::new(REGISTRY_BIN)
            .args(["serve", config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        let registry = Registry { child, addr, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !registry.ready() {
            assert!(Instant::now() < deadline, "docker-registry did not answer on {addr}");
            std::thread::sleep(Duration::from_millis(100));
        }
        registry
    }

    fn ready(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(self.addr) else { return false };
        let _ =
            s.write_all(format!("GET /v2/ HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", self.addr).as_bytes());
        let mut response = String::new();
        let _ = s.read_to_string(&mut response);
        response.starts_with("HTTP/1.1 200")
    }
}
