//! [`OwnProcess`]: a server process of a test's own, on a free port; [`OwnServer`]:
//! what the fault scenario does with one.

use super::env;

/// A server of a test's own, on 127.0.0.1, that a test kills and starts again
/// ([`OwnProcess`], or a store's own kind: a PostgreSQL stopped with `pg_ctl`, say).
pub trait OwnServer {
    /// The port it listens on.
    fn port(&self) -> u16;
    /// Kill it, as a crash would, and wait until it is gone.
    fn kill(&mut self);
    /// Start it again on the same port, and wait until it serves.
    fn restart(&mut self);
}

/// A server process of a test's own (to kill and restart), on 127.0.0.1; killed
/// when dropped.
pub struct OwnProcess {
    /// The port it listens on.
    pub port: u16,
    program: String,
    args: Vec<String>,
    child: Option<std::process::Child>,
}

impl OwnProcess {
    /// A redis-server of the test's own on `port` (`CACHE_TEST_REDIS_SERVER_BIN`, no
    /// persistence), with `extra` arguments, so killing it disturbs no one.
    pub fn redis(port: u16, extra: &[&str]) -> Self {
        let port_s = port.to_string();
        let mut args = vec![
            "--bind",
            "127.0.0.1",
            "--port",
            &port_s,
            "--save",
            "",
            "--appendonly",
            "no",
        ];
        args.extend_from_slice(extra);
        Self::start(&env("CACHE_TEST_REDIS_SERVER_BIN"), &args, port)
    }

    /// A port free right now on 127.0.0.1.
    pub fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port()
    }

    /// Start `program args` (which must listen on 127.0.0.1:`port`) and wait until it
    /// accepts connections.
    pub fn start(program: &str, args: &[&str], port: u16) -> Self {
        let mut p = OwnProcess {
            port,
            program: program.to_owned(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            child: None,
        };
        p.restart();
        p
    }

    /// Start it again after [`kill`](Self::kill), same port and arguments.
    pub fn restart(&mut self) {
        let child = std::process::Command::new(&self.program)
            .args(&self.args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.program));
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "{} did not start on {}",
                self.program,
                self.port
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Kill it (SIGKILL) and wait for it to end.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl OwnServer for OwnProcess {
    fn port(&self) -> u16 {
        self.port
    }

    fn kill(&mut self) {
        OwnProcess::kill(self);
    }

    fn restart(&mut self) {
        OwnProcess::restart(self);
    }
}

impl Drop for OwnProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
