//! One container per store per test process: the image from
//! `CACHE_TEST_<STORE>_IMAGE` (`name:tag`, the official image by default), the
//! port published on 127.0.0.1 only, ready once a real protocol call is answered,
//! labelled with this process, and removed when the process exits (an `atexit`
//! hook) or, after a crash, by the next test process that starts containers.

use super::{OwnProcess, Server};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use testcontainers::bollard::models::PortBinding;
use testcontainers::bollard::query_parameters::{ListContainersOptions, RemoveContainerOptions};
use testcontainers::bollard::Docker;
use testcontainers::core::IntoContainerPort;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerRequest, GenericImage, ImageExt};

/// The label every container of the test suites carries; its value is the pid of
/// the test process that started it.
pub const LABEL: &str = "cachekit.test.owner";

struct Started {
    address: String,
    /// Tells the keeper thread to remove the container; it answers when done.
    stop: Option<(tokio::sync::oneshot::Sender<()>, mpsc::Receiver<()>)>,
}

static STARTED: Mutex<Option<HashMap<&'static str, Started>>> = Mutex::new(None);

/// The address of `server` in this process's container, started on first use.
pub(super) async fn start(server: Server) -> String {
    tokio::task::spawn_blocking(move || {
        let mut started = STARTED.lock();
        let map = started.get_or_insert_with(|| {
            remove_orphans();
            // SAFETY: registers a plain `extern "C" fn` with no arguments.
            unsafe { libc::atexit(remove_at_exit) };
            HashMap::new()
        });
        map.entry(server.store)
            .or_insert_with(|| start_blocking(server))
            .address
            .clone()
    })
    .await
    .expect("container start-up thread")
}

/// The image for `server`, `CACHE_TEST_<STORE>_IMAGE` or its default, and whether
/// it is the official one.
fn image(server: &Server) -> (String, String, bool) {
    let var = format!("CACHE_TEST_{}_IMAGE", server.store.to_uppercase());
    match super::from_env(&var) {
        Some(image) => match image.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
            Some((name, tag)) => (name.to_owned(), tag.to_owned(), false),
            None => (image, "latest".to_owned(), false),
        },
        None => (server.image.0.to_owned(), server.image.1.to_owned(), true),
    }
}

fn start_blocking(server: Server) -> Started {
    let (tx, rx) = mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the container thread");
        rt.block_on(async move {
            let (name, tag, official) = image(&server);
            let host_port = server
                .host_port_var
                .and_then(super::from_env)
                .and_then(|a| a.rsplit_once(':').and_then(|(_, p)| p.parse().ok()))
                .unwrap_or_else(OwnProcess::free_port);
            let port = server.port;
            let mut request: ContainerRequest<GenericImage> = GenericImage::new(name, tag)
                .with_mapped_port(host_port, port.tcp())
                .with_label(LABEL, std::process::id().to_string())
                // Published on 127.0.0.1 only (podman reports an empty host IP
                // for ports published on every interface).
                .with_host_config_modifier(move |hc| {
                    let binding = PortBinding {
                        host_ip: Some("127.0.0.1".to_owned()),
                        host_port: Some(host_port.to_string()),
                    };
                    hc.port_bindings = Some(HashMap::from([(
                        format!("{port}/tcp"),
                        Some(vec![binding]),
                    )]));
                    hc.publish_all_ports = Some(false);
                });
            for (k, v) in server.container_env {
                request = request.with_env_var(*k, *v);
            }
            if official && !server.container_cmd.is_empty() {
                request = request.with_cmd(server.container_cmd.iter().copied());
            }
            let container = match request.start().await {
                Ok(c) => c,
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
            };
            match (server.ready)(host_port, Duration::from_secs(60)) {
                Ok(()) => {
                    let _ = tx.send(Ok((server.address)(host_port)));
                }
                Err(e) => {
                    let _ = tx.send(Err(format!("not ready on 127.0.0.1:{host_port}: {e}")));
                }
            }
            // Kept until the process exits (or the start failed): then removed.
            let _ = stop_rx.await;
            let _ = container.rm().await;
            let _ = done_tx.send(());
        });
    });
    match rx.recv() {
        Ok(Ok(address)) => Started {
            address,
            stop: Some((stop_tx, done_rx)),
        },
        Ok(Err(e)) => {
            let _ = stop_tx.send(());
            let _ = done_rx.recv_timeout(Duration::from_secs(10));
            panic!(
                "cannot start a {} container ({e}); is a Docker engine running (DOCKER_HOST)?",
                server.store
            )
        }
        Err(_) => panic!(
            "the {} container thread ended before it started",
            server.store
        ),
    }
}

/// At exit: remove this process's containers (each keeper thread removes its own).
extern "C" fn remove_at_exit() {
    let Some(mut started) = STARTED.try_lock() else {
        return;
    };
    let stops: Vec<_> = started
        .iter_mut()
        .flat_map(|m| m.values_mut())
        .filter_map(|s| s.stop.take())
        .collect();
    let mut done = Vec::new();
    for (stop, finished) in stops {
        if stop.send(()).is_ok() {
            done.push(finished);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    for finished in done {
        let _ = finished.recv_timeout(deadline.saturating_duration_since(Instant::now()));
    }
}

/// Whether process `pid` runs (a zombie, killed but not yet reaped, does not).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // `pid (name) state ...`: the state follows the last parenthesis.
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
    })
}

/// Remove containers left by test processes that ended without their exit hook
/// (killed, aborted).
fn remove_orphans() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for the clean-up");
    rt.block_on(async {
        let docker = match Docker::connect_with_defaults() {
            Ok(d) => d,
            Err(e) => {
                eprintln!("containers: cannot look for orphans ({e})");
                return;
            }
        };
        let options = ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([(
                "label".to_owned(),
                vec![LABEL.to_owned()],
            )])),
            ..Default::default()
        };
        let list = match docker.list_containers(Some(options)).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("containers: cannot list orphans ({e})");
                return;
            }
        };
        for c in list {
            let owner = c
                .labels
                .as_ref()
                .and_then(|l| l.get(LABEL))
                .and_then(|p| p.parse::<u32>().ok());
            let alive = owner.is_some_and(running);
            if let (false, Some(id)) = (alive, c.id) {
                let options = RemoveContainerOptions {
                    force: true,
                    v: true,
                    ..Default::default()
                };
                if let Err(e) = docker.remove_container(&id, Some(options)).await {
                    eprintln!("containers: cannot remove the orphan {id} ({e})");
                }
            }
        }
    });
}
